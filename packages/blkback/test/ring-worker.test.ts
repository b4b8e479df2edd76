// The blkif data path through the real hypervisor-core host interface: a
// guest domain (the simulated Linux blkfront) grants pages and an event
// channel; domain 0's BlkifRingWorker maps them with host.grants and binds
// with host.openEventChannel.
import { BlkifOp, BlkifStatus, GrantFlags } from "@kumo/abi";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import {
  BlkifRingWorker,
  createDiskImage,
  type DiskImage,
  MemoryByteStore,
  openDiskImage,
} from "../src/index";
import { SimulatedBlkfront } from "../src/test/index";
import { pattern } from "./helpers";

const MiB = 1024 * 1024;

async function setup(options: {
  persistent?: boolean;
  maxIndirectSegments?: number;
  readOnly?: boolean;
  format?: "raw" | "qcow2" | "vhd";
  size?: number;
  abi?: "x86_64" | "x86_32" | "arm64";
}) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({ name: "guest", memory: 8 * MiB, vcpus: 1 });
  const store = new MemoryByteStore();
  const size = options.size ?? 4 * MiB;
  await createDiskImage(store, { format: options.format ?? "qcow2", size });
  const image = await openDiskImage(store);
  const front = new SimulatedBlkfront({
    domain,
    persistent: options.persistent ?? true,
    maxIndirectSegments: options.maxIndirectSegments ?? 0,
    abi: options.abi,
  });
  const host = hypervisor.host;
  const ring = host.grants.map(domain.domid, front.ringRef, true);
  const events = host.openEventChannel();
  const logs: string[] = [];
  let worker: BlkifRingWorker | null = null;
  const local = events.bindInterdomain(domain.domid, front.port, () => worker?.kick());
  worker = new BlkifRingWorker({
    grants: host.grants,
    domid: domain.domid,
    ring: ring.view,
    abi: options.abi ?? "x86_64",
    image,
    readOnly: options.readOnly ?? false,
    notify: () => events.notify(local),
    persistentGrants: options.persistent ?? true,
    maxIndirectSegments: options.maxIndirectSegments ?? 0,
    discard: true,
    flush: true,
    log: (line) => logs.push(line),
  });
  return {
    hypervisor,
    domain,
    front,
    worker,
    image: image as DiskImage,
    store,
    logs,
    host,
    ring,
    events,
  };
}

