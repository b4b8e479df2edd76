import type { VcpuState } from "@kumo/abi";
import type { X86Cpu } from "./cpu";

/** One segment register's selector and hidden descriptor cache. */
export interface SegmentState {
  selector: number;
  base: number;
  /** Byte-granular limit (0xffffffff for flat 4 GiB). */
  limit: number;
  /** VMX access-rights layout: type(0-3) S(4) DPL(5-6) P(7) AVL(12) L(13) D/B(14) G(15); 0 = unusable. */
  attributes: number;
}

/**
 * The saved x86 vCPU (`kind` "kumo-x86", version 1). Plain JSON-safe
 * numbers; 32-bit registers are unsigned. Restoring reproduces execution
 * exactly (lazy flags are folded into `eflags`).
 */
export interface X86CpuState extends VcpuState {
  readonly kind: "kumo-x86";
  readonly version: 1;
  eax: number;
  ecx: number;
  edx: number;
  ebx: number;
  esp: number;
  ebp: number;
  esi: number;
  edi: number;
  eip: number;
  eflags: number;
  es: SegmentState;
  cs: SegmentState;
  ss: SegmentState;
  ds: SegmentState;
  fs: SegmentState;
  gs: SegmentState;
  ldtr: SegmentState;
  tr: SegmentState;
  gdtr: { base: number; limit: number };
  idtr: { base: number; limit: number };
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  efer: number;
  dr: number[];
  /** Current privilege level (CS.RPL in protected mode, 0 in real mode, 3 in virtual-8086). */
  cpl: number;
  msr: {
    sysenterCs: number;
    sysenterEsp: number;
    sysenterEip: number;
    pat: [number, number];
    apicBase: [number, number];
    tscOffset: number;
    miscEnable: number;
    mtrrDefType: number;
    mtrr: [number, number, number][];
  };
  halted: boolean;
  /** True when interrupts are inhibited for one instruction (after sti or mov ss). */
  interruptShadow: boolean;
  nmiPending: boolean;
  instructionsRetired: number;
  fpu: {
    control: number;
    status: number;
    tag: number;
    top: number;
    /**
     * Physical registers R0..R7 as the bit patterns of their double values,
     * [low 32 bits, high 32 bits], so that NaNs, infinities and -0 survive JSON.
     */
    registers: [number, number][];
    mxcsr: number;
    /** XMM0-7 as 32 unsigned dwords (XMM0 bits 31:0 first). Absent in states saved before SSE. */
    xmm?: number[];
    /** MM0-7 as 16 unsigned dwords, and which physical registers hold an MMX value (bit i: Ri). */
    mm?: number[];
    mmValid?: number;
    /**
     * R0..R7's residuals (the low significand bits a double cannot hold, see
     * `Fpu.residual`), all zero for most values; absent in older states.
     */
    residuals?: number[];
    /**
     * R0..R7 values beyond the double range (see `Fpu.wide`) as [sign and
     * biased exponent, significand bits 63:32, bits 31:0], 0 for the others;
     * absent in older states.
     */
    wide?: ([number, number, number] | 0)[];
    /** The last instruction and data pointers and opcode: [FIP, FCS, FOP, FDP, FDS]; absent in older states. */
    pointers?: [number, number, number, number, number];
  };
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

const SEGMENT_NAMES = ["es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"] as const;
const REGISTER_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;

export function saveState(cpu: X86Cpu): X86CpuState {
  const segment = (i: number): SegmentState => ({
    selector: cpu.segSel[i],
    base: cpu.segBase[i] >>> 0,
    limit: cpu.segLimit[i] >>> 0,
    attributes: cpu.segAttr[i],
  });
  const fpu = cpu.fpu;
  const state: Record<string, unknown> = {
    kind: "kumo-x86",
    version: 1,
    eip: cpu.eip >>> 0,
    eflags: cpu.computeFlags() >>> 0,
    gdtr: { base: cpu.gdtrBase >>> 0, limit: cpu.gdtrLimit },
    idtr: { base: cpu.idtrBase >>> 0, limit: cpu.idtrLimit },
    cr0: cpu.cr0 >>> 0,
    cr2: cpu.cr2 >>> 0,
    cr3: cpu.cr3 >>> 0,
    cr4: cpu.cr4 >>> 0,
    efer: cpu.efer >>> 0,
    dr: Array.from(cpu.dr, (v) => v >>> 0),
    cpl: cpu.cpl,
    msr: {
      sysenterCs: cpu.sysenterCs,
      sysenterEsp: cpu.sysenterEsp >>> 0,
      sysenterEip: cpu.sysenterEip >>> 0,
      pat: [cpu.patLow >>> 0, cpu.patHigh >>> 0],
      apicBase: [cpu.apicBaseLow >>> 0, cpu.apicBaseHigh >>> 0],
      tscOffset: cpu.tscOffset,
      miscEnable: cpu.miscEnableLow >>> 0,
      mtrrDefType: cpu.mtrrDefType >>> 0,
      mtrr: [...cpu.mtrr].map(([index, [low, high]]) => [index, low >>> 0, high >>> 0]),
    },
    halted: cpu.halted,
    interruptShadow: cpu.interruptShadow,
    nmiPending: cpu.nmiPending,
    instructionsRetired: cpu.retired,
    fpu: {
      control: fpu.control,
      status: fpu.statusWord(),
      tag: fpu.tagWord(),
      top: fpu.top,
      registers: Array.from(fpu.st, (v) => {
        bits[0] = v;
        return [words[0], words[1]] as [number, number];
      }),
      mxcsr: fpu.mxcsr,
      xmm: Array.from(fpu.xmm, (v) => v >>> 0),
      mm: Array.from(fpu.mm, (v) => v >>> 0),
      mmValid: fpu.mmValid.reduce((mask, valid, i) => mask | (valid << i), 0),
      residuals: Array.from(fpu.residual),
      pointers: [
        fpu.instructionPointer >>> 0,
        fpu.instructionSelector,
        fpu.opcode,
        fpu.dataPointer >>> 0,
        fpu.dataSelector,
      ],
      wide: Array.from({ length: 8 }, (_, i): [number, number, number] | 0 =>
        fpu.wide[i] ? [fpu.wideTop[i], fpu.wideHigh[i], fpu.wideLow[i]] : 0,
      ),
    },
  };
  REGISTER_NAMES.forEach((name, i) => {
    state[name] = cpu.regs[i] >>> 0;
  });
  SEGMENT_NAMES.forEach((name, i) => {
    state[name] = segment(i);
  });
  return state as unknown as X86CpuState;
}

/** A saved state that does not fit this CPU (wrong kind or version, missing field). */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateError";
  }
}

