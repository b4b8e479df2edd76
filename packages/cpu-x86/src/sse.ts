/**
 * MMX, SSE and SSE2 (Intel SDM vol. 1 chapters 9-11, vol. 2 per
 * instruction; opcode map vol. 2D table A-3). The 0F-map opcodes that these
 * extensions define arrive here from the interpreter's two-byte dispatch.
 *
 * Register state lives in the FPU object (`fpu.xmm`, `fpu.mm`, `fpu.mxcsr`)
 * so that FXSAVE/FXRSTOR and save/restore see one copy. Lanes are handled in
 * preallocated typed arrays (A: destination / first source, B: second
 * source); no allocation, no BigInt, and exceptions only for faults.
 *
 * Exception rules (SDM vol. 3A 2.5 and 13.1, vol. 2 "SIMD Floating-Point
 * Exceptions" per instruction):
 * - SSE/SSE2: #UD if CR0.EM or !CR4.OSFXSR; #NM if CR0.TS; #GP(0) for a
 *   misaligned 16-byte operand of every legacy SSE instruction except the
 *   explicitly unaligned moves; #XM (or #UD without CR4.OSXMMEXCPT) for an
 *   unmasked SIMD floating-point exception, with the destination unchanged.
 * - MMX: #UD if CR0.EM; #NM if CR0.TS; #MF if an unmasked x87 exception is
 *   pending. Every MMX instruction but EMMS sets TOP = 0 and all tags valid
 *   (SDM vol. 1 9.5.1); EMMS empties the tags.
 */

import { Cr0, Cr4, Flag, Vector } from "./constants";
import type { X86Cpu } from "./cpu";
import { Info } from "./decoder";
import {
  add,
  DAZ,
  DE,
  DOUBLE,
  divide,
  type Format,
  IE,
  multiply,
  RC_SHIFT,
  roundFlags,
  roundValue,
  SINGLE,
  squareRoot,
  toInt32,
  ZE,
} from "./simd-float";

// Scratch lanes: A is the destination (and first source), B the second source.
const A = new Int32Array(4);
const A8 = new Uint8Array(A.buffer);
const A16 = new Int16Array(A.buffer);
const B = new Int32Array(4);
const B8 = new Uint8Array(B.buffer);
const B16 = new Int16Array(B.buffer);
const T = new Int32Array(4);
const T8 = new Uint8Array(T.buffer);
const T16 = new Int16Array(T.buffer);

const f32 = new Float32Array(1);
const f32w = new Int32Array(f32.buffer);
const f64 = new Float64Array(1);
const f64w = new Int32Array(f64.buffer);

/** Pre-computation (IE DE ZE) and post-computation (OE UE PE) flags of the current instruction. */
let pre = 0;
let post = 0;

const INDEFINITE32 = 0xffc00000 | 0;
const INDEFINITE64_HIGH = 0xfff80000 | 0;
const ARITHMETIC_FLAGS = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

// ---------------------------------------------------------------------------
// Checks

function checkSse(cpu: X86Cpu): void {
  if (cpu.cr0 & Cr0.EM || !(cpu.cr4 & Cr4.OSFXSR)) cpu.fault(Vector.UD, 0);
  if (cpu.cr0 & Cr0.TS) cpu.fault(Vector.NM, 0);
}

/** MMX entry: checks, then the x87 state becomes MMX state (SDM vol. 1 9.5.1). */
function enterMmx(cpu: X86Cpu): void {
  if (cpu.cr0 & Cr0.EM) cpu.fault(Vector.UD, 0);
  if (cpu.cr0 & Cr0.TS) cpu.fault(Vector.NM, 0);
  const fpu = cpu.fpu;
  // A pending unmasked x87 exception is delivered first (SDM vol. 3A 2.5, table 12-? MMX).
  if (fpu.status & 0x80 && cpu.cr0 & Cr0.NE) cpu.fault(Vector.MF, 0);
  fpu.top = 0;
  fpu.empty.fill(0);
}

/** Reports the instruction's SIMD exceptions; returns false when an unmasked one faults. */
function finishFloat(cpu: X86Cpu): void {
  const fpu = cpu.fpu;
  const unmasked = ~(fpu.mxcsr >> 7) & 0x3f;
  if (pre & unmasked) {
    // Results are not computed, so only pre-computation flags are reported (SDM vol. 1 11.5.2).
    fpu.mxcsr |= pre;
    raiseXm(cpu);
  }
  if (post & unmasked) {
    fpu.mxcsr |= pre | post;
    raiseXm(cpu);
  }
  fpu.mxcsr |= pre | post;
}

function raiseXm(cpu: X86Cpu): never {
  // Without CR4.OSXMMEXCPT the exception is #UD (SDM vol. 3A 13.1.4).
  return cpu.fault(cpu.cr4 & Cr4.OSXMMEXCPT ? Vector.XM : Vector.UD, 0);
}

// ---------------------------------------------------------------------------
// Operands

function memoryAddress(cpu: X86Cpu, slot: number, bytes: number, aligned: boolean, write: boolean) {
  const sizeLog = bytes === 16 ? 4 : bytes === 8 ? 3 : bytes === 4 ? 2 : bytes === 2 ? 1 : 0;
  const address = cpu.ea(slot, sizeLog, write);
  if (aligned && address & 15) cpu.fault(Vector.GP, 0);
  return address;
}

function readMemory(cpu: X86Cpu, address: number, into: Int32Array, bytes: number): void {
  if (bytes === 2) {
    into[0] = cpu.readLin16(address);
    return;
  }
  for (let i = 0; i < bytes >> 2; i++) into[i] = cpu.readLin32((address + 4 * i) | 0);
}

function writeMemory(cpu: X86Cpu, address: number, from: Int32Array, bytes: number): void {
  if (bytes > 4) cpu.probeWrite(address, bytes);
  for (let i = 0; i < bytes >> 2; i++) cpu.writeLin32((address + 4 * i) | 0, from[i]);
}

function loadXmm(cpu: X86Cpu, r: number, into: Int32Array): void {
  const x = cpu.fpu.xmm;
  into[0] = x[r * 4];
  into[1] = x[r * 4 + 1];
  into[2] = x[r * 4 + 2];
  into[3] = x[r * 4 + 3];
}

function storeXmm(cpu: X86Cpu, r: number, from: Int32Array): void {
  const x = cpu.fpu.xmm;
  x[r * 4] = from[0];
  x[r * 4 + 1] = from[1];
  x[r * 4 + 2] = from[2];
  x[r * 4 + 3] = from[3];
}

/** The xmm/m operand (bytes 16, 8 or 4) into B; `aligned` for the m128 forms that require it. */
function sourceXmm(cpu: X86Cpu, slot: number, info: number, rm: number, bytes: number): void {
  if (info & Info.MEM) {
    readMemory(cpu, memoryAddress(cpu, slot, bytes, bytes === 16, false), B, bytes);
  } else loadXmm(cpu, rm, B);
}

function loadMm(cpu: X86Cpu, r: number, into: Int32Array, at: number): void {
  const fpu = cpu.fpu;
  if (fpu.mmValid[r] && Number.isNaN(fpu.st[r])) {
    into[at] = fpu.mm[r * 2];
    into[at + 1] = fpu.mm[r * 2 + 1];
    return;
  }
  // The register was last written by x87 code: MMi is its 64-bit significand.
  fpu.significandOf(fpu.st[r]);
  into[at] = fpu.significandLow;
  into[at + 1] = fpu.significandHigh;
}

function storeMm(cpu: X86Cpu, r: number, low: number, high: number): void {
  const fpu = cpu.fpu;
  fpu.mm[r * 2] = low;
  fpu.mm[r * 2 + 1] = high;
  fpu.mmValid[r] = 1;
  // The exponent field becomes all ones (SDM vol. 1 9.5.1): a NaN to x87 code.
  fpu.st[r] = Number.NaN;
}

function sourceMm(cpu: X86Cpu, slot: number, info: number, rm: number, bytes: number): void {
  if (info & Info.MEM) readMemory(cpu, memoryAddress(cpu, slot, bytes, false, false), B, bytes);
  else loadMm(cpu, rm, B, 0);
}

