/**
 * Daemon semantics as a guest sees them through its ring (the simulated Linux xenbus) and as
 * dom0 sees them through the typed client: permissions and their inheritance, the domain
 * layout, watches, transactions, quotas, special watches and Xen's error strings.
 */
import { XsType } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { connectLocal, writeDomainLayout, Xenstored, type XenstoredQuotas } from "../src";
import { createRingPair } from "../src/test";
import { encodeMessage, nulTerminated } from "../src/wire";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function setup(quotas: Partial<XenstoredQuotas> = {}) {
  const daemon = new Xenstored({ quotas });
  const dom0 = connectLocal(daemon);
  for (const domid of [5, 6]) {
    await writeDomainLayout(dom0, {
      domid,
      name: `guest${domid}`,
      uuid: `00000000-0000-0000-0000-00000000000${domid}`,
      memoryKiB: 131072,
      vcpus: 2,
      storePort: 1,
      storeRingRef: 0xfeffc,
    });
  }
  const guest = createRingPair(daemon, 5).frontend;
  const other = createRingPair(daemon, 6).frontend;
  return { daemon, dom0, guest, other };
}

describe("domain layout and permissions", () => {
  it("a guest reads its home with relative paths, not another domain's", async () => {
    const { guest } = await setup();
    expect(await guest.read("name")).toBe("guest5");
    expect(await guest.read("/local/domain/5/domid")).toBe("5");
    expect(await guest.read("cpu/1/availability")).toBe("online");
    await expect(guest.read("/local/domain/6/name")).rejects.toMatchObject({ code: "EACCES" });
    // A missing node is ENOENT only where the guest may read the parent; elsewhere EACCES, so
    // that existence does not leak (Xen errno_from_parents).
    await expect(guest.read("no-such-node")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(guest.read("/local/domain/6/no-such")).rejects.toMatchObject({ code: "EACCES" });
    await expect(guest.read("/tool/xenstored")).rejects.toMatchObject({ code: "EACCES" });
  });

  it("the home is owned by dom0 and readable by the guest; the writable dirs are the guest's", async () => {
    const { dom0, guest } = await setup();
    expect(await dom0.getPermissions("/local/domain/5")).toEqual([
      { domid: 0, access: "n" },
      { domid: 5, access: "r" },
    ]);
    await expect(guest.write("scribble", "x")).rejects.toMatchObject({ code: "EACCES" });
    await expect(guest.write("name", "evil")).rejects.toMatchObject({ code: "EACCES" });
    await guest.write("data/updated", "1");
    await guest.write("control/shutdown", "");
    expect(await dom0.read("/local/domain/5/data/updated")).toBe("1");
  });

  it("new nodes inherit the parent's permissions; a guest owns what it creates", async () => {
    const { dom0, guest } = await setup();
    await dom0.mkdir("/local/domain/0/backend/vbd/5");
    await dom0.setPermissions("/local/domain/0/backend/vbd/5", ["n0", "r5"]);
    await dom0.write("/local/domain/0/backend/vbd/5/51712/state", "1");
    expect(await dom0.getPermissions("/local/domain/0/backend/vbd/5/51712/state")).toEqual([
      { domid: 0, access: "n" },
      { domid: 5, access: "r" },
    ]);
    expect(await guest.read("/local/domain/0/backend/vbd/5/51712/state")).toBe("1");
    await dom0.mkdir("/local/domain/5/device/vbd/51712");
    await dom0.setPermissions("/local/domain/5/device/vbd/51712", ["n5", "r0"]);
    await guest.write("device/vbd/51712/ring-ref/deep", "8");
    expect(await dom0.getPermissions("/local/domain/5/device/vbd/51712/ring-ref/deep")).toEqual([
      { domid: 5, access: "n" },
      { domid: 0, access: "r" },
    ]);
  });

  it("only the owner sets permissions, and an unprivileged owner cannot give a node away", async () => {
    const { guest } = await setup();
    await guest.write("data/mine", "1");
    await guest.call(XsType.SET_PERMS, 0, "data/mine", "n5", "r6");
    await expect(guest.call(XsType.SET_PERMS, 0, "data/mine", "n6")).rejects.toMatchObject({
      code: "EPERM",
    });
    await expect(guest.call(XsType.SET_PERMS, 0, "name", "n5")).rejects.toMatchObject({
      code: "EACCES",
    });
    await expect(guest.call(XsType.SET_PERMS, 0, "data/mine", "x5")).rejects.toMatchObject({
      code: "EINVAL",
    });
  });

  it("another domain reads a node shared with it and nothing else", async () => {
    const { guest, other } = await setup();
    await guest.write("data/shared", "hi");
    await guest.call(XsType.SET_PERMS, 0, "data/shared", "n5", "r6");
    expect(await other.read("/local/domain/5/data/shared")).toBe("hi");
    await expect(other.write("/local/domain/5/data/shared", "x")).rejects.toMatchObject({
      code: "EACCES",
    });
  });
});

describe("watches", () => {
  it("fires once on registration, then on changes, with relative paths for relative watches", async () => {
    const { dom0, guest } = await setup();
    await guest.call(XsType.WATCH, 0, "control/shutdown", "tok");
    await settle();
    expect(guest.watchEvents).toEqual([{ path: "control/shutdown", token: "tok" }]);
    await dom0.write("/local/domain/5/control/shutdown", "poweroff");
    await settle();
    expect(guest.watchEvents[1]).toEqual({ path: "control/shutdown", token: "tok" });
    await guest.call(XsType.UNWATCH, 0, "control/shutdown", "tok");
    await dom0.write("/local/domain/5/control/shutdown", "reboot");
    await settle();
    expect(guest.watchEvents).toHaveLength(2);
  });

  it("a watch on a parent fires for a descendant; removing an ancestor fires the watched path", async () => {
    const { dom0, guest } = await setup();
    await dom0.write("/local/domain/0/backend/vif/5/0/state", "2");
    await dom0.setPermissions("/local/domain/0/backend/vif/5/0/state", ["n0", "r5"]);
    await guest.call(XsType.WATCH, 0, "/local/domain/0/backend/vif/5/0/state", "be");
    await guest.call(XsType.WATCH, 0, "device", "dev");
    await settle();
    guest.watchEvents.length = 0;
    await dom0.write("/local/domain/5/device/vif/0/state", "1");
    await dom0.rm("/local/domain/0/backend/vif/5");
    await settle();
    expect(guest.watchEvents).toEqual([
      { path: "device/vif/0/state", token: "dev" },
      { path: "/local/domain/0/backend/vif/5/0/state", token: "be" },
    ]);
  });

  it("events are only sent for nodes the watcher may read", async () => {
    const { dom0, guest } = await setup();
    await guest.call(XsType.WATCH, 0, "/local/domain/6", "spy");
    await settle();
    guest.watchEvents.length = 0;
    await dom0.write("/local/domain/6/data/secret", "x");
    await settle();
    expect(guest.watchEvents).toEqual([]);
  });

  it("a permission change fires once, also for a domain that only gains or loses access", async () => {
    const { dom0, guest } = await setup();
    await dom0.write("/local/domain/0/shared", "x");
    await guest.call(XsType.WATCH, 0, "/local/domain/0/shared", "s");
    await settle();
    guest.watchEvents.length = 0;
    await dom0.setPermissions("/local/domain/0/shared", ["n0", "r5"]);
    await dom0.setPermissions("/local/domain/0/shared", ["n0"]);
    await dom0.write("/local/domain/0/shared", "y");
    await settle();
    expect(guest.watchEvents).toEqual([
      { path: "/local/domain/0/shared", token: "s" },
      { path: "/local/domain/0/shared", token: "s" },
    ]);
  });

  it("rejects a duplicate watch with EEXIST and an unknown unwatch with ENOENT", async () => {
    const { guest } = await setup();
    await guest.call(XsType.WATCH, 0, "data", "t");
    await expect(guest.call(XsType.WATCH, 0, "data", "t")).rejects.toMatchObject({
      code: "EEXIST",
    });
    await expect(guest.call(XsType.UNWATCH, 0, "data", "u")).rejects.toMatchObject({
      code: "ENOENT",
    });
  });

  it("RESET_WATCHES drops the caller's watches", async () => {
    const { dom0, guest } = await setup();
    await guest.call(XsType.WATCH, 0, "data", "t");
    await guest.call(XsType.RESET_WATCHES, 0, "");
    await settle();
    guest.watchEvents.length = 0;
    await dom0.write("/local/domain/5/data/x", "1");
    await settle();
    expect(guest.watchEvents).toEqual([]);
  });

  it("@introduceDomain and @releaseDomain fire for dom0; release gives the domain's nodes to dom0", async () => {
    const { daemon, dom0, guest } = await setup();
    const events: string[] = [];
    await dom0.watch("@introduceDomain", (event) => events.push(event.path));
    await dom0.watch("@releaseDomain", (event) => events.push(event.path));
    await guest.call(XsType.WATCH, 0, "@releaseDomain", "g");
    await guest.write("data/owned", "1");
    await settle();
    createRingPair(daemon, 7);
    await dom0.release(6);
    await settle();
    expect(events).toEqual([
      "@introduceDomain",
      "@releaseDomain",
      "@introduceDomain",
      "@releaseDomain",
    ]);
    // The guest saw only the initial firing of its special watch (it may not read @releaseDomain).
    expect(guest.watchEvents).toEqual([{ path: "@releaseDomain", token: "g" }]);
    expect(await dom0.isDomainIntroduced(6)).toBe(false);
    expect(await dom0.isDomainIntroduced(7)).toBe(true);
    expect(daemon.releaseDomain(5)).toBe(true);
    expect((await dom0.getPermissions("/local/domain/5/data/owned"))[0].domid).toBe(0);
  });
});

describe("transactions", () => {
  it("a commit fails with EAGAIN when a node it read changed, and nothing is applied", async () => {
    const { dom0, guest } = await setup();
    await guest.write("data/counter", "1");
    const start = await guest.call(XsType.TRANSACTION_START, 0, "");
    const id = Number(new TextDecoder().decode(start.payload).replace(/\0$/, ""));
    expect(await guest.read("data/counter", id)).toBe("1");
    await guest.write("data/counter", "2", id);
    await guest.write("data/other", "x", id);
    // Inside the transaction the writes are visible; outside not yet.
    expect(await guest.read("data/other", id)).toBe("x");
    await expect(guest.read("data/other")).rejects.toMatchObject({ code: "ENOENT" });
    await dom0.write("/local/domain/5/data/counter", "100");
    await expect(guest.call(XsType.TRANSACTION_END, id, "T")).rejects.toMatchObject({
      code: "EAGAIN",
    });
    expect(await guest.read("data/counter")).toBe("100");
    await expect(guest.read("data/other")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("keeps seeing the value it first read after someone else changes it", async () => {
    const { dom0 } = await setup();
    await dom0.write("/snap", "a");
    const outcome = dom0.transaction(
      async (tx) => {
        expect(await tx.read("/snap")).toBe("a");
        await dom0.write("/snap", "b");
        expect(await tx.read("/snap")).toBe("a");
        await tx.write("/snap", "c");
        expect(await tx.read("/snap")).toBe("c");
      },
      { attempts: 1 },
    );
    await expect(outcome).rejects.toMatchObject({ code: "EAGAIN" });
    expect(await dom0.read("/snap")).toBe("b");
  });

  it("commits atomically and fires watches at commit", async () => {
    const { dom0, guest } = await setup();
    const events: string[] = [];
    await dom0.watch("/local/domain/5/data", (event) => events.push(event.path));
    await settle();
    events.length = 0;
    const start = await guest.call(XsType.TRANSACTION_START, 0, "");
    const id = Number(new TextDecoder().decode(start.payload).replace(/\0$/, ""));
    await guest.write("data/a", "1", id);
    await guest.write("data/b", "2", id);
    await settle();
    expect(events).toEqual([]);
    await guest.call(XsType.TRANSACTION_END, id, "T");
    await settle();
    expect(events).toEqual(["/local/domain/5/data/a", "/local/domain/5/data/b"]);
    expect(await dom0.read("/local/domain/5/data/b")).toBe("2");
  });

  it("the client retries the body on EAGAIN", async () => {
    const { dom0 } = await setup();
    await dom0.write("/test/x", "0");
    let attempts = 0;
    const result = await dom0.transaction(async (tx) => {
      attempts++;
      const value = Number(await tx.read("/test/x"));
      if (attempts === 1) await dom0.write("/test/x", "10"); // a competing writer
      await tx.write("/test/x", String(value + 1));
      return value + 1;
    });
    expect(attempts).toBe(2);
    expect(result).toBe(11);
    expect(await dom0.read("/test/x")).toBe("11");
  });

  it("a transaction id the connection does not own is ENOENT; nesting is EBUSY; aborts discard", async () => {
    const { guest, other } = await setup();
    const start = await guest.call(XsType.TRANSACTION_START, 0, "");
    const id = Number(new TextDecoder().decode(start.payload).replace(/\0$/, ""));
    await expect(other.read("name", id)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(guest.call(XsType.TRANSACTION_START, id, "")).rejects.toMatchObject({
      code: "EBUSY",
    });
    await guest.write("data/dropped", "1", id);
    await guest.call(XsType.TRANSACTION_END, id, "F");
    await expect(guest.read("data/dropped")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(guest.call(XsType.TRANSACTION_END, id, "T")).rejects.toMatchObject({
      code: "ENOENT",
    });
  });
});

describe("quotas", () => {
  it("limits nodes per domain (ENOSPC) but not dom0", async () => {
    const { dom0, guest } = await setup({ maxNodesPerDomain: 8 });
    let created = 0;
    let error: unknown;
    for (let index = 0; index < 20 && !error; index++) {
      await guest.write(`data/n${index}`, "1").then(
        () => created++,
        (caught) => (error = caught),
      );
    }
    expect(error).toMatchObject({ code: "ENOSPC" });
    expect(created).toBeLessThan(8);
    for (let index = 0; index < 20; index++) await dom0.write(`/test/many/n${index}`, "1");
  });

  it("limits node size (ENOSPC), watches (E2BIG) and transactions (ENOSPC) with Xen's defaults", async () => {
    const { guest } = await setup();
    // Record = 24-byte header + 8 per permission + value: with one permission entry the largest
    // value is 2048 - 24 - 8 - 1 = 2015 bytes.
    await guest.write("data/big", "x".repeat(2015));
    await expect(guest.write("data/big", "x".repeat(2016))).rejects.toMatchObject({
      code: "ENOSPC",
    });
    // Xen checks the count before adding with `>`: 129 watches and 11 transactions fit.
    for (let index = 0; index < 129; index++)
      await guest.call(XsType.WATCH, 0, "data", `t${index}`);
    await expect(guest.call(XsType.WATCH, 0, "data", "one-more")).rejects.toMatchObject({
      code: "E2BIG",
    });
    for (let index = 0; index < 11; index++) await guest.call(XsType.TRANSACTION_START, 0, "");
    await expect(guest.call(XsType.TRANSACTION_START, 0, "")).rejects.toMatchObject({
      code: "ENOSPC",
    });
  });
});

describe("requests and errors", () => {
  it("answers malformed requests with Xen's error names", async () => {
    const { guest } = await setup();
    const error = async (type: number, payload: Uint8Array, transactionId = 0) => {
      const reply = await guest.request(type, payload, transactionId);
      expect(reply.type).toBe(XsType.ERROR);
      return new TextDecoder().decode(reply.payload);
    };
    expect(await error(99, new Uint8Array(0))).toBe("ENOSYS\0");
    expect(await error(XsType.WATCH_EVENT, new Uint8Array(0))).toBe("ENOSYS\0");
    expect(await error(XsType.READ, new TextEncoder().encode("name"))).toBe("EINVAL\0");
    expect(await error(XsType.READ, nulTerminated("a", "b"))).toBe("EINVAL\0");
    expect(await error(XsType.READ, nulTerminated("/bad//path"))).toBe("EINVAL\0");
    expect(await error(XsType.READ, nulTerminated("/trailing/"))).toBe("EINVAL\0");
    expect(await error(XsType.READ, nulTerminated("/sp ace"))).toBe("EINVAL\0");
    expect(await error(XsType.READ, nulTerminated(`/${"a".repeat(3100)}`))).toBe("EINVAL\0");
    expect(await error(XsType.WRITE, new TextEncoder().encode("data/x"))).toBe("EINVAL\0");
    expect(await error(XsType.INTRODUCE, nulTerminated("9", "1", "1"))).toBe("EACCES\0");
    expect(await error(XsType.RELEASE, nulTerminated("6"))).toBe("EACCES\0");
    expect(await error(XsType.READ, nulTerminated("name"), 12345)).toBe("ENOENT\0");
    expect(await error(XsType.RM, nulTerminated("/"))).toBe("EINVAL\0");
    expect(await error(XsType.DIRECTORY, nulTerminated("/local/domain/6"))).toBe("EACCES\0");
  });

  it("answers GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, DIRECTORY_PART, CONTROL", async () => {
    const { dom0, guest } = await setup();
    expect(await dom0.getDomainPath(5)).toBe("/local/domain/5");
    const reply = await guest.call(XsType.GET_DOMAIN_PATH, 0, "5");
    expect(new TextDecoder().decode(reply.payload)).toBe("/local/domain/5\0");
    expect(await dom0.isDomainIntroduced(5)).toBe(true);
    expect(await dom0.isDomainIntroduced(42)).toBe(false);
    expect(await dom0.isDomainIntroduced(0x7ff0)).toBe(true); // DOMID_SELF
    const part = await guest.call(XsType.DIRECTORY_PART, 0, "cpu", "0");
    const text = new TextDecoder().decode(part.payload);
    expect(text.split("\0").slice(1)).toEqual(["0", "1", "", ""]);
    const tail = await guest.call(XsType.DIRECTORY_PART, 0, "cpu", "2");
    expect(new TextDecoder().decode(tail.payload).split("\0").slice(1)).toEqual(["1", "", ""]);
    expect(await dom0.control("check")).toBe("OK");
    await expect(guest.call(XsType.CONTROL, 0, "check")).rejects.toMatchObject({ code: "EACCES" });
  });

  it("a reply echoes request id and transaction id", async () => {
    const { daemon } = await setup();
    const sent: Uint8Array[] = [];
    const connection = daemon.connect(0, { send: (message) => sent.push(message), close() {} });
    connection.receive(
      encodeMessage(XsType.READ, 0xdeadbeef, 0, nulTerminated("/local/domain/5/name")),
    );
    const view = new DataView(sent[0].buffer);
    expect(view.getUint32(0, true)).toBe(XsType.READ);
    expect(view.getUint32(4, true)).toBe(0xdeadbeef);
    expect(new TextDecoder().decode(sent[0].subarray(16))).toBe("guest5");
  });
});
