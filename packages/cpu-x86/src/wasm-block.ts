/**
 * The WebAssembly block tier: the block tier of block.ts with WebAssembly
 * as the target instead of JavaScript source. V8 compiles a small module
 * synchronously with its baseline compiler (Liftoff) in tens of
 * microseconds, where a `new Function` block costs a quarter of a
 * millisecond and then runs in the bytecode interpreter for a long time:
 * so blocks can be compiled at a much lower threshold and run well at
 * once. Hot modules are recompiled by TurboFan in the background.
 *
 * Same input (the decoder's records), same block boundaries (`GENERIC`,
 * `MAX_BLOCK`, one physical page) and exactly the same semantics as the
 * JavaScript tier: code-byte (per page, `CodeSnapshots`) and segment
 * guards on entry (-1), the
 * budget, `step` (the interpreter's `execute`, imported) for every form
 * not generated inline, the arithmetic flags of the last flag-setting
 * instruction in locals stored (to scratch, `WASM_FLAGS`) only where
 * something outside the block can see them, leaving after a write that
 * took the slow path and hit code. WebAssembly addresses one memory, so
 * guest RAM and the CPU's registers, segment bases, TLB, code-page map and
 * block-cache tags share it (`X86WasmLayout`): loads and stores through
 * the TLB are inline; misses, MMIO, page crossings and writes to code
 * pages call the CPU's `readLin*`/`writeLin*`. Registers stay in that
 * memory (loop blocks with them in locals, as block.ts does, measured no
 * faster: TurboFan keeps the loads cheap).
 *
 * Hot blocks are queued and compiled several to a module (`queue`), and
 * entered through one dispatcher that chains from block to block inside
 * WebAssembly (`dispatcherBody`); the CPU's helpers are reached through
 * one imported table. Each of these cut a cost V8 charges per module,
 * per instance or per crossing between JavaScript and WebAssembly.
 *
 * Faults: an imported call throws the CPU's fault object through the
 * block; a `try`/`catch_all` around the body (the WebAssembly exception
 * handling proposal, which catches JavaScript exceptions) stores the
 * faulting instruction's start EIP, the retired count and the pending
 * flags (`fix`), then rethrows, as the JavaScript tier's catch does.
 */
import {
  BLOCK_CACHE_SIZE,
  type BlockCache,
  type BlockFunction,
  type BlockHost,
  createHelpers,
  decodeBlockInstruction,
  INC_DEC_ADD,
  INC_DEC_SUB,
  MAX_BLOCK,
  PhysicalFetcher,
  RESULT_ONLY,
  ROTATED,
} from "./block";
import { type CodeSnapshot, CodeSnapshots } from "./code-snapshots";
import type { X86WasmLayout } from "./cpu";
import { type DecodedInstructions, Info } from "./decoder";
import { LazyOp } from "./flags";
import {
  CodeWriter,
  encodeModule,
  type FunctionDefinition,
  type FunctionImport,
  I32,
  Op,
} from "./wasm-writer";

/** Interpreted executions of an instruction before a WebAssembly block is compiled at it. */
/** Failed batches after which the tier stops compiling (see `WasmBlockTier.failures`). */
const MAX_COMPILE_FAILURES = 3;

export const DEFAULT_WASM_JIT_THRESHOLD = 100;
/** The block table's first size (it doubles as blocks need: BlockCache.claimIndex). */
const INITIAL_TABLE = 4096;
/** Blocks compiled together as one module (see `WasmBlockTier.queue`). */
export const WASM_BATCH = 16;

/** Int32 words of the layout's scratch the CPU keeps for the tier (mirrors of private fields). */
export const WASM_READ_NEED = 0;
export const WASM_WRITE_NEED = 1;
/**
 * The CPU's summary for block guards: bit `seg` set while segment `seg`
 * has base 0 and no access check (segCheck 0), bit WASM_FLAT_STACK32 while
 * SS is a 32-bit stack. A block that assumed those checks this one word.
 */
export const WASM_FLAT = 15;
export const WASM_FLAT_STACK32 = 8;
/** EIP after a block: the CPU's `eip` is a JavaScript field the module cannot set. */
const WASM_EXIT_EIP = 3;
/**
 * A lazy-flag record a block flushed (kind, dst, src, result, carry,
 * rotated: `lz`'s arguments; kind -1: none), applied by JavaScript before
 * anything reads the CPU's flags (`sync`): a call from WebAssembly into
 * JavaScript costs more than six stores, and blocks flush at most exits.
 * Every record sets all six arithmetic flags, so a newer one replaces an
 * unapplied older one.
 */
const WASM_FLAGS = 8;
/** The CPU's execNeed (the dispatcher's TLB probe for the next block). */
export const WASM_EXEC_NEED = 4;
/** Set by a block that must return to the CPU's loop rather than chain (see dispatcherBody). */
const WASM_NO_CHAIN = 5;
/** Instructions the blocks chained before the running one retired (its blockDone counts them). */
const WASM_CHAIN_TOTAL = 6;
/** Blocks entered by chaining since the loop last counted them (`counters.blockRuns`). */
const WASM_CHAINED = 7;
/**
 * Bumped by the CPU wherever memory may have changed behind it (each run,
 * each call out to host code: `hostMayWrite`), from 1 to 255 and around.
 * The first entry into a block of a page after a bump compares the page's
 * code with what its blocks were generated from (`CodeSnapshots`: JavaScript
 * before it enters a block, the dispatcher before it chains into one).
 */
export const WASM_CODE_EPOCH = 14;
/** CS in the segment arrays. */
const SEG_CS = 1;

const T_MMIO = 64;
const CF = 1;
const OF = 0x800;

// The CPU's helpers, by index in the table every block module imports.
const F_STEP = 0;
const F_FIX = 1;
const F_RD32 = 2;
const F_RD16 = 3;
const F_RD8 = 4;
const F_WR32 = 5;
const F_WR16 = 6;
const F_WR8 = 7;
const F_CHECK_SEGMENT = 8;
const F_CONDITION = 9;
const F_CARRY = 10;
const F_EVENT = 11;

const fn = (params: number, results: number): FunctionImport["type"] => ({
  params: new Array(params).fill(I32),
  results: new Array(results).fill(I32),
});
const IMPORTS: FunctionImport[] = [
  { module: "k", field: "step", type: fn(6, 1) },
  { module: "k", field: "fix", type: fn(8, 0) },
  { module: "k", field: "rd32", type: fn(1, 1) },
  { module: "k", field: "rd16", type: fn(1, 1) },
  { module: "k", field: "rd8", type: fn(1, 1) },
  { module: "k", field: "wr32", type: fn(2, 1) },
  { module: "k", field: "wr16", type: fn(2, 1) },
  { module: "k", field: "wr8", type: fn(2, 1) },
  { module: "k", field: "chk", type: fn(4, 0) },
  { module: "k", field: "cond", type: fn(1, 1) },
  { module: "k", field: "carry", type: fn(0, 1) },
  { module: "k", field: "ev", type: fn(0, 1) },
];

// Functions every block module defines before its blocks (direct `call`s,
// a few ns, where the imported slow paths cost a call_indirect into
// JavaScript): the TLB fast paths of reads and writes and the flag-record
// store, which inline cost 50-80 bytes per use and were most of a block's
// code (compiling is paid per byte).
const H_RD32 = 0;
const H_RD16 = 1;
const H_RD8 = 2;
const H_WR32 = 3;
const H_WR16 = 4;
const H_WR8 = 5;
const H_LZ = 6;

// Locals: the two parameters, then the block's scratch (names as in block.ts).
const E = 0;
const BUDGET = 1;
const L = 2;
const O = 3;
const V = 4;
const D = 5;
const S = 6;
const R = 7;
const T = 8;
const N = 9;
const FI = 10;
const FK = 11;
const FD = 12;
const FS = 13;
const FR = 14;
const FC = 15;
const FO = 16;
/** A slow-path write reported that the CPU set blockAbort. */
const AB = 17;
/** The shared exit's EIP and retired count (see `exit`). */
const XE = 18;
const XN = 19;
/** A loop block's inline TLB sequences: the entry's index and the physical address. */
const TP = 20;
const TH = 21;
const LOCALS = 22 - 2;

/** What the tier reaches of the CPU (private members of X86Cpu, by name). */
interface WasmHost extends BlockHost {
  readonly counters: {
    blockRuns: number;
    wasmBlocks: number;
    wasmBytes: number;
    wasmCompileMicroseconds: number;
  };
  startEip: number;
  afterInstruction: boolean;
  eventCheck: boolean;
  readLin32(linear: number): number;
  readLin16(linear: number): number;
  readLin8(linear: number): number;
  writeLin32(linear: number, value: number): void;
  writeLin16(linear: number, value: number): void;
  writeLin8(linear: number, value: number): void;
  checkSegment(seg: number, offset: number, size: number, write: boolean): void;
  condition(cc: number): boolean;
  getCF(): number;
  invalidatePhysPage(page: number, written: boolean): void;
}

/** Distinct signatures of the helpers: a module's types start with these (for call_indirect). */
const HELPER_TYPES = [
  ...new Map(IMPORTS.map((entry) => [JSON.stringify(entry.type), entry.type])).values(),
];
const HELPER_TYPE_INDEX = IMPORTS.map((entry) =>
  HELPER_TYPES.findIndex((type) => JSON.stringify(type) === JSON.stringify(entry.type)),
);

/** Jcc rel8 or rel32 (the decoder's op numbers). */
const isJcc = (op: number): boolean => (op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f);
/** Prefixes that keep a branch out of the tier's own handling (o16/a16 truncate EIP; lock/rep are invalid). */
const PREFIXED = Info.O16 | Info.A16 | Info.LOCK | Info.REP | Info.REPNE;

/** Whether this host runs WebAssembly with exception handling (`try`/`catch_all`). */
export function wasmTierSupported(): boolean {
  if (typeof WebAssembly !== "object") return false;
  try {
    const body = new CodeWriter().begin(Op.try).op(Op.catchAll).byte(Op.rethrow).u32(0).end();
    const bytes = encodeModule({
      imports: [],
      functions: [{ type: { params: [], results: [] }, locals: 0, body, export: "f" }],
    });
    new WebAssembly.Instance(new WebAssembly.Module(bytes));
    return true;
  } catch {
    return false;
  }
}

/** A block's exported function behind the JavaScript signature (EIP is copied out of scratch). */
function wrap(
  run: (index: number, eip: number, budget: number) => number,
  index: number,
  cpu: WasmHost,
  words: Int32Array,
  sync: () => void,
  page: number,
  snapshots: CodeSnapshots,
): BlockFunction {
  const checked = snapshots.checked;
  return (eip, budget) => {
    // The first entry since the code epoch changed checks the page's code.
    if (checked[page] !== words[WASM_CODE_EPOCH] && !snapshots.verify(page)) return -1;
    const count = run(index, eip, budget);
    if (count >= 0) {
      cpu.eip = words[WASM_EXIT_EIP];
      sync();
      if (words[WASM_CHAINED] !== 0) {
        cpu.counters.blockRuns += words[WASM_CHAINED];
        words[WASM_CHAINED] = 0;
      }
    }
    return count;
  };
}

