/**
 * The EL0/EL1 system registers Kumo implements, written once as data: the
 * encoding (op0, op1, CRn, CRm, op2 of MRS/MSR, Arm ARM DDI 0487 chapter D19
 * "AArch64 System Register Descriptions"), a name, who may access it and
 * whether it is writable. The interpreter and the saved state derive from
 * this table.
 */

/** The 16-bit key of MRS/MSR bits 20:5: op0:op1:CRn:CRm:op2. */
export function sysRegKey(op0: number, op1: number, crn: number, crm: number, op2: number): number {
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}

/** How the interpreter handles a register (beyond a plain 64-bit store). */
export const SysRegKind = {
  /** A plain read/write 64-bit register held in `sysRegs`. */
  Plain: 0,
  /** Read-only constant (ID registers): writes are UNDEFINED. */
  Constant: 1,
  /** Reads as zero, writes ignored (ACTLR, AFSRx, debug OS lock registers). */
  Zero: 2,
  /** Handled by the interpreter itself (PSTATE fields, SP_EL0, translation controls, the timer). */
  Special: 3,
} as const;

/** Who may access the register from EL0 (EL1 may access all of them). */
export const El0Access = {
  None: 0,
  /** Always (NZCV, TPIDR_EL0). */
  Always: 1,
  /** Read-only at EL0 (TPIDRRO_EL0). */
  ReadOnly: 2,
  /** When SCTLR_EL1.UCT (bit 15) is set (CTR_EL0). */
  Uct: 3,
  /** When SCTLR_EL1.UMA (bit 9) is set (DAIF). */
  Uma: 4,
  /** CNTFRQ_EL0: when CNTKCTL_EL1.EL0VCTEN or EL0PCTEN (read-only). */
  Counter: 5,
  /** DCZID_EL0: always readable. */
  ReadAlways: 6,
  /** The EL0 virtual timer registers, when CNTKCTL_EL1.EL0VTEN (bit 8). */
  VirtualTimer: 7,
  /** The EL0 physical timer registers, when CNTKCTL_EL1.EL0PTEN (bit 9). */
  PhysicalTimer: 8,
  /** CNTPCT_EL0: when CNTKCTL_EL1.EL0PCTEN (bit 0). */
  PhysicalCount: 9,
  /** CNTVCT_EL0: when CNTKCTL_EL1.EL0VCTEN (bit 1). */
  VirtualCount: 10,
} as const;

export interface SysRegInfo {
  readonly name: string;
  readonly key: number;
  readonly kind: number;
  readonly el0: number;
  /** Reset (or constant) value as two 32-bit halves. */
  readonly resetLow: number;
  readonly resetHigh: number;
}

function r(
  name: string,
  op0: number,
  op1: number,
  crn: number,
  crm: number,
  op2: number,
  kind: number,
  el0: number = El0Access.None,
  resetLow = 0,
  resetHigh = 0,
): SysRegInfo {
  return { name, key: sysRegKey(op0, op1, crn, crm, op2), kind, el0, resetLow, resetHigh };
}

const { Plain, Constant, Zero, Special } = SysRegKind;

/**
 * ID register values describe exactly what this interpreter implements
 * (Arm ARM D19.2): AArch64-only EL0 and EL1, no EL2/EL3 (Kumo stands in
 * for EL2 and answers `hvc` itself), FP and Advanced SIMD with single and
 * double precision but no half precision (FP and AdvSIMD fields 0b0000),
 * no GIC system register interface, no optional ISA features, 48-bit
 * physical addresses, 16-bit ASIDs, 4 KiB granule only, hardware Access
 * flag update (the `@kumo/mmu` walker does TCR_EL1.HA).
 */
export const ID_AA64PFR0_EL1 = 0x00000011;
/** PARange 0b0101 (48 bits), ASIDBits 0b0010 (16), TGran4 0b0000 (supported), TGran64 0xF and TGran16 0x0 (not supported). */
export const ID_AA64MMFR0_EL1 = 0x0f000025;
/** HAFDBS 0b0001: hardware update of the Access flag only. */
export const ID_AA64MMFR1_EL1 = 0x00000001;
/** Implementer 0x00 (reserved for software use), architecture 0xF (see ID registers), part 0. */
export const MIDR_EL1 = 0x000f0000;
/**
 * CTR_EL0: DIC and IDC set (this interpreter's instruction fetch and data
 * are always coherent: decoded code is dropped on every write), 64-byte
 * minimum I and D lines, PIPT instruction cache.
 */
export const CTR_EL0 = 0x3004c004;
/** DCZID_EL0: DC ZVA permitted, block size 4 words << 4 = 64 bytes. */
export const DCZID_EL0 = 0x4;

