/**
 * FP and Advanced SIMD execution (Arm ARM DDI 0487, C4.1.95 "Data
 * Processing -- Scalar Floating-Point and Advanced SIMD" and the FP/SIMD
 * rows of C4.1.88 "Loads and Stores"). The decoder marks these words
 * `Op.Simd`/`Op.SimdMemory` and keeps the raw word; the fields are read
 * here. The register file is one 512-byte buffer (V0..V31, 16 bytes each,
 * lanes little-endian as in the architecture), viewed as bytes, halfwords
 * and words, so lanes are typed-array elements and nothing allocates.
 *
 * What is implemented is what Linux and Debian's arm64 userland (glibc's
 * string and memory routines, compiler-generated scalar FP) use; the rest
 * of the space raises UNDEFINED, matching the ID registers.
 */
import type { Arm64Cpu } from "./cpu";
import { Rounding, recipEstimate, recipSqrtEstimate } from "./fp";

/** FPSR.QC: cumulative saturation (Arm ARM D19.2 FPSR). */
const QC = 1 << 27;
const TWO_POW_32 = 4294967296;

// One 16-byte scratch vector for results that read their own destination.
const scratch = new ArrayBuffer(16);
const s8 = new Uint8Array(scratch);
const s16 = new Uint16Array(scratch);
const s32 = new Int32Array(scratch);

// ---- lanes ----

/** Unsigned element `e` of size 1 << size bytes (size 0..2) of register `reg`. */
function lane(cpu: Arm64Cpu, reg: number, e: number, size: number): number {
  if (size === 0) return cpu.v8[reg * 16 + e];
  if (size === 1) return cpu.v16[reg * 8 + e];
  return cpu.v32[reg * 4 + e] >>> 0;
}

function signedLane(cpu: Arm64Cpu, reg: number, e: number, size: number): number {
  if (size === 0) return (cpu.v8[reg * 16 + e] << 24) >> 24;
  if (size === 1) return (cpu.v16[reg * 8 + e] << 16) >> 16;
  return cpu.v32[reg * 4 + e];
}

/** Element `e` of `reg`: zero-extended when `u` (the encoding's U bit) is 1, sign-extended when 0. */
function element(cpu: Arm64Cpu, reg: number, e: number, size: number, u: number): number {
  return u ? lane(cpu, reg, e, size) : signedLane(cpu, reg, e, size);
}

function setScratch(e: number, size: number, value: number): void {
  if (size === 0) s8[e] = value;
  else if (size === 1) s16[e] = value;
  else s32[e] = value;
}

/**
 * Scratch element `e` of the doubled size (size + 1) = the integer `value`;
 * a 64-bit element (size 2) takes it modulo 2^64, exact for |value| < 2^53.
 */