/**
 * The one entry into compiled blocks: `run(index, eip, budget)` runs the
 * block at `index` in the table, then chains to the block at the EIP it left for while
 * the CPU's loop would enter it too (the block in the cache for the
 * physical address, CS without a limit check, the execute permission in
 * the TLB, the whole block within the budget, its page's code checked in
 * this code epoch) and the block left through
 * its own code: a block that ran the interpreter's `step` or a slow path
 * (where the CPU may have changed mode, translations or code, or an event
 * may have become pending) returns to the loop (WASM_NO_CHAIN). Returns
 * the instructions retired, or -1 when the first block refused to run
 * (a later one that refuses ends the chain at its EIP; the loop then
 * finds it again and drops it).
 */
function dispatcherBody(layout: X86WasmLayout): CodeWriter {
  /** The block's table index (the parameter, then each chained block's). */
  const INDEX = 0;
  const EIP = 1;
  const BUDGET = 2;
  const TOTAL = 3;
  const COUNT = 4;
  const LINEAR = 5;
  const PAGE = 6;
  const PHYS = 7;
  /** Blocks entered by chaining in this call (added to WASM_CHAINED on the way out). */
  const CHAINS = 8;
  /** CS base and the execute permission the TLB must grant (with T_MMIO: none), read once. */
  const CS_BASE = 9;
  const NEED = 10;
  /** The linear page of the last translation (1: none) and its physical page. */
  const LAST_LINEAR = 11;
  const LAST_PHYS = 12;
  /** The chained block's cache entry: its byte offset, then its second word (length | index << 8). */
  const ENTRY = 13;
  const WORD = 14;
  /** The code epoch: a chained block's page must have been checked in it (CodeSnapshots). */
  const EPOCH = 15;
  const word = (index: number) => layout.scratch + 4 * index;
  const c = new CodeWriter();
  const count = () => {
    c.i32(0).i32(0).memory(Op.i32Load, 2, word(WASM_CHAINED)).get(CHAINS).op(Op.i32Add);
    c.memory(Op.i32Store, 2, word(WASM_CHAINED));
  };
  const leave = () => {
    c.begin(Op.if);
    count();
    c.get(TOTAL).op(Op.return).end();
  };
  // Only `step` and slow paths change CS, the privilege level or the TLB,
  // and a block that took one ends the chain (WASM_NO_CHAIN): within one
  // call, CS (entered without a limit check) and the permission stay as
  // they were, and so does a translation once made.
  c.i32(0)
    .memory(Op.i32Load, 2, layout.segBase + 4 * SEG_CS)
    .set(CS_BASE);
  c.i32(0).memory(Op.i32Load, 2, word(WASM_EXEC_NEED)).set(NEED);
  c.i32(0).memory(Op.i32Load, 2, word(WASM_CODE_EPOCH)).set(EPOCH);
  c.i32(1).set(LAST_LINEAR);
  c.i32(0).i32(0).memory(Op.i32Store, 2, word(WASM_NO_CHAIN));
  // A fault in a block unwinds through here: the chained count is kept.
  c.begin(Op.try);
  c.begin(Op.loop);
  c.i32(0).get(TOTAL).memory(Op.i32Store, 2, word(WASM_CHAIN_TOTAL));
  c.get(EIP).get(BUDGET).get(TOTAL).op(Op.i32Sub).get(INDEX).callIndirect(0).tee(COUNT);
  c.i32(0).op(Op.i32LtS).begin(Op.if);
  c.get(TOTAL).op(Op.i32Eqz).begin(Op.if).i32(-1).op(Op.return).end();
  c.i32(0).get(EIP).memory(Op.i32Store, 2, word(WASM_EXIT_EIP));
  count();
  c.get(TOTAL).op(Op.return);
  c.end();
  c.get(TOTAL).get(COUNT).op(Op.i32Add).set(TOTAL);
  c.i32(0).memory(Op.i32Load, 2, word(WASM_NO_CHAIN));
  leave();
  c.i32(0).memory(Op.i32Load, 2, word(WASM_EXIT_EIP)).set(EIP);
  c.get(CS_BASE).get(EIP).op(Op.i32Add).tee(LINEAR);
  c.i32(~0xfff).op(Op.i32And).get(LAST_LINEAR).op(Op.i32Ne);
  c.begin(Op.if);
  c.get(LINEAR).i32(12).op(Op.i32ShrU).i32(2).op(Op.i32Shl).tee(PAGE);
  c.memory(Op.i32Load, 2, layout.tlbInfo);
  c.get(NEED).i32(T_MMIO).op(Op.i32Or).op(Op.i32And);
  c.get(NEED).op(Op.i32Ne);
  leave();
  c.get(PAGE).memory(Op.i32Load, 2, layout.tlbPhys).set(LAST_PHYS);
  c.get(LINEAR).i32(~0xfff).op(Op.i32And).set(LAST_LINEAR);
  c.end();
  c.get(LAST_PHYS).get(LINEAR).i32(4095).op(Op.i32And).op(Op.i32Or).tee(PHYS);
  c.i32(BLOCK_CACHE_SIZE - 1)
    .op(Op.i32And)
    .i32(3)
    .op(Op.i32Shl)
    .tee(ENTRY);
  c.memory(Op.i32Load, 2, layout.blockEntries).get(PHYS).op(Op.i32Ne);
  leave();
  c.get(PHYS).i32(12).op(Op.i32ShrU).memory(Op.i32Load8U, 0, layout.pageChecked);
  c.get(EPOCH).op(Op.i32Ne);
  leave();
  c.get(ENTRY)
    .memory(Op.i32Load, 2, layout.blockEntries + 4)
    .tee(WORD);
  c.i32(0xff).op(Op.i32And).get(TOTAL).op(Op.i32Add);
  c.get(BUDGET).op(Op.i32GtS);
  leave();
  c.get(WORD).i32(8).op(Op.i32ShrU).set(INDEX);
  c.get(CHAINS).i32(1).op(Op.i32Add).set(CHAINS);
  c.br(0);
  c.end();
  c.op(Op.unreachable);
  c.op(Op.catchAll);
  count();
  c.byte(Op.rethrow).u32(0);
  c.end();
  c.op(Op.unreachable);
  return c;
}

/**
 * Pushes 1 when the TLB holds the page of the linear address in local
 * `linear` with the permissions in scratch word `needWord` (WASM_READ_NEED
 * or WASM_WRITE_NEED) and no MMIO, and the `size` (0, 1, 2) access stays
 * within the page; else 0. Leaves the entry's byte index in local `p`.
 */
function emitTlbHit(
  c: BlockCodeWriter,
  layout: X86WasmLayout,
  size: number,
  linear: number,
  p: number,
  needWord: number,
): void {
  const need = layout.scratch + 4 * needWord;
  c.get(linear).i32(12).op(Op.i32ShrU).i32(2).op(Op.i32Shl).tee(p);
  c.memory(Op.i32Load, 2, layout.tlbInfo);
  c.i32(0).memory(Op.i32Load, 2, need).i32(T_MMIO).op(Op.i32Or).op(Op.i32And);
  c.i32(0).memory(Op.i32Load, 2, need).op(Op.i32Eq);
  if (size > 0) {
    c.get(linear)
      .i32(4095)
      .op(Op.i32And)
      .i32(size === 2 ? 4092 : 4094)
      .op(Op.i32LeU)
      .op(Op.i32And);
  }
}

/**
 * Pushes the `size` (0, 1, 2: byte, word, dword) value at the linear
 * address in local `linear`: a TLB hit within one page loads from RAM,
 * anything else stores 1 in WASM_NO_CHAIN and calls the CPU's readLin*.
 * `p` is a scratch local.
 */
function emitRead(
  c: BlockCodeWriter,
  layout: X86WasmLayout,
  size: number,
  linear: number,
  p: number,
): void {
  emitTlbHit(c, layout, size, linear, p, WASM_READ_NEED);
  c.begin(Op.if, I32);
  c.get(p).memory(Op.i32Load, 2, layout.tlbPhys).get(linear).i32(4095).op(Op.i32And).op(Op.i32Or);
  c.memory(size === 2 ? Op.i32Load : size === 1 ? Op.i32Load16U : Op.i32Load8U, 0, 0);
  c.op(Op.else);
  c.i32(0)
    .i32(1)
    .memory(Op.i32Store, 2, layout.scratch + 4 * WASM_NO_CHAIN);
  c.get(linear).helper(size === 2 ? F_RD32 : size === 1 ? F_RD16 : F_RD8);
  c.end();
}

/**
 * Writes local `value` (`size` as in emitRead) to the linear address in
 * local `linear` and pushes the abort flag: a TLB hit within one page on a
 * page holding no code stores to RAM (0); anything else stores 1 in
 * WASM_NO_CHAIN and calls the CPU's writeLin* (which invalidates code; its
 * result says whether the block must leave). `p`, `ph`: scratch locals.
 */
function emitWrite(
  c: BlockCodeWriter,
  layout: X86WasmLayout,
  size: number,
  linear: number,
  value: number,
  p: number,
  ph: number,
): void {
  c.begin(Op.block, I32);
  c.begin(Op.block);
  emitTlbHit(c, layout, size, linear, p, WASM_WRITE_NEED);
  c.op(Op.i32Eqz).brIf(0);
  c.get(p).memory(Op.i32Load, 2, layout.tlbPhys).get(linear).i32(4095).op(Op.i32And).op(Op.i32Or);
  c.tee(ph);
  c.i32(12).op(Op.i32ShrU).memory(Op.i32Load8U, 0, layout.codePage).brIf(0);
  c.get(ph).get(value);
  c.memory(size === 2 ? Op.i32Store : size === 1 ? Op.i32Store16 : Op.i32Store8, 0, 0);
  c.i32(0).br(1);
  c.end();
  c.i32(0)
    .i32(1)
    .memory(Op.i32Store, 2, layout.scratch + 4 * WASM_NO_CHAIN);
  c.get(linear)
    .get(value)
    .helper(size === 2 ? F_WR32 : size === 1 ? F_WR16 : F_WR8);
  c.end();
}

/**
 * The module-local functions (H_*), the same in every block module.
 * `rd(linear) -> value`: a TLB hit (the read permission, no MMIO, not
 * crossing the page) loads from RAM; anything else calls the CPU's
 * readLin* (page walk, fault, MMIO, crossing). `wr(linear, value) ->
 * abort`: a TLB hit on a page holding no code stores to RAM; anything else
 * calls writeLin* (which invalidates code and may ask the block to leave).
 * A slow path stores 1 in WASM_NO_CHAIN: the CPU may have changed
 * translations or made an event pending, so the dispatcher returns to the
 * CPU's loop after this block. `lz(kind, d, s, r, c, o)` stores a flag
 * record in scratch (WASM_FLAGS).
 */
function moduleHelpers(layout: X86WasmLayout): FunctionDefinition[] {
  const word = (index: number) => layout.scratch + 4 * index;
  const read = (size: number): FunctionDefinition => {
    const c = new BlockCodeWriter();
    emitRead(c, layout, size, 0, 1);
    return { type: fn(1, 1), locals: 1, body: c };
  };
  const write = (size: number): FunctionDefinition => {
    const c = new BlockCodeWriter();
    emitWrite(c, layout, size, 0, 1, 2, 3);
    return { type: fn(2, 1), locals: 2, body: c };
  };
  const lz = new BlockCodeWriter();
  for (let i = 0; i < 6; i++)
    lz.i32(0)
      .get(i)
      .memory(Op.i32Store, 2, word(WASM_FLAGS + i));
  return [
    read(2),
    read(1),
    read(0),
    write(2),
    write(1),
    write(0),
    { type: fn(6, 0), locals: 0, body: lz },
  ];
}

