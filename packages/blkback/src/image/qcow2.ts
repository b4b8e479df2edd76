/**
 * qcow2 versions 2 and 3 (QEMU docs/interop/qcow2.txt): read/write, backing
 * files, compressed (deflate) clusters read-only, refcounts kept consistent.
 *
 * Consistency without a journal: a new cluster's refcount is written before
 * any table points at it, and a table entry is written only after the data
 * it points to. A crash can leak a cluster (qemu-img check: "leaked"), never
 * leave a table pointing at an unreferenced or unwritten cluster.
 *
 * 64-bit table entries are handled as two 32-bit halves (hot path: no
 * BigInt); host offsets stay below 2^53.
 */
import type { ByteStore } from "./byte-store";
import { checkRange, type DiskImage, type ImageFormat, Mutex, roundUp } from "./disk-image";
import { DiskImageError, hex } from "./errors";
import { type Inflate, streamInflate } from "./inflate";

const MAGIC = 0x514649fb; // "QFI\xfb"
const TWO32 = 4294967296;
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_EXTERNAL_DATA = 0x44415441;
const INCOMPAT_DIRTY = 1;
const INCOMPAT_CORRUPT = 2;
const INCOMPAT_EXTERNAL_DATA = 4;
const INCOMPAT_COMPRESSION_TYPE = 8;
const INCOMPAT_EXTENDED_L2 = 16;
const L1_COPIED = 0x80000000; // bit 63 of an L1/L2 entry (high word)
const L2_COMPRESSED = 0x40000000; // bit 62
const L2_ZERO = 1; // bit 0 (version 3)
/** Bits 9..55 of an entry: the host offset (qcow2.txt "L1/L2 table entry"). */
const OFFSET_HIGH_MASK = 0x00ffffff;
const OFFSET_LOW_MASK = 0xfffffe00;
/** qemu's limits (block/qcow2.h): cluster_bits 9..21, L1 at most 32 MiB, refcount table 8 MiB. */
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;
const MAX_L1_BYTES = 32 * 1024 * 1024;
const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;

export interface Qcow2CreateOptions {
  size: number;
  /** 2 (compat=0.10) or 3 (compat=1.1, the default). */
  version?: 2 | 3;
  /** log2 of the cluster size, 9..21; 16 (64 KiB) by default like qemu. */
  clusterBits?: number;
  /** Version 3 only: log2 of the refcount width in bits, 0..6; 4 (16 bits) by default. */
  refcountOrder?: number;
  backingFile?: string;
  backingFormat?: ImageFormat;
}

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Opens the backing file named in the header (read-only); needed for images that have one. */
  openBacking?: (name: string, format: ImageFormat | undefined) => Promise<DiskImage>;
  inflate?: Inflate;
  /** How many L2 tables to keep in memory (each is one cluster). */
  l2CacheTables?: number;
}

export interface Qcow2Details {
  version: number;
  clusterSize: number;
  refcountBits: number;
  backingFile: string | null;
  backingFormat: string | null;
  snapshots: number;
  dirty: boolean;
  corruptFlag: boolean;
}

/** A cached table cluster (L2 table or refcount block) with its view, made once per load. */
interface CachedTable {
  readonly table: Uint8Array;
  readonly view: DataView;
  readonly offset: number;
}

function cachedTable(table: Uint8Array, offset: number): CachedTable {
  return { table, view: new DataView(table.buffer, table.byteOffset, table.byteLength), offset };
}

function u64(view: DataView, offset: number): number {
  return view.getUint32(offset) * TWO32 + view.getUint32(offset + 4);
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / TWO32));
  view.setUint32(offset + 4, value >>> 0);
}

/** Host offset (bits 9..55) of a standard L1/L2 entry given as two halves. */
function entryOffset(high: number, low: number): number {
  return (high & OFFSET_HIGH_MASK) * TWO32 + ((low & OFFSET_LOW_MASK) >>> 0);
}

export class Qcow2Image implements DiskImage {
  readonly format = "qcow2";
  readonly discardZeroes: boolean;
  readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly refcountsPerBlock: number;
  private readonly mutex = new Mutex();
  private readonly l2Cache = new Map<number, CachedTable>();
  private readonly refblockCache = new Map<number, CachedTable>();
  /** The most recently used L2 table: sequential I/O hits it without touching the LRU map. */
  private lastL2: CachedTable | null = null;
  private readonly l1View: DataView;
  private refTable: Uint8Array;
  private refTableView: DataView;
  private refTableOffset: number;
  private refTableClusters: number;
  /** Where the next cluster is allocated: the end of the file, cluster-aligned. */
  private end: number;
  private fileSize: number;
  private lastCompressed = { high: -1, low: -1, data: null as Uint8Array | null };
  /** Clusters whose refcount dropped to zero in this session, reused before the file grows. */
  private readonly freed: number[] = [];
  private closed = false;

  private constructor(
    private readonly store: ByteStore,
    readonly size: number,
    readonly readOnly: boolean,
    readonly details: Qcow2Details,
    private readonly clusterBits: number,
    private readonly refcountOrder: number,
    private readonly l1Offset: number,
    private readonly l1: Uint8Array,
    refTableOffset: number,
    refTableClusters: number,
    refTable: Uint8Array,
    fileSize: number,
    private readonly backing: DiskImage | null,
    private readonly inflate: Inflate,
    private readonly l2CacheTables: number,
  ) {
    this.clusterSize = 2 ** clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.refcountsPerBlock = (this.clusterSize * 8) >>> refcountOrder;
    this.l1View = new DataView(l1.buffer, l1.byteOffset, l1.byteLength);
    this.refTable = refTable;
    this.refTableView = new DataView(refTable.buffer, refTable.byteOffset, refTable.byteLength);
    this.refTableOffset = refTableOffset;
    this.refTableClusters = refTableClusters;
    this.fileSize = fileSize;
    this.end = roundUp(fileSize, this.clusterSize);
    // Over a backing file, discarded clusters of a missing L2 table show the backing data.
    this.discardZeroes = backing === null;
  }

