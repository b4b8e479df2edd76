/**
 * The A64 decoder: one 32-bit instruction word in, a plain data description
 * out (eight int32 slots), so that the interpreter (and a later WebAssembly
 * tier) reads fields instead of re-decoding bits. Encodings follow the Arm
 * ARM DDI 0487, chapter C4 ("A64 Instruction Set Encoding"); each group is
 * one row of the table in `decodeInstruction`.
 *
 * Slot layout (`DECODED_STRIDE` int32 per instruction):
 *   [0] op (`Op`), 0 = not decoded yet
 *   [1] register slots: rd bits 5:0, rn 11:6, rm 17:12, ra 23:18, sf bit 24, S bit 25.
 *       A register number 31 is turned into slot 32 (SP) or 33 (XZR) by context.
 *   [2..7] operation-specific immediates, documented per op below.
 */

export const DECODED_STRIDE = 8;
/** Register slot of the current stack pointer. */
export const SP = 32;
/** Register slot of the zero register (reads 0, writes are dropped). */
export const ZR = 33;

export const Op = {
  Undefined: 1,
  /** [2] offset low, [3] offset high (from PC or PC page). */
  Adr: 2,
  Adrp: 3,
  /** [2] imm (already shifted), [3] 1 = subtract. */
  AddSubImm: 4,
  /** [2] opc (0 and, 1 orr, 2 eor, 3 ands), [3] mask low, [4] mask high. */
  LogicImm: 5,
  /** [2] imm16 << (hw*16 & 31) as low/high: [2] low, [3] high, [4] hw. */
  MovN: 6,
  MovZ: 7,
  MovK: 8,
  /** Slot [1] bits 27:26 opc (0 sbfm, 1 bfm, 2 ubfm); [2] tmask high, [3] immr R, [4] imms S, [5] wmask low, [6] wmask high, [7] tmask low. */
  Bitfield: 9,
  /** [2] lsb. */
  Extr: 10,
  /** [2] offset low, [3] offset high. */
  B: 11,
  Bl: 12,
  Br: 13,
  Blr: 14,
  Ret: 15,
  /** [2] offset low, [3] offset high, [4] 1 = cbnz. */
  Cbz: 16,
  /** [2] offset low, [3] offset high, [4] bit number, [5] 1 = tbnz. */
  Tbz: 17,
  /** [2] offset low, [3] offset high, [4] cond. */
  BCond: 18,
  /** [2] imm16. */
  Svc: 19,
  Hvc: 20,
  Smc: 21,
  Brk: 22,
  Hlt: 23,
  /** [2] op1, [3] op2, [4] CRm. */
  MsrImm: 24,
  /** [2] hint number (CRm:op2). */
  Hint: 25,
  /** [2] op2 (2 clrex, 4 dsb, 5 dmb, 6 isb). */
  Barrier: 26,
  /** [2] system register key (op0:op1:CRn:CRm:op2), rd = Rt. */
  Msr: 27,
  Mrs: 28,
  /** [2] key (op0=1:op1:CRn:CRm:op2), rd = Rt (XZR-based). */
  Sys: 29,
  Eret: 30,
  /** [2] offset low, [3] offset high, [4] kind (0 ldr w, 1 ldr x, 2 ldrsw, 3 prfm). */
  LdrLiteral: 31,
  /**
   * [2] offset low, [3] offset high, [4] size log2, [5] kind (LoadKind),
   * [6] mode (0 offset, 1 post-index, 2 pre-index), [7] 1 = unprivileged.
   */
  LoadStoreImm: 32,
  /** [4] size log2, [5] kind, [2] extend option, [3] shift amount. */
  LoadStoreReg: 33,
  /** rd = Rt, ra = Rt2. [2] offset low, [3] offset high, [4] size log2, [5] kind, [6] mode. */
  LoadStorePair: 34,
  /** rd = Rt, rm = Rs. [4] size log2, [5] 1 = load, [6] 1 = exclusive, [7] 1 = acquire/release. */
  Exclusive: 35,
  /** [2] opc, [3] N (invert), [4] shift type, [5] amount. */
  LogicReg: 36,
  /** [3] 1 = subtract, [4] shift type, [5] amount. */
  AddSubShift: 37,
  /** [3] 1 = subtract, [4] option, [5] shift. */
  AddSubExt: 38,
  /** [3] 1 = subtract. */
  AdcSbc: 39,
  /** [3] 1 = ccmp, [4] cond, [5] nzcv, [6] 1 = immediate form (imm5 in [7]). */
  CondCompare: 40,
  /** [2] variant (0 csel, 1 csinc, 2 csinv, 3 csneg), [4] cond. */
  CondSelect: 41,
  /** [2] opcode (0 rbit, 1 rev16, 2 rev32, 3 rev, 4 clz, 5 cls). */
  DataProc1: 42,
  /** [2] opcode (2 udiv, 3 sdiv, 8 lslv, 9 lsrv, 10 asrv, 11 rorv). */
  DataProc2: 43,
  /** [2] variant (0 madd, 1 msub, 2 smaddl, 3 smsubl, 4 smulh, 5 umaddl, 6 umsubl, 7 umulh). */
  DataProc3: 44,
  /** rd = Rt, rm = Rs, ra = Rt2. [4] size (2 or 3, per register), [5] 1 = load, [7] 1 = acquire/release. */
  ExclusivePair: 47,
  /** FP and Advanced SIMD data processing (C4.1.95): [2] the instruction word, decoded by `simd.ts`. */
  Simd: 45,
  /** FP and Advanced SIMD loads and stores (C4.1.88, V = 1): [2] the instruction word. */
  SimdMemory: 46,
} as const;