/** One CPU's WebAssembly tier: the imports its blocks share and the compiler. */
export class WasmBlockTier {
  private readonly imports: WebAssembly.Imports;
  /**
   * The compiled blocks by table index (`BlockCache.claimIndex`; a stale
   * entry is never called: the cache's tag says whether its slot's index is live).
   */
  private readonly blocks: WebAssembly.Table;
  /** Runs the block at a table index: every block is entered through this one export. */
  private readonly dispatch: (index: number, eip: number, budget: number) => number;
  /** The tier's scratch words (`WASM_*`). */
  readonly words: Int32Array;
  /** Applies a lazy-flag record a block left in scratch to the CPU. */
  private readonly sync: () => void;
  private readonly fetcher: PhysicalFetcher;
  /** Modules compiled (for tests and profiling). */
  compiled = 0;
  /**
   * Batches the host refused to compile or instantiate (out of memory, a
   * resource limit). Their blocks stay with the interpreter; after
   * MAX_COMPILE_FAILURES the tier queues nothing more, so a host that
   * cannot take more code costs the guest speed, never its run.
   */
  failures = 0;
  /**
   * Where the block `queue` last accepted goes on when it runs to its end
   * without a control transfer (it ran out of length, or reached an
   * instruction left to the interpreter), as a physical address in its
   * page; -1 when it ends in a transfer or at the page's end.
   */
  fallThrough = -1;
  private pending: { phys: number; length: number; body: CodeWriter; snapshot: CodeSnapshot }[] =
    [];
  /** The code the blocks were generated from, by page (checked after host code ran). */
  readonly snapshots: CodeSnapshots;
  private readonly view: DataView;
  private readonly helperFunctions: FunctionDefinition[];
  /** The body writer every BlockEmitter reuses (an allocation per block cost more than its copy). */
  private readonly body = new BlockCodeWriter(4096);

  /**
   * `register(phys, code, length)` puts a compiled block into the CPU's
   * block cache; `batch` is how many blocks a module holds (1: compile
   * each at once, as eager mode wants).
   */
  constructor(
    private readonly cpu: BlockHost,
    private readonly layout: X86WasmLayout,
    view: DataView,
    arrays: { tlbInfo: Int32Array; tlbPhys: Int32Array; codePage: Uint8Array },
    private readonly cache: BlockCache,
    private readonly register: (
      phys: number,
      code: BlockFunction,
      length: number,
      index: number,
    ) => void,
    private readonly batch: number,
  ) {
    this.view = view;
    this.helperFunctions = moduleHelpers(layout);
    const host = cpu as WasmHost;
    this.words = new Int32Array(layout.memory.buffer, layout.scratch, 1024);
    this.fetcher = new PhysicalFetcher(cpu.ram);
    const ram = cpu.ram;
    this.snapshots = new CodeSnapshots(
      new Int32Array(ram.buffer, ram.byteOffset, ram.length >>> 2),
      new Uint8Array(layout.memory.buffer, layout.pageChecked, 1 << 20),
      () => this.words[WASM_CODE_EPOCH],
      arrays.codePage,
      // Code replaced by host code: not counted as a write by the guest.
      (page) => host.invalidatePhysPage(page, false),
    );
    const helpers = cache.helpers ?? createHelpers(cpu, view, arrays);
    cache.helpers = helpers;
    const words = this.words;
    const { step, lz } = helpers;
    words[WASM_FLAGS] = -1;
    words[WASM_CODE_EPOCH] = 1;
    const sync = (): void => {
      if (words[WASM_FLAGS] >= 0) {
        lz(words[8], words[9], words[10], words[11], words[12], words[13]);
        words[WASM_FLAGS] = -1;
      }
    };
    this.sync = sync;
    const functions: Record<string, (...args: never[]) => unknown> = {
      step(slot: number, phys: number, word: number, start: number, next: number, index: number) {
        sync();
        if (step(slot, phys, word, start, next, index + words[WASM_CHAIN_TOTAL])) {
          words[WASM_EXIT_EIP] = host.eip;
          words[WASM_NO_CHAIN] = 1;
          return 1;
        }
        return 0;
      },
      fix(
        start: number,
        done: number,
        fk: number,
        fd: number,
        fs: number,
        fr: number,
        fc: number,
        fo: number,
      ) {
        // The record in scratch first: the one in the block's locals is newer.
        sync();
        host.startEip = start;
        host.blockDone = done + words[WASM_CHAIN_TOTAL];
        if (fk >= 0) lz(fk, fd, fs, fr, fc, fo);
      },
      rd32: (l: number) => host.readLin32(l),
      rd16: (l: number) => host.readLin16(l),
      rd8: (l: number) => host.readLin8(l),
      wr32(l: number, v: number) {
        host.writeLin32(l, v);
        return host.blockAbort ? 1 : 0;
      },
      wr16(l: number, v: number) {
        host.writeLin16(l, v);
        return host.blockAbort ? 1 : 0;
      },
      wr8(l: number, v: number) {
        host.writeLin8(l, v);
        return host.blockAbort ? 1 : 0;
      },
      chk(seg: number, offset: number, size: number, write: number) {
        host.checkSegment(seg, offset, size, write !== 0);
      },
      cond(cc: number) {
        sync();
        return host.condition(cc) ? 1 : 0;
      },
      carry() {
        sync();
        return host.lazy & CF ? host.getCF() : host.flagsRaw & CF;
      },
      // An event, an exit, or code dropped under the block (a page walk's
      // accessed bit in its own page) ends a loop block's pass.
      ev: () => (host.eventCheck || host.afterInstruction || host.blockAbort ? 1 : 0),
    };
    // The helpers enter WebAssembly once, through a module that imports
    // and re-exports them into a table: a block module then imports only
    // the memory and the table. Importing functions costs V8 a wrapper
    // compilation per import and module (about 0.2 ms for these), five
    // times what the rest of a small block's compilation costs.
    const bytes = encodeModule({
      imports: IMPORTS,
      functions: [],
      exports: IMPORTS.map((entry, index) => ({ name: entry.field, index })),
    });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { k: functions })
      .exports as Record<string, WebAssembly.ExportValue>;
    const table = new WebAssembly.Table({ element: "anyfunc", initial: IMPORTS.length });
    IMPORTS.forEach((entry, index) => {
      table.set(index, exports[entry.field]);
    });
    this.imports = { k: { m: layout.memory, t: table } };
    // One export enters every block (call_indirect by table index): V8 calls a
    // WebAssembly export through a generic wrapper until that export is
    // hot, so one entry per block would pay the generic one for each.
    this.blocks = new WebAssembly.Table({ element: "anyfunc", initial: INITIAL_TABLE });
    const dispatcher = encodeModule({
      types: [fn(2, 1)],
      memory: { module: "k", field: "m", minimumPages: 1 },
      table: { module: "k", field: "b", minimum: INITIAL_TABLE },
      imports: [],
      functions: [{ type: fn(3, 1), locals: 13, body: dispatcherBody(layout), export: "run" }],
    });
    this.dispatch = new WebAssembly.Instance(new WebAssembly.Module(dispatcher), {
      k: { m: layout.memory, b: this.blocks },
    }).exports.run as (index: number, eip: number, budget: number) => number;
  }

  /**
   * Generates the block at physical `phys` (32-bit code in RAM) and queues
   * it for the next module; returns false when its first instruction is
   * one the tier leaves to the interpreter. The queue is compiled as one
   * module when it holds `batch` blocks (`flush` also compiles it): V8
   * gives each instance its own code space, and calls into many small
   * instances cost several times a call into a few large ones, besides
   * each module's fixed compilation cost.
   */
  queue(scratch: DecodedInstructions, phys: number): boolean {
    this.fallThrough = -1;
    if (this.failures >= MAX_COMPILE_FAILURES) return false;
    const started = performance.now();
    const queued = this.queueBlock(scratch, phys);
    const counters = (this.cpu as WasmHost).counters;
    counters.wasmCompileMicroseconds += Math.round((performance.now() - started) * 1000);
    return queued;
  }

  private queueBlock(scratch: DecodedInstructions, phys: number): boolean {
    const cpu = this.cpu;
    const fetcher = this.fetcher;
    const pageEnd = (phys & ~0xfff) + 4096;
    const snapshot = this.snapshots.current(phys >>> 12);
    const block = new BlockEmitter(this.layout, cpu.stack32, this.body);
    const view = this.view;
    let offset = 0;
    let count = 0;
    let ended = false;
    // Instructions are decoded first: the loop-back needs the block's length.
    const lengths: number[] = [];
    const offsets: number[] = [];
    // The offset a continued jmp/call goes on at (null: the next instruction, or none).
    const follows: (number | null)[] = [];
    // The code bytes the block covers (its page's snapshot keeps them).
    let low = 0;
    let high = 0;
    // Targets of forward branches in the page seen so far.
    const ahead: number[] = [];
    while (count < MAX_BLOCK && !ended) {
      const length = decodeBlockInstruction(fetcher, scratch, count, phys + offset, pageEnd);
      if (length === 0) break;
      const op = scratch.op[count];
      const info = scratch.info[count];
      lengths.push(length);
      offsets.push(offset);
      low = Math.min(low, offset);
      high = Math.max(high, offset + length);
      offset += length;
      count++;
      follows.push(null);
      // Control transfers end a block (as block.ts's inline forms do), but
      // for near branches forward in the same physical page, whose targets
      // stay within the one page whose invalidation drops the block and
      // are reachable without a fault (CS has no limit check while blocks
      // run, cpu.ts; the linear page is the entry's):
      // - a forward Jcc or jmp is taken inside the block when its target
      //   is decoded too (BlockEmitter.skipTo), and after a transfer (ret,
      //   jmp, a call not continued) decoding goes on at the nearest such
      //   target ahead: a block holds both arms of an if/else and the code
      //   after an early return (13.4 M block runs in the Linux boot
      //   instead of 19.9 M, 5% faster);
      // - a forward call rel32 is continued: its push, then its callee in
      //   line.
      // Backward targets measured slower (loops unrolled into copies:
      // 11.2 MB of WebAssembly instead of 8, 45 MIPS instead of 53).
      const plain = (info & PREFIXED) === 0;
      if (isJcc(op) || op === 0xe8 || op === 0xe9 || op === 0xeb) {
        const target = offset + scratch.immediate[count - 1];
        if (plain && target > offset && phys + target < pageEnd) {
          if (op === 0xe8) {
            if (cpu.stack32) {
              follows[count - 1] = target;
              offset = target;
              continue;
            }
          } else ahead.push(target);
        }
      }
      if (op === 0xe8 || op === 0xe9 || op === 0xeb || op === 0xc3) {
        let next = pageEnd - phys;
        for (const target of ahead) if (target >= offset && target < next) next = target;
        if (next < pageEnd - phys) offset = next;
        else ended = true;
      }
    }
    if (count === 0) return false;
    block.length = count;
    // Forward Jcc/jmp targets among the block's own instructions (offsets
    // only grow: decoding goes forward; see BlockEmitter.skipTo).
    block.offsets = offsets;
    block.skipTo = offsets.map((at, i) => {
      const op = scratch.op[i];
      if (!isJcc(op) && op !== 0xe9 && op !== 0xeb) return -1;
      if (scratch.info[i] & PREFIXED) return -1;
      const target = at + lengths[i] + scratch.immediate[i];
      for (let k = i + 1; k < count; k++) {
        if (offsets[k] === target) return k;
        if (offsets[k] > target) break;
      }
      return -1;
    });
    block.openSkips();
    // A branch back to the block's start makes it a loop block (see inlineMemory).
    for (let i = 0; i < count; i++) {
      const op = scratch.op[i];
      const branch = isJcc(op) || op === 0xe9 || op === 0xeb;
      if (branch && offsets[i] + lengths[i] + scratch.immediate[i] === 0) block.inlineMemory = true;
    }
    ended = false;
    let end = 0;
    for (let i = 0; i < count; i++) {
      const at = phys + offsets[i];
      const follow = follows[i];
      ended = block.instruction(
        scratch,
        i,
        offsets[i],
        lengths[i],
        at,
        view.getInt32(at, true),
        follow,
      );
      end = follow ?? offsets[i] + lengths[i];
      if (ended && !block.isTarget(i + 1)) {
        count = i + 1;
        break;
      }
    }
    this.snapshots.extend(snapshot, phys + low, phys + high);
    this.pending.push({ phys, length: count, body: block.finish(end, count, ended), snapshot });
    this.fallThrough = !ended && phys + end < pageEnd ? phys + end : -1;
    if (this.pending.length >= this.batch) this.compile();
    return true;
  }

  /** Blocks generated but not compiled yet. */
  get queued(): number {
    return this.pending.length;
  }

  /** Compiles the queued blocks as one module and hands each to `register`. */
  flush(): void {
    if (this.pending.length === 0) return;
    const started = performance.now();
    this.compile();
    const counters = (this.cpu as WasmHost).counters;
    counters.wasmCompileMicroseconds += Math.round((performance.now() - started) * 1000);
  }

  private compile(): void {
    const pending = this.pending;
    this.pending = [];
    const bytes = encodeModule({
      types: HELPER_TYPES,
      memory: { module: "k", field: "m", minimumPages: 1 },
      table: { module: "k", field: "t", minimum: IMPORTS.length },
      imports: [],
      functions: [
        ...this.helperFunctions,
        ...pending.map((entry, i) => ({
          type: fn(2, 1),
          locals: LOCALS,
          body: entry.body,
          export: `b${i}`,
        })),
      ],
    });
    let exports: WebAssembly.Exports;
    try {
      exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports).exports;
    } catch {
      // The blocks' start slots keep their counts past the threshold, so
      // they are not queued again: they stay interpreted.
      this.failures++;
      return;
    }
    this.compiled++;
    const host = this.cpu as WasmHost;
    host.counters.wasmBlocks += pending.length;
    host.counters.wasmBytes += bytes.length;
    const cache = this.cache;
    const snapshots = this.snapshots;
    pending.forEach((entry, i) => {
      const page = entry.phys >>> 12;
      // A write to the page since the block was generated dropped its code.
      if (!snapshots.isCurrent(page, entry.snapshot)) return;
      const index = cache.claimIndex();
      if (index >= this.blocks.length) this.blocks.grow(this.blocks.length);
      this.blocks.set(index, exports[`b${i}`]);
      this.register(
        entry.phys,
        wrap(this.dispatch, index, host, this.words, this.sync, page, snapshots),
        entry.length,
        index,
      );
    });
  }
}

