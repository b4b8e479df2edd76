/**
 * Table-driven IA-32 instruction decoder (Intel SDM vol. 2 chapter 2 and
 * appendix A). Its output is plain data in parallel typed arrays (opcode id,
 * prefixes, ModRM fields, effective-address form, displacement, immediates)
 * so that the interpreter decodes each instruction once and a later
 * WebAssembly tier can consume the same records.
 *
 * Opcode ids: 0x000-0x0FF one-byte opcodes, 0x100-0x1FF the 0F map.
 */

/** 0F-map opcodes (second byte) of MMX, SSE and SSE2 (SDM vol. 2D table A-3), executed by sse.ts. */
const SIMD_OPCODES = [
  0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
  0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
  0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
  0x74, 0x75, 0x76, 0x7e, 0x7f, 0xc3, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
  0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
  0xeb, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb,
  0xfc, 0xfd, 0xfe,
];
/** The SIMD opcodes with an imm8 after the ModRM operand. */
const SIMD_IMM8_OPCODES = [0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6];

/** Operand-kind properties of each opcode id (one byte per opcode). */
const MODRM = 1;
const IMM_SHIFT = 1;
const IMM_NONE = 0;
const IMM_8 = 1;
/** 16 or 32 bits by operand size. */
const IMM_V = 2;
const IMM_16 = 3;
/** `enter`: imm16 then imm8. */
const IMM_16_8 = 4;
/** moffs of `mov al/eax, [moffs]`: 16 or 32 bits by address size. */
const IMM_MOFFS = 5;
/** Far pointer: offset (16/32 by operand size) then selector. */
const IMM_FAR = 6;
/** Group 3 (F6/F7): an immediate only for /0 and /1 (`test`). */
const IMM_GROUP3 = 7;
const INVALID = 1 << 4;

/** Decoded-instruction info bits. */
export const Info = {
  /** Operand size is 16 bits (else 32; 8-bit forms are in the opcode). */
  O16: 1 << 0,
  /** Address size is 16 bits. */
  A16: 1 << 1,
  /** F3 prefix (rep/repe). */
  REP: 1 << 2,
  /** F2 prefix (repne). */
  REPNE: 1 << 3,
  LOCK: 1 << 4,
  /** The ModRM operand is in memory (mod != 3). */
  MEM: 1 << 5,
  /** A segment-override prefix was present. */
  SEG_OVERRIDE: 1 << 6,
  /** The opcode is undefined: raise #UD. */
  INVALID: 1 << 7,
  /** Bits 8-10: segment of the memory operand (default or override). */
  SEG_SHIFT: 8,
} as const;

