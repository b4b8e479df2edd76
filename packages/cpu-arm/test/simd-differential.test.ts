import { describe, expect, it } from "vitest";
import { DATA } from "./support/machine";
import { describeDifferences, hasOracle, kumoArea, qemuArea } from "./support/oracle";
import { Random } from "./support/random";

/**
 * Differential test of FP and Advanced SIMD against qemu-aarch64: every
 * case fills v0-v7 (random single or double values weighted toward
 * zeros, infinities, quiet and signalling NaNs, subnormals, the largest
 * and smallest normals, near-equal pairs for cancellation) and x0-x7,
 * picks a random FPCR (all four rounding modes, FZ, DN), clears FPSR,
 * runs one instruction, and stores q0-q7, FPSR, NZCV, FPCR, x27 and
 * x0-x7. Both sides then compare the whole data area byte for byte.
 */

const SPECIAL32 = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fa00005,
  0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0x3f800000, 0xbf800000, 0x3f000000, 0x4b000000,
  0x4f000000, 0xcf000000, 0x5f000000, 0xdf000000, 0x4f800000, 0x3effffff, 0x3fc00000, 0x40200000,
];

const SPECIAL64: [number, number][] = [
  [0, 0],
  [0, 0x80000000],
  [0, 0x7ff00000],
  [0, 0xfff00000],
  [0, 0x7ff80000],
  [1, 0xfff80000],
  [1, 0x7ff00000],
  [0x12345, 0x7ff40000],
  [1, 0],
  [0xffffffff, 0x000fffff],
  [0, 0x00100000],
  [0xffffffff, 0x7fefffff],
  [0, 0x3ff00000],
  [0, 0xbff00000],
  [0, 0x3fe00000],
  [0, 0x43300000],
  [0, 0x41e00000],
  [0, 0xc1e00000],
  [0, 0x43e00000],
  [0, 0xc3e00000],
  [0, 0x41f00000],
  [0, 0x3ff80000],
  [0, 0x40040000],
];

/** A binary32 bit pattern. */
function single(r: Random): number {
  const choice = r.below(8);
  if (choice < 2) return r.pick(SPECIAL32);
  const sign = r.below(2) << 31;
  const fraction = r.next() & 0x7fffff;
  if (choice === 2) return (sign | fraction) >>> 0; // subnormal
  if (choice === 3) return (sign | ((r.below(254) + 1) << 23) | fraction) >>> 0; // any normal
  if (choice === 4) return (sign | ((r.below(8) + 123) << 23) | (fraction & 0x7ffc00)) >>> 0; // short mantissa
  if (choice === 5) return (sign | ((r.below(50) + 2) << 23) | fraction) >>> 0; // near the underflow threshold
  return (sign | ((r.below(24) + 115) << 23) | fraction) >>> 0; // near 1
}

/** A binary64 bit pattern as [low, high]. */
function double(r: Random): [number, number] {
  const choice = r.below(8);
  if (choice < 2) return r.pick(SPECIAL64);
  const sign = r.below(2) << 31;
  const fractionHigh = r.next() & 0xfffff;
  const low = r.next();
  if (choice === 2) return [low, (sign | fractionHigh) >>> 0];
  if (choice === 3) return [low, (sign | ((r.below(2046) + 1) << 20) | fractionHigh) >>> 0];
  if (choice === 4)
    return [low & 0xfff00000, (sign | ((r.below(8) + 1019) << 20) | fractionHigh) >>> 0];
  if (choice === 5) return [low, (sign | ((r.below(110) + 2) << 20) | fractionHigh) >>> 0];
  return [low, (sign | ((r.below(60) + 993) << 20) | fractionHigh) >>> 0];
}

type Kind = "single" | "double" | "half" | "integer";

const SPECIAL16 = [
  0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7c01, 0x7d55, 0x0001, 0x03ff, 0x0400, 0x7bff,
  0x3c00, 0xbc00,
];

/** Two binary16 bit patterns in a word. */
function halves(r: Random): number {
  const one = () => {
    const choice = r.below(4);
    if (choice === 0) return r.pick(SPECIAL16);
    if (choice === 1) return (r.below(2) << 15) | (r.next() & 0x3ff);
    return r.next() & 0xffff;
  };
  return ((one() << 16) | one()) >>> 0;
}

/** 128 bits as four 32-bit words for a register of the given kind. */
function vector(r: Random, kind: Kind, previous: number[][]): number[] {
  if (previous.length > 0 && r.below(5) === 0) {
    // Near a previous register: same top bits, a few low bits changed (cancellation, ties, equal values).
    const base = r.pick(previous).slice();
    for (let i = 0; i < 4; i++) if (r.below(2)) base[i] = (base[i] ^ r.below(16)) >>> 0;
    if (r.below(3) === 0)
      for (let i = 0; i < 4; i++)
        base[i] = (base[i] ^ (kind === "double" ? (i & 1 ? 0x80000000 : 0) : 0x80000000)) >>> 0;
    return base;
  }
  if (kind === "single") return [single(r), single(r), single(r), single(r)];
  if (kind === "half") return [halves(r), halves(r), halves(r), halves(r)];
  if (kind === "double") return [...double(r), ...double(r)];
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    const choice = r.below(7);
    // Lane extremes for the saturating operations: INT_MIN / INT_MAX halfwords and words.
    const extremes = [0x80000000, 0x7fffffff, 0x80008000, 0x7fff7fff, 0x80007fff, 0x01000080];
    words.push(
      choice === 0
        ? 0
        : choice === 1
          ? 0xffffffff
          : choice === 2
            ? (r.next() & 0x80808080) >>> 0
            : choice === 3
              ? (r.next() & 0x7f7f7f7f) >>> 0
              : choice === 4
                ? r.pick(extremes)
                : r.next(),
    );
  }
  return words;
}