/** A block's code writer: `helper(f)` calls the CPU's helper `f` through the imported table. */
class BlockCodeWriter extends CodeWriter {
  helper(index: number): this {
    return this.i32(index).callIndirect(HELPER_TYPE_INDEX[index]);
  }
}

/** Flag kinds of 8-bit and 16-bit ALU results: SIZED_8/SIZED_16 + the LazyOp (block.ts's lz). */
const SIZED_8 = 1000;
const SIZED_16 = 2000;

/** WebAssembly operations and flag kinds of ADD OR ADC SBB AND SUB XOR CMP (-1: not inline). */
const ALU_OPCODES = [Op.i32Add, Op.i32Or, -1, -1, Op.i32And, Op.i32Sub, Op.i32Xor, Op.i32Sub];
const ALU_KINDS = [
  LazyOp.ADD,
  LazyOp.LOGIC,
  -1,
  -1,
  LazyOp.LOGIC,
  LazyOp.SUB,
  LazyOp.LOGIC,
  LazyOp.SUB,
];

/** Static states of the flag locals: none pending, or unknown (`fk` tells at run time). */
const NONE = -1;
const UNKNOWN = -2;

/** Generates one block's function (see block.ts's InstructionEmitter for the JavaScript twin). */
class BlockEmitter {
  /** The body as it is generated (the tier's one writer, emptied for each block; `finish` copies it). */
  readonly c: BlockCodeWriter;
  /** Instructions in the block (the loop-back's whole-pass budget test). */
  length = 0;
  /** Blocks opened inside the loop body (a branch to the loop head crosses them). */
  private depth = 0;
  private loops = false;
  /** Flag kind pending in the locals (NONE, UNKNOWN or a kind); the kind fd/fs/fr describe (or null). */
  private pending = UNKNOWN;
  private known: number | null = null;
  private readonly assumed = new Map<number, number>();
  // The instruction being generated.
  private d!: DecodedInstructions;
  private index = 0;
  private offset = 0;
  private size = 0;
  private wrote = false;
  /** The offset a continued jmp/call goes on at (null: not one). */
  private follow: number | null = null;
  /**
   * Forward branches taken inside the block: by instruction index, the
   * index of the instruction the branch goes to in this block (set by the
   * tier: in the page, reached without a continued jmp/call), else -1.
   */
  skipTo: number[] = [];
  /** The instructions' offsets in the block (exits of skips past its end). */
  offsets: number[] = [];
  /** Open skips' target indices, innermost last (each a `block` ending at its target). */
  private readonly skips: number[] = [];
  /** The depth inside each open skip's `block`, by target index (a branch there is `br depth - level`). */
  private readonly levels = new Map<number, number>();

  /**
   * Opens a `block` for every skip target before the first instruction,
   * the farthest outermost: each ends where its target begins, so any
   * forward branch to a target can leave its block whatever lies between.
   */
  openSkips(): void {
    const targets = [...new Set(this.skipTo.filter((k) => k >= 0))].sort((a, b) => b - a);
    for (const k of targets) {
      this.open(Op.block);
      this.levels.set(k, this.depth);
      this.skips.push(k);
    }
  }

  /** Whether instruction `index` is a skip's target. */
  isTarget(index: number): boolean {
    return this.levels.has(index);
  }

  /** Branches to skip target `k` from instruction `this.index` (after it): counts stay exact. */
  private branchToSkip(k: number): void {
    const c = this.c;
    // The instructions jumped over do not retire: N + index stays the count.
    c.get(N)
      .i32(this.index + 1 - k)
      .op(Op.i32Add)
      .set(N);
    c.br(this.depth - (this.levels.get(k) as number));
  }

  /** The CPU's segment checks and bases when the block is generated (read, not kept). */
  private readonly segCheck: Uint8Array;
  private readonly segBase: Int32Array;

  constructor(
    private readonly layout: X86WasmLayout,
    private readonly stack32: boolean,
    body = new BlockCodeWriter(4096),
  ) {
    this.c = body;
    body.length = 0;
    this.segCheck = new Uint8Array(layout.memory.buffer, layout.segCheck, 8);
    this.segBase = new Int32Array(layout.memory.buffer, layout.segBase, 8);
  }

  // -- Small pieces -------------------------------------------------------

  private open(opcode: number): void {
    this.c.begin(opcode);
    this.depth++;
  }

  private close(): void {
    this.c.end();
    this.depth--;
  }

  private reg(r: number): void {
    this.c.i32(0).memory(Op.i32Load, 2, this.layout.regs + 4 * r);
  }

  /** regs[r] = the value `value` pushes. */
  private setReg(r: number, value: () => void): void {
    this.c.i32(0);
    value();
    this.c.memory(Op.i32Store, 2, this.layout.regs + 4 * r);
  }

  private setRegLocal(r: number, local: number): void {
    this.setReg(r, () => this.c.get(local));
  }

  private get nextOffset(): number {
    return this.offset + this.size;
  }

  /** Records which instruction a fault would unwind: index and offset in one local. */
  private faultPoint(): void {
    this.c.i32((this.index << 13) | (this.offset & 0x1fff)).set(FI);
  }

  // -- Flags (block.ts FlagState) ------------------------------------------

  /** Stores the record (kind `kind`, or the `fk` local's) for JavaScript to apply (WASM_FLAGS). */
  private callLz(kind: number | null): void {
    const c = this.c;
    if (kind === null) c.get(FK);
    else c.i32(kind);
    c.get(FD).get(FS).get(FR).get(FC).get(FO).call(H_LZ);
  }

  private flush(): void {
    if (this.pending === NONE) return;
    if (this.pending === UNKNOWN) {
      this.c.get(FK).i32(0).op(Op.i32GeS).begin(Op.if);
      this.callLz(null);
      this.c.i32(-1).set(FK).end();
    } else {
      this.callLz(this.pending);
      this.c.i32(-1).set(FK);
    }
    this.pending = NONE;
  }

  /** fd = dst (a local, or the constant 0 when `dst` is null); fs = src; fr = result; fk = kind. */
  private produce(kind: number, dst: number | null, src: number, result: number): void {
    const c = this.c;
    if (dst === null) c.i32(0).set(FD);
    else c.get(dst).set(FD);
    c.get(src).set(FS);
    c.get(result).set(FR);
    c.i32(kind).set(FK);
    this.pending = kind;
    this.known = kind;
  }

  /** A result whose CF/OF are the value `concrete` pushes (IMUL, shifts): fc, fr = r, fk. */
  private resultOnly(concrete: () => void): void {
    concrete();
    this.c.set(FC).get(R).set(FR).i32(RESULT_ONLY).set(FK);
    this.pending = RESULT_ONLY;
    this.known = RESULT_ONLY;
  }

  private written(): void {
    this.pending = NONE;
    this.known = null;
  }

  /** fc = CF as it stands (before an INC/DEC, for an ADC/SBB): as the interpreter's getCF. */
  private carryIn(): void {
    const c = this.c;
    switch (this.pending) {
      case LazyOp.ADD:
        c.get(FR).get(FD).op(Op.i32LtU).set(FC);
        return;
      case LazyOp.SUB:
        c.get(FD).get(FS).op(Op.i32LtU).set(FC);
        return;
      case LazyOp.ADC:
        c.get(FR).get(FD).op(Op.i32LeU).get(FR).get(FD).op(Op.i32LtU).get(FC).op(Op.select).set(FC);
        return;
      case LazyOp.SBB:
        c.get(FD).get(FS).op(Op.i32LeU).get(FD).get(FS).op(Op.i32LtU).get(FC).op(Op.select).set(FC);
        return;
      case LazyOp.LOGIC:
        c.i32(0).set(FC);
        return;
      case RESULT_ONLY:
        c.get(FC).i32(CF).op(Op.i32And).set(FC);
        return;
      case INC_DEC_ADD:
      case INC_DEC_SUB:
        return;
      case SIZED_8 + INC_DEC_ADD:
      case SIZED_8 + INC_DEC_SUB:
        return;
      default:
        if (this.pending >= ROTATED && this.pending < SIZED_8) {
          c.get(FO).i32(CF).op(Op.i32And).set(FC);
          return;
        }
        this.flush();
        c.helper(F_CARRY).set(FC);
    }
  }

