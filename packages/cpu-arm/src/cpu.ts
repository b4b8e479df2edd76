import {
  createVcpuExit,
  type InterruptSource,
  type Vcpu,
  type VcpuAccess,
  type VcpuExit,
  VcpuExitReason,
  type VcpuHooks,
  type VcpuIo,
  type VcpuState,
} from "@kumo/abi";
import {
  Arm64PageWalker,
  Arm64WalkFlags,
  arm64AccessPermission,
  type GuestMemory,
  SoftTlb,
} from "@kumo/mmu";
import { DECODED_STRIDE, decodeInstruction, LoadKind, Op, SP, ZR } from "./decoder";
import { FpUnit } from "./fp";
import { executeSimd, executeSimdMemory } from "./simd";
import {
  El0Access,
  isReservedIdRegister,
  SYS_REG_INDEX,
  SYSTEM_REGISTERS,
  SysRegKind,
  sysRegIndex,
} from "./system-registers";

/** Thrown (this one object, never allocated) to unwind an instruction that took an exception. */
const FAULT = { fault: true };

/** Exception classes of ESR_ELx.EC used here (Arm ARM DDI 0487, D19.2 ESR_EL1). */
export const ExceptionClass = {
  Unknown: 0x00,
  IllegalState: 0x0e,
  /** Access to FP/Advanced SIMD trapped by CPACR_EL1.FPEN. */
  FpAccess: 0x07,
  Svc64: 0x15,
  SysRegTrap: 0x18,
  InstructionAbortLower: 0x20,
  InstructionAbortSame: 0x21,
  PcAlignment: 0x22,
  DataAbortLower: 0x24,
  DataAbortSame: 0x25,
  Brk64: 0x3c,
} as const;

/** Xen's hypercall immediate: `hvc #0xEA1` (Xen public arch-arm.h, XEN_HYPERCALL_TAG). */
export const XEN_HYPERCALL_TAG = 0xea1;

/** The EL1 timers of the generic timer, as `onTimer` names them. */
export const Arm64Timer = { Physical: 0, Virtual: 1 } as const;
export type Arm64Timer = (typeof Arm64Timer)[keyof typeof Arm64Timer];

/**
 * The PPIs a Xen guest's timers raise, by `Arm64Timer` (Xen public
 * arch-arm.h: GUEST_TIMER_PHYS_NS_PPI 30, GUEST_TIMER_VIRT_PPI 27).
 */
export const ARM64_TIMER_PPI: readonly [number, number] = [30, 27];

const TWO_POW_32 = 4294967296;

/** Options for `createArm64Cpu`. */
export interface Arm64CpuOptions {
  memory: GuestMemory;
  io?: VcpuIo;
  hooks?: VcpuHooks;
  /** Aff0 of MPIDR_EL1 (the vCPU index). */
  vcpuId?: number;
  /** CNTFRQ_EL0 in Hz; defaults to 62.5 MHz (as QEMU's virt machine). */
  counterFrequency?: number;
}

/** The saved state of an `Arm64Cpu` (named, versioned, JSON-safe). */
export interface Arm64CpuState extends VcpuState {
  readonly kind: "arm64-cpu";
  /** 2 adds the FP/SIMD registers; version 1 states are still accepted. */
  readonly version: 1 | 2;
  /** X0..X30 as 62 unsigned 32-bit halves (low, high). */
  readonly x: number[];
  readonly pc: [number, number];
  readonly spEl0: [number, number];
  readonly spEl1: [number, number];
  /** NZCV, DAIF, CurrentEL, SPSel in SPSR layout. */
  readonly pstate: number;
  /** Every system register of `SYSTEM_REGISTERS` held as a value, by name: [low, high]. */
  readonly systemRegisters: Record<string, [number, number]>;
  readonly exclusive: { valid: boolean; address: number };
  readonly instructionsRetired: number;
  /** V0..V31 as 128 unsigned 32-bit words (version 2). */
  readonly v?: number[];
  readonly fpcr?: number;
  readonly fpsr?: number;
}

/** A user's mistake with a saved state. */
export class Arm64StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Arm64StateError";
  }
}

const noIo: VcpuIo = {
  portRead: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
  portWrite: () => {},
};

const SCTLR = sysRegIndex("SCTLR_EL1");
const TCR = sysRegIndex("TCR_EL1");
const TTBR0 = sysRegIndex("TTBR0_EL1");
const TTBR1 = sysRegIndex("TTBR1_EL1");
const MAIR = sysRegIndex("MAIR_EL1");
const SPSR = sysRegIndex("SPSR_EL1");
const ELR = sysRegIndex("ELR_EL1");
const ESR = sysRegIndex("ESR_EL1");
const FAR = sysRegIndex("FAR_EL1");
const VBAR = sysRegIndex("VBAR_EL1");
const PAR = sysRegIndex("PAR_EL1");
const CPACR = sysRegIndex("CPACR_EL1");
const CNTKCTL = sysRegIndex("CNTKCTL_EL1");
const CNTV_CVAL = sysRegIndex("CNTV_CVAL_EL0");
const CNTP_CVAL = sysRegIndex("CNTP_CVAL_EL0");
const CNTV_CTL = sysRegIndex("CNTV_CTL_EL0");
const CNTP_CTL = sysRegIndex("CNTP_CTL_EL0");
const FPCR = sysRegIndex("FPCR");
const FPSR = sysRegIndex("FPSR");
/** FPCR bits implemented: AHP, DN, FZ, RMode (no FP16, no trapped exceptions; Arm ARM D19.2 FPCR). */
const FPCR_MASK = 0x07c00000;
/** FPSR bits implemented: QC and the cumulative IDC, IXC, UFC, OFC, DZC, IOC flags. */
const FPSR_MASK = 0x0800009f;
const SCTLR_RESET = 0x30d00800; // RES1 bits of SCTLR_EL1 (Arm ARM D19.2), MMU and caches off.

/**
 * An AArch64 processor at EL0/EL1 interpreting guest code (Arm ARM DDI
 * 0487, A64 base instruction set), implementing the `Vcpu` contract of
 * `@kumo/abi`. Kumo stands in for EL2: `hvc` exits to the hypervisor.
 *
 * Hot path: registers are an Int32Array of 32-bit halves (slot 2n low, 2n+1
 * high; slot 32 the current SP, slot 33 the zero register), decoded
 * instructions are cached per physical page as typed-array slots, memory
 * goes through the software TLB straight into `GuestRam`, and 64-bit
 * arithmetic is done on halves with carries from `>>> 0` sums (no BigInt).
 */
export class Arm64Cpu implements Vcpu {
  readonly architecture = "arm64" as const;
  readonly exit: VcpuExit = createVcpuExit();
  io: VcpuIo;
  hooks: VcpuHooks;
  /** The IRQ input (a GIC CPU interface), taken when PSTATE.I is clear. */
  interrupts: InterruptSource | null = null;
  /** The FIQ input, taken when PSTATE.F is clear (Linux does not use FIQs; GICv2 signals Group 0 as FIQ with FIQEn). */
  fiq: InterruptSource | null = null;
  /**
   * Called when a generic timer's output changes (Arm ARM D11.2.4: ENABLE
   * and ISTATUS set, IMASK clear), with `Arm64Timer.Physical` or `.Virtual`.
   * The VMM drives the timer's PPI at the GIC from it (`ARM64_TIMER_PPI`).
   */
  onTimer: ((timer: Arm64Timer, asserted: boolean) => void) | null = null;
  /** Timer outputs last reported: bit 0 physical, bit 1 virtual. */
  private timerLevels = 0;
  /** True while `writeSystemRegister` runs an MSR for the VMM (no FP enable check). */
  private hostAccess = false;

  /** X0..X30, SP (slot 32), XZR (slot 33) as halves. */
  readonly x = new Int32Array(68);
  pcLow = 0;
  pcHigh = 0;
  // PSTATE.
  n = 0;
  z = 0;
  c = 0;
  v = 0;
  /** D, A, I, F as bits 3..0. */
  daif = 0xf;
  el = 1;
  spSel = 1;
  /** PSTATE.IL: the next instruction takes an Illegal Execution State exception. */
  illegalState = false;
  /** Banked stack pointers [SP_EL0 low, high, SP_EL1 low, high]; the active one lives in slot 32. */
  readonly spBank = new Int32Array(4);
  /** System register values by `SYSTEM_REGISTERS` index, as halves. */
  readonly sysRegs = new Int32Array(SYSTEM_REGISTERS.length * 2);
  readonly vcpuId: number;
  readonly counterFrequency: number;

  exclusiveValid = false;
  exclusiveAddress = 0;

  /**
   * V0..V31 (16 bytes each, little-endian lanes) plus two scratch registers
   * (V32, V33) used by loads that must not change a register before they
   * complete. Views share one buffer, so a lane is one typed-array element.
   */
  readonly vBuffer = new ArrayBuffer(34 * 16);
  readonly v8 = new Uint8Array(this.vBuffer);
  readonly v16 = new Uint16Array(this.vBuffer);
  readonly v32 = new Int32Array(this.vBuffer);
  /** FPCR and FPSR live in the FP unit (`fpu.fpcr`, `fpu.flags`). */
  readonly fpu = new FpUnit();

  retired = 0;
  readonly memory: GuestMemory;
  readonly walker: Arm64PageWalker;
  readonly tlb = new SoftTlb(4096);

  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly i32: Int32Array;
  /** Decoded instructions per RAM frame (by offset in `ram.u8` >>> 12). */
  private readonly decodedPages: (Int32Array | undefined)[];
  private readonly codePage: Uint8Array;
  private readonly scratchDecoded = new Int32Array(DECODED_STRIDE);
  // Fetch cache: the virtual page of the PC and its decoded array.
  private fetchValid = false;
  private fetchPageLow = 0;
  private fetchPageHigh = 0;
  private fetchFrame = -1;
  private fetchHost = 0;
  private fetchArray: Int32Array | null = null;
  private fetchPhysical = 0;

  // Access needs for the TLB at the current EL.
  private readNeed = 0;
  private writeNeed = 0;
  private execNeed = 0;
  private walkFlags = 0;

  // Per-instruction scratch.
  /** @internal */
  nextLow = 0;
  /** @internal */
  nextHigh = 0;
  private resultLow = 0;
  private resultHigh = 0;
  /** @internal */
  valueLow = 0;
  /** @internal */
  valueHigh = 0;
  private physical = 0;
  private remaining = 0;
  private stop = false;
  private eventCheck = true;
  private windowRequested = false;
  private readonly product = new Float64Array(8);
  private readonly limbs = new Float64Array(8);

  constructor(options: Arm64CpuOptions) {
    this.memory = options.memory;
    this.io = options.io ?? noIo;
    this.hooks = options.hooks ?? { readCounter: () => 0 };
    this.vcpuId = options.vcpuId ?? 0;
    this.counterFrequency = options.counterFrequency ?? 62500000;
    const ram = this.memory.ram;
    this.u8 = ram.u8;
    this.u16 = ram.u16;
    this.i32 = ram.i32;
    const frames = ram.size >>> 12;
    this.decodedPages = new Array(frames);
    this.codePage = new Uint8Array(frames);
    this.walker = new Arm64PageWalker(this.memory);
    // A p2m change can replace what backs a frame (populate, foreign map): forget translations and decoded code there.
    this.memory.addP2mListener((gfn, count) => {
      this.flushTranslations();
      this.invalidateCode(gfn * 4096, count * 4096);
    });
    this.reset();
  }

  /** Power-on state: EL1h, all exceptions masked, MMU off, registers zero, PC 0. */
  reset(): void {
    this.x.fill(0);
    this.spBank.fill(0);
    this.pcLow = 0;
    this.pcHigh = 0;
    this.n = this.z = this.c = this.v = 0;
    this.daif = 0xf;
    this.el = 1;
    this.spSel = 1;
    this.illegalState = false;
    SYSTEM_REGISTERS.forEach((info, index) => {
      this.sysRegs[index * 2] = info.resetLow;
      this.sysRegs[index * 2 + 1] = info.resetHigh;
    });
    this.sysRegs[SCTLR * 2] = SCTLR_RESET;
    this.exclusiveValid = false;
    this.v32.fill(0);
    this.fpu.fpcr = 0;
    this.fpu.flags = 0;
    this.syncWalker();
    this.modeChanged();
  }