function load64(register: string, low: number, high: number): string {
  return [
    `movz ${register}, #${low & 0xffff}`,
    `movk ${register}, #${low >>> 16}, lsl #16`,
    `movk ${register}, #${high & 0xffff}, lsl #32`,
    `movk ${register}, #${high >>> 16}, lsl #48`,
  ].join("\n");
}

function integerOperand(r: Random): [number, number] {
  const choice = r.below(6);
  if (choice === 0) return [r.next(), r.below(2) ? 0 : 0xffffffff];
  if (choice === 1) return [r.below(100), 0];
  if (choice === 2)
    return r.pick([
      [0, 0x80000000],
      [0xffffffff, 0x7fffffff],
      [0x80000000, 0],
      [0x7fffffff, 0],
      [0xffffffff, 0xffffffff],
      [0, 0],
    ] as [number, number][]);
  return [r.next(), r.next()];
}

interface Template {
  kind: Kind;
  cases: number;
  text: (r: Random) => string;
}

const TEMPLATES: Record<string, Template> = {};
const vreg = (r: Random) => r.below(8);
const CONDITIONS = [
  "eq",
  "ne",
  "cs",
  "cc",
  "mi",
  "pl",
  "vs",
  "vc",
  "hi",
  "ls",
  "ge",
  "lt",
  "gt",
  "le",
  "al",
];

function add(name: string, kind: Kind, text: (r: Random) => string, cases = 12): void {
  TEMPLATES[name] = { kind, cases, text };
}

/** An `op arrangement` form for each op, on `operands` registers of that arrangement. */
function addVector(
  ops: readonly string[],
  arrangement: string,
  kind: Kind,
  operands: number,
  cases?: number,
): void {
  for (const op of ops)
    add(
      `${op} ${arrangement}`,
      kind,
      (r) => {
        let text = op;
        for (let i = 0; i < operands; i++) text += `${i ? "," : ""} v${vreg(r)}.${arrangement}`;
        return text;
      },
      cases,
    );
}

// ---- scalar floating point ----
for (const [prefix, kind] of [
  ["s", "single"],
  ["d", "double"],
] as const) {
  const f = (r: Random) => `${prefix}${vreg(r)}`;
  for (const op of ["fadd", "fsub", "fmul", "fdiv", "fnmul", "fmax", "fmin", "fmaxnm", "fminnm"])
    add(`${op} ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}, ${f(r)}`, 128);
  for (const op of ["fmadd", "fmsub", "fnmadd", "fnmsub"])
    add(`${op} ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}, ${f(r)}, ${f(r)}`, 256);
  for (const op of [
    "fsqrt",
    "fabs",
    "fneg",
    "fmov",
    "frintn",
    "frintp",
    "frintm",
    "frintz",
    "frinta",
    "frintx",
    "frinti",
  ])
    add(`${op} ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}`, op === "fsqrt" ? 48 : 24);
  add(
    `fcvt from ${prefix}`,
    kind,
    (r) => `fcvt ${prefix === "s" ? "d" : "s"}${vreg(r)}, ${f(r)}`,
    48,
  );
  for (const op of ["fcmp", "fcmpe"]) {
    add(`${op} ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}`, 24);
    add(`${op} ${prefix} zero`, kind, (r) => `${op} ${f(r)}, #0.0`, 12);
  }
  for (const op of ["fccmp", "fccmpe"])
    add(
      `${op} ${prefix}`,
      kind,
      (r) => `${op} ${f(r)}, ${f(r)}, #${r.below(16)}, ${r.pick(CONDITIONS)}`,
      24,
    );
  add(`fcsel ${prefix}`, kind, (r) => `fcsel ${f(r)}, ${f(r)}, ${f(r)}, ${r.pick(CONDITIONS)}`);
  // FMOV (scalar, immediate): 000 11110 ptype 1 imm8 100 00000 Rd with a random imm8.
  add(
    `fmov ${prefix} immediate`,
    kind,
    (r) =>
      `.inst 0x${((0x1e201000 | ((prefix === "d" ? 1 : 0) << 22) | (r.below(256) << 13) | vreg(r)) >>> 0).toString(16)}`,
  );
  for (const wide of [true, false]) {
    const g = (r: Random) => `${wide ? "x" : "w"}${r.below(8)}`;
    for (const op of [
      "fcvtns",
      "fcvtnu",
      "fcvtps",
      "fcvtpu",
      "fcvtms",
      "fcvtmu",
      "fcvtzs",
      "fcvtzu",
      "fcvtas",
      "fcvtau",
    ])
      add(`${op} ${wide ? "x" : "w"} ${prefix}`, kind, (r) => `${op} ${g(r)}, ${f(r)}`, 24);
    for (const op of ["scvtf", "ucvtf"])
      add(`${op} ${prefix} ${wide ? "x" : "w"}`, kind, (r) => `${op} ${f(r)}, ${g(r)}`, 24);
    for (const op of ["fcvtzs", "fcvtzu"])
      add(
        `${op} ${wide ? "x" : "w"} ${prefix} fixed`,
        kind,
        (r) => `${op} ${g(r)}, ${f(r)}, #${1 + r.below(wide ? 64 : 32)}`,
        24,
      );
    for (const op of ["scvtf", "ucvtf"])
      add(
        `${op} ${prefix} ${wide ? "x" : "w"} fixed`,
        kind,
        (r) => `${op} ${f(r)}, ${g(r)}, #${1 + r.below(wide ? 64 : 32)}`,
        24,
      );
  }
}
add("fmov x d", "double", (r) => `fmov x${r.below(8)}, d${vreg(r)}`);
add("fmov d x", "double", (r) => `fmov d${vreg(r)}, x${r.below(8)}`);
add("fmov w s", "single", (r) => `fmov w${r.below(8)}, s${vreg(r)}`);
add("fmov s w", "single", (r) => `fmov s${vreg(r)}, w${r.below(8)}`);
add("fmov x v.d[1]", "double", (r) => `fmov x${r.below(8)}, v${vreg(r)}.d[1]`);
add("fmov v.d[1] x", "double", (r) => `fmov v${vreg(r)}.d[1], x${r.below(8)}`);

