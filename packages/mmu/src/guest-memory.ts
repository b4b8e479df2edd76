import {
  type GuestFrameNumber,
  type GuestPhysicalAddress,
  PAGE_OFFSET_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
} from "./address";

/**
 * A device behind a range of guest-physical addresses. `offset` is relative
 * to the region's base; `size` is 1, 2 or 4 (wider guest accesses arrive as
 * 4-byte halves, low half first, as on a 32-bit bus). Reads return the value
 * zero-extended. A handler never sees an address outside its region.
 */
export interface MmioHandler {
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

/** What backs one guest frame (see `ArrayBufferGuestMemory.frameKind`). */
export type FrameKind = "ram" | "removed" | "foreign" | "mmio" | "hole";

/**
 * Per-frame state of the RAM region in `GuestRam.frameState`. 0 means the
 * frame is the domain's own RAM at its identity place in the buffer, the
 * only state in which a CPU may touch `GuestRam.u8` directly.
 */
export const FrameState = {
  /** Own RAM, direct access allowed. */
  Ram: 0,
  /** Given back (ballooning, Xen XENMEM_decrease_reservation): reads all-ones, writes dropped. */
  Removed: 1,
  /** Hidden under a mapping of another frame (grant or foreign map): go through `GuestMemory`. */
  Mapped: 2,
} as const;
export type FrameState = (typeof FrameState)[keyof typeof FrameState];

/**
 * The RAM of a domain as raw typed arrays, for a CPU's hot path. Byte `i` of
 * every view is guest-physical address `base + i`. A CPU may access the views
 * directly after checking that `address - base` is below `size` and that
 * `frameState[(address - base) >>> 12] === FrameState.Ram`; everything else
 * (holes, MMIO, removed and mapped frames) goes through `GuestMemory`. The
 * host must be little-endian like both guest architectures (checked at load).
 */
export interface GuestRam {
  /** Guest-physical address of the first RAM byte (0 on x86, 0x40000000 on arm virt). */
  readonly base: GuestPhysicalAddress;
  /** RAM size in bytes, a multiple of 4096. */
  readonly size: number;
  /**
   * The backing store, transferable to a Worker when shared. RAM is its first
   * `size` bytes; a WebAssembly memory (`GuestMemoryOptions.wasmScratch`) is longer.
   */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly u8: Uint8Array;
  /** For 2-byte aligned accesses: `u16[offset >>> 1]`. */
  readonly u16: Uint16Array;
  /** For 4-byte aligned accesses: `i32[offset >>> 2]` (signed; `>>> 0` for unsigned). */
  readonly i32: Int32Array;
  /** For unaligned accesses within RAM (little-endian: pass `true`). */
  readonly view: DataView;
  /** One `FrameState` per RAM frame. */
  readonly frameState: Uint8Array;
}

/**
 * A domain's guest-physical address space as its consumers see it: CPUs,
 * grant tables, backends, devices. Like rust-vmm's vm-memory it only reads
 * and writes; creating and reshaping memory is the provider's business
 * (`ArrayBufferGuestMemory`). No method throws for a guest address: holes read
 * as all-ones and swallow writes, as unclaimed bus cycles do on a PC.
 */
export interface GuestMemory {
  /** Direct access to RAM for hot paths. */
  readonly ram: GuestRam;
  read8(address: GuestPhysicalAddress): number;
  read16(address: GuestPhysicalAddress): number;
  /** Unsigned 32-bit value. */
  read32(address: GuestPhysicalAddress): number;
  /** Writes the low half to `out[index]` and the high half to `out[index + 1]`. */
  read64(address: GuestPhysicalAddress, out: Uint32Array | Int32Array, index?: number): void;
  write8(address: GuestPhysicalAddress, value: number): void;
  write16(address: GuestPhysicalAddress, value: number): void;
  write32(address: GuestPhysicalAddress, value: number): void;
  write64(address: GuestPhysicalAddress, low: number, high: number): void;
  /** Copies `target.length` bytes from guest memory into `target`. */
  readBytes(address: GuestPhysicalAddress, target: Uint8Array): void;
  /** Copies `source` into guest memory. */
  writeBytes(address: GuestPhysicalAddress, source: Uint8Array): void;
  /**
   * A live 4096-byte view of one frame of RAM (own or mapped), or null when
   * the frame is a hole, MMIO or removed. Writes through the view are guest
   * memory writes; the view stays valid for the memory's lifetime, but after a
   * p2m change it may no longer be what the gfn points at.
   */
  frame(gfn: GuestFrameNumber): Uint8Array | null;
  /**
   * Offset in `ram.u8` of `address` when it lies in directly accessible RAM,
   * else -1. A CPU calls this when it fills a TLB entry.
   */
  directOffset(address: GuestPhysicalAddress): number;
  /** Incremented by every p2m change (map, unmap, remove, populate, MMIO add/remove). */
  readonly p2mVersion: number;
  /**
   * Calls `listener(gfn, count)` after frames change what backs them, so
   * that CPUs can drop TLB entries and decoded code (Xen flushes TLBs after
   * p2m updates for the same reason). Returns a function that removes it.
   */
  addP2mListener(listener: (gfn: GuestFrameNumber, count: number) => void): () => void;
  /**
   * Hands out `bytes` of the scratch that follows RAM in the same
   * `WebAssembly.Memory` (see `GuestMemoryOptions.wasmScratch`), or returns
   * null when there is none or not enough left. A CPU's WebAssembly code can
   * address only one memory, so the state it reads (registers, TLB) must sit
   * beside RAM. Optional: memories without scratch may omit it.
   */
  claimWasmScratch?(bytes: number): WasmScratch | null;
}

/** A piece of WebAssembly scratch: `bytes` at byte `offset` of `memory.buffer` (RAM is at byte 0). */
export interface WasmScratch {
  readonly memory: WebAssembly.Memory;
  /** Byte offset in `memory.buffer`, a multiple of 4096. */
  readonly offset: number;
}

/** A mistake in how the memory was configured: the message says what and where. */
export class GuestMemoryConfigError extends Error {
  override name = "GuestMemoryConfigError";
}

export interface GuestMemoryOptions {
  /** RAM size in bytes: a positive multiple of 4096. */
  ramSize: number;
  /** Guest-physical address of RAM, 4096-aligned (default 0). */
  ramBase?: GuestPhysicalAddress;
  /** Back RAM with a SharedArrayBuffer (default: only when the host provides one and `shared !== false`). */
  shared?: boolean;
  /** Use this buffer instead of allocating one (its length must equal `ramSize`). */
  buffer?: ArrayBuffer | SharedArrayBuffer;
  /**
   * Bytes of scratch to allocate after RAM, with RAM, as one
   * `WebAssembly.Memory` (see `GuestMemory.claimWasmScratch`). Ignored
   * (plain ArrayBuffer RAM, no scratch) with `shared` or `buffer`, on hosts
   * without WebAssembly, and when RAM plus scratch exceed what a 32-bit
   * WebAssembly memory can address or the host refuses to allocate it.
   */
  wasmScratch?: number;
}

/** WebAssembly pages are 64 KiB; a 32-bit memory has at most 65536 of them. */
const WASM_PAGE = 65536;
const WASM_MAX_PAGES = 65536;

/** RAM and scratch as one WebAssembly.Memory, or null where that cannot be had. */
function allocateWasmMemory(ramSize: number, scratch: number): WebAssembly.Memory | null {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.Memory !== "function") return null;
  const pages = Math.ceil((ramSize + scratch) / WASM_PAGE);
  if (pages > WASM_MAX_PAGES) return null;
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages });
  } catch {
    // Out of address space or memory: RAM alone still fits in an ArrayBuffer.
    return null;
  }
}

