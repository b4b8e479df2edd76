/**
 * The disks and CD-ROM drives of an HVM domain's emulated IDE controller
 * (xl.cfg `disk` entries with vdev hda-hdd, which xl gives to QEMU's IDE as
 * well as to the PV backend: xl-disk-configuration(5), "vdev";
 * `devtype=cdrom` makes the slot an ATAPI CD-ROM drive, read-only, empty
 * when the target is "").
 *
 * A raw image is read and written synchronously (`fs.readSync`/`writeSync`:
 * the guest never sees BSY, and runs are reproducible); qcow2 and VHD
 * images go through `@kumo/blkback`'s `DiskImage`, whose promises the IDE
 * model waits for with BSY set. `openIdeDevices` opens every format;
 * `openIdeDisks` is its synchronous form for raw images only.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import type { DiskImage, ImageFormat } from "@kumo/blkback";
import { openImage } from "@kumo/blkback/node";
import { IdeCdrom, type IdeDevice, type IdeDisk } from "@kumo/device-models";
import type { DiskSpec } from "../config/disk";

/** A user's mistake in an IDE disk entry (format, device type) or an unreadable or corrupt image. */
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

/**
 * A `@kumo/blkback` disk image (qcow2, VHD, raw) as an IDE disk: each
 * operation is the image's promise, which the controller waits for with BSY
 * set; a rejected promise is an ATA error for the guest.
 */
export class ImageDisk implements IdeDisk {
  readonly sectors: number;
  readonly readOnly: boolean;

  constructor(readonly image: DiskImage) {
    this.sectors = Math.floor(image.size / 512);
    this.readOnly = image.readOnly;
  }

  read(sector: number, buffer: Uint8Array): Promise<void> {
    return this.image.read(buffer, sector * 512);
  }

  write(sector: number, data: Uint8Array): Promise<void> {
    return this.image.write(data, sector * 512);
  }

  flush(): Promise<void> {
    return this.image.flush();
  }
}

/** The IDE slot (0 hda .. 3 hdd) of a vdev, or -1 when it is not an IDE name. */
export function ideSlotOf(vdev: string): number {
  const match = /^hd([a-d])$/.exec(vdev);
  return match === null ? -1 : match[1].charCodeAt(0) - 97;
}

/** The formats `openIdeDevices` opens (blkback's); qcow (v1) and qed have no reader in Kumo. */
const imageFormats: Readonly<Record<string, ImageFormat | undefined>> = {
  raw: "raw",
  qcow2: "qcow2",
  vhd: "vhd",
};

export interface IdeDevices {
  /** [hda, hdb, hdc, hdd] for `createHvmDomain`'s `ideDisks`. */
  readonly disks: (IdeDevice | null)[];
  /** The blkback images opened for qcow2 and VHD entries, by vdev (the PV backend can share them). */
  readonly images: ReadonlyMap<string, DiskImage>;
  /** Closes the image files (after the domain is gone). */
  close(): Promise<void>;
}

/**
 * Opens the hd[a-d] entries of `disks` (paths relative to `cwd`) as
 * [hda, hdb, hdc, hdd]: raw images as `RawFileDisk`, qcow2 and VHD images
 * through `@kumo/blkback` (`ImageDisk`), CD-ROM entries as `IdeCdrom` over
 * their image (any of these formats) or empty. A missing, corrupt or
 * unsupported image is an `IdeDiskError` naming the entry and the file.
 */