export const SYSTEM_REGISTERS: readonly SysRegInfo[] = [
  r("MIDR_EL1", 3, 0, 0, 0, 0, Constant, El0Access.None, MIDR_EL1),
  r("MPIDR_EL1", 3, 0, 0, 0, 5, Special),
  r("REVIDR_EL1", 3, 0, 0, 0, 6, Constant),
  r("ID_AA64PFR0_EL1", 3, 0, 0, 4, 0, Constant, El0Access.None, ID_AA64PFR0_EL1),
  r("ID_AA64MMFR0_EL1", 3, 0, 0, 7, 0, Constant, El0Access.None, ID_AA64MMFR0_EL1),
  r("ID_AA64MMFR1_EL1", 3, 0, 0, 7, 1, Constant, El0Access.None, ID_AA64MMFR1_EL1),
  r("CTR_EL0", 3, 3, 0, 0, 1, Constant, El0Access.Uct, CTR_EL0),
  r("DCZID_EL0", 3, 3, 0, 0, 7, Constant, El0Access.ReadAlways, DCZID_EL0),
  r("CLIDR_EL1", 3, 1, 0, 0, 1, Constant),
  r("CCSIDR_EL1", 3, 1, 0, 0, 0, Constant),
  r("CSSELR_EL1", 3, 2, 0, 0, 0, Plain),
  r("SCTLR_EL1", 3, 0, 1, 0, 0, Special),
  r("ACTLR_EL1", 3, 0, 1, 0, 1, Zero),
  r("CPACR_EL1", 3, 0, 1, 0, 2, Plain),
  r("TTBR0_EL1", 3, 0, 2, 0, 0, Special),
  r("TTBR1_EL1", 3, 0, 2, 0, 1, Special),
  r("TCR_EL1", 3, 0, 2, 0, 2, Special),
  r("SPSR_EL1", 3, 0, 4, 0, 0, Plain),
  r("ELR_EL1", 3, 0, 4, 0, 1, Plain),
  r("SP_EL0", 3, 0, 4, 1, 0, Special),
  r("SPSel", 3, 0, 4, 2, 0, Special),
  r("CurrentEL", 3, 0, 4, 2, 2, Special),
  r("NZCV", 3, 3, 4, 2, 0, Special, El0Access.Always),
  r("DAIF", 3, 3, 4, 2, 1, Special, El0Access.Uma),
  r("FPCR", 3, 3, 4, 4, 0, Special, El0Access.Always),
  r("FPSR", 3, 3, 4, 4, 1, Special, El0Access.Always),
  r("AFSR0_EL1", 3, 0, 5, 1, 0, Zero),
  r("AFSR1_EL1", 3, 0, 5, 1, 1, Zero),
  r("ESR_EL1", 3, 0, 5, 2, 0, Plain),
  r("FAR_EL1", 3, 0, 6, 0, 0, Plain),
  r("PAR_EL1", 3, 0, 7, 4, 0, Plain),
  r("MAIR_EL1", 3, 0, 10, 2, 0, Special),
  r("AMAIR_EL1", 3, 0, 10, 3, 0, Zero),
  r("VBAR_EL1", 3, 0, 12, 0, 0, Plain),
  r("CONTEXTIDR_EL1", 3, 0, 13, 0, 1, Plain),
  r("TPIDR_EL1", 3, 0, 13, 0, 4, Plain),
  r("TPIDR_EL0", 3, 3, 13, 0, 2, Plain, El0Access.Always),
  r("TPIDRRO_EL0", 3, 3, 13, 0, 3, Plain, El0Access.ReadOnly),
  r("CNTKCTL_EL1", 3, 0, 14, 1, 0, Plain),
  r("CNTFRQ_EL0", 3, 3, 14, 0, 0, Special, El0Access.Counter),
  r("CNTPCT_EL0", 3, 3, 14, 0, 1, Special, El0Access.PhysicalCount),
  r("CNTVCT_EL0", 3, 3, 14, 0, 2, Special, El0Access.VirtualCount),
  r("CNTP_TVAL_EL0", 3, 3, 14, 2, 0, Special, El0Access.PhysicalTimer),
  r("CNTP_CTL_EL0", 3, 3, 14, 2, 1, Special, El0Access.PhysicalTimer),
  r("CNTP_CVAL_EL0", 3, 3, 14, 2, 2, Plain, El0Access.PhysicalTimer),
  r("CNTV_TVAL_EL0", 3, 3, 14, 3, 0, Special, El0Access.VirtualTimer),
  r("CNTV_CTL_EL0", 3, 3, 14, 3, 1, Special, El0Access.VirtualTimer),
  r("CNTV_CVAL_EL0", 3, 3, 14, 3, 2, Plain, El0Access.VirtualTimer),
  r("MDSCR_EL1", 2, 0, 0, 2, 2, Zero),
  r("OSLAR_EL1", 2, 0, 1, 0, 4, Zero),
  r("OSDLR_EL1", 2, 0, 1, 3, 4, Zero),
];

/** Index in `SYSTEM_REGISTERS` by key, -1 when not implemented. */
export const SYS_REG_INDEX = new Int16Array(1 << 16).fill(-1);
SYSTEM_REGISTERS.forEach((info, index) => {
  SYS_REG_INDEX[info.key] = index;
});

/** Index of a register by name (for the interpreter's own use). */
export function sysRegIndex(name: string): number {
  const index = SYSTEM_REGISTERS.findIndex((info) => info.name === name);
  if (index < 0) throw new Error(`unknown system register ${name}`);
  return index;
}

/** True for the rest of the ID register space (op0=3, op1=0, CRn=0, CRm=1..7): RAZ (Arm ARM D19.2, "reserved ID registers"). */
export function isReservedIdRegister(key: number): boolean {
  return key >>> 7 === ((3 << 7) | 0) && ((key >>> 3) & 15) >= 1 && ((key >>> 3) & 15) <= 7;
}
