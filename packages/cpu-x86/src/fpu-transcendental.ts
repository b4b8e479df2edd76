/**
 * The x87 transcendental instructions (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1
 * FYL2X FYL2XP1) and the partial remainder of FPREM/FPREM1, computed to the
 * 64-bit significand of the double extended format (SDM vol. 1 4.2.2).
 *
 * The hardware documents an error below one unit in the last place of the
 * 64-bit result (SDM vol. 1 8.3.10 "Transcendental Instruction Accuracy").
 * Kumo evaluates each function with a software binary float of about 320
 * significant bits (BigInt significands) and rounds that once to 64 bits in
 * the rounding-control mode, so its result is the correctly rounded one.
 * These instructions are rare (Linux uses none of them), so this slow path
 * may allocate; the interpreter's hot paths never reach it.
 *
 * Values are `sign * m * 2^e` with `m` a non-negative BigInt. Intermediate
 * results are truncated to PRECISION bits with a sticky bit (the lowest bit
 * is set when anything non-zero was dropped), so that the final rounding to
 * 64 bits sees on which side of a rounding boundary the value lies
 * (round-to-odd: Boldo and Melquiond, "When double rounding is odd", 2005).
 */

const PRECISION = 320;

export interface Big {
  negative: boolean;
  m: bigint;
  e: number;
}

const ZERO: Big = { negative: false, m: 0n, e: 0 };

function bitLength(m: bigint): number {
  if (m === 0n) return 0;
  const hex = m.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(Number.parseInt(hex[0], 16)));
}

/** Truncates to PRECISION bits with a sticky bit. */
function norm(negative: boolean, m: bigint, e: number): Big {
  if (m === 0n) return { negative, m, e: 0 };
  const excess = bitLength(m) - PRECISION;
  if (excess > 0) {
    const shift = BigInt(excess);
    const kept = m >> shift;
    const sticky = kept << shift !== m ? 1n : 0n;
    return { negative, m: kept | sticky, e: e + excess };
  }
  return { negative, m, e };
}

export function big(negative: boolean, m: bigint, e: number): Big {
  return norm(negative, m, e);
}

function fromInt(n: number): Big {
  return { negative: n < 0, m: BigInt(Math.abs(n)), e: 0 };
}

const doubleView = new DataView(new ArrayBuffer(8));

/** A finite double, exactly. */
export function fromDouble(x: number): Big {
  if (x === 0) return { negative: Object.is(x, -0), m: 0n, e: 0 };
  doubleView.setFloat64(0, x);
  const high = doubleView.getUint32(0);
  const low = doubleView.getUint32(4);
  const exponent = (high >>> 20) & 0x7ff;
  let m = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (exponent !== 0) m |= 1n << 52n;
  return { negative: high >>> 31 === 1, m, e: Math.max(exponent, 1) - 1075 };
}

export function neg(a: Big): Big {
  return { negative: !a.negative, m: a.m, e: a.e };
}

export function add(a: Big, b: Big): Big {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  // Put a's lowest bit above or at b's.
  if (a.e < b.e) [a, b] = [b, a];
  const topA = a.e + bitLength(a.m);
  const topB = b.e + bitLength(b.m);
  if (topA - topB > PRECISION + 8) {
    // b only decides which side of a the sum lies on: a sticky unit below a.
    const shift = PRECISION + 8 - bitLength(a.m);
    const m = (a.m << BigInt(shift)) * 2n + (a.negative === b.negative ? 1n : -1n);
    return norm(a.negative, m, a.e - shift - 1);
  }
  if (topB - topA > PRECISION + 8) {
    const shift = PRECISION + 8 - bitLength(b.m);
    const m = (b.m << BigInt(shift)) * 2n + (a.negative === b.negative ? 1n : -1n);
    return norm(b.negative, m, b.e - shift - 1);
  }
  const sa = (a.negative ? -1n : 1n) * (a.m << BigInt(a.e - b.e));
  const sb = (b.negative ? -1n : 1n) * b.m;
  const sum = sa + sb;
  return norm(sum < 0n, sum < 0n ? -sum : sum, b.e);
}

export function sub(a: Big, b: Big): Big {
  return add(a, neg(b));
}

export function mul(a: Big, b: Big): Big {
  return norm(a.negative !== b.negative, a.m * b.m, a.e + b.e);
}

/** a op b for the x87 arithmetic opcodes' operation numbers (0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr); b non-zero for 6, a for 7. */
export function arithmetic(operation: number, a: Big, b: Big): Big {
  switch (operation) {
    case 0:
      return add(a, b);
    case 1:
      return mul(a, b);
    case 4:
      return sub(a, b);
    case 5:
      return sub(b, a);
    case 6:
      return div(a, b);
    default:
      return div(b, a);
  }
}

