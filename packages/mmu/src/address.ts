/**
 * Address kinds. Kumo keeps them plain numbers (a branded type would force a
 * cast at every arithmetic step of a CPU's hot path), but names them apart so
 * that a signature says which space an argument lives in, as rust-vmm's
 * `GuestAddress` does. Guest-physical addresses go up to 2^52 (Intel SDM vol.
 * 3A 4.1.4 MAXPHYADDR, Arm ARM FEAT_LPA), so they are doubles exact to
 * 2^53; frame numbers are addresses divided by the 4 KiB page size.
 */

/** A guest-physical address (Xen: gpaddr), a non-negative integer below 2^53. */
export type GuestPhysicalAddress = number;
/** A guest frame number (Xen: gfn / pfn): guest-physical address >> 12. */
export type GuestFrameNumber = number;

/** log2 of the base page size shared by x86 and the arm64 4 KiB granule. */
export const PAGE_SHIFT = 12;
/** The base page size in bytes. */
export const PAGE_SIZE = 4096;
/** Mask of the offset within a base page. */
export const PAGE_OFFSET_MASK = 0xfff;

/** The frame that holds a guest-physical address. */
export function gfnOf(address: GuestPhysicalAddress): GuestFrameNumber {
  return Math.floor(address / PAGE_SIZE);
}

/** The guest-physical address of the first byte of a frame. */
export function addressOfGfn(gfn: GuestFrameNumber): GuestPhysicalAddress {
  return gfn * PAGE_SIZE;
}

/** 2^32, to join 32-bit halves into a double (exact below 2^53). */
export const TWO_POW_32 = 4294967296;
