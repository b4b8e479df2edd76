/**
 * The block tier: hot runs of 32-bit code compiled into JavaScript functions
 * (source text through `new Function`), the technique of QEMU's TCG and
 * v86's JIT with JavaScript as the target. Its input is the decoder's
 * plain-data output (`DecodedInstructions`), so a WebAssembly tier can take
 * the same records.
 *
 * A block is a run of decoded instructions in one physical page, up to a
 * control transfer, the page end or an instruction the tier leaves to the
 * interpreter (mode, segment, I/O, interrupt-flag and system instructions).
 * The hottest forms are generated inline with the decoded fields folded in
 * as constants; every other instruction of the run calls the interpreter's
 * `execute` on its decoded slot, so the tier covers most of the
 * instruction stream without a second implementation of each instruction.
 *
 * Exactness: before an instruction that can fault, the block stores its
 * start EIP and how many instructions of the block completed, so a fault
 * leaves EIP, registers and the retired count as the interpreter leaves
 * them. Events (interrupts, the budget, single-step, interrupt shadows) are
 * checked between blocks: a block is entered only when no event is pending
 * and its whole length fits in the budget, and it returns early as soon as
 * an interpreted instruction transferred control, raised an event or wrote
 * to a page holding code.
 */
import {
  type CodeFetcher,
  DECODE_TOO_LONG,
  type DecodedInstructions,
  decodeInstruction,
  EMPTY_TAG,
  Info,
} from "./decoder";
import { LazyOp } from "./flags";

/** Slots of the block cache: the decode cache's indexing (physical address modulo its size). */
export const BLOCK_CACHE_SIZE = 1 << 18;
/** Longest block, in instructions (bounds compile time and the budget overshoot test). */
export const MAX_BLOCK = 48;
/** A page whose blocks were dropped this often holds data written next to code: no more blocks there. */
const MAX_PAGE_INVALIDATIONS = 16;
/** Interpreted executions of an instruction before a block is compiled at it. */
export const DEFAULT_JIT_THRESHOLD = 50000;

const T_MMIO = 64;
const ARITH = 0x8d5; // CF PF AF ZF SF OF
const CF = 1;
const PF = 4;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;
/**
 * A loop block's guest registers in JavaScript locals (`g0`..`g7`), which
 * V8 keeps in machine registers across the passes: loaded on entry, the
 * ones the block assigns stored back before every exit and in the fault
 * catch; around an instruction run by the interpreter they are stored
 * before and all reloaded after (it may change any). Only for a 32-bit
 * stack (no `cpu.push32`/`pop32`, which use the register file).
 */
function registersInLocals(lines: string[]): {
  declare: string;
  lines: string[];
  writeBack: string;
} {
  const used = new Set<number>();
  const written = new Set<number>();
  for (const line of lines) {
    for (const match of line.matchAll(/regs\[(\d)\]/g)) used.add(Number(match[1]));
    for (const match of line.matchAll(/regs\[(\d)\] = (?!=)/g)) written.add(Number(match[1]));
  }
  const sorted = (set: Set<number>) => [...set].sort((a, b) => a - b);
  const writeBack = sorted(written)
    .map((i) => ` regs[${i}] = g${i};`)
    .join("");
  const reload = sorted(used)
    .map((i) => ` g${i} = regs[${i}];`)
    .join("");
  const declare = sorted(used)
    .map((i) => ` let g${i} = regs[${i}];`)
    .join("");
  return {
    declare: `\n ${declare}`,
    writeBack,
    lines: lines.map((line) => {
      const local = line.replace(/regs\[(\d)\]/g, "g$1");
      if (local.includes("if (step(")) {
        return local
          .replace("if (step(", `${writeBack} if (step(`)
          .replace(/(return n \+ \d+;)/, `$1${reload}`);
      }
      return local.replace(/return /g, `${writeBack} return `);
    }),
  };
}

/** Flag kinds beyond `LazyOp` that the block tracks: INC/DEC (CF kept in `fc`), result-only (IMUL, shifts). */
export const INC_DEC_ADD = 100;
export const INC_DEC_SUB = 101;
export const RESULT_ONLY = 102;
/** Added to a kind when a rotate replaced its CF/OF (kept in `fo`). */
export const ROTATED = 200;

/** What a compiled block sees of the CPU (the generated code reads these fields by name). */
export interface BlockHost {
  readonly regs: Int32Array;
  readonly ram: Uint8Array;
  readonly decoded: DecodedInstructions;
  /** SS is a 32-bit stack segment. */
  readonly stack32: boolean;
  eip: number;
  flagsRaw: number;
  lazy: number;
  lazyOp: number;
  lazySize: number;
  lazyDst: number;
  lazySrc: number;
  lazyResult: number;
  lazyCarry: number;
  /** Set by the CPU when translations, modes or code pages changed: the running block stops. */
  blockAbort: boolean;
  /** Instructions of the running block that completed (read when a fault unwinds it). */
  blockDone: number;
}

/**
 * A compiled block: runs from `eip` (its start) and returns the instructions
 * it retired, or -1 when its code bytes changed. `budget` is the most it may
 * retire (at least its length: a loop block makes another pass only while a
 * whole pass fits).
 */
export type BlockFunction = (eip: number, budget: number) => number;

/** Arguments of every block factory: the CPU and the arrays its hot paths use. */
const FACTORY_PARAMETERS = [
  "cpu",
  "regs",
  "ram",
  "view",
  "tlbInfo",
  "tlbPhys",
  "codePage",
  "segBase",
  "segCheck",
  "tags",
  "firstWords",
  "step",
  "rd32",
  "rd16",
  "rd8",
  "wr32",
  "wr16",
  "wr8",
  "lz",
  "OFFSETS",
];

/** A start slot's count when no block can start at its address (`BlockCache.markCold`). */
export const COLD = 0xffffffff;

/**
 * Compiled blocks by physical address, invalidated with the decode cache's code pages.
 *
 * `entries` holds two int32 per start slot: the physical address of the
 * block that starts there (EMPTY_TAG: none), then its length in
 * instructions (bits 0-7) and its index in the WebAssembly tier's function
 * table (bits 8-31; 0 for a JavaScript block). The tier's dispatcher reads
 * both for every block it chains to, so they share a cache line; and the
 * table is dense (indices are reused as blocks are dropped), a few thousand
 * entries where one per slot spread V8's table arrays over megabytes and
 * made every chained entry a few cache misses.
 */
export class BlockCache {
  readonly entries: Int32Array;
  readonly code: (BlockFunction | undefined)[] = new Array(BLOCK_CACHE_SIZE).fill(undefined);
  /** Interpreted executions per start slot, of the address in `hotTag`. */
  readonly hot = new Uint32Array(BLOCK_CACHE_SIZE);
  /**
   * The physical address each slot counts for: another address reaching
   * the slot starts the count over for itself (slots alias at 256 KiB, and
   * a count another address left past the threshold would otherwise never
   * reach it again).
   */
  readonly hotTag = new Int32Array(BLOCK_CACHE_SIZE).fill(EMPTY_TAG);
  readonly pageInvalidations: Uint8Array;
  readonly threshold: number;
  /** Shared by the blocks (created with the first block). */
  helpers: BlockHelpers | null = null;
  /** Blocks compiled (for tests and `--stats`). */
  compiled = 0;
  /** Table indices of dropped blocks, free for new ones. */
  private readonly freeIndices: number[] = [];
  /** Table indices ever handed out, plus one (index 0 is no table entry). */
  private nextIndex = 1;