// ---------------------------------------------------------------------------
// Floating-point lanes

function kind32(b: number): number {
  const exponent = (b >>> 23) & 0xff;
  const fraction = b & 0x7fffff;
  if (exponent === 0) return fraction === 0 ? 0 : 2;
  if (exponent === 0xff) return fraction === 0 ? 3 : fraction & 0x400000 ? 4 : 5;
  return 1;
}

function kind64(low: number, high: number): number {
  const exponent = (high >>> 20) & 0x7ff;
  const zeroFraction = (high & 0xfffff) === 0 && low === 0;
  if (exponent === 0) return zeroFraction ? 0 : 2;
  if (exponent === 0x7ff) return zeroFraction ? 3 : high & 0x80000 ? 4 : 5;
  return 1;
}

/** The value of a non-NaN single lane; a denormal is DE or, under DAZ, a signed zero. */
function value32(b: number, kind: number, mxcsr: number, reportDenormal: boolean): number {
  if (kind === 2) {
    if (mxcsr & DAZ) return b < 0 ? -0 : 0;
    if (reportDenormal) pre |= DE;
  }
  f32w[0] = b;
  return f32[0];
}

function value64(low: number, high: number, kind: number, mxcsr: number, report: boolean): number {
  if (kind === 2) {
    if (mxcsr & DAZ) return high < 0 ? -0 : 0;
    if (report) pre |= DE;
  }
  f64w[0] = low;
  f64w[1] = high;
  return f64[0];
}

function bits32(value: number): number {
  f32[0] = value;
  return f32w[0];
}

let resultLow = 0;
let resultHigh = 0;
function bits64(value: number): void {
  f64[0] = value;
  resultLow = f64w[0];
  resultHigh = f64w[1];
}

/**
 * add/sub/mul/div (0-3) of two finite-or-infinite values; NaN means the
 * default NaN (invalid operation).
 */
function arithmetic(op: number, a: number, b: number, format: Format, mxcsr: number): number {
  switch (op) {
    case 0:
    case 1: {
      if (op === 1) b = -b;
      const infA = a === Number.POSITIVE_INFINITY || a === Number.NEGATIVE_INFINITY;
      const infB = b === Number.POSITIVE_INFINITY || b === Number.NEGATIVE_INFINITY;
      if (infA || infB) {
        if (infA && infB && a !== b) {
          pre |= IE;
          return Number.NaN;
        }
        return infA ? a : b;
      }
      const r = add(a, b, format, mxcsr);
      post |= roundFlags;
      return r;
    }
    case 2: {
      const infA = !Number.isFinite(a);
      const infB = !Number.isFinite(b);
      if ((infA && b === 0) || (infB && a === 0)) {
        pre |= IE;
        return Number.NaN;
      }
      if (infA || infB || a === 0 || b === 0) return a * b;
      const r = multiply(a, b, format, mxcsr);
      post |= roundFlags;
      return r;
    }
    default: {
      const infA = !Number.isFinite(a);
      const infB = !Number.isFinite(b);
      if ((infA && infB) || (a === 0 && b === 0)) {
        pre |= IE;
        return Number.NaN;
      }
      if (b === 0) {
        // Only a finite dividend divides by zero; infinity / 0 is infinity (SDM vol. 1 4.9.1.3).
        if (!infA) pre |= ZE;
        return a < 0 !== Object.is(b, -0) ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
      }
      if (infA || infB || a === 0) return a / b;
      const r = divide(a, b, format, mxcsr);
      post |= roundFlags;
      return r;
    }
  }
}

/** One single-precision lane of add/sub/mul/div/min/max/sqrt (ops 0-3, 4 min, 5 max, 6 sqrt). */
function lane32(op: number, a: number, b: number, mxcsr: number): number {
  const ka = kind32(a);
  const kb = kind32(b);
  if (op >= 4 && op <= 5) {
    // MINPS/MAXPS: any NaN is invalid and returns the source (SDM vol. 2B MAXPS).
    if (ka >= 4 || kb >= 4) {
      // The source is returned as it was read: DAZ flushes a denormal one.
      pre |= IE;
      return kb === 2 && mxcsr & DAZ ? b & 0x80000000 : b;
    }
    const va = value32(a, ka, mxcsr, true);
    const vb = value32(b, kb, mxcsr, true);
    const takeA = op === 4 ? va < vb : va > vb;
    return takeA
      ? ka === 2 && mxcsr & DAZ
        ? a & 0x80000000
        : a
      : kb === 2 && mxcsr & DAZ
        ? b & 0x80000000
        : b;
  }
  if (op === 6) {
    if (kb >= 4) {
      if (kb === 5) pre |= IE;
      return b | 0x400000;
    }
    // A negative operand is invalid before it is denormal (no DE for sqrt(-denormal)).
    if (b < 0 && (kb !== 2 || !(mxcsr & DAZ)) && kb !== 0) {
      pre |= IE;
      return INDEFINITE32;
    }
    const v = value32(b, kb, mxcsr, true);
    if (v === 0) return bits32(v);
    if (v === Number.POSITIVE_INFINITY) return b;
    const r = squareRoot(v, SINGLE, mxcsr);
    post |= roundFlags;
    return bits32(r);
  }
  if (ka >= 4 || kb >= 4) {
    // NaN operands: the first NaN (destination first), quieted (SDM vol. 1 table 4-7).
    if (ka === 5 || kb === 5) pre |= IE;
    return ka >= 4 ? a | 0x400000 : b | 0x400000;
  }
  // Division by zero is reported instead of a denormal dividend (checked on the host).
  const report = !(op === 3 && (kb === 0 || (kb === 2 && mxcsr & DAZ)));
  const vb = value32(b, kb, mxcsr, true);
  const r = arithmetic(op, value32(a, ka, mxcsr, report), vb, SINGLE, mxcsr);
  return Number.isNaN(r) ? INDEFINITE32 : bits32(r);
}

/** One double lane (A/B dwords at index i, i+1) into resultLow/resultHigh. */
function lane64(op: number, i: number, mxcsr: number): void {
  const aLow = A[i];
  const aHigh = A[i + 1];
  const bLow = B[i];
  const bHigh = B[i + 1];
  const ka = kind64(aLow, aHigh);
  const kb = kind64(bLow, bHigh);
  if (op >= 4 && op <= 5) {
    if (ka >= 4 || kb >= 4) {
      pre |= IE;
      const flush = kb === 2 && (mxcsr & DAZ) !== 0;
      resultLow = flush ? 0 : bLow;
      resultHigh = flush ? bHigh & 0x80000000 : bHigh;
      return;
    }
    const va = value64(aLow, aHigh, ka, mxcsr, true);
    const vb = value64(bLow, bHigh, kb, mxcsr, true);
    const takeA = op === 4 ? va < vb : va > vb;
    const daz = mxcsr & DAZ;
    if (takeA) {
      resultLow = ka === 2 && daz ? 0 : aLow;
      resultHigh = ka === 2 && daz ? aHigh & 0x80000000 : aHigh;
    } else {
      resultLow = kb === 2 && daz ? 0 : bLow;
      resultHigh = kb === 2 && daz ? bHigh & 0x80000000 : bHigh;
    }
    return;
  }
  if (op === 6) {
    if (kb >= 4) {
      if (kb === 5) pre |= IE;
      resultLow = bLow;
      resultHigh = bHigh | 0x80000;
      return;
    }
    if (bHigh < 0 && (kb !== 2 || !(mxcsr & DAZ)) && kb !== 0) {
      pre |= IE;
      resultLow = 0;
      resultHigh = INDEFINITE64_HIGH;
      return;
    }
    const v = value64(bLow, bHigh, kb, mxcsr, true);
    if (v === 0 || v === Number.POSITIVE_INFINITY) {
      bits64(v);
      return;
    }
    const r = squareRoot(v, DOUBLE, mxcsr);
    post |= roundFlags;
    bits64(r);
    return;
  }
  if (ka >= 4 || kb >= 4) {
    if (ka === 5 || kb === 5) pre |= IE;
    if (ka >= 4) {
      resultLow = aLow;
      resultHigh = aHigh | 0x80000;
    } else {
      resultLow = bLow;
      resultHigh = bHigh | 0x80000;
    }
    return;
  }
  const report = !(op === 3 && (kb === 0 || (kb === 2 && mxcsr & DAZ)));
  const vb = value64(bLow, bHigh, kb, mxcsr, true);
  const va = value64(aLow, aHigh, ka, mxcsr, report);
  const r = arithmetic(op, va, vb, DOUBLE, mxcsr);
  if (Number.isNaN(r)) {
    resultLow = 0;
    resultHigh = INDEFINITE64_HIGH;
  } else bits64(r);
}

