/**
 * The first scheduler (docs/architecture.md "Execution model"):
 * deterministic round-robin over every runnable vCPU of every running
 * domain, one thread, slices counted in retired instructions. Blocked vCPUs
 * cost nothing. When nothing can run, virtual-clock domains jump to their
 * next timer and the host otherwise sleeps on a real timer until the next
 * wall-clock deadline or until host I/O wakes it: no busy polling.
 */
import { RunstateState, VcpuExitReason, VcpuShutdownKind } from "@kumo/abi";
import type { Domain } from "./domain";
import { dispatchHypercall, fireTimers, resumeHypercall } from "./hypercalls";
import type { Hypervisor } from "./hypervisor";
import { handlePsci } from "./psci";
import { BlockReason, type VcpuContext } from "./vcpu-context";

export interface SchedulerOptions {
  /** Instructions per slice; default 100 000. */
  sliceInstructions?: number;
  /** Host milliseconds of guest work between yields to the event loop; default 10. */
  yieldEveryMs?: number;
  /** Virtual-clock idle skips in a row that wake nothing before the machine counts as waiting; default 1000. */
  maxIdleSkips?: number;
  /**
   * An idle sleep of the host longer than this (ms) is logged with every
   * vCPU's block reason, timers and event state, to diagnose a guest that
   * waits for a wakeup that never comes; default 5000, Infinity turns it off.
   * At most one report per 12 `stallLogMs` (a minute by default).
   */
  stallLogMs?: number;
}

/** What one scheduling step did. */
export type StepResult = "ran" | "idle" | "waiting" | "stopped";

const hostNow: () => number =
  typeof performance !== "undefined" && typeof performance.now === "function"
    ? () => performance.now()
    : () => Date.now();