function buildTable(): Uint8Array {
  const t = new Uint8Array(512);
  const set = (from: number, to: number, value: number) => {
    for (let i = from; i <= to; i++) t[i] = value;
  };
  const imm = (kind: number) => kind << IMM_SHIFT;
  // One-byte map (SDM vol. 2 table A-2).
  for (let row = 0; row < 0x40; row += 8) {
    set(row, row + 3, MODRM);
    t[row + 4] = imm(IMM_8);
    t[row + 5] = imm(IMM_V);
  }
  t[0x62] = MODRM; // bound
  t[0x63] = MODRM; // arpl
  t[0x68] = imm(IMM_V);
  t[0x69] = MODRM | imm(IMM_V);
  t[0x6a] = imm(IMM_8);
  t[0x6b] = MODRM | imm(IMM_8);
  set(0x70, 0x7f, imm(IMM_8));
  t[0x80] = MODRM | imm(IMM_8);
  t[0x81] = MODRM | imm(IMM_V);
  t[0x82] = MODRM | imm(IMM_8);
  t[0x83] = MODRM | imm(IMM_8);
  set(0x84, 0x8f, MODRM);
  t[0x9a] = imm(IMM_FAR);
  set(0xa0, 0xa3, imm(IMM_MOFFS));
  t[0xa8] = imm(IMM_8);
  t[0xa9] = imm(IMM_V);
  set(0xb0, 0xb7, imm(IMM_8));
  set(0xb8, 0xbf, imm(IMM_V));
  t[0xc0] = MODRM | imm(IMM_8);
  t[0xc1] = MODRM | imm(IMM_8);
  t[0xc2] = imm(IMM_16);
  t[0xc4] = MODRM;
  t[0xc5] = MODRM;
  t[0xc6] = MODRM | imm(IMM_8);
  t[0xc7] = MODRM | imm(IMM_V);
  t[0xc8] = imm(IMM_16_8);
  t[0xca] = imm(IMM_16);
  t[0xcd] = imm(IMM_8);
  set(0xd0, 0xd3, MODRM);
  t[0xd4] = imm(IMM_8);
  t[0xd5] = imm(IMM_8);
  set(0xd8, 0xdf, MODRM);
  set(0xe0, 0xe7, imm(IMM_8));
  t[0xe8] = imm(IMM_V);
  t[0xe9] = imm(IMM_V);
  t[0xea] = imm(IMM_FAR);
  t[0xeb] = imm(IMM_8);
  t[0xf6] = MODRM | imm(IMM_GROUP3);
  t[0xf7] = MODRM | imm(IMM_GROUP3);
  t[0xfe] = MODRM;
  t[0xff] = MODRM;
  // Two-byte map (SDM vol. 2 table A-3), i686 integer subset plus x87/FXSR helpers.
  set(0x100, 0x1ff, INVALID);
  set(0x100, 0x103, MODRM);
  t[0x106] = 0; // clts
  t[0x108] = 0; // invd
  t[0x109] = 0; // wbinvd
  t[0x10b] = 0; // ud2 (raises #UD by itself)
  t[0x10d] = MODRM; // prefetch/nop
  set(0x118, 0x11f, MODRM); // hint nops
  set(0x120, 0x123, MODRM); // mov cr/dr
  set(0x130, 0x135, 0); // wrmsr rdtsc rdmsr rdpmc sysenter sysexit
  set(0x140, 0x14f, MODRM); // cmovcc
  set(0x180, 0x18f, imm(IMM_V)); // jcc rel16/32
  set(0x190, 0x19f, MODRM); // setcc
  t[0x1a0] = 0;
  t[0x1a1] = 0;
  t[0x1a2] = 0; // cpuid
  t[0x1a3] = MODRM;
  t[0x1a4] = MODRM | imm(IMM_8);
  t[0x1a5] = MODRM;
  t[0x1a8] = 0;
  t[0x1a9] = 0;
  t[0x1ab] = MODRM;
  t[0x1ac] = MODRM | imm(IMM_8);
  t[0x1ad] = MODRM;
  t[0x1ae] = MODRM; // group 15: fxsave fxrstor ... clflush
  t[0x1af] = MODRM;
  set(0x1b0, 0x1b7, MODRM);
  t[0x1b9] = MODRM; // ud1
  t[0x1ba] = MODRM | imm(IMM_8);
  set(0x1bb, 0x1bf, MODRM);
  t[0x1c0] = MODRM;
  t[0x1c1] = MODRM;
  t[0x1c7] = MODRM; // cmpxchg8b
  set(0x1c8, 0x1cf, 0); // bswap
  // MMX, SSE, SSE2 (sse.ts): ModRM forms, some with imm8.
  for (const op of SIMD_OPCODES) t[0x100 | op] = MODRM;
  for (const op of SIMD_IMM8_OPCODES) t[0x100 | op] = MODRM | imm(IMM_8);
  t[0x177] = 0; // emms
  return t;
}

/** Per-opcode operand properties; exported for tools (a compiler tier, tests). */
export const OPCODE_PROPERTIES: Uint8Array = buildTable();

/**
 * Decoded instructions, one slot per cache line, indexed by guest-physical
 * address. A slot is valid when `tag` equals the physical address of the
 * instruction (with bit 31 set for 16-bit code); the CPU drops the slots of
 * a page when the page is written. The code size (`decodeInstruction`'s
 * `code32`) is the decoder's only mode input, so the tag is the whole mode
 * key: real mode, virtual-8086 mode and 16-bit protected mode share
 * entries, 32-bit code misses them, and a mode switch clears nothing.
 */
export class DecodedInstructions {
  readonly size: number;
  readonly tag: Int32Array;
  /** The instruction's first four bytes when decoded (checked on every hit). */
  readonly firstWord: Int32Array;
  readonly op: Uint16Array;
  readonly length: Uint8Array;
  readonly info: Uint16Array;
  readonly modrm: Uint8Array;
  /** Base register of the memory operand, -1 for none. */
  readonly base: Int8Array;
  /** Index register of the memory operand, -1 for none. */
  readonly index: Int8Array;
  readonly scale: Uint8Array;
  readonly displacement: Int32Array;
  readonly immediate: Int32Array;
  /** Second immediate: far-pointer selector, `enter` nesting level. */
  readonly immediate2: Int32Array;

