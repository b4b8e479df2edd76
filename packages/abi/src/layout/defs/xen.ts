import { struct } from "../define";

/**
 * Per-vCPU time record (Xen public xen.h `struct vcpu_time_info`, 32 bytes in every ABI).
 * Updated under the `version` odd/even protocol; see docs/xen-abi.md 3.5.
 */
export const vcpu_time_info = struct("vcpu_time_info", [
  ["version", "u32"],
  ["pad0", "u32"],
  ["tsc_timestamp", "u64"],
  ["system_time", "u64"],
  ["tsc_to_system_mul", "u32"],
  ["tsc_shift", "i8"],
  ["flags", "u8"],
  ["pad1", "u8", { count: 2 }],
]);

/**
 * x86 PV state in `vcpu_info` (arch-x86/xen-x86_{32,64}.h `struct arch_vcpu_info`): `cr2` and
 * padding, one pad word on x86_64 and five on x86_32. Empty on arm (arch-arm.h).
 */
export const arch_vcpu_info = struct("arch_vcpu_info", [
  ["cr2", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["pad", "ulong", { abis: ["x86_32"], count: 5 }],
  ["pad", "ulong", { abis: ["x86_64"] }],
]);

/**
 * Xen public xen.h `struct vcpu_info`. On arm the byte after `evtchn_upcall_pending` is
 * `pad0` (no PV upcall mask: XEN_HAVE_PV_UPCALL_MASK is x86-only).
 */
export const vcpu_info = struct("vcpu_info", [
  ["evtchn_upcall_pending", "u8"],
  ["evtchn_upcall_mask", "u8", { abis: ["x86_32", "x86_64"] }],
  ["pad0", "u8", { abis: ["arm64"] }],
  ["evtchn_pending_sel", "ulong"],
  ["arch", arch_vcpu_info],
  ["time", vcpu_time_info],
]);

/**
 * x86 PV p2m data at the end of `shared_info` (arch-x86/xen.h `struct arch_shared_info`). On
 * x86_32 it also holds `wc_sec_hi` (which x86_64 and arm keep in `shared_info` itself). Empty on
 * arm.
 */
export const arch_shared_info = struct("arch_shared_info", [
  ["max_pfn", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["pfn_to_mfn_frame_list_list", "pfn", { abis: ["x86_32", "x86_64"] }],
  ["nmi_reason", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["p2m_cr3", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["p2m_vaddr", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["p2m_generation", "ulong", { abis: ["x86_32", "x86_64"] }],
  ["wc_sec_hi", "u32", { abis: ["x86_32"] }],
]);

/**
 * Xen public xen.h `struct shared_info`: XEN_LEGACY_MAX_VCPUS built-in vcpu_info slots (32 on
 * x86, 1 on arm), the 2-level event arrays (`sizeof(xen_ulong_t) * 8` words each) and the
 * wallclock.
 */
export const shared_info = struct("shared_info", [
  ["vcpu_info", vcpu_info, { count: { x86_32: 32, x86_64: 32, arm64: 1 } }],
  ["evtchn_pending", "ulong", { count: { x86_32: 32, x86_64: 64, arm64: 64 } }],
  ["evtchn_mask", "ulong", { count: { x86_32: 32, x86_64: 64, arm64: 64 } }],
  ["wc_version", "u32"],
  ["wc_sec", "u32"],
  ["wc_nsec", "u32"],
  ["wc_sec_hi", "u32", { abis: ["x86_64", "arm64"] }],
  ["arch", arch_shared_info],
]);

/** Xen public xen.h `struct multicall_entry` (hypercall 13). */
export const multicall_entry = struct("multicall_entry", [
  ["op", "ulong"],
  ["result", "ulong"],
  ["args", "ulong", { count: 6 }],
]);
