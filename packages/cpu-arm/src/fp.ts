/**
 * IEEE 754 binary32/binary64 arithmetic with Arm's rules (Arm ARM DDI 0487,
 * shared pseudocode library "FPRound", "FPProcessNaNs", "FPMulAdd",
 * "FPCompare", "FPToFixed", "FixedToFP"): every FPCR rounding mode, the
 * cumulative FPSR flags, FPCR.FZ (flush-to-zero, inputs and outputs) and
 * FPCR.DN (default NaN).
 *
 * How results are exact without BigInt or a software mantissa: each
 * operation computes the host's round-to-nearest double `r` and the sign
 * of the exact error (exact = r + e, |e| <= ulp(r)/2) with error-free
 * transformations (TwoSum, Dekker's TwoProduct, the exact division and
 * square-root remainders), on operands scaled so that nothing underflows
 * or overflows. `roundPack` then rounds that exact value once, to the
 * target format's quantum (which covers binary32, subnormals and directed
 * modes), so there is no double rounding. NaNs never pass through a JS
 * number: they are handled on their bit patterns.
 *
 * Values come in and go out as bit patterns: binary32 in `low`, binary64
 * as `low`/`high` halves. Results land in `resultLow`/`resultHigh`.
 */

/** FPSR cumulative exception bits (Arm ARM D19.2 FPSR). */
export const FpFlag = {
  InvalidOperation: 1,
  DivideByZero: 2,
  Overflow: 4,
  Underflow: 8,
  Inexact: 16,
  InputDenormal: 128,
} as const;

/** Rounding modes: FPCR.RMode values 0-3 and ties-away (FCVTA*, FRINTA). */
export const Rounding = {
  TiesEven: 0,
  PlusInfinity: 1,
  MinusInfinity: 2,
  Zero: 3,
  TiesAway: 4,
} as const;

/** Operand classes after unpacking. */
const Zero = 0;
const Finite = 1;
const Infinity_ = 2;
const QuietNaN = 3;
const SignalingNaN = 4;

const TWO_POW_32 = 4294967296;
const SPLITTER = 134217729; // 2^27 + 1 (Dekker's split for 53-bit doubles)

const scratch64 = new Float64Array(1);
const scratchWords = new Int32Array(scratch64.buffer);
const scratch32 = new Float32Array(1);
const scratch32Bits = new Int32Array(scratch32.buffer);
const POW2 = new Float64Array(2200);
for (let k = -1074; k <= 1023; k++) {
  if (k >= -1022) {
    scratchWords[0] = 0;
    scratchWords[1] = (k + 1023) << 20;
  } else {
    const bit = k + 1074; // subnormal: a single mantissa bit
    scratchWords[0] = bit < 32 ? 1 << bit : 0;
    scratchWords[1] = bit >= 32 ? 1 << (bit - 32) : 0;
  }
  POW2[k + 1100] = scratch64[0];
}

/** 2^k for -1074 <= k <= 1023, exactly. */
function pow2(k: number): number {
  return POW2[k + 1100];
}

/** floor(log2 |x|) of a finite non-zero double, exactly. */
function exponentOf(x: number): number {
  scratch64[0] = x;
  const biased = (scratchWords[1] >>> 20) & 0x7ff;
  if (biased !== 0) return biased - 1023;
  scratch64[0] = x * 2 ** 64;
  return ((scratchWords[1] >>> 20) & 0x7ff) - 1023 - 64;
}

/** RecipEstimate (Arm ARM shared pseudocode): a in 256..511 (0.5 <= x < 1 in 1/512 steps) to 256..511. */
export function recipEstimate(a: number): number {
  // a*2+1 rounds to nearest, b = 2^19 DIV that, r = (b + 1) DIV 2.
  return Math.floor((Math.floor(2 ** 19 / (a * 2 + 1)) + 1) / 2);
}

/** RecipSqrtEstimate: a in 128..511 (0.25 <= x < 1) to 256..511. */
export function recipSqrtEstimate(a: number): number {
  // a in units of 1/512 (or 1/256 with the bottom bit dropped), rounded to nearest; then the
  // largest b with a * (b + 1)^2 < 2^28, and r = (b + 1) DIV 2.
  const units = a < 256 ? a * 2 + 1 : (((a >> 1) << 1) + 1) * 2;
  let b = 512;
  while (units * (b + 1) * (b + 1) < 2 ** 28) b++;
  return Math.floor((b + 1) / 2);
}

export class FpUnit {
  /** FPCR (AHP, DN, FZ, RMode are used). */
  fpcr = 0;
  /** Cumulative FPSR exception flags raised since the last read (ORed into FPSR by the CPU). */
  flags = 0;
  resultLow = 0;
  resultHigh = 0;
  /** NZCV (bits 3..0) of the last compare. */
  nzcv = 0;

  // Unpacked operands: class, sign, magnitude (exact double).
  private kind0 = 0;
  private sign0 = 0;
  private value0 = 0;
  private kind1 = 0;
  private sign1 = 0;
  private value1 = 0;
  private kind2 = 0;
  private sign2 = 0;
  private value2 = 0;
  // Mantissa/exponent decomposition and error-free transformation outputs.
  private mantissa = 0;
  private exponent = 0;
  private sumError = 0;
  private productError = 0;
  /** Added to every rounded result's exponent (FRSQRTS halves its fused result before the one rounding). */
  private scaleAdjust = 0;

  rounding(): number {
    return (this.fpcr >>> 22) & 3;
  }

  // ---- unpacking ----

