/**
 * MMX, SSE and SSE2 cases for the differential oracle. Every encoding of
 * the three extensions that ring 3 can run (SDM vol. 2D table A-3) is a
 * form; each case is a short 32-bit sequence that sets the whole state it
 * reads from the data region, runs the instruction and stores what it
 * wrote:
 *
 *   ldmxcsr [control]                  random rounding, DAZ, FZ, masks, flags
 *   movups xmmD, [a] / movq mmD, [a]   destination (first source)
 *   movups xmmS, [b] / movq mmS, [b]   second source (fresh per case, in the patch)
 *   <the instruction>                  register or memory source, imm8 at random
 *   movups [result], xmmD / movq       the destination register
 *   stmxcsr [mxcsr]                    the flags it raised
 *
 * so XMM/MM results, MXCSR, EFLAGS (comiss), general registers (cvtss2si,
 * pmovmskb) and stored memory are compared. Operands come from pools of
 * special values per data type (signed zeros, denormals, infinities, quiet
 * and signalling NaNs with payloads, values at the edges of the exponent
 * range and of int32), and the suite has its own data region.
 */
import type { CaseMask, GeneratedCase } from "./generator";
import { DATA_BASE, DATA_SIZE, Mode } from "./layout";
import { Random } from "./random";

const RESULT = 0x40;
const MXCSR_OUT = 0x50;
const STORE_AREA = 0x80;
const POOL_SINGLE = 0x100;
const POOL_DOUBLE = 0x400;
const POOL_INTEGER = 0x700;
const POOL_END = 0xa00;
/** The patch: MXCSR control word, then the 16-byte second source (aligned). */
const CONTROL = 0xa0c;
const SOURCE_B = 0xa10;

type Data = "ps" | "pd" | "ss" | "sd" | "i" | "si" | "pi";
/**
 * Operand shapes: reg operand first, then r/m. x xmm, m mm, r r32; a
 * trailing "mem" limits r/m to memory, "reg" to a register.
 */
type Shape =
  | "x,x" // xmm, xmm/m
  | "m,m" // mm, mm/m64
  | "X,x" // store: xmm/m <- xmm (r/m is the destination)
  | "M,m" // store: mm/m64 <- mm
  | "r,x" // r32, xmm (register only)
  | "r,m" // r32, mm (register only)
  | "x,r" // xmm, r32/m32
  | "m,r" // mm, r32/m32
  | "R,x" // store: r32/m32 <- xmm
  | "R,m" // store: r32/m32 <- mm
  | "x,m" // xmm, mm/m64
  | "m,x" // mm, xmm/m
  | "X,r" // store: m32 <- r32 (movnti)
  | "g,x" // shift group on xmm, imm8
  | "g,m" // shift group on mm, imm8
  | "x,xr" // register-only xmm, xmm (maskmovdqu, movhlps)
  | "m,mr";

interface SimdEntry {
  name: string;
  prefix: number; // 0, 0x66, 0xf3, 0xf2
  opcode: number; // second byte of 0F xx
  shape: Shape;
  data: Data;
  /** Memory operand size in bytes (0: register only). */
  memory: number;
  imm?: boolean;
  /** ModRM.reg for groups. */
  ext?: number;
  /** Memory operand must be 16-byte aligned (#GP(0) otherwise). */
  aligned?: boolean;
  memoryOnly?: boolean;
}

const SIMD: SimdEntry[] = [];
function entry(
  name: string,
  prefix: number,
  opcode: number,
  shape: Shape,
  data: Data,
  memory: number,
  extra: Partial<SimdEntry> = {},
): void {
  SIMD.push({ name, prefix, opcode, shape, data, memory, aligned: memory === 16, ...extra });
}