describe("blkif ring worker with a Linux-like frontend", () => {
  for (const persistent of [true, false]) {
    it(`reads back what it wrote (${persistent ? "persistent" : "per-request"} grants)`, async () => {
      const { front, worker, image } = await setup({ persistent });
      const data = pattern(11 * 4096, 1);
      expect((await front.write(8, data)).status).toBe(BlkifStatus.OKAY);
      const back = await front.read(8, 88);
      expect(back.status).toBe(BlkifStatus.OKAY);
      expect(Buffer.compare(back.data, data)).toBe(0);
      // The image really holds it.
      const direct = new Uint8Array(data.length);
      await image.read(direct, 8 * 512);
      expect(Buffer.compare(direct, data)).toBe(0);
      expect(front.grantLeaks).toEqual([]);
      expect(worker.stats.persistentGrants).toBe(persistent ? 11 : 0);
      await worker.stop();
    });
  }

  for (const abi of ["x86_32", "arm64"] as const) {
    it(`serves a ${abi} frontend (its own request layout and ring size)`, async () => {
      const { front, worker } = await setup({ abi, maxIndirectSegments: 32 });
      const data = pattern(20 * 4096, 6);
      const writes = [front.write(0, data), front.write(400, data.subarray(0, 4096))];
      expect((await Promise.all(writes)).map((response) => response.status)).toEqual([0, 0]);
      const back = await front.read(0, 160);
      expect(Buffer.compare(back.data, data)).toBe(0);
      expect(worker.stats.errors).toBe(0);
    });
  }

  it("serves 32 concurrent requests and a full ring without losing an event", async () => {
    const { front, worker } = await setup({});
    const writes = [];
    for (let i = 0; i < 64; i++) writes.push(front.write(i * 8, pattern(4096, i + 10)));
    const statuses = (await Promise.all(writes)).map((response) => response.status);
    expect(statuses.every((status) => status === BlkifStatus.OKAY)).toBe(true);
    const reads = [];
    for (let i = 0; i < 64; i++) reads.push(front.read(i * 8, 8));
    const results = await Promise.all(reads);
    for (const [i, result] of results.entries()) {
      expect(Buffer.compare(result.data, pattern(4096, i + 10))).toBe(0);
    }
    // Event suppression: fewer notifications than requests in both directions.
    expect(front.notificationsSent).toBeLessThanOrEqual(128);
    expect(worker.stats.notifications).toBeLessThanOrEqual(128);
    expect(worker.stats.requests).toBe(128);
  });

  it("INDIRECT requests with up to max-indirect-segments segments", async () => {
    const { front, worker } = await setup({ maxIndirectSegments: 64 });
    const data = pattern(64 * 4096, 3);
    expect((await front.write(16, data)).status).toBe(BlkifStatus.OKAY);
    const back = await front.read(16, 64 * 8);
    expect(back.status).toBe(BlkifStatus.OKAY);
    expect(Buffer.compare(back.data, data)).toBe(0);
    expect(worker.stats.bytesWritten).toBe(data.length);
  });

  it("FLUSH_DISKCACHE reaches the store; FUA-style writes flush too", async () => {
    const { front, store } = await setup({ format: "raw" });
    const before = store.flushCount;
    expect((await front.flush()).status).toBe(BlkifStatus.OKAY);
    expect(store.flushCount).toBe(before + 1);
    expect((await front.write(0, pattern(4096, 5), true)).status).toBe(BlkifStatus.OKAY);
    expect(store.flushCount).toBe(before + 2);
  });

  it("DISCARD frees qcow2 clusters and reads back zeros; secure discard is EOPNOTSUPP", async () => {
    const { front, image } = await setup({ format: "qcow2" });
    await front.write(0, pattern(32768, 9));
    await front.write(64, pattern(32768, 10));
    expect((await front.discard(0, 128)).status).toBe(BlkifStatus.OKAY);
    expect(image.discardZeroes).toBe(true);
    for (const sector of [0, 64]) {
      const back = await front.read(sector, 64);
      expect(back.data.every((byte) => byte === 0)).toBe(true);
    }
    expect((await front.discard(0, 128, true)).status).toBe(BlkifStatus.EOPNOTSUPP);
  });

  it("answers guest mistakes with BLKIF_RSP_ERROR, never an exception", async () => {
    const { front, worker, domain, logs } = await setup({ size: MiB });
    const sectors = MiB / 512;
    // Past the end, straddling the end, and a 64-bit sector number.
    expect((await front.read(sectors, 8)).status).toBe(BlkifStatus.ERROR);
    expect((await front.write(sectors - 4, pattern(4096, 1))).status).toBe(BlkifStatus.ERROR);
    expect((await front.discard(2 ** 60, 8)).status).toBe(BlkifStatus.ERROR);
    // Bad segments: last_sect 8, last < first, 0 and 12 segments.
    const request = (fill: (bytes: DataView) => void) => {
      const bytes = new Uint8Array(112);
      fill(new DataView(bytes.buffer));
      return front.raw(bytes);
    };
    const grantRef = front.ringRef + 1;
    domain.grants!.writeEntry(grantRef, 0, front.ringGfn + 1, GrantFlags.permit_access);
    const segment = (view: DataView, index: number, ref: number, first: number, last: number) => {
      view.setUint32(24 + index * 8, ref, true);
      view.setUint8(28 + index * 8, first);
      view.setUint8(29 + index * 8, last);
    };
    const rw = (operation: number, count: number) => (view: DataView) => {
      view.setUint8(0, operation);
      view.setUint8(1, count);
    };
    const readOne = (ref: number, first: number, last: number) => (view: DataView) => {
      rw(BlkifOp.READ, 1)(view);
      segment(view, 0, ref, first, last);
    };
    expect((await request(readOne(grantRef, 0, 8))).status).toBe(BlkifStatus.ERROR);
    expect((await request(readOne(grantRef, 5, 4))).status).toBe(BlkifStatus.ERROR);
    expect((await request(rw(BlkifOp.READ, 0))).status).toBe(BlkifStatus.ERROR);
    expect((await request(rw(BlkifOp.WRITE, 12))).status).toBe(BlkifStatus.ERROR);
    // A grant reference that is not granted, and one beyond the table.
    expect((await request(readOne(3000, 0, 7))).status).toBe(BlkifStatus.ERROR);
    expect((await request(readOne(0xffffffff, 0, 7))).status).toBe(BlkifStatus.ERROR);
    // WRITE_BARRIER (never offered), an unknown op, INDIRECT without the feature.
    expect((await request(rw(BlkifOp.WRITE_BARRIER, 1))).status).toBe(BlkifStatus.EOPNOTSUPP);
    expect((await request(rw(200, 1))).status).toBe(BlkifStatus.EOPNOTSUPP);
    expect((await request(rw(BlkifOp.INDIRECT, 1))).status).toBe(BlkifStatus.EOPNOTSUPP);
    expect(worker.broken).toBeNull();
    expect(logs.length).toBeGreaterThan(0);
    // Still serving.
    expect((await front.write(0, pattern(4096, 2))).status).toBe(BlkifStatus.OKAY);
  });

  it("a read-only disk refuses writes and discards", async () => {
    const { front } = await setup({ readOnly: true });
    expect((await front.write(0, pattern(4096, 1))).status).toBe(BlkifStatus.ERROR);
    expect((await front.discard(0, 8)).status).toBe(BlkifStatus.ERROR);
    expect((await front.read(0, 8)).status).toBe(BlkifStatus.OKAY);
  });

  it("a read-only grant for a READ is a grant error, answered BLKIF_RSP_ERROR", async () => {
    const { front, domain } = await setup({ persistent: false });
    const ref = front.ringRef + 100;
    domain.grants!.writeEntry(
      ref,
      0,
      front.ringGfn + 100,
      GrantFlags.permit_access | GrantFlags.readonly,
    );
    const bytes = new Uint8Array(112);
    const view = new DataView(bytes.buffer);
    view.setUint8(0, BlkifOp.READ);
    view.setUint8(1, 1);
    view.setUint32(24, ref, true);
    view.setUint8(29, 7);
    expect((await front.raw(bytes)).status).toBe(BlkifStatus.ERROR);
    expect(domain.grants!.entryFlags(ref) & (GrantFlags.reading | GrantFlags.writing)).toBe(0);
  });

  it("a req_prod too far ahead stops the ring instead of serving garbage", async () => {
    const { front, worker } = await setup({});
    front.corruptProducer(1000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    await worker.idle();
    expect(worker.broken).toMatch(/req_prod 1000/);
    expect(worker.stats.requests).toBe(0);
  });
});

describe("ring worker scheduling", () => {
  it("a long burst is served in batches without losing requests", async () => {
    const { front, worker } = await setup({ format: "raw" });
    const writes = [];
    for (let i = 0; i < 600; i++) writes.push(front.write((i % 64) * 8, pattern(4096, i % 64)));
    const statuses = await Promise.all(writes);
    expect(statuses.every((response) => response.status === BlkifStatus.OKAY)).toBe(true);
    expect(worker.stats.requests).toBe(600);
    await worker.idle();
    await worker.stop();
  });
});
