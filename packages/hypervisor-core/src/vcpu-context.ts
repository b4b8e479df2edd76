/**
 * The hypervisor's side of one vCPU: the `Vcpu` it drives, whether it is up
 * or blocked, its timers, where its vcpu_info lives, and the upcall it
 * raises as the CPU's `InterruptSource` (xen-abi.md 3.3: the HVM callback
 * vector, level-like while evtchn_upcall_pending is set, bypassing the LAPIC).
 */
import { type InterruptSource, RunstateState, type Vcpu } from "@kumo/abi";
import type { Domain } from "./domain";
import type { GuestAccess } from "./guest-access";
import { Runstate } from "./runstate";

/** Why a vCPU does not run. */
export const BlockReason = {
  None: 0,
  /** hlt/wfi with interrupts enabled: wakes on an upcall or a timer. */
  Halt: 1,
  /** SCHEDOP_block: wakes on an event. */
  Block: 2,
  /** SCHEDOP_poll: wakes when a polled port is raised (masked or not), on timeout, or spuriously. */
  Poll: 3,
} as const;
export type BlockReason = (typeof BlockReason)[keyof typeof BlockReason];

const BLOCK_NAMES = ["none", "halt", "block", "poll"] as const;

/** SCHEDOP_poll accepts at most 128 ports (Xen common/sched/core.c do_poll). */
export const MAX_POLL_PORTS = 128;

export class VcpuContext implements InterruptSource {
  vcpu: Vcpu | null = null;
  /** Not VPF_down: eligible to run. vCPU 0 comes up at the first unpause, others by VCPUOP_up or the toolstack. */
  online = false;
  /** Set once vCPU 0 was brought up by the first unpause. */
  everOnline = false;
  blocked: BlockReason = BlockReason.None;
  /** Singleshot timer deadline in system-time ns, Infinity when off. */
  singleshotDeadline = Number.POSITIVE_INFINITY;
  /** Periodic timer: period in ns (0 = off) and next deadline. */
  periodicPeriod = 0;
  periodicDeadline = Number.POSITIVE_INFINITY;
  /** SCHEDOP_poll: ports and absolute timeout. */
  readonly pollPorts = new Uint32Array(MAX_POLL_PORTS);
  pollCount = 0;
  pollDeadline = Number.POSITIVE_INFINITY;
  /** The page and offset holding this vCPU's vcpu_info (shared_info slot, or a registered area). */
  vcpuInfoPage: Uint8Array | null = null;
  vcpuInfoOffset = 0;
  vcpuInfoRegistered = false;
  /** HVMOP_set_evtchn_upcall_vector: a per-vCPU vector (0 = use the domain's callback vector). */
  upcallVector = 0;
  /** A preempted hypercall waits in `vcpu.exit` with rewritten arguments (see GRANT_OPS_PER_PREEMPTION). */
  continuation = false;
  /**
   * VCPUOP_register_vcpu_time_memory_area: the guest-virtual address of a
   * second vcpu_time_info (Linux's vDSO pvclock page) as halves;
   * `timeAreaRegistered` false when none (a null handle).
   */
  timeAreaLow = 0;
  timeAreaHigh = 0;
  timeAreaRegistered = false;
  /** vcpu_time_info version for a vCPU whose vcpu_info has no page (secondary copy only). */
  timeVersion = 0;
  /** Runstate accounting and the registered guest copy (VCPUOP_register_runstate_memory_area). */
  readonly runstate = new Runstate();
  /** Instructions retired in this vCPU when it last ran (for info). */
  access: GuestAccess | null = null;
  /** arm64: starts another vCPU for PSCI CPU_ON (see AttachVcpuOptions.cpuOn). */
  cpuOn: ((vcpuId: number, entry: number, context: number) => boolean) | null = null;
  /** arm64: raises the event PPI on the vCPU's interrupt controller. */
  eventLine: ((vcpuId: number) => void) | null = null;
  /** Last caller mode seen on a hypercall (for layout latching on the MSR write). */
  lastLongMode: boolean;

  constructor(
    readonly domain: Domain,
    readonly id: number,
  ) {
    // Until the first hypercall shows the mode, the kernel's ELF class (the domain's ABI) stands.
    this.lastLongMode = domain.abi !== "x32";
  }

  /** The vector delivered for events, or 0 when event delivery is off. */
  deliveryVector(): number {
    return this.upcallVector !== 0 ? this.upcallVector : this.domain.callbackVector;
  }

  /** evtchn_upcall_pending of the current vcpu_info. */
  upcallPending(): boolean {
    const page = this.vcpuInfoPage;
    return page !== null && page[this.vcpuInfoOffset] !== 0;
  }

  // InterruptSource: hot, no allocation.
  hasPending(): boolean {
    return this.deliveryVector() !== 0 && this.upcallPending();
  }

  acknowledge(): number {
    return this.hasPending() ? this.deliveryVector() : -1;
  }