/**
 * CMPPS predicate (imm8 & 7): EQ LT LE UNORD NEQ NLT NLE ORD. LT/LE/NLT/NLE
 * signal invalid for any NaN, the others for SNaN only (SDM vol. 2A CMPPS).
 */
function compareValues(predicate: number, ka: number, kb: number, va: number, vb: number): boolean {
  const unordered = ka >= 4 || kb >= 4;
  const signaling = predicate === 1 || predicate === 2 || predicate === 5 || predicate === 6;
  if (unordered && (signaling || ka === 5 || kb === 5)) pre |= IE;
  switch (predicate) {
    case 0:
      return !unordered && va === vb;
    case 1:
      return !unordered && va < vb;
    case 2:
      return !unordered && va <= vb;
    case 3:
      return unordered;
    case 4:
      return unordered || va !== vb;
    case 5:
      return unordered || !(va < vb);
    case 6:
      return unordered || !(va <= vb);
    default:
      return !unordered;
  }
}

function compare32(predicate: number, a: number, b: number, mxcsr: number): number {
  const ka = kind32(a);
  const kb = kind32(b);
  // With a NaN operand only IE can be raised: the other is not checked for DE.
  const nan = ka >= 4 || kb >= 4;
  const va = nan ? 0 : value32(a, ka, mxcsr, true);
  const vb = nan ? 0 : value32(b, kb, mxcsr, true);
  return compareValues(predicate, ka, kb, va, vb) ? -1 : 0;
}

function compare64(predicate: number, i: number, mxcsr: number): number {
  const ka = kind64(A[i], A[i + 1]);
  const kb = kind64(B[i], B[i + 1]);
  const nan = ka >= 4 || kb >= 4;
  const va = nan ? 0 : value64(A[i], A[i + 1], ka, mxcsr, true);
  const vb = nan ? 0 : value64(B[i], B[i + 1], kb, mxcsr, true);
  return compareValues(predicate, ka, kb, va, vb) ? -1 : 0;
}

/** COMISS/UCOMISS/COMISD/UCOMISD: ZF PF CF from the comparison, OF SF AF cleared (SDM vol. 2A COMISS). */
function compareToFlags(cpu: X86Cpu, double: boolean, signalQuiet: boolean): void {
  const mxcsr = cpu.fpu.mxcsr;
  let ka: number;
  let kb: number;
  let va = 0;
  let vb = 0;
  if (double) {
    ka = kind64(A[0], A[1]);
    kb = kind64(B[0], B[1]);
    if (ka < 4 && kb < 4) {
      va = value64(A[0], A[1], ka, mxcsr, true);
      vb = value64(B[0], B[1], kb, mxcsr, true);
    }
  } else {
    ka = kind32(A[0]);
    kb = kind32(B[0]);
    if (ka < 4 && kb < 4) {
      va = value32(A[0], ka, mxcsr, true);
      vb = value32(B[0], kb, mxcsr, true);
    }
  }
  let flags: number;
  if (ka >= 4 || kb >= 4) {
    if (signalQuiet || ka === 5 || kb === 5) pre |= IE;
    flags = Flag.ZF | Flag.PF | Flag.CF;
    // A NaN operand is never denormal: only IE.
  } else if (va > vb) flags = 0;
  else if (va < vb) flags = Flag.CF;
  else flags = Flag.ZF;
  finishFloat(cpu);
  cpu.materializeFlags();
  cpu.flagsRaw = (cpu.flagsRaw & ~ARITHMETIC_FLAGS) | flags;
}

/** Single lane to double (CVTSS2SD): exact; SNaN quieted with IE, denormal DE. */
function singleToDouble(b: number, mxcsr: number): void {
  const k = kind32(b);
  if (k >= 4) {
    if (k === 5) pre |= IE;
    // Sign, then the fraction moved to the top of the double's fraction, quiet bit set.
    resultHigh = (b & 0x80000000) | 0x7ff80000 | ((b & 0x3fffff) >>> 3);
    resultLow = (b & 7) << 29;
    return;
  }
  bits64(value32(b, k, mxcsr, true));
}

/** Double lane i of B to single (CVTSD2SS): rounded under MXCSR. */
function doubleToSingle(i: number, mxcsr: number): number {
  const low = B[i];
  const high = B[i + 1];
  const k = kind64(low, high);
  if (k >= 4) {
    if (k === 5) pre |= IE;
    return (high & 0x80000000) | 0x7fc00000 | ((high & 0x7ffff) << 3) | (low >>> 29);
  }
  const v = value64(low, high, k, mxcsr, true);
  if (v === 0 || !Number.isFinite(v)) return bits32(v);
  const r = roundValue(v, SINGLE, mxcsr);
  post |= roundFlags;
  return bits32(r);
}

/** A single lane to int32 (truncating or by MXCSR.RC); NaN and overflow give 0x80000000 with IE. */
function singleToInt(b: number, truncate: boolean, mxcsr: number): number {
  const k = kind32(b);
  if (k >= 3) {
    pre |= IE;
    return 0x80000000 | 0;
  }
  const v = value32(b, k, mxcsr, false);
  const r = toInt32(v, truncate ? 3 : (mxcsr >> RC_SHIFT) & 3);
  if (roundFlags & IE) pre |= IE;
  else post |= roundFlags;
  return r;
}

function doubleToInt(i: number, truncate: boolean, mxcsr: number): number {
  const k = kind64(B[i], B[i + 1]);
  if (k >= 3) {
    pre |= IE;
    return 0x80000000 | 0;
  }
  const v = value64(B[i], B[i + 1], k, mxcsr, false);
  const r = toInt32(v, truncate ? 3 : (mxcsr >> RC_SHIFT) & 3);
  if (roundFlags & IE) pre |= IE;
  else post |= roundFlags;
  return r;
}

function intToSingle(n: number, mxcsr: number): number {
  const r = roundValue(n, SINGLE, mxcsr);
  post |= roundFlags;
  return bits32(r);
}

// ---------------------------------------------------------------------------
// Integer lanes (on A and B; `bytes` is 8 for MMX, 16 for XMM)

function saturateSignedByte(v: number): number {
  return v > 127 ? 127 : v < -128 ? -128 : v;
}

