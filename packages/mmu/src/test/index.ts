/**
 * Test helpers for packages that need guest page tables (CPU, hypervisor and
 * toolstack tests): builders that write x86 and arm64 translation tables into
 * a `GuestMemory`, allocating table pages from a region you give them.
 * Exported as `@kumo/mmu/test`; not for production code (they allocate and
 * take BigInt addresses for convenience).
 */
import type { GuestMemory, GuestPhysicalAddress } from "../index";

/** A virtual address: a number below 2^53, or a bigint for the upper half (0xffff...). */
export type VirtualAddressInput = number | bigint;

function toBigInt(va: VirtualAddressInput): bigint {
  return typeof va === "bigint" ? BigInt.asUintN(64, va) : BigInt(va);
}

class TableAllocator {
  constructor(
    private readonly memory: GuestMemory,
    private next: GuestPhysicalAddress,
    private readonly end: GuestPhysicalAddress,
  ) {}

  allocate(): GuestPhysicalAddress {
    if (this.next + 4096 > this.end) {
      throw new RangeError(`page-table region exhausted at 0x${this.next.toString(16)}`);
    }
    const page = this.next;
    this.next += 4096;
    this.memory.writeBytes(page, new Uint8Array(4096));
    return page;
  }
}

export interface X86MapOptions {
  writable?: boolean;
  user?: boolean;
  /** Sets XD (bit 63) in the leaf; only meaningful with PAE/4-level and EFER.NXE. */
  noExecute?: boolean;
  global?: boolean;
  /** 4096 (default), 2 MiB (PAE/4-level), 4 MiB (32-bit with CR4.PSE) or 1 GiB (4-level). */
  pageSize?: number;
  /** Pre-set accessed and dirty flags. */
  accessed?: boolean;
  dirty?: boolean;
}

/**
 * Writes x86 page tables: `mode` "32" (two-level, 4-byte entries), "pae" or
 * "long" (4-level). Intermediate entries are present, writable and user, so
 * the leaf alone decides the rights. `cr3` is the value to load.
 */
export class X86PageTableBuilder {
  readonly cr3: GuestPhysicalAddress;
  private readonly allocator: TableAllocator;

  constructor(
    private readonly memory: GuestMemory,
    readonly mode: "32" | "pae" | "long",
    region: { start: GuestPhysicalAddress; end: GuestPhysicalAddress },
  ) {
    this.allocator = new TableAllocator(memory, region.start, region.end);
    this.cr3 = this.allocator.allocate();
    if (mode === "pae") {
      // The four PDPTEs, each with its page directory.
      for (let i = 0; i < 4; i++)
        memory.write64(this.cr3 + i * 8, this.allocator.allocate() | 1, 0);
    }
  }

  /** Maps `size` bytes (a multiple of the page size) from `va` to `physical`. */
  map(
    va: VirtualAddressInput,
    physical: GuestPhysicalAddress,
    size: number,
    options: X86MapOptions = {},
  ): void {
    const pageSize = options.pageSize ?? 4096;
    for (let offset = 0; offset < size; offset += pageSize) {
      this.mapPage(toBigInt(va) + BigInt(offset), physical + offset, pageSize, options);
    }
  }

  private mapPage(va: bigint, physical: number, pageSize: number, options: X86MapOptions): void {
    let leafBits = 1;
    if (options.writable) leafBits |= 2;
    if (options.user) leafBits |= 4;
    if (options.accessed) leafBits |= 0x20;
    if (options.dirty) leafBits |= 0x40;
    if (options.global) leafBits |= 0x100;
    if (this.mode === "32") {
      const pde = this.cr3 + Number((va >> 22n) & 0x3ffn) * 4;
      if (pageSize === 4 << 20) {
        this.memory.write32(pde, (physical | leafBits | 0x80) >>> 0);
        return;
      }
      if (pageSize !== 4096) throw new RangeError(`32-bit paging has no ${pageSize}-byte pages`);
      const table = this.table32(pde);
      this.memory.write32(table + Number((va >> 12n) & 0x3ffn) * 4, (physical | leafBits) >>> 0);
      return;
    }
    const levels = this.mode === "long" ? [39n, 30n, 21n, 12n] : [30n, 21n, 12n];
    const leafShift = pageSize === 1 << 30 ? 30n : pageSize === 2 << 20 ? 21n : 12n;
    if (Number(1n << leafShift) !== pageSize || (leafShift === 30n && this.mode !== "long")) {
      throw new RangeError(`${this.mode} paging has no ${pageSize}-byte pages`);
    }
    let table = this.cr3;
    for (const shift of levels) {
      const mask = this.mode === "pae" && shift === 30n ? 3n : 0x1ffn;
      const entry = table + Number((va >> shift) & mask) * 8;
      if (shift === leafShift) {
        const high = Math.floor(physical / 2 ** 32) | (options.noExecute ? 0x80000000 : 0);
        const large = shift > 12n ? 0x80 : 0;
        this.memory.write64(entry, ((physical % 2 ** 32) | leafBits | large) >>> 0, high >>> 0);
        return;
      }
      table = this.tableAt(entry, this.mode === "pae" && shift === 30n);
    }
  }

