// Interoperability with Debian's qemu-img (qemu-utils), both directions:
// Kumo writes, qemu-img checks/compares; qemu-img writes, Kumo reads.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDiskImage, type DiskImage, MemoryByteStore, openDiskImage } from "../src/index";
import { checkImage, convertImage, createImage, imageInfo, openImage } from "../src/node";
import { pattern, qemuImg, qemuIo, random, temporaryDirectory } from "./helpers";

const MiB = 1024 * 1024;
let dir: { path: string; remove: () => void };
beforeAll(() => {
  dir = temporaryDirectory();
});
afterAll(() => dir.remove());

const at = (name: string) => join(dir.path, name);

/** Random sector-aligned writes, mirrored into `reference` (the raw truth). */
async function scribble(
  image: DiskImage,
  reference: Uint8Array,
  seed: number,
  count: number,
): Promise<void> {
  const next = random(seed);
  for (let i = 0; i < count; i++) {
    const sectors = 1 + Math.floor(next() * (next() < 0.8 ? 16 : 600));
    const length = Math.min(sectors * 512, image.size);
    const offset = Math.floor(next() * ((image.size - length) / 512 + 1)) * 512;
    const data = pattern(length, seed * 1000 + i);
    await image.write(data, offset);
    reference.set(data, offset);
  }
}

async function readAll(image: DiskImage): Promise<Uint8Array> {
  const bytes = new Uint8Array(image.size);
  // Odd chunk sizes cross cluster and block boundaries.
  for (let offset = 0; offset < bytes.length; offset += 512 * 37) {
    await image.read(bytes.subarray(offset, Math.min(bytes.length, offset + 512 * 37)), offset);
  }
  return bytes;
}

const qemuFormat = (format: string) => (format === "vhd" ? "vpc" : format);

function expectQemuCheckClean(path: string): void {
  const check = qemuImg("check", "-f", "qcow2", path);
  expect(check.stdout + check.stderr).toContain("No errors were found");
  expect(check.status).toBe(0);
}

describe("images Kumo writes, checked by qemu-img", () => {
  const cases = [
    { name: "raw", options: { format: "raw" as const } },
    { name: "qcow2 v3", options: { format: "qcow2" as const } },
    { name: "qcow2 v2", options: { format: "qcow2" as const, qcow2Version: 2 as const } },
    { name: "qcow2 v3 4 KiB clusters", options: { format: "qcow2" as const, clusterSize: 4096 } },
    { name: "vhd dynamic", options: { format: "vhd" as const } },
    {
      name: "vhd dynamic 512 KiB blocks",
      options: { format: "vhd" as const, vhdBlockSize: 512 * 1024 },
    },
    { name: "vhd fixed", options: { format: "vhd" as const, vhdSubformat: "fixed" as const } },
  ];
  for (const { name, options } of cases) {
    it(`${name}: random writes read back and qemu-img compare against raw`, async () => {
      const size = 24 * MiB + 7 * 512;
      const path = at(`${name.replace(/ /g, "-")}.img`);
      await createImage(path, { ...options, size });
      const reference = new Uint8Array(size);
      const image = await openImage(path);
      expect(image.format).toBe(options.format);
      expect(image.size).toBe(size);
      await scribble(image, reference, 7, 300);
      await image.flush();
      expect(Buffer.compare(await readAll(image), reference)).toBe(0);
      await image.close();
      const raw = at(`${name.replace(/ /g, "-")}.ref`);
      writeFileSync(raw, reference);
      const compare = qemuImg("compare", "-f", qemuFormat(options.format), "-F", "raw", path, raw);
      expect(compare.stdout + compare.stderr).toContain("Images are identical");
      expect(compare.status).toBe(0);
      const info = JSON.parse(
        qemuImg("info", "--output=json", "-f", qemuFormat(options.format), path).stdout,
      );
      expect(info["virtual-size"]).toBe(size);
      if (options.format === "qcow2") expectQemuCheckClean(path);
      expect((await checkImage(path)).ok).toBe(true);
    });
  }
});