  /** Classifies operand `which` (0..2) of format `double` (0 binary32, 1 binary64); FZ flushes denormals (IDC). */
  private unpack(which: number, double: number, low: number, high: number): void {
    let kind: number;
    let sign: number;
    let value = 0;
    if (double === 0) {
      sign = low >>> 31;
      const exponent = (low >>> 23) & 0xff;
      const fraction = low & 0x7fffff;
      if (exponent === 0xff) {
        kind = fraction === 0 ? Infinity_ : fraction & 0x400000 ? QuietNaN : SignalingNaN;
      } else if (exponent === 0 && fraction === 0) kind = Zero;
      else if (exponent === 0 && (this.fpcr & (1 << 24)) !== 0) {
        kind = Zero;
        this.flags |= FpFlag.InputDenormal;
      } else {
        kind = Finite;
        scratch32Bits[0] = low & 0x7fffffff;
        value = scratch32[0];
      }
    } else {
      sign = high >>> 31;
      const exponent = (high >>> 20) & 0x7ff;
      const fractionHigh = high & 0xfffff;
      if (exponent === 0x7ff) {
        kind =
          (fractionHigh | low) === 0 ? Infinity_ : fractionHigh & 0x80000 ? QuietNaN : SignalingNaN;
      } else if (exponent === 0 && (fractionHigh | low) === 0) kind = Zero;
      else if (exponent === 0 && (this.fpcr & (1 << 24)) !== 0) {
        kind = Zero;
        this.flags |= FpFlag.InputDenormal;
      } else {
        kind = Finite;
        scratchWords[0] = low;
        scratchWords[1] = high & 0x7fffffff;
        value = scratch64[0];
      }
    }
    if (which === 0) {
      this.kind0 = kind;
      this.sign0 = sign;
      this.value0 = value;
    } else if (which === 1) {
      this.kind1 = kind;
      this.sign1 = sign;
      this.value1 = value;
    } else {
      this.kind2 = kind;
      this.sign2 = sign;
      this.value2 = value;
    }
  }

  // ---- results ----

  private packZero(double: number, sign: number): void {
    if (double === 2) {
      this.resultLow = sign << 15;
      this.resultHigh = 0;
    } else if (double === 0) {
      this.resultLow = sign << 31;
      this.resultHigh = 0;
    } else {
      this.resultLow = 0;
      this.resultHigh = sign << 31;
    }
  }

  private packInfinity(double: number, sign: number): void {
    if (double === 2) {
      this.resultLow = (sign << 15) | 0x7c00;
      this.resultHigh = 0;
    } else if (double === 0) {
      this.resultLow = (sign << 31) | 0x7f800000;
      this.resultHigh = 0;
    } else {
      this.resultLow = 0;
      this.resultHigh = (sign << 31) | 0x7ff00000;
    }
  }

  private packDefaultNaN(double: number): void {
    // FPDefaultNaN: positive, quiet, zero payload.
    if (double === 2) {
      this.resultLow = 0x7e00;
      this.resultHigh = 0;
    } else if (double === 0) {
      this.resultLow = 0x7fc00000;
      this.resultHigh = 0;
    } else {
      this.resultLow = 0;
      this.resultHigh = 0x7ff80000;
    }
  }

  /** A finite value the format holds exactly (a rounded result), with a sign. */
  private packValue(double: number, sign: number, magnitude: number): void {
    if (magnitude === 0) {
      this.packZero(double, sign);
      return;
    }
    if (double === 2) {
      // binary16 (or the alternative format, whose exponent 31 is a normal binade).
      const exponent = exponentOf(magnitude);
      const bits =
        exponent < -14
          ? magnitude * 2 ** 24
          : ((exponent + 15) << 10) | (magnitude * pow2(10 - exponent) - 1024);
      this.resultLow = (sign << 15) | bits;
      this.resultHigh = 0;
    } else if (double === 0) {
      scratch32[0] = magnitude;
      this.resultLow = scratch32Bits[0] | (sign << 31);
      this.resultHigh = 0;
    } else {
      scratch64[0] = magnitude;
      this.resultLow = scratchWords[0];
      this.resultHigh = scratchWords[1] | (sign << 31);
    }
  }

  /**
   * Rounds sign * (r + e) * 2^scale to the format (FPRound): r > 0 is a
   * double, e an error of sign `errorSign` with |e| <= ulp(r)/2. Sets
   * IXC, UFC (tiny before rounding and inexact, as Arm), OFC; FZ flushes
   * tiny results to zero with UFC.
   */
  private roundPack(
    double: number,
    sign: number,
    r: number,
    errorSign: number,
    scale: number,
    mode: number,
  ): void {
    scale += this.scaleAdjust;
    if (r < 1e-290) {
      r *= 2 ** 256;
      scale -= 256;
    }
    // Format 2 is binary16 for conversions (FPRoundCV): never flushed, and with FPCR.AHP the
    // alternative format, whose top binade is numbers and which saturates with IOC on overflow.
    const half = double === 2;
    const alternative = half && (this.fpcr & (1 << 26)) !== 0;
    const precision = half ? 11 : double ? 53 : 24;
    const minExponent = half ? -14 : double ? -1022 : -126;
    const maxExponent = half ? (alternative ? 16 : 15) : double ? 1023 : 127;
    const exponent = exponentOf(r);
    let e = exponent + scale;
    if (errorSign < 0 && r === pow2(exponent)) e--;
    const tiny = e < minExponent;
    if (tiny && !half && (this.fpcr & (1 << 24)) !== 0) {
      this.flags |= FpFlag.Underflow;
      this.packZero(double, sign);
      return;
    }
    const quantum = (tiny ? minExponent : e) - (precision - 1);
    const k = scale - quantum;
    // position of the exact value between L and L+1 quanta: 0 exact, 1 below half, 2 half, 3 above half
    let whole: number;
    let position: number;
    if (exponent + k < -2) {
      // Below a quarter of the smallest quantum: rounds from zero, never a tie.
      whole = 0;
      position = 1;
    } else {
      // n = r * 2^k exactly (a normal double of at most precision + 1 integer bits).
      const n =
        k > 1023
          ? r * pow2(k - 1000) * pow2(1000)
          : k < -1022
            ? r * pow2(-1000) * pow2(k + 1000)
            : r * pow2(k);
      whole = Math.floor(n);
      const fraction = n - whole;
      if (fraction === 0) {
        if (errorSign === 0) position = 0;
        else if (errorSign > 0) position = 1;
        else {
          whole -= 1;
          position = 3;
        }
      } else if (fraction < 0.5) position = 1;
      else if (fraction > 0.5) position = 3;
      else position = errorSign > 0 ? 3 : errorSign < 0 ? 1 : 2;
    }
    let up: boolean;
    switch (mode) {
      case Rounding.TiesEven:
        up = position === 3 || (position === 2 && whole % 2 === 1);
        break;
      case Rounding.PlusInfinity:
        up = position !== 0 && sign === 0;
        break;
      case Rounding.MinusInfinity:
        up = position !== 0 && sign === 1;
        break;
      case Rounding.TiesAway:
        up = position >= 2;
        break;
      default:
        up = false;
    }
    if (up) whole += 1;
    if (whole > 0 && exponentOf(whole) + quantum > maxExponent) {
      if (alternative) {
        this.flags |= FpFlag.InvalidOperation;
        this.resultLow = (sign << 15) | 0x7fff;
        this.resultHigh = 0;
        return;
      }
      // Overflow (FPRound): infinity or the largest finite number, by mode and sign.
      this.flags |= FpFlag.Overflow | FpFlag.Inexact;
      const toInfinity =
        mode === Rounding.TiesEven ||
        mode === Rounding.TiesAway ||
        (mode === Rounding.PlusInfinity && sign === 0) ||
        (mode === Rounding.MinusInfinity && sign === 1);
      if (toInfinity) this.packInfinity(double, sign);
      else if (double === 2) {
        this.resultLow = (sign << 15) | 0x7bff;
        this.resultHigh = 0;
      } else if (double === 0) {
        this.resultLow = (sign << 31) | 0x7f7fffff;
        this.resultHigh = 0;
      } else {
        this.resultLow = -1;
        this.resultHigh = (sign << 31) | 0x7fefffff;
      }
      return;
    }
    if (position !== 0) {
      this.flags |= FpFlag.Inexact;
      if (tiny) this.flags |= FpFlag.Underflow;
    }
    this.packValue(double, sign, whole * pow2(quantum));
  }