export function div(a: Big, b: Big): Big {
  if (a.m === 0n) return { negative: a.negative !== b.negative, m: 0n, e: 0 };
  const shift = Math.max(0, PRECISION + 8 + bitLength(b.m) - bitLength(a.m));
  const n = a.m << BigInt(shift);
  const q = n / b.m;
  const sticky = q * b.m !== n ? 1n : 0n;
  return norm(a.negative !== b.negative, (q << 1n) | sticky, a.e - b.e - shift - 1);
}

/** Square root of a >= 0. */
function sqrt(a: Big): Big {
  if (a.m === 0n) return a;
  let shift = Math.max(0, 2 * PRECISION + 8 - bitLength(a.m));
  if ((a.e - shift) & 1) shift++;
  const n = a.m << BigInt(shift);
  // Newton's iteration from above converges to floor(sqrt(n)).
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  const sticky = x * x !== n ? 1n : 0n;
  return norm(false, (x << 1n) | sticky, (a.e - shift) / 2 - 1);
}

/** Exponent of the leading bit (value in [2^top, 2^(top+1))). */
function top(a: Big): number {
  return a.e + bitLength(a.m) - 1;
}

/** Sum of a series whose terms come from `next`, until they fall below the sum's precision. */
function series(first: Big, next: (term: Big, k: number) => Big): Big {
  let sum = first;
  let term = first;
  for (let k = 1; k < 400; k++) {
    term = next(term, k);
    if (term.m === 0n || top(term) < top(sum) - PRECISION - 8) break;
    sum = add(sum, term);
  }
  return sum;
}

/** atan(t) by its Taylor series, |t| <= 1/4 or so. */
function atanSeries(t: Big): Big {
  const t2 = mul(t, t);
  let power = t;
  return series(t, (_, k) => {
    power = neg(mul(power, t2));
    return div(power, fromInt(2 * k + 1));
  });
}

/** atanh(z) by its Taylor series, |z| <= 1/3. */
function atanhSeries(z: Big): Big {
  const z2 = mul(z, z);
  let power = z;
  return series(z, (_, k) => {
    power = mul(power, z2);
    return div(power, fromInt(2 * k + 1));
  });
}

let piValue: Big | undefined;
let ln2Value: Big | undefined;

/** pi = 16 atan(1/5) - 4 atan(1/239) (Machin). */
export function pi(): Big {
  piValue ??= sub(
    mul(fromInt(16), atanSeries(div(fromInt(1), fromInt(5)))),
    mul(fromInt(4), atanSeries(div(fromInt(1), fromInt(239)))),
  );
  return piValue;
}

/** ln 2 = 2 atanh(1/3). */
function ln2(): Big {
  ln2Value ??= mul(fromInt(2), atanhSeries(div(fromInt(1), fromInt(3))));
  return ln2Value;
}

/**
 * pi/2 as the x87 reduces FSIN/FCOS/FSINCOS/FPTAN arguments: pi rounded to
 * 66 significant bits, 0x3243F6A8885A308D3 * 2^-64 (SDM vol. 1 8.3.10: "the
 * x87 ... uses a 66-bit approximation of pi"); matches the host on
 * arguments up to 2^63, where a more exact pi would not.
 */
const HALF_PI_66: Big = { negative: false, m: 0x3243f6a8885a308d3n, e: -65 };

function sinSeries(r: Big): Big {
  const r2 = mul(r, r);
  return series(r, (term, k) => neg(div(mul(term, r2), fromInt(2 * k * (2 * k + 1)))));
}

function cosSeries(r: Big): Big {
  const r2 = mul(r, r);
  return series({ negative: false, m: 1n, e: 0 }, (term, k) =>
    neg(div(mul(term, r2), fromInt((2 * k - 1) * (2 * k)))),
  );
}

/** x = n * (pi66 / 2) + r with |r| <= pi66/4, exactly (x has at most 64 significant bits). */
function reduce(x: Big): [number, Big] {
  // n = round(x / (pi66/2)); the quotient need only be good to an integer.
  const q = div(x, HALF_PI_66);
  let n: bigint;
  if (q.e >= 0) n = q.m << BigInt(q.e);
  else n = (q.m + (1n << BigInt(-q.e - 1))) >> BigInt(-q.e);
  // r = x - n * pi66/2, exact: both terms are multiples of 2^min(e).
  const product: Big = { negative: x.negative, m: n * HALF_PI_66.m, e: HALF_PI_66.e };
  const scale = Math.min(x.e, product.e);
  const exact =
    (x.negative ? -1n : 1n) * (x.m << BigInt(x.e - scale)) -
    (x.negative ? -1n : 1n) * (product.m << BigInt(product.e - scale));
  const r = norm(exact < 0n, exact < 0n ? -exact : exact, scale);
  const quadrant = Number(n & 3n);
  return [x.negative ? (4 - quadrant) & 3 : quadrant, r];
}

