/**
 * xl.cfg `disk` entries on the HVM PC's IDE controller (src/node/ide-disk.ts):
 * which vdevs become which IDE slot (hda-hdd, as xl hands them to QEMU),
 * raw, qcow2 and VHD images (made by qemu-img, read back by qemu-img) read
 * and written through the controller, CD-ROM entries, the entries that
 * cannot be opened, and image I/O errors as the guest sees them.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DiskImage } from "@kumo/blkback";
import {
  AtaCommand,
  AtaError,
  AtaStatus,
  IdeCdrom,
  IdeController,
  PortBus,
} from "@kumo/device-models";
import { describe, expect, it } from "vitest";
import { parseDiskSpec } from "../src/config/disk";
import {
  IdeDiskError,
  ImageDisk,
  ideSlotOf,
  openIdeDevices,
  openIdeDisks,
  pvDisksOf,
} from "../src/node/ide-disk";
import { hasTool } from "./support/linux-guest";

function image(dir: string, name: string, sectors: number): void {
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) bytes.fill(s + 1, s * 512, s * 512 + 512);
  writeFileSync(join(dir, name), bytes);
}

describe("HVM IDE disks from xl.cfg", () => {
  it("maps hda-hdd to the four IDE slots and nothing else", () => {
    expect(["hda", "hdb", "hdc", "hdd", "hde", "hda1", "xvda", "sda"].map(ideSlotOf)).toEqual([
      0, 1, 2, 3, -1, -1, -1, -1,
    ]);
  });

  it("reads and writes a raw image through the controller; access=ro aborts writes", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-disk-"));
    image(dir, "a.img", 8);
    image(dir, "c.img", 4);
    const ide = openIdeDisks(
      [
        parseDiskSpec("format=raw, vdev=hdc, access=ro, target=c.img"),
        parseDiskSpec("format=qcow2, vdev=xvdb, target=elsewhere.qcow2"),
        parseDiskSpec("format=raw, vdev=hda, target=a.img"),
      ],
      dir,
    );
    expect(ide.disks.map((disk) => disk?.sectors ?? null)).toEqual([8, null, 4, null]);
    const controller = new IdeController({ disks: ide.disks, irq: () => {} });
    const bus = new PortBus();
    controller.register(bus);
    const command = (base: number, code: number, lba: number) => {
      bus.portWrite(base + 2, 1, 1);
      bus.portWrite(base + 3, 1, lba);
      bus.portWrite(base + 4, 1, 0);
      bus.portWrite(base + 5, 1, 0);
      bus.portWrite(base + 6, 1, 0xe0);
      bus.portWrite(base + 7, 1, code);
    };
    command(0x1f0, AtaCommand.WRITE_SECTORS, 2);
    for (let i = 0; i < 256; i++) bus.portWrite(0x1f0, 2, 0xa55a);
    bus.portWrite(0x1f7, 1, AtaCommand.FLUSH_CACHE);
    expect(bus.portRead(0x1f7, 1)).toBe(0x50);
    command(0x1f0, AtaCommand.READ_SECTORS, 3);
    expect(bus.portRead(0x1f0, 2)).toBe(0x0404);
    command(0x170, AtaCommand.READ_SECTORS, 3);
    expect(bus.portRead(0x170, 2)).toBe(0x0404);
    command(0x170, AtaCommand.WRITE_SECTORS, 0);
    expect(bus.portRead(0x171, 1)).toBe(AtaError.ABRT);
    ide.close();
    const a = readFileSync(join(dir, "a.img"));
    expect([a[2 * 512 - 1], a[2 * 512], a[2 * 512 + 1], a[3 * 512]]).toEqual([2, 0x5a, 0xa5, 4]);
  });

  it("refuses what it cannot open with IdeDiskError: other formats, missing and corrupt images", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-disk-"));
    const open = (spec: string) => () => openIdeDisks([parseDiskSpec(spec)], dir);
    expect(open("format=vhd, vdev=hda, target=x.vhd")).toThrow(
      /hda: the emulated IDE disk needs format=raw here \(got format=vhd; openIdeDevices opens qcow2 and vhd\)/,
    );
    expect(open("format=raw, vdev=hda, target=missing.img")).toThrow(IdeDiskError);
    const openAsync = (spec: string) => openIdeDevices([parseDiskSpec(spec)], dir);
    await expect(openAsync("format=qed, vdev=hda, target=x.qed")).rejects.toThrow(
      /disk hda: format=qed cannot be opened \(expected raw, qcow2 or vhd\)/,
    );
    await expect(openAsync("format=qcow2, vdev=hdb, target=missing.qcow2")).rejects.toThrow(
      /disk hdb: .*missing\.qcow2: image file does not exist/,
    );
    // A qcow2 header whose cluster bits are out of range (qcow2.txt: 9..21).
    const corrupt = new Uint8Array(4096);
    corrupt.set([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    corrupt[23] = 40;
    writeFileSync(join(dir, "corrupt.qcow2"), corrupt);
    const error = await openAsync("format=qcow2, vdev=hda, target=corrupt.qcow2").catch((e) => e);
    expect(error).toBeInstanceOf(IdeDiskError);
    expect(error.message).toMatch(/^disk hda: .*corrupt\.qcow2/);
  });

  it("opens CD-ROM entries as ATAPI drives: read-only over their image, or empty", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-disk-"));
    image(dir, "cd.iso", 16);
    const ide = await openIdeDevices(
      [
        parseDiskSpec("cd.iso,raw,hdc,cdrom"),
        parseDiskSpec("format=raw, vdev=hdd, devtype=cdrom, access=rw, target="),
      ],
      dir,
    );
    const [, , cd, empty] = ide.disks;
    expect(cd).toBeInstanceOf(IdeCdrom);
    expect((cd as IdeCdrom).medium?.readOnly).toBe(true);
    expect((cd as IdeCdrom).sectors).toBe(16);
    expect((empty as IdeCdrom).medium).toBeNull();
    await ide.close();
    expect(
      pvDisksOf([parseDiskSpec("cd.iso,raw,hdc,cdrom"), parseDiskSpec("a.img,raw,hda")]),
    ).toEqual([parseDiskSpec("a.img,raw,hda")]);
  });

  for (const [format, qemuFormat] of [
    ["qcow2", "qcow2"],
    ["vhd", "vpc"],
  ] as const) {
    it.skipIf(!hasTool("qemu-img"))(
      `reads and writes a ${format} image (qemu-img create) through the controller, BSY while the image works`,
      async () => {
        const dir = mkdtempSync(join(tmpdir(), "kumo-ide-disk-"));
        const file = join(dir, `disk.${format}`);
        execFileSync("qemu-img", ["create", "-q", "-f", qemuFormat, file, "4M"]);
        const ide = await openIdeDevices(
          [parseDiskSpec(`format=${format}, vdev=hda, target=disk.${format}`)],
          dir,
        );
        const irqs: boolean[] = [];
        const controller = new IdeController({
          disks: ide.disks,
          irq: (_irq, level) => irqs.push(level),
        });
        const bus = new PortBus();
        controller.register(bus);
        const idle = async () => {
          let status = bus.portRead(0x1f7, 1);
          let busy = 0;
          while (status & AtaStatus.BSY) {
            busy++;
            await new Promise((resolve) => setImmediate(resolve));
            status = bus.portRead(0x1f7, 1);
          }
          return { status, busy };
        };
        const command = (code: number, lba: number, count: number) => {
          bus.portWrite(0x1f2, 1, count);
          bus.portWrite(0x1f3, 1, lba);
          bus.portWrite(0x1f4, 1, 0);
          bus.portWrite(0x1f5, 1, 0);
          bus.portWrite(0x1f6, 1, 0xe0);
          bus.portWrite(0x1f7, 1, code);
        };
        command(AtaCommand.WRITE_SECTORS, 5, 2);
        for (let sector = 0; sector < 2; sector++) {
          for (let i = 0; i < 256; i++) bus.portWrite(0x1f0, 2, 0x0101 * (0x40 + sector));
          const after = await idle();
          expect(after.busy).toBeGreaterThan(0);
        }
        expect((await idle()).status).toBe(AtaStatus.DRDY | AtaStatus.DSC);
        bus.portWrite(0x1f7, 1, AtaCommand.FLUSH_CACHE);
        expect((await idle()).status).toBe(AtaStatus.DRDY | AtaStatus.DSC);
        command(AtaCommand.READ_SECTORS, 6, 1);
        // While BSY the data port floats and the task file ignores writes (QEMU ide_ioport_write).
        expect(bus.portRead(0x1f7, 1) & AtaStatus.BSY).toBe(AtaStatus.BSY);
        expect(bus.portRead(0x1f0, 2)).toBe(0xffff);
        bus.portWrite(0x1f3, 1, 0x77);
        const ready = await idle();
        expect(ready.status).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
        expect(bus.portRead(0x1f3, 1)).toBe(6);
        expect(bus.portRead(0x1f0, 2)).toBe(0x4141);
        expect(irqs.includes(true)).toBe(true);
        await ide.close();
        // qemu-img reads back what the guest wrote.
        const raw = join(dir, "disk.raw");
        execFileSync("qemu-img", ["convert", "-f", qemuFormat, "-O", "raw", file, raw]);
        const bytes = readFileSync(raw);
        expect([bytes[5 * 512 - 1], bytes[5 * 512], bytes[6 * 512], bytes[7 * 512]]).toEqual([
          0, 0x40, 0x41, 0,
        ]);
        if (format === "qcow2") execFileSync("qemu-img", ["check", "-q", file]);
      },
    );
  }

  it("reports an I/O error of the image to the guest as an ATA error (UNC on read, ABRT on write)", async () => {
    const failing: DiskImage = {
      format: "qcow2",
      size: 64 * 512,
      readOnly: false,
      discardZeroes: false,
      read: () => Promise.reject(new Error("EIO")),
      write: () => Promise.reject(new Error("EIO")),
      flush: () => Promise.resolve(),
      discard: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const controller = new IdeController({ disks: [new ImageDisk(failing)], irq: () => {} });
    const bus = new PortBus();
    controller.register(bus);
    const settle = async () => {
      while (bus.portRead(0x1f7, 1) & AtaStatus.BSY)
        await new Promise((resolve) => setImmediate(resolve));
    };
    bus.portWrite(0x1f2, 1, 1);
    bus.portWrite(0x1f6, 1, 0xe0);
    bus.portWrite(0x1f7, 1, AtaCommand.READ_SECTORS);
    await settle();
    expect([bus.portRead(0x1f7, 1), bus.portRead(0x1f1, 1)]).toEqual([
      AtaStatus.DRDY | AtaStatus.ERR,
      AtaError.UNC,
    ]);
    bus.portWrite(0x1f7, 1, AtaCommand.WRITE_SECTORS);
    for (let i = 0; i < 256; i++) bus.portWrite(0x1f0, 2, 0);
    await settle();
    expect([bus.portRead(0x1f7, 1), bus.portRead(0x1f1, 1)]).toEqual([
      AtaStatus.DRDY | AtaStatus.ERR,
      AtaError.ABRT,
    ]);
  });
});