export async function openIdeDevices(disks: readonly DiskSpec[], cwd: string): Promise<IdeDevices> {
  const slots: (IdeDevice | null)[] = [null, null, null, null];
  const raw: RawFileDisk[] = [];
  const images = new Map<string, DiskImage>();
  const close = async () => {
    for (const disk of raw) disk.close();
    for (const image of images.values()) await image.close().catch(() => {});
  };
  try {
    for (const spec of disks) {
      const slot = ideSlotOf(spec.vdev);
      if (slot < 0) continue;
      const cdrom = spec.devtype === "cdrom";
      if (cdrom && spec.target === "") {
        slots[slot] = new IdeCdrom(null);
        continue;
      }
      const format = imageFormats[spec.format];
      if (format === undefined)
        throw new IdeDiskError(
          `disk ${spec.vdev}: format=${spec.format} cannot be opened (expected raw, qcow2 or vhd)`,
        );
      // A CD-ROM is read-only whatever `access` says (xl-disk-configuration(5): cdrom implies ro).
      const readOnly = cdrom || spec.access === "ro";
      const path = resolve(cwd, spec.target);
      let disk: IdeDisk;
      if (format === "raw") {
        const file = new RawFileDisk(path, readOnly);
        raw.push(file);
        disk = file;
      } else {
        let image: DiskImage;
        try {
          image = await openImage(path, { format, readOnly });
        } catch (error) {
          // blkback's DiskImageError names the file and what is wrong with it (corrupt, truncated, ...).
          const message = (error as Error).message;
          throw new IdeDiskError(
            `disk ${spec.vdev}: ${message.includes(path) ? message : `${path}: ${message}`}`,
          );
        }
        images.set(spec.vdev, image);
        disk = new ImageDisk(image);
      }
      slots[slot] = cdrom ? new IdeCdrom(disk) : disk;
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { disks: slots, images, close };
}

/**
 * The synchronous form of `openIdeDevices` for raw images: disks and
 * CD-ROM drives whose entries say format=raw; other formats are refused
 * (they need `openIdeDevices`).
 */
export function openIdeDisks(
  disks: readonly DiskSpec[],
  cwd: string,
): { readonly disks: (IdeDevice | null)[]; close(): void } {
  const slots: (IdeDevice | null)[] = [null, null, null, null];
  const files: RawFileDisk[] = [];
  const close = () => {
    for (const file of files) file.close();
  };
  try {
    for (const spec of disks) {
      const slot = ideSlotOf(spec.vdev);
      if (slot < 0) continue;
      const cdrom = spec.devtype === "cdrom";
      if (cdrom && spec.target === "") {
        slots[slot] = new IdeCdrom(null);
        continue;
      }
      if (spec.format !== "raw")
        throw new IdeDiskError(
          `disk ${spec.vdev}: the emulated IDE disk needs format=raw here (got format=${spec.format}; openIdeDevices opens qcow2 and vhd)`,
        );
      const file = new RawFileDisk(resolve(cwd, spec.target), cdrom || spec.access === "ro");
      files.push(file);
      slots[slot] = cdrom ? new IdeCdrom(file) : file;
    }
  } catch (error) {
    close();
    throw error;
  }
  return { disks: slots, close };
}

/**
 * The PV view of an HVM domain's disks: CD-ROM entries stay emulated only
 * (Kumo's blkback serves disks), and an image the IDE controller opened is
 * shared with the PV backend rather than opened twice (one qcow2 metadata
 * cache per file); the IDE side closes it.
 */
export function sharedImageOpener(
  devices: IdeDevices,
): (disk: DiskSpec, open: (disk: DiskSpec) => Promise<DiskImage>) => Promise<DiskImage> {
  return async (disk, open) => {
    const image = devices.images.get(disk.vdev);
    if (image === undefined) return open(disk);
    // The backend closes its image when it stops; the IDE controller's stays open until the domain ends.
    const shared: DiskImage = {
      format: image.format,
      size: image.size,
      readOnly: image.readOnly,
      discardZeroes: image.discardZeroes,
      read: (buffer, offset) => image.read(buffer, offset),
      write: (data, offset) => image.write(data, offset),
      flush: () => image.flush(),
      discard: (offset, length) => image.discard(offset, length),
      close: async () => {},
    };
    return shared;
  };
}

/** The disk entries the PV backends serve for an HVM domain: all but CD-ROMs. */
export function pvDisksOf(disks: readonly DiskSpec[]): DiskSpec[] {
  return disks.filter((disk) => disk.devtype !== "cdrom");
}
