/**
 * VHD (Microsoft "Virtual Hard Disk Image Format Specification" 1.0, the
 * format Hyper-V and Virtual PC use, qemu's "vpc"): fixed and dynamic disks,
 * read/write. Differencing disks are refused with a typed error.
 *
 * Block allocation order keeps a valid image after a crash at any point:
 * the footer moves to the new end of file first, then the block's bitmap and
 * data are written, and only then does the BAT entry point at the block.
 */
import type { ByteStore } from "./byte-store";
import { checkRange, type DiskImage, Mutex, roundUp } from "./disk-image";
import { DiskImageError, hex } from "./errors";

const FOOTER_SIZE = 512;
const HEADER_SIZE = 1024;
const TWO32 = 4294967296;
const DISK_FIXED = 2;
const DISK_DYNAMIC = 3;
const DISK_DIFFERENCING = 4;
const UNUSED = 0xffffffff;
/** Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC. */
const VHD_EPOCH = 946684800;
/** CHS geometry that tells qemu "use current_size, not CHS" (qemu block/vpc.c vpc_open). */
const MAX_CYLINDERS = 65535;
const MAX_HEADS = 16;
const MAX_SECTORS = 255;

export type VhdSubformat = "fixed" | "dynamic";

export interface VhdCreateOptions {
  size: number;
  subformat?: VhdSubformat;
  /** Dynamic disks: bytes per block, a power of two (2 MiB by default, as the spec and qemu use). */
  blockSize?: number;
}

export interface VhdDetails {
  subformat: VhdSubformat;
  creatorApp: string;
  blockSize: number | null;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
}

const text = (bytes: Uint8Array) => String.fromCharCode(...bytes);

function u64(view: DataView, offset: number): number {
  return view.getUint32(offset) * TWO32 + view.getUint32(offset + 4);
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / TWO32));
  view.setUint32(offset + 4, value >>> 0);
}

/** The spec's checksum: one's complement of the byte sum with the checksum field taken as zero. */
function checksum(bytes: Uint8Array, fieldAt: number): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (i < fieldAt || i >= fieldAt + 4) sum += bytes[i];
  }
  return ~sum >>> 0;
}

