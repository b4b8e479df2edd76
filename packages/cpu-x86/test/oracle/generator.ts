/**
 * Generates differential test cases: every entry of the instruction table in
 * every variant that changes its behaviour (32- and 16-bit code, operand and
 * address size prefixes, register and memory forms, LOCK), each with several
 * random operand sets, plus a sweep of every ModRM/SIB addressing form.
 *
 * Memory operands are solved backwards: the generator picks where in the
 * data region the access should land, then chooses displacement and index
 * values at random and sets the base register to what makes the effective
 * address hit that spot, so random addressing never leaves mapped memory.
 * Registers that an instruction needs for something else (string pointers,
 * shift counts, dividends) are kept out of the addressing.
 */
import {
  CODE_BASE,
  CODE_MAX,
  CODE_OFFSET,
  DATA_BASE,
  DATA_SIZE,
  Mode,
  PATCH_MAX,
  segmentBases,
  type TestCase,
} from "./layout";
import { Random } from "./random";
import { type Entry, hasAddressSize, hasModrm, hasOperandSize, modrmOperand, TABLE } from "./table";
import { generateX87, generateX87Precision } from "./x87";

const EAX = 0;
const ECX = 1;
const EDX = 2;
const EBX = 3;
const ESP = 4;
const EBP = 5;
const ESI = 6;
const EDI = 7;
const SEG_ES = 0;
const SEG_CS = 1;
const SEG_SS = 2;
const SEG_DS = 3;
const SEG_FS = 4;
const SEG_GS = 5;
const SEGMENT_PREFIX = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

// EFLAGS bits (SDM vol. 1 3.4.3).
export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
const TF = 0x100;
const IF = 0x200;
const DF = 0x400;
export const OF = 0x800;
const NT = 0x4000;
const IOPL = 0x3000;
/** RF: set by the processor in the EFLAGS image of a fault (SDM vol. 3A 17.3.1.1); never compared. */
export const RF = 0x10000;
const AC = 0x40000;
const ARITHMETIC = CF | PF | AF | ZF | SF | OF;

/**
 * Selectors the cases load, chosen to exist with the same descriptor on the
 * host (64-bit Linux's GDT, arch/x86/include/asm/segment.h, and the
 * harness's LDT) and on Kumo's side: null, LDT 16-bit code and data, user
 * 32-bit code and data with several RPLs, kernel code and data (DPL 0), the
 * TSS and LDT system descriptors, an empty TLS slot, one past the LDT limit
 * and one past the GDT limit.
 */
export const SELECTORS = [
  0x00, 0x03, 0x07, 0x0f, 0x0c, 0x0e, 0x17, 0x20, 0x23, 0x2b, 0x2a, 0x08, 0x18, 0x40, 0x50, 0x63,
  0x83,
];

/** What the comparison ignores for one case (documented-undefined results). */
export interface CaseMask {
  /** EFLAGS bits to ignore. */
  flags: number;
  /** Per register, bits to ignore. */
  regs: Uint32Array;
  /** Data-region offsets whose final value is undefined. */
  memory: number[];
  /** Why, for reports. */
  reasons: string[];
  /** Accept a host EIP this many bytes before Kumo's (host-environment quirk, see icebp). */
  eipSlack?: number;
  /** Bits to ignore in single data-region bytes: [offset, bits]. */
  memoryBits?: [number, number][];
}

export interface GeneratedCase extends TestCase {
  /** The distinct instruction form this case exercises. */
  form: string;
  /** The instruction in words, for reports. */
  text: string;
  mask: CaseMask;
  /** Crashes qemu-i386 (see Builder.qemuUnsafe). */
  qemuUnsafe?: boolean;
}

/** The initial data region shared by every case (random bytes from the seed). */
export function pristineData(seed: number): Uint8Array {
  const random = new Random(seed ^ 0x5a5a5a5a);
  const data = new Uint8Array(DATA_SIZE);
  for (let i = 0; i < DATA_SIZE; i += 4) {
    const v = random.chance(0.2) ? random.interesting() : random.u32();
    data[i] = v;
    data[i + 1] = v >>> 8;
    data[i + 2] = v >>> 16;
    data[i + 3] = v >>> 24;
  }
  fillFloatingPoint(data, random);
  return data;
}

export class InvalidCase extends Error {}

/** Data-region areas of x87 operands (see fillFloatingPoint). */
export const FP_AREAS = {
  float64: [0x200, 0x600],
  float32: [0x600, 0x800],
  extended: [0x800, 0xa00],
  integer: [0xa00, 0xc00],
} as const;

/** Values where floating-point results are interesting: signed zeros, infinities, NaN, denormals, edges. */
function interestingDouble(random: Random): number {
  switch (random.below(4)) {
    case 0:
      return random.pick([
        0,
        -0,
        1,
        -1,
        0.5,
        2,
        3,
        -2.5,
        10,
        1 / 3,
        Math.PI,
        2 ** 53,
        2 ** 31,
        -(2 ** 31),
        2 ** 63,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        Number.NaN,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        1e-300,
        1e300,
        123456.789,
        0.1,
        65535.5,
        -32768.5,
      ]);
    case 1:
      return (random.below(2001) - 1000) / random.pick([1, 2, 4, 10, 16]);
    default:
      return (
        (random.chance(0.5) ? -1 : 1) *
        (1 + random.below(1 << 30) / (1 << 30)) *
        2 ** random.range(-40, 40)
      );
  }
}

/**
 * Fills the x87 operand areas of the data region: doubles, floats, 80-bit
 * extended values (converted exactly from doubles) and integers near the
 * limits of 16, 32 and 64 bits.
 */
function fillFloatingPoint(data: Uint8Array, random: Random): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = FP_AREAS.float64[0]; at < FP_AREAS.float64[1]; at += 8)
    view.setFloat64(at, interestingDouble(random), true);
  for (let at = FP_AREAS.float32[0]; at < FP_AREAS.float32[1]; at += 4)
    view.setFloat32(at, interestingDouble(random), true);
  for (let at = FP_AREAS.extended[0]; at + 10 <= FP_AREAS.extended[1]; at += 10) {
    writeExtended(view, at, interestingDouble(random));
  }
  for (let at = FP_AREAS.integer[0]; at < FP_AREAS.integer[1]; at += 4) {
    const small = random.range(-1000, 1000);
    view.setInt32(at, random.chance(0.5) ? small : random.interesting(), true);
  }
}