interface MmioRegion {
  base: GuestPhysicalAddress;
  size: number;
  handler: MmioHandler;
}

interface MappedFrame {
  view: Uint8Array;
  writable: boolean;
}

if (new Uint8Array(new Uint16Array([0x0102]).buffer)[0] !== 0x02) {
  throw new Error("@kumo/mmu needs a little-endian host (both guest architectures are)");
}

const sharedAvailable = typeof SharedArrayBuffer === "function";

/**
 * Guest memory backed by one ArrayBuffer or SharedArrayBuffer, with MMIO
 * regions, holes and a p2m overlay for grant/foreign mappings and
 * ballooning.
 */
export class ArrayBufferGuestMemory implements GuestMemory {
  readonly ram: GuestRam;
  p2mVersion = 0;
  private readonly base: number;
  private readonly size: number;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly i32: Int32Array;
  private readonly view: DataView;
  private readonly frameState: Uint8Array;
  private readonly mmio: MmioRegion[] = [];
  private readonly mapped = new Map<number, MappedFrame>();
  private readonly listeners: ((gfn: number, count: number) => void)[] = [];
  /** The WebAssembly.Memory holding RAM and scratch (null: RAM is a plain buffer). */
  private readonly wasmMemory: WebAssembly.Memory | null = null;
  private scratchNext = 0;
  private scratchEnd = 0;