function setScratchWide(e: number, size: number, value: number): void {
  if (size === 2) {
    const low = ((value % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
    s32[e * 2] = low | 0;
    s32[e * 2 + 1] = Math.floor((value - low) / TWO_POW_32) | 0;
  } else setScratch(e, size + 1, value);
}

/** Copies the scratch vector to Vd: 16 bytes, or 8 with the upper half zeroed (Q = 0). */
function writeScratch(cpu: Arm64Cpu, rd: number, q: number): void {
  const v = cpu.v32;
  v[rd * 4] = s32[0];
  v[rd * 4 + 1] = s32[1];
  v[rd * 4 + 2] = q ? s32[2] : 0;
  v[rd * 4 + 3] = q ? s32[3] : 0;
}

function clearScratch(): void {
  s32[0] = s32[1] = s32[2] = s32[3] = 0;
}

/** Writes a scalar (S or D register, or any low part) and zeroes the rest of the 128 bits. */
function setScalar(cpu: Arm64Cpu, rd: number, low: number, high: number): void {
  const v = cpu.v32;
  v[rd * 4] = low;
  v[rd * 4 + 1] = high;
  v[rd * 4 + 2] = 0;
  v[rd * 4 + 3] = 0;
}

function saturate(cpu: Arm64Cpu, value: number, min: number, max: number): number {
  if (value > max) {
    cpu.fpu.flags |= QC;
    return max;
  }
  if (value < min) {
    cpu.fpu.flags |= QC;
    return min;
  }
  return value;
}

/** The bounds of an element of 8 << size bits (size 0..3), for SignedSatQ/UnsignedSatQ. */
const SIGNED_MIN = Float64Array.of(-(2 ** 7), -(2 ** 15), -(2 ** 31), -(2 ** 63));
const SIGNED_MAX = Float64Array.of(2 ** 7 - 1, 2 ** 15 - 1, 2 ** 31 - 1, 2 ** 63 - 1);
const UNSIGNED_MAX = Float64Array.of(2 ** 8 - 1, 2 ** 16 - 1, 2 ** 32 - 1, 2 ** 64 - 1);

/**
 * SatQ (Arm ARM J1 UnsignedSatQ/SignedSatQ): `value` clamped to an element
 * of 8 << size bits, unsigned when `u` (the encoding's U bit) is 1; QC on clamping.
 */
function saturateTo(cpu: Arm64Cpu, value: number, size: number, u: number): number {
  return u
    ? saturate(cpu, value, 0, UNSIGNED_MAX[size])
    : saturate(cpu, value, SIGNED_MIN[size], SIGNED_MAX[size]);
}

function count8(value: number): number {
  value -= (value >>> 1) & 0x55;
  value = (value & 0x33) + ((value >>> 2) & 0x33);
  return (value + (value >>> 4)) & 0x0f;
}

// ---- loads and stores (C4.1.88 with V = 1) ----

let addressLow = 0;
let addressHigh = 0;

function setAddress(
  baseLow: number,
  baseHigh: number,
  offsetLow: number,
  offsetHigh: number,
): void {
  const sum = (baseLow >>> 0) + (offsetLow >>> 0);
  addressLow = sum | 0;
  addressHigh = (baseHigh + offsetHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
}

/** Loads 1 << sizeLog bytes (up to 16) at the address into V[reg] from byte `at`. */
function loadVector(
  cpu: Arm64Cpu,
  low: number,
  high: number,
  sizeLog: number,
  reg: number,
  at: number,
): void {
  const base = reg * 16 + at;
  if (sizeLog === 4) {
    cpu.load(low, high, 3, false);
    const firstLow = cpu.valueLow;
    const firstHigh = cpu.valueHigh;
    const next = (low >>> 0) + 8;
    cpu.load(next | 0, next > 0xffffffff ? (high + 1) | 0 : high, 3, false);
    const v = cpu.v32;
    v[reg * 4] = firstLow;
    v[reg * 4 + 1] = firstHigh;
    v[reg * 4 + 2] = cpu.valueLow;
    v[reg * 4 + 3] = cpu.valueHigh;
    return;
  }
  cpu.load(low, high, sizeLog, false);
  const v8 = cpu.v8;
  const value = cpu.valueLow;
  v8[base] = value;
  if (sizeLog >= 1) v8[base + 1] = value >>> 8;
  if (sizeLog >= 2) {
    v8[base + 2] = value >>> 16;
    v8[base + 3] = value >>> 24;
  }
  if (sizeLog === 3) {
    const h = cpu.valueHigh;
    v8[base + 4] = h;
    v8[base + 5] = h >>> 8;
    v8[base + 6] = h >>> 16;
    v8[base + 7] = h >>> 24;
  }
}

function bytesAt(cpu: Arm64Cpu, base: number): number {
  const v8 = cpu.v8;
  return v8[base] | (v8[base + 1] << 8) | (v8[base + 2] << 16) | (v8[base + 3] << 24);
}

/** Stores 1 << sizeLog bytes (up to 16) of V[reg] from byte `at`. */
function storeVector(
  cpu: Arm64Cpu,
  low: number,
  high: number,
  sizeLog: number,
  reg: number,
  at: number,
): void {
  const base = reg * 16 + at;
  const v8 = cpu.v8;
  if (sizeLog === 4) {
    // Check the second half's translation first so a fault leaves memory untouched.
    const next = (low >>> 0) + 8;
    const nextHigh = next > 0xffffffff ? (high + 1) | 0 : high;
    const end = (low >>> 0) + 15;
    cpu.dataAddress(end | 0, end > 0xffffffff ? (high + 1) | 0 : high, true, false);
    cpu.store(low, high, 3, bytesAt(cpu, base), bytesAt(cpu, base + 4), false);
    cpu.store(next | 0, nextHigh, 3, bytesAt(cpu, base + 8), bytesAt(cpu, base + 12), false);
    return;
  }
  if (sizeLog === 3) cpu.store(low, high, 3, bytesAt(cpu, base), bytesAt(cpu, base + 4), false);
  else if (sizeLog === 2) cpu.store(low, high, 2, bytesAt(cpu, base), 0, false);
  else if (sizeLog === 1) cpu.store(low, high, 1, v8[base] | (v8[base + 1] << 8), 0, false);
  else cpu.store(low, high, 0, v8[base], 0, false);
}

function zeroVector(cpu: Arm64Cpu, reg: number): void {
  const v = cpu.v32;
  v[reg * 4] = v[reg * 4 + 1] = v[reg * 4 + 2] = v[reg * 4 + 3] = 0;
}

function signExtend(value: number, bits: number): number {
  const shift = 32 - bits;
  return (value << shift) >> shift;
}

/** Register slot of Rn as a base: 31 is SP (slot 32). */
function baseSlot(n: number): number {
  return n === 31 ? 32 : n;
}

/** Executes an FP/SIMD load or store; false when the encoding is not implemented. */
export function executeSimdMemory(cpu: Arm64Cpu, word: number): boolean {
  const x = cpu.x;
  const rt = word & 31;
  const rn = baseSlot((word >>> 5) & 31);
  if ((word & 0x3b000000) === 0x18000000) {
    // LDR (literal, SIMD&FP): opc 0 S, 1 D, 2 Q.
    const opc = word >>> 30;
    if (opc === 3) return false;
    cpu.checkFpEnabled();
    cpu.branchRelative(signExtend((word >>> 5) & 0x7ffff, 19) * 4, (word >>> 23) & 1 ? -1 : 0);
    const low = cpu.nextLow;
    const high = cpu.nextHigh;
    cpu.nextLow = (cpu.pcLow + 4) | 0;
    cpu.nextHigh = cpu.nextLow === 0 ? (cpu.pcHigh + 1) | 0 : cpu.pcHigh;
    const sizeLog = opc + 2;
    loadVector(cpu, low, high, sizeLog, 32, 0);
    copyLoaded(cpu, rt, sizeLog);
    return true;
  }
  if ((word & 0x3a000000) === 0x28000000) return pairSimd(cpu, word, rt, rn);
  if ((word & 0x3b000000) === 0x39000000 || (word & 0x3b000000) === 0x38000000) {
    const size = word >>> 30;
    const opc = (word >>> 22) & 3;
    const sizeLog = size | ((opc >>> 1) << 2);
    if (sizeLog > 4) return false;
    const load = (opc & 1) === 1;
    const baseLow = x[rn * 2];
    const baseHigh = x[rn * 2 + 1];
    let writeBack = false;
    let post = false;
    if ((word >>> 24) & 1) {
      setAddress(baseLow, baseHigh, ((word >>> 10) & 0xfff) << sizeLog, 0);
    } else if ((word >>> 21) & 1) {
      // Register offset: option and S (C4.1.88.13).
      if (((word >>> 10) & 3) !== 2) return false;
      const option = (word >>> 13) & 7;
      if ((option & 2) === 0) return false;
      const rm = (word >>> 16) & 31;
      const amount = (word >>> 12) & 1 ? sizeLog : 0;
      let low = rm === 31 ? 0 : x[rm * 2];
      let high = rm === 31 ? 0 : x[rm * 2 + 1];
      if (option === 2) high = 0;
      else if (option === 6) high = low >> 31;
      if (amount !== 0) {
        high = (high << amount) | (low >>> (32 - amount));
        low <<= amount;
      }
      setAddress(baseLow, baseHigh, low, high);
    } else {
      const kind = (word >>> 10) & 3;
      if (kind === 2) return false; // no unprivileged SIMD&FP forms
      const offset = signExtend((word >>> 12) & 0x1ff, 9);
      setAddress(baseLow, baseHigh, offset, offset < 0 ? -1 : 0);
      writeBack = kind !== 0;
      post = kind === 1;
    }
    const newLow = addressLow;
    const newHigh = addressHigh;
    const low = post ? baseLow : newLow;
    const high = post ? baseHigh : newHigh;
    cpu.checkFpEnabled();
    if (load) {
      loadVector(cpu, low, high, sizeLog, 32, 0);
      copyLoaded(cpu, rt, sizeLog);
    } else storeVector(cpu, low, high, sizeLog, rt, 0);
    if (writeBack) {
      x[rn * 2] = newLow;
      x[rn * 2 + 1] = newHigh;
    }
    return true;
  }
  if ((word & 0xbf800000) === 0x0c000000 || (word & 0xbf800000) === 0x0c800000)
    return structuresMultiple(cpu, word, rt, rn);
  if ((word & 0xbf800000) === 0x0d000000 || (word & 0xbf800000) === 0x0d800000)
    return structureSingle(cpu, word, rt, rn);
  return false;
}

/** Moves a value loaded into the scratch register V32 to Vt, zero-extended to 128 bits. */
function copyLoaded(cpu: Arm64Cpu, rt: number, sizeLog: number): void {
  const v = cpu.v32;
  const bytes = 1 << sizeLog;
  if (sizeLog >= 2) {
    v[rt * 4] = v[128];
    v[rt * 4 + 1] = bytes >= 8 ? v[129] : 0;
    v[rt * 4 + 2] = bytes === 16 ? v[130] : 0;
    v[rt * 4 + 3] = bytes === 16 ? v[131] : 0;
    return;
  }
  v[rt * 4] = sizeLog === 0 ? cpu.v8[512] : cpu.v16[256];
  v[rt * 4 + 1] = v[rt * 4 + 2] = v[rt * 4 + 3] = 0;
}

function pairSimd(cpu: Arm64Cpu, word: number, rt: number, rn: number): boolean {
  const x = cpu.x;
  const opc = word >>> 30;
  if (opc === 3) return false;
  const sizeLog = opc + 2;
  const mode = (word >>> 23) & 3;
  const load = (word >>> 22) & 1;
  const rt2 = (word >>> 10) & 31;
  const offset = signExtend((word >>> 15) & 0x7f, 7) * (1 << sizeLog);
  const baseLow = x[rn * 2];
  const baseHigh = x[rn * 2 + 1];
  setAddress(baseLow, baseHigh, offset, offset < 0 ? -1 : 0);
  const newLow = addressLow;
  const newHigh = addressHigh;
  const low = mode === 1 ? baseLow : newLow;
  const high = mode === 1 ? baseHigh : newHigh;
  cpu.checkFpEnabled();
  const size = 1 << sizeLog;
  const second = (low >>> 0) + size;
  const secondLow = second | 0;
  const secondHigh = second > 0xffffffff ? (high + 1) | 0 : high;
  if (load) {
    // Both into scratch registers first: a fault on the second leaves Vt unchanged.
    loadVector(cpu, low, high, sizeLog, 32, 0);
    loadVector(cpu, secondLow, secondHigh, sizeLog, 33, 0);
    copyLoaded(cpu, rt, sizeLog);
    const v = cpu.v32;
    v[128] = v[132];
    v[129] = v[133];
    v[130] = v[134];
    v[131] = v[135];
    copyLoaded(cpu, rt2, sizeLog);
  } else {
    storeVector(cpu, low, high, sizeLog, rt, 0);
    storeVector(cpu, secondLow, secondHigh, sizeLog, rt2, 0);
  }
  if (mode === 1 || mode === 3) {
    x[rn * 2] = newLow;
    x[rn * 2 + 1] = newHigh;
  }
  return true;
}

/** LD1-LD4/ST1-ST4 (multiple structures), C4.1.88.1-2, pseudocode LDST_MULT. */
function structuresMultiple(cpu: Arm64Cpu, word: number, rt: number, rn: number): boolean {
  const x = cpu.x;
  const q = (word >>> 30) & 1;
  const post = (word >>> 23) & 1;
  const load = (word >>> 22) & 1;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 12) & 15;
  const size = (word >>> 10) & 3;
  if (!post && rm !== 0) return false;
  let rpt: number;
  let selem: number;
  switch (opcode) {
    case 0:
      rpt = 1;
      selem = 4;
      break;
    case 2:
      rpt = 4;
      selem = 1;
      break;
    case 4:
      rpt = 1;
      selem = 3;
      break;
    case 6:
      rpt = 3;
      selem = 1;
      break;
    case 7:
      rpt = 1;
      selem = 1;
      break;
    case 8:
      rpt = 1;
      selem = 2;
      break;
    case 10:
      rpt = 2;
      selem = 1;
      break;
    default:
      return false;
  }
  if (size === 3 && q === 0 && selem !== 1) return false;
  cpu.checkFpEnabled();
  const baseLow = x[rn * 2];
  const baseHigh = x[rn * 2 + 1];
  const datasize = q ? 16 : 8;
  const ebytes = 1 << size;
  const elements = datasize / ebytes;
  let offset = 0;
  if (selem === 1) {
    // Consecutive registers, contiguous memory: whole 8-byte chunks regardless of the element size.
    for (let r = 0; r < rpt; r++) {
      const reg = (rt + r) % 32;
      for (let chunk = 0; chunk < datasize; chunk += 8) {
        setAddress(baseLow, baseHigh, offset, 0);
        if (load) loadVector(cpu, addressLow, addressHigh, 3, reg, chunk);
        else storeVector(cpu, addressLow, addressHigh, 3, reg, chunk);
        offset += 8;
      }
      if (load && !q) cpu.v32[reg * 4 + 2] = cpu.v32[reg * 4 + 3] = 0;
    }
  } else {
    for (let e = 0; e < elements; e++) {
      for (let s = 0; s < selem; s++) {
        const reg = (rt + s) % 32;
        setAddress(baseLow, baseHigh, offset, 0);
        if (load) loadVector(cpu, addressLow, addressHigh, size, reg, e * ebytes);
        else storeVector(cpu, addressLow, addressHigh, size, reg, e * ebytes);
        offset += ebytes;
      }
    }
    if (load && !q)
      for (let s = 0; s < selem; s++)
        cpu.v32[((rt + s) % 32) * 4 + 2] = cpu.v32[((rt + s) % 32) * 4 + 3] = 0;
  }
  if (post) postIndex(cpu, rn, rm, offset);
  return true;
}

function postIndex(cpu: Arm64Cpu, rn: number, rm: number, immediate: number): void {
  const x = cpu.x;
  if (rm === 31) setAddress(x[rn * 2], x[rn * 2 + 1], immediate, 0);
  else setAddress(x[rn * 2], x[rn * 2 + 1], x[rm * 2], x[rm * 2 + 1]);
  x[rn * 2] = addressLow;
  x[rn * 2 + 1] = addressHigh;
}

/** LD1-LD4/ST1-ST4 (single structure) and LD1R-LD4R, C4.1.88.3-4, pseudocode LDST_SINGLE. */
function structureSingle(cpu: Arm64Cpu, word: number, rt: number, rn: number): boolean {
  const x = cpu.x;
  const q = (word >>> 30) & 1;
  const post = (word >>> 23) & 1;
  const load = (word >>> 22) & 1;
  const r = (word >>> 21) & 1;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 13) & 7;
  const s = (word >>> 12) & 1;
  const size = (word >>> 10) & 3;
  if (!post && rm !== 0) return false;
  const selem = (((opcode & 1) << 1) | r) + 1;
  let scale = opcode >>> 1;
  let index = 0;
  let replicate = false;
  switch (scale) {
    case 3:
      if (!load || s !== 0) return false;
      scale = size;
      replicate = true;
      break;
    case 0:
      index = (q << 3) | (s << 2) | size;
      break;
    case 1:
      if ((size & 1) !== 0) return false;
      index = (q << 2) | (s << 1) | (size >>> 1);
      break;
    default:
      if ((size & 2) !== 0) return false;
      if ((size & 1) === 0) index = (q << 1) | s;
      else {
        if (s !== 0) return false;
        index = q;
        scale = 3;
      }
  }
  cpu.checkFpEnabled();
  const baseLow = x[rn * 2];
  const baseHigh = x[rn * 2 + 1];
  const ebytes = 1 << scale;
  let offset = 0;
  for (let e = 0; e < selem; e++) {
    const reg = (rt + e) % 32;
    setAddress(baseLow, baseHigh, offset, 0);
    if (replicate) {
      loadVector(cpu, addressLow, addressHigh, scale, 32, 0);
      const elements = (q ? 16 : 8) / ebytes;
      const v8 = cpu.v8;
      for (let i = 0; i < elements; i++)
        for (let b = 0; b < ebytes; b++) v8[reg * 16 + i * ebytes + b] = v8[512 + b];
      if (!q) cpu.v32[reg * 4 + 2] = cpu.v32[reg * 4 + 3] = 0;
    } else if (load) loadVector(cpu, addressLow, addressHigh, scale, reg, index * ebytes);
    else storeVector(cpu, addressLow, addressHigh, scale, reg, index * ebytes);
    offset += ebytes;
  }
  if (post) postIndex(cpu, rn, rm, offset);
  return true;
}

// ---- data processing (C4.1.95) ----

/** Executes an FP/SIMD data-processing word; false when the encoding is not implemented. */
export function executeSimd(cpu: Arm64Cpu, word: number): boolean {
  if ((word & 0x5f000000) === 0x1e000000) {
    if ((word & 0x7f20fc00) === 0x1e200000) return floatInteger(cpu, word);
    if ((word & 0x7f200000) === 0x1e000000) return floatFixed(cpu, word);
    if (word >>> 31 !== 0 || ((word >>> 29) & 1) !== 0) return false;
    if ((word & 0xff207c00) === 0x1e204000) return floatOneSource(cpu, word);
    if ((word & 0xff203c00) === 0x1e202000) return floatCompare(cpu, word);
    if ((word & 0xff201c00) === 0x1e201000) return floatImmediate(cpu, word);
    if ((word & 0xff200c00) === 0x1e200400) return floatConditionalCompare(cpu, word);
    if ((word & 0xff200c00) === 0x1e200800) return floatTwoSource(cpu, word);
    if ((word & 0xff200c00) === 0x1e200c00) return floatSelect(cpu, word);
    return false;
  }
  if ((word & 0xff000000) === 0x1f000000) return floatThreeSource(cpu, word);
  if ((word & 0x9f200400) === 0x0e200400) return threeSame(cpu, word, false);
  if ((word & 0x9f3e0c00) === 0x0e200800) return twoRegisterMisc(cpu, word, false);
  if ((word & 0x9f3e0c00) === 0x0e300800) return acrossLanes(cpu, word);
  if ((word & 0x9f200c00) === 0x0e200000) return threeDifferent(cpu, word);
  if ((word & 0x9fe08400) === 0x0e000400) return copy(cpu, word);
  if ((word & 0x9ff80400) === 0x0f000400) return modifiedImmediate(cpu, word);
  if ((word & 0x9f800400) === 0x0f000400) return shiftImmediate(cpu, word, false);
  if ((word & 0x9f000400) === 0x0f000000) return byElement(cpu, word, false);
  if ((word & 0xdf000400) === 0x5f000000) return byElement(cpu, word, true);
  if ((word & 0xbfe08400) === 0x2e000000) return extract(cpu, word);
  if ((word & 0xbfe08c00) === 0x0e000000) return tableLookup(cpu, word);
  if ((word & 0xbf208c00) === 0x0e000800) return permute(cpu, word);
  if ((word & 0xdf200400) === 0x5e200400) return threeSame(cpu, word, true);
  if ((word & 0xdf3e0c00) === 0x5e200800) return twoRegisterMisc(cpu, word, true);
  if ((word & 0xdf3e0c00) === 0x5e300800) return scalarPairwise(cpu, word);
  if ((word & 0xffe0fc00) === 0x5e000400) return scalarDuplicate(cpu, word);
  if ((word & 0xdf800400) === 0x5f000400) return shiftImmediate(cpu, word, true);
  return false;
}

// ---- scalar floating point ----

/** Format of ptype (bits 23:22): 0 single, 1 double; -1 for half and reserved (not implemented). */
function floatType(word: number): number {
  const ptype = (word >>> 22) & 3;
  return ptype <= 1 ? ptype : -1;
}

function writeFloat(cpu: Arm64Cpu, rd: number, double: number): void {
  const fpu = cpu.fpu;
  setScalar(cpu, rd, fpu.resultLow, double ? fpu.resultHigh : 0);
}

function floatOneSource(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  const opcode = (word >>> 15) & 0x3f;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const v = cpu.v32;
  if (((word >>> 22) & 3) === 3 && (opcode === 4 || opcode === 5)) {
    // FCVT Sd/Dd, Hn: half-precision conversions are part of base FP (ID_AA64PFR0_EL1.FP = 0b0000).
    cpu.checkFpEnabled();
    cpu.fpu.convertFromHalf(opcode - 4, v[rn * 4] & 0xffff);
    writeFloat(cpu, rd, opcode - 4);
    return true;
  }
  if (double < 0) return false;
  const fpu = cpu.fpu;
  const low = v[rn * 4];
  const high = double ? v[rn * 4 + 1] : 0;
  const signBit = double ? 0 : 0x80000000 | 0;
  const signHigh = double ? 0x80000000 | 0 : 0;
  switch (opcode) {
    case 0: // FMOV (register)
      cpu.checkFpEnabled();
      setScalar(cpu, rd, low, high);
      return true;
    case 1: // FABS: no NaN processing, no flags
      cpu.checkFpEnabled();
      setScalar(cpu, rd, low & ~signBit, high & ~signHigh);
      return true;
    case 2: // FNEG
      cpu.checkFpEnabled();
      setScalar(cpu, rd, low ^ signBit, high ^ signHigh);
      return true;
    case 3:
      cpu.checkFpEnabled();
      fpu.squareRoot(double, low, high);
      writeFloat(cpu, rd, double);
      return true;
    case 4:
    case 5: {
      const target = opcode - 4;
      if (target === double) return false;
      cpu.checkFpEnabled();
      fpu.convert(target, low, high);
      writeFloat(cpu, rd, target);
      return true;
    }
    case 7:
      // FCVT Hd, Sn/Dn.
      cpu.checkFpEnabled();
      fpu.convertToHalf(double, low, high);
      setScalar(cpu, rd, fpu.resultLow & 0xffff, 0);
      return true;
    case 8:
    case 9:
    case 10:
    case 11:
    case 12:
    case 14:
    case 15: {
      cpu.checkFpEnabled();
      // FRINTN/P/M/Z/A/X/I (Arm ARM C7.2 FRINT*): X and I use FPCR's mode; only X signals inexact.
      const mode = opcode === 12 ? Rounding.TiesAway : opcode >= 14 ? fpu.rounding() : opcode - 8;
      fpu.roundToIntegral(double, low, high, mode, opcode === 14);
      writeFloat(cpu, rd, double);
      return true;
    }
    default:
      return false;
  }
}

function floatTwoSource(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  const opcode = (word >>> 12) & 15;
  if (double < 0 || opcode > 8) return false;
  cpu.checkFpEnabled();
  const rm = (word >>> 16) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const v = cpu.v32;
  const aLow = v[rn * 4];
  const aHigh = double ? v[rn * 4 + 1] : 0;
  const bLow = v[rm * 4];
  const bHigh = double ? v[rm * 4 + 1] : 0;
  floatBinary(cpu, double, opcode, aLow, aHigh, bLow, bHigh);
  writeFloat(cpu, rd, double);
  return true;
}

/** The FP two-source operations by opcode (0 FMUL ... 8 FNMUL), result in fpu.result*. */
function floatBinary(
  cpu: Arm64Cpu,
  double: number,
  opcode: number,
  aLow: number,
  aHigh: number,
  bLow: number,
  bHigh: number,
): void {
  const fpu = cpu.fpu;
  switch (opcode) {
    case 0:
      fpu.multiply(double, aLow, aHigh, bLow, bHigh);
      return;
    case 1:
      fpu.divide(double, aLow, aHigh, bLow, bHigh);
      return;
    case 2:
      fpu.add(double, aLow, aHigh, bLow, bHigh, false);
      return;
    case 3:
      fpu.add(double, aLow, aHigh, bLow, bHigh, true);
      return;
    case 4:
    case 5:
    case 6:
    case 7:
      fpu.minMax(
        double,
        opcode === 4 ? 0 : opcode === 5 ? 1 : opcode === 6 ? 2 : 3,
        aLow,
        aHigh,
        bLow,
        bHigh,
      );
      return;
    default:
      // FNMUL: FPNeg(FPMul), the NaN result's sign flipped too.
      fpu.multiply(double, aLow, aHigh, bLow, bHigh);
      if (double) fpu.resultHigh ^= 0x80000000;
      else fpu.resultLow ^= 0x80000000;
  }
}

function floatThreeSource(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  if (double < 0) return false;
  cpu.checkFpEnabled();
  const o1 = (word >>> 21) & 1;
  const o0 = (word >>> 15) & 1;
  const rm = (word >>> 16) & 31;
  const ra = (word >>> 10) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const v = cpu.v32;
  const sign = double ? 0 : 0x80000000 | 0;
  const signHigh = double ? 0x80000000 | 0 : 0;
  // FMADD a+n*m, FMSUB a-n*m, FNMADD -a-n*m, FNMSUB -a+n*m: FPNeg on the operands first (C7.2 FMSUB etc.).
  const negateProduct = o0 !== o1;
  const negateAddend = o1 === 1;
  let nLow = v[rn * 4];
  let nHigh = double ? v[rn * 4 + 1] : 0;
  let aLow = v[ra * 4];
  let aHigh = double ? v[ra * 4 + 1] : 0;
  if (negateProduct) {
    nLow ^= sign;
    nHigh ^= signHigh;
  }
  if (negateAddend) {
    aLow ^= sign;
    aHigh ^= signHigh;
  }
  cpu.fpu.multiplyAdd(double, aLow, aHigh, nLow, nHigh, v[rm * 4], double ? v[rm * 4 + 1] : 0);
  writeFloat(cpu, rd, double);
  return true;
}

function floatCompare(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  const op = (word >>> 14) & 3;
  const opcode2 = word & 31;
  if (double < 0 || op !== 0 || (opcode2 & 7) !== 0) return false;
  cpu.checkFpEnabled();
  const rm = (word >>> 16) & 31;
  const rn = (word >>> 5) & 31;
  const withZero = (opcode2 & 8) !== 0;
  const v = cpu.v32;
  const bLow = withZero ? 0 : v[rm * 4];
  const bHigh = withZero || !double ? 0 : v[rm * 4 + 1];
  cpu.fpu.compare(double, v[rn * 4], double ? v[rn * 4 + 1] : 0, bLow, bHigh, (opcode2 & 16) !== 0);
  cpu.nzcv = cpu.fpu.nzcv << 28;
  return true;
}

function floatConditionalCompare(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  if (double < 0) return false;
  cpu.checkFpEnabled();
  const rm = (word >>> 16) & 31;
  const rn = (word >>> 5) & 31;
  const cond = (word >>> 12) & 15;
  if (!cpu.conditionHolds(cond)) {
    cpu.nzcv = (word & 15) << 28;
    return true;
  }
  const v = cpu.v32;
  cpu.fpu.compare(
    double,
    v[rn * 4],
    double ? v[rn * 4 + 1] : 0,
    v[rm * 4],
    double ? v[rm * 4 + 1] : 0,
    ((word >>> 4) & 1) !== 0,
  );
  cpu.nzcv = cpu.fpu.nzcv << 28;
  return true;
}

function floatSelect(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  if (double < 0) return false;
  cpu.checkFpEnabled();
  const rm = (word >>> 16) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const source = cpu.conditionHolds((word >>> 12) & 15) ? rn : rm;
  const v = cpu.v32;
  setScalar(cpu, rd, v[source * 4], double ? v[source * 4 + 1] : 0);
  return true;
}

/** VFPExpandImm (Arm ARM shared pseudocode): imm8 to a binary32 or binary64 bit pattern. */
function expandFloatImmediate(imm8: number, double: number): void {
  const sign = imm8 >>> 7;
  const b6 = (imm8 >>> 6) & 1;
  const low6 = imm8 & 0x3f;
  if (double) {
    // sign : NOT(b6) : b6 x 8 : imm8<5:0> : zeros(48)
    floatLow = 0;
    floatHigh = (sign << 31) | ((b6 ^ 1) << 30) | ((b6 ? 0xff : 0) << 22) | (low6 << 16);
  } else {
    floatLow = (sign << 31) | ((b6 ^ 1) << 30) | ((b6 ? 0x1f : 0) << 25) | (low6 << 19);
    floatHigh = 0;
  }
}
let floatLow = 0;
let floatHigh = 0;

function floatImmediate(cpu: Arm64Cpu, word: number): boolean {
  const double = floatType(word);
  if (double < 0 || ((word >>> 5) & 31) !== 0) return false;
  cpu.checkFpEnabled();
  expandFloatImmediate((word >>> 13) & 0xff, double);
  setScalar(cpu, word & 31, floatLow, floatHigh);
  return true;
}

/** Rounding of FCVT{N,P,M,Z}{S,U} by rmode, and A for FCVTA*. */
function conversionRounding(rmode: number): number {
  return rmode === 0
    ? Rounding.TiesEven
    : rmode === 1
      ? Rounding.PlusInfinity
      : rmode === 2
        ? Rounding.MinusInfinity
        : Rounding.Zero;
}

function floatInteger(cpu: Arm64Cpu, word: number): boolean {
  const sf = word >>> 31;
  const ptype = (word >>> 22) & 3;
  const rmode = (word >>> 19) & 3;
  const opcode = (word >>> 16) & 7;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const x = cpu.x;
  const v = cpu.v32;
  const fpu = cpu.fpu;
  if (opcode >= 6) {
    // FMOV between general and FP registers (C7.2 FMOV (general)).
    const toGeneral = opcode === 6;
    if (rmode === 1) {
      if (!sf || ptype !== 2) return false;
      cpu.checkFpEnabled();
      if (toGeneral) {
        x[rd * 2] = v[rn * 4 + 2];
        x[rd * 2 + 1] = v[rn * 4 + 3];
      } else {
        v[rd * 4 + 2] = rn === 31 ? 0 : x[rn * 2];
        v[rd * 4 + 3] = rn === 31 ? 0 : x[rn * 2 + 1];
      }
      return true;
    }
    if (rmode !== 0 || ptype !== sf) return false;
    cpu.checkFpEnabled();
    if (toGeneral) {
      if (rd === 31) return true;
      x[rd * 2] = v[rn * 4];
      x[rd * 2 + 1] = sf ? v[rn * 4 + 1] : 0;
    } else {
      setScalar(cpu, rd, rn === 31 ? 0 : x[rn * 2], rn === 31 || !sf ? 0 : x[rn * 2 + 1]);
    }
    return true;
  }
  if (ptype > 1) return false;
  const double = ptype;
  if (opcode === 2 || opcode === 3) {
    if (rmode !== 0) return false;
    cpu.checkFpEnabled();
    fpu.fromInteger(
      double,
      rn === 31 ? 0 : x[rn * 2],
      rn === 31 ? 0 : x[rn * 2 + 1],
      0,
      sf ? 64 : 32,
      opcode === 3,
    );
    writeFloat(cpu, rd, double);
    return true;
  }
  if (opcode >= 4 && rmode !== 0) return false;
  cpu.checkFpEnabled();
  const mode = opcode >= 4 ? Rounding.TiesAway : conversionRounding(rmode);
  fpu.toInteger(
    double,
    v[rn * 4],
    double ? v[rn * 4 + 1] : 0,
    0,
    mode,
    sf ? 64 : 32,
    (opcode & 1) === 1,
  );
  if (rd !== 31) {
    x[rd * 2] = fpu.resultLow;
    x[rd * 2 + 1] = sf ? fpu.resultHigh : 0;
  }
  return true;
}

function floatFixed(cpu: Arm64Cpu, word: number): boolean {
  const sf = word >>> 31;
  const ptype = (word >>> 22) & 3;
  const rmode = (word >>> 19) & 3;
  const opcode = (word >>> 16) & 7;
  const scale = (word >>> 10) & 0x3f;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (ptype > 1 || (!sf && scale < 32)) return false;
  const fractionBits = 64 - scale;
  const x = cpu.x;
  const fpu = cpu.fpu;
  if (rmode === 3 && opcode <= 1) {
    cpu.checkFpEnabled();
    const v = cpu.v32;
    fpu.toInteger(
      ptype,
      v[rn * 4],
      ptype ? v[rn * 4 + 1] : 0,
      fractionBits,
      Rounding.Zero,
      sf ? 64 : 32,
      opcode === 1,
    );
    if (rd !== 31) {
      x[rd * 2] = fpu.resultLow;
      x[rd * 2 + 1] = sf ? fpu.resultHigh : 0;
    }
    return true;
  }
  if (rmode === 0 && (opcode === 2 || opcode === 3)) {
    cpu.checkFpEnabled();
    fpu.fromInteger(
      ptype,
      rn === 31 ? 0 : x[rn * 2],
      rn === 31 ? 0 : x[rn * 2 + 1],
      fractionBits,
      sf ? 64 : 32,
      opcode === 3,
    );
    writeFloat(cpu, rd, ptype);
    return true;
  }
  return false;
}

// ---- Advanced SIMD ----

/** AdvSIMDExpandImm (Arm ARM shared pseudocode) into floatLow/floatHigh (the 64-bit pattern). */
function expandSimdImmediate(op: number, cmode: number, imm8: number): boolean {
  let low: number;
  let high: number;
  switch (cmode >>> 1) {
    case 0:
    case 1:
    case 2:
    case 3:
      low = imm8 << (8 * (cmode >>> 1));
      high = low;
      break;
    case 4:
    case 5: {
      const half = imm8 << (8 * ((cmode >>> 1) & 1));
      low = half | (half << 16);
      high = low;
      break;
    }
    case 6:
      low = (cmode & 1) === 0 ? (imm8 << 8) | 0xff : (imm8 << 16) | 0xffff;
      high = low;
      break;
    default:
      if ((cmode & 1) === 0 && op === 0) {
        low = imm8 | (imm8 << 8) | (imm8 << 16) | (imm8 << 24);
        high = low;
      } else if ((cmode & 1) === 0) {
        // Each bit of imm8 becomes a byte of ones or zeros.
        low = 0;
        high = 0;
        for (let i = 0; i < 4; i++) {
          if ((imm8 >>> i) & 1) low |= 0xff << (8 * i);
          if ((imm8 >>> (i + 4)) & 1) high |= 0xff << (8 * i);
        }
      } else if (op === 0) {
        expandFloatImmediate(imm8, 0);
        low = floatLow;
        high = floatLow;
      } else {
        expandFloatImmediate(imm8, 1);
        low = floatLow;
        high = floatHigh;
      }
  }
  floatLow = low | 0;
  floatHigh = high | 0;
  return true;
}

function modifiedImmediate(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const op = (word >>> 29) & 1;
  const cmode = (word >>> 12) & 15;
  const o2 = (word >>> 11) & 1;
  const rd = word & 31;
  if (o2 !== 0) return false;
  if (cmode === 15 && op === 1 && q === 0) return false;
  const imm8 = (((word >>> 16) & 7) << 5) | ((word >>> 5) & 31);
  expandSimdImmediate(op, cmode, imm8);
  cpu.checkFpEnabled();
  const v = cpu.v32;
  let low = floatLow;
  let high = floatHigh;
  // cmode 0xx1 and 10x1 are ORR (op 0) and BIC (op 1); otherwise MOVI/MVNI/FMOV.
  const logical = (cmode & 1) === 1 && cmode < 12;
  if (logical) {
    for (let i = 0; i < (q ? 4 : 2); i++) {
      const imm = (i & 1) === 0 ? low : high;
      v[rd * 4 + i] = op ? v[rd * 4 + i] & ~imm : v[rd * 4 + i] | imm;
    }
    if (!q) v[rd * 4 + 2] = v[rd * 4 + 3] = 0;
    return true;
  }
  if (op === 1 && cmode < 14) {
    low = ~low;
    high = ~high;
  }
  v[rd * 4] = low;
  v[rd * 4 + 1] = high;
  v[rd * 4 + 2] = q ? low : 0;
  v[rd * 4 + 3] = q ? high : 0;
  return true;
}

function copy(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const op = (word >>> 29) & 1;
  const imm5 = (word >>> 16) & 31;
  const imm4 = (word >>> 11) & 15;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const size = 31 - Math.clz32(imm5 & -imm5);
  if (size > 3) return false;
  const index = imm5 >>> (size + 1);
  const x = cpu.x;
  const v = cpu.v32;
  const v8 = cpu.v8;
  const ebytes = 1 << size;
  if (op === 1) {
    // INS (element): imm4 holds the source index.
    if (!q) return false;
    cpu.checkFpEnabled();
    const from = imm4 >>> size;
    for (let b = 0; b < ebytes; b++) s8[b] = v8[rn * 16 + from * ebytes + b];
    for (let b = 0; b < ebytes; b++) v8[rd * 16 + index * ebytes + b] = s8[b];
    return true;
  }
  switch (imm4) {
    case 0: {
      // DUP (element)
      if (size === 3 && !q) return false;
      cpu.checkFpEnabled();
      for (let b = 0; b < ebytes; b++) s8[b] = v8[rn * 16 + index * ebytes + b];
      for (let i = 0; i < (q ? 16 : 8); i++) v8[rd * 16 + i] = s8[i % ebytes];
      if (!q) v[rd * 4 + 2] = v[rd * 4 + 3] = 0;
      return true;
    }
    case 1: {
      // DUP (general)
      if (size === 3 && !q) return false;
      cpu.checkFpEnabled();
      const low = rn === 31 ? 0 : x[rn * 2];
      const high = rn === 31 ? 0 : x[rn * 2 + 1];
      for (let i = 0; i < (q ? 16 : 8); i++) {
        const b = i % ebytes;
        v8[rd * 16 + i] = b < 4 ? low >>> (8 * b) : high >>> (8 * (b - 4));
      }
      if (!q) v[rd * 4 + 2] = v[rd * 4 + 3] = 0;
      return true;
    }
    case 3: {
      // INS (general)
      if (!q) return false;
      cpu.checkFpEnabled();
      const low = rn === 31 ? 0 : x[rn * 2];
      const high = rn === 31 ? 0 : x[rn * 2 + 1];
      for (let b = 0; b < ebytes; b++)
        v8[rd * 16 + index * ebytes + b] = b < 4 ? low >>> (8 * b) : high >>> (8 * (b - 4));
      return true;
    }
    case 5:
    case 7: {
      // SMOV (5) / UMOV (7): Q selects the 64-bit destination.
      const signed = imm4 === 5;
      // SMOV has no 64-bit element and no W form of a word; UMOV's Q must match a doubleword element.
      if (signed && (size === 3 || (size === 2 && !q))) return false;
      if (!signed && (size === 3) !== (q === 1)) return false;
      cpu.checkFpEnabled();
      if (rd === 31) return true;
      if (size === 3) {
        x[rd * 2] = v[rn * 4 + index * 2];
        x[rd * 2 + 1] = v[rn * 4 + index * 2 + 1];
        return true;
      }
      const value = signed ? signedLane(cpu, rn, index, size) : lane(cpu, rn, index, size);
      x[rd * 2] = value | 0;
      x[rd * 2 + 1] = signed && q ? value >> 31 : 0;
      if (signed && !q) x[rd * 2 + 1] = 0;
      return true;
    }
    default:
      return false;
  }
}

function scalarDuplicate(cpu: Arm64Cpu, word: number): boolean {
  const imm5 = (word >>> 16) & 31;
  const size = 31 - Math.clz32(imm5 & -imm5);
  if (size > 3) return false;
  cpu.checkFpEnabled();
  const index = imm5 >>> (size + 1);
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const ebytes = 1 << size;
  const v8 = cpu.v8;
  for (let b = 0; b < ebytes; b++) s8[b] = v8[rn * 16 + index * ebytes + b];
  zeroVector(cpu, rd);
  for (let b = 0; b < ebytes; b++) v8[rd * 16 + b] = s8[b];
  return true;
}

/** 64-bit lane helpers on halves. */
function compare64(
  aLow: number,
  aHigh: number,
  bLow: number,
  bHigh: number,
  signed: boolean,
): number {
  if (aHigh !== bHigh)
    return signed ? (aHigh < bHigh ? -1 : 1) : aHigh >>> 0 < bHigh >>> 0 ? -1 : 1;
  if (aLow === bLow) return 0;
  return aLow >>> 0 < bLow >>> 0 ? -1 : 1;
}

/**
 * Three-same opcodes with 64-bit lanes, as a bit set by opcode: [SU]QADD,
 * [SU]QSUB, CMGT/CMHI, CMGE/CMHS, [SU]SHL, ADD/SUB, CMTST/CMEQ.
 */
const THREE_SAME_64 =
  (1 << 0b00001) |
  (1 << 0b00101) |
  (1 << 0b00110) |
  (1 << 0b00111) |
  (1 << 0b01000) |
  (1 << 0b10000) |
  (1 << 0b10001);

/** One 64-bit lane of a three-same integer op; false when not implemented. */
function threeSame64(
  cpu: Arm64Cpu,
  u: number,
  opcode: number,
  rn: number,
  rm: number,
  e: number,
): boolean {
  const v = cpu.v32;
  const aLow = v[rn * 4 + e * 2];
  const aHigh = v[rn * 4 + e * 2 + 1];
  const bLow = v[rm * 4 + e * 2];
  const bHigh = v[rm * 4 + e * 2 + 1];
  let low: number;
  let high: number;
  switch (opcode) {
    case 0b10000: {
      if (u) {
        const difference = (aLow >>> 0) - (bLow >>> 0);
        low = difference | 0;
        high = (aHigh - bHigh - (difference < 0 ? 1 : 0)) | 0;
      } else {
        const sum = (aLow >>> 0) + (bLow >>> 0);
        low = sum | 0;
        high = (aHigh + bHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
      }
      break;
    }
    case 0b10001: {
      const result = u ? aLow === bLow && aHigh === bHigh : ((aLow & bLow) | (aHigh & bHigh)) !== 0;
      low = high = result ? -1 : 0;
      break;
    }
    case 0b00110: // CMGT / CMHI
      low = high = compare64(aLow, aHigh, bLow, bHigh, u === 0) > 0 ? -1 : 0;
      break;
    case 0b00111: // CMGE / CMHS
      low = high = compare64(aLow, aHigh, bLow, bHigh, u === 0) >= 0 ? -1 : 0;
      break;
    case 0b00001:
    case 0b00101: {
      // [SU]QADD / [SU]QSUB on halves, saturating with QC (C7.2 SQADD).
      const subtract = opcode === 0b00101;
      const bl = subtract ? ~bLow : bLow;
      const bh = subtract ? ~bHigh : bHigh;
      const sum = (aLow >>> 0) + (bl >>> 0) + (subtract ? 1 : 0);
      const carryOut = (aHigh >>> 0) + (bh >>> 0) + (sum > 0xffffffff ? 1 : 0) > 0xffffffff;
      low = sum | 0;
      high = (aHigh + bh + (sum > 0xffffffff ? 1 : 0)) | 0;
      if (u) {
        // Unsigned: an add saturates on a carry out, a subtract on a borrow (no carry out).
        if (subtract ? !carryOut : carryOut) {
          cpu.fpu.flags |= QC;
          low = high = subtract ? 0 : -1;
        }
      } else if (aHigh >> 31 === bh >> 31 && high >> 31 !== aHigh >> 31) {
        cpu.fpu.flags |= QC;
        low = aHigh < 0 ? 0 : -1;
        high = aHigh < 0 ? 0x80000000 | 0 : 0x7fffffff;
      }
      break;
    }
    case 0b01000: {
      // SSHL/USHL by the signed low byte of Vm.
      const shift = (bLow << 24) >> 24;
      const fill = u ? 0 : aHigh >> 31;
      if (shift >= 64 || shift <= -64) {
        low = high = shift > 0 ? 0 : fill;
      } else if (shift >= 32) {
        high = aLow << (shift - 32);
        low = 0;
      } else if (shift > 0) {
        high = (aHigh << shift) | (aLow >>> (32 - shift));
        low = aLow << shift;
      } else if (shift === 0) {
        low = aLow;
        high = aHigh;
      } else if (shift > -32) {
        low = (aLow >>> -shift) | (aHigh << (32 + shift));
        high = u ? aHigh >>> -shift : aHigh >> -shift;
      } else {
        low = u ? aHigh >>> (-shift - 32) : aHigh >> (-shift - 32);
        high = fill;
      }
      break;
    }
    default:
      return false;
  }
  s32[e * 2] = low;
  s32[e * 2 + 1] = high;
  return true;
}

function threeSame(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 11) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const v = cpu.v32;
  if (opcode >= 0b11000) return floatThreeSame(cpu, word, scalar);
  if (opcode === 0b00011) {
    if (scalar) return false;
    cpu.checkFpEnabled();
    // Bitwise: AND BIC ORR ORN / EOR BSL BIT BIF (C7.2).
    for (let i = 0; i < 4; i++) {
      const a = v[rn * 4 + i];
      const b = v[rm * 4 + i];
      const d = v[rd * 4 + i];
      let r: number;
      switch ((u << 2) | size) {
        case 0:
          r = a & b;
          break;
        case 1:
          r = a & ~b;
          break;
        case 2:
          r = a | b;
          break;
        case 3:
          r = a | ~b;
          break;
        case 4:
          r = a ^ b;
          break;
        case 5:
          r = (d & a) | (~d & b);
          break;
        case 6:
          r = (d & ~b) | (a & b);
          break;
        default:
          r = (d & b) | (a & ~b);
      }
      s32[i] = r;
    }
    writeScratch(cpu, rd, q);
    return true;
  }
  // Scalar saturating forms on one B/H/S element: [SU]QADD, [SU]QSUB, [SU]QSHL, [SU]QRSHL, SQ(R)DMULH.
  const scalarSaturating =
    scalar &&
    size !== 3 &&
    (opcode === 0b00001 ||
      opcode === 0b00101 ||
      opcode === 0b01001 ||
      opcode === 0b01011 ||
      (opcode === 0b10110 && size !== 0));
  if (scalar && !scalarSaturating) {
    // Scalar forms implemented: 64-bit ADD/SUB/CMEQ/CMTST/CMGT/CMHI/CMGE/CMHS.
    if (size !== 3) return false;
    if (((THREE_SAME_64 >>> opcode) & 1) === 0) return false;
    cpu.checkFpEnabled();
    clearScratch();
    threeSame64(cpu, u, opcode, rn, rm, 0);
    writeScratch(cpu, rd, 0);
    return true;
  }
  if (size === 3) {
    if (!q) return false;
    clearScratch();
    if (opcode === 0b10111 && u === 0) {
      // ADDP (vector) 2D: pairs from the concatenation Vm:Vn.
      cpu.checkFpEnabled();
      for (let e = 0; e < 2; e++) {
        const reg = e === 0 ? rn : rm;
        const sum = (v[reg * 4] >>> 0) + (v[reg * 4 + 2] >>> 0);
        s32[e * 2] = sum | 0;
        s32[e * 2 + 1] = (v[reg * 4 + 1] + v[reg * 4 + 3] + (sum > 0xffffffff ? 1 : 0)) | 0;
      }
      writeScratch(cpu, rd, 1);
      return true;
    }
    if (((THREE_SAME_64 >>> opcode) & 1) === 0) return false;
    cpu.checkFpEnabled();
    for (let e = 0; e < 2; e++) threeSame64(cpu, u, opcode, rn, rm, e);
    writeScratch(cpu, rd, 1);
    return true;
  }
  const elements = scalarSaturating ? 1 : (q ? 16 : 8) >>> size;
  const bits = 8 << size;
  const mask = size === 2 ? 0xffffffff : (1 << bits) - 1;
  const pairwise = (opcode >= 0b10100 && opcode <= 0b10101) || opcode === 0b10111;
  if (opcode === 0b10111 && u === 1) return false;
  // SQDMULH/SQRDMULH have halfword and word lanes only.
  if (opcode === 0b10110 && (size === 0 || size === 3)) return false;
  if (
    (opcode === 0b10011 && (u === 1 ? size !== 0 : size === 3)) ||
    (opcode === 0b10010 && size === 3)
  )
    return false;
  // Every opcode left (0b00000-0b10111 but 0b00011, handled above) is allocated.
  cpu.checkFpEnabled();
  clearScratch();
  for (let e = 0; e < elements; e++) {
    let a: number;
    let b: number;
    if (pairwise) {
      const source = e < elements / 2 ? rn : rm;
      const pair = (e % (elements / 2)) * 2;
      a = element(cpu, source, pair, size, u);
      b = element(cpu, source, pair + 1, size, u);
      if (opcode === 0b10111) {
        a = lane(cpu, source, pair, size);
        b = lane(cpu, source, pair + 1, size);
      }
    } else {
      a = element(cpu, rn, e, size, u);
      b = element(cpu, rm, e, size, u);
    }
    let r: number;
    switch (opcode) {
      case 0b00000: // SHADD/UHADD
        r = Math.floor((a + b) / 2);
        break;
      case 0b00010: // SRHADD/URHADD
        r = Math.floor((a + b + 1) / 2);
        break;
      case 0b00100: // SHSUB/UHSUB
        r = Math.floor((a - b) / 2);
        break;
      case 0b00001: // SQADD/UQADD
        r = saturateTo(cpu, a + b, size, u);
        break;
      case 0b00101: // SQSUB/UQSUB
        r = saturateTo(cpu, a - b, size, u);
        break;
      case 0b00110: // CMGT/CMHI
        r = a > b ? -1 : 0;
        break;
      case 0b00111: // CMGE/CMHS
        r = a >= b ? -1 : 0;
        break;
      case 0b01000: {
        // SSHL/USHL: shift by the signed low byte of the Vm lane; negative shifts go right (C7.2 SSHL).
        const shift = (b << 24) >> 24;
        if (shift >= 0) r = shift >= 32 ? 0 : a << shift;
        else if (shift <= -32) r = u || a >= 0 ? 0 : -1;
        else r = u ? a >>> -shift : a >> -shift;
        break;
      }
      case 0b01001:
      case 0b01010:
      case 0b01011: {
        // [SU]QSHL (saturating), [SU]RSHL (rounding), [SU]QRSHL (both), by the signed low byte of Vm.
        const shift = (b << 24) >> 24;
        const saturating = opcode !== 0b01010;
        const rounding = opcode !== 0b01001;
        if (shift >= 0) {
          if (saturating) {
            const wide = a * 2 ** shift;
            r = saturateTo(cpu, wide, size, u);
          } else r = shift >= 32 ? 0 : a << shift;
        } else {
          const right = -shift;
          r = Math.floor((a + (rounding ? 2 ** (right - 1) : 0)) / 2 ** right);
          if (saturating) r = saturateTo(cpu, r, size, u);
        }
        break;
      }
      case 0b10110: {
        // SQDMULH/SQRDMULH: the high half of 2*a*b (+ rounding), saturated (only -2^(n-1) squared overflows).
        // Both are signed; U selects the rounding form.
        r = doublingHigh(
          cpu,
          size,
          signedLane(cpu, rn, e, size),
          signedLane(cpu, rm, e, size),
          u === 1,
        );
        break;
      }
      case 0b01100:
      case 0b10100: // SMAX/UMAX, SMAXP/UMAXP
        r = a > b ? a : b;
        break;
      case 0b01101:
      case 0b10101: // SMIN/UMIN, SMINP/UMINP
        r = a < b ? a : b;
        break;
      case 0b01110: // SABD/UABD
        r = Math.abs(a - b);
        break;
      case 0b01111: // SABA/UABA
        r = Math.abs(a - b) + lane(cpu, rd, e, size);
        break;
      case 0b10000: // ADD/SUB
        r = u ? a - b : a + b;
        break;
      case 0b10001: // CMTST/CMEQ
        r = u ? ((a & mask) === (b & mask) ? -1 : 0) : (a & b & mask) !== 0 ? -1 : 0;
        break;
      case 0b10010: // MLA/MLS
        r = u ? lane(cpu, rd, e, size) - Math.imul(a, b) : lane(cpu, rd, e, size) + Math.imul(a, b);
        break;
      case 0b10011: // MUL / PMUL (bytes)
        if (u) {
          r = 0;
          for (let i = 0; i < 8; i++) if ((b >>> i) & 1) r ^= (a & 0xff) << i;
        } else r = Math.imul(a, b);
        break;
      default: // ADDP
        r = a + b;
    }
    setScratch(e, size, r);
  }
  writeScratch(cpu, rd, q);
  return true;
}

/** FP three-same operations beyond `floatBinary`'s 0-8. */
const FMULX = 9;
const FCMEQ = 10;
const FCMGE = 11;
const FCMGT = 12;
const FACGE = 14;
const FACGT = 15;
const FABD = 16;
const FMLA = 17;
const FMLS = 18;
const FRECPS = 19;
const FRSQRTS = 20;

/**
 * One FP lane operation by code (`floatBinary` codes 0-8, then FMULX,
 * compares, absolute compares, FABD, FMLA/FMLS with `d` the accumulator);
 * the result (or the compare mask) is in fpu.resultLow/resultHigh.
 */
function floatLane(
  cpu: Arm64Cpu,
  double: number,
  operation: number,
  aLow: number,
  aHigh: number,
  bLow: number,
  bHigh: number,
  dLow: number,
  dHigh: number,
): void {
  const fpu = cpu.fpu;
  const signLow = double ? 0 : 0x80000000 | 0;
  const signHigh = double ? 0x80000000 | 0 : 0;
  switch (operation) {
    case FMULX:
      fpu.multiply(double, aLow, aHigh, bLow, bHigh, true);
      return;
    case FCMEQ:
    case FCMGE:
    case FCMGT:
    case FACGE:
    case FACGT: {
      // FACGE/FACGT compare FPAbs of both operands (Arm ARM C7.2 FACGE).
      const absolute = operation >= FACGE;
      const kind = operation === FCMEQ ? 0 : operation === FCMGE || operation === FACGE ? 1 : 2;
      const result = absolute
        ? fpu.compareVector(
            double,
            kind,
            aLow & ~signLow,
            aHigh & ~signHigh,
            bLow & ~signLow,
            bHigh & ~signHigh,
          )
        : fpu.compareVector(double, kind, aLow, aHigh, bLow, bHigh);
      fpu.resultLow = fpu.resultHigh = result ? -1 : 0;
      return;
    }
    case FABD:
      // FPAbs(FPSub(a, b)): the sign is cleared even on a NaN result.
      fpu.add(double, aLow, aHigh, bLow, bHigh, true);
      fpu.resultLow &= ~signLow;
      fpu.resultHigh &= ~signHigh;
      return;
    case FMLA:
    case FMLS:
      // FPMulAdd(d, a, b) with a negated for FMLS (C7.2 FMLS (vector)).
      if (operation === FMLS) {
        aLow ^= signLow;
        aHigh ^= signHigh;
      }
      fpu.multiplyAdd(double, dLow, dHigh, aLow, aHigh, bLow, bHigh);
      return;
    case FRECPS:
    case FRSQRTS:
      fpu.reciprocalStep(double, operation === FRSQRTS, aLow, aHigh, bLow, bHigh);
      return;
    default:
      floatBinary(cpu, double, operation, aLow, aHigh, bLow, bHigh);
  }
}

/** Flag in a FLOAT_THREE_SAME entry: the pairwise form (FADDP, FMAXP, ...). */
const PAIRWISE = 0x20;

/**
 * FP three-same decode (Arm ARM C4.1.95.22, "Advanced SIMD three same"):
 * opcode<2:0>:U:a to a `floatLane` operation code, with PAIRWISE for the
 * pairwise forms; -1 is unallocated.
 */
const FLOAT_THREE_SAME = Int8Array.from(
  [
    [6, 7, 6 | PAIRWISE, 7 | PAIRWISE], // 000: FMAXNM FMINNM FMAXNMP FMINNMP
    [FMLA, FMLS, -1, -1], // 001
    [2, 3, 2 | PAIRWISE, FABD], // 010: FADD FSUB FADDP FABD
    [FMULX, -1, 0, -1], // 011: FMULX, FMUL
    [FCMEQ, -1, FCMGE, FCMGT], // 100
    [-1, -1, FACGE, FACGT], // 101
    [4, 5, 4 | PAIRWISE, 5 | PAIRWISE], // 110: FMAX FMIN FMAXP FMINP
    [FRECPS, FRSQRTS, 1, -1], // 111: FRECPS FRSQRTS FDIV
  ].flat(),
);

/**
 * FP three-same, vector and scalar (C4.1.95.22/.10): FADD/FSUB/FMUL/FDIV/
 * FMULX/FABD, FMAX/FMIN(NM), FMLA/FMLS, FCMEQ/FCMGE/FCMGT, FACGE/FACGT and
 * the pairwise FADDP/FMAXP/FMINP/FMAXNMP/FMINNMP, for single and double lanes.
 */
function floatThreeSame(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const a = (word >>> 23) & 1;
  const double = (word >>> 22) & 1;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 11) & 7;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (double && !q && !scalar) return false;
  // opcode<2:0>:U:a selects the operation (the size<1> bit is a).
  const entry = FLOAT_THREE_SAME[(opcode << 2) | (u << 1) | a];
  if (entry < 0) return false;
  const operation = entry & ~PAIRWISE;
  const pairwise = (entry & PAIRWISE) !== 0;
  // Scalar three-same FP has FMULX, the compares, FABD (and the unimplemented reciprocal steps).
  if (
    scalar &&
    !(operation === FMULX || operation >= FRECPS || (operation >= FCMEQ && operation <= FABD))
  )
    return false;
  cpu.checkFpEnabled();
  const elements = scalar ? 1 : (q ? 4 : 2) >> double;
  floatElements(cpu, double, operation, elements, rn, rm, -1, pairwise, rd, q);
  return true;
}

