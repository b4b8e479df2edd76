export { EVENT_CHANNEL_PPI, type EventChannelInterruptController } from "./arm-events";
export { type ClockMode, type ClockOptions, DomainClock, timeScale } from "./clock";
export { DeviceTimer } from "./device-timer";
export {
  type Architecture,
  type AttachVcpuOptions,
  Domain,
  type DomainConfig,
  DomainConfigError,
  type DomainInfo,
  type DomainState,
  type DomainType,
  type MemoryMapEntry,
  SHUTDOWN_REASON_NAMES,
  type ShutdownAction,
  type ShutdownReasonName,
} from "./domain";
export * from "./host";
export { EXTENTS_PER_PREEMPTION, featureBits, GRANT_OPS_PER_PREEMPTION } from "./hypercalls";
export { type DomainEvent, Hypervisor, type HypervisorOptions, MAX_DOMID } from "./hypervisor";
export { type GuestAbi, HVM_NR_PARAMS, XEN_MAJOR, XEN_MINOR } from "./layouts";
export { type CpuOnHandler, PsciFunction, PsciReturn, vcpuAffinity } from "./psci";
export { Scheduler, type SchedulerOptions, type StepResult } from "./scheduler";
export { BlockReason, VcpuContext } from "./vcpu-context";
export { XEN_CPUID_BASE, XEN_HYPERCALL_MSR } from "./x86-hooks";
