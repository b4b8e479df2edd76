/**
 * Xen's hypervisor CPUID leaves for x86 guests (Xen public arch-x86/cpuid.h). Guests scan
 * 0x40000000 + k * 0x100 for the signature; see docs/xen-abi.md 1.3.
 */
export const XenCpuid = {
  FIRST_LEAF: 0x40000000,
  /** EBX, ECX, EDX of the first leaf: "XenVMMXenVMM". */
  SIGNATURE_EBX: 0x566e6558,
  SIGNATURE_ECX: 0x65584d4d,
  SIGNATURE_EDX: 0x4d4d566e,
  /** Leaves after the first (EAX of the first leaf is FIRST_LEAF + MAX_NUM_LEAVES). */
  MAX_NUM_LEAVES: 5,
} as const;
export type XenCpuid = (typeof XenCpuid)[keyof typeof XenCpuid];

/** EAX flags of leaf base+4 (HVM guests). arch-x86/cpuid.h `XEN_HVM_CPUID_*`. */
export const XenHvmCpuid = {
  APIC_ACCESS_VIRT: 0x1,
  X2APIC_VIRT: 0x2,
  IOMMU_MAPPINGS: 0x4,
  /** EBX holds the vcpu id. */
  VCPU_ID_PRESENT: 0x8,
  /** ECX holds the domid. */
  DOMID_PRESENT: 0x10,
  EXT_DEST_ID: 0x20,
  /** Per-vCPU upcall vectors (HVMOP_set_evtchn_upcall_vector) are available. */
  UPCALL_VECTOR: 0x40,
} as const;
export type XenHvmCpuid = (typeof XenHvmCpuid)[keyof typeof XenHvmCpuid];
