/**
 * Test helpers for packages that drive `@kumo/hypervisor-core` before a real
 * CPU runs (docs/style.md: ship test doubles as a `./test` subpath).
 *
 * `ScriptedVcpu` implements the `Vcpu` contract of `@kumo/abi` by running a
 * generator "program": each yielded step is what the guest does next
 * (a hypercall, some work, hlt, a shutdown), and the generator receives each
 * hypercall's result, so a test reads like guest code:
 *
 *   const port = yield hypercall(32, 6, argPointer);
 *
 * Guest-virtual addresses translate one-to-one to guest-physical ones (like
 * a guest with paging off), so tests place argument structs in RAM and pass
 * their addresses.
 */
import {
  createVcpuExit,
  type InterruptSource,
  type Vcpu,
  type VcpuAccess,
  VcpuExitReason,
  type VcpuHooks,
  type VcpuIo,
  type VcpuState,
} from "@kumo/abi";

/** One thing the scripted guest does. */
export type ScriptStep =
  | { readonly kind: "hypercall"; readonly nr: number; readonly args: readonly number[] }
  | { readonly kind: "platform"; readonly args: readonly number[] }
  | { readonly kind: "work"; readonly instructions: number }
  | { readonly kind: "halt" }
  | { readonly kind: "shutdown"; readonly code: number }
  | { readonly kind: "yield" };

/** `vmcall` with EAX = nr and up to six arguments (each a non-negative integer below 2^53). */
export function hypercall(nr: number, ...args: number[]): ScriptStep {
  return { kind: "hypercall", nr, args };
}

/** arm64 `hvc #0` (PSCI/SMCCC): function id and arguments in x0..x5. */
export function platformCall(...args: number[]): ScriptStep {
  return { kind: "platform", args };
}

/** Retire `instructions` instructions of ordinary guest work. */
export function work(instructions: number): ScriptStep {
  return { kind: "work", instructions };
}

/** `hlt` (with interrupts enabled unless the CPU's `interruptFlag` is false). */
export function halt(): ScriptStep {
  return { kind: "halt" };
}

/** The program: yields steps, receives hypercall results (signed) after each hypercall. */
export type ScriptProgram = (cpu: ScriptedVcpu) => Generator<ScriptStep, void, number>;

export interface ScriptedVcpuOptions {
  architecture?: "x86" | "arm64";
  /** Caller mode for every hypercall: selects x64/a64 or x32 layouts; default true. */
  longMode?: boolean;
  program: ScriptProgram;
  /** Called when the vCPU takes an external interrupt (like a guest's upcall handler). */
  onInterrupt?: (vector: number, cpu: ScriptedVcpu) => void;
  /** Highest guest-virtual address + 1 that translates (identity); default 2^32. */
  addressLimit?: number;
}

const TWO_POW_32 = 4294967296;

export class ScriptedVcpu implements Vcpu {
  readonly architecture: "x86" | "arm64";
  readonly exit = createVcpuExit();
  instructionsRetired = 0;
  io: VcpuIo = { portRead: () => 0xffffffff, portWrite: () => {} };
  hooks: VcpuHooks = { readCounter: () => this.instructionsRetired };
  interrupts: InterruptSource | null = null;
  /** x86 RFLAGS.IF / arm64 !PSTATE.I. */
  interruptFlag = true;
  privilege = 0;
  longMode: boolean;
  /** Every hypercall result, in order. */
  readonly results: number[] = [];
  /** Vectors of the interrupts taken, in order. */
  readonly interruptsTaken: number[] = [];
  /** True once the program returned (the vCPU then halts forever). */
  finished = false;
  private readonly program: Generator<ScriptStep, void, number>;
  private readonly onInterrupt: ((vector: number, cpu: ScriptedVcpu) => void) | undefined;
  private readonly addressLimit: number;
  private pending: ScriptStep | null = null;
  private workLeft = 0;
  private lastResult = 0;
  private started = false;

  constructor(options: ScriptedVcpuOptions) {
    this.architecture = options.architecture ?? "x86";
    this.longMode = options.longMode ?? true;
    this.onInterrupt = options.onInterrupt;
    this.addressLimit = options.addressLimit ?? TWO_POW_32;
    this.program = options.program(this);
  }

  run(budget: number): VcpuExitReason {
    let left = budget;
    while (left > 0) {
      if (this.interruptFlag && this.interrupts?.hasPending()) {
        const vector = this.interrupts.acknowledge();
        if (vector >= 0) {
          this.interruptsTaken.push(vector);
          this.onInterrupt?.(vector, this);
        }
      }
      if (this.workLeft > 0) {
        const done = Math.min(this.workLeft, left);
        this.workLeft -= done;
        this.instructionsRetired += done;
        left -= done;
        continue;
      }
      const step = this.next();
      if (step === null) {
        this.instructionsRetired++;
        return this.setExit(VcpuExitReason.Halt);
      }
      this.instructionsRetired++;
      left--;
      switch (step.kind) {
        case "work":
          this.workLeft = Math.max(0, step.instructions - 1);
          break;
        case "halt":
          return this.setExit(VcpuExitReason.Halt);
        case "yield":
          return this.setExit(VcpuExitReason.Yield);
        case "shutdown":
          this.exit.code = step.code;
          return this.setExit(VcpuExitReason.Shutdown);
        case "platform":
        case "hypercall": {
          const exit = this.exit;
          exit.hypercall = step.kind === "hypercall" ? step.nr : 0;
          exit.args.fill(0);
          for (let i = 0; i < 6 && i < step.args.length; i++) {
            const value = step.args[i];
            exit.args[2 * i] = value >>> 0;
            exit.args[2 * i + 1] = this.longMode ? Math.floor(value / TWO_POW_32) >>> 0 : 0;
          }
          exit.longMode = this.longMode;
          exit.privilege = this.privilege;
          this.lastResult = Number.NaN;
          return this.setExit(
            step.kind === "hypercall" ? VcpuExitReason.Hypercall : VcpuExitReason.PlatformCall,
          );
        }
      }
    }
    return this.setExit(VcpuExitReason.Budget);
  }

  completeHypercall(resultLow: number, resultHigh: number): void {
    const low = resultLow >>> 0;
    const high = resultHigh >>> 0;
    this.lastResult = high === 0xffffffff && low >= 0x80000000 ? low | 0 : high * TWO_POW_32 + low;
    this.results.push(this.lastResult);
  }

  translate(virtualLow: number, virtualHigh: number, _access: VcpuAccess): number {
    const address = (virtualHigh >>> 0) * TWO_POW_32 + (virtualLow >>> 0);
    return address < this.addressLimit ? address : -1;
  }

  notifyInterrupt(): void {}

  requestInterruptWindow(_enable: boolean): void {}

  interruptsEnabled(): boolean {
    return this.interruptFlag;
  }

  saveState(): VcpuState {
    return { kind: "scripted-vcpu", version: 1, instructionsRetired: this.instructionsRetired };
  }

  restoreState(state: VcpuState): void {
    this.instructionsRetired = Number(state.instructionsRetired ?? 0);
  }

  private next(): ScriptStep | null {
    if (this.finished) return null;
    if (this.pending !== null) {
      const step = this.pending;
      this.pending = null;
      return step;
    }
    const result = this.started ? this.program.next(this.lastResult) : this.program.next(0);
    this.started = true;
    if (result.done) {
      this.finished = true;
      return null;
    }
    return result.value;
  }

  private setExit(reason: VcpuExitReason): VcpuExitReason {
    this.exit.reason = reason;
    return reason;
  }
}