  get instructionsRetired(): number {
    return this.retired;
  }

  // ---- public register access (for the hypervisor, the boot path and tests) ----

  /** Reads Xn (0..30) as an unsigned 64-bit number when exact, for tests and tools; halves via `x`. */
  getX(index: number): bigint {
    return (BigInt(this.x[index * 2 + 1] >>> 0) << 32n) | BigInt(this.x[index * 2] >>> 0);
  }

  /** Sets Xn (0..30) from a bigint or number (tests, boot path; not a hot path). */
  setX(index: number, value: bigint | number): void {
    const big = BigInt.asUintN(64, BigInt(value));
    this.x[index * 2] = Number(big & 0xffffffffn) | 0;
    this.x[index * 2 + 1] = Number(big >> 32n) | 0;
  }

  get pc(): bigint {
    return (BigInt(this.pcHigh >>> 0) << 32n) | BigInt(this.pcLow >>> 0);
  }

  set pc(value: bigint | number) {
    const big = BigInt.asUintN(64, BigInt(value));
    this.pcLow = Number(big & 0xffffffffn) | 0;
    this.pcHigh = Number(big >> 32n) | 0;
  }

  get sp(): bigint {
    return (BigInt(this.x[SP * 2 + 1] >>> 0) << 32n) | BigInt(this.x[SP * 2] >>> 0);
  }

  set sp(value: bigint | number) {
    const big = BigInt.asUintN(64, BigInt(value));
    this.x[SP * 2] = Number(big & 0xffffffffn) | 0;
    this.x[SP * 2 + 1] = Number(big >> 32n) | 0;
  }

  /** NZCV in bits 31:28 (as the NZCV system register). */
  get nzcv(): number {
    return ((this.n << 31) | (this.z << 30) | (this.c << 29) | (this.v << 28)) >>> 0;
  }

  set nzcv(value: number) {
    this.n = (value >>> 31) & 1;
    this.z = (value >>> 30) & 1;
    this.c = (value >>> 29) & 1;
    this.v = (value >>> 28) & 1;
  }

  /** PSTATE in SPSR_EL1 layout (Arm ARM C5.2.18). */
  get pstate(): number {
    return (
      (this.nzcv |
        (this.daif << 6) |
        (this.illegalState ? 1 << 20 : 0) |
        (this.el << 2) |
        this.spSel) >>>
      0
    );
  }

  /** A system register by name, as [low, high] (tests and tools). */
  readSystemRegister(name: string): [number, number] {
    const index = sysRegIndex(name);
    this.fetchSpecialForSave(index);
    return [this.sysRegs[index * 2] >>> 0, this.sysRegs[index * 2 + 1] >>> 0];
  }

  /** Sets a system register by name as an MSR at EL1 would (boot path, tests). */
  writeSystemRegister(name: string, low: number, high = 0): void {
    const info = SYSTEM_REGISTERS[sysRegIndex(name)];
    this.x[ZR * 2] = 0;
    this.x[66] = low | 0;
    this.x[67] = high | 0;
    const savedEl = this.el;
    this.el = 1;
    // The VMM's own write is not an instruction: CPACR_EL1.FPEN does not apply to FPCR/FPSR here.
    this.hostAccess = true;
    try {
      this.msr(info.key, 33);
    } finally {
      this.hostAccess = false;
      this.el = savedEl;
    }
    this.x[66] = 0;
    this.x[67] = 0;
  }

  /** Tells the CPU that something other than the guest wrote guest RAM (drops decoded code there). */
  invalidateCode(address: number, length: number): void {
    const base = this.memory.ram.base;
    const first = Math.max(0, Math.floor((address - base) / 4096));
    const last = Math.min(
      this.codePage.length - 1,
      Math.floor((address - base + length - 1) / 4096),
    );
    for (let frame = first; frame <= last; frame++)
      if (this.codePage[frame]) this.invalidateFrame(frame);
  }

  // ---- Vcpu ----

  run(budget: number): VcpuExitReason {
    const exit = this.exit;
    exit.reason = VcpuExitReason.Budget;
    this.remaining = budget;
    this.stop = false;
    // Timer outputs are sampled once per slice (and at timer writes and wfi): a GIC line changes at most a slice late.
    this.updateTimers();
    while (this.remaining > 0 && !this.stop) {
      try {
        this.loop();
      } catch (error) {
        if (error !== FAULT) throw error;
        // The instruction took an exception: it counts against the budget so that a fault loop cannot spin forever.
        this.remaining--;
      }
    }
    return exit.reason;
  }

  completeHypercall(resultLow: number, resultHigh: number): void {
    this.x[0] = resultLow | 0;
    this.x[1] = resultHigh | 0;
  }

  translate(virtualLow: number, virtualHigh: number, access: VcpuAccess): number {
    const flags = access | (this.el === 0 ? Arm64WalkFlags.Unprivileged : 0);
    return this.walker.walk(virtualLow | 0, virtualHigh | 0, flags);
  }

  notifyInterrupt(): void {
    this.eventCheck = true;
  }

  requestInterruptWindow(enable: boolean): void {
    this.windowRequested = enable;
    this.eventCheck = true;
  }

  interruptsEnabled(): boolean {
    return (this.daif & 2) === 0;
  }

  // ---- the generic timer (Arm ARM D11.2) ----

  /**
   * Re-evaluates both timers against the counter (`hooks.readCounter`) and
   * reports changed outputs to `onTimer`. The CPU calls it at the start of
   * every `run`, after timer register writes and at `wfi`; the VMM calls it
   * when a deadline it scheduled (`nextTimerDeadline`) has passed.
   */
  updateTimers(): void {
    const listener = this.onTimer;
    const ctlP = this.sysRegs[CNTP_CTL * 2];
    const ctlV = this.sysRegs[CNTV_CTL * 2];
    // Fast path: neither timer enabled and nothing asserted.
    if (((ctlP | ctlV) & 1) === 0 && this.timerLevels === 0) return;
    const now = this.counter();
    let levels = 0;
    if ((ctlP & 3) === 1 && now >= this.compareValue(CNTP_CVAL)) levels |= 1;
    if ((ctlV & 3) === 1 && now >= this.compareValue(CNTV_CVAL)) levels |= 2;
    const changed = levels ^ this.timerLevels;
    if (changed === 0) return;
    this.timerLevels = levels;
    if (listener === null) return;
    if (changed & 1) listener(Arm64Timer.Physical, (levels & 1) !== 0);
    if (changed & 2) listener(Arm64Timer.Virtual, (levels & 2) !== 0);
  }

  /** The timer outputs as last evaluated: bit 0 physical, bit 1 virtual. */
  get timerOutputs(): number {
    return this.timerLevels;
  }

  /**
   * The counter value at which `timer` will assert its output, or Infinity
   * when it is disabled or masked (the VMM's wake-up time for a halted vCPU).
   */
  timerDeadline(timer: Arm64Timer): number {
    const ctl = this.sysRegs[(timer === Arm64Timer.Physical ? CNTP_CTL : CNTV_CTL) * 2];
    if ((ctl & 3) !== 1) return Number.POSITIVE_INFINITY;
    return this.compareValue(timer === Arm64Timer.Physical ? CNTP_CVAL : CNTV_CVAL);
  }

  /** The earlier of both timers' deadlines (Infinity when none is armed). */
  nextTimerDeadline(): number {
    return Math.min(
      this.timerDeadline(Arm64Timer.Physical),
      this.timerDeadline(Arm64Timer.Virtual),
    );
  }

  /** CVAL as an unsigned 64-bit count (a double: exact to 2^53, as the counter). */
  private compareValue(index: number): number {
    return (this.sysRegs[index * 2 + 1] >>> 0) * TWO_POW_32 + (this.sysRegs[index * 2] >>> 0);
  }

  saveState(): Arm64CpuState {
    this.bankSp();
    const systemRegisters: Record<string, [number, number]> = {};
    SYSTEM_REGISTERS.forEach((info, index) => {
      if (info.kind === SysRegKind.Constant || info.kind === SysRegKind.Zero) return;
      if (
        info.name === "CurrentEL" ||
        info.name === "SPSel" ||
        info.name === "NZCV" ||
        info.name === "DAIF" ||
        info.name === "FPCR" ||
        info.name === "FPSR"
      )
        return;
      if (
        info.name === "SP_EL0" ||
        info.name.startsWith("CNTP_T") ||
        info.name.startsWith("CNTV_T")
      )
        return;
      if (info.name === "CNTPCT_EL0" || info.name === "CNTVCT_EL0" || info.name === "CNTFRQ_EL0")
        return;
      if (info.name === "MPIDR_EL1") return;
      systemRegisters[info.name] = [
        this.sysRegs[index * 2] >>> 0,
        this.sysRegs[index * 2 + 1] >>> 0,
      ];
    });
    const x: number[] = [];
    for (let i = 0; i < 62; i++) x.push(this.x[i] >>> 0);
    return {
      kind: "arm64-cpu",
      version: 2,
      x,
      pc: [this.pcLow >>> 0, this.pcHigh >>> 0],
      spEl0: [this.spBank[0] >>> 0, this.spBank[1] >>> 0],
      spEl1: [this.spBank[2] >>> 0, this.spBank[3] >>> 0],
      pstate: this.pstate,
      systemRegisters,
      exclusive: { valid: this.exclusiveValid, address: this.exclusiveAddress },
      instructionsRetired: this.retired,
      v: Array.from(this.v32.subarray(0, 128), (word) => word >>> 0),
      fpcr: this.fpu.fpcr,
      fpsr: this.fpu.flags,
    };
  }

  restoreState(state: VcpuState): void {
    if (state.kind !== "arm64-cpu")
      throw new Arm64StateError(`expected an arm64-cpu state, got "${state.kind}"`);
    if (state.version !== 1 && state.version !== 2)
      throw new Arm64StateError(
        `arm64-cpu state version ${state.version} is not supported (expected 1 or 2)`,
      );
    const saved = state as Arm64CpuState;
    // Version 1 states predate the FP/SIMD unit: its registers restore as zero.
    const vector = saved.version === 2 ? saved.v : undefined;
    if (saved.version === 2 && (!Array.isArray(vector) || vector.length !== 128))
      throw new Arm64StateError("arm64-cpu state: v must hold 128 words (V0-V31)");
    this.v32.fill(0);
    if (vector) for (let i = 0; i < 128; i++) this.v32[i] = vector[i] | 0;
    this.fpu.fpcr = (saved.fpcr ?? 0) & FPCR_MASK;
    this.fpu.flags = (saved.fpsr ?? 0) & FPSR_MASK;
    if (!Array.isArray(saved.x) || saved.x.length !== 62)
      throw new Arm64StateError("arm64-cpu state: x must hold 62 halves");
    for (let i = 0; i < 62; i++) this.x[i] = saved.x[i] | 0;
    this.pcLow = saved.pc[0] | 0;
    this.pcHigh = saved.pc[1] | 0;
    this.spBank[0] = saved.spEl0[0] | 0;
    this.spBank[1] = saved.spEl0[1] | 0;
    this.spBank[2] = saved.spEl1[0] | 0;
    this.spBank[3] = saved.spEl1[1] | 0;
    const pstate = saved.pstate >>> 0;
    this.nzcv = pstate;
    this.daif = (pstate >>> 6) & 15;
    this.el = (pstate >>> 2) & 3;
    this.spSel = pstate & 1;
    this.illegalState = ((pstate >>> 20) & 1) !== 0;
    if (this.el > 1) throw new Arm64StateError(`arm64-cpu state: EL${this.el} is not implemented`);
    const active = this.el === 0 || this.spSel === 0 ? 0 : 2;
    this.x[SP * 2] = this.spBank[active];
    this.x[SP * 2 + 1] = this.spBank[active + 1];
    for (const [name, value] of Object.entries(saved.systemRegisters)) {
      const index = SYSTEM_REGISTERS.findIndex((info) => info.name === name);
      if (index < 0) throw new Arm64StateError(`arm64-cpu state: unknown system register ${name}`);
      this.sysRegs[index * 2] = value[0] | 0;
      this.sysRegs[index * 2 + 1] = value[1] | 0;
    }
    // Timer outputs are reported afresh from the restored registers at the next run.
    this.timerLevels = 0;
    this.exclusiveValid = saved.exclusive.valid;
    this.exclusiveAddress = saved.exclusive.address;
    this.retired = saved.instructionsRetired;
    this.syncWalker();
    this.flushTranslations();
    this.modeChanged();
  }