  constructor(options: GuestMemoryOptions) {
    const { ramSize, ramBase = 0 } = options;
    if (!Number.isSafeInteger(ramSize) || ramSize <= 0 || ramSize % PAGE_SIZE !== 0) {
      throw new GuestMemoryConfigError(
        `ramSize must be a positive multiple of 4096 bytes, got ${ramSize}`,
      );
    }
    if (!Number.isSafeInteger(ramBase) || ramBase < 0 || ramBase % PAGE_SIZE !== 0) {
      throw new GuestMemoryConfigError(
        `ramBase must be a 4096-aligned guest-physical address, got ${ramBase}`,
      );
    }
    let buffer = options.buffer;
    const scratch = options.wasmScratch ?? 0;
    if (!Number.isSafeInteger(scratch) || scratch < 0) {
      throw new GuestMemoryConfigError(
        `wasmScratch must be a non-negative number of bytes, got ${options.wasmScratch}`,
      );
    }
    if (buffer) {
      if (buffer.byteLength !== ramSize) {
        throw new GuestMemoryConfigError(
          `buffer holds ${buffer.byteLength} bytes but ramSize is ${ramSize}`,
        );
      }
    } else if (options.shared === true) {
      if (!sharedAvailable) {
        throw new GuestMemoryConfigError(
          "shared: true needs SharedArrayBuffer, which this host does not provide (cross-origin isolation?)",
        );
      }
      buffer = new SharedArrayBuffer(ramSize);
    } else {
      this.wasmMemory = scratch > 0 ? allocateWasmMemory(ramSize, scratch) : null;
      buffer = this.wasmMemory?.buffer ?? new ArrayBuffer(ramSize);
      // Scratch starts at the first 4096-aligned byte after RAM (ramSize is one).
      this.scratchNext = ramSize;
      this.scratchEnd = this.wasmMemory ? buffer.byteLength : ramSize;
    }
    this.base = ramBase;
    this.size = ramSize;
    this.u8 = new Uint8Array(buffer, 0, ramSize);
    this.u16 = new Uint16Array(buffer, 0, ramSize >>> 1);
    this.i32 = new Int32Array(buffer, 0, ramSize >>> 2);
    this.view = new DataView(buffer, 0, ramSize);
    this.frameState = new Uint8Array(ramSize / PAGE_SIZE);
    this.ram = {
      base: ramBase,
      size: ramSize,
      buffer,
      u8: this.u8,
      u16: this.u16,
      i32: this.i32,
      view: this.view,
      frameState: this.frameState,
    };
  }

  // ---- Fast accessors: own RAM first, everything else through slowRead/slowWrite.

  read8(address: GuestPhysicalAddress): number {
    const offset = address - this.base;
    if (offset >= 0 && offset < this.size && this.frameState[offset >>> PAGE_SHIFT] === 0) {
      return this.u8[offset];
    }
    return this.slowRead(address, 1);
  }

  read16(address: GuestPhysicalAddress): number {
    const offset = address - this.base;
    if (
      offset >= 0 &&
      offset < this.size &&
      (offset & PAGE_OFFSET_MASK) <= PAGE_SIZE - 2 &&
      this.frameState[offset >>> PAGE_SHIFT] === 0
    ) {
      return (offset & 1) === 0 ? this.u16[offset >>> 1] : this.view.getUint16(offset, true);
    }
    return this.slowRead(address, 2);
  }

