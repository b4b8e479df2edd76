/**
 * One clock source per domain (docs/architecture.md "Time"): Xen system
 * time (ns), the guest TSC, timers and the wallclock all derive from it.
 *
 * - "virtual": system time advances with the instructions the domain's vCPUs
 *   retire (`nsPerInstruction` each) and jumps to the next timer deadline
 *   when every vCPU is blocked. Runs are then bit-for-bit reproducible.
 * - "wall": system time is the host's monotonic clock.
 *
 * The TSC is exactly `systemTime * tscHz / 1e9`, so a single vcpu_time_info
 * update per registration is enough (xen-abi.md 3.5).
 */

export type ClockMode = "virtual" | "wall";

export interface ClockOptions {
  mode: ClockMode;
  /** Guest TSC frequency in Hz; default 1 GHz (the scale is then exact). */
  tscHz?: number;
  /** Virtual mode: guest nanoseconds per retired instruction; default 1. */
  nsPerInstruction?: number;
  /** UNIX time in ms that system time 0 corresponds to; default the host's time at creation. */
  wallclockEpochMs?: number;
}

const hostNow: () => number =
  typeof performance !== "undefined" && typeof performance.now === "function"
    ? () => performance.now()
    : () => Date.now();

/** tsc_to_system_mul and tsc_shift for a TSC of `hz` (Xen time.c set_time_scale; xen-abi.md 3.5). */
export function timeScale(hz: number): { mul: number; shift: number } {
  let shift = 0;
  let t = hz;
  while (t > 2e9) {
    t = Math.floor(t / 2);
    shift--;
  }
  while (t <= 1e9) {
    t *= 2;
    shift++;
  }
  // floor(10^9 * 2^32 / t) exactly (setup only, so BigInt is fine here).
  const mul = Number((1_000_000_000n << 32n) / BigInt(t));
  return { mul: Math.min(mul, 0xffffffff) >>> 0, shift };
}

export class DomainClock {
  readonly mode: ClockMode;
  readonly tscHz: number;
  readonly nsPerInstruction: number;
  readonly wallclockEpochMs: number;
  readonly scale: { mul: number; shift: number };
  /** Virtual mode: ns added by idle skips. */
  private skippedNs = 0;
  /** Virtual mode: the retired-instruction total seen at creation. */
  private readonly hostOrigin: number;
  /** Returns the domain's total retired instructions (virtual mode). */
  private readonly instructions: () => number;

  constructor(options: ClockOptions, instructions: () => number) {
    this.mode = options.mode;
    this.tscHz = options.tscHz ?? 1e9;
    this.nsPerInstruction = options.nsPerInstruction ?? 1;
    this.wallclockEpochMs = options.wallclockEpochMs ?? Date.now();
    if (!(this.tscHz >= 1e6 && this.tscHz <= 1e11)) {
      throw new RangeError(`tscHz must be between 1 MHz and 100 GHz, got ${options.tscHz}`);
    }
    if (!(this.nsPerInstruction > 0)) {
      throw new RangeError(`nsPerInstruction must be positive, got ${options.nsPerInstruction}`);
    }
    this.scale = timeScale(this.tscHz);
    this.instructions = instructions;
    this.hostOrigin = hostNow();
  }

  /** Xen system time in ns (monotonic, origin at domain creation). */
  now(): number {
    if (this.mode === "virtual")
      return Math.floor(this.instructions() * this.nsPerInstruction) + this.skippedNs;
    return Math.floor((hostNow() - this.hostOrigin) * 1e6);
  }

  /** The guest TSC now (hooks.readCounter). */
  tsc(): number {
    return this.tscAt(this.now());
  }

  /** The TSC value at system time `ns`. */
  tscAt(ns: number): number {
    return this.tscHz === 1e9 ? ns : Math.floor((ns * this.tscHz) / 1e9);
  }

  /** Virtual mode: advances time to `ns` (every vCPU blocked until a timer). No-op for wall clocks or the past. */
  skipTo(ns: number): void {
    if (this.mode !== "virtual") return;
    const now = this.now();
    if (ns > now) this.skippedNs += ns - now;
  }

  /** Instructions that fit before system time `deadline` (virtual mode), for slice budgets. */
  instructionsUntil(deadline: number): number {
    const remaining = deadline - this.now();
    if (remaining <= 0) return 0;
    return Math.ceil(remaining / this.nsPerInstruction);
  }

  /** Milliseconds of host time until system time `deadline` (wall mode). */
  hostDelayUntil(deadline: number): number {
    return Math.max(0, (deadline - this.now()) / 1e6);
  }
}