  // ---- NaNs ----

  /** The quiet form of NaN operand `which`, or the default NaN when FPCR.DN (FPProcessNaN). */
  private propagate(double: number, which: number, low: number, high: number): void {
    const kind = which === 0 ? this.kind0 : which === 1 ? this.kind1 : this.kind2;
    if (kind === SignalingNaN) this.flags |= FpFlag.InvalidOperation;
    if ((this.fpcr & (1 << 25)) !== 0) {
      this.packDefaultNaN(double);
      return;
    }
    if (double === 0) {
      this.resultLow = low | 0x400000;
      this.resultHigh = 0;
    } else {
      this.resultLow = low;
      this.resultHigh = high | 0x80000;
    }
  }

  /** Unpacks one operand and applies FPProcessNaN (Arm ARM J1): true when a NaN result was produced. */
  private unpackOrNaN(double: number, low: number, high: number): boolean {
    this.unpack(0, double, low, high);
    if (this.kind0 !== QuietNaN && this.kind0 !== SignalingNaN) return false;
    this.propagate(double, 0, low, high);
    return true;
  }

  /** Unpacks operands 0 and 1. */
  private unpack2(double: number, aLow: number, aHigh: number, bLow: number, bHigh: number): void {
    this.unpack(0, double, aLow, aHigh);
    this.unpack(1, double, bLow, bHigh);
  }

  /** Unpacks two operands and applies FPProcessNaNs: true when a NaN result was produced. */
  private unpackOrNaNs(
    double: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
  ): boolean {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    return this.nans2(double, aLow, aHigh, bLow, bHigh);
  }

  /** FPProcessNaNs for two operands: true when a NaN result was produced. */
  private nans2(double: number, aLow: number, aHigh: number, bLow: number, bHigh: number): boolean {
    if (this.kind0 === SignalingNaN) this.propagate(double, 0, aLow, aHigh);
    else if (this.kind1 === SignalingNaN) this.propagate(double, 1, bLow, bHigh);
    else if (this.kind0 === QuietNaN) this.propagate(double, 0, aLow, aHigh);
    else if (this.kind1 === QuietNaN) this.propagate(double, 1, bLow, bHigh);
    else return false;
    return true;
  }

  private invalid(double: number): void {
    this.flags |= FpFlag.InvalidOperation;
    this.packDefaultNaN(double);
  }

  // ---- error-free transformations ----

  /** Splits a finite non-zero |x| into mantissa in [1, 2) and exponent. */
  private decompose(x: number): void {
    const exponent = exponentOf(x);
    this.exponent = exponent;
    this.mantissa = exponent >= -1022 ? x * pow2(-exponent) : x * pow2(64) * pow2(-exponent - 64);
  }

  /** s = a + b rounded; sumError = the exact remainder (Knuth's TwoSum). */
  private twoSum(a: number, b: number): number {
    const s = a + b;
    const bb = s - a;
    this.sumError = a - (s - bb) + (b - bb);
    return s;
  }

  /** p = a * b rounded; productError = the exact remainder (Dekker; no over/underflow for |a|,|b| in [1, 4)). */
  private twoProduct(a: number, b: number): number {
    const p = a * b;
    let c = SPLITTER * a;
    const aHigh = c - (c - a);
    const aLow = a - aHigh;
    c = SPLITTER * b;
    const bHigh = c - (c - b);
    const bLow = b - bHigh;
    this.productError = aHigh * bHigh - p + aHigh * bLow + aLow * bHigh + aLow * bLow;
    return p;
  }

  // ---- arithmetic (FPAdd, FPSub, FPMul, FPDiv, FPSqrt, FPMulAdd) ----

