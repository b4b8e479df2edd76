import type { X86Cpu } from "./cpu";
import { Info } from "./decoder";
import {
  type Big,
  add as bigAdd,
  arithmetic as bigArithmetic,
  atan2 as bigAtan2,
  mul as bigMul,
  pi as bigPi,
  sqrt as bigSqrt,
  tan as bigTan,
  completeRemainder,
  exp2m1,
  fromDouble,
  leadingExponent,
  partialRemainder,
  type Rounded,
  round64,
  roundTo,
  sinCos,
  yLog2x,
  yLog2xPlus1,
} from "./fpu-transcendental";
import {
  add,
  DOUBLE,
  divide,
  type Format,
  multiply,
  roundedUp,
  roundFlags,
  roundValue,
  SINGLE,
  squareRoot,
} from "./simd-float";

/**
 * The x87 FPU (Intel SDM vol. 1 chapter 8). A register holds its value as
 * an IEEE double `st` plus:
 * - `residual`: the low significand bits a double cannot hold, for 64-bit
 *   values inside the double range (st + residual is the exact value);
 * - a wide register (`wide`, `wideTop`/`wideHigh`/`wideLow`): the exact
 *   80-bit bits of values beyond the double range, 80-bit denormals, NaN
 *   payloads and the encodings the x87 does not support; `st` then holds
 *   the nearest double (or the NaN) for the code that reads it.
 * Add, subtract, multiply, divide and square root round the exact result
 * once at the precision control's precision (24, 53 or 64 bits, SDM vol. 1
 * 8.1.5.2) in the rounding-control mode. The fast paths: simd-float at 24
 * and 53 bits for double operands; at 64 bits error-free transformations
 * and one rounding (`extendedArith` for doubles, `extendedArithResidual`
 * for operands with a residual, `extendedRoot`, `roundTail`). Wide
 * registers, residual operands at 24 and 53 bits, results beyond the
 * double range and the rare cases the fast paths cannot decide go through
 * the exact BigInt path (`wideArith`). The transcendentals, FPREM/FPREM1, FSCALE and
 * FXTRACT compute exact or correctly rounded 64-bit results
 * (fpu-transcendental.ts). Exceptions are flagged in the status word; an
 * unmasked one raises #MF (CR0.NE=1) at the next waiting x87 instruction.
 * Every difference from the host left in test/differential.test.ts and
 * test/x87.test.ts is listed in test/oracle/REQUESTS.md.
 */

/** The start of the executing instruction: a private member of X86Cpu, reached by name (as block.ts does). */
interface InstructionStart {
  startEip: number;
}

const C0 = 1 << 8;
const C1 = 1 << 9;
const C2 = 1 << 10;
const C3 = 1 << 14;
const IE = 1 << 0;
const DE = 1 << 1;
const ZE = 1 << 2;
const OE = 1 << 3;
const UE = 1 << 4;
const PE = 1 << 5;
const SF = 1 << 6;
const ES = 1 << 7;

/** Jcc condition numbers of FCMOVB/E/BE/U (DA C0-DF) and FCMOVNB/NE/NBE/NU (DB C0-DF). */
const FCMOV_DA = [2, 4, 6, 10];
const FCMOV_DB = [3, 5, 7, 11];

const conversion = new Float64Array(1);
const conversionWords = new Uint32Array(conversion.buffer);
const conversion32 = new Float32Array(1);
const conversion32Word = new Int32Array(conversion32.buffer);
/** The x87 "real indefinite" QNaN (SDM vol. 1 4.8.3.7), negative, as a double's bits. */
conversionWords[0] = 0;
conversionWords[1] = 0xfff80000;
const INDEFINITE = conversion[0];

/** Splits a 64-bit significand `high:low` times 2^`scale` into hi + lo (see `Fpu.residual`); sets `splitLow`. */
let splitLow = 0;
function splitSignificand(high: number, low: number, scale: number): number {
  // Fast2Sum (Dekker): the sum rounds to the nearest double, the error is exact.
  const a = high * 2 ** (32 + scale);
  const b = low * 2 ** scale;
  const hi = a + b;
  splitLow = b - (hi - a);
  return hi;
}

/**
 * Error-free transformations for 64-bit (precision control "extended")
 * rounding of a double-precision operation on the fast path: the exact
 * result is a double `s` (its round-to-nearest) plus a tail; `roundTail`
 * rounds s + tail once to a 64-bit significand in the rounding-control mode
 * (SDM vol. 1 4.8.4, 8.1.5.2). TwoSum (Knuth), TwoProduct with Veltkamp's
 * split (Dekker 1971) and the exact remainders of division and square root
 * (a - q*b and x - s*s are doubles when q, s are round-to-nearest results:
 * Boldo and Daumas, "Representable correcting terms for possibly
 * underflowing floating point operations", 2003) need no FMA. Results:
 * `tailHi` + `tailLo` (tailHi the nearest double, tailLo the residual),
 * `tailInexact`, `tailUp` (magnitude rounded up: C1).
 */
let tailHi = 0;
let tailLo = 0;
let tailInexact = false;
let tailUp = false;
/** The compensated sum of `addToTail` terms: tailSum + tailError; tailExact while no addition rounded. */
let tailSum = 0;
let tailError = 0;
let tailExact = true;
function addToTail(term: number): void {
  const t = tailSum + term;
  const bv = t - tailSum;
  const error = tailSum - (t - bv) + (term - bv);
  if (error !== 0) {
    tailExact = false;
    tailError += error;
  }
  tailSum = t;
}

/**
 * Whether s + tail (a tail larger than half a unit of s) surely lies in s's
 * binade, within 2^12 units of the 64-bit significand, as `roundTail`
 * needs: s + tail rounded to a double has s's exponent and is no power of
 * two (then the exact value cannot have crossed a power of two).
 */
function inBinade(s: number, tail: number): boolean {
  if (Math.abs(tail) > Math.abs(s) * 2 ** -52) return false;
  conversion[0] = s + tail;
  const high = conversionWords[1];
  const power = (high & 0xfffff) === 0 && conversionWords[0] === 0;
  conversion[0] = s;
  return !power && ((high ^ conversionWords[1]) & 0x7ff00000) === 0;
}

/** The tail of the last `twoProduct` (a * b = product + productLow exactly). */
let productLow = 0;
/** Veltkamp's splitting constant 2^27 + 1. */
const SPLITTER = 134217729;
/** Operands and results inside [2^-900, 2^900] keep every step of the transformations normal and finite. */
const SAFE_LOW = 2 ** -900;
const SAFE_HIGH = 2 ** 900;
/** Factors of TwoProduct stay normal doubles (Veltkamp's split of a denormal is not exact). */
const TINY = 2 ** -1000;

/** Whether |a|, |b| and |c| all lie in [low, SAFE_HIGH] (NaN never does). */
function allSafe(a: number, b: number, c: number, low = SAFE_LOW, lowBC = low): boolean {
  const x = Math.abs(a);
  const y = Math.abs(b);
  const z = Math.abs(c);
  return x >= low && x <= SAFE_HIGH && y >= lowBC && y <= SAFE_HIGH && z >= lowBC && z <= SAFE_HIGH;
}

function twoProduct(a: number, b: number): number {
  const p = a * b;
  let t = SPLITTER * a;
  const aHigh = t - (t - a);
  const aLow = a - aHigh;
  t = SPLITTER * b;
  const bHigh = t - (t - b);
  const bLow = b - bHigh;
  productLow = aHigh * bHigh - p + aHigh * bLow + aLow * bHigh + aLow * bLow;
  return p;
}

/**
 * Rounds s + tail (s a normal double, tail non-zero with |tail| at most half
 * a unit in the last place of s) to 64 bits in rounding mode `rc`. When the
 * tail is `approximate` (a correctly rounded quotient, error far below
 * 2^-24 of a 64-bit unit) and lies too near a rounding boundary to decide,
 * returns false (the caller takes the exact path); also outside the
 * exponent range where the residual stays a normal double.
 */
function roundTail(s: number, tail: number, rc: number, approximate: boolean): boolean {
  conversion[0] = s;
  const high = conversionWords[1];
  const biased = (high >>> 20) & 0x7ff;
  // 2^(exponent - 63) must be a normal double and the result finite.
  if (biased < 1023 - 957 || biased > 1023 + 1022) return false;
  let exponent = biased - 1023;
  // A power of two with a tail toward zero: the exact value lies in the binade below.
  if ((high & 0xfffff) === 0 && conversionWords[0] === 0 && s > 0 !== tail > 0) exponent--;
  conversionWords[1] = (exponent - 63 + 1023) << 20;
  conversionWords[0] = 0;
  const unit = conversion[0];
  // The tail in units of the 64-bit significand's last bit (|k| < 2^12, exact
  // unless approximate). s is a multiple of 2^11 units, so the parity of the
  // rounded significand is the parity of n.
  const k = tail / unit;
  const floor = Math.floor(k);
  const fraction = k - floor;
  if (approximate) {
    // Near a midpoint the rounding is undecided; near an integer (every
    // mode) the direction, and so C1 and the directed modes, is.
    const distance = Math.min(fraction, 1 - fraction, Math.abs(fraction - 0.5));
    if (distance < 2 ** -24) return false;
  }
  let n: number;
  if (rc === 0) n = fraction > 0.5 || (fraction === 0.5 && (floor & 1) !== 0) ? floor + 1 : floor;
  else if (rc === 1) n = floor;
  else if (rc === 2) n = fraction === 0 ? floor : floor + 1;
  else n = s > 0 || fraction === 0 ? floor : floor + 1;
  const v = n * unit;
  // Fast2Sum: tailHi is the nearest double of the 64-bit result, tailLo the rest.
  const hi = s + v;
  tailLo = v - (hi - s);
  tailHi = hi;
  tailInexact = approximate || fraction !== 0;
  tailUp = tailInexact && n > k === s > 0;
  return true;
}

/**
 * FLDL2T FLDL2E FLDPI FLDLG2 FLDLN2 (D9 E9..ED): the 64-bit significands the
 * CPU loads in each rounding-control mode (nearest, down, up, zero) and the
 * biased exponent, read on the host with FLD constant + FSTP m80 (the SDM
 * vol. 2A FLD1/FLDL2T... "Description": a 66-bit constant rounded per RC).
 */
const CONSTANTS: readonly (readonly [number, readonly string[]])[] = [
  [0x4000, ["d49a784bcd1b8afe", "d49a784bcd1b8afe", "d49a784bcd1b8aff", "d49a784bcd1b8afe"]],
  [0x3fff, ["b8aa3b295c17f0bc", "b8aa3b295c17f0bb", "b8aa3b295c17f0bc", "b8aa3b295c17f0bb"]],
  [0x4000, ["c90fdaa22168c235", "c90fdaa22168c234", "c90fdaa22168c235", "c90fdaa22168c234"]],
  [0x3ffd, ["9a209a84fbcff799", "9a209a84fbcff798", "9a209a84fbcff799", "9a209a84fbcff798"]],
  [0x3ffe, ["b17217f7d1cf79ac", "b17217f7d1cf79ab", "b17217f7d1cf79ac", "b17217f7d1cf79ab"]],
];
/** hi, lo per constant (index opcode - 0xe9) and rounding mode: [4 * constant + rc]. */
const CONSTANT_HI = new Float64Array(20);
const CONSTANT_LO = new Float64Array(20);
CONSTANTS.forEach(([exponent, significands], k) => {
  significands.forEach((hex, rc) => {
    const scale = exponent - 16383 - 63;
    CONSTANT_HI[4 * k + rc] = splitSignificand(
      Number.parseInt(hex.slice(0, 8), 16),
      Number.parseInt(hex.slice(8), 16),
      scale,
    );
    CONSTANT_LO[4 * k + rc] = splitLow;
  });
});

export class Fpu {
  /** Physical registers R0..R7; ST(i) is R[(top + i) & 7]. */
  readonly st = new Float64Array(8);
  /**
   * The part of a register's 64-bit significand a double cannot hold: the
   * register's value is st + residual exactly (st the nearest double), for
   * values that enter exactly from FLD m80, FILD m64 and the constants and
   * leave through stores, and for 64-bit arithmetic results (precision
   * control extended). Arithmetic reads st + residual exactly. Meaningful
   * only when st is finite.
   */
  readonly residual = new Float64Array(8);
  /**
   * Registers whose value lies beyond the double range (80-bit exponents
   * above 1023 or below -1022, from FLD m80, FRSTOR, FXRSTOR, FSCALE and the
   * transcendental slow path): 1 when the exact value is in wideTop (sign
   * and biased exponent) and wideHigh:wideLow (the 64-bit significand); st
   * then holds the double the value rounds to (an infinity, zero or double
   * denormal), which arithmetic uses. Stores (FST m32/m64/m80, FSAVE,
   * FXSAVE), copies, FCHS/FABS, the tag word and FXAM use the exact value.
   */
  readonly wide = new Uint8Array(8);
  readonly wideTop = new Uint16Array(8);
  readonly wideHigh = new Uint32Array(8);
  readonly wideLow = new Uint32Array(8);
  /** The last `readExtended` read a value beyond the double range (its bits are in `extendedBits`). */
  private extendedWide = false;
  private readonly extendedBits = new Uint32Array(3);
  /** The residual of the last `readExtended`. */
  private extendedResidual = 0;
  /** 1 when the physical register is empty. */
  readonly empty = new Uint8Array(8);
  top = 0;
  control = 0x37f;
  status = 0;
  instructionPointer = 0;
  instructionSelector = 0;
  dataPointer = 0;
  dataSelector = 0;
  opcode = 0;
  mxcsr = 0x1f80;
  /** XMM0-7 as 32 dwords (SSE/SSE2, sse.ts). */
  readonly xmm = new Int32Array(32);
  /**
   * MM0-7 (two dwords each). MMi aliases the significand of physical
   * register Ri (SDM vol. 1 9.5): MMX writes keep the 64 bits here, mark
   * `mmValid` and leave Ri a NaN (exponent all ones) for x87 code; a read of
   * a register last written by x87 code takes the significand of its value.
   */
  readonly mm = new Int32Array(16);
  readonly mmValid = new Uint8Array(8);
  significandLow = 0;
  significandHigh = 0;