  /** `entries`: where to keep them (WebAssembly memory, for the WebAssembly tier's dispatcher). */
  constructor(pages: number, threshold: number, entries?: Int32Array) {
    this.entries = (entries ?? new Int32Array(2 * BLOCK_CACHE_SIZE)).fill(EMPTY_TAG);
    this.pageInvalidations = new Uint8Array(pages);
    this.threshold = Math.max(1, threshold);
  }

  /** The physical address of the block in `slot`, or EMPTY_TAG. */
  tag(slot: number): number {
    return this.entries[slot << 1];
  }

  /** The length in instructions of the block in `slot`. */
  length(slot: number): number {
    return this.entries[(slot << 1) | 1] & 0xff;
  }

  /** A table index no block in the cache uses (the caller puts its block there). */
  claimIndex(): number {
    return this.freeIndices.pop() ?? this.nextIndex++;
  }

  /** Table indices handed out so far (the table's size must exceed each). */
  get indexLimit(): number {
    return this.nextIndex;
  }

  /** Puts a block in `slot`, replacing (and dropping) the one there. */
  put(slot: number, phys: number, code: BlockFunction, length: number, index: number): void {
    this.drop(slot);
    this.entries[slot << 1] = phys;
    this.entries[(slot << 1) | 1] = length | (index << 8);
    this.code[slot] = code;
    this.compiled++;
  }

  /** Empties `slot`, freeing its table index. */
  drop(slot: number): void {
    const entries = this.entries;
    const at = slot << 1;
    if (entries[at] === EMPTY_TAG) return;
    const index = entries[at | 1] >>> 8;
    if (index !== 0) this.freeIndices.push(index);
    entries[at] = EMPTY_TAG;
    entries[at | 1] = 0;
    this.code[slot] = undefined;
  }

  /**
   * Drops the blocks of physical page `page` (a write hit it). `counted`:
   * whether this counts towards MAX_PAGE_INVALIDATIONS (not for code host
   * code replaced, which is no sign of data beside code).
   */
  invalidatePage(page: number, counted = true): void {
    const start = (page << 12) & (BLOCK_CACHE_SIZE - 1);
    const entries = this.entries;
    let dropped = false;
    for (let i = start; i < start + 4096; i++) {
      const tag = entries[i << 1];
      if (tag !== EMPTY_TAG && tag >>> 12 === page) {
        this.drop(i);
        dropped = true;
      }
      if (this.hotTag[i] >>> 12 === page) this.hot[i] = 0;
    }
    if (dropped && counted && this.pageInvalidations[page] < 255) this.pageInvalidations[page]++;
  }

  clear(): void {
    this.entries.fill(EMPTY_TAG);
    this.code.fill(undefined);
    this.hot.fill(0);
    this.freeIndices.length = 0;
    this.nextIndex = 1;
  }

  /** Whether blocks may be compiled in page `page`. */
  pageAllowed(page: number): boolean {
    // Eager mode (tests) compiles everywhere, however often a page is rewritten.
    return this.threshold === 1 || this.pageInvalidations[page] < MAX_PAGE_INVALIDATIONS;
  }

  /** Marks a start slot where no block could be compiled (until its page is written). */
  markCold(slot: number): void {
    this.hot[slot] = COLD;
  }
}

/** Reads instruction bytes from RAM at a physical address, never past the page (zeros there). */
export class PhysicalFetcher implements CodeFetcher {
  start = 0;
  constructor(private readonly ram: Uint8Array) {}
  fetchCodeByte(offset: number): number {
    const address = this.start + offset;
    if ((address & ~0xfff) !== (this.start & ~0xfff)) return 0;
    return this.ram[address];
  }
}

/**
 * Decodes the instruction at physical `at` into `index` of `scratch` for a
 * block, or returns 0 when the block must end before it: past its page (or
 * within 4 bytes of its end, where the entry guard's word would cross it),
 * undecodable, or an instruction blocks leave to the interpreter (not
 * `GENERIC`, far call/jmp, `mov` from a segment register beyond GS).
 * Else its length.
 */
export function decodeBlockInstruction(
  fetcher: PhysicalFetcher,
  scratch: DecodedInstructions,
  index: number,
  at: number,
  pageEnd: number,
): number {
  if (at >= pageEnd) return 0;
  fetcher.start = at;
  const length = decodeInstruction(fetcher, scratch, index, true);
  if (length === DECODE_TOO_LONG || at + length > pageEnd || at + 4 > pageEnd) return 0;
  const op = scratch.op[index];
  const reg = (scratch.modrm[index] >> 3) & 7;
  if (scratch.info[index] & Info.INVALID || !GENERIC[op]) return 0;
  if (op === 0xff && (reg === 3 || reg === 5 || reg === 7)) return 0; // far call/jmp
  if (op === 0x8c && reg > 5) return 0;
  return length;
}

/** Decodes the instruction at `phys` into `slot` of the CPU's decode cache (32-bit code). */
export function redecodeInto(
  ram: Uint8Array,
  view: DataView,
  decoded: DecodedInstructions,
  slot: number,
  phys: number,
): void {
  const fetcher = new PhysicalFetcher(ram);
  fetcher.start = phys;
  decodeInstruction(fetcher, decoded, slot, true);
  decoded.tag[slot] = phys;
  decoded.firstWord[slot] = view.getInt32(phys, true);
}

/**
 * Opcodes a block may run through the interpreter's `execute`: those that
 * change neither the mode, the segment registers, the interrupt flag or
 * shadow, nor leave for the VMM (I/O, hlt, hypercalls, MSRs, CPUID). The
 * others end the block and the interpreter runs them.
 */
export const GENERIC = (() => {
  const t = new Uint8Array(512);
  const set = (from: number, to: number) => {
    for (let i = from; i <= to; i++) t[i] = 1;
  };
  for (let row = 0; row < 0x40; row += 8) set(row, row + 5);
  t[0x06] = t[0x0e] = t[0x16] = t[0x1e] = 1; // push es/cs/ss/ds
  t[0x27] = t[0x2f] = t[0x37] = t[0x3f] = 1; // daa das aaa aas
  set(0x40, 0x6b); // inc dec push pop pusha popa bound arpl push imul
  set(0x70, 0x8d); // jcc, group 1, test, xchg, mov, mov r/m sreg, lea
  t[0x8f] = 1;
  set(0x90, 0x99);
  t[0x9b] = t[0x9c] = t[0x9e] = t[0x9f] = 1; // fwait pushf sahf lahf
  set(0xa0, 0xc3);
  set(0xc6, 0xc9);
  set(0xd0, 0xe3); // shifts aam aad salc xlat x87 loop jcxz
  set(0xe8, 0xe9);
  t[0xeb] = 1;
  t[0xf5] = t[0xf6] = t[0xf7] = t[0xf8] = t[0xf9] = t[0xfa] = t[0xfc] = t[0xfd] = 1;
  t[0xfe] = t[0xff] = 1; // group 5's far forms are excluded by reg below
  set(0x118, 0x11f); // hint nops
  set(0x140, 0x14f); // cmovcc
  set(0x180, 0x19f); // jcc, setcc
  t[0x1a0] = t[0x1a3] = t[0x1a4] = t[0x1a5] = t[0x1a8] = 1; // push fs, bt, shld, push gs
  set(0x1ab, 0x1ad); // bts shrd
  t[0x1af] = t[0x1b0] = t[0x1b1] = t[0x1b3] = 1; // imul cmpxchg btr
  set(0x1b6, 0x1b7);
  set(0x1ba, 0x1c1); // bt group, btc, bsf, bsr, movsx, xadd
  t[0x1c7] = 1; // cmpxchg8b
  set(0x1c8, 0x1cf); // bswap
  return t;
})();