/**
 * The FP element loop of three-same and by-element: `floatLane(operation)`
 * on a = Vn[e], b = Vm[e] (Vm[index] when index >= 0) and d = Vd[e], or with
 * `pairwise` on adjacent elements of the concatenation Vm:Vn (Vn supplies the
 * low half of the result); results gather in the scratch vector, then go to Vd.
 */
function floatElements(
  cpu: Arm64Cpu,
  double: number,
  operation: number,
  elements: number,
  rn: number,
  rm: number,
  index: number,
  pairwise: boolean,
  rd: number,
  q: number,
): void {
  const v = cpu.v32;
  const step = double ? 2 : 1;
  const half = elements / 2;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    let ra = rn;
    let rb = rm;
    let ia = e * step;
    let ib = index >= 0 ? index * step : ia;
    if (pairwise) {
      ra = rb = e < half ? rn : rm;
      ia = (e % half) * 2 * step;
      ib = ia + step;
    }
    floatLane(
      cpu,
      double,
      operation,
      v[ra * 4 + ia],
      double ? v[ra * 4 + ia + 1] : 0,
      v[rb * 4 + ib],
      double ? v[rb * 4 + ib + 1] : 0,
      v[rd * 4 + e * step],
      double ? v[rd * 4 + e * step + 1] : 0,
    );
    scratchFloat(cpu, e, double);
  }
  writeScratch(cpu, rd, q);
}