// Data movement (SDM vol. 2B MOVAPS ... MOVQ).
entry("movups", 0, 0x10, "x,x", "ps", 16, { aligned: false });
entry("movups store", 0, 0x11, "X,x", "ps", 16, { aligned: false });
entry("movupd", 0x66, 0x10, "x,x", "pd", 16, { aligned: false });
entry("movupd store", 0x66, 0x11, "X,x", "pd", 16, { aligned: false });
entry("movss", 0xf3, 0x10, "x,x", "ss", 4);
entry("movss store", 0xf3, 0x11, "X,x", "ss", 4);
entry("movsd", 0xf2, 0x10, "x,x", "sd", 8);
entry("movsd store", 0xf2, 0x11, "X,x", "sd", 8);
entry("movlps/movhlps", 0, 0x12, "x,x", "ps", 8);
entry("movlps store", 0, 0x13, "X,x", "ps", 8, { memoryOnly: true });
entry("movlpd", 0x66, 0x12, "x,x", "pd", 8, { memoryOnly: true });
entry("movlpd store", 0x66, 0x13, "X,x", "pd", 8, { memoryOnly: true });
entry("unpcklps", 0, 0x14, "x,x", "ps", 16);
entry("unpcklpd", 0x66, 0x14, "x,x", "pd", 16);
entry("unpckhps", 0, 0x15, "x,x", "ps", 16);
entry("unpckhpd", 0x66, 0x15, "x,x", "pd", 16);
entry("movhps/movlhps", 0, 0x16, "x,x", "ps", 8);
entry("movhps store", 0, 0x17, "X,x", "ps", 8, { memoryOnly: true });
entry("movhpd", 0x66, 0x16, "x,x", "pd", 8, { memoryOnly: true });
entry("movhpd store", 0x66, 0x17, "X,x", "pd", 8, { memoryOnly: true });
entry("movaps", 0, 0x28, "x,x", "ps", 16);
entry("movaps store", 0, 0x29, "X,x", "ps", 16);
entry("movapd", 0x66, 0x28, "x,x", "pd", 16);
entry("movapd store", 0x66, 0x29, "X,x", "pd", 16);
entry("movntps", 0, 0x2b, "X,x", "ps", 16, { memoryOnly: true });
entry("movntpd", 0x66, 0x2b, "X,x", "pd", 16, { memoryOnly: true });
entry("movmskps", 0, 0x50, "r,x", "ps", 0);
entry("movmskpd", 0x66, 0x50, "r,x", "pd", 0);
entry("movd xmm, r/m32", 0x66, 0x6e, "x,r", "i", 4);
entry("movd mm, r/m32", 0, 0x6e, "m,r", "i", 4);
entry("movd r/m32, xmm", 0x66, 0x7e, "R,x", "i", 4);
entry("movd r/m32, mm", 0, 0x7e, "R,m", "i", 4);
entry("movq mm, mm/m64", 0, 0x6f, "m,m", "i", 8);
entry("movq mm/m64, mm", 0, 0x7f, "M,m", "i", 8);
entry("movdqa", 0x66, 0x6f, "x,x", "i", 16);
entry("movdqa store", 0x66, 0x7f, "X,x", "i", 16);
entry("movdqu", 0xf3, 0x6f, "x,x", "i", 16, { aligned: false });
entry("movdqu store", 0xf3, 0x7f, "X,x", "i", 16, { aligned: false });
entry("movq xmm, xmm/m64", 0xf3, 0x7e, "x,x", "i", 8);
entry("movq xmm/m64, xmm", 0x66, 0xd6, "X,x", "i", 8);
entry("movq2dq", 0xf3, 0xd6, "x,m", "i", 0);
entry("movdq2q", 0xf2, 0xd6, "m,x", "i", 0);
entry("movntq", 0, 0xe7, "M,m", "i", 8, { memoryOnly: true });
entry("movntdq", 0x66, 0xe7, "X,x", "i", 16, { memoryOnly: true });
entry("movnti", 0, 0xc3, "X,r", "i", 4, { memoryOnly: true });
entry("pmovmskb mm", 0, 0xd7, "r,m", "i", 0);
entry("pmovmskb xmm", 0x66, 0xd7, "r,x", "i", 0);
entry("pextrw mm", 0, 0xc5, "r,m", "i", 0, { imm: true });
entry("pextrw xmm", 0x66, 0xc5, "r,x", "i", 0, { imm: true });
entry("pinsrw mm", 0, 0xc4, "m,r", "i", 2, { imm: true });
entry("pinsrw xmm", 0x66, 0xc4, "x,r", "i", 2, { imm: true });
entry("pshufw", 0, 0x70, "m,m", "i", 8, { imm: true });
entry("pshufd", 0x66, 0x70, "x,x", "i", 16, { imm: true });
entry("pshufhw", 0xf3, 0x70, "x,x", "i", 16, { imm: true });
entry("pshuflw", 0xf2, 0x70, "x,x", "i", 16, { imm: true });
entry("shufps", 0, 0xc6, "x,x", "ps", 16, { imm: true });
entry("shufpd", 0x66, 0xc6, "x,x", "pd", 16, { imm: true });
entry("punpcklqdq", 0x66, 0x6c, "x,x", "i", 16);
entry("punpckhqdq", 0x66, 0x6d, "x,x", "i", 16);
entry("maskmovq", 0, 0xf7, "m,mr", "i", 0);
entry("maskmovdqu", 0x66, 0xf7, "x,xr", "i", 0);

