// The vbd xenbus handshake (Linux xen-blkback xenbus.c, docs/xen-abi.md 6.1)
// with the simulated blkfront on a real hypervisor-core guest domain.
// MemoryXenbusStore (src/test) stands in for the xenstore client: the package
// map keeps @kumo/xenstore out of blkback's tests.
import { BlkifStatus, GrantFlags, Vdisk, XenbusState } from "@kumo/abi";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { createDiskImage, MemoryByteStore, openDiskImage, VbdBackend } from "../src/index";
import { MemoryXenbusStore, SimulatedBlkfront } from "../src/test/index";
import { pattern } from "./helpers";

const MiB = 1024 * 1024;
const FRONT = "/local/domain/1/device/vbd/51712";
const BACK = "/local/domain/0/backend/vbd/1/51712";

async function until(condition: () => boolean, what: string): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > 2000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function setup(
  options: { readOnly?: boolean; maxQueues?: number; maxRingPageOrder?: number } = {},
) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({ name: "guest", memory: 16 * MiB, vcpus: 1 });
  expect(domain.domid).toBe(1);
  const store = new MemoryXenbusStore();
  // What the toolstack writes (libxl device_disk_add): both directories at state 1.
  await store.writeAll(FRONT, {
    backend: BACK,
    "backend-id": "0",
    state: "1",
    "virtual-device": "51712",
    "device-type": "disk",
  });
  await store.writeAll(BACK, { frontend: FRONT, "frontend-id": "1", online: "1", state: "1" });
  const disk = new MemoryByteStore();
  await createDiskImage(disk, { format: "qcow2", size: 8 * MiB });
  const image = await openDiskImage(disk);
  const logs: string[] = [];
  const backend = await VbdBackend.start({
    store,
    host: hypervisor.host,
    domid: 1,
    backendPath: BACK,
    image,
    readOnly: options.readOnly,
    maxQueues: options.maxQueues,
    maxRingPageOrder: options.maxRingPageOrder,
    maxIndirectSegments: 32,
    log: (line) => logs.push(line),
  });
  const value = (key: string) => store.nodes.get(`${BACK}/${key}`);
  return { hypervisor, domain, store, backend, value, logs };
}

/** blkfront's talk_to_blkback: keys in one go, then Initialised. */
async function connectFrontend(
  store: MemoryXenbusStore,
  front: SimulatedBlkfront,
  extra: Record<string, string> = {},
) {
  await store.writeAll(FRONT, { ...front.frontendKeys(), ...extra });
  await store.write(`${FRONT}/state`, String(XenbusState.Initialised));
}