function saturateSignedWord(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/** The shift count of PSLL/PSRL/PSRA from B (64 bits: anything above 63 counts as large). */
function shiftCount(): number {
  return B[1] !== 0 || B[0] >>> 0 > 255 ? 255 : B[0];
}

/** Shifts A's lanes of `width` bytes by `count`: kind 0 left, 1 logical right, 2 arithmetic right. */
function shiftLanes(bytes: number, width: number, kind: number, count: number): void {
  if (width === 2) {
    for (let i = 0; i < bytes >> 1; i++) {
      const v = A16[i];
      if (kind === 2) A16[i] = v >> (count > 15 ? 15 : count);
      else if (count > 15) A16[i] = 0;
      else A16[i] = kind === 0 ? v << count : (v & 0xffff) >>> count;
    }
  } else if (width === 4) {
    for (let i = 0; i < bytes >> 2; i++) {
      const v = A[i];
      if (kind === 2) A[i] = v >> (count > 31 ? 31 : count);
      else if (count > 31) A[i] = 0;
      else A[i] = kind === 0 ? v << count : v >>> count;
    }
  } else {
    for (let i = 0; i < bytes >> 2; i += 2) {
      const low = A[i];
      const high = A[i + 1];
      if (count > 63) {
        A[i] = 0;
        A[i + 1] = 0;
      } else if (kind === 0) {
        if (count >= 32) {
          A[i + 1] = low << (count - 32);
          A[i] = 0;
        } else if (count > 0) {
          A[i + 1] = (high << count) | (low >>> (32 - count));
          A[i] = low << count;
        }
      } else if (count >= 32) {
        A[i] = high >>> (count - 32);
        A[i + 1] = 0;
      } else if (count > 0) {
        A[i] = (low >>> count) | (high << (32 - count));
        A[i + 1] = high >>> count;
      }
    }
  }
}

/** 32 x 32 -> 64 unsigned multiply into resultLow/resultHigh (PMULUDQ). */
function multiplyUnsigned(a: number, b: number): void {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const low = a0 * b0;
  const middle = a1 * b0 + a0 * b1; // < 2^33
  const lowSum = low + (middle % 65536) * 65536;
  resultLow = lowSum | 0;
  resultHigh = (a1 * b1 + Math.floor(middle / 65536) + Math.floor(lowSum / 4294967296)) | 0;
}

/**
 * The integer operations shared by MMX (0F xx) and SSE2 (66 0F xx) on A and B.
 * Returns false for an opcode that is not one of them.
 */
function integerOp(op: number, bytes: number): boolean {
  const n8 = bytes;
  const n16 = bytes >> 1;
  const n32 = bytes >> 2;
  switch (op) {
    case 0x60: // punpcklbw
    case 0x68: {
      const half = op === 0x60 ? 0 : n8 >> 1;
      for (let i = 0; i < n8 >> 1; i++) {
        T8[2 * i] = A8[half + i];
        T8[2 * i + 1] = B8[half + i];
      }
      copyTo(A, T, n32);
      return true;
    }
    case 0x61: // punpcklwd
    case 0x69: {
      const half = op === 0x61 ? 0 : n16 >> 1;
      for (let i = 0; i < n16 >> 1; i++) {
        T16[2 * i] = A16[half + i];
        T16[2 * i + 1] = B16[half + i];
      }
      copyTo(A, T, n32);
      return true;
    }
    case 0x62: // punpckldq
    case 0x6a: {
      const half = op === 0x62 ? 0 : n32 >> 1;
      for (let i = 0; i < n32 >> 1; i++) {
        T[2 * i] = A[half + i];
        T[2 * i + 1] = B[half + i];
      }
      copyTo(A, T, n32);
      return true;
    }
    case 0x63: // packsswb
      for (let i = 0; i < n16; i++) T8[i] = saturateSignedByte(A16[i]);
      for (let i = 0; i < n16; i++) T8[n16 + i] = saturateSignedByte(B16[i]);
      copyTo(A, T, n32);
      return true;
    case 0x67: // packuswb
      for (let i = 0; i < n16; i++) {
        const v = A16[i];
        T8[i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      for (let i = 0; i < n16; i++) {
        const v = B16[i];
        T8[n16 + i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      copyTo(A, T, n32);
      return true;
    case 0x6b: // packssdw
      for (let i = 0; i < n32; i++) T16[i] = saturateSignedWord(A[i]);
      for (let i = 0; i < n32; i++) T16[n32 + i] = saturateSignedWord(B[i]);
      copyTo(A, T, n32);
      return true;
    case 0x64: // pcmpgtb
      for (let i = 0; i < n8; i++) A8[i] = (A8[i] << 24) >> 24 > (B8[i] << 24) >> 24 ? 0xff : 0;
      return true;
    case 0x65:
      for (let i = 0; i < n16; i++) A16[i] = A16[i] > B16[i] ? -1 : 0;
      return true;
    case 0x66:
      for (let i = 0; i < n32; i++) A[i] = A[i] > B[i] ? -1 : 0;
      return true;
    case 0x74: // pcmpeqb
      for (let i = 0; i < n8; i++) A8[i] = A8[i] === B8[i] ? 0xff : 0;
      return true;
    case 0x75:
      for (let i = 0; i < n16; i++) A16[i] = A16[i] === B16[i] ? -1 : 0;
      return true;
    case 0x76:
      for (let i = 0; i < n32; i++) A[i] = A[i] === B[i] ? -1 : 0;
      return true;
    case 0xd1: // psrlw
    case 0xd2:
    case 0xd3:
      shiftLanes(bytes, op === 0xd1 ? 2 : op === 0xd2 ? 4 : 8, 1, shiftCount());
      return true;
    case 0xe1: // psraw
    case 0xe2:
      shiftLanes(bytes, op === 0xe1 ? 2 : 4, 2, shiftCount());
      return true;
    case 0xf1: // psllw
    case 0xf2:
    case 0xf3:
      shiftLanes(bytes, op === 0xf1 ? 2 : op === 0xf2 ? 4 : 8, 0, shiftCount());
      return true;
    case 0xd4: // paddq
    case 0xfb: // psubq
      for (let i = 0; i < n32; i += 2) {
        const subtract = op === 0xfb;
        const bLow = subtract ? ~B[i] : B[i];
        const bHigh = subtract ? ~B[i + 1] : B[i + 1];
        const low = (A[i] >>> 0) + (bLow >>> 0) + (subtract ? 1 : 0);
        A[i] = low | 0;
        A[i + 1] = (A[i + 1] + bHigh + (low > 0xffffffff ? 1 : 0)) | 0;
      }
      return true;
    case 0xd5: // pmullw
      for (let i = 0; i < n16; i++) A16[i] = Math.imul(A16[i], B16[i]);
      return true;
    case 0xe5: // pmulhw
      for (let i = 0; i < n16; i++) A16[i] = (A16[i] * B16[i]) >> 16;
      return true;
    case 0xe4: // pmulhuw
      for (let i = 0; i < n16; i++) A16[i] = ((A16[i] & 0xffff) * (B16[i] & 0xffff)) >>> 16;
      return true;
    case 0xf4: // pmuludq
      for (let i = 0; i < n32; i += 2) {
        multiplyUnsigned(A[i], B[i]);
        A[i] = resultLow;
        A[i + 1] = resultHigh;
      }
      return true;
    case 0xf5: // pmaddwd
      for (let i = 0; i < n32; i++) {
        A[i] = (A16[2 * i] * B16[2 * i] + A16[2 * i + 1] * B16[2 * i + 1]) | 0;
      }
      return true;
    case 0xf6: // psadbw
      for (let q = 0; q < n8; q += 8) {
        let sum = 0;
        for (let i = q; i < q + 8; i++) {
          const d = A8[i] - B8[i];
          sum += d < 0 ? -d : d;
        }
        A[q >> 2] = sum;
        A[(q >> 2) + 1] = 0;
      }
      return true;
    case 0xd8: // psubusb
      for (let i = 0; i < n8; i++) {
        const v = A8[i] - B8[i];
        A8[i] = v < 0 ? 0 : v;
      }
      return true;
    case 0xd9: // psubusw
      for (let i = 0; i < n16; i++) {
        const v = (A16[i] & 0xffff) - (B16[i] & 0xffff);
        A16[i] = v < 0 ? 0 : v;
      }
      return true;
    case 0xdc: // paddusb
      for (let i = 0; i < n8; i++) {
        const v = A8[i] + B8[i];
        A8[i] = v > 255 ? 255 : v;
      }
      return true;
    case 0xdd: // paddusw
      for (let i = 0; i < n16; i++) {
        const v = (A16[i] & 0xffff) + (B16[i] & 0xffff);
        A16[i] = v > 0xffff ? 0xffff : v;
      }
      return true;
    case 0xe8: // psubsb
    case 0xec: // paddsb
      for (let i = 0; i < n8; i++) {
        const a = (A8[i] << 24) >> 24;
        const b = (B8[i] << 24) >> 24;
        A8[i] = saturateSignedByte(op === 0xe8 ? a - b : a + b);
      }
      return true;
    case 0xe9: // psubsw
    case 0xed: // paddsw
      for (let i = 0; i < n16; i++) {
        A16[i] = saturateSignedWord(op === 0xe9 ? A16[i] - B16[i] : A16[i] + B16[i]);
      }
      return true;
    case 0xda: // pminub
    case 0xde: // pmaxub
      for (let i = 0; i < n8; i++) {
        const a = A8[i];
        const b = B8[i];
        A8[i] = op === 0xda ? (a < b ? a : b) : a > b ? a : b;
      }
      return true;
    case 0xea: // pminsw
    case 0xee: // pmaxsw
      for (let i = 0; i < n16; i++) {
        const a = A16[i];
        const b = B16[i];
        A16[i] = op === 0xea ? (a < b ? a : b) : a > b ? a : b;
      }
      return true;
    case 0xe0: // pavgb
      for (let i = 0; i < n8; i++) A8[i] = (A8[i] + B8[i] + 1) >> 1;
      return true;
    case 0xe3: // pavgw
      for (let i = 0; i < n16; i++) A16[i] = ((A16[i] & 0xffff) + (B16[i] & 0xffff) + 1) >> 1;
      return true;
    case 0xdb: // pand
      for (let i = 0; i < n32; i++) A[i] &= B[i];
      return true;
    case 0xdf: // pandn
      for (let i = 0; i < n32; i++) A[i] = ~A[i] & B[i];
      return true;
    case 0xeb: // por
      for (let i = 0; i < n32; i++) A[i] |= B[i];
      return true;
    case 0xef: // pxor
      for (let i = 0; i < n32; i++) A[i] ^= B[i];
      return true;
    case 0xf8: // psubb
    case 0xfc: // paddb
      for (let i = 0; i < n8; i++) A8[i] = op === 0xf8 ? A8[i] - B8[i] : A8[i] + B8[i];
      return true;
    case 0xf9: // psubw
    case 0xfd: // paddw
      for (let i = 0; i < n16; i++) A16[i] = op === 0xf9 ? A16[i] - B16[i] : A16[i] + B16[i];
      return true;
    case 0xfa: // psubd
    case 0xfe: // paddd
      for (let i = 0; i < n32; i++) A[i] = op === 0xfa ? A[i] - B[i] : A[i] + B[i];
      return true;
    default:
      return false;
  }
}

function copyTo(to: Int32Array, from: Int32Array, count: number): void {
  for (let i = 0; i < count; i++) to[i] = from[i];
}

/** Opcodes (low byte of the 0F map) whose no-prefix form is an MMX integer operation. */
const MMX_INTEGER = new Uint8Array(256);
for (const op of [
  0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x74, 0x75, 0x76, 0xd1,
  0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3,
  0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
  0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
])
  MMX_INTEGER[op] = 1;

// ---------------------------------------------------------------------------
// Dispatch

/**
 * Executes the MMX/SSE/SSE2 instruction `op` (0x100 | second opcode byte).
 * The mandatory prefix selects the form: none, 66, F3 (REP) or F2 (REPNE);
 * F2/F3 take precedence over 66 (SDM vol. 2A 2.1.2).
 */
export function executeSimd(cpu: X86Cpu, slot: number, op: number, info: number): void {
  const d = cpu.decoded;
  const modrm = d.modrm[slot];
  const reg = (modrm >> 3) & 7;
  const rm = modrm & 7;
  const memory = (info & Info.MEM) !== 0;
  // In 16-bit code the decoder's O16 means "no 66 prefix".
  const p66 = ((info & Info.O16) !== 0) === cpu.code32;
  const prefix = info & Info.REP ? 2 : info & Info.REPNE ? 3 : p66 ? 1 : 0;
  const imm = d.immediate[slot] & 0xff;
  const low = op & 0xff;
  if (info & Info.LOCK) cpu.fault(Vector.UD, 0);

  if (MMX_INTEGER[low]) {
    if (prefix === 0) {
      enterMmx(cpu);
      loadMm(cpu, reg, A, 0);
      sourceMm(cpu, slot, info, rm, 8);
      integerOp(low, 8);
      storeMm(cpu, reg, A[0], A[1]);
      return;
    }
    if (prefix === 1) {
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, 16);
      integerOp(low, 16);
      storeXmm(cpu, reg, A);
      return;
    }
    cpu.fault(Vector.UD, 0);
  }

  switch (low) {
    case 0x10:
    case 0x11:
      movePackedOrScalar(cpu, slot, info, prefix, reg, rm, low === 0x11, true);
      return;
    case 0x28:
    case 0x29:
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      movePackedOrScalar(cpu, slot, info, prefix, reg, rm, low === 0x29, false);
      return;
    case 0x12:
    case 0x13:
    case 0x16:
    case 0x17: {
      // movlps/movlpd/movhlps, movhps/movhpd/movlhps (SDM vol. 2B MOVLPS, MOVHLPS).
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      const highHalf = low >= 0x16 ? 2 : 0;
      const store = (low & 1) === 1;
      if (store) {
        if (!memory) cpu.fault(Vector.UD, 0);
        loadXmm(cpu, reg, A);
        T[0] = A[highHalf];
        T[1] = A[highHalf + 1];
        writeMemory(cpu, memoryAddress(cpu, slot, 8, false, true), T, 8);
        return;
      }
      loadXmm(cpu, reg, A);
      if (memory) {
        readMemory(cpu, memoryAddress(cpu, slot, 8, false, false), B, 8);
        A[highHalf] = B[0];
        A[highHalf + 1] = B[1];
      } else {
        if (prefix === 1) cpu.fault(Vector.UD, 0);
        loadXmm(cpu, rm, B);
        // movhlps: low <- source high; movlhps: high <- source low.
        const from = highHalf ? 0 : 2;
        A[highHalf] = B[from];
        A[highHalf + 1] = B[from + 1];
      }
      storeXmm(cpu, reg, A);
      return;
    }
    case 0x14:
    case 0x15: {
      // unpcklps/unpckhps, unpcklpd/unpckhpd.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, 16);
      const h = low === 0x15 ? 2 : 0;
      if (prefix === 0) {
        T[0] = A[h];
        T[1] = B[h];
        T[2] = A[h + 1];
        T[3] = B[h + 1];
      } else {
        T[0] = A[h];
        T[1] = A[h + 1];
        T[2] = B[h];
        T[3] = B[h + 1];
      }
      storeXmm(cpu, reg, T);
      return;
    }
    case 0x2a:
      convertFromInteger(cpu, slot, info, prefix, reg, rm);
      return;
    case 0x2b:
    case 0xe7: {
      // movntps/movntpd, movntq/movntdq: non-temporal stores (no cache model; aligned for 128 bits).
      if (!memory || (low === 0x2b && prefix > 1) || (low === 0xe7 && prefix > 1)) {
        cpu.fault(Vector.UD, 0);
      }
      if (low === 0xe7 && prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, reg, T, 0);
        writeMemory(cpu, memoryAddress(cpu, slot, 8, false, true), T, 8);
        return;
      }
      checkSse(cpu);
      loadXmm(cpu, reg, T);
      writeMemory(cpu, memoryAddress(cpu, slot, 16, true, true), T, 16);
      return;
    }
    case 0x2c:
    case 0x2d:
      convertToInteger(cpu, slot, info, prefix, reg, rm, low === 0x2c);
      return;
    case 0x2e:
    case 0x2f:
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, prefix === 1 ? 8 : 4);
      pre = 0;
      post = 0;
      compareToFlags(cpu, prefix === 1, low === 0x2f);
      return;
    case 0x50: {
      // movmskps/movmskpd r32, xmm.
      if (!memory && prefix <= 1) {
        checkSse(cpu);
        loadXmm(cpu, rm, B);
        cpu.regs[reg] =
          prefix === 0
            ? (B[0] >>> 31) | ((B[1] >>> 31) << 1) | ((B[2] >>> 31) << 2) | ((B[3] >>> 31) << 3)
            : (B[1] >>> 31) | ((B[3] >>> 31) << 1);
        return;
      }
      cpu.fault(Vector.UD, 0);
      return;
    }
    case 0x51:
    case 0x58:
    case 0x59:
    case 0x5c:
    case 0x5d:
    case 0x5e:
    case 0x5f:
      floatArithmetic(cpu, slot, info, prefix, reg, rm, ARITHMETIC_OP[low - 0x51]);
      return;
    case 0x52:
    case 0x53:
      if (prefix === 1 || prefix === 3) cpu.fault(Vector.UD, 0);
      reciprocal(cpu, slot, info, prefix, reg, rm, low === 0x52);
      return;
    case 0x54:
    case 0x55:
    case 0x56:
    case 0x57: {
      // andps andnps orps xorps (and the pd forms): bitwise, no exceptions.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, 16);
      for (let i = 0; i < 4; i++) {
        const a = A[i];
        const b = B[i];
        A[i] = low === 0x54 ? a & b : low === 0x55 ? ~a & b : low === 0x56 ? a | b : a ^ b;
      }
      storeXmm(cpu, reg, A);
      return;
    }
    case 0x5a:
      convertPrecision(cpu, slot, info, prefix, reg, rm);
      return;
    case 0x5b:
    case 0xe6:
      convertPackedIntegers(cpu, slot, info, prefix, reg, rm, low);
      return;
    case 0x6c:
    case 0x6d: {
      // punpcklqdq / punpckhqdq (SSE2 only).
      if (prefix !== 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, 16);
      const h = low === 0x6d ? 2 : 0;
      T[0] = A[h];
      T[1] = A[h + 1];
      T[2] = B[h];
      T[3] = B[h + 1];
      storeXmm(cpu, reg, T);
      return;
    }
    case 0x6e: {
      // movd mm/xmm, r/m32.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      if (prefix === 0) enterMmx(cpu);
      else checkSse(cpu);
      const value = memory
        ? cpu.readLin32(memoryAddress(cpu, slot, 4, false, false))
        : cpu.regs[rm];
      if (prefix === 0) storeMm(cpu, reg, value, 0);
      else {
        T[0] = value;
        T[1] = 0;
        T[2] = 0;
        T[3] = 0;
        storeXmm(cpu, reg, T);
      }
      return;
    }
    case 0x7e: {
      if (prefix === 2) {
        // movq xmm, xmm/m64 (upper half zeroed).
        checkSse(cpu);
        if (memory) readMemory(cpu, memoryAddress(cpu, slot, 8, false, false), T, 8);
        else loadXmm(cpu, rm, T);
        T[2] = 0;
        T[3] = 0;
        storeXmm(cpu, reg, T);
        return;
      }
      // movd r/m32, mm/xmm.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      let value: number;
      if (prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, reg, T, 0);
        value = T[0];
      } else {
        checkSse(cpu);
        value = cpu.fpu.xmm[reg * 4];
      }
      if (memory) cpu.writeLin32(memoryAddress(cpu, slot, 4, false, true), value);
      else cpu.regs[rm] = value;
      return;
    }
    case 0x6f:
    case 0x7f: {
      const store = low === 0x7f;
      if (prefix === 3) cpu.fault(Vector.UD, 0);
      if (prefix === 0) {
        // movq mm, mm/m64 and back.
        enterMmx(cpu);
        if (store) {
          loadMm(cpu, reg, T, 0);
          if (memory) writeMemory(cpu, memoryAddress(cpu, slot, 8, false, true), T, 8);
          else storeMm(cpu, rm, T[0], T[1]);
        } else {
          sourceMm(cpu, slot, info, rm, 8);
          storeMm(cpu, reg, B[0], B[1]);
        }
        return;
      }
      // movdqa (66) / movdqu (F3).
      checkSse(cpu);
      const aligned = prefix === 1;
      if (store) {
        loadXmm(cpu, reg, T);
        if (memory) writeMemory(cpu, memoryAddress(cpu, slot, 16, aligned, true), T, 16);
        else storeXmm(cpu, rm, T);
      } else {
        if (memory) readMemory(cpu, memoryAddress(cpu, slot, 16, aligned, false), T, 16);
        else loadXmm(cpu, rm, T);
        storeXmm(cpu, reg, T);
      }
      return;
    }
    case 0x70:
      shuffleWords(cpu, slot, info, prefix, reg, rm, imm);
      return;
    case 0x71:
    case 0x72:
    case 0x73:
      shiftImmediate(cpu, prefix, memory, reg, rm, low, imm);
      return;
    case 0xc2: {
      // cmpps/cmppd/cmpss/cmpsd (SDM vol. 2A CMPPS): predicates 0-7 in imm8.
      checkSse(cpu);
      const predicate = imm & 7;
      const mxcsr = cpu.fpu.mxcsr;
      pre = 0;
      post = 0;
      loadXmm(cpu, reg, A);
      if (prefix === 0 || prefix === 1) {
        sourceXmm(cpu, slot, info, rm, 16);
        if (prefix === 0)
          for (let i = 0; i < 4; i++) T[i] = compare32(predicate, A[i], B[i], mxcsr);
        else
          for (let i = 0; i < 4; i += 2) {
            T[i] = compare64(predicate, i, mxcsr);
            T[i + 1] = T[i];
          }
        finishFloat(cpu);
        storeXmm(cpu, reg, T);
        return;
      }
      sourceXmm(cpu, slot, info, rm, prefix === 2 ? 4 : 8);
      if (prefix === 2) A[0] = compare32(predicate, A[0], B[0], mxcsr);
      else {
        A[0] = compare64(predicate, 0, mxcsr);
        A[1] = A[0];
      }
      finishFloat(cpu);
      storeXmm(cpu, reg, A);
      return;
    }
    case 0xc3:
      // movnti m32, r32 (SSE2): an ordinary store here.
      if (!memory || prefix !== 0 || !cpu.model.sse2) cpu.fault(Vector.UD, 0);
      cpu.writeLin32(memoryAddress(cpu, slot, 4, false, true), cpu.regs[reg]);
      return;
    case 0xc4: {
      // pinsrw mm/xmm, r32/m16, imm8.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      const value = memory
        ? cpu.readLin16(memoryAddress(cpu, slot, 2, false, false))
        : cpu.regs[rm];
      if (prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, reg, A, 0);
        A16[imm & 3] = value;
        storeMm(cpu, reg, A[0], A[1]);
      } else {
        checkSse(cpu);
        loadXmm(cpu, reg, A);
        A16[imm & 7] = value;
        storeXmm(cpu, reg, A);
      }
      return;
    }
    case 0xc5:
      // pextrw r32, mm/xmm, imm8.
      if (memory || prefix > 1) cpu.fault(Vector.UD, 0);
      if (prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, rm, B, 0);
        cpu.regs[reg] = B16[imm & 3] & 0xffff;
      } else {
        checkSse(cpu);
        loadXmm(cpu, rm, B);
        cpu.regs[reg] = B16[imm & 7] & 0xffff;
      }
      return;
    case 0xc6:
      // shufps / shufpd.
      if (prefix > 1) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      loadXmm(cpu, reg, A);
      sourceXmm(cpu, slot, info, rm, 16);
      if (prefix === 0) {
        T[0] = A[imm & 3];
        T[1] = A[(imm >> 2) & 3];
        T[2] = B[(imm >> 4) & 3];
        T[3] = B[(imm >> 6) & 3];
      } else {
        const a = (imm & 1) * 2;
        const b = ((imm >> 1) & 1) * 2;
        T[0] = A[a];
        T[1] = A[a + 1];
        T[2] = B[b];
        T[3] = B[b + 1];
      }
      storeXmm(cpu, reg, T);
      return;
    case 0xd6:
      if (prefix === 1) {
        // movq xmm/m64, xmm: a register destination has its upper half zeroed.
        checkSse(cpu);
        loadXmm(cpu, reg, T);
        if (memory) writeMemory(cpu, memoryAddress(cpu, slot, 8, false, true), T, 8);
        else {
          T[2] = 0;
          T[3] = 0;
          storeXmm(cpu, rm, T);
        }
        return;
      }
      if (memory || prefix === 0) cpu.fault(Vector.UD, 0);
      checkSse(cpu);
      enterMmx(cpu);
      if (prefix === 2) {
        // movq2dq xmm, mm.
        loadMm(cpu, rm, T, 0);
        T[2] = 0;
        T[3] = 0;
        storeXmm(cpu, reg, T);
      } else {
        // movdq2q mm, xmm.
        loadXmm(cpu, rm, T);
        storeMm(cpu, reg, T[0], T[1]);
      }
      return;
    case 0xd7: {
      // pmovmskb r32, mm/xmm.
      if (memory || prefix > 1) cpu.fault(Vector.UD, 0);
      let mask = 0;
      if (prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, rm, B, 0);
        for (let i = 0; i < 8; i++) mask |= (B8[i] >> 7) << i;
      } else {
        checkSse(cpu);
        loadXmm(cpu, rm, B);
        for (let i = 0; i < 16; i++) mask |= (B8[i] >> 7) << i;
      }
      cpu.regs[reg] = mask;
      return;
    }
    case 0xf7: {
      // maskmovq / maskmovdqu: byte-masked store to DS:(E)DI (SDM vol. 2B MASKMOVDQU).
      if (memory || prefix > 1) cpu.fault(Vector.UD, 0);
      const bytes = prefix === 0 ? 8 : 16;
      if (prefix === 0) {
        enterMmx(cpu);
        loadMm(cpu, reg, A, 0);
        loadMm(cpu, rm, B, 0);
      } else {
        checkSse(cpu);
        loadXmm(cpu, reg, A);
        loadXmm(cpu, rm, B);
      }
      const offset = info & Info.A16 ? cpu.regs[7] & 0xffff : cpu.regs[7];
      const seg = (info >> Info.SEG_SHIFT) & 7;
      for (let i = 0; i < bytes; i++) {
        if (B8[i] & 0x80) cpu.writeLin8(cpu.segAddress(seg, (offset + i) | 0, 0, true), A8[i]);
      }
      return;
    }
    default:
      cpu.fault(Vector.UD, 0);
  }
}