/** What a load/store does with the data. */
export const LoadKind = {
  Store: 0,
  Load: 1,
  /** Load and sign-extend to 64 bits. */
  LoadSigned64: 2,
  /** Load and sign-extend to 32 bits (upper half zeroed). */
  LoadSigned32: 3,
  Prefetch: 4,
} as const;

function reg(n: number, spContext: boolean): number {
  return n === 31 ? (spContext ? SP : ZR) : n;
}

function signExtend(value: number, bits: number): number {
  const shift = 32 - bits;
  return (value << shift) >> shift;
}

function setOffset(out: Int32Array, at: number, offset: number): void {
  out[at + 2] = offset | 0;
  out[at + 3] = offset < 0 ? -1 : 0;
}

const maskScratch = new Int32Array(4);

/**
 * DecodeBitMasks (Arm ARM shared pseudocode aarch64/instrs/integer/bitmasks):
 * writes wmask low/high and tmask low/high to `maskScratch`; false when the
 * encoding is reserved.
 */
function decodeBitMasks(
  n: number,
  imms: number,
  immr: number,
  immediate: boolean,
  datasize: number,
): boolean {
  const combined = (n << 6) | (~imms & 0x3f);
  if (combined === 0) return false;
  const len = 31 - Math.clz32(combined);
  if (len < 1) return false;
  const esize = 1 << len;
  if (esize > datasize) return false;
  const levels = esize - 1;
  if (immediate && (imms & levels) === levels) return false;
  const s = imms & levels;
  const r = immr & levels;
  const d = (s - r) & levels;
  // welem = Ones(S+1) in esize bits, rotated right by R; telem = Ones(d+1).
  if (esize === 64) {
    onesRor64(s + 1, r, 0);
    onesRor64(d + 1, 0, 2);
  } else {
    const elementMask = esize === 32 ? -1 : (1 << esize) - 1;
    const welem = ones32(s + 1);
    const rotated = r === 0 ? welem : ((welem >>> r) | (welem << (esize - r))) & elementMask;
    const telem = ones32(d + 1);
    maskScratch[0] = replicate(rotated, esize);
    maskScratch[1] = maskScratch[0];
    maskScratch[2] = replicate(telem, esize);
    maskScratch[3] = maskScratch[2];
  }
  return true;
}

function ones32(count: number): number {
  return count >= 32 ? -1 : (1 << count) - 1;
}

function replicate(element: number, esize: number): number {
  let value = element;
  for (let width = esize; width < 32; width *= 2) value |= value << width;
  return value | 0;
}

