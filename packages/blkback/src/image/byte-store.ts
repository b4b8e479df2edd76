/**
 * The byte store under a disk image: what the format logic (raw, qcow2, VHD)
 * needs from a file and nothing more, so that the same code runs on a Node
 * file handle, an in-memory buffer, or a browser store (OPFS, IndexedDB).
 */
export interface ByteStore {
  /** A name for messages (a path for files). */
  readonly name: string;
  readonly readOnly: boolean;
  /** The current length in bytes. */
  size(): Promise<number>;
  /**
   * Reads `buffer.length` bytes at `offset`. Bytes past the end of the store
   * read as zero; the result is how many bytes came from the store.
   */
  read(buffer: Uint8Array, offset: number): Promise<number>;
  /** Writes all of `data` at `offset`, growing the store if needed (holes read as zero). */
  write(data: Uint8Array, offset: number): Promise<void>;
  /** Sets the length (a sparse extension where the store supports it). */
  truncate(size: number): Promise<void>;
  /** Makes every completed write durable (fsync for files). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A growable in-memory store. It runs anywhere (browser, tests), and records
 * the highest byte ever written so tests can prove that a corrupt image
 * never makes Kumo write outside the file.
 */
export class MemoryByteStore implements ByteStore {
  private bytes: Uint8Array;
  private length: number;
  /** The end of the furthest write since creation (for fuzz tests). */
  highestWriteEnd = 0;
  /** Number of flush() calls (for tests of FLUSH handling). */
  flushCount = 0;

  constructor(
    initial: Uint8Array = new Uint8Array(0),
    readonly readOnly = false,
    readonly name = "memory",
  ) {
    this.bytes = new Uint8Array(Math.max(initial.length, 4096));
    this.bytes.set(initial);
    this.length = initial.length;
  }

  /** The current contents (a copy). */
  contents(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }

  async size(): Promise<number> {
    return this.length;
  }

  async read(buffer: Uint8Array, offset: number): Promise<number> {
    const available = Math.max(0, Math.min(buffer.length, this.length - offset));
    if (available > 0) buffer.set(this.bytes.subarray(offset, offset + available));
    buffer.fill(0, available);
    return available;
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) throw new Error(`${this.name}: store is read-only`);
    const end = offset + data.length;
    this.grow(end);
    this.bytes.set(data, offset);
    if (end > this.length) this.length = end;
    if (end > this.highestWriteEnd) this.highestWriteEnd = end;
  }

  async truncate(size: number): Promise<void> {
    if (this.readOnly) throw new Error(`${this.name}: store is read-only`);
    this.grow(size);
    if (size < this.length) this.bytes.fill(0, size, this.length);
    this.length = size;
  }

  async flush(): Promise<void> {
    this.flushCount++;
  }

  async close(): Promise<void> {}

  private grow(end: number): void {
    if (end <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(end, this.bytes.length * 2));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
}
