/**
 * The contract between a CPU package (`@kumo/cpu-x86`, `@kumo/cpu-arm`, a
 * future WebAssembly tier) and the hypervisor that drives it.
 *
 * It lives in `@kumo/abi`, the lowest package, because both sides import it
 * and neither may import the other (docs/architecture.md). The shape follows
 * Cloud Hypervisor's `Vcpu::run() -> VmExit`: `run` executes guest code until
 * something needs the hypervisor and reports why in a reused exit record.
 * Port I/O and MMIO do not exit: the CPU calls the synchronous handlers of
 * the `VcpuIo` object (and MMIO regions of the guest memory) so that device
 * accesses cost a call, not a round trip through the scheduler.
 */

/** Why `Vcpu.run` returned. Numbers are stable (saved in traces). */
export const VcpuExitReason = {
  /** The instruction budget of the slice is spent. */
  Budget: 0,
  /** `hlt` (x86) or `wfi` (arm64) with no interrupt pending: block until an event. */
  Halt: 1,
  /**
   * `vmcall`/`vmmcall` (x86) or `hvc #0xEA1` (arm64). The hypervisor reads
   * `exit.hypercall` and arguments from `exit.args`, then calls
   * `completeHypercall`. The guest's instruction pointer is already past the
   * instruction.
   */
  Hypercall: 2,
  /** The guest shut itself down or reset the machine (triple fault, PSCI SYSTEM_OFF/RESET). */
  Shutdown: 3,
  /** An interrupt window opened (the CPU can take an interrupt) after `requestInterruptWindow`. */
  InterruptWindow: 4,
  /** `wfe` (arm64) or `pause`-loop hint: the vCPU may yield. */
  Yield: 5,
  /** A platform call other than a Xen hypercall (arm64 `hvc #0` for PSCI/SMCCC). */
  PlatformCall: 6,
  /**
   * The CPU cannot continue for a reason that is the guest's fault and has
   * no architectural answer (for example an unsupported operating mode). The
   * hypervisor crashes the domain; `exit.message` says why.
   */
  GuestError: 7,
} as const;
export type VcpuExitReason = (typeof VcpuExitReason)[keyof typeof VcpuExitReason];

/** `exit.code` for `VcpuExitReason.Shutdown`. */
export const VcpuShutdownKind = {
  PowerOff: 0,
  Reboot: 1,
  /** x86 triple fault: Xen crashes the domain. */
  TripleFault: 2,
} as const;
export type VcpuShutdownKind = (typeof VcpuShutdownKind)[keyof typeof VcpuShutdownKind];

/**
 * The exit record. One object per vCPU, overwritten by every `run`, so that
 * exits allocate nothing.
 */
export interface VcpuExit {
  reason: VcpuExitReason;
  /** Reason-specific code (`VcpuShutdownKind` for Shutdown). */
  code: number;
  /** Hypercall number (x86 EAX/RAX, arm64 x16) for Hypercall and PlatformCall. */
  hypercall: number;
  /**
   * Hypercall arguments as 32-bit halves: `args[2*i]` is the low and
   * `args[2*i+1]` the high half of argument i (i = 0..5). 32-bit callers
   * have zero high halves. x86-32: EBX ECX EDX ESI EDI EBP; x86-64: RDI RSI
   * RDX R10 R8 R9; arm64: x0..x5.
   */
  readonly args: Uint32Array;
  /** True when the caller ran in a 64-bit mode: selects the x64 or a64 struct layouts. */
  longMode: boolean;
  /** Privilege level of the caller (x86 CPL, arm64 EL). Xen answers -EPERM above 0 (x86). */
  privilege: number;
  /** Human-readable detail for GuestError. */
  message: string;
}

/** Allocates an exit record with the argument array in place. */
export function createVcpuExit(): VcpuExit {
  return {
    reason: VcpuExitReason.Budget,
    code: 0,
    hypercall: 0,
    args: new Uint32Array(12),
    longMode: false,
    privilege: 0,
    message: "",
  };
}

/** Synchronous device access for the CPU. Unclaimed ports read as all-ones. */
export interface VcpuIo {
  /** Reads `size` (1, 2 or 4) bytes from an I/O port; returns the zero-extended value. */
  portRead(port: number, size: 1 | 2 | 4): number;
  portWrite(port: number, size: 1 | 2 | 4, value: number): void;
}