/** A double as an 80-bit extended value, exactly (SDM vol. 1 4.2.2). */
function writeExtended(view: DataView, at: number, value: number): void {
  const scratch = new DataView(new ArrayBuffer(8));
  scratch.setFloat64(0, value);
  const high = scratch.getUint32(0);
  const low = scratch.getUint32(4);
  const sign = high >>> 31;
  const exponent = (high >>> 20) & 0x7ff;
  let mantissaHigh = ((high & 0xfffff) << 11) | (low >>> 21);
  let mantissaLow = (low << 11) >>> 0;
  let biased: number;
  if (exponent === 0x7ff) {
    biased = 0x7fff;
    mantissaHigh = (mantissaHigh | 0x80000000) >>> 0;
  } else if (exponent === 0) {
    if (mantissaHigh === 0 && mantissaLow === 0) biased = 0;
    else {
      // Denormal double: normalize into the extended exponent range.
      biased = 0x3fff - 1022;
      while (!(mantissaHigh & 0x80000000)) {
        mantissaHigh = ((mantissaHigh << 1) | (mantissaLow >>> 31)) >>> 0;
        mantissaLow = (mantissaLow << 1) >>> 0;
        biased--;
      }
    }
  } else {
    biased = exponent - 1023 + 0x3fff;
    mantissaHigh = (mantissaHigh | 0x80000000) >>> 0;
  }
  view.setUint32(at, mantissaLow, true);
  view.setUint32(at + 4, mantissaHigh >>> 0, true);
  view.setUint16(at + 8, (sign << 15) | biased, true);
}

interface MemoryOperand {
  /** Offset of the access in the data region (or in the code page for CS in 16-bit code). */
  target: number;
  linear: number;
  segment: number;
}

/** Builds one case. */
export class Builder {
  readonly regs = new Uint32Array(8);
  eflags: number;
  readonly prefixes: number[] = [];
  readonly bytes: number[] = [];
  patch: number[] = [];
  patchOffset = 0;
  readonly mask: CaseMask = { flags: RF, regs: new Uint32Array(8), memory: [], reasons: [] };
  /** Registers the instruction needs for its own purposes: not used for addressing. */
  reserved = 1 << ESP;
  segmentOverride = -1;
  /**
   * qemu-i386 (Debian 8.x) aborts on an assertion when user code pops EFLAGS
   * with IOPL bits set (target/i386/tcg/translate.c
   * i386_tr_init_disas_context; real processors ignore them at CPL 3), and
   * dies of an unhandled SIGSEGV on IRET and on BTS/BTR/BTC in these cases.
   * Such cases are left out when qemu is the oracle.
   */
  qemuUnsafe = false;
  memory: MemoryOperand | null = null;
  /** E operand when it is a register: its number. */
  eRegister = -1;
  readonly bases: readonly number[];

  constructor(
    readonly random: Random,
    readonly pristine: Uint8Array,
    readonly mode: Mode,
    readonly o16: boolean,
    readonly a16: boolean,
  ) {
    this.bases = segmentBases(mode);
    for (let r = 0; r < 8; r++) this.regs[r] = random.interesting();
    this.regs[ESP] = this.stackPointer();
    this.eflags = (0x202 | (random.u32() & (ARITHMETIC | DF))) >>> 0;
  }

  get operandBytes(): number {
    return this.o16 ? 2 : 4;
  }

  get stack16(): boolean {
    return this.mode === Mode.Bits16;
  }

  stackPointer(): number {
    const offset = 0x1800 + this.random.range(-0x300, 0x300);
    const aligned = this.random.chance(0.8) ? offset & ~3 : offset;
    return this.mode === Mode.Bits32 ? DATA_BASE + aligned : aligned;
  }

  /** Data-region offset of the stack top. */
  stackOffset(): number {
    const sp = this.stack16 ? this.regs[ESP] & 0xffff : this.regs[ESP];
    return (sp + this.bases[SEG_SS] - DATA_BASE) >>> 0;
  }

  setReg(r: number, size: number, value: number): void {
    if (size === 4) this.regs[r] = value >>> 0;
    else if (size === 2) this.regs[r] = ((this.regs[r] & 0xffff0000) | (value & 0xffff)) >>> 0;
    else if (r < 4) this.regs[r] = ((this.regs[r] & 0xffffff00) | (value & 0xff)) >>> 0;
    else this.regs[r - 4] = ((this.regs[r - 4] & 0xffff00ff) | ((value & 0xff) << 8)) >>> 0;
  }

  getReg(r: number, size: number): number {
    if (size === 4) return this.regs[r];
    if (size === 2) return this.regs[r] & 0xffff;
    return r < 4 ? this.regs[r] & 0xff : (this.regs[r - 4] >>> 8) & 0xff;
  }