  static async open(store: ByteStore, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const name = store.name;
    const corrupt = (message: string, at?: number) =>
      new DiskImageError("corrupt", `${name}: qcow2 ${message}`, at);
    const fileSize = await store.size();
    if (fileSize < 72) {
      throw new DiskImageError(
        "truncated",
        `${name}: qcow2 header needs 72 bytes, the file has ${fileSize}`,
        0,
      );
    }
    const head = new Uint8Array(Math.min(fileSize, 4096));
    await store.read(head, 0);
    let view = new DataView(head.buffer);
    if (view.getUint32(0) !== MAGIC)
      throw corrupt(`magic is ${hex(view.getUint32(0))}, expected 0x514649fb`, 0);
    const version = view.getUint32(4);
    if (version !== 2 && version !== 3) {
      throw new DiskImageError(
        "unsupported",
        `${name}: qcow2 version ${version} (Kumo reads 2 and 3)`,
        4,
      );
    }
    const clusterBits = view.getUint32(20);
    if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
      throw corrupt(
        `cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`,
        20,
      );
    }
    const clusterSize = 2 ** clusterBits;
    // The header, its extensions and the backing file name live in cluster 0.
    const header = new Uint8Array(clusterSize);
    await store.read(header, 0);
    view = new DataView(header.buffer);
    if (view.getUint32(8) >= 0x200000 || view.getUint32(24) >= 0x200000) {
      throw corrupt("offset or size beyond 2^53 bytes", 8);
    }
    const backingOffset = u64(view, 8);
    const backingSize = view.getUint32(16);
    const size = u64(view, 24);
    const cryptMethod = view.getUint32(32);
    const l1Size = view.getUint32(36);
    const l1Offset = u64(view, 40);
    const refTableOffset = u64(view, 48);
    const refTableClusters = view.getUint32(56);
    const snapshots = view.getUint32(60);
    let incompatible = 0;
    let refcountOrder = 4;
    let headerLength = 72;
    let compressionType = 0;
    if (version === 3) {
      if (view.getUint32(72) !== 0)
        throw new DiskImageError(
          "unsupported",
          `${name}: unknown qcow2 incompatible features ${hex(view.getUint32(72))}:00000000`,
          72,
        );
      incompatible = view.getUint32(76);
      refcountOrder = view.getUint32(96);
      headerLength = view.getUint32(100);
      if (headerLength < 104 || headerLength > clusterSize || headerLength % 8 !== 0) {
        throw corrupt(
          `header_length ${headerLength} (expected a multiple of 8, at least 104)`,
          100,
        );
      }
      if (headerLength > 104) compressionType = header[104];
    }
    if (cryptMethod !== 0)
      throw new DiskImageError(
        "unsupported",
        `${name}: encrypted qcow2 (crypt_method ${cryptMethod})`,
        32,
      );
    const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION_TYPE;
    if (incompatible & ~known) {
      const what =
        incompatible & INCOMPAT_EXTERNAL_DATA
          ? "an external data file"
          : incompatible & INCOMPAT_EXTENDED_L2
            ? "extended L2 entries (subclusters)"
            : `incompatible feature bits ${hex(incompatible & ~known)}`;
      throw new DiskImageError("unsupported", `${name}: qcow2 image uses ${what}`, 72);
    }
    if (incompatible & INCOMPAT_COMPRESSION_TYPE && compressionType !== 0) {
      throw new DiskImageError(
        "unsupported",
        `${name}: qcow2 compression type ${compressionType} (Kumo reads zlib only)`,
        104,
      );
    }
    if (refcountOrder > 6) throw corrupt(`refcount_order ${refcountOrder} above 6`, 96);
    const dirty = (incompatible & INCOMPAT_DIRTY) !== 0;
    const corruptFlag = (incompatible & INCOMPAT_CORRUPT) !== 0;
    let readOnly = options.readOnly ?? store.readOnly;
    if (store.readOnly) readOnly = true;
    if (!readOnly && (dirty || corruptFlag)) {
      throw new DiskImageError(
        "unsupported",
        `${name}: qcow2 image is marked ${dirty ? "dirty (refcounts may be stale)" : "corrupt"}; repair it with 'qemu-img check -r all' or open it read-only`,
        72,
      );
    }
    if (!readOnly && snapshots > 0) {
      throw new DiskImageError(
        "unsupported",
        `${name}: qcow2 image has ${snapshots} internal snapshot(s); Kumo opens such images read-only`,
        60,
      );
    }
    // Header extensions (qcow2.txt "Header extensions"): type, length, data padded to 8.
    let backingFormat: string | null = null;
    let at = headerLength;
    for (;;) {
      if (at + 8 > clusterSize) throw corrupt("header extensions run past the first cluster", at);
      const type = view.getUint32(at);
      const length = view.getUint32(at + 4);
      if (type === EXT_END) break;
      if (length > clusterSize - at - 8)
        throw corrupt(
          `header extension ${hex(type)} of length ${length} runs past the first cluster`,
          at,
        );
      if (type === EXT_BACKING_FORMAT)
        backingFormat = new TextDecoder().decode(header.subarray(at + 8, at + 8 + length));
      if (type === EXT_EXTERNAL_DATA)
        throw new DiskImageError(
          "unsupported",
          `${name}: qcow2 image has an external data file`,
          at,
        );
      at += 8 + roundUp(length, 8);
    }
    let backingFile: string | null = null;
    if (backingOffset !== 0) {
      if (backingSize > 1023 || backingOffset + backingSize > clusterSize) {
        throw corrupt(
          `backing file name at ${backingOffset} of length ${backingSize} is not inside the first cluster`,
          8,
        );
      }
      backingFile = new TextDecoder().decode(
        header.subarray(backingOffset, backingOffset + backingSize),
      );
    }
    // The L1 table must cover the disk (qemu: "L1 table is too small").
    const l2Entries = clusterSize / 8;
    const needed = Math.ceil(size / (clusterSize * l2Entries));
    if (l1Size < needed)
      throw corrupt(`L1 table has ${l1Size} entries, a ${size}-byte disk needs ${needed}`, 36);
    if (l1Size * 8 > MAX_L1_BYTES)
      throw corrupt(`L1 table of ${l1Size} entries is larger than 32 MiB`, 36);
    if (l1Offset % clusterSize !== 0 || (l1Size > 0 && l1Offset === 0)) {
      throw corrupt(
        `L1 table offset ${hex(l1Offset)} is not a non-zero multiple of the cluster size`,
        40,
      );
    }
    if (l1Size > 0 && l1Offset + l1Size * 8 > fileSize) {
      throw new DiskImageError(
        "truncated",
        `${name}: qcow2 L1 table [${l1Offset}, ${l1Offset + l1Size * 8}) is past the end of the ${fileSize}-byte file`,
        40,
      );
    }
    if (refTableOffset % clusterSize !== 0 || refTableOffset === 0) {
      throw corrupt(
        `refcount table offset ${hex(refTableOffset)} is not a non-zero multiple of the cluster size`,
        48,
      );
    }
    if (refTableClusters * clusterSize > MAX_REFTABLE_BYTES || refTableClusters === 0) {
      throw corrupt(
        `refcount table of ${refTableClusters} clusters (expected 1 to ${MAX_REFTABLE_BYTES / clusterSize})`,
        56,
      );
    }
    if (refTableOffset + refTableClusters * clusterSize > fileSize) {
      throw new DiskImageError(
        "truncated",
        `${name}: qcow2 refcount table at ${hex(refTableOffset)} is past the end of the ${fileSize}-byte file`,
        48,
      );
    }
    const l1 = new Uint8Array(l1Size * 8);
    await store.read(l1, l1Offset);
    const refTable = new Uint8Array(refTableClusters * clusterSize);
    await store.read(refTable, refTableOffset);
    let backing: DiskImage | null = null;
    if (backingFile !== null) {
      if (!options.openBacking) {
        throw new DiskImageError(
          "unsupported",
          `${name}: qcow2 image has backing file '${backingFile}' and no way to open it was given`,
          8,
        );
      }
      const format =
        backingFormat === "raw" ||
        backingFormat === "qcow2" ||
        backingFormat === "vpc" ||
        backingFormat === "vhd"
          ? backingFormat === "vpc"
            ? "vhd"
            : backingFormat
          : undefined;
      backing = await options.openBacking(backingFile, format);
    }
    const image = new Qcow2Image(
      store,
      size,
      readOnly,
      {
        version,
        clusterSize,
        refcountBits: 2 ** refcountOrder,
        backingFile,
        backingFormat,
        snapshots,
        dirty,
        corruptFlag,
      },
      clusterBits,
      refcountOrder,
      l1Offset,
      l1,
      refTableOffset,
      refTableClusters,
      refTable,
      fileSize,
      backing,
      options.inflate ?? streamInflate,
      Math.max(1, options.l2CacheTables ?? 32),
    );
    if (!readOnly) await image.skipCountedClusters();
    return image;
  }

  /**
   * New clusters go after the last one the refcounts count, not only after
   * the end of the file: a crash between a refcount update and the write
   * that extends the file leaves counted clusters just past the end, which
   * must stay leaks (refcount 1, unreferenced), never be handed out again
   * (refcount 2 with one reference: qemu-img check's OFLAG_COPIED error).
   * One allocation counts a few clusters at most (data, L2 table, refcount
   * block), so only a window of COUNTED_WINDOW clusters after the end is
   * looked at: a wild refcount far away (a corrupt image) cannot make the
   * file jump.
   */
  private async skipCountedClusters(): Promise<void> {
    const first = this.end / this.clusterSize;
    let highest = -1;
    let loaded = -1;
    let table: Uint8Array | null = null;
    for (let cluster = first; cluster < first + COUNTED_WINDOW; cluster++) {
      const tableIndex = Math.floor(cluster / this.refcountsPerBlock);
      if (tableIndex * 8 >= this.refTable.length) break;
      if (tableIndex !== loaded) {
        loaded = tableIndex;
        const block = u64(this.refTableView, tableIndex * 8);
        table = null;
        if (block !== 0 && block % this.clusterSize === 0 && block < this.end) {
          table = new Uint8Array(this.clusterSize);
          await this.store.read(table, block);
        }
      }
      if (table === null) continue;
      if (readRefcount(table, this.refcountOrder, cluster % this.refcountsPerBlock) !== 0)
        highest = cluster;
    }
    if (highest >= 0) this.end = (highest + 1) * this.clusterSize;
  }

  /** Writes a new, empty image to `store` (which should be empty). */
  static async create(store: ByteStore, options: Qcow2CreateOptions): Promise<void> {
    const version = options.version ?? 3;
    const clusterBits = options.clusterBits ?? 16;
    const refcountOrder = options.refcountOrder ?? 4;
    const size = options.size;
    const bad = (message: string) =>
      new DiskImageError("invalid-argument", `${store.name}: ${message}`);
    if (!Number.isSafeInteger(size) || size < 0) throw bad(`disk size ${size} is not a byte count`);
    if (version !== 2 && version !== 3) throw bad(`qcow2 version ${version} (expected 2 or 3)`);
    if (
      !Number.isInteger(clusterBits) ||
      clusterBits < MIN_CLUSTER_BITS ||
      clusterBits > MAX_CLUSTER_BITS
    ) {
      throw bad(`cluster size 2^${clusterBits} (expected 512 bytes to 2 MiB)`);
    }
    if (
      !Number.isInteger(refcountOrder) ||
      refcountOrder < 0 ||
      refcountOrder > 6 ||
      (version === 2 && refcountOrder !== 4)
    ) {
      throw bad(
        `refcount width 2^${refcountOrder} bits (version 2 has 16, version 3 allows 1 to 64)`,
      );
    }
    const clusterSize = 2 ** clusterBits;
    const l1Size = Math.ceil(size / (clusterSize * (clusterSize / 8)));
    if (l1Size * 8 > MAX_L1_BYTES)
      throw bad(`disk of ${size} bytes needs an L1 table over 32 MiB; use a larger cluster size`);
    const headerLength = version === 3 ? 104 : 72;
    const encoder = new TextEncoder();
    const backingName = options.backingFile ? encoder.encode(options.backingFile) : null;
    if (backingName && backingName.length > 1023)
      throw bad("backing file name longer than 1023 bytes");
    const backingFormat =
      options.backingFile && options.backingFormat
        ? encoder.encode(options.backingFormat === "vhd" ? "vpc" : options.backingFormat)
        : null;
    let extensionsEnd =
      headerLength + (backingFormat ? 8 + roundUp(backingFormat.length, 8) : 0) + 8;
    const backingOffset = backingName ? extensionsEnd : 0;
    extensionsEnd += backingName ? backingName.length : 0;
    if (extensionsEnd > clusterSize)
      throw bad("header and backing file name do not fit in one cluster");
    // Metadata layout: header, refcount table, refcount blocks, L1 table; the
    // counts depend on each other, so iterate to the fixed point.
    const refsPerBlock = (clusterSize * 8) >>> refcountOrder;
    const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / clusterSize));
    let tableClusters = 1;
    let blocks = 1;
    for (;;) {
      const total = 1 + tableClusters + blocks + l1Clusters;
      const nextBlocks = Math.ceil(total / refsPerBlock);
      const nextTable = Math.max(1, Math.ceil((nextBlocks * 8) / clusterSize));
      if (nextBlocks === blocks && nextTable === tableClusters) break;
      blocks = nextBlocks;
      tableClusters = nextTable;
    }
    const total = 1 + tableClusters + blocks + l1Clusters;
    const tableOffset = clusterSize;
    const blocksOffset = tableOffset + tableClusters * clusterSize;
    const l1Offset = blocksOffset + blocks * clusterSize;
    // L1 (zeros) first, so the file has its final length before anything points into it.
    await store.write(new Uint8Array(l1Clusters * clusterSize), l1Offset);
    const blockBytes = new Uint8Array(blocks * clusterSize);
    for (let cluster = 0; cluster < total; cluster++)
      writeRefcount(blockBytes, refcountOrder, cluster, 1);
    await store.write(blockBytes, blocksOffset);
    const table = new Uint8Array(tableClusters * clusterSize);
    const tableView = new DataView(table.buffer);
    for (let block = 0; block < blocks; block++)
      setU64(tableView, block * 8, blocksOffset + block * clusterSize);
    await store.write(table, tableOffset);
    const header = new Uint8Array(clusterSize);
    const view = new DataView(header.buffer);
    view.setUint32(0, MAGIC);
    view.setUint32(4, version);
    setU64(view, 8, backingOffset);
    view.setUint32(16, backingName ? backingName.length : 0);
    view.setUint32(20, clusterBits);
    setU64(view, 24, size);
    view.setUint32(36, l1Size);
    setU64(view, 40, l1Offset);
    setU64(view, 48, tableOffset);
    view.setUint32(56, tableClusters);
    if (version === 3) {
      view.setUint32(96, refcountOrder);
      view.setUint32(100, headerLength);
    }
    let at = headerLength;
    if (backingFormat) {
      view.setUint32(at, EXT_BACKING_FORMAT);
      view.setUint32(at + 4, backingFormat.length);
      header.set(backingFormat, at + 8);
      at += 8 + roundUp(backingFormat.length, 8);
    }
    at += 8; // end-of-extensions marker (zeros)
    if (backingName) header.set(backingName, at);
    await store.write(header, 0);
    await store.flush();
  }

  async read(buffer: Uint8Array, offset: number): Promise<void> {
    this.check(offset, buffer.length, false);
    await this.mutex.run(() => this.readLocked(buffer, offset));
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    this.check(offset, data.length, true);
    await this.mutex.run(() => this.writeLocked(data, offset));
  }

  async flush(): Promise<void> {
    if (this.readOnly) return;
    await this.mutex.run(() => this.store.flush());
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
    await this.mutex.run(() => this.discardLocked(offset, length));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      this.closed = true;
      await this.store.close();
      await this.backing?.close();
    });
  }

  /** The end of the allocated area of the file (bytes). */
  get fileEnd(): number {
    return this.end;
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed)
      throw new DiskImageError("invalid-argument", `${this.store.name}: image is closed`);
    checkRange(this, this.store.name, offset, length, write);
  }

  private corrupt(message: string, at?: number): DiskImageError {
    return new DiskImageError("corrupt", `${this.store.name}: qcow2 ${message}`, at);
  }

  /** Validates a host cluster offset taken from a table before it is read or written. */
  private checkHostCluster(offset: number, what: string, at?: number): void {
    if (offset % this.clusterSize !== 0 || offset === 0 || offset >= this.end) {
      throw this.corrupt(
        `${what} at ${hex(offset)} is ${offset === 0 ? "the header cluster" : offset >= this.end ? `past the end of the ${this.fileSize}-byte file` : "not cluster-aligned"}`,
        at,
      );
    }
    // Like qemu's metadata overlap checks: a table entry pointing into the L1 or
    // refcount table would let guest data overwrite them.
    const l1End = this.l1Offset + roundUp(this.l1.length, this.clusterSize);
    const refEnd = this.refTableOffset + this.refTableClusters * this.clusterSize;
    if (
      (offset >= this.l1Offset && offset < l1End) ||
      (offset >= this.refTableOffset && offset < refEnd)
    ) {
      throw this.corrupt(
        `${what} at ${hex(offset)} overlaps the ${offset >= this.l1Offset && offset < l1End ? "L1" : "refcount"} table`,
        at,
      );
    }
  }

  // ---- L1/L2 -------------------------------------------------------------

  /** The L2 table for `l1Index`, or null when unallocated. */
  private async l2Table(l1Index: number): Promise<CachedTable | null> {
    const high = this.l1View.getUint32(l1Index * 8);
    const low = this.l1View.getUint32(l1Index * 8 + 4);
    if ((high & 0x7f000000) !== 0 || (low & 0x1ff) !== 0) {
      throw this.corrupt(
        `L1 entry ${l1Index} has reserved bits set (${hex(high)}:${hex(low)})`,
        this.l1Offset + l1Index * 8,
      );
    }
    const offset = entryOffset(high, low);
    if (offset === 0) return null;
    this.checkHostCluster(offset, `L2 table of L1 entry ${l1Index}`, this.l1Offset + l1Index * 8);
    const last = this.lastL2;
    if (last !== null && last.offset === offset) return last;
    this.lastL2 = await this.loadCached(this.l2Cache, offset);
    return this.lastL2;
  }

  /** LRU cache of whole-cluster tables (L2 tables, refcount blocks); write-through. */
  private async loadCached(cache: Map<number, CachedTable>, offset: number): Promise<CachedTable> {
    const hit = cache.get(offset);
    if (hit) {
      cache.delete(offset);
      cache.set(offset, hit);
      return hit;
    }
    const table = new Uint8Array(this.clusterSize);
    await this.store.read(table, offset);
    if (cache.size >= this.l2CacheTables) cache.delete(cache.keys().next().value as number);
    const entry = cachedTable(table, offset);
    cache.set(offset, entry);
    return entry;
  }

  private async readLocked(buffer: Uint8Array, offset: number): Promise<void> {
    const clusterSize = this.clusterSize;
    let done = 0;
    while (done < buffer.length) {
      const position = offset + done;
      const guestCluster = Math.floor(position / clusterSize);
      const inCluster = position - guestCluster * clusterSize;
      const length = Math.min(clusterSize - inCluster, buffer.length - done);
      const part = buffer.subarray(done, done + length);
      const l1Index = Math.floor(guestCluster / this.l2Entries);
      const l2Index = guestCluster % this.l2Entries;
      const l2 = await this.l2Table(l1Index);
      if (l2 === null) {
        await this.readBacking(part, position);
      } else {
        const view = l2.view;
        const high = view.getUint32(l2Index * 8);
        const low = view.getUint32(l2Index * 8 + 4);
        await this.readCluster(part, position, inCluster, high, low, l2.offset + l2Index * 8);
      }
      done += length;
    }
  }

  /** Reads from one guest cluster described by L2 entry (high, low). */
  private async readCluster(
    part: Uint8Array,
    position: number,
    inCluster: number,
    high: number,
    low: number,
    entryAt: number,
  ): Promise<void> {
    if (high & L2_COMPRESSED) {
      const data = await this.decompress(high, low, entryAt);
      part.set(data.subarray(inCluster, inCluster + part.length));
      return;
    }
    if ((high & 0x3f000000) !== 0 || (low & 0x1fe) !== 0) {
      throw this.corrupt(`L2 entry has reserved bits set (${hex(high)}:${hex(low)})`, entryAt);
    }
    if (low & L2_ZERO && this.details.version >= 3) {
      part.fill(0);
      return;
    }
    const host = entryOffset(high, low);
    if (host === 0) {
      await this.readBacking(part, position);
      return;
    }
    this.checkHostCluster(host, "data cluster", entryAt);
    await this.store.read(part, host + inCluster);
  }

  private async readBacking(part: Uint8Array, position: number): Promise<void> {
    const backing = this.backing;
    if (backing === null || position >= backing.size) {
      part.fill(0);
      return;
    }
    // A backing file shorter than the image reads as zeros past its end.
    const inside = Math.min(part.length, roundUp(backing.size, 512) - position);
    await backing.read(part.subarray(0, inside), position);
    part.fill(0, inside);
  }

  /** Inflates one compressed cluster (qcow2.txt "Compressed Clusters Descriptor"). */
  private async decompress(high: number, low: number, entryAt: number): Promise<Uint8Array> {
    const cached = this.lastCompressed;
    if (cached.high === high && cached.low === low && cached.data) return cached.data;
    const { offset, length } = this.compressedSpan(high, low);
    if (offset >= this.fileSize || offset < this.clusterSize) {
      throw this.corrupt(`compressed cluster at ${hex(offset)} is outside the file`, entryAt);
    }
    const input = new Uint8Array(length);
    await this.store.read(input, offset);
    const data = await this.inflate(input, this.clusterSize);
    if (data === null)
      throw this.corrupt(
        `compressed cluster at ${hex(offset)} does not inflate to ${this.clusterSize} bytes`,
        entryAt,
      );
    this.lastCompressed = { high, low, data };
    return data;
  }

  /** Host byte range of a compressed cluster: bits 0..x-1 offset, x..61 extra sectors, x = 62 - (cluster_bits - 8). */
  private compressedSpan(high: number, low: number): { offset: number; length: number } {
    const shift = 62 - (this.clusterBits - 8) - 32; // x - 32, 9..29 for cluster_bits 21..9
    const offset = (high & ((1 << shift) - 1)) * TWO32 + (low >>> 0);
    const sectors = ((high >>> shift) & ((1 << (30 - shift)) - 1)) + 1;
    // qemu qcow2_parse_compressed_l2_entry: csize = sectors * 512 - (offset & 511)
    return { offset, length: sectors * 512 - (offset & 511) };
  }

  private async writeLocked(data: Uint8Array, offset: number): Promise<void> {
    const clusterSize = this.clusterSize;
    let done = 0;
    while (done < data.length) {
      const position = offset + done;
      const guestCluster = Math.floor(position / clusterSize);
      const inCluster = position - guestCluster * clusterSize;
      const length = Math.min(clusterSize - inCluster, data.length - done);
      const part = data.subarray(done, done + length);
      const l1Index = Math.floor(guestCluster / this.l2Entries);
      const l2Index = guestCluster % this.l2Entries;
      let l2 = await this.l2Table(l1Index);
      if (l2 === null) {
        // New L2 table: zeroed and counted before the L1 entry points at it.
        const tableOffset = await this.allocateCluster();
        const table = new Uint8Array(clusterSize);
        await this.store.write(table, tableOffset);
        const entry = cachedTable(table, tableOffset);
        this.l2Cache.set(tableOffset, entry);
        setU64(this.l1View, l1Index * 8, tableOffset);
        this.l1View.setUint32(l1Index * 8, this.l1View.getUint32(l1Index * 8) | L1_COPIED);
        await this.store.write(
          this.l1.subarray(l1Index * 8, l1Index * 8 + 8),
          this.l1Offset + l1Index * 8,
        );
        l2 = entry;
      }
      const view = l2.view;
      const entryAt = l2.offset + l2Index * 8;
      const high = view.getUint32(l2Index * 8);
      const low = view.getUint32(l2Index * 8 + 4);
      if (!(high & L2_COMPRESSED) && ((high & 0x3f000000) !== 0 || (low & 0x1fe) !== 0)) {
        throw this.corrupt(`L2 entry has reserved bits set (${hex(high)}:${hex(low)})`, entryAt);
      }
      const host = high & L2_COMPRESSED ? 0 : entryOffset(high, low);
      const zero = this.details.version >= 3 && (low & L2_ZERO) !== 0;
      if (
        host !== 0 &&
        !zero &&
        high & L1_COPIED &&
        (high & 0x3f000000) === 0 &&
        (low & 0x1fe) === 0
      ) {
        this.checkHostCluster(host, "data cluster", entryAt);
        await this.store.write(part, host + inCluster);
      } else {
        // Copy-on-write into a fresh cluster: old contents (backing file, zeros,
        // compressed or shared cluster) merged with the new data.
        const cluster = new Uint8Array(clusterSize);
        if (length < clusterSize) {
          const guestStart = guestCluster * clusterSize;
          const valid = Math.min(clusterSize, roundUp(this.size, 512) - guestStart);
          await this.readCluster(cluster.subarray(0, valid), guestStart, 0, high, low, entryAt);
        }
        cluster.set(part, inCluster);
        const fresh = await this.allocateCluster();
        await this.store.write(cluster, fresh);
        setU64(view, l2Index * 8, fresh);
        view.setUint32(l2Index * 8, view.getUint32(l2Index * 8) | L1_COPIED);
        await this.store.write(l2.table.subarray(l2Index * 8, l2Index * 8 + 8), entryAt);
        await this.releaseOld(high, low);
      }
      done += length;
    }
  }

  /** Drops the reference an overwritten or discarded L2 entry held. */
  private async releaseOld(high: number, low: number): Promise<void> {
    if (high & L2_COMPRESSED) {
      const { offset, length } = this.compressedSpan(high, low);
      if (offset < this.clusterSize || offset + length > this.end) {
        throw this.corrupt(`compressed cluster at ${hex(offset)} is outside the file`);
      }
      const first = Math.floor(offset / this.clusterSize);
      const last = Math.floor((offset + length - 1) / this.clusterSize);
      for (let cluster = first; cluster <= last; cluster++)
        await this.addRefcount(cluster * this.clusterSize, -1);
      return;
    }
    const host = entryOffset(high, low);
    if (host === 0) return;
    this.checkHostCluster(host, "data cluster");
    await this.addRefcount(host, -1);
  }

  private async discardLocked(offset: number, length: number): Promise<void> {
    // Only whole clusters can be given back; partial ones keep their data.
    const clusterSize = this.clusterSize;
    const first = Math.ceil(offset / clusterSize);
    const endCluster = Math.floor(Math.min(offset + length, this.size) / clusterSize);
    for (let guestCluster = first; guestCluster < endCluster; guestCluster++) {
      const l2 = await this.l2Table(Math.floor(guestCluster / this.l2Entries));
      if (l2 === null && this.backing === null) {
        guestCluster = (Math.floor(guestCluster / this.l2Entries) + 1) * this.l2Entries - 1;
        continue;
      }
      if (l2 === null) continue; // Over a backing file an unallocated table reads the backing data; leave it.
      const l2Index = guestCluster % this.l2Entries;
      const view = l2.view;
      const high = view.getUint32(l2Index * 8);
      const low = view.getUint32(l2Index * 8 + 4);
      if (!(high & L2_COMPRESSED) && ((high & 0x3f000000) !== 0 || (low & 0x1fe) !== 0)) {
        throw this.corrupt(
          `L2 entry has reserved bits set (${hex(high)}:${hex(low)})`,
          l2.offset + l2Index * 8,
        );
      }
      const useZeroFlag = this.backing !== null && this.details.version >= 3;
      if (high === 0 && low === (useZeroFlag ? L2_ZERO : 0)) continue;
      view.setUint32(l2Index * 8, 0);
      view.setUint32(l2Index * 8 + 4, useZeroFlag ? L2_ZERO : 0);
      await this.store.write(
        l2.table.subarray(l2Index * 8, l2Index * 8 + 8),
        l2.offset + l2Index * 8,
      );
      await this.releaseOld(high, low);
    }
  }

  // ---- refcounts ---------------------------------------------------------

  /** Allocates one cluster (a freed one, else at the end of the file) and counts it. */
  private async allocateCluster(): Promise<number> {
    const reused = this.freed.pop();
    if (reused !== undefined) {
      await this.addRefcount(reused, 1);
      return reused;
    }
    const offset = this.end;
    this.end += this.clusterSize;
    await this.addRefcount(offset, 1);
    if (this.end > this.fileSize) this.fileSize = this.end;
    return offset;
  }

  private async addRefcount(hostOffset: number, delta: number): Promise<void> {
    const cluster = Math.floor(hostOffset / this.clusterSize);
    const tableIndex = Math.floor(cluster / this.refcountsPerBlock);
    if (tableIndex * 8 >= this.refTable.length) {
      if (delta < 0)
        throw this.corrupt(`cluster ${hex(hostOffset)} is not covered by the refcount table`);
      await this.growRefTable(tableIndex);
    }
    let block = u64(this.refTableView, tableIndex * 8);
    if (block === 0) {
      // A new refcount block, placed at the end; it may count itself.
      block = this.end;
      this.end += this.clusterSize;
      if (this.end > this.fileSize) this.fileSize = this.end;
      const table = new Uint8Array(this.clusterSize);
      await this.store.write(table, block);
      this.refblockCache.set(block, cachedTable(table, block));
      setU64(this.refTableView, tableIndex * 8, block);
      await this.store.write(
        this.refTable.subarray(tableIndex * 8, tableIndex * 8 + 8),
        this.refTableOffset + tableIndex * 8,
      );
      await this.addRefcount(block, 1);
    } else if (block % this.clusterSize !== 0 || block >= this.end) {
      throw this.corrupt(
        `refcount block ${tableIndex} at ${hex(block)} is not a cluster inside the file`,
        this.refTableOffset + tableIndex * 8,
      );
    }
    const table = (await this.loadCached(this.refblockCache, block)).table;
    const index = cluster % this.refcountsPerBlock;
    const current = readRefcount(table, this.refcountOrder, index);
    const next = current + delta;
    if (next < 0)
      throw this.corrupt(`refcount of cluster ${hex(hostOffset)} would drop below zero`, block);
    if (this.refcountOrder < 6 && next >= 2 ** (2 ** this.refcountOrder)) {
      throw new DiskImageError(
        "unsupported",
        `${this.store.name}: qcow2 refcount of cluster ${hex(hostOffset)} overflows ${2 ** this.refcountOrder} bits`,
      );
    }
    writeRefcount(table, this.refcountOrder, index, next);
    if (next === 0 && delta < 0) this.freed.push(hostOffset - (hostOffset % this.clusterSize));
    const byte = Math.floor((index << this.refcountOrder) / 8);
    const bytes = Math.max(1, 2 ** this.refcountOrder / 8);
    await this.store.write(table.subarray(byte, byte + bytes), block + byte);
  }

  /** Moves the refcount table to a larger place at the end of the file (qcow2.txt: refcount_table_offset/clusters). */
  private async growRefTable(neededIndex: number): Promise<void> {
    const clusterSize = this.clusterSize;
    const entriesPerCluster = clusterSize / 8;
    const clusters = Math.max(
      this.refTableClusters * 2,
      Math.ceil((neededIndex + 2) / entriesPerCluster) + 1,
    );
    if (clusters * clusterSize > MAX_REFTABLE_BYTES) {
      throw new DiskImageError(
        "unsupported",
        `${this.store.name}: qcow2 refcount table would exceed 8 MiB`,
      );
    }
    const oldOffset = this.refTableOffset;
    const oldClusters = this.refTableClusters;
    const offset = this.end;
    this.end += clusters * clusterSize;
    if (this.end > this.fileSize) this.fileSize = this.end;
    const table = new Uint8Array(clusters * clusterSize);
    table.set(this.refTable);
    await this.store.write(table, offset);
    // Switch the header to the new table (refcount_table_offset @48, clusters @56) in one write.
    const field = new Uint8Array(12);
    const fieldView = new DataView(field.buffer);
    setU64(fieldView, 0, offset);
    fieldView.setUint32(8, clusters);
    await this.store.write(field, 48);
    this.refTable = table;
    this.refTableView = new DataView(table.buffer);
    this.refTableOffset = offset;
    this.refTableClusters = clusters;
    for (let i = 0; i < clusters; i++) await this.addRefcount(offset + i * clusterSize, 1);
    for (let i = 0; i < oldClusters; i++) await this.addRefcount(oldOffset + i * clusterSize, -1);
  }

  /**
   * Rebuilds every refcount from the tables and compares it with the stored
   * one, like `qemu-img check`: stored < referenced is an error (data could
   * be lost), stored > referenced a leak.
   */
  async checkRefcounts(
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ errors: string[]; leaks: number; referencedClusters: number }> {
    return this.mutex.run(async () => {
      const errors: string[] = [];
      const clusterSize = this.clusterSize;
      const totalClusters = Math.ceil(this.end / clusterSize);
      const expected = new Uint32Array(totalClusters);
      const count = (offset: number, bytes: number, what: string) => {
        const first = Math.floor(offset / clusterSize);
        const last = Math.floor((offset + bytes - 1) / clusterSize);
        for (let cluster = first; cluster <= last; cluster++) {
          if (cluster >= totalClusters) {
            errors.push(`${what} at ${hex(offset)} is past the end of the file`);
            return;
          }
          expected[cluster]++;
        }
      };
      count(0, clusterSize, "header");
      count(this.l1Offset, Math.max(1, this.l1.length), "L1 table");
      count(this.refTableOffset, this.refTableClusters * clusterSize, "refcount table");
      for (let i = 0; i < this.refTable.length / 8; i++) {
        const block = u64(this.refTableView, i * 8);
        if (block !== 0) count(block, clusterSize, `refcount block ${i}`);
      }
      if (this.details.snapshots > 0)
        errors.push(`${this.details.snapshots} internal snapshot(s) not checked`);
      const l1Entries = this.l1.length / 8;
      const total = l1Entries + totalClusters;
      for (let l1Index = 0; l1Index < l1Entries; l1Index++) {
        onProgress?.(l1Index, total);
        let l2: CachedTable | null;
        try {
          l2 = await this.l2Table(l1Index);
        } catch (error) {
          if (!(error instanceof DiskImageError)) throw error;
          errors.push(error.message);
          continue;
        }
        if (l2 === null) continue;
        count(l2.offset, clusterSize, `L2 table ${l1Index}`);
        const view = l2.view;
        for (let i = 0; i < this.l2Entries; i++) {
          const high = view.getUint32(i * 8);
          const low = view.getUint32(i * 8 + 4);
          if (high & L2_COMPRESSED) {
            const { offset, length } = this.compressedSpan(high, low);
            count(offset, length, "compressed cluster");
          } else {
            const host = entryOffset(high, low);
            if (host === 0) continue;
            if (host % clusterSize !== 0)
              errors.push(`data cluster at ${hex(host)} is not cluster-aligned`);
            else count(host, clusterSize, "data cluster");
          }
        }
      }
      let leaks = 0;
      let referencedClusters = 0;
      for (let cluster = 0; cluster < totalClusters; cluster++) {
        if (cluster % 4096 === 0) onProgress?.(l1Entries + cluster, total);
        const stored = await this.storedRefcount(cluster);
        const wanted = expected[cluster];
        if (wanted > 0) referencedClusters++;
        if (stored < wanted)
          errors.push(`cluster ${cluster} has refcount ${stored} but ${wanted} references`);
        else if (stored > wanted) leaks++;
      }
      onProgress?.(total, total);
      return { errors, leaks, referencedClusters };
    });
  }

  private async storedRefcount(cluster: number): Promise<number> {
    const tableIndex = Math.floor(cluster / this.refcountsPerBlock);
    if (tableIndex * 8 >= this.refTable.length) return 0;
    const block = u64(this.refTableView, tableIndex * 8);
    if (block === 0 || block % this.clusterSize !== 0 || block >= this.end) return 0;
    const table = (await this.loadCached(this.refblockCache, block)).table;
    return readRefcount(table, this.refcountOrder, cluster % this.refcountsPerBlock);
  }
}