  /** a + b, or a - b when `subtract`. */
  add(
    double: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
    subtract: boolean,
  ): void {
    if (this.unpackOrNaNs(double, aLow, aHigh, bLow, bHigh)) return;
    const signB = subtract ? this.sign1 ^ 1 : this.sign1;
    const mode = this.rounding();
    if (this.kind0 === Infinity_ || this.kind1 === Infinity_) {
      if (this.kind0 === Infinity_ && this.kind1 === Infinity_ && this.sign0 !== signB) {
        this.invalid(double);
        return;
      }
      this.packInfinity(double, this.kind0 === Infinity_ ? this.sign0 : signB);
      return;
    }
    const a = this.sign0 ? -this.value0 : this.value0;
    const b = signB ? -this.value1 : this.value1;
    this.sumOf(double, a, b, this.kind0 === Zero && this.kind1 === Zero, this.sign0, signB, mode);
  }

  /** Rounds a + b (finite doubles); zeroes follow IEEE's sign rules. */
  private sumOf(
    double: number,
    a: number,
    b: number,
    bothZero: boolean,
    signA: number,
    signB: number,
    mode: number,
  ): void {
    if (bothZero) {
      this.packZero(double, signA === signB ? signA : mode === Rounding.MinusInfinity ? 1 : 0);
      return;
    }
    let scale = 0;
    let s = this.twoSum(a, b);
    if (!Number.isFinite(s)) {
      scale = 2;
      s = this.twoSum(a * 0.25, b * 0.25);
    }
    const error = this.sumError;
    if (s === 0) {
      // An exact zero from operands of opposite signs: +0, or -0 when rounding toward minus infinity.
      this.packZero(double, mode === Rounding.MinusInfinity ? 1 : 0);
      return;
    }
    const sign = s < 0 ? 1 : 0;
    this.roundPack(
      double,
      sign,
      Math.abs(s),
      sign ? -Math.sign(error) : Math.sign(error),
      scale,
      mode,
    );
  }

  /** FPMul, or FPMulX (`extended`: infinity times zero is 2.0 with the product's sign, FMULX). */
  multiply(
    double: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
    extended = false,
  ): void {
    if (this.unpackOrNaNs(double, aLow, aHigh, bLow, bHigh)) return;
    const sign = this.sign0 ^ this.sign1;
    if (this.kind0 === Infinity_ || this.kind1 === Infinity_) {
      if (this.kind0 === Zero || this.kind1 === Zero) {
        if (extended) this.packValue(double, sign, 2);
        else this.invalid(double);
      } else this.packInfinity(double, sign);
      return;
    }
    if (this.kind0 === Zero || this.kind1 === Zero) {
      this.packZero(double, sign);
      return;
    }
    this.decompose(this.value0);
    const m0 = this.mantissa;
    const e0 = this.exponent;
    this.decompose(this.value1);
    const p = this.twoProduct(m0, this.mantissa);
    this.roundPack(
      double,
      sign,
      p,
      Math.sign(this.productError),
      e0 + this.exponent,
      this.rounding(),
    );
  }

  divide(double: number, aLow: number, aHigh: number, bLow: number, bHigh: number): void {
    if (this.unpackOrNaNs(double, aLow, aHigh, bLow, bHigh)) return;
    const sign = this.sign0 ^ this.sign1;
    if (this.kind0 === Infinity_) {
      if (this.kind1 === Infinity_) this.invalid(double);
      else this.packInfinity(double, sign);
      return;
    }
    if (this.kind1 === Zero) {
      if (this.kind0 === Zero) this.invalid(double);
      else {
        this.flags |= FpFlag.DivideByZero;
        this.packInfinity(double, sign);
      }
      return;
    }
    if (this.kind0 === Zero || this.kind1 === Infinity_) {
      this.packZero(double, sign);
      return;
    }
    this.decompose(this.value0);
    const m0 = this.mantissa;
    const e0 = this.exponent;
    this.decompose(this.value1);
    const m1 = this.mantissa;
    const q = m0 / m1;
    // The remainder m0 - q*m1 is exact: m0 - ph by Sterbenz, then a representable difference.
    const ph = this.twoProduct(q, m1);
    const remainder = m0 - ph - this.productError;
    this.roundPack(double, sign, q, Math.sign(remainder), e0 - this.exponent, this.rounding());
  }

  squareRoot(double: number, aLow: number, aHigh: number): void {
    if (this.unpackOrNaN(double, aLow, aHigh)) return;
    if (this.kind0 === Zero) {
      this.packZero(double, this.sign0);
      return;
    }
    if (this.sign0 === 1) {
      this.invalid(double);
      return;
    }
    if (this.kind0 === Infinity_) {
      this.packInfinity(double, 0);
      return;
    }
    this.decompose(this.value0);
    let m = this.mantissa;
    let e = this.exponent;
    if ((e & 1) !== 0) {
      m *= 2;
      e -= 1;
    }
    const s = Math.sqrt(m);
    const ph = this.twoProduct(s, s);
    const remainder = m - ph - this.productError;
    this.roundPack(double, 0, s, Math.sign(remainder), e / 2, this.rounding());
  }

  /**
   * FPMulAdd: addend + a * b with a single rounding. Operands arrive
   * already negated as FMSUB/FNMADD/FNMSUB require (FPNeg flips NaN signs too).
   */
  multiplyAdd(
    double: number,
    cLow: number,
    cHigh: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
  ): void {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    this.unpack(2, double, cLow, cHigh);
    const k0 = this.kind0;
    const k1 = this.kind1;
    const kc = this.kind2;
    const infinityTimesZero =
      (k0 === Infinity_ && k1 === Zero) || (k0 === Zero && k1 === Infinity_);
    // FPProcessNaNs3(addend, op1, op2), then inf*0 + QNaN is the default NaN with IOC.
    if (kc === SignalingNaN) this.propagate(double, 2, cLow, cHigh);
    else if (k0 === SignalingNaN) this.propagate(double, 0, aLow, aHigh);
    else if (k1 === SignalingNaN) this.propagate(double, 1, bLow, bHigh);
    else if (kc === QuietNaN) {
      if (infinityTimesZero) this.invalid(double);
      else this.propagate(double, 2, cLow, cHigh);
    } else if (k0 === QuietNaN) this.propagate(double, 0, aLow, aHigh);
    else if (k1 === QuietNaN) this.propagate(double, 1, bLow, bHigh);
    else {
      this.multiplyAddValues(double, infinityTimesZero);
      return;
    }
  }

