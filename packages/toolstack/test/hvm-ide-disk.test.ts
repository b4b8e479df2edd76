/**
 * xl.cfg `disk` entries on the HVM PC's IDE controller (src/node/ide-disk.ts):
 * which vdevs become which IDE slot (hda-hdd, as xl hands them to QEMU),
 * raw image files read and written through the controller, and the
 * entries the synchronous IDE model refuses.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AtaCommand, AtaError, IdeController, PortBus } from "@kumo/device-models";
import { describe, expect, it } from "vitest";
import { parseDiskSpec } from "../src/config/disk";
import { IdeDiskError, ideSlotOf, openIdeDisks } from "../src/node/ide-disk";

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

  it("refuses formats other than raw, CD-ROMs and missing files with IdeDiskError", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-disk-"));
    const open = (spec: string) => () => openIdeDisks([parseDiskSpec(spec)], dir);
    expect(open("format=vhd, vdev=hda, target=x.vhd")).toThrow(
      /hda: the emulated IDE disk needs format=raw \(got format=vhd\)/,
    );
    expect(open("format=raw, vdev=hdc, devtype=cdrom, target=x.iso")).toThrow(/ATAPI CD-ROMs/);
    expect(open("format=raw, vdev=hda, target=missing.img")).toThrow(IdeDiskError);
  });
});