  /** Reads the data region as the case will see it (pristine plus patch). */
  readData(offset: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      const p = at - this.patchOffset;
      const byte = p >= 0 && p < this.patch.length ? this.patch[p] : this.pristine[at];
      value = value * 256 + byte;
    }
    return value >>> 0;
  }

  /** Writes bytes into the case's patch (one contiguous patch per case). */
  writeData(offset: number, value: number, size: number): void {
    if (this.patch.length === 0) this.patchOffset = offset;
    const start = Math.min(this.patchOffset, offset);
    const end = Math.max(this.patchOffset + this.patch.length, offset + size);
    if (end - start > PATCH_MAX || offset < 0 || end > DATA_SIZE) throw new InvalidCase("patch");
    const merged: number[] = [];
    for (let at = start; at < end; at++) merged.push(this.readData(at, 1));
    this.patch = merged;
    this.patchOffset = start;
    for (let i = 0; i < size; i++) {
      this.patch[offset - start + i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
    }
  }

  writeData64(offset: number, low: number, high: number): void {
    this.writeData(offset, low, 4);
    this.writeData(offset + 4, high, 4);
  }

  /** Value of the E operand (register or memory) as the case starts. */
  readE(size: number): number {
    if (this.memory) return this.readData(this.memory.target, size);
    return this.getReg(this.eRegister, size);
  }

  writeE(size: number, value: number): void {
    if (this.memory) this.writeData(this.memory.target, value, size);
    else this.setReg(this.eRegister, size, value);
  }

  /** Chooses the data offset and segment of a memory operand of `size` bytes. */
  chooseMemory(size: number, low = 0x10, high = DATA_SIZE - 0x10): void {
    const random = this.random;
    let segment = -1;
    if (this.a16 && this.mode === Mode.Bits32) {
      // 16-bit offsets reach only the segments based at the data region.
      segment = random.pick([SEG_ES, SEG_FS, SEG_GS]);
    } else if (random.chance(0.3)) {
      segment = random.below(6);
    }
    this.segmentOverride = segment;
    let target = random.range(low, high - size);
    if (segment === SEG_CS && this.mode === Mode.Bits16) target = random.range(0, 0x1000 - size);
    this.memory = { target, linear: 0, segment };
  }

  /** The ModRM (and SIB and displacement) bytes for the chosen memory operand. */
  encodeMemory(reg: number): number[] {
    const memory = this.memory!;
    for (let attempt = 0; attempt < 40; attempt++) {
      const encoded = this.a16 ? this.tryMemory16(reg, memory) : this.tryMemory32(reg, memory);
      if (encoded) return encoded;
    }
    throw new InvalidCase("no addressing form avoids the reserved registers");
  }

  private segmentFor(defaultSegment: number, memory: MemoryOperand): number {
    return memory.segment >= 0 ? memory.segment : defaultSegment;
  }

  /** Offset inside the segment that reaches the target. */
  private segmentOffset(segment: number, memory: MemoryOperand): number {
    const base = segment === SEG_CS && this.mode === Mode.Bits16 ? CODE_BASE : DATA_BASE;
    const linear = base + memory.target;
    memory.linear = linear;
    return (linear - this.bases[segment]) >>> 0;
  }

  private tryMemory16(reg: number, memory: MemoryOperand): number[] | null {
    const random = this.random;
    const mod = random.below(3);
    const rm = random.below(8);
    // SDM vol. 2A table 2-1.
    const pairs: number[][] = [
      [EBX, ESI],
      [EBX, EDI],
      [EBP, ESI],
      [EBP, EDI],
      [ESI],
      [EDI],
      mod === 0 ? [] : [EBP],
      [EBX],
    ];
    const used = pairs[rm];
    if (used.some((r) => this.reserved & (1 << r))) return null;
    const defaultSegment = used[0] === EBP ? SEG_SS : SEG_DS;
    const segment = this.segmentFor(defaultSegment, memory);
    if (this.mode === Mode.Bits32 && this.bases[segment] === 0) return null;
    const offset = this.segmentOffset(segment, memory);
    if (offset > 0xffff) return null;
    const bytes = [(mod << 6) | (reg << 3) | rm];
    let disp = 0;
    if (mod === 1) {
      disp = random.range(-128, 127);
      bytes.push(disp & 0xff);
    } else if (mod === 2 || (mod === 0 && rm === 6)) {
      disp = mod === 0 && rm === 6 ? offset : random.below(0x10000);
      bytes.push(disp & 0xff, (disp >>> 8) & 0xff);
    }
    if (used.length === 2) {
      const index = random.u32();
      this.regs[used[1]] = index;
      this.setReg(used[0], 2, offset - disp - (index & 0xffff));
    } else if (used.length === 1) {
      this.setReg(used[0], 2, offset - disp);
    }
    return bytes;
  }

  private tryMemory32(reg: number, memory: MemoryOperand): number[] | null {
    const random = this.random;
    const mod = random.below(3);
    let rm = random.below(8);
    if (random.chance(0.4)) rm = 4;
    return this.encodeMemory32(reg, memory, mod, rm, rm === 4 ? random.below(256) : -1);
  }

  /** Solves one 32-bit addressing form (SDM vol. 2A tables 2-2 and 2-3); null if impossible. */
  encodeMemory32(
    reg: number,
    memory: MemoryOperand,
    mod: number,
    rm: number,
    sib: number,
  ): number[] | null {
    const random = this.random;
    let base = rm;
    let index = -1;
    let scale = 1;
    if (rm === 4) {
      scale = 1 << (sib >>> 6);
      index = (sib >>> 3) & 7;
      base = sib & 7;
      if (index === 4) index = -1;
    }
    const dispOnlyBase = base === 5 && mod === 0;
    if (dispOnlyBase) base = -1;
    if (base >= 0 && base !== ESP && this.reserved & (1 << base)) return null;
    if (index >= 0 && this.reserved & (1 << index)) return null;
    const defaultSegment = base === ESP || base === EBP ? SEG_SS : SEG_DS;
    const segment = this.segmentFor(defaultSegment, memory);
    const bytes = [(mod << 6) | (reg << 3) | rm];
    if (rm === 4) bytes.push(sib);
    let disp = 0;
    const dispBytes = mod === 1 ? 1 : mod === 2 || dispOnlyBase ? 4 : 0;
    if (dispBytes === 1) disp = random.range(-128, 127);
    else if (dispBytes === 4)
      disp = random.chance(0.5) ? random.u32() | 0 : random.range(-0x1000, 0x1000);
    let offset = this.segmentOffset(segment, memory);
    if (base === ESP) {
      // ESP's value is fixed (the stack): move the target so the index divides.
      const espValue = this.regs[ESP];
      if (index < 0) {
        disp = (offset - espValue) | 0;
        if (dispBytes === 1 && (disp < -128 || disp > 127)) return null;
        if (dispBytes === 0 && disp !== 0) return null;
      } else {
        let rest = (offset - espValue - disp) >>> 0;
        const adjust = rest % scale;
        memory.target -= adjust;
        offset = this.segmentOffset(segment, memory);
        rest -= adjust;
        this.regs[index] = (rest / scale) >>> 0;
      }
    } else if (base >= 0 && index === base) {
      const factor = scale + 1;
      let rest = (offset - disp) >>> 0;
      const adjust = rest % factor;
      memory.target -= adjust;
      offset = this.segmentOffset(segment, memory);
      rest -= adjust;
      this.regs[base] = (rest / factor) >>> 0;
    } else if (base >= 0) {
      let indexPart = 0;
      if (index >= 0) {
        this.regs[index] = random.chance(0.5) ? random.range(0, 0x400) : random.u32();
        indexPart = Math.imul(this.regs[index], scale);
      }
      this.regs[base] = (offset - disp - indexPart) >>> 0;
    } else if (index >= 0) {
      // [index*scale + disp32]
      this.regs[index] = random.chance(0.5) ? random.range(0, 0x400) : random.u32();
      disp = (offset - Math.imul(this.regs[index], scale)) | 0;
    } else {
      disp = offset | 0;
    }
    for (let i = 0; i < dispBytes; i++) bytes.push((disp >>> (8 * i)) & 0xff);
    if (memory.target < 0) return null;
    return bytes;
  }

  code(): Uint8Array {
    const all = [...this.prefixes, ...this.bytes];
    if (all.length > CODE_MAX) throw new InvalidCase("too long");
    return Uint8Array.from(all);
  }

  /** Linear address of the first byte after the instruction (its EIP as an offset in CS). */
  nextIp(): number {
    return CODE_OFFSET + this.prefixes.length + this.bytes.length;
  }

  /** A code-page offset as an EIP value in this mode. */
  codeAddress(pageOffset: number): number {
    return this.mode === Mode.Bits32 ? CODE_BASE + pageOffset : pageOffset;
  }

  ignoreFlags(bits: number, why: string): void {
    if ((this.mask.flags | RF) !== (this.mask.flags | bits | RF)) this.mask.reasons.push(why);
    this.mask.flags |= bits;
  }
}