  private multiplyAddValues(double: number, infinityTimesZero: boolean): void {
    const productSign = this.sign0 ^ this.sign1;
    const productInfinite = this.kind0 === Infinity_ || this.kind1 === Infinity_;
    const productZero = this.kind0 === Zero || this.kind1 === Zero;
    const mode = this.rounding();
    if (infinityTimesZero) {
      this.invalid(double);
      return;
    }
    if (this.kind2 === Infinity_ && productInfinite && this.sign2 !== productSign) {
      this.invalid(double);
      return;
    }
    if (this.kind2 === Infinity_) {
      this.packInfinity(double, this.sign2);
      return;
    }
    if (productInfinite) {
      this.packInfinity(double, productSign);
      return;
    }
    const c = this.sign2 ? -this.value2 : this.value2;
    if (productZero) {
      this.sumOf(double, 0, c, this.kind2 === Zero, productSign, this.sign2, mode);
      return;
    }
    this.decompose(this.value0);
    const m0 = this.mantissa;
    const e0 = this.exponent;
    this.decompose(this.value1);
    const productExponent = e0 + this.exponent;
    let ph = this.twoProduct(m0, this.mantissa);
    let pl = this.productError;
    if (productSign) {
      ph = -ph;
      pl = -pl;
    }
    if (this.kind2 === Zero) {
      this.roundPack(
        double,
        productSign,
        Math.abs(ph),
        Math.sign(pl) * (productSign ? -1 : 1),
        productExponent,
        mode,
      );
      return;
    }
    this.decompose(this.value2);
    const mc = c < 0 ? -this.mantissa : this.mantissa;
    const ec = this.exponent;
    if (productExponent - ec > 160) {
      // The addend only breaks ties: it lies far below the product's last bit.
      const errorSign = pl !== 0 ? Math.sign(pl) : Math.sign(mc);
      this.roundPack(
        double,
        productSign,
        Math.abs(ph),
        productSign ? -errorSign : errorSign,
        productExponent,
        mode,
      );
      return;
    }
    if (ec - productExponent > 160) {
      const sign = this.sign2;
      this.roundPack(double, sign, Math.abs(mc), sign ? -Math.sign(ph) : Math.sign(ph), ec, mode);
      return;
    }
    // Exact sum of three doubles scaled near 1 (no underflow: exponents lie within 160 + 106 of 0).
    const top = Math.max(productExponent, ec);
    const x = ph * pow2(productExponent - top);
    const y = pl * pow2(productExponent - top);
    const z = mc * pow2(ec - top);
    const s1 = this.twoSum(x, z);
    const e1 = this.sumError;
    const s2 = this.twoSum(e1, y);
    const e2 = this.sumError;
    const r = this.twoSum(s1, s2);
    const e3 = this.sumError;
    const t = this.twoSum(e3, e2);
    const t2 = this.sumError;
    let r2 = this.twoSum(r, t);
    let t3 = this.sumError;
    if (r2 === 0) {
      if (t2 === 0) {
        // Exact cancellation: +0, or -0 toward minus infinity (IEEE 754 6.3).
        this.packZero(double, mode === Rounding.MinusInfinity ? 1 : 0);
        return;
      }
      r2 = t2;
      t3 = 0;
      const sign = r2 < 0 ? 1 : 0;
      this.roundPack(double, sign, Math.abs(r2), 0, top, mode);
      return;
    }
    let errorSign = t3 !== 0 ? Math.sign(t3) : Math.sign(t2);
    if (t3 !== 0 && t2 !== 0 && Math.sign(t2) === Math.sign(t3)) {
      // r2 sits exactly half an ulp from the exact sum's side: step to the neighbour so that |error| < ulp/2.
      const half = pow2(exponentOf(r2) - 53);
      if (Math.abs(t3) === half) {
        r2 += 2 * t3;
        errorSign = -errorSign;
      }
    }
    const sign = r2 < 0 ? 1 : 0;
    this.roundPack(double, sign, Math.abs(r2), sign ? -errorSign : errorSign, top, mode);
  }

  // ---- min/max (FPMax, FPMin, FPMaxNum, FPMinNum) ----

  /** kind: 0 max, 1 min, 2 maxnm, 3 minnm. */
  minMax(
    double: number,
    kind: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
  ): void {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    const max = (kind & 1) === 0;
    if (kind >= 2) {
      // FPMaxNum/FPMinNum: a single quiet NaN loses to a number.
      const nan0 = this.kind0 === QuietNaN;
      const nan1 = this.kind1 === QuietNaN;
      if (nan0 && !nan1 && this.kind1 !== SignalingNaN) {
        this.kind0 = Infinity_;
        this.sign0 = max ? 1 : 0;
      } else if (nan1 && !nan0 && this.kind0 !== SignalingNaN) {
        this.kind1 = Infinity_;
        this.sign1 = max ? 1 : 0;
      }
    }
    if (this.nans2(double, aLow, aHigh, bLow, bHigh)) return;
    const a = this.signedValue(0);
    const b = this.signedValue(1);
    let pickFirst: boolean;
    if (a === b) {
      // +0 and -0: max gives +0, min gives -0.
      pickFirst = max ? this.sign0 === 0 : this.sign0 === 1;
    } else pickFirst = max ? a > b : a < b;
    const kindPicked = pickFirst ? this.kind0 : this.kind1;
    const sign = pickFirst ? this.sign0 : this.sign1;
    if (kindPicked === Infinity_) this.packInfinity(double, sign);
    else this.packValue(double, sign, pickFirst ? this.value0 : this.value1);
  }