  /** Power-on state of the SSE registers (SDM vol. 3A 9.1.1): zeros, MXCSR 0x1f80. */
  resetSimd(): void {
    this.xmm.fill(0);
    this.mm.fill(0);
    this.mmValid.fill(0);
    this.mxcsr = 0x1f80;
  }

  /** The 64-bit significand of an x87 value as the 80-bit format holds it, into significandLow/High. */
  significandOf(value: number): void {
    conversion[0] = value;
    const high = conversionWords[1];
    const exponent = (high >>> 20) & 0x7ff;
    if (value === 0) {
      this.significandLow = 0;
      this.significandHigh = 0;
    } else if (Number.isNaN(value)) {
      this.significandLow = 0;
      this.significandHigh = 0xc0000000 | 0;
    } else if (exponent === 0x7ff) {
      this.significandLow = 0;
      this.significandHigh = 0x80000000 | 0;
    } else {
      if (exponent === 0) conversion[0] = value * 2 ** 64;
      const h = conversionWords[1];
      const l = conversionWords[0];
      this.significandHigh = 0x80000000 | ((h & 0xfffff) << 11) | (l >>> 21);
      this.significandLow = l << 11;
    }
  }

  reset(): void {
    this.control = 0x37f;
    this.status = 0;
    this.top = 0;
    this.empty.fill(1);
    this.st.fill(0);
    this.residual.fill(0);
    this.wide.fill(0);
    this.instructionPointer = 0;
    this.instructionSelector = 0;
    this.dataPointer = 0;
    this.dataSelector = 0;
    this.opcode = 0;
  }

  /** FWAIT: raise a pending unmasked exception. */
  wait(cpu: X86Cpu): void {
    if (cpu.cr0 & 0xa && (cpu.cr0 & 0xa) === 0xa) cpu.fault(7, 0);
    this.checkPending(cpu);
  }

  private checkPending(cpu: X86Cpu): void {
    if (this.status & ES && cpu.cr0 & (1 << 5)) cpu.fault(16, 0);
  }

  /**
   * Set when the current instruction raised an unmasked invalid-operation,
   * denormal or divide-by-zero exception: it then stores nothing and pops
   * nothing (SDM vol. 1 8.5.1.2, 8.5.2, 8.5.3: the destination and the stack
   * are unchanged); #MF follows at the next waiting instruction.
   */
  private abort = false;

  private raise(flags: number): void {
    this.status |= flags;
    if (flags & ~this.control & 0x3f) {
      this.status |= ES | 0x8000;
      if (flags & ~this.control & (IE | DE | ZE)) this.abort = true;
    }
  }

  /** Set when the current instruction read an empty register (stack underflow). */
  private underflowed = false;

  private get0(): number {
    const index = this.top & 7;
    if (this.empty[index]) {
      this.underflowed = true;
      this.raise(IE | SF);
      this.status &= ~C1;
      return INDEFINITE;
    }
    return this.st[index];
  }

  private get(i: number): number {
    const index = (this.top + i) & 7;
    if (this.empty[index]) {
      this.underflowed = true;
      this.raise(IE | SF);
      this.status &= ~C1;
      return INDEFINITE;
    }
    return this.st[index];
  }

  private set(i: number, value: number): void {
    if (this.abort) return;
    const index = (this.top + i) & 7;
    this.st[index] = value;
    this.residual[index] = 0;
    this.wide[index] = 0;
    this.empty[index] = 0;
  }

  /** Makes physical register `index` hold the 80-bit value top:high:low beyond the double range. */
  private setWide(index: number, top: number, high: number, low: number): void {
    if (this.abort) return;
    this.wide[index] = 1;
    this.wideTop[index] = top;
    this.wideHigh[index] = high;
    this.wideLow[index] = low;
    const biased = top & 0x7fff;
    if (biased !== 0 && high < 0x80000000) this.st[index] = INDEFINITE;
    else if (biased === 0x7fff) {
      // A NaN: arithmetic sees it quiet, with the top of its payload.
      conversionWords[1] = (top & 0x8000 ? 0xfff80000 : 0x7ff80000) | ((high >>> 11) & 0xfffff);
      conversionWords[0] = (high << 21) | (low >>> 11);
      this.st[index] = conversion[0];
    } else {
      this.st[index] =
        (top & 0x8000 ? -1 : 1) *
        (high * 4294967296 + low) *
        2 ** -600 *
        2 ** (Math.max(biased, 1) - 16383 - 63 + 600);
    }
    this.residual[index] = 0;
  }

  /** Copies the value of physical register `from` (st, residual, wide) to `to`. */
  private copyRegister(from: number, to: number): void {
    this.st[to] = this.st[from];
    this.residual[to] = this.residual[from];
    this.wide[to] = this.wide[from];
    this.wideTop[to] = this.wideTop[from];
    this.wideHigh[to] = this.wideHigh[from];
    this.wideLow[to] = this.wideLow[from];
  }

  /** Pushes the exact value hi + lo (see `residual`). */
  private pushExact(hi: number, lo: number): void {
    this.push(hi);
    const index = this.top & 7;
    if (!this.abort && this.st[index] === hi) this.residual[index] = lo;
  }

  push(value: number): void {
    if (this.abort) return;
    const index = (this.top - 1) & 7;
    if (!this.empty[index]) {
      // Stack overflow: C1=1, masked response loads the indefinite NaN.
      this.raise(IE | SF | C1);
      if (this.abort) return;
      value = INDEFINITE;
    }
    this.top = index;
    this.st[index] = value;
    this.residual[index] = 0;
    this.wide[index] = 0;
    this.empty[index] = 0;
  }

  pop(): void {
    if (this.abort) return;
    this.empty[this.top & 7] = 1;
    this.top = (this.top + 1) & 7;
  }

  statusWord(): number {
    return (this.status & ~0x3800) | ((this.top & 7) << 11);
  }

  tagWord(): number {
    let tags = 0;
    for (let i = 0; i < 8; i++) {
      let tag: number;
      if (this.empty[i]) tag = 3;
      else if (this.wide[i]) {
        const biased = this.wideTop[i] & 0x7fff;
        tag = biased === 0 || biased === 0x7fff || this.wideHigh[i] < 0x80000000 ? 2 : 0;
      } else {
        const v = this.st[i];
        if (v === 0) tag = 1;
        // A double denormal is a normal 80-bit value (80-bit denormals are wide registers).
        else if (!Number.isFinite(v)) tag = 2;
        else tag = 0;
      }
      tags |= tag << (2 * i);
    }
    return tags;
  }

  private setTagWord(tags: number): void {
    for (let i = 0; i < 8; i++) this.empty[i] = ((tags >> (2 * i)) & 3) === 3 ? 1 : 0;
  }

  private round(value: number): number {
    switch ((this.control >> 10) & 3) {
      case 0: {
        const floor = Math.floor(value);
        const diff = value - floor;
        if (diff > 0.5) return floor + 1;
        if (diff < 0.5) return floor;
        return floor % 2 === 0 ? floor : floor + 1;
      }
      case 1:
        return Math.floor(value);
      case 2:
        return Math.ceil(value);
      default:
        return Math.trunc(value);
    }
  }

  /**
   * The integer the rounding control makes of the exact value v + residual
   * (st and its residual, |v| < 2^53): v's own rounding unless v is an
   * integer or a tie k + 0.5, where the residual's sign decides (SDM vol. 1
   * 4.8.4). `integerInexact` tells whether the result differs from the value.
   */
  private roundWithResidual(v: number, residual: number): number {
    const r = this.round(v);
    if (residual === 0 || !Number.isFinite(v) || Math.abs(v) >= 2 ** 53) {
      this.integerInexact = r !== v;
      return r;
    }
    this.integerInexact = true;
    const rc = (this.control >> 10) & 3;
    if (r !== v) {
      if (rc === 0 && Math.abs(v - Math.trunc(v)) === 0.5) {
        // Not a tie: away from zero when the residual points away from zero.
        return residual > 0 === v > 0 ? v + (v > 0 ? 0.5 : -0.5) : Math.trunc(v);
      }
      return r;
    }
    if (rc === 1 || (rc === 3 && v > 0)) return residual < 0 ? v - 1 : v;
    if (rc === 2 || rc === 3) return residual > 0 ? v + 1 : v;
    return v;
  }

  /** Set by `roundWithResidual`. */
  private integerInexact = false;

  /** Whether the integer `result` has a larger magnitude than v + residual (C1). */
  private integerUp(result: number, v: number, residual: number): boolean {
    const difference = result - v - residual;
    return difference !== 0 && difference > 0 === v > 0;
  }

  /**
   * MXCSR-style control for simd-float (rounding control in bits 13-14, all
   * exceptions masked); the precision-control format of the control word.
   */
  private roundingControl(): number {
    return (((this.control >> 10) & 3) << 13) | 0x1f80;
  }

  private precisionFormat(): Format {
    // PC = 0: single; 2 or 3: double (registers are doubles, see above).
    return ((this.control >> 8) & 3) === 0 ? SINGLE : DOUBLE;
  }

  /** PE and C1 of a rounded result (SDM vol. 1 8.1.3.1, 8.5.6). */
  /**
   * The finite double `value` moved by one unit in the last place, toward
   * zero (`step` -1) or away from it (+1), by stepping its bit pattern.
   */
  private nextDouble(value: number, step: number): number {
    conversion[0] = value;
    let low = (conversionWords[0] >>> 0) + step;
    let high = conversionWords[1];
    if (low < 0) {
      low += 4294967296;
      high = (high - 1) | 0;
    } else if (low >= 4294967296) {
      low -= 4294967296;
      high = (high + 1) | 0;
    }
    conversionWords[0] = low;
    conversionWords[1] = high;
    return conversion[0];
  }

  /**
   * FST m64 of the exact value st + residual (residual non-zero, st finite):
   * st is its nearest double, so round-to-nearest keeps st and the directed
   * modes step one unit when st lies on the wrong side (SDM vol. 1 4.8.4);
   * always inexact (PE), C1 when the magnitude was rounded up.
   */
  private roundResidual(value: number, residual: number): number {
    const rc = (this.control >> 10) & 3;
    // Does the exact value lie further from zero than st?
    const above = value > 0 === residual > 0;
    let result = value;
    if (rc === 1 ? residual < 0 : rc === 2 ? residual > 0 : rc === 3 && !above) {
      result = this.nextDouble(value, above ? 1 : -1);
    }
    this.raise(PE);
    const up = result === value ? !above : above;
    if (up) this.status |= C1;
    return result;
  }

  /**
   * Round-to-odd of st + residual at 53 bits (st itself when residual is 0):
   * rounding that once more to a narrower format (24 bits for FST m32) gives
   * the correctly rounded result in every mode (Boldo and Melquiond, "When
   * double rounding is odd", 2005).
   */
  private sticky(value: number, residual: number): number {
    if (residual === 0) return value;
    conversion[0] = value;
    if (conversionWords[0] & 1) return value;
    return this.nextDouble(value, value > 0 === residual > 0 ? 1 : -1);
  }

  private rounded(value: number): number {
    if (roundFlags & 0x20) {
      this.raise(PE);
      if (roundedUp) this.status |= C1;
    }
    return value;
  }