/**
 * Where a vCPU's external interrupts come from (x86: the upcall vector, a
 * PIC or local APIC; arm64: a GIC CPU interface). The CPU polls it at
 * instruction boundaries only when `pending` became true, so it must be cheap.
 */
export interface InterruptSource {
  /** True when an interrupt is waiting for the CPU (whether or not it is masked). */
  hasPending(): boolean;
  /**
   * x86: called when the CPU takes the interrupt; returns the vector and
   * marks it in service, or -1 if it vanished. arm64 CPUs never call it: the
   * guest acknowledges by reading the GIC CPU interface (IAR), so the GIC
   * model marks the INTID in service then (Arm GIC architecture spec 4.1).
   */
  acknowledge(): number;
}

/** Guest access kinds for `Vcpu.translate`. */
export const VcpuAccess = { Read: 0, Write: 1, Execute: 2 } as const;
export type VcpuAccess = (typeof VcpuAccess)[keyof typeof VcpuAccess];

/**
 * What the hypervisor (not a device) answers for the CPU: its own CPUID
 * leaves and MSRs on x86 (Xen's 0x40000000 leaves, the hypercall-page MSR),
 * and the clock behind the TSC or the generic counter.
 */
export interface VcpuHooks {
  /**
   * x86 CPUID: fill `out` with EAX, EBX, ECX, EDX and return true to answer
   * the leaf; return false to let the CPU model answer.
   */
  cpuid?(leaf: number, subleaf: number, out: Uint32Array): boolean;
  /** x86 RDMSR: fill `out[0]` (EAX) and `out[1]` (EDX) and return true if the hypervisor owns the MSR. */
  readMsr?(index: number, out: Uint32Array): boolean;
  /**
   * x86 WRMSR: return true if the hypervisor owns the MSR (and accepted the
   * value), "fault" to make the CPU raise #GP(0), false to let the CPU handle it.
   */
  writeMsr?(index: number, low: number, high: number): boolean | "fault";
  /**
   * The guest's time base in counter ticks (x86 TSC, arm64 CNTVCT) as a
   * double, exact to 2^53. One clock source for the whole domain.
   */
  readCounter(): number;
}

/** A processor the hypervisor can run. Implemented by the CPU packages. */
export interface Vcpu {
  readonly architecture: "x86" | "arm64";
  /** The exit record that `run` fills. */
  readonly exit: VcpuExit;
  /** Guest instructions retired since creation (a double: exact to 2^53). */
  readonly instructionsRetired: number;
  /**
   * Runs at most `budget` instructions (or until an exit) and returns the
   * exit reason, also stored in `exit.reason`. Never throws for anything the
   * guest does.
   */
  run(budget: number): VcpuExitReason;
  /** Writes the result of the hypercall that exited (64-bit as two halves). */
  completeHypercall(resultLow: number, resultHigh: number): void;
  /** Device access used during `run`. */
  io: VcpuIo;
  /** Hypervisor-owned CPUID leaves, MSRs and the clock. */
  hooks: VcpuHooks;
  /**
   * Translates a guest-virtual address in the vCPU's current address space
   * (x86 paging or arm64 stage 1, with the current privilege) for the
   * hypervisor's own accesses to hypercall arguments. Returns the
   * guest-physical address, or -1 when the walk faults (the hypercall then
   * answers -EFAULT; no fault is injected). 64-bit addresses come as halves.
   */
  translate(virtualLow: number, virtualHigh: number, access: VcpuAccess): number;
  /** External interrupt source consulted when the guest can take interrupts. */
  interrupts: InterruptSource | null;
  /** Tells the CPU that `interrupts.hasPending()` may have become true (wakes a halted CPU). */
  notifyInterrupt(): void;
  /** Asks for an InterruptWindow exit as soon as the guest can take an interrupt. */
  requestInterruptWindow(enable: boolean): void;
  /** True when the CPU would take an external interrupt now (x86 IF=1 and no shadow; arm64 PSTATE.I=0). */
  interruptsEnabled(): boolean;
  /** A plain, structured-cloneable copy of the architectural state, versioned. */
  saveState(): VcpuState;
  restoreState(state: VcpuState): void;
}

/** A saved vCPU: a named, versioned plain object (structured-cloneable, JSON-safe). */
export interface VcpuState {
  readonly kind: string;
  readonly version: number;
  readonly [field: string]: unknown;
}