// Bitwise (SDM vol. 2A ANDPS ... XORPD).
for (const [name, opcode] of [
  ["and", 0x54],
  ["andn", 0x55],
  ["or", 0x56],
  ["xor", 0x57],
] as const) {
  entry(`${name}ps`, 0, opcode, "x,x", "ps", 16);
  entry(`${name}pd`, 0x66, opcode, "x,x", "pd", 16);
}

// Arithmetic (SDM vol. 2A ADDPS ... vol. 2B SUBSD).
for (const [name, opcode] of [
  ["sqrt", 0x51],
  ["add", 0x58],
  ["mul", 0x59],
  ["sub", 0x5c],
  ["min", 0x5d],
  ["div", 0x5e],
  ["max", 0x5f],
] as const) {
  entry(`${name}ps`, 0, opcode, "x,x", "ps", 16);
  entry(`${name}pd`, 0x66, opcode, "x,x", "pd", 16);
  entry(`${name}ss`, 0xf3, opcode, "x,x", "ss", 4);
  entry(`${name}sd`, 0xf2, opcode, "x,x", "sd", 8);
}
entry("cmpps", 0, 0xc2, "x,x", "ps", 16, { imm: true });
entry("cmppd", 0x66, 0xc2, "x,x", "pd", 16, { imm: true });
entry("cmpss", 0xf3, 0xc2, "x,x", "ss", 4, { imm: true });
entry("cmpsd", 0xf2, 0xc2, "x,x", "sd", 8, { imm: true });
entry("ucomiss", 0, 0x2e, "x,x", "ss", 4);
entry("comiss", 0, 0x2f, "x,x", "ss", 4);
entry("ucomisd", 0x66, 0x2e, "x,x", "sd", 8);
entry("comisd", 0x66, 0x2f, "x,x", "sd", 8);

// Conversions (SDM vol. 2A CVTDQ2PD ... CVTTSS2SI).
entry("cvtpi2ps", 0, 0x2a, "x,m", "pi", 8);
entry("cvtpi2pd", 0x66, 0x2a, "x,m", "pi", 8);
entry("cvtsi2ss", 0xf3, 0x2a, "x,r", "si", 4);
entry("cvtsi2sd", 0xf2, 0x2a, "x,r", "si", 4);
entry("cvttps2pi", 0, 0x2c, "m,x", "ps", 8);
entry("cvttpd2pi", 0x66, 0x2c, "m,x", "pd", 16);
entry("cvttss2si", 0xf3, 0x2c, "r,x", "ss", 4);
entry("cvttsd2si", 0xf2, 0x2c, "r,x", "sd", 8);
entry("cvtps2pi", 0, 0x2d, "m,x", "ps", 8);
entry("cvtpd2pi", 0x66, 0x2d, "m,x", "pd", 16);
entry("cvtss2si", 0xf3, 0x2d, "r,x", "ss", 4);
entry("cvtsd2si", 0xf2, 0x2d, "r,x", "sd", 8);
entry("cvtps2pd", 0, 0x5a, "x,x", "ps", 8);
entry("cvtpd2ps", 0x66, 0x5a, "x,x", "pd", 16);
entry("cvtss2sd", 0xf3, 0x5a, "x,x", "ss", 4);
entry("cvtsd2ss", 0xf2, 0x5a, "x,x", "sd", 8);
entry("cvtdq2ps", 0, 0x5b, "x,x", "pi", 16);
entry("cvtps2dq", 0x66, 0x5b, "x,x", "ps", 16);
entry("cvttps2dq", 0xf3, 0x5b, "x,x", "ps", 16);
entry("cvttpd2dq", 0x66, 0xe6, "x,x", "pd", 16);
entry("cvtdq2pd", 0xf3, 0xe6, "x,x", "pi", 8);
entry("cvtpd2dq", 0xf2, 0xe6, "x,x", "pd", 16);