/** Ones(count) in 64 bits rotated right by `rotate`, into maskScratch[at], [at+1]. */
function onesRor64(count: number, rotate: number, at: number): void {
  let low = count >= 32 ? -1 : ones32(count);
  let high = count > 32 ? ones32(count - 32) : 0;
  if (rotate >= 32) {
    const t = low;
    low = high;
    high = t;
    rotate -= 32;
  }
  if (rotate !== 0) {
    const newLow = (low >>> rotate) | (high << (32 - rotate));
    const newHigh = (high >>> rotate) | (low << (32 - rotate));
    low = newLow;
    high = newHigh;
  }
  maskScratch[at] = low | 0;
  maskScratch[at + 1] = high | 0;
}

/**
 * Decodes `word` into `out` at slot offset `at`. Returns the op. Reserved
 * and unimplemented encodings become `Op.Undefined` (the CPU raises an
 * exception with EC 0, "unknown reason").
 */
export function decodeInstruction(word: number, out: Int32Array, at: number): number {
  const op = decodeInto(word, out, at);
  out[at] = op;
  return op;
}

function regs(rd: number, rn: number, rm: number, ra: number, sf: number, s: number): number {
  return rd | (rn << 6) | (rm << 12) | (ra << 18) | (sf << 24) | (s << 25);
}

function decodeInto(word: number, out: Int32Array, at: number): number {
  const rdNumber = word & 31;
  const rnNumber = (word >>> 5) & 31;
  const rmNumber = (word >>> 16) & 31;
  const sf = word >>> 31;
  const group = (word >>> 25) & 0xf;
  // Arm ARM C4.1: op0 bits 28:25 select the main encoding group.
  if ((group & 0xe) === 0x8) {
    // Data processing - immediate (C4.1.86).
    const op0 = (word >>> 23) & 7;
    switch (op0) {
      case 0:
      case 1: {
        const immediate = (((word >>> 5) & 0x7ffff) << 2) | ((word >>> 29) & 3);
        const offset = signExtend(immediate, 21);
        out[at + 1] = regs(rdNumber, 0, 0, 0, 1, 0);
        if (sf) {
          // adrp: offset in 4 KiB pages, a 33-bit value.
          out[at + 2] = offset << 12;
          out[at + 3] = offset >> 20;
          return Op.Adrp;
        }
        setOffset(out, at, offset);
        return Op.Adr;
      }
      case 2: {
        const setFlags = (word >>> 29) & 1;
        const shift = (word >>> 22) & 1;
        const imm12 = (word >>> 10) & 0xfff;
        out[at + 1] = regs(reg(rdNumber, !setFlags), reg(rnNumber, true), 0, 0, sf, setFlags);
        out[at + 2] = shift ? imm12 << 12 : imm12;
        out[at + 3] = (word >>> 30) & 1;
        return Op.AddSubImm;
      }
      case 4: {
        const opc = (word >>> 29) & 3;
        const n = (word >>> 22) & 1;
        if (!sf && n) return Op.Undefined;
        if (!decodeBitMasks(n, (word >>> 10) & 0x3f, (word >>> 16) & 0x3f, true, sf ? 64 : 32)) {
          return Op.Undefined;
        }
        out[at + 1] = regs(
          reg(rdNumber, opc !== 3),
          reg(rnNumber, false),
          0,
          0,
          sf,
          opc === 3 ? 1 : 0,
        );
        out[at + 2] = opc;
        out[at + 3] = maskScratch[0];
        out[at + 4] = sf ? maskScratch[1] : 0;
        return Op.LogicImm;
      }
      case 5: {
        const opc = (word >>> 29) & 3;
        const hw = (word >>> 21) & 3;
        if (opc === 1 || (!sf && hw >= 2)) return Op.Undefined;
        const imm16 = (word >>> 5) & 0xffff;
        out[at + 1] = regs(reg(rdNumber, false), 0, 0, 0, sf, 0);
        out[at + 2] = hw === 0 ? imm16 : hw === 1 ? imm16 << 16 : 0;
        out[at + 3] = hw === 2 ? imm16 : hw === 3 ? imm16 << 16 : 0;
        out[at + 4] = hw;
        return opc === 0 ? Op.MovN : opc === 2 ? Op.MovZ : Op.MovK;
      }
      case 6: {
        const opc = (word >>> 29) & 3;
        const n = (word >>> 22) & 1;
        const immr = (word >>> 16) & 0x3f;
        const imms = (word >>> 10) & 0x3f;
        if (opc === 3 || n !== sf) return Op.Undefined;
        if (!sf && (immr >= 32 || imms >= 32)) return Op.Undefined;
        if (!decodeBitMasks(n, imms, immr, false, sf ? 64 : 32)) return Op.Undefined;
        out[at + 1] = regs(reg(rdNumber, false), reg(rnNumber, false), 0, 0, sf, 0);
        out[at + 1] |= opc << 26;
        out[at + 2] = sf ? maskScratch[3] : 0;
        out[at + 3] = immr;
        out[at + 4] = imms;
        out[at + 5] = maskScratch[0];
        out[at + 6] = sf ? maskScratch[1] : 0;
        out[at + 7] = maskScratch[2];
        return Op.Bitfield;
      }
      case 7: {
        const op21 = (word >>> 29) & 3;
        const n = (word >>> 22) & 1;
        const o0 = (word >>> 21) & 1;
        const imms = (word >>> 10) & 0x3f;
        if (op21 !== 0 || o0 !== 0 || n !== sf || (!sf && imms >= 32)) return Op.Undefined;
        out[at + 1] = regs(
          reg(rdNumber, false),
          reg(rnNumber, false),
          reg(rmNumber, false),
          0,
          sf,
          0,
        );
        out[at + 2] = imms;
        return Op.Extr;
      }
      default:
        return Op.Undefined;
    }
  }
  if ((group & 0xe) === 0xa) return decodeBranchSystem(word, out, at);
  if ((group & 0x5) === 0x4) return decodeLoadStore(word, out, at);
  if ((group & 0x7) === 0x5) return decodeDataRegister(word, out, at);
  if ((group & 0x7) === 0x7) {
    out[at + 2] = word;
    return Op.Simd;
  }
  return Op.Undefined;
}

