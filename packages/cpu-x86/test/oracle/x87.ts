/**
 * x87 cases for the differential oracle (MMX and SSE are in simd.ts). Each
 * case is a sequence:
 *
 *   fninit; fldcw [cw]; fld qword [a]; fld qword [b]
 *   <the instruction under test>
 *   fnstsw [sw]; fstp qword [r0]; fstp qword [r1]; fnstenv [env]
 *
 * so the result registers, the status word right after the instruction and
 * the control and tag words land in the data region, which is compared.
 * Precision control is set to double (53 bits); rounding control and
 * exception masks are random. `generateX87Precision` adds the arithmetic
 * forms at precision control extended (64 bits) and single (24 bits) in
 * every rounding mode, with m80 results (SDM vol. 1 8.1.5.2).
 */

import { compareResults } from "./compare";
import { Builder, type CaseMask, FP_AREAS, type GeneratedCase, InvalidCase } from "./generator";
import { DATA_BASE, Mode, type TestResult } from "./layout";
import type { Random } from "./random";

const CONTROL_WORD = 0x180;
const STATUS_WORD = 0x184;
const RESULT0 = 0x100;
const RESULT1 = 0x108;
/** Transcendentals store ST(0) and ST(1) as m80 here, so that their 64-bit results are compared. */
const RESULT80 = [0x100, 0x110] as const;

/**
 * The instructions whose accuracy the SDM bounds rather than fixes (vol. 1
 * 8.3.10: the error of F2XM1 FYL2X FYL2XP1 FPTAN FPATAN FSIN FCOS FSINCOS
 * is below one unit in the last place of the 64-bit result).
 */
export const TRANSCENDENTAL = new Set([
  "f2xm1",
  "fyl2x",
  "fyl2xp1",
  "fptan",
  "fpatan",
  "fsincos",
  "fsin",
  "fcos",
]);
const ENVIRONMENT = 0x140;

/** C0, C2, C3 in the high byte of the status word (SDM vol. 1 8.1.3). */
const C0_C2_C3 = 0x45;
const C0_C3 = 0x41;

type Operand = "m32fp" | "m64fp" | "m80fp" | "m16int" | "m32int" | "m64int" | "m16" | "st" | "none";

interface X87Entry {
  name: string;
  opcode: number;
  /** ModRM.reg, or -1 for a whole second byte in `second`. */
  ext: number;
  /** Register forms: the second byte (with st(i) in the low 3 bits when `stackIndex`). */
  second?: number;
  stackIndex?: boolean;
  operand: Operand;
  /** Condition-code bits of the status word's high byte that the SDM leaves undefined. */
  undefinedCodes: number;
  store?: boolean;
}

const X87: X87Entry[] = [];
const ARITHMETIC = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"];
const isCompare = (name: string) =>
  /^f(i)?(u)?com/.test(name) || name === "ftst" || name === "fxam";

function memory(name: string, opcode: number, ext: number, operand: Operand, store = false): void {
  X87.push({ name, opcode, ext, operand, undefinedCodes: isCompare(name) ? 0 : C0_C2_C3, store });
}

function register(
  name: string,
  opcode: number,
  second: number,
  stackIndex: boolean,
  codes?: number,
): void {
  X87.push({
    name,
    opcode,
    ext: -1,
    second,
    stackIndex,
    operand: stackIndex ? "st" : "none",
    undefinedCodes: codes ?? (isCompare(name) ? 0 : C0_C2_C3),
  });
}