// ---- vector floating point ----
/** The vector FP arrangements and the lane kind of each. */
const FLOAT_ARRANGEMENTS = [
  ["2s", "single"],
  ["4s", "single"],
  ["2d", "double"],
] as const;
for (const [arrangement, kind] of FLOAT_ARRANGEMENTS) {
  addVector(
    [
      "fadd",
      "fsub",
      "fmul",
      "fdiv",
      "fmax",
      "fmin",
      "fmaxnm",
      "fminnm",
      "faddp",
      "fcmeq",
      "fcmge",
      "fcmgt",
    ],
    arrangement,
    kind,
    3,
    16,
  );
  addVector(
    ["fabs", "fneg", "fsqrt", "fcvtzs", "fcvtzu", "scvtf", "ucvtf"],
    arrangement,
    kind,
    2,
    16,
  );
}

const CONVERSIONS = [
  "fcvtns",
  "fcvtnu",
  "fcvtms",
  "fcvtmu",
  "fcvtas",
  "fcvtau",
  "fcvtps",
  "fcvtpu",
  "fcvtzs",
  "fcvtzu",
];
for (const [arrangement, kind] of FLOAT_ARRANGEMENTS) {
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  addVector(
    ["frintn", "frintm", "frintp", "frintz", "frinta", "frintx", "frinti", ...CONVERSIONS],
    arrangement,
    kind,
    2,
    16,
  );
  for (const op of ["fcmgt", "fcmeq", "fcmlt", "fcmge", "fcmle"])
    add(`${op} ${arrangement} zero`, kind, (r) => `${op} ${v(r)}, ${v(r)}, #0.0`, 16);
}
for (const [prefix, kind] of [
  ["s", "single"],
  ["d", "double"],
] as const) {
  const f = (r: Random) => `${prefix}${vreg(r)}`;
  for (const op of [...CONVERSIONS, "scvtf", "ucvtf"])
    add(`${op} scalar ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}`, 16);
  for (const op of ["fcmgt", "fcmeq", "fcmlt", "fcmge", "fcmle"])
    add(`${op} scalar ${prefix} zero`, kind, (r) => `${op} ${f(r)}, ${f(r)}, #0.0`, 16);
  for (const op of ["fcmgt", "fcmeq", "fcmge"])
    add(`${op} scalar ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}, ${f(r)}`, 16);
}
for (const [prefix, kind] of [
  ["s", "single"],
  ["d", "double"],
] as const) {
  add(`fcvt h from ${prefix}`, kind, (r) => `fcvt h${vreg(r)}, ${prefix}${vreg(r)}`, 64);
  add(`fcvt ${prefix} from h`, "half", (r) => `fcvt ${prefix}${vreg(r)}, h${vreg(r)}`, 48);
}
add("fcvtn 4h", "single", (r) => `fcvtn v${vreg(r)}.4h, v${vreg(r)}.4s`, 24);
add("fcvtn2 8h", "single", (r) => `fcvtn2 v${vreg(r)}.8h, v${vreg(r)}.4s`, 24);
add("fcvtl 4s", "half", (r) => `fcvtl v${vreg(r)}.4s, v${vreg(r)}.4h`, 24);
add("fcvtl2 4s", "half", (r) => `fcvtl2 v${vreg(r)}.4s, v${vreg(r)}.8h`, 24);
add("fcvtn 2s", "double", (r) => `fcvtn v${vreg(r)}.2s, v${vreg(r)}.2d`, 24);
add("fcvtn2 4s", "double", (r) => `fcvtn2 v${vreg(r)}.4s, v${vreg(r)}.2d`, 24);
add("fcvtl 2d", "single", (r) => `fcvtl v${vreg(r)}.2d, v${vreg(r)}.2s`, 24);
add("fcvtl2 2d", "single", (r) => `fcvtl2 v${vreg(r)}.2d, v${vreg(r)}.4s`, 24);

for (const [arrangement, kind] of FLOAT_ARRANGEMENTS) {
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  addVector(
    ["fmla", "fmls", "fmulx", "fabd", "facge", "facgt", "fmaxp", "fminp", "fmaxnmp", "fminnmp"],
    arrangement,
    kind,
    3,
    24,
  );
  const element = arrangement === "2d" ? "d" : "s";
  const lanes = arrangement === "2d" ? 2 : 4;
  for (const op of ["fmla", "fmls", "fmul", "fmulx"])
    add(
      `${op} ${arrangement} by element`,
      kind,
      (r) => `${op} ${v(r)}, ${v(r)}, v${vreg(r)}.${element}[${r.below(lanes)}]`,
      24,
    );
}
for (const [prefix, kind, lanes] of [
  ["s", "single", 4],
  ["d", "double", 2],
] as const) {
  const f = (r: Random) => `${prefix}${vreg(r)}`;
  for (const op of ["fmulx", "fabd", "facge", "facgt"])
    add(`${op} scalar ${prefix}`, kind, (r) => `${op} ${f(r)}, ${f(r)}, ${f(r)}`, 24);
  for (const op of ["fmla", "fmls", "fmul", "fmulx"])
    add(
      `${op} scalar ${prefix} by element`,
      kind,
      (r) => `${op} ${f(r)}, ${f(r)}, v${vreg(r)}.${prefix}[${r.below(lanes)}]`,
      24,
    );
  for (const op of ["faddp", "fmaxp", "fminp", "fmaxnmp", "fminnmp"])
    add(`${op} scalar ${prefix}`, kind, (r) => `${op} ${f(r)}, v${vreg(r)}.2${prefix}`, 24);
}
for (const op of ["fmaxv", "fminv", "fmaxnmv", "fminnmv"])
  add(`${op} 4s`, "single", (r) => `${op} s${vreg(r)}, v${vreg(r)}.4s`, 24);
