import { TWO_POW_32 } from "./address";
import { setEntryBits } from "./entry-bits";
import type { GuestMemory } from "./guest-memory";
import { TlbPermission } from "./tlb";

/** Access kinds in the low two bits of the `flags` argument of `X86PageWalker.walk`. */
export const X86Access = { Read: 0, Write: 1, Execute: 2 } as const;

/** Further bits of the `flags` argument of `X86PageWalker.walk`. */
export const X86WalkFlags = {
  /** A user-mode access: CPL 3 and not an implicit supervisor access (SDM vol. 3A 4.6). */
  User: 1 << 2,
  /**
   * An implicit supervisor-mode access (descriptor tables, TSS, ...): SMAP
   * applies whatever EFLAGS.AC says, even from CPL 3 (SDM vol. 3A 4.6.1).
   */
  ImplicitSupervisor: 1 << 3,
  /** EFLAGS.AC is 1: explicit supervisor data accesses may touch user pages under SMAP. */
  AlignmentCheck: 1 << 4,
} as const;

/** Page-fault error code bits (Intel SDM vol. 3A 4.7, figure 4-12). */
export const PageFaultErrorCode = {
  /** 0: a not-present entry; 1: a protection or reserved-bit violation. */
  Present: 1 << 0,
  /** The access was a write. */
  Write: 1 << 1,
  /** The access was a user-mode access. */
  User: 1 << 2,
  /** A reserved bit was set in some paging-structure entry. */
  ReservedBit: 1 << 3,
  /** An instruction fetch, reported only with CR4.SMEP or (CR4.PAE and EFER.NXE). */
  InstructionFetch: 1 << 4,
} as const;

/** Control-register bits the walker reads (Intel SDM vol. 3A 2.5, 2.2.1). */
export const X86Control = {
  Cr0Wp: 1 << 16,
  Cr0Pg: 1 << 31,
  Cr4Pse: 1 << 4,
  Cr4Pae: 1 << 5,
  Cr4Pge: 1 << 7,
  Cr4Pcide: 1 << 17,
  Cr4Smep: 1 << 20,
  Cr4Smap: 1 << 21,
  EferLma: 1 << 10,
  EferNxe: 1 << 11,
} as const;

export interface X86PageWalkerOptions {
  /** MAXPHYADDR, CPUID 0x80000008 EAX[7:0] (default 40); bits above are reserved in entries. */
  maxPhysicalAddressBits?: number;
  /** CPUID 0x80000001 EDX.Page1GB: 1 GiB pages in 4-level paging (default true). */
  pages1G?: boolean;
}

// Entry bits (Intel SDM vol. 3A tables 4-4 .. 4-20).
const P = 1 << 0;
const RW = 1 << 1;
const US = 1 << 2;
const ACCESSED = 1 << 5;
const DIRTY = 1 << 6;
const PS = 1 << 7;
const G = 1 << 8;
const ALL_RIGHTS =
  TlbPermission.ReadUser |
  TlbPermission.WriteUser |
  TlbPermission.ExecuteUser |
  TlbPermission.ReadSupervisor |
  TlbPermission.WriteSupervisor |
  TlbPermission.ExecuteSupervisor |
  TlbPermission.ReadSupervisorSmap |
  TlbPermission.WriteSupervisorSmap;
const WRITE_RIGHTS =
  TlbPermission.WriteUser | TlbPermission.WriteSupervisor | TlbPermission.WriteSupervisorSmap;

/**
 * The `TlbPermission` bit an x86 access needs, for TLB lookups and for the
 * walker's own check. `smapActive` is CR4.SMAP and (implicit access or
 * EFLAGS.AC = 0) (Intel SDM vol. 3A 4.6.1).
 */