function decodeBranchSystem(word: number, out: Int32Array, at: number): number {
  const top = word >>> 26;
  if ((top & 0x1f) === 0x05) {
    // b / bl (C4.1.87.1: unconditional branch immediate).
    const offset = signExtend(word & 0x3ffffff, 26) * 4;
    setOffset(out, at, offset);
    out[at + 1] = regs(30, 0, 0, 0, 1, 0);
    return word >>> 31 ? Op.Bl : Op.B;
  }
  const rt = word & 31;
  const sf = word >>> 31;
  if (((word >>> 25) & 0x3f) === 0x1a) {
    setOffset(out, at, signExtend((word >>> 5) & 0x7ffff, 19) * 4);
    out[at + 1] = regs(reg(rt, false), 0, 0, 0, sf, 0);
    out[at + 4] = (word >>> 24) & 1;
    return Op.Cbz;
  }
  if (((word >>> 25) & 0x3f) === 0x1b) {
    setOffset(out, at, signExtend((word >>> 5) & 0x3fff, 14) * 4);
    out[at + 1] = regs(reg(rt, false), 0, 0, 0, 1, 0);
    out[at + 4] = (sf << 5) | ((word >>> 19) & 31);
    out[at + 5] = (word >>> 24) & 1;
    return Op.Tbz;
  }
  if ((word & 0xff000010) === 0x54000000) {
    setOffset(out, at, signExtend((word >>> 5) & 0x7ffff, 19) * 4);
    out[at + 4] = word & 15;
    return Op.BCond;
  }
  if (word >>> 24 === 0xd4) {
    // Exception generation (C4.1.87.4).
    const opc = (word >>> 21) & 7;
    const op2 = (word >>> 2) & 7;
    const ll = word & 3;
    out[at + 2] = (word >>> 5) & 0xffff;
    if (op2 !== 0) return Op.Undefined;
    if (opc === 0) return ll === 1 ? Op.Svc : ll === 2 ? Op.Hvc : ll === 3 ? Op.Smc : Op.Undefined;
    if (opc === 1 && ll === 0) return Op.Brk;
    if (opc === 2 && ll === 0) return Op.Hlt;
    return Op.Undefined;
  }
  if (word >>> 22 === 0x354) return decodeSystem(word, out, at);
  if (word >>> 25 === 0x6b) {
    // Unconditional branch (register) (C4.1.87.7).
    const opc = (word >>> 21) & 15;
    const op2 = (word >>> 16) & 31;
    const op3 = (word >>> 10) & 0x3f;
    const rn = (word >>> 5) & 31;
    const op4 = word & 31;
    if (op2 !== 31 || op3 !== 0 || op4 !== 0) return Op.Undefined;
    out[at + 1] = regs(30, reg(rn, false), 0, 0, 1, 0);
    if (opc === 0) return Op.Br;
    if (opc === 1) return Op.Blr;
    if (opc === 2) return Op.Ret;
    if (opc === 4 && rn === 31) return Op.Eret;
    return Op.Undefined;
  }
  return Op.Undefined;
}