describe("images qemu-img writes, read by Kumo", () => {
  const size = 20 * MiB + 3 * 65536;
  let reference: Uint8Array;
  let raw: string;
  beforeAll(() => {
    reference = new Uint8Array(size);
    const next = random(3);
    // Runs of data and holes, some of them compressible.
    for (let offset = 0; offset < size; offset += 65536) {
      const kind = next();
      if (kind < 0.4) reference.set(pattern(65536, offset), offset);
      else if (kind < 0.6) reference.fill(offset & 0xff, offset, offset + 65536);
      else if (kind < 0.7) reference.set(pattern(4096, offset), offset + 8192);
    }
    raw = at("source.raw");
    writeFileSync(raw, reference);
  });
  const conversions: [string, string[]][] = [
    ["qcow2 v3", ["-O", "qcow2"]],
    ["qcow2 v2", ["-O", "qcow2", "-o", "compat=0.10"]],
    ["qcow2 compressed", ["-O", "qcow2", "-c"]],
    ["qcow2 compressed 4 KiB clusters", ["-O", "qcow2", "-c", "-o", "cluster_size=4096"]],
    ["qcow2 refcount_bits=1", ["-O", "qcow2", "-o", "refcount_bits=1"]],
    ["qcow2 refcount_bits=64", ["-O", "qcow2", "-o", "refcount_bits=64"]],
    ["vpc dynamic", ["-O", "vpc"]],
    ["vpc fixed", ["-O", "vpc", "-o", "subformat=fixed"]],
    ["vpc force_size", ["-O", "vpc", "-o", "force_size=on"]],
  ];
  for (const [name, args] of conversions) {
    it(`${name}: Kumo reads what qemu-img convert wrote, then writes into it`, async () => {
      const path = at(`qemu-${name.replace(/ /g, "-")}`);
      const converted = qemuImg("convert", "-f", "raw", ...args, raw, path);
      expect(converted.stderr).toBe("");
      const image = await openImage(path);
      // qemu rounds a VHD's size to its CHS geometry unless force_size is on.
      // qemu probes a fixed VHD as raw (its footer is only at the end): name the format.
      const format = args[1];
      const qemuSize = JSON.parse(qemuImg("info", "--output=json", "-f", format, path).stdout)[
        "virtual-size"
      ];
      expect(image.size).toBe(qemuSize);
      const expected = new Uint8Array(qemuSize);
      expected.set(reference.subarray(0, Math.min(qemuSize, size)));
      expect(Buffer.compare(await readAll(image), expected)).toBe(0);
      // Overwrite some of it (compressed clusters are copied on write).
      await scribble(image, expected, 11, 120);
      await image.close();
      const truth = `${path}.ref`;
      writeFileSync(truth, expected);
      const compare = qemuImg("compare", "-f", format, "-F", "raw", path, truth);
      expect(compare.stdout + compare.stderr).toContain("Images are identical");
      if (args.includes("qcow2")) expectQemuCheckClean(path);
    });
  }
});

