/**
 * Writes a segment descriptor into guest memory through `view` at byte
 * `at`: limit 15:0 and base 15:0 in the low dword; base 23:16, the access
 * byte, limit 19:16, the flags nibble (G, D/B, L, AVL) and base 31:24 in the
 * high dword (Intel SDM vol. 3A 3.4.5, figure 3-8).
 */
export function writeSegmentDescriptor(
  view: DataView,
  at: number,
  base: number,
  limit: number,
  access: number,
  flags: number,
): void {
  view.setUint32(at, ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0, true);
  view.setUint32(
    at + 4,
    (((base >>> 16) & 0xff) |
      (access << 8) |
      (((limit >>> 16) & 0xf) << 16) |
      (flags << 20) |
      (base & 0xff000000)) >>>
      0,
    true,
  );
}