/** Yields to the host event loop: setImmediate in Node, a MessageChannel in browsers. */
function yieldToEventLoop(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown })
    .setImmediate;
  if (typeof immediate === "function") return new Promise((resolve) => immediate(resolve));
  if (typeof MessageChannel === "function") {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export class Scheduler {
  readonly sliceInstructions: number;
  readonly yieldEveryMs: number;
  readonly maxIdleSkips: number;
  readonly stallLogMs: number;
  /** Round-robin cursor over the flattened vCPU list. */
  private cursor = 0;
  private running = false;
  private stopRequested = false;
  private wakeup: (() => void) | null = null;
  private yieldRequested = false;
  /** Slices run since creation (for tests and info). */
  slices = 0;
  /** Exits dispatched since creation, indexed by `VcpuExitReason` (for profiling). */
  readonly exits = new Float64Array(8);
  /** Virtual-clock jumps to the next timer while nothing could run, since creation. */
  idleSkips = 0;
  /** Host time of the last stall report (see stallLogMs). */
  private lastStallReport = Number.NEGATIVE_INFINITY;
  /** Consecutive idle skips without a slice run (see step). */
  private idleStreak = 0;

  constructor(
    private readonly hypervisor: Hypervisor,
    options: SchedulerOptions = {},
  ) {
    this.sliceInstructions = options.sliceInstructions ?? 100_000;
    this.yieldEveryMs = options.yieldEveryMs ?? 10;
    this.maxIdleSkips = options.maxIdleSkips ?? 1000;
    this.stallLogMs = options.stallLogMs ?? 5000;
    if (!Number.isInteger(this.sliceInstructions) || this.sliceInstructions < 1) {
      throw new RangeError(
        `sliceInstructions must be a positive integer, got ${options.sliceInstructions}`,
      );
    }
  }

  /** Something became runnable or a deadline moved: end an idle sleep. */
  wake(): void {
    this.idleStreak = 0;
    const wakeup = this.wakeup;
    if (wakeup !== null) {
      this.wakeup = null;
      wakeup();
    }
  }

  /** SCHEDOP_yield: end the current slice. */
  yieldCurrent(): void {
    this.yieldRequested = true;
  }

  /** Stops `run` at the next slice boundary. */
  stop(): void {
    this.stopRequested = true;
    this.wake();
  }

  /**
   * One scheduling decision, synchronous: fires due timers, then runs one
   * slice of the next runnable vCPU. "idle" means nothing could run but a
   * virtual clock was advanced to its next timer; "waiting" means only a
   * wall-clock deadline or host I/O can make progress.
   */
  step(): StepResult {
    const domains = this.hypervisor.guestDomains();
    for (const domain of domains) if (domain.state === "running") fireTimers(domain);
    const context = this.pickNext(domains);
    if (context !== null) {
      this.idleStreak = 0;
      this.runSlice(context);
      return "ran";
    }
    // Timers that fire without waking anything (a periodic timer with no VIRQ bound, a blocked
    // vCPU whose port is masked) would let a virtual clock skip forever at full host speed;
    // after a bounded number of such skips the machine counts as waiting for host I/O.
    if (this.idleStreak >= this.maxIdleSkips) return "waiting";
    // Nothing runnable: virtual clocks jump to their next deadline.
    let advanced = false;
    for (const domain of domains) {
      if (domain.state !== "running" || domain.clock.mode !== "virtual") continue;
      const deadline = nextDeadline(domain);
      if (deadline !== Number.POSITIVE_INFINITY) {
        domain.clock.skipTo(deadline);
        advanced = true;
      }
    }
    if (!advanced) return "waiting";
    this.idleStreak++;
    this.idleSkips++;
    return "idle";
  }

  /**
   * Runs until `stop()` or until no guest domain is alive. Yields to the
   * event loop every `yieldEveryMs` so backends run; sleeps when idle.
   */
  async run(): Promise<void> {
    if (this.running) throw new Error("Scheduler.run is already running");
    this.running = true;
    this.stopRequested = false;
    try {
      let sliceStart = hostNow();
      while (!this.stopRequested) {
        const result = this.step();
        if (result === "ran" || result === "idle") {
          if (hostNow() - sliceStart >= this.yieldEveryMs) {
            await yieldToEventLoop();
            sliceStart = hostNow();
          }
          continue;
        }
        if (!this.hypervisor.guestDomains().some((domain) => domain.state !== "destroyed")) break;
        await this.sleep(this.hostDelay());
        sliceStart = hostNow();
      }
    } finally {
      this.running = false;
      this.wakeup = null;
    }
  }

  /** Runs synchronously until nothing is runnable, `maxSlices` were run, or a predicate holds. For tests. */
  runUntil(done: () => boolean, maxSlices = 1_000_000): boolean {
    for (let i = 0; i < maxSlices; i++) {
      if (done()) return true;
      const result = this.step();
      if (result === "waiting") return done();
    }
    return done();
  }

  private hostDelay(): number {
    let delay = Number.POSITIVE_INFINITY;
    for (const domain of this.hypervisor.guestDomains()) {
      if (domain.state !== "running" || domain.clock.mode !== "wall") continue;
      const deadline = nextDeadline(domain);
      if (deadline !== Number.POSITIVE_INFINITY)
        delay = Math.min(delay, domain.clock.hostDelayUntil(deadline));
    }
    return delay;
  }

  /**
   * Sleeps until `ms` passes or `wake()` is called; Infinity waits for a wake
   * only. A sleep that outlasts `stallLogMs` is logged with the machine's
   * state when it crosses that mark and again when it ends.
   */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const started = hostNow();
      let timer: ReturnType<typeof setTimeout> | undefined;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      let reported = false;
      const finish = (how: string) => {
        if (timer !== undefined) clearTimeout(timer);
        if (watchdog !== undefined) clearTimeout(watchdog);
        if (reported) {
          this.hypervisor.log(
            `scheduler: idle sleep ended after ${Math.round(hostNow() - started)} ms (${how})`,
          );
        }
        resolve();
      };
      this.wakeup = () => finish("woken");
      if (ms !== Number.POSITIVE_INFINITY) {
        timer = setTimeout(
          () => {
            this.wakeup = null;
            finish("deadline");
          },
          Math.max(0, Math.ceil(ms)),
        );
      }
      // At most one report per 12 stallLogMs (a minute by default), so that a long-idle
      // daemon's log does not fill up.
      if (
        ms > this.stallLogMs &&
        this.stallLogMs !== Number.POSITIVE_INFINITY &&
        started - this.lastStallReport >= 12 * this.stallLogMs
      ) {
        watchdog = setTimeout(() => {
          watchdog = undefined;
          reported = true;
          this.lastStallReport = hostNow();
          this.logStall(ms);
        }, this.stallLogMs);
        // The diagnosis must not keep an otherwise finished host process alive.
        (watchdog as { unref?: () => void }).unref?.();
      }
    });
  }

  /** One line per vCPU of every running guest: why it sleeps and what could wake it. */
  private logStall(plannedMs: number): void {
    const planned =
      plannedMs === Number.POSITIVE_INFINITY
        ? "until host I/O wakes it"
        : `for ${Math.round(plannedMs)} ms`;
    this.hypervisor.log(
      `scheduler: host idle for ${this.stallLogMs} ms, sleeping ${planned}; vCPU state:`,
    );
    for (const domain of this.hypervisor.guestDomains()) {
      const now = domain.clock.now();
      const deadline = nextDeadline(domain);
      this.hypervisor.log(
        `  d${domain.domid} ${domain.state} clock=${domain.clock.mode} now=${now} next-deadline=${deadline === Number.POSITIVE_INFINITY ? "none" : `+${deadline - now} ns`} device-timers=${domain.deviceTimers.length}`,
      );
      for (const context of domain.vcpus) this.hypervisor.log(`    ${context.describe(now)}`);
    }
  }

  private pickNext(domains: readonly Domain[]): VcpuContext | null {
    let total = 0;
    for (const domain of domains) total += domain.vcpus.length;
    if (total === 0) return null;
    for (let tried = 0; tried < total; tried++) {
      const index = (this.cursor + tried) % total;
      const context = contextAt(domains, index);
      if (context !== null && context.domain.state === "running" && context.runnable()) {
        this.cursor = (index + 1) % total;
        return context;
      }
    }
    return null;
  }

  private runSlice(context: VcpuContext): void {
    const vcpu = context.vcpu;
    if (vcpu === null) return;
    const domain = context.domain;
    this.slices++;
    this.yieldRequested = false;
    const budget = this.sliceInstructions;
    const virtual = domain.clock.mode === "virtual";
    const start = vcpu.instructionsRetired;
    // Switched in: the runstate area says "running" (Xen context_switch -> update_runstate_area).
    const runstate = context.runstate;
    runstate.change(RunstateState.running, domain.clock.now());
    context.writeRunstate();
    // arm64: the event PPI is level-like; re-assert it on entry while upcall_pending is set
    // (Xen on arm checks upcall_pending beside the vGIC in local_events_need_delivery_nomask;
    // its gic_inject re-injected evtchn_irq on every entry while it was set).
    if (context.eventLine !== null && context.upcallPending()) context.eventLine(context.id);
    // A preempted hypercall goes on before any guest instruction (Xen re-enters it at once).
    if (context.continuation) resumeHypercall(domain, context);
    // Keep running the same vCPU through cheap exits (hypercalls) until the budget is spent;
    // the exit cap bounds a slice even if a CPU reports exits without retiring instructions.
    for (let exits = 0; exits < 4096; exits++) {
      if (!context.runnable() || domain.state !== "running" || this.yieldRequested) break;
      let left = budget - (vcpu.instructionsRetired - start);
      if (left <= 0) break;
      if (virtual) {
        // End the run at the domain's next deadline so timers fire at the exact instruction.
        // Recomputed at every exit: a hypercall may have armed a nearer timer. A device timer
        // armed by an MMIO write inside `run` is seen at the next exit, so it may fire up to
        // one slice late (Xen's own timers allow 50 us of slop: common/timer.c timer_slop).
        const deadline = nextDeadline(domain);
        if (deadline !== Number.POSITIVE_INFINITY) {
          const until = domain.clock.instructionsUntil(deadline);
          if (until <= 0 && exits > 0) break;
          left = Math.max(1, Math.min(left, until));
        }
      }
      const reason = vcpu.run(left);
      if (!this.handleExit(context, reason)) break;
    }
    // Switched out: runnable, blocked or offline from now on.
    runstate.change(context.offCpuState(), domain.clock.now());
    if (domain.state === "running") context.writeRunstate();
  }

  /** Dispatches one exit; returns true when the vCPU may continue in the same slice. */
  private handleExit(context: VcpuContext, reason: VcpuExitReason): boolean {
    const domain = context.domain;
    const vcpu = context.vcpu;
    if (vcpu === null) return false;
    if (reason >= 0 && reason < 8) this.exits[reason]++;
    switch (reason) {
      case VcpuExitReason.Budget:
        return false;
      case VcpuExitReason.Hypercall:
        dispatchHypercall(domain, context);
        return true;
      case VcpuExitReason.Halt:
        if (domain.architecture === "x86" && !vcpu.interruptsEnabled()) {
          // hlt with interrupts off: the vCPU is gone; all gone = poweroff (Xen hvm_hlt/hvm_vcpu_down).
          context.online = false;
          if (!domain.vcpus.some((other) => other.online)) domain.shutdown(0);
          return false;
        }
        // Xen hvm_hlt -> vcpu_block: do not sleep when local_events_need_delivery, which on x86
        // asks the whole interrupt source (callback vector and LAPIC), not only the upcall: an
        // APIC interrupt that is already pending will not call `kick` again. arm64 wfi wakes for
        // a pending event whatever PSTATE.I says.
        if (!context.eventsNeedDelivery()) {
          context.blocked = BlockReason.Halt;
        }
        return false;
      case VcpuExitReason.Shutdown:
        domain.shutdown(
          vcpu.exit.code === VcpuShutdownKind.PowerOff
            ? 0
            : vcpu.exit.code === VcpuShutdownKind.Reboot
              ? 1
              : 3,
        );
        return false;
      case VcpuExitReason.InterruptWindow:
        return true;
      case VcpuExitReason.Yield:
        return false;
      case VcpuExitReason.PlatformCall: {
        // arm64 hvc #0: PSCI/SMCCC, answered by the hypervisor as Xen's vpsci.c does.
        const result = handlePsci(domain, context, vcpu.exit.args, context.cpuOn);
        if (domain.state === "destroyed") return false;
        vcpu.completeHypercall(result >>> 0, result < 0 ? 0xffffffff : 0);
        return context.runnable();
      }
      case VcpuExitReason.GuestError:
        this.hypervisor.log(
          `(d${domain.domid}) vcpu ${context.id}: ${vcpu.exit.message}; crashing the domain`,
        );
        domain.shutdown(3);
        return false;
      default:
        this.hypervisor.log(
          `(d${domain.domid}) vcpu ${context.id}: unknown exit ${reason}; crashing the domain`,
        );
        domain.shutdown(3);
        return false;
    }
  }
}

function contextAt(domains: readonly Domain[], index: number): VcpuContext | null {
  let rest = index;
  for (const domain of domains) {
    if (rest < domain.vcpus.length) return domain.vcpus[rest];
    rest -= domain.vcpus.length;
  }
  return null;
}

/** The earliest timer of any online vCPU of the domain or of its device models. */
export function nextDeadline(domain: Domain): number {
  let deadline = Number.POSITIVE_INFINITY;
  const timers = domain.deviceTimers;
  for (let i = 0; i < timers.length; i++) {
    if (timers[i].deadline < deadline) deadline = timers[i].deadline;
  }
  for (const context of domain.vcpus) {
    if (!context.online) continue;
    const next = context.nextDeadline();
    if (next < deadline) deadline = next;
  }
  return deadline;
}