  /**
   * Pushes condition `cc` (SDM vol. 1 appendix B) as 0/1: from the flag
   * locals where the last flag-setting kind determines it (block.ts's
   * conditionExpression), else flushed and evaluated by the CPU.
   */
  private condition(cc: number): void {
    if (!this.conditionFromLocals(cc >> 1, this.known)) {
      this.flush();
      this.c.i32(cc).helper(F_CONDITION);
      return;
    }
    if (cc & 1) this.c.op(Op.i32Eqz);
  }

  private conditionFromLocals(test: number, known: number | null): boolean {
    const c = this.c;
    if (known === null || test === 5) return false; // PF is never kept in locals
    const zero = () => c.get(FR).op(Op.i32Eqz);
    const sign = () => c.get(FR).i32(0).op(Op.i32LtS);
    const bit = (local: number, mask: number) =>
      c.get(local).i32(mask).op(Op.i32And).i32(0).op(Op.i32Ne);
    if (known >= SIZED_8) {
      // 8/16-bit records: fd, fs, fr hold the operands and result masked to the size.
      const signBit = known >= SIZED_16 ? 0x8000 : 0x80;
      const shift = known >= SIZED_16 ? 16 : 24;
      const base = known % 1000;
      const signed = (local: number) => c.get(local).i32(shift).op(Op.i32Shl);
      if (test === 2) zero();
      else if (test === 4) bit(FR, signBit);
      else if (base === LazyOp.LOGIC) {
        if (test === 0 || test === 1) c.i32(0);
        else if (test === 3) zero();
        else if (test === 6) bit(FR, signBit);
        else if (test === 7) {
          zero();
          bit(FR, signBit);
          c.op(Op.i32Or);
        } else return false;
      } else if (base === LazyOp.SUB) {
        if (test === 1) c.get(FD).get(FS).op(Op.i32LtU);
        else if (test === 3) c.get(FD).get(FS).op(Op.i32LeU);
        else if (test === 6) {
          signed(FD);
          signed(FS);
          c.op(Op.i32LtS);
        } else if (test === 7) {
          signed(FD);
          signed(FS);
          c.op(Op.i32LeS);
        } else return false;
      } else return false;
      return true;
    }
    if (known >= ROTATED) {
      if (test === 0) bit(FO, OF);
      else if (test === 1) bit(FO, CF);
      else if (test === 2) zero();
      else if (test === 4) sign();
      else return false;
      return true;
    }
    if (test === 2) {
      zero();
      return true;
    }
    if (test === 4) {
      sign();
      return true;
    }
    switch (known) {
      case LazyOp.SUB:
        if (test === 0) {
          c.get(FD).get(FS).op(Op.i32Xor).get(FD).get(FR).op(Op.i32Xor).op(Op.i32And);
          c.i32(0).op(Op.i32LtS);
        } else if (test === 1) c.get(FD).get(FS).op(Op.i32LtU);
        else if (test === 3) c.get(FD).get(FS).op(Op.i32LeU);
        else if (test === 6) c.get(FD).get(FS).op(Op.i32LtS);
        else c.get(FD).get(FS).op(Op.i32LeS);
        return true;
      case LazyOp.ADD:
        if (test === 0) {
          c.get(FD).get(FS).op(Op.i32Xor).i32(-1).op(Op.i32Xor);
          c.get(FD).get(FR).op(Op.i32Xor).op(Op.i32And).i32(0).op(Op.i32LtS);
        } else if (test === 1) c.get(FR).get(FD).op(Op.i32LtU);
        else if (test === 3) {
          c.get(FR).get(FD).op(Op.i32LtU);
          zero();
          c.op(Op.i32Or);
        } else {
          // The exact sum's sign (SF != OF): in 64 bits.
          c.get(FD).op(Op.i64ExtendI32S).get(FS).op(Op.i64ExtendI32S).op(Op.i64Add);
          c.byte(Op.i64Const).s32(0);
          c.op(test === 6 ? Op.i64LtS : Op.i64LeS);
        }
        return true;
      case LazyOp.LOGIC:
        if (test === 0 || test === 1) c.i32(0);
        else if (test === 3) zero();
        else if (test === 6) sign();
        else c.get(FR).i32(0).op(Op.i32LeS);
        return true;
      case INC_DEC_ADD:
      case INC_DEC_SUB: {
        const add = known === INC_DEC_ADD;
        if (test === 0)
          c.get(FD)
            .i32(add ? 0x7fffffff : -0x80000000)
            .op(Op.i32Eq);
        else if (test === 1) c.get(FC).i32(0).op(Op.i32Ne);
        else if (test === 3) {
          c.get(FC).i32(0).op(Op.i32Ne);
          zero();
          c.op(Op.i32Or);
        } else if (test === 6)
          c.get(FD)
            .i32(add ? -1 : 1)
            .op(Op.i32LtS);
        else
          c.get(FD)
            .i32(add ? -1 : 1)
            .op(Op.i32LeS);
        return true;
      }
      case RESULT_ONLY:
        if (test === 0) bit(FC, OF);
        else if (test === 1) bit(FC, CF);
        else if (test === 3) {
          bit(FC, CF);
          zero();
          c.op(Op.i32Or);
        } else {
          sign();
          bit(FC, OF);
          c.op(Op.i32Ne);
          if (test === 7) {
            zero();
            c.op(Op.i32Or);
          }
        }
        return true;
    }
    return false;
  }

  // -- Exits --------------------------------------------------------------

  /**
   * Leaves with EIP = the value `eip` pushes, `retired` more instructions:
   * through the one exit sequence at the end of the body (`finish`), which
   * stores a pending flag record, the EIP and returns n + retired. One
   * shared tail instead of that sequence at every exit: a side exit costs
   * a dozen bytes. The tail tests `fk` at run time: it holds the pending
   * kind wherever this emitter's static state knows one (produce, flush).
   */
  private exit(eip: () => void, retired: number): void {
    const c = this.c;
    eip();
    c.set(XE).i32(retired).set(XN).br(this.depth);
  }

  /** Leaves for block offset `target` after this instruction. */
  private exitTo(target: number): void {
    this.exit(() => this.c.get(E).i32(target).op(Op.i32Add), this.index + 1);
  }

  /** Leaves after this instruction, to the next one (a continued jmp/call's target). */
  private leave(): void {
    this.exitTo(this.follow ?? this.nextOffset);
  }

  /** A taken branch back to the block's start: another pass when a whole one fits and no event is pending. */
  private loopBack(): void {
    const c = this.c;
    this.loops = true;
    c.get(N)
      .i32(this.index + 1)
      .op(Op.i32Add)
      .set(N);
    c.get(N).i32(this.length).op(Op.i32Add).get(BUDGET).op(Op.i32GtS);
    this.open(Op.if);
    this.exit(() => c.get(E), 0);
    this.close();
    // Only a slow path (MMIO, a page walk) can have made an event pending
    // or asked for an exit; WASM_NO_CHAIN stays set (no chaining after this run).
    c.i32(0).memory(Op.i32Load, 2, this.layout.scratch + 4 * WASM_NO_CHAIN);
    this.open(Op.if);
    c.helper(F_EVENT);
    this.open(Op.if);
    this.exit(() => c.get(E), 0);
    this.close();
    this.close();
    c.br(this.depth + 1);
  }

  // -- Memory -------------------------------------------------------------

  /** Pushes the ModRM operand's offset (32-bit addressing). */
  private offsetExpression(): void {
    const d = this.d;
    const i = this.index;
    const c = this.c;
    let parts = 0;
    if (d.base[i] >= 0) {
      this.reg(d.base[i]);
      parts++;
    }
    if (d.index[i] >= 0) {
      this.reg(d.index[i]);
      if (d.scale[i]) c.i32(d.scale[i]).op(Op.i32Shl);
      if (parts++ > 0) c.op(Op.i32Add);
    }
    const displacement = d.displacement[i];
    if (displacement !== 0 || parts === 0) {
      c.i32(displacement);
      if (parts > 0) c.op(Op.i32Add);
    }
  }

  /** l = linear address of the offset `offset` pushes in segment `seg` (segment checks as `ea`). */
  private linear(seg: number, offset: () => void, size: number, write: boolean): void {
    const c = this.c;
    const layout = this.layout;
    const segCheck = this.segCheck;
    const segBase = this.segBase;
    if (segCheck[seg] !== 0) {
      offset();
      c.set(O);
      c.i32(0).memory(Op.i32Load8U, 0, layout.segCheck + seg);
      c.begin(Op.if)
        .i32(seg)
        .get(O)
        .i32(1 << size)
        .i32(write ? 1 : 0)
        .helper(F_CHECK_SEGMENT)
        .end();
      c.i32(0)
        .memory(Op.i32Load, 2, layout.segBase + 4 * seg)
        .get(O)
        .op(Op.i32Add)
        .set(L);
      return;
    }
    const base = segBase[seg];
    this.assumed.set(seg, base);
    offset();
    if (base !== 0) c.i32(base).op(Op.i32Add);
    c.set(L);
  }

  private address(size: number, write: boolean): void {
    const seg = (this.d.info[this.index] >> Info.SEG_SHIFT) & 7;
    this.linear(seg, () => this.offsetExpression(), size, write);
  }

  /**
   * Whether memory accesses are generated inline (the module's rd/wr
   * helpers' code in the block) rather than as calls to them: in loop
   * blocks, where a call per access costs a quarter to a third of a tight
   * loop's speed, while the calls keep the many straight blocks small.
   */
  inlineMemory = false;

  /** Pushes the `size` (0, 1, 2) value at linear `l` (the module's rd helpers, or their code inline). */
  private read(size: number): void {
    if (this.inlineMemory) emitRead(this.c, this.layout, size, L, TP);
    else this.c.get(L).call(size === 2 ? H_RD32 : size === 1 ? H_RD16 : H_RD8);
  }

  /** Writes local `value` to linear `l` (the module's wr helpers); `ab` notes a slow path's abort. */
  private write(size: number, value: number): void {
    this.wrote = true;
    // At most one write per inline instruction, and `ab` is 0 before it
    // (a set one leaves after the instruction).
    if (this.inlineMemory) emitWrite(this.c, this.layout, size, L, value, TP, TH);
    else
      this.c
        .get(L)
        .get(value)
        .call(size === 2 ? H_WR32 : size === 1 ? H_WR16 : H_WR8);
    this.c.set(AB);
  }

  // -- Instructions -------------------------------------------------------

  /** Generates instruction `index`; returns whether it ends the block. */
  instruction(
    d: DecodedInstructions,
    index: number,
    offset: number,
    size: number,
    phys: number,
    firstWord: number,
    follow: number | null = null,
  ): boolean {
    // Skipped-to instructions: the taken branches join the fall-through
    // here, with whichever flag record each path left in the locals.
    let joined = false;
    while (this.skips.length > 0 && this.skips[this.skips.length - 1] === index) {
      this.close();
      this.skips.pop();
      joined = true;
    }
    if (joined) {
      this.pending = UNKNOWN;
      this.known = null;
    }
    this.d = d;
    this.index = index;
    this.follow = follow;
    this.offset = offset;
    this.size = size;
    this.wrote = false;
    const ends = this.emit();
    if (ends === null) {
      this.generic(phys, firstWord);
      return false;
    }
    if (!ends && this.wrote) {
      // A slow-path write may have hit a page holding code (perhaps this block's).
      this.c.get(AB);
      this.open(Op.if);
      this.leave();
      this.close();
    }
    return ends;
  }