// Integer operations: MMX (no prefix) and SSE2 (66) forms of each (SDM vol. 2B PADDB ... PXOR).
const INTEGER: [string, number][] = [
  ["punpcklbw", 0x60],
  ["punpcklwd", 0x61],
  ["punpckldq", 0x62],
  ["packsswb", 0x63],
  ["pcmpgtb", 0x64],
  ["pcmpgtw", 0x65],
  ["pcmpgtd", 0x66],
  ["packuswb", 0x67],
  ["punpckhbw", 0x68],
  ["punpckhwd", 0x69],
  ["punpckhdq", 0x6a],
  ["packssdw", 0x6b],
  ["pcmpeqb", 0x74],
  ["pcmpeqw", 0x75],
  ["pcmpeqd", 0x76],
  ["psrlw", 0xd1],
  ["psrld", 0xd2],
  ["psrlq", 0xd3],
  ["paddq", 0xd4],
  ["pmullw", 0xd5],
  ["psubusb", 0xd8],
  ["psubusw", 0xd9],
  ["pminub", 0xda],
  ["pand", 0xdb],
  ["paddusb", 0xdc],
  ["paddusw", 0xdd],
  ["pmaxub", 0xde],
  ["pandn", 0xdf],
  ["pavgb", 0xe0],
  ["psraw", 0xe1],
  ["psrad", 0xe2],
  ["pavgw", 0xe3],
  ["pmulhuw", 0xe4],
  ["pmulhw", 0xe5],
  ["psubsb", 0xe8],
  ["psubsw", 0xe9],
  ["pminsw", 0xea],
  ["por", 0xeb],
  ["paddsb", 0xec],
  ["paddsw", 0xed],
  ["pmaxsw", 0xee],
  ["pxor", 0xef],
  ["psllw", 0xf1],
  ["pslld", 0xf2],
  ["psllq", 0xf3],
  ["pmuludq", 0xf4],
  ["pmaddwd", 0xf5],
  ["psadbw", 0xf6],
  ["psubb", 0xf8],
  ["psubw", 0xf9],
  ["psubd", 0xfa],
  ["psubq", 0xfb],
  ["paddb", 0xfc],
  ["paddw", 0xfd],
  ["paddd", 0xfe],
];
for (const [name, opcode] of INTEGER) {
  entry(`${name} mm`, 0, opcode, "m,m", "i", 8);
  entry(`${name} xmm`, 0x66, opcode, "x,x", "i", 16);
}
// Shifts by imm8 (groups 12-14).
for (const [name, opcode, ext] of [
  ["psrlw", 0x71, 2],
  ["psraw", 0x71, 4],
  ["psllw", 0x71, 6],
  ["psrld", 0x72, 2],
  ["psrad", 0x72, 4],
  ["pslld", 0x72, 6],
  ["psrlq", 0x73, 2],
  ["psllq", 0x73, 6],
] as const) {
  entry(`${name} mm, imm8`, 0, opcode, "g,m", "i", 0, { imm: true, ext });
  entry(`${name} xmm, imm8`, 0x66, opcode, "g,x", "i", 0, { imm: true, ext });
}
entry("psrldq", 0x66, 0x73, "g,x", "i", 0, { imm: true, ext: 3 });
entry("pslldq", 0x66, 0x73, "g,x", "i", 0, { imm: true, ext: 7 });