  read32(address: GuestPhysicalAddress): number {
    const offset = address - this.base;
    if (
      offset >= 0 &&
      offset < this.size &&
      (offset & PAGE_OFFSET_MASK) <= PAGE_SIZE - 4 &&
      this.frameState[offset >>> PAGE_SHIFT] === 0
    ) {
      return (offset & 3) === 0 ? this.i32[offset >>> 2] >>> 0 : this.view.getUint32(offset, true);
    }
    return this.slowRead(address, 4);
  }

  read64(address: GuestPhysicalAddress, out: Uint32Array | Int32Array, index = 0): void {
    out[index] = this.read32(address);
    out[index + 1] = this.read32(address + 4);
  }

  write8(address: GuestPhysicalAddress, value: number): void {
    const offset = address - this.base;
    if (offset >= 0 && offset < this.size && this.frameState[offset >>> PAGE_SHIFT] === 0) {
      this.u8[offset] = value;
      return;
    }
    this.slowWrite(address, 1, value);
  }

  write16(address: GuestPhysicalAddress, value: number): void {
    const offset = address - this.base;
    if (
      offset >= 0 &&
      offset < this.size &&
      (offset & PAGE_OFFSET_MASK) <= PAGE_SIZE - 2 &&
      this.frameState[offset >>> PAGE_SHIFT] === 0
    ) {
      if ((offset & 1) === 0) this.u16[offset >>> 1] = value;
      else this.view.setUint16(offset, value, true);
      return;
    }
    this.slowWrite(address, 2, value);
  }

  write32(address: GuestPhysicalAddress, value: number): void {
    const offset = address - this.base;
    if (
      offset >= 0 &&
      offset < this.size &&
      (offset & PAGE_OFFSET_MASK) <= PAGE_SIZE - 4 &&
      this.frameState[offset >>> PAGE_SHIFT] === 0
    ) {
      if ((offset & 3) === 0) this.i32[offset >>> 2] = value;
      else this.view.setUint32(offset, value >>> 0, true);
      return;
    }
    this.slowWrite(address, 4, value);
  }

  write64(address: GuestPhysicalAddress, low: number, high: number): void {
    this.write32(address, low);
    this.write32(address + 4, high);
  }

  readBytes(address: GuestPhysicalAddress, target: Uint8Array): void {
    let done = 0;
    while (done < target.length) {
      const at = address + done;
      const chunk = Math.min(target.length - done, PAGE_SIZE - (at % PAGE_SIZE));
      const frame = this.frame(Math.floor(at / PAGE_SIZE));
      if (frame) {
        const start = at % PAGE_SIZE;
        target.set(frame.subarray(start, start + chunk), done);
      } else {
        for (let i = 0; i < chunk; i++) target[done + i] = this.slowRead(at + i, 1);
      }
      done += chunk;
    }
  }

  writeBytes(address: GuestPhysicalAddress, source: Uint8Array): void {
    let done = 0;
    while (done < source.length) {
      const at = address + done;
      const chunk = Math.min(source.length - done, PAGE_SIZE - (at % PAGE_SIZE));
      const gfn = Math.floor(at / PAGE_SIZE);
      const mapped = this.mapped.get(gfn);
      const frame = mapped && !mapped.writable ? null : this.frame(gfn);
      if (frame) {
        frame.set(source.subarray(done, done + chunk), at % PAGE_SIZE);
      } else {
        for (let i = 0; i < chunk; i++) this.slowWrite(at + i, 1, source[done + i]);
      }
      done += chunk;
    }
  }

  frame(gfn: GuestFrameNumber): Uint8Array | null {
    const mapped = this.mapped.get(gfn);
    if (mapped) return mapped.view;
    const offset = gfn * PAGE_SIZE - this.base;
    if (offset >= 0 && offset < this.size && this.frameState[offset / PAGE_SIZE] === 0) {
      return this.u8.subarray(offset, offset + PAGE_SIZE);
    }
    return null;
  }

  directOffset(address: GuestPhysicalAddress): number {
    const offset = address - this.base;
    if (offset >= 0 && offset < this.size && this.frameState[offset >>> PAGE_SHIFT] === 0) {
      return offset;
    }
    return -1;
  }