/** The FPU result to scratch FP element `e`: one word single, two double. */
function scratchFloat(cpu: Arm64Cpu, e: number, double: number): void {
  if (double) {
    s32[e * 2] = cpu.fpu.resultLow;
    s32[e * 2 + 1] = cpu.fpu.resultHigh;
  } else s32[e] = cpu.fpu.resultLow;
}

/**
 * Advanced SIMD (vector and scalar) x indexed element (C4.1.95.29/.15):
 * FMLA/FMLS/FMUL/FMULX by element, MUL/MLA/MLS by element and the long
 * SMULL/UMULL/SMLAL/UMLAL/SMLSL/UMLSL by element.
 */
function byElement(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const l = (word >>> 21) & 1;
  const m = (word >>> 20) & 1;
  const rmLow = (word >>> 16) & 15;
  const opcode = (word >>> 12) & 15;
  const h = (word >>> 11) & 1;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (opcode === 0b0001 || opcode === 0b0101 || opcode === 0b1001) {
    // FP: size 10 single (index H:L), 11 double (index H, L = 0); Rm is M:Rm.
    if (size < 2 || (opcode !== 0b1001 && u === 1)) return false;
    const double = size & 1;
    if (double && (l === 1 || (!q && !scalar))) return false;
    const index = double ? h : (h << 1) | l;
    const rm = (m << 4) | rmLow;
    const operation = opcode === 0b0001 ? FMLA : opcode === 0b0101 ? FMLS : u ? FMULX : 0;
    cpu.checkFpEnabled();
    const elements = scalar ? 1 : (q ? 4 : 2) >> double;
    floatElements(cpu, double, operation, elements, rn, rm, index, false, rd, q);
    return true;
  }
  if (scalar) return false;
  // Integer: size 01 halfwords (index H:L:M, Rm 0-15), 10 words (index H:L, Rm M:Rm).
  if (size !== 1 && size !== 2) return false;
  const index = size === 1 ? (h << 2) | (l << 1) | m : (h << 1) | l;
  const rm = size === 1 ? rmLow : (m << 4) | rmLow;
  const multiply = opcode === 0b1000 && u === 0;
  const accumulate = (opcode === 0b0000 || opcode === 0b0100) && u === 1;
  const long = opcode === 0b1010 || opcode === 0b0010 || opcode === 0b0110;
  if (u === 0 && (opcode === 0b1011 || opcode === 0b0011 || opcode === 0b0111)) {
    // SQDMULL/SQDMLAL/SQDMLSL by element.
    cpu.checkFpEnabled();
    const accumulate = opcode === 0b1011 ? 0 : opcode === 0b0011 ? 1 : -1;
    saturatingDoublingLongElements(cpu, accumulate, size, q, rd, rn, rm, index);
    return true;
  }
  if (u === 0 && (opcode === 0b1100 || opcode === 0b1101)) {
    // SQDMULH/SQRDMULH by element.
    cpu.checkFpEnabled();
    const elements = (q ? 16 : 8) >>> size;
    const b = signedLane(cpu, rm, index, size);
    clearScratch();
    for (let e = 0; e < elements; e++)
      setScratch(
        e,
        size,
        doublingHigh(cpu, size, signedLane(cpu, rn, e, size), b, opcode === 0b1101),
      );
    writeScratch(cpu, rd, q);
    return true;
  }
  if (!multiply && !accumulate && !long) return false;
  cpu.checkFpEnabled();
  if (long) {
    // [SU]MULL/[SU]MLAL/[SU]MLSL by element: widen the low or high half of Vn.
    const elements = 8 >>> size;
    const base = q ? elements : 0;
    const b = element(cpu, rm, index, size, u);
    clearScratch();
    for (let e = 0; e < elements; e++) {
      const a = element(cpu, rn, base + e, size, u);
      const product = a * b; // below 2^64 in magnitude; exact below 2^53 (16-bit lanes) or split below
      if (size === 1) {
        const accumulator = lane(cpu, rd, e, 2);
        const value =
          opcode === 0b1010
            ? product
            : opcode === 0b0010
              ? accumulator + product
              : accumulator - product;
        s32[e] = value;
      } else {
        longProduct64(a, b, u === 1);
        scratchProduct64(cpu, rd, e, opcode === 0b1010 ? 0 : opcode === 0b0010 ? 1 : -1);
      }
    }
    writeScratch(cpu, rd, 1);
    return true;
  }
  const elements = (q ? 16 : 8) >>> size;
  const b = lane(cpu, rm, index, size);
  clearScratch();
  for (let e = 0; e < elements; e++) {
    const product = Math.imul(lane(cpu, rn, e, size), b);
    const r = multiply
      ? product
      : opcode === 0b0000
        ? lane(cpu, rd, e, size) + product
        : lane(cpu, rd, e, size) - product;
    setScratch(e, size, r);
  }
  writeScratch(cpu, rd, q);
  return true;
}