for (const [arrangement, element, lanes] of [
  ["4h", "h", 8],
  ["8h", "h", 8],
  ["2s", "s", 4],
  ["4s", "s", 4],
] as const) {
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  const index = (r: Random) =>
    element === "h" ? `v${r.below(8)}.h[${r.below(lanes)}]` : `v${vreg(r)}.s[${r.below(lanes)}]`;
  for (const op of ["mul", "mla", "mls"])
    add(`${op} ${arrangement} by element`, "integer", (r) => `${op} ${v(r)}, ${v(r)}, ${index(r)}`);
}
for (const [narrow, upper, wide, element, lanes] of [
  ["4h", "8h", "4s", "h", 8],
  ["2s", "4s", "2d", "s", 4],
] as const) {
  const index = (r: Random) =>
    element === "h" ? `v${r.below(8)}.h[${r.below(lanes)}]` : `v${vreg(r)}.s[${r.below(lanes)}]`;
  for (const op of ["smull", "umull", "smlal", "umlal", "smlsl", "umlsl"]) {
    add(
      `${op} ${narrow} by element`,
      "integer",
      (r) => `${op} v${vreg(r)}.${wide}, v${vreg(r)}.${narrow}, ${index(r)}`,
    );
    add(
      `${op}2 ${upper} by element`,
      "integer",
      (r) => `${op}2 v${vreg(r)}.${wide}, v${vreg(r)}.${upper}, ${index(r)}`,
    );
  }
}

// Reciprocal and reciprocal square-root estimates and steps (FPRecipEstimate, FPRSqrtEstimate, *StepFused).
for (const [arrangement, kind, prefix] of [
  ["2s", "single", "s"],
  ["4s", "single", "s"],
  ["2d", "double", "d"],
] as const) {
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  for (const op of ["frecpe", "frsqrte"]) {
    add(`${op} ${arrangement}`, kind, (r) => `${op} ${v(r)}, ${v(r)}`, 32);
    if (arrangement !== "4s")
      add(
        `${op} scalar ${prefix}`,
        kind,
        (r) => `${op} ${prefix}${vreg(r)}, ${prefix}${vreg(r)}`,
        32,
      );
  }
  for (const op of ["frecps", "frsqrts"]) {
    add(`${op} ${arrangement}`, kind, (r) => `${op} ${v(r)}, ${v(r)}, ${v(r)}`, 32);
    if (arrangement !== "4s")
      add(
        `${op} scalar ${prefix}`,
        kind,
        (r) => `${op} ${prefix}${vreg(r)}, ${prefix}${vreg(r)}, ${prefix}${vreg(r)}`,
        32,
      );
  }
}

// Saturating and rounding shifts by register, saturating doubling multiplies, saturating abs/neg/accumulate.
for (const arrangement of ["8b", "16b", "4h", "8h", "2s", "4s"]) {
  addVector(
    ["sqshl", "uqshl", "srshl", "urshl", "sqrshl", "uqrshl"],
    arrangement,
    "integer",
    3,
    16,
  );
  addVector(["sqabs", "sqneg", "suqadd", "usqadd"], arrangement, "integer", 2, 16);
  if (!arrangement.endsWith("b")) addVector(["sqdmulh", "sqrdmulh"], arrangement, "integer", 3, 16);
}

for (const [narrow, upper, wide, bits] of [
  ["8b", "16b", "8h", 8],
  ["4h", "8h", "4s", 16],
  ["2s", "4s", "2d", 32],
] as const) {
  for (const op of ["sqshrn", "uqshrn", "sqrshrn", "uqrshrn", "sqshrun", "sqrshrun"]) {
    add(
      `${op} ${narrow}`,
      "integer",
      (r) => `${op} v${vreg(r)}.${narrow}, v${vreg(r)}.${wide}, #${1 + r.below(bits)}`,
      16,
    );
    add(
      `${op}2 ${upper}`,
      "integer",
      (r) => `${op}2 v${vreg(r)}.${upper}, v${vreg(r)}.${wide}, #${1 + r.below(bits)}`,
      16,
    );
  }
}
for (const arrangement of ["8b", "16b", "4h", "8h", "2s", "4s"]) {
  const bits = arrangement.endsWith("b") ? 8 : arrangement.endsWith("h") ? 16 : 32;
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  for (const op of ["sqshl", "uqshl", "sqshlu"])
    add(
      `${op} ${arrangement} immediate`,
      "integer",
      (r) => `${op} ${v(r)}, ${v(r)}, #${r.below(bits)}`,
      16,
    );
}

for (const [narrow, upper, wide, element, lanes] of [
  ["4h", "8h", "4s", "h", 8],
  ["2s", "4s", "2d", "s", 4],
] as const) {
  const index = (r: Random) =>
    element === "h" ? `v${r.below(8)}.h[${r.below(lanes)}]` : `v${vreg(r)}.s[${r.below(lanes)}]`;
  for (const op of ["sqdmull", "sqdmlal", "sqdmlsl"]) {
    add(
      `${op} ${narrow}`,
      "integer",
      (r) => `${op} v${vreg(r)}.${wide}, v${vreg(r)}.${narrow}, v${vreg(r)}.${narrow}`,
      16,
    );
    add(
      `${op}2 ${upper}`,
      "integer",
      (r) => `${op}2 v${vreg(r)}.${wide}, v${vreg(r)}.${upper}, v${vreg(r)}.${upper}`,
      16,
    );
    add(
      `${op} ${narrow} by element`,
      "integer",
      (r) => `${op} v${vreg(r)}.${wide}, v${vreg(r)}.${narrow}, ${index(r)}`,
      16,
    );
    add(
      `${op}2 ${upper} by element`,
      "integer",
      (r) => `${op}2 v${vreg(r)}.${wide}, v${vreg(r)}.${upper}, ${index(r)}`,
      16,
    );
  }
  for (const arrangement of [narrow, upper]) {
    for (const op of ["sqdmulh", "sqrdmulh"])
      add(
        `${op} ${arrangement} by element`,
        "integer",
        (r) => `${op} v${vreg(r)}.${arrangement}, v${vreg(r)}.${arrangement}, ${index(r)}`,
        16,
      );
  }
}

