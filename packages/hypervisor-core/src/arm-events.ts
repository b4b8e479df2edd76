/**
 * arm64 event-channel upcalls through an interrupt controller (xen-abi.md
 * 3.3). Xen on arm delivers events as one PPI per vCPU, GUEST_EVTCHN_PPI
 * (INTID 31, Xen public arch-arm.h), injected through its vGIC when
 * evtchn_upcall_pending goes 0 -> 1 (arch_evtchn_inject) and treated as a
 * level: while upcall_pending stays set the line stays asserted, so an
 * upcall cleared late or masked in the GIC is not lost (Xen arm
 * local_events_need_delivery_nomask checks upcall_pending, and the vGIC
 * re-injects the PPI on entry to the guest while it is set).
 *
 * The core imports no device model: a VMM plugs its GIC in through this
 * interface when it attaches the vCPU (`attachVcpu(id, cpu, { interruptController })`),
 * and the GIC model reads the line level with `Domain.eventLineLevel(vcpuId)`
 * when it re-samples a level-sensitive PPI (on EOI/deactivation).
 */
import { ArmGuest } from "@kumo/abi";

/** The event-channel PPI of every arm64 domain (Xen public arch-arm.h GUEST_EVTCHN_PPI). */
export const EVENT_CHANNEL_PPI: number = ArmGuest.EVTCHN_PPI;

/** What the hypervisor needs of an arm64 interrupt controller (a GIC model). */
export interface EventChannelInterruptController {
  /**
   * Makes PPI `intid` of vCPU `vcpuId` pending (GICv3 redistributor
   * GICR_ISPENDR0 semantics / GICv2 GICD_ISPENDR for the banked PPIs) and
   * wakes that vCPU's CPU interface. Called when the vCPU's
   * evtchn_upcall_pending goes 0 -> 1, and again each time the vCPU is
   * scheduled in while it is still set (the level). Asserting an interrupt
   * that is already pending must be harmless.
   */
  assertPpi(vcpuId: number, intid: number): void;
}