/** Arithmetic op per opcode 51-5F: 6 sqrt, 0 add, 2 mul, 1 sub, 4 min, 3 div, 5 max (-1: not arithmetic). */
const ARITHMETIC_OP = [6, -1, -1, -1, -1, -1, -1, 0, 2, -1, -1, 1, 4, 3, 5];

function floatArithmetic(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  op: number,
): void {
  checkSse(cpu);
  const mxcsr = cpu.fpu.mxcsr;
  pre = 0;
  post = 0;
  loadXmm(cpu, reg, A);
  switch (prefix) {
    case 0:
      sourceXmm(cpu, slot, info, rm, 16);
      for (let i = 0; i < 4; i++) T[i] = lane32(op, A[i], B[i], mxcsr);
      finishFloat(cpu);
      storeXmm(cpu, reg, T);
      return;
    case 1:
      sourceXmm(cpu, slot, info, rm, 16);
      for (let i = 0; i < 4; i += 2) {
        lane64(op, i, mxcsr);
        T[i] = resultLow;
        T[i + 1] = resultHigh;
      }
      finishFloat(cpu);
      storeXmm(cpu, reg, T);
      return;
    case 2:
      sourceXmm(cpu, slot, info, rm, 4);
      A[0] = lane32(op, A[0], B[0], mxcsr);
      finishFloat(cpu);
      storeXmm(cpu, reg, A);
      return;
    default:
      sourceXmm(cpu, slot, info, rm, 8);
      lane64(op, 0, mxcsr);
      finishFloat(cpu);
      A[0] = resultLow;
      A[1] = resultHigh;
      storeXmm(cpu, reg, A);
  }
}