/**
 * Functions every block of one CPU shares. They stay optimized once warm,
 * while each new block starts in V8's bytecode interpreter: the less code
 * a block carries itself, the less a block costs before V8 optimizes it.
 */
export interface BlockHelpers {
  step(
    slot: number,
    phys: number,
    word: number,
    start: number,
    next: number,
    index: number,
  ): boolean;
  rd32(linear: number): number;
  rd16(linear: number): number;
  rd8(linear: number): number;
  wr32(linear: number, value: number): void;
  wr16(linear: number, value: number): void;
  wr8(linear: number, value: number): void;
  lz(kind: number, dst: number, src: number, result: number, carry: number, rotated: number): void;
}

/** The CPU's side the helpers use (private members of X86Cpu, reached by name). */
export interface HelperHost extends BlockHost {
  startEip: number;
  eventCheck: boolean;
  afterInstruction: boolean;
  readNeed: number;
  writeNeed: number;
  execute(slot: number): void;
  readLin32(linear: number): number;
  readLin16(linear: number): number;
  readLin8(linear: number): number;
  writeLin32(linear: number, value: number): void;
  writeLin16(linear: number, value: number): void;
  writeLin8(linear: number, value: number): void;
}

export function createHelpers(
  host: BlockHost,
  view: DataView,
  arrays: { tlbInfo: Int32Array; tlbPhys: Int32Array; codePage: Uint8Array },
): BlockHelpers {
  const cpu = host as HelperHost;
  const ram = cpu.ram;
  const decoded = cpu.decoded;
  const tags = decoded.tag;
  const firstWords = decoded.firstWord;
  const { tlbInfo, tlbPhys, codePage } = arrays;
  function lz(
    kind: number,
    dst: number,
    src: number,
    result: number,
    carry: number,
    rotated: number,
  ): void {
    if (kind >= 1000) {
      // An 8-bit (1000 + op) or 16-bit (2000 + op) record of the WebAssembly tier.
      const base = kind % 1000;
      cpu.lazySize = kind >= 2000 ? 1 : 0;
      cpu.lazyDst = dst;
      cpu.lazySrc = src;
      cpu.lazyResult = result;
      if (base === INC_DEC_ADD || base === INC_DEC_SUB) {
        // INC/DEC r/m8: CF as it was (`carry`), as for 32 bits below.
        cpu.flagsRaw = (cpu.flagsRaw & ~CF) | carry;
        cpu.lazyOp = base === INC_DEC_ADD ? LazyOp.ADD : LazyOp.SUB;
        cpu.lazy = ARITH & ~CF;
        return;
      }
      cpu.lazyOp = base;
      cpu.lazy = ARITH;
      return;
    }
    if (kind >= ROTATED) {
      // A rotate after the record: its CF/OF (`rotated`) over the record's other flags.
      lz(kind - ROTATED, dst, src, result, carry, 0);
      cpu.flagsRaw = (cpu.flagsRaw & ~(CF | OF)) | rotated;
      cpu.lazy &= ~(CF | OF);
      return;
    }
    cpu.lazySize = 2;
    cpu.lazyDst = dst;
    cpu.lazyResult = result;
    if (kind === RESULT_ONLY) {
      // IMUL and shifts (as setLazyResult): CF/OF concrete in `carry`, AF clear.
      cpu.flagsRaw = (cpu.flagsRaw & ~ARITH) | carry;
      cpu.lazyOp = LazyOp.LOGIC;
      cpu.lazy = ZF | SF | PF;
    } else if (kind >= INC_DEC_ADD) {
      // INC/DEC leave CF as it was (SDM vol. 2 INC): the block kept it in `carry`.
      cpu.flagsRaw = (cpu.flagsRaw & ~CF) | carry;
      cpu.lazyOp = kind === INC_DEC_ADD ? LazyOp.ADD : LazyOp.SUB;
      cpu.lazySrc = 1;
      cpu.lazy = ARITH & ~CF;
    } else {
      // ADD ADC SUB SBB LOGIC; ADC and SBB carry their CF input.
      cpu.lazyOp = kind;
      cpu.lazySrc = src;
      cpu.lazyCarry = carry;
      cpu.lazy = ARITH;
    }
  }

  return {
    step(slot, phys, word, start, next, index) {
      cpu.startEip = start;
      cpu.blockDone = index;
      cpu.eip = next;
      if (tags[slot] !== phys || firstWords[slot] !== word) {
        redecodeInto(ram, view, decoded, slot, phys);
      }
      cpu.execute(slot);
      return cpu.eip !== next || cpu.eventCheck || cpu.blockAbort || cpu.afterInstruction;
    },
    rd32(l) {
      const p = l >>> 12;
      const need = cpu.readNeed;
      if ((tlbInfo[p] & (need | T_MMIO)) === need && (l & 4095) <= 4092) {
        return view.getInt32(tlbPhys[p] | (l & 4095), true);
      }
      return cpu.readLin32(l);
    },
    rd16(l) {
      const p = l >>> 12;
      const need = cpu.readNeed;
      if ((tlbInfo[p] & (need | T_MMIO)) === need && (l & 4095) <= 4094) {
        return view.getUint16(tlbPhys[p] | (l & 4095), true);
      }
      return cpu.readLin16(l);
    },
    rd8(l) {
      const p = l >>> 12;
      const need = cpu.readNeed;
      if ((tlbInfo[p] & (need | T_MMIO)) === need) return ram[tlbPhys[p] | (l & 4095)];
      return cpu.readLin8(l);
    },
    wr32(l, v) {
      const p = l >>> 12;
      const need = cpu.writeNeed;
      if (
        (tlbInfo[p] & (need | T_MMIO)) === need &&
        (l & 4095) <= 4092 &&
        codePage[tlbPhys[p] >>> 12] === 0
      ) {
        view.setInt32(tlbPhys[p] | (l & 4095), v, true);
      } else {
        cpu.writeLin32(l, v);
      }
    },
    wr16(l, v) {
      const p = l >>> 12;
      const need = cpu.writeNeed;
      if (
        (tlbInfo[p] & (need | T_MMIO)) === need &&
        (l & 4095) <= 4094 &&
        codePage[tlbPhys[p] >>> 12] === 0
      ) {
        view.setUint16(tlbPhys[p] | (l & 4095), v, true);
      } else {
        cpu.writeLin16(l, v);
      }
    },
    wr8(l, v) {
      const p = l >>> 12;
      const need = cpu.writeNeed;
      if ((tlbInfo[p] & (need | T_MMIO)) === need && codePage[tlbPhys[p] >>> 12] === 0) {
        ram[tlbPhys[p] | (l & 4095)] = v;
      } else {
        cpu.writeLin8(l, v);
      }
    },
    lz,
  };
}

/** Result of `compileBlock`: the function and its length, or null when no block starts here. */
export interface CompiledBlock {
  code: BlockFunction;
  length: number;
}