  // ---- the interpreter ----

  private loop(): void {
    const x = this.x;
    while (this.remaining > 0 && !this.stop) {
      if (this.eventCheck) this.checkEvents();
      if (this.stop) return;
      const slots = this.fetch();
      const at = this.fetchSlot;
      // Next PC: +4 with a carry into the high half.
      this.nextLow = (this.pcLow + 4) | 0;
      this.nextHigh = this.nextLow === 0 ? (this.pcHigh + 1) | 0 : this.pcHigh;
      this.execute(slots, at);
      x[66] = 0;
      x[67] = 0;
      this.pcLow = this.nextLow;
      this.pcHigh = this.nextHigh;
      this.retired++;
      this.remaining--;
    }
  }

  private fetchSlot = 0;

  /** The decoded slots of the instruction at PC (sets `fetchSlot`); raises instruction aborts. */
  private fetch(): Int32Array {
    if (this.illegalState) this.takeSync(ExceptionClass.IllegalState, 0, this.pcLow, this.pcHigh);
    const pcLow = this.pcLow;
    if ((pcLow & 3) !== 0) {
      this.sysRegs[FAR * 2] = pcLow;
      this.sysRegs[FAR * 2 + 1] = this.pcHigh;
      this.takeSync(ExceptionClass.PcAlignment, 0, pcLow, this.pcHigh);
    }
    if (
      !this.fetchValid ||
      pcLow >>> 12 !== this.fetchPageLow ||
      this.pcHigh !== this.fetchPageHigh
    ) {
      this.fetchPage();
    }
    const offset = pcLow & 0xfff;
    const array = this.fetchArray;
    if (array === null) {
      // Code outside directly accessible RAM (MMIO, mapped frames): decode every time.
      const word = this.memory.read32(this.fetchPhysical + offset);
      decodeInstruction(word, this.scratchDecoded, 0);
      this.fetchSlot = 0;
      return this.scratchDecoded;
    }
    const at = (offset >>> 2) * DECODED_STRIDE;
    if (array[at] === 0) decodeInstruction(this.i32[(this.fetchHost + offset) >>> 2], array, at);
    this.fetchSlot = at;
    return array;
  }

  private fetchPage(): void {
    const pcLow = this.pcLow;
    const pcHigh = this.pcHigh;
    let index = this.tlb.lookup(pcLow, pcHigh, this.execNeed);
    if (index < 0) {
      const physical = this.walker.walk(pcLow, pcHigh, 2 | this.walkFlags);
      if (physical < 0) {
        this.sysRegs[FAR * 2] = pcLow;
        this.sysRegs[FAR * 2 + 1] = pcHigh;
        const ec =
          this.el === 0
            ? ExceptionClass.InstructionAbortLower
            : ExceptionClass.InstructionAbortSame;
        this.takeSync(ec, this.walker.faultStatus, pcLow, pcHigh);
      }
      index = this.insertTlb(pcLow, pcHigh);
    }
    this.fetchValid = true;
    this.fetchPageLow = pcLow >>> 12;
    this.fetchPageHigh = pcHigh;
    const host = this.tlb.hostOffset[index];
    if (host >= 0) {
      const frame = host >>> 12;
      let array = this.decodedPages[frame];
      if (array === undefined) {
        array = new Int32Array(1024 * DECODED_STRIDE);
        this.decodedPages[frame] = array;
        this.codePage[frame] = 1;
      }
      this.fetchFrame = frame;
      this.fetchHost = host;
      this.fetchArray = array;
    } else {
      this.fetchFrame = -1;
      this.fetchArray = null;
      this.fetchPhysical = this.tlb.physicalPage[index];
    }
  }

  private insertTlb(vaLow: number, vaHigh: number): number {
    const walker = this.walker;
    return this.tlb.insert(
      vaLow,
      vaHigh,
      walker.physicalPage,
      walker.permissions,
      walker.pageShift,
      this.memory.directOffset(walker.physicalPage),
      walker.attributes,
    );
  }

  private invalidateFrame(frame: number): void {
    this.decodedPages[frame] = undefined;
    this.codePage[frame] = 0;
    if (frame === this.fetchFrame) this.fetchValid = false;
  }

  private flushTranslations(): void {
    this.tlb.flushAll();
    this.fetchValid = false;
  }

  /** Recomputes what depends on EL (TLB access bits, walk flags) and drops the fetch cache. */
  private modeChanged(): void {
    const flags = this.el === 0 ? Arm64WalkFlags.Unprivileged : 0;
    this.walkFlags = flags;
    this.readNeed = arm64AccessPermission(0, flags);
    this.writeNeed = arm64AccessPermission(1, flags);
    this.execNeed = arm64AccessPermission(2, flags);
    this.fetchValid = false;
    this.eventCheck = true;
  }

  private syncWalker(): void {
    const s = this.sysRegs;
    const walker = this.walker;
    walker.sctlr = s[SCTLR * 2];
    walker.tcrLow = s[TCR * 2];
    walker.tcrHigh = s[TCR * 2 + 1];
    walker.ttbr0Low = s[TTBR0 * 2];
    walker.ttbr0High = s[TTBR0 * 2 + 1];
    walker.ttbr1Low = s[TTBR1 * 2];
    walker.ttbr1High = s[TTBR1 * 2 + 1];
    walker.mairLow = s[MAIR * 2];
    walker.mairHigh = s[MAIR * 2 + 1];
    this.tlb.setAsid(walker.currentAsid());
    this.fetchValid = false;
  }

  private checkEvents(): void {
    this.eventCheck = false;
    const source = this.interrupts;
    if ((this.daif & 1) === 0 && this.fiq?.hasPending()) {
      // FIQ: vector offset 0x100 (Arm ARM D1.10.2), masked by PSTATE.F.
      this.takeException(0x100, this.pcLow, this.pcHigh);
      this.eventCheck = true;
      return;
    }
    if ((this.daif & 2) === 0) {
      if (this.windowRequested) {
        this.windowRequested = false;
        this.exitWith(VcpuExitReason.InterruptWindow);
        return;
      }
      if (source?.hasPending()) {
        // The GIC's CPU interface is read by the guest (IAR); the CPU only takes the IRQ exception (Arm ARM D1.3).
        this.takeException(0x80, this.pcLow, this.pcHigh);
        this.eventCheck = true;
      }
    }
  }

  private exitWith(reason: VcpuExitReason): void {
    this.exit.reason = reason;
    this.stop = true;
  }

  // ---- exceptions (Arm ARM D1.10 "Exception entry") ----

  private bankSp(): void {
    const active = this.el === 0 || this.spSel === 0 ? 0 : 2;
    this.spBank[active] = this.x[SP * 2];
    this.spBank[active + 1] = this.x[SP * 2 + 1];
  }

  private loadSp(): void {
    const active = this.el === 0 || this.spSel === 0 ? 0 : 2;
    this.x[SP * 2] = this.spBank[active];
    this.x[SP * 2 + 1] = this.spBank[active + 1];
  }

  /**
   * Enters EL1 at VBAR_EL1 + the vector of the current state + `kind`
   * (0 synchronous, 0x80 IRQ, 0x100 FIQ, 0x180 SError), saving PSTATE to
   * SPSR_EL1 and the return address to ELR_EL1.
   */
  private takeException(kind: number, returnLow: number, returnHigh: number): void {
    const s = this.sysRegs;
    s[SPSR * 2] = this.pstate | 0;
    s[SPSR * 2 + 1] = 0;
    s[ELR * 2] = returnLow;
    s[ELR * 2 + 1] = returnHigh;
    const base = this.el === 0 ? 0x400 : this.spSel ? 0x200 : 0;
    this.bankSp();
    this.el = 1;
    this.spSel = 1;
    this.loadSp();
    this.daif = 0xf;
    this.illegalState = false;
    // An exception clears the local exclusive monitor (Arm ARM B2.9.5).
    this.exclusiveValid = false;
    const vbarLow = s[VBAR * 2] & ~0x7ff;
    this.pcLow = (vbarLow + base + kind) | 0;
    this.pcHigh = s[VBAR * 2 + 1];
    this.nextLow = this.pcLow;
    this.nextHigh = this.pcHigh;
    this.modeChanged();
  }

  /** Takes a synchronous exception with ESR_EL1 = EC:IL=1:ISS and unwinds the instruction. */
  /** @internal */
  takeSync(ec: number, iss: number, returnLow: number, returnHigh: number): never {
    this.takeException(0, returnLow, returnHigh);
    this.sysRegs[ESR * 2] = (ec << 26) | (1 << 25) | (iss & 0x1ffffff);
    this.sysRegs[ESR * 2 + 1] = 0;
    throw FAULT;
  }

  /**
   * CheckFPAdvSIMDEnabled64 (Arm ARM D19.2 CPACR_EL1.FPEN): 0b11 allows
   * EL0 and EL1, 0b01 EL1 only; otherwise the instruction traps to EL1 with
   * EC 0x07. The ISS has CV = 1 and COND = 0b1110 as for any A64
   * instruction (Linux's do_fpsimd_acc enables FP lazily from this trap).
   * @internal
   */
  checkFpEnabled(): void {
    const fpen = (this.sysRegs[CPACR * 2] >>> 20) & 3;
    if (fpen === 3 || (fpen === 1 && this.el === 1)) return;
    this.takeSync(ExceptionClass.FpAccess, 0x1e00000, this.pcLow, this.pcHigh);
  }

  /** @internal */
  undefinedInstruction(): never {
    this.takeSync(ExceptionClass.Unknown, 0, this.pcLow, this.pcHigh);
  }

  private dataAbort(vaLow: number, vaHigh: number, write: boolean, status: number): never {
    this.sysRegs[FAR * 2] = vaLow;
    this.sysRegs[FAR * 2 + 1] = vaHigh;
    const ec = this.el === 0 ? ExceptionClass.DataAbortLower : ExceptionClass.DataAbortSame;
    this.takeSync(ec, (write ? 1 << 6 : 0) | status, this.pcLow, this.pcHigh);
  }

  // ---- memory ----

  /**
   * Host offset in `ram.u8` of a data access of `size` bytes at va, or -1
   * with `physical` set (MMIO, mapped frames). Raises data aborts. The
   * access must not cross a page (callers split those).
   */
  /** @internal */
  dataAddress(vaLow: number, vaHigh: number, write: boolean, unprivileged: boolean): number {
    const need = unprivileged
      ? arm64AccessPermission(write ? 1 : 0, Arm64WalkFlags.Unprivileged)
      : write
        ? this.writeNeed
        : this.readNeed;
    let index = this.tlb.lookup(vaLow, vaHigh, need);
    if (index < 0) {
      const flags = (write ? 1 : 0) | (unprivileged ? Arm64WalkFlags.Unprivileged : this.walkFlags);
      if (this.walker.walk(vaLow, vaHigh, flags) < 0)
        this.dataAbort(vaLow, vaHigh, write, this.walker.faultStatus);
      index = this.insertTlb(vaLow, vaHigh);
    }
    const host = this.tlb.hostOffset[index];
    if (host >= 0) return host + (vaLow & 0xfff);
    this.physical = this.tlb.physicalPage[index] + (vaLow & 0xfff);
    return -1;
  }