let productLow = 0;
let productHigh = 0;

/** SQDMULH/SQRDMULH of one lane (16 or 32 bits): the high half of 2ab (+ rounding), saturated with QC. */
function doublingHigh(
  cpu: Arm64Cpu,
  size: number,
  a: number,
  b: number,
  rounding: boolean,
): number {
  if (size === 1)
    return saturate(
      cpu,
      Math.floor((2 * a * b + (rounding ? 2 ** 15 : 0)) / 2 ** 16),
      -32768,
      32767,
    );
  if (a === -2147483648 && b === -2147483648)
    return saturate(cpu, 2 ** 31, -(2 ** 31), 2 ** 31 - 1);
  longProduct64(a, b, false);
  // 2ab + round: the 64-bit product shifted left by one; the result is its high word.
  const doubledHigh = (productHigh << 1) | (productLow >>> 31);
  const doubledLow = productLow << 1;
  const carry = rounding && (doubledLow >>> 0) + 2 ** 31 > 0xffffffff ? 1 : 0;
  return (doubledHigh + carry) | 0;
}

/**
 * SQDMULL/SQDMLAL/SQDMLSL (accumulate 0, 1, -1) over the low (Q = 0) or
 * high (Q = 1) half of Vn, times the same element of Vm or, by element
 * (index >= 0), Vm[index]; the double-width results go to Vd.
 */
function saturatingDoublingLongElements(
  cpu: Arm64Cpu,
  accumulate: number,
  size: number,
  q: number,
  rd: number,
  rn: number,
  rm: number,
  index: number,
): void {
  const elements = 8 >>> size;
  const base = q ? elements : 0;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    const a = signedLane(cpu, rn, base + e, size);
    const b = signedLane(cpu, rm, index >= 0 ? index : base + e, size);
    saturatingDoublingLong(cpu, accumulate, size, rd, e, a, b);
  }
  writeScratch(cpu, rd, 1);
}

/**
 * SQDMULL (accumulate 0), SQDMLAL (1), SQDMLSL (-1) of one lane into the
 * double-width scratch lane `e`: 2ab saturated, then added to or subtracted
 * from Vd's lane with signed saturation (QC on either).
 */
function saturatingDoublingLong(
  cpu: Arm64Cpu,
  accumulate: number,
  size: number,
  rd: number,
  e: number,
  a: number,
  b: number,
): void {
  if (size === 1) {
    let product = 2 * a * b;
    product = saturate(cpu, product, -(2 ** 31), 2 ** 31 - 1);
    const value = accumulate === 0 ? product : cpu.v32[rd * 4 + e] + accumulate * product;
    s32[e] = saturate(cpu, value, -(2 ** 31), 2 ** 31 - 1);
    return;
  }
  let low: number;
  let high: number;
  if (a === -2147483648 && b === -2147483648) {
    cpu.fpu.flags |= 1 << 27;
    low = -1;
    high = 0x7fffffff;
  } else {
    longProduct64(a, b, false);
    high = (productHigh << 1) | (productLow >>> 31);
    low = productLow << 1;
  }
  if (accumulate !== 0) {
    const accumulatorLow = cpu.v32[rd * 4 + e * 2];
    const accumulatorHigh = cpu.v32[rd * 4 + e * 2 + 1];
    if (accumulate < 0) {
      // Subtract: add the two's complement (the product is never -2^63, so this cannot overflow).
      low = ~low + 1;
      high = ~high + (low === 0 ? 1 : 0);
      low |= 0;
      high |= 0;
    }
    const sum = (accumulatorLow >>> 0) + (low >>> 0);
    const sumHigh = (accumulatorHigh + high + (sum > 0xffffffff ? 1 : 0)) | 0;
    // Signed overflow: both operands of one sign, the sum of the other.
    if (accumulatorHigh >> 31 === high >> 31 && sumHigh >> 31 !== accumulatorHigh >> 31) {
      cpu.fpu.flags |= 1 << 27;
      low = accumulatorHigh < 0 ? 0 : -1;
      high = accumulatorHigh < 0 ? 0x80000000 | 0 : 0x7fffffff;
    } else {
      low = sum | 0;
      high = sumHigh;
    }
  }
  s32[e * 2] = low;
  s32[e * 2 + 1] = high;
}