/** Forms without operands: run with the usual prologue and epilogue. */
const PLAIN: [string, number[]][] = [
  ["emms", [0x0f, 0x77]],
  ["sfence", [0x0f, 0xae, 0xf8]],
  ["lfence", [0x0f, 0xae, 0xe8]],
  ["mfence", [0x0f, 0xae, 0xf0]],
  ["pause", [0xf3, 0x90]],
  ["prefetchnta", [0x0f, 0x18, 0x05, ...le32(DATA_BASE + 0x300)]],
  ["prefetcht0", [0x0f, 0x18, 0x0d, ...le32(DATA_BASE + 0x300)]],
  ["clflush", [0x0f, 0xae, 0x3d, ...le32(DATA_BASE + 0x300)]],
];

function le32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24];
}

// ---------------------------------------------------------------------------
// Operand values

const f32 = new Float32Array(1);
const f32w = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const f64w = new Uint32Array(f64.buffer);

const SPECIAL_SINGLES = [
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40200000, 0x3f000000, 0xbf000000,
  0x00000001, 0x807fffff, 0x00400000, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x7f800000,
  0xff800000, 0x7fc00000, 0xffc00000, 0x7fc12345, 0x7f800001, 0xff812345, 0x4effffff, 0x4f000000,
  0xcf000000, 0xcf000001, 0x3eaaaaab, 0x4b000001, 0x4b7fffff, 0x33800000, 0x0c000000, 0x72000000,
  0x3f800001, 0x3f7fffff, 0x00800001, 0x007ffffe, 0x3f000001, 0x40000000,
];

const SPECIAL_DOUBLES: [number, number][] = [
  [0, 0],
  [0, 0x80000000],
  [0, 0x3ff00000],
  [0, 0xbff00000],
  [0, 0x3fe00000],
  [1, 0],
  [0xffffffff, 0x800fffff],
  [0, 0x00080000],
  [0, 0x00100000],
  [0xffffffff, 0x7fefffff],
  [0, 0x7ff00000],
  [0, 0xfff00000],
  [0, 0x7ff80000],
  [0x12345678, 0xfff80000],
  [1, 0x7ff00000],
  [0x9abc, 0xfff41234],
  [0xffc00000, 0x41dfffff], // 2^31 - 1
  [0, 0x41e00000], // 2^31
  [0x00200000, 0xc1e00000], // -2^31 - 0.5
  [0, 0xc1e00000],
  [0xe0000000, 0x47efffff], // FLT_MAX, exactly
  [0xf0000000, 0x47efffff], // FLT_MAX + half an ulp
  [0, 0x47f00000],
  [0, 0x36a00000], // smallest float denormal
  [0, 0x38100000], // FLT_MIN
  [0x10000000, 0x380fffff],
  [0x55555555, 0x3fd55555],
  [0, 0x3ff80000],
  [0x1, 0x3ff00000],
  [0xffffffff, 0x3fefffff], // 1 - 2^-53
  [0x1, 0x00100000], // DBL_MIN + one ulp
  [0xfffffffe, 0x000fffff],
  [0x1, 0x3fe00000],
  [0, 0x40000000],
];

function randomSingle(random: Random): number {
  switch (random.below(5)) {
    case 0:
    case 1:
      return random.pick(SPECIAL_SINGLES) >>> 0;
    case 2: {
      // Near the bottom or the top of the exponent range.
      const exponent = random.chance(0.5) ? random.range(0, 30) : random.range(220, 254);
      return (
        ((random.chance(0.5) ? 0x80000000 : 0) | (exponent << 23) | (random.u32() & 0x7fffff)) >>> 0
      );
    }
    case 3:
      f32[0] = (random.below(2001) - 1000) / random.pick([1, 2, 4, 3, 10]);
      return f32w[0];
    default: {
      const exponent = random.range(100, 160);
      return (
        ((random.chance(0.5) ? 0x80000000 : 0) | (exponent << 23) | (random.u32() & 0x7fffff)) >>> 0
      );
    }
  }
}