  /**
   * Xen local_events_need_delivery for this vCPU: x86 (HVM/PVH) asks
   * hvm_vcpu_has_pending_irq, i.e. the CPU's whole interrupt source (the
   * callback vector and, when a VMM wired one in, the local APIC), and
   * whether the CPU can take it now (hvm_interrupt_blocked: IF and the
   * shadow); arm64 asks evtchn_upcall_pending (xen/include/xen/event.h).
   * Used where Xen decides whether a vCPU may sleep (hlt, SCHEDOP_block,
   * SCHEDOP_poll), so that a wakeup already waiting in an interrupt source
   * that does not go through `kick` (the toolstack's LAPIC) is not lost.
   */
  eventsNeedDelivery(): boolean {
    const vcpu = this.vcpu;
    if (vcpu === null) return false;
    // arm64 (Xen local_events_need_delivery_nomask): any interrupt pending in the vGIC, then
    // upcall_pending; wfi wakes whatever PSTATE.I says (Arm ARM D1.16.2).
    if (this.domain.architecture !== "x86")
      return this.upcallPending() || (vcpu.interrupts?.hasPending() ?? false);
    if (!vcpu.interruptsEnabled()) return false;
    const source = vcpu.interrupts ?? this;
    return source.hasPending();
  }

  /** An event arrived for this vCPU: wake it if blocked and tell the CPU (Xen vcpu_kick). */
  kick(): void {
    if (
      this.blocked === BlockReason.Halt ||
      this.blocked === BlockReason.Block ||
      this.blocked === BlockReason.Poll
    ) {
      this.wake();
    }
    this.eventLine?.(this.id);
    this.vcpu?.notifyInterrupt();
  }

  /** Ends any block and tells the scheduler. */
  wake(): void {
    if (this.blocked === BlockReason.None) return;
    this.blocked = BlockReason.None;
    this.pollCount = 0;
    this.pollDeadline = Number.POSITIVE_INFINITY;
    this.settleRunstate();
    this.domain.hypervisor.scheduler.wake();
  }

  /**
   * Moves the runstate of a vCPU that is not running to what its flags say
   * (offline, blocked or runnable), charging the elapsed time (Xen
   * vcpu_runstate_change at vcpu_wake, vcpu_sleep, VPF_down). A vCPU in its
   * slice stays "running" until the scheduler ends the slice.
   */
  settleRunstate(): void {
    const runstate = this.runstate;
    if (runstate.state === RunstateState.running) return;
    runstate.change(this.offCpuState(), this.domain.clock.now());
  }

  /** The runstate of this vCPU when it is not on the (host) CPU. */
  offCpuState(): number {
    if (!this.online) return RunstateState.offline;
    return this.blocked === BlockReason.None ? RunstateState.runnable : RunstateState.blocked;
  }

  /**
   * Copies the runstate to the registered guest area through this vCPU's own
   * translation (Xen update_runstate_area at context switch). A failed copy
   * is ignored, as Xen ignores it. With VMASST_TYPE_runstate_update_flag Xen
   * sets XEN_RUNSTATE_UPDATE in state_entry_time around the copy so that
   * another vCPU reading concurrently can retry; Kumo's vCPUs do not run
   * while it writes, so the final value (flag clear) is all any reader sees.
   */
  writeRunstate(): void {
    const runstate = this.runstate;
    const access = this.access;
    if (!runstate.registered || access === null) return;
    const abi = this.domain.abi;
    const size = runstate.encode(abi, this.domain.clock.now(), false);
    const longMode = access.longMode;
    access.longMode = abi !== "x32";
    access.writeVirtual(runstate.areaLow, runstate.areaHigh, runstate.bytes, 0, size);
    access.longMode = longMode;
  }

  /** The earliest timer deadline of this vCPU (system-time ns). */
  nextDeadline(): number {
    let deadline = this.singleshotDeadline;
    if (this.periodicDeadline < deadline) deadline = this.periodicDeadline;
    if (this.blocked === BlockReason.Poll && this.pollDeadline < deadline)
      deadline = this.pollDeadline;
    return deadline;
  }

  /** A one-line account of the vCPU's scheduling and event state (for the stall log). */
  describe(now: number): string {
    const page = this.vcpuInfoPage;
    const at = this.vcpuInfoOffset;
    const relative = (deadline: number) =>
      deadline === Number.POSITIVE_INFINITY ? "off" : `+${deadline - now}ns`;
    const vcpu = this.vcpu;
    return [
      `v${this.id}`,
      this.online ? "online" : "offline",
      `blocked=${BLOCK_NAMES[this.blocked]}`,
      `upcall_pending=${page === null ? "-" : page[at]}`,
      `upcall_mask=${page === null ? "-" : page[at + 1]}`,
      `vector=${this.deliveryVector()}`,
      `irq_enabled=${vcpu === null ? "-" : vcpu.interruptsEnabled()}`,
      `source_pending=${vcpu?.interrupts?.hasPending() ?? "-"}`,
      `needs_delivery=${this.eventsNeedDelivery()}`,
      `singleshot=${relative(this.singleshotDeadline)}`,
      `periodic=${relative(this.periodicDeadline)}`,
      this.blocked === BlockReason.Poll
        ? `poll=[${Array.from(this.pollPorts.subarray(0, this.pollCount)).join(",")}] timeout=${relative(this.pollDeadline)}`
        : "",
      `retired=${this.instructionsRetired()}`,
    ]
      .filter((part) => part !== "")
      .join(" ");
  }

  /** True when the scheduler may run it now. */
  runnable(): boolean {
    return this.online && this.vcpu !== null && this.blocked === BlockReason.None;
  }

  /** Instructions retired, 0 without a CPU. */
  instructionsRetired(): number {
    return this.vcpu === null ? 0 : this.vcpu.instructionsRetired;
  }
}
