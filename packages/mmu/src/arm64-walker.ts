import { TWO_POW_32 } from "./address";
import { setEntryBits } from "./entry-bits";
import type { GuestMemory } from "./guest-memory";
import { TlbPermission } from "./tlb";

/** Access kinds in the low two bits of the `flags` argument of `Arm64PageWalker.walk`. */
export const Arm64Access = { Read: 0, Write: 1, Execute: 2 } as const;

/** Further bits of the `flags` argument of `Arm64PageWalker.walk`. */
export const Arm64WalkFlags = {
  /** An EL0 access, or an EL1 unprivileged load/store (LDTR/STTR). */
  Unprivileged: 1 << 2,
  /** PSTATE.PAN is 1: privileged data accesses to EL0-accessible pages fault (Arm ARM DDI 0487, chapter D8, "Privileged Access Never"). */
  PrivilegedAccessNever: 1 << 3,
} as const;

/**
 * The kind of a stage-1 fault; with the level it makes the fault status
 * code of ESR_ELx.{DFSC,IFSC}: `kind << 2 | level` (Arm ARM DDI 0487, ESR_ELx
 * ISS encoding for Data/Instruction Abort).
 */
export const Arm64FaultKind = {
  AddressSize: 0,
  Translation: 1,
  AccessFlag: 2,
  Permission: 3,
} as const;
export type Arm64FaultKind = (typeof Arm64FaultKind)[keyof typeof Arm64FaultKind];

const ALL_RIGHTS = 0xff;

/**
 * The `TlbPermission` bit an arm64 access needs: EL0 maps to the "User"
 * bits, EL1 to "Supervisor", and EL1 data accesses under PSTATE.PAN to the
 * `...Smap` bits.
 */
export function arm64AccessPermission(access: number, flags: number): number {
  const unprivileged = (flags & Arm64WalkFlags.Unprivileged) !== 0;
  if (access === Arm64Access.Execute) {
    return unprivileged ? TlbPermission.ExecuteUser : TlbPermission.ExecuteSupervisor;
  }
  const write = access === Arm64Access.Write;
  if (unprivileged) return write ? TlbPermission.WriteUser : TlbPermission.ReadUser;
  if ((flags & Arm64WalkFlags.PrivilegedAccessNever) !== 0) {
    return write ? TlbPermission.WriteSupervisorSmap : TlbPermission.ReadSupervisorSmap;
  }
  return write ? TlbPermission.WriteSupervisor : TlbPermission.ReadSupervisor;
}

/** Output address sizes selected by TCR_EL1.IPS (Arm ARM DDI 0487, TCR_EL1), capped at 48 bits. */
const IPS_BITS = [32, 36, 40, 42, 44, 48, 48, 48];

/**
 * The arm64 stage-1 walker of the EL1&0 translation regime: 4 KiB granule,
 * TTBR0/TTBR1 chosen by VA bit 55 and bounded by TCR_EL1.T0SZ/T1SZ (input
 * sizes 25 to 48 bits: 39- and 48-bit VAs and everything between), table,
 * block (1 GiB, 2 MiB) and page descriptors, AP/APTable, UXN/PXN and their
 * table forms, SCTLR_EL1.WXN, PAN, the access flag (faults, or hardware
 * update with TCR_EL1.HA), nG and ASIDs (8 or 16 bits, TCR_EL1.A1), TBI,
 * and the MAIR_EL1 attribute of the page (Arm ARM chapter D8).
 *
 * Set the system registers in the public fields when the guest writes them
 * (and flush the TLB as `SoftTlb` says), then call `walk` on each TLB miss.
 * It allocates nothing. Not modelled: 16 KiB and 64 KiB granules (TG0/TG1
 * are read as 4 KiB), 52-bit addresses (FEAT_LPA/LPA2), hardware dirty
 * state (TCR_EL1.HD/DBM), the contiguous hint (harmless to ignore),
 * stage 2 (Kumo's p2m is the `GuestMemory` itself).
 */