  /** Runs the instruction through the interpreter on its decoded slot (as block.ts's generic). */
  private generic(phys: number, firstWord: number): void {
    const c = this.c;
    this.flush();
    this.written();
    this.faultPoint();
    // The decoded-instruction slot (the decode cache has the block cache's size).
    c.i32(phys & (BLOCK_CACHE_SIZE - 1))
      .i32(phys)
      .i32(firstWord);
    c.get(E).i32(this.offset).op(Op.i32Add);
    c.get(E).i32(this.nextOffset).op(Op.i32Add);
    c.get(N).i32(this.index).op(Op.i32Add);
    c.helper(F_STEP);
    c.begin(Op.if)
      .get(N)
      .i32(this.index + 1)
      .op(Op.i32Add)
      .op(Op.return)
      .end();
  }

  /**
   * ALU operation (ADD OR ADC SBB AND SUB XOR CMP) of d and s into r; its
   * flag kind. ADC and SBB take CF as it stands into fc first, which their
   * record keeps (the interpreter's lazyCarry).
   */
  private alu(operation: number): number {
    const c = this.c;
    if (operation === 2 || operation === 3) {
      this.carryIn();
      const code = operation === 2 ? Op.i32Add : Op.i32Sub;
      c.get(D).get(S).op(code).get(FC).op(code).set(R);
      return operation === 2 ? LazyOp.ADC : LazyOp.SBB;
    }
    const code = ALU_OPCODES[operation];
    c.get(D).get(S).op(code).set(R);
    return ALU_KINDS[operation];
  }

  /** Inline code for the hottest forms (block.ts's emit), or null for `generic` (nothing emitted then). */
  private emit(): boolean | null {
    const d = this.d;
    const i = this.index;
    const c = this.c;
    const op = d.op[i];
    const info = d.info[i];
    if (info & (Info.A16 | Info.LOCK | Info.REP | Info.REPNE)) return null;
    const mem = (info & Info.MEM) !== 0;
    const reg = (d.modrm[i] >> 3) & 7;
    const rm = d.modrm[i] & 7;
    const immediate = d.immediate[i];
    if (info & Info.O16) return this.emit16(mem, reg, rm);
    const narrow = this.emit8(op, mem, reg, rm, immediate);
    if (narrow !== undefined) return narrow;
    if (op < 0x40 && (op & 7) < 6 && (op & 7) % 2 === 1) {
      // ALU r/m32,r32 (form 1), r32,r/m32 (form 3), eax,imm32 (form 5).
      const operation = op >> 3;
      const form = op & 7;
      const store = operation !== 7;
      if (form === 5) {
        this.reg(0);
        c.set(D).i32(immediate).set(S);
        const kind = this.alu(operation);
        this.produce(kind, D, S, R);
        if (store) this.setRegLocal(0, R);
        return false;
      }
      if (!mem) {
        const dst = form === 1 ? rm : reg;
        const src = form === 1 ? reg : rm;
        if ((operation === 6 || operation === 5) && dst === src) {
          // xor/sub r, r: 0 whatever the register held.
          this.reg(dst);
          c.tee(D).set(S).i32(0).set(R);
          this.produce(operation === 6 ? LazyOp.LOGIC : LazyOp.SUB, D, S, R);
          if (store) this.setRegLocal(dst, R);
          return false;
        }
        this.reg(dst);
        c.set(D);
        this.reg(src);
        c.set(S);
        const kind = this.alu(operation);
        this.produce(kind, D, S, R);
        if (store) this.setRegLocal(dst, R);
        return false;
      }
      if (form === 3 || operation === 7) {
        this.faultPoint();
        this.address(2, false);
        this.read(2);
        c.set(form === 3 ? S : D);
        this.reg(reg);
        c.set(form === 3 ? D : S);
        const kind = this.alu(operation);
        this.produce(kind, D, S, R);
        if (store) this.setRegLocal(reg, R);
        return false;
      }
      // Read-modify-write: the flags are recorded before the write, which may fault.
      this.faultPoint();
      this.address(2, true);
      this.read(2);
      c.set(D);
      this.reg(reg);
      c.set(S);
      const kind = this.alu(operation);
      this.produce(kind, D, S, R);
      this.write(2, R);
      return false;
    }
    switch (op) {
      case 0x81:
      case 0x83: {
        if (!mem) {
          this.reg(rm);
          c.set(D).i32(immediate).set(S);
          const kind = this.alu(reg);
          this.produce(kind, D, S, R);
          if (reg !== 7) this.setRegLocal(rm, R);
          return false;
        }
        this.faultPoint();
        this.address(2, reg !== 7);
        this.read(2);
        c.set(D).i32(immediate).set(S);
        const kind = this.alu(reg);
        this.produce(kind, D, S, R);
        if (reg !== 7) this.write(2, R);
        return false;
      }
      case 0xf7: {
        // Group 3: TEST imm (/0, /1), NOT (/2), NEG (/3, SUB from 0), MUL and IMUL (/4, /5).
        if (reg === 4 || reg === 5) return this.multiply(reg === 5, mem, rm);
        if (reg > 3) return null;
        if (reg < 2) {
          this.source32(mem, rm);
          c.set(D).i32(immediate).set(S);
          c.get(D).get(S).op(Op.i32And).set(R);
          this.produce(LazyOp.LOGIC, D, S, R);
          return false;
        }
        if (mem) {
          this.faultPoint();
          this.address(2, true);
          this.read(2);
        } else this.reg(rm);
        c.set(D);
        if (reg === 2) c.get(D).i32(-1).op(Op.i32Xor).set(R);
        else {
          c.i32(0).get(D).op(Op.i32Sub).set(R);
          this.produce(LazyOp.SUB, null, D, R);
        }
        if (mem) this.write(2, R);
        else this.setRegLocal(rm, R);
        return false;
      }
      case 0x85:
      case 0xa9: {
        if (op === 0xa9) {
          this.reg(0);
          c.set(D).i32(immediate).set(S);
        } else if (!mem) {
          this.reg(rm);
          c.set(D);
          this.reg(reg);
          c.set(S);
        } else {
          this.faultPoint();
          this.address(2, false);
          this.read(2);
          c.set(D);
          this.reg(reg);
          c.set(S);
        }
        c.get(D).get(S).op(Op.i32And).set(R);
        this.produce(LazyOp.LOGIC, D, S, R);
        return false;
      }
    }
    if (op >= 0x40 && op <= 0x4f) {
      // INC/DEC leave CF alone (SDM vol. 2 INC): `fc` keeps it.
      const r = op & 7;
      const decrement = op >= 0x48;
      this.carryIn();
      this.reg(r);
      c.tee(D)
        .i32(decrement ? -1 : 1)
        .op(Op.i32Add)
        .set(R);
      c.i32(1).set(S);
      this.setRegLocal(r, R);
      this.produce(decrement ? INC_DEC_SUB : INC_DEC_ADD, D, S, R);
      return false;
    }
    if (op >= 0x50 && op <= 0x57) {
      if (!this.stack32) return null;
      this.push(() => this.reg(op & 7));
      return false;
    }
    if (op === 0x68 || op === 0x6a) {
      if (!this.stack32) return null;
      this.push(() => c.i32(immediate));
      return false;
    }
    if (op >= 0x58 && op <= 0x5f) {
      if (!this.stack32) return null;
      this.pop();
      this.setRegLocal(op & 7, V);
      return false;
    }
    if (op >= 0xb8 && op <= 0xbf) {
      this.setReg(op & 7, () => c.i32(immediate));
      return false;
    }
    switch (op) {
      case 0x89:
        if (!mem) {
          this.setReg(rm, () => this.reg(reg));
          return false;
        }
        this.faultPoint();
        this.address(2, true);
        this.reg(reg);
        c.set(V);
        this.write(2, V);
        return false;
      case 0x88:
        if (!mem) return null;
        this.faultPoint();
        this.address(0, true);
        if (reg < 4) this.reg(reg);
        else {
          this.reg(reg - 4);
          c.i32(8).op(Op.i32ShrU);
        }
        c.i32(255).op(Op.i32And).set(V);
        this.write(0, V);
        return false;
      case 0x8a:
        if (!mem) return null;
        this.faultPoint();
        this.address(0, false);
        this.read(0);
        c.set(V);
        if (reg < 4) {
          this.setReg(reg, () => {
            this.reg(reg);
            c.i32(-256).op(Op.i32And).get(V).op(Op.i32Or);
          });
        } else {
          this.setReg(reg - 4, () => {
            this.reg(reg - 4);
            c.i32(-65281).op(Op.i32And).get(V).i32(8).op(Op.i32Shl).op(Op.i32Or);
          });
        }
        return false;
      case 0x8b:
        if (!mem) {
          this.setReg(reg, () => this.reg(rm));
          return false;
        }
        this.faultPoint();
        this.address(2, false);
        this.read(2);
        c.set(V);
        this.setRegLocal(reg, V);
        return false;
      case 0xc7:
        if (!mem) {
          this.setReg(rm, () => c.i32(immediate));
          return false;
        }
        this.faultPoint();
        this.address(2, true);
        c.i32(immediate).set(V);
        this.write(2, V);
        return false;
      case 0xa1:
      case 0xa3: {
        // mov eax, [moffs32] / mov [moffs32], eax (the offset is the displacement).
        const seg = (info >> Info.SEG_SHIFT) & 7;
        this.faultPoint();
        this.linear(seg, () => c.i32(d.displacement[i]), 2, op === 0xa3);
        if (op === 0xa1) {
          this.read(2);
          c.set(V);
          this.setRegLocal(0, V);
        } else {
          this.reg(0);
          c.set(V);
          this.write(2, V);
        }
        return false;
      }
      case 0xff:
        // Group 5: CALL and JMP near r/m32 (the target read first: a push
        // that faults leaves nothing changed; CS is flat while blocks run,
        // so no limit check), then on memory INC/DEC m32 (CF kept, as for
        // registers) and PUSH m32 (the operand read at the ESP before the
        // push, SDM vol. 2 PUSH).
        if (reg === 2 || reg === 4) {
          if (reg === 2 && !this.stack32) return null;
          this.source32(mem, rm);
          c.set(D);
          if (reg === 2) this.push(() => c.get(E).i32(this.nextOffset).op(Op.i32Add));
          this.exit(() => c.get(D), this.index + 1);
          return true;
        }
        if (!mem) return null;
        if (reg === 0 || reg === 1) {
          this.carryIn();
          this.faultPoint();
          this.address(2, true);
          this.read(2);
          c.tee(D)
            .i32(reg === 1 ? -1 : 1)
            .op(Op.i32Add)
            .set(R);
          c.i32(1).set(S);
          this.produce(reg === 1 ? INC_DEC_SUB : INC_DEC_ADD, D, S, R);
          this.write(2, R);
          return false;
        }
        if (reg === 6 && this.stack32) {
          this.push(() => {
            this.address(2, false);
            this.read(2);
          });
          return false;
        }
        return null;
      case 0x8d:
        if (!mem) return null;
        this.setReg(reg, () => this.offsetExpression());
        return false;
      case 0x1b6:
      case 0x1b7:
      case 0x1be:
      case 0x1bf: {
        const size = op & 1 ? 1 : 0;
        const signed = op >= 0x1be;
        if (!mem) {
          if (size === 0 && rm >= 4) {
            this.reg(rm - 4);
            c.i32(8).op(Op.i32ShrU);
          } else this.reg(rm);
        } else {
          this.faultPoint();
          this.address(size, false);
          this.read(size);
        }
        const shift = size === 0 ? 24 : 16;
        if (signed) c.i32(shift).op(Op.i32Shl).i32(shift).op(Op.i32ShrS);
        else c.i32(size === 0 ? 255 : 65535).op(Op.i32And);
        c.set(V);
        this.setRegLocal(reg, V);
        return false;
      }
      case 0x1ba:
        // BT BTS BTR BTC r/m32, imm8 (/4-/7; /0-/3 are #UD).
        if (reg < 4) return null;
        return this.bitTest(reg - 4, mem, rm, () => c.i32(immediate & 31), null);
      case 0x1a3:
      case 0x1ab:
      case 0x1b3:
      case 0x1bb:
        // BT BTS BTR BTC r/m32, r32: on memory the bit offset is signed and
        // reaches the dword at EA + (offset >> 5) * 4 (SDM vol. 2 BT).
        return this.bitTest((op >> 3) & 3, mem, rm, () => this.reg(reg), reg);
      case 0x1af:
        // IMUL r32, r/m32.
        return this.imul2(mem, reg, rm, () => this.reg(reg));
      case 0x69:
      case 0x6b:
        // IMUL r32, r/m32, imm.
        return this.imul2(mem, reg, rm, () => c.i32(immediate));
      case 0xc1:
      case 0xd1:
        return this.shiftByConstant(op === 0xd1 ? 1 : immediate, mem, reg, rm);
      case 0xd3:
        return this.shiftByCl(mem, reg, rm);
      case 0x90:
        return false;
      case 0xe9:
      case 0xeb: {
        if (this.follow !== null) return false;
        const skip = this.skipTo[this.index] ?? -1;
        if (skip > this.index) {
          this.branchToSkip(skip);
          return true;
        }
        const target = this.nextOffset + immediate;
        if (target === 0) this.loopBack();
        else this.exitTo(target);
        return true;
      }
      case 0xe8:
        if (!this.stack32) return null;
        this.push(() => c.get(E).i32(this.nextOffset).op(Op.i32Add));
        if (this.follow !== null) return false;
        this.exitTo(this.nextOffset + immediate);
        return true;
      case 0xc3:
        if (!this.stack32) return null;
        this.pop();
        this.exit(() => c.get(V), this.index + 1);
        return true;
    }
    if (op >= 0x140 && op <= 0x14f) {
      // CMOVcc: the source is read (and may fault) whatever the condition.
      this.source32(mem, rm);
      c.set(V);
      this.condition(op & 15);
      c.begin(Op.if);
      this.setRegLocal(reg, V);
      c.end();
      return false;
    }
    if (isJcc(op)) {
      // Jcc: the fall-through path stays in the block (a side exit when
      // taken), and so does a forward branch to an instruction of the
      // block where the skips nest: it leaves the `block` that ends there.
      const target = this.nextOffset + immediate;
      const skip = this.skipTo[this.index] ?? -1;
      if (skip > this.index) {
        this.condition(op & 15);
        this.open(Op.if);
        this.branchToSkip(skip);
        this.close();
        return false;
      }
      this.condition(op & 15);
      this.open(Op.if);
      if (target === 0) this.loopBack();
      else this.exitTo(target);
      this.close();
      return false;
    }
    return null;
  }

