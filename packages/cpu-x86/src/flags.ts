/**
 * Lazy arithmetic flags (the technique of Bochs and v86): an ALU instruction
 * records its operation, operands and result; CF/PF/AF/ZF/SF/OF are computed
 * only when something reads them. Values of one operation: see `LazyFlags`.
 */

/** Kinds of the last flag-setting operation. */
export const LazyOp = {
  ADD: 0,
  ADC: 1,
  SUB: 2,
  SBB: 3,
  /** Logic ops and others whose CF/OF/AF are fixed (0) or eagerly stored. */
  LOGIC: 4,
} as const;

/** PF is set when the low byte of the result has an even number of 1 bits (SDM vol. 1 3.4.3.1). */
export const PARITY = (() => {
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let bits = 0;
    for (let b = 0; b < 8; b++) bits += (i >> b) & 1;
    table[i] = bits & 1 ? 0 : 4;
  }
  return table;
})();

/** Mask and sign bit of operand size index 0 (8), 1 (16), 2 (32). */
export const SIZE_MASK = new Int32Array([0xff, 0xffff, -1]);
export const SIZE_SIGN = new Int32Array([0x80, 0x8000, 0x80000000 | 0]);
export const SIZE_BITS = new Int32Array([8, 16, 32]);