/**
 * Refcount entries are big-endian for widths of 8 bits and more, and packed
 * starting at the least significant bits of a byte below that (qemu
 * block/qcow2-refcount.c get_refcount_ro0..ro6).
 */
/** Clusters past the end of the file that skipCountedClusters looks at. */
const COUNTED_WINDOW = 64;

function readRefcount(block: Uint8Array, order: number, index: number): number {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const bits = 1 << order;
      const perByte = 8 >> order;
      return (block[Math.floor(index / perByte)] >> ((index % perByte) * bits)) & ((1 << bits) - 1);
    }
    case 3:
      return block[index];
    case 4:
      return (block[index * 2] << 8) | block[index * 2 + 1];
    case 5:
      return new DataView(block.buffer, block.byteOffset).getUint32(index * 4);
    default:
      return u64(new DataView(block.buffer, block.byteOffset), index * 8);
  }
}

function writeRefcount(block: Uint8Array, order: number, index: number, value: number): void {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const bits = 1 << order;
      const perByte = 8 >> order;
      const shift = (index % perByte) * bits;
      const at = Math.floor(index / perByte);
      block[at] = (block[at] & ~(((1 << bits) - 1) << shift)) | (value << shift);
      return;
    }
    case 3:
      block[index] = value;
      return;
    case 4:
      block[index * 2] = value >>> 8;
      block[index * 2 + 1] = value & 0xff;
      return;
    case 5:
      new DataView(block.buffer, block.byteOffset).setUint32(index * 4, value);
      return;
    default:
      setU64(new DataView(block.buffer, block.byteOffset), index * 8, value);
  }
}