  addP2mListener(listener: (gfn: GuestFrameNumber, count: number) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  claimWasmScratch(bytes: number): WasmScratch | null {
    if (this.wasmMemory === null || !Number.isSafeInteger(bytes) || bytes <= 0) return null;
    const size = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
    if (this.scratchNext + size > this.scratchEnd) return null;
    const offset = this.scratchNext;
    this.scratchNext += size;
    return { memory: this.wasmMemory, offset };
  }

  // ---- Provider side: MMIO and the p2m.

  /** What backs a frame now. */
  frameKind(gfn: GuestFrameNumber): FrameKind {
    if (this.mapped.has(gfn)) return "foreign";
    const address = gfn * PAGE_SIZE;
    if (this.findMmio(address)) return "mmio";
    const offset = address - this.base;
    if (offset >= 0 && offset < this.size) {
      return this.frameState[offset / PAGE_SIZE] === FrameState.Removed ? "removed" : "ram";
    }
    return "hole";
  }

  /**
   * Routes `[base, base + size)` to a device. The range must not overlap RAM
   * or another MMIO region (a configuration mistake, so it throws).
   */
  addMmio(base: GuestPhysicalAddress, size: number, handler: MmioHandler): void {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new GuestMemoryConfigError(`MMIO region [${base}, +${size}) is not a valid range`);
    }
    if (base < this.base + this.size && this.base < base + size) {
      throw new GuestMemoryConfigError(
        `MMIO region [0x${base.toString(16)}, +0x${size.toString(16)}) overlaps RAM [0x${this.base.toString(16)}, +0x${this.size.toString(16)})`,
      );
    }
    for (const region of this.mmio) {
      if (base < region.base + region.size && region.base < base + size) {
        throw new GuestMemoryConfigError(
          `MMIO region [0x${base.toString(16)}, +0x${size.toString(16)}) overlaps the one at 0x${region.base.toString(16)}`,
        );
      }
    }
    this.mmio.push({ base, size, handler });
    this.changed(Math.floor(base / PAGE_SIZE), Math.ceil(size / PAGE_SIZE));
  }

  /** Removes the MMIO region that starts at `base`; returns false if there is none. */
  removeMmio(base: GuestPhysicalAddress): boolean {
    const index = this.mmio.findIndex((region) => region.base === base);
    if (index < 0) return false;
    const [region] = this.mmio.splice(index, 1);
    this.changed(Math.floor(region.base / PAGE_SIZE), Math.ceil(region.size / PAGE_SIZE));
    return true;
  }

  /**
   * Maps a 4096-byte frame from elsewhere (another domain's `frame(gfn)`, a
   * Xen-owned page such as shared_info) at `gfn`, hiding whatever was there
   * (Xen GNTTABOP_map_grant_ref with GNTMAP_host_map, XENMEM_add_to_physmap).
   * A read-only mapping drops the guest's writes. Replaces an earlier mapping.
   */
  mapFrame(gfn: GuestFrameNumber, view: Uint8Array, writable: boolean): void {
    if (!Number.isSafeInteger(gfn) || gfn < 0) {
      throw new GuestMemoryConfigError(`gfn must be a non-negative integer, got ${gfn}`);
    }
    if (view.length !== PAGE_SIZE) {
      throw new GuestMemoryConfigError(`a mapped frame must be 4096 bytes, got ${view.length}`);
    }
    this.mapped.set(gfn, { view, writable });
    const offset = gfn * PAGE_SIZE - this.base;
    if (offset >= 0 && offset < this.size) {
      const index = offset / PAGE_SIZE;
      if (this.frameState[index] === FrameState.Ram) this.frameState[index] = FrameState.Mapped;
    }
    this.changed(gfn, 1);
  }

  /**
   * Removes the mapping at `gfn` (GNTTABOP_unmap_grant_ref). A RAM frame it
   * hid comes back with its old contents. Returns false when nothing was mapped.
   */
  unmapFrame(gfn: GuestFrameNumber): boolean {
    if (!this.mapped.delete(gfn)) return false;
    const offset = gfn * PAGE_SIZE - this.base;
    if (offset >= 0 && offset < this.size) {
      const index = offset / PAGE_SIZE;
      if (this.frameState[index] === FrameState.Mapped) this.frameState[index] = FrameState.Ram;
    }
    this.changed(gfn, 1);
    return true;
  }