  /**
   * Finite operands are rounded exactly once at the precision-control
   * precision and the rounding-control mode (simd-float.ts); infinities,
   * zeros of MUL/DIV and NaNs keep the IEEE double result.
   */
  private arith(operation: number, a: number, b: number): number {
    if (Number.isFinite(a) && Number.isFinite(b)) {
      const format = this.precisionFormat();
      const control = this.roundingControl();
      let value = Number.NaN;
      switch (operation) {
        case 0:
          value = add(a, b, format, control);
          break;
        case 4:
          value = add(a, -b, format, control);
          break;
        case 5:
          value = add(b, -a, format, control);
          break;
        case 1:
          if (a !== 0 && b !== 0) value = multiply(a, b, format, control);
          break;
        case 6:
          if (a !== 0 && b !== 0) value = this.quotient(a, b, format, control);
          break;
        default:
          if (a !== 0 && b !== 0) value = this.quotient(b, a, format, control);
      }
      if (!Number.isNaN(value)) {
        // Beyond the double range (overflow, or underflow into double
        // denormals, or an exact product or quotient below them) the 80-bit
        // register still holds the result: slow path.
        if (
          roundFlags & 0x18 ||
          (operation !== 0 && operation !== 4 && operation !== 5 && Math.abs(value) < 2 ** -1022)
        )
          return this.wideArith(operation, fromDouble(a), fromDouble(b));
        return this.rounded(value);
      }
      if (this.forceExact) {
        this.forceExact = false;
        return this.wideArith(operation, fromDouble(a), fromDouble(b));
      }
    }
    // A NaN operand propagates (the larger significand of two, SDM vol. 1 4.8.3.5).
    if (Number.isNaN(a) || Number.isNaN(b)) return this.nanOf(a, b);
    switch (operation) {
      case 0:
        return a + b;
      case 1:
        return a * b;
      case 4:
        return a - b;
      case 5:
        return b - a;
      case 6:
        // x / 0: ZE for finite non-zero x, IE for 0 / 0; inf / 0 is inf (IEEE 754 7.3).
        if (b === 0 && Number.isFinite(a)) this.raise(a === 0 ? IE : ZE);
        return a / b;
      default:
        if (a === 0 && Number.isFinite(b)) this.raise(b === 0 ? IE : ZE);
        return b / a;
    }
  }