/**
 * RCPPS/RCPSS/RSQRTPS/RSQRTSS: approximations with relative error at most
 * 1.5 * 2^-12 (SDM vol. 2B RCPPS). The exact bits are implementation
 * specific (Intel and AMD differ); Kumo returns the exact value rounded to
 * 12 fraction bits. Denormal inputs count as zero and results that would
 * be denormal are flushed, as on Intel processors; no flags.
 */
function reciprocal(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  root: boolean,
): void {
  checkSse(cpu);
  loadXmm(cpu, reg, A);
  sourceXmm(cpu, slot, info, rm, prefix === 0 ? 16 : 4);
  const lanes = prefix === 0 ? 4 : 1;
  for (let i = 0; i < lanes; i++) {
    const b = B[i];
    const k = kind32(b);
    let r: number;
    if (k >= 4) r = b | 0x400000;
    else if (k === 0 || k === 2) r = (b & 0x80000000) | 0x7f800000;
    else if (k === 3) r = root ? (b < 0 ? INDEFINITE32 : 0) : b & 0x80000000;
    else if (root && b < 0) r = INDEFINITE32;
    else {
      f32w[0] = b;
      const exact = root ? 1 / Math.sqrt(f32[0]) : 1 / f32[0];
      const m = Math.abs(exact);
      const e = Math.floor(Math.log2(m));
      const quantum = 2 ** (e - 12);
      let v = Math.round(m / quantum) * quantum;
      if (v < 2 ** -126) v = 0;
      r = bits32(exact < 0 ? -v : v);
    }
    A[i] = r;
  }
  storeXmm(cpu, reg, A);
}

