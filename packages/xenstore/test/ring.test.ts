/**
 * The guest ring page as Linux's xenbus drives it (drivers/xen/xenbus/xenbus_comms.c): partial
 * writes and reads, the ring wrap, u32 index wrap, and the event-channel notification rules.
 */
import { XenstoreConst, XsType } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { connectLocal, RingLayout, RingTransport, Xenstored } from "../src";
import { createRingPair, XenbusFrontend } from "../src/test";
import { encodeMessage, nulTerminated } from "../src/wire";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function presetIndices(page: Uint8Array, value: number): void {
  const view = new DataView(page.buffer, page.byteOffset);
  for (const offset of [
    RingLayout.REQ_CONS,
    RingLayout.REQ_PROD,
    RingLayout.RSP_CONS,
    RingLayout.RSP_PROD,
  ]) {
    view.setUint32(offset, value, true);
  }
}

async function guestWithHome(daemon: Xenstored, domid: number) {
  const dom0 = connectLocal(daemon);
  await dom0.mkdir(`/local/domain/${domid}`);
  await dom0.setPermissions(`/local/domain/${domid}`, [`n${domid}`]);
  return dom0;
}

describe("xenstore ring transport", () => {
  it("marks the ring connected and advertises the error field", () => {
    const daemon = new Xenstored();
    const page = new Uint8Array(4096);
    new DataView(page.buffer).setUint32(RingLayout.CONNECTION, 1, true);
    createRingPair(daemon, 3, {}, page);
    const view = new DataView(page.buffer);
    expect(view.getUint32(RingLayout.CONNECTION, true)).toBe(XenstoreConst.CONNECTED);
    expect(view.getUint32(RingLayout.SERVER_FEATURES, true) & 2).toBe(2);
  });

  for (const [name, start, writeChunk, readChunk] of [
    ["byte-at-a-time writes across the ring wrap", 1000, 1, undefined],
    ["7-byte pieces, header split over notifications", 1021, 7, 5],
    ["indices about to wrap past 2^32", 0xfffffff0, 13, 11],
    ["whole messages", 0, undefined, undefined],
  ] as const) {
    it(`exchanges requests and replies: ${name}`, async () => {
      const daemon = new Xenstored();
      await guestWithHome(daemon, 4);
      const page = new Uint8Array(4096);
      presetIndices(page, start);
      const { frontend } = createRingPair(daemon, 4, { writeChunk, readChunk }, page);
      await frontend.write("a/b", "value-1");
      expect(await frontend.read("a/b")).toBe("value-1");
      const long = "L".repeat(1500); // longer than the ring: needs the consumer's progress
      await frontend.write("long", long);
      expect(await frontend.read("long")).toBe(long);
      expect(await frontend.directory("/local/domain/4")).toEqual(["a", "long"]);
      expect(frontend.ioError).toBe(false);
    });
  }

  it("pipelines many requests through a full ring without losing a wakeup", async () => {
    const daemon = new Xenstored();
    await guestWithHome(daemon, 4);
    const { frontend, guestEvents } = createRingPair(daemon, 4, { writeChunk: 100 });
    const writes = [];
    for (let index = 0; index < 200; index++) {
      writes.push(frontend.write(`k/${index}`, `v${index}`.repeat(10)));
    }
    await Promise.all(writes);
    const reads = [];
    for (let index = 0; index < 200; index++) reads.push(frontend.read(`k/${index}`));
    const values = await Promise.all(reads);
    expect(values[199]).toBe("v199".repeat(10));
    // The guest notified only when the daemon had caught up (Linux's rule), far fewer times
    // than it wrote chunks; the daemon notified for replies.
    expect(frontend.stats.notificationsSent).toBeGreaterThan(0);
    expect(guestEvents()).toBeGreaterThan(0);
  });

  it("delivers watch events through the response ring even when the guest reads slowly", async () => {
    const daemon = new Xenstored();
    const dom0 = await guestWithHome(daemon, 4);
    const { frontend } = createRingPair(daemon, 4, { readChunk: 3 });
    await frontend.call(XsType.WATCH, 0, "w", "token");
    for (let index = 0; index < 50; index++) await dom0.write(`/local/domain/4/w/${index}`, "x");
    for (let spin = 0; spin < 50 && frontend.watchEvents.length < 51; spin++) await settle();
    expect(frontend.watchEvents).toHaveLength(51);
    expect(frontend.watchEvents[50]).toEqual({ path: "w/49", token: "token" });
  });

  it("stops serving a ring with corrupt request indices, sets error, and others keep working", async () => {
    const daemon = new Xenstored();
    await guestWithHome(daemon, 4);
    await guestWithHome(daemon, 8);
    const bad = createRingPair(daemon, 4);
    const good = createRingPair(daemon, 8);
    const view = new DataView(bad.page.buffer);
    view.setUint32(RingLayout.REQ_PROD, view.getUint32(RingLayout.REQ_CONS, true) + 2000, true);
    bad.transport.kick();
    expect(bad.transport.isStopped).toBe(true);
    expect(view.getUint32(RingLayout.ERROR, true)).toBe(XenstoreConst.ERROR_RINGIDX);
    await good.frontend.write("still", "fine");
    expect(await good.frontend.read("still")).toBe("fine");
    expect(daemon.isIntroduced(4)).toBe(true);
  });

  it("drops a guest that sends a length over XENSTORE_PAYLOAD_MAX (error = protocol)", async () => {
    const daemon = new Xenstored();
    await guestWithHome(daemon, 4);
    const bad = createRingPair(daemon, 4);
    const header = encodeMessage(XsType.WRITE, 1, 0, new Uint8Array(0));
    new DataView(header.buffer).setUint32(12, 5000, true);
    bad.frontend.sendRaw(header);
    await settle();
    expect(bad.transport.isStopped).toBe(true);
    expect(new DataView(bad.page.buffer).getUint32(RingLayout.ERROR, true)).toBe(
      XenstoreConst.ERROR_PROTO,
    );
  });

  it("stops on corrupt response indices", async () => {
    const daemon = new Xenstored();
    await guestWithHome(daemon, 4);
    const bad = createRingPair(daemon, 4);
    new DataView(bad.page.buffer).setUint32(RingLayout.RSP_CONS, 0x80000000, true);
    bad.frontend.sendRaw(encodeMessage(XsType.READ, 1, 0, nulTerminated("x")));
    await settle();
    expect(bad.transport.isStopped).toBe(true);
  });

  it("bounds the work done per notification and finishes the rest later", async () => {
    const daemon = new Xenstored();
    await guestWithHome(daemon, 4);
    const page = new Uint8Array(4096);
    const deferred: (() => void)[] = [];
    const frontend = new XenbusFrontend(page, () => {});
    const transport = new RingTransport(
      daemon,
      4,
      { page, notify: () => frontend.onEvent() },
      { budgetBytes: 64, schedule: (callback) => deferred.push(callback) },
    );
    const replies = [];
    for (let index = 0; index < 20; index++) replies.push(frontend.write(`n${index}`, "1"));
    transport.kick();
    expect(deferred.length).toBe(1);
    while (deferred.length > 0) deferred.shift()!();
    await Promise.all(replies);
    expect(await connectLocal(daemon).list("/local/domain/4")).toHaveLength(20);
  });

  it("stops reading a guest that does not consume its replies (outstanding-request quota)", async () => {
    const daemon = new Xenstored();
    const dom0 = await guestWithHome(daemon, 4);
    await dom0.write("/local/domain/4/big", "v".repeat(1000));
    const page = new Uint8Array(4096);
    const frontend = new XenbusFrontend(page, () => queueMicrotask(() => transport.kick()));
    // The guest never handles its event, so replies pile up in the daemon.
    const transport = new RingTransport(daemon, 4, { page, notify() {} });
    for (let index = 0; index < 400; index++) void frontend.read("big");
    for (let spin = 0; spin < 20; spin++) {
      transport.kick();
      await settle();
    }
    // Checked after every request: exactly 20 replies wait beyond the full response ring; the
    // rest of the requests wait in the request ring and the guest's own queue.
    expect(transport.queuedMessages).toBe(20);
    expect(frontend.backlog).toBeGreaterThan(0);
    // Once the guest reads, everything completes.
    for (let spin = 0; spin < 400 && frontend.backlog > 0; spin++) {
      frontend.onEvent();
      await settle();
    }
    expect(frontend.backlog).toBe(0);
  });

  it("rejects a page that is too small or misaligned (a host bug, not a guest one)", () => {
    const daemon = new Xenstored();
    expect(() => new RingTransport(daemon, 4, { page: new Uint8Array(100), notify() {} })).toThrow(
      RangeError,
    );
  });
});