  private signedValue(which: number): number {
    const kind = which === 0 ? this.kind0 : this.kind1;
    const sign = which === 0 ? this.sign0 : this.sign1;
    const value =
      kind === Infinity_ ? Number.POSITIVE_INFINITY : which === 0 ? this.value0 : this.value1;
    return sign ? -value : value;
  }

  // ---- compare (FPCompare) ----

  /** Sets `nzcv` (bits 3..0); `signalAll` for FCMPE (IOC on any NaN). */
  compare(
    double: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
    signalAll: boolean,
  ): void {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    if (this.kind0 >= QuietNaN || this.kind1 >= QuietNaN) {
      if (signalAll || this.kind0 === SignalingNaN || this.kind1 === SignalingNaN)
        this.flags |= FpFlag.InvalidOperation;
      this.nzcv = 0b0011;
      return;
    }
    const a = this.signedValue(0);
    const b = this.signedValue(1);
    this.nzcv = a === b ? 0b0110 : a < b ? 0b1000 : 0b0010;
  }

  /** Vector compare FCMEQ/FCMGE/FCMGT (kind 0, 1, 2): true/false, IOC per Arm's signalling rules. */
  compareVector(
    double: number,
    kind: number,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
  ): boolean {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    if (this.kind0 >= QuietNaN || this.kind1 >= QuietNaN) {
      if (kind !== 0 || this.kind0 === SignalingNaN || this.kind1 === SignalingNaN)
        this.flags |= FpFlag.InvalidOperation;
      return false;
    }
    const a = this.signedValue(0);
    const b = this.signedValue(1);
    return kind === 0 ? a === b : kind === 1 ? a >= b : a > b;
  }

  // ---- conversions ----

  /** FCVT between binary32 and binary64 (`toDouble` gives the target). */
  convert(toDouble: number, low: number, high: number): void {
    const from = toDouble ^ 1;
    this.unpack(0, from, low, high);
    const kind = this.kind0;
    const sign = this.sign0;
    if (kind === SignalingNaN || kind === QuietNaN) {
      if (kind === SignalingNaN) this.flags |= FpFlag.InvalidOperation;
      if ((this.fpcr & (1 << 25)) !== 0) this.packDefaultNaN(toDouble);
      else if (toDouble) {
        // FPConvertNaN: the payload moves to the top of the wider fraction.
        const fraction = low & 0x7fffff;
        this.resultHigh = (sign << 31) | 0x7ff80000 | (fraction >>> 3);
        this.resultLow = fraction << 29;
      } else {
        const fraction = ((high & 0x7ffff) << 3) | (low >>> 29);
        this.resultLow = (sign << 31) | 0x7fc00000 | fraction;
        this.resultHigh = 0;
      }
      return;
    }
    if (kind === Infinity_) this.packInfinity(toDouble, sign);
    else if (kind === Zero) this.packZero(toDouble, sign);
    else this.roundPack(toDouble, sign, this.value0, 0, 0, this.rounding());
  }

  /**
   * FRECPS (2 - a*b) and FRSQRTS ((3 - a*b) / 2), fused with one rounding
   * (FPRecipStepFused, FPRSqrtStepFused): infinity times zero gives 2.0 or
   * 1.5 instead of the default NaN.
   */
  reciprocalStep(
    double: number,
    squareRoot: boolean,
    aLow: number,
    aHigh: number,
    bLow: number,
    bHigh: number,
  ): void {
    this.unpack2(double, aLow, aHigh, bLow, bHigh);
    const k0 = this.kind0;
    const k1 = this.kind1;
    const nan = k0 >= QuietNaN || k1 >= QuietNaN;
    const infinityTimesZero =
      (k0 === Infinity_ && k1 === Zero) || (k0 === Zero && k1 === Infinity_);
    if (!nan && infinityTimesZero) {
      this.packValue(double, 0, squareRoot ? 1.5 : 2);
      return;
    }
    if (!nan && (k0 === Zero || k1 === Zero)) {
      this.packValue(double, 0, squareRoot ? 1.5 : 2);
      return;
    }
    // The first operand is negated (FPNeg, NaNs included) and the addend is 2.0 or 3.0.
    const sign = double ? 0 : 0x80000000 | 0;
    const signHigh = double ? 0x80000000 | 0 : 0;
    const addendLow = double ? 0 : squareRoot ? 0x40400000 : 0x40000000;
    const addendHigh = double ? (squareRoot ? 0x40080000 : 0x40000000) : 0;
    this.scaleAdjust = squareRoot ? -1 : 0;
    this.multiplyAdd(double, addendLow, addendHigh, aLow ^ sign, aHigh ^ signHigh, bLow, bHigh);
    this.scaleAdjust = 0;
  }

  /** FRECPE (FPRecipEstimate): 8-bit reciprocal estimate, Arm's table-free integer algorithm. */
  reciprocalEstimate(double: number, low: number, high: number): void {
    if (this.unpackOrNaN(double, low, high)) return;
    const kind = this.kind0;
    const sign = this.sign0;
    if (kind === Infinity_) {
      this.packZero(double, sign);
      return;
    }
    if (kind === Zero) {
      this.flags |= FpFlag.DivideByZero;
      this.packInfinity(double, sign);
      return;
    }
    const value = this.value0;
    if (value < (double ? 2 ** -1024 : 2 ** -128)) {
      const mode = this.rounding();
      const toInfinity =
        mode === Rounding.TiesEven ||
        (mode === Rounding.PlusInfinity && sign === 0) ||
        (mode === Rounding.MinusInfinity && sign === 1);
      this.flags |= FpFlag.Overflow | FpFlag.Inexact;
      if (toInfinity) this.packInfinity(double, sign);
      else if (double) {
        this.resultLow = -1;
        this.resultHigh = (sign << 31) | 0x7fefffff;
      } else {
        this.resultLow = (sign << 31) | 0x7f7fffff;
        this.resultHigh = 0;
      }
      return;
    }
    if ((this.fpcr & (1 << 24)) !== 0 && value >= (double ? 2 ** 1022 : 2 ** 126)) {
      this.flags |= FpFlag.Underflow;
      this.packZero(double, sign);
      return;
    }
    // The fraction as a 52-bit integer (held exactly in a double) and the biased exponent.
    let fraction = fraction52(double, low, high);
    let exponent = biasedExponent(double, low, high);
    if (exponent === 0) {
      if (fraction < 2 ** 51) {
        exponent = -1;
        fraction = (fraction % 2 ** 50) * 4;
      } else fraction = (fraction % 2 ** 51) * 2;
    }
    const scaled = 256 + Math.floor(fraction / 2 ** 44);
    let resultExponent = (double ? 2045 : 253) - exponent;
    // RecipEstimate: a = 2 * scaled + 1, b = 2^19 DIV a, r = (b + 1) DIV 2, in 256..511.
    const estimate = recipEstimate(scaled) & 0xff;
    let resultFraction: number; // 52-bit
    if (resultExponent === 0) resultFraction = (256 + estimate) * 2 ** 43;
    else if (resultExponent === -1) {
      resultFraction = (256 + estimate) * 2 ** 42;
      resultExponent = 0;
    } else resultFraction = estimate * 2 ** 44;
    this.packFields(double, sign, resultExponent, resultFraction);
  }