export function x86AccessPermission(access: number, user: boolean, smapActive: boolean): number {
  if (access === X86Access.Execute) {
    return user ? TlbPermission.ExecuteUser : TlbPermission.ExecuteSupervisor;
  }
  if (user) return access === X86Access.Write ? TlbPermission.WriteUser : TlbPermission.ReadUser;
  if (smapActive) {
    return access === X86Access.Write
      ? TlbPermission.WriteSupervisorSmap
      : TlbPermission.ReadSupervisorSmap;
  }
  return access === X86Access.Write ? TlbPermission.WriteSupervisor : TlbPermission.ReadSupervisor;
}

/**
 * The x86 page walker: 32-bit paging (with 4 MiB pages under CR4.PSE), PAE
 * paging (2 MiB pages, NX) and 4-level paging (2 MiB and 1 GiB pages), as
 * Intel SDM vol. 3A chapter 4 describes them. It sets accessed and dirty
 * flags, applies U/S, R/W with CR0.WP, NX with EFER.NXE, SMEP and SMAP, and
 * reports faults with the page-fault error code of SDM 4.7.
 *
 * It allocates nothing: `walk` returns the guest-physical address (or -1 on
 * a fault) and leaves the details in this object's fields, overwritten by
 * the next call. Not modelled: 5-level paging (CR4.LA57), protection keys
 * (CR4.PKE), shadow stacks, and the PAE PDPTE registers (PDPTEs are read at
 * walk time; a CPU wanting the #GP of a bad PDPTE on MOV CR3 calls
 * `paePdptesValid`). Canonical-address checks (#GP/#SS) belong to the CPU.
 */
export class X86PageWalker {
  /** The translated guest-physical address (also the return value). */
  physicalAddress = 0;
  /** Guest-physical address of the 4 KiB page holding it (for `SoftTlb.insert`). */
  physicalPage = 0;
  /** `TlbPermission` bits of the translation; write rights only once the page is dirty. */
  permissions = 0;
  /** log2 of the page size: 12, 21 (2 MiB), 22 (4 MiB) or 30 (1 GiB). */
  pageShift = 12;
  /** PAT index of the page: PWT | PCD << 1 | PAT << 2 (Intel SDM vol. 3A, "Selecting a Memory Type from the PAT"). */
  attributes = 0;
  /** Page-fault error code when `walk` returned -1 (CR2 is the virtual address). */
  errorCode = 0;
  /**
   * Entries of the last successful walk whose accessed or dirty bit it set
   * in guest memory: bit i for `walkedEntryAddress(i)` (0: none). A CPU
   * that caches decoded code treats those as writes to code pages.
   */
  updatedEntries = 0;

  private readonly memory: GuestMemory;
  private readonly physicalHighMask: number;
  private readonly longReservedHigh: number;
  private readonly paeReservedHigh: number;
  private readonly pse36ReservedLow: number;
  private readonly pages1G: boolean;
  /** Entries used by the current walk, for the accessed/dirty updates. */
  private readonly entryAddress = new Float64Array(4);
  private readonly entryLow = new Int32Array(4);
  private entryCount = 0;

  constructor(memory: GuestMemory, options: X86PageWalkerOptions = {}) {
    const bits = options.maxPhysicalAddressBits ?? 40;
    if (!Number.isInteger(bits) || bits < 32 || bits > 52) {
      throw new RangeError(`maxPhysicalAddressBits must be 32..52, got ${bits}`);
    }
    this.memory = memory;
    this.pages1G = options.pages1G ?? true;
    this.physicalHighMask = (1 << (bits - 32)) - 1;
    // Bits 51:MAXPHYADDR of 4-level entries, 62:MAXPHYADDR of PAE entries.
    this.longReservedHigh = 0xfffff & ~this.physicalHighMask;
    this.paeReservedHigh = 0x7fffffff & ~this.physicalHighMask;
    // 32-bit 4 MiB PDE: bit 21, and bits 20:13 that would hold PA bits >= MAXPHYADDR (SDM table 4-4).
    this.pse36ReservedLow = (1 << 21) | ((0xff & ~((1 << Math.min(8, bits - 32)) - 1)) << 13);
  }

