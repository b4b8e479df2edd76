/**
 * Timers of device models that a VMM wires into a domain (a local APIC
 * timer, a PIT, an arm generic timer), run by the scheduler on the domain's
 * one clock (docs/architecture.md "Time"), the way Xen's vlapic and vpt
 * timers sit on Xen's own timer heap (xen/arch/x86/hvm/vpt.c, common/timer.c).
 *
 * Why the scheduler must know them: in virtual-clock mode time only moves
 * while a vCPU runs or when the scheduler skips to the next deadline it
 * knows. A guest halted until its LAPIC timer fires, with the deadline held
 * only by a host `setTimeout`, never sees that deadline arrive (or sees it
 * late, after a skip to a farther Xen timer); with the deadline here the
 * scheduler skips to it exactly and ends a running slice at it. In
 * wall-clock mode the scheduler's idle sleep ends at it.
 */
import type { Domain } from "./domain";

export class DeviceTimer {
  /** System time (ns) at which `fire` runs; Infinity when stopped. */
  deadline = Number.POSITIVE_INFINITY;

  constructor(
    private readonly domain: Domain,
    private readonly fire: () => void,
  ) {}

  /**
   * Arms the timer for system time `deadlineNs` (the domain clock's ns),
   * replacing the previous deadline; Infinity or NaN stops it. A deadline in
   * the past fires at the next scheduling step.
   */
  set(deadlineNs: number): void {
    this.deadline = Number.isNaN(deadlineNs) ? Number.POSITIVE_INFINITY : deadlineNs;
    // A sleeping scheduler recomputes its wake-up time with the new deadline.
    if (this.deadline !== Number.POSITIVE_INFINITY) this.domain.hypervisor.scheduler.wake();
  }

  cancel(): void {
    this.deadline = Number.POSITIVE_INFINITY;
  }

  /** Called by the scheduler: runs the callback once if the deadline passed. */
  expire(now: number): void {
    if (this.deadline > now) return;
    this.deadline = Number.POSITIVE_INFINITY;
    this.fire();
  }
}