// SDM vol. 2D table A-7 to A-22 (x87 opcode map), vol. 2A/2B per instruction for the flags.
ARITHMETIC.forEach((name, ext) => {
  memory(name, 0xd8, ext, "m32fp");
  memory(`fi${name.slice(1)}`, 0xda, ext, "m32int");
  memory(name, 0xdc, ext, "m64fp");
  memory(`fi${name.slice(1)}`, 0xde, ext, "m16int");
  register(name, 0xd8, 0xc0 | (ext << 3), true);
});
["fadd", "fmul", "", "", "fsubr", "fsub", "fdivr", "fdiv"].forEach((name, ext) => {
  if (name) register(`${name} st(i),st`, 0xdc, 0xc0 | (ext << 3), true);
});
["faddp", "fmulp", "", "", "fsubrp", "fsubp", "fdivrp", "fdivp"].forEach((name, ext) => {
  if (name) register(name, 0xde, 0xc0 | (ext << 3), true);
});
memory("fld", 0xd9, 0, "m32fp");
memory("fst", 0xd9, 2, "m32fp", true);
memory("fstp", 0xd9, 3, "m32fp", true);
memory("fnstcw", 0xd9, 7, "m16", true);
memory("fild", 0xdb, 0, "m32int");
memory("fist", 0xdb, 2, "m32int", true);
memory("fistp", 0xdb, 3, "m32int", true);
memory("fld", 0xdb, 5, "m80fp");
memory("fstp", 0xdb, 7, "m80fp", true);
memory("fld", 0xdd, 0, "m64fp");
memory("fst", 0xdd, 2, "m64fp", true);
memory("fstp", 0xdd, 3, "m64fp", true);
memory("fnstsw", 0xdd, 7, "m16", true);
memory("fild", 0xdf, 0, "m16int");
memory("fist", 0xdf, 2, "m16int", true);
memory("fistp", 0xdf, 3, "m16int", true);
memory("fild", 0xdf, 5, "m64int");
memory("fistp", 0xdf, 7, "m64int", true);
register("fld st(i)", 0xd9, 0xc0, true);
register("fxch", 0xd9, 0xc8, true);
register("ffree", 0xdd, 0xc0, true);
register("fst st(i)", 0xdd, 0xd0, true);
register("fstp st(i)", 0xdd, 0xd8, true);
register("fucom", 0xdd, 0xe0, true);
register("fucomp", 0xdd, 0xe8, true);
register("fcmovb", 0xda, 0xc0, true);
register("fcmove", 0xda, 0xc8, true);
register("fcmovbe", 0xda, 0xd0, true);
register("fcmovu", 0xda, 0xd8, true);
register("fcmovnb", 0xdb, 0xc0, true);
register("fcmovne", 0xdb, 0xc8, true);
register("fcmovnbe", 0xdb, 0xd0, true);
register("fcmovnu", 0xdb, 0xd8, true);
// FCOMI and friends leave C0, C2, C3 unaffected and set ZF PF CF (SDM vol. 2A FCOMI).
register("fucomi", 0xdb, 0xe8, true, 0);
register("fcomi", 0xdb, 0xf0, true, 0);
register("fucomip", 0xdf, 0xe8, true, 0);
register("fcomip", 0xdf, 0xf0, true, 0);
register("fucompp", 0xda, 0xe9, false);
register("fcompp", 0xde, 0xd9, false);
register("fnstsw ax", 0xdf, 0xe0, false);
register("fnclex", 0xdb, 0xe2, false);
register("fninit", 0xdb, 0xe3, false);
const D9_SECOND: [string, number, number?][] = [
  ["fnop", 0xd0],
  ["fchs", 0xe0],
  ["fabs", 0xe1],
  ["ftst", 0xe4],
  ["fxam", 0xe5],
  ["fld1", 0xe8],
  ["fldl2t", 0xe9],
  ["fldl2e", 0xea],
  ["fldpi", 0xeb],
  ["fldlg2", 0xec],
  ["fldln2", 0xed],
  ["fldz", 0xee],
  // Transcendentals: C0 and C3 undefined; C2 reports an out-of-range operand
  // for FPTAN, FSIN, FCOS and FSINCOS (SDM vol. 2A FSIN), undefined otherwise.
  ["f2xm1", 0xf0, C0_C2_C3],
  ["fyl2x", 0xf1, C0_C2_C3],
  ["fptan", 0xf2, C0_C3],
  ["fpatan", 0xf3, C0_C2_C3],
  ["fxtract", 0xf4, C0_C2_C3],
  ["fprem1", 0xf5, 0],
  ["fdecstp", 0xf6],
  ["fincstp", 0xf7],
  ["fprem", 0xf8, 0],
  ["fyl2xp1", 0xf9, C0_C2_C3],
  ["fsqrt", 0xfa],
  ["fsincos", 0xfb, C0_C3],
  ["frndint", 0xfc],
  ["fscale", 0xfd],
  ["fsin", 0xfe, C0_C3],
  ["fcos", 0xff, C0_C3],
];
for (const [name, second, codes] of D9_SECOND) register(name, 0xd9, second, false, codes);
register("fwait", 0x9b, -1, false);

const OPERAND_SIZE: Record<Operand, number> = {
  m32fp: 4,
  m64fp: 8,
  m80fp: 10,
  m16int: 2,
  m32int: 4,
  m64int: 8,
  m16: 2,
  st: 0,
  none: 0,
};