export function loadState(cpu: X86Cpu, raw: VcpuState): void {
  if (raw.kind !== "kumo-x86" || raw.version !== 1) {
    throw new StateError(
      `expected a kumo-x86 version 1 state, got ${String(raw.kind)} v${String(raw.version)}`,
    );
  }
  const state = raw as X86CpuState;
  const number = (value: unknown, name: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new StateError(`state field ${name} must be a number, got ${String(value)}`);
    }
    return value;
  };
  REGISTER_NAMES.forEach((name, i) => {
    cpu.regs[i] = number(state[name], name) | 0;
  });
  SEGMENT_NAMES.forEach((name, i) => {
    const segment = state[name] as SegmentState | undefined;
    if (!segment) throw new StateError(`state field ${name} is missing`);
    cpu.segSel[i] = number(segment.selector, `${name}.selector`);
    cpu.segBase[i] = number(segment.base, `${name}.base`) | 0;
    cpu.segLimit[i] = number(segment.limit, `${name}.limit`) | 0;
    cpu.segAttr[i] = number(segment.attributes, `${name}.attributes`);
    cpu.refreshSegment(i);
  });
  cpu.eip = number(state.eip, "eip") | 0;
  cpu.setEflags(number(state.eflags, "eflags"));
  cpu.gdtrBase = number(state.gdtr?.base, "gdtr.base") | 0;
  cpu.gdtrLimit = number(state.gdtr?.limit, "gdtr.limit");
  cpu.idtrBase = number(state.idtr?.base, "idtr.base") | 0;
  cpu.idtrLimit = number(state.idtr?.limit, "idtr.limit");
  cpu.cr0 = number(state.cr0, "cr0") | 0;
  cpu.cr2 = number(state.cr2, "cr2") | 0;
  cpu.cr3 = number(state.cr3, "cr3") | 0;
  cpu.cr4 = number(state.cr4, "cr4") | 0;
  cpu.efer = number(state.efer, "efer") | 0;
  for (let i = 0; i < 8; i++) cpu.dr[i] = (state.dr?.[i] ?? 0) | 0;
  cpu.cpl = number(state.cpl, "cpl") & 3;
  const msr = state.msr;
  if (msr) {
    cpu.sysenterCs = msr.sysenterCs;
    cpu.sysenterEsp = msr.sysenterEsp | 0;
    cpu.sysenterEip = msr.sysenterEip | 0;
    cpu.patLow = msr.pat[0] | 0;
    cpu.patHigh = msr.pat[1] | 0;
    cpu.apicBaseLow = msr.apicBase[0] | 0;
    cpu.apicBaseHigh = msr.apicBase[1] | 0;
    cpu.tscOffset = msr.tscOffset;
    cpu.miscEnableLow = msr.miscEnable | 0;
    cpu.mtrrDefType = msr.mtrrDefType | 0;
    cpu.mtrr.clear();
    for (const [index, low, high] of msr.mtrr) cpu.mtrr.set(index, [low | 0, high | 0]);
  }
  cpu.halted = Boolean(state.halted);
  cpu.retired = number(state.instructionsRetired, "instructionsRetired");
  cpu.interruptShadow = Boolean(state.interruptShadow);
  cpu.nmiPending = Boolean(state.nmiPending);
  const fpu = state.fpu;
  if (fpu) {
    cpu.fpu.control = fpu.control;
    cpu.fpu.status = fpu.status & ~0x3800;
    cpu.fpu.top = fpu.top & 7;
    for (let i = 0; i < 8; i++) {
      const register = fpu.registers[i];
      words[0] = number(register?.[0], `fpu.registers[${i}][0]`);
      words[1] = number(register?.[1], `fpu.registers[${i}][1]`);
      cpu.fpu.st[i] = bits[0];
      const residual = fpu.residuals?.[i] ?? 0;
      cpu.fpu.residual[i] = Number.isFinite(residual) ? residual : 0;
      cpu.fpu.empty[i] = ((fpu.tag >> (2 * i)) & 3) === 3 ? 1 : 0;
      const wide = fpu.wide?.[i];
      cpu.fpu.wide[i] = Array.isArray(wide) ? 1 : 0;
      if (Array.isArray(wide)) {
        cpu.fpu.wideTop[i] = number(wide[0], `fpu.wide[${i}][0]`);
        cpu.fpu.wideHigh[i] = number(wide[1], `fpu.wide[${i}][1]`);
        cpu.fpu.wideLow[i] = number(wide[2], `fpu.wide[${i}][2]`);
      }
    }
    if (fpu.pointers) {
      cpu.fpu.instructionPointer = number(fpu.pointers[0], "fpu.pointers[0]") | 0;
      cpu.fpu.instructionSelector = number(fpu.pointers[1], "fpu.pointers[1]") & 0xffff;
      cpu.fpu.opcode = number(fpu.pointers[2], "fpu.pointers[2]") & 0x7ff;
      cpu.fpu.dataPointer = number(fpu.pointers[3], "fpu.pointers[3]") | 0;
      cpu.fpu.dataSelector = number(fpu.pointers[4], "fpu.pointers[4]") & 0xffff;
    }
    const mxcsr = number(fpu.mxcsr, "fpu.mxcsr");
    if (mxcsr & ~0xffff) {
      throw new StateError(`state field fpu.mxcsr has reserved bits set: 0x${mxcsr.toString(16)}`);
    }
    cpu.fpu.resetSimd();
    cpu.fpu.mxcsr = mxcsr;
    for (let i = 0; i < 32 && fpu.xmm; i++)
      cpu.fpu.xmm[i] = number(fpu.xmm[i], `fpu.xmm[${i}]`) | 0;
    for (let i = 0; i < 16 && fpu.mm; i++) cpu.fpu.mm[i] = number(fpu.mm[i], `fpu.mm[${i}]`) | 0;
    for (let i = 0; i < 8; i++) cpu.fpu.mmValid[i] = ((fpu.mmValid ?? 0) >> i) & 1;
  }
}