interface Variant {
  mode: Mode;
  o16: boolean;
  a16: boolean;
  memory: boolean | null;
  lock: boolean;
  /** String prefix: 0, 0xf3 or 0xf2. */
  rep: number;
}

function variantName(entry: Entry, v: Variant): string {
  const parts = [v.mode === Mode.Bits32 ? "c32" : "c16"];
  if (v.lock) parts.push("lock");
  if (v.rep) parts.push(v.rep === 0xf3 ? "rep" : "repne");
  if (hasOperandSize(entry)) parts.push(v.o16 ? "o16" : "o32");
  if (v.memory !== false && (v.memory || hasAddressSize(entry))) parts.push(v.a16 ? "a16" : "a32");
  const opcode = entry.opcode.map((b) => b.toString(16).padStart(2, "0")).join(" ");
  parts.push(entry.ext >= 0 ? `${opcode}/${entry.ext}` : opcode);
  if (v.memory !== null) parts.push(v.memory ? "mem" : "reg");
  return parts.join(" ");
}

function isString(entry: Entry): boolean {
  return /^(movs|cmps|stos|lods|scas|ins|outs)[bd]$/.test(entry.name);
}

/** Every variant of an entry that behaves differently. */
function variants(entry: Entry): Variant[] {
  const out: Variant[] = [];
  const rm = modrmOperand(entry);
  const memoryChoices: (boolean | null)[] =
    rm === undefined || rm === "Rd"
      ? [null]
      : entry.tags.has("noreg") || rm[0] === "M"
        ? [true]
        : entry.tags.has("nomem")
          ? [false]
          : [false, true];
  for (const mode of [Mode.Bits32, Mode.Bits16]) {
    for (const o16 of hasOperandSize(entry) ? [false, true] : [mode === Mode.Bits16]) {
      if (mode === Mode.Bits32 && o16 && entry.tags.has("branch")) continue;
      for (const memory of memoryChoices) {
        const addressChoices =
          memory || hasAddressSize(entry) ? [false, true] : [mode === Mode.Bits16];
        for (const a16Flip of addressChoices) {
          const a16 = memory || hasAddressSize(entry) ? a16Flip : mode === Mode.Bits16;
          const reps = isString(entry)
            ? /^(cmps|scas)/.test(entry.name)
              ? [0, 0xf3, 0xf2]
              : [0, 0xf3]
            : [0];
          for (const rep of reps) {
            out.push({ mode, o16: o16, a16, memory, lock: false, rep });
            if (memory && entry.tags.has("lock"))
              out.push({ mode, o16, a16, memory, lock: true, rep });
          }
        }
        if (memory === false && entry.tags.has("lock")) {
          // LOCK on a register destination: #UD (SDM vol. 2A LOCK).
          out.push({ mode, o16, a16: mode === Mode.Bits16, memory, lock: true, rep: 0 });
        }
      }
    }
  }
  return out;
}

const SIZE: Record<string, number> = { b: 1, w: 2, d: 4 };

function operandSize(token: string, b: Builder): number {
  const s = token[token.length - 1];
  if (s === "v" || s === "z") return b.operandBytes;
  return SIZE[s] ?? b.operandBytes;
}

/** A shift or rotate count biased to the interesting small values. */
function shiftCount(random: Random): number {
  return random.chance(0.6) ? random.range(0, 33) : random.below(256);
}

