/**
 * IEEE 754 arithmetic for the SSE/SSE2 unit with every MXCSR rounding mode,
 * DAZ/FTZ and exact exception flags (Intel SDM vol. 1 4.8, 10.2.3, 11.5).
 *
 * JavaScript only rounds to nearest in double precision, so each operation
 * first produces its exact result as an unevaluated sum `hi + lo` (times a
 * power of two) with error-free transformations (TwoSum, Dekker's
 * TwoProduct; the remainder of a division or square root is exact, Boldo and
 * Muller 2011), and `round` then rounds that exact value once, to single or
 * double precision, in the mode MXCSR asks for. No BigInt and no allocation:
 * results come back through module-level fields.
 */

// MXCSR bits (SDM vol. 1 10.2.3).
export const IE = 0x01;
export const DE = 0x02;
export const ZE = 0x04;
export const OE = 0x08;
export const UE = 0x10;
export const PE = 0x20;
export const DAZ = 0x40;
export const FZ = 0x8000;
/** Rounding control: 0 nearest-even, 1 down (toward -inf), 2 up, 3 toward zero. */
export const RC_SHIFT = 13;

export interface Format {
  /** Significand bits including the hidden bit. */
  readonly precision: number;
  readonly emin: number;
  readonly emax: number;
  /** Largest finite value. */
  readonly max: number;
}

export const SINGLE: Format = {
  precision: 24,
  emin: -126,
  emax: 127,
  max: (2 - 2 ** -23) * 2 ** 127,
};
export const DOUBLE: Format = {
  precision: 53,
  emin: -1022,
  emax: 1023,
  max: Number.MAX_VALUE,
};

const bits = new Float64Array(1);
const words = new Int32Array(bits.buffer);

/** Flags raised by the last `round` (OE, UE, PE). */
export let roundFlags = 0;
/** The last rounding increased the magnitude (the x87 C1 "rounded up" bit, SDM vol. 1 8.1.3.1). */
export let roundedUp = false;
/** Exponent out of `decompose`. */
export let decomposedExponent = 0;

/** |x| = m * 2^e with m in [1, 2); returns m, sets decomposedExponent (x finite, nonzero). */
export function decompose(x: number): number {
  bits[0] = x < 0 ? -x : x;
  let field = (words[1] >>> 20) & 0x7ff;
  let adjust = 0;
  if (field === 0) {
    bits[0] *= 2 ** 64;
    field = (words[1] >>> 20) & 0x7ff;
    adjust = 64;
  }
  decomposedExponent = field - 1023 - adjust;
  words[1] = (words[1] & 0x800fffff) | (1023 << 20);
  return bits[0];
}

/** x * 2^n without intermediate overflow or underflow when the result is representable. */
export function scale(x: number, n: number): number {
  while (n > 1000) {
    x *= 2 ** 1000;
    n -= 1000;
  }
  while (n < -1000) {
    x *= 2 ** -1000;
    n += 1000;
  }
  return x * 2 ** n;
}

// Error-free transformations (results in twoHi/twoLo).
let twoHi = 0;
let twoLo = 0;

function twoSum(a: number, b: number): void {
  const s = a + b;
  const bb = s - a;
  twoHi = s;
  twoLo = a - (s - bb) + (b - bb);
}

function twoProduct(a: number, b: number): void {
  const p = a * b;
  let c = 134217729 * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = 134217729 * b;
  const bh = c - (c - b);
  const bl = b - bh;
  twoHi = p;
  twoLo = ah * bh - p + ah * bl + al * bh + al * bl;
}

// The exact result of an operation: sign * (hi + lo) * 2^exp, hi > 0, |lo| <= ulp(hi)/2.
let exactNegative = false;
let exactHi = 0;
let exactLo = 0;
let exactExp = 0;

/** 1: the exact value is sqrt(tieA); 2: tieA / tieB (significands); 0: hi + lo is exact. */
let tieKind = 0;
let tieA = 0;
let tieB = 0;

/**
 * Whether the exact result lies above the midpoint (n + 1/2) * 2^-s (in the
 * significand domain of exactHi): compares tieA with the midpoint squared
 * (root) or times tieB (quotient), with error-free products and sums.
 */