  /**
   * Translates `va` (two 32-bit halves; the high half is ignored outside
   * 4-level paging) for one access described by `flags` (`X86Access` kind |
   * `X86WalkFlags`). Returns the guest-physical address, or -1 with
   * `errorCode` set for a #PF.
   */
  walk(
    cr0: number,
    cr3Low: number,
    cr3High: number,
    cr4: number,
    efer: number,
    vaLow: number,
    vaHigh: number,
    flags: number,
  ): number {
    const access = flags & 3;
    const user = (flags & X86WalkFlags.User) !== 0;
    this.entryCount = 0;
    if ((cr0 & X86Control.Cr0Pg) === 0) {
      // Paging off: linear is physical (SDM vol. 3A 4.1.1).
      this.physicalAddress = vaLow >>> 0;
      this.physicalPage = (vaLow & ~0xfff) >>> 0;
      this.permissions = ALL_RIGHTS;
      this.pageShift = 12;
      this.attributes = 0;
      return this.physicalAddress;
    }
    const pae = (cr4 & X86Control.Cr4Pae) !== 0;
    const nxe = pae && (efer & X86Control.EferNxe) !== 0;
    const memory = this.memory;
    let userPage = true;
    let writable = true;
    let executeDisable = false;
    let leafLow = 0;
    let base = 0;
    let pageShift = 12;
    let patBit = 0;
    let reserved = false;

    if (!pae) {
      // 32-bit paging: PD at CR3[31:12], 4-byte entries (SDM vol. 3A 4.3).
      const pdeAddress = ((cr3Low & 0xfffff000) >>> 0) + ((vaLow >>> 22) << 2);
      const pde = memory.read32(pdeAddress);
      if ((pde & P) === 0) return this.fault(0, access, user, cr4, false);
      userPage = (pde & US) !== 0;
      writable = (pde & RW) !== 0;
      if ((pde & PS) !== 0 && (cr4 & X86Control.Cr4Pse) !== 0) {
        if ((pde & this.pse36ReservedLow) !== 0) {
          return this.fault(PageFaultErrorCode.ReservedBit, access, user, cr4, false);
        }
        this.record(pdeAddress, pde);
        leafLow = pde;
        pageShift = 22;
        base = ((pde & 0xffc00000) >>> 0) + ((pde >>> 13) & 0xff) * TWO_POW_32;
        patBit = (pde >>> 12) & 1;
      } else {
        this.record(pdeAddress, pde);
        const pteAddress = ((pde & 0xfffff000) >>> 0) + (((vaLow >>> 12) & 0x3ff) << 2);
        const pte = memory.read32(pteAddress);
        if ((pte & P) === 0) return this.fault(0, access, user, cr4, false);
        this.record(pteAddress, pte);
        userPage &&= (pte & US) !== 0;
        writable &&= (pte & RW) !== 0;
        leafLow = pte;
        base = (pte & 0xfffff000) >>> 0;
        patBit = (pte >>> 7) & 1;
      }
    } else {
      const longMode = (efer & X86Control.EferLma) !== 0;
      const reservedHigh =
        (longMode ? this.longReservedHigh : this.paeReservedHigh) | (nxe ? 0 : 0x80000000);
      let table: number;
      let level: number;
      if (longMode) {
        // 4-level paging: PML4 at CR3[51:12] (SDM vol. 3A 4.5).
        table = (cr3High & this.physicalHighMask) * TWO_POW_32 + ((cr3Low & 0xfffff000) >>> 0);
        level = 4;
      } else {
        // PAE paging: four PDPTEs at CR3[31:5] (SDM vol. 3A 4.4.1). They carry
        // only P and address bits: no R/W, U/S or XD.
        const pdpteAddress = ((cr3Low & 0xffffffe0) >>> 0) + ((vaLow >>> 30) << 3);
        const low = memory.read32(pdpteAddress);
        const high = memory.read32(pdpteAddress + 4);
        if ((low & P) === 0) return this.fault(0, access, user, cr4, nxe);
        if ((low & 0x1e6) !== 0 || (high & (this.paeReservedHigh | 0x80000000)) !== 0) {
          return this.fault(PageFaultErrorCode.ReservedBit, access, user, cr4, nxe);
        }
        table = (high & this.physicalHighMask) * TWO_POW_32 + ((low & 0xfffff000) >>> 0);
        level = 2;
      }
      for (;;) {
        const index =
          level === 4
            ? (vaHigh >>> 7) & 0x1ff
            : level === 3
              ? ((vaHigh & 0x7f) << 2) | (vaLow >>> 30)
              : level === 2
                ? (vaLow >>> 21) & 0x1ff
                : (vaLow >>> 12) & 0x1ff;
        const entryAddress = table + index * 8;
        const low = memory.read32(entryAddress);
        const high = memory.read32(entryAddress + 4);
        if ((low & P) === 0) return this.fault(0, access, user, cr4, nxe);
        reserved = (high & reservedHigh) !== 0;
        const large = level > 1 && (low & PS) !== 0;
        if (level === 4 && (low & PS) !== 0) reserved = true;
        else if (large && level === 3) reserved ||= !this.pages1G || (low & 0x3fffe000) !== 0;
        else if (large && level === 2) reserved ||= (low & 0x001fe000) !== 0;
        if (reserved) return this.fault(PageFaultErrorCode.ReservedBit, access, user, cr4, nxe);
        this.record(entryAddress, low);
        userPage &&= (low & US) !== 0;
        writable &&= (low & RW) !== 0;
        executeDisable ||= nxe && (high & 0x80000000) !== 0;
        const physicalHigh = (high & this.physicalHighMask) * TWO_POW_32;
        if (level === 1) {
          leafLow = low;
          base = physicalHigh + ((low & 0xfffff000) >>> 0);
          patBit = (low >>> 7) & 1;
          break;
        }
        if (large) {
          leafLow = low;
          pageShift = level === 3 ? 30 : 21;
          base = physicalHigh + ((low & (level === 3 ? 0xc0000000 : 0xffe00000)) >>> 0);
          patBit = (low >>> 12) & 1;
          break;
        }
        table = physicalHigh + ((low & 0xfffff000) >>> 0);
        level--;
      }
    }

    // Rights of the whole walk (SDM vol. 3A 4.6.1): a page is a user page if
    // U/S is set at every level, writable if R/W is, executable unless XD is
    // set anywhere.
    const wp = (cr0 & X86Control.Cr0Wp) !== 0;
    const smep = (cr4 & X86Control.Cr4Smep) !== 0;
    let permissions = TlbPermission.ReadSupervisor;
    const supervisorWrite = wp ? writable : true;
    if (supervisorWrite) permissions |= TlbPermission.WriteSupervisor;
    if (!executeDisable && !(smep && userPage)) permissions |= TlbPermission.ExecuteSupervisor;
    if (userPage) {
      permissions |= TlbPermission.ReadUser;
      if (writable) permissions |= TlbPermission.WriteUser;
      if (!executeDisable) permissions |= TlbPermission.ExecuteUser;
    } else {
      permissions |= TlbPermission.ReadSupervisorSmap;
      if (supervisorWrite) permissions |= TlbPermission.WriteSupervisorSmap;
    }
    const smapActive =
      (cr4 & X86Control.Cr4Smap) !== 0 &&
      ((flags & X86WalkFlags.ImplicitSupervisor) !== 0 ||
        (flags & X86WalkFlags.AlignmentCheck) === 0);
    if ((permissions & x86AccessPermission(access, user, smapActive)) === 0) {
      return this.fault(PageFaultErrorCode.Present, access, user, cr4, nxe);
    }

    // The translation stands: set accessed flags on every entry used and the
    // dirty flag of the leaf on a write (SDM vol. 3A 4.8).
    const count = this.entryCount;
    let updatedEntries = 0;
    for (let i = 0; i < count; i++) {
      let low = this.entryLow[i];
      let updated = low | ACCESSED;
      if (i === count - 1 && access === X86Access.Write) updated |= DIRTY;
      if (updated !== low) {
        setEntryBits(memory, this.entryAddress[i], updated & ~low);
        low = updated;
        updatedEntries |= 1 << i;
      }
      if (i === count - 1) leafLow = low;
    }
    this.updatedEntries = updatedEntries;
    if ((leafLow & DIRTY) === 0) permissions &= ~WRITE_RIGHTS;
    if ((leafLow & G) !== 0 && (cr4 & X86Control.Cr4Pge) !== 0) permissions |= TlbPermission.Global;

    const offsetMask =
      pageShift === 30
        ? 0x3fffffff
        : pageShift === 22
          ? 0x3fffff
          : pageShift === 21
            ? 0x1fffff
            : 0xfff;
    const offset = (vaLow & offsetMask) >>> 0;
    this.physicalAddress = base + offset;
    this.physicalPage = base + (offset & ~0xfff);
    this.permissions = permissions;
    this.pageShift = pageShift;
    this.attributes = ((leafLow >>> 3) & 3) | (patBit << 2);
    return this.physicalAddress;
  }

