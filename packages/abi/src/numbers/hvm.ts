/** HVM parameter indexes for HVMOP_get_param/set_param. Xen public hvm/params.h `HVM_PARAM_*`. */
export const HvmParam = {
  CALLBACK_IRQ: 0,
  STORE_PFN: 1,
  STORE_EVTCHN: 2,
  PAE_ENABLED: 4,
  IOREQ_PFN: 5,
  BUFIOREQ_PFN: 6,
  VIRIDIAN: 9,
  TIMER_MODE: 10,
  HPET_ENABLED: 11,
  IDENT_PT: 12,
  DM_DOMAIN: 13,
  ACPI_S_STATE: 14,
  VM86_TSS: 15,
  VPT_ALIGN: 16,
  CONSOLE_PFN: 17,
  CONSOLE_EVTCHN: 18,
  ACPI_IOPORTS_LOCATION: 19,
  MEMORY_EVENT_CR0: 20,
  MEMORY_EVENT_CR3: 21,
  MEMORY_EVENT_CR4: 22,
  MEMORY_EVENT_INT3: 23,
  NESTEDHVM: 24,
  MEMORY_EVENT_SINGLE_STEP: 25,
  BUFIOREQ_EVTCHN: 26,
  PAGING_RING_PFN: 27,
  MONITOR_RING_PFN: 28,
  SHARING_RING_PFN: 29,
  MEMORY_EVENT_MSR: 30,
  TRIPLE_FAULT_REASON: 31,
  IOREQ_SERVER_PFN: 32,
  NR_IOREQ_SERVER_PAGES: 33,
  VM_GENERATION_ID_ADDR: 34,
  ALTP2M: 35,
  X87_FIP_WIDTH: 36,
  VM86_TSS_SIZED: 37,
  MCA_CAP: 38,
} as const;
export type HvmParam = (typeof HvmParam)[keyof typeof HvmParam];

/** Type in bits 63:56 of HVM_PARAM_CALLBACK_IRQ. Xen public hvm/params.h `HVM_PARAM_CALLBACK_TYPE_*`. */
export const HvmCallbackType = {
  GSI: 0,
  PCI_INTX: 1,
  /** x86: bits 7:0 are the upcall vector. */
  VECTOR: 2,
  /** arm: bits 7:0 are the PPI, bits 15:8 its flags (`HvmCallbackPpiFlags`). */
  PPI: 2,
} as const;
export type HvmCallbackType = (typeof HvmCallbackType)[keyof typeof HvmCallbackType];

/** PPI flags in bits 15:8 of an arm CALLBACK_IRQ value. hvm/params.h `HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_*`. */
export const HvmCallbackPpiFlags = {
  LOW_LEVEL: 2,
  MASK: 0xff00,
} as const;
export type HvmCallbackPpiFlags = (typeof HvmCallbackPpiFlags)[keyof typeof HvmCallbackPpiFlags];

/** `hvm_memmap_table_entry.type`. Xen public hvm/start_info.h `XEN_HVM_MEMMAP_TYPE_*`. */
export const HvmMemmapType = {
  RAM: 1,
  RESERVED: 2,
  ACPI: 3,
  NVS: 4,
  UNUSABLE: 5,
  DISABLED: 6,
  PMEM: 7,
} as const;
export type HvmMemmapType = (typeof HvmMemmapType)[keyof typeof HvmMemmapType];

/** `hvm_start_info.magic`. Xen public hvm/start_info.h. */
export const HvmStartInfoConst = {
  MAGIC_VALUE: 0x336ec578,
} as const;
export type HvmStartInfoConst = (typeof HvmStartInfoConst)[keyof typeof HvmStartInfoConst];