export class Arm64PageWalker {
  // System registers as 32-bit halves.
  sctlr = 0;
  tcrLow = 0;
  tcrHigh = 0;
  ttbr0Low = 0;
  ttbr0High = 0;
  ttbr1Low = 0;
  ttbr1High = 0;
  mairLow = 0;
  mairHigh = 0;

  /** The translated guest-physical address (also the return value). */
  physicalAddress = 0;
  /** Guest-physical address of the 4 KiB page holding it (for `SoftTlb.insert`). */
  physicalPage = 0;
  /** `TlbPermission` bits of the translation. */
  permissions = 0;
  /** log2 of the page size: 12, 21 or 30. */
  pageShift = 12;
  /** AttrIndx of the descriptor (0..7). */
  attributeIndex = 0;
  /** The MAIR_EL1 byte that AttrIndx selects: the memory type a CPU or device model may honour. */
  attributes = 0;
  /** SH[1:0] of the descriptor. */
  shareability = 0;
  /** The ASID the translation belongs to (meaningful when not global). */
  asid = 0;
  /** ESR_ELx fault status code (DFSC/IFSC) when `walk` returned -1; FAR is the virtual address. */
  faultStatus = 0;
  /** `Arm64FaultKind` of the fault. */
  faultKind: Arm64FaultKind = Arm64FaultKind.Translation;
  /** Lookup level of the fault (0..3). */
  faultLevel = 0;

  private readonly memory: GuestMemory;
  private readonly entryAddresses = new Float64Array(4);
  private entryCount = 0;

  constructor(memory: GuestMemory) {
    this.memory = memory;
  }

  /** The current ASID for `SoftTlb.setAsid`: from TTBR1 when TCR_EL1.A1, else TTBR0; 8 bits unless TCR_EL1.AS. */
  currentAsid(): number {
    const high = (this.tcrLow & (1 << 22)) !== 0 ? this.ttbr1High : this.ttbr0High;
    return (this.tcrHigh & (1 << 4)) !== 0 ? high >>> 16 : (high >>> 16) & 0xff;
  }