function area(operand: Operand): readonly [number, number] {
  switch (operand) {
    case "m32fp":
      return FP_AREAS.float32;
    case "m64fp":
      return FP_AREAS.float64;
    case "m80fp":
      return FP_AREAS.extended;
    default:
      return FP_AREAS.integer;
  }
}

/** ModRM + displacement for an absolute data-region offset through DS. */
function absolute(b: Builder, reg: number, offset: number): number[] {
  if (b.mode === Mode.Bits16) return [(reg << 3) | 6, offset & 0xff, offset >>> 8];
  const address = DATA_BASE + offset;
  return [
    (reg << 3) | 5,
    address & 0xff,
    (address >>> 8) & 0xff,
    (address >>> 16) & 0xff,
    address >>> 24,
  ];
}

function aligned(random: Random, [low, high]: readonly [number, number], step: number): number {
  return low + random.below(Math.floor((high - low) / step)) * step;
}

/**
 * The precision-control cases (`generateX87Precision`): precision control
 * `pc` (0 single, 3 extended) and rounding control `rc` fixed; `chain`
 * makes ST(0) a 64-bit quotient.
 */
interface Precision {
  pc: number;
  rc: number;
  chain: boolean;
}

function buildX87Case(
  entry: X87Entry,
  mode: Mode,
  memoryForm: boolean,
  random: Random,
  pristine: Uint8Array,
  precision?: Precision,
): GeneratedCase {
  const b = new Builder(random, pristine, mode, mode === Mode.Bits16, mode === Mode.Bits16);
  const code: number[] = [];
  // Round to nearest/down/up/zero at random; precision double; 80% all exceptions masked.
  const masks = random.chance(0.8) ? 0x3f : random.below(0x40);
  const control =
    precision === undefined
      ? 0x0200 | (random.below(4) << 10) | masks | 0x40
      : (precision.pc << 8) | (precision.rc << 10) | masks | 0x40;
  b.writeData(CONTROL_WORD, control, 2);
  code.push(0xdb, 0xe3); // fninit
  const float64 = () => absolute(b, 0, aligned(random, FP_AREAS.float64, 8));
  if (precision?.chain) {
    // After FNINIT precision control is extended (control word 0x37f, SDM
    // vol. 1 8.1.5, all exceptions masked): FDIV ST(0), ST(1) makes ST(0)
    // the 64-bit quotient of two doubles, so that the instruction under test
    // reads a full 64-bit significand. FNCLEX then clears the quotient's flags.
    code.push(0xdd, ...float64(), 0xdd, ...float64()); // fld qword; fld qword
    code.push(0xd8, 0xf1, 0xdb, 0xe2); // fdiv st(0), st(1); fnclex
    code.push(0xd9, ...absolute(b, 5, CONTROL_WORD)); // fldcw
  } else {
    code.push(0xd9, ...absolute(b, 5, CONTROL_WORD)); // fldcw
    code.push(0xdd, ...float64()); // fld qword
    code.push(0xdd, ...float64());
  }
  if (entry.ext >= 0) {
    const size = OPERAND_SIZE[entry.operand];
    const [low, high] = entry.store ? [0x40, 0xf0] : area(entry.operand);
    b.chooseMemory(size, low, high);
    const step = entry.operand === "m80fp" ? 10 : size;
    if (!entry.store) b.memory!.target = aligned(random, [low, high], step);
    const modrm = b.encodeMemory(entry.ext);
    if (b.segmentOverride >= 0) code.push([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65][b.segmentOverride]);
    code.push(entry.opcode, ...modrm);
  } else if (entry.opcode === 0x9b) {
    code.push(0x9b);
  } else {
    // The precision cases use the two loaded registers (the others are empty).
    const index = entry.stackIndex ? random.below(precision === undefined ? 8 : 2) : 0;
    code.push(entry.opcode, entry.second! | index);
  }
  code.push(0xdd, ...absolute(b, 7, STATUS_WORD)); // fnstsw
  if (TRANSCENDENTAL.has(entry.name) || precision !== undefined) {
    code.push(0xdb, ...absolute(b, 7, RESULT80[0])); // fstp tword
    code.push(0xdb, ...absolute(b, 7, RESULT80[1]));
  } else if (entry.store && entry.operand === "m80fp") {
    // FSTP m80 changes 10 bytes itself: the other register is popped
    // unstored, to stay within MAX_DIFFS changed bytes (see below).
    code.push(0xdd, ...absolute(b, 3, RESULT0)); // fstp qword
    code.push(0xdd, 0xd8); // fstp st(0)
  } else {
    code.push(0xdd, ...absolute(b, 3, RESULT0)); // fstp qword
    code.push(0xdd, ...absolute(b, 3, RESULT1));
  }
  // The environment is stored in the 16-bit format (operand-size prefix in
  // 32-bit code): with the results and the status word at most 34 bytes
  // change, within the harness's MAX_DIFFS (40), so that every changed byte
  // is compared. The 32-bit format is compared in test/x87.test.ts.
  if (mode === Mode.Bits32) code.push(0x66);
  code.push(0xd9, ...absolute(b, 6, ENVIRONMENT)); // fnstenv
  b.bytes.push(...code);
  const mask: CaseMask = b.mask;
  const bits: [number, number][] = [];
  if (entry.undefinedCodes) {
    bits.push([STATUS_WORD + 1, entry.undefinedCodes]);
    mask.reasons.push(
      `${entry.name}: condition codes ${entry.undefinedCodes.toString(16)} undefined (SDM vol. 2A/2B)`,
    );
  }
  // The environment's status word follows two FSTPs: C0, C2, C3 undefined (SDM vol. 2A FST).
  bits.push([ENVIRONMENT + 3, C0_C2_C3]);
  mask.memoryBits = bits;
  // The environment's instruction and data pointers (IP, CS, DP, DS) are
  // compared: Kumo's harness machine has the host's selectors and offsets
  // (FOP, absent from the 16-bit format, is compared in test/x87.test.ts).
  if (!memoryForm && entry.ext >= 0) throw new InvalidCase("x87 register form of a memory entry");
  return {
    regs: b.regs,
    eflags: b.eflags,
    mode,
    code: b.code(),
    patch: Uint8Array.from(b.patch),
    patchOffset: b.patchOffset,
    form: `x87 ${mode === Mode.Bits32 ? "c32" : "c16"} ${entry.opcode.toString(16)}${entry.ext >= 0 ? `/${entry.ext} mem ${entry.operand}` : entry.second !== undefined && entry.second >= 0 ? ` ${entry.second.toString(16)}` : ""}${precision === undefined ? "" : ` pc${PRECISION_BITS[precision.pc]}`}`,
    text: entry.name,
    mask,
  };
}

