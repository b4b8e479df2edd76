import { struct } from "../define";

/** HVMOP_set_param (0) / get_param (1). Xen public hvm/hvm_op.h. */
export const xen_hvm_param = struct("xen_hvm_param", [
  ["domid", "u16"],
  ["pad", "u16"],
  ["index", "u32"],
  ["value", "u64"],
]);

/** HVMOP_pagetable_dying (9). */
export const xen_hvm_pagetable_dying = struct("xen_hvm_pagetable_dying", [
  ["domid", "u16"],
  ["pad", "u16", { count: 3 }],
  ["gpa", "u64"],
]);

/** HVMOP_set_evtchn_upcall_vector (23), x86 only. */
export const xen_hvm_evtchn_upcall_vector = struct(
  "xen_hvm_evtchn_upcall_vector",
  [
    ["vcpu", "u32"],
    ["vector", "u8"],
  ],
  { abis: ["x86_32", "x86_64"] },
);

/**
 * The PVH boot record whose physical address is in EBX at entry (Xen public hvm/start_info.h;
 * 56 bytes in every ABI since its 64-bit members are naturally aligned). Version 1 adds
 * `memmap_paddr` and `memmap_entries`.
 */
export const hvm_start_info = struct("hvm_start_info", [
  ["magic", "u32"],
  ["version", "u32"],
  ["flags", "u32"],
  ["nr_modules", "u32"],
  ["modlist_paddr", "u64"],
  ["cmdline_paddr", "u64"],
  ["rsdp_paddr", "u64"],
  ["memmap_paddr", "u64"],
  ["memmap_entries", "u32"],
  ["reserved", "u32"],
]);

/** An entry of the module list at `hvm_start_info.modlist_paddr` (module 0 is the initrd). */
export const hvm_modlist_entry = struct("hvm_modlist_entry", [
  ["paddr", "u64"],
  ["size", "u64"],
  ["cmdline_paddr", "u64"],
  ["reserved", "u64"],
]);

/** An entry of the memory map at `hvm_start_info.memmap_paddr` (`type`: HvmMemmapType). */
export const hvm_memmap_table_entry = struct("hvm_memmap_table_entry", [
  ["addr", "u64"],
  ["size", "u64"],
  ["type", "u32"],
  ["reserved", "u32"],
]);
