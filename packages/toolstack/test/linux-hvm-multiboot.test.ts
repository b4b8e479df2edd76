/**
 * Multiboot (v1) direct boot on the HVM PC (src/builder/multiboot.ts): the
 * test kernel guests/freestanding/multiboot-info.asm
 * (nasm, a.out-kludge header) prints what the boot information says through
 * the 0xE9 debug console and exits through port 0xF4. (Named linux-hvm* for
 * this work's test-file pattern; no Linux is involved.)
 */
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { pcE820 } from "../src/builder/bzimage-boot";
import { KernelImageError } from "../src/builder/errors";
import { buildMultibootBoot, findMultibootHeader } from "../src/builder/multiboot";
import { ramBootMemory } from "../src/builder/pvh";
import { parseDomainConfig } from "../src/config/domain-config";
import { assemble, freestanding, runHvmUntilShutdown } from "./support/hvm";
import { hasTool } from "./support/linux-guest";

const source = freestanding("multiboot-info.asm");

describe.skipIf(!hasTool("nasm"))("Multiboot direct boot", () => {
  it("passes the command line, a module and the memory map; the kernel exits through 0xf4", async () => {
    const config = parseDomainConfig(
      'name = "mb"\ntype = "hvm"\nmemory = 16\nkernel = "kernel.bin"\nramdisk = "payload.txt"\ncmdline = "hello multiboot"\n',
    );
    const { runnable, debugcon } = await runHvmUntilShutdown(
      new Hypervisor(),
      config,
      { kernel: assemble(source), ramdisk: new TextEncoder().encode("module bytes") },
      {},
      30_000,
    );
    expect(debugcon).toBe(
      "cmdline: hello multiboot\nmodules: 1\nmodule 0: payload.txt=module bytes\nloader: Kumo\n",
    );
    expect(runnable.exitStatus).toBe((0x21 << 1) | 1);
  }, 60_000);

  it("writes the boot information of the specification's layout", () => {
    const ram = new Uint8Array(16 << 20);
    const layout = buildMultibootBoot(ramBootMemory(ram), {
      kernel: assemble(source),
      cmdline: "x",
      modules: [{ data: new Uint8Array(5000), cmdline: "m" }],
      memoryMap: pcE820(16 << 20),
    });
    const info = new DataView(ram.buffer, layout.infoAddress);
    expect(info.getUint32(0, true)).toBe(0x24d); // mem, cmdline, mods, mmap, loader name
    expect(info.getUint32(4, true)).toBe(0x9fc00 / 1024); // mem_lower KiB
    expect(info.getUint32(8, true)).toBe((15 << 20) / 1024); // mem_upper KiB
    expect(layout.modules[0].address % 4096).toBe(0);
    expect(layout.modules[0].address).toBeGreaterThanOrEqual(layout.kernelEnd);
    const mmap = new DataView(ram.buffer, info.getUint32(48, true));
    expect(info.getUint32(44, true)).toBe(24 * 5);
    expect([
      mmap.getUint32(0, true),
      mmap.getUint32(4, true),
      mmap.getUint32(12, true),
      mmap.getUint32(20, true),
    ]).toEqual([20, 0, 0x9fc00, 1]);
  });

  it("refuses images without a valid header", () => {
    const image = new Uint8Array(64);
    new DataView(image.buffer).setUint32(8, 0x1badb002, true);
    expect(findMultibootHeader(image)).toBe(-1); // checksum wrong
    expect(() =>
      buildMultibootBoot(ramBootMemory(new Uint8Array(4 << 20)), { kernel: image, memoryMap: [] }),
    ).toThrow(KernelImageError);
  });
});