function movePackedOrScalar(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  store: boolean,
  unaligned: boolean,
): void {
  checkSse(cpu);
  const memory = (info & Info.MEM) !== 0;
  if (prefix <= 1) {
    // movups/movupd (unaligned), movaps/movapd (aligned).
    if (store) {
      loadXmm(cpu, reg, T);
      if (memory) writeMemory(cpu, memoryAddress(cpu, slot, 16, !unaligned, true), T, 16);
      else storeXmm(cpu, rm, T);
    } else {
      if (memory) readMemory(cpu, memoryAddress(cpu, slot, 16, !unaligned, false), T, 16);
      else loadXmm(cpu, rm, T);
      storeXmm(cpu, reg, T);
    }
    return;
  }
  // movss (F3) / movsd (F2): registers merge the low lane, a load zeroes the rest.
  const bytes = prefix === 2 ? 4 : 8;
  if (store) {
    loadXmm(cpu, reg, T);
    if (memory) writeMemory(cpu, memoryAddress(cpu, slot, bytes, false, true), T, bytes);
    else {
      loadXmm(cpu, rm, A);
      copyTo(A, T, bytes >> 2);
      storeXmm(cpu, rm, A);
    }
    return;
  }
  if (memory) {
    T[1] = 0;
    T[2] = 0;
    T[3] = 0;
    readMemory(cpu, memoryAddress(cpu, slot, bytes, false, false), T, bytes);
    storeXmm(cpu, reg, T);
  } else {
    loadXmm(cpu, reg, A);
    loadXmm(cpu, rm, T);
    copyTo(A, T, bytes >> 2);
    storeXmm(cpu, reg, A);
  }
}

/** cvtpi2ps, cvtpi2pd, cvtsi2ss, cvtsi2sd (0F 2A). */
function convertFromInteger(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
): void {
  const memory = (info & Info.MEM) !== 0;
  checkSse(cpu);
  const mxcsr = cpu.fpu.mxcsr;
  pre = 0;
  post = 0;
  loadXmm(cpu, reg, A);
  if (prefix <= 1) {
    // The source is an MMX register (which switches to MMX state) or m64.
    if (memory) readMemory(cpu, memoryAddress(cpu, slot, 8, false, false), B, 8);
    else {
      enterMmx(cpu);
      loadMm(cpu, rm, B, 0);
    }
    if (prefix === 0) {
      A[0] = intToSingle(B[0], mxcsr);
      A[1] = intToSingle(B[1], mxcsr);
      finishFloat(cpu);
    } else {
      bits64(B[0]);
      A[0] = resultLow;
      A[1] = resultHigh;
      bits64(B[1]);
      A[2] = resultLow;
      A[3] = resultHigh;
    }
    storeXmm(cpu, reg, A);
    return;
  }
  const value = memory ? cpu.readLin32(memoryAddress(cpu, slot, 4, false, false)) : cpu.regs[rm];
  if (prefix === 2) {
    A[0] = intToSingle(value, mxcsr);
    finishFloat(cpu);
  } else {
    bits64(value);
    A[0] = resultLow;
    A[1] = resultHigh;
  }
  storeXmm(cpu, reg, A);
}