  constructor(size: number) {
    this.size = size;
    this.tag = new Int32Array(size).fill(EMPTY_TAG);
    this.firstWord = new Int32Array(size);
    this.op = new Uint16Array(size);
    this.length = new Uint8Array(size);
    this.info = new Uint16Array(size);
    this.modrm = new Uint8Array(size);
    this.base = new Int8Array(size);
    this.index = new Int8Array(size);
    this.scale = new Uint8Array(size);
    this.displacement = new Int32Array(size);
    this.immediate = new Int32Array(size);
    this.immediate2 = new Int32Array(size);
  }

  clear(): void {
    this.tag.fill(EMPTY_TAG);
  }
}

/**
 * Tag of an empty slot: the key of physical 0x7fffffff in 32-bit code, an
 * address no cached instruction can have (it would cross a page end).
 */
export const EMPTY_TAG = 0x7fffffff;

/** Where the decoder reads instruction bytes (the CPU's code fetch, which may fault). */
export interface CodeFetcher {
  /** Byte at `offset` from the start of the instruction. */
  fetchCodeByte(offset: number): number;
}

/** Raised (as a return code) when an instruction is longer than 15 bytes: #GP(0) (SDM vol. 2 2.3.11). */
export const DECODE_TOO_LONG = -1;

const SEG_ES = 0;
const SEG_CS = 1;
const SEG_SS = 2;
const SEG_DS = 3;
const SEG_FS = 4;
const SEG_GS = 5;

/**
 * Decodes one instruction into `slot`. `code32` is the default operand and
 * address size of the code segment (CS.D). Returns the length, or
 * DECODE_TOO_LONG.
 */