/**
 * Scratch 64-bit element `e` = productLow:productHigh, plus (accumulate 1) or
 * minus (accumulate -1) the 64-bit element `e` of Vd, modulo 2^64 (the
 * [SU]MLAL/[SU]MLSL accumulation; 0 is the plain [SU]MULL product).
 */
function scratchProduct64(cpu: Arm64Cpu, rd: number, e: number, accumulate: number): void {
  let pLow = productLow;
  let pHigh = productHigh;
  if (accumulate !== 0) {
    // Subtraction as addition of the two's complement: ~p + 1 (the 1 enters as the carry-in).
    if (accumulate < 0) {
      pLow = ~pLow;
      pHigh = ~pHigh;
    }
    const v = cpu.v32;
    const sum = (v[rd * 4 + e * 2] >>> 0) + (pLow >>> 0) + (accumulate < 0 ? 1 : 0);
    pLow = sum | 0;
    pHigh = (v[rd * 4 + e * 2 + 1] + pHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
  }
  s32[e * 2] = pLow;
  s32[e * 2 + 1] = pHigh;
}

/** The exact 64-bit product of two 32-bit values (signed or not) into productLow/productHigh. */
function longProduct64(a: number, b: number, unsigned: boolean): void {
  const negative = !unsigned && a < 0 !== b < 0;
  const ma = Math.abs(a);
  const mb = Math.abs(b);
  // ma*mb < 2^64: split mb into 16-bit halves so each partial product is exact.
  const lowPart = ma * (mb & 0xffff);
  const highPart = ma * Math.floor(mb / 65536);
  let low = (lowPart % TWO_POW_32) + (highPart % 65536) * 65536;
  let high = Math.floor(lowPart / TWO_POW_32) + Math.floor(highPart / 65536);
  high += Math.floor(low / TWO_POW_32);
  low %= TWO_POW_32;
  productLow = low | 0;
  productHigh = high | 0;
  if (negative && (productLow | productHigh) !== 0) {
    productLow = (~productLow + 1) | 0;
    productHigh = (~productHigh + (productLow === 0 ? 1 : 0)) | 0;
  }
}

/**
 * CMGT/CMEQ/CMLT (U = 0, opcode 01000-01010) and CMGE/CMLE (U = 1, 01000-01001)
 * #0 by U:opcode (C7.2): all ones when the signed element, given as its sign
 * and zeroness, compares true with zero.
 */
function compareZero(key: number, negative: boolean, zero: boolean): number {
  switch (key) {
    case 0b01000:
      return !negative && !zero ? -1 : 0;
    case 0b01001:
      return zero ? -1 : 0;
    case 0b01010:
      return negative ? -1 : 0;
    case 0b101000:
      return !negative ? -1 : 0;
    default: // 0b101001
      return negative || zero ? -1 : 0;
  }
}

function twoRegisterMisc(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const opcode = (word >>> 12) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const v = cpu.v32;
  // The FP half of the space: opcodes 11xxx, 011xx with size<1> set, FCVTN/FCVTL.
  if (
    opcode >= 0b11000 ||
    (opcode >= 0b01100 && opcode <= 0b01111 && size >= 2) ||
    ((opcode === 0b10110 || opcode === 0b10111) && u === 0)
  )
    return floatTwoRegisterMisc(cpu, word, scalar);
  if (opcode === 0b10010 || opcode === 0b10100) {
    // XTN/XTN2 (U=0, 10010), SQXTUN (U=1, 10010), SQXTN/UQXTN (10100): narrow to half-width elements.
    if (size === 3 || scalar) return false;
    cpu.checkFpEnabled();
    const elements = 8 >>> size;
    for (let i = 0; i < 4; i++) s32[i] = v[rd * 4 + i];
    const base = q ? elements : 0;
    for (let e = 0; e < elements; e++) {
      let value: number;
      if (size === 2) {
        const low = v[rn * 4 + e * 2];
        const high = v[rn * 4 + e * 2 + 1];
        if (opcode === 0b10010 && u === 0) value = low;
        else {
          const signedValue = high * TWO_POW_32 + (low >>> 0);
          const unsignedValue = (high >>> 0) * TWO_POW_32 + (low >>> 0);
          if (opcode === 0b10010) value = saturateTo(cpu, signedValue, size, 1);
          else if (u) value = saturateTo(cpu, unsignedValue, size, 1);
          else value = saturateTo(cpu, signedValue, size, 0);
        }
      } else if (opcode === 0b10010 && u === 0) value = lane(cpu, rn, e, size + 1);
      else if (opcode === 0b10010)
        value = saturateTo(cpu, signedLane(cpu, rn, e, size + 1), size, 1);
      else if (u) value = saturateTo(cpu, lane(cpu, rn, e, size + 1), size, 1);
      else value = saturateTo(cpu, signedLane(cpu, rn, e, size + 1), size, 0);
      setScratch(base + e, size, value);
    }
    if (!q) s32[2] = s32[3] = 0;
    writeScratch(cpu, rd, 1);
    return true;
  }
  const key = (u << 5) | opcode;
  if (size === 3 || scalar) {
    // 64-bit lanes: CMGT/CMEQ/CMLT/CMGE/CMLE #0, ABS, NEG.
    if (size !== 3) return false;
    if (!scalar && !q) return false;
    const elements = scalar ? 1 : 2;
    clearScratch();
    for (let e = 0; e < elements; e++) {
      const low = v[rn * 4 + e * 2];
      const high = v[rn * 4 + e * 2 + 1];
      const negative = high < 0;
      const zero = (low | high) === 0;
      let rLow: number;
      let rHigh: number;
      switch (key) {
        case 0b01000: // CMGT #0
        case 0b01001: // CMEQ #0
        case 0b01010: // CMLT #0
        case 0b101000: // CMGE #0
        case 0b101001: // CMLE #0
          rLow = rHigh = compareZero(key, negative, zero);
          break;
        case 0b01011: // ABS
        case 0b101011: // NEG
          if (key === 0b01011 && !negative) {
            rLow = low;
            rHigh = high;
          } else {
            rLow = (~low + 1) | 0;
            rHigh = (~high + (rLow === 0 ? 1 : 0)) | 0;
          }
          break;
        default:
          return false;
      }
      s32[e * 2] = rLow;
      s32[e * 2 + 1] = rHigh;
    }
    cpu.checkFpEnabled();
    writeScratch(cpu, rd, q);
    return true;
  }
  const elements = (q ? 16 : 8) >>> size;
  switch (key) {
    case 0b00000: // REV64
    case 0b00001: // REV16
    case 0b100000: {
      // REV32
      const container = key === 0b00000 ? 8 : key === 0b00001 ? 2 : 4;
      const ebytes = 1 << size;
      if (ebytes >= container) return false;
      cpu.checkFpEnabled();
      const v8 = cpu.v8;
      for (let i = 0; i < (q ? 16 : 8); i++) {
        const start = i - (i % container);
        const within = i % container;
        const element = Math.floor(within / ebytes);
        const mirrored = container / ebytes - 1 - element;
        s8[i] = v8[rn * 16 + start + mirrored * ebytes + (within % ebytes)];
      }
      writeScratch(cpu, rd, q);
      return true;
    }
    case 0b00101:
    case 0b100101: {
      // CNT (U=0), NOT (U=1, size 0), RBIT (U=1, size 1): bytes.
      if (size !== 0 && !(u === 1 && size === 1)) return false;
      cpu.checkFpEnabled();
      const v8 = cpu.v8;
      for (let i = 0; i < (q ? 16 : 8); i++) {
        const byte = v8[rn * 16 + i];
        if (u === 0) s8[i] = count8(byte);
        else if (size === 0) s8[i] = ~byte;
        else {
          let reversed = 0;
          for (let b = 0; b < 8; b++) reversed |= ((byte >>> b) & 1) << (7 - b);
          s8[i] = reversed;
        }
      }
      writeScratch(cpu, rd, q);
      return true;
    }
    case 0b00010:
    case 0b100010:
    case 0b00110:
    case 0b100110: {
      // SADDLP/UADDLP, SADALP/UADALP: pairwise add long.
      if (size === 3) return false;
      cpu.checkFpEnabled();
      const accumulate = (opcode & 4) !== 0;
      clearScratch();
      const wideElements = elements / 2;
      for (let e = 0; e < wideElements; e++) {
        const sum = u
          ? lane(cpu, rn, 2 * e, size) + lane(cpu, rn, 2 * e + 1, size)
          : signedLane(cpu, rn, 2 * e, size) + signedLane(cpu, rn, 2 * e + 1, size);
        if (size === 2) {
          if (accumulate) addToScratch64(e * 2, v[rd * 4 + e * 2], v[rd * 4 + e * 2 + 1], sum);
          else addToScratch64(e * 2, 0, 0, sum);
        } else {
          setScratch(e, size + 1, accumulate ? sum + lane(cpu, rd, e, size + 1) : sum);
        }
      }
      writeScratch(cpu, rd, q);
      return true;
    }
    case 0b00100:
    case 0b100100:
    case 0b01000:
    case 0b01001:
    case 0b01010:
    case 0b01011:
    case 0b101000:
    case 0b101001:
    case 0b101011:
    case 0b00111: // SQABS
    case 0b100111: // SQNEG
    case 0b00011: // SUQADD
    case 0b100011: // USQADD
      break;
    default:
      return false;
  }
  cpu.checkFpEnabled();
  const bits = 8 << size;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    const a = signedLane(cpu, rn, e, size);
    let r: number;
    switch (key) {
      case 0b00100: {
        // CLS
        const shifted = (a << (32 - bits)) ^ ((a << (32 - bits)) >> 1);
        r = Math.min(Math.clz32(shifted), bits) - 1;
        if (Math.clz32(shifted) >= bits) r = bits - 1;
        break;
      }
      case 0b100100: // CLZ
        r = Math.clz32(lane(cpu, rn, e, size)) - (32 - bits);
        break;
      case 0b00111:
        r = saturateTo(cpu, Math.abs(a), size, 0);
        break;
      case 0b100111:
        r = saturateTo(cpu, -a, size, 0);
        break;
      case 0b00011: // SUQADD: signed Vd plus unsigned Vn, saturated signed
        r = saturateTo(cpu, signedLane(cpu, rd, e, size) + lane(cpu, rn, e, size), size, 0);
        break;
      case 0b100011: // USQADD: unsigned Vd plus signed Vn, saturated unsigned
        r = saturateTo(cpu, lane(cpu, rd, e, size) + a, size, 1);
        break;
      case 0b01000:
      case 0b01001:
      case 0b01010:
      case 0b101000:
      case 0b101001:
        r = compareZero(key, a < 0, a === 0);
        break;
      case 0b01011:
        r = Math.abs(a);
        break;
      default:
        r = -a;
    }
    setScratch(e, size, r);
  }
  writeScratch(cpu, rd, q);
  return true;
}

/** FLOAT_MISC entry flags: where the form is allocated (or implemented) and FRINTX's exactness. */
const VECTOR_ONLY = 1 << 8;
const SCALAR_ONLY = 1 << 9;
const SINGLE_VECTOR_ONLY = 1 << 10;
const EXACT = 1 << 11;
/** FLOAT_MISC parameter: the rounding mode is FPCR.RMode's (FRINTX, FRINTI). */
const FPCR_ROUNDING = 7;

/**
 * FP two-register misc decode (Arm ARM C4.1.95.21/.23), indexed by
 * U:a:opcode (a = size<1>): operation (bits 0-3; 0 FABS 1 FNEG 2 FSQRT
 * 3 FRINT 4 FCVT*S 5 FCVT*U 6 SCVTF 7 UCVTF 8 FCMxx #0 9 FRECPE 10 FRSQRTE
 * 11 URECPE 12 URSQRTE 13 FRECPX), parameter (bits 4-6: the rounding mode,
 * or the compare) and the flags above; -1 is unallocated or not implemented.
 */
const FLOAT_MISC = new Int16Array(128).fill(-1);
function floatMisc(u: number, a: number, opcode: number, entry: number, parameter = 0): void {
  FLOAT_MISC[(u << 6) | (a << 5) | opcode] = entry | (parameter << 4);
}
floatMisc(0, 1, 0b01111, 0); // FABS
floatMisc(1, 1, 0b01111, 1); // FNEG
floatMisc(1, 1, 0b11111, 2); // FSQRT
floatMisc(0, 0, 0b11000, 3 | VECTOR_ONLY, Rounding.TiesEven); // FRINTN
floatMisc(0, 0, 0b11001, 3 | VECTOR_ONLY, Rounding.MinusInfinity); // FRINTM
floatMisc(0, 1, 0b11000, 3 | VECTOR_ONLY, Rounding.PlusInfinity); // FRINTP
floatMisc(0, 1, 0b11001, 3 | VECTOR_ONLY, Rounding.Zero); // FRINTZ
floatMisc(1, 0, 0b11000, 3 | VECTOR_ONLY, Rounding.TiesAway); // FRINTA
floatMisc(1, 0, 0b11001, 3 | VECTOR_ONLY | EXACT, FPCR_ROUNDING); // FRINTX
floatMisc(1, 1, 0b11001, 3 | VECTOR_ONLY, FPCR_ROUNDING); // FRINTI
for (let u = 0; u < 2; u++) {
  // FCVTNS/FCVTMS/FCVTAS/FCVTPS/FCVTZS (U = 0) and the unsigned FCVT*U (U = 1).
  floatMisc(u, 0, 0b11010, 4 + u, Rounding.TiesEven);
  floatMisc(u, 0, 0b11011, 4 + u, Rounding.MinusInfinity);
  floatMisc(u, 0, 0b11100, 4 + u, Rounding.TiesAway);
  floatMisc(u, 1, 0b11010, 4 + u, Rounding.PlusInfinity);
  floatMisc(u, 1, 0b11011, 4 + u, Rounding.Zero);
}
floatMisc(0, 0, 0b11101, 6); // SCVTF
floatMisc(1, 0, 0b11101, 7); // UCVTF
floatMisc(0, 1, 0b01100, 8, 0); // FCMGT #0
floatMisc(0, 1, 0b01101, 8, 1); // FCMEQ #0
floatMisc(0, 1, 0b01110, 8, 2); // FCMLT #0
floatMisc(1, 1, 0b01100, 8, 3); // FCMGE #0
floatMisc(1, 1, 0b01101, 8, 4); // FCMLE #0
floatMisc(0, 1, 0b11101, 9); // FRECPE
floatMisc(1, 1, 0b11101, 10); // FRSQRTE
floatMisc(0, 1, 0b11100, 11 | SINGLE_VECTOR_ONLY); // URECPE
floatMisc(1, 1, 0b11100, 12 | SINGLE_VECTOR_ONLY); // URSQRTE
floatMisc(0, 1, 0b11111, 13 | SCALAR_ONLY); // FRECPX