/** Builds one case of `entry` in `variant`. */
function buildCase(entry: Entry, v: Variant, random: Random, pristine: Uint8Array): GeneratedCase {
  const b = new Builder(random, pristine, v.mode, v.o16, v.a16);
  const name = entry.name;
  const ops = entry.operands;
  const size = ops.length ? operandSize(ops[0], b) : b.operandBytes;
  const native16 = v.mode === Mode.Bits16;
  if (v.lock) b.prefixes.push(0xf0);
  if (v.rep) b.prefixes.push(v.rep);
  if (v.o16 !== native16) b.prefixes.push(0x66);
  if (v.a16 !== native16) b.prefixes.push(0x67);

  const regToken = ops.find((o) => o[0] === "G" || o === "Sw");
  const rmToken = modrmOperand(entry);
  let regField = entry.ext >= 0 ? entry.ext : random.below(8);
  if (regToken === "Sw") regField = entry.ext;

  preConstraints(entry, b, regField);

  // ModRM.
  if (hasModrm(entry)) {
    const rmSize = rmToken ? memorySize(rmToken, b) : 4;
    if (v.memory) {
      let low = 0x10;
      let high = DATA_SIZE - 0x10;
      if (/^bt[src]?$/.test(name) && ops[1] === "Gv") {
        low = 0x800;
        high = 0x1800;
      }
      b.chooseMemory(rmSize, low, high);
      const modrm = b.encodeMemory(regField);
      if (b.segmentOverride >= 0) b.prefixes.unshift(SEGMENT_PREFIX[b.segmentOverride]);
      b.bytes.push(...entry.opcode, ...modrm);
    } else {
      b.eRegister = random.below(8);
      b.bytes.push(...entry.opcode, 0xc0 | (regField << 3) | b.eRegister);
    }
  } else {
    b.bytes.push(...entry.opcode);
    if (ops[0]?.[0] === "O") {
      // moffs: the displacement is the whole address (SDM vol. 2B MOV A0-A3).
      b.chooseMemory(operandSize(ops[0], b));
      if (b.segmentOverride >= 0) b.prefixes.unshift(SEGMENT_PREFIX[b.segmentOverride]);
      pushAddress(b);
    } else if (ops[1]?.[0] === "O") {
      b.chooseMemory(operandSize(ops[1], b));
      if (b.segmentOverride >= 0) b.prefixes.unshift(SEGMENT_PREFIX[b.segmentOverride]);
      pushAddress(b);
    }
  }
  // Immediates.
  for (const token of ops) {
    if (token[0] === "I") immediate(entry, token, b, regField);
    else if (token[0] === "J") relative(token, b);
    else if (token === "Ap") farPointer(b);
  }
  postConstraints(entry, b, v, regField, size);
  const code = b.code();
  if (b.regs[ESP] === 0) throw new InvalidCase("esp");
  // Kumo enters 16-bit cases by IRET to a 16-bit stack segment, which loads
  // only SP: ESP[31:16] keep the ring-0 value, as on hardware (the behaviour
  // Linux's ESPFIX works around, arch/x86/entry/entry_32.S). The host loads
  // ESP with MOV. So 16-bit cases start with ESP[31:16] = 0 on both sides.
  if (v.mode === Mode.Bits16 && b.regs[ESP] >>> 16 !== 0) throw new InvalidCase("esp high");
  return {
    regs: b.regs,
    eflags: b.eflags,
    mode: v.mode,
    code,
    patch: Uint8Array.from(b.patch),
    patchOffset: b.patchOffset,
    form: variantName(entry, v),
    text: `${name} ${ops.join(",")}`,
    mask: b.mask,
    qemuUnsafe: b.qemuUnsafe,
  };
}

function memorySize(token: string, b: Builder): number {
  switch (token) {
    case "Mp":
      return b.operandBytes + 2;
    case "Ma":
      return b.operandBytes * 2;
    case "Mq":
      return 8;
    case "Ms":
      return 6;
    case "M":
      return 4;
    default:
      return operandSize(token, b);
  }
}

function pushAddress(b: Builder): void {
  const m = b.memory!;
  const segment = m.segment >= 0 ? m.segment : SEG_DS;
  const offset = (DATA_BASE + m.target - b.bases[segment]) >>> 0;
  if (b.a16 && offset > 0xffff) throw new InvalidCase("moffs16");
  m.linear = DATA_BASE + m.target;
  const n = b.a16 ? 2 : 4;
  for (let i = 0; i < n; i++) b.bytes.push((offset >>> (8 * i)) & 0xff);
}

function immediate(entry: Entry, token: string, b: Builder, regField: number): void {
  const random = b.random;
  let n = token === "Ib" || token === "Ibs" ? 1 : token === "Iw" ? 2 : b.operandBytes;
  let value = random.interesting();
  const name = entry.name;
  if (name === "enter") {
    if (token === "Iw") value = random.range(0, 0x200);
    else value = random.chance(0.5) ? random.range(0, 3) : random.below(256);
  } else if (name === "int") {
    // int 0x80 enters the host kernel; everything else is a #GP or a DPL-3 gate.
    do value = random.below(256);
    while (value === 0x80);
  } else if (/^(rol|ror|rcl|rcr|shl|shr|sar|shld|shrd)$/.test(name) && n === 1) {
    value = shiftCount(random);
  } else if (name === "aam") {
    value = random.chance(0.15) ? 0 : random.below(256);
  } else if (name === "ret" || name === "retf") {
    value = random.chance(0.5) ? random.range(0, 16) * 2 : random.range(0, 0x100);
  }
  void regField;
  if (token === "Iv") n = b.operandBytes;
  for (let i = 0; i < n; i++) b.bytes.push((value >>> (8 * i)) & 0xff);
}

/** A relative branch whose target is a `hlt` of the code page, never inside the instruction. */
function relative(token: string, b: Builder): void {
  const random = b.random;
  const width = token === "Jb" ? 1 : b.operandBytes;
  const length = b.prefixes.length + b.bytes.length + width;
  const next = CODE_OFFSET + length;
  let target: number;
  do target = width === 1 ? next + random.range(-128, 127) : random.range(0, 0xfff);
  while (target >= CODE_OFFSET && target < next);
  const disp = target - next;
  for (let i = 0; i < width; i++) b.bytes.push((disp >>> (8 * i)) & 0xff);
}

/**
 * A far target: one of the selectors, with an offset that lands on a `hlt`
 * of the code page when the selector is one of the two code segments.
 */
function farTarget(b: Builder): { offset: number; selector: number } {
  const random = b.random;
  let selector = random.chance(0.6) ? random.pick([0x23, 0x07]) : random.pick(SELECTORS);
  if (b.o16 && (selector & ~3) === 0x20) selector = 0x07; // a 16-bit offset cannot reach the page in flat CS
  const page = random.range(0, 0xfff);
  const offset = (selector & ~3) === 0x20 ? CODE_BASE + page : page;
  return { offset, selector };
}

function farPointer(b: Builder): void {
  const { offset, selector } = farTarget(b);
  for (let i = 0; i < b.operandBytes; i++) b.bytes.push((offset >>> (8 * i)) & 0xff);
  b.bytes.push(selector & 0xff, selector >>> 8);
}