for (const prefix of ["b", "h", "s"]) {
  const x = (r: Random) => `${prefix}${vreg(r)}`;
  const ops = ["sqadd", "uqadd", "sqsub", "uqsub", "sqshl", "uqshl", "sqrshl", "uqrshl"];
  if (prefix !== "b") ops.push("sqdmulh", "sqrdmulh");
  for (const op of ops)
    add(`${op} scalar ${prefix}`, "integer", (r) => `${op} ${x(r)}, ${x(r)}, ${x(r)}`, 16);
}

for (const arrangement of ["2s", "4s"])
  for (const op of ["urecpe", "ursqrte"])
    add(
      `${op} ${arrangement}`,
      "integer",
      (r) => `${op} v${vreg(r)}.${arrangement}, v${vreg(r)}.${arrangement}`,
      24,
    );
add("frecpx s", "single", (r) => `frecpx s${vreg(r)}, s${vreg(r)}`, 24);
add("frecpx d", "double", (r) => `frecpx d${vreg(r)}, d${vreg(r)}`, 24);

for (const op of ["sqadd", "uqadd", "sqsub", "uqsub"]) {
  add(`${op} 2d`, "integer", (r) => `${op} v${vreg(r)}.2d, v${vreg(r)}.2d, v${vreg(r)}.2d`, 24);
  add(`${op} scalar d`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}, d${vreg(r)}`, 24);
}

// ---- integer vectors ----
const ARRANGEMENTS = ["8b", "16b", "4h", "8h", "2s", "4s"];
for (const arrangement of [...ARRANGEMENTS, "2d"]) {
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  const ops = ["add", "sub", "cmeq", "cmhs", "cmhi", "cmgt", "cmge", "cmtst", "sshl", "ushl"];
  if (arrangement !== "2d")
    ops.push(
      "umax",
      "umin",
      "smax",
      "smin",
      "umaxp",
      "uminp",
      "smaxp",
      "sminp",
      "mul",
      "mla",
      "mls",
      "uhadd",
      "shadd",
      "urhadd",
      "srhadd",
      "uhsub",
      "shsub",
      "uqadd",
      "sqadd",
      "uqsub",
      "sqsub",
      "uabd",
      "sabd",
      "uaba",
      "saba",
    );
  if (arrangement !== "8b" && arrangement !== "4h" && arrangement !== "2s") ops.push("addp");
  else ops.push("addp");
  addVector(ops, arrangement, "integer", 3);
  const misc = ["cmeq", "cmgt", "cmge", "cmle", "cmlt"].map((op) => [op, "#0"]);
  for (const [op, suffix] of [...misc, ["abs", ""], ["neg", ""]])
    add(
      `${op}${suffix ? " zero" : ""} ${arrangement}`,
      "integer",
      (r) => `${op} ${v(r)}, ${v(r)}${suffix ? `, ${suffix}` : ""}`,
    );
  if (arrangement !== "2d") {
    addVector(["cls", "clz"], arrangement, "integer", 2);
  }
}
for (const arrangement of ["8b", "16b"]) {
  addVector(
    ["and", "orr", "eor", "bic", "orn", "bsl", "bit", "bif", "pmul"],
    arrangement,
    "integer",
    3,
  );
  addVector(["cnt", "not", "rbit", "rev16", "rev32", "rev64"], arrangement, "integer", 2);
}
for (const arrangement of ["4h", "8h"])
  add(
    `rev32 ${arrangement}`,
    "integer",
    (r) => `rev32 v${vreg(r)}.${arrangement}, v${vreg(r)}.${arrangement}`,
  );
for (const arrangement of ["4h", "8h", "2s", "4s"])
  add(
    `rev64 ${arrangement}`,
    "integer",
    (r) => `rev64 v${vreg(r)}.${arrangement}, v${vreg(r)}.${arrangement}`,
  );
for (const [narrow, wide] of [
  ["8b", "8h"],
  ["4h", "4s"],
  ["2s", "2d"],
]) {
  const upper = narrow === "8b" ? "16b" : narrow === "4h" ? "8h" : "4s";
  const bits = narrow === "8b" ? 8 : narrow === "4h" ? 16 : 32;
  // The base form on the lower half (`narrow`) and the "2" form on the upper half (`upper`).
  const lowerAndUpper = (op: string, operands: (r: Random, part: string) => string) => {
    add(`${op} ${narrow}`, "integer", (r) => `${op} ${operands(r, narrow)}`);
    add(`${op}2 ${upper}`, "integer", (r) => `${op}2 ${operands(r, upper)}`);
  };
  for (const op of ["xtn", "sqxtn", "uqxtn", "sqxtun"])
    lowerAndUpper(op, (r, part) => `v${vreg(r)}.${part}, v${vreg(r)}.${wide}`);
  for (const op of ["uaddlp", "saddlp", "uadalp", "sadalp"]) {
    add(
      `${op} ${narrow}`,
      "integer",
      (r) =>
        `${op} v${vreg(r)}.${narrow === "8b" ? "4h" : narrow === "4h" ? "2s" : "1d"}, v${vreg(r)}.${narrow}`,
    );
    add(`${op} ${upper}`, "integer", (r) => `${op} v${vreg(r)}.${wide}, v${vreg(r)}.${upper}`);
  }
  for (const op of [
    "uaddl",
    "saddl",
    "usubl",
    "ssubl",
    "uabdl",
    "sabdl",
    "uabal",
    "sabal",
    "umull",
    "smull",
    "umlal",
    "smlal",
    "umlsl",
    "smlsl",
  ])
    lowerAndUpper(op, (r, part) => `v${vreg(r)}.${wide}, v${vreg(r)}.${part}, v${vreg(r)}.${part}`);
  for (const op of ["uaddw", "saddw", "usubw", "ssubw"])
    lowerAndUpper(op, (r, part) => `v${vreg(r)}.${wide}, v${vreg(r)}.${wide}, v${vreg(r)}.${part}`);
  for (const op of ["addhn", "subhn", "raddhn", "rsubhn"])
    lowerAndUpper(op, (r, part) => `v${vreg(r)}.${part}, v${vreg(r)}.${wide}, v${vreg(r)}.${wide}`);
  for (const op of ["shrn", "rshrn"])
    lowerAndUpper(
      op,
      (r, part) => `v${vreg(r)}.${part}, v${vreg(r)}.${wide}, #${1 + r.below(bits)}`,
    );
  for (const op of ["ushll", "sshll"])
    lowerAndUpper(op, (r, part) => `v${vreg(r)}.${wide}, v${vreg(r)}.${part}, #${r.below(bits)}`);
  for (const op of ["uxtl", "sxtl"])
    add(`${op} ${narrow}`, "integer", (r) => `${op} v${vreg(r)}.${wide}, v${vreg(r)}.${narrow}`);
}
for (const arrangement of ["8b", "16b", "4h", "8h", "4s"]) {
  const size = arrangement.endsWith("b") ? "b" : arrangement.endsWith("h") ? "h" : "s";
  for (const op of ["addv", "umaxv", "uminv", "smaxv", "sminv"])
    add(
      `${op} ${arrangement}`,
      "integer",
      (r) => `${op} ${size}${vreg(r)}, v${vreg(r)}.${arrangement}`,
    );
  const wideSize = size === "b" ? "h" : size === "h" ? "s" : "d";
  for (const op of ["uaddlv", "saddlv"])
    add(
      `${op} ${arrangement}`,
      "integer",
      (r) => `${op} ${wideSize}${vreg(r)}, v${vreg(r)}.${arrangement}`,
    );
}
for (const arrangement of [...ARRANGEMENTS, "2d"]) {
  const bits = arrangement.endsWith("b")
    ? 8
    : arrangement.endsWith("h")
      ? 16
      : arrangement.endsWith("s")
        ? 32
        : 64;
  const v = (r: Random) => `v${vreg(r)}.${arrangement}`;
  for (const op of ["ushr", "sshr", "usra", "ssra", "urshr", "srshr", "ursra", "srsra", "sri"])
    add(`${op} ${arrangement}`, "integer", (r) => `${op} ${v(r)}, ${v(r)}, #${1 + r.below(bits)}`);
  for (const op of ["shl", "sli"])
    add(`${op} ${arrangement}`, "integer", (r) => `${op} ${v(r)}, ${v(r)}, #${r.below(bits)}`);
  addVector(["zip1", "zip2", "uzp1", "uzp2", "trn1", "trn2"], arrangement, "integer", 3);
}
for (const op of ["ushr", "sshr", "usra", "ssra", "urshr", "srshr", "sri"])
  add(`${op} d`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}, #${1 + r.below(64)}`);
