/**
 * PIIX3 bus-master DMA against QEMU as the oracle (issue 9): an MBR
 * (guests/freestanding/ide-dma.asm, nasm) booted by SeaBIOS finds BAR 4,
 * builds PRD tables and runs READ DMA (two regions; a table longer than the
 * transfer; one too short), WRITE DMA read back by PIO, and an ATAPI
 * READ(10) by DMA from a CD-ROM on the secondary channel, under
 * qemu-system-i386 and on Kumo's HVM PC; the lines it prints on the 0xE9
 * debug console must agree.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freestanding, hasSeabiosAnd, mbrDiskImage, runUnderQemuAndKumo } from "./support/hvm";

describe.skipIf(!hasSeabiosAnd("nasm", "xorriso", "qemu-system-i386"))(
  "IDE bus-master DMA against QEMU",
  () => {
    it("moves ATA and ATAPI data through PRD tables as QEMU's PIIX3 does", async () => {
      const dir = mkdtempSync(join(tmpdir(), "kumo-ide-dma-"));
      mbrDiskImage(freestanding("ide-dma.asm"), dir);
      mkdirSync(join(dir, "iso"));
      writeFileSync(join(dir, "iso", "a.txt"), "a file\n");
      execFileSync(
        "xorriso",
        ["-as", "mkisofs", "-quiet", "-V", "KUMO_CD", "-o", join(dir, "cd.iso"), join(dir, "iso")],
        { stdio: "ignore" },
      );
      // The program writes LBA 12 (WRITE DMA): QEMU runs on a copy of the disk.
      const run = await runUnderQemuAndKumo(
        dir,
        [
          { vdev: "hda", file: "disk.img" },
          { vdev: "hdc", file: "cd.iso", cdrom: true },
        ],
        "c",
      );
      expect(run.qemuStatus).toBe((0x21 << 1) | 1);
      expect(run.kumoStatus).toBe((0x21 << 1) | 1);
      expect(run.qemu).toContain("c=00 50 03 CD001");
      expect(run.qemu.length).toBe(12);
      expect(run.kumo).toEqual(run.qemu);
    }, 120_000);
  },
);