/** String instruction registers: pointers into the data region and a small count. */
function stringRegisters(b: Builder): void {
  const random = b.random;
  const sourceSegment = b.segmentOverride >= 0 ? b.segmentOverride : SEG_DS;
  const pointer = (segment: number) => {
    const offset = (DATA_BASE + random.range(0x100, 0x1f00) - b.bases[segment]) >>> 0;
    return b.a16 ? ((random.u32() & 0xffff0000) | offset) >>> 0 : offset;
  };
  b.regs[ESI] = pointer(sourceSegment);
  b.regs[EDI] = pointer(SEG_ES);
  const count = random.chance(0.1) ? 0 : random.range(1, 16);
  b.regs[ECX] = b.a16 ? ((random.u32() & 0xffff0000) | count) >>> 0 : count;
}

function preConstraints(entry: Entry, b: Builder, regField: number): void {
  const random = b.random;
  const name = entry.name;
  const ops = entry.operands;
  if (ops.includes("CL")) {
    b.setReg(ECX, 1, shiftCount(random));
    b.reserved |= 1 << ECX;
  }
  if (/^(div|idiv|mul|imul)$/.test(name) && ops.length === 1) b.reserved |= (1 << EAX) | (1 << EDX);
  if (name === "cmpxchg8b") b.reserved |= 0x0f;
  if (/^cmpxchg$/.test(name)) b.reserved |= 1 << EAX;
  if (/^bt[src]?$/.test(name) && ops[1] === "Gv") {
    b.reserved |= 1 << regField;
    // Bit offsets reach ±0x800 bytes around the operand (SDM vol. 2A BT: bit base and offset).
    // ESP in 16-bit code keeps its upper half 0 (see the check in buildCase).
    const bits =
      regField === ESP && b.mode === Mode.Bits16
        ? b.random.range(0, 0x3f00)
        : b.random.range(-0x3f00, 0x3f00);
    b.setReg(regField, b.operandBytes, bits);
  }
  if (name === "leave" || name === "enter") {
    b.reserved |= 1 << EBP;
    const frame = b.stackOffset() + b.random.range(-0x100, 0x100);
    const value = frame + DATA_BASE - b.bases[SEG_SS];
    if (b.stack16) b.setReg(EBP, 2, value);
    else b.regs[EBP] = value >>> 0;
  }
  if (name === "xlat") {
    b.reserved |= 1 << EBX;
  }
}

const ALL_REGS = [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI];