  /**
   * Whether the four PAE PDPTEs at `cr3Low` are loadable: a present PDPTE
   * with a reserved bit set makes MOV to CR3 raise #GP(0) (SDM vol. 3A 4.4.1).
   */
  paePdptesValid(cr3Low: number): boolean {
    const base = (cr3Low & 0xffffffe0) >>> 0;
    for (let i = 0; i < 4; i++) {
      const low = this.memory.read32(base + i * 8);
      const high = this.memory.read32(base + i * 8 + 4);
      if (
        (low & P) !== 0 &&
        ((low & 0x1e6) !== 0 || (high & (this.paeReservedHigh | 0x80000000)) !== 0)
      ) {
        return false;
      }
    }
    return true;
  }

  /**
   * Number of paging-structure entries the last successful walk used (the
   * PAE PDPTE excluded). With `walkedEntryAddress`, a CPU can write-protect
   * page tables or a test can know which translations an edit affects.
   */
  get walkedEntryCount(): number {
    return this.entryCount;
  }

  /** Guest-physical address of the `i`-th entry of the last walk, top level first. */
  walkedEntryAddress(i: number): number {
    return this.entryAddress[i];
  }

  private record(address: number, low: number): void {
    this.entryAddress[this.entryCount] = address;
    this.entryLow[this.entryCount] = low;
    this.entryCount++;
  }