  /** Loads 1 << sizeLog bytes (zero-extended) into valueLow/valueHigh. */
  /** @internal */
  load(vaLow: number, vaHigh: number, sizeLog: number, unprivileged: boolean): void {
    const size = 1 << sizeLog;
    if ((vaLow & 0xfff) + size > 0x1000) {
      this.loadSplit(vaLow, vaHigh, size, unprivileged);
      return;
    }
    const host = this.dataAddress(vaLow, vaHigh, false, unprivileged);
    if (host >= 0) {
      const u8 = this.u8;
      switch (sizeLog) {
        case 0:
          this.valueLow = u8[host];
          this.valueHigh = 0;
          return;
        case 1:
          this.valueLow = (host & 1) === 0 ? this.u16[host >>> 1] : u8[host] | (u8[host + 1] << 8);
          this.valueHigh = 0;
          return;
        case 2:
          this.valueLow = (host & 3) === 0 ? this.i32[host >>> 2] : this.readUnaligned32(host);
          this.valueHigh = 0;
          return;
        default:
          if ((host & 3) === 0) {
            this.valueLow = this.i32[host >>> 2];
            this.valueHigh = this.i32[(host >>> 2) + 1];
          } else {
            this.valueLow = this.readUnaligned32(host);
            this.valueHigh = this.readUnaligned32(host + 4);
          }
          return;
      }
    }
    const memory = this.memory;
    const physical = this.physical;
    this.valueHigh = 0;
    if (sizeLog === 0) this.valueLow = memory.read8(physical);
    else if (sizeLog === 1) this.valueLow = memory.read16(physical);
    else if (sizeLog === 2) this.valueLow = memory.read32(physical) | 0;
    else {
      this.valueLow = memory.read32(physical) | 0;
      this.valueHigh = memory.read32(physical + 4) | 0;
    }
  }

  private readUnaligned32(host: number): number {
    const u8 = this.u8;
    return u8[host] | (u8[host + 1] << 8) | (u8[host + 2] << 16) | (u8[host + 3] << 24);
  }

  /** A load that crosses a page: byte by byte (both pages are checked before the result is used). */
  private loadSplit(vaLow: number, vaHigh: number, size: number, unprivileged: boolean): void {
    let low = 0;
    let high = 0;
    for (let i = 0; i < size; i++) {
      const addressLow = (vaLow + i) | 0;
      const addressHigh = (vaLow >>> 0) + i > 0xffffffff ? (vaHigh + 1) | 0 : vaHigh;
      this.load(addressLow, addressHigh, 0, unprivileged);
      if (i < 4) low |= this.valueLow << (8 * i);
      else high |= this.valueLow << (8 * (i - 4));
    }
    this.valueLow = low;
    this.valueHigh = high;
  }

  /** Stores the low 1 << sizeLog bytes of low/high. */
  /** @internal */
  store(
    vaLow: number,
    vaHigh: number,
    sizeLog: number,
    low: number,
    high: number,
    unprivileged: boolean,
  ): void {
    const size = 1 << sizeLog;
    if ((vaLow & 0xfff) + size > 0x1000) {
      // Check both pages first so that a fault leaves memory untouched.
      const endLow = (vaLow + size - 1) | 0;
      const endHigh = (vaLow >>> 0) + size - 1 > 0xffffffff ? (vaHigh + 1) | 0 : vaHigh;
      this.dataAddress(vaLow, vaHigh, true, unprivileged);
      this.dataAddress(endLow, endHigh, true, unprivileged);
      for (let i = 0; i < size; i++) {
        const byte = i < 4 ? low >>> (8 * i) : high >>> (8 * (i - 4));
        const addressLow = (vaLow + i) | 0;
        const addressHigh = (vaLow >>> 0) + i > 0xffffffff ? (vaHigh + 1) | 0 : vaHigh;
        this.store(addressLow, addressHigh, 0, byte, 0, unprivileged);
      }
      return;
    }
    const host = this.dataAddress(vaLow, vaHigh, true, unprivileged);
    if (host >= 0) {
      if (this.codePage[host >>> 12]) this.invalidateFrame(host >>> 12);
      const u8 = this.u8;
      switch (sizeLog) {
        case 0:
          u8[host] = low;
          return;
        case 1:
          if ((host & 1) === 0) this.u16[host >>> 1] = low;
          else {
            u8[host] = low;
            u8[host + 1] = low >>> 8;
          }
          return;
        case 2:
          if ((host & 3) === 0) this.i32[host >>> 2] = low;
          else this.writeUnaligned32(host, low);
          return;
        default:
          if ((host & 3) === 0) {
            this.i32[host >>> 2] = low;
            this.i32[(host >>> 2) + 1] = high;
          } else {
            this.writeUnaligned32(host, low);
            this.writeUnaligned32(host + 4, high);
          }
          return;
      }
    }
    const memory = this.memory;
    const physical = this.physical;
    if (sizeLog === 0) memory.write8(physical, low & 0xff);
    else if (sizeLog === 1) memory.write16(physical, low & 0xffff);
    else if (sizeLog === 2) memory.write32(physical, low >>> 0);
    else {
      memory.write32(physical, low >>> 0);
      memory.write32(physical + 4, high >>> 0);
    }
    this.invalidateCode(physical, size);
  }

  private writeUnaligned32(host: number, value: number): void {
    const u8 = this.u8;
    u8[host] = value;
    u8[host + 1] = value >>> 8;
    u8[host + 2] = value >>> 16;
    u8[host + 3] = value >>> 24;
  }

  // ---- arithmetic helpers (results in resultLow/resultHigh) ----

  /** AddWithCarry (Arm ARM shared pseudocode) on 32- or 64-bit operands; sets NZCV when asked. */
  private addWithCarry(
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
    carry: number,
    sf: number,
    setFlags: number,
  ): void {
    const sumLow = (aLow >>> 0) + (bLow >>> 0) + carry;
    const low = sumLow | 0;
    if (sf === 0) {
      this.resultLow = low;
      this.resultHigh = 0;
      if (setFlags !== 0) {
        this.n = low >>> 31;
        this.z = low === 0 ? 1 : 0;
        this.c = sumLow > 0xffffffff ? 1 : 0;
        this.v = ((aLow ^ low) & (bLow ^ low)) >>> 31;
      }
      return;
    }
    const sumHigh = (aHigh >>> 0) + (bHigh >>> 0) + (sumLow > 0xffffffff ? 1 : 0);
    const high = sumHigh | 0;
    this.resultLow = low;
    this.resultHigh = high;
    if (setFlags !== 0) {
      this.n = high >>> 31;
      this.z = (low | high) === 0 ? 1 : 0;
      this.c = sumHigh > 0xffffffff ? 1 : 0;
      this.v = ((aHigh ^ high) & (bHigh ^ high)) >>> 31;
    }
  }

  /** Shifts a 32- or 64-bit value (type 0 LSL, 1 LSR, 2 ASR, 3 ROR) into valueLow/valueHigh. */
  private shift(low: number, high: number, type: number, amount: number, sf: number): void {
    if (sf === 0) {
      this.valueHigh = 0;
      if (amount === 0) {
        this.valueLow = low;
        return;
      }
      switch (type) {
        case 0:
          this.valueLow = low << amount;
          return;
        case 1:
          this.valueLow = low >>> amount;
          return;
        case 2:
          this.valueLow = low >> amount;
          return;
        default:
          this.valueLow = (low >>> amount) | (low << (32 - amount));
          return;
      }
    }
    amount &= 63;
    if (amount === 0) {
      this.valueLow = low;
      this.valueHigh = high;
      return;
    }
    switch (type) {
      case 0:
        if (amount < 32) {
          this.valueHigh = (high << amount) | (low >>> (32 - amount));
          this.valueLow = low << amount;
        } else {
          this.valueHigh = low << (amount - 32);
          this.valueLow = 0;
        }
        return;
      case 1:
        if (amount < 32) {
          this.valueLow = (low >>> amount) | (high << (32 - amount));
          this.valueHigh = high >>> amount;
        } else {
          this.valueLow = high >>> (amount - 32);
          this.valueHigh = 0;
        }
        return;
      case 2:
        if (amount < 32) {
          this.valueLow = (low >>> amount) | (high << (32 - amount));
          this.valueHigh = high >> amount;
        } else {
          this.valueLow = high >> (amount - 32);
          this.valueHigh = high >> 31;
        }
        return;
      default: {
        // Rotate: swap halves for 32..63 then rotate by the rest.
        let l = low;
        let h = high;
        if (amount >= 32) {
          l = high;
          h = low;
          amount -= 32;
        }
        if (amount === 0) {
          this.valueLow = l;
          this.valueHigh = h;
        } else {
          this.valueLow = (l >>> amount) | (h << (32 - amount));
          this.valueHigh = (h >>> amount) | (l << (32 - amount));
        }
      }
    }
  }

  /** ExtendReg (Arm ARM shared pseudocode) into valueLow/valueHigh. */
  private extendRegister(low: number, high: number, option: number, amount: number): void {
    switch (option) {
      case 0:
        low &= 0xff;
        high = 0;
        break;
      case 1:
        low &= 0xffff;
        high = 0;
        break;
      case 2:
        high = 0;
        break;
      case 3:
        break;
      case 4:
        low = (low << 24) >> 24;
        high = low >> 31;
        break;
      case 5:
        low = (low << 16) >> 16;
        high = low >> 31;
        break;
      case 6:
        high = low >> 31;
        break;
      default:
        break;
    }
    this.shift(low, high, 0, amount, 1);
  }

  /** The 128-bit unsigned product of two 64-bit values as 16-bit limbs in `product` (0 = least significant). */
  private multiply64(aLow: number, aHigh: number, bLow: number, bHigh: number): void {
    const a = this.limbs;
    a[0] = aLow & 0xffff;
    a[1] = aLow >>> 16;
    a[2] = aHigh & 0xffff;
    a[3] = aHigh >>> 16;
    a[4] = bLow & 0xffff;
    a[5] = bLow >>> 16;
    a[6] = bHigh & 0xffff;
    a[7] = bHigh >>> 16;
    const p = this.product;
    p.fill(0);
    for (let i = 0; i < 4; i++) {
      const ai = a[i];
      if (ai === 0) continue;
      for (let j = 0; j < 4; j++) p[i + j] += ai * a[4 + j];
    }
    let carry = 0;
    for (let k = 0; k < 8; k++) {
      const value = p[k] + carry;
      const limb = value % 65536;
      carry = (value - limb) / 65536;
      p[k] = limb;
    }
  }

  /** Unsigned 64-bit division into resultLow/resultHigh (division by zero gives 0, Arm ARM C6.2 UDIV). */
  private divideUnsigned(aLow: number, aHigh: number, bLow: number, bHigh: number): void {
    const a = (aHigh >>> 0) * TWO_POW_32 + (aLow >>> 0);
    const b = (bHigh >>> 0) * TWO_POW_32 + (bLow >>> 0);
    if (b === 0) {
      this.resultLow = 0;
      this.resultHigh = 0;
      return;
    }
    if (a < 2 ** 52 && b < 2 ** 52) {
      // Exact in doubles after the remainder fix-up.
      let q = Math.floor(a / b);
      const remainder = a - q * b;
      if (remainder < 0) q--;
      else if (remainder >= b) q++;
      this.resultLow = (q % TWO_POW_32) | 0;
      this.resultHigh = Math.floor(q / TWO_POW_32) | 0;
      return;
    }
    // Restoring division on halves, one quotient bit per step (large operands only).
    let qLow = 0;
    let qHigh = 0;
    let rLow = 0;
    let rHigh = 0;
    for (let bit = 63; bit >= 0; bit--) {
      rHigh = (rHigh << 1) | (rLow >>> 31);
      rLow = (rLow << 1) | ((bit >= 32 ? aHigh >>> (bit - 32) : aLow >>> bit) & 1);
      const greater =
        rHigh >>> 0 > bHigh >>> 0 || (rHigh >>> 0 === bHigh >>> 0 && rLow >>> 0 >= bLow >>> 0);
      if (greater) {
        const low = (rLow >>> 0) - (bLow >>> 0);
        rHigh = ((rHigh >>> 0) - (bHigh >>> 0) - (low < 0 ? 1 : 0)) | 0;
        rLow = low | 0;
        if (bit >= 32) qHigh |= 1 << (bit - 32);
        else qLow |= 1 << bit;
      }
    }
    this.resultLow = qLow;
    this.resultHigh = qHigh;
  }

