// Sequential throughput through blkback against the host's own file I/O on
// the same machine, in one run. The guest side is the simulated Linux
// blkfront (11-segment requests, up to 32 in flight, persistent grants) on a
// hypervisor-core domain; the backend is BlkifRingWorker over a file image.
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import {
  BlkifRingWorker,
  createDiskImage,
  type DiskImage,
  MemoryByteStore,
  openDiskImage,
} from "../src/index";
import { createImage, openImage } from "../src/node";
import { SimulatedBlkfront } from "../src/test/index";

const TOTAL = Number(process.argv[2] ?? 64) * 1024 * 1024;
const CHUNK = 11 * 4096;
const dir = tmpdir();

function rate(bytes: number, ms: number): number {
  return bytes / 1024 / 1024 / (ms / 1000);
}

async function host(): Promise<{ write: number; read: number }> {
  const path = join(dir, `kumo-bench-host-${process.pid}.raw`);
  const file = await open(path, "w+");
  const chunk = new Uint8Array(CHUNK).fill(7);
  let start = performance.now();
  for (let at = 0; at + CHUNK <= TOTAL; at += CHUNK) await file.write(chunk, 0, CHUNK, at);
  await file.datasync();
  const write = rate(Math.floor(TOTAL / CHUNK) * CHUNK, performance.now() - start);
  start = performance.now();
  for (let at = 0; at + CHUNK <= TOTAL; at += CHUNK) await file.read(chunk, 0, CHUNK, at);
  const read = rate(Math.floor(TOTAL / CHUNK) * CHUNK, performance.now() - start);
  await file.close();
  await rm(path);
  return { write, read };
}

async function guest(
  format: "raw" | "qcow2" | "vhd",
  inMemory = false,
): Promise<{ write: number; read: number }> {
  const path = join(dir, `kumo-bench-${process.pid}.${format}`);
  let image: DiskImage;
  if (inMemory) {
    const store = new MemoryByteStore();
    await createDiskImage(store, { format, size: TOTAL });
    image = await openDiskImage(store);
  } else {
    await createImage(path, { format, size: TOTAL });
    image = await openImage(path);
  }
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({ name: "bench", memory: 16 * 1024 * 1024, vcpus: 1 });
  const front = new SimulatedBlkfront({ domain, pages: 11 * 32 });
  const ring = hypervisor.host.grants.map(domain.domid, front.ringRef, true);
  const events = hypervisor.host.openEventChannel();
  let worker: BlkifRingWorker | null = null;
  const local = events.bindInterdomain(domain.domid, front.port, () => worker?.kick());
  worker = new BlkifRingWorker({
    grants: hypervisor.host.grants,
    domid: domain.domid,
    ring: ring.view,
    abi: "x86_64",
    image,
    readOnly: false,
    notify: () => events.notify(local),
    persistentGrants: true,
    flush: true,
  });
  const data = new Uint8Array(CHUNK).fill(7);
  const sectors = CHUNK / 512;
  const count = Math.floor(TOTAL / CHUNK);
  const run = async (operation: (index: number) => Promise<unknown>) => {
    let next = 0;
    const lanes = Array.from({ length: 32 }, async () => {
      while (next < count) await operation(next++);
    });
    await Promise.all(lanes);
  };
  let start = performance.now();
  await run((index) => front.write(index * sectors, data));
  await front.flush();
  const write = rate(count * CHUNK, performance.now() - start);
  start = performance.now();
  await run((index) => front.read(index * sectors, sectors));
  const read = rate(count * CHUNK, performance.now() - start);
  await worker.stop();
  await image.close();
  if (!inMemory) await rm(path);
  return { write, read };
}

const baseline = await host();
console.log(
  `host file, ${TOTAL >> 20} MiB in ${CHUNK >> 10} KiB chunks: write ${baseline.write.toFixed(0)} MiB/s, read ${baseline.read.toFixed(0)} MiB/s`,
);
for (const [format, inMemory] of [
  ["raw", true],
  ["raw", false],
  ["qcow2", false],
  ["vhd", false],
] as const) {
  const result = await guest(format, inMemory);
  console.log(
    `blkback ${inMemory ? "raw in memory (protocol cost only)" : `${format} file`}: write ${result.write.toFixed(0)} MiB/s (${(result.write / baseline.write).toFixed(2)}x host), ` +
      `read ${result.read.toFixed(0)} MiB/s (${(result.read / baseline.read).toFixed(2)}x host)`,
  );
}