  /**
   * Compares the exact values a + ra and b + rb (`ra`, `rb` the residuals:
   * with equal st, they decide), SDM vol. 2A FCOM.
   */
  private compare(a: number, b: number, unordered: boolean, ra = 0, rb = 0): void {
    this.status &= ~(C0 | C1 | C2 | C3);
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (!unordered) this.raise(IE);
      this.status |= C0 | C2 | C3;
    } else if (a < b || (a === b && ra < rb)) this.status |= C0;
    else if (a === b && ra === rb) this.status |= C3;
  }

  private compareEflags(
    cpu: X86Cpu,
    a: number,
    b: number,
    unordered: boolean,
    ra = 0,
    rb = 0,
  ): void {
    cpu.materializeFlags();
    let flags = cpu.flagsRaw & ~(0x8d5 as number);
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (!unordered) this.raise(IE);
      flags |= 0x45;
    } else if (a < b || (a === b && ra < rb)) flags |= 1;
    else if (a === b && ra === rb) flags |= 0x40;
    cpu.flagsRaw = flags;
  }

  /** The residual of ST(i) (see `residual`). */
  private residualOf(i: number): number {
    return this.residual[(this.top + i) & 7];
  }

  /** Executes an x87 escape (D8-DF). */
  execute(cpu: X86Cpu, slot: number, op: number, modrm: number, info: number): void {
    const reg = (modrm >> 3) & 7;
    const rm = modrm & 7;
    const memory = (info & Info.MEM) !== 0;
    // Control instructions (fn*) do not check pending exceptions.
    const control =
      (op === 0xd9 && memory && reg >= 4) ||
      (op === 0xdb && !memory && (modrm === 0xe2 || modrm === 0xe3)) ||
      (op === 0xdd && memory && (reg === 4 || reg === 6 || reg === 7)) ||
      (op === 0xdf && !memory && modrm === 0xe0);
    this.abort = false;
    this.underflowed = false;
    if (!control) {
      this.checkPending(cpu);
      // C1 is the round-up indicator of most instructions; cleared unless set below.
      this.status &= ~C1;
      // The last instruction and data pointers and opcode (SDM vol. 1 8.1.8,
      // 8.1.9): every non-control x87 instruction sets FIP/FCS and FOP; only
      // those with a memory operand set FDP/FDS (checked on the host).
      this.instructionPointer = (cpu as unknown as InstructionStart).startEip;
      this.instructionSelector = cpu.segSel[1];
      this.opcode = ((op & 7) << 8) | modrm;
      if (memory) {
        this.dataPointer = cpu.effectiveOffset(slot);
        this.dataSelector = cpu.segSel[(info >> Info.SEG_SHIFT) & 7];
      }
    }
    if (memory) {
      this.executeMemory(cpu, slot, op, reg, info);
      return;
    }
    switch (op) {
      case 0xd8:
        this.arithSource = (this.top + rm) & 7;
        this.executeArith(reg, 0, this.get(rm), false, false);
        return;
      case 0xd9:
        this.executeD9(cpu, modrm, reg, rm);
        return;
      case 0xda:
        if (modrm === 0xe9) {
          this.compare(this.get0(), this.get(1), true, this.residualOf(0), this.residualOf(1));
          this.pop();
          this.pop();
          return;
        }
        if (reg < 4) {
          this.conditionalMove(cpu.condition(FCMOV_DA[reg]), rm);
          return;
        }
        cpu.fault(6, 0);
        return;
      case 0xdb:
        if (reg < 4) {
          this.conditionalMove(cpu.condition(FCMOV_DB[reg]), rm);
          return;
        }
        if (modrm === 0xe2) {
          this.status &= ~0x80ff;
          return;
        }
        if (modrm === 0xe3) {
          this.reset();
          return;
        }
        if (modrm === 0xe0 || modrm === 0xe1 || modrm === 0xe4) return; // 8087/287 no-ops
        if (reg === 5 || reg === 6) {
          this.compareEflags(
            cpu,
            this.get0(),
            this.get(rm),
            reg === 5,
            this.residualOf(0),
            this.residualOf(rm),
          );
          return;
        }
        cpu.fault(6, 0);
        return;
      case 0xdc: {
        // Register forms operate on ST(i) = ST(i) op ST(0); SUB/SUBR and DIV/DIVR swap.
        if (reg === 2 || reg === 3) {
          this.compare(this.get0(), this.get(rm), false, this.residualOf(0), this.residualOf(rm));
          if (reg === 3) this.pop();
          return;
        }
        this.arithSource = this.top & 7;
        this.executeArith(reg ^ (reg >= 4 ? 1 : 0), rm, this.get0(), true, false);
        return;
      }
      case 0xdd:
        switch (reg) {
          case 0:
            this.empty[(this.top + rm) & 7] = 1;
            return;
          case 1:
            this.executeD9(cpu, 0xc8 | rm, 1, rm);
            return;
          case 2:
            this.set(rm, this.get0());
            return;
          case 3:
            this.set(rm, this.get0());
            this.pop();
            return;
          case 4:
            this.compare(this.get0(), this.get(rm), true, this.residualOf(0), this.residualOf(rm));
            return;
          case 5:
            this.compare(this.get0(), this.get(rm), true, this.residualOf(0), this.residualOf(rm));
            this.pop();
            return;
          default:
            cpu.fault(6, 0);
        }
        return;
      case 0xde:
        if (reg === 3) {
          if (rm !== 1) cpu.fault(6, 0);
          this.compare(this.get0(), this.get(1), false, this.residualOf(0), this.residualOf(1));
          this.pop();
          this.pop();
          return;
        }
        if (reg === 2) {
          this.compare(this.get0(), this.get(rm), false, this.residualOf(0), this.residualOf(rm));
          this.pop();
          return;
        }
        this.arithSource = this.top & 7;
        this.executeArith(reg ^ (reg >= 4 ? 1 : 0), rm, this.get0(), true, true);
        return;
      default:
        if (modrm === 0xe0) {
          cpu.regs[0] = (cpu.regs[0] & ~0xffff) | this.statusWord();
          return;
        }
        if (reg === 5 || reg === 6) {
          this.compareEflags(
            cpu,
            this.get0(),
            this.get(rm),
            reg === 5,
            this.residualOf(0),
            this.residualOf(rm),
          );
          this.pop();
          return;
        }
        if (reg === 0) {
          // FFREEP (undocumented but present on P6).
          this.empty[(this.top + rm) & 7] = 1;
          this.pop();
          return;
        }
        cpu.fault(6, 0);
    }
  }

  /**
   * FCMOVcc: an empty source is a stack underflow whatever the condition,
   * and its masked response loads the indefinite into ST(0) (checked on the host).
   */
  private conditionalMove(condition: boolean, i: number): void {
    const empty = this.empty[(this.top + i) & 7] === 1;
    const value = this.get(i);
    if (condition || empty) this.set(0, value);
  }

  /**
   * FPREM / FPREM1 (SDM vol. 2A): when the exponents differ by less than 64
   * the remainder is complete and exact (JavaScript's % is IEEE fmod; FPREM1
   * then rounds the quotient to nearest), C2 = 0 and C0 C3 C1 are the low
   * quotient bits. Otherwise the result is partial (C2 = 1); the reduction
   * step is implementation specific, so it is approximated.
   */
  private partialRemainder(ieee: boolean): void {
    const a = this.get0();
    const b = this.get(1);
    this.status &= ~(C0 | C1 | C2 | C3);
    if (!Number.isFinite(a) || Number.isNaN(b) || b === 0) {
      if (!Number.isNaN(a) && !Number.isNaN(b)) this.raise(IE);
      this.set(0, Number.isNaN(a) ? a : Number.isNaN(b) ? b : INDEFINITE);
      return;
    }
    if (a === 0 || !Number.isFinite(b)) return;
    const x = this.exactOf(0);
    const y = this.exactOf(1);
    if (leadingExponent(x) - leadingExponent(y) >= 64) {
      // Partial: C2 = 1, C0 C1 C3 cleared (as the host does).
      this.setRounded(0, round64(partialRemainder(x, y), 0), false, false);
      this.status |= C2;
      return;
    }
    // Complete: exact, with the low three quotient bits in C0 C3 C1.
    const [rest, q] = completeRemainder(x, y, ieee);
    this.setRounded(0, round64(rest, 0), false, false);
    if (q & 1) this.status |= C1;
    if (q & 2) this.status |= C3;
    if (q & 4) this.status |= C0;
  }

  /** The exact value of ST(i) (finite): st + residual. */
  private exactOf(i: number): Big {
    const index = (this.top + i) & 7;
    if (this.wide[index] && !this.empty[index]) {
      const top = this.wideTop[index];
      const m = (BigInt(this.wideHigh[index]) << 32n) | BigInt(this.wideLow[index]);
      return { negative: (top & 0x8000) !== 0, m, e: Math.max(top & 0x7fff, 1) - 16383 - 63 };
    }
    const residual = this.residual[index];
    const value = fromDouble(this.st[index]);
    return residual === 0 ? value : bigAdd(value, fromDouble(residual));
  }

  /**
   * ST(i) = a 64-bit result of the transcendental slow path, kept exactly as
   * st + residual. PE is set whenever the slow path ran: the host reports
   * every such result as inexact, exact ones included (f2xm1(-1) = -0.5,
   * checked on the host); C1 when the magnitude was rounded up (SDM vol. 1
   * 8.1.3.1).
   */
  private setRounded(i: number, r: Rounded, c1: boolean, inexact = true): void {
    if (inexact) this.raise(PE);
    if (c1) {
      if (r.up) this.status |= C1;
      else this.status &= ~C1;
    }
    if (r.high === 0 && r.low === 0) {
      this.set(i, r.negative ? -0 : 0);
      return;
    }
    let hi: number;
    let lo = 0;
    // st + residual is exact while the residual's last bit, 2^(exponent - 63), is no double denormal's.
    if (r.exponent > -1012 && r.exponent < 1023) {
      hi = splitSignificand(r.high, r.low, r.exponent - 63);
      lo = splitLow;
    } else {
      // Beyond the double range: a wide register.
      this.set(i, 0);
      const biased = r.exponent + 16383;
      if (biased <= 0) {
        // An 80-bit denormal: exponent field 0, significand shifted right (SDM vol. 1 4.2.2).
        const shift = BigInt(1 - biased);
        const m = ((BigInt(r.high) << 32n) | BigInt(r.low)) >> shift;
        this.setWide(
          (this.top + i) & 7,
          r.negative ? 0x8000 : 0,
          Number(m >> 32n),
          Number(m & 0xffffffffn),
        );
      } else {
        this.setWide((this.top + i) & 7, (r.negative ? 0x8000 : 0) | biased, r.high, r.low);
      }
      return;
    }
    if (r.negative) {
      hi = -hi;
      lo = -lo;
    }
    this.set(i, hi);
    if (!this.abort) this.residual[(this.top + i) & 7] = lo;
  }

  /** The NaN an x87 operation on NaN operands returns: the larger significand, quieted (SDM vol. 1 4.8.3.5). */
  private nanOf(a: number, b: number): number {
    if (!Number.isNaN(a)) return b;
    if (!Number.isNaN(b)) return a;
    conversion[0] = a;
    const aHigh = conversionWords[1] & 0xfffff;
    const aLow = conversionWords[0] >>> 0;
    conversion[0] = b;
    const bHigh = conversionWords[1] & 0xfffff;
    const bLow = conversionWords[0] >>> 0;
    return aHigh > bHigh || (aHigh === bHigh && aLow >= bLow) ? a : b;
  }

  private rc(): number {
    return (this.control >> 10) & 3;
  }

  /**
   * FSIN (kind 0), FCOS (1), FPTAN (2), FSINCOS (3) (SDM vol. 2A): an
   * operand of magnitude 2^63 or more is out of range, C2 = 1 and the stack
   * is left alone; an infinite one is an invalid operation (both results
   * the indefinite for FPTAN and FSINCOS, checked on the host). FSINCOS
   * leaves sin in ST(1) and cos in ST(0), C1 from the rounding of sin;
   * FPTAN pushes 1.0 after tan.
   */
  private trigonometric(kind: number): void {
    const index = this.top & 7;
    const v = this.get0();
    this.status &= ~C2;
    if (this.abort) return;
    const pushes = kind >= 2;
    // A wide register's exact value decides (beyond the double range, 80-bit denormals).
    const wideFinite = this.wideFinite(index);
    const unsupported =
      this.wide[index] === 1 &&
      !this.empty[index] &&
      (this.wideTop[index] & 0x7fff) !== 0 &&
      this.wideHigh[index] < 0x80000000;
    if (Number.isNaN(v) && !unsupported) {
      // A signalling NaN (kept in a wide register) is an invalid operand, quieted.
      if (this.wide[index] && !this.empty[index] && (this.wideHigh[index] & 0x40000000) === 0) {
        this.raise(IE);
        if (this.abort) return;
        this.set(0, v);
      }
      if (pushes) this.push(v);
      return;
    }
    if (unsupported || (!wideFinite && !Number.isFinite(v))) {
      this.raise(IE);
      if (this.abort) return;
      this.set(0, INDEFINITE);
      if (pushes) this.push(INDEFINITE);
      return;
    }
    if (wideFinite ? leadingExponent(this.exactOf(0)) >= 63 : Math.abs(v) >= 2 ** 63) {
      this.status |= C2;
      return;
    }
    if (!wideFinite && v === 0) {
      // sin and tan keep the signed zero, cos is 1: exact (SDM vol. 2A FSIN, FCOS, FPTAN tables).
      if (kind === 1) this.set(0, 1);
      else if (kind === 3) {
        this.push(1);
      } else if (kind === 2) this.push(1);
      return;
    }
    const x = this.exactOf(0);
    const rc = this.rc();
    if (kind === 2) {
      this.setRounded(0, round64(bigTan(x), rc), true);
      this.push(1);
      return;
    }
    const [sin, cos] = sinCos(x);
    if (kind === 0) this.setRounded(0, round64(sin, rc), true);
    else if (kind === 1) this.setRounded(0, round64(cos, rc), true);
    else {
      const cosine = round64(cos, rc);
      this.setRounded(0, round64(sin, rc), true);
      if (this.abort) return;
      this.push(0);
      this.setRounded(0, cosine, false);
    }
  }

  /**
   * F2XM1 (SDM vol. 2A): 2^x - 1 for -1 <= x <= 1. Outside that range the
   * SDM leaves the result undefined; the host returns the operand
   * unchanged with PE set, and so does Kumo. Infinities give +inf and -1.
   */
  private twoToXMinus1(): void {
    const v = this.get0();
    if (this.abort || Number.isNaN(v) || v === 0) return;
    if (!Number.isFinite(v)) {
      if (v < 0) this.set(0, -1);
      return;
    }
    const residual = this.residual[this.top & 7];
    if (Math.abs(v) > 1 || (Math.abs(v) === 1 && residual !== 0 && residual > 0 === v > 0)) {
      this.raise(PE);
      return;
    }
    if (Math.abs(v) === 1 && residual === 0) {
      // Exact results 1 and -0.5; the host flags them inexact, and 1 as rounded up.
      this.raise(PE);
      if (v > 0) this.status |= C1;
      this.set(0, v > 0 ? 1 : -0.5);
      return;
    }
    this.setRounded(0, round64(exp2m1(this.exactOf(0)), this.rc()), true);
  }

  /**
   * FYL2X (plus1 false): ST(1) = ST(1) * log2(ST(0)); FYL2XP1: ST(1) =
   * ST(1) * log2(ST(0) + 1); then pop. Special operands follow the SDM's
   * tables (vol. 2A FYL2X, FYL2XP1). FYL2XP1 is defined for |ST(0)| < 1 -
   * sqrt(2)/2; for ST(0) <= -1 the host returns ST(0) (with PE), as Kumo does.
   */
  private logarithm(plus1: boolean): void {
    const x = this.get0();
    const y = this.get(1);
    if (this.abort) return;
    let result: number;
    if (Number.isNaN(x) || Number.isNaN(y)) result = this.nanOf(x, y);
    else {
      // The logarithm's sign and whether it is zero or infinite.
      const argument = plus1 ? x : x - 1;
      const logZero = plus1 ? x === 0 : x === 1 && this.residual[this.top & 7] === 0;
      const negativeDomain = plus1 ? x === Number.NEGATIVE_INFINITY : x < 0;
      if (negativeDomain) {
        this.raise(IE);
        result = INDEFINITE;
      } else if (!plus1 && x === 0) {
        // log2(0) = -inf: y finite non-zero is a division by zero, y = 0 invalid.
        if (y === 0) {
          this.raise(IE);
          result = INDEFINITE;
        } else {
          if (Number.isFinite(y)) this.raise(ZE);
          result = y > 0 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
        }
      } else if (!Number.isFinite(x)) {
        // log2(+inf) = +inf (FYL2XP1: x = -inf is below -1, handled above).
        if (y === 0) {
          this.raise(IE);
          result = INDEFINITE;
        } else result = y > 0 ? x : -x;
      } else if (logZero) {
        if (!Number.isFinite(y)) {
          this.raise(IE);
          result = INDEFINITE;
        } else result = y * (plus1 ? x : 0);
      } else if (y === 0 || !Number.isFinite(y)) {
        // Signed zero or infinity: the logarithm's sign is the argument's (x - 1 or x).
        result = argument < 0 ? -y : y;
      } else if (plus1 && x <= -1) {
        // Outside FYL2XP1's domain; the host returns ST(0) (checked for finite non-zero ST(1)).
        this.raise(PE);
        this.setExactTo1(x);
        return;
      } else {
        const big = plus1
          ? yLog2xPlus1(this.exactOf(1), this.exactOf(0))
          : yLog2x(this.exactOf(1), this.exactOf(0));
        this.setRounded(1, round64(big, this.rc()), true);
        this.pop();
        return;
      }
    }
    if (this.abort) return;
    this.set(1, result);
    this.pop();
  }

  /** ST(1) = ST(0) exactly, then pop (the host's FYL2XP1 below -1). */
  private setExactTo1(x: number): void {
    const residual = this.residual[this.top & 7];
    this.set(1, x);
    if (!this.abort) this.residual[(this.top + 1) & 7] = residual;
    this.pop();
  }

  /**
   * FPATAN (SDM vol. 2A): ST(1) = atan(ST(1) / ST(0)) with the quadrant of
   * (ST(0), ST(1)), then pop. Zeros and infinities give 0, +-pi/4, +-pi/2,
   * +-3pi/4 or +-pi (the SDM's table, IEEE atan2's), rounded to 64 bits.
   */
  private arctangent(): void {
    const x = this.get0();
    const y = this.get(1);
    if (this.abort) return;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      this.set(1, this.nanOf(x, y));
      this.pop();
      return;
    }
    let angle: Big;
    if (x === 0 || y === 0 || !Number.isFinite(x) || !Number.isFinite(y)) {
      // IEEE atan2 (JavaScript's) picks the multiple of pi/4; it is then rounded to 64 bits.
      const special = Math.atan2(y, x);
      const quarters = Math.round(special / (Math.PI / 4));
      if (quarters === 0) {
        this.set(1, special);
        this.pop();
        return;
      }
      angle = bigMul(bigPi(), { negative: quarters < 0, m: BigInt(Math.abs(quarters)), e: -2 });
    } else angle = bigAtan2(this.exactOf(1), this.exactOf(0));
    this.setRounded(1, round64(angle, this.rc()), true);
    this.pop();
  }

  /**
   * FSCALE (SDM vol. 2A): ST(0) = ST(0) * 2^trunc(ST(1)), exact unless it
   * overflows or underflows the 80-bit format (OE or UE with PE; masked
   * responses by rounding mode, SDM vol. 1 4.9.1.4, 4.9.1.5). Results beyond
   * the double range are wide registers. Special operands as the SDM's table.
   */
  private scale(): void {
    const index = this.top & 7;
    const a = this.get0();
    const b = this.get(1);
    if (this.abort) return;
    if (Number.isNaN(a) || Number.isNaN(b)) {
      this.set(0, this.nanOf(a, b));
      return;
    }
    const aWide = this.wide[index] === 1;
    if (!Number.isFinite(b)) {
      // ST(1) = +inf: 0 is invalid, others infinite; -inf: inf is invalid, others zero.
      if ((b > 0 && a === 0 && !aWide) || (b < 0 && !Number.isFinite(a) && !aWide)) {
        this.raise(IE);
        if (!this.abort) this.set(0, INDEFINITE);
        return;
      }
      const negative = aWide ? (this.wideTop[index] & 0x8000) !== 0 : a < 0 || Object.is(a, -0);
      this.set(0, (negative ? -1 : 1) * (b > 0 ? Number.POSITIVE_INFINITY : 0));
      return;
    }
    if ((a === 0 && !aWide) || !Number.isFinite(a)) return;
    const n = Math.trunc(b);
    if (n === 0) return;
    // The exact value as sign, 64-bit significand and exponent.
    let value: Big;
    if (aWide) {
      const top = this.wideTop[index];
      const m = (BigInt(this.wideHigh[index]) << 32n) | BigInt(this.wideLow[index]);
      value = { negative: (top & 0x8000) !== 0, m, e: Math.max(top & 0x7fff, 1) - 16383 - 63 };
    } else value = this.exactOf(0);
    const shift = Math.max(-100000, Math.min(100000, n));
    const scaled: Big = { negative: value.negative, m: value.m, e: value.e + shift };
    const r = round64(scaled, 0);
    const biased = r.exponent + 16383;
    const rc = this.rc();
    // Unmasked overflow or underflow: the result with its exponent wrapped by
    // 24576 (3/4 of the range) is delivered, exact (SDM vol. 1 8.5.4, 8.5.5);
    // beyond that the host gives the infinity or zero with PE (checked on the host).
    if (biased >= 0x7fff && OE & ~this.control) {
      if (biased - 24576 < 0x7fff) {
        this.raise(OE);
        this.setRounded(0, { ...r, exponent: r.exponent - 24576 }, false, false);
      } else {
        this.raise(OE | PE);
        this.status |= C1;
        this.set(0, r.negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY);
      }
      return;
    }
    if (biased <= 0 && UE & ~this.control) {
      if (biased + 24576 > 0) {
        this.raise(UE);
        this.setRounded(0, { ...r, exponent: r.exponent + 24576 }, false, false);
      } else {
        this.raise(UE | PE);
        this.set(0, r.negative ? -0 : 0);
      }
      return;
    }
    if (biased >= 0x7fff) {
      this.raise(OE | PE);
      const toInfinity = rc === 0 || (rc === 1 && r.negative) || (rc === 2 && !r.negative);
      if (toInfinity) {
        this.status |= C1;
        this.set(0, r.negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY);
      } else {
        this.set(0, 0);
        this.setWide(index, (r.negative ? 0x8000 : 0) | 0x7ffe, 0xffffffff, 0xffffffff);
      }
      return;
    }
    if (biased <= 0) {
      // 80-bit denormal or zero: round at 2^-16445 (the format's last bit).
      const bits = value.m;
      // Exact significand bits below the denormal's last place decide the rounding.
      const total = BigInt(-(value.e + shift) - 16445);
      let kept = total > 0n ? (total >= 200n ? 0n : bits >> total) : bits << -total;
      const rest = total > 0n ? (total >= 200n ? bits : bits - (kept << total)) : 0n;
      if (rest !== 0n) {
        const half = total > 0n && total < 200n ? 1n << (total - 1n) : -1n;
        let up = false;
        if (rc === 0) up = half > 0n && (rest > half || (rest === half && (kept & 1n) === 1n));
        else if (rc === 1) up = r.negative;
        else if (rc === 2) up = !r.negative;
        if (up) {
          kept += 1n;
          this.status |= C1;
        }
        this.raise(UE | PE);
      }
      this.set(0, r.negative ? -0 : 0);
      if (kept !== 0n) {
        // kept counts units of 2^-16445: exponent field 0, or 1 if it carried into the integer bit.
        const top = (r.negative ? 0x8000 : 0) | (kept >> 63n ? 1 : 0);
        this.setWide(index, top, Number((kept >> 32n) & 0xffffffffn), Number(kept & 0xffffffffn));
      }
      return;
    }
    this.setRounded(0, r, false, false);
  }

  /**
   * FXTRACT (SDM vol. 2A): ST(0) = the exponent as a real, then push the
   * significand (sign kept, exponent 0), exactly. Zero: ZE, exponent -inf;
   * infinity: exponent +inf; NaN: both the NaN.
   */
  private extract(): void {
    const index = this.top & 7;
    const v = this.get0();
    if (this.abort) return;
    const finite = this.wideFinite(index) || (Number.isFinite(v) && !this.wide[index]);
    if (Number.isNaN(v) && !finite) {
      this.set(0, v);
      this.push(v);
      return;
    }
    if (!finite) {
      this.set(0, Number.POSITIVE_INFINITY);
      this.push(v);
      return;
    }
    const x = this.exactOf(0);
    if (x.m === 0n) {
      this.raise(ZE);
      if (this.abort) return;
      this.set(0, Number.NEGATIVE_INFINITY);
      this.push(v);
      return;
    }
    const exponent = leadingExponent(x);
    this.set(0, exponent);
    this.push(0);
    this.setRounded(0, round64({ ...x, e: x.e - exponent }, 0), false, false);
  }

  /** ST(0) op= src (toRegister false) or ST(i) = ST(i) op ST(0). */
  private executeArith(
    operation: number,
    i: number,
    src: number,
    toRegister: boolean,
    pop: boolean,
  ): void {
    const source = this.arithSource;
    this.arithSource = -1;
    this.wideResult = null;
    this.resultResidual = 0;
    // An unmasked exception from reading a memory operand (DE, IE): nothing is
    // computed (SDM vol. 1 8.5.2; checked on the host). Comparisons still set
    // their condition codes (the stack-underflow case, also checked).
    if (this.abort && source < 0 && operation !== 2 && operation !== 3) return;
    if (!toRegister) {
      if (operation === 2 || operation === 3) {
        this.compare(
          this.get0(),
          src,
          false,
          this.residualOf(0),
          source >= 0 ? this.residual[source] : 0,
        );
        if (operation === 3) this.pop();
        return;
      }
      const before = this.status;
      const a = this.get0();
      const result = this.checkResult(this.arithOf(operation, 0, a, source, src), a, src);
      // An unmasked invalid-operation or divide-by-zero exception leaves the
      // destination unchanged (SDM vol. 1 8.5.1.2, 8.5.3).
      if ((this.status & ~before & ~this.control & (IE | ZE)) === 0) this.setResult(0, result);
      return;
    }
    const before = this.status;
    const a = this.get(i);
    const result = this.checkResult(this.arithOf(operation, i, a, source, src), a, src);
    if ((this.status & ~before & ~this.control & (IE | ZE)) === 0) {
      this.setResult(i, result);
      if (pop) this.pop();
    }
  }

  /**
   * Physical register of the source operand of the arithmetic instruction
   * being executed (register forms), -1 for memory operands.
   */
  private arithSource = -1;
  /** Set by `wideArith`: the result, for `setResult`. */
  private wideResult: Rounded | null = null;

  /** Whether physical register `index` is a wide register holding a finite value. */
  private wideFinite(index: number): boolean {
    if (!this.wide[index] || this.empty[index]) return false;
    const biased = this.wideTop[index] & 0x7fff;
    return biased !== 0x7fff && (biased === 0 || this.wideHigh[index] >= 0x80000000);
  }

  /** `arith` on ST(i) (value a) and the source; operands in wide registers take the exact path. */
  private arithOf(operation: number, i: number, a: number, source: number, src: number): number {
    const destination = (this.top + i) & 7;
    const wideA = this.wideFinite(destination);
    const wideB = source >= 0 && this.wideFinite(source);
    if ((wideA || wideB) && (Number.isFinite(a) || wideA) && (Number.isFinite(src) || wideB)) {
      const bigA = wideA ? this.exactOf(i) : fromDouble(a);
      const bigB = wideB ? this.exactOf((source - this.top) & 7) : fromDouble(src);
      const divisor = operation === 6 ? bigB : operation === 7 ? bigA : null;
      if (divisor === null || divisor.m !== 0n) return this.wideArith(operation, bigA, bigB);
    }
    if (Number.isFinite(a) && Number.isFinite(src)) {
      const residualA = this.residual[destination];
      const residualB = source >= 0 ? this.residual[source] : 0;
      const pc = (this.control >> 8) & 3;
      if (pc === 3 || residualA !== 0 || residualB !== 0) {
        // Zero operands of MUL/DIV, and two zeros, give exact results on the double path.
        const zero =
          operation === 0 || operation === 4 || operation === 5
            ? a === 0 && src === 0
            : a === 0 || src === 0;
        if (!zero) {
          if (residualA === 0 && residualB === 0) {
            const value = this.extendedArith(operation, a, src);
            if (!Number.isNaN(value)) return value;
          } else if (pc === 3) {
            const value = this.extendedArithResidual(operation, a, residualA, src, residualB);
            if (!Number.isNaN(value)) return value;
          }
          const bigA =
            residualA === 0 ? fromDouble(a) : bigAdd(fromDouble(a), fromDouble(residualA));
          const bigB =
            residualB === 0 ? fromDouble(src) : bigAdd(fromDouble(src), fromDouble(residualB));
          return this.wideArith(operation, bigA, bigB);
        }
      }
    }
    return this.arith(operation, a, src);
  }

  /** Set by `quotient` when only the exact path can round the quotient. */
  private forceExact = false;

  /**
   * x / y (finite, non-zero) rounded at the precision control's precision.
   * At single precision the exact quotient of two doubles can lie on a
   * 24-bit midpoint (it has up to 53 bits), which simd-float's divide (made
   * for operands of the format) does not break to even: an exact quotient
   * is rounded as a value; outside the range of the remainder's error-free
   * transformation, NaN with `forceExact` (the BigInt path).
   */
  private quotient(x: number, y: number, format: Format, control: number): number {
    if (format !== SINGLE) return divide(x, y, format, control);
    const q = x / y;
    if (!allSafe(q, x, y)) {
      this.forceExact = true;
      return Number.NaN;
    }
    const p = twoProduct(q, y);
    if (x - p - productLow === 0) return roundValue(q, format, control);
    return divide(x, y, format, control);
  }

  /** Set by `extendedArith`: the residual of its result (see `residual`), for `setResult`. */
  private resultResidual = 0;

  /**
   * ST op source of two doubles rounded once to 64 bits (precision control
   * extended) with the error-free transformations above; NaN when this fast
   * path cannot decide (out of its range, or a quotient too near a rounding
   * boundary) and the exact BigInt path must run.
   */
  private extendedArith(operation: number, a: number, b: number): number {
    const rc = (this.control >> 10) & 3;
    let x = a;
    let y = b;
    if (operation === 5 || operation === 7) {
      x = b;
      y = a;
    }
    let s: number;
    let tail: number;
    let approximate = false;
    if (operation === 0 || operation === 4 || operation === 5) {
      if (operation !== 0) y = -y;
      // TwoSum (Knuth, TAOCP vol. 2 4.2.2).
      s = x + y;
      if (!Number.isFinite(s)) return Number.NaN;
      const bv = s - x;
      tail = x - (s - bv) + (y - bv);
    } else if (operation === 1) {
      s = twoProduct(x, y);
      if (!allSafe(s, x, y, SAFE_LOW, TINY)) return Number.NaN;
      tail = productLow;
    } else {
      s = x / y;
      if (!allSafe(s, x, y)) return Number.NaN;
      // The remainder x - s*y is a double; the exact quotient is s + remainder / y.
      const p = twoProduct(s, y);
      const remainder = x - p - productLow;
      tail = remainder / y;
      approximate = remainder !== 0;
    }
    // Exact in a double: the result needs no rounding (and the double path signs its zeros).
    if (tail === 0) return this.arith(operation, a, b);
    if (!roundTail(s, tail, rc, approximate)) return Number.NaN;
    return this.tailResult();
  }

  /**
   * FSQRT at 64 bits on the fast path: s = sqrt(v) rounded to nearest, the
   * remainder v - s*s is a double and the exact root of v + residual is
   * s + remainder' / (s + sqrt(v + residual)), about s + remainder' / 2s
   * with remainder' = remainder + residual. False when the exact path must run.
   */
  private extendedRoot(v: number, residual: number): boolean {
    if (!(v >= SAFE_LOW && v <= SAFE_HIGH)) return false;
    const s = Math.sqrt(v);
    const p = twoProduct(s, s);
    let remainder = v - p - productLow;
    if (residual !== 0) {
      // The remainder of v + residual: (v - p) - e + residual, rounded once
      // at most (an approximation, decided by roundTail's window).
      remainder += residual;
    } else if (remainder === 0) {
      this.set(0, s);
      return true;
    }
    if (remainder === 0 || (residual !== 0 && !inBinade(s, remainder / (2 * s)))) return false;
    if (!roundTail(s, remainder / (2 * s), (this.control >> 10) & 3, true)) return false;
    const value = this.tailResult();
    this.resultResidual = 0;
    this.set(0, value);
    if (!this.abort) this.residual[this.top & 7] = tailLo;
    return true;
  }

  /**
   * Add, subtract, multiply or divide of 64-bit operands x = xh + xl,
   * y = yh + yl (st + residual) at 64 bits: the exact result is s plus at
   * most six exactly known doubles (TwoSum or TwoProduct of the high parts;
   * for products also TwoProduct of the cross terms and xl * yl, which has
   * at most 22 bits; for quotients the terms of the remainder, then divided
   * by y: an approximation), summed with compensation (Ogita, Rump and Oishi,
   * "Accurate sum and dot product", 2005). An inexact tail sum is an
   * approximation far inside `roundTail`'s decision window. NaN when the
   * result leaves s's binade or the range where every term is a normal
   * double (the BigInt path then runs).
   */
  private extendedArithResidual(
    operation: number,
    a: number,
    ra: number,
    b: number,
    rb: number,
  ): number {
    let xh = a;
    let xl = ra;
    let yh = b;
    let yl = rb;
    if (operation === 5 || operation === 7) {
      xh = b;
      xl = rb;
      yh = a;
      yl = ra;
    }
    let s: number;
    tailSum = 0;
    tailError = 0;
    tailExact = true;
    let divisor = 0;
    if (operation >= 6) {
      // q = xh / yh; the remainder x - q*y = (xh - p) - e + xl - q*yl with
      // q*yh = p + e and q*yl = p2 + e2 exactly (xh - p is exact: Sterbenz).
      s = xh / yh;
      if (!allSafe(s, xh, yh)) return Number.NaN;
      addToTail(xh - twoProduct(s, yh));
      addToTail(-productLow);
      addToTail(xl);
      if (yl !== 0) {
        addToTail(-twoProduct(s, yl));
        addToTail(-productLow);
      }
      divisor = yh + yl;
    } else if (operation === 1) {
      const ax = Math.abs(xh);
      const ay = Math.abs(yh);
      if (!(ax >= SAFE_LOW && ax <= SAFE_HIGH) || !(ay >= SAFE_LOW && ay <= SAFE_HIGH))
        return Number.NaN;
      s = twoProduct(xh, yh);
      const p = Math.abs(s);
      if (!(p >= 2 ** -800 && p <= SAFE_HIGH)) return Number.NaN;
      addToTail(productLow);
      if (yl !== 0) {
        addToTail(twoProduct(xh, yl));
        addToTail(productLow);
      }
      if (xl !== 0) {
        addToTail(twoProduct(xl, yh));
        addToTail(productLow);
        addToTail(xl * yl);
      }
    } else {
      if (operation !== 0) {
        yh = -yh;
        yl = -yl;
      }
      s = xh + yh;
      if (!Number.isFinite(s) || s === 0) return Number.NaN;
      const bv = s - xh;
      addToTail(xh - (s - bv) + (yh - bv));
      addToTail(xl);
      addToTail(yl);
    }
    let tail = tailSum + tailError;
    if (tail === 0) {
      // Exact in a double (the terms cancel, or no remainder): s is the result, no rounding.
      if (!tailExact) return Number.NaN;
      this.resultResidual = 0;
      return s;
    }
    if (operation >= 6) {
      // The quotient's tail remainder / y, rounded: an approximation.
      tail /= divisor;
      tailExact = false;
    }
    if (!inBinade(s, tail)) return Number.NaN;
    if (!roundTail(s, tail, (this.control >> 10) & 3, !tailExact)) return Number.NaN;
    return this.tailResult();
  }

  /** The result of `roundTail`: PE and C1 (SDM vol. 1 8.1.3.1), its residual for `setResult`. */
  private tailResult(): number {
    if (tailInexact) {
      this.raise(PE);
      if (tailUp) this.status |= C1;
    }
    this.resultResidual = tailLo;
    return tailHi;
  }

  /**
   * Exact arithmetic, rounded once at the precision control's precision in
   * the rounding mode, for results or operands beyond the double range
   * (SDM vol. 1 8.1.5.2, 4.8.4). An 80-bit overflow gives the masked
   * response's infinity (OE PE); unmasked OE/UE responses on registers (the
   * wrapped exponent) are not modelled here.
   */
  private wideArith(operation: number, a: Big, b: Big): number {
    const exact = bigArithmetic(operation, a, b);
    const pc = (this.control >> 8) & 3;
    const r = roundTo(exact, this.rc(), pc === 0 ? 24 : pc === 2 ? 53 : 64);
    if (r.high === 0 && r.low === 0) {
      // A zero product or quotient has the sign of the exact result; an
      // exact zero sum (x - x) is +0, or -0 when rounding down (IEEE 754 6.3).
      if (operation === 1 || operation >= 6) return exact.negative ? -0 : 0;
      return this.rc() === 1 ? -0 : 0;
    }
    if (r.exponent > 16383 || r.exponent < -16382) {
      const over = r.exponent > 16383;
      const flag = over ? OE : UE;
      if (flag & ~this.control) {
        // Unmasked: the result with its exponent wrapped by 24576 (SDM vol. 1 8.5.4, 8.5.5).
        this.raise(flag);
        this.wideResult = { ...r, exponent: r.exponent + (over ? -24576 : 24576) };
        return 0;
      }
      this.raise(flag | PE);
      if (over) {
        // Masked overflow: infinity or the largest finite value by rounding mode (SDM vol. 1 4.9.1.4).
        const rc = this.rc();
        const toInfinity = rc === 0 || (rc === 1 && r.negative) || (rc === 2 && !r.negative);
        if (toInfinity) {
          this.status |= C1;
          return r.negative ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
        }
        this.wideResult = { ...r, high: 0xffffffff, low: 0xffffffff, exponent: 16383, up: false };
        return 0;
      }
    }
    this.wideResult = r;
    return 0;
  }

  /** Sets ST(i) to an arithmetic result: `value`, or the `wideResult` of the exact path. */
  private setResult(i: number, value: number): void {
    const r = this.wideResult;
    this.wideResult = null;
    if (r === null) {
      const residual = this.resultResidual;
      this.resultResidual = 0;
      this.set(i, value);
      if (residual !== 0 && !this.abort) this.residual[(this.top + i) & 7] = residual;
      return;
    }
    this.setRounded(i, r, true, r.inexact);
  }

  /** IE for a NaN made from non-NaN operands (an invalid operation); a NaN operand propagates quietly. */
  private checkResult(value: number, a: number, b: number): number {
    // Stack underflow: the masked response is the indefinite (SDM vol. 1 8.5.1.1).
    if (this.underflowed) return INDEFINITE;
    if (Number.isNaN(value) && !Number.isNaN(a) && !Number.isNaN(b)) {
      this.raise(IE);
      return INDEFINITE;
    }
    return value;
  }

  private executeD9(cpu: X86Cpu, modrm: number, reg: number, rm: number): void {
    if (reg === 0) {
      const from = (this.top + rm) & 7;
      this.pushExact(this.get(rm), this.residual[from]);
      if (!this.abort && this.wide[from] && !this.empty[from])
        this.copyRegister(from, this.top & 7);
      return;
    }
    if (reg === 1) {
      const a = this.get0();
      const b = this.get(rm);
      const ia = this.top & 7;
      const ib = (this.top + rm) & 7;
      const aLow = this.residual[ia];
      const bLow = this.residual[ib];
      const aWide = this.wide[ia] && !this.empty[ia];
      const bWide = this.wide[ib] && !this.empty[ib];
      // (Locals, not arrays: FXCH is frequent and must not allocate.)
      const aTop = this.wideTop[ia];
      const aHigh = this.wideHigh[ia];
      const aLowBits = this.wideLow[ia];
      const bTop = this.wideTop[ib];
      const bHigh = this.wideHigh[ib];
      const bLowBits = this.wideLow[ib];
      this.set(0, b);
      this.set(rm, a);
      if (!this.abort) {
        this.residual[ia] = bLow;
        this.residual[ib] = aLow;
        if (bWide) this.setWide(ia, bTop, bHigh, bLowBits);
        if (aWide) this.setWide(ib, aTop, aHigh, aLowBits);
      }
      return;
    }
    switch (modrm) {
      case 0xd0:
        return;
      case 0xe0: {
        // FCHS and FABS are exact: the residual follows the sign.
        const index = this.top & 7;
        const residual = this.residual[index];
        const wide = this.wide[index] && !this.empty[index];
        this.set(0, -this.get0());
        if (!this.abort) this.residual[index] = -residual;
        if (wide) {
          this.setWide(
            index,
            this.wideTop[index] ^ 0x8000,
            this.wideHigh[index],
            this.wideLow[index],
          );
        }
        return;
      }
      case 0xe1: {
        const index = this.top & 7;
        const value = this.get0();
        const residual = this.residual[index];
        const wide = this.wide[index] && !this.empty[index];
        this.set(0, Math.abs(value));
        if (!this.abort) this.residual[index] = value < 0 ? -residual : residual;
        if (wide) {
          this.setWide(
            index,
            this.wideTop[index] & 0x7fff,
            this.wideHigh[index],
            this.wideLow[index],
          );
        }
        return;
      }
      case 0xe4:
        this.compare(this.get0(), 0, false);
        return;
      case 0xe5: {
        const index = this.top & 7;
        const v = this.st[index];
        this.status &= ~(C0 | C1 | C2 | C3);
        if (this.empty[index]) this.status |= C3 | C0;
        else if (this.wide[index]) {
          // FXAM classes (SDM vol. 2A FXAM): unsupported 000, NaN C0, denormal C3 C2, normal C2.
          const biased = this.wideTop[index] & 0x7fff;
          if (biased === 0x7fff) this.status |= this.wideHigh[index] < 0x80000000 ? 0 : C0;
          else if (biased !== 0 && this.wideHigh[index] < 0x80000000) this.status |= 0;
          else this.status |= biased === 0 ? C3 | C2 : C2;
        } else if (Number.isNaN(v)) this.status |= C0;
        else if (!Number.isFinite(v)) this.status |= C2 | C0;
        else if (v === 0) this.status |= C3;
        else this.status |= C2;
        if (!this.empty[index] && (v < 0 || Object.is(v, -0))) this.status |= C1;
        if (!this.empty[index] && this.wide[index] && this.wideTop[index] & 0x8000)
          this.status |= C1;
        return;
      }
      case 0xe8:
        this.push(1);
        return;
      case 0xe9:
      case 0xea:
      case 0xeb:
      case 0xec:
      case 0xed: {
        const k = 4 * (modrm - 0xe9) + ((this.control >> 10) & 3);
        this.pushExact(CONSTANT_HI[k], CONSTANT_LO[k]);
        return;
      }
      case 0xee:
        this.push(0);
        return;
      case 0xf0:
        this.twoToXMinus1();
        return;
      case 0xf1:
        this.logarithm(false);
        return;
      case 0xf2:
        this.trigonometric(2);
        return;
      case 0xf3:
        this.arctangent();
        return;
      case 0xf4:
        this.extract();
        return;
      case 0xf5:
      case 0xf8: {
        this.partialRemainder(modrm === 0xf5);
        return;
      }
      case 0xf6:
        this.top = (this.top - 1) & 7;
        return;
      case 0xf7:
        this.top = (this.top + 1) & 7;
        return;
      case 0xf9:
        this.logarithm(true);
        return;
      case 0xfa: {
        const v = this.get0();
        const index = this.top & 7;
        const residual = this.residual[index];
        const pc = (this.control >> 8) & 3;
        let finite = v > 0 && Number.isFinite(v) && !this.wide[index];
        if (this.wideFinite(index)) {
          // A value beyond the double range: its exact 80-bit value. A
          // negative one is invalid, an 80-bit denormal raises DE (SDM vol. 2A FSQRT).
          if (this.wideTop[index] & 0x8000) {
            this.raise(IE);
            this.set(0, INDEFINITE);
            return;
          }
          if ((this.wideTop[index] & 0x7fff) === 0) this.raise(DE);
          if (this.abort) return;
          finite = true;
        }
        if (finite && pc !== 3 && residual === 0) {
          // An exact root (up to 27 bits) can lie on a 24-bit midpoint, which
          // simd-float's squareRoot (made for operands of the format) does not
          // break to even: round it as a value.
          const exact = Math.sqrt(v);
          const root =
            v >= SAFE_LOW && v <= SAFE_HIGH && v - twoProduct(exact, exact) - productLow === 0
              ? roundValue(exact, this.precisionFormat(), this.roundingControl())
              : squareRoot(v, this.precisionFormat(), this.roundingControl());
          if ((roundFlags & 0x18) === 0) {
            this.set(0, this.rounded(root));
            return;
          }
          // A single-precision root beyond the single range: the register keeps it (15-bit exponent).
        }
        if (finite) {
          // The root of the exact value st + residual, rounded once at the
          // precision control's precision (SDM vol. 2A FSQRT, vol. 1 8.1.5.2).
          if (pc === 3 && !this.wide[index] && this.extendedRoot(v, residual)) return;
          const r = roundTo(
            bigSqrt(this.exactOf(0)),
            this.rc(),
            pc === 0 ? 24 : pc === 2 ? 53 : 64,
          );
          this.setRounded(0, r, true, r.inexact);
          return;
        }
        if (v < 0) this.raise(IE);
        const root =
          v > 0 && Number.isFinite(v)
            ? this.rounded(squareRoot(v, this.precisionFormat(), this.roundingControl()))
            : Math.sqrt(v);
        this.set(0, root);
        return;
      }
      case 0xfb:
        this.trigonometric(3);
        return;
      case 0xfc: {
        // FRNDINT: PE and C1 when the value was not an integer (SDM vol. 2A FRNDINT).
        const v = this.get0();
        const residual = this.residualOf(0);
        // st + residual beyond 2^53 is an integer already: unchanged.
        if (residual !== 0 && Math.abs(v) >= 2 ** 53) return;
        const r = this.roundWithResidual(v, residual);
        if (Number.isFinite(v) && this.integerInexact) {
          this.raise(PE);
          if (this.integerUp(r, v, residual)) this.status |= C1;
        }
        this.set(0, r === 0 && v < 0 ? -0 : r);
        return;
      }
      case 0xfd:
        this.scale();
        return;
      case 0xfe:
        this.trigonometric(0);
        return;
      case 0xff:
        this.trigonometric(1);
        return;
      default:
        cpu.fault(6, 0);
    }
  }

  private executeMemory(cpu: X86Cpu, slot: number, op: number, reg: number, info: number): void {
    const o16 = (info & Info.O16) !== 0;
    switch (op) {
      case 0xd8:
        this.nanOperand = this.stackTopNaN() || (reg === 7 && this.stackTopZero());
        this.executeArith(reg, 0, this.readFloat32(cpu, slot), false, false);
        return;
      case 0xda:
        this.executeArith(reg, 0, cpu.readLin32(cpu.ea(slot, 2, false)), false, false);
        return;
      case 0xdc:
        this.nanOperand = this.stackTopNaN() || (reg === 7 && this.stackTopZero());
        this.executeArith(reg, 0, this.readFloat64(cpu, cpu.ea(slot, 2, false)), false, false);
        return;
      case 0xde:
        this.executeArith(
          reg,
          0,
          (cpu.readLin16(cpu.ea(slot, 1, false)) << 16) >> 16,
          false,
          false,
        );
        return;
      case 0xd9:
        switch (reg) {
          case 0:
            this.push(this.loadOperand(this.readFloat32(cpu, slot)));
            return;
          case 2:
          case 3: {
            let value = this.get0();
            if (this.wide[this.top & 7] && !this.empty[this.top & 7]) {
              value = this.roundWide(this.top & 7, false);
            } else if (Number.isFinite(value) && value !== 0) {
              value = this.sticky(value, this.residual[this.top & 7]);
              // Rounded to single in the rounding-control mode, with OE/UE/PE (SDM vol. 2A FST).
              if (Math.abs(value) < 1.1754943508222875e-38) this.tinyStore();
              if (!this.abort) {
                value = roundValue(value, SINGLE, this.roundingControl());
                if (roundFlags & 0x18) {
                  this.raise(roundFlags & 0x18);
                  // Unmasked overflow or underflow on a store leaves memory and the stack unchanged (SDM vol. 1 8.5.4).
                  if (roundFlags & 0x18 & ~this.control) this.abort = true;
                }
                // An unmasked overflow or underflow reports no PE (checked on the host).
                if (!this.abort) this.rounded(value);
                // Overflow to infinity rounded the magnitude up (C1, SDM vol. 1 8.1.3.1).
                if (!this.abort && roundFlags & 0x08 && !Number.isFinite(value)) this.status |= C1;
              }
            }
            const address = cpu.ea(slot, 2, true);
            if (!this.abort) this.writeFloat32(cpu, address, value);
            if (reg === 3) this.pop();
            return;
          }
          case 4:
            this.loadEnvironment(cpu, cpu.ea(slot, 2, false), o16);
            return;
          case 5:
            this.control = cpu.readLin16(cpu.ea(slot, 1, false)) | 0x40;
            this.updateSummary();
            return;
          case 6:
            this.storeEnvironment(cpu, cpu.ea(slot, 2, true), o16);
            this.control |= 0x3f;
            return;
          case 7:
            cpu.writeLin16(cpu.ea(slot, 1, true), this.control);
            return;
          default:
            cpu.fault(6, 0);
        }
        return;
      case 0xdb:
        switch (reg) {
          case 0:
            this.push(cpu.readLin32(cpu.ea(slot, 2, false)));
            return;
          case 2:
          case 3: {
            const address = cpu.ea(slot, 2, true);
            const value = this.toInteger(this.get0(), 32);
            if (!this.abort) cpu.writeLin32(address, value);
            if (reg === 3) this.pop();
            return;
          }
          case 5: {
            // FLD m80 raises nothing, not even for a signalling NaN or an
            // encoding the x87 does not support (SDM vol. 2A FLD "#IA ... does
            // not occur if the source operand is in double extended-precision
            // format"; checked on the host): the bits are kept as loaded.
            const value = this.readExtended(cpu, cpu.ea(slot, 2, false));
            this.pushExact(value, this.extendedResidual);
            this.loadWide(this.top & 7);
            return;
          }
          case 7: {
            const address = cpu.ea(slot, 2, true);
            const value = this.get0();
            if (this.empty[this.top & 7]) {
              // Stack underflow, masked: the indefinite is stored.
              if (!this.abort) this.writeExtended(cpu, address, value);
            } else if (!this.abort) this.writeRegister(cpu, address, this.top & 7);
            this.pop();
            return;
          }
          default:
            cpu.fault(6, 0);
        }
        return;
      case 0xdd:
        switch (reg) {
          case 0:
            this.push(this.loadOperand(this.readFloat64(cpu, cpu.ea(slot, 2, false))));
            return;
          case 2:
          case 3: {
            const address = cpu.ea(slot, 2, true);
            let value = this.get0();
            const residual = this.residual[this.top & 7];
            if (this.wide[this.top & 7] && !this.empty[this.top & 7]) {
              value = this.roundWide(this.top & 7, true);
            } else if (residual !== 0 && Number.isFinite(value)) {
              value = this.roundResidual(value, residual);
            } else if (value !== 0 && Math.abs(value) < 2.2250738585072014e-308) {
              // A double denormal: exact (no flag when UE is masked), but tiny,
              // so an unmasked UE suppresses the store (SDM vol. 1 4.9.1.5, 8.5.5).
              this.tinyStore();
            }
            if (!this.abort) this.writeFloat64(cpu, address, value);
            if (reg === 3) this.pop();
            return;
          }
          case 4: {
            const address = cpu.ea(slot, 2, false);
            const size = this.loadEnvironment(cpu, address, o16);
            for (let i = 0; i < 8; i++) {
              const physical = (this.top + i) & 7;
              this.st[physical] = this.readExtended(cpu, (address + size + 10 * i) | 0);
              this.residual[physical] = this.extendedResidual;
              this.wide[physical] = 0;
              this.loadWide(physical);
            }
            return;
          }
          case 6: {
            const address = cpu.ea(slot, 2, true);
            const size = this.storeEnvironment(cpu, address, o16);
            for (let i = 0; i < 8; i++) {
              const physical = (this.top + i) & 7;
              const base = (address + size + 10 * i) | 0;
              this.writeRegister(cpu, base, physical);
            }
            this.reset();
            return;
          }
          case 7:
            cpu.writeLin16(cpu.ea(slot, 1, true), this.statusWord());
            return;
          default:
            cpu.fault(6, 0);
        }
        return;
      default:
        switch (reg) {
          case 0:
            this.push((cpu.readLin16(cpu.ea(slot, 1, false)) << 16) >> 16);
            return;
          case 2:
          case 3: {
            const address = cpu.ea(slot, 1, true);
            const value = this.toInteger(this.get0(), 16);
            if (!this.abort) cpu.writeLin16(address, value);
            if (reg === 3) this.pop();
            return;
          }
          case 4: {
            // FBLD: 18 BCD digits and a sign byte.
            const address = cpu.ea(slot, 2, false);
            let value = 0;
            for (let i = 8; i >= 0; i--) {
              const byte = cpu.readLin8((address + i) | 0);
              value = value * 100 + (byte >> 4) * 10 + (byte & 15);
            }
            if (cpu.readLin8((address + 9) | 0) & 0x80) value = -value;
            this.push(value);
            return;
          }
          case 5: {
            const address = cpu.ea(slot, 2, false);
            const low = cpu.readLin32(address) >>> 0;
            const high = cpu.readLin32((address + 4) | 0);
            // Exact: a 64-bit integer fits the 64-bit significand (SDM vol. 2A FILD).
            const value = splitSignificand(high, low, 0);
            this.pushExact(value, splitLow);
            return;
          }
          case 6: {
            const address = cpu.ea(slot, 2, true);
            let value = Math.abs(this.round(this.get0()));
            const negative = this.get0() < 0;
            for (let i = 0; i < 9; i++) {
              const digits = value % 100;
              value = Math.floor(value / 100);
              cpu.writeLin8(
                (address + i) | 0,
                ((Math.floor(digits / 10) << 4) | (digits % 10)) & 0xff,
              );
            }
            cpu.writeLin8((address + 9) | 0, negative ? 0x80 : 0);
            this.pop();
            return;
          }
          case 7: {
            const address = cpu.ea(slot, 2, true);
            const exact = this.get0();
            // An integer beyond 2^53 is st + residual, both integers.
            const full = this.empty[this.top & 7] ? 0 : this.residual[this.top & 7];
            const residual = Math.abs(exact) >= 2 ** 53 ? full : 0;
            // Below 2^53 the residual decides the rounding (roundWithResidual).
            const value = this.roundWithResidual(exact, full);
            let low: number;
            let high: number;
            if (Number.isFinite(value) && this.integerInexact) {
              this.raise(PE);
              if (this.integerUp(value, exact, full)) this.status |= C1;
            }
            if (!Number.isFinite(value) || Math.abs(value) >= 2 ** 63) {
              this.raise(IE);
              low = 0;
              high = 0x80000000 | 0;
            } else {
              const magnitude = Math.abs(value);
              low = magnitude % 4294967296;
              high = Math.floor(magnitude / 4294967296);
              if (residual !== 0) {
                low += value < 0 ? -residual : residual;
                if (low < 0) {
                  low += 4294967296;
                  high -= 1;
                } else if (low >= 4294967296) {
                  low -= 4294967296;
                  high += 1;
                }
              }
              if (value < 0) {
                low = (~low + 1) | 0;
                high = (~high + (low === 0 ? 1 : 0)) | 0;
              }
            }
            if (this.abort) return;
            cpu.writeLin32(address, low | 0);
            cpu.writeLin32((address + 4) | 0, high | 0);
            this.pop();
            return;
          }
          default:
            cpu.fault(6, 0);
        }
    }
  }

  /**
   * FLD m32/m64: an unmasked denormal exception does not stop the load (the
   * value is pushed and #MF comes at the next waiting instruction; checked
   * on the host); an unmasked invalid operation (signalling NaN) does.
   */
  private loadOperand(value: number): number {
    if (this.abort && (this.status & ~this.control & IE) === 0) this.abort = false;
    return value;
  }

  /** A store of a tiny value: with UE unmasked, UE and no store (SDM vol. 1 4.9.1.5, 8.5.5). */
  private tinyStore(): void {
    if (UE & ~this.control) {
      this.raise(UE);
      this.abort = true;
    }
  }

  private updateSummary(): void {
    if (this.status & ~this.control & 0x3f) this.status |= ES | 0x8000;
    else this.status &= ~(ES | 0x8000);
  }

  private toInteger(value: number, bits: number): number {
    const residual = this.empty[this.top & 7] ? 0 : this.residualOf(0);
    const rounded = this.roundWithResidual(value, residual);
    const limit = 2 ** (bits - 1);
    if (!Number.isFinite(rounded) || rounded >= limit || rounded < -limit) {
      this.raise(IE);
      return bits === 16 ? 0x8000 : 0x80000000 | 0;
    }
    if (this.integerInexact) {
      this.raise(PE);
      if (this.integerUp(rounded, value, residual)) this.status |= C1;
    }
    return rounded | 0;
  }

  /**
   * Loads of m32fp/m64fp: a denormal is DE, a signalling NaN IE (and loads
   * quieted) (SDM vol. 1 8.5.1.1, 8.5.2; vol. 2A FLD).
   */
  /**
   * Set while reading the memory operand of an arithmetic instruction whose
   * ST(0) is a NaN: a QNaN operand takes precedence over the denormal
   * exception (SDM vol. 1 4.9.2; checked on the host); also for FDIVR by a
   * zero ST(0) (`stackTopZero`).
   */
  private nanOperand = false;

  /**
   * FDIVR m32/m64 by a zero ST(0): the host reports ZE and no DE for a
   * denormal dividend (masked or not; checked in test/x87.test.ts), as the
   * divide-by-zero exception takes precedence.
   */
  private stackTopZero(): boolean {
    const index = this.top & 7;
    return this.empty[index] === 0 && this.wide[index] === 0 && this.st[index] === 0;
  }

  /** Whether ST(0) holds a NaN: then a denormal memory operand raises no DE. */
  private stackTopNaN(): boolean {
    const index = this.top & 7;
    return this.empty[index] === 0 && Number.isNaN(this.st[index]);
  }

  private readFloat32(cpu: X86Cpu, slot: number): number {
    const word = cpu.readLin32(cpu.ea(slot, 2, false));
    const exponent = (word >>> 23) & 0xff;
    const fraction = word & 0x7fffff;
    const nanOperand = this.nanOperand;
    this.nanOperand = false;
    if (exponent === 0 && fraction !== 0) {
      if (!nanOperand) this.raise(DE);
    } else if (exponent === 0xff && fraction !== 0 && !(fraction & 0x400000)) {
      this.raise(IE);
      conversion32Word[0] = word | 0x400000;
      return conversion32[0];
    }
    conversion32Word[0] = word;
    return conversion32[0];
  }

  private writeFloat32(cpu: X86Cpu, address: number, value: number): void {
    // A NaN keeps its sign and the top of its payload, quieted (SDM vol. 1 4.8.3.5).
    conversion32[0] = value;
    cpu.writeLin32(address, conversion32Word[0] | (Number.isNaN(value) ? 0x400000 : 0));
  }

  private readFloat64(cpu: X86Cpu, address: number): number {
    const low = cpu.readLin32(address);
    const high = cpu.readLin32((address + 4) | 0);
    const exponent = (high >>> 20) & 0x7ff;
    const nonzeroFraction = (high & 0xfffff) !== 0 || low !== 0;
    conversionWords[0] = low;
    conversionWords[1] = high;
    const nanOperand = this.nanOperand;
    this.nanOperand = false;
    if (exponent === 0 && nonzeroFraction) {
      if (!nanOperand) this.raise(DE);
    } else if (exponent === 0x7ff && nonzeroFraction && !(high & 0x80000)) {
      this.raise(IE);
      conversionWords[1] = high | 0x80000;
    }
    return conversion[0];
  }

  private writeFloat64(cpu: X86Cpu, address: number, value: number): void {
    conversion[0] = value;
    const low = conversionWords[0] | 0;
    const high = conversionWords[1] | (Number.isNaN(value) ? 0x80000 : 0);
    cpu.writeLin32(address, low);
    cpu.writeLin32((address + 4) | 0, high);
  }

  /** 80-bit extended real (SDM vol. 1 4.2.2) to double. */
  readExtended(cpu: X86Cpu, address: number): number {
    const low = cpu.readLin32(address) >>> 0;
    const high = cpu.readLin32((address + 4) | 0) >>> 0;
    const top = cpu.readLin16((address + 8) | 0);
    const sign = top & 0x8000 ? -1 : 1;
    const exponent = top & 0x7fff;
    const mantissa = high * 4294967296 + low;
    this.extendedResidual = 0;
    this.extendedWide = false;
    this.extendedBits[0] = top;
    this.extendedBits[1] = high;
    this.extendedBits[2] = low;
    const integer = high >= 0x80000000;
    if (exponent === 0x7fff && integer && (high & 0x7fffffff) === 0 && low === 0) {
      return sign * Number.POSITIVE_INFINITY;
    }
    if (exponent === 0x7fff || (exponent !== 0 && !integer)) {
      // NaNs (their payload and signalling bit) and the encodings the x87 does
      // not support (pseudo-NaN, pseudo-infinity, unnormal: SDM vol. 1 8.2.2)
      // keep their bits in a wide register; arithmetic sees a quiet NaN.
      this.extendedWide = true;
      if (!integer) return INDEFINITE;
      conversionWords[1] = (top & 0x8000 ? 0xfff80000 : 0x7ff80000) | ((high >>> 11) & 0xfffff);
      conversionWords[0] = (high << 21) | (low >>> 11);
      return conversion[0];
    }
    if (exponent === 0 && mantissa === 0) return sign * 0;
    // Normal doubles keep the low 11 bits exactly in the residual; beyond the
    // double range the bits go to `extendedBits` for a wide register.
    // (The residual's last bit, 2^(exponent - 63), must not fall below 2^-1074.)
    if (exponent > 16383 - 1012 && exponent < 16383 + 1023) {
      const value = splitSignificand(high, low, exponent - 16383 - 63);
      this.extendedResidual = sign * splitLow;
      return sign * value;
    }
    this.extendedWide = true;
    // (Nearest double, in two steps so that tiny values keep their double denormal.)
    return sign * mantissa * 2 ** -600 * 2 ** (Math.max(exponent, 1) - 16383 - 63 + 600);
  }

  /** Stores physical register `index` as m80, exactly (wide registers keep their bits). */
  private writeRegister(cpu: X86Cpu, address: number, index: number): void {
    if (this.wide[index] && !this.empty[index]) {
      cpu.writeLin32(address, this.wideLow[index] | 0);
      cpu.writeLin32((address + 4) | 0, this.wideHigh[index] | 0);
      cpu.writeLin16((address + 8) | 0, this.wideTop[index]);
      return;
    }
    this.writeExtended(cpu, address, this.st[index], this.residual[index]);
  }

  /** After `readExtended` into physical register `index`: keeps a value beyond the double range exactly. */
  private loadWide(index: number): void {
    if (!this.extendedWide || this.abort) return;
    this.setWide(index, this.extendedBits[0], this.extendedBits[1], this.extendedBits[2]);
  }

  /**
   * FST m64 (double) or m32 of a wide register: its value lies beyond the
   * double range, so the store overflows or underflows (SDM vol. 1 4.9.1.4,
   * 4.9.1.5, 8.5.4, 8.5.5): masked overflow gives an infinity or the largest
   * finite value by rounding mode, masked underflow the rounded denormal or
   * zero (UE only when inexact); unmasked, the store is suppressed.
   */
  private roundWide(index: number, double: boolean): number {
    const biased = this.wideTop[index] & 0x7fff;
    if (biased === 0x7fff || (biased !== 0 && this.wideHigh[index] < 0x80000000)) {
      // An unsupported encoding is an invalid operand (the indefinite is
      // stored); a signalling NaN too (stored quieted); a quiet NaN keeps the
      // top of its payload (SDM vol. 1 4.8.3.5, 8.2.2; checked on the host).
      if (this.wideHigh[index] < 0x80000000) {
        this.raise(IE);
        return INDEFINITE;
      }
      if ((this.wideHigh[index] & 0x40000000) === 0) this.raise(IE);
      return this.st[index];
    }
    const negative = (this.wideTop[index] & 0x8000) !== 0;
    const significand = (BigInt(this.wideHigh[index]) << 32n) | BigInt(this.wideLow[index]);
    if (significand === 0n) return negative ? -0 : 0;
    const precision = double ? 53 : 24;
    const minimum = double ? -1022 : -126;
    const maximum = double ? 1023 : 127;
    const rc = this.rc();
    const sign = negative ? -1 : 1;
    // The value is significand * 2^(scale); its leading bit is 2^lead.
    const scale = Math.max(biased, 1) - 16383 - 63;
    const lead = scale + significand.toString(2).length - 1;
    const tiny = lead < minimum;
    // Keep the bits from 2^low up: `precision` bits, fewer when tiny.
    const low = Math.max(lead, minimum) - precision + 1;
    const shift = low - scale;
    let q = shift <= 0 ? significand << BigInt(-shift) : significand >> BigInt(shift);
    const rest = shift <= 0 ? 0n : significand - (q << BigInt(shift));
    let up = false;
    if (rest !== 0n) {
      const half = 1n << BigInt(shift - 1);
      if (rc === 0) up = rest > half || (rest === half && (q & 1n) === 1n);
      else if (rc === 1) up = negative;
      else if (rc === 2) up = !negative;
      if (up) q += 1n;
    }
    // Rounding up may carry into a new leading bit.
    const top = low + q.toString(2).length - 1;
    if (top > maximum) {
      // Overflow (SDM vol. 1 4.9.1.4): masked, an infinity or the largest finite value by rounding mode.
      this.raise(OE | PE);
      if (OE & ~this.control) {
        this.abort = true;
        return 0;
      }
      const toInfinity = rc === 0 || (rc === 1 && negative) || (rc === 2 && !negative);
      if (toInfinity) this.status |= C1;
      const largest = double ? 1.7976931348623157e308 : 3.4028234663852886e38;
      return sign * (toInfinity ? Number.POSITIVE_INFINITY : largest);
    }
    if (tiny && UE & ~this.control) {
      this.raise(UE);
      this.abort = true;
      return 0;
    }
    if (rest !== 0n) {
      this.raise(tiny ? UE | PE : PE);
      if (up) this.status |= C1;
    }
    // q * 2^low in two exact steps (2^low alone may lie outside the double range).
    const half = Math.trunc(low / 2);
    return sign * Number(q) * 2 ** half * 2 ** (low - half);
  }

  writeExtended(cpu: X86Cpu, address: number, value: number, residual = 0): void {
    let top = 0;
    let high = 0;
    let low = 0;
    if (Number.isNaN(value)) {
      // Sign and payload of the (quiet) NaN, widened (SDM vol. 1 4.8.3.5).
      conversion[0] = value;
      const h = conversionWords[1];
      const l = conversionWords[0];
      top = h >>> 31 ? 0xffff : 0x7fff;
      high = 0xc0000000 | ((h & 0xfffff) << 11) | (l >>> 21);
      low = l << 11;
    } else if (!Number.isFinite(value)) {
      top = value < 0 ? 0xffff : 0x7fff;
      high = 0x80000000 | 0;
    } else if (value !== 0) {
      conversion[0] = value;
      const sign = conversionWords[1] >>> 31;
      let exponent = (conversionWords[1] >>> 20) & 0x7ff;
      let mantHigh = conversionWords[1] & 0xfffff;
      let mantLow = conversionWords[0];
      if (exponent === 0) {
        // Double denormal: normalize into the wider exponent range.
        // value * 2^1074 is an integer below 2^52; its leading bit sets the exponent.
        const units = Math.abs(value) * 2 ** 537 * 2 ** 537;
        let bit = Math.floor(Math.log2(units));
        if (2 ** bit > units) bit--;
        else if (2 ** (bit + 1) <= units) bit++;
        exponent = bit - 1074;
        const scaled = units * 2 ** (63 - bit);
        high = Math.floor(scaled / 4294967296) | 0;
        low = (scaled % 4294967296) | 0;
        top = (sign << 15) | (exponent + 16383);
        cpu.writeLin32(address, low);
        cpu.writeLin32((address + 4) | 0, high);
        cpu.writeLin16((address + 8) | 0, top);
        return;
      }
      // 52-bit fraction to 63-bit fraction with the explicit integer bit.
      high = 0x80000000 | (mantHigh << 11) | (mantLow >>> 21) | 0;
      low = (mantLow << 11) | 0;
      top = (sign << 15) | (exponent - 1023 + 16383);
      if (residual !== 0 && Number.isFinite(residual)) {
        // The low 11 bits: residual in units of the significand's last bit,
        // negative when st was rounded up (sign-relative).
        // (In two steps: 2^(63 - e) alone overflows for exponents below -960.)
        const shift = 63 - (exponent - 1023);
        const halfShift = Math.trunc(shift / 2);
        let units = (sign ? -residual : residual) * 2 ** halfShift * 2 ** (shift - halfShift);
        if (units < 0 && high === (0x80000000 | 0) && low === 0) {
          // st a power of two rounded up: the value is just below it.
          top -= 1;
          units *= 2;
          high = -1;
          low = 0;
          units += 4294967296;
        }
        let sum = (low >>> 0) + units;
        let carryHigh = high >>> 0;
        if (sum < 0) {
          sum += 4294967296;
          carryHigh -= 1;
        } else if (sum >= 4294967296) {
          sum -= 4294967296;
          carryHigh += 1;
        }
        low = sum | 0;
        high = carryHigh | 0;
      }
      mantHigh = 0;
      mantLow = 0;
    } else if (Object.is(value, -0)) {
      top = 0x8000;
    }
    cpu.writeLin32(address, low);
    cpu.writeLin32((address + 4) | 0, high);
    cpu.writeLin16((address + 8) | 0, top);
  }

  /** FNSTENV layout, protected mode (SDM vol. 1 figures 8-9, 8-10); returns its size. */
  private storeEnvironment(cpu: X86Cpu, address: number, o16: boolean): number {
    if (o16) {
      cpu.writeLin16(address, this.control);
      cpu.writeLin16((address + 2) | 0, this.statusWord());
      cpu.writeLin16((address + 4) | 0, this.tagWord());
      cpu.writeLin16((address + 6) | 0, this.instructionPointer);
      cpu.writeLin16((address + 8) | 0, this.instructionSelector);
      cpu.writeLin16((address + 10) | 0, this.dataPointer);
      cpu.writeLin16((address + 12) | 0, this.dataSelector);
      return 14;
    }
    cpu.writeLin32(address, this.control | 0xffff0000);
    cpu.writeLin32((address + 4) | 0, this.statusWord() | 0xffff0000);
    cpu.writeLin32((address + 8) | 0, this.tagWord() | 0xffff0000);
    cpu.writeLin32((address + 12) | 0, this.instructionPointer);
    cpu.writeLin32((address + 16) | 0, this.instructionSelector | (this.opcode << 16));
    cpu.writeLin32((address + 20) | 0, this.dataPointer);
    cpu.writeLin32((address + 24) | 0, this.dataSelector | 0xffff0000);
    return 28;
  }

  private loadEnvironment(cpu: X86Cpu, address: number, o16: boolean): number {
    const stride = o16 ? 2 : 4;
    this.control = cpu.readLin16(address) | 0x40;
    const status = cpu.readLin16((address + stride) | 0);
    this.status = status & ~0x3800;
    this.top = (status >> 11) & 7;
    this.setTagWord(cpu.readLin16((address + 2 * stride) | 0));
    // The pointers and opcode (protected-mode layouts, SDM vol. 1 figures 8-9, 8-11).
    if (o16) {
      this.instructionPointer = cpu.readLin16((address + 6) | 0);
      this.instructionSelector = cpu.readLin16((address + 8) | 0);
      this.dataPointer = cpu.readLin16((address + 10) | 0);
      this.dataSelector = cpu.readLin16((address + 12) | 0);
    } else {
      this.instructionPointer = cpu.readLin32((address + 12) | 0);
      const selectorAndOpcode = cpu.readLin32((address + 16) | 0);
      this.instructionSelector = selectorAndOpcode & 0xffff;
      this.opcode = (selectorAndOpcode >>> 16) & 0x7ff;
      this.dataPointer = cpu.readLin32((address + 20) | 0);
      this.dataSelector = cpu.readLin16((address + 24) | 0);
    }
    this.updateSummary();
    return o16 ? 14 : 28;
  }

  /** FXSAVE (SDM vol. 2 FXSAVE table 3-53, 32-bit layout). */
  fxsave(cpu: X86Cpu, address: number): void {
    if (address & 15) cpu.fault(13, 0);
    cpu.probeWrite(address, 512);
    let abridged = 0;
    for (let i = 0; i < 8; i++) if (!this.empty[i]) abridged |= 1 << i;
    cpu.writeLin16(address, this.control);
    cpu.writeLin16((address + 2) | 0, this.statusWord());
    cpu.writeLin8((address + 4) | 0, abridged);
    cpu.writeLin8((address + 5) | 0, 0);
    cpu.writeLin16((address + 6) | 0, this.opcode);
    cpu.writeLin32((address + 8) | 0, this.instructionPointer);
    cpu.writeLin32((address + 12) | 0, this.instructionSelector);
    cpu.writeLin32((address + 16) | 0, this.dataPointer);
    cpu.writeLin32((address + 20) | 0, this.dataSelector);
    cpu.writeLin32((address + 24) | 0, this.mxcsr);
    // MXCSR_MASK: every bit of MXCSR's low word is writable, DAZ included (SDM vol. 1 11.6.6).
    cpu.writeLin32((address + 28) | 0, 0xffff);
    for (let i = 0; i < 8; i++) {
      const base = (address + 32 + 16 * i) | 0;
      const physical = (this.top + i) & 7;
      if (this.mmValid[physical] && Number.isNaN(this.st[physical])) {
        // An MMX value: its 64 bits and an all-ones exponent (SDM vol. 1 9.5.1).
        cpu.writeLin32(base, this.mm[physical * 2]);
        cpu.writeLin32((base + 4) | 0, this.mm[physical * 2 + 1]);
        cpu.writeLin16((base + 8) | 0, 0xffff);
      } else this.writeRegister(cpu, base, physical);
      cpu.writeLin16((base + 10) | 0, 0);
      cpu.writeLin32((base + 12) | 0, 0);
    }
    // XMM0-7 (SDM vol. 2A FXSAVE table 3-53); bytes 288-511 are reserved and left alone.
    for (let i = 0; i < 32; i++) cpu.writeLin32((address + 160 + 4 * i) | 0, this.xmm[i]);
  }

  fxrstor(cpu: X86Cpu, address: number): void {
    if (address & 15) cpu.fault(13, 0);
    const mxcsr = cpu.readLin32((address + 24) | 0);
    if (mxcsr & ~0xffff) cpu.fault(13, 0);
    this.control = cpu.readLin16(address) | 0x40;
    const status = cpu.readLin16((address + 2) | 0);
    this.status = status & ~0x3800;
    this.top = (status >> 11) & 7;
    const abridged = cpu.readLin8((address + 4) | 0);
    for (let i = 0; i < 8; i++) this.empty[i] = abridged & (1 << i) ? 0 : 1;
    this.opcode = cpu.readLin16((address + 6) | 0) & 0x7ff;
    this.instructionPointer = cpu.readLin32((address + 8) | 0);
    this.instructionSelector = cpu.readLin16((address + 12) | 0);
    this.dataPointer = cpu.readLin32((address + 16) | 0);
    this.dataSelector = cpu.readLin16((address + 20) | 0);
    this.mxcsr = mxcsr;
    for (let i = 0; i < 8; i++) {
      const base = (address + 32 + 16 * i) | 0;
      const physical = (this.top + i) & 7;
      this.st[physical] = this.readExtended(cpu, base);
      this.residual[physical] = this.extendedResidual;
      this.wide[physical] = 0;
      this.loadWide(physical);
      this.mm[physical * 2] = cpu.readLin32(base);
      this.mm[physical * 2 + 1] = cpu.readLin32((base + 4) | 0);
      this.mmValid[physical] = 1;
    }
    for (let i = 0; i < 32; i++) this.xmm[i] = cpu.readLin32((address + 160 + 4 * i) | 0);
    this.updateSummary();
  }
}

export { C0, C1, C2, C3, DE, IE, OE, PE, UE, ZE };