  /**
   * Translates `va` (two 32-bit halves) for one access (`Arm64Access` |
   * `Arm64WalkFlags`). Returns the guest-physical address, or -1 with
   * `faultStatus`, `faultKind` and `faultLevel` set.
   */
  walk(vaLow: number, vaHigh: number, flags: number): number {
    const access = flags & 3;
    this.entryCount = 0;
    const tcrLow = this.tcrLow;
    const tcrHigh = this.tcrHigh;
    const outputBits = IPS_BITS[tcrHigh & 7];
    // Largest value of the high half of a legal output address.
    const outputHighLimit = 2 ** (outputBits - 32);
    if ((this.sctlr & 1) === 0) {
      // MMU off: flat mapping, out-of-range addresses are address size faults (Arm ARM chapter D8, the VMSA with stage 1 disabled).
      if (vaHigh >>> 0 >= outputHighLimit) return this.fault(Arm64FaultKind.AddressSize, 0);
      this.physicalAddress = (vaHigh >>> 0) * TWO_POW_32 + (vaLow >>> 0);
      this.physicalPage = this.physicalAddress - (vaLow & 0xfff);
      this.permissions = ALL_RIGHTS;
      this.pageShift = 12;
      this.attributeIndex = 0;
      this.attributes = 0;
      this.shareability = 0;
      this.asid = 0;
      return this.physicalAddress;
    }

    // VA bit 55 picks the table (Arm ARM chapter D8, VA ranges of the EL1&0 regime); TBI makes bits 63:56 ignored.
    const upper = (vaHigh >>> 23) & 1;
    const tcrShifted = upper ? tcrLow >>> 16 : tcrLow;
    let sizeOffset = tcrShifted & 0x3f;
    if (sizeOffset < 16) sizeOffset = 16;
    else if (sizeOffset > 39) sizeOffset = 39;
    const inputBits = 64 - sizeOffset;
    const topByteIgnored = (tcrHigh & (upper ? 1 << 6 : 1 << 5)) !== 0;
    // Every VA bit from inputBits up to 63 (55 under TBI) must equal bit 55.
    const topBit = topByteIgnored ? 55 : 63;
    const highMask = rangeMask(Math.max(inputBits, 32) - 32, topBit - 32);
    if ((vaHigh & highMask) !== (upper ? highMask : 0)) {
      return this.fault(Arm64FaultKind.Translation, 0);
    }
    if (inputBits < 32) {
      const lowMask = rangeMask(inputBits, 31);
      if ((vaLow & lowMask) !== (upper ? lowMask : 0)) {
        return this.fault(Arm64FaultKind.Translation, 0);
      }
    }
    // EPD0/EPD1 disable walks through that half.
    if ((tcrShifted & (1 << 7)) !== 0) return this.fault(Arm64FaultKind.Translation, 0);

    const startLevel = 4 - Math.ceil((inputBits - 12) / 9);
    const startEntriesBits = inputBits - (12 + 9 * (3 - startLevel));
    const ttbrLow = upper ? this.ttbr1Low : this.ttbr0Low;
    const ttbrHigh = upper ? this.ttbr1High : this.ttbr0High;
    // BADDR is TTBR bits 47:1, aligned to the size of the first table.
    const tableAlign = Math.max(64, 8 << startEntriesBits);
    const baseHigh = ttbrHigh & 0xffff;
    if (baseHigh >= outputHighLimit) return this.fault(Arm64FaultKind.AddressSize, 0);
    let table = baseHigh * TWO_POW_32 + ((ttbrLow & ~(tableAlign - 1)) >>> 0);

    let level = startLevel;
    let tableEl0Denied = false;
    let tableReadOnly = false;
    let tableUxn = false;
    let tablePxn = false;
    let low = 0;
    let high = 0;
    let entryAddress = 0;
    let base = 0;
    let pageShift = 12;
    const memory = this.memory;
    for (;;) {
      const shift = 12 + 9 * (3 - level);
      let index =
        shift >= 32
          ? (vaHigh >>> (shift - 32)) & 0x1ff
          : ((vaLow >>> shift) | (shift > 23 ? vaHigh << (32 - shift) : 0)) & 0x1ff;
      if (level === startLevel) index &= (1 << startEntriesBits) - 1;
      entryAddress = table + index * 8;
      low = memory.read32(entryAddress);
      high = memory.read32(entryAddress + 4);
      this.entryAddresses[this.entryCount++] = entryAddress;
      if ((low & 1) === 0) return this.fault(Arm64FaultKind.Translation, level);
      const isTable = (low & 2) !== 0;
      // Descriptor output address bits 47:12; beyond the output size is an address size fault.
      const addressHigh = high & 0xffff;
      if (level < 3 && isTable) {
        if (addressHigh >= outputHighLimit) return this.fault(Arm64FaultKind.AddressSize, level);
        // APTable, UXNTable, PXNTable in bits 62:59 (Arm ARM chapter D8, descriptor formats).
        tablePxn ||= (high & (1 << 27)) !== 0;
        tableUxn ||= (high & (1 << 28)) !== 0;
        tableEl0Denied ||= (high & (1 << 29)) !== 0;
        tableReadOnly ||= (high & (1 << 30)) !== 0;
        table = addressHigh * TWO_POW_32 + ((low & 0xfffff000) >>> 0);
        level++;
        continue;
      }
      // A block at level 0 (4 KiB granule) and the reserved level-3 encoding 0b01 are invalid.
      if (level === 0 || (level === 3 && !isTable)) {
        return this.fault(Arm64FaultKind.Translation, level);
      }
      if (addressHigh >= outputHighLimit) return this.fault(Arm64FaultKind.AddressSize, level);
      pageShift = level === 3 ? 12 : level === 2 ? 21 : 30;
      const lowMask = level === 3 ? 0xfffff000 : level === 2 ? 0xffe00000 : 0xc0000000;
      base = addressHigh * TWO_POW_32 + ((low & lowMask) >>> 0);
      break;
    }

    // Access flag (Arm ARM chapter D8, the Access flag): fault unless hardware management is on.
    if ((low & (1 << 10)) === 0) {
      if ((tcrHigh & (1 << 7)) === 0) return this.fault(Arm64FaultKind.AccessFlag, level);
    }

    // Permissions (Arm ARM chapter D8, memory access control): AP[2:1] in bits 7:6, PXN bit 53, UXN bit 54.
    const el0Access = (low & (1 << 6)) !== 0 && !tableEl0Denied;
    const readOnly = (low & (1 << 7)) !== 0 || tableReadOnly;
    // SCTLR_EL1.WXN: what an exception level may write, it may not execute
    // (Arm ARM chapter D8, "Write permission implies XN"), judged per level as QEMU does.
    const wxn = (this.sctlr & (1 << 19)) !== 0 && !readOnly;
    const uxn = (high & (1 << 22)) !== 0 || tableUxn || (wxn && el0Access);
    // EL1 may not execute what EL0 may write (Arm ARM chapter D8).
    const pxn = (high & (1 << 21)) !== 0 || tablePxn || wxn || (el0Access && !readOnly);
    let permissions = TlbPermission.ReadSupervisor;
    if (!readOnly) permissions |= TlbPermission.WriteSupervisor;
    if (!pxn) permissions |= TlbPermission.ExecuteSupervisor;
    if (!uxn) permissions |= TlbPermission.ExecuteUser;
    if (el0Access) {
      permissions |= TlbPermission.ReadUser;
      if (!readOnly) permissions |= TlbPermission.WriteUser;
    } else {
      permissions |= TlbPermission.ReadSupervisorSmap;
      if (!readOnly) permissions |= TlbPermission.WriteSupervisorSmap;
    }
    if ((permissions & arm64AccessPermission(access, flags)) === 0) {
      return this.fault(Arm64FaultKind.Permission, level);
    }
    if ((low & (1 << 10)) === 0) {
      // TCR_EL1.HA: the walker sets AF itself (FEAT_HAFDBS).
      low |= 1 << 10;
      setEntryBits(memory, entryAddress, 1 << 10);
    }
    if ((low & (1 << 11)) === 0) permissions |= TlbPermission.Global;

    const offset = (vaLow & ((1 << pageShift) - 1)) >>> 0;
    const attributeIndex = (low >>> 2) & 7;
    this.physicalAddress = base + offset;
    this.physicalPage = base + (offset & ~0xfff);
    this.permissions = permissions;
    this.pageShift = pageShift;
    this.attributeIndex = attributeIndex;
    this.attributes =
      attributeIndex < 4
        ? (this.mairLow >>> (attributeIndex * 8)) & 0xff
        : (this.mairHigh >>> ((attributeIndex - 4) * 8)) & 0xff;
    this.shareability = (low >>> 8) & 3;
    this.asid = this.currentAsid();
    return this.physicalAddress;
  }

  /** Number of descriptors the last walk read, start level first. */
  get walkedEntryCount(): number {
    return this.entryCount;
  }

  /** Guest-physical address of the `i`-th descriptor of the last walk. */
  walkedEntryAddress(i: number): number {
    return this.entryAddresses[i];
  }

  private fault(kind: Arm64FaultKind, level: number): number {
    this.faultKind = kind;
    this.faultLevel = level;
    this.faultStatus = (kind << 2) | level;
    return -1;
  }
}

/** Bits from..to (inclusive, 0..31) set; 0 when from > to. */
function rangeMask(from: number, to: number): number {
  if (from > to) return 0;
  const width = to - from + 1;
  return (width === 32 ? -1 : ((1 << width) - 1) << from) | 0;
}
