/**
 * The disks of an HVM domain's emulated IDE controller (xl.cfg `disk` entries
 * with vdev hda-hdd, which xl gives to QEMU's IDE as well as to the PV
 * backend: xl-disk-configuration(5), "vdev"). The IDE model reads and writes
 * synchronously, so a disk here is a raw image file used through
 * `fs.readSync`/`writeSync`; blkback's other formats (qcow2, vhd, qed) are
 * asynchronous and are refused with a clear error for now.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import type { IdeDisk } from "@kumo/device-models";
import type { DiskSpec } from "../config/disk";

/** A user's mistake in an IDE disk entry (format, device type) or an unreadable image. */
export class IdeDiskError extends Error {
  override readonly name = "IdeDiskError";
}

/** A raw image file as an IDE disk; bytes past a size that is not a multiple of 512 are not seen. */
export class RawFileDisk implements IdeDisk {
  readonly sectors: number;
  private fd: number;

  constructor(
    readonly path: string,
    readonly readOnly = false,
  ) {
    try {
      this.fd = openSync(path, readOnly ? "r" : "r+");
    } catch (error) {
      throw new IdeDiskError(`IDE disk ${path}: ${(error as Error).message}`);
    }
    this.sectors = Math.floor(fstatSync(this.fd).size / 512);
  }

  read(sector: number, buffer: Uint8Array): void {
    const got = readSync(this.fd, buffer, 0, buffer.length, sector * 512);
    if (got < buffer.length) buffer.fill(0, got);
  }

  write(sector: number, data: Uint8Array): void {
    writeSync(this.fd, data, 0, data.length, sector * 512);
  }

  flush(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** The IDE slot (0 hda .. 3 hdd) of a vdev, or -1 when it is not an IDE name. */
export function ideSlotOf(vdev: string): number {
  const match = /^hd([a-d])$/.exec(vdev);
  return match === null ? -1 : match[1].charCodeAt(0) - 97;
}

/** Opens the hd[a-d] disks of `disks` (paths relative to `cwd`) as [hda, hdb, hdc, hdd]. */
export function openIdeDisks(
  disks: readonly DiskSpec[],
  cwd: string,
): { readonly disks: (RawFileDisk | null)[]; close(): void } {
  const slots: (RawFileDisk | null)[] = [null, null, null, null];
  const close = () => {
    for (const disk of slots) disk?.close();
  };
  try {
    for (const spec of disks) {
      const slot = ideSlotOf(spec.vdev);
      if (slot < 0) continue;
      if (spec.devtype === "cdrom")
        throw new IdeDiskError(
          `disk ${spec.vdev}: ATAPI CD-ROMs are not emulated yet (only IDE hard disks)`,
        );
      if (spec.format !== "raw")
        throw new IdeDiskError(
          `disk ${spec.vdev}: the emulated IDE disk needs format=raw (got format=${spec.format})`,
        );
      slots[slot] = new RawFileDisk(resolve(cwd, spec.target), spec.access === "ro");
    }
  } catch (error) {
    close();
    throw error;
  }
  return { disks: slots, close };
}