/** sin(x) and cos(x) with the x87's argument reduction; |x| < 2^63. */
export function sinCos(x: Big): [Big, Big] {
  const [quadrant, r] = reduce(x);
  const s = sinSeries(r);
  const c = cosSeries(r);
  switch (quadrant) {
    case 0:
      return [s, c];
    case 1:
      return [c, neg(s)];
    case 2:
      return [neg(s), neg(c)];
    default:
      return [neg(c), s];
  }
}

/** tan(x) with the x87's argument reduction; |x| < 2^63. */
export function tan(x: Big): Big {
  const [quadrant, r] = reduce(x);
  const s = sinSeries(r);
  const c = cosSeries(r);
  return quadrant & 1 ? neg(div(c, s)) : div(s, c);
}

/** atan(t) for any finite t. */
function atan(t: Big): Big {
  if (t.m === 0n) return t;
  const one: Big = { negative: false, m: 1n, e: 0 };
  const beyondOne = sub({ ...t, negative: false }, one);
  if (beyondOne.m === 0n) return mul(pi(), { negative: t.negative, m: 1n, e: -2 });
  if (!beyondOne.negative) {
    // |t| > 1: atan t = sign * pi/2 - atan(1/t), with |1/t| < 1.
    const rest = atan(div(one, t));
    const halfPi = mul(pi(), { negative: t.negative, m: 1n, e: -1 });
    return sub(halfPi, rest);
  }
  // Halve the argument three times: atan t = 2 atan(t / (1 + sqrt(1 + t^2))).
  let u = t;
  for (let i = 0; i < 3; i++) u = div(u, add(one, sqrt(add(one, mul(u, u)))));
  return mul(atanSeries(u), { negative: false, m: 1n, e: 3 });
}

/** atan2(y, x) for finite non-zero operands (FPATAN: ST(1) = atan(ST(1)/ST(0))). */
export function atan2(y: Big, x: Big): Big {
  const angle = atan(div(y, x));
  if (!x.negative) return angle;
  // Left half-plane: add or subtract pi to land in (-pi, pi].
  return y.negative ? sub(angle, pi()) : add(angle, pi());
}

/** ln(a) for a > 0. */
function ln(a: Big): Big {
  // a = m * 2^k with m in [sqrt(1/2), sqrt(2)): ln a = k ln 2 + 2 atanh((m-1)/(m+1)).
  let k = top(a);
  let m: Big = { negative: false, m: a.m, e: a.e - k };
  // m in [1, 2); from 1.5 on use m/2 and k+1, so that |z| <= 1/5.
  const length = bitLength(a.m);
  if (length >= 2 && ((a.m >> BigInt(length - 2)) & 1n) === 1n) {
    m = { negative: false, m: m.m, e: m.e - 1 };
    k += 1;
  }
  const one: Big = { negative: false, m: 1n, e: 0 };
  const z = div(sub(m, one), add(m, one));
  const lnM = mul(fromInt(2), atanhSeries(z));
  return add(mul(fromInt(k), ln2()), lnM);
}

/** y * log2(x) for finite x > 0 and finite y (FYL2X). */
export function yLog2x(y: Big, x: Big): Big {
  // A power of two has an exact logarithm: the product is then rounded once.
  if (x.m !== 0n && (x.m & (x.m - 1n)) === 0n) return mul(y, fromInt(top(x)));
  return mul(y, div(ln(x), ln2()));
}

/** y * log2(1 + x) for finite x > -1 (FYL2XP1). */
export function yLog2xPlus1(y: Big, x: Big): Big {
  if (x.m === 0n) return mul(y, x);
  const one: Big = { negative: false, m: 1n, e: 0 };
  if (top(x) < -2) {
    // |x| < 1/4: ln(1 + x) = 2 atanh(x / (2 + x)) keeps the relative precision of tiny x.
    const z = div(x, add(fromInt(2), x));
    return mul(y, div(mul(fromInt(2), atanhSeries(z)), ln2()));
  }
  return yLog2x(y, add(one, x));
}