function aboveMidpoint(n: number, s: number): boolean {
  const c = scale(n, -s);
  const half = scale(0.5, -s);
  if (tieKind === 1) {
    // tieA - (c + half)^2 = tieA - c^2 - 2*c*half - half^2
    twoProduct(c, c);
    const p = twoHi;
    const pl = twoLo;
    twoSum(tieA - p, -2 * c * half);
    return twoHi + (twoLo - pl - half * half) > 0;
  }
  // tieA - (c + half) * tieB
  twoProduct(c, tieB);
  const p = twoHi;
  const pl = twoLo;
  twoSum(tieA - p, -half * tieB);
  return twoHi + (twoLo - pl) > 0;
}

/** Rounds the exact value at quantum 2^q; returns the rounded magnitude's integer n (value n * 2^q). */
let roundedInexact = false;
function roundAt(q: number, rc: number): number {
  const s = exactExp - q;
  const mh = scale(exactHi, s);
  let ml = scale(exactLo, s);
  // Keep the sign of a remainder far below the quantum (it still decides directed rounding).
  if (ml === 0 && exactLo !== 0) ml = exactLo < 0 ? -Number.MIN_VALUE : Number.MIN_VALUE;
  let n = Math.floor(mh);
  let f = mh - n;
  if (f === 0 && ml < 0) {
    n -= 1;
    f = 1;
  }
  const inexact = f !== 0 || ml !== 0;
  roundedInexact = inexact;
  roundedUp = false;
  if (!inexact) return n;
  let up = false;
  switch (rc) {
    case 0: {
      const half = f - 0.5 + ml;
      if (half === 0 && tieKind !== 0) {
        // lo of a quotient or root is itself rounded and may land on the
        // midpoint, which the exact result never is: decide exactly.
        up = aboveMidpoint(n, s);
      } else up = half > 0 || (half === 0 && n % 2 === 1);
      break;
    }
    case 1:
      up = exactNegative;
      break;
    case 2:
      up = !exactNegative;
      break;
  }
  roundedUp = up;
  return up ? n + 1 : n;
}

/**
 * Rounds the exact value set by the operation to `format` under MXCSR
 * (rounding control, FZ, UE mask); returns the signed result (a value of
 * the format, or ±infinity) and sets roundFlags. Tininess is detected after
 * rounding, as Intel processors do (SDM vol. 1 4.9.1.5; SoftFloat's 8086
 * specialization).
 */
function roundExact(format: Format, mxcsr: number): number {
  roundFlags = 0;
  const rc = (mxcsr >> RC_SHIFT) & 3;
  const p = format.precision;
  // Exponent of the exact value.
  decompose(exactHi);
  let e = decomposedExponent + exactExp;
  if (exactLo < 0 && decompose(exactHi) === 1) e -= 1;
  const q = (e < format.emin ? format.emin : e) - p + 1;
  const n = roundAt(q, rc);
  const inexact = roundedInexact;
  const up = roundedUp;
  let value = scale(n, q);
  // Overflow after rounding (SDM vol. 1 4.9.1.4).
  if (value > format.max) {
    roundFlags = OE | PE;
    const toMax = rc === 3 || (rc === 1 && !exactNegative) || (rc === 2 && exactNegative);
    value = toMax ? format.max : Number.POSITIVE_INFINITY;
    return exactNegative ? -value : value;
  }
  let tiny = e < format.emin;
  if (e === format.emin - 1) {
    // Tiny unless rounding with an unbounded exponent reaches 2^emin, that
    // is 2^p units of the quantum 2^(emin - p) (compared as integers: the
    // rounded value itself may not be representable as a double).
    tiny = roundAt(e - p + 1, rc) < 2 ** p;
  }
  const underflowMasked = (mxcsr & (UE << 7)) !== 0;
  roundedUp = up;
  if (tiny) {
    if (underflowMasked && mxcsr & FZ) {
      // Flush to zero (SDM vol. 1 10.2.3.3).
      roundFlags = UE | PE;
      return exactNegative ? -0 : 0;
    }
    if (!underflowMasked) roundFlags = inexact ? UE | PE : UE;
    else if (inexact) roundFlags = UE | PE;
    return exactNegative ? -value : value;
  }
  if (inexact) roundFlags = PE;
  return exactNegative ? -value : value;
}

/** Rounds a finite value that is already exact in doubles (conversions). */
export function roundValue(x: number, format: Format, mxcsr: number): number {
  if (x === 0) {
    roundFlags = 0;
    roundedUp = false;
    return x;
  }
  exactNegative = x < 0;
  exactHi = x < 0 ? -x : x;
  exactLo = 0;
  exactExp = 0;
  return roundExact(format, mxcsr);
}