  /**
   * Gives a RAM frame back (XENMEM_decrease_reservation, the balloon driver):
   * it then reads as all-ones and drops writes. Returns false when `gfn` is
   * not populated RAM of this domain (Xen fails that request too).
   */
  removeFrame(gfn: GuestFrameNumber): boolean {
    const offset = gfn * PAGE_SIZE - this.base;
    if (!(offset >= 0 && offset < this.size)) return false;
    const index = offset / PAGE_SIZE;
    if (this.frameState[index] === FrameState.Removed) return false;
    this.frameState[index] = FrameState.Removed;
    this.changed(gfn, 1);
    return true;
  }

  /**
   * Puts a removed RAM frame back (XENMEM_populate_physmap), zero-filled as
   * Xen scrubs pages before it hands them out. Returns false when `gfn` is
   * outside RAM or not removed.
   */
  populateFrame(gfn: GuestFrameNumber): boolean {
    const offset = gfn * PAGE_SIZE - this.base;
    if (!(offset >= 0 && offset < this.size)) return false;
    const index = offset / PAGE_SIZE;
    if (this.frameState[index] !== FrameState.Removed) return false;
    this.u8.fill(0, offset, offset + PAGE_SIZE);
    this.frameState[index] = this.mapped.has(gfn) ? FrameState.Mapped : FrameState.Ram;
    this.changed(gfn, 1);
    return true;
  }

  // ---- Slow paths: everything that is not plain own RAM, and page-crossing accesses.

  private slowRead(address: GuestPhysicalAddress, size: 1 | 2 | 4): number {
    const gfn = Math.floor(address / PAGE_SIZE);
    if (gfn === Math.floor((address + size - 1) / PAGE_SIZE)) {
      // Precedence: a p2m mapping, then own RAM, then MMIO, then the hole.
      const frame = this.frame(gfn);
      if (frame) {
        const start = address % PAGE_SIZE;
        let value = 0;
        for (let i = size - 1; i >= 0; i--) value = value * 256 + frame[start + i];
        return value;
      }
      const region = this.findMmio(address);
      if (!region) return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
      if (address + size <= region.base + region.size) {
        const value = region.handler.read(address - region.base, size);
        return size === 4 ? value >>> 0 : value & ((1 << (size * 8)) - 1);
      }
    }
    // Crosses a frame or region boundary: byte by byte, little-endian.
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.slowRead(address + i, 1);
    return value;
  }

  private slowWrite(address: GuestPhysicalAddress, size: 1 | 2 | 4, value: number): void {
    const gfn = Math.floor(address / PAGE_SIZE);
    if (gfn === Math.floor((address + size - 1) / PAGE_SIZE)) {
      const mapped = this.mapped.get(gfn);
      if (mapped && !mapped.writable) return;
      const frame = this.frame(gfn);
      if (frame) {
        const start = address % PAGE_SIZE;
        for (let i = 0; i < size; i++) frame[start + i] = (value >>> (8 * i)) & 0xff;
        return;
      }
      const region = this.findMmio(address);
      if (!region) return;
      if (address + size <= region.base + region.size) {
        const masked = size === 4 ? value >>> 0 : value & ((1 << (size * 8)) - 1);
        region.handler.write(address - region.base, size, masked);
        return;
      }
    }
    for (let i = 0; i < size; i++) this.slowWrite(address + i, 1, (value >>> (8 * i)) & 0xff);
  }

  private findMmio(address: GuestPhysicalAddress): MmioRegion | undefined {
    for (const region of this.mmio) {
      if (address >= region.base && address < region.base + region.size) return region;
    }
    return undefined;
  }

  private changed(gfn: number, count: number): void {
    this.p2mVersion++;
    for (const listener of this.listeners) listener(gfn, count);
  }
}

/** Creates guest memory; shorthand for `new ArrayBufferGuestMemory(options)`. */
export function createGuestMemory(options: GuestMemoryOptions): ArrayBufferGuestMemory {
  return new ArrayBufferGuestMemory(options);
}
