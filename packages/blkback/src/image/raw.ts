import type { ByteStore } from "./byte-store";
import { checkRange, type DiskImage } from "./disk-image";
import { DiskImageError } from "./errors";

/**
 * A raw image: the disk's bytes are the file's bytes. Created sparse (a
 * truncate), so unwritten ranges take no space on file systems with holes.
 */
export class RawImage implements DiskImage {
  readonly format = "raw";
  /**
   * Discard is accepted and ignored: punching a hole needs fallocate(2),
   * which Node's fs does not expose, and writing zeros would allocate the
   * very space the guest gives back.
   */
  readonly discardZeroes = false;
  private closed = false;

  private constructor(
    private readonly store: ByteStore,
    readonly size: number,
    readonly readOnly: boolean,
  ) {}

  static async open(store: ByteStore, readOnly = store.readOnly): Promise<RawImage> {
    return new RawImage(store, await store.size(), readOnly || store.readOnly);
  }

  static async create(store: ByteStore, size: number): Promise<void> {
    await store.truncate(size);
  }

  async read(buffer: Uint8Array, offset: number): Promise<void> {
    this.check(offset, buffer.length, false);
    await this.store.read(buffer, offset);
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    this.check(offset, data.length, true);
    await this.store.write(data, offset);
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.store.flush();
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed)
      throw new DiskImageError("invalid-argument", `${this.store.name}: image is closed`);
    checkRange(this, this.store.name, offset, length, write);
  }
}