/**
 * FP two-register misc, vector and scalar (C4.1.95.21/.23): FABS, FNEG,
 * FSQRT, FRINT*, FCVT{N,M,P,Z,A}{S,U}, SCVTF/UCVTF, FCMxx #0, FCVTN/FCVTL
 * (single and double lanes; no half precision, no estimates).
 */
function floatTwoRegisterMisc(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const a = (word >>> 23) & 1;
  const double = (word >>> 22) & 1;
  const opcode = (word >>> 12) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (!scalar && (opcode === 0b10110 || opcode === 0b10111) && u === 0 && a === 0)
    return floatWidthConvert(cpu, word);
  if (double && !q && !scalar) return false;
  const entry = FLOAT_MISC[(u << 6) | (a << 5) | opcode];
  if (entry < 0) return false;
  if ((entry & (scalar ? VECTOR_ONLY : SCALAR_ONLY)) !== 0) return false;
  if ((entry & SINGLE_VECTOR_ONLY) !== 0 && (double || scalar)) return false;
  const operation = entry & 15;
  const parameter = (entry >>> 4) & 7;
  const mode = parameter === FPCR_ROUNDING ? cpu.fpu.rounding() : parameter;
  const compare = parameter; // FCMGT 0, FCMEQ 1, FCMLT 2, FCMGE 3, FCMLE 4
  const exact = (entry & EXACT) !== 0;
  if (scalar && operation <= 2) return false;
  cpu.checkFpEnabled();
  const fpu = cpu.fpu;
  const v = cpu.v32;
  const step = double ? 2 : 1;
  const elements = scalar ? 1 : (q ? 4 : 2) >> double;
  const signLow = double ? 0 : 0x80000000 | 0;
  const signHigh = double ? 0x80000000 | 0 : 0;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    const low = v[rn * 4 + e * step];
    const high = double ? v[rn * 4 + e * step + 1] : 0;
    switch (operation) {
      case 0:
        fpu.resultLow = low & ~signLow;
        fpu.resultHigh = high & ~signHigh;
        break;
      case 1:
        fpu.resultLow = low ^ signLow;
        fpu.resultHigh = high ^ signHigh;
        break;
      case 2:
        fpu.squareRoot(double, low, high);
        break;
      case 3:
        fpu.roundToIntegral(double, low, high, mode, exact);
        break;
      case 4:
      case 5:
        fpu.toInteger(double, low, high, 0, mode, double ? 64 : 32, operation === 5);
        break;
      case 6:
      case 7:
        fpu.fromInteger(double, low, high, 0, double ? 64 : 32, operation === 7);
        break;
      case 9:
        fpu.reciprocalEstimate(double, low, high);
        break;
      case 10:
        fpu.reciprocalSquareRootEstimate(double, low, high);
        break;
      case 11:
        // URECPE (UnsignedRecipEstimate): operand<31:23> as 0.5..1, all ones below 0.5.
        fpu.resultLow = low >= 0 ? -1 : recipEstimate(low >>> 23) << 23;
        break;
      case 12:
        // URSQRTE (UnsignedRSqrtEstimate): operand<31:23> as 0.25..1, all ones below 0.25.
        fpu.resultLow = low >>> 30 === 0 ? -1 : recipSqrtEstimate(low >>> 23) << 23;
        break;
      case 13:
        fpu.reciprocalExponent(double, low, high);
        break;
      default: {
        // FCMGT/FCMEQ/FCMGE #0 compare (x, 0); FCMLT/FCMLE compare (0, x) as GT/GE.
        const swapped = compare === 2 || compare === 4;
        const kind = compare === 1 ? 0 : compare === 0 || compare === 2 ? 2 : 1;
        const result = swapped
          ? fpu.compareVector(double, kind, 0, 0, low, high)
          : fpu.compareVector(double, kind, low, high, 0, 0);
        fpu.resultLow = fpu.resultHigh = result ? -1 : 0;
      }
    }
    scratchFloat(cpu, e, double);
  }
  writeScratch(cpu, rd, q);
  return true;
}

/** FCVTN/FCVTN2 (double to single, narrowing) and FCVTL/FCVTL2 (single to double), C7.2. */
function floatWidthConvert(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const double = (word >>> 22) & 1;
  const narrow = ((word >>> 12) & 31) === 0b10110;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  cpu.checkFpEnabled();
  const fpu = cpu.fpu;
  const v = cpu.v32;
  if (!double) {
    // 4S <-> 4H (size 0): halves in the low or (the "2" forms) high 64 bits.
    if (narrow) {
      for (let i = 0; i < 4; i++) s32[i] = v[rd * 4 + i];
      for (let e = 0; e < 4; e++) {
        fpu.convertToHalf(0, v[rn * 4 + e], 0);
        s16[q * 4 + e] = fpu.resultLow;
      }
      if (!q) s32[2] = s32[3] = 0;
    } else {
      for (let e = 0; e < 4; e++) {
        fpu.convertFromHalf(0, cpu.v16[rn * 8 + q * 4 + e]);
        s32[e] = fpu.resultLow;
      }
    }
    writeScratch(cpu, rd, 1);
    return true;
  }
  if (narrow) {
    for (let i = 0; i < 4; i++) s32[i] = v[rd * 4 + i];
    for (let e = 0; e < 2; e++) {
      fpu.convert(0, v[rn * 4 + e * 2], v[rn * 4 + e * 2 + 1]);
      s32[q * 2 + e] = fpu.resultLow;
    }
    if (!q) s32[2] = s32[3] = 0;
  } else {
    for (let e = 0; e < 2; e++) {
      fpu.convert(1, v[rn * 4 + q * 2 + e], 0);
      s32[e * 2] = fpu.resultLow;
      s32[e * 2 + 1] = fpu.resultHigh;
    }
  }
  writeScratch(cpu, rd, 1);
  return true;
}

function acrossLanes(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const opcode = (word >>> 12) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (u === 1 && (opcode === 0b01100 || opcode === 0b01111)) {
    // FMAXNMV/FMINNMV/FMAXV/FMINV: 4S only (no half precision), reduced as a pairwise tree.
    if (!q || (size & 1) !== 0) return false;
    cpu.checkFpEnabled();
    const operation = (opcode === 0b01111 ? 4 : 6) + (size >>> 1);
    const v = cpu.v32;
    const fpu = cpu.fpu;
    floatBinary(cpu, 0, operation, v[rn * 4], 0, v[rn * 4 + 1], 0);
    const low = fpu.resultLow;
    floatBinary(cpu, 0, operation, v[rn * 4 + 2], 0, v[rn * 4 + 3], 0);
    floatBinary(cpu, 0, operation, low, 0, fpu.resultLow, 0);
    setScalar(cpu, rd, fpu.resultLow, 0);
    return true;
  }
  if (size === 3 || (size === 2 && !q)) return false;
  const elements = (q ? 16 : 8) >>> size;
  let result: number;
  switch (opcode) {
    case 0b00011: {
      // SADDLV/UADDLV: the sum in a double-width scalar.
      cpu.checkFpEnabled();
      result = 0;
      for (let e = 0; e < elements; e++) result += element(cpu, rn, e, size, u);
      if (size === 2) {
        const low = ((result % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
        setScalar(cpu, rd, low | 0, Math.floor((result - low) / TWO_POW_32) | 0);
        return true;
      }
      zeroVector(cpu, rd);
      const value = size === 0 ? result & 0xffff : result | 0;
      if (size === 0) cpu.v16[rd * 8] = value;
      else cpu.v32[rd * 4] = value;
      return true;
    }
    case 0b01010:
    case 0b11010: {
      // SMAXV/UMAXV, SMINV/UMINV
      cpu.checkFpEnabled();
      const max = opcode === 0b01010;
      result = element(cpu, rn, 0, size, u);
      for (let e = 1; e < elements; e++) {
        const value = element(cpu, rn, e, size, u);
        if (max ? value > result : value < result) result = value;
      }
      break;
    }
    case 0b11011: {
      // ADDV
      if (u) return false;
      cpu.checkFpEnabled();
      result = 0;
      for (let e = 0; e < elements; e++) result += lane(cpu, rn, e, size);
      break;
    }
    default:
      return false;
  }
  zeroVector(cpu, rd);
  if (size === 0) cpu.v8[rd * 16] = result;
  else if (size === 1) cpu.v16[rd * 8] = result;
  else cpu.v32[rd * 4] = result;
  return true;
}

function scalarPairwise(cpu: Arm64Cpu, word: number): boolean {
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const opcode = (word >>> 12) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (u === 1 && (opcode === 0b01100 || opcode === 0b01101 || opcode === 0b01111)) {
    // FP pairwise scalar: FMAXNMP/FMINNMP, FADDP, FMAXP/FMINP of the two lanes of Vn (2S or 2D).
    const double = size & 1;
    const min = size >>> 1;
    if (opcode === 0b01101 && min) return false;
    cpu.checkFpEnabled();
    const operation = opcode === 0b01101 ? 2 : (opcode === 0b01111 ? 4 : 6) + min;
    const v = cpu.v32;
    const step = double ? 2 : 1;
    floatBinary(
      cpu,
      double,
      operation,
      v[rn * 4],
      double ? v[rn * 4 + 1] : 0,
      v[rn * 4 + step],
      double ? v[rn * 4 + step + 1] : 0,
    );
    setScalar(cpu, rd, cpu.fpu.resultLow, double ? cpu.fpu.resultHigh : 0);
    return true;
  }
  if (u !== 0 || size !== 3 || opcode !== 0b11011) return false;
  // ADDP (scalar): Dd = Vn.D[0] + Vn.D[1].
  cpu.checkFpEnabled();
  const v = cpu.v32;
  const sum = (v[rn * 4] >>> 0) + (v[rn * 4 + 2] >>> 0);
  setScalar(cpu, rd, sum | 0, (v[rn * 4 + 1] + v[rn * 4 + 3] + (sum > 0xffffffff ? 1 : 0)) | 0);
  return true;
}

function threeDifferent(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const size = (word >>> 22) & 3;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 12) & 15;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (size === 3) return false;
  if ((opcode === 9 || opcode === 11 || opcode === 13) && u === 0) {
    if (size !== 1 && size !== 2) return false;
    cpu.checkFpEnabled();
    const accumulate = opcode === 13 ? 0 : opcode === 9 ? 1 : -1;
    saturatingDoublingLongElements(cpu, accumulate, size, q, rd, rn, rm, -1);
    return true;
  }
  // Long and wide forms: ADDL(0) ADDW(1) SUBL(2) SUBW(3) ABAL(5) ABDL(7) MLAL(8) MLSL(10) MULL(12).
  switch (opcode) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 5:
    case 7:
    case 8:
    case 10:
    case 12:
      break;
    case 4:
    case 6: {
      // ADDHN/SUBHN (U=0), RADDHN/RSUBHN (U=1): the high halves of wide sums.
      cpu.checkFpEnabled();
      const elements = 8 >>> size;
      for (let i = 0; i < 4; i++) s32[i] = cpu.v32[rd * 4 + i];
      const bits = 8 << size;
      for (let e = 0; e < elements; e++) {
        let value: number;
        if (size === 2) {
          const v = cpu.v32;
          // High 32 bits of a +/- b (+ 2^31 when rounding), exactly via halves.
          const lowSum =
            (v[rn * 4 + e * 2] >>> 0) +
            (opcode === 4 ? v[rm * 4 + e * 2] >>> 0 : -(v[rm * 4 + e * 2] >>> 0)) +
            (u ? 2 ** 31 : 0);
          const carry = Math.floor(lowSum / TWO_POW_32);
          value =
            (v[rn * 4 + e * 2 + 1] +
              (opcode === 4 ? v[rm * 4 + e * 2 + 1] : -v[rm * 4 + e * 2 + 1]) +
              carry) |
            0;
        } else {
          const a = lane(cpu, rn, e, size + 1);
          const b = lane(cpu, rm, e, size + 1);
          const wide = (opcode === 4 ? a + b : a - b) + (u ? 2 ** (bits - 1) : 0);
          value = Math.floor(wide / 2 ** bits);
        }
        setScratch((q ? elements : 0) + e, size, value);
      }
      if (!q) s32[2] = s32[3] = 0;
      writeScratch(cpu, rd, 1);
      return true;
    }
    default:
      return false;
  }
  if (size === 2 && (opcode === 8 || opcode === 10 || opcode === 12))
    return longMultiply32(cpu, q, u, opcode, rd, rn, rm);
  cpu.checkFpEnabled();
  const elements = 8 >>> size;
  const base = q ? elements : 0;
  const wide = opcode === 1 || opcode === 3;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    const b = element(cpu, rm, base + e, size, u);
    if (size === 2 && (wide || opcode === 5)) {
      // 64-bit accumulators on halves: ADDW/SUBW add +-b to Vn's lane, ABAL adds |a - b| to Vd's.
      const v = cpu.v32;
      if (wide)
        addToScratch64(e * 2, v[rn * 4 + e * 2], v[rn * 4 + e * 2 + 1], opcode === 1 ? b : -b);
      else {
        const a = element(cpu, rn, base + e, size, u);
        addToScratch64(e * 2, v[rd * 4 + e * 2], v[rd * 4 + e * 2 + 1], Math.abs(a - b));
      }
      continue;
    }
    let a: number;
    if (wide) a = element(cpu, rn, e, size + 1, u);
    else a = element(cpu, rn, base + e, size, u);
    let r: number;
    switch (opcode) {
      case 0:
      case 1:
        r = a + b;
        break;
      case 2:
      case 3:
        r = a - b;
        break;
      case 5:
        r = Math.abs(a - b) + lane(cpu, rd, e, size + 1);
        break;
      case 7:
        r = Math.abs(a - b);
        break;
      case 8:
        r = lane(cpu, rd, e, size + 1) + a * b;
        break;
      case 10:
        r = lane(cpu, rd, e, size + 1) - a * b;
        break;
      default:
        r = a * b;
    }
    setScratchWide(e, size, r);
  }
  writeScratch(cpu, rd, 1);
  return true;
}