function postConstraints(
  entry: Entry,
  b: Builder,
  v: Variant,
  regField: number,
  size: number,
): void {
  const random = b.random;
  const name = entry.name;
  const ops = entry.operands;
  const opBytes = b.operandBytes;
  const stackBytes = opBytes;
  const top = b.stackOffset();

  if (isString(entry)) {
    if (b.segmentOverride < 0 && random.chance(0.3)) {
      b.segmentOverride = random.below(6);
      if (v.a16 && v.mode === Mode.Bits32 && b.bases[b.segmentOverride] === 0)
        b.segmentOverride = SEG_FS;
      b.prefixes.unshift(SEGMENT_PREFIX[b.segmentOverride]);
    } else if (v.a16 && v.mode === Mode.Bits32) {
      b.segmentOverride = SEG_FS;
      b.prefixes.unshift(SEGMENT_PREFIX[SEG_FS]);
    }
    stringRegisters(b);
    if (b.segmentOverride === SEG_CS) {
      // CS-relative source: point it at the code page (16-bit CS) or anywhere flat.
      const page = random.range(0, 0xf00);
      b.regs[ESI] = b.mode === Mode.Bits16 ? page : CODE_BASE + page;
    }
  }
  if (name === "xlat") {
    const segment = b.segmentOverride >= 0 ? b.segmentOverride : SEG_DS;
    if (v.a16 && v.mode === Mode.Bits32 && b.bases[segment] === 0) {
      b.segmentOverride = SEG_GS;
      b.prefixes.unshift(SEGMENT_PREFIX[SEG_GS]);
    }
    const seg = b.segmentOverride >= 0 ? b.segmentOverride : SEG_DS;
    const base = (DATA_BASE + random.range(0x10, 0x1e00) - b.bases[seg]) >>> 0;
    if (v.a16) b.setReg(EBX, 2, base);
    else b.regs[EBX] = base;
  }
  // Division: make most quotients fit so that results, not only #DE, are compared.
  if (/^(div|idiv)$/.test(name)) {
    const divisor = b.readE(size);
    if (random.chance(0.75) && divisor !== 0) {
      if (name === "div") {
        const high = random.below(Math.min(divisor, 0x7fffffff));
        if (size === 1) b.setReg(EAX, 2, ((high & 0xff) << 8) | random.below(256));
        else b.setReg(EDX, size, high);
      } else {
        const low = random.interesting();
        const signExtension =
          (size === 4 ? low | 0 : size === 2 ? (low << 16) >> 16 : (low << 24) >> 24) < 0 ? -1 : 0;
        if (size === 1) b.setReg(EAX, 2, (signExtension & 0xff00) | (low & 0xff));
        else {
          b.setReg(EAX, size, low);
          b.setReg(EDX, size, signExtension);
        }
      }
    }
    b.ignoreFlags(ARITHMETIC, "DIV/IDIV: CF OF SF ZF AF PF undefined (SDM vol. 2A DIV, IDIV)");
  }
  if (name === "aam") b.ignoreFlags(OF | AF | CF, "AAM: OF AF CF undefined (SDM vol. 2A AAM)");
  if (name === "aad") b.ignoreFlags(OF | AF | CF, "AAD: OF AF CF undefined (SDM vol. 2A AAD)");
  if (name === "aaa" || name === "aas") {
    b.ignoreFlags(OF | SF | ZF | PF, `${name.toUpperCase()}: OF SF ZF PF undefined (SDM vol. 2A)`);
  }
  if (name === "daa" || name === "das")
    b.ignoreFlags(OF, `${name.toUpperCase()}: OF undefined (SDM vol. 2A)`);
  if (/^(and|or|xor|test)$/.test(name))
    b.ignoreFlags(AF, "logic ops: AF undefined (SDM vol. 2A AND/OR/XOR/TEST)");
  if (name === "mul" || name === "imul")
    b.ignoreFlags(SF | ZF | AF | PF, "MUL/IMUL: SF ZF AF PF undefined (SDM vol. 2A)");
  if (/^bt[src]?$/.test(name))
    b.ignoreFlags(OF | SF | AF | PF, "BT*: OF SF AF PF undefined (SDM vol. 2A BT)");
  if (name === "bsf" || name === "bsr") {
    b.ignoreFlags(CF | OF | SF | AF | PF, "BSF/BSR: CF OF SF AF PF undefined (SDM vol. 2A BSF)");
    if (b.readE(size) === 0) {
      b.mask.regs[regField] |= size === 2 ? 0xffff : 0xffffffff;
      b.mask.reasons.push("BSF/BSR: destination undefined when the source is 0 (SDM vol. 2A BSF)");
    }
  }
  if (name === "bsf" || name === "bsr") {
    if (random.chance(0.2)) b.writeE(size, 0);
  }
  if (/^(rol|ror|rcl|rcr|shl|shr|sar)$/.test(name)) shiftMasks(entry, b, size);
  if (name === "shld" || name === "shrd") {
    const count = (ops[2] === "CL" ? b.regs[ECX] : b.bytes[b.bytes.length - 1]) & 0x1f;
    if (count > 1)
      b.ignoreFlags(OF, "SHLD/SHRD: OF undefined for counts above 1 (SDM vol. 2B SHLD)");
    if (count !== 0) b.ignoreFlags(AF, "SHLD/SHRD: AF undefined (SDM vol. 2B SHLD)");
    if (count > size * 8) {
      b.ignoreFlags(
        ARITHMETIC,
        "SHLD/SHRD: count above the operand size, flags undefined (SDM vol. 2B SHLD)",
      );
      if (b.memory) for (let i = 0; i < size; i++) b.mask.memory.push(b.memory.target + i);
      else b.mask.regs[b.eRegister] |= 0xffff;
      b.mask.reasons.push("SHLD/SHRD: result undefined for counts above the operand size");
    }
  }
  if (name.startsWith("bswap") && v.o16) {
    b.mask.regs[entry.opcode[1] - 0xc8] |= 0xffff;
    b.mask.reasons.push("BSWAP r16: result undefined (SDM vol. 2A BSWAP)");
  }
  if (name === "cmpxchg" && random.chance(0.5)) b.setReg(EAX, size, b.readE(size));
  if (name === "cmpxchg8b" && random.chance(0.5)) {
    const m = b.memory!;
    b.regs[EAX] = b.readData(m.target, 4);
    b.regs[EDX] = b.readData(m.target + 4, 4);
  }
  if (name === "bound") {
    const index = b.getReg(regField, opBytes);
    const signed = opBytes === 2 ? (index << 16) >> 16 : index | 0;
    if (random.chance(0.6)) {
      const lower = signed - random.range(0, 100);
      const upper = signed + random.range(0, 100);
      b.writeData(b.memory!.target, lower, opBytes);
      b.writeData(b.memory!.target + opBytes, upper, opBytes);
    }
  }
  if (/^(lar|lsl|verr|verw|lldt|ltr)$/.test(name) || (name === "mov" && ops[0] === "Sw")) {
    const selector = random.pick(SELECTORS);
    b.writeE(2, selector);
  }
  if (name === "lar") {
    // "masked by 00FxFF00H": bits 16-19 undefined (SDM vol. 2A LAR).
    b.mask.regs[regField] |= 0x000f0000;
    b.mask.reasons.push("LAR: bits 19:16 of the destination undefined (SDM vol. 2A LAR)");
  }
  if (name === "icebp") {
    // INT1 is a trap: EIP after the instruction (SDM vol. 3A 17.3.1.2). A
    // hypervisor under the host may re-inject it as a fault (KVM on AMD SVM
    // reports the icebp's own address), so only the host's EIP is suspect.
    b.mask.eipSlack = 1;
    b.mask.reasons.push("ICEBP: EIP after INT1 depends on the host's hypervisor");
  }
  if (name === "arpl" && random.chance(0.5)) b.writeE(2, random.pick(SELECTORS));
  if (/^pop (es|ss|ds|fs|gs)$/.test(name)) b.writeData(top, random.pick(SELECTORS), 2);
  if (/^push (es|cs|ss|ds|fs|gs)$/.test(name) && !b.o16) {
    // A 32-bit push of a segment register may write only 16 bits (SDM vol. 2B PUSH).
    const slot = top - 4;
    b.mask.memory.push(slot + 2, slot + 3);
    b.mask.reasons.push(
      "PUSH Sreg with 32-bit operand size: upper 16 bits of the slot implementation-specific",
    );
  }
  if (name === "popf") {
    const value = random.u32() & ~(TF | AC | NT);
    if (value & IOPL) b.qemuUnsafe = true;
    b.writeData(top, value, stackBytes);
  }
  if (/^(les|lds|lss|lfs|lgs)$/.test(name) || (entry.tags.has("far") && ops[0] === "Mp")) {
    const m = b.memory!;
    const { offset, selector } = farTarget(b);
    b.writeData(m.target, offset, opBytes);
    b.writeData(m.target + opBytes, selector, 2);
  }
  if (name === "ret") {
    b.writeData(top, b.codeAddress(random.range(0, 0xfff)), stackBytes);
  }
  if (name === "retf") {
    const { offset, selector } = farTarget(b);
    b.writeData(top, offset, stackBytes);
    b.writeData(top + stackBytes, selector, 2);
  }
  if (name === "iret" || /^bt[src]$/.test(name)) b.qemuUnsafe = true;
  if (name === "iret") {
    const { offset, selector } = farTarget(b);
    b.writeData(top, offset, stackBytes);
    b.writeData(top + stackBytes, selector, 2);
    const flags = random.u32() & ~(TF | AC | NT);
    if (flags & IOPL) b.qemuUnsafe = true;
    b.writeData(top + 2 * stackBytes, flags, stackBytes);
    // IRET with NT set is a task return in legacy mode and #GP in the host's long mode.
    b.eflags &= ~NT;
  }
  if ((name === "call" || name === "jmp") && ops[0] === "Ev") {
    // Through CS in 16-bit code the target comes from the code page (0xf4f4):
    // inside the 64 KiB limit but unmapped on the host. The 32-bit form reads
    // 0xf4f4f4f4, beyond the limit, a #GP(0) both machines must raise.
    if (b.memory?.segment === SEG_CS && b.mode === Mode.Bits16 && b.o16)
      throw new InvalidCase("cs");
    b.writeE(opBytes, b.codeAddress(random.range(0, 0xfff)));
  }
  if (/^(loop|loope|loopne|jecxz)$/.test(name) && random.chance(0.5)) {
    b.setReg(ECX, v.a16 ? 2 : 4, random.range(0, 2));
  }
  if (name === "into" && random.chance(0.5)) b.eflags |= OF;
  // A special value in a memory operand now and then (edges of the flags).
  if (b.memory && b.patch.length === 0 && random.chance(0.3) && !/^(bt|lea|invlpg)/.test(name)) {
    b.writeData(b.memory.target, random.interesting(), Math.min(4, size));
  }
  void ALL_REGS;
  void IF;
}