for (const op of ["shl", "sli"])
  add(`${op} d`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}, #${r.below(64)}`);
for (const op of ["add", "sub", "cmeq", "cmhs", "cmhi", "cmgt", "cmge", "cmtst", "sshl", "ushl"])
  add(`${op} d`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}, d${vreg(r)}`);
for (const op of ["cmeq", "cmgt", "cmge", "cmle", "cmlt"])
  add(`${op} d zero`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}, #0`);
for (const op of ["abs", "neg"]) add(`${op} d`, "integer", (r) => `${op} d${vreg(r)}, d${vreg(r)}`);
add("addp d", "integer", (r) => `addp d${vreg(r)}, v${vreg(r)}.2d`);
for (const [size, count] of [
  ["b", 16],
  ["h", 8],
  ["s", 4],
  ["d", 2],
] as const) {
  add(
    `mov ${size} element scalar`,
    "integer",
    (r) => `mov ${size}${vreg(r)}, v${vreg(r)}.${size}[${r.below(count)}]`,
  );
  add(
    `ins ${size} element`,
    "integer",
    (r) => `mov v${vreg(r)}.${size}[${r.below(count)}], v${vreg(r)}.${size}[${r.below(count)}]`,
  );
  add(
    `ins ${size} general`,
    "integer",
    (r) => `mov v${vreg(r)}.${size}[${r.below(count)}], ${size === "d" ? "x" : "w"}${r.below(8)}`,
  );
  for (const arrangement of size === "d"
    ? ["2d"]
    : size === "s"
      ? ["2s", "4s"]
      : size === "h"
        ? ["4h", "8h"]
        : ["8b", "16b"]) {
    add(
      `dup ${arrangement} element`,
      "integer",
      (r) => `dup v${vreg(r)}.${arrangement}, v${vreg(r)}.${size}[${r.below(count)}]`,
    );
    add(
      `dup ${arrangement} general`,
      "integer",
      (r) => `dup v${vreg(r)}.${arrangement}, ${size === "d" ? "x" : "w"}${r.below(8)}`,
    );
  }
  add(
    `umov ${size}`,
    "integer",
    (r) => `umov ${size === "d" ? "x" : "w"}${r.below(8)}, v${vreg(r)}.${size}[${r.below(count)}]`,
  );
  if (size !== "d") {
    add(
      `smov x ${size}`,
      "integer",
      (r) => `smov x${r.below(8)}, v${vreg(r)}.${size}[${r.below(count)}]`,
    );
    if (size !== "s")
      add(
        `smov w ${size}`,
        "integer",
        (r) => `smov w${r.below(8)}, v${vreg(r)}.${size}[${r.below(count)}]`,
      );
  }
}
// Modified immediate (C4.1.95.30): 0 Q op 0111100000 abc cmode o2=0 1 defgh Rd with random fields.
add(
  "movi/mvni/orr/bic/fmov vector immediate",
  "integer",
  (r) => {
    for (;;) {
      const q = r.below(2);
      const op = r.below(2);
      const cmode = r.below(16);
      if (cmode === 15 && op === 1 && q === 0) continue;
      const imm8 = r.below(256);
      const word =
        0x0f000400 |
        (q << 30) |
        (op << 29) |
        ((imm8 >>> 5) << 16) |
        (cmode << 12) |
        ((imm8 & 31) << 5) |
        vreg(r);
      return `.inst 0x${(word >>> 0).toString(16)}`;
    }
  },
  96,
);
add(
  "ext 8b",
  "integer",
  (r) => `ext v${vreg(r)}.8b, v${vreg(r)}.8b, v${vreg(r)}.8b, #${r.below(8)}`,
);
add(
  "ext 16b",
  "integer",
  (r) => `ext v${vreg(r)}.16b, v${vreg(r)}.16b, v${vreg(r)}.16b, #${r.below(16)}`,
);
for (const op of ["tbl", "tbx"]) {
  for (let length = 1; length <= 4; length++) {
    for (const arrangement of ["8b", "16b"]) {
      add(`${op} ${length} ${arrangement}`, "integer", (r) => {
        const first = vreg(r);
        const list = Array.from(
          { length },
          (_, i) => `v${(first + i) % 8 === first + i ? first + i : first + i}.16b`,
        ).join(", ");
        return `and v7.16b, v7.16b, v6.16b\n${op} v${vreg(r)}.${arrangement}, {${list}}, v7.${arrangement}`;
      });
    }
  }
}