/** 2^x - 1 for |x| <= 1 (F2XM1). */
export function exp2m1(x: Big): Big {
  const t = mul(x, ln2());
  // expm1(t) = sum t^k / k!, k >= 1: |t| <= ln 2 converges in about 60 terms.
  return series(t, (term, k) => div(mul(term, t), fromInt(k + 1)));
}

/** The result of `round64`. */
export interface Rounded {
  negative: boolean;
  /** The 64-bit significand, high and low dwords (bit 63 set unless zero). */
  high: number;
  low: number;
  /** Unbiased exponent of bit 63. */
  exponent: number;
  inexact: boolean;
  /** The magnitude was rounded up (C1, SDM vol. 1 8.1.3.1). */
  up: boolean;
}

/**
 * Rounds to a 64-bit significand in rounding-control mode `rc` (0 nearest
 * even, 1 down, 2 up, 3 toward zero: SDM vol. 1 4.8.4). The exponent range
 * of the 80-bit format is not checked (the callers' results lie far inside it).
 */
export function round64(a: Big, rc: number): Rounded {
  return roundTo(a, rc, 64);
}

/** Rounds to a `bits`-bit significand (24, 53 or 64: the precision control), as `round64`. */
export function roundTo(a: Big, rc: number, bits: number): Rounded {
  if (a.m === 0n) {
    return { negative: a.negative, high: 0, low: 0, exponent: 0, inexact: false, up: false };
  }
  const length = bitLength(a.m);
  let m: bigint;
  let inexact = false;
  let up = false;
  let e = a.e;
  if (length <= bits) {
    m = a.m << BigInt(bits - length);
    e -= bits - length;
  } else {
    const shift = BigInt(length - bits);
    m = a.m >> shift;
    const rest = a.m - (m << shift);
    e += length - bits;
    if (rest !== 0n) {
      inexact = true;
      const half = 1n << (shift - 1n);
      if (rc === 0) up = rest > half || (rest === half && (m & 1n) === 1n);
      else if (rc === 1) up = a.negative;
      else if (rc === 2) up = !a.negative;
      if (up) {
        m += 1n;
        if (m >> BigInt(bits)) {
          m >>= 1n;
          e += 1;
        }
      }
    }
  }
  // To the 64-bit significand of the register.
  m <<= BigInt(64 - bits);
  e -= 64 - bits;
  return {
    negative: a.negative,
    high: Number(m >> 32n),
    low: Number(m & 0xffffffffn),
    exponent: e + 63,
    inexact,
    up,
  };
}

/**
 * The partial remainder of FPREM/FPREM1 when the exponents of ST(0) and
 * ST(1) differ by D >= 64 (SDM vol. 2A FPREM "Operation": ST(0) - ST(1) *
 * QQ * 2^(D-N), QQ the quotient / 2^(D-N) chopped to an integer, N "an
 * implementation-dependent number between 32 and 63"). The host (checked on
 * AMD and as the SDM's pseudo-code requires for both instructions) takes
 * N = 32 + ((D - 32) mod 32), so D - N is a multiple of 32. Exact: the
 * result has at most 64 significant bits.
 */
export function partialRemainder(a: Big, b: Big): Big {
  const d = top(a) - top(b);
  const n = 32 + ((d - 32) % 32);
  // |a| and |b| * 2^(d-n) on a common scale 2^s.
  const s = Math.min(a.e, b.e + d - n);
  const x = a.m << BigInt(a.e - s);
  const y = b.m << BigInt(b.e + d - n - s);
  const r = x - (x / y) * y;
  return norm(a.negative, r, s);
}

/**
 * The complete remainder of FPREM (quotient chopped) or FPREM1 (quotient
 * rounded to nearest even) when the exponents differ by less than 64 (SDM
 * vol. 2A FPREM, FPREM1), exact, with the quotient's low three bits. A zero
 * remainder has the dividend's sign.
 */
export function completeRemainder(a: Big, b: Big, ieee: boolean): [Big, number] {
  const s = Math.min(a.e, b.e);
  const x = a.m << BigInt(a.e - s);
  const y = b.m << BigInt(b.e - s);
  let q = x / y;
  let r = x - q * y;
  let negative = a.negative;
  if (ieee) {
    const twice = 2n * r;
    if (twice > y || (twice === y && (q & 1n) === 1n)) {
      q += 1n;
      r = y - r;
      negative = !negative;
    }
  }
  return [norm(negative, r, s), Number(q & 7n)];
}

/** The exponent of a non-zero value's leading bit. */
export { sqrt, top as leadingExponent, ZERO };