  /** FRSQRTE (FPRSqrtEstimate): 8-bit reciprocal square-root estimate. */
  reciprocalSquareRootEstimate(double: number, low: number, high: number): void {
    if (this.unpackOrNaN(double, low, high)) return;
    const kind = this.kind0;
    const sign = this.sign0;
    if (kind === Zero) {
      this.flags |= FpFlag.DivideByZero;
      this.packInfinity(double, sign);
      return;
    }
    if (sign === 1) {
      this.invalid(double);
      return;
    }
    if (kind === Infinity_) {
      this.packZero(double, 0);
      return;
    }
    let fraction = fraction52(double, low, high);
    let exponent = biasedExponent(double, low, high);
    if (exponent === 0) {
      while (fraction < 2 ** 51) {
        fraction *= 2;
        exponent -= 1;
      }
      fraction = (fraction % 2 ** 51) * 2;
    }
    const scaled =
      (exponent & 1) === 0
        ? 256 + Math.floor(fraction / 2 ** 44)
        : 128 + Math.floor(fraction / 2 ** 45);
    const resultExponent = Math.floor(((double ? 3068 : 380) - exponent) / 2);
    const estimate = recipSqrtEstimate(scaled) & 0xff;
    this.packFields(double, 0, resultExponent, estimate * 2 ** 44);
  }

  /** FRECPX (FPRecpX): the exponent inverted (zero and denormal give the largest), fraction zero. */
  reciprocalExponent(double: number, low: number, high: number): void {
    if (this.unpackOrNaN(double, low, high)) return;
    const sign = this.sign0;
    if (double) {
      const exponent = (high >>> 20) & 0x7ff;
      this.resultLow = 0;
      this.resultHigh = (sign << 31) | ((exponent === 0 ? 0x7fe : ~exponent & 0x7ff) << 20);
    } else {
      const exponent = (low >>> 23) & 0xff;
      this.resultLow = (sign << 31) | ((exponent === 0 ? 0xfe : ~exponent & 0xff) << 23);
      this.resultHigh = 0;
    }
  }

  /** Packs sign, biased exponent and a 52-bit fraction (truncated to 23 bits for binary32). */
  private packFields(double: number, sign: number, exponent: number, fraction: number): void {
    if (double) {
      this.resultLow = (fraction % TWO_POW_32) | 0;
      this.resultHigh =
        (sign << 31) | ((exponent & 0x7ff) << 20) | Math.floor(fraction / TWO_POW_32);
    } else {
      this.resultLow = (sign << 31) | ((exponent & 0xff) << 23) | Math.floor(fraction / 2 ** 29);
      this.resultHigh = 0;
    }
  }

  /** FCVT to binary16 from binary32/64 (`fromDouble`): FPConvert with FPCR.AHP and DN. */
  convertToHalf(fromDouble: number, low: number, high: number): void {
    this.unpack(0, fromDouble, low, high);
    const kind = this.kind0;
    const sign = this.sign0;
    const alternative = (this.fpcr & (1 << 26)) !== 0;
    if (kind === SignalingNaN || kind === QuietNaN) {
      if (kind === SignalingNaN || alternative) this.flags |= FpFlag.InvalidOperation;
      if (alternative) this.packZero(2, sign);
      else if ((this.fpcr & (1 << 25)) !== 0) this.packDefaultNaN(2);
      else {
        // FPConvertNaN: the top nine payload bits follow the quiet bit.
        const payload = fromDouble ? (high >>> 10) & 0x1ff : (low >>> 13) & 0x1ff;
        this.resultLow = (sign << 15) | 0x7e00 | payload;
        this.resultHigh = 0;
      }
      return;
    }
    if (kind === Infinity_) {
      if (alternative) {
        this.flags |= FpFlag.InvalidOperation;
        this.resultLow = (sign << 15) | 0x7fff;
        this.resultHigh = 0;
      } else this.packInfinity(2, sign);
      return;
    }
    if (kind === Zero) this.packZero(2, sign);
    else this.roundPack(2, sign, this.value0, 0, 0, this.rounding());
  }

  /** FCVT from binary16 (`bits`) to binary32/64: exact; denormal halves are not flushed (FPUnpackCV). */
  convertFromHalf(toDouble: number, bits: number): void {
    const sign = (bits >>> 15) & 1;
    const exponent = (bits >>> 10) & 31;
    const fraction = bits & 0x3ff;
    if (exponent === 31 && (this.fpcr & (1 << 26)) === 0) {
      if (fraction === 0) {
        this.packInfinity(toDouble, sign);
        return;
      }
      if ((fraction & 0x200) === 0) this.flags |= FpFlag.InvalidOperation;
      if ((this.fpcr & (1 << 25)) !== 0) this.packDefaultNaN(toDouble);
      else if (toDouble) {
        this.resultLow = 0;
        this.resultHigh = (sign << 31) | 0x7ff80000 | (fraction << 10);
      } else {
        this.resultLow = (sign << 31) | 0x7fc00000 | (fraction << 13);
        this.resultHigh = 0;
      }
      return;
    }
    if (exponent === 0 && fraction === 0) {
      this.packZero(toDouble, sign);
      return;
    }
    const magnitude =
      exponent === 0 ? fraction * 2 ** -24 : (1024 + fraction) * pow2(exponent - 25);
    this.packValue(toDouble, sign, magnitude);
  }