  private table32(pde: number): number {
    const value = this.memory.read32(pde);
    if (value & 1) return (value & 0xfffff000) >>> 0;
    const table = this.allocator.allocate();
    this.memory.write32(pde, table | 7);
    return table;
  }

  private tableAt(entry: number, pdpte: boolean): number {
    const low = this.memory.read32(entry);
    const high = this.memory.read32(entry + 4);
    if (low & 1) return (high & 0xfffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
    const table = this.allocator.allocate();
    this.memory.write64(entry, table | (pdpte ? 1 : 7), 0);
    return table;
  }
}

export interface Arm64MapOptions {
  /** AP[2:1]: 0 EL1 RW, 1 EL0+EL1 RW, 2 EL1 RO, 3 EL0+EL1 RO (default 0). */
  accessPermissions?: 0 | 1 | 2 | 3;
  uxn?: boolean;
  pxn?: boolean;
  /** AttrIndx into MAIR_EL1 (default 0). */
  attributeIndex?: number;
  /** Non-global (ASID-tagged). */
  notGlobal?: boolean;
  /** Leave the access flag clear (the first access faults unless TCR_EL1.HA). */
  noAccessFlag?: boolean;
  /** 4096 (default), 2 MiB or 1 GiB blocks. */
  pageSize?: number;
}

/**
 * Writes arm64 stage-1 tables for the 4 KiB granule with a 48-bit
 * (`inputBits` 48, start level 0) or 39-bit (start level 1) space. `ttbr` is
 * the table base to load into TTBR0_EL1 or TTBR1_EL1; the VA bits above the
 * space are ignored when mapping (so upper-half addresses work for TTBR1).
 */
export class Arm64PageTableBuilder {
  readonly ttbr: GuestPhysicalAddress;
  private readonly allocator: TableAllocator;

  constructor(
    private readonly memory: GuestMemory,
    readonly inputBits: 39 | 48,
    region: { start: GuestPhysicalAddress; end: GuestPhysicalAddress },
  ) {
    this.allocator = new TableAllocator(memory, region.start, region.end);
    this.ttbr = this.allocator.allocate();
  }

  map(
    va: VirtualAddressInput,
    physical: GuestPhysicalAddress,
    size: number,
    options: Arm64MapOptions = {},
  ): void {
    const pageSize = options.pageSize ?? 4096;
    for (let offset = 0; offset < size; offset += pageSize) {
      this.mapPage(toBigInt(va) + BigInt(offset), physical + offset, pageSize, options);
    }
  }

  private mapPage(va: bigint, physical: number, pageSize: number, options: Arm64MapOptions): void {
    const leafLevel = pageSize === 1 << 30 ? 1 : pageSize === 2 << 20 ? 2 : 3;
    if ([1 << 30, 2 << 20, 4096][leafLevel - 1] !== pageSize) {
      throw new RangeError(`no ${pageSize}-byte pages with the 4 KiB granule`);
    }
    let table = this.ttbr;
    for (let level = this.inputBits === 48 ? 0 : 1; level <= leafLevel; level++) {
      const shift = BigInt(12 + 9 * (3 - level));
      const entry = table + Number((va >> shift) & 0x1ffn) * 8;
      if (level === leafLevel) {
        let low = (physical % 2 ** 32) | (level === 3 ? 3 : 1);
        low |= (options.attributeIndex ?? 0) << 2;
        low |= (options.accessPermissions ?? 0) << 6;
        low |= 3 << 8; // inner shareable
        if (!options.noAccessFlag) low |= 1 << 10;
        if (options.notGlobal) low |= 1 << 11;
        let high = Math.floor(physical / 2 ** 32);
        if (options.pxn) high |= 1 << 21;
        if (options.uxn) high |= 1 << 22;
        this.memory.write64(entry, low >>> 0, high >>> 0);
        return;
      }
      const low = this.memory.read32(entry);
      if ((low & 3) === 3) {
        table = (this.memory.read32(entry + 4) & 0xffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
      } else {
        const next = this.allocator.allocate();
        this.memory.write64(entry, next | 3, 0);
        table = next;
      }
    }
  }
}