/** cvt(t)ps2pi, cvt(t)pd2pi, cvt(t)ss2si, cvt(t)sd2si (0F 2C/2D). */
function convertToInteger(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  truncate: boolean,
): void {
  checkSse(cpu);
  const mxcsr = cpu.fpu.mxcsr;
  pre = 0;
  post = 0;
  switch (prefix) {
    case 0: {
      sourceXmm(cpu, slot, info, rm, 8);
      enterMmx(cpu);
      const r0 = singleToInt(B[0], truncate, mxcsr);
      const r1 = singleToInt(B[1], truncate, mxcsr);
      finishFloat(cpu);
      storeMm(cpu, reg, r0, r1);
      return;
    }
    case 1: {
      sourceXmm(cpu, slot, info, rm, 16);
      enterMmx(cpu);
      const r0 = doubleToInt(0, truncate, mxcsr);
      const r1 = doubleToInt(2, truncate, mxcsr);
      finishFloat(cpu);
      storeMm(cpu, reg, r0, r1);
      return;
    }
    case 2: {
      sourceXmm(cpu, slot, info, rm, 4);
      const r = singleToInt(B[0], truncate, mxcsr);
      finishFloat(cpu);
      cpu.regs[reg] = r;
      return;
    }
    default: {
      sourceXmm(cpu, slot, info, rm, 8);
      const r = doubleToInt(0, truncate, mxcsr);
      finishFloat(cpu);
      cpu.regs[reg] = r;
    }
  }
}

/** cvtps2pd, cvtpd2ps, cvtss2sd, cvtsd2ss (0F 5A). */
function convertPrecision(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
): void {
  checkSse(cpu);
  const mxcsr = cpu.fpu.mxcsr;
  pre = 0;
  post = 0;
  loadXmm(cpu, reg, A);
  switch (prefix) {
    case 0:
      sourceXmm(cpu, slot, info, rm, 8);
      singleToDouble(B[0], mxcsr);
      T[0] = resultLow;
      T[1] = resultHigh;
      singleToDouble(B[1], mxcsr);
      T[2] = resultLow;
      T[3] = resultHigh;
      finishFloat(cpu);
      storeXmm(cpu, reg, T);
      return;
    case 1:
      sourceXmm(cpu, slot, info, rm, 16);
      T[0] = doubleToSingle(0, mxcsr);
      T[1] = doubleToSingle(2, mxcsr);
      T[2] = 0;
      T[3] = 0;
      finishFloat(cpu);
      storeXmm(cpu, reg, T);
      return;
    case 2:
      sourceXmm(cpu, slot, info, rm, 4);
      singleToDouble(B[0], mxcsr);
      finishFloat(cpu);
      A[0] = resultLow;
      A[1] = resultHigh;
      storeXmm(cpu, reg, A);
      return;
    default:
      sourceXmm(cpu, slot, info, rm, 8);
      A[0] = doubleToSingle(0, mxcsr);
      finishFloat(cpu);
      storeXmm(cpu, reg, A);
  }
}

/** cvtdq2ps, cvtps2dq, cvttps2dq (0F 5B); cvttpd2dq, cvtdq2pd, cvtpd2dq (0F E6). */
function convertPackedIntegers(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  low: number,
): void {
  if (prefix === (low === 0x5b ? 3 : 0)) cpu.fault(Vector.UD, 0);
  checkSse(cpu);
  const mxcsr = cpu.fpu.mxcsr;
  pre = 0;
  post = 0;
  if (low === 0x5b) {
    sourceXmm(cpu, slot, info, rm, 16);
    for (let i = 0; i < 4; i++) {
      T[i] = prefix === 0 ? intToSingle(B[i], mxcsr) : singleToInt(B[i], prefix === 2, mxcsr);
    }
  } else if (prefix === 2) {
    // cvtdq2pd xmm, xmm/m64: exact.
    sourceXmm(cpu, slot, info, rm, 8);
    const b1 = B[1];
    bits64(B[0]);
    T[0] = resultLow;
    T[1] = resultHigh;
    bits64(b1);
    T[2] = resultLow;
    T[3] = resultHigh;
  } else {
    sourceXmm(cpu, slot, info, rm, 16);
    T[0] = doubleToInt(0, prefix === 1, mxcsr);
    T[1] = doubleToInt(2, prefix === 1, mxcsr);
    T[2] = 0;
    T[3] = 0;
  }
  finishFloat(cpu);
  storeXmm(cpu, reg, T);
}

/** pshufw (MMX), pshufd (66), pshufhw (F3), pshuflw (F2) with imm8 (0F 70). */
function shuffleWords(
  cpu: X86Cpu,
  slot: number,
  info: number,
  prefix: number,
  reg: number,
  rm: number,
  imm: number,
): void {
  if (prefix === 0) {
    enterMmx(cpu);
    sourceMm(cpu, slot, info, rm, 8);
    for (let i = 0; i < 4; i++) T16[i] = B16[(imm >> (2 * i)) & 3];
    storeMm(cpu, reg, T[0], T[1]);
    return;
  }
  checkSse(cpu);
  sourceXmm(cpu, slot, info, rm, 16);
  copyTo(T, B, 4);
  if (prefix === 1) for (let i = 0; i < 4; i++) T[i] = B[(imm >> (2 * i)) & 3];
  else {
    const base = prefix === 2 ? 4 : 0;
    for (let i = 0; i < 4; i++) T16[base + i] = B16[base + ((imm >> (2 * i)) & 3)];
  }
  storeXmm(cpu, reg, T);
}

/** Groups 12-14 (0F 71-73): shifts of mm/xmm by imm8; 66 0F 73 /3 and /7 shift whole bytes. */
function shiftImmediate(
  cpu: X86Cpu,
  prefix: number,
  memory: boolean,
  reg: number,
  rm: number,
  low: number,
  imm: number,
): void {
  if (memory || prefix > 1) cpu.fault(Vector.UD, 0);
  const width = low === 0x71 ? 2 : low === 0x72 ? 4 : 8;
  let kind = -1;
  if (reg === 2) kind = 1;
  else if (reg === 4 && width !== 8) kind = 2;
  else if (reg === 6) kind = 0;
  const byteShift = width === 8 && prefix === 1 && (reg === 3 || reg === 7);
  if (kind < 0 && !byteShift) cpu.fault(Vector.UD, 0);
  if (prefix === 0) {
    enterMmx(cpu);
    loadMm(cpu, rm, A, 0);
    shiftLanes(8, width, kind, imm);
    storeMm(cpu, rm, A[0], A[1]);
    return;
  }
  checkSse(cpu);
  loadXmm(cpu, rm, A);
  if (byteShift) {
    // psrldq (/3) and pslldq (/7): byte shifts of the whole register.
    const count = imm > 16 ? 16 : imm;
    for (let i = 0; i < 16; i++) {
      const from = reg === 3 ? i + count : i - count;
      T8[i] = from >= 0 && from < 16 ? A8[from] : 0;
    }
    storeXmm(cpu, rm, T);
    return;
  }
  shiftLanes(16, width, kind, imm);
  storeXmm(cpu, rm, A);
}

/** EMMS (0F 77): empties the x87 tags (SDM vol. 2A EMMS). */
export function emms(cpu: X86Cpu): void {
  if (cpu.cr0 & Cr0.EM) cpu.fault(Vector.UD, 0);
  if (cpu.cr0 & Cr0.TS) cpu.fault(Vector.NM, 0);
  if (cpu.fpu.status & 0x80 && cpu.cr0 & Cr0.NE) cpu.fault(Vector.MF, 0);
  cpu.fpu.empty.fill(1);
}

/** LDMXCSR / STMXCSR (0F AE /2, /3): reserved bits set are #GP(0) (SDM vol. 2A LDMXCSR). */
export function loadStoreMxcsr(cpu: X86Cpu, slot: number, store: boolean): void {
  checkSse(cpu);
  const address = cpu.ea(slot, 2, store);
  if (store) {
    cpu.writeLin32(address, cpu.fpu.mxcsr);
    return;
  }
  const value = cpu.readLin32(address);
  if (value & ~MXCSR_MASK) cpu.fault(Vector.GP, 0);
  cpu.fpu.mxcsr = value;
}

/** Writable MXCSR bits: with DAZ (SDM vol. 1 11.6.6, the MXCSR_MASK FXSAVE reports). */
export const MXCSR_MASK = 0xffff;
