/** Hypercall numbers: the value in EAX/RAX (x86) or x16 (arm64). Xen public xen.h `__HYPERVISOR_*`. */
export const Hypercall = {
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  sched_op_compat: 6,
  platform_op: 7,
  set_debugreg: 8,
  get_debugreg: 9,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  event_channel_op_compat: 16,
  xen_version: 17,
  console_io: 18,
  physdev_op_compat: 19,
  grant_table_op: 20,
  vm_assist: 21,
  update_va_mapping_otherdomain: 22,
  iret: 23,
  vcpu_op: 24,
  set_segment_base: 25,
  mmuext_op: 26,
  xsm_op: 27,
  nmi_op: 28,
  sched_op: 29,
  callback_op: 30,
  xenoprof_op: 31,
  event_channel_op: 32,
  physdev_op: 33,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
  kexec_op: 37,
  tmem_op: 38,
  argo_op: 39,
  xenpmu_op: 40,
  dm_op: 41,
  hypfs_op: 42,
} as const;
export type Hypercall = (typeof Hypercall)[keyof typeof Hypercall];

/** memory_op sub-ops (cmd, arg1). Xen public memory.h `XENMEM_*`. */
export const MemoryOp = {
  increase_reservation: 0,
  decrease_reservation: 1,
  maximum_ram_page: 2,
  current_reservation: 3,
  maximum_reservation: 4,
  machphys_mfn_list: 5,
  populate_physmap: 6,
  add_to_physmap: 7,
  memory_map: 9,
  machine_memory_map: 10,
  exchange: 11,
  machphys_mapping: 12,
  set_memory_map: 13,
  maximum_gpfn: 14,
  remove_from_physmap: 15,
  set_pod_target: 16,
  get_pod_target: 17,
  get_sharing_freed_pages: 18,
  get_sharing_shared_pages: 19,
  paging_op: 20,
  access_op: 21,
  sharing_op: 22,
  add_to_physmap_batch: 23,
  claim_pages: 24,
  machphys_compat_mfn_list: 25,
  get_vnumainfo: 26,
  reserved_device_memory_map: 27,
  acquire_resource: 28,
} as const;
export type MemoryOp = (typeof MemoryOp)[keyof typeof MemoryOp];

/** xen_version sub-ops. Xen public version.h `XENVER_*`. */
export const XenVersionOp = {
  version: 0,
  extraversion: 1,
  compile_info: 2,
  capabilities: 3,
  changeset: 4,
  platform_parameters: 5,
  get_features: 6,
  pagesize: 7,
  guest_handle: 8,
  commandline: 9,
  build_id: 10,
} as const;
export type XenVersionOp = (typeof XenVersionOp)[keyof typeof XenVersionOp];

/** hvm_op sub-ops. Xen public hvm/hvm_op.h `HVMOP_*`. */
export const HvmOp = {
  set_param: 0,
  get_param: 1,
  flush_tlbs: 5,
  pagetable_dying: 9,
  get_time: 10,
  xentrace: 11,
  set_mem_access: 12,
  get_mem_access: 13,
  get_mem_type: 15,
  set_evtchn_upcall_vector: 23,
  guest_request_vm_event: 24,
} as const;
export type HvmOp = (typeof HvmOp)[keyof typeof HvmOp];

/** vcpu_op sub-ops (cmd, vcpuid, arg). Xen public vcpu.h `VCPUOP_*`. */
export const VcpuOp = {
  initialise: 0,
  up: 1,
  down: 2,
  is_up: 3,
  get_runstate_info: 4,
  register_runstate_memory_area: 5,
  set_periodic_timer: 6,
  stop_periodic_timer: 7,
  set_singleshot_timer: 8,
  stop_singleshot_timer: 9,
  register_vcpu_info: 10,
  send_nmi: 11,
  get_physid: 12,
  register_vcpu_time_memory_area: 13,
} as const;
export type VcpuOp = (typeof VcpuOp)[keyof typeof VcpuOp];

/** sched_op sub-ops. Xen public sched.h `SCHEDOP_*`. */
export const SchedOp = {
  yield: 0,
  block: 1,
  shutdown: 2,
  poll: 3,
  remote_shutdown: 4,
  shutdown_code: 5,
  watchdog: 6,
  pin_override: 7,
} as const;
export type SchedOp = (typeof SchedOp)[keyof typeof SchedOp];

/** event_channel_op sub-ops. Xen public event_channel.h `EVTCHNOP_*`. */
export const EvtchnOp = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
} as const;
export type EvtchnOp = (typeof EvtchnOp)[keyof typeof EvtchnOp];

/** grant_table_op sub-ops. Xen public grant_table.h `GNTTABOP_*`. */
export const GnttabOp = {
  map_grant_ref: 0,
  unmap_grant_ref: 1,
  setup_table: 2,
  dump_table: 3,
  transfer: 4,
  copy: 5,
  query_size: 6,
  unmap_and_replace: 7,
  set_version: 8,
  get_status_frames: 9,
  get_version: 10,
  swap_grant_ref: 11,
  cache_flush: 12,
} as const;
export type GnttabOp = (typeof GnttabOp)[keyof typeof GnttabOp];

/** console_io commands. Xen public xen.h `CONSOLEIO_*`. */
export const ConsoleIo = {
  write: 0,
  read: 1,
} as const;
export type ConsoleIo = (typeof ConsoleIo)[keyof typeof ConsoleIo];

/** vm_assist commands. Xen public xen.h `VMASST_CMD_*`. */
export const VmAssistCmd = {
  enable: 0,
  disable: 1,
} as const;
export type VmAssistCmd = (typeof VmAssistCmd)[keyof typeof VmAssistCmd];