/** `perForm` cases of every x87 form in 32- and 16-bit code. */
export function generateX87(
  random: Random,
  pristine: Uint8Array,
  perForm: number,
): GeneratedCase[] {
  const cases: GeneratedCase[] = [];
  for (const mode of [Mode.Bits32, Mode.Bits16]) {
    for (const entry of X87) {
      let made = 0;
      for (let attempt = 0; made < perForm && attempt < perForm * 20; attempt++) {
        try {
          cases.push(buildX87Case(entry, mode, entry.ext >= 0, random, pristine));
          made++;
        } catch (error) {
          if (!(error instanceof InvalidCase)) throw error;
        }
      }
      if (made === 0) throw new Error(`the generator cannot build x87 ${entry.name}`);
    }
  }
  return cases;
}

/** Significand bits per precision-control value (SDM vol. 1 table 8-2). */
const PRECISION_BITS = [24, 0, 53, 64];

/**
 * Add, subtract, multiply, divide (every memory, integer, register and pop
 * form) and square root with precision control extended (the FNINIT and
 * Linux default) and single, `perForm` cases per form and rounding mode,
 * half of them on 64-bit operands; results stored as m80, so that every
 * significand bit is compared. 32-bit code only: the operand-size does not
 * change the arithmetic.
 */
export function generateX87Precision(
  random: Random,
  pristine: Uint8Array,
  perForm: number,
): GeneratedCase[] {
  const cases: GeneratedCase[] = [];
  const entries = X87.filter(
    (entry) => /^fi?(add|sub|subr|mul|div|divr)p?( |$)/.test(entry.name) || entry.name === "fsqrt",
  );
  for (const pc of [3, 0]) {
    for (const entry of entries) {
      for (let rc = 0; rc < 4; rc++) {
        for (let made = 0, attempt = 0; made < perForm && attempt < perForm * 20; attempt++) {
          try {
            const chain = made % 2 === 1;
            cases.push(
              buildX87Case(entry, Mode.Bits32, entry.ext >= 0, random, pristine, { pc, rc, chain }),
            );
            made++;
          } catch (error) {
            if (!(error instanceof InvalidCase)) throw error;
          }
        }
      }
      if (
        cases.length === 0 ||
        !cases[cases.length - 1].form.startsWith(`x87 c32 ${entry.opcode.toString(16)}`)
      )
        throw new Error(`the generator cannot build x87 ${entry.name} at precision control ${pc}`);
    }
  }
  return cases;
}