function decodeSystem(word: number, out: Int32Array, at: number): number {
  const l = (word >>> 21) & 1;
  const op0 = (word >>> 19) & 3;
  const op1 = (word >>> 16) & 7;
  const crn = (word >>> 12) & 15;
  const crm = (word >>> 8) & 15;
  const op2 = (word >>> 5) & 7;
  const rt = word & 31;
  if (op0 === 0 && l === 0) {
    if (crn === 4 && rt === 31) {
      out[at + 2] = op1;
      out[at + 3] = op2;
      out[at + 4] = crm;
      return Op.MsrImm;
    }
    if (crn === 2 && op1 === 3 && rt === 31) {
      out[at + 2] = (crm << 3) | op2;
      return Op.Hint;
    }
    if (crn === 3 && op1 === 3) {
      if (op2 === 2 || op2 === 4 || op2 === 5 || op2 === 6) {
        out[at + 2] = op2;
        return Op.Barrier;
      }
    }
    return Op.Undefined;
  }
  out[at + 1] = regs(reg(rt, false), 0, 0, 0, 1, 0);
  out[at + 2] = (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
  if (op0 === 1) return l === 0 ? Op.Sys : Op.Undefined;
  if (op0 >= 2) return l ? Op.Mrs : Op.Msr;
  return Op.Undefined;
}

function decodeLoadStore(word: number, out: Int32Array, at: number): number {
  const size = word >>> 30;
  const rt = word & 31;
  const rn = (word >>> 5) & 31;
  const vector = (word >>> 26) & 1;
  if (vector) {
    out[at + 2] = word;
    return Op.SimdMemory;
  }
  const op = (word >>> 27) & 7;
  if (((word >>> 24) & 0x3f) === 0x08) {
    // Load/store exclusive and ordered (C4.1.88.5).
    const o2 = (word >>> 23) & 1;
    const load = (word >>> 22) & 1;
    const o1 = (word >>> 21) & 1;
    const o0 = (word >>> 15) & 1;
    const rs = (word >>> 16) & 31;
    const rt2 = (word >>> 10) & 31;
    if (o1 === 1 && o2 === 0) {
      // LDXP/STXP/LDAXP/STLXP (C6.2): 32- or 64-bit registers; Rs must be ones for loads.
      if (size < 2 || (load && rs !== 31)) return Op.Undefined;
      out[at + 1] = regs(
        reg(rt, false),
        reg(rn, true),
        reg(rs, false),
        reg(rt2, false),
        size & 1,
        0,
      );
      out[at + 4] = size;
      out[at + 5] = load;
      out[at + 7] = o0;
      return Op.ExclusivePair;
    }
    if (o1 !== 0 || rt2 !== 31) return Op.Undefined; // CASP/CAS (LSE) not implemented
    if (o2 === 1 && (o0 === 0 || rs !== 31)) return Op.Undefined; // LDLAR/STLLR (FEAT_LOR) not implemented
    if (o2 === 0 && load && rs !== 31) return Op.Undefined;
    out[at + 1] = regs(reg(rt, false), reg(rn, true), reg(rs, false), 0, size === 3 ? 1 : 0, 0);
    out[at + 4] = size;
    out[at + 5] = load;
    out[at + 6] = o2 ? 0 : 1;
    out[at + 7] = o0;
    return Op.Exclusive;
  }
  if (op === 3 && ((word >>> 24) & 3) === 0) {
    // Load register (literal) (C4.1.88.6).
    const opc = size;
    setOffset(out, at, signExtend((word >>> 5) & 0x7ffff, 19) * 4);
    out[at + 1] = regs(reg(rt, false), 0, 0, 0, 1, 0);
    out[at + 4] = opc;
    return Op.LdrLiteral;
  }
  if (op === 5) {
    // Load/store register pair (C4.1.88.8-11).
    const mode = (word >>> 23) & 3;
    const load = (word >>> 22) & 1;
    const opc = size;
    if (opc === 3 || (opc === 1 && !load)) return Op.Undefined;
    const sizeLog = opc === 2 ? 3 : 2;
    const rt2 = (word >>> 10) & 31;
    setOffset(out, at, signExtend((word >>> 15) & 0x7f, 7) << sizeLog);
    out[at + 1] = regs(reg(rt, false), reg(rn, true), 0, reg(rt2, false), 0, 0);
    out[at + 4] = sizeLog;
    out[at + 5] = load === 0 ? LoadKind.Store : opc === 1 ? LoadKind.LoadSigned64 : LoadKind.Load;
    out[at + 6] = mode === 1 ? 1 : mode === 3 ? 2 : 0;
    return Op.LoadStorePair;
  }
  if (op !== 7) return Op.Undefined;
  const opc = (word >>> 22) & 3;
  let kind: number;
  if (opc === 0) kind = LoadKind.Store;
  else if (opc === 1) kind = LoadKind.Load;
  else if (size === 3) {
    if (opc === 3) return Op.Undefined;
    kind = LoadKind.Prefetch;
  } else if (size === 2 && opc === 3) return Op.Undefined;
  else kind = opc === 2 ? LoadKind.LoadSigned64 : LoadKind.LoadSigned32;
  out[at + 1] = regs(reg(rt, false), reg(rn, true), reg((word >>> 16) & 31, false), 0, 0, 0);
  out[at + 4] = size;
  out[at + 5] = kind;
  if ((word >>> 24) & 1) {
    // Unsigned offset (C4.1.88.16).
    setOffset(out, at, ((word >>> 10) & 0xfff) << size);
    out[at + 6] = 0;
    out[at + 7] = 0;
    return Op.LoadStoreImm;
  }
  const kindBits = (word >>> 10) & 3;
  if ((word >>> 21) & 1) {
    if (kindBits !== 2) return Op.Undefined; // LSE atomics and PAC loads are not implemented
    const option = (word >>> 13) & 7;
    if ((option & 2) === 0) return Op.Undefined;
    out[at + 2] = option;
    out[at + 3] = (word >>> 12) & 1 ? size : 0;
    return Op.LoadStoreReg;
  }
  setOffset(out, at, signExtend((word >>> 12) & 0x1ff, 9));
  out[at + 6] = kindBits === 1 ? 1 : kindBits === 3 ? 2 : 0;
  out[at + 7] = kindBits === 2 ? 1 : 0;
  // PRFUM exists; pre/post-indexed and unprivileged prefetch forms are unallocated.
  if (kindBits !== 0 && kind === LoadKind.Prefetch) return Op.Undefined;
  return Op.LoadStoreImm;
}

function decodeDataRegister(word: number, out: Int32Array, at: number): number {
  const sf = word >>> 31;
  const rd = word & 31;
  const rn = (word >>> 5) & 31;
  const rm = (word >>> 16) & 31;
  const op1 = (word >>> 28) & 1;
  const op2 = (word >>> 21) & 15;
  const setFlags = (word >>> 29) & 1;
  const subtract = (word >>> 30) & 1;
  if (op1 === 0) {
    const imm6 = (word >>> 10) & 0x3f;
    // A 32-bit shift amount of 32 or more is reserved in the shifted-register forms (not the extended one).
    const badShift = !sf && imm6 >= 32 && (op2 & 9) !== 9;
    if (badShift) return Op.Undefined;
    if ((op2 & 8) === 0) {
      // Logical (shifted register) (C4.1.89.1).
      const opc = (word >>> 29) & 3;
      out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), 0, sf, opc === 3 ? 1 : 0);
      out[at + 2] = opc;
      out[at + 3] = (word >>> 21) & 1;
      out[at + 4] = (word >>> 22) & 3;
      out[at + 5] = imm6;
      return Op.LogicReg;
    }
    if ((op2 & 1) === 0) {
      const shift = (word >>> 22) & 3;
      if (shift === 3) return Op.Undefined;
      out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), 0, sf, setFlags);
      out[at + 3] = subtract;
      out[at + 4] = shift;
      out[at + 5] = imm6;
      return Op.AddSubShift;
    }
    // Add/subtract (extended register) (C4.1.89.3).
    const opt = (word >>> 22) & 3;
    const imm3 = (word >>> 10) & 7;
    if (opt !== 0 || imm3 > 4) return Op.Undefined;
    out[at + 1] = regs(reg(rd, !setFlags), reg(rn, true), reg(rm, false), 0, sf, setFlags);
    out[at + 3] = subtract;
    out[at + 4] = (word >>> 13) & 7;
    out[at + 5] = imm3;
    return Op.AddSubExt;
  }
  if (op2 === 0) {
    if (((word >>> 10) & 0x3f) !== 0) return Op.Undefined;
    out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), 0, sf, setFlags);
    out[at + 3] = subtract;
    return Op.AdcSbc;
  }
  if (op2 === 2) {
    if (!setFlags || ((word >>> 10) & 1) !== 0 || ((word >>> 4) & 1) !== 0) return Op.Undefined;
    const immediateForm = (word >>> 11) & 1;
    out[at + 1] = regs(0, reg(rn, false), reg(rm, false), 0, sf, 1);
    out[at + 3] = subtract;
    out[at + 4] = (word >>> 12) & 15;
    out[at + 5] = word & 15;
    out[at + 6] = immediateForm;
    out[at + 7] = rm;
    return Op.CondCompare;
  }
  if (op2 === 4) {
    const o2 = (word >>> 10) & 3;
    if (setFlags || o2 > 1) return Op.Undefined;
    out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), 0, sf, 0);
    out[at + 2] = (subtract << 1) | o2;
    out[at + 4] = (word >>> 12) & 15;
    return Op.CondSelect;
  }
  if (op2 === 6) {
    const opcode = (word >>> 10) & 0x3f;
    if (setFlags) return Op.Undefined;
    out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), 0, sf, 0);
    if (subtract) {
      // Data-processing (1 source) (C4.1.89.8).
      if (rm !== 0 || opcode > 5) return Op.Undefined;
      let code = opcode;
      if (!sf && opcode === 3) return Op.Undefined;
      if (!sf && opcode === 2) code = 3; // 32-bit REV
      out[at + 2] = code;
      return Op.DataProc1;
    }
    // Data-processing (2 source) (C4.1.89.7); CRC32 and PAC are not implemented.
    if (opcode !== 2 && opcode !== 3 && (opcode < 8 || opcode > 11)) return Op.Undefined;
    out[at + 2] = opcode;
    return Op.DataProc2;
  }
  if (op2 >= 8) {
    // Data-processing (3 source) (C4.1.89.12).
    const op54 = (word >>> 29) & 3;
    const op31 = (word >>> 21) & 7;
    const o0 = (word >>> 15) & 1;
    const ra = (word >>> 10) & 31;
    if (op54 !== 0) return Op.Undefined;
    let variant: number;
    if (op31 === 0) variant = o0;
    else if (!sf) return Op.Undefined;
    else if (op31 === 1) variant = 2 + o0;
    else if (op31 === 2 && o0 === 0) variant = 4;
    else if (op31 === 5) variant = 5 + o0;
    else if (op31 === 6 && o0 === 0) variant = 7;
    else return Op.Undefined;
    out[at + 1] = regs(reg(rd, false), reg(rn, false), reg(rm, false), reg(ra, false), sf, 0);
    out[at + 2] = variant;
    return Op.DataProc3;
  }
  return Op.Undefined;
}
