import { struct } from "../define";
import { defineRing } from "./ring";

// Xen public io/blkif.h. The 64-bit `id` and `sector_number` make the x86_32 layouts differ
// (4-byte aligned u64): the frontend's `protocol` key names the layout (docs/xen-abi.md 7.2).

export const blkif_request_segment = struct("blkif_request_segment", [
  ["gref", "u32"],
  ["first_sect", "u8"],
  ["last_sect", "u8"],
]);

export const blkif_request = struct("blkif_request", [
  ["operation", "u8"],
  ["nr_segments", "u8"],
  ["handle", "u16"],
  ["id", "u64"],
  ["sector_number", "u64"],
  ["seg", blkif_request_segment, { count: 11 }],
]);

/** BLKIF_OP_DISCARD requests, in the same ring slots as `blkif_request`. */
export const blkif_request_discard = struct("blkif_request_discard", [
  ["operation", "u8"],
  ["flag", "u8"],
  ["handle", "u16"],
  ["id", "u64"],
  ["sector_number", "u64"],
  ["nr_sectors", "u64"],
]);

/** BLKIF_OP_INDIRECT requests; the trailing pad makes them 64 bytes on x86_32 too. */
export const blkif_request_indirect = struct("blkif_request_indirect", [
  ["operation", "u8"],
  ["indirect_op", "u8"],
  ["nr_segments", "u16"],
  ["id", "u64"],
  ["sector_number", "u64"],
  ["handle", "u16"],
  ["indirect_grefs", "u32", { count: 8 }],
  ["pad", "u64", { abis: ["x86_32"] }],
]);

export const blkif_response = struct("blkif_response", [
  ["id", "u64"],
  ["operation", "u8"],
  ["status", "i16"],
]);

const blkifRing = defineRing("blkif", blkif_request, blkif_response);
export const blkif_sring_entry = blkifRing.entry;
export const blkif_sring = blkifRing.sring;
