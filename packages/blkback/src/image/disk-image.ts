import { DiskImageError } from "./errors";

export type ImageFormat = "raw" | "qcow2" | "vhd";

/** The bytes of one sector: blkif and every image format count in 512-byte units. */
export const SECTOR_SIZE = 512;

/**
 * One virtual disk, whatever its format. Offsets and lengths are bytes and
 * must be multiples of 512 (blkif sectors); the disk is `size` bytes long.
 * Operations on one image may be issued concurrently; each format serialises
 * what must be serialised (metadata updates).
 */
export interface DiskImage {
  readonly format: ImageFormat;
  /** Virtual size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `buffer` from the disk at `offset`. */
  read(buffer: Uint8Array, offset: number): Promise<void>;
  /** Writes `data` to the disk at `offset`. */
  write(data: Uint8Array, offset: number): Promise<void>;
  /** Makes every completed write durable (fsync of the image file). */
  flush(): Promise<void>;
  /**
   * Tells the image the range's contents are no longer needed. The range may
   * read back as zeros or as its old contents afterwards (blkif DISCARD
   * promises nothing more), see `discardZeroes`.
   */
  discard(offset: number, length: number): Promise<void>;
  /** Whether a discarded range is guaranteed to read back as zeros. */
  readonly discardZeroes: boolean;
  /** Closes the image (and its backing chain); further calls fail. */
  close(): Promise<void>;
}

/** Checks a request against the disk; the typed errors name the disk and the range. */
export function checkRange(
  image: { size: number; readOnly: boolean },
  name: string,
  offset: number,
  length: number,
  write: boolean,
): void {
  if (offset % SECTOR_SIZE !== 0 || length % SECTOR_SIZE !== 0 || offset < 0) {
    throw new DiskImageError(
      "unaligned",
      `${name}: request at byte ${offset} of length ${length} is not a multiple of ${SECTOR_SIZE} bytes`,
    );
  }
  if (offset + length > roundUp(image.size, SECTOR_SIZE)) {
    throw new DiskImageError(
      "out-of-range",
      `${name}: request [${offset}, ${offset + length}) goes past the end of the ${image.size}-byte disk`,
    );
  }
  if (write && image.readOnly) {
    throw new DiskImageError("read-only", `${name}: the image is open read-only`);
  }
}

export function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}

/**
 * Runs async critical sections one after another (a format's metadata
 * updates: two writes to one unallocated cluster must not both allocate it).
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section, section);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
