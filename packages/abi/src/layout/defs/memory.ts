import { struct, union } from "../define";

// Xen public memory.h. Guest handles, `xen_ulong_t` and `xen_pfn_t` make most of these differ
// between x86_32 and the 64-bit ABIs (docs/xen-abi.md 2.3).

/** XENMEM_increase_reservation (0), decrease_reservation (1), populate_physmap (6). */
export const xen_memory_reservation = struct("xen_memory_reservation", [
  ["extent_start", "handle"],
  ["nr_extents", "ulong"],
  ["extent_order", "u32"],
  ["mem_flags", "u32"],
  ["domid", "u16"],
]);

export const xen_memory_exchange = struct("xen_memory_exchange", [
  ["in", xen_memory_reservation],
  ["out", xen_memory_reservation],
  ["nr_exchanged", "ulong"],
]);

/** XENMEM_add_to_physmap (7). */
export const xen_add_to_physmap = struct("xen_add_to_physmap", [
  ["domid", "u16"],
  ["size", "u16"],
  ["space", "u32"],
  ["idx", "ulong"],
  ["gpfn", "pfn"],
]);

/** XENMEM_add_to_physmap_batch (23). */
export const xen_add_to_physmap_batch = struct("xen_add_to_physmap_batch", [
  ["domid", "u16"],
  ["space", "u16"],
  ["size", "u16"],
  [
    "u",
    union("xen_add_to_physmap_batch_extra", [
      ["foreign_domid", "u16"],
      ["res0", "u16"],
    ]),
  ],
  ["idxs", "handle"],
  ["gpfns", "handle"],
  ["errs", "handle"],
]);

/** XENMEM_remove_from_physmap (15). */
export const xen_remove_from_physmap = struct("xen_remove_from_physmap", [
  ["domid", "u16"],
  ["gpfn", "pfn"],
]);

/** XENMEM_memory_map (9): the buffer holds packed 20-byte e820 entries. */
export const xen_memory_map = struct("xen_memory_map", [
  ["nr_entries", "u32"],
  ["buffer", "handle"],
]);