function randomDouble(random: Random): [number, number] {
  switch (random.below(5)) {
    case 0:
    case 1:
      return random.pick(SPECIAL_DOUBLES);
    case 2: {
      const exponent = random.chance(0.5)
        ? random.range(0, 60)
        : random.chance(0.5)
          ? random.range(1980, 2046)
          : random.range(850, 920); // near the single-precision limits
      return [
        random.u32(),
        ((random.chance(0.5) ? 0x80000000 : 0) | (exponent << 20) | (random.u32() & 0xfffff)) >>> 0,
      ];
    }
    case 3:
      f64[0] = (random.below(20001) - 10000) / random.pick([1, 2, 4, 3, 10, 7]);
      return [f64w[0], f64w[1]];
    default: {
      const exponent = random.range(900, 1150);
      return [
        random.u32(),
        ((random.chance(0.5) ? 0x80000000 : 0) | (exponent << 20) | (random.u32() & 0xfffff)) >>> 0,
      ];
    }
  }
}

function randomInteger(random: Random): number {
  switch (random.below(6)) {
    case 0:
      return random.interesting();
    case 1: {
      // Bytes at the saturation edges.
      let v = 0;
      for (let i = 0; i < 4; i++) v |= random.pick([0, 0x7f, 0x80, 0xff, 1, 0xfe, 0x81]) << (8 * i);
      return v >>> 0;
    }
    case 2: {
      let v = 0;
      for (let i = 0; i < 2; i++)
        v |= random.pick([0, 0x7fff, 0x8000, 0xffff, 1, 0x8001, 0x7ffe]) << (16 * i);
      return v >>> 0;
    }
    case 3:
      // Small shift counts and word indices.
      return random.below(80);
    default:
      return random.u32();
  }
}

/** Four dwords of the given data type. */
function vector(random: Random, data: Data): number[] {
  const out: number[] = [];
  if (data === "pd" || data === "sd") {
    for (let i = 0; i < 2; i++) out.push(...randomDouble(random));
  } else if (data === "ps" || data === "ss") {
    for (let i = 0; i < 4; i++) out.push(randomSingle(random));
  } else if (data === "pi" || data === "si") {
    for (let i = 0; i < 4; i++) {
      out.push(random.chance(0.5) ? random.interesting() : random.range(-100000, 100000) >>> 0);
    }
  } else {
    for (let i = 0; i < 4; i++) out.push(randomInteger(random));
  }
  return out;
}

function poolFor(data: Data): [number, number] {
  if (data === "pd" || data === "sd") return [POOL_DOUBLE, POOL_INTEGER];
  if (data === "ps" || data === "ss") return [POOL_SINGLE, POOL_DOUBLE];
  return [POOL_INTEGER, POOL_END];
}

/** The suite's data region: pools of typed operand vectors, the rest random. */
export function simdPristine(seed: number): Uint8Array {
  const random = new Random(seed ^ 0x53534532);
  const data = new Uint8Array(DATA_SIZE);
  const view = new DataView(data.buffer);
  for (let i = 0; i < DATA_SIZE; i += 4) view.setUint32(i, random.u32(), true);
  for (const data of ["ps", "pd", "i"] as Data[]) {
    const [low, high] = poolFor(data);
    for (let at = low; at < high; at += 16) {
      vector(random, data).forEach((word, i) => {
        view.setUint32(at + 4 * i, word, true);
      });
    }
  }
  return data;
}

// ---------------------------------------------------------------------------
// Encoding

/** ModRM and displacement of [offset] in the data region (DS: flat in 32-bit code, based in 16-bit code). */
function absolute(reg: number, offset: number, mode: Mode = Mode.Bits32): number[] {
  if (mode === Mode.Bits16) return [(reg << 3) | 6, offset & 0xff, offset >>> 8];
  return [(reg << 3) | 5, ...le32(DATA_BASE + offset)];
}

const LOAD_XMM = [0x0f, 0x10]; // movups
const STORE_XMM = [0x0f, 0x11];
const LOAD_MM = [0x0f, 0x6f]; // movq
const STORE_MM = [0x0f, 0x7f];

function emptyMask(): CaseMask {
  return { flags: 0, regs: new Uint32Array(8), memory: [], reasons: [] };
}