/** s32[at], s32[at + 1] = the 64-bit value low/high plus an integer n (|n| < 2^53), wrapping. */
function addToScratch64(at: number, low: number, high: number, n: number): void {
  const nLow = ((n % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
  const nHigh = (n - nLow) / TWO_POW_32;
  const sum = (low >>> 0) + nLow;
  s32[at] = sum | 0;
  s32[at + 1] = (high + nHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
}

/** SMULL/UMULL/SMLAL/UMLAL/SMLSL/UMLSL with 32-bit elements: exact 64-bit products on 16-bit limbs. */
function longMultiply32(
  cpu: Arm64Cpu,
  q: number,
  u: number,
  opcode: number,
  rd: number,
  rn: number,
  rm: number,
): boolean {
  cpu.checkFpEnabled();
  const v = cpu.v32;
  const base = q ? 2 : 0;
  clearScratch();
  for (let e = 0; e < 2; e++) {
    const a = v[rn * 4 + base + e];
    const b = v[rm * 4 + base + e];
    longProduct64(u ? a >>> 0 : a, u ? b >>> 0 : b, u === 1);
    scratchProduct64(cpu, rd, e, opcode === 12 ? 0 : opcode === 10 ? -1 : 1);
  }
  writeScratch(cpu, rd, 1);
  return true;
}

function shiftImmediate(cpu: Arm64Cpu, word: number, scalar: boolean): boolean {
  const q = scalar ? 0 : (word >>> 30) & 1;
  const u = (word >>> 29) & 1;
  const immh = (word >>> 19) & 15;
  const immb = (word >>> 16) & 7;
  const opcode = (word >>> 11) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (immh === 0) return false;
  const size = 31 - Math.clz32(immh);
  const esize = 8 << size;
  const immediate = (immh << 3) | immb;
  const rightShift = 2 * esize - immediate;
  const leftShift = immediate - esize;
  const v = cpu.v32;
  if (opcode === 0b10100) {
    // SSHLL/USHLL (incl. SXTL/UXTL): widen the low or high half and shift left.
    if (size === 3 || scalar) return false;
    cpu.checkFpEnabled();
    const elements = 8 >>> size;
    const base = q ? elements : 0;
    clearScratch();
    for (let e = 0; e < elements; e++) {
      const value = element(cpu, rn, base + e, size, u);
      const shifted = value * 2 ** leftShift;
      setScratchWide(e, size, shifted);
    }
    writeScratch(cpu, rd, 1);
    return true;
  }
  if (
    ((opcode === 0b10000 || opcode === 0b10001) && u === 1) ||
    opcode === 0b10010 ||
    opcode === 0b10011
  ) {
    // Saturating narrows: SQSHRUN/SQRSHRUN (U=1, 1000x: signed in, unsigned out), SQSHRN/UQSHRN
    // (10010) and SQRSHRN/UQRSHRN (10011), each with QC on saturation.
    if (size === 3 || scalar) return false;
    cpu.checkFpEnabled();
    const rounding = (opcode & 1) === 1;
    const signedInput = opcode <= 0b10001 || u === 0;
    const unsignedOutput = opcode <= 0b10001 || u === 1;
    const maximum = unsignedOutput ? UNSIGNED_MAX[size] : SIGNED_MAX[size];
    const minimum = unsignedOutput ? 0 : SIGNED_MIN[size];
    const round = rounding ? 2 ** (rightShift - 1) : 0;
    const elements = 8 >>> size;
    const base = q ? elements : 0;
    for (let i = 0; i < 4; i++) s32[i] = v[rd * 4 + i];
    for (let e = 0; e < elements; e++) {
      let value: number;
      if (size === 2) {
        // floor((H * 2^32 + L) / 2^shift) = H * 2^(32 - shift) + floor(L / 2^shift): exact whenever in range.
        let low = (v[rn * 4 + e * 2] >>> 0) + round;
        const carry = low >= TWO_POW_32 ? 1 : 0;
        low -= carry * TWO_POW_32;
        const highWord = v[rn * 4 + e * 2 + 1];
        const high = (signedInput ? highWord : highWord >>> 0) + carry;
        value = high * 2 ** (32 - rightShift) + Math.floor(low / 2 ** rightShift);
      } else {
        const source = signedInput ? signedLane(cpu, rn, e, size + 1) : lane(cpu, rn, e, size + 1);
        value = Math.floor((source + round) / 2 ** rightShift);
      }
      setScratch(base + e, size, saturate(cpu, value, minimum, maximum));
    }
    if (!q) s32[2] = s32[3] = 0;
    writeScratch(cpu, rd, 1);
    return true;
  }
  if (opcode === 0b01110 || (opcode === 0b01100 && u === 1)) {
    // SQSHL/UQSHL (immediate) and SQSHLU: left shifts that saturate (QC).
    if (size === 3 || scalar) return false;
    cpu.checkFpEnabled();
    const signedInput = opcode === 0b01100 || u === 0;
    const unsignedOutput = u === 1;
    const maximum = unsignedOutput ? UNSIGNED_MAX[size] : SIGNED_MAX[size];
    const minimum = unsignedOutput ? 0 : SIGNED_MIN[size];
    const elements = (q ? 16 : 8) >>> size;
    clearScratch();
    for (let e = 0; e < elements; e++) {
      const source = signedInput ? signedLane(cpu, rn, e, size) : lane(cpu, rn, e, size);
      setScratch(e, size, saturate(cpu, source * 2 ** leftShift, minimum, maximum));
    }
    writeScratch(cpu, rd, q);
    return true;
  }
  if (opcode === 0b10000 || opcode === 0b10001) {
    // SHRN/RSHRN (U=0): narrow by shifting right.
    if (u || size === 3 || scalar) return false;
    cpu.checkFpEnabled();
    const elements = 8 >>> size;
    const base = q ? elements : 0;
    for (let i = 0; i < 4; i++) s32[i] = v[rd * 4 + i];
    const round = opcode === 0b10001 ? 2 ** (rightShift - 1) : 0;
    for (let e = 0; e < elements; e++) {
      let value: number;
      if (size === 2) {
        // 64-bit source on halves: add the rounding constant, keep bits [shift + 31 : shift].
        const sum = (v[rn * 4 + e * 2] >>> 0) + round;
        const low = sum | 0;
        const high = (v[rn * 4 + e * 2 + 1] + (sum > 0xffffffff ? 1 : 0)) | 0;
        value = rightShift === 32 ? high : (low >>> rightShift) | (high << (32 - rightShift));
      } else value = Math.floor((lane(cpu, rn, e, size + 1) + round) / 2 ** rightShift);
      setScratch(base + e, size, value);
    }
    if (!q) s32[2] = s32[3] = 0;
    writeScratch(cpu, rd, 1);
    return true;
  }
  if (size === 3 && !q && !scalar) return false;
  if (scalar && size !== 3) return false;
  let operation: number;
  switch (opcode) {
    case 0b00000:
      operation = 0;
      break; // SSHR/USHR
    case 0b00010:
      operation = 1;
      break; // SSRA/USRA
    case 0b00100:
      operation = 2;
      break; // SRSHR/URSHR
    case 0b00110:
      operation = 3;
      break; // SRSRA/URSRA
    case 0b01010:
      operation = u ? 5 : 4;
      break; // SHL / SLI
    case 0b01000:
      if (!u) return false;
      operation = 6;
      break; // SRI
    default:
      return false;
  }
  if ((operation === 4 || operation === 5) && immh < 1 << size) return false;
  cpu.checkFpEnabled();
  const elements = scalar ? 1 : (q ? 16 : 8) >>> size;
  clearScratch();
  for (let e = 0; e < elements; e++) {
    if (size === 3) {
      shift64Lane(cpu, operation, u, rd, rn, e, rightShift, leftShift);
      continue;
    }
    const a = element(cpu, rn, e, size, u);
    const d = lane(cpu, rd, e, size);
    let r: number;
    switch (operation) {
      case 0:
        r = Math.floor(a / 2 ** rightShift);
        break;
      case 1:
        r = d + Math.floor(a / 2 ** rightShift);
        break;
      case 2:
        r = Math.floor((a + 2 ** (rightShift - 1)) / 2 ** rightShift);
        break;
      case 3:
        r = d + Math.floor((a + 2 ** (rightShift - 1)) / 2 ** rightShift);
        break;
      case 4:
        r = a * 2 ** leftShift;
        r = r % 2 ** esize;
        break;
      case 5: {
        // SLI keeps the destination's low `leftShift` bits.
        r = ((a * 2 ** leftShift) % 2 ** esize) + (d % 2 ** leftShift);
        break;
      }
      default: {
        // SRI: shifted bits replace the low esize - shift bits.
        const keep = rightShift === esize ? d : d - (d % 2 ** (esize - rightShift));
        r = keep + Math.floor(lane(cpu, rn, e, size) / 2 ** rightShift);
      }
    }
    setScratch(e, size, size === 2 ? ((r % TWO_POW_32) + TWO_POW_32) % TWO_POW_32 : r);
  }
  writeScratch(cpu, rd, q || scalar ? (scalar ? 0 : 1) : 0);
  return true;
}

/** One 64-bit lane of a shift by immediate, on halves. */
function shift64Lane(
  cpu: Arm64Cpu,
  operation: number,
  u: number,
  rd: number,
  rn: number,
  e: number,
  right: number,
  left: number,
): void {
  const v = cpu.v32;
  const low = v[rn * 4 + e * 2];
  const high = v[rn * 4 + e * 2 + 1];
  let rLow: number;
  let rHigh: number;
  if (operation === 4 || operation === 5) {
    if (left === 0) {
      rLow = low;
      rHigh = high;
    } else if (left < 32) {
      rHigh = (high << left) | (low >>> (32 - left));
      rLow = low << left;
    } else {
      rHigh = low << (left - 32);
      rLow = 0;
    }
    if (operation === 5) {
      // SLI keeps the destination's low `left` bits.
      const dLow = v[rd * 4 + e * 2];
      const dHigh = v[rd * 4 + e * 2 + 1];
      const maskLow = left >= 32 ? -1 : (1 << left) - 1;
      const maskHigh = left > 32 ? (1 << (left - 32)) - 1 : 0;
      rLow |= dLow & maskLow;
      rHigh |= dHigh & maskHigh;
    }
  } else {
    // Right shifts of 1..64; rounding adds bit (right - 1) of the source.
    const fill = u ? 0 : high >> 31;
    if (right === 64) {
      rLow = fill;
      rHigh = fill;
    } else if (right >= 32) {
      rLow = u ? high >>> (right - 32) : high >> (right - 32);
      if (right === 32) rLow = high;
      rHigh = fill;
    } else {
      rLow = (low >>> right) | (high << (32 - right));
      rHigh = u ? high >>> right : high >> right;
    }
    if (operation === 2 || operation === 3) {
      const bit = right - 1;
      const roundBit = bit >= 32 ? (high >>> (bit - 32)) & 1 : (low >>> bit) & 1;
      if (roundBit) {
        const sum = (rLow >>> 0) + 1;
        rLow = sum | 0;
        if (sum > 0xffffffff) rHigh = (rHigh + 1) | 0;
        if (right === 64 && u) {
          rLow = 1;
          rHigh = 0;
        }
      }
    }
    if (operation === 6) {
      // SRI: keep the destination's top `right` bits.
      const dLow = v[rd * 4 + e * 2];
      const dHigh = v[rd * 4 + e * 2 + 1];
      const shiftedLow =
        right >= 32
          ? right === 64
            ? 0
            : high >>> (right - 32)
          : (low >>> right) | (high << (32 - right));
      const shiftedHigh = right >= 32 ? 0 : high >>> right;
      const keepBits = right;
      const keepHighMask = keepBits >= 32 ? -1 : keepBits === 0 ? 0 : ~((1 << (32 - keepBits)) - 1);
      const keepLowMask = keepBits > 32 ? ~((2 ** (64 - keepBits) - 1) | 0) : 0;
      rLow = (dLow & (keepBits === 64 ? -1 : keepLowMask)) | shiftedLow;
      rHigh = (dHigh & keepHighMask) | shiftedHigh;
    } else if (operation === 1 || operation === 3) {
      const sum = (v[rd * 4 + e * 2] >>> 0) + (rLow >>> 0);
      rLow = sum | 0;
      rHigh = (v[rd * 4 + e * 2 + 1] + rHigh + (sum > 0xffffffff ? 1 : 0)) | 0;
    }
  }
  s32[e * 2] = rLow;
  s32[e * 2 + 1] = rHigh;
}

function extract(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const imm4 = (word >>> 11) & 15;
  if (!q && imm4 >= 8) return false;
  cpu.checkFpEnabled();
  const rm = (word >>> 16) & 31;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  const bytes = q ? 16 : 8;
  const v8 = cpu.v8;
  for (let i = 0; i < bytes; i++) {
    const position = imm4 + i;
    s8[i] = position < bytes ? v8[rn * 16 + position] : v8[rm * 16 + position - bytes];
  }
  writeScratch(cpu, rd, q);
  return true;
}

function tableLookup(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const rm = (word >>> 16) & 31;
  const length = ((word >>> 13) & 3) + 1;
  const extension = (word >>> 12) & 1;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  cpu.checkFpEnabled();
  const v8 = cpu.v8;
  for (let i = 0; i < 16; i++) {
    const index = v8[rm * 16 + i];
    if (index < 16 * length) s8[i] = v8[((rn + (index >>> 4)) % 32) * 16 + (index & 15)];
    else s8[i] = extension ? v8[rd * 16 + i] : 0;
  }
  writeScratch(cpu, rd, q);
  return true;
}

function permute(cpu: Arm64Cpu, word: number): boolean {
  const q = (word >>> 30) & 1;
  const size = (word >>> 22) & 3;
  const rm = (word >>> 16) & 31;
  const opcode = (word >>> 12) & 7;
  const rn = (word >>> 5) & 31;
  const rd = word & 31;
  if (size === 3 && !q) return false;
  if (opcode === 0 || opcode === 4) return false;
  cpu.checkFpEnabled();
  const ebytes = 1 << size;
  const elements = (q ? 16 : 8) / ebytes;
  const part = (opcode >>> 2) & 1; // 1 for the "2" forms
  const half = elements / 2;
  const v8 = cpu.v8;
  for (let e = 0; e < elements; e++) {
    let reg: number;
    let index: number;
    switch (opcode & 3) {
      case 1: // UZP1/UZP2: even or odd elements of Vn:Vm
        index = 2 * e + part;
        reg = index < elements ? rn : rm;
        index %= elements;
        break;
      case 2: // TRN1/TRN2
        reg = e % 2 === 0 ? rn : rm;
        index = (e & ~1) + part;
        break;
      default: // ZIP1/ZIP2
        reg = e % 2 === 0 ? rn : rm;
        index = (e >>> 1) + part * half;
    }
    for (let b = 0; b < ebytes; b++) s8[e * ebytes + b] = v8[reg * 16 + index * ebytes + b];
  }
  writeScratch(cpu, rd, q);
  return true;
}