describe("vbd handshake", () => {
  it("publishes features, connects, serves I/O, closes and reconnects", async () => {
    const { domain, store, backend, value } = await setup();
    // Features before InitWait.
    expect(value("state")).toBe("2");
    expect(value("feature-flush-cache")).toBe("1");
    expect(value("feature-persistent")).toBe("1");
    expect(value("feature-max-indirect-segments")).toBe("32");
    expect(value("multi-queue-max-queues")).toBe("4");
    expect(value("feature-discard")).toBe("1");
    expect(value("discard-granularity")).toBe("65536");
    expect(value("sectors")).toBeUndefined();

    const front = new SimulatedBlkfront({ domain, maxIndirectSegments: 32 });
    await connectFrontend(store, front);
    await until(() => backend.state === XenbusState.Connected, "Connected");
    // The three keys blkfront reads together, plus physical-sector-size.
    expect(value("sectors")).toBe(String((8 * MiB) / 512));
    expect(value("sector-size")).toBe("512");
    expect(value("info")).toBe("0");
    expect(value("physical-sector-size")).toBe("512");
    await store.write(`${FRONT}/state`, "4");
    expect((await front.write(0, pattern(32 * 4096, 1))).status).toBe(BlkifStatus.OKAY);
    expect(backend.workers[0].stats.persistentGrants).toBeGreaterThan(0);

    // Frontend closes: Closing -> backend Closing, Closed -> backend Closed, ring released.
    await store.write(`${FRONT}/state`, "5");
    await until(() => backend.state === XenbusState.Closing, "Closing");
    await store.write(`${FRONT}/state`, "6");
    await until(() => backend.state === XenbusState.Closed, "Closed");
    expect(
      domain.grants!.entryFlags(front.ringRef) & (GrantFlags.reading | GrantFlags.writing),
    ).toBe(0);
    expect(backend.workers).toHaveLength(0);

    // Reconnect (a guest reloading xen-blkfront, or kexec): Initialising -> InitWait -> Connected.
    await store.write(`${FRONT}/state`, "1");
    await until(() => backend.state === XenbusState.InitWait, "InitWait again");
    const again = new SimulatedBlkfront({
      domain,
      firstGfn: 0x600,
      firstRef: 600,
      persistent: false,
    });
    await connectFrontend(store, again);
    await until(() => backend.state === XenbusState.Connected, "Connected again");
    const back = await again.read(0, 8);
    expect(Buffer.compare(back.data, pattern(32 * 4096, 1).subarray(0, 4096))).toBe(0);

    // Backend-initiated close: Closing until the frontend is Closed.
    const closed = backend.close();
    await until(() => backend.state === XenbusState.Closing, "backend Closing");
    await store.write(`${FRONT}/state`, "6");
    await closed;
    expect(backend.state).toBe(XenbusState.Closed);
    await backend.destroy();
  });

  it("a read-only disk says so in info and mode, without discard", async () => {
    const { domain, store, backend, value } = await setup({ readOnly: true });
    expect(value("feature-discard")).toBeUndefined();
    const front = new SimulatedBlkfront({ domain });
    await connectFrontend(store, front);
    await until(() => backend.state === XenbusState.Connected, "Connected");
    expect(Number(value("info")) & Vdisk.READONLY).toBe(Vdisk.READONLY);
    expect(value("mode")).toBe("r");
    expect((await front.write(0, pattern(4096, 1))).status).toBe(BlkifStatus.ERROR);
    await backend.destroy();
  });

  it("multi-queue: one ring per queue-<i> directory", async () => {
    const { domain, store, backend } = await setup({ maxQueues: 2 });
    const queues = [
      new SimulatedBlkfront({ domain, firstGfn: 0x200, firstRef: 8, pages: 64 }),
      new SimulatedBlkfront({ domain, firstGfn: 0x300, firstRef: 100, pages: 64 }),
    ];
    const keys: Record<string, string> = {
      "multi-queue-num-queues": "2",
      protocol: "x86_64-abi",
      "feature-persistent": "1",
    };
    for (const [i, queue] of queues.entries()) {
      keys[`queue-${i}/ring-ref`] = String(queue.ringRef);
      keys[`queue-${i}/event-channel`] = String(queue.port);
    }
    await store.writeAll(FRONT, keys);
    await store.write(`${FRONT}/state`, "3");
    await until(() => backend.state === XenbusState.Connected, "Connected");
    expect(backend.workers).toHaveLength(2);
    expect((await queues[0].write(0, pattern(4096, 4))).status).toBe(BlkifStatus.OKAY);
    const back = await queues[1].read(0, 8);
    expect(Buffer.compare(back.data, pattern(4096, 4))).toBe(0);
    expect(backend.workers[0].stats.requests).toBe(1);
    expect(backend.workers[1].stats.requests).toBe(1);
    await backend.destroy();
  });

  it("multi-page rings: ring-page-order with ring-ref0..3, 128 requests in flight", async () => {
    const { domain, store, backend, value } = await setup();
    // Linux blkback offers xen_blkif_max_ring_order = XENBUS_MAX_RING_GRANT_ORDER = 4.
    expect(value("max-ring-page-order")).toBe("4");
    const front = new SimulatedBlkfront({ domain, ringPageOrder: 2, pages: 200 });
    // io/ring.h on 4 pages of 112-byte x86_64 slots: 128 entries (32 on one page).
    expect(front.ringSize).toBe(128);
    expect(front.frontendKeys()).toMatchObject({
      "ring-page-order": "2",
      "ring-ref0": String(front.ringRef),
      "ring-ref3": String(front.ringRef + 3),
    });
    expect(front.frontendKeys()["ring-ref"]).toBeUndefined();
    await connectFrontend(store, front);
    await until(() => backend.state === XenbusState.Connected, "Connected");
    // More requests at once than a single page holds: slots on every page, some straddling
    // a page boundary (slot 72 spans bytes 8128..8240 of the ring).
    const writes = Array.from({ length: 128 }, (_, i) => front.write(i * 8, pattern(4096, i)));
    expect((await Promise.all(writes)).every((r) => r.status === BlkifStatus.OKAY)).toBe(true);
    for (let round = 0; round < 2; round++) {
      const reads = await Promise.all(Array.from({ length: 128 }, (_, i) => front.read(i * 8, 8)));
      for (const [i, read] of reads.entries()) {
        expect(read.status).toBe(BlkifStatus.OKAY);
        expect(Buffer.compare(read.data, pattern(4096, i)), `sector ${i * 8}`).toBe(0);
      }
    }
    expect(backend.workers[0].stats.requests).toBe(3 * 128);
    // Closing releases all four ring pages.
    await store.write(`${FRONT}/state`, "6");
    await until(() => backend.state === XenbusState.Closed, "Closed");
    for (let i = 0; i < 4; i++) {
      expect(
        domain.grants!.entryFlags(front.ringRef + i) & (GrantFlags.reading | GrantFlags.writing),
      ).toBe(0);
    }
    await backend.destroy();
  });

  it("maxRingPageOrder 0 offers single-page rings only", async () => {
    const { backend, value } = await setup({ maxRingPageOrder: 0 });
    expect(value("max-ring-page-order")).toBeUndefined();
    await backend.destroy();
    await expect(setup({ maxRingPageOrder: 5 })).rejects.toThrow(/maxRingPageOrder/);
  });

  it("bad frontend keys close the device with a reason, not an exception", async () => {
    for (const [extra, reason] of [
      [{ "ring-ref": "99999" }, /mapping ring-ref 99999 failed/],
      [{ "event-channel": "777" }, /binding event-channel 777 failed/],
      [{ "ring-ref": "12abc" }, /not a number/],
      [{ protocol: "pdp11-abi" }, /unknown protocol/],
      [{ "multi-queue-num-queues": "9" }, /multi-queue-num-queues/],
      [{ "ring-page-order": "5" }, /ring page order '5' exceeds max:4/],
      // Linux connect_ring: any ring-page-order key, even 0, means ring-ref0.. (multi_ref).
      [{ "ring-page-order": "0" }, /ring-ref0 missing/],
      [{ "ring-page-order": "1", "ring-ref0": "8" }, /ring-ref1 missing/],
    ] as const) {
      const { domain, store, backend, value } = await setup();
      const front = new SimulatedBlkfront({ domain });
      await connectFrontend(store, front, extra);
      await until(
        () => backend.state === XenbusState.Closing,
        `Closing for ${JSON.stringify(extra)}`,
      );
      expect(value("hotplug-error")).toMatch(reason);
      await backend.destroy();
    }
  });
});