  /**
   * FPToFixed: the value times 2^fractionBits rounded to an integer of
   * `bits` (32 or 64), signed or not, saturating with IOC. Result halves in
   * resultLow/resultHigh.
   */
  toInteger(
    double: number,
    low: number,
    high: number,
    fractionBits: number,
    mode: number,
    bits: number,
    unsigned: boolean,
  ): void {
    this.unpack(0, double, low, high);
    const kind = this.kind0;
    const sign = this.sign0;
    if (kind === QuietNaN || kind === SignalingNaN) {
      this.flags |= FpFlag.InvalidOperation;
      this.resultLow = 0;
      this.resultHigh = 0;
      return;
    }
    let magnitude = kind === Infinity_ ? Number.POSITIVE_INFINITY : this.value0;
    if (kind === Finite && fractionBits > 0) magnitude *= pow2(fractionBits);
    let whole = Math.floor(magnitude);
    const fraction = magnitude - whole;
    if (kind === Finite && fraction !== 0) {
      if (roundsUp(mode, sign, whole, fraction)) whole += 1;
    }
    // Saturation (FPToFixed via SatQ): out-of-range results take the nearest bound and raise IOC only.
    const overflow = unsigned
      ? sign
        ? whole > 0
        : whole >= pow2(bits)
      : sign
        ? whole > pow2(bits - 1)
        : whole >= pow2(bits - 1);
    if (overflow || Number.isNaN(whole)) {
      this.flags |= FpFlag.InvalidOperation;
      if (unsigned) {
        this.resultLow = sign ? 0 : -1;
        this.resultHigh = sign || bits === 32 ? 0 : -1;
      } else if (bits === 32) {
        this.resultLow = sign ? 0x80000000 | 0 : 0x7fffffff;
        this.resultHigh = 0;
      } else {
        this.resultLow = sign ? 0 : -1;
        this.resultHigh = sign ? 0x80000000 | 0 : 0x7fffffff;
      }
      return;
    }
    if (kind === Finite && fraction !== 0) this.flags |= FpFlag.Inexact;
    // whole is an integer below 2^64 held exactly: split into halves, negate if needed.
    let lowWord = whole % TWO_POW_32;
    let highWord = (whole - lowWord) / TWO_POW_32;
    if (sign && whole !== 0) {
      lowWord = (~lowWord + 1) >>> 0;
      highWord = ~highWord + (lowWord === 0 ? 1 : 0);
    }
    this.resultLow = lowWord | 0;
    this.resultHigh = bits === 32 ? 0 : highWord | 0;
  }

  /** FixedToFP: the integer low/high (64 bits, or 32 when `bits` is 32) divided by 2^fractionBits. */
  fromInteger(
    double: number,
    low: number,
    high: number,
    fractionBits: number,
    bits: number,
    unsigned: boolean,
  ): void {
    let sign = 0;
    if (bits === 32) high = unsigned ? 0 : low >> 31;
    if (!unsigned && high < 0) {
      sign = 1;
      low = ~low + 1;
      high = ~high + (low === 0 ? 1 : 0);
    }
    const top = (high >>> 0) * TWO_POW_32;
    const r = this.twoSum(top, low >>> 0);
    if (r === 0) {
      this.packZero(double, 0);
      return;
    }
    this.roundPack(double, sign, r, Math.sign(this.sumError), -fractionBits, this.rounding());
  }

  /** FRINT*: round to an integral value in the same format; `exact` (FRINTX) raises IXC. */
  roundToIntegral(double: number, low: number, high: number, mode: number, exact: boolean): void {
    if (this.unpackOrNaN(double, low, high)) return;
    const kind = this.kind0;
    const sign = this.sign0;
    if (kind === Zero) {
      this.packZero(double, sign);
      return;
    }
    if (kind === Infinity_) {
      this.packInfinity(double, sign);
      return;
    }
    const value = this.value0;
    let whole = Math.floor(value);
    const fraction = value - whole;
    if (fraction !== 0) {
      if (roundsUp(mode, sign, whole, fraction)) whole += 1;
      if (exact) this.flags |= FpFlag.Inexact;
    }
    this.packValue(double, sign, whole);
  }
}

/**
 * Whether a non-negative magnitude `whole + fraction` (0 < fraction < 1) of
 * the given sign rounds away from `whole` in `mode` (Arm ARM J1 FPRoundInt /
 * FPToFixed: the same rounding-direction decision for both).
 */
function roundsUp(mode: number, sign: number, whole: number, fraction: number): boolean {
  switch (mode) {
    case Rounding.TiesEven:
      return fraction > 0.5 || (fraction === 0.5 && whole % 2 === 1);
    case Rounding.PlusInfinity:
      return sign === 0;
    case Rounding.MinusInfinity:
      return sign === 1;
    case Rounding.TiesAway:
      return fraction >= 0.5;
    default:
      return false;
  }
}

/** The fraction field as a 52-bit integer (a single's 23 bits shifted up), held exactly in a double. */
function fraction52(double: number, low: number, high: number): number {
  return double ? (high & 0xfffff) * TWO_POW_32 + (low >>> 0) : (low & 0x7fffff) * 2 ** 29;
}

/** The biased exponent field of a single or double. */
function biasedExponent(double: number, low: number, high: number): number {
  return double ? (high >>> 20) & 0x7ff : (low >>> 23) & 0xff;
}
