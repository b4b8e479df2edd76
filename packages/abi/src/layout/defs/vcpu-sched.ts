import { struct, union } from "../define";

// Xen public vcpu.h, sched.h, version.h.

/** VCPUOP_register_vcpu_info (10). `mfn` is a GFN for translated guests. */
export const vcpu_register_vcpu_info = struct("vcpu_register_vcpu_info", [
  ["mfn", "u64"],
  ["offset", "u32"],
  ["rsvd", "u32"],
]);

/** The runstate area (VCPUOP_register_runstate_memory_area, get_runstate_info). */
export const vcpu_runstate_info = struct("vcpu_runstate_info", [
  ["state", "i32"],
  ["state_entry_time", "u64"],
  ["time", "u64", { count: 4 }],
]);

/** `union { XEN_GUEST_HANDLE(...) h; T *v; uint64_t p; } addr`: a guest virtual address. */
const guestAddress = union("", [
  ["h", "handle"],
  ["v", "ulong"],
  ["p", "u64"],
]);

/** VCPUOP_register_runstate_memory_area (5). */
export const vcpu_register_runstate_memory_area = struct("vcpu_register_runstate_memory_area", [
  ["addr", guestAddress],
]);

/** VCPUOP_register_vcpu_time_memory_area (13). */
export const vcpu_register_time_memory_area = struct("vcpu_register_time_memory_area", [
  ["addr", guestAddress],
]);

/** VCPUOP_set_periodic_timer (6). */
export const vcpu_set_periodic_timer = struct("vcpu_set_periodic_timer", [["period_ns", "u64"]]);

/** VCPUOP_set_singleshot_timer (8). */
export const vcpu_set_singleshot_timer = struct("vcpu_set_singleshot_timer", [
  ["timeout_abs_ns", "u64"],
  ["flags", "u32"],
]);

/** VCPUOP_get_physid (12). */
export const vcpu_get_physid = struct("vcpu_get_physid", [["phys_id", "u64"]]);

/** SCHEDOP_shutdown (2). */
export const sched_shutdown = struct("sched_shutdown", [["reason", "u32"]]);

/** SCHEDOP_poll (3): `ports` is XEN_GUEST_HANDLE(evtchn_port_t); `timeout` absolute ns. */
export const sched_poll = struct("sched_poll", [
  ["ports", "handle"],
  ["nr_ports", "u32"],
  ["timeout", "u64"],
]);

/** SCHEDOP_remote_shutdown (4). */
export const sched_remote_shutdown = struct("sched_remote_shutdown", [
  ["domain_id", "u16"],
  ["reason", "u32"],
]);

/** SCHEDOP_watchdog (6). */
export const sched_watchdog = struct("sched_watchdog", [
  ["id", "u32"],
  ["timeout", "u32"],
]);

/** XENVER_get_features (6). */
export const xen_feature_info = struct("xen_feature_info", [
  ["submap_idx", "u32"],
  ["submap", "u32"],
]);

/** XENVER_platform_parameters (5). */
export const xen_platform_parameters = struct("xen_platform_parameters", [["virt_start", "ulong"]]);