describe("hostile frontend keys", () => {
  it("random state and key sequences never throw and end Closed with every grant released", async () => {
    const next = (() => {
      let state = 99;
      return () => {
        state = (state * 1103515245 + 12345) >>> 0;
        return state / 4294967296;
      };
    })();
    const states = ["1", "2", "3", "4", "5", "6", "7", "0", "", "abc", "4x", "-1", "99999999999"];
    for (let round = 0; round < 20; round++) {
      const { domain, store, backend, logs } = await setup();
      const front = new SimulatedBlkfront({ domain, pages: 16 });
      const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)];
      for (let step = 0; step < 25; step++) {
        const action = next();
        if (action < 0.5) await store.write(`${FRONT}/state`, pick(states));
        else if (action < 0.8) await connectFrontend(store, front, {});
        else
          await store.write(
            `${FRONT}/${pick(["ring-ref", "event-channel", "protocol", "multi-queue-num-queues", "feature-persistent", "ring-page-order", "ring-ref0", "ring-ref1"])}`,
            pick([
              "0",
              "1",
              "2",
              String(front.ringRef),
              String(front.port),
              "x86_32-abi",
              "",
              "zz",
            ]),
          );
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await store.write(`${FRONT}/state`, "6");
      await until(() => backend.state === XenbusState.Closed, `Closed after round ${round}`);
      for (let ref = 0; ref < 64; ref++) {
        expect(domain.grants!.entryFlags(ref) & (GrantFlags.reading | GrantFlags.writing)).toBe(0);
      }
      await backend.destroy();
      expect(logs.every((line) => typeof line === "string")).toBe(true);
    }
  });
});