  private fault(bits: number, access: number, user: boolean, cr4: number, nxe: boolean): number {
    let errorCode = bits;
    if (access === X86Access.Write) errorCode |= PageFaultErrorCode.Write;
    if (user) errorCode |= PageFaultErrorCode.User;
    // I/D is reported only when SMEP or (PAE-type paging and NXE) is on (SDM vol. 3A 4.7).
    if (access === X86Access.Execute && ((cr4 & X86Control.Cr4Smep) !== 0 || nxe)) {
      errorCode |= PageFaultErrorCode.InstructionFetch;
    }
    if (bits & PageFaultErrorCode.ReservedBit) errorCode |= PageFaultErrorCode.Present;
    this.errorCode = errorCode;
    // The entries above the one that failed were used for the translation, so
    // they get their accessed flag even though it faults (SDM vol. 3A 4.8;
    // QEMU does the same level by level). A leaf that denies the access does
    // not: on a protection fault the last recorded entry is that leaf.
    const count = bits === PageFaultErrorCode.Present ? this.entryCount - 1 : this.entryCount;
    for (let i = 0; i < count; i++) {
      const low = this.entryLow[i];
      if ((low & ACCESSED) === 0) setEntryBits(this.memory, this.entryAddress[i], ACCESSED);
    }
    this.entryCount = 0;
    return -1;
  }
}
