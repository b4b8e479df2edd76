/**
 * fw_cfg against QEMU as the oracle (issue 9): an MBR
 * (guests/freestanding/fw-cfg.asm, nasm) that SeaBIOS boots from the same
 * disk image under qemu-system-i386 (`-M pc`, its fw_cfg with DMA) and on
 * Kumo's HVM PC (`@kumo/device-models`' `FwCfg`, filled by
 * src/runner/pc-platform.ts) probes the device and prints what it
 * answered on the 0xE9 debug console; the lines must agree: the signature
 * and ID, a read past an item's end, bit 14 of the key ignored, a key with
 * nothing, the items both PCs fill alike for one CPU (CPUs present, APIC ID
 * limit, NUMA, boot menu, graphics, IRQ0 override), the widths the
 * selector, data and DMA ports answer, and DMA transfers with their
 * control words (select, read with zeros past the end, skip, a refused
 * write, a buffer outside RAM, an access above 4 GiB, length 0, the file
 * directory's first selector).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freestanding, hasSeabiosAnd, mbrDiskImage, runUnderQemuAndKumo } from "./support/hvm";

describe.skipIf(!hasSeabiosAnd("nasm", "qemu-system-i386"))("fw_cfg against QEMU", () => {
  it("answers the port and DMA probes as QEMU's fw_cfg does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-fw-cfg-oracle-"));
    mbrDiskImage(freestanding("fw-cfg.asm"), dir);
    const run = await runUnderQemuAndKumo(dir, [{ vdev: "hda", file: "disk.img" }], "c");
    // isa-debug-exit ends QEMU with status (0x31 << 1) | 1.
    expect(run.qemuStatus).toBe((0x31 << 1) | 1);
    expect(run.kumoStatus).toBe((0x31 << 1) | 1);
    expect(run.qemu.length).toBe(24);
    expect(run.kumo).toEqual(run.qemu);
  }, 90_000);
});
