/** Bit numbers in submap 0 of XENVER_get_features. Xen public features.h `XENFEAT_*`. */
export const XenFeature = {
  writable_page_tables: 0,
  writable_descriptor_tables: 1,
  auto_translated_physmap: 2,
  supervisor_mode_kernel: 3,
  pae_pgdir_above_4gb: 4,
  mmu_pt_update_preserve_ad: 5,
  highmem_assist: 6,
  gnttab_map_avail_bits: 7,
  hvm_callback_vector: 8,
  hvm_safe_pvclock: 9,
  hvm_pirqs: 10,
  dom0: 11,
  memory_op_vnode_supported: 13,
  ARM_SMCCC_supported: 14,
  linux_rsdp_unrestricted: 15,
  not_direct_mapped: 16,
  direct_mapped: 17,
} as const;
export type XenFeature = (typeof XenFeature)[keyof typeof XenFeature];

/** Special domain ids. Xen public xen.h `DOMID_*`. */
export const DomId = {
  FIRST_RESERVED: 0x7ff0,
  SELF: 0x7ff0,
  IO: 0x7ff1,
  XEN: 0x7ff2,
  COW: 0x7ff3,
  INVALID: 0x7ff4,
  IDLE: 0x7fff,
} as const;
export type DomId = (typeof DomId)[keyof typeof DomId];

/** `sched_shutdown.reason`. Xen public sched.h `SHUTDOWN_*`. */
export const ShutdownReason = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  MAX: 5,
  soft_reset: 5,
} as const;
export type ShutdownReason = (typeof ShutdownReason)[keyof typeof ShutdownReason];

/** `vcpu_runstate_info.state`. Xen public vcpu.h `RUNSTATE_*`. */
export const RunstateState = {
  running: 0,
  runnable: 1,
  blocked: 2,
  offline: 3,
} as const;
export type RunstateState = (typeof RunstateState)[keyof typeof RunstateState];

/** vm_assist types. Xen public xen.h `VMASST_TYPE_*`. */
export const VmAssistType = {
  "4gb_segments": 0,
  "4gb_segments_notify": 1,
  writable_pagetables: 2,
  pae_extended_cr3: 3,
  architectural_iopl: 4,
  runstate_update_flag: 5,
  m2p_strict: 32,
} as const;
export type VmAssistType = (typeof VmAssistType)[keyof typeof VmAssistType];

/** `vcpu_time_info.flags` bits. Xen public xen.h `XEN_PVCLOCK_*`. */
export const PvclockFlags = {
  TSC_STABLE_BIT: 1,
  GUEST_STOPPED: 2,
} as const;
export type PvclockFlags = (typeof PvclockFlags)[keyof typeof PvclockFlags];

/** `start_info.flags` / `hvm_start_info.flags` bits. Xen public xen.h `SIF_*`. */
export const StartInfoFlags = {
  PRIVILEGED: 1,
  INITDOMAIN: 2,
  MULTIBOOT_MOD: 4,
  MOD_START_PFN: 8,
  VIRT_P2M_4TOOLS: 16,
  PM_MASK: 65280,
} as const;
export type StartInfoFlags = (typeof StartInfoFlags)[keyof typeof StartInfoFlags];

/** ELF note types in the "Xen" namespace. Xen public elfnote.h `XEN_ELFNOTE_*`. */
export const ElfNote = {
  INFO: 0,
  ENTRY: 1,
  HYPERCALL_PAGE: 2,
  VIRT_BASE: 3,
  PADDR_OFFSET: 4,
  XEN_VERSION: 5,
  GUEST_OS: 6,
  GUEST_VERSION: 7,
  LOADER: 8,
  PAE_MODE: 9,
  FEATURES: 10,
  BSD_SYMTAB: 11,
  HV_START_LOW: 12,
  L1_MFN_VALID: 13,
  SUSPEND_CANCEL: 14,
  INIT_P2M: 15,
  MOD_START_PFN: 16,
  SUPPORTED_FEATURES: 17,
  PHYS32_ENTRY: 18,
  CRASH_INFO: 0x1000001,
  CRASH_REGS: 0x1000002,
  DUMPCORE_NONE: 0x2000000,
  DUMPCORE_HEADER: 0x2000001,
  DUMPCORE_XEN_VERSION: 0x2000002,
  DUMPCORE_FORMAT_VERSION: 0x2000003,
} as const;
export type ElfNote = (typeof ElfNote)[keyof typeof ElfNote];