/** How a transcendental case compares: exactly, within the SDM's bound, documented-undefined, or not. */
export type Agreement = "exact" | "bound" | "undefined" | "disagree";

function finalBytes(r: TestResult, pristine: Uint8Array, offset: number, size: number): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < size; i++) {
    const d = r.diffs.find((e) => e >>> 8 === offset + i);
    bytes.push(d === undefined ? pristine[offset + i] : d & 0xff);
  }
  return bytes;
}

/** An m80 value as sign, biased exponent and the 64-bit significand. */
function extended(bytes: number[]): [number, number, bigint] {
  let significand = 0n;
  for (let i = 7; i >= 0; i--) significand = (significand << 8n) | BigInt(bytes[i]);
  const top = bytes[8] | (bytes[9] << 8);
  return [top >>> 15, top & 0x7fff, significand];
}

/** Whether two m80 results are within one unit in the last place of each other. */
function withinOneUnit(a: number[], b: number[]): boolean {
  const [signA, exponentA, significandA] = extended(a);
  const [signB, exponentB, significandB] = extended(b);
  if (signA !== signB || exponentA === 0x7fff || exponentB === 0x7fff) return false;
  // The value in units of 2^(min exponent - 63); at most one binade apart.
  const low = Math.min(exponentA, exponentB);
  if (Math.abs(exponentA - exponentB) > 1) return false;
  const valueA = significandA << BigInt(exponentA - low);
  const valueB = significandB << BigInt(exponentB - low);
  const difference = valueA > valueB ? valueA - valueB : valueB - valueA;
  // One unit of the smaller value's binade.
  return difference <= 1n;
}

/** The double the case loads into ST(0) before the instruction (the second FLD m64). */
function stackTopOperand(c: GeneratedCase, pristine: Uint8Array): number {
  const at = c.mode === Mode.Bits16 ? 12 : 16;
  const offset =
    c.mode === Mode.Bits16
      ? c.code[at] | (c.code[at + 1] << 8)
      : (c.code[at] | (c.code[at + 1] << 8) | (c.code[at + 2] << 16) | (c.code[at + 3] << 24)) -
        DATA_BASE;
  return new DataView(pristine.buffer, pristine.byteOffset + offset, 8).getFloat64(0, true);
}

/**
 * Classifies a transcendental case. Everything but the two m80 results and
 * C1 must agree exactly. The results agree exactly, or each is within one
 * unit in the last place of the host's (SDM vol. 1 8.3.10); C1 ("rounded
 * up") then describes each machine's own rounding and is not compared.
 * Operands outside the documented domain (F2XM1: |x| > 1; FYL2XP1: |x| >=
 * 1 - sqrt(2)/2, SDM vol. 2A) give undefined results: the case must agree
 * in everything else and counts as "undefined".
 */
export function classifyTranscendental(
  c: GeneratedCase,
  host: TestResult,
  kumo: TestResult,
  pristine: Uint8Array,
): Agreement {
  if (compareResults(c, host, kumo, pristine).length === 0) return "exact";
  const ignore = [...RESULT80.flatMap((o) => Array.from({ length: 10 }, (_, i) => o + i))];
  const loose: GeneratedCase = {
    ...c,
    mask: {
      ...c.mask,
      memory: [...c.mask.memory, ...ignore],
      memoryBits: [
        ...(c.mask.memoryBits ?? []).filter(([o]) => o !== STATUS_WORD + 1),
        [STATUS_WORD + 1, (c.mask.memoryBits?.find(([o]) => o === STATUS_WORD + 1)?.[1] ?? 0) | 2],
      ],
    },
  };
  if (compareResults(loose, host, kumo, pristine).length !== 0) return "disagree";
  const x = stackTopOperand(c, pristine);
  const outside =
    (c.text === "f2xm1" && Math.abs(x) > 1) ||
    (c.text === "fyl2xp1" && !(Math.abs(x) < 1 - Math.SQRT2 / 2));
  let agree = true;
  for (const offset of RESULT80) {
    const h = finalBytes(host, pristine, offset, 10);
    const k = finalBytes(kumo, pristine, offset, 10);
    if (h.some((byte, i) => byte !== k[i]) && !withinOneUnit(h, k)) agree = false;
  }
  if (outside) return "undefined";
  return agree ? "bound" : "disagree";
}