/** Undefined flags of shifts and rotates (SDM vol. 2B SAL/SAR/SHL/SHR, vol. 2B RCL/RCR/ROL/ROR). */
function shiftMasks(entry: Entry, b: Builder, size: number): void {
  const name = entry.name;
  const ops = entry.operands;
  const raw =
    ops[1] === "1" ? 1 : ops[1] === "CL" ? b.regs[ECX] & 0xff : b.bytes[b.bytes.length - 1];
  const count = raw & 0x1f;
  if (count === 0) return;
  if (/^(shl|shr|sar)$/.test(name)) {
    b.ignoreFlags(AF, "shifts: AF undefined for a non-zero count (SDM vol. 2B SAL/SAR/SHL/SHR)");
    if (count !== 1)
      b.ignoreFlags(OF, "shifts: OF undefined for counts other than 1 (SDM vol. 2B SAL)");
    if (name !== "sar" && count >= size * 8) {
      b.ignoreFlags(
        CF,
        "SHL/SHR: CF undefined when the count is at least the operand size (SDM vol. 2B SAL)",
      );
    }
  } else if (count !== 1) {
    b.ignoreFlags(OF, "rotates: OF undefined for multi-bit rotates (SDM vol. 2B RCL/RCR/ROL/ROR)");
  }
}

export interface Suite {
  pristine: Uint8Array;
  cases: GeneratedCase[];
}

/** Generates `perForm` cases for every form of the table, plus the addressing sweep. */
export function generateSuite(seed: number, perForm: number, sweep = true, x87 = true): Suite {
  const pristine = pristineData(seed);
  const random = new Random(seed);
  const cases: GeneratedCase[] = [];
  for (const entry of TABLE) {
    for (const v of variants(entry)) {
      let made = 0;
      for (let attempt = 0; made < perForm && attempt < perForm * 20; attempt++) {
        try {
          cases.push(buildCase(entry, v, random, pristine));
          made++;
        } catch (error) {
          if (!(error instanceof InvalidCase)) throw error;
        }
      }
      if (made === 0) throw new Error(`the generator cannot build ${variantName(entry, v)}`);
    }
  }
  if (sweep) cases.push(...addressingSweep(random, pristine));
  if (x87) cases.push(...generateX87(random, pristine, perForm));
  if (x87) cases.push(...generateX87Precision(random, pristine, Math.max(2, perForm >> 1)));
  return { pristine, cases };
}

/**
 * Every ModRM/SIB addressing form with `mov r32, [m]` (loads) and `lea`, in
 * 32- and 16-bit code with both address sizes (SDM vol. 2A tables 2-1 to 2-3).
 */
function addressingSweep(random: Random, pristine: Uint8Array): GeneratedCase[] {
  const cases: GeneratedCase[] = [];
  for (const mode of [Mode.Bits32, Mode.Bits16]) {
    for (const a16 of [false, true]) {
      for (const opcode of [0x8b, 0x8d]) {
        const forms: [number, number, number][] = [];
        for (let mod = 0; mod < 3; mod++) {
          for (let rm = 0; rm < 8; rm++) {
            if (rm === 4 && !a16) for (let sib = 0; sib < 256; sib++) forms.push([mod, rm, sib]);
            else forms.push([mod, rm, -1]);
          }
        }
        for (const [mod, rm, sib] of forms) {
          for (let attempt = 0; attempt < 50; attempt++) {
            const b = new Builder(random, pristine, mode, false, a16);
            const native16 = mode === Mode.Bits16;
            if (native16) b.prefixes.push(0x66);
            if (a16 !== native16) b.prefixes.push(0x67);
            const reg = random.below(8);
            b.chooseMemory(4);
            let modrm: number[] | null;
            if (a16) {
              modrm = null;
              for (let i = 0; i < 50 && !modrm; i++) {
                const bytes = b.encodeMemory(reg);
                if (bytes[0] >>> 6 === mod && (bytes[0] & 7) === rm) modrm = bytes;
              }
            } else {
              modrm = b.encodeMemory32(reg, b.memory!, mod, rm, sib);
            }
            if (!modrm) continue;
            if (b.segmentOverride >= 0) b.prefixes.unshift(SEGMENT_PREFIX[b.segmentOverride]);
            b.bytes.push(opcode, ...modrm);
            const form = `${mode === Mode.Bits32 ? "c32" : "c16"} ${a16 ? "a16" : "a32"} ${opcode.toString(16)} mod${mod} rm${rm}${sib >= 0 ? ` sib${sib.toString(16).padStart(2, "0")}` : ""}`;
            cases.push({
              regs: b.regs,
              eflags: b.eflags,
              mode,
              code: b.code(),
              patch: Uint8Array.from(b.patch),
              patchOffset: b.patchOffset,
              form: `addressing ${form}`,
              text: opcode === 0x8b ? "mov r32, m32" : "lea r32, m",
              mask: b.mask,
            });
            break;
          }
        }
      }
    }
  }
  return cases;
}