interface ShapeInfo {
  /** ModRM.reg operand: xmm, mm, r32, or a group extension. */
  reg: "x" | "m" | "r" | "g";
  /** ModRM.rm operand when it is a register. */
  rm: "x" | "m" | "r";
  /** Which operand the instruction writes. */
  dest: "reg" | "rm";
}

const SHAPES: Record<Shape, ShapeInfo> = {
  "x,x": { reg: "x", rm: "x", dest: "reg" },
  "m,m": { reg: "m", rm: "m", dest: "reg" },
  "X,x": { reg: "x", rm: "x", dest: "rm" },
  "M,m": { reg: "m", rm: "m", dest: "rm" },
  "r,x": { reg: "r", rm: "x", dest: "reg" },
  "r,m": { reg: "r", rm: "m", dest: "reg" },
  "x,r": { reg: "x", rm: "r", dest: "reg" },
  "m,r": { reg: "m", rm: "r", dest: "reg" },
  "R,x": { reg: "x", rm: "r", dest: "rm" },
  "R,m": { reg: "m", rm: "r", dest: "rm" },
  "x,m": { reg: "x", rm: "m", dest: "reg" },
  "m,x": { reg: "m", rm: "x", dest: "reg" },
  "X,r": { reg: "r", rm: "r", dest: "rm" },
  "g,x": { reg: "g", rm: "x", dest: "rm" },
  "g,m": { reg: "g", rm: "m", dest: "rm" },
  "x,xr": { reg: "x", rm: "x", dest: "reg" },
  "m,mr": { reg: "m", rm: "m", dest: "reg" },
};

function buildCase(e: SimdEntry, memoryForm: boolean, random: Random, mode: Mode): GeneratedCase {
  const shape = SHAPES[e.shape];
  const regs = new Uint32Array(8);
  for (let r = 0; r < 8; r++) regs[r] = randomInteger(random);
  regs[4] = DATA_BASE + 0x1800; // ESP: a valid stack (the cases do not use it)
  // MXCSR: rounding at random, DAZ and FZ a quarter of the time each, 80% all masked.
  const masks = random.chance(0.8) ? 0x3f : random.below(0x40);
  const stickyFlags = random.chance(0.8) ? 0 : random.below(0x40);
  const control =
    (random.below(4) << 13) |
    (random.chance(0.25) ? 0x8000 : 0) |
    (random.chance(0.25) ? 0x40 : 0) |
    (masks << 7) |
    stickyFlags;
  const patch = new Uint8Array(20);
  const patchView = new DataView(patch.buffer);
  patchView.setUint32(0, control, true);
  vector(random, e.data).forEach((word, i) => {
    patchView.setUint32(4 + 4 * i, word, true);
  });

  const d = random.below(8);
  let s = random.below(8);
  if (random.chance(0.15)) s = d;
  const [poolLow, poolHigh] = poolFor(e.data);
  const a = poolLow + random.below((poolHigh - poolLow) / 16) * 16;

  const code: number[] = [];
  const mmx = shape.reg === "m" || shape.rm === "m";
  if (mmx) code.push(0xdb, 0xe3); // fninit: no pending x87 exception, empty stack
  code.push(0x0f, 0xae, ...absolute(2, CONTROL, mode)); // ldmxcsr
  const load = (kind: string, r: number, offset: number) => {
    if (kind === "x") code.push(...LOAD_XMM, ...absolute(r, offset, mode));
    else if (kind === "m") code.push(...LOAD_MM, ...absolute(r, offset, mode));
  };
  load(shape.reg, d, a);
  if (!memoryForm) load(shape.rm, s, shape.reg === "g" ? a : SOURCE_B);
  if (e.prefix) code.push(e.prefix);
  code.push(0x0f, e.opcode);
  const regField = shape.reg === "g" ? (e.ext ?? 0) : d;
  if (memoryForm) {
    const storing = shape.dest === "rm";
    let offset = SOURCE_B;
    if (storing) offset = STORE_AREA + (e.aligned ? 16 * random.below(3) : random.below(40));
    if (e.aligned && random.chance(0.1))
      offset += random.pick([4, 8, 1]); // #GP(0)
    else if (!e.aligned && !storing && random.chance(0.3)) offset = a + random.below(8);
    code.push(...absolute(regField, offset, mode));
  } else {
    code.push(0xc0 | (regField << 3) | s);
  }
  if (e.imm) code.push(random.below(256));
  // Capture the destination register (general registers are compared anyway).
  const [kind, r] = shape.dest === "reg" ? [shape.reg, d] : [memoryForm ? "" : shape.rm, s];
  if (kind === "x") code.push(...STORE_XMM, ...absolute(r, RESULT, mode));
  else if (kind === "m") code.push(...STORE_MM, ...absolute(r, RESULT, mode));
  code.push(0x0f, 0xae, ...absolute(3, MXCSR_OUT, mode)); // stmxcsr
  if (mmx) code.push(0x0f, 0x77); // emms
  if (code.length > 64) throw new Error(`simd case for ${e.name} is ${code.length} bytes`);
  // maskmovq/maskmovdqu store to DS:EDI: point it into the store area.
  if (e.opcode === 0xf7) {
    regs[7] = (mode === Mode.Bits16 ? 0 : DATA_BASE) + STORE_AREA + random.below(32);
  }
  // 16-bit code: a 16-bit stack (ESP[31:16] = 0, see REQUESTS.md).
  if (mode === Mode.Bits16) regs[4] = 0x1800;
  const prefix = e.prefix ? `${e.prefix.toString(16)} ` : "";
  const ext = e.ext !== undefined ? `/${e.ext}` : "";
  return {
    regs,
    eflags: (0x202 | (random.u32() & 0x8d5)) >>> 0,
    mode,
    code: Uint8Array.from(code),
    patch,
    patchOffset: CONTROL,
    form: `simd ${mode === Mode.Bits16 ? "c16 " : ""}${prefix}0f ${e.opcode.toString(16).padStart(2, "0")}${ext} ${memoryForm ? "mem" : "reg"}`,
    text: e.name,
    mask: emptyMask(),
  };
}