  /** @internal */
  conditionHolds(cond: number): boolean {
    let result: boolean;
    switch (cond >>> 1) {
      case 0:
        result = this.z === 1;
        break;
      case 1:
        result = this.c === 1;
        break;
      case 2:
        result = this.n === 1;
        break;
      case 3:
        result = this.v === 1;
        break;
      case 4:
        result = this.c === 1 && this.z === 0;
        break;
      case 5:
        result = this.n === this.v;
        break;
      case 6:
        result = this.n === this.v && this.z === 0;
        break;
      default:
        return true;
    }
    return (cond & 1) === 1 ? !result : result;
  }

  /** @internal */
  branchRelative(offsetLow: number, offsetHigh: number): void {
    const sum = (this.pcLow >>> 0) + (offsetLow >>> 0);
    this.nextLow = sum | 0;
    this.nextHigh = (this.pcHigh + offsetHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
  }

  /** Writes a result to a register slot; 32-bit results zero the upper half. */
  private setResult(slot: number, low: number, high: number, sf: number): void {
    this.x[slot * 2] = low;
    this.x[slot * 2 + 1] = sf === 0 ? 0 : high;
  }

  // ---- execute ----

  private execute(d: Int32Array, at: number): void {
    const x = this.x;
    const registers = d[at + 1];
    const rd = registers & 63;
    const rn = (registers >>> 6) & 63;
    const rm = (registers >>> 12) & 63;
    const sf = (registers >>> 24) & 1;
    const setFlags = (registers >>> 25) & 1;
    switch (d[at]) {
      case Op.Adr:
        this.branchRelative(d[at + 2], d[at + 3]);
        x[rd * 2] = this.nextLow;
        x[rd * 2 + 1] = this.nextHigh;
        this.nextLow = (this.pcLow + 4) | 0;
        this.nextHigh = this.nextLow === 0 ? (this.pcHigh + 1) | 0 : this.pcHigh;
        return;
      case Op.Adrp: {
        const base = this.pcLow & ~0xfff;
        const sum = (base >>> 0) + (d[at + 2] >>> 0);
        x[rd * 2] = sum | 0;
        x[rd * 2 + 1] = (this.pcHigh + d[at + 3] + (sum > 0xffffffff ? 1 : 0)) | 0;
        return;
      }
      case Op.AddSubImm:
        if (d[at + 3] === 0)
          this.addWithCarry(x[rn * 2], x[rn * 2 + 1], d[at + 2], 0, 0, sf, setFlags);
        else this.addWithCarry(x[rn * 2], x[rn * 2 + 1], ~d[at + 2], -1, 1, sf, setFlags);
        this.setResult(rd, this.resultLow, this.resultHigh, sf);
        return;
      case Op.LogicImm:
        this.logic(d[at + 2], x[rn * 2], x[rn * 2 + 1], d[at + 3], d[at + 4], sf, rd);
        return;
      case Op.MovN:
        this.setResult(rd, ~d[at + 2], ~d[at + 3], sf);
        return;
      case Op.MovZ:
        this.setResult(rd, d[at + 2], d[at + 3], sf);
        return;
      case Op.MovK: {
        const hw = d[at + 4];
        const shift = (hw & 1) * 16;
        const mask = ~(0xffff << shift);
        if (hw < 2) x[rd * 2] = (x[rd * 2] & mask) | d[at + 2];
        else x[rd * 2 + 1] = (x[rd * 2 + 1] & mask) | d[at + 3];
        if (sf === 0) x[rd * 2 + 1] = 0;
        return;
      }
      case Op.Bitfield:
        this.bitfield(d, at, rd, rn, sf);
        return;
      case Op.Extr: {
        const lsb = d[at + 2];
        const nLow = x[rn * 2];
        const nHigh = x[rn * 2 + 1];
        const mLow = x[rm * 2];
        const mHigh = x[rm * 2 + 1];
        if (sf === 0) {
          this.setResult(rd, lsb === 0 ? mLow : (mLow >>> lsb) | (nLow << (32 - lsb)), 0, 0);
        } else if (lsb === 0) {
          this.setResult(rd, mLow, mHigh, 1);
        } else if (lsb < 32) {
          this.setResult(
            rd,
            (mLow >>> lsb) | (mHigh << (32 - lsb)),
            (mHigh >>> lsb) | (nLow << (32 - lsb)),
            1,
          );
        } else if (lsb === 32) {
          this.setResult(rd, mHigh, nLow, 1);
        } else {
          const s = lsb - 32;
          this.setResult(
            rd,
            (mHigh >>> s) | (nLow << (32 - s)),
            (nLow >>> s) | (nHigh << (32 - s)),
            1,
          );
        }
        return;
      }
      case Op.B:
        this.branchRelative(d[at + 2], d[at + 3]);
        return;
      case Op.Bl:
        x[60] = this.nextLow;
        x[61] = this.nextHigh;
        this.branchRelative(d[at + 2], d[at + 3]);
        return;
      case Op.Br:
      case Op.Ret:
        this.nextLow = x[rn * 2];
        this.nextHigh = x[rn * 2 + 1];
        return;
      case Op.Blr: {
        const targetLow = x[rn * 2];
        const targetHigh = x[rn * 2 + 1];
        x[60] = this.nextLow;
        x[61] = this.nextHigh;
        this.nextLow = targetLow;
        this.nextHigh = targetHigh;
        return;
      }
      case Op.Cbz: {
        const zero = sf === 0 ? x[rd * 2] === 0 : (x[rd * 2] | x[rd * 2 + 1]) === 0;
        if (zero !== (d[at + 4] === 1)) this.branchRelative(d[at + 2], d[at + 3]);
        return;
      }
      case Op.Tbz: {
        const bit = d[at + 4];
        const value = bit < 32 ? (x[rd * 2] >>> bit) & 1 : (x[rd * 2 + 1] >>> (bit - 32)) & 1;
        if (value === d[at + 5]) this.branchRelative(d[at + 2], d[at + 3]);
        return;
      }
      case Op.BCond:
        if (this.conditionHolds(d[at + 4])) this.branchRelative(d[at + 2], d[at + 3]);
        return;
      case Op.Svc:
        this.takeException(0, this.nextLow, this.nextHigh);
        this.sysRegs[ESR * 2] = (ExceptionClass.Svc64 << 26) | (1 << 25) | d[at + 2];
        this.sysRegs[ESR * 2 + 1] = 0;
        return;
      case Op.Hvc:
        this.hypervisorCall(d[at + 2]);
        return;
      case Op.Brk:
        this.takeSync(ExceptionClass.Brk64, d[at + 2], this.pcLow, this.pcHigh);
        return;
      case Op.Smc:
      case Op.Hlt:
        // No EL3, no halting debug: both are UNDEFINED (Arm ARM C6.2 SMC, HLT).
        this.undefinedInstruction();
        return;
      case Op.MsrImm:
        this.msrImmediate(d[at + 2], d[at + 3], d[at + 4]);
        return;
      case Op.Hint:
        this.hint(d[at + 2]);
        return;
      case Op.Barrier:
        // One in-order core: barriers order nothing more; CLREX clears the monitor.
        if (d[at + 2] === 2) this.exclusiveValid = false;
        return;
      case Op.Mrs:
        this.mrs(d[at + 2], rd);
        return;
      case Op.Msr:
        this.msr(d[at + 2], rd);
        return;
      case Op.Sys:
        this.systemInstruction(d[at + 2], rd);
        return;
      case Op.Eret:
        this.exceptionReturn();
        return;
      case Op.LdrLiteral: {
        const kind = d[at + 4];
        if (kind === 3) return; // PRFM (literal): a hint
        this.branchRelative(d[at + 2], d[at + 3]);
        const addressLow = this.nextLow;
        const addressHigh = this.nextHigh;
        this.nextLow = (this.pcLow + 4) | 0;
        this.nextHigh = this.nextLow === 0 ? (this.pcHigh + 1) | 0 : this.pcHigh;
        this.load(addressLow, addressHigh, kind === 1 ? 3 : 2, false);
        x[rd * 2] = this.valueLow;
        x[rd * 2 + 1] = kind === 1 ? this.valueHigh : kind === 2 ? this.valueLow >> 31 : 0;
        return;
      }
      case Op.LoadStoreImm: {
        const mode = d[at + 6];
        const baseLow = x[rn * 2];
        const baseHigh = x[rn * 2 + 1];
        const sum = (baseLow >>> 0) + (d[at + 2] >>> 0);
        const offsetLow = sum | 0;
        const offsetHigh = (baseHigh + d[at + 3] + (sum > 0xffffffff ? 1 : 0)) | 0;
        const addressLow = mode === 1 ? baseLow : offsetLow;
        const addressHigh = mode === 1 ? baseHigh : offsetHigh;
        const unprivileged = d[at + 7] === 1 && this.el === 1;
        this.transfer(d[at + 5], d[at + 4], rd, addressLow, addressHigh, unprivileged);
        if (mode !== 0) {
          x[rn * 2] = offsetLow;
          x[rn * 2 + 1] = offsetHigh;
        }
        return;
      }
      case Op.LoadStoreReg: {
        this.extendRegister(x[rm * 2], x[rm * 2 + 1], d[at + 2], d[at + 3]);
        const sum = (x[rn * 2] >>> 0) + (this.valueLow >>> 0);
        const addressHigh = (x[rn * 2 + 1] + this.valueHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
        this.transfer(d[at + 5], d[at + 4], rd, sum | 0, addressHigh, false);
        return;
      }
      case Op.LoadStorePair:
        this.pair(d, at, rd, rn, (registers >>> 18) & 63);
        return;
      case Op.Exclusive:
        this.exclusive(d, at, rd, rn, rm);
        return;
      case Op.ExclusivePair:
        this.exclusivePair(d[at + 4], d[at + 5] === 1, rd, rn, rm, (registers >>> 18) & 63);
        return;
      case Op.LogicReg: {
        this.shift(x[rm * 2], x[rm * 2 + 1], d[at + 4], d[at + 5], sf);
        let low = this.valueLow;
        let high = this.valueHigh;
        if (d[at + 3] === 1) {
          low = ~low;
          high = ~high;
        }
        this.logic(d[at + 2], x[rn * 2], x[rn * 2 + 1], low, high, sf, rd);
        return;
      }
      case Op.AddSubShift:
        this.shift(x[rm * 2], x[rm * 2 + 1], d[at + 4], d[at + 5], sf);
        this.addSub(d[at + 3], x[rn * 2], x[rn * 2 + 1], sf, setFlags, rd);
        return;
      case Op.AddSubExt:
        this.extendRegister(x[rm * 2], x[rm * 2 + 1], d[at + 4], d[at + 5]);
        this.addSub(d[at + 3], x[rn * 2], x[rn * 2 + 1], sf, setFlags, rd);
        return;
      case Op.AdcSbc: {
        let bLow = x[rm * 2];
        let bHigh = x[rm * 2 + 1];
        if (d[at + 3] === 1) {
          bLow = ~bLow;
          bHigh = ~bHigh;
        }
        this.addWithCarry(x[rn * 2], x[rn * 2 + 1], bLow, bHigh, this.c, sf, setFlags);
        this.setResult(rd, this.resultLow, this.resultHigh, sf);
        return;
      }
      case Op.CondCompare: {
        if (!this.conditionHolds(d[at + 4])) {
          this.nzcv = d[at + 5] << 28;
          return;
        }
        let bLow = d[at + 6] === 1 ? d[at + 7] : x[rm * 2];
        let bHigh = d[at + 6] === 1 ? 0 : x[rm * 2 + 1];
        if (d[at + 3] === 1) {
          bLow = ~bLow;
          bHigh = ~bHigh;
          this.addWithCarry(x[rn * 2], x[rn * 2 + 1], bLow, bHigh, 1, sf, 1);
        } else {
          this.addWithCarry(x[rn * 2], x[rn * 2 + 1], bLow, bHigh, 0, sf, 1);
        }
        return;
      }
      case Op.CondSelect: {
        if (this.conditionHolds(d[at + 4])) {
          this.setResult(rd, x[rn * 2], x[rn * 2 + 1], sf);
          return;
        }
        const variant = d[at + 2];
        let low = x[rm * 2];
        let high = x[rm * 2 + 1];
        if (variant === 1) {
          this.addWithCarry(low, high, 1, 0, 0, sf, 0);
          low = this.resultLow;
          high = this.resultHigh;
        } else if (variant === 2) {
          low = ~low;
          high = ~high;
        } else if (variant === 3) {
          this.addWithCarry(~low, ~high, 1, 0, 0, sf, 0);
          low = this.resultLow;
          high = this.resultHigh;
        }
        this.setResult(rd, low, high, sf);
        return;
      }
      case Op.DataProc1:
        this.dataProcessing1(d[at + 2], x[rn * 2], x[rn * 2 + 1], sf, rd);
        return;
      case Op.DataProc2:
        this.dataProcessing2(d[at + 2], rn, rm, sf, rd);
        return;
      case Op.DataProc3:
        this.dataProcessing3(d[at + 2], rn, rm, (registers >>> 18) & 63, sf, rd);
        return;
      case Op.Simd:
        if (!executeSimd(this, d[at + 2])) this.undefinedInstruction();
        return;
      case Op.SimdMemory:
        if (!executeSimdMemory(this, d[at + 2])) this.undefinedInstruction();
        return;
      default:
        this.undefinedInstruction();
    }
  }

  private logic(
    opc: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
    sf: number,
    rd: number,
  ): void {
    let low: number;
    let high: number;
    if (opc === 1) {
      low = aLow | bLow;
      high = aHigh | bHigh;
    } else if (opc === 2) {
      low = aLow ^ bLow;
      high = aHigh ^ bHigh;
    } else {
      low = aLow & bLow;
      high = aHigh & bHigh;
    }
    if (sf === 0) high = 0;
    if (opc === 3) {
      this.n = sf === 0 ? low >>> 31 : high >>> 31;
      this.z = (low | high) === 0 ? 1 : 0;
      this.c = 0;
      this.v = 0;
    }
    this.setResult(rd, low, high, sf);
  }

  /** Add or subtract the shifted/extended operand in valueLow/valueHigh. */
  private addSub(
    subtract: number,
    aLow: number,
    aHigh: number,
    sf: number,
    setFlags: number,
    rd: number,
  ): void {
    if (subtract === 0)
      this.addWithCarry(aLow, aHigh, this.valueLow, this.valueHigh, 0, sf, setFlags);
    else this.addWithCarry(aLow, aHigh, ~this.valueLow, ~this.valueHigh, 1, sf, setFlags);
    this.setResult(rd, this.resultLow, this.resultHigh, sf);
  }

  /** SBFM/BFM/UBFM (Arm ARM C6.2, shared decode with DecodeBitMasks done by the decoder). */
  private bitfield(d: Int32Array, at: number, rd: number, rn: number, sf: number): void {
    const x = this.x;
    const opc = (d[at + 1] >>> 26) & 3;
    const immr = d[at + 3];
    const imms = d[at + 4];
    const wmaskLow = d[at + 5];
    const wmaskHigh = d[at + 6];
    const tmaskLow = d[at + 7];
    const tmaskHigh = d[at + 2];
    this.shift(x[rn * 2], x[rn * 2 + 1], 3, immr, sf);
    const dstLow = opc === 1 ? x[rd * 2] : 0;
    const dstHigh = opc === 1 ? x[rd * 2 + 1] : 0;
    const botLow = (dstLow & ~wmaskLow) | (this.valueLow & wmaskLow);
    const botHigh = (dstHigh & ~wmaskHigh) | (this.valueHigh & wmaskHigh);
    let topLow = dstLow;
    let topHigh = dstHigh;
    if (opc === 0) {
      const bit = imms < 32 ? (x[rn * 2] >>> imms) & 1 : (x[rn * 2 + 1] >>> (imms - 32)) & 1;
      topLow = -bit;
      topHigh = -bit;
    }
    this.setResult(
      rd,
      (topLow & ~tmaskLow) | (botLow & tmaskLow),
      (topHigh & ~tmaskHigh) | (botHigh & tmaskHigh),
      sf,
    );
  }

  /** One load or store of a register (LoadKind) at a computed address. */
  private transfer(
    kind: number,
    sizeLog: number,
    rt: number,
    addressLow: number,
    addressHigh: number,
    unprivileged: boolean,
  ): void {
    const x = this.x;
    if (kind === LoadKind.Store) {
      this.store(addressLow, addressHigh, sizeLog, x[rt * 2], x[rt * 2 + 1], unprivileged);
      return;
    }
    if (kind === LoadKind.Prefetch) return;
    this.load(addressLow, addressHigh, sizeLog, unprivileged);
    let low = this.valueLow;
    let high = this.valueHigh;
    if (kind !== LoadKind.Load) {
      if (sizeLog === 0) low = (low << 24) >> 24;
      else if (sizeLog === 1) low = (low << 16) >> 16;
      high = kind === LoadKind.LoadSigned64 ? low >> 31 : 0;
    }
    x[rt * 2] = low;
    x[rt * 2 + 1] = high;
  }

  private pair(d: Int32Array, at: number, rt: number, rn: number, rt2: number): void {
    const x = this.x;
    const mode = d[at + 6];
    const sizeLog = d[at + 4];
    const kind = d[at + 5];
    const baseLow = x[rn * 2];
    const baseHigh = x[rn * 2 + 1];
    const sum = (baseLow >>> 0) + (d[at + 2] >>> 0);
    const offsetLow = sum | 0;
    const offsetHigh = (baseHigh + d[at + 3] + (sum > 0xffffffff ? 1 : 0)) | 0;
    const addressLow = mode === 1 ? baseLow : offsetLow;
    const addressHigh = mode === 1 ? baseHigh : offsetHigh;
    const size = 1 << sizeLog;
    const secondLow = (addressLow + size) | 0;
    const secondHigh = (addressLow >>> 0) + size > 0xffffffff ? (addressHigh + 1) | 0 : addressHigh;
    if (kind === LoadKind.Store) {
      // Both registers are read before any write-back (STP with writeback to a transferred register is CONSTRAINED UNPREDICTABLE).
      this.store(addressLow, addressHigh, sizeLog, x[rt * 2], x[rt * 2 + 1], false);
      this.store(secondLow, secondHigh, sizeLog, x[rt2 * 2], x[rt2 * 2 + 1], false);
    } else {
      // Load both before writing either, so that a fault on the second leaves registers unchanged.
      this.load(addressLow, addressHigh, sizeLog, false);
      const firstLow = this.valueLow;
      const firstHigh = this.valueHigh;
      this.load(secondLow, secondHigh, sizeLog, false);
      const signed = kind === LoadKind.LoadSigned64;
      x[rt * 2] = firstLow;
      x[rt * 2 + 1] = signed ? firstLow >> 31 : firstHigh;
      x[rt2 * 2] = this.valueLow;
      x[rt2 * 2 + 1] = signed ? this.valueLow >> 31 : this.valueHigh;
    }
    if (mode !== 0) {
      x[rn * 2] = offsetLow;
      x[rn * 2 + 1] = offsetHigh;
    }
  }

  /** LDXR/STXR/LDAXR/STLXR/LDAR/STLR with a single-core local monitor (Arm ARM B2.9). */
  private exclusive(d: Int32Array, at: number, rt: number, rn: number, rs: number): void {
    const x = this.x;
    const sizeLog = d[at + 4];
    const load = d[at + 5] === 1;
    const isExclusive = d[at + 6] === 1;
    const addressLow = x[rn * 2];
    const addressHigh = x[rn * 2 + 1];
    // Exclusives and acquire/release accesses must be aligned whatever SCTLR_EL1.A says (Arm ARM B2.5.2).
    if ((addressLow & ((1 << sizeLog) - 1)) !== 0)
      this.dataAbort(addressLow, addressHigh, !load, 0x21);
    const key = (addressHigh >>> 0) * TWO_POW_32 + (addressLow >>> 0);
    if (load) {
      this.transfer(LoadKind.Load, sizeLog, rt, addressLow, addressHigh, false);
      if (isExclusive) {
        this.exclusiveValid = true;
        this.exclusiveAddress = key;
      }
      return;
    }
    if (!isExclusive) {
      this.transfer(LoadKind.Store, sizeLog, rt, addressLow, addressHigh, false);
      return;
    }
    if (this.exclusiveValid && this.exclusiveAddress === key) {
      this.transfer(LoadKind.Store, sizeLog, rt, addressLow, addressHigh, false);
      x[rs * 2] = 0;
    } else {
      // Still translate for a write so that a faulting STXR faults (Arm ARM B2.9.4 allows either; real cores check).
      this.dataAddress(addressLow, addressHigh, true, false);
      x[rs * 2] = 1;
    }
    x[rs * 2 + 1] = 0;
    this.exclusiveValid = false;
  }

  /**
   * LDXP/STXP/LDAXP/STLXP (Arm ARM C6.2): two registers as one
   * single-copy-atomic access of twice their size, which must be aligned to
   * that size; the local monitor covers it as for LDXR/STXR. Linux's
   * cmpxchg_double (SLUB's freelist) uses these when LSE is not advertised.
   */
  private exclusivePair(
    sizeLog: number,
    load: boolean,
    rt: number,
    rn: number,
    rs: number,
    rt2: number,
  ): void {
    const x = this.x;
    const addressLow = x[rn * 2];
    const addressHigh = x[rn * 2 + 1];
    const bytes = 2 << sizeLog;
    if ((addressLow & (bytes - 1)) !== 0) this.dataAbort(addressLow, addressHigh, !load, 0x21);
    const secondLow = (addressLow + (bytes >>> 1)) | 0;
    const key = (addressHigh >>> 0) * TWO_POW_32 + (addressLow >>> 0);
    if (load) {
      // Both halves are read before either register is written (a fault leaves both unchanged).
      this.load(addressLow, addressHigh, sizeLog, false);
      const firstLow = this.valueLow;
      const firstHigh = this.valueHigh;
      this.load(secondLow, addressHigh, sizeLog, false);
      x[rt * 2] = firstLow;
      x[rt * 2 + 1] = sizeLog === 3 ? firstHigh : 0;
      x[rt2 * 2] = this.valueLow;
      x[rt2 * 2 + 1] = sizeLog === 3 ? this.valueHigh : 0;
      this.exclusiveValid = true;
      this.exclusiveAddress = key;
      return;
    }
    if (this.exclusiveValid && this.exclusiveAddress === key) {
      // The aligned pair never crosses a page: check the write once, then store both.
      this.dataAddress(addressLow, addressHigh, true, false);
      this.store(addressLow, addressHigh, sizeLog, x[rt * 2], x[rt * 2 + 1], false);
      this.store(secondLow, addressHigh, sizeLog, x[rt2 * 2], x[rt2 * 2 + 1], false);
      x[rs * 2] = 0;
    } else {
      this.dataAddress(addressLow, addressHigh, true, false);
      x[rs * 2] = 1;
    }
    x[rs * 2 + 1] = 0;
    this.exclusiveValid = false;
  }

  private dataProcessing1(code: number, low: number, high: number, sf: number, rd: number): void {
    switch (code) {
      case 0: {
        const reversedLow = reverseBits(low);
        if (sf === 0) this.setResult(rd, reversedLow, 0, 0);
        else this.setResult(rd, reverseBits(high), reversedLow, 1);
        return;
      }
      case 1: {
        // REV16: bytes swapped within each halfword.
        const swap = (v: number) => ((v & 0x00ff00ff) << 8) | ((v >>> 8) & 0x00ff00ff);
        this.setResult(rd, swap(low), swap(high), sf);
        return;
      }
      case 2:
        // REV32 (64-bit only): bytes swapped within each word.
        this.setResult(rd, byteSwap(low), byteSwap(high), 1);
        return;
      case 3:
        if (sf === 0) this.setResult(rd, byteSwap(low), 0, 0);
        else this.setResult(rd, byteSwap(high), byteSwap(low), 1);
        return;
      case 4:
        if (sf === 0) this.setResult(rd, Math.clz32(low), 0, 0);
        else this.setResult(rd, high !== 0 ? Math.clz32(high) : 32 + Math.clz32(low), 0, 1);
        return;
      default: {
        // CLS: leading bits equal to the sign bit, excluding it = CLZ(x XOR (x >> 1)) - 1 over the width.
        if (sf === 0) {
          this.setResult(rd, Math.clz32(low ^ (low >> 1)) - 1, 0, 0);
          return;
        }
        const tHigh = high ^ (high >> 1);
        const tLow = low ^ ((low >>> 1) | (high << 31));
        this.setResult(rd, (tHigh !== 0 ? Math.clz32(tHigh) : 32 + Math.clz32(tLow)) - 1, 0, 1);
      }
    }
  }

  private dataProcessing2(code: number, rn: number, rm: number, sf: number, rd: number): void {
    const x = this.x;
    const aLow = x[rn * 2];
    const aHigh = sf === 0 ? 0 : x[rn * 2 + 1];
    const bLow = x[rm * 2];
    const bHigh = sf === 0 ? 0 : x[rm * 2 + 1];
    if (code >= 8) {
      // Shift amount is Rm modulo the data size (Arm ARM C6.2 LSLV).
      const amount = sf === 0 ? bLow & 31 : bLow & 63;
      this.shift(aLow, aHigh, code - 8, amount, sf);
      this.setResult(rd, this.valueLow, this.valueHigh, sf);
      return;
    }
    if (code === 2) {
      this.divideUnsigned(aLow, aHigh, bLow, bHigh);
      this.setResult(rd, this.resultLow, this.resultHigh, sf);
      return;
    }
    // SDIV: divide magnitudes, then fix the sign; INT_MIN / -1 wraps to INT_MIN.
    let signA: number;
    let signB: number;
    let magALow = aLow;
    let magAHigh = aHigh;
    let magBLow = bLow;
    let magBHigh = bHigh;
    if (sf === 0) {
      signA = aLow >>> 31;
      signB = bLow >>> 31;
      if (signA) magALow = -aLow | 0;
      if (signB) magBLow = -bLow | 0;
    } else {
      signA = aHigh >>> 31;
      signB = bHigh >>> 31;
      if (signA) {
        magALow = -aLow | 0;
        magAHigh = (~aHigh + (aLow === 0 ? 1 : 0)) | 0;
      }
      if (signB) {
        magBLow = -bLow | 0;
        magBHigh = (~bHigh + (bLow === 0 ? 1 : 0)) | 0;
      }
    }
    this.divideUnsigned(magALow, magAHigh, magBLow, magBHigh);
    let qLow = this.resultLow;
    let qHigh = this.resultHigh;
    if (signA !== signB) {
      const negLow = -qLow | 0;
      qHigh = (~qHigh + (qLow === 0 ? 1 : 0)) | 0;
      qLow = negLow;
    }
    this.setResult(rd, qLow, qHigh, sf);
  }

  private dataProcessing3(
    variant: number,
    rn: number,
    rm: number,
    ra: number,
    sf: number,
    rd: number,
  ): void {
    const x = this.x;
    let aLow = x[rn * 2];
    let aHigh = x[rn * 2 + 1];
    const bLow = x[rm * 2];
    let bHigh = x[rm * 2 + 1];
    const p = this.product;
    if (sf === 0) {
      const productLow = Math.imul(aLow, bLow);
      if (variant === 0) this.setResult(rd, (x[ra * 2] + productLow) | 0, 0, 0);
      else this.setResult(rd, (x[ra * 2] - productLow) | 0, 0, 0);
      return;
    }
    if (variant === 2 || variant === 3) {
      aHigh = aLow >> 31;
      bHigh = bLow >> 31;
    } else if (variant === 5 || variant === 6) {
      aHigh = 0;
      bHigh = 0;
    }
    this.multiply64(aLow, aHigh, bLow, bHigh);
    if (variant === 4 || variant === 7) {
      let highLow = (p[4] + p[5] * 65536) | 0;
      let highHigh = (p[6] + p[7] * 65536) | 0;
      if (variant === 4) {
        // Signed high half: subtract the other operand for each negative one (two's complement correction).
        if (aHigh < 0) {
          this.addWithCarry(highLow, highHigh, ~bLow, ~bHigh, 1, 1, 0);
          highLow = this.resultLow;
          highHigh = this.resultHigh;
        }
        if (bHigh < 0) {
          this.addWithCarry(highLow, highHigh, ~aLow, ~aHigh, 1, 1, 0);
          highLow = this.resultLow;
          highHigh = this.resultHigh;
        }
      }
      this.setResult(rd, highLow, highHigh, 1);
      return;
    }
    aLow = (p[0] + p[1] * 65536) | 0;
    aHigh = (p[2] + p[3] * 65536) | 0;
    const subtract = variant === 1 || variant === 3 || variant === 6;
    if (subtract) this.addWithCarry(x[ra * 2], x[ra * 2 + 1], ~aLow, ~aHigh, 1, 1, 0);
    else this.addWithCarry(x[ra * 2], x[ra * 2 + 1], aLow, aHigh, 0, 1, 0);
    this.setResult(rd, this.resultLow, this.resultHigh, 1);
  }

  // ---- system ----

  private hypervisorCall(immediate: number): void {
    // HVC is UNDEFINED at EL0 (Arm ARM C6.2 HVC).
    if (this.el === 0) this.undefinedInstruction();
    const exit = this.exit;
    const x = this.x;
    if (immediate !== XEN_HYPERCALL_TAG && immediate !== 0) {
      // Xen injects an undefined instruction for other HVC immediates (Xen arch/arm/traps.c, do_trap_hypercall).
      this.undefinedInstruction();
    }
    for (let i = 0; i < 12; i++) exit.args[i] = x[i];
    exit.hypercall = immediate === 0 ? x[0] >>> 0 : x[32] >>> 0;
    exit.longMode = true;
    exit.privilege = this.el;
    exit.code = 0;
    this.retiredPending(immediate === 0 ? VcpuExitReason.PlatformCall : VcpuExitReason.Hypercall);
  }

  /** Ends the slice after the current instruction retires. */
  private retiredPending(reason: VcpuExitReason): void {
    this.exitWith(reason);
  }

  private hint(number: number): void {
    switch (number) {
      case 2:
        this.exitWith(VcpuExitReason.Yield);
        return;
      case 3: {
        // WFI completes at once when an interrupt is pending, masked or not (Arm ARM D1.16.2).
        // The timers are brought up to date first: an expired timer raises its PPI at the GIC.
        this.updateTimers();
        if (this.interrupts?.hasPending() || this.fiq?.hasPending()) return;
        this.exitWith(VcpuExitReason.Halt);
        return;
      }
      default:
        // NOP, YIELD, SEV, SEVL and the rest of the hint space execute as NOP (Arm ARM C6.2 HINT).
        return;
    }
  }

  private msrImmediate(op1: number, op2: number, crm: number): void {
    if (op1 === 3 && (op2 === 6 || op2 === 7)) {
      if (this.el === 0 && (this.sysRegs[SCTLR * 2] & (1 << 9)) === 0)
        this.trapSysReg(0, 3, 4, crm, op2, 31, false);
      if (op2 === 6) this.daif |= crm;
      else this.daif &= ~crm;
      this.eventCheck = true;
      return;
    }
    if (op1 === 0 && op2 === 5 && this.el === 1) {
      this.bankSp();
      this.spSel = crm & 1;
      this.loadSp();
      return;
    }
    this.undefinedInstruction();
  }

  private trapSysReg(
    op0: number,
    op1: number,
    crn: number,
    crm: number,
    op2: number,
    rt: number,
    read: boolean,
  ): never {
    const iss =
      (op0 << 20) |
      (op2 << 17) |
      (op1 << 14) |
      (crn << 10) |
      ((rt >= 31 ? 31 : rt) << 5) | // the zero register is slot 33 here, 31 in the ISS
      (crm << 1) |
      (read ? 1 : 0);
    this.takeSync(ExceptionClass.SysRegTrap, iss, this.pcLow, this.pcHigh);
  }

  /** EL0 access check; traps or raises UNDEFINED when not allowed. */
  private checkEl0(key: number, el0: number, rt: number, read: boolean): void {
    if (this.el !== 0) return;
    const sctlr = this.sysRegs[SCTLR * 2];
    const cntkctl = this.sysRegs[CNTKCTL * 2];
    let allowed: boolean;
    switch (el0) {
      case El0Access.Always:
        allowed = true;
        break;
      case El0Access.ReadOnly:
      case El0Access.ReadAlways:
        allowed = read;
        break;
      case El0Access.Uct:
        allowed = read && (sctlr & (1 << 15)) !== 0;
        break;
      case El0Access.Uma:
        allowed = (sctlr & (1 << 9)) !== 0;
        break;
      case El0Access.Counter:
        allowed = read && (cntkctl & 3) !== 0;
        break;
      case El0Access.PhysicalCount:
        allowed = read && (cntkctl & 1) !== 0;
        break;
      case El0Access.VirtualCount:
        allowed = read && (cntkctl & 2) !== 0;
        break;
      case El0Access.VirtualTimer:
        allowed = (cntkctl & (1 << 8)) !== 0;
        break;
      case El0Access.PhysicalTimer:
        allowed = (cntkctl & (1 << 9)) !== 0;
        break;
      default:
        this.undefinedInstruction();
    }
    if (!allowed) {
      if (el0 === El0Access.ReadOnly || el0 === El0Access.ReadAlways) this.undefinedInstruction();
      this.trapSysReg(
        key >>> 14,
        (key >>> 11) & 7,
        (key >>> 7) & 15,
        (key >>> 3) & 15,
        key & 7,
        rt,
        read,
      );
    }
  }

  private counter(): number {
    return this.hooks.readCounter();
  }

  private mrs(key: number, rt: number): void {
    const x = this.x;
    const index = SYS_REG_INDEX[key];
    if (index < 0) {
      if (isReservedIdRegister(key) && this.el === 1) {
        x[rt * 2] = 0;
        x[rt * 2 + 1] = 0;
        return;
      }
      this.undefinedInstruction();
    }
    const info = SYSTEM_REGISTERS[index];
    this.checkEl0(key, info.el0, rt, true);
    if ((index === FPCR || index === FPSR) && !this.hostAccess) this.checkFpEnabled();
    if (info.kind === SysRegKind.Special) this.fetchSpecialForSave(index);
    else if (info.kind === SysRegKind.Zero) {
      x[rt * 2] = 0;
      x[rt * 2 + 1] = 0;
      return;
    }
    x[rt * 2] = this.sysRegs[index * 2];
    x[rt * 2 + 1] = this.sysRegs[index * 2 + 1];
  }

  /** Brings the stored value of a Special register up to date (PSTATE fields, SP_EL0, timers). */
  private fetchSpecialForSave(index: number): void {
    const s = this.sysRegs;
    const name = SYSTEM_REGISTERS[index].name;
    let low = s[index * 2];
    let high = s[index * 2 + 1];
    switch (name) {
      case "NZCV":
        low = this.nzcv | 0;
        high = 0;
        break;
      case "FPCR":
        low = this.fpu.fpcr;
        high = 0;
        break;
      case "FPSR":
        low = this.fpu.flags;
        high = 0;
        break;
      case "DAIF":
        low = this.daif << 6;
        high = 0;
        break;
      case "CurrentEL":
        low = this.el << 2;
        high = 0;
        break;
      case "SPSel":
        low = this.spSel;
        high = 0;
        break;
      case "SP_EL0":
        if (this.el === 0 || this.spSel === 0) {
          low = this.x[SP * 2];
          high = this.x[SP * 2 + 1];
        } else {
          low = this.spBank[0];
          high = this.spBank[1];
        }
        break;
      case "MPIDR_EL1":
        // Bit 31 is RES1; Aff0 is the vCPU index (Arm ARM D19.2 MPIDR_EL1).
        low = 0x80000000 | (this.vcpuId & 0xff) | ((this.vcpuId >>> 8) << 8) | 0;
        high = 0;
        break;
      case "CNTFRQ_EL0":
        low = this.counterFrequency | 0;
        high = 0;
        break;
      case "CNTPCT_EL0":
      case "CNTVCT_EL0": {
        const count = this.counter();
        low = (count % TWO_POW_32) | 0;
        high = Math.floor(count / TWO_POW_32) | 0;
        break;
      }
      case "CNTV_TVAL_EL0":
      case "CNTP_TVAL_EL0": {
        // TVAL = CVAL - count, 32 bits signed (Arm ARM D11.2.4).
        const cval = name === "CNTV_TVAL_EL0" ? CNTV_CVAL : CNTP_CVAL;
        low = (s[cval * 2] - (this.counter() % TWO_POW_32)) | 0;
        high = 0;
        break;
      }
      case "CNTV_CTL_EL0":
      case "CNTP_CTL_EL0": {
        // ISTATUS (bit 2) reports CVAL <= count while enabled.
        const cval = name === "CNTV_CTL_EL0" ? CNTV_CVAL : CNTP_CVAL;
        const compare = (s[cval * 2 + 1] >>> 0) * TWO_POW_32 + (s[cval * 2] >>> 0);
        low &= 3;
        if ((low & 1) !== 0 && this.counter() >= compare) low |= 4;
        high = 0;
        break;
      }
      default:
        break;
    }
    s[index * 2] = low;
    s[index * 2 + 1] = high;
  }

  private msr(key: number, rt: number): void {
    const x = this.x;
    const index = SYS_REG_INDEX[key];
    if (index < 0) this.undefinedInstruction();
    const info = SYSTEM_REGISTERS[index];
    this.checkEl0(key, info.el0, rt, false);
    if ((index === FPCR || index === FPSR) && !this.hostAccess) this.checkFpEnabled();
    if (info.kind === SysRegKind.Constant) this.undefinedInstruction();
    if (info.kind === SysRegKind.Zero) return;
    const low = x[rt * 2];
    const high = x[rt * 2 + 1];
    const s = this.sysRegs;
    if (info.kind === SysRegKind.Plain) {
      if (index === CNTKCTL || index === CPACR) {
        s[index * 2] = low;
        s[index * 2 + 1] = 0;
        return;
      }
      if (index === SPSR || index === ESR) {
        s[index * 2] = low;
        s[index * 2 + 1] = 0;
        return;
      }
      s[index * 2] = low;
      s[index * 2 + 1] = high;
      if (index === CNTP_CVAL || index === CNTV_CVAL) this.updateTimers();
      return;
    }
    switch (info.name) {
      case "NZCV":
        this.nzcv = low;
        return;
      case "FPCR":
        this.fpu.fpcr = low & FPCR_MASK;
        return;
      case "FPSR":
        this.fpu.flags = low & FPSR_MASK;
        return;
      case "DAIF":
        this.daif = (low >>> 6) & 15;
        this.eventCheck = true;
        return;
      case "SPSel":
        this.bankSp();
        this.spSel = low & 1;
        this.loadSp();
        return;
      case "SP_EL0":
        // MSR SP_EL0 while SP_EL0 is the current stack pointer is UNDEFINED (Arm ARM D19.2 SP_EL0).
        if (this.spSel === 0) this.undefinedInstruction();
        this.spBank[0] = low;
        this.spBank[1] = high;
        return;
      case "SCTLR_EL1":
        s[index * 2] = low | 0x30d00800;
        s[index * 2 + 1] = high;
        this.syncWalker();
        this.flushTranslations();
        return;
      case "TCR_EL1":
      case "MAIR_EL1":
        s[index * 2] = low;
        s[index * 2 + 1] = high;
        this.syncWalker();
        this.flushTranslations();
        return;
      case "TTBR0_EL1":
      case "TTBR1_EL1":
        // A TTBR write switches ASID; cached non-global entries stay tagged with their own (Arm ARM D8.13).
        s[index * 2] = low;
        s[index * 2 + 1] = high;
        this.syncWalker();
        return;
      case "CNTV_TVAL_EL0":
      case "CNTP_TVAL_EL0": {
        const cval = info.name === "CNTV_TVAL_EL0" ? CNTV_CVAL : CNTP_CVAL;
        const target = this.counter() + low;
        s[cval * 2] = (target % TWO_POW_32) | 0;
        s[cval * 2 + 1] = Math.floor(target / TWO_POW_32) | 0;
        this.updateTimers();
        return;
      }
      case "CNTV_CTL_EL0":
      case "CNTP_CTL_EL0":
        s[(info.name === "CNTV_CTL_EL0" ? CNTV_CTL : CNTP_CTL) * 2] = low & 3;
        this.updateTimers();
        return;
      default:
        // CurrentEL, MPIDR, CNTFRQ (writable only at the highest EL), counters: read-only here.
        this.undefinedInstruction();
    }
  }

  /** SYS: TLBI, DC, IC, AT (Arm ARM C5.3). */
  private systemInstruction(key: number, rt: number): void {
    const op1 = (key >>> 11) & 7;
    const crn = (key >>> 7) & 15;
    const crm = (key >>> 3) & 15;
    const op2 = key & 7;
    const x = this.x;
    if (crn === 8 && op1 === 0) {
      if (this.el === 0) this.undefinedInstruction();
      // TLBI (Arm ARM C5.5): by VA (VAE1, VALE1, VAAE1, VAALE1 and their IS forms), by ASID, or everything.
      if ((crm === 7 || crm === 3) && (op2 === 1 || op2 === 3 || op2 === 5 || op2 === 7)) {
        const low = x[rt * 2];
        const high = x[rt * 2 + 1];
        // Xt[43:0] is VA[55:12]; VA[63:56] follow VA[55] (TBI aside).
        const vaLow = low << 12;
        let vaHigh = (high << 12) | (low >>> 20);
        vaHigh = (vaHigh << 8) >> 8;
        this.tlb.flushPage(vaLow, vaHigh);
        this.tlb.flushPage(vaLow, vaHigh & 0x00ffffff);
      } else if ((crm === 7 || crm === 3) && op2 === 2) {
        this.tlb.flushAsid(x[rt * 2 + 1] >>> 16);
      } else {
        this.tlb.flushAll();
      }
      this.fetchValid = false;
      return;
    }
    if (crn === 7) {
      if (op1 === 3 && crm === 4 && op2 === 1) {
        this.dcZva(rt);
        return;
      }
      if (op1 === 0 && crm === 8 && op2 <= 3) {
        if (this.el === 0) this.undefinedInstruction();
        this.addressTranslate(op2, rt);
        return;
      }
      // IC IALLU(IS), IC IVAU, DC (I)VAC/CVAU/CVAC/CVAP/CIVAC and set/way forms: no-ops, since this
      // interpreter has no caches and drops decoded code on every write (CTR_EL0.IDC/DIC = 1).
      const known =
        (op1 === 0 && crm === 1 && op2 === 0) ||
        (op1 === 0 && crm === 5 && op2 === 0) ||
        (op1 === 3 && crm === 5 && op2 === 1) ||
        (op1 === 0 && crm === 6 && (op2 === 1 || op2 === 2)) ||
        (op1 === 0 && (crm === 10 || crm === 14) && op2 === 2) ||
        (op1 === 3 && (crm === 10 || crm === 11 || crm === 12 || crm === 14) && op2 === 1);
      if (!known) this.undefinedInstruction();
      // Set/way and invalidate-by-VA at EL0 are UNDEFINED; the EL0-capable ones need SCTLR_EL1.UCI.
      if (this.el === 0) {
        if (op1 === 0) this.undefinedInstruction();
        if ((this.sysRegs[SCTLR * 2] & (1 << 26)) === 0)
          this.trapSysReg(1, op1, crn, crm, op2, rt, false);
      }
      if (op1 === 3 && crm !== 5) {
        // Cache maintenance by VA checks the translation like a read (Arm ARM D7.5.9): a fault is reported.
        this.dataAddress(x[rt * 2], x[rt * 2 + 1], false, false);
      }
      return;
    }
    this.undefinedInstruction();
  }

  private dcZva(rt: number): void {
    if (this.el === 0 && (this.sysRegs[SCTLR * 2] & (1 << 14)) === 0)
      this.trapSysReg(1, 3, 7, 4, 1, rt, false);
    const low = this.x[rt * 2] & ~63;
    const high = this.x[rt * 2 + 1];
    for (let i = 0; i < 64; i += 8) this.store((low + i) | 0, high, 3, 0, 0, false);
  }

  /** AT S1E1R/S1E1W/S1E0R/S1E0W: the walk result goes to PAR_EL1 (Arm ARM D19.2 PAR_EL1). */
  private addressTranslate(op2: number, rt: number): void {
    const flags = (op2 & 1) | (op2 >= 2 ? Arm64WalkFlags.Unprivileged : 0);
    const physical = this.walker.walk(this.x[rt * 2], this.x[rt * 2 + 1], flags);
    const s = this.sysRegs;
    if (physical < 0) {
      s[PAR * 2] = 1 | (this.walker.faultStatus << 1);
      s[PAR * 2 + 1] = 0;
      return;
    }
    s[PAR * 2] = ((physical % TWO_POW_32) & ~0xfff) | (this.walker.shareability << 7);
    s[PAR * 2 + 1] = (Math.floor(physical / TWO_POW_32) & 0xffff) | (this.walker.attributes << 24);
  }

  /** ERET (Arm ARM D1.11): PSTATE from SPSR_EL1, PC from ELR_EL1; illegal returns set PSTATE.IL. */
  private exceptionReturn(): void {
    if (this.el === 0) this.undefinedInstruction();
    const s = this.sysRegs;
    const spsr = s[SPSR * 2];
    const mode = spsr & 0x1f;
    this.bankSp();
    this.nzcv = spsr;
    this.daif = (spsr >>> 6) & 15;
    if (mode === 0 || mode === 4 || mode === 5) {
      this.el = mode >>> 2;
      this.spSel = mode & 1;
      this.illegalState = ((spsr >>> 20) & 1) !== 0;
    } else {
      // AArch32, EL2/EL3 or reserved modes: an illegal exception return keeps EL and sets IL.
      this.illegalState = true;
    }
    this.loadSp();
    this.exclusiveValid = false;
    this.nextLow = s[ELR * 2];
    this.nextHigh = s[ELR * 2 + 1];
    this.modeChanged();
  }
}

function reverseBits(value: number): number {
  value = ((value >>> 1) & 0x55555555) | ((value & 0x55555555) << 1);
  value = ((value >>> 2) & 0x33333333) | ((value & 0x33333333) << 2);
  value = ((value >>> 4) & 0x0f0f0f0f) | ((value & 0x0f0f0f0f) << 4);
  return byteSwap(value);
}

function byteSwap(value: number): number {
  return (value >>> 24) | ((value >>> 8) & 0xff00) | ((value & 0xff00) << 8) | (value << 24) | 0;
}