// ---- loads and stores (x27 = DATA + 0x800 inside the pattern, x6 a small index) ----
for (const [reg, size] of [
  ["b", 1],
  ["h", 2],
  ["s", 4],
  ["d", 8],
  ["q", 16],
] as const) {
  for (const op of ["ldr", "str"]) {
    const t = (r: Random) => `${reg}${vreg(r)}`;
    add(
      `${op} ${reg} unsigned offset`,
      "integer",
      (r) => `${op} ${t(r)}, [x27, #${size * r.below(64)}]`,
    );
    add(
      `${op} ${reg} unscaled`,
      "integer",
      (r) => `${op === "ldr" ? "ldur" : "stur"} ${t(r)}, [x27, #${r.below(512) - 256}]`,
    );
    add(
      `${op} ${reg} pre-index`,
      "integer",
      (r) => `${op} ${t(r)}, [x27, #${r.below(512) - 256}]!`,
    );
    add(
      `${op} ${reg} post-index`,
      "integer",
      (r) => `${op} ${t(r)}, [x27], #${r.below(512) - 256}`,
    );
    add(`${op} ${reg} register`, "integer", (r) => {
      const extend = r.pick(["lsl", "uxtw", "sxtw", "sxtx"]);
      const index = extend === "uxtw" || extend === "sxtw" ? "w6" : "x6";
      const amount = r.below(2) ? ` #${Math.log2(size)}` : "";
      return `and x6, x6, #0xff\n${op} ${t(r)}, [x27, ${index}${extend === "lsl" && amount === "" ? "" : `, ${extend}${amount}`}]`;
    });
  }
}
for (const reg of ["s", "d", "q"]) {
  add(
    `ldr ${reg} literal`,
    "integer",
    (r) =>
      `ldr ${reg}${vreg(r)}, 1f\nb 2f\n.balign 16\n1: .quad 0x${r.next().toString(16)}${r.next().toString(16).padStart(8, "0")}, 0x${r.next().toString(16)}\n2:`,
  );
}
for (const [reg, size] of [
  ["s", 4],
  ["d", 8],
  ["q", 16],
] as const) {
  for (const op of ["ldp", "stp", "ldnp", "stnp"]) {
    const modes = op.endsWith("np")
      ? (["offset"] as const)
      : (["offset", "pre-index", "post-index"] as const);
    for (const mode of modes) {
      add(`${op} ${reg} ${mode}`, "integer", (r) => {
        const first = vreg(r);
        const second = (first + 1 + r.below(7)) % 8;
        const offset = size * (r.below(64) - 32);
        const address =
          mode === "offset"
            ? `[x27, #${offset}]`
            : mode === "pre-index"
              ? `[x27, #${offset}]!`
              : `[x27], #${offset}`;
        return `${op} ${reg}${first}, ${reg}${second}, ${address}`;
      });
    }
  }
}
for (const arrangement of ["8b", "16b", "4h", "8h", "2s", "4s", "1d", "2d"]) {
  for (const op of ["ld1", "st1"]) {
    for (let count = 1; count <= 4; count++) {
      add(`${op} ${count} ${arrangement}`, "integer", (r) => {
        const first = r.below(8 - count + 1);
        const list = Array.from({ length: count }, (_, i) => `v${first + i}.${arrangement}`).join(
          ", ",
        );
        const bytes =
          count *
          (arrangement.length === 3 ||
          arrangement === "2d" ||
          arrangement === "4s" ||
          arrangement === "8h"
            ? 16
            : 8);
        const form = r.below(3);
        return form === 0
          ? `${op} {${list}}, [x27]`
          : form === 1
            ? `${op} {${list}}, [x27], #${bytes}`
            : `and x6, x6, #0x7f\n${op} {${list}}, [x27], x6`;
      });
    }
  }
  if (arrangement === "1d") continue;
  for (const op of ["ld2", "st2", "ld3", "st3", "ld4", "st4"]) {
    const count = Number(op[2]);
    add(`${op} ${arrangement}`, "integer", (r) => {
      const first = r.below(8 - count + 1);
      const list = Array.from({ length: count }, (_, i) => `v${first + i}.${arrangement}`).join(
        ", ",
      );
      return r.below(2)
        ? `${op} {${list}}, [x27]`
        : `and x6, x6, #0x7f\n${op} {${list}}, [x27], x6`;
    });
  }
}
for (const [size, count] of [
  ["b", 16],
  ["h", 8],
  ["s", 4],
  ["d", 2],
] as const) {
  for (const op of ["ld1", "st1", "ld2", "st2", "ld3", "st3", "ld4", "st4"]) {
    const n = Number(op[2]);
    add(`${op} lane ${size}`, "integer", (r) => {
      const first = r.below(8 - n + 1);
      const list = Array.from({ length: n }, (_, i) => `v${first + i}.${size}`).join(", ");
      return r.below(2)
        ? `${op} {${list}}[${r.below(count)}], [x27]`
        : `${op} {${list}}[${r.below(count)}], [x27], #${n * (size === "b" ? 1 : size === "h" ? 2 : size === "s" ? 4 : 8)}`;
    });
  }
}
for (const arrangement of ["8b", "16b", "4h", "8h", "2s", "4s", "1d", "2d"]) {
  for (const op of ["ld1r", "ld2r", "ld3r", "ld4r"]) {
    const n = Number(op[2]);
    add(`${op} ${arrangement}`, "integer", (r) => {
      const first = r.below(8 - n + 1);
      const list = Array.from({ length: n }, (_, i) => `v${first + i}.${arrangement}`).join(", ");
      return r.below(2)
        ? `${op} {${list}}, [x27]`
        : `and x6, x6, #0x7f\n${op} {${list}}, [x27], x6`;
    });
  }
}