/**
 * Compiles the block starting at physical `phys` (32-bit code, RAM the CPU
 * reads directly). Returns null when its first instruction is one the tier
 * leaves to the interpreter.
 *
 * The generated function keeps the arithmetic flags of the last
 * flag-setting instruction in locals (`fk` kind, `fd`/`fs`/`fr`/`fc`
 * operands, result and kept carry) and writes them to the CPU's lazy-flag
 * record only where something outside the block's own code can see them:
 * at every exit, before an instruction run by the interpreter or a
 * condition the block cannot evaluate from the locals, and in the catch
 * that a fault unwinds through. A record overwritten before any of those
 * is never stored (dead-flag elimination; V8 drops the dead local stores).
 * Likewise the faulting instruction's index is a local (`fi`) that the
 * catch turns into the CPU's start EIP and retired count.
 *
 * A branch back to the block's first instruction (a loop of one block)
 * stays in the function while the budget allows another full pass and no
 * event is pending, instead of returning to the dispatcher.
 */
export function compileBlock(
  cpu: BlockHost,
  view: DataView,
  arrays: {
    tlbInfo: Int32Array;
    tlbPhys: Int32Array;
    codePage: Uint8Array;
    segBase: Int32Array;
    segCheck: Uint8Array;
  },
  scratch: DecodedInstructions,
  phys: number,
  cache: BlockCache,
): CompiledBlock | null {
  const ram = cpu.ram;
  const fetcher = new PhysicalFetcher(ram);
  const pageEnd = (phys & ~0xfff) + 4096;
  const lines: string[] = [];
  const offsets: number[] = [];
  const flags = new FlagState();
  const segments = new SegmentAssumptions(arrays.segCheck, arrays.segBase, cpu.stack32);
  let offset = 0;
  let count = 0;
  let ended = false;
  let loops = false;
  while (count < MAX_BLOCK && !ended) {
    const at = phys + offset;
    const length = decodeBlockInstruction(fetcher, scratch, count, at, pageEnd);
    if (length === 0) break;
    offsets.push(offset);
    const emitter = new InstructionEmitter(
      scratch,
      count,
      offset,
      length,
      at,
      view.getInt32(at, true),
      flags,
      segments,
    );
    const inline = emitter.emit();
    if (inline !== null) {
      lines.push(inline.code);
      // A write through the slow path may have hit a page holding code
      // (perhaps this block's): leave before running stale code.
      if (!inline.ends && /wr(32|16|8)\(/.test(inline.code)) {
        lines.push(`  if (cpu.blockAbort) ${emitter.leave()}`);
      }
      ended = inline.ends;
      if (inline.loops) loops = true;
    } else {
      lines.push(emitter.generic());
    }
    offset += length;
    count++;
  }
  if (count === 0) return null;
  if (!ended)
    lines.push(`  ${flags.exitFlush()} cpu.eip = (e + ${offset}) | 0; return n + ${count};`);
  // The code bytes are compared on entry (the aligned words covering the
  // block, unrolled: V8 optimizes them into the block's machine code, where
  // a shared helper's loop cost a few percent of the Linux boot): an
  // external write that bypassed invalidateCode makes the block refuse to
  // run, as the interpreter's first-word check re-decodes. Writes by the
  // block itself to a code page take the slow path, which sets blockAbort.
  const checks = segments.guards();
  for (let at = phys & ~3; at < phys + offset; at += 4) {
    checks.push(`view.getInt32(${at}, true) !== ${view.getInt32(at, true)}`);
  }
  const registers = loops && segments.stack32 ? registersInLocals(lines) : null;
  // Parenthesized so that V8 compiles the inner function with the factory
  // (its eager-compilation heuristic) instead of parsing it a second time
  // on the first call. `n` counts the instructions of completed passes of
  // a loop block.
  const body = `
const LENGTH = ${count};
return (function block(e, budget) {
  if (${checks.join(" || ")}) return -1;
  let o = 0, l = 0, v = 0, d = 0, s = 0, r = 0, t = 0;
  let n = 0, fi = 0, fk = -1, fd = 0, fs = 0, fr = 0, fc = 0, fo = 0;${registers?.declare ?? ""}
  try {${loops ? "\n  for (;;) {" : ""}
${(registers?.lines ?? lines).join("\n")}${loops ? "\n  }" : ""}
  } catch (error) {${registers?.writeBack ?? ""}
    cpu.startEip = (e + OFFSETS[fi]) | 0;
    cpu.blockDone = n + fi;
    if (fk >= 0) lz(fk, fd, fs, fr, fc, fo);
    throw error;
  }
});`;
  const factory = new Function(...FACTORY_PARAMETERS, body);
  const decoded = cpu.decoded;
  const helpers = cache.helpers ?? createHelpers(cpu, view, arrays);
  cache.helpers = helpers;
  const code = factory(
    cpu,
    cpu.regs,
    ram,
    view,
    arrays.tlbInfo,
    arrays.tlbPhys,
    arrays.codePage,
    arrays.segBase,
    arrays.segCheck,
    decoded.tag,
    decoded.firstWord,
    helpers.step,
    helpers.rd32,
    helpers.rd16,
    helpers.rd8,
    helpers.wr32,
    helpers.wr16,
    helpers.wr8,
    helpers.lz,
    new Int32Array(offsets),
  ) as BlockFunction;
  return { code, length: count };
}

/**
 * The segments as the block was compiled: one whose descriptor needs no
 * check (flat, usable, writable: `segCheck` 0) gets its base folded in as a
 * constant and its check dropped, under a guard at the block's entry that
 * returns -1 (the CPU then drops the block) when the segment or the stack
 * size changed since. Nothing inside a block loads a segment register.
 */
class SegmentAssumptions {
  private readonly assumed = new Map<number, number>();

  constructor(
    private readonly segCheck: Uint8Array,
    private readonly segBase: Int32Array,
    readonly stack32: boolean,
  ) {}

  /** Code computing linear address `l` of `offset` in segment `seg` (size index 0-2). */
  linear(seg: number, offset: string, size: number, write: boolean): string {
    if (this.segCheck[seg] !== 0) {
      return `o = ${offset};
  if (segCheck[${seg}] !== 0) cpu.checkSegment(${seg}, o, ${1 << size}, ${write});
  l = (segBase[${seg}] + o) | 0;`;
    }
    const base = this.segBase[seg];
    this.assumed.set(seg, base);
    if (base === 0) return offset.endsWith("| 0") ? `l = ${offset};` : `l = ${offset} | 0;`;
    return `l = (${base} + ${offset}) | 0;`;
  }

  /** Entry conditions under which the block must not run. */
  guards(): string[] {
    const guards = [`cpu.stack32 !== ${this.stack32}`];
    for (const [seg, base] of this.assumed) {
      guards.push(`segCheck[${seg}] !== 0`, `segBase[${seg}] !== ${base}`);
    }
    return guards;
  }
}

/** Static states of the flag locals: none pending, or unknown (a loop's head: `fk` tells). */
const NONE = -1;
const UNKNOWN = -2;

/**
 * What the compiler knows, at one point of the block, about the flag
 * locals: `pending` is the kind held in fd/fs/fr/fc that the CPU's record
 * does not have yet (NONE, or UNKNOWN at a loop head where `fk` says);
 * `known` the kind whose operands fd/fs/fr hold for evaluating a condition
 * (kept after a flush), or null.
 */
class FlagState {
  pending = UNKNOWN;
  known: number | null = null;

  /** Code storing the pending record into the CPU on a way out (the state stays). */
  exitFlush(): string {
    if (this.pending === NONE) return "";
    if (this.pending === UNKNOWN) return "if (fk >= 0) lz(fk, fd, fs, fr, fc, fo);";
    return `lz(${this.pending}, fd, fs, fr, fc, fo);`;
  }

  /** Code storing the pending record into the CPU before something reads or replaces it there. */
  flush(): string {
    const code =
      this.pending === NONE
        ? ""
        : this.pending === UNKNOWN
          ? "if (fk >= 0) { lz(fk, fd, fs, fr, fc, fo); fk = -1; }"
          : `lz(${this.pending}, fd, fs, fr, fc, fo); fk = -1;`;
    this.pending = NONE;
    return code;
  }

  /** Records the flags of a 32-bit ALU, INC or DEC result in the locals. */
  produce(kind: number, dst: string, src: string, result: string): string {
    this.pending = kind;
    this.known = kind;
    return `fd = ${dst}; fs = ${src}; fr = ${result}; fk = ${kind};`;
  }

  /** Records a result whose ZF/SF/PF follow `r` and whose CF/OF are `concrete` (IMUL, shifts). */
  resultOnly(concrete: string): string {
    this.pending = RESULT_ONLY;
    this.known = RESULT_ONLY;
    return `fc = ${concrete}; fr = r; fk = ${RESULT_ONLY};`;
  }

  /**
   * A rotate's CF/OF (`concrete`, in `fo`) over the pending record, or null
   * when there is none in the locals (the rotate then writes the CPU's flags).
   */
  rotate(concrete: string): string | null {
    if (this.pending === NONE || this.pending === UNKNOWN) return null;
    const kind = this.pending >= ROTATED ? this.pending : this.pending + ROTATED;
    this.pending = kind;
    this.known = kind;
    return `fo = ${concrete}; fk = ${kind};`;
  }

  /** Code setting `fc` to CF as it stands before an INC/DEC (they keep it). */
  carryBeforeIncDec(): string {
    switch (this.pending) {
      case LazyOp.ADD:
        return "fc = (fr >>> 0) < (fd >>> 0) ? 1 : 0;";
      case LazyOp.SUB:
        return "fc = (fd >>> 0) < (fs >>> 0) ? 1 : 0;";
      case LazyOp.LOGIC:
        return "fc = 0;";
      case RESULT_ONLY:
        return `fc = fc & ${CF};`;
      case INC_DEC_ADD:
      case INC_DEC_SUB:
        return "";
      default:
        if (this.pending >= ROTATED) return `fc = fo & ${CF};`;
        return `${this.flush()} fc = cpu.lazy & ${CF} ? cpu.getCF() : cpu.flagsRaw & ${CF};`;
    }
  }

  /** After code that wrote the CPU's flags itself (flushed first). */
  written(): void {
    this.pending = NONE;
    this.known = null;
  }

  /** After code that may or may not have replaced the record (`fk` tells which). */
  unknown(): void {
    this.pending = UNKNOWN;
    this.known = null;
  }

  /** At a loop head (the start of a pass after the first). */
  loopHead(): void {
    this.pending = UNKNOWN;
    this.known = null;
  }
}

interface Emitted {
  code: string;
  /** The instruction transfers control: the block ends with it. */
  ends: boolean;
  /** The code branches back to the block's start (the function loops). */
  loops?: boolean;
}

/** Generates one instruction's source. */
class InstructionEmitter {
  private readonly op: number;
  private readonly info: number;
  private readonly modrm: number;
  private readonly immediate: number;

  constructor(
    private readonly d: DecodedInstructions,
    private readonly index: number,
    private readonly offset: number,
    private readonly length: number,
    private readonly phys: number,
    private readonly firstWord: number,
    private readonly flags: FlagState,
    private readonly segments: SegmentAssumptions,
  ) {
    this.op = d.op[index];
    this.info = d.info[index];
    this.modrm = d.modrm[index];
    this.immediate = d.immediate[index];
  }

  private get next(): string {
    return `((e + ${this.offset + this.length}) | 0)`;
  }

  /** Records which instruction a fault would unwind (the catch turns it into EIP and the retired count). */
  private faultPoint(): string {
    return `fi = ${this.index};`;
  }

  /** Leaves the block after this instruction (it completed). */
  leave(): string {
    return `{ ${this.flags.exitFlush()} cpu.eip = ${this.next}; return n + ${this.index + 1}; }`;
  }

  /** Leaves the block for `target` (offset from the block's start) after this instruction. */
  private exitTo(target: number): string {
    return `${this.flags.exitFlush()} cpu.eip = (e + ${target}) | 0; return n + ${this.index + 1};`;
  }

  /**
   * A taken branch back to the block's start: another pass when the budget
   * holds a whole one, no event is pending and no code was dropped under
   * the block (a page walk's accessed bit in its page), else a normal exit.
   */
  private loopBack(): string {
    return `n = n + ${this.index + 1}; if (n + LENGTH > budget || cpu.eventCheck || cpu.blockAbort) { ${this.flags.exitFlush()} cpu.eip = e; return n; } continue;`;
  }

  /** Runs the instruction through the interpreter on its decoded slot. */
  generic(): string {
    const slot = this.phys & (BLOCK_CACHE_SIZE - 1);
    const n = this.index + 1;
    const flush = this.flags.flush();
    this.flags.written();
    return `  ${flush} fi = ${this.index}; if (step(${slot}, ${this.phys}, ${this.firstWord}, (e + ${this.offset}) | 0, ${this.next}, n + ${this.index})) return n + ${n}; // op 0x${this.op.toString(16)}`;
  }

  /** Offset expression of the ModRM memory operand (32-bit addressing). */
  private offsetExpression(): string {
    const d = this.d;
    const i = this.index;
    const parts: string[] = [];
    if (d.base[i] >= 0) parts.push(`regs[${d.base[i]}]`);
    if (d.index[i] >= 0) {
      parts.push(d.scale[i] ? `(regs[${d.index[i]}] << ${d.scale[i]})` : `regs[${d.index[i]}]`);
    }
    const displacement = d.displacement[i];
    if (displacement !== 0 || parts.length === 0) parts.push(String(displacement));
    return parts.length === 1 && parts[0].startsWith("regs")
      ? parts[0]
      : `(${parts.join(" + ")}) | 0`;
  }

  /** Linear address of the memory operand into `l` (segment checks as `ea`). */
  private address(size: number, write: boolean): string {
    const seg = (this.info >> Info.SEG_SHIFT) & 7;
    return this.segments.linear(seg, this.offsetExpression(), size, write);
  }

  /** Reads `size` (0, 1, 2) at linear `l` into `target`: the TLB hit inline, the rest through readLin. */
  private read(size: number, target: string): string {
    return `${target} = rd${size === 2 ? 32 : size === 1 ? 16 : 8}(l);`;
  }

  /** Writes `value` to linear `l`; pages holding code take the slow path (it invalidates them). */
  private write32(value: string): string {
    return `wr32(l, ${value});`;
  }

  private write8(value: string): string {
    return `wr8(l, ${value});`;
  }

  /** ALU operation `operation` (ADD OR . . AND SUB XOR CMP) of d and s into r; null for ADC/SBB. */
  private static alu(operation: number): { code: string; kind: number } | null {
    switch (operation) {
      case 0:
        return { code: "r = (d + s) | 0;", kind: LazyOp.ADD };
      case 1:
        return { code: "r = d | s;", kind: LazyOp.LOGIC };
      case 4:
        return { code: "r = d & s;", kind: LazyOp.LOGIC };
      case 5:
      case 7:
        return { code: "r = (d - s) | 0;", kind: LazyOp.SUB };
      case 6:
        return { code: "r = d ^ s;", kind: LazyOp.LOGIC };
      default:
        return null;
    }
  }

  /** Inline code for the hottest forms, or null to use `generic` (the flag state is untouched then). */
  emit(): Emitted | null {
    const op = this.op;
    const info = this.info;
    const flags = this.flags;
    // Inline forms are 32-bit address size, no lock/rep; 32-bit operands
    // but for a few 16-bit moves and tests frequent in kernel code.
    if (info & (Info.A16 | Info.LOCK | Info.REP | Info.REPNE)) return null;
    const mem = (info & Info.MEM) !== 0;
    const modrm = this.modrm;
    const reg = (modrm >> 3) & 7;
    const rm = modrm & 7;
    const fp = this.faultPoint();
    if (info & Info.O16) return this.emit16(mem, reg, rm, fp);
    if (op < 0x40 && (op & 7) < 6 && (op & 7) !== 0 && (op & 7) !== 2 && (op & 7) !== 4) {
      // ALU r/m32,r32 (form 1), r32,r/m32 (form 3), eax,imm32 (form 5).
      const operation = op >> 3;
      const alu = InstructionEmitter.alu(operation);
      if (alu === null) return null;
      const form = op & 7;
      const store = operation !== 7;
      if (form === 5) {
        return {
          code: `  d = regs[0]; s = ${this.immediate}; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}${store ? " regs[0] = r;" : ""}`,
          ends: false,
        };
      }
      if (!mem) {
        const dstReg = form === 1 ? rm : reg;
        const srcReg = form === 1 ? reg : rm;
        // xor/sub r, r: the result is 0 whatever the register held.
        const zero = (operation === 6 || operation === 5) && dstReg === srcReg;
        return {
          code: zero
            ? `  d = regs[${dstReg}]; s = d; r = 0; ${flags.produce(alu.kind, "d", "s", "0")}${store ? ` regs[${dstReg}] = 0;` : ""}`
            : `  d = regs[${dstReg}]; s = regs[${srcReg}]; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}${store ? ` regs[${dstReg}] = r;` : ""}`,
          ends: false,
        };
      }
      if (form === 3 || operation === 7) {
        // Memory source (or CMP r/m, r: reads only).
        const load = `${fp} ${this.address(2, false)}
  ${this.read(2, form === 3 ? "s" : "d")}`;
        const regLoad = form === 3 ? `d = regs[${reg}];` : `s = regs[${reg}];`;
        return {
          code: `  ${load}
  ${regLoad} ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}${store ? ` regs[${reg}] = r;` : ""}`,
          ends: false,
        };
      }
      // Read-modify-write of memory (as readRmForWrite / alu / writeRmBack:
      // the flags are recorded before the write, which may fault).
      return {
        code: `  ${fp} ${this.address(2, true)}
  ${this.read(2, "d")}
  s = regs[${reg}]; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}
  ${this.write32("r")}`,
        ends: false,
      };
    }
    switch (op) {
      case 0x81:
      case 0x83: {
        const alu = InstructionEmitter.alu(reg);
        if (alu === null) return null;
        if (!mem) {
          return {
            code: `  d = regs[${rm}]; s = ${this.immediate}; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}${reg !== 7 ? ` regs[${rm}] = r;` : ""}`,
            ends: false,
          };
        }
        if (reg === 7) {
          return {
            code: `  ${fp} ${this.address(2, false)}
  ${this.read(2, "d")}
  s = ${this.immediate}; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}`,
            ends: false,
          };
        }
        return {
          code: `  ${fp} ${this.address(2, true)}
  ${this.read(2, "d")}
  s = ${this.immediate}; ${alu.code} ${flags.produce(alu.kind, "d", "s", "r")}
  ${this.write32("r")}`,
          ends: false,
        };
      }
      case 0xf7: {
        // Group 3 (as group3): TEST imm (/0, /1), NOT (/2), NEG (/3, SUB from 0).
        if (reg > 3) return null;
        if (reg < 2) {
          const load = mem
            ? `${fp} ${this.address(2, false)}\n  ${this.read(2, "d")}`
            : `d = regs[${rm}];`;
          return {
            code: `  ${load} s = ${this.immediate}; r = d & s; ${flags.produce(LazyOp.LOGIC, "d", "s", "r")}`,
            ends: false,
          };
        }
        if (!mem) {
          return {
            code:
              reg === 2
                ? `  regs[${rm}] = ~regs[${rm}];`
                : `  d = regs[${rm}]; r = (0 - d) | 0; ${flags.produce(LazyOp.SUB, "0", "d", "r")} regs[${rm}] = r;`,
            ends: false,
          };
        }
        return {
          code: `  ${fp} ${this.address(2, true)}
  ${this.read(2, "d")}
  ${reg === 2 ? "r = ~d;" : `r = (0 - d) | 0; ${flags.produce(LazyOp.SUB, "0", "d", "r")}`}
  ${this.write32("r")}`,
          ends: false,
        };
      }
      case 0x85:
      case 0xa9: {
        if (op === 0xa9) {
          return {
            code: `  d = regs[0]; s = ${this.immediate}; r = d & s; ${flags.produce(LazyOp.LOGIC, "d", "s", "r")}`,
            ends: false,
          };
        }
        if (!mem) {
          return {
            code: `  d = regs[${rm}]; s = regs[${reg}]; r = d & s; ${flags.produce(LazyOp.LOGIC, "d", "s", "r")}`,
            ends: false,
          };
        }
        return {
          code: `  ${fp} ${this.address(2, false)}
  ${this.read(2, "d")}
  s = regs[${reg}]; r = d & s; ${flags.produce(LazyOp.LOGIC, "d", "s", "r")}`,
          ends: false,
        };
      }
      case 0x40:
      case 0x41:
      case 0x42:
      case 0x43:
      case 0x44:
      case 0x45:
      case 0x46:
      case 0x47:
      case 0x48:
      case 0x49:
      case 0x4a:
      case 0x4b:
      case 0x4c:
      case 0x4d:
      case 0x4e:
      case 0x4f: {
        // INC/DEC leave CF alone (SDM vol. 2 INC): `fc` keeps it.
        const r = op & 7;
        const decrement = op >= 0x48;
        const carry = flags.carryBeforeIncDec();
        return {
          code: `  ${carry} d = regs[${r}]; r = (d ${decrement ? "-" : "+"} 1) | 0; regs[${r}] = r; ${flags.produce(decrement ? INC_DEC_SUB : INC_DEC_ADD, "d", "1", "r")}`,
          ends: false,
        };
      }
      case 0x50:
      case 0x51:
      case 0x52:
      case 0x53:
      case 0x54:
      case 0x55:
      case 0x56:
      case 0x57:
        return { code: this.push(`regs[${op & 7}]`), ends: false };
      case 0x68:
      case 0x6a:
        return { code: this.push(String(this.immediate)), ends: false };
      case 0x58:
      case 0x59:
      case 0x5a:
      case 0x5b:
      case 0x5c:
      case 0x5d:
      case 0x5e:
      case 0x5f:
        return { code: this.pop(`regs[${op & 7}]`), ends: false };
      case 0x89:
        if (!mem) return { code: `  regs[${rm}] = regs[${reg}];`, ends: false };
        return {
          code: `  ${fp} ${this.address(2, true)}
  ${this.write32(`regs[${reg}]`)}`,
          ends: false,
        };
      case 0x88:
        if (!mem) return null;
        return {
          code: `  ${fp} ${this.address(0, true)}
  v = ${reg < 4 ? `regs[${reg}] & 255` : `(regs[${reg - 4}] >> 8) & 255`};
  ${this.write8("v")}`,
          ends: false,
        };
      case 0x8a: {
        if (!mem) return null;
        const target =
          reg < 4
            ? `regs[${reg}] = (regs[${reg}] & -256) | v;`
            : `regs[${reg - 4}] = (regs[${reg - 4}] & -65281) | (v << 8);`;
        return {
          code: `  ${fp} ${this.address(0, false)}
  ${this.read(0, "v")}
  ${target}`,
          ends: false,
        };
      }
      case 0x8b:
        if (!mem) return { code: `  regs[${reg}] = regs[${rm}];`, ends: false };
        return {
          code: `  ${fp} ${this.address(2, false)}
  ${this.read(2, `regs[${reg}]`)}`,
          ends: false,
        };
      case 0xc7:
        if (!mem) return { code: `  regs[${rm}] = ${this.immediate};`, ends: false };
        return {
          code: `  ${fp} ${this.address(2, true)}
  ${this.write32(String(this.immediate))}`,
          ends: false,
        };
      case 0x8d:
        if (!mem) return null;
        return { code: `  regs[${reg}] = ${this.offsetExpression()};`, ends: false };
      case 0xb8:
      case 0xb9:
      case 0xba:
      case 0xbb:
      case 0xbc:
      case 0xbd:
      case 0xbe:
      case 0xbf:
        return { code: `  regs[${op & 7}] = ${this.immediate};`, ends: false };
      case 0x1b6:
      case 0x1b7: {
        const size = op === 0x1b6 ? 0 : 1;
        if (!mem) {
          const value =
            size === 1
              ? `regs[${rm}] & 65535`
              : rm < 4
                ? `regs[${rm}] & 255`
                : `(regs[${rm - 4}] >> 8) & 255`;
          return { code: `  regs[${reg}] = ${value};`, ends: false };
        }
        return {
          code: `  ${fp} ${this.address(size, false)}
  ${this.read(size, `regs[${reg}]`)}`,
          ends: false,
        };
      }
      case 0x69:
      case 0x6b: {
        // IMUL r32, r/m32, imm (as imul2): CF=OF when the product does not fit.
        const load = mem
          ? `${fp} ${this.address(2, false)}
  ${this.read(2, "d")}`
          : `d = regs[${rm}];`;
        return {
          code: `  ${load}
  r = Math.imul(d, ${this.immediate}); v = d * ${this.immediate}; ${flags.resultOnly(`v === r ? 0 : ${CF | OF}`)}
  regs[${reg}] = r;`,
          ends: false,
        };
      }
      case 0xc1:
      case 0xd1: {
        // Shifts and rotates by a constant (as shift32; shifts of memory as
        // shiftGroup: read, flags, write back, even of an unchanged value).
        if (mem && reg < 4) return null;
        const count = (op === 0xd1 ? 1 : this.immediate) & 31;
        if (count === 0 && !mem) return { code: "", ends: false };
        const load = mem
          ? `${fp} ${this.address(2, true)}\n  ${this.read(2, "d")}`
          : `d = regs[${rm}];`;
        const store = mem ? this.write32("r") : `regs[${rm}] = r;`;
        if (count === 0) return { code: `  ${load} r = d; ${store}`, ends: false };
        const shift = (code: string, concrete: string) => ({
          code: `  ${load} ${code} ${flags.resultOnly(concrete)}
  ${store}`,
          ends: false,
        });
        switch (reg) {
          case 4:
          case 6:
            return shift(
              `r = d << ${count}; v = (d >>> ${32 - count}) & 1;`,
              `v | (((r >>> 31) ^ v) ? ${OF} : 0)`,
            );
          case 5:
            return shift(
              `r = (d >>> ${count}) | 0;`,
              `((d >>> ${count - 1}) & 1) | (d < 0 ? ${OF} : 0)`,
            );
          case 7:
            return shift(`r = d >> ${count};`, `(d >> ${count - 1}) & 1`);
        }
        let code: string;
        let concrete: string;
        switch (reg) {
          case 0:
            code = `d = regs[${rm}]; r = (d << ${count}) | (d >>> ${32 - count}); v = r & 1;`;
            concrete = `v | (((r >>> 31) ^ v) ? ${OF} : 0)`;
            break;
          case 1:
            code = `d = regs[${rm}]; r = (d >>> ${count}) | (d << ${32 - count});`;
            concrete = `(r >>> 31) | (((r ^ (r << 1)) >>> 31) ? ${OF} : 0)`;
            break;
          default:
            return null;
        }
        const pending = flags.rotate(concrete);
        if (pending !== null) {
          return { code: `  ${code} ${pending}\n  regs[${rm}] = r;`, ends: false };
        }
        code += `\n  cpu.flagsRaw = (cpu.flagsRaw & ${~(CF | OF)}) | ${concrete}; cpu.lazy &= ${~(CF | OF)};`;
        // Rotates change CF/OF only: the other flags stay in the CPU's record.
        const flush = flags.flush();
        flags.written();
        return {
          code: `  ${flush} ${code}
  regs[${rm}] = r;`,
          ends: false,
        };
      }
      case 0xd3: {
        // SHL/SHR/SAR by CL (as shift32 and shiftGroup): a count of 0 (mod
        // 32) changes neither the operand nor the flags (memory is written
        // back all the same), so afterwards the record in the locals is this
        // one or the previous one (`fk` says).
        if (reg !== 4 && reg !== 5 && reg !== 6 && reg !== 7) return null;
        let code: string;
        let concrete: string;
        if (reg === 5) {
          code = "r = (d >>> t) | 0;";
          concrete = `((d >>> (t - 1)) & 1) | (d < 0 ? ${OF} : 0)`;
        } else if (reg === 7) {
          code = "r = d >> t;";
          concrete = "(d >> (t - 1)) & 1";
        } else {
          code = "r = d << t; v = (d >>> (32 - t)) & 1;";
          concrete = `v | (((r >>> 31) ^ v) ? ${OF} : 0)`;
        }
        const record = flags.resultOnly(concrete);
        flags.unknown();
        if (mem) {
          return {
            code: `  ${fp} ${this.address(2, true)}
  ${this.read(2, "d")} t = regs[1] & 31; r = d; if (t !== 0) { ${code} ${record} }
  ${this.write32("r")}`,
            ends: false,
          };
        }
        return {
          code: `  t = regs[1] & 31; if (t !== 0) { d = regs[${rm}]; ${code} ${record} regs[${rm}] = r; }`,
          ends: false,
        };
      }
      case 0x1be:
      case 0x1bf: {
        const size = op === 0x1be ? 0 : 1;
        const shift = size === 0 ? 24 : 16;
        if (!mem) {
          const value =
            size === 1 ? `regs[${rm}]` : rm < 4 ? `regs[${rm}]` : `(regs[${rm - 4}] >> 8)`;
          return {
            code: `  regs[${reg}] = (${value} << ${shift}) >> ${shift};`,
            ends: false,
          };
        }
        return {
          code: `  ${fp} ${this.address(size, false)}
  ${this.read(size, "v")}
  regs[${reg}] = (v << ${shift}) >> ${shift};`,
          ends: false,
        };
      }
      case 0x90:
        return { code: "", ends: false };
      case 0xe9:
      case 0xeb: {
        const target = this.offset + this.length + this.immediate;
        if (target === 0) return { code: `  ${this.loopBack()}`, ends: true, loops: true };
        return { code: `  ${this.exitTo(target)}`, ends: true };
      }
      case 0xe8:
        return {
          code: `${this.push(this.next)}
  ${this.exitTo(this.offset + this.length + this.immediate)}`,
          ends: true,
        };
      case 0xc3:
        return {
          code: `${this.pop("v")}
  ${flags.exitFlush()} cpu.eip = v; return n + ${this.index + 1};`,
          ends: true,
        };
    }
    if (op >= 0x140 && op <= 0x14f) {
      // CMOVcc: the source is read (and may fault) whatever the condition.
      let condition = conditionExpression(op & 15, flags.known);
      let before = "";
      if (condition === null) {
        before = flags.flush();
        condition = cpuCondition(op & 15);
      }
      const load = mem
        ? `${fp} ${this.address(2, false)}\n  ${this.read(2, "v")}`
        : `v = regs[${rm}];`;
      return {
        code: `  ${load} ${before} if (${condition}) regs[${reg}] = v;`,
        ends: false,
      };
    }
    if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) {
      // Jcc: the fall-through path stays in the block (a side exit when taken).
      let condition = conditionExpression(op & 15, flags.known);
      let before = "";
      if (condition === null) {
        before = flags.flush();
        condition = cpuCondition(op & 15);
      }
      const target = this.offset + this.length + this.immediate;
      const taken = target === 0 ? this.loopBack() : this.exitTo(target);
      return {
        code: `  ${before} if (${condition}) { ${taken} }`,
        ends: false,
        loops: target === 0,
      };
    }
    return null;
  }

  /** 16-bit forms (as setReg(1, ...)/writeLin16/alu(4, 1, ...)), or null. */
  private emit16(mem: boolean, reg: number, rm: number, fp: string): Emitted | null {
    switch (this.op) {
      case 0x8b:
        if (!mem) {
          return {
            code: `  regs[${reg}] = (regs[${reg}] & -65536) | (regs[${rm}] & 65535);`,
            ends: false,
          };
        }
        return {
          code: `  ${fp} ${this.address(1, false)}
  ${this.read(1, "v")}
  regs[${reg}] = (regs[${reg}] & -65536) | v;`,
          ends: false,
        };
      case 0x89:
        if (!mem) return null;
        return {
          code: `  ${fp} ${this.address(1, true)}
  wr16(l, regs[${reg}]);`,
          ends: false,
        };
      case 0x85: {
        if (mem) return null;
        const flush = this.flags.flush();
        this.flags.written();
        return {
          code: `  ${flush} d = regs[${rm}] & 65535; s = regs[${reg}] & 65535; r = d & s;
  cpu.lazyOp = ${LazyOp.LOGIC}; cpu.lazySize = 1; cpu.lazyDst = d; cpu.lazySrc = s; cpu.lazyResult = r; cpu.lazy = ${ARITH};`,
          ends: false,
        };
      }
      default:
        return null;
    }
  }

  /** PUSH of a 32-bit value (as push32: the write first, ESP after it). */
  private push(value: string): string {
    if (!this.segments.stack32) return `  ${this.faultPoint()} cpu.push32(${value});`;
    return `  ${this.faultPoint()} v = ${value}; t = (regs[4] - 4) | 0;
  ${this.segments.linear(2, "t", 2, true)}
  ${this.write32("v")}
  regs[4] = t;`;
  }

  /** POP of a 32-bit value into `target` (as pop32: the read first, ESP after it). */
  private pop(target: string): string {
    if (!this.segments.stack32) return `  ${this.faultPoint()} ${target} = cpu.pop32();`;
    return `  ${this.faultPoint()} t = regs[4];
  ${this.segments.linear(2, "t", 2, false)}
  ${this.read(2, "v")}
  regs[4] = (t + 4) | 0; ${target} = v;`;
  }
}

