import { struct, union } from "../define";

// Xen public grant_table.h (interface version 0x00040e00 and later). `grant_ref_t` and
// `grant_handle_t` are u32, `domid_t` u16.

/** A v1 grant entry, 8 bytes; 512 per table frame. */
export const grant_entry_v1 = struct("grant_entry_v1", [
  ["flags", "u16"],
  ["domid", "u16"],
  ["frame", "u32"],
]);

export const gnttab_map_grant_ref = struct("gnttab_map_grant_ref", [
  ["host_addr", "u64"],
  ["flags", "u32"],
  ["ref", "u32"],
  ["dom", "u16"],
  ["status", "i16"],
  ["handle", "u32"],
  ["dev_bus_addr", "u64"],
]);

export const gnttab_unmap_grant_ref = struct("gnttab_unmap_grant_ref", [
  ["host_addr", "u64"],
  ["dev_bus_addr", "u64"],
  ["handle", "u32"],
  ["status", "i16"],
]);

/** `frame_list` is XEN_GUEST_HANDLE(xen_pfn_t). */
export const gnttab_setup_table = struct("gnttab_setup_table", [
  ["dom", "u16"],
  ["nr_frames", "u32"],
  ["status", "i16"],
  ["frame_list", "handle"],
]);

export const gnttab_dump_table = struct("gnttab_dump_table", [
  ["dom", "u16"],
  ["status", "i16"],
]);

export const gnttab_transfer = struct("gnttab_transfer", [
  ["mfn", "pfn"],
  ["domid", "u16"],
  ["ref", "u32"],
  ["status", "i16"],
]);

/** One side of a grant copy: a grant ref or a frame (`union { ref; gmfn; } u`). */
export const gnttab_copy_ptr = struct("gnttab_copy_ptr", [
  [
    "u",
    union("", [
      ["ref", "u32"],
      ["gmfn", "pfn"],
    ]),
  ],
  ["domid", "u16"],
  ["offset", "u16"],
]);

export const gnttab_copy = struct("gnttab_copy", [
  ["source", gnttab_copy_ptr],
  ["dest", gnttab_copy_ptr],
  ["len", "u16"],
  ["flags", "u16"],
  ["status", "i16"],
]);

export const gnttab_query_size = struct("gnttab_query_size", [
  ["dom", "u16"],
  ["nr_frames", "u32"],
  ["max_nr_frames", "u32"],
  ["status", "i16"],
]);

export const gnttab_unmap_and_replace = struct("gnttab_unmap_and_replace", [
  ["host_addr", "u64"],
  ["new_addr", "u64"],
  ["handle", "u32"],
  ["status", "i16"],
]);

export const gnttab_set_version = struct("gnttab_set_version", [["version", "u32"]]);

/** `frame_list` is XEN_GUEST_HANDLE(uint64_t). */
export const gnttab_get_status_frames = struct("gnttab_get_status_frames", [
  ["nr_frames", "u32"],
  ["dom", "u16"],
  ["status", "i16"],
  ["frame_list", "handle"],
]);

export const gnttab_get_version = struct("gnttab_get_version", [
  ["dom", "u16"],
  ["pad", "u16"],
  ["version", "u32"],
]);

export const gnttab_swap_grant_ref = struct("gnttab_swap_grant_ref", [
  ["ref_a", "u32"],
  ["ref_b", "u32"],
  ["status", "i16"],
]);

export const gnttab_cache_flush = struct("gnttab_cache_flush", [
  [
    "a",
    union("", [
      ["dev_bus_addr", "u64"],
      ["ref", "u32"],
    ]),
  ],
  ["offset", "u16"],
  ["length", "u16"],
  ["op", "u32"],
]);
