// Hostile images: mutated headers and tables of every format must give a
// DiskImageError (or work), never another exception, and never make Kumo
// write outside the file (beyond what a bounded allocation appends).
import { describe, expect, it } from "vitest";
import {
  type CreateImageOptions,
  createDiskImage,
  DiskImageError,
  MemoryByteStore,
  openDiskImage,
} from "../src/index";
import { zlibInflate } from "../src/node";
import { pattern, random } from "./helpers";

const SIZE = 2 * 1024 * 1024;

async function seedImage(options: Omit<CreateImageOptions, "size">): Promise<Uint8Array> {
  const store = new MemoryByteStore();
  await createDiskImage(store, { ...options, size: SIZE });
  const image = await openDiskImage(store);
  for (let i = 0; i < 12; i++) await image.write(pattern(4096, i), (i * 170_000) & ~511);
  await image.close();
  return store.contents();
}

/** Offsets worth mutating: the header area, the first tables, and anywhere. */
function mutate(bytes: Uint8Array, next: () => number, hotSpots: number[]): Uint8Array {
  const copy = bytes.slice();
  const count = 1 + Math.floor(next() * 6);
  for (let i = 0; i < count; i++) {
    const spot = hotSpots[Math.floor(next() * hotSpots.length)];
    const at = next() < 0.8 ? spot + Math.floor(next() * 128) : Math.floor(next() * copy.length);
    if (at >= copy.length) continue;
    const kind = next();
    if (kind < 0.4) copy[at] = Math.floor(next() * 256);
    else if (kind < 0.6) copy[at] ^= 1 << Math.floor(next() * 8);
    else if (kind < 0.8) copy.fill(0xff, at, at + 8);
    else copy.fill(0, at, at + 8);
  }
  // Sometimes truncate too.
  if (next() < 0.15) return copy.subarray(0, Math.floor(next() * copy.length));
  return copy;
}

async function exercise(bytes: Uint8Array, next: () => number): Promise<"opened" | "refused"> {
  const store = new MemoryByteStore(bytes);
  let image: Awaited<ReturnType<typeof openDiskImage>>;
  try {
    image = await openDiskImage(store, { inflate: zlibInflate });
  } catch (error) {
    expect(error).toBeInstanceOf(DiskImageError);
    return "refused";
  }
  const buffer = new Uint8Array(65536 + 512);
  const attempt = async (operation: () => Promise<void>) => {
    try {
      await operation();
    } catch (error) {
      if (!(error instanceof DiskImageError)) throw error;
    }
  };
  for (let i = 0; i < 24; i++) {
    const offset = Math.floor(next() * (image.size / 512)) * 512;
    const length = Math.min(buffer.length, image.size - offset) & ~511;
    const kind = next();
    if (kind < 0.5) await attempt(() => image.read(buffer.subarray(0, length), offset));
    else if (kind < 0.9) await attempt(() => image.write(buffer.subarray(0, length), offset));
    else await attempt(() => image.discard(offset, length));
  }
  // Each write may append at most a data cluster/block plus a few metadata clusters.
  expect(store.highestWriteEnd).toBeLessThanOrEqual(
    bytes.length + 24 * (2 * 1024 * 1024 + 5 * 65536) + 4 * 1024 * 1024,
  );
  await attempt(() => image.close());
  return "opened";
}

describe("mutated images give typed errors only", () => {
  const formats: [string, Omit<CreateImageOptions, "size">, number[]][] = [
    ["qcow2 v3", { format: "qcow2" }, [0, 48, 65536, 131072, 196608, 262144]],
    [
      "qcow2 v2 4 KiB clusters",
      { format: "qcow2", qcow2Version: 2, clusterSize: 4096 },
      [0, 4096, 8192, 12288, 16384],
    ],
    ["vhd dynamic", { format: "vhd", vhdBlockSize: 65536 }, [0, 512, 1536, 2048]],
    ["vhd fixed", { format: "vhd", vhdSubformat: "fixed" }, [SIZE, SIZE + 48]],
  ];
  for (const [name, options, spots] of formats) {
    it(`${name}: 150 mutants`, async () => {
      const seed = await seedImage(options);
      const tail = seed.length - 512;
      const next = random(name.length * 7919);
      const outcomes = { opened: 0, refused: 0 };
      for (let round = 0; round < 150; round++) {
        outcomes[await exercise(mutate(seed, next, [...spots, tail]), next)]++;
      }
      // Both paths must be exercised: mutants that open and mutants refused at open.
      expect(outcomes.opened).toBeGreaterThan(20);
      expect(outcomes.refused).toBeGreaterThan(10);
    });
  }

  it("a corrupt qcow2 says what is wrong and where", async () => {
    const seed = await seedImage({ format: "qcow2" });
    const bad = seed.slice();
    new DataView(bad.buffer).setUint32(20, 40); // cluster_bits
    const error = await openDiskImage(new MemoryByteStore(bad)).catch((caught) => caught);
    expect(error).toBeInstanceOf(DiskImageError);
    expect(error.code).toBe("corrupt");
    expect(error.fileOffset).toBe(20);
    expect(error.message).toMatch(/cluster_bits 40 outside 9\.\.21/);
    const truncated = await openDiskImage(new MemoryByteStore(seed.subarray(0, 70000))).catch(
      (caught) => caught,
    );
    expect(truncated.code).toBe("truncated");
  });

  it("a VHD with a bad footer checksum is refused with both sums in the message", async () => {
    const seed = await seedImage({ format: "vhd" });
    const bad = seed.slice();
    bad[bad.length - 512 + 40] ^= 1;
    const error = await openDiskImage(new MemoryByteStore(bad)).catch((caught) => caught);
    // A footer with the right cookie and a wrong checksum is corrupt (not skipped for the copy at 0).
    expect(error).toBeInstanceOf(DiskImageError);
    expect(error.message).toMatch(/footer checksum is 0x[0-9a-f]+, the footer sums to 0x[0-9a-f]+/);
  });

  it("out-of-range, unaligned and read-only requests are typed errors", async () => {
    const store = new MemoryByteStore();
    await createDiskImage(store, { format: "qcow2", size: SIZE });
    const image = await openDiskImage(store, { readOnly: true });
    await expect(image.read(new Uint8Array(512), SIZE)).rejects.toMatchObject({
      code: "out-of-range",
    });
    await expect(image.read(new Uint8Array(100), 0)).rejects.toMatchObject({ code: "unaligned" });
    await expect(image.write(new Uint8Array(512), 0)).rejects.toMatchObject({ code: "read-only" });
  });
});