/** CHS geometry from the spec's appendix "CHS Calculation" (also qemu calculate_geometry). */
export function vhdGeometry(size: number): {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
} {
  let totalSectors = Math.floor(size / 512);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.floor((cylinderTimesHeads + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

function makeFooter(size: number, subformat: VhdSubformat, uniqueId: Uint8Array): Uint8Array {
  const footer = new Uint8Array(FOOTER_SIZE);
  const view = new DataView(footer.buffer);
  footer.set(new TextEncoder().encode("conectix"), 0);
  view.setUint32(8, 2); // features: "reserved" bit, always set
  view.setUint32(12, 0x00010000);
  if (subformat === "fixed") {
    view.setUint32(16, UNUSED);
    view.setUint32(20, UNUSED);
  } else {
    setU64(view, 16, FOOTER_SIZE);
  }
  view.setUint32(24, Math.max(0, Math.floor(Date.now() / 1000) - VHD_EPOCH) >>> 0);
  footer.set(new TextEncoder().encode("kumo"), 28);
  view.setUint32(32, 0x00010000);
  footer.set(new TextEncoder().encode("Wi2k"), 36);
  setU64(view, 40, size);
  setU64(view, 48, size);
  // A geometry that covers the size exactly, else the maximum one, which
  // tells readers that go by CHS (qemu for unknown creators) to use current_size.
  let geometry = vhdGeometry(size);
  if (geometry.cylinders * geometry.heads * geometry.sectorsPerTrack * 512 !== size) {
    geometry = { cylinders: MAX_CYLINDERS, heads: MAX_HEADS, sectorsPerTrack: MAX_SECTORS };
  }
  view.setUint16(56, geometry.cylinders);
  footer[58] = geometry.heads;
  footer[59] = geometry.sectorsPerTrack;
  view.setUint32(60, subformat === "fixed" ? DISK_FIXED : DISK_DYNAMIC);
  footer.set(uniqueId, 68);
  view.setUint32(64, checksum(footer, 64));
  return footer;
}

export class VhdImage implements DiskImage {
  readonly format = "vhd";
  /** Blocks are never given back (the BAT has no "free" state with data kept elsewhere); discard is a no-op. */
  readonly discardZeroes = false;
  private readonly mutex = new Mutex();
  private closed = false;
  /** Where the footer copy at the end of the file starts (dynamic disks: where the next block goes). */
  private footerAt: number;

  private constructor(
    private readonly store: ByteStore,
    readonly size: number,
    readonly readOnly: boolean,
    readonly details: VhdDetails,
    private readonly footer: Uint8Array,
    footerAt: number,
    private readonly bat: Uint32Array | null,
    private readonly batOffset: number,
    private readonly blockSize: number,
    private readonly bitmapSize: number,
  ) {
    this.footerAt = footerAt;
  }

  static async open(store: ByteStore, options: { readOnly?: boolean } = {}): Promise<VhdImage> {
    const name = store.name;
    const corrupt = (message: string, at?: number) =>
      new DiskImageError("corrupt", `${name}: VHD ${message}`, at);
    const fileSize = await store.size();
    if (fileSize < FOOTER_SIZE) {
      throw new DiskImageError(
        "truncated",
        `${name}: VHD needs a 512-byte footer, the file has ${fileSize} bytes`,
        0,
      );
    }
    let footerAt = Math.floor(fileSize / 512) * 512 - FOOTER_SIZE;
    const footer = new Uint8Array(FOOTER_SIZE);
    await store.read(footer, footerAt);
    if (text(footer.subarray(0, 8)) !== "conectix") {
      // A dynamic disk keeps a copy at offset 0; a crash while extending the file can lose the end one.
      await store.read(footer, 0);
      if (text(footer.subarray(0, 8)) !== "conectix") {
        throw corrupt(
          `footer cookie is not "conectix" at the end of the file or at offset 0`,
          footerAt,
        );
      }
      footerAt = roundUp(fileSize, 512);
    }
    const view = new DataView(footer.buffer);
    const storedSum = view.getUint32(64);
    if (storedSum !== checksum(footer, 64)) {
      throw corrupt(
        `footer checksum is ${hex(storedSum)}, the footer sums to ${hex(checksum(footer, 64))}`,
        footerAt + 64,
      );
    }
    const diskType = view.getUint32(60);
    if (diskType === DISK_DIFFERENCING)
      throw new DiskImageError(
        "unsupported",
        `${name}: differencing VHDs are not supported`,
        footerAt + 60,
      );
    if (diskType !== DISK_FIXED && diskType !== DISK_DYNAMIC)
      throw corrupt(`disk type ${diskType} (expected 2 fixed or 3 dynamic)`, footerAt + 60);
    if (view.getUint32(48) >= 0x200000)
      throw corrupt("current size beyond 2^53 bytes", footerAt + 48);
    const currentSize = u64(view, 48);
    const geometry = {
      cylinders: view.getUint16(56),
      heads: footer[58],
      sectorsPerTrack: footer[59],
    };
    const creatorApp = text(footer.subarray(28, 32));
    // qemu block/vpc.c vpc_open: Virtual PC and old qemu go by CHS geometry
    // unless it is the maximum; everything else (Hyper-V, qemu "qem2", Kumo) by current_size.
    let size = currentSize;
    const maxGeometry =
      geometry.cylinders === MAX_CYLINDERS &&
      geometry.heads === MAX_HEADS &&
      geometry.sectorsPerTrack === MAX_SECTORS;
    if ((creatorApp === "vpc " || creatorApp === "qemu") && !maxGeometry) {
      size = Math.min(
        currentSize,
        geometry.cylinders * geometry.heads * geometry.sectorsPerTrack * 512,
      );
    }
    const readOnly = store.readOnly || (options.readOnly ?? false);
    const details: VhdDetails = {
      subformat: diskType === DISK_FIXED ? "fixed" : "dynamic",
      creatorApp,
      blockSize: null,
      geometry,
    };
    if (diskType === DISK_FIXED) {
      if (size > footerAt) {
        throw new DiskImageError(
          "truncated",
          `${name}: fixed VHD of ${size} bytes has only ${footerAt} bytes of data before its footer`,
          footerAt + 48,
        );
      }
      return new VhdImage(store, size, readOnly, details, footer, footerAt, null, 0, 0, 0);
    }
    if (view.getUint32(16) >= 0x200000)
      throw corrupt("dynamic header offset beyond 2^53", footerAt + 16);
    const headerAt = u64(view, 16);
    if (headerAt % 512 !== 0 || headerAt + HEADER_SIZE > footerAt) {
      throw corrupt(
        `dynamic disk header offset ${hex(headerAt)} is not a sector inside the file`,
        footerAt + 16,
      );
    }
    const header = new Uint8Array(HEADER_SIZE);
    await store.read(header, headerAt);
    const headerView = new DataView(header.buffer);
    if (text(header.subarray(0, 8)) !== "cxsparse")
      throw corrupt(`dynamic disk header cookie is not "cxsparse"`, headerAt);
    const headerSum = headerView.getUint32(36);
    if (headerSum !== checksum(header, 36)) {
      throw corrupt(
        `dynamic disk header checksum is ${hex(headerSum)}, the header sums to ${hex(checksum(header, 36))}`,
        headerAt + 36,
      );
    }
    if (headerView.getUint32(16) >= 0x200000)
      throw corrupt("BAT offset beyond 2^53", headerAt + 16);
    const batOffset = u64(headerView, 16);
    const entries = headerView.getUint32(28);
    const blockSize = headerView.getUint32(32);
    if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0)
      throw corrupt(`block size ${blockSize} is not a power of two of at least 512`, headerAt + 32);
    if (entries < Math.ceil(size / blockSize)) {
      throw corrupt(
        `BAT has ${entries} entries, a ${size}-byte disk needs ${Math.ceil(size / blockSize)}`,
        headerAt + 28,
      );
    }
    if (entries > 0x10000000)
      throw corrupt(`BAT of ${entries} entries is unreasonably large`, headerAt + 28);
    if (batOffset % 512 !== 0 || batOffset + entries * 4 > footerAt) {
      throw new DiskImageError(
        "truncated",
        `${name}: VHD BAT [${batOffset}, ${batOffset + entries * 4}) is not inside the file`,
        headerAt + 16,
      );
    }
    const batBytes = new Uint8Array(entries * 4);
    await store.read(batBytes, batOffset);
    const batView = new DataView(batBytes.buffer);
    const bat = new Uint32Array(entries);
    for (let i = 0; i < entries; i++) bat[i] = batView.getUint32(i * 4);
    details.blockSize = blockSize;
    const bitmapSize = roundUp(blockSize / 512 / 8, 512);
    return new VhdImage(
      store,
      size,
      readOnly,
      details,
      footer,
      footerAt,
      bat,
      batOffset,
      blockSize,
      bitmapSize,
    );
  }

  static async create(store: ByteStore, options: VhdCreateOptions): Promise<void> {
    const { size } = options;
    const subformat = options.subformat ?? "dynamic";
    const blockSize = options.blockSize ?? 2 * 1024 * 1024;
    const bad = (message: string) =>
      new DiskImageError("invalid-argument", `${store.name}: ${message}`);
    if (!Number.isSafeInteger(size) || size < 0 || size % 512 !== 0)
      throw bad(`VHD size ${size} is not a multiple of 512 bytes`);
    // The spec's limit: 2040 GiB (qemu VHD_MAX_SECTORS is close to it).
    if (size > 2040 * 1024 ** 3) throw bad(`VHD size ${size} exceeds the format's 2040 GiB`);
    if (subformat !== "fixed" && subformat !== "dynamic")
      throw bad(`VHD subformat '${subformat}' (expected fixed or dynamic)`);
    if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0 || blockSize > 256 * 1024 * 1024) {
      throw bad(`VHD block size ${blockSize} is not a power of two between 512 bytes and 256 MiB`);
    }
    const uniqueId = new Uint8Array(16);
    globalThis.crypto.getRandomValues(uniqueId);
    const footer = makeFooter(size, subformat, uniqueId);
    if (subformat === "fixed") {
      await store.truncate(size);
      await store.write(footer, size);
      await store.flush();
      return;
    }
    const entries = Math.ceil(size / blockSize);
    const batOffset = FOOTER_SIZE + HEADER_SIZE;
    const batBytes = roundUp(entries * 4, 512);
    const bat = new Uint8Array(batBytes).fill(0xff);
    const header = new Uint8Array(HEADER_SIZE);
    const view = new DataView(header.buffer);
    header.set(new TextEncoder().encode("cxsparse"), 0);
    view.setUint32(8, UNUSED);
    view.setUint32(12, UNUSED);
    setU64(view, 16, batOffset);
    view.setUint32(24, 0x00010000);
    view.setUint32(28, entries);
    view.setUint32(32, blockSize);
    view.setUint32(36, checksum(header, 36));
    await store.write(footer, 0);
    await store.write(header, FOOTER_SIZE);
    await store.write(bat, batOffset);
    await store.write(footer, batOffset + batBytes);
    await store.flush();
  }

  async read(buffer: Uint8Array, offset: number): Promise<void> {
    this.check(offset, buffer.length, false);
    if (this.bat === null) {
      await this.store.read(buffer, offset);
      return;
    }
    // No lock: a BAT entry is set only after its block exists (allocateBlock), so a read sees
    // either zeros (not yet allocated) or the block; requests in flight overlap their file I/O.
    this.active++;
    try {
      let done = 0;
      while (done < buffer.length) {
        const position = offset + done;
        const block = Math.floor(position / this.blockSize);
        const inBlock = position - block * this.blockSize;
        const length = Math.min(this.blockSize - inBlock, buffer.length - done);
        const part = buffer.subarray(done, done + length);
        const start = this.blockStart(block);
        if (start === null) part.fill(0);
        else await this.store.read(part, start + this.bitmapSize + inBlock);
        done += length;
      }
    } finally {
      this.settle();
    }
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    this.check(offset, data.length, true);
    if (this.bat === null) {
      await this.store.write(data, offset);
      return;
    }
    // Only allocation (footer, bitmap, BAT entry) is serialized; data goes to allocated
    // blocks without the lock, so requests in flight overlap their file I/O.
    this.active++;
    try {
      let done = 0;
      while (done < data.length) {
        const position = offset + done;
        const block = Math.floor(position / this.blockSize);
        const inBlock = position - block * this.blockSize;
        const length = Math.min(this.blockSize - inBlock, data.length - done);
        let start = this.blockStart(block);
        if (start === null)
          start = await this.mutex.run(
            async () => this.blockStart(block) ?? (await this.allocateBlock(block)),
          );
        await this.store.write(
          data.subarray(done, done + length),
          start + this.bitmapSize + inBlock,
        );
        done += length;
      }
    } finally {
      this.settle();
    }
  }

  /** Reads and writes in progress (close waits for them). */
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  private settle(): void {
    if (--this.active > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.store.flush();
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // New requests are refused from here on; those in flight finish first (a write waiting for
    // the lock to allocate a block must get it, so wait before taking the lock).
    this.closed = true;
    while (this.active > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.mutex.run(() => this.store.close());
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed)
      throw new DiskImageError("invalid-argument", `${this.store.name}: image is closed`);
    checkRange(this, this.store.name, offset, length, write);
  }

  /** The file offset of a block's bitmap, or null when unallocated; a wild BAT entry is a typed error. */
  private blockStart(block: number): number | null {
    const entry = this.bat![block];
    if (entry === UNUSED) return null;
    const start = entry * 512;
    if (start < FOOTER_SIZE || start + this.bitmapSize + this.blockSize > this.footerAt) {
      throw new DiskImageError(
        "corrupt",
        `${this.store.name}: VHD BAT entry ${block} points at sector ${entry}, outside the data area [1, ${this.footerAt / 512})`,
        this.batOffset + block * 4,
      );
    }
    return start;
  }

  /** Appends a block (bitmap all ones, as qemu writes it, data zero) where the footer was. */
  private async allocateBlock(block: number): Promise<number> {
    const start = this.footerAt;
    const end = start + this.bitmapSize + this.blockSize;
    if (end / 512 > 0xffffffff)
      throw new DiskImageError(
        "unsupported",
        `${this.store.name}: VHD file would exceed the BAT's 32-bit sector offsets`,
      );
    await this.store.write(this.footer, end);
    await this.store.write(new Uint8Array(this.bitmapSize).fill(0xff), start);
    this.footerAt = end;
    this.bat![block] = start / 512;
    const entry = new Uint8Array(4);
    new DataView(entry.buffer).setUint32(0, start / 512);
    await this.store.write(entry, this.batOffset + block * 4);
    return start;
  }
}