function caseText(r: Random, template: Template): string {
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) {
    const [low, high] = integerOperand(r);
    lines.push(load64(`x${i}`, low >>> 0, high >>> 0));
  }
  const previous: number[][] = [];
  for (let i = 0; i < 8; i++) {
    const words = vector(r, template.kind, previous);
    previous.push(words);
    lines.push(
      load64("x9", words[0], words[1]),
      load64("x10", words[2], words[3]),
      `fmov d${i}, x9`,
      `mov v${i}.d[1], x10`,
    );
  }
  // Rounding mode, FZ, DN and AHP (which only the half-precision conversions use).
  const fpcr =
    (r.below(4) << 22) |
    (r.below(4) === 0 ? 1 << 24 : 0) |
    (r.below(4) === 0 ? 1 << 25 : 0) |
    (r.below(4) === 0 ? 1 << 26 : 0);
  lines.push(`movz x9, #${fpcr >>> 16}, lsl #16`, "msr fpcr, x9", "msr fpsr, xzr");
  lines.push(`movz x9, #${r.below(16) << 12}, lsl #16`, "msr nzcv, x9");
  lines.push(
    `movz x27, #${(DATA + 0x800) & 0xffff}`,
    `movk x27, #${(DATA + 0x800) >>> 16}, lsl #16`,
  );
  lines.push(template.text(r));
  lines.push(
    "stp q0, q1, [x28], #32",
    "stp q2, q3, [x28], #32",
    "stp q4, q5, [x28], #32",
    "stp q6, q7, [x28], #32",
    "mrs x9, fpsr",
    "mrs x10, nzcv",
    "stp x9, x10, [x28], #16",
    "mrs x9, fpcr",
    "stp x9, x27, [x28], #16",
    "stp x0, x1, [x28], #16",
    "stp x2, x3, [x28], #16",
    "stp x4, x5, [x28], #16",
    "stp x6, x7, [x28], #16",
  );
  return lines.join("\n");
}

const CASE_BYTES = 224;
const CASES_PER_PROGRAM = 250;
const SLOT_NAMES = [
  ...Array.from({ length: 16 }, (_, i) => `q${i >>> 1}${i & 1 ? ".hi" : ".lo"}`),
  "fpsr",
  "nzcv",
  "fpcr",
  "x27",
  ...Array.from({ length: 8 }, (_, i) => `x${i}`),
];

describe.skipIf(!hasOracle())("FP and Advanced SIMD differential against qemu-aarch64", () => {
  const names = Object.keys(TEMPLATES);
  const random = new Random(0xf00d);
  const cases: { name: string; text: string }[] = [];
  for (const name of names) {
    for (let i = 0; i < TEMPLATES[name].cases; i++)
      cases.push({ name, text: caseText(random, TEMPLATES[name]) });
  }
  const programs: (typeof cases)[] = [];
  for (let i = 0; i < cases.length; i += CASES_PER_PROGRAM)
    programs.push(cases.slice(i, i + CASES_PER_PROGRAM));

  it(`has ${names.length} instruction forms, ${cases.length} cases`, () => {
    console.log(
      `FP/SIMD differential: ${names.length} forms, ${cases.length} cases, ${programs.length} programs`,
    );
    expect(names.length).toBeGreaterThan(400);
  });

  programs.forEach((program, index) => {
    it(
      `program ${index + 1}/${programs.length} agrees on V registers, FPSR, FPCR, NZCV, X registers and memory`,
      { timeout: 120_000 },
      () => {
        const body = `movz x28, #${(DATA + 0x1000) & 0xffff}\nmovk x28, #${(DATA + 0x1000) >>> 16}, lsl #16\n${program.map((c) => c.text).join("\n")}`;
        const expected = qemuArea(body);
        const actual = kumoArea(body).area;
        const differences = describeDifferences(expected, actual, 16).map((line) => {
          const match = /^memory \+0x([0-9a-f]+)/.exec(line);
          if (!match) return line;
          const offset = Number.parseInt(match[1], 16) - 0x1000;
          return offset >= 0 && offset < program.length * CASE_BYTES
            ? `${program[Math.floor(offset / CASE_BYTES)].name} [${SLOT_NAMES[(offset % CASE_BYTES) / 8]}]: ${line}`
            : line;
        });
        expect(differences).toEqual([]);
      },
    );
  });
});