describe("qcow2 backing files", () => {
  it("Kumo writes an overlay qemu-img created over a qcow2 base; qemu sees base + overlay", async () => {
    const size = 8 * MiB;
    const base = at("base.qcow2");
    const overlay = at("overlay.qcow2");
    const baseData = pattern(size, 99);
    writeFileSync(at("base.raw"), baseData);
    qemuImg("convert", "-f", "raw", "-O", "qcow2", at("base.raw"), base);
    expect(
      qemuImg("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay).status,
    ).toBe(0);
    const image = await openImage(overlay);
    const expected = baseData.slice();
    expect(Buffer.compare(await readAll(image), expected)).toBe(0);
    await scribble(image, expected, 5, 80);
    await image.close();
    writeFileSync(at("overlay.ref"), expected);
    const compare = qemuImg("compare", "-F", "raw", overlay, at("overlay.ref"));
    expect(compare.stdout).toContain("Images are identical");
    expectQemuCheckClean(overlay);
    // The base is untouched.
    expect(qemuImg("compare", "-F", "raw", base, at("base.raw")).status).toBe(0);
  });

  it("an overlay Kumo creates over a shorter raw base reads zeros past the base", async () => {
    const base = at("short-base.raw");
    const baseData = pattern(3 * MiB, 17);
    writeFileSync(base, baseData);
    const overlay = at("kumo-overlay.qcow2");
    await createImage(overlay, {
      format: "qcow2",
      size: 4 * MiB,
      backingFile: "short-base.raw",
      backingFormat: "raw",
    });
    const image = await openImage(overlay);
    const expected = new Uint8Array(4 * MiB);
    expected.set(baseData);
    await scribble(image, expected, 23, 40);
    expect(Buffer.compare(await readAll(image), expected)).toBe(0);
    await image.close();
    writeFileSync(at("kumo-overlay.ref"), expected);
    const info = JSON.parse(qemuImg("info", "--output=json", overlay).stdout);
    expect(info["backing-filename"]).toBe("short-base.raw");
    expect(info["backing-filename-format"]).toBe("raw");
    expect(qemuImg("compare", "-F", "raw", overlay, at("kumo-overlay.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(overlay);
  });
});

describe("qcow2 metadata growth and discard", () => {
  it("an L2 cache of one table (constant eviction) keeps data and metadata right", async () => {
    const store = new MemoryByteStore();
    const size = 16 * MiB;
    await createDiskImage(store, { format: "qcow2", size, clusterSize: 4096 });
    const image = await openDiskImage(store, { l2CacheTables: 1 });
    const reference = new Uint8Array(size);
    await scribble(image, reference, 31, 400);
    expect(Buffer.compare(await readAll(image), reference)).toBe(0);
    await image.close();
    const path = at("small-cache.qcow2");
    writeFileSync(path, store.contents());
    writeFileSync(at("small-cache.ref"), reference);
    expect(qemuImg("compare", "-F", "raw", path, at("small-cache.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(path);
  });

  it("512-byte clusters: the refcount table grows and qemu-img check stays clean", async () => {
    const path = at("tiny-clusters.qcow2");
    // 20480 data clusters need 80 refcount blocks of 256 entries; the first table holds 64.
    const size = 10 * MiB;
    await createImage(path, { format: "qcow2", size, clusterSize: 512 });
    const image = await openImage(path);
    const data = pattern(size, 1);
    for (let offset = 0; offset < size; offset += 256 * 1024)
      await image.write(data.subarray(offset, offset + 256 * 1024), offset);
    await image.close();
    writeFileSync(at("tiny.ref"), data);
    expect(qemuImg("compare", "-F", "raw", path, at("tiny.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(path);
    const info = JSON.parse(qemuImg("info", "--output=json", path).stdout);
    expect(info["cluster-size"]).toBe(512);
    const header = new DataView(readFileSync(path).buffer);
    expect(Number(header.getBigUint64(48))).not.toBe(512);
    expect(header.getUint32(56)).toBeGreaterThan(1);
  });

  it("discard gives clusters back with refcounts consistent; qemu sees zeros", async () => {
    const path = at("discard.qcow2");
    const size = 4 * MiB;
    await createImage(path, { format: "qcow2", size });
    const image = await openImage(path);
    expect(image.discardZeroes).toBe(true);
    const data = pattern(size, 8);
    await image.write(data, 0);
    await image.discard(65536, 10 * 65536 + 512);
    await image.discard(1024, 512); // partial cluster: kept
    await image.close();
    data.fill(0, 65536, 11 * 65536);
    writeFileSync(at("discard.ref"), data);
    expect(qemuImg("compare", "-F", "raw", path, at("discard.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(path);
  });

  it("clusters freed by discard are reused before the file grows", async () => {
    const path = at("reuse.qcow2");
    const size = 4 * MiB;
    await createImage(path, { format: "qcow2", size });
    const image = await openImage(path);
    const data = pattern(size, 12);
    await image.write(data, 0);
    const grown = statSync(path).size;
    for (let round = 0; round < 3; round++) {
      await image.discard(0, size);
      await image.write(data, 0);
    }
    await image.close();
    expect(statSync(path).size).toBe(grown);
    writeFileSync(at("reuse.ref"), data);
    expect(qemuImg("compare", "-F", "raw", path, at("reuse.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(path);
  });

  it("writes into clusters qemu-io left as zero-flagged and preallocated", async () => {
    const path = at("zeroes.qcow2");
    qemuImg("create", "-f", "qcow2", path, "2M");
    qemuIo(
      "-f",
      "qcow2",
      "-c",
      "write -P 0x55 0 1M",
      "-c",
      "write -z 64k 128k",
      "-c",
      "write -z -u 512k 64k",
      path,
    );
    const image = await openImage(path);
    const expected = new Uint8Array(2 * MiB);
    expected.fill(0x55, 0, MiB);
    expected.fill(0, 65536, 3 * 65536);
    expected.fill(0, 512 * 1024, 576 * 1024);
    expect(Buffer.compare(await readAll(image), expected)).toBe(0);
    await image.write(new Uint8Array(512).fill(0xaa), 65536 + 4096);
    expected.fill(0xaa, 65536 + 4096, 65536 + 4608);
    await image.close();
    writeFileSync(at("zeroes.ref"), expected);
    expect(qemuImg("compare", "-F", "raw", path, at("zeroes.ref")).stdout).toContain(
      "Images are identical",
    );
    expectQemuCheckClean(path);
  });
});

describe("convert, info, check", () => {
  it("converts raw -> qcow2 -> vhd -> raw with progress, qemu-img agrees at each step", async () => {
    const size = 12 * MiB;
    const source = at("convert-src.raw");
    const data = new Uint8Array(size);
    data.set(pattern(3 * MiB, 4), MiB);
    data.set(pattern(MiB, 5), 9 * MiB);
    writeFileSync(source, data);
    const steps: [string, "qcow2" | "vhd" | "raw"][] = [
      [at("convert.qcow2"), "qcow2"],
      [at("convert.vhd"), "vhd"],
      [at("convert-back.raw"), "raw"],
    ];
    let from = source;
    for (const [to, format] of steps) {
      const progress: number[] = [];
      await convertImage(from, to, {
        format,
        onProgress: (done, total) => progress.push(done / total),
      });
      expect(progress[0]).toBe(0);
      expect(progress.at(-1)).toBe(1);
      expect(progress.every((value, i) => i === 0 || value >= progress[i - 1])).toBe(true);
      const compare = qemuImg(
        "compare",
        "-f",
        format === "vhd" ? "vpc" : format,
        "-F",
        "raw",
        to,
        source,
      );
      expect(compare.stdout).toContain("Images are identical");
      from = to;
    }
    expectQemuCheckClean(at("convert.qcow2"));
    // Holes stay holes: the qcow2 holds the 4 MiB of data plus metadata, not 12 MiB.
    expect(statSync(at("convert.qcow2")).size).toBeLessThan(5 * MiB);
    expect(Buffer.compare(readFileSync(at("convert-back.raw")), data)).toBe(0);
  });

  it("imageInfo reports what qemu-img info reports", async () => {
    const path = at("info.qcow2");
    await createImage(path, { format: "qcow2", size: 5 * MiB, clusterSize: 8192 });
    const info = await imageInfo(path);
    const qemu = JSON.parse(qemuImg("info", "--output=json", path).stdout);
    expect(info.format).toBe(qemu.format);
    expect(info.virtualSize).toBe(qemu["virtual-size"]);
    expect(info.qcow2?.clusterSize).toBe(qemu["cluster-size"]);
    expect(info.qcow2?.version).toBe(3);
    expect(qemu["format-specific"].data.compat).toBe("1.1");
    expect(info.fileSize).toBe(statSync(path).size);
    expect(info.allocatedBytes).toBe(qemu["actual-size"]);
  });

  it("checkImage finds the leak and the missing reference qemu-img check finds", async () => {
    const path = at("check.qcow2");
    qemuImg("create", "-f", "qcow2", path, "1M");
    qemuIo("-f", "qcow2", "-c", "write -P 1 0 64k", path);
    const progress: number[] = [];
    expect(
      (await checkImage(path, { onProgress: (done, total) => progress.push(done / total) })).ok,
    ).toBe(true);
    expect(progress.at(-1)).toBe(1);
    // Bump the refcount of cluster 0 (the header) from 1 to 2: a leak for both tools.
    const bytes = readFileSync(path);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const refBlock = Number(view.getBigUint64(Number(view.getBigUint64(48))));
    view.setUint16(refBlock, 2);
    writeFileSync(path, bytes);
    const leak = await checkImage(path);
    expect(leak.ok).toBe(true);
    expect(leak.leaks).toBe(1);
    expect(qemuImg("check", path).stdout).toContain("1 leaked clusters");
    // Drop it to 0: an error for both.
    view.setUint16(refBlock, 0);
    writeFileSync(path, bytes);
    const broken = await checkImage(path);
    expect(broken.ok).toBe(false);
    expect(broken.errors[0]).toMatch(/cluster 0 has refcount 0 but 1 references/);
    expect(qemuImg("check", path).status).toBe(2);
  });
});