/**
 * Condition `cc` (SDM vol. 1 appendix B) as an expression on the flag
 * locals of the last flag-setting instruction of kind `known`, or null
 * when they do not determine it (then the CPU evaluates it). The signed
 * conditions use the exact sum or difference (doubles hold it): SF != OF
 * is "the true result is negative".
 */
function conditionExpression(cc: number, known: number | null): string | null {
  if (known === null) return null;
  let expression: string | null = null;
  if (known >= ROTATED) {
    // CF/OF from the rotate, ZF/SF from the record's result.
    expression =
      [`(fo & ${OF}) !== 0`, `(fo & ${CF}) !== 0`, "fr === 0", null, "fr < 0"][cc >> 1] ?? null;
    if (expression === null) return null;
    return cc & 1 ? `!(${expression})` : expression;
  }
  switch (known) {
    case LazyOp.SUB:
      expression = [
        "((fd ^ fs) & (fd ^ fr)) < 0",
        "(fd >>> 0) < (fs >>> 0)",
        "fr === 0",
        "(fd >>> 0) <= (fs >>> 0)",
        "fr < 0",
        null,
        "fd < fs",
        "fd <= fs",
      ][cc >> 1];
      break;
    case LazyOp.ADD:
      expression = [
        "(~(fd ^ fs) & (fd ^ fr)) < 0",
        "(fr >>> 0) < (fd >>> 0)",
        "fr === 0",
        "((fr >>> 0) < (fd >>> 0) || fr === 0)",
        "fr < 0",
        null,
        "fd + fs < 0",
        "fd + fs <= 0",
      ][cc >> 1];
      break;
    case LazyOp.LOGIC:
      expression = ["false", "false", "fr === 0", "fr === 0", "fr < 0", null, "fr < 0", "fr <= 0"][
        cc >> 1
      ];
      break;
    case INC_DEC_ADD:
      expression = [
        "fd === 2147483647",
        "fc !== 0",
        "fr === 0",
        "(fc !== 0 || fr === 0)",
        "fr < 0",
        null,
        "fd < -1",
        "fd <= -1",
      ][cc >> 1];
      break;
    case INC_DEC_SUB:
      expression = [
        "fd === -2147483648",
        "fc !== 0",
        "fr === 0",
        "(fc !== 0 || fr === 0)",
        "fr < 0",
        null,
        "fd < 1",
        "fd <= 1",
      ][cc >> 1];
      break;
    case RESULT_ONLY:
      expression = [
        `(fc & ${OF}) !== 0`,
        `(fc & ${CF}) !== 0`,
        "fr === 0",
        `((fc & ${CF}) !== 0 || fr === 0)`,
        "fr < 0",
        null,
        `(fr < 0) !== ((fc & ${OF}) !== 0)`,
        `(fr === 0 || (fr < 0) !== ((fc & ${OF}) !== 0))`,
      ][cc >> 1];
      break;
  }
  if (expression === null) return null;
  return cc & 1 ? `!(${expression})` : expression;
}

/** Condition `cc` evaluated by the CPU from its flags (ZF read without computing the others). */
function cpuCondition(cc: number): string {
  if (cc >> 1 === 2) {
    const zero = `(cpu.lazy & ${ZF} ? cpu.lazySize === 2 ? cpu.lazyResult === 0 : cpu.getZF() : (cpu.flagsRaw & ${ZF}) !== 0)`;
    return cc & 1 ? `!${zero}` : zero;
  }
  return `cpu.condition(${cc})`;
}