  /**
   * BT (0), BTS (1), BTR (2), BTC (3) of the dword in r/m32 (`rm`) and the
   * bit `bit` pushes (mod 32), as the interpreter's bitTest: CF is the
   * bit, the other flags stay as they were. That is a record with its CF
   * replaced, as a rotate leaves it (ROTATED: fo holds CF and the record's
   * own OF), so only a record pending in the locals can take it; else the
   * interpreter. `offsetReg`: the register holding a bit offset that
   * moves a memory operand (null for an immediate).
   */
  private bitTest(
    operation: number,
    mem: boolean,
    rm: number,
    bit: () => void,
    offsetReg: number | null,
  ): boolean | null {
    const c = this.c;
    const pending = this.pending;
    const rotated = pending >= ROTATED && pending < SIZED_8;
    const known =
      pending === LazyOp.ADD ||
      pending === LazyOp.SUB ||
      pending === LazyOp.LOGIC ||
      pending === INC_DEC_ADD ||
      pending === INC_DEC_SUB ||
      pending === RESULT_ONLY;
    if (!rotated && !known) return null;
    bit();
    c.set(S);
    if (mem) {
      this.faultPoint();
      const seg = (this.d.info[this.index] >> Info.SEG_SHIFT) & 7;
      this.linear(
        seg,
        () => {
          this.offsetExpression();
          if (offsetReg !== null) {
            c.get(S).i32(5).op(Op.i32ShrS).i32(2).op(Op.i32Shl).op(Op.i32Add);
          }
        },
        2,
        operation !== 0,
      );
      this.read(2);
    } else this.reg(rm);
    c.set(D);
    // fo = the new CF | the record's OF; the kind says CF/OF come from fo.
    this.conditionFromLocals(0, pending);
    c.i32(OF).op(Op.i32Mul);
    c.get(D).get(S).op(Op.i32ShrU).i32(1).op(Op.i32And).op(Op.i32Or).set(FO);
    const kind = rotated ? pending : pending + ROTATED;
    c.i32(kind).set(FK);
    this.pending = kind;
    this.known = kind;
    if (operation === 0) return false;
    c.i32(1).get(S).op(Op.i32Shl).set(V);
    if (operation === 1) c.get(D).get(V).op(Op.i32Or);
    else if (operation === 2) c.get(D).get(V).i32(-1).op(Op.i32Xor).op(Op.i32And);
    else c.get(D).get(V).op(Op.i32Xor);
    c.set(R);
    if (mem) this.write(2, R);
    else this.setRegLocal(rm, R);
    return false;
  }

  /** Pushes the r/m32 operand, read only (a read from memory is a fault point). */
  private source32(mem: boolean, rm: number): void {
    if (mem) {
      this.faultPoint();
      this.address(2, false);
      this.read(2);
    } else this.reg(rm);
  }

  /**
   * IMUL r32 = r/m32 times what `multiplier` pushes (as the interpreter's
   * imul2): CF=OF when the signed product does not fit in 32 bits.
   */
  private imul2(mem: boolean, reg: number, rm: number, multiplier: () => void): boolean {
    const c = this.c;
    this.source32(mem, rm);
    c.set(D);
    multiplier();
    c.set(S);
    c.get(D).get(S).op(Op.i32Mul).set(R);
    this.resultOnly(() => {
      c.get(D).op(Op.i64ExtendI32S).get(S).op(Op.i64ExtendI32S).op(Op.i64Mul);
      c.get(R).op(Op.i64ExtendI32S).op(Op.i64Ne);
      c.i32(CF | OF).op(Op.i32Mul);
    });
    this.setRegLocal(reg, R);
    return false;
  }

  /**
   * MUL/IMUL r/m32 (as the interpreter's multiply): EDX:EAX = EAX times
   * the operand, CF=OF when the high half is more than the low half's
   * extension, SF/ZF/PF from the low half.
   */
  private multiply(signed: boolean, mem: boolean, rm: number): boolean {
    const c = this.c;
    this.source32(mem, rm);
    c.set(S);
    this.reg(0);
    c.tee(D).get(S).op(Op.i32Mul).set(R);
    const extend = signed ? Op.i64ExtendI32S : Op.i64ExtendI32U;
    c.get(D).op(extend).get(S).op(extend).op(Op.i64Mul);
    c.byte(Op.i64Const).s32(32).op(Op.i64ShrU).op(Op.i32WrapI64).set(T);
    this.resultOnly(() => {
      c.get(T);
      if (signed) c.get(R).i32(31).op(Op.i32ShrS);
      else c.i32(0);
      c.op(Op.i32Ne)
        .i32(CF | OF)
        .op(Op.i32Mul);
    });
    this.setRegLocal(0, R);
    this.setRegLocal(2, T);
    return false;
  }

  /** Shifts and rotates by a constant (block.ts: as shift32; memory as shiftGroup). */
  private shiftByConstant(
    immediate: number,
    mem: boolean,
    reg: number,
    rm: number,
  ): boolean | null {
    const c = this.c;
    if (mem && reg < 4) return null;
    const count = immediate & 31;
    if (count === 0 && !mem) return false;
    if (reg < 4) {
      // Rotates: CF/OF over a record pending in the locals, else the interpreter.
      if (reg > 1 || this.pending === NONE || this.pending === UNKNOWN) return null;
      if (this.pending >= SIZED_8) return null;
      this.reg(rm);
      c.set(D);
      if (count === 0) return false;
      c.get(D)
        .i32(count)
        .op(reg === 0 ? Op.i32Rotl : Op.i32Rotr)
        .set(R);
      if (reg === 0) {
        // CF = bit 0 of the result; OF = CF xor the result's top bit.
        c.get(R).i32(1).op(Op.i32And).tee(V);
        c.get(R).i32(31).op(Op.i32ShrU).get(V).op(Op.i32Xor).i32(OF).op(Op.i32Mul).op(Op.i32Or);
      } else {
        c.get(R).i32(31).op(Op.i32ShrU);
        c.get(R).get(R).i32(1).op(Op.i32Shl).op(Op.i32Xor).i32(31).op(Op.i32ShrU);
        c.i32(OF).op(Op.i32Mul).op(Op.i32Or);
      }
      c.set(FO);
      const kind = this.pending >= ROTATED ? this.pending : this.pending + ROTATED;
      c.i32(kind).set(FK);
      this.pending = kind;
      this.known = kind;
      this.setRegLocal(rm, R);
      return false;
    }
    if (mem) {
      this.faultPoint();
      this.address(2, true);
      this.read(2);
    } else this.reg(rm);
    c.set(D);
    if (count === 0) {
      c.get(D).set(R);
    } else {
      this.shiftCode(reg, () => c.i32(count));
      this.resultOnly(() => this.shiftFlags(reg, () => c.i32(count)));
    }
    if (mem) this.write(2, R);
    else this.setRegLocal(rm, R);
    return false;
  }

  /** SHL/SHR/SAR by CL: a count of 0 (mod 32) changes nothing, so the record is this one or the previous (`fk`). */
  private shiftByCl(mem: boolean, reg: number, rm: number): boolean | null {
    const c = this.c;
    if (reg < 4) return null;
    if (mem) {
      this.faultPoint();
      this.address(2, true);
      this.read(2);
      c.set(D);
    }
    this.reg(1);
    c.i32(31).op(Op.i32And).tee(T);
    if (mem) c.get(D).set(R);
    c.begin(Op.if);
    if (!mem) {
      this.reg(rm);
      c.set(D);
    }
    this.shiftCode(reg, () => c.get(T));
    this.resultOnly(() => this.shiftFlags(reg, () => c.get(T)));
    this.pending = UNKNOWN;
    this.known = null;
    if (!mem) this.setRegLocal(rm, R);
    c.end();
    if (mem) this.write(2, R);
    return false;
  }

  /** r = d shifted by the count `count` pushes (1-31). */
  private shiftCode(reg: number, count: () => void): void {
    const c = this.c;
    c.get(D);
    count();
    c.op(reg === 5 ? Op.i32ShrU : reg === 7 ? Op.i32ShrS : Op.i32Shl).set(R);
  }

