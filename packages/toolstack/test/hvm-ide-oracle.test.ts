/**
 * The IDE disk against QEMU as the oracle (issue 9): the same 4 MiB disk
 * image, whose MBR (guests/freestanding/ata-identify.asm,
 * nasm) drives the primary master by hand after SeaBIOS booted it, runs
 * under qemu-system-i386 (PIIX3 IDE, its SeaBIOS) and on Kumo's HVM PC
 * (Debian's SeaBIOS); the lines it prints on the 0xE9 debug console must
 * agree: IDENTIFY DEVICE's geometry, multiple-block and LBA28/LBA48 words,
 * the status and error after IDENTIFY, IDENTIFY PACKET DEVICE (ABRT) and
 * SET FEATURES, and the task file after a software reset.
 *
 * One known difference is left out: a READ SECTORS past the end reports
 * IDNF here, as ATA/ATAPI-6 8.27 says, where QEMU reports ABRT; only its
 * status byte is compared.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freestanding, hasSeabiosAnd, mbrDiskImage, runUnderQemuAndKumo } from "./support/hvm";

/** The lines to compare: the 'r' line keeps its status byte only. */
const comparable = (lines: string[]) =>
  lines.map((line) => (line.startsWith("r=") ? line.slice(0, 4) : line));

describe.skipIf(!hasSeabiosAnd("nasm", "qemu-system-i386"))("IDE disk against QEMU", () => {
  it("answers IDENTIFY, aborts, SET FEATURES and SRST as QEMU's IDE disk does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-oracle-"));
    mbrDiskImage(freestanding("ata-identify.asm"), dir);
    const run = await runUnderQemuAndKumo(dir, [{ vdev: "hda", file: "disk.img" }], "c");
    // isa-debug-exit ends QEMU with status (0x21 << 1) | 1.
    expect(run.qemuStatus).toBe((0x21 << 1) | 1);
    expect(run.kumoStatus).toBe((0x21 << 1) | 1);
    expect(run.qemu.length).toBe(25);
    expect(comparable(run.kumo)).toEqual(comparable(run.qemu));
  }, 90_000);
});