/** a + b for finite a, b (either may be zero), rounded. */
export function add(a: number, b: number, format: Format, mxcsr: number): number {
  if (a === 0 || b === 0) {
    if (a === 0 && b === 0) {
      roundFlags = 0;
      // Exact zero sum: -0 only if both are -0, or in round-down mode for opposite signs (IEEE 754 6.3).
      const negativeA = Object.is(a, -0);
      const negativeB = Object.is(b, -0);
      if (negativeA === negativeB) return a;
      return ((mxcsr >> RC_SHIFT) & 3) === 1 ? -0 : 0;
    }
    return roundValue(a === 0 ? b : a, format, mxcsr);
  }
  let shift = 0;
  const big = 2 ** 1000;
  if (a > big || a < -big || b > big || b < -big) {
    // Scale down so that TwoSum cannot overflow; a tiny partner keeps its sign as a sticky bit.
    const a2 = a * 2 ** -8;
    const b2 = b * 2 ** -8;
    a = a2 === 0 ? (a < 0 ? -Number.MIN_VALUE : Number.MIN_VALUE) : a2;
    b = b2 === 0 ? (b < 0 ? -Number.MIN_VALUE : Number.MIN_VALUE) : b2;
    shift = 8;
  }
  twoSum(a, b);
  if (twoHi === 0) {
    roundFlags = 0;
    return ((mxcsr >> RC_SHIFT) & 3) === 1 ? -0 : 0;
  }
  exactNegative = twoHi < 0;
  exactHi = twoHi < 0 ? -twoHi : twoHi;
  exactLo = twoHi < 0 ? -twoLo : twoLo;
  exactExp = shift;
  return roundExact(format, mxcsr);
}

/** a * b for finite nonzero a, b, rounded. */
export function multiply(a: number, b: number, format: Format, mxcsr: number): number {
  const ma = decompose(a);
  const ea = decomposedExponent;
  const mb = decompose(b);
  twoProduct(ma, mb);
  exactNegative = a < 0 !== b < 0;
  exactHi = twoHi;
  exactLo = twoLo;
  exactExp = ea + decomposedExponent;
  return roundExact(format, mxcsr);
}

/** a / b for finite nonzero a, b, rounded. */
export function divide(a: number, b: number, format: Format, mxcsr: number): number {
  const ma = decompose(a);
  const ea = decomposedExponent;
  const mb = decompose(b);
  const q = ma / mb;
  twoProduct(q, mb);
  const r = ma - twoHi - twoLo;
  exactNegative = a < 0 !== b < 0;
  exactHi = q;
  exactLo = r / mb;
  exactExp = ea - decomposedExponent;
  tieKind = 2;
  tieA = ma;
  tieB = mb;
  const result = roundExact(format, mxcsr);
  tieKind = 0;
  return result;
}

/** sqrt(a) for finite a > 0, rounded. */
export function squareRoot(a: number, format: Format, mxcsr: number): number {
  let m = decompose(a);
  let e = decomposedExponent;
  if (e & 1) {
    m *= 2;
    e -= 1;
  }
  const q = Math.sqrt(m);
  twoProduct(q, q);
  const r = m - twoHi - twoLo;
  exactNegative = false;
  exactHi = q;
  exactLo = r / (2 * q);
  exactExp = e / 2;
  tieKind = 1;
  tieA = m;
  const result = roundExact(format, mxcsr);
  tieKind = 0;
  return result;
}

/**
 * A finite double to a signed 32-bit integer in rounding mode `rc`
 * (`truncate` for CVTT*); returns the integer indefinite 0x80000000 with
 * IE when out of range (SDM vol. 2A CVTSD2SI). Sets roundFlags (IE, PE).
 */
export function toInt32(x: number, rc: number): number {
  roundFlags = 0;
  let n = Math.trunc(x);
  const f = x - n;
  if (f !== 0) {
    roundFlags = PE;
    const magnitude = f < 0 ? -f : f;
    let away = false;
    switch (rc) {
      case 0:
        away = magnitude > 0.5 || (magnitude === 0.5 && n % 2 !== 0);
        break;
      case 1:
        away = x < 0;
        break;
      case 2:
        away = x > 0;
        break;
    }
    if (away) n += x < 0 ? -1 : 1;
  }
  if (n > 2147483647 || n < -2147483648) {
    roundFlags = IE;
    return 0x80000000 | 0;
  }
  return n | 0;
}