  /** Pushes the shift's CF | OF (block.ts shift32's concrete flags). */
  private shiftFlags(reg: number, count: () => void): void {
    const c = this.c;
    if (reg === 5) {
      // CF = last bit out; OF = the operand's top bit.
      c.get(D);
      count();
      c.i32(1).op(Op.i32Sub).op(Op.i32ShrU).i32(1).op(Op.i32And);
      c.get(D).i32(31).op(Op.i32ShrU).i32(OF).op(Op.i32Mul).op(Op.i32Or);
    } else if (reg === 7) {
      c.get(D);
      count();
      c.i32(1).op(Op.i32Sub).op(Op.i32ShrS).i32(1).op(Op.i32And);
    } else {
      // CF = last bit out; OF = CF xor the result's top bit.
      c.get(D).i32(32);
      count();
      c.op(Op.i32Sub).op(Op.i32ShrU).i32(1).op(Op.i32And).tee(V);
      c.get(R).i32(31).op(Op.i32ShrU).get(V).op(Op.i32Xor).i32(OF).op(Op.i32Mul).op(Op.i32Or);
    }
  }

  /** Pushes 8-bit register `r` (AL CL DL BL AH CH DH BH). */
  private reg8(r: number): void {
    const c = this.c;
    if (r < 4) this.reg(r);
    else {
      this.reg(r - 4);
      c.i32(8).op(Op.i32ShrU);
    }
    c.i32(255).op(Op.i32And);
  }

  /** 8-bit register `r` = local `local` (0-255). */
  private setReg8(r: number, local: number): void {
    const c = this.c;
    const full = r & 3;
    this.setReg(full, () => {
      this.reg(full);
      if (r < 4) c.i32(-256).op(Op.i32And).get(local).op(Op.i32Or);
      else c.i32(-65281).op(Op.i32And).get(local).i32(8).op(Op.i32Shl).op(Op.i32Or);
    });
  }

  /** Records an 8/16-bit ALU result (d, s, r masked to `mask`) as kind `size` + `kind`. */
  private produceSized(sized: number, kind: number, mask: number): void {
    this.c.get(R).i32(mask).op(Op.i32And).set(R);
    this.produce(sized + kind, D, S, R);
  }

  /**
   * 8-bit ALU forms (ADD OR AND SUB XOR CMP and TEST with a register,
   * memory or immediate operand), MOV r/m8, imm8 and SETcc; undefined for
   * other opcodes, null for forms left to the interpreter.
   */
  private emit8(
    op: number,
    mem: boolean,
    reg: number,
    rm: number,
    immediate: number,
  ): boolean | null | undefined {
    const c = this.c;
    let operation = -1;
    let form = -1;
    if (op < 0x40 && ((op & 7) === 0 || (op & 7) === 2 || (op & 7) === 4)) {
      operation = op >> 3;
      form = op & 7;
    } else if (op === 0x80 || op === 0x82) {
      operation = reg;
      form = 6;
    } else if (op === 0x84) {
      operation = 8;
      form = 0;
    } else if (op === 0xa8) {
      operation = 8;
      form = 4;
    } else if (op === 0xf6) {
      if (reg > 1) return null;
      operation = 8;
      form = 6;
    } else if (op === 0xc6) {
      if (!mem || reg !== 0) return null;
      this.faultPoint();
      this.address(0, true);
      c.i32(immediate & 255).set(V);
      this.write(0, V);
      return false;
    } else if (op === 0xfe) {
      // INC/DEC r/m8: CF kept (in fc, as for 32 bits).
      if (reg > 1) return null;
      this.carryIn();
      if (mem) {
        this.faultPoint();
        this.address(0, true);
        this.read(0);
      } else this.reg8(rm);
      c.tee(D)
        .i32(reg === 1 ? -1 : 1)
        .op(Op.i32Add)
        .i32(255)
        .op(Op.i32And)
        .set(R);
      c.i32(1).set(S);
      this.produce(SIZED_8 + (reg === 1 ? INC_DEC_SUB : INC_DEC_ADD), D, S, R);
      if (mem) this.write(0, R);
      else this.setReg8(rm, R);
      return false;
    } else if (op >= 0xb0 && op <= 0xb7) {
      // MOV r8, imm8.
      c.i32(immediate & 255).set(V);
      this.setReg8(op & 7, V);
      return false;
    } else if (op >= 0x190 && op <= 0x19f) {
      if (mem) return null;
      this.condition(op & 15);
      c.set(V);
      this.setReg8(rm, V);
      return false;
    } else {
      return undefined;
    }
    if (operation === 2 || operation === 3) return null; // ADC SBB
    const kind = operation === 8 ? LazyOp.LOGIC : -1;
    const code = operation === 8 ? Op.i32And : ALU_OPCODES[operation];
    const flagKind = kind >= 0 ? kind : ALU_KINDS[operation];
    const stores = operation !== 7 && operation !== 8;
    // Destination: r/m8 (forms 0 and 6), r8 (form 2), AL (form 4).
    const dstInMemory = mem && (form === 0 || form === 6);
    if (dstInMemory) {
      this.faultPoint();
      this.address(0, stores);
      this.read(0);
      c.set(D);
    } else if (form === 2) this.reg8(reg);
    else if (form === 4) this.reg8(0);
    else this.reg8(rm);
    if (!dstInMemory) c.set(D);
    // Source: r8 (form 0), r/m8 (form 2), imm8 (forms 4 and 6).
    if (form === 0) this.reg8(reg);
    else if (form === 2) {
      if (mem) {
        this.faultPoint();
        this.address(0, false);
        this.read(0);
      } else this.reg8(rm);
    } else c.i32(immediate & 255);
    c.set(S);
    c.get(D).get(S).op(code).set(R);
    this.produceSized(SIZED_8, flagKind, 255);
    if (stores) {
      if (dstInMemory) this.write(0, R);
      else this.setReg8(form === 2 ? reg : form === 4 ? 0 : rm, R);
    }
    return false;
  }

  /** 16-bit forms (as setReg(1, ...)/writeLin16), or null. */
  private emit16(mem: boolean, reg: number, rm: number): boolean | null {
    const c = this.c;
    switch (this.d.op[this.index]) {
      case 0x8b:
        if (!mem) this.reg(rm);
        else {
          this.faultPoint();
          this.address(1, false);
          this.read(1);
        }
        c.i32(65535).op(Op.i32And).set(V);
        this.setReg(reg, () => {
          this.reg(reg);
          c.i32(-65536).op(Op.i32And).get(V).op(Op.i32Or);
        });
        return false;
      case 0x89:
        if (!mem) return null;
        this.faultPoint();
        this.address(1, true);
        this.reg(reg);
        c.set(V);
        this.write(1, V);
        return false;
      case 0x85:
      case 0x39:
      case 0x3b:
      case 0x81:
      case 0x83: {
        // TEST r/m16, r16 and CMP r/m16 with r16 or an immediate (no write).
        const op = this.d.op[this.index];
        if ((op === 0x81 || op === 0x83) && reg !== 7) return null;
        const load = () => {
          if (mem) {
            this.faultPoint();
            this.address(1, false);
            this.read(1);
          } else this.reg(rm);
          c.i32(65535).op(Op.i32And);
        };
        const register = () => {
          this.reg(reg);
          c.i32(65535).op(Op.i32And);
        };
        if (op === 0x3b) {
          register();
          c.set(D);
          load();
          c.set(S);
        } else {
          load();
          c.set(D);
          if (op === 0x81 || op === 0x83) c.i32(this.d.immediate[this.index] & 65535);
          else register();
          c.set(S);
        }
        c.get(D)
          .get(S)
          .op(op === 0x85 ? Op.i32And : Op.i32Sub)
          .set(R);
        this.produceSized(SIZED_16, op === 0x85 ? LazyOp.LOGIC : LazyOp.SUB, 65535);
        return false;
      }
      default:
        return null;
    }
  }

  /** PUSH of a 32-bit value (as push32: the write first, ESP after it). */
  private push(value: () => void): void {
    const c = this.c;
    this.faultPoint();
    value();
    c.set(V);
    this.reg(4);
    c.i32(4).op(Op.i32Sub).set(T);
    this.linear(2, () => c.get(T), 2, true);
    this.write(2, V);
    this.setRegLocal(4, T);
  }

  /** POP of a 32-bit value into `v` (as pop32: the read first, ESP after it; the caller stores v). */
  private pop(): void {
    const c = this.c;
    this.faultPoint();
    this.reg(4);
    c.set(T);
    this.linear(2, () => c.get(T), 2, false);
    this.read(2);
    c.set(V);
    this.setReg(4, () => c.get(T).i32(4).op(Op.i32Add));
  }

  // -- The function -------------------------------------------------------

  /** The module: entry guards, the body in try (and loop), the fault catch. */
  finish(end: number, count: number, ended: boolean): CodeWriter {
    const layout = this.layout;
    if (!ended) this.exit(() => this.c.get(E).i32(end).op(Op.i32Add), count);
    // Skips to instructions past the block's end leave there.
    while (this.skips.length > 0) {
      const k = this.skips.pop() as number;
      this.close();
      this.pending = UNKNOWN;
      this.known = null;
      const at = this.offsets[k];
      this.exit(() => this.c.get(E).i32(at).op(Op.i32Add), k);
    }
    const f = new BlockCodeWriter(this.c.length + 512);
    // Guards: the stack size and the segments assumed flat (one word's
    // bits, WASM_FLAT), the other segments' bases. The code bytes are
    // checked per page by the tier (`CodeSnapshots`), not here.
    let mask = 1 << WASM_FLAT_STACK32;
    for (const [seg, base] of this.assumed) if (base === 0) mask |= 1 << seg;
    f.i32(0)
      .memory(Op.i32Load, 2, layout.scratch + 4 * WASM_FLAT)
      .i32(mask)
      .op(Op.i32And)
      .i32(this.stack32 ? mask : mask & ~(1 << WASM_FLAT_STACK32))
      .op(Op.i32Ne);
    for (const [seg, base] of this.assumed) {
      if (base === 0) continue;
      f.i32(0)
        .memory(Op.i32Load8U, 0, layout.segCheck + seg)
        .op(Op.i32Or);
      f.i32(0)
        .memory(Op.i32Load, 2, layout.segBase + 4 * seg)
        .i32(base)
        .op(Op.i32Ne)
        .op(Op.i32Or);
    }
    f.begin(Op.if).i32(-1).op(Op.return).end();
    f.i32(-1).set(FK);
    f.begin(Op.try);
    if (this.loops) f.begin(Op.loop);
    f.begin(Op.block);
    f.append(this.c.view());
    f.end();
    // The exit tail (see `exit`).
    f.get(FK).i32(0).op(Op.i32GeS).begin(Op.if);
    f.get(FK).get(FD).get(FS).get(FR).get(FC).get(FO).call(H_LZ);
    f.end();
    f.i32(0)
      .get(XE)
      .memory(Op.i32Store, 2, layout.scratch + 4 * WASM_EXIT_EIP);
    f.get(N).get(XN).op(Op.i32Add).op(Op.return);
    if (this.loops) f.end();
    f.op(Op.catchAll);
    f.get(E).get(FI).i32(19).op(Op.i32Shl).i32(19).op(Op.i32ShrS).op(Op.i32Add);
    f.get(N).get(FI).i32(13).op(Op.i32ShrU).op(Op.i32Add);
    f.get(FK).get(FD).get(FS).get(FR).get(FC).get(FO).helper(F_FIX);
    f.byte(Op.rethrow).u32(0);
    f.end();
    f.op(Op.unreachable);
    return f;
  }
}