export function decodeInstruction(
  source: CodeFetcher,
  out: DecodedInstructions,
  slot: number,
  code32: boolean,
): number {
  let pos = 0;
  let o16 = !code32;
  let a16 = !code32;
  let info = 0;
  let segment = -1;
  let byte = 0;
  // Prefixes (SDM vol. 2 2.1.1); the last segment override wins.
  for (;;) {
    if (pos >= 15) return DECODE_TOO_LONG;
    byte = source.fetchCodeByte(pos++);
    switch (byte) {
      case 0x26:
        segment = SEG_ES;
        continue;
      case 0x2e:
        segment = SEG_CS;
        continue;
      case 0x36:
        segment = SEG_SS;
        continue;
      case 0x3e:
        segment = SEG_DS;
        continue;
      case 0x64:
        segment = SEG_FS;
        continue;
      case 0x65:
        segment = SEG_GS;
        continue;
      case 0x66:
        o16 = code32;
        continue;
      case 0x67:
        a16 = code32;
        continue;
      case 0xf0:
        info |= Info.LOCK;
        continue;
      case 0xf2:
        info = (info & ~Info.REP) | Info.REPNE;
        continue;
      case 0xf3:
        info = (info & ~Info.REPNE) | Info.REP;
        continue;
    }
    break;
  }
  let op = byte;
  if (byte === 0x0f) {
    if (pos >= 15) return DECODE_TOO_LONG;
    op = 0x100 | source.fetchCodeByte(pos++);
  }
  const properties = OPCODE_PROPERTIES[op];
  if (o16) info |= Info.O16;
  if (a16) info |= Info.A16;
  if (properties & INVALID) info |= Info.INVALID;
  let modrm = 0;
  let base = -1;
  let index = -1;
  let scale = 0;
  let displacement = 0;
  let defaultSegment = SEG_DS;
  if (properties & MODRM) {
    if (pos >= 15) return DECODE_TOO_LONG;
    modrm = source.fetchCodeByte(pos++);
    const mod = modrm >> 6;
    const rm = modrm & 7;
    if (mod !== 3) {
      info |= Info.MEM;
      if (a16) {
        // 16-bit forms (SDM vol. 2 table 2-1).
        switch (rm) {
          case 0:
            base = 3;
            index = 6;
            break;
          case 1:
            base = 3;
            index = 7;
            break;
          case 2:
            base = 5;
            index = 6;
            defaultSegment = SEG_SS;
            break;
          case 3:
            base = 5;
            index = 7;
            defaultSegment = SEG_SS;
            break;
          case 4:
            base = 6;
            break;
          case 5:
            base = 7;
            break;
          case 6:
            if (mod === 0) {
              base = -1;
            } else {
              base = 5;
              defaultSegment = SEG_SS;
            }
            break;
          case 7:
            base = 3;
            break;
        }
        if (mod === 0 && rm === 6) {
          if (pos + 2 > 15) return DECODE_TOO_LONG;
          displacement = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
          pos += 2;
        } else if (mod === 1) {
          if (pos >= 15) return DECODE_TOO_LONG;
          displacement = (source.fetchCodeByte(pos++) << 24) >> 24;
        } else if (mod === 2) {
          if (pos + 2 > 15) return DECODE_TOO_LONG;
          displacement = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
          pos += 2;
        }
      } else {
        // 32-bit forms with SIB (SDM vol. 2 tables 2-2, 2-3).
        if (rm === 4) {
          if (pos >= 15) return DECODE_TOO_LONG;
          const sib = source.fetchCodeByte(pos++);
          const sibBase = sib & 7;
          const sibIndex = (sib >> 3) & 7;
          scale = sib >> 6;
          if (sibIndex !== 4) index = sibIndex;
          if (sibBase === 5 && mod === 0) {
            base = -1;
            if (pos + 4 > 15) return DECODE_TOO_LONG;
            displacement = fetch32(source, pos);
            pos += 4;
          } else {
            base = sibBase;
            if (sibBase === 4 || sibBase === 5) defaultSegment = SEG_SS;
          }
        } else if (rm === 5 && mod === 0) {
          base = -1;
          if (pos + 4 > 15) return DECODE_TOO_LONG;
          displacement = fetch32(source, pos);
          pos += 4;
        } else {
          base = rm;
          if (rm === 5) defaultSegment = SEG_SS;
        }
        if (mod === 1) {
          if (pos >= 15) return DECODE_TOO_LONG;
          displacement = (source.fetchCodeByte(pos++) << 24) >> 24;
        } else if (mod === 2) {
          if (pos + 4 > 15) return DECODE_TOO_LONG;
          displacement = fetch32(source, pos);
          pos += 4;
        }
      }
    }
  }
  if (segment >= 0) {
    info |= Info.SEG_OVERRIDE;
    defaultSegment = segment;
  }
  info |= defaultSegment << Info.SEG_SHIFT;
  let immediate = 0;
  let immediate2 = 0;
  let immKind = (properties >> IMM_SHIFT) & 7;
  if (immKind === IMM_GROUP3) {
    immKind = (modrm & 0x30) === 0 ? (op === 0xf6 ? IMM_8 : IMM_V) : IMM_NONE;
  }
  switch (immKind) {
    case IMM_8:
      if (pos >= 15) return DECODE_TOO_LONG;
      immediate = (source.fetchCodeByte(pos++) << 24) >> 24;
      break;
    case IMM_V:
      if (o16) {
        if (pos + 2 > 15) return DECODE_TOO_LONG;
        immediate =
          ((source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8)) << 16) >> 16;
        pos += 2;
      } else {
        if (pos + 4 > 15) return DECODE_TOO_LONG;
        immediate = fetch32(source, pos);
        pos += 4;
      }
      break;
    case IMM_16:
      if (pos + 2 > 15) return DECODE_TOO_LONG;
      immediate = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
      pos += 2;
      break;
    case IMM_16_8:
      if (pos + 3 > 15) return DECODE_TOO_LONG;
      immediate = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
      immediate2 = source.fetchCodeByte(pos + 2);
      pos += 3;
      break;
    case IMM_MOFFS:
      if (a16) {
        if (pos + 2 > 15) return DECODE_TOO_LONG;
        displacement = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
        pos += 2;
      } else {
        if (pos + 4 > 15) return DECODE_TOO_LONG;
        displacement = fetch32(source, pos);
        pos += 4;
      }
      break;
    case IMM_FAR:
      if (o16) {
        if (pos + 4 > 15) return DECODE_TOO_LONG;
        immediate = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
        pos += 2;
      } else {
        if (pos + 6 > 15) return DECODE_TOO_LONG;
        immediate = fetch32(source, pos);
        pos += 4;
      }
      immediate2 = source.fetchCodeByte(pos) | (source.fetchCodeByte(pos + 1) << 8);
      pos += 2;
      break;
  }
  out.op[slot] = op;
  out.length[slot] = pos;
  out.info[slot] = info;
  out.modrm[slot] = modrm;
  out.base[slot] = base;
  out.index[slot] = index;
  out.scale[slot] = scale;
  out.displacement[slot] = displacement;
  out.immediate[slot] = immediate;
  out.immediate2[slot] = immediate2;
  return pos;
}

function fetch32(source: CodeFetcher, pos: number): number {
  return (
    source.fetchCodeByte(pos) |
    (source.fetchCodeByte(pos + 1) << 8) |
    (source.fetchCodeByte(pos + 2) << 16) |
    (source.fetchCodeByte(pos + 3) << 24)
  );
}
