import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createGuestMemory } from "@kumo/mmu";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  applyPvhEntryState,
  buildPvhBoot,
  crc32,
  DomainBuildError,
  decompressXz,
  findPhys32Entry,
  guestBootMemory,
  KernelImageError,
  PvhSpecialPages,
  parseElf,
  ramBootMemory,
  unpackKernelImage,
} from "../src/index";
import {
  buildTestKernel,
  cacheDir,
  linuxXenHeaderDir,
  readelfSegments,
  run,
  runC,
} from "./support/oracles";

const kernels: Record<32 | 64, Uint8Array> = {} as Record<32 | 64, Uint8Array>;

beforeAll(() => {
  kernels[32] = buildTestKernel(32);
  kernels[64] = buildTestKernel(64);
});

describe("ELF loader", () => {
  for (const bits of [32, 64] as const) {
    it(`reads the program headers of an ELF${bits} kernel as readelf does`, () => {
      const elf = parseElf(kernels[bits]);
      expect(elf.bits).toBe(bits);
      expect(elf.machine).toBe(bits === 32 ? 3 : 62);
      const expected = readelfSegments(join(cacheDir, `kernel${bits}`)).filter(
        (s) => s.type === "LOAD",
      );
      expect(
        elf.segments.map(
          ({ fileOffset, virtualAddress, physicalAddress, fileSize, memorySize }) => ({
            type: "LOAD",
            offset: fileOffset,
            virtualAddress,
            physicalAddress,
            fileSize,
            memorySize,
          }),
        ),
      ).toEqual(expected);
      expect(elf.segments.some((segment) => segment.memorySize > segment.fileSize)).toBe(true);
    });

    it(`finds XEN_ELFNOTE_PHYS32_ENTRY with a ${bits / 8}-byte descriptor`, () => {
      const elf = parseElf(kernels[bits]);
      const note = elf.notes.find((n) => n.name === "Xen" && n.type === 18);
      expect(note?.descriptor.length).toBe(bits / 8);
      expect(findPhys32Entry(elf)).toBe(0x100000);
    });
  }

  it("says what is missing when a kernel has no PVH note", () => {
    const elf = parseElf(buildTestKernel(32, { note: false }));
    expect(() => findPhys32Entry(elf)).toThrow(
      "no XEN_ELFNOTE_PHYS32_ENTRY note: this kernel was built without CONFIG_XEN_PVH",
    );
  });

  it("rejects what is not an ELF executable", () => {
    expect(() => parseElf(new Uint8Array(100))).toThrow(KernelImageError);
    const relocatable = new Uint8Array(readFileSync(join(cacheDir, "kernel32.o")));
    expect(() => parseElf(relocatable)).toThrow(/ET_EXEC/);
  });

  it("never throws anything but KernelImageError on corrupted kernels (property)", () => {
    const original = kernels[64];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 16,
        }),
        fc.nat(original.length),
        (patches, length) => {
          const image = original.slice(0, Math.max(length, 4));
          for (const [offset, value] of patches) if (offset < image.length) image[offset] = value;
          try {
            const elf = parseElf(image);
            findPhys32Entry(elf);
            buildPvhBoot(ramBootMemory(new Uint8Array(4 << 20)), { kernel: elf, cmdline: "x" });
          } catch (error) {
            if (!(error instanceof KernelImageError) && !(error instanceof DomainBuildError))
              throw error;
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});

/** Reads hvm_start_info and what it points to with Linux's own header, from a RAM dump. */
function startInfoOracle(ram: Uint8Array, address: number): string {
  const dump = join(cacheDir, "ram.bin");
  writeFileSync(dump, ram);
  const headers = linuxXenHeaderDir();
  return runC(
    "start-info-oracle",
    `#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include "${headers}/hvm/start_info.h"
int main(int argc, char **argv) {
  FILE *f = fopen(argv[1], "rb");
  static unsigned char ram[64 << 20];
  size_t n = fread(ram, 1, sizeof ram, f);
  unsigned long at = strtoul(argv[2], 0, 0);
  struct hvm_start_info *si = (void *)(ram + at);
  printf("size %zu magic %#x version %u flags %u nr_modules %u\\n", sizeof *si, si->magic, si->version, si->flags, si->nr_modules);
  printf("cmdline %s\\n", (char *)ram + si->cmdline_paddr);
  printf("rsdp %llu memmap_entries %u\\n", (unsigned long long)si->rsdp_paddr, si->memmap_entries);
  struct hvm_memmap_table_entry *m = (void *)(ram + si->memmap_paddr);
  for (unsigned i = 0; i < si->memmap_entries; i++)
    printf("memmap %#llx %#llx %u\\n", (unsigned long long)m[i].addr, (unsigned long long)m[i].size, m[i].type);
  struct hvm_modlist_entry *mod = (void *)(ram + si->modlist_paddr);
  for (unsigned i = 0; i < si->nr_modules; i++)
    printf("module %#llx %#llx %llu\\n", (unsigned long long)mod[i].paddr, (unsigned long long)mod[i].size, (unsigned long long)mod[i].cmdline_paddr);
  return n == 0;
}
`,
    [dump, String(address)],
  );
}

describe("PVH boot layout", () => {
  for (const bits of [32, 64] as const) {
    it(`loads an ELF${bits} kernel, initrd and hvm_start_info that Linux's header reads back`, () => {
      const ram = new Uint8Array(8 << 20).fill(0xaa);
      const ramdisk = new Uint8Array(100_000).map((_, i) => i * 7);
      const layout = buildPvhBoot(ramBootMemory(ram), {
        kernel: kernels[bits],
        ramdisk,
        cmdline: "console=hvc0 earlyprintk=xen",
      });
      const elf = parseElf(kernels[bits]);
      for (const segment of elf.segments) {
        const loaded = ram.subarray(
          segment.physicalAddress,
          segment.physicalAddress + segment.memorySize,
        );
        expect(loaded.subarray(0, segment.fileSize)).toEqual(
          kernels[bits].subarray(segment.fileOffset, segment.fileOffset + segment.fileSize),
        );
        expect(loaded.subarray(segment.fileSize).every((byte) => byte === 0)).toBe(true);
      }
      expect(layout.entry).toBe(0x100000);
      expect(layout.bits).toBe(bits);
      expect(layout.ramdisk?.address ?? 0).toBe(
        Math.floor((ram.length - ramdisk.length) / 4096) * 4096,
      );
      expect(layout.ramdisk!.address % 4096).toBe(0);
      expect(
        ram.subarray(layout.ramdisk!.address, layout.ramdisk!.address + ramdisk.length),
      ).toEqual(ramdisk);
      expect(layout.startInfoAddress).toBeGreaterThan(0);
      expect(layout.startInfoAddress + 256).toBeLessThan(layout.kernelStart);

      const report = startInfoOracle(ram, layout.startInfoAddress);
      expect(report).toBe(
        [
          "size 56 magic 0x336ec578 version 1 flags 0 nr_modules 1",
          "cmdline console=hvc0 earlyprintk=xen",
          "rsdp 0 memmap_entries 2",
          `memmap 0 0x800000 1`,
          `memmap ${`0x${(PvhSpecialPages.firstGfn * 4096).toString(16)}`} 0x8000 2`,
          `module 0x${layout.ramdisk!.address.toString(16)} 0x${ramdisk.length.toString(16)} 0`,
          "",
        ].join("\n"),
      );
    });
  }

  it("describes the PVH entry vCPU state and applies it to a CPU", () => {
    const layout = buildPvhBoot(ramBootMemory(new Uint8Array(4 << 20)), { kernel: kernels[32] });
    expect(layout.vcpu).toMatchObject({
      eip: 0x100000,
      ebx: layout.startInfoAddress,
      cr0: 0x11,
      cr4: 0,
      efer: 0,
    });
    expect(layout.vcpu.eflags & 0x200).toBe(0);
    expect(layout.vcpu.cs).toMatchObject({ base: 0, limit: 0xffffffff });
    expect(layout.vcpu.tr).toMatchObject({ base: 0, limit: 0x67 });
    const calls: number[] = [];
    const cpu = {
      regs: new Int32Array(16),
      setFlatProtectedMode: (entry: number) => calls.push(entry),
    };
    applyPvhEntryState(cpu, layout.vcpu);
    expect(calls).toEqual([0x100000]);
    expect(cpu.regs[3]).toBe(layout.startInfoAddress);
    expect(layout.modlistAddress).toBe(0);
  });

  it("writes into @kumo/mmu guest memory", () => {
    const memory = createGuestMemory({ ramSize: 4 << 20 });
    const layout = buildPvhBoot(guestBootMemory(memory), { kernel: kernels[64], cmdline: "quiet" });
    expect(memory.read32(layout.startInfoAddress)).toBe(0x336ec578);
    expect(memory.read8(layout.cmdlineAddress)).toBe("q".charCodeAt(0));
    expect(memory.read32(0x100000)).toBe(
      new DataView(kernels[64].buffer).getUint32(
        parseElf(kernels[64]).segments[0].fileOffset,
        true,
      ),
    );
  });

  it("explains what is too small", () => {
    expect(() =>
      buildPvhBoot(ramBootMemory(new Uint8Array(1 << 20)), { kernel: kernels[32] }),
    ).toThrow(/has only 1 MiB of RAM; give it at least 2 MiB/);
    expect(() =>
      buildPvhBoot(ramBootMemory(new Uint8Array(2 << 20)), {
        kernel: kernels[32],
        ramdisk: new Uint8Array(2 << 20),
      }),
    ).toThrow(/ramdisk \(2 MiB\) does not fit/);
    expect(() =>
      buildPvhBoot(ramBootMemory(new Uint8Array(2 << 20)), {
        kernel: kernels[32],
        cmdline: "x".repeat(3000),
      }),
    ).toThrow(/at most 2047/);
  });
});

describe("xz decoder", () => {
  const sample = () => new Uint8Array(readFileSync("/usr/bin/gzip"));
  const text = new TextEncoder().encode("Kumo boots Linux. ".repeat(5000));
  const cases: [string, string[], () => Uint8Array][] = [
    [
      "x86 BCJ + LZMA2 with CRC32, as Linux's xz_wrap.sh",
      ["--check=crc32", "--x86", "--lzma2=dict=1MiB"],
      sample,
    ],
    ["LZMA2 with CRC64", ["--check=crc64", "-6"], sample],
    ["no check, text", ["--check=none", "-1"], () => text],
    [
      "several blocks",
      ["--check=crc32", "--block-size=20000", "--x86", "--lzma2=preset=6"],
      sample,
    ],
    ["lc=0 lp=2 pb=0", ["--check=crc32", "--lzma2=lc=0,lp=2,pb=0"], sample],
    ["empty input", ["--check=crc32"], () => new Uint8Array(0)],
  ];
  for (const [name, args, input] of cases) {
    it(`decodes what xz(1) writes: ${name}`, () => {
      const original = input();
      const compressed = new Uint8Array(run("xz", ["-c", "--format=xz", ...args], original));
      expect(decompressXz(compressed)).toEqual(original);
    });
  }

  it("decodes incompressible data stored in uncompressed LZMA2 chunks", () => {
    const random = new Uint8Array(200_000);
    let seed = 12345;
    for (let i = 0; i < random.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      random[i] = seed >>> 24;
    }
    const compressed = new Uint8Array(run("xz", ["-c", "--check=crc32"], random));
    expect(decompressXz(compressed)).toEqual(random);
  });

  it("agrees with the CRC32 of gzip's trailer", () => {
    const data = sample();
    const gz = run("gzip", ["-c"], data);
    expect(crc32(data)).toBe(gz.readUInt32LE(gz.length - 8));
  });

  it("checks the index: a block header size byte turned into the index indicator is corruption", () => {
    const original = text.subarray(0, 20000);
    const damaged = new Uint8Array(
      run("xz", ["-c", "--check=crc32", "--x86", "--lzma2=preset=6"], original),
    );
    // Offset 12 is the first block header's size byte; 0x02 ^ 0x02 = 0x00, the index indicator.
    damaged[12] ^= damaged[12];
    expect(() => decompressXz(damaged)).toThrow(KernelImageError);
  });

  it("detects corruption with a KernelImageError, never another exception (property)", () => {
    const original = text.subarray(0, 20000);
    const compressed = new Uint8Array(
      run("xz", ["-c", "--check=crc32", "--x86", "--lzma2=preset=6"], original),
    );
    fc.assert(
      fc.property(
        fc.nat(compressed.length - 1),
        fc.integer({ min: 1, max: 255 }),
        (offset, flip) => {
          const damaged = compressed.slice();
          damaged[offset] ^= flip;
          try {
            const out = decompressXz(damaged);
            // Some bytes (index, footer, padding after the stream) are not read by the decoder.
            expect(out).toEqual(original);
          } catch (error) {
            if (!(error instanceof KernelImageError)) throw error;
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** Builds a minimal bzImage: a setup header with the boot protocol's payload fields. */
function makeBzImage(payload: Uint8Array, setupSectors = 4): Uint8Array {
  // setup_sects 0 means 4 (boot.rst).
  const protectedModeStart = ((setupSectors || 4) + 1) * 512;
  const payloadOffset = 0x3c0; // the decompressor stub before the payload
  const image = new Uint8Array(protectedModeStart + payloadOffset + payload.length + 64);
  const view = new DataView(image.buffer);
  image[0x1f1] = setupSectors;
  image.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  view.setUint16(0x206, 0x020f, true);
  view.setUint32(0x248, payloadOffset, true);
  view.setUint32(0x24c, payload.length, true);
  image.set(payload, protectedModeStart + payloadOffset);
  return image;
}

describe("kernel image unpacking", () => {
  it("passes an ELF through", async () => {
    expect(await unpackKernelImage(kernels[32])).toMatchObject({ kind: "elf" });
  });

  it("inflates a gzip-compressed vmlinux", async () => {
    const unpacked = await unpackKernelImage(
      new Uint8Array(run("gzip", ["-c", "-9"], kernels[64])),
    );
    expect(unpacked.kind).toBe("gzip");
    expect(unpacked.elf).toEqual(kernels[64]);
  });

  it("unpacks a bzImage with a gzip payload", async () => {
    const payload = new Uint8Array(run("gzip", ["-n", "-9", "-c"], kernels[32]));
    const unpacked = await unpackKernelImage(makeBzImage(payload));
    expect(unpacked.kind).toBe("bzImage+gzip");
    expect(unpacked.elf).toEqual(kernels[32]);
  });

  it("inflates gzip without Node's zlib too (DecompressionStream, as in a browser)", async () => {
    const host = process as { getBuiltinModule?: unknown };
    const saved = host.getBuiltinModule;
    host.getBuiltinModule = undefined;
    try {
      const payload = new Uint8Array(run("gzip", ["-n", "-9", "-c"], kernels[32]));
      expect((await unpackKernelImage(makeBzImage(payload))).elf).toEqual(kernels[32]);
      const corrupt = payload.slice();
      corrupt.fill(0x55, 20, 200);
      await expect(unpackKernelImage(makeBzImage(corrupt))).rejects.toThrow(/corrupt gzip data/);
    } finally {
      host.getBuiltinModule = saved;
    }
  });

  it("names corrupt gzip data", async () => {
    const payload = new Uint8Array(run("gzip", ["-n", "-9", "-c"], kernels[32]));
    payload.fill(0x55, 20, 200);
    await expect(unpackKernelImage(makeBzImage(payload))).rejects.toThrow(/^corrupt gzip data: /);
  });

  it("unpacks a bzImage with an xz payload and Linux's appended size", async () => {
    const xz = new Uint8Array(
      run("xz", ["-c", "--check=crc32", "--x86", "--lzma2=dict=32MiB"], kernels[32]),
    );
    const payload = new Uint8Array(xz.length + 4);
    payload.set(xz);
    new DataView(payload.buffer).setUint32(xz.length, kernels[32].length, true);
    const unpacked = await unpackKernelImage(makeBzImage(payload, 0));
    expect(unpacked.kind).toBe("bzImage+xz");
    expect(unpacked.elf).toEqual(kernels[32]);
  });

  it("names an unsupported bzImage compression", async () => {
    const zstd = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4]);
    await expect(unpackKernelImage(makeBzImage(zstd))).rejects.toThrow(
      /zstd \(CONFIG_KERNEL_ZSTD\)/,
    );
  });

  it("rejects a file that is no kernel", async () => {
    await expect(unpackKernelImage(new TextEncoder().encode("hello"))).rejects.toThrow(
      KernelImageError,
    );
  });
});