function plainCase(name: string, bytes: number[], random: Random): GeneratedCase {
  const regs = new Uint32Array(8);
  for (let r = 0; r < 8; r++) regs[r] = randomInteger(random);
  regs[4] = DATA_BASE + 0x1800;
  const patch = new Uint8Array(20);
  new DataView(patch.buffer).setUint32(0, 0x1f80 | (random.below(4) << 13), true);
  const code = [
    ...[0x0f, 0xae, ...absolute(2, CONTROL)],
    ...bytes,
    ...[0x0f, 0xae, ...absolute(3, MXCSR_OUT)],
  ];
  return {
    regs,
    eflags: 0x202,
    mode: Mode.Bits32,
    code: Uint8Array.from(code),
    patch,
    patchOffset: CONTROL,
    form: `simd ${name}`,
    text: name,
    mask: emptyMask(),
  };
}

export interface SimdSuite {
  pristine: Uint8Array;
  cases: GeneratedCase[];
}

/** `perForm` cases of every MMX/SSE/SSE2 form, register and memory variants. */
export function generateSimdSuite(seed: number, perForm: number): SimdSuite {
  const pristine = simdPristine(seed);
  const random = new Random(seed ^ 0x1234567);
  const cases: GeneratedCase[] = [];
  for (const e of SIMD) {
    const hasRegister = !e.memoryOnly;
    const hasMemory = e.memory > 0;
    for (const memoryForm of [false, true]) {
      if (memoryForm ? !hasMemory : !hasRegister) continue;
      for (let i = 0; i < perForm; i++) cases.push(buildCase(e, memoryForm, random, Mode.Bits32));
      // 16-bit code: the 66 prefix selects the SSE2 forms there too (SDM vol. 2A 2.1.2).
      const cases16 = Math.max(2, perForm >> 2);
      for (let i = 0; i < cases16; i++) cases.push(buildCase(e, memoryForm, random, Mode.Bits16));
    }
  }
  for (const [name, bytes] of PLAIN) {
    for (let i = 0; i < 2; i++) cases.push(plainCase(name, bytes, random));
  }
  return { pristine, cases };
}

/** Number of instruction encodings the suite covers. */
export const SIMD_ENTRY_COUNT = SIMD.length + PLAIN.length;
