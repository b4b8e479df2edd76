import {
  createVcpuExit,
  type InterruptSource,
  type Vcpu,
  VcpuAccess,
  type VcpuExit,
  VcpuExitReason,
  type VcpuHooks,
  type VcpuIo,
  VcpuShutdownKind,
} from "@kumo/abi";
import { type GuestMemory, TlbPermission, X86PageWalker, X86WalkFlags } from "@kumo/mmu";
import {
  BLOCK_CACHE_SIZE,
  BlockCache,
  type BlockFunction,
  COLD,
  compileBlock,
  DEFAULT_JIT_THRESHOLD,
  GENERIC,
} from "./block";
import { ARITH_FLAGS, Cr0, Cr4, Efer, Flag, Msr, Vector } from "./constants";
import { type CpuModel, defaultCpuModel } from "./cpuid";
import {
  DECODE_TOO_LONG,
  DecodedInstructions,
  decodeInstruction,
  EMPTY_TAG,
  Info,
} from "./decoder";
import { LazyOp, PARITY, SIZE_MASK, SIZE_SIGN } from "./flags";
import { Fpu } from "./fpu";
import { emms, executeSimd, loadStoreMxcsr } from "./sse";
import { loadState, saveState, type X86CpuState } from "./state";
import {
  DEFAULT_WASM_JIT_THRESHOLD,
  WASM_BATCH,
  WASM_CODE_EPOCH,
  WASM_EXEC_NEED,
  WASM_FLAT,
  WASM_FLAT_STACK32,
  WASM_READ_NEED,
  WASM_WRITE_NEED,
  WasmBlockTier,
  wasmTierSupported,
} from "./wasm-block";

// Register indices (ModRM encoding).
const EAX = 0;
const ECX = 1;
const EDX = 2;
const EBX = 3;
const ESP = 4;
const EBP = 5;
const ESI = 6;
const EDI = 7;
// Segment indices; LDTR and TR share the descriptor-cache arrays.
const ES = 0;
const CS = 1;
const SS = 2;
const DS = 3;
const FS = 4;
const GS = 5;
export const LDTR = 6;
export const TR = 7;

const CF = Flag.CF;
const PF = Flag.PF;
const AF = Flag.AF;
const ZF = Flag.ZF;
const SF = Flag.SF;
const OF = Flag.OF;
const IF = Flag.IF;
const DF = Flag.DF;
const TF = Flag.TF;
const VM = Flag.VM;

// Software-TLB entry bits (per virtual page). A page is filled with write
// permission only by a write access, so the first write walks again and sets
// the dirty bit (SDM vol. 3A 4.8).
const T_SUP_READ = 1;
const T_USER_READ = 2;
const T_SUP_WRITE = 4;
const T_USER_WRITE = 8;
const T_SUP_EXEC = 16;
const T_USER_EXEC = 32;
const T_MMIO = 64;
const T_GLOBAL = 128;
/**
 * Never set in a TLB entry. Alignment checking (CR0.AM, EFLAGS.AC, CPL 3:
 * SDM vol. 3A 6.15 "Interrupt 17") adds it to readNeed/writeNeed, so every
 * data access misses the fast path and the slow path checks alignment: the
 * fast paths (interpreter and blocks) cost nothing extra while it is off.
 */
const T_ALIGN = 1 << 30;

// segCheck bits: reasons a segment needs the slow (checking) access path.
const SC_UNUSABLE = 1;
const SC_LIMIT = 2;
const SC_READONLY = 4;
const SC_EXPAND_DOWN = 8;
const SC_NOREAD = 16;

/** Decoded instructions by physical address; the same slots as the block cache's (blocks pass theirs to `step`). */
const DECODE_CACHE_SIZE = BLOCK_CACHE_SIZE;
/** Fall-through successors queued with a block (see compileBlockAt). */
const MAX_SUCCESSORS = 16;
/** Probes of a queued (or cold) block start after which the WebAssembly tier's partial batch is compiled. */
const QUEUED_HITS = 32;
/**
 * Opcodes after which a block may start (the loop probes the block cache
 * only there): those blocks leave to the interpreter, and the conditional
 * branches, whose fall-through begins a block too.
 */
const ENDS_BLOCK = (() => {
  const table = new Uint8Array(512);
  for (let op = 0; op < 512; op++) table[op] = GENERIC[op] ? 0 : 1;
  for (let op = 0x70; op <= 0x7f; op++) table[op] = 1; // jcc rel8
  for (let op = 0x180; op <= 0x18f; op++) table[op] = 1; // jcc rel32
  for (let op = 0xe0; op <= 0xe3; op++) table[op] = 1; // loop, jcxz
  return table;
})();

// Task-switch kinds (SDM vol. 3A table 7-2).
const TASK_JUMP = 0;
const TASK_CALL = 1;
const TASK_IRET = 2;
const TLB_TRACK = 4096;
const ALL_ACCESS = T_SUP_READ | T_USER_READ | T_SUP_WRITE | T_USER_WRITE | T_SUP_EXEC | T_USER_EXEC;

const ACCESS_READ = 0;
const ACCESS_WRITE = 1;
const ACCESS_EXEC = 2;

// Event delivery kinds (SDM vol. 3A 6.4, 6.12.1).
const EVENT_EXCEPTION = 0;
const EVENT_EXTERNAL = 1;
const EVENT_SOFTWARE = 2;

/**
 * What the CPU did since it was created, for profiling (`cpu.counters`).
 * Each is incremented on a slow path or once per block run, never per
 * interpreted instruction, so counting costs nothing measurable.
 */
export interface X86CpuCounters {
  /** Instructions retired inside compiled blocks (the rest of `instructionsRetired` were interpreted). */
  blockInstructions: number;
  /** Compiled blocks entered. */
  blockRuns: number;
  /** Instructions decoded (decoded-instruction cache misses). */
  decodes: number;
  /** Software-TLB misses and permission upgrades (each a page walk, or a fill with paging off). */
  tlbMisses: number;
  /** TLB flushes (CR3 writes, CR0/CR4 paging changes, p2m changes). */
  tlbFlushes: number;
  /** `invlpg` and other single-page invalidations. */
  pageInvalidations: number;
  /** Writes that hit a page holding decoded code (its instructions and blocks dropped). */
  codePageWrites: number;
  /** Exceptions, interrupts and NMIs delivered through the IDT or IVT (faults included). */
  events: number;
  /** Blocks the WebAssembly tier compiled, the bytes of their modules and the microseconds their compilation took (generation, `WebAssembly.Module`, `Instance`). */
  wasmBlocks: number;
  wasmBytes: number;
  wasmCompileMicroseconds: number;
}

/** An operation the interpreter does not model yet: the run ends with a GuestError exit. */
export class UnsupportedOperation extends Error {
  constructor(what: string) {
    super(`unsupported: ${what}`);
    this.name = "UnsupportedOperation";
  }
}

/** Thrown (this one object, never allocated) to unwind a faulting instruction. */
const FAULT = { fault: true };

/** Options for `createX86Cpu`. */
export interface X86CpuOptions {
  /** The domain's guest-physical memory; RAM must start at address 0 (x86). */
  memory: GuestMemory;
  io?: VcpuIo;
  hooks?: VcpuHooks;
  /** CPUID model; defaults to `defaultCpuModel()`. */
  model?: CpuModel;
  /**
   * The block tier, default on: hot 32-bit code compiled to WebAssembly
   * (wasm-block.ts) when the memory has WebAssembly scratch for this CPU
   * (`createGuestMemory({ wasmScratch })`, see `X86_WASM_SCRATCH_BYTES`,
   * `cpu.wasmLayout`) and the host runs WebAssembly with exception
   * handling; else to JavaScript with `new Function` (block.ts). Turn it
   * off where a Content-Security-Policy forbids `unsafe-eval` (JavaScript
   * tier) or `wasm-unsafe-eval`. The environment variable KUMO_X86_JIT
   * (comma-separated) overrides: `off` does the same, `eager` compiles
   * every block on its first execution (tests) with whichever tier is
   * active, `js` forces the JavaScript tier, a number sets the threshold.
   */
  jit?: boolean;
  /**
   * Interpreted executions of an address before a block is compiled there
   * (default 200 for the WebAssembly tier, 50000 for the JavaScript tier).
   */
  jitThreshold?: number;
  /** Force the JavaScript block tier even where the WebAssembly tier could run (as KUMO_X86_JIT=js). */
  jitTier?: "js";
}

/** KUMO_X86_JIT from the environment, where there is one (Node). */
function jitEnvironment(): string {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process;
  return process?.env?.KUMO_X86_JIT ?? "";
}

/**
 * Where a CPU's WebAssembly-visible state sits in memory beside RAM
 * (`GuestMemory.claimWasmScratch`): byte offsets in `memory.buffer`, whose
 * bytes [0, ramSize) are guest RAM from physical address 0.
 */
export interface X86WasmLayout {
  readonly memory: WebAssembly.Memory;
  readonly ramSize: number;
  /** `regs`: Int32Array(16). */
  readonly regs: number;
  /** `segBase`: Int32Array(8), ES CS SS DS FS GS LDTR TR. */
  readonly segBase: number;
  /** `segCheck`: Uint8Array(8). */
  readonly segCheck: number;
  /** 4096 bytes for the WebAssembly tier's own use. */
  readonly scratch: number;
  /** The software TLB's permissions: Int32Array(1 << 20) by linear page. */
  readonly tlbInfo: number;
  /** The software TLB's physical page bases: Int32Array(1 << 20). */
  readonly tlbPhys: number;
  /** Pages holding decoded code: Uint8Array(ramSize / 4096). */
  readonly codePage: number;
  /** The block cache's entries (`BlockCache.entries`): Int32Array(2 * BLOCK_CACHE_SIZE), for chaining blocks. */
  readonly blockEntries: number;
  /** The code epoch each physical page's blocks were last checked in (`CodeSnapshots.checked`): Uint8Array(1 << 20). */
  readonly pageChecked: number;
}

const LAYOUT_REGS = 0;
const LAYOUT_SEG_BASE = 64;
const LAYOUT_SEG_CHECK = 96;
const LAYOUT_SCRATCH = 4096;
const LAYOUT_TLB_INFO = 8192;
const LAYOUT_TLB_PHYS = LAYOUT_TLB_INFO + (4 << 20);
const LAYOUT_CODE_PAGE = LAYOUT_TLB_PHYS + (4 << 20);
const LAYOUT_BLOCK_ENTRIES = LAYOUT_CODE_PAGE + (1 << 20);
const LAYOUT_PAGE_CHECKED = LAYOUT_BLOCK_ENTRIES + 8 * BLOCK_CACHE_SIZE;
/**
 * WebAssembly scratch one x86 vCPU claims from its memory (`wasmScratch` in
 * `createGuestMemory`): its registers, segment bases, TLB and code-page map,
 * the latter sized for the largest RAM a 32-bit WebAssembly memory holds.
 */
export const X86_WASM_SCRATCH_BYTES = LAYOUT_PAGE_CHECKED + (1 << 20);

const noIo: VcpuIo = {
  portRead: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
  portWrite: () => {},
};

/**
 * An IA-32 processor interpreting guest code (Intel SDM vols. 2 and 3A).
 * Implements the `Vcpu` contract of `@kumo/abi`.
 */
export class X86Cpu implements Vcpu {
  readonly architecture = "x86" as const;
  readonly exit: VcpuExit = createVcpuExit();
  io: VcpuIo;
  hooks: VcpuHooks;
  interrupts: InterruptSource | null = null;
  model: CpuModel;

  /** General-purpose registers (sized for x86-64's sixteen). */
  readonly regs: Int32Array;
  eip = 0;
  /** EFLAGS with the arithmetic flags valid only where `lazy` is clear. */
  flagsRaw = 2;
  lazy = 0;
  lazyOp = 0;
  lazySize = 2;
  lazyDst = 0;
  lazySrc = 0;
  lazyResult = 0;
  lazyCarry = 0;

  // Descriptor caches: ES CS SS DS FS GS LDTR TR.
  readonly segSel = new Uint16Array(8);
  readonly segBase: Int32Array;
  readonly segLimit = new Int32Array(8);
  /** Access rights in VMX layout: type(0-3) S(4) DPL(5-6) P(7) AVL(12) L(13) D/B(14) G(15). */
  readonly segAttr = new Uint16Array(8);
  readonly segCheck: Uint8Array;
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0x3ff;

  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  efer = 0;
  readonly dr = new Int32Array(8);
  cpl = 0;
  /** CS.D: default operand and address size is 32 bits. */
  code32 = false;
  /** SS.B: the stack pointer is ESP (else SP). */
  stack32 = false;

  // MSRs Linux touches (SDM vol. 4).
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  patLow = 0x00070406;
  patHigh = 0x00070406;
  apicBaseLow = 0xfee00900;
  apicBaseHigh = 0;
  tscOffset = 0;
  miscEnableLow = 1;
  readonly mtrr = new Map<number, [number, number]>();
  mtrrDefType = 0;

  halted = false;
  /** Interrupts are inhibited for one instruction after sti and mov/pop ss (SDM vol. 3A 6.8.3). */
  interruptShadow = false;
  nmiPending = false;
  private windowRequested = false;
  /** Set when something may have made an event deliverable; cleared after a check finds none. */
  private eventCheck = true;

  retired = 0;
  /** Profiling counts since creation (see X86CpuCounters). */
  readonly counters: X86CpuCounters = {
    blockInstructions: 0,
    blockRuns: 0,
    decodes: 0,
    tlbMisses: 0,
    tlbFlushes: 0,
    pageInvalidations: 0,
    codePageWrites: 0,
    events: 0,
    wasmBlocks: 0,
    wasmBytes: 0,
    wasmCompileMicroseconds: 0,
  };
  readonly fpu = new Fpu();

  // Memory.
  readonly memory: GuestMemory;
  /** Guest RAM bytes from physical 0 (the memory's `ram.u8`). */
  readonly ram: Uint8Array;
  private readonly view: DataView;
  /** `FrameState` per RAM frame: only frames in state 0 are touched directly. */
  private readonly frameState: Uint8Array;
  private readonly ramSize: number;
  private readonly walker: X86PageWalker;
  private readonly tlbInfo: Int32Array;
  private readonly tlbPhys: Int32Array;
  private readonly tlbTracked = new Int32Array(TLB_TRACK);
  private tlbCount = 0;
  private tlbOverflow = false;
  private readNeed = T_SUP_READ;
  private writeNeed = T_SUP_WRITE;
  private execNeed = T_SUP_EXEC;
  /** CR0.AM, EFLAGS.AC and CPL 3: misaligned data accesses raise #AC(0) (recomputed by modeChanged). */
  private alignmentCheck = false;
  /** Pages holding decoded instructions, and their write generations. */
  private readonly codePage: Uint8Array;
  readonly decoded = new DecodedInstructions(DECODE_CACHE_SIZE);
  /**
   * Where the arrays WebAssembly code reads sit in the memory's
   * WebAssembly.Memory, or null when the memory has no scratch for them
   * (they are then ordinary arrays).
   */
  readonly wasmLayout: X86WasmLayout | null;
  /** Compiled blocks (null when the block tier is off). */
  readonly blocks: BlockCache | null;
  /** The WebAssembly block tier (null: blocks are compiled to JavaScript, or not at all). */
  readonly wasmTier: WasmBlockTier | null;
  /** The WebAssembly tier's mirrors of readNeed, writeNeed and stack32 (WASM_* words). */
  private readonly wasmWords: Int32Array | null;
  /** Set when translations, the mode or a code page changed: a running block stops. */
  blockAbort = false;
  /** Instructions of the running block that completed (for a fault unwinding it). */
  blockDone = 0;
  private readonly blockScratch = new DecodedInstructions(64);

  // Per-instruction scratch.
  private startEip = 0;
  /** Linear and physical page of the last instruction fetch through the TLB (-1: none; page bases have zero low bits). */
  private fetchLinearPage = -1;
  private fetchPhysPage = 0;
  private fetchBase = 0;
  private operandAddress = 0;
  faultVector = 0;
  faultCode = 0;
  faultHasCode = false;
  private stop = false;
  /** Something must happen after the current instruction (exit, single-step trap). */
  private afterInstruction = false;
  private singleStep = false;
  private descLow = 0;
  private descHigh = 0;
  private readonly scratch = new Uint32Array(4);
  private readonly scratchRegs = new Int32Array(8);
  private readonly scratchSelectors = new Uint16Array(6);

  constructor(options: X86CpuOptions) {
    const memory = options.memory;
    if (memory.ram.base !== 0) {
      throw new RangeError(
        `x86 guest RAM must start at physical 0, not 0x${memory.ram.base.toString(16)}`,
      );
    }
    this.memory = memory;
    this.ram = memory.ram.u8;
    this.view = memory.ram.view;
    this.frameState = memory.ram.frameState;
    this.ramSize = memory.ram.size;
    // MAXPHYADDR 36, as CPUID 0x80000008 reports.
    this.walker = new X86PageWalker(memory, { maxPhysicalAddressBits: 36 });
    // A p2m change (grant map, balloon, MMIO region) invalidates cached
    // translations and decoded code in the frames concerned.
    memory.addP2mListener((gfn, count) => {
      this.flushTlb(true);
      this.invalidateCode(gfn * 4096, count * 4096);
    });
    this.io = options.io ?? noIo;
    this.hooks = options.hooks ?? { readCounter: () => this.retired };
    this.model = options.model ?? defaultCpuModel();
    const pages = Math.ceil(this.ramSize / 4096);
    const scratch = memory.claimWasmScratch?.(X86_WASM_SCRATCH_BYTES) ?? null;
    if (scratch !== null) {
      const buffer = scratch.memory.buffer;
      const at = scratch.offset;
      this.wasmLayout = {
        memory: scratch.memory,
        ramSize: this.ramSize,
        regs: at + LAYOUT_REGS,
        segBase: at + LAYOUT_SEG_BASE,
        segCheck: at + LAYOUT_SEG_CHECK,
        scratch: at + LAYOUT_SCRATCH,
        tlbInfo: at + LAYOUT_TLB_INFO,
        tlbPhys: at + LAYOUT_TLB_PHYS,
        codePage: at + LAYOUT_CODE_PAGE,
        blockEntries: at + LAYOUT_BLOCK_ENTRIES,
        pageChecked: at + LAYOUT_PAGE_CHECKED,
      };
      this.regs = new Int32Array(buffer, this.wasmLayout.regs, 16);
      this.segBase = new Int32Array(buffer, this.wasmLayout.segBase, 8);
      this.segCheck = new Uint8Array(buffer, this.wasmLayout.segCheck, 8);
      this.tlbInfo = new Int32Array(buffer, this.wasmLayout.tlbInfo, 1 << 20);
      this.tlbPhys = new Int32Array(buffer, this.wasmLayout.tlbPhys, 1 << 20);
      this.codePage = new Uint8Array(buffer, this.wasmLayout.codePage, pages);
    } else {
      this.wasmLayout = null;
      this.regs = new Int32Array(16);
      this.segBase = new Int32Array(8);
      this.segCheck = new Uint8Array(8);
      this.tlbInfo = new Int32Array(1 << 20);
      this.tlbPhys = new Int32Array(1 << 20);
      this.codePage = new Uint8Array(pages);
    }
    const jitModes = jitEnvironment().split(",");
    const jitThreshold = jitModes.map(Number).find((value) => value > 0);
    const useWasm =
      this.wasmLayout !== null &&
      options.jit !== false &&
      options.jitTier !== "js" &&
      !jitModes.includes("js") &&
      wasmTierSupported();
    this.blocks =
      options.jit === false || jitModes.includes("off")
        ? null
        : new BlockCache(
            pages,
            jitModes.includes("eager")
              ? 1
              : (jitThreshold ??
                  options.jitThreshold ??
                  (useWasm ? DEFAULT_WASM_JIT_THRESHOLD : DEFAULT_JIT_THRESHOLD)),
            // The WebAssembly tier's dispatcher reads the cache to chain blocks.
            useWasm && this.wasmLayout !== null
              ? new Int32Array(
                  this.wasmLayout.memory.buffer,
                  this.wasmLayout.blockEntries,
                  2 * BLOCK_CACHE_SIZE,
                )
              : undefined,
          );
    if (useWasm && this.blocks !== null && this.wasmLayout !== null) {
      const blocks = this.blocks;
      this.wasmTier = new WasmBlockTier(
        this,
        this.wasmLayout,
        this.view,
        { tlbInfo: this.tlbInfo, tlbPhys: this.tlbPhys, codePage: this.codePage },
        blocks,
        (phys, code, length, index) => this.registerBlock(phys, code, length, index),
        blocks.threshold === 1 ? 1 : WASM_BATCH,
      );
      this.wasmWords = this.wasmTier.words;
    } else {
      this.wasmTier = null;
      this.wasmWords = null;
    }
    this.reset();
  }

  get instructionsRetired(): number {
    return this.retired;
  }

  /** Power-on state (SDM vol. 3A 9.1.1): real mode at F000:FFF0. */
  reset(): void {
    this.regs.fill(0);
    this.regs[EDX] = this.model.signature;
    this.eip = 0xfff0;
    this.flagsRaw = 2;
    this.lazy = 0;
    for (let i = 0; i < 6; i++) this.setRealSegment(i, 0);
    this.segSel[CS] = 0xf000;
    this.segBase[CS] = 0xffff0000 | 0;
    this.updateSegCheck(CS);
    this.setSegmentCache(LDTR, 0, 0, 0xffff, 0x82);
    this.setSegmentCache(TR, 0, 0, 0xffff, 0x8b);
    this.gdtrBase = 0;
    this.gdtrLimit = 0xffff;
    this.idtrBase = 0;
    this.idtrLimit = 0x3ff;
    this.cr0 = 0x60000010;
    this.cr2 = 0;
    this.cr3 = 0;
    this.cr4 = 0;
    this.efer = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    this.cpl = 0;
    this.halted = false;
    this.interruptShadow = false;
    this.fpu.reset();
    this.fpu.resetSimd();
    this.modeChanged();
    this.flushTlb(true);
  }

  // ---------------------------------------------------------------------
  // Public set-up helpers

  /**
   * The Xen PVH entry state (xen-abi.md 1.1, Xen's hvm_vcpu_reset_state for
   * 32-bit): CR0 = PE|ET, paging off, flat 4 GiB 32-bit code (selector 0x10)
   * and data (0x18) segments, TR a 32-bit TSS at 0 limit 0x67, EFLAGS = 2.
   */
  setFlatProtectedMode(entry: number, stackPointer = 0): void {
    this.cr0 = Cr0.PE | Cr0.ET;
    this.cr4 = 0;
    this.efer = 0;
    this.flagsRaw = 2;
    this.lazy = 0;
    this.cpl = 0;
    this.setSegmentCache(CS, 0x10, 0, -1, 0xc09b);
    for (const seg of [ES, SS, DS, FS, GS]) this.setSegmentCache(seg, 0x18, 0, -1, 0xc093);
    this.setSegmentCache(TR, 0, 0, 0x67, 0x8b);
    this.setSegmentCache(LDTR, 0, 0, 0xffff, 0x82);
    this.eip = entry | 0;
    this.regs[ESP] = stackPointer | 0;
    this.halted = false;
    this.modeChanged();
    this.flushTlb(true);
  }

  /** Real mode with CS:IP = `cs`:`ip` and every other segment 0 (as after a far jump from reset). */
  setRealMode(cs: number, ip: number): void {
    this.cr0 = 0x60000010;
    this.cr4 = 0;
    this.flagsRaw = 2;
    this.lazy = 0;
    this.cpl = 0;
    for (let i = 0; i < 6; i++) this.setRealSegment(i, 0);
    this.setRealSegment(CS, cs);
    this.eip = ip & 0xffff;
    this.halted = false;
    this.modeChanged();
    this.flushTlb(true);
  }

  /** EFLAGS with the lazy arithmetic flags computed. */
  getEflags(): number {
    return this.computeFlags();
  }

  /** Sets all of EFLAGS (bit 1 forced to 1), as a loader or the hypervisor would. */
  setEflags(value: number): void {
    this.flagsRaw = (value & 0x3f7fd5) | 2;
    this.lazy = 0;
    this.eventCheck = true;
  }

  /** Loads a segment register from raw descriptor-cache fields (no checks). */
  setSegment(seg: number, selector: number, base: number, limit: number, attributes: number): void {
    this.setSegmentCache(seg, selector, base, limit, attributes);
    if (seg === CS) this.cpl = this.cr0 & Cr0.PE ? selector & 3 : 0;
    this.modeChanged();
  }

  /** Tells the CPU that something other than the guest wrote guest RAM (drops decoded code there). */
  invalidateCode(address: number, length: number): void {
    const first = Math.max(0, Math.floor(address / 4096));
    const last = Math.min(this.codePage.length - 1, Math.floor((address + length - 1) / 4096));
    for (let page = first; page <= last; page++) {
      if (this.codePage[page]) this.invalidatePhysPage(page);
    }
  }

  saveState(): X86CpuState {
    return saveState(this);
  }

  restoreState(state: import("@kumo/abi").VcpuState): void {
    loadState(this, state);
    this.modeChanged();
    this.flushTlb(true);
    this.decoded.clear();
    this.blocks?.clear();
    this.wasmTier?.snapshots.clear();
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------------
  // Vcpu contract

  run(budget: number): VcpuExitReason {
    const exit = this.exit;
    exit.reason = VcpuExitReason.Budget;
    exit.code = 0;
    exit.message = "";
    this.stop = false;
    this.afterInstruction = this.singleStep;
    const limit = this.retired + budget;
    this.hostMayWrite();
    // Blocks queued for the WebAssembly tier wait at most until the next run.
    if (this.wasmTier !== null && this.wasmTier.queued > 0) this.wasmTier.flush();
    for (;;) {
      try {
        if (this.halted) {
          this.checkEvents();
          if (this.halted) {
            if (!this.stop) this.exitWith(VcpuExitReason.Halt);
            return exit.reason;
          }
        }
        this.loop(limit);
        return exit.reason;
      } catch (error) {
        if (error === FAULT) {
          this.eip = this.startEip;
          // A faulting instruction does not complete: no single-step trap.
          this.singleStep = false;
          this.afterInstruction = this.stop;
          this.deliverFault();
          if (this.stop) return exit.reason;
          if (this.retired >= limit) return exit.reason;
          continue;
        }
        this.exitWith(VcpuExitReason.GuestError);
        exit.message =
          error instanceof UnsupportedOperation
            ? `${error.message} at eip=0x${(this.startEip >>> 0).toString(16)}`
            : `internal error at eip=0x${(this.startEip >>> 0).toString(16)}: ${
                error instanceof Error ? (error.stack ?? error.message) : String(error)
              }`;
        return exit.reason;
      }
    }
  }

  completeHypercall(resultLow: number, _resultHigh: number): void {
    this.regs[EAX] = resultLow | 0;
  }

  translate(virtualLow: number, _virtualHigh: number, access: VcpuAccess): number {
    const kind =
      access === VcpuAccess.Write
        ? ACCESS_WRITE
        : access === VcpuAccess.Execute
          ? ACCESS_EXEC
          : ACCESS_READ;
    if (!(this.cr0 & Cr0.PG)) return virtualLow >>> 0;
    const flags = kind | (this.cpl === 3 ? X86WalkFlags.User : 0);
    const walker = this.walker;
    return walker.walk(this.cr0, this.cr3, 0, this.cr4, this.efer, virtualLow | 0, 0, flags);
  }

  notifyInterrupt(): void {
    this.eventCheck = true;
  }

  requestInterruptWindow(enable: boolean): void {
    this.windowRequested = enable;
    this.eventCheck = true;
  }

  interruptsEnabled(): boolean {
    return (this.flagsRaw & IF) !== 0 && !this.interruptShadow;
  }

  private setShadow(): void {
    this.interruptShadow = true;
    this.eventCheck = true;
  }

  private exitWith(reason: VcpuExitReason): void {
    this.exit.reason = reason;
    this.stop = true;
    this.afterInstruction = true;
  }

  private singleStepTrap(): void {
    this.singleStep = false;
    this.afterInstruction = this.stop;
    this.dr[6] |= 0x4000;
    this.startEip = this.eip;
    try {
      this.deliverEvent(Vector.DB, EVENT_EXCEPTION, false, 0);
    } catch (error) {
      if (error !== FAULT) throw error;
      this.deliverFault();
    }
  }

  /** Raises a non-maskable interrupt, taken at the next instruction boundary (wakes `hlt`). */
  raiseNmi(): void {
    this.nmiPending = true;
    this.eventCheck = true;
  }

  // ---------------------------------------------------------------------
  // Main loop

  private loop(limit: number): void {
    // Hot loop: every array is a local, the decoded-instruction lookup is
    // one tag and one generation compare, and nothing allocates.
    const decoded = this.decoded;
    const tags = decoded.tag;
    const firstWords = decoded.firstWord;
    const view = this.view;
    const lengths = decoded.length;
    const tlbInfo = this.tlbInfo;
    const tlbPhys = this.tlbPhys;
    const segBase = this.segBase;
    const segCheck = this.segCheck;
    const blocks = this.blocks;
    const entries = blocks === null ? null : blocks.entries;
    // The retired count lives in a local; `finally` writes it back on every
    // way out (exit, fault unwinding) so that no instruction is lost.
    let retired = this.retired;
    // Block-tier counts in locals too, added to `counters` on the way out.
    let blockInstructions = 0;
    let blockRuns = 0;
    // Blocks start where the previous one ended: after a control transfer,
    // an instruction blocks leave to the interpreter, an event or a block.
    // Only there is the block cache probed and the start counted, so
    // straight-line interpreted code skips both.
    let boundary = true;
    let probeNext = false;
    try {
      while (retired < limit) {
        if (this.eventCheck) {
          boundary = true;
          this.retired = retired;
          this.checkEvents();
          if (this.stop || this.halted) {
            if (this.halted && !this.stop) this.exitWith(VcpuExitReason.Halt);
            return;
          }
          if (this.flagsRaw & TF) {
            // Single-step: a #DB trap after this instruction (SDM vol. 3A 17.3.1.4).
            this.singleStep = true;
            this.afterInstruction = true;
            this.eventCheck = true;
          }
        }
        const eip = this.eip;
        this.startEip = eip;
        const linear = (segBase[CS] + eip) | 0;
        let phys: number;
        // The page of the previous instruction is remembered (until any TLB
        // or privilege change), so straight-line code skips the TLB probe.
        if ((linear & ~0xfff) === this.fetchLinearPage) {
          phys = this.fetchPhysPage | (linear & 0xfff);
        } else {
          const vpn = linear >>> 12;
          const need = this.execNeed;
          if ((tlbInfo[vpn] & (need | T_MMIO)) === need) {
            phys = tlbPhys[vpn] | (linear & 0xfff);
            this.fetchLinearPage = linear & ~0xfff;
            this.fetchPhysPage = tlbPhys[vpn];
          } else {
            phys = this.translateSlow(linear, ACCESS_EXEC);
          }
          if (segCheck[CS] & SC_LIMIT) this.checkFetchLimit(eip, linear, phys);
        }
        const slot = phys & (DECODE_CACHE_SIZE - 1);
        // The block tier: 32-bit code in a flat CS, no event pending.
        if (
          boundary &&
          blocks !== null &&
          this.code32 &&
          !this.eventCheck &&
          !(segCheck[CS] & SC_LIMIT)
        ) {
          // Compiled once, when the count reaches the threshold; counting
          // goes on while the block waits in the WebAssembly tier's queue
          // (where it is not cold: the next instruction is not probed), and
          // a failed start is marked COLD until a write to its page resets
          // the count.
          const entry = slot << 1;
          let tagged = (entries as Int32Array)[entry] === phys;
          if (!tagged) {
            if (blocks.hotTag[slot] !== phys) {
              blocks.hotTag[slot] = phys;
              blocks.hot[slot] = 0;
            }
            const hot = blocks.hot[slot];
            if (hot === COLD) {
              // No block can start here: one may at the next instruction.
              probeNext = true;
            } else if (hot < blocks.threshold + QUEUED_HITS) {
              blocks.hot[slot] = hot + 1;
              if (hot + 1 === blocks.threshold) this.compileBlockAt(phys, slot);
              // A queued block's start came back: its batch compiles now
              // rather than at the next run (a slice may be long).
              else if (hot + 1 === blocks.threshold + QUEUED_HITS && this.wasmTier !== null) {
                this.wasmTier.flush();
              }
              tagged = (entries as Int32Array)[entry] === phys;
            }
          }
          // The whole block must fit in the budget (it may end earlier).
          if (tagged && retired + ((entries as Int32Array)[entry | 1] & 0xff) > limit) {
            // The slice ends inside it: the interpreter runs the rest of
            // the slice, probing at every instruction as at a boundary.
            probeNext = true;
          } else if (tagged) {
            this.blockAbort = false;
            this.blockDone = 0;
            let count: number;
            try {
              count = (blocks.code[slot] as BlockFunction)(eip, limit - retired);
            } catch (error) {
              retired += this.blockDone;
              blockInstructions += this.blockDone;
              throw error;
            }
            if (count >= 0) {
              retired += count;
              blockInstructions += count;
              blockRuns++;
              if (this.afterInstruction) {
                this.retired = retired;
                if (this.singleStep) this.singleStepTrap();
                if (this.stop) return;
              }
              continue;
            }
            // Its code bytes changed behind the CPU's back.
            blocks.drop(slot);
            blocks.hot[slot] = 0;
          }
        }
        // The tag folds in the code size: bit 31 set for 16-bit code (RAM is below 2 GiB).
        // The first four bytes are compared too: code pages may be rewritten
        // behind the CPU's back (grant copies by backends, the toolstack).
        if (
          tags[slot] !== (this.code32 ? phys : phys | 0x80000000) ||
          firstWords[slot] !== view.getInt32(phys, true)
        ) {
          this.decodeAt(linear, phys, slot);
        }
        const next = (eip + lengths[slot]) | 0;
        this.eip = next;
        this.execute(slot);
        retired++;
        boundary = probeNext || this.eip !== next || ENDS_BLOCK[decoded.op[slot]] === 1;
        probeNext = false;
        if (this.afterInstruction) {
          this.retired = retired;
          if (this.singleStep) this.singleStepTrap();
          if (this.stop) return;
        }
      }
    } finally {
      this.retired = retired;
      this.counters.blockInstructions += blockInstructions;
      this.counters.blockRuns += blockRuns;
    }
  }

  /**
   * The CS limit for a cached instruction (SDM vol. 3A 5.3: every byte
   * fetched must lie within it, else #GP(0)). `decodeAt` checks it when it
   * decodes, but a decoded instruction is found by physical address, in
   * whatever code segment reaches it (and entries survive mode switches),
   * so one that ends past this CS's limit must fault on a hit as well.
   * Only offsets within 15 bytes of the limit (or past it) can: the page
   * holding them is kept off the straight-line fast path, so each of its
   * instructions comes through here, and the rest cost nothing.
   */
  private checkFetchLimit(eip: number, linear: number, phys: number): void {
    const limit = this.segLimit[CS] >>> 0;
    const offset = eip >>> 0;
    if (offset + (0xfff - (linear & 0xfff)) + 14 <= limit) return;
    this.fetchLinearPage = -1;
    if (offset + 14 <= limit) return;
    const slot = phys & (DECODE_CACHE_SIZE - 1);
    if (
      this.decoded.tag[slot] === (this.code32 ? phys : phys | 0x80000000) &&
      this.decoded.firstWord[slot] === this.view.getInt32(phys, true) &&
      offset + this.decoded.length[slot] - 1 > limit
    ) {
      this.fault(Vector.GP, 0);
    }
  }

  /** Compiles the block at `phys` into the block cache, or marks the address as no block start. */
  private compileBlockAt(phys: number, slot: number): void {
    const blocks = this.blocks as BlockCache;
    const page = phys >>> 12;
    if (
      phys < 0 ||
      phys > this.ramSize - 4 ||
      this.frameState[page] !== 0 ||
      !blocks.pageAllowed(page)
    ) {
      blocks.markCold(slot);
      return;
    }
    const arrays = {
      tlbInfo: this.tlbInfo,
      tlbPhys: this.tlbPhys,
      codePage: this.codePage,
      segBase: this.segBase,
      segCheck: this.segCheck,
    };
    if (this.wasmTier !== null) {
      // Queued for the next module (registerBlock puts it in the cache).
      if (!this.wasmTier.queue(this.blockScratch, phys)) {
        blocks.markCold(slot);
        return;
      }
      // A block that runs to its end without a transfer goes on where the
      // next block starts, which runs as often: it is queued now, and its
      // own successors, where counting each to the threshold would cost
      // straight-line code longer than MAX_BLOCK (unrolled loops, crypto)
      // a threshold's worth of interpreted runs per block.
      let next = this.wasmTier.fallThrough;
      for (let n = 0; n < MAX_SUCCESSORS && next >= 0; n++) {
        const at = next & (DECODE_CACHE_SIZE - 1);
        if (
          blocks.tag(at) === next ||
          (blocks.hotTag[at] === next && blocks.hot[at] >= blocks.threshold)
        ) {
          break;
        }
        blocks.hotTag[at] = next;
        blocks.hot[at] = blocks.threshold;
        if (!this.wasmTier.queue(this.blockScratch, next)) {
          blocks.markCold(at);
          break;
        }
        next = this.wasmTier.fallThrough;
      }
      return;
    }
    const block = compileBlock(this, this.view, arrays, this.blockScratch, phys, blocks);
    if (block === null) {
      blocks.markCold(slot);
      return;
    }
    this.registerBlock(phys, block.code, block.length, 0);
  }

  /** Puts a compiled block into the block cache. */
  private registerBlock(phys: number, code: BlockFunction, length: number, index: number): void {
    (this.blocks as BlockCache).put(phys & (DECODE_CACHE_SIZE - 1), phys, code, length, index);
    // Writes to this page now drop the block (and the decoded instructions).
    // The WebAssembly tier registers a block compiled from its queue only
    // if no write dropped its page's code since it was generated.
    this.codePage[phys >>> 12] = 1;
  }

  private decodeAt(linear: number, phys: number, slot: number): void {
    this.counters.decodes++;
    this.fetchBase = linear;
    const length = decodeInstruction(this, this.decoded, slot, this.code32);
    if (length === DECODE_TOO_LONG) this.fault(Vector.GP, 0);
    if (this.segCheck[CS] & SC_LIMIT) {
      if ((this.startEip + length - 1) >>> 0 > this.segLimit[CS] >>> 0) this.fault(Vector.GP, 0);
    }
    const page = phys >>> 12;
    // Instructions in MMIO or crossing a page are decoded each time (their
    // bytes can change without a write to this page).
    if (
      phys >= 0 &&
      phys <= this.ramSize - 4 &&
      this.frameState[page] === 0 &&
      (phys & 0xfff) + length <= 4096
    ) {
      this.decoded.tag[slot] = this.code32 ? phys : phys | 0x80000000;
      this.decoded.firstWord[slot] = this.view.getInt32(phys, true);
      this.codePage[page] = 1;
    } else {
      this.decoded.tag[slot] = EMPTY_TAG;
    }
  }

  /** CodeFetcher for the decoder. */
  fetchCodeByte(offset: number): number {
    const linear = (this.fetchBase + offset) | 0;
    const vpn = linear >>> 12;
    const info = this.tlbInfo[vpn];
    if ((info & (this.execNeed | T_MMIO)) === this.execNeed) {
      return this.ram[this.tlbPhys[vpn] | (linear & 0xfff)];
    }
    const phys = this.translateSlow(linear, ACCESS_EXEC);
    return this.physRead8(phys);
  }

  /** Checks for NMIs, external interrupts and the interrupt window (SDM vol. 3A 6.9). */
  private checkEvents(): void {
    if (this.interruptShadow) {
      // The shadowed instruction runs first; check again after it.
      this.interruptShadow = false;
      return;
    }
    this.eventCheck = false;
    if (this.nmiPending) {
      this.nmiPending = false;
      this.halted = false;
      this.startEip = this.eip;
      this.deliverEvent(Vector.NMI, EVENT_EXTERNAL, false, 0);
      return;
    }
    if (!(this.flagsRaw & IF)) {
      return;
    }
    const source = this.interrupts;
    if (source?.hasPending()) {
      this.hostMayWrite();
      const vector = source.acknowledge();
      if (vector >= 0) {
        this.halted = false;
        this.startEip = this.eip;
        this.deliverEvent(vector & 0xff, EVENT_EXTERNAL, false, 0);
        this.eventCheck = true;
        return;
      }
    }
    if (this.windowRequested) {
      this.windowRequested = false;
      this.exitWith(VcpuExitReason.InterruptWindow);
    }
  }

  // ---------------------------------------------------------------------
  // Faults

  /** Raises a fault (restartable: EIP of the faulting instruction). Never returns. */
  fault(vector: number, errorCode: number): never {
    this.faultVector = vector;
    this.faultCode = errorCode;
    this.faultHasCode = vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
    throw FAULT;
  }

  private deliverFault(): void {
    let vector = this.faultVector;
    let code = this.faultCode;
    let hasCode = this.faultHasCode;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        this.deliverEvent(vector, EVENT_EXCEPTION, hasCode, code);
        return;
      } catch (error) {
        if (error !== FAULT) throw error;
        const second = this.faultVector;
        // SDM vol. 3A table 6-5: contributory/page-fault pairs become #DF;
        // a fault while delivering #DF shuts the processor down.
        if (vector === Vector.DF) break;
        const firstContributory = vector === 0 || (vector >= 10 && vector <= 13);
        const secondContributory = second === 0 || (second >= 10 && second <= 13);
        if (
          (firstContributory && secondContributory) ||
          (vector === Vector.PF && (secondContributory || second === Vector.PF))
        ) {
          vector = Vector.DF;
          code = 0;
          hasCode = true;
        } else {
          vector = second;
          code = this.faultCode;
          hasCode = this.faultHasCode;
        }
      }
    }
    this.exitWith(VcpuExitReason.Shutdown);
    this.exit.code = VcpuShutdownKind.TripleFault;
  }

  // ---------------------------------------------------------------------
  // Flags

  computeFlags(): number {
    const lazy = this.lazy;
    if (lazy === 0) return this.flagsRaw;
    let flags = this.flagsRaw & ~lazy;
    if (lazy & CF) flags |= this.getCF();
    if (lazy & PF) flags |= PARITY[this.lazyResult & 0xff];
    if (lazy & AF) flags |= this.getAF();
    if (lazy & ZF) flags |= (this.lazyResult & SIZE_MASK[this.lazySize]) === 0 ? ZF : 0;
    if (lazy & SF) flags |= (this.lazyResult & SIZE_SIGN[this.lazySize]) !== 0 ? SF : 0;
    if (lazy & OF) flags |= this.getOF();
    return flags;
  }

  /** Makes the arithmetic flags concrete (before an instruction updates only some of them). */
  materializeFlags(): void {
    if (this.lazy !== 0) {
      this.flagsRaw = this.computeFlags();
      this.lazy = 0;
    }
  }

  getCF(): number {
    if (!(this.lazy & CF)) return this.flagsRaw & CF;
    const mask = SIZE_MASK[this.lazySize];
    switch (this.lazyOp) {
      case LazyOp.ADD:
        return (this.lazyResult & mask) >>> 0 < (this.lazyDst & mask) >>> 0 ? 1 : 0;
      case LazyOp.ADC:
        return this.lazyCarry
          ? (this.lazyResult & mask) >>> 0 <= (this.lazyDst & mask) >>> 0
            ? 1
            : 0
          : (this.lazyResult & mask) >>> 0 < (this.lazyDst & mask) >>> 0
            ? 1
            : 0;
      case LazyOp.SUB:
        return (this.lazyDst & mask) >>> 0 < (this.lazySrc & mask) >>> 0 ? 1 : 0;
      case LazyOp.SBB:
        return this.lazyCarry
          ? (this.lazyDst & mask) >>> 0 <= (this.lazySrc & mask) >>> 0
            ? 1
            : 0
          : (this.lazyDst & mask) >>> 0 < (this.lazySrc & mask) >>> 0
            ? 1
            : 0;
      default:
        return 0;
    }
  }

  private getOF(): number {
    const sign = SIZE_SIGN[this.lazySize];
    switch (this.lazyOp) {
      case LazyOp.ADD:
      case LazyOp.ADC:
        return (this.lazyDst ^ this.lazyResult) & (this.lazySrc ^ this.lazyResult) & sign ? OF : 0;
      case LazyOp.SUB:
      case LazyOp.SBB:
        return (this.lazyDst ^ this.lazySrc) & (this.lazyDst ^ this.lazyResult) & sign ? OF : 0;
      default:
        return 0;
    }
  }

  private getAF(): number {
    if (this.lazyOp === LazyOp.LOGIC) return 0;
    return (this.lazyDst ^ this.lazySrc ^ this.lazyResult) & AF;
  }

  getZF(): boolean {
    if (this.lazy & ZF) return (this.lazyResult & SIZE_MASK[this.lazySize]) === 0;
    return (this.flagsRaw & ZF) !== 0;
  }

  private getSF(): boolean {
    if (this.lazy & SF) return (this.lazyResult & SIZE_SIGN[this.lazySize]) !== 0;
    return (this.flagsRaw & SF) !== 0;
  }

  private getOFBool(): boolean {
    if (this.lazy & OF) return this.getOF() !== 0;
    return (this.flagsRaw & OF) !== 0;
  }

  private getPF(): boolean {
    if (this.lazy & PF) return PARITY[this.lazyResult & 0xff] !== 0;
    return (this.flagsRaw & PF) !== 0;
  }

  /** Condition `cc` of Jcc/SETcc/CMOVcc (SDM vol. 1 appendix B). */
  condition(cc: number): boolean {
    let result: boolean;
    switch (cc >> 1) {
      case 0:
        result = this.getOFBool();
        break;
      case 1:
        result = this.getCF() !== 0;
        break;
      case 2:
        result = this.getZF();
        break;
      case 3:
        result = this.getCF() !== 0 || this.getZF();
        break;
      case 4:
        result = this.getSF();
        break;
      case 5:
        result = this.getPF();
        break;
      case 6:
        result = this.getSF() !== this.getOFBool();
        break;
      default:
        result = this.getZF() || this.getSF() !== this.getOFBool();
        break;
    }
    return (cc & 1) === 0 ? result : !result;
  }

  private setLazy(op: number, size: number, dst: number, src: number, result: number): void {
    this.lazyOp = op;
    this.lazySize = size;
    this.lazyDst = dst;
    this.lazySrc = src;
    this.lazyResult = result;
    this.lazy = ARITH_FLAGS;
  }

  /** Result-only lazy flags: ZF/SF/PF from `result`; CF/OF/AF already in flagsRaw. */
  private setLazyResult(size: number, result: number, flags: number): void {
    this.flagsRaw = (this.flagsRaw & ~ARITH_FLAGS) | flags;
    this.lazyOp = LazyOp.LOGIC;
    this.lazySize = size;
    this.lazyResult = result;
    this.lazy = ZF | SF | PF;
  }

  /** The eight classic ALU operations (ADD OR ADC SBB AND SUB XOR CMP). */
  alu(operation: number, size: number, dst: number, src: number): number {
    let result: number;
    switch (operation) {
      case 0:
        result = (dst + src) | 0;
        this.setLazy(LazyOp.ADD, size, dst, src, result);
        return result & SIZE_MASK[size];
      case 1:
        result = dst | src;
        this.setLazy(LazyOp.LOGIC, size, dst, src, result);
        return result;
      case 2: {
        const carry = this.getCF();
        result = (dst + src + carry) | 0;
        this.setLazy(LazyOp.ADC, size, dst, src, result);
        this.lazyCarry = carry;
        return result & SIZE_MASK[size];
      }
      case 3: {
        const carry = this.getCF();
        result = (dst - src - carry) | 0;
        this.setLazy(LazyOp.SBB, size, dst, src, result);
        this.lazyCarry = carry;
        return result & SIZE_MASK[size];
      }
      case 4:
        result = dst & src;
        this.setLazy(LazyOp.LOGIC, size, dst, src, result);
        return result;
      case 5:
      case 7:
        result = (dst - src) | 0;
        this.setLazy(LazyOp.SUB, size, dst, src, result);
        return result & SIZE_MASK[size];
      default:
        result = dst ^ src;
        this.setLazy(LazyOp.LOGIC, size, dst, src, result);
        return result;
    }
  }

  /** `alu` for 32-bit operands (the common case), without the size lookups. */
  private alu32(operation: number, dst: number, src: number): number {
    let result: number;
    switch (operation) {
      case 0:
        result = (dst + src) | 0;
        this.lazyOp = LazyOp.ADD;
        break;
      case 1:
        result = dst | src;
        this.lazyOp = LazyOp.LOGIC;
        break;
      case 4:
        result = dst & src;
        this.lazyOp = LazyOp.LOGIC;
        break;
      case 5:
      case 7:
        result = (dst - src) | 0;
        this.lazyOp = LazyOp.SUB;
        break;
      case 6:
        result = dst ^ src;
        this.lazyOp = LazyOp.LOGIC;
        break;
      default:
        return this.alu(operation, 2, dst, src);
    }
    this.lazySize = 2;
    this.lazyDst = dst;
    this.lazySrc = src;
    this.lazyResult = result;
    this.lazy = ARITH_FLAGS;
    return result;
  }

  private incdec(size: number, value: number, decrement: boolean): number {
    // INC/DEC leave CF alone (SDM vol. 2 INC).
    if (this.lazy & CF) {
      this.flagsRaw = (this.flagsRaw & ~CF) | this.getCF();
    }
    const result = decrement ? (value - 1) | 0 : (value + 1) | 0;
    this.lazyOp = decrement ? LazyOp.SUB : LazyOp.ADD;
    this.lazySize = size;
    this.lazyDst = value;
    this.lazySrc = 1;
    this.lazyResult = result;
    this.lazy = ARITH_FLAGS & ~CF;
    return result & SIZE_MASK[size];
  }

  /** `incdec` for a 32-bit operand (the common case), without the size lookups. */
  private incdec32(value: number, decrement: boolean): number {
    // INC/DEC leave CF alone (SDM vol. 2 INC).
    if (this.lazy & CF) {
      this.flagsRaw = (this.flagsRaw & ~CF) | this.getCF();
    }
    const result = decrement ? (value - 1) | 0 : (value + 1) | 0;
    this.lazyOp = decrement ? LazyOp.SUB : LazyOp.ADD;
    this.lazySize = 2;
    this.lazyDst = value;
    this.lazySrc = 1;
    this.lazyResult = result;
    this.lazy = ARITH_FLAGS & ~CF;
    return result;
  }

  // ---------------------------------------------------------------------
  // Registers by operand size (0: 8, 1: 16, 2: 32 bits)

  getReg(size: number, r: number): number {
    if (size === 2) return this.regs[r];
    if (size === 1) return this.regs[r] & 0xffff;
    return r < 4 ? this.regs[r] & 0xff : (this.regs[r - 4] >> 8) & 0xff;
  }

  setReg(size: number, r: number, value: number): void {
    if (size === 2) this.regs[r] = value;
    else if (size === 1) this.regs[r] = (this.regs[r] & ~0xffff) | (value & 0xffff);
    else if (r < 4) this.regs[r] = (this.regs[r] & ~0xff) | (value & 0xff);
    else this.regs[r - 4] = (this.regs[r - 4] & ~0xff00) | ((value & 0xff) << 8);
  }

  // ---------------------------------------------------------------------
  // Segmentation

  private setRealSegment(seg: number, selector: number): void {
    this.segSel[seg] = selector;
    this.segBase[seg] = selector << 4;
    this.segLimit[seg] = 0xffff;
    this.segAttr[seg] = seg === CS ? 0x9b : 0x93;
    this.updateSegCheck(seg);
  }

  private setSegmentCache(
    seg: number,
    selector: number,
    base: number,
    limit: number,
    attributes: number,
  ): void {
    this.segSel[seg] = selector;
    this.segBase[seg] = base | 0;
    this.segLimit[seg] = limit | 0;
    this.segAttr[seg] = attributes;
    this.updateSegCheck(seg);
  }

  /** Recomputes the access-check summary of a segment after its cache was written directly. */
  refreshSegment(seg: number): void {
    this.updateSegCheck(seg);
  }

  private updateSegCheck(seg: number): void {
    // The straight-line fetch shortcut was validated against the old CS limit (checkFetchLimit).
    if (seg === CS) this.fetchLinearPage = -1;
    const attr = this.segAttr[seg];
    let check = 0;
    if (!(attr & 0x80)) check |= SC_UNUSABLE;
    if (this.segLimit[seg] !== -1) check |= SC_LIMIT;
    if (attr & 8) {
      // Code: never writable; readable only with R.
      check |= SC_READONLY;
      if (!(attr & 2)) check |= SC_NOREAD;
    } else {
      if (!(attr & 2)) check |= SC_READONLY;
      if (attr & 4) check |= SC_EXPAND_DOWN | SC_LIMIT;
    }
    this.segCheck[seg] = check;
    const words = this.wasmWords;
    if (words) {
      const bit = 1 << seg;
      const flat = check === 0 && this.segBase[seg] === 0;
      words[WASM_FLAT] = flat ? words[WASM_FLAT] | bit : words[WASM_FLAT] & ~bit;
    }
  }

  /** Recomputes values derived from CR0/CS/SS/CPL. */
  modeChanged(): void {
    const pe = (this.cr0 & Cr0.PE) !== 0;
    const v86 = (this.flagsRaw & VM) !== 0;
    if (!pe) this.cpl = 0;
    else if (v86) this.cpl = 3;
    this.code32 = pe && !v86 && (this.segAttr[CS] & 0x4000) !== 0;
    this.stack32 = pe && !v86 && (this.segAttr[SS] & 0x4000) !== 0;
    const user = this.cpl === 3;
    this.fetchLinearPage = -1;
    this.blockAbort = true;
    // SDM vol. 3A 6.15: alignment checking applies at CPL 3 (protected and virtual-8086 mode)
    // with CR0.AM and EFLAGS.AC set.
    this.alignmentCheck = user && (this.cr0 & Cr0.AM) !== 0 && (this.flagsRaw & Flag.AC) !== 0;
    const align = this.alignmentCheck ? T_ALIGN : 0;
    this.readNeed = (user ? T_USER_READ : T_SUP_READ) | align;
    this.writeNeed = (user ? T_USER_WRITE : T_SUP_WRITE) | align;
    this.execNeed = user ? T_USER_EXEC : T_SUP_EXEC;
    const words = this.wasmWords;
    if (words !== null) {
      // The WebAssembly tier's copies (its blocks read them from memory).
      words[WASM_READ_NEED] = this.readNeed;
      words[WASM_WRITE_NEED] = this.writeNeed;
      const stack = 1 << WASM_FLAT_STACK32;
      words[WASM_FLAT] = this.stack32 ? words[WASM_FLAT] | stack : words[WASM_FLAT] & ~stack;
      words[WASM_EXEC_NEED] = this.execNeed;
    }
  }

  /**
   * Host code runs next (or ran since the last run): it may write guest
   * memory without the CPU seeing it (backends, grant copies, device DMA,
   * the hypercall page an MSR write installs). The first entry into a
   * WebAssembly block of a page after this compares the page's code with
   * the bytes its blocks were generated from (WASM_CODE_EPOCH,
   * CodeSnapshots); between such points only this CPU writes memory, and
   * its own writes to code drop the blocks they hit.
   */
  private hostMayWrite(): void {
    const words = this.wasmWords;
    if (words === null) return;
    // The epoch runs from 1 to 255 (a byte per page records the last check).
    if (words[WASM_CODE_EPOCH] < 255) words[WASM_CODE_EPOCH]++;
    else {
      words[WASM_CODE_EPOCH] = 1;
      (this.wasmTier as WasmBlockTier).snapshots.resetChecks();
    }
  }

  /** Slow segment check: null selector, limit, expand-down, read-only (SDM vol. 3A 5.3, 5.6). */
  private checkSegment(seg: number, offset: number, size: number, write: boolean): void {
    const check = this.segCheck[seg];
    const vector = seg === SS ? Vector.SS : Vector.GP;
    if (this.cr0 & Cr0.PE && !(this.flagsRaw & VM)) {
      if (check & SC_UNUSABLE) this.fault(vector, 0);
      if (write && check & SC_READONLY) this.fault(vector, 0);
      if (!write && check & SC_NOREAD) this.fault(vector, 0);
    }
    if (check & SC_LIMIT) {
      const last = (offset + size - 1) >>> 0;
      const limit = this.segLimit[seg] >>> 0;
      if (check & SC_EXPAND_DOWN) {
        const upper = this.segAttr[seg] & 0x4000 ? 0xffffffff : 0xffff;
        if (offset >>> 0 <= limit || last > upper || last < offset >>> 0) this.fault(vector, 0);
      } else if (last > limit || last < offset >>> 0) {
        this.fault(vector, 0);
      }
    }
  }

  /** Reads the descriptor for `selector` into descLow/descHigh; faults with `vector` past the table limit. */
  private readDescriptor(selector: number, vector: number): void {
    const index = selector & 0xfff8;
    let base: number;
    let limit: number;
    if (selector & 4) {
      if (this.segCheck[LDTR] & SC_UNUSABLE || this.segSel[LDTR] === 0) {
        this.fault(vector, selector & 0xfffc);
      }
      base = this.segBase[LDTR];
      limit = this.segLimit[LDTR] >>> 0;
    } else {
      base = this.gdtrBase;
      limit = this.gdtrLimit;
    }
    if (index + 7 > limit) this.fault(vector, selector & 0xfffc);
    this.descLow = this.systemRead32((base + index) | 0);
    this.descHigh = this.systemRead32((base + index + 4) | 0);
  }

  private descriptorBase(): number {
    return (this.descLow >>> 16) | ((this.descHigh & 0xff) << 16) | (this.descHigh & 0xff000000);
  }

  private descriptorLimit(): number {
    const limit = (this.descLow & 0xffff) | (this.descHigh & 0xf0000);
    return this.descHigh & 0x800000 ? (limit << 12) | 0xfff : limit;
  }

  private descriptorAttr(): number {
    return (this.descHigh >>> 8) & 0xf0ff;
  }

  /** Sets the accessed bit of the descriptor just read (SDM vol. 3A 3.4.5.1). */
  private markAccessed(selector: number): void {
    if (this.descHigh & 0x100) return;
    this.descHigh |= 0x100;
    const base = selector & 4 ? this.segBase[LDTR] : this.gdtrBase;
    this.systemWrite8((base + (selector & 0xfff8) + 5) | 0, (this.descHigh >>> 8) & 0xff);
  }

  /** MOV/POP to a data segment register or SS (SDM vol. 2 MOV, "Operation"). */
  loadSegment(seg: number, selector: number): void {
    selector &= 0xffff;
    if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) {
      this.segSel[seg] = selector;
      this.segBase[seg] = selector << 4;
      if (this.flagsRaw & VM) {
        this.segLimit[seg] = 0xffff;
        this.segAttr[seg] = seg === CS ? 0xfb : 0xf3;
      } else if (!(this.segAttr[seg] & 0x80)) {
        this.segAttr[seg] |= 0x80;
      }
      this.updateSegCheck(seg);
      if (seg === SS || seg === CS) this.modeChanged();
      return;
    }
    const rpl = selector & 3;
    if ((selector & 0xfffc) === 0) {
      if (seg === SS) this.fault(Vector.GP, 0);
      this.setSegmentCache(seg, selector, 0, 0, 0);
      return;
    }
    this.readDescriptor(selector, Vector.GP);
    const attr = this.descriptorAttr();
    const dpl = (attr >> 5) & 3;
    const type = attr & 0xf;
    const isSystem = !(attr & 0x10);
    if (seg === SS) {
      if (rpl !== this.cpl || dpl !== this.cpl || isSystem || type & 8 || !(type & 2)) {
        this.fault(Vector.GP, selector & 0xfffc);
      }
      if (!(attr & 0x80)) this.fault(Vector.SS, selector & 0xfffc);
    } else {
      if (isSystem || (type & 0xa) === 8) this.fault(Vector.GP, selector & 0xfffc);
      // Data and non-conforming code need DPL >= max(CPL, RPL).
      if ((!(type & 8) || !(type & 4)) && (dpl < this.cpl || dpl < rpl)) {
        this.fault(Vector.GP, selector & 0xfffc);
      }
      if (!(attr & 0x80)) this.fault(Vector.NP, selector & 0xfffc);
    }
    this.markAccessed(selector);
    this.setSegmentCache(
      seg,
      selector,
      this.descriptorBase(),
      this.descriptorLimit(),
      this.descriptorAttr(),
    );
    if (seg === SS) this.modeChanged();
  }

  /**
   * Loads CS for a far jump/call/return or an event to a code segment
   * descriptor already in descLow/descHigh; sets CPL (SDM vol. 3A 5.8).
   */
  private loadCodeSegment(selector: number, cpl: number): void {
    this.markAccessed(selector);
    this.setSegmentCache(
      CS,
      (selector & 0xfffc) | cpl,
      this.descriptorBase(),
      this.descriptorLimit(),
      this.descriptorAttr(),
    );
    this.cpl = cpl;
    this.modeChanged();
  }

  /** Checks a far-transfer target code segment (same-privilege rules); leaves the descriptor loaded. */
  private checkCodeTarget(selector: number, forReturn: boolean): number {
    if ((selector & 0xfffc) === 0) this.fault(Vector.GP, 0);
    this.readDescriptor(selector, Vector.GP);
    const attr = this.descriptorAttr();
    const type = attr & 0xf;
    const dpl = (attr >> 5) & 3;
    const rpl = selector & 3;
    if (!(attr & 0x10) || !(type & 8)) return -1;
    if (forReturn) {
      if (rpl < this.cpl) this.fault(Vector.GP, selector & 0xfffc);
      if (type & 4 ? dpl > rpl : dpl !== rpl) this.fault(Vector.GP, selector & 0xfffc);
    } else if (type & 4) {
      if (dpl > this.cpl) this.fault(Vector.GP, selector & 0xfffc);
    } else if (rpl > this.cpl || dpl !== this.cpl) {
      this.fault(Vector.GP, selector & 0xfffc);
    }
    if (!(attr & 0x80)) this.fault(Vector.NP, selector & 0xfffc);
    return forReturn ? rpl : this.cpl;
  }

  // ---------------------------------------------------------------------
  // Paging and the software TLB

  flushTlb(all: boolean): void {
    this.counters.tlbFlushes++;
    this.fetchLinearPage = -1;
    this.blockAbort = true;
    const keepGlobal = !all && (this.cr4 & Cr4.PGE) !== 0;
    if (this.tlbOverflow) {
      if (keepGlobal) {
        for (let i = 0; i < this.tlbInfo.length; i++) {
          if (!(this.tlbInfo[i] & T_GLOBAL)) this.tlbInfo[i] = 0;
        }
      } else {
        this.tlbInfo.fill(0);
      }
      this.tlbOverflow = false;
      this.tlbCount = 0;
      return;
    }
    let kept = 0;
    for (let i = 0; i < this.tlbCount; i++) {
      const vpn = this.tlbTracked[i];
      if (keepGlobal && this.tlbInfo[vpn] & T_GLOBAL) {
        this.tlbTracked[kept++] = vpn;
      } else {
        this.tlbInfo[vpn] = 0;
      }
    }
    this.tlbCount = kept;
  }

  invalidatePage(linear: number): void {
    this.counters.pageInvalidations++;
    this.fetchLinearPage = -1;
    this.blockAbort = true;
    this.tlbInfo[linear >>> 12] = 0;
  }

  /** TLB miss or permission upgrade: walks and fills, or raises #PF. Returns the physical address. */
  translateSlow(linear: number, access: number): number {
    this.counters.tlbMisses++;
    const user = this.cpl === 3;
    const phys = this.walk(linear, access, user, true);
    return phys;
  }

  /**
   * Page walk (SDM vol. 3A 4.3 32-bit, 4.4 PAE). With `fill`, faults raise
   * #PF and the TLB is filled; without, returns -1 on a fault (for
   * `translate`). Returns the physical address (as a uint32 in an int).
   */
  walk(linear: number, access: number, user: boolean, fill: boolean): number {
    const vpn = linear >>> 12;
    const offset = linear & 0xfff;
    if (!(this.cr0 & Cr0.PG)) {
      const page = linear & ~0xfff;
      if (fill) {
        this.tlbSet(vpn, page, ALL_ACCESS | this.mmioFlag(page));
      }
      return page | offset;
    }
    const walker = this.walker;
    const flags = access | (user ? X86WalkFlags.User : 0);
    const phys = walker.walk(this.cr0, this.cr3, 0, this.cr4, this.efer, linear, 0, flags);
    // The walker sets accessed and dirty bits in guest memory itself: as
    // the CPU's own writes, they drop code decoded from those bytes.
    if (phys !== -1 && walker.updatedEntries !== 0) this.pageTableWritten();
    if (phys === -1) {
      if (!fill) return -1;
      this.cr2 = linear;
      return this.fault(Vector.PF, walker.errorCode);
    }
    if (fill) {
      const permissions = walker.permissions;
      let info = 0;
      if (permissions & TlbPermission.ReadSupervisor) info |= T_SUP_READ;
      if (permissions & TlbPermission.ReadUser) info |= T_USER_READ;
      if (permissions & TlbPermission.WriteSupervisor) info |= T_SUP_WRITE;
      if (permissions & TlbPermission.WriteUser) info |= T_USER_WRITE;
      if (permissions & TlbPermission.ExecuteSupervisor) info |= T_SUP_EXEC;
      if (permissions & TlbPermission.ExecuteUser) info |= T_USER_EXEC;
      if (permissions & TlbPermission.Global) info |= T_GLOBAL;
      const page = walker.physicalPage;
      info |= page >= 0x100000000 ? T_MMIO : this.mmioFlag(page | 0);
      this.tlbSet(vpn, page | 0, info);
    }
    return phys | 0;
  }

  /** The last walk set accessed or dirty bits: code decoded from those pages is dropped. */
  private pageTableWritten(): void {
    const walker = this.walker;
    const updated = walker.updatedEntries;
    for (let i = 0; i < walker.walkedEntryCount; i++) {
      if ((updated & (1 << i)) === 0) continue;
      const address = walker.walkedEntryAddress(i);
      if (address < this.ramSize && this.codePage[Math.floor(address / 4096)]) {
        this.invalidatePhysPage(Math.floor(address / 4096));
      }
    }
  }

  /** T_MMIO unless the page is RAM the CPU may touch directly. */
  private mmioFlag(page: number): number {
    const frame = page >>> 12;
    return page >>> 0 < this.ramSize && this.frameState[frame] === 0 ? 0 : T_MMIO;
  }

  private tlbSet(vpn: number, page: number, info: number): void {
    if (this.tlbInfo[vpn] === 0) {
      if (this.tlbCount < TLB_TRACK) this.tlbTracked[this.tlbCount++] = vpn;
      else this.tlbOverflow = true;
    }
    this.tlbInfo[vpn] = info;
    this.tlbPhys[vpn] = page;
  }

  // ---------------------------------------------------------------------
  // Physical memory

  private direct(address: number, size: number): boolean {
    return (
      address >>> 0 <= this.ramSize - size &&
      this.frameState[address >>> 12] === 0 &&
      (address & 0xfff) <= 4096 - size
    );
  }

  /**
   * Whether a physical access that is not direct may run host code, which
   * may write guest memory unseen (see hostMayWrite): only an MMIO
   * handler does, and MMIO never lies in RAM (`GuestMemory`: RAM frames
   * are own, removed or mapped). The frames in RAM that are not direct are
   * plain memory: shared_info and grant-table frames, grant and foreign
   * mappings (Linux reads its vcpu_info and pvclock in one about 40,000
   * times in a boot), removed frames.
   */
  private reachesDevice(address: number, size: number): boolean {
    return address >>> 0 > this.ramSize - size;
  }

  physRead8(address: number): number {
    if (this.direct(address, 1)) return this.ram[address];
    if (this.reachesDevice(address, 1)) this.hostMayWrite();
    return this.memory.read8(address >>> 0) & 0xff;
  }

  physRead16(address: number): number {
    if (this.direct(address, 2)) return this.view.getUint16(address, true);
    if (this.reachesDevice(address, 2)) this.hostMayWrite();
    return this.memory.read16(address >>> 0) & 0xffff;
  }

  physRead32(address: number): number {
    if (this.direct(address, 4)) return this.view.getInt32(address, true);
    if (this.reachesDevice(address, 4)) this.hostMayWrite();
    return this.memory.read32(address >>> 0) | 0;
  }

  physWrite8(address: number, value: number): void {
    if (this.direct(address, 1)) {
      if (this.codePage[address >>> 12]) this.invalidatePhysPage(address >>> 12);
      this.ram[address] = value;
    } else {
      if (this.reachesDevice(address, 1)) this.hostMayWrite();
      this.memory.write8(address >>> 0, value & 0xff);
    }
  }

  physWrite16(address: number, value: number): void {
    if (this.direct(address, 2)) {
      if (this.codePage[address >>> 12]) this.invalidatePhysPage(address >>> 12);
      this.view.setUint16(address, value, true);
    } else {
      if (this.reachesDevice(address, 2)) this.hostMayWrite();
      this.memory.write16(address >>> 0, value & 0xffff);
    }
  }

  physWrite32(address: number, value: number): void {
    if (this.direct(address, 4)) {
      if (this.codePage[address >>> 12]) this.invalidatePhysPage(address >>> 12);
      this.view.setInt32(address, value, true);
    } else {
      if (this.reachesDevice(address, 4)) this.hostMayWrite();
      this.memory.write32(address >>> 0, value | 0);
    }
  }

  /**
   * A write hit a page holding decoded instructions: drop them. The cache is
   * direct-mapped by physical address, so the page's instructions can only
   * sit in 4096 consecutive slots. Eager invalidation keeps the hot path's
   * cache check to one tag compare. `written`: false when the WebAssembly
   * tier found code host code replaced (not a guest write to its code page).
   */
  private invalidatePhysPage(page: number, written = true): void {
    if (written) this.counters.codePageWrites++;
    this.codePage[page] = 0;
    this.blockAbort = true;
    if (this.blocks !== null) this.blocks.invalidatePage(page, written);
    if (this.wasmTier !== null) this.wasmTier.snapshots.forget(page);
    const tags = this.decoded.tag;
    const start = (page << 12) & (DECODE_CACHE_SIZE - 1);
    for (let i = start; i < start + 4096; i++) {
      if ((tags[i] & 0x7fffffff) >>> 12 === page) tags[i] = EMPTY_TAG;
    }
  }

  // ---------------------------------------------------------------------
  // Linear memory (hot paths: one TLB probe, then a typed-array access)

  readLin8(linear: number): number {
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & (this.readNeed | T_MMIO)) === this.readNeed) {
      return this.ram[this.tlbPhys[vpn] | (linear & 0xfff)];
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 1, ACCESS_READ);
      if (phys >= 0) return this.ram[phys];
    }
    return this.physRead8(this.translateSlow(linear, ACCESS_READ));
  }

  readLin16(linear: number): number {
    const vpn = linear >>> 12;
    if (
      (this.tlbInfo[vpn] & (this.readNeed | T_MMIO)) === this.readNeed &&
      (linear & 0xfff) !== 0xfff
    ) {
      return this.view.getUint16(this.tlbPhys[vpn] | (linear & 0xfff), true);
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 2, ACCESS_READ);
      if (phys >= 0) return this.view.getUint16(phys, true);
    }
    if ((linear & 0xfff) === 0xfff) {
      return this.readLin8(linear) | (this.readLin8((linear + 1) | 0) << 8);
    }
    return this.physRead16(this.translateSlow(linear, ACCESS_READ));
  }

  readLin32(linear: number): number {
    const vpn = linear >>> 12;
    if (
      (this.tlbInfo[vpn] & (this.readNeed | T_MMIO)) === this.readNeed &&
      (linear & 0xfff) <= 0xffc
    ) {
      return this.view.getInt32(this.tlbPhys[vpn] | (linear & 0xfff), true);
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 4, ACCESS_READ);
      if (phys >= 0) return this.view.getInt32(phys, true);
    }
    if ((linear & 0xfff) > 0xffc) {
      return this.readCrossing(linear, 4);
    }
    return this.physRead32(this.translateSlow(linear, ACCESS_READ));
  }

  private readCrossing(linear: number, size: number): number {
    // Translate both pages before reading so a fault leaves nothing half done.
    const first = this.translateSlow(linear, ACCESS_READ);
    const second = this.translateSlow(((linear | 0xfff) + 1) | 0, ACCESS_READ);
    let value = 0;
    for (let i = 0; i < size; i++) {
      const a = (linear + i) & 0xfff;
      const phys =
        ((linear + i) & ~0xfff) === (linear & ~0xfff)
          ? (first & ~0xfff) | a
          : (second & ~0xfff) | a;
      value |= this.physRead8(phys) << (8 * i);
    }
    return value;
  }

  writeLin8(linear: number, value: number): void {
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & (this.writeNeed | T_MMIO)) === this.writeNeed) {
      const phys = this.tlbPhys[vpn] | (linear & 0xfff);
      if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
      this.ram[phys] = value;
      return;
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 1, ACCESS_WRITE);
      if (phys >= 0) {
        if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
        this.ram[phys] = value;
        return;
      }
    }
    this.physWrite8(this.translateSlow(linear, ACCESS_WRITE), value);
  }

  writeLin16(linear: number, value: number): void {
    const vpn = linear >>> 12;
    if (
      (this.tlbInfo[vpn] & (this.writeNeed | T_MMIO)) === this.writeNeed &&
      (linear & 0xfff) !== 0xfff
    ) {
      const phys = this.tlbPhys[vpn] | (linear & 0xfff);
      if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
      this.view.setUint16(phys, value, true);
      return;
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 2, ACCESS_WRITE);
      if (phys >= 0) {
        if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
        this.view.setUint16(phys, value, true);
        return;
      }
    }
    if ((linear & 0xfff) === 0xfff) {
      this.writeCrossing(linear, 2, value);
      return;
    }
    this.physWrite16(this.translateSlow(linear, ACCESS_WRITE), value);
  }

  writeLin32(linear: number, value: number): void {
    const vpn = linear >>> 12;
    if (
      (this.tlbInfo[vpn] & (this.writeNeed | T_MMIO)) === this.writeNeed &&
      (linear & 0xfff) <= 0xffc
    ) {
      const phys = this.tlbPhys[vpn] | (linear & 0xfff);
      if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
      this.view.setInt32(phys, value, true);
      return;
    }
    if (this.alignmentCheck) {
      const phys = this.alignedProbe(linear, 4, ACCESS_WRITE);
      if (phys >= 0) {
        if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
        this.view.setInt32(phys, value, true);
        return;
      }
    }
    if ((linear & 0xfff) > 0xffc) {
      this.writeCrossing(linear, 4, value);
      return;
    }
    this.physWrite32(this.translateSlow(linear, ACCESS_WRITE), value);
  }

  /**
   * Alignment checking is on (the fast path always misses): raises #AC(0)
   * when `linear` is not a multiple of `size`, else probes the TLB with the
   * real permission and returns the physical address of a hit in directly
   * accessible RAM, or -1 (then the caller's slow path walks). A misaligned
   * access first translates its bytes: a #PF on them has priority over #AC
   * (SDM vol. 3A 6.9 table 6-2, both in class 9; #PF listed first).
   */
  alignedProbe(linear: number, size: number, access: number): number {
    if (linear & (size - 1)) {
      this.translateSlow(linear, access);
      this.translateSlow((linear + size - 1) | 0, access);
      return this.fault(Vector.AC, 0);
    }
    const need = (access === ACCESS_WRITE ? this.writeNeed : this.readNeed) & ~T_ALIGN;
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & (need | T_MMIO)) !== need) return -1;
    return this.tlbPhys[vpn] | (linear & 0xfff);
  }

  /**
   * For an operand wider than the accesses it is made of (a quadword read as
   * two dwords): #AC(0) when alignment checking is on and `linear` is not a
   * multiple of `size` (SDM vol. 3A 6.15, table 6-7: quadword 8).
   */
  checkAlignment(linear: number, size: number, write: boolean): void {
    if (this.alignmentCheck && linear & (size - 1)) {
      this.alignedProbe(linear, size, write ? ACCESS_WRITE : ACCESS_READ);
    }
  }

  private writeCrossing(linear: number, size: number, value: number): void {
    const first = this.translateSlow(linear, ACCESS_WRITE);
    const second = this.translateSlow(((linear | 0xfff) + 1) | 0, ACCESS_WRITE);
    for (let i = 0; i < size; i++) {
      const a = (linear + i) & 0xfff;
      const phys =
        ((linear + i) & ~0xfff) === (linear & ~0xfff)
          ? (first & ~0xfff) | a
          : (second & ~0xfff) | a;
      this.physWrite8(phys, value >> (8 * i));
    }
  }

  /** Checks that a write to [linear, linear+size) would not fault (for instructions that must not half-commit). */
  probeWrite(linear: number, size: number): void {
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & this.writeNeed) !== this.writeNeed)
      this.translateSlow(linear, ACCESS_WRITE);
    const last = (linear + size - 1) | 0;
    if ((this.tlbInfo[last >>> 12] & this.writeNeed) !== this.writeNeed) {
      this.translateSlow(last, ACCESS_WRITE);
    }
  }

  readLin(size: number, linear: number): number {
    if (size === 2) return this.readLin32(linear);
    if (size === 1) return this.readLin16(linear);
    return this.readLin8(linear);
  }

  writeLin(size: number, linear: number, value: number): void {
    if (size === 2) this.writeLin32(linear, value);
    else if (size === 1) this.writeLin16(linear, value);
    else this.writeLin8(linear, value);
  }

  /** Supervisor-mode accesses to system structures (GDT, IDT, TSS), whatever the CPL (SDM vol. 3A 4.6). */
  systemRead32(linear: number): number {
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & (T_SUP_READ | T_MMIO)) === T_SUP_READ && (linear & 0xfff) <= 0xffc) {
      return this.view.getInt32(this.tlbPhys[vpn] | (linear & 0xfff), true);
    }
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const phys = this.walk((linear + i) | 0, ACCESS_READ, false, true);
      value |= this.physRead8(phys) << (8 * i);
    }
    return value;
  }

  systemRead16(linear: number): number {
    return (
      this.physRead8(this.walk(linear, ACCESS_READ, false, true)) |
      (this.physRead8(this.walk((linear + 1) | 0, ACCESS_READ, false, true)) << 8)
    );
  }

  systemWrite8(linear: number, value: number): void {
    this.physWrite8(this.walk(linear, ACCESS_WRITE, false, true), value);
  }

  systemWrite16(linear: number, value: number): void {
    this.physWrite8(this.walk(linear, ACCESS_WRITE, false, true), value);
    this.physWrite8(this.walk((linear + 1) | 0, ACCESS_WRITE, false, true), value >> 8);
  }

  systemWrite32(linear: number, value: number): void {
    for (let i = 0; i < 4; i++) {
      this.physWrite8(this.walk((linear + i) | 0, ACCESS_WRITE, false, true), value >> (8 * i));
    }
  }

  // ---------------------------------------------------------------------
  // Operands

  /** Linear address of the ModRM memory operand of `slot`, checked against its segment. */
  ea(slot: number, size: number, write: boolean): number {
    const d = this.decoded;
    let address = d.displacement[slot];
    const base = d.base[slot];
    if (base >= 0) address = (address + this.regs[base]) | 0;
    const index = d.index[slot];
    if (index >= 0) address = (address + (this.regs[index] << d.scale[slot])) | 0;
    const info = d.info[slot];
    if (info & Info.A16) address &= 0xffff;
    const seg = (info >> Info.SEG_SHIFT) & 7;
    if (this.segCheck[seg] !== 0) this.checkSegment(seg, address, 1 << size, write);
    return (this.segBase[seg] + address) | 0;
  }

  /** Offset (not linear) of the ModRM memory operand: for LEA. */
  effectiveOffset(slot: number): number {
    const d = this.decoded;
    let address = d.displacement[slot];
    const base = d.base[slot];
    if (base >= 0) address = (address + this.regs[base]) | 0;
    const index = d.index[slot];
    if (index >= 0) address = (address + (this.regs[index] << d.scale[slot])) | 0;
    if (d.info[slot] & Info.A16) address &= 0xffff;
    return address;
  }

  /** Linear address of `offset` in segment `seg`, checked. */
  segAddress(seg: number, offset: number, size: number, write: boolean): number {
    if (this.segCheck[seg] !== 0) this.checkSegment(seg, offset, 1 << size, write);
    return (this.segBase[seg] + offset) | 0;
  }

  readRm(slot: number, size: number): number {
    if (this.decoded.info[slot] & Info.MEM) return this.readLin(size, this.ea(slot, size, false));
    return this.getReg(size, this.decoded.modrm[slot] & 7);
  }

  /** Reads the r/m operand for a read-modify-write; `writeRmBack` stores the result. */
  readRmForWrite(slot: number, size: number): number {
    if (this.decoded.info[slot] & Info.MEM) {
      const address = this.ea(slot, size, true);
      this.operandAddress = address;
      return this.readLin(size, address);
    }
    return this.getReg(size, this.decoded.modrm[slot] & 7);
  }

  writeRmBack(slot: number, size: number, value: number): void {
    if (this.decoded.info[slot] & Info.MEM) this.writeLin(size, this.operandAddress, value);
    else this.setReg(size, this.decoded.modrm[slot] & 7, value);
  }

  writeRm(slot: number, size: number, value: number): void {
    if (this.decoded.info[slot] & Info.MEM) this.writeLin(size, this.ea(slot, size, true), value);
    else this.setReg(size, this.decoded.modrm[slot] & 7, value);
  }

  // ---------------------------------------------------------------------
  // Stack

  push32(value: number): void {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const next = (esp - 4) | 0;
      this.writeLin32(this.segAddress(SS, next, 2, true), value);
      this.regs[ESP] = next;
    } else {
      const next = (esp - 4) & 0xffff;
      this.writeLin32(this.segAddress(SS, next, 2, true), value);
      this.regs[ESP] = (esp & ~0xffff) | next;
    }
  }

  push16(value: number): void {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const next = (esp - 2) | 0;
      this.writeLin16(this.segAddress(SS, next, 1, true), value);
      this.regs[ESP] = next;
    } else {
      const next = (esp - 2) & 0xffff;
      this.writeLin16(this.segAddress(SS, next, 1, true), value);
      this.regs[ESP] = (esp & ~0xffff) | next;
    }
  }

  push(o16: boolean, value: number): void {
    if (o16) this.push16(value);
    else this.push32(value);
  }

  pop32(): number {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const value = this.readLin32(this.segAddress(SS, esp, 2, false));
      this.regs[ESP] = (esp + 4) | 0;
      return value;
    }
    const value = this.readLin32(this.segAddress(SS, esp & 0xffff, 2, false));
    this.regs[ESP] = (esp & ~0xffff) | ((esp + 4) & 0xffff);
    return value;
  }

  pop16(): number {
    const esp = this.regs[ESP];
    if (this.stack32) {
      const value = this.readLin16(this.segAddress(SS, esp, 1, false));
      this.regs[ESP] = (esp + 2) | 0;
      return value;
    }
    const value = this.readLin16(this.segAddress(SS, esp & 0xffff, 1, false));
    this.regs[ESP] = (esp & ~0xffff) | ((esp + 2) & 0xffff);
    return value;
  }

  pop(o16: boolean): number {
    return o16 ? this.pop16() : this.pop32();
  }

  /** Reads the stack at ESP + `offset` without popping. */
  private stackRead(size: number, offset: number): number {
    const esp = this.stack32 ? (this.regs[ESP] + offset) | 0 : (this.regs[ESP] + offset) & 0xffff;
    return this.readLin(size, this.segAddress(SS, esp, size, false));
  }

  private adjustEsp(delta: number): void {
    const esp = this.regs[ESP];
    this.regs[ESP] = this.stack32 ? (esp + delta) | 0 : (esp & ~0xffff) | ((esp + delta) & 0xffff);
  }

  // ---------------------------------------------------------------------
  // Execution

  /**
   * One decoded instruction. Its switch, and those of executeRare,
   * executeTwoByte and stringInstruction, keep their cases dense enough
   * for V8's jump table (test/dense-switches.test.ts): otherwise V8 tests
   * the cases one by one, and its unoptimized tiers, which run this until
   * V8 has optimized it (a process's first boot), call a comparison
   * builtin for each. Splitting the two-byte forms out of this one made
   * the first boot in a fresh process about 4% faster.
   */
  private execute(slot: number): void {
    const d = this.decoded;
    const op = d.op[slot];
    const info = d.info[slot];
    const o16 = (info & Info.O16) !== 0;
    const size = o16 ? 1 : 2;
    if (op < 0x40 && (op & 7) < 6) {
      // ALU rows 00-3D: r/m,r; r,r/m; acc,imm (SDM vol. 2 table A-2).
      const operation = op >> 3;
      const form = op & 7;
      const s = form & 1 ? size : 0;
      if (form === 1 && !o16 && !(info & (Info.MEM | Info.LOCK))) {
        // Hot path: 32-bit register-to-register ALU.
        const regs = this.regs;
        const modrm = d.modrm[slot];
        const dstReg = modrm & 7;
        const result = this.alu32(operation, regs[dstReg], regs[(modrm >> 3) & 7]);
        if (operation !== 7) regs[dstReg] = result;
        return;
      }
      if (form < 2) {
        if (info & Info.LOCK && !(info & Info.MEM)) this.fault(Vector.UD, 0);
        const src = this.getReg(s, (d.modrm[slot] >> 3) & 7);
        // CMP only reads its destination (no write check on read-only memory).
        const dst = operation === 7 ? this.readRm(slot, s) : this.readRmForWrite(slot, s);
        const result = this.alu(operation, s, dst, src);
        if (operation !== 7) this.writeRmBack(slot, s, result);
      } else if (form < 4) {
        if (info & Info.LOCK) this.fault(Vector.UD, 0);
        const r = (d.modrm[slot] >> 3) & 7;
        const src = this.readRm(slot, s);
        const result = this.alu(operation, s, this.getReg(s, r), src);
        if (operation !== 7) this.setReg(s, r, result);
      } else {
        if (info & Info.LOCK) this.fault(Vector.UD, 0);
        const result = this.alu(operation, s, this.getReg(s, EAX), d.immediate[slot]);
        if (operation !== 7) this.setReg(s, EAX, result);
      }
      return;
    }
    if (info & Info.LOCK) this.checkLock(op, info, (d.modrm[slot] >> 3) & 7);
    if (op >= 0x100) {
      // The frequent two-byte forms, kept out of the switch below: its
      // cases must stay dense (test/dense-switches.test.ts), or V8 tests
      // them one by one instead of jumping through a table.
      if ((op & ~15) === 0x180) {
        // Jcc rel16/32; JZ/JNZ (the most frequent) test ZF without the condition switch.
        if ((op & 14) === 4 ? this.getZF() !== ((op & 1) === 1) : this.condition(op & 15))
          this.jumpRelative(d.immediate[slot], o16);
        return;
      }
      const r = (d.modrm[slot] >> 3) & 7;
      if (op === 0x1b6) this.setReg(size, r, this.readRm(slot, 0));
      else if (op === 0x1b7) this.setReg(size, r, this.readRm(slot, 1));
      else if (op === 0x1be) this.setReg(size, r, (this.readRm(slot, 0) << 24) >> 24);
      else if (op === 0x1bf) this.setReg(size, r, (this.readRm(slot, 1) << 16) >> 16);
      else this.executeRare(slot, op, info, o16, size);
      return;
    }
    switch (op) {
      case 0x40:
      case 0x41:
      case 0x42:
      case 0x43:
      case 0x44:
      case 0x45:
      case 0x46:
      case 0x47:
        if (!o16) this.regs[op & 7] = this.incdec32(this.regs[op & 7], false);
        else this.setReg(size, op & 7, this.incdec(size, this.getReg(size, op & 7), false));
        return;
      case 0x48:
      case 0x49:
      case 0x4a:
      case 0x4b:
      case 0x4c:
      case 0x4d:
      case 0x4e:
      case 0x4f:
        if (!o16) this.regs[op & 7] = this.incdec32(this.regs[op & 7], true);
        else this.setReg(size, op & 7, this.incdec(size, this.getReg(size, op & 7), true));
        return;
      case 0x50:
      case 0x51:
      case 0x52:
      case 0x53:
      case 0x54:
      case 0x55:
      case 0x56:
      case 0x57:
        if (o16) this.push16(this.regs[op & 7]);
        else this.push32(this.regs[op & 7]);
        return;
      case 0x58:
      case 0x59:
      case 0x5a:
      case 0x5b:
      case 0x5c:
      case 0x5d:
      case 0x5e:
      case 0x5f:
        if (o16) this.setReg(1, op & 7, this.pop16());
        else this.regs[op & 7] = this.pop32();
        return;
      case 0x68:
      case 0x6a:
        this.push(o16, d.immediate[slot]);
        return;
      case 0x70:
      case 0x71:
      case 0x72:
      case 0x73:
      case 0x74:
      case 0x75:
      case 0x76:
      case 0x77:
      case 0x78:
      case 0x79:
      case 0x7a:
      case 0x7b:
      case 0x7c:
      case 0x7d:
      case 0x7e:
      case 0x7f:
        // JZ/JNZ (the most frequent) test ZF without the condition switch.
        if ((op & 14) === 4 ? this.getZF() !== ((op & 1) === 1) : this.condition(op & 15))
          this.jumpRelative(d.immediate[slot], o16);
        return;
      case 0x80:
      case 0x82:
      case 0x81:
      case 0x83: {
        const s = op === 0x81 || op === 0x83 ? size : 0;
        if (op === 0x82 && this.code64()) this.fault(Vector.UD, 0);
        const operation = (d.modrm[slot] >> 3) & 7;
        if (s === 2 && !(info & (Info.MEM | Info.LOCK))) {
          // Hot path: 32-bit register op immediate.
          const r = d.modrm[slot] & 7;
          const result = this.alu32(operation, this.regs[r], d.immediate[slot]);
          if (operation !== 7) this.regs[r] = result;
          return;
        }
        const dst = operation === 7 ? this.readRm(slot, s) : this.readRmForWrite(slot, s);
        const result = this.alu(operation, s, dst, d.immediate[slot] & SIZE_MASK[s]);
        if (operation !== 7) this.writeRmBack(slot, s, result);
        return;
      }
      case 0x84:
      case 0x85: {
        if (op === 0x85 && !o16 && !(info & Info.MEM)) {
          const modrm = d.modrm[slot];
          this.alu32(4, this.regs[modrm & 7], this.regs[(modrm >> 3) & 7]);
          return;
        }
        const s = op & 1 ? size : 0;
        this.alu(4, s, this.readRm(slot, s), this.getReg(s, (d.modrm[slot] >> 3) & 7));
        return;
      }
      case 0x86:
      case 0x87: {
        const s = op & 1 ? size : 0;
        const r = (d.modrm[slot] >> 3) & 7;
        const value = this.readRmForWrite(slot, s);
        this.writeRmBack(slot, s, this.getReg(s, r));
        this.setReg(s, r, value);
        return;
      }
      case 0x88:
        this.writeRm(slot, 0, this.getReg(0, (d.modrm[slot] >> 3) & 7));
        return;
      case 0x89:
        if (info & Info.MEM) {
          if (o16) this.writeLin16(this.ea(slot, 1, true), this.regs[(d.modrm[slot] >> 3) & 7]);
          else this.writeLin32(this.ea(slot, 2, true), this.regs[(d.modrm[slot] >> 3) & 7]);
        } else {
          this.setReg(size, d.modrm[slot] & 7, this.regs[(d.modrm[slot] >> 3) & 7]);
        }
        return;
      case 0x8a:
        this.setReg(0, (d.modrm[slot] >> 3) & 7, this.readRm(slot, 0));
        return;
      case 0x8b:
        if (!o16) {
          this.regs[(d.modrm[slot] >> 3) & 7] =
            info & Info.MEM
              ? this.readLin32(this.ea(slot, 2, false))
              : this.regs[d.modrm[slot] & 7];
          return;
        }
        this.setReg(size, (d.modrm[slot] >> 3) & 7, this.readRm(slot, size));
        return;
      case 0x8d:
        if (!(info & Info.MEM)) this.fault(Vector.UD, 0);
        this.setReg(size, (d.modrm[slot] >> 3) & 7, this.effectiveOffset(slot));
        return;
      case 0x90:
        if (info & Info.REP) {
          // pause: a spin-wait hint; a halted spinner may yield (Vcpu Yield).
        }
        return;
      case 0xa8:
      case 0xa9: {
        const s = op & 1 ? size : 0;
        this.alu(4, s, this.getReg(s, EAX), d.immediate[slot] & SIZE_MASK[s]);
        return;
      }
      case 0xb0:
      case 0xb1:
      case 0xb2:
      case 0xb3:
      case 0xb4:
      case 0xb5:
      case 0xb6:
      case 0xb7:
        this.setReg(0, op & 7, d.immediate[slot]);
        return;
      case 0xb8:
      case 0xb9:
      case 0xba:
      case 0xbb:
      case 0xbc:
      case 0xbd:
      case 0xbe:
      case 0xbf:
        this.setReg(size, op & 7, d.immediate[slot]);
        return;
      case 0xc3:
        this.eip = o16 ? this.pop16() : this.pop32();
        return;
      case 0xc6:
        this.writeRm(slot, 0, d.immediate[slot]);
        return;
      case 0xc7:
        this.writeRm(slot, size, d.immediate[slot]);
        return;
      case 0xe8:
        if (!o16 && this.segCheck[CS] & SC_LIMIT)
          this.checkNearTarget((this.eip + d.immediate[slot]) | 0);
        this.push(o16, this.eip);
        this.jumpRelative(d.immediate[slot], o16);
        return;
      case 0xe9:
      case 0xeb:
        this.jumpRelative(d.immediate[slot], o16);
        return;
      case 0xa1:
        if (!o16) {
          // mov eax, [moffs32]: common for globals in kernel code.
          const seg = (info >> Info.SEG_SHIFT) & 7;
          const offset = info & Info.A16 ? d.displacement[slot] & 0xffff : d.displacement[slot];
          this.regs[EAX] = this.readLin32(this.segAddress(seg, offset, 2, false));
          return;
        }
        this.executeRare(slot, op, info, o16, size);
        return;
      case 0xa3:
        if (!o16) {
          const seg = (info >> Info.SEG_SHIFT) & 7;
          const offset = info & Info.A16 ? d.displacement[slot] & 0xffff : d.displacement[slot];
          this.writeLin32(this.segAddress(seg, offset, 2, true), this.regs[EAX]);
          return;
        }
        this.executeRare(slot, op, info, o16, size);
        return;
      case 0x69:
      case 0x6b:
        if (!o16) {
          // Hot path: IMUL r32, r/m32, imm (compilers' multiply by a constant).
          const modrm = d.modrm[slot];
          const src =
            info & Info.MEM ? this.readLin32(this.ea(slot, 2, false)) : this.regs[modrm & 7];
          this.regs[(modrm >> 3) & 7] = this.imul2(2, src, d.immediate[slot]);
          return;
        }
        this.executeRare(slot, op, info, o16, size);
        return;
      case 0xc1:
      case 0xd1:
      case 0xd3:
        if (!o16 && !(info & Info.MEM)) {
          this.shift32(
            slot,
            d.modrm[slot],
            op === 0xc1 ? d.immediate[slot] : op === 0xd1 ? 1 : this.regs[ECX],
          );
          return;
        }
        this.executeRare(slot, op, info, o16, size);
        return;
      case 0xf6:
      case 0xf7:
        // Groups 3 and 5 (TEST/NOT/NEG/MUL/DIV; INC/DEC/CALL/JMP/PUSH r/m):
        // frequent in kernel code, so straight from here, not via executeRare.
        this.group3(slot, (d.modrm[slot] >> 3) & 7, op & 1 ? size : 0);
        return;
      case 0xff:
        this.group5(slot, (d.modrm[slot] >> 3) & 7, info, o16, size);
        return;
      default:
        this.executeRare(slot, op, info, o16, size);
    }
  }

  /** Reserved for the long-mode work: never true in IA-32. */
  private code64(): boolean {
    return false;
  }

  private jumpRelative(displacement: number, o16: boolean): void {
    if (o16) {
      this.eip = (this.eip + displacement) & 0xffff;
      return;
    }
    const target = (this.eip + displacement) | 0;
    if (this.segCheck[CS] & SC_LIMIT) this.checkNearTarget(target);
    this.eip = target;
  }

  /** A near branch beyond the CS limit raises #GP(0) before anything is pushed (SDM vol. 2 JMP/CALL). */
  private checkNearTarget(target: number): void {
    if (target >>> 0 > this.segLimit[CS] >>> 0) this.fault(Vector.GP, 0);
  }

  /** LOCK is allowed only on read-modify-write instructions with a memory destination (SDM vol. 2 LOCK). */
  private checkLock(op: number, info: number, reg: number): void {
    if (!(info & Info.MEM)) this.fault(Vector.UD, 0);
    switch (op) {
      case 0x80:
      case 0x81:
      case 0x82:
      case 0x83:
        if (reg === 7) this.fault(Vector.UD, 0); // cmp
        return;
      case 0xf6:
      case 0xf7:
        if (reg !== 2 && reg !== 3) this.fault(Vector.UD, 0); // only not, neg
        return;
      case 0xfe:
      case 0xff:
        if (reg > 1) this.fault(Vector.UD, 0); // only inc, dec
        return;
      case 0x1ba:
        if (reg === 4) this.fault(Vector.UD, 0); // bt
        return;
      case 0x1c7:
        if (reg !== 1) this.fault(Vector.UD, 0);
        return;
      case 0x86:
      case 0x87:
      case 0x1ab:
      case 0x1b3:
      case 0x1bb:
      case 0x1b0:
      case 0x1b1:
      case 0x1c0:
      case 0x1c1:
        return;
      default:
        this.fault(Vector.UD, 0);
    }
  }

  // ---------------------------------------------------------------------
  // Less frequent instructions (kept out of `execute` so that it stays small
  // enough for the optimizing compiler).

  private executeRare(slot: number, op: number, info: number, o16: boolean, size: number): void {
    const d = this.decoded;
    const modrm = d.modrm[slot];
    const reg = (modrm >> 3) & 7;
    if (info & Info.INVALID) this.fault(Vector.UD, 0);
    switch (op) {
      case 0x06:
      case 0x0e:
      case 0x16:
      case 0x1e:
        this.push(o16, this.segSel[op >> 3]);
        return;
      case 0x07:
      case 0x17:
      case 0x1f:
        this.popSegment(op >> 3, o16);
        return;
      case 0x27:
      case 0x2f:
      case 0x37:
      case 0x3f:
        this.decimalAdjust(op);
        return;
      case 0x60: {
        const esp = this.regs[ESP];
        try {
          for (let r = 0; r < 8; r++) this.push(o16, r === ESP ? esp : this.regs[r]);
        } catch (error) {
          this.regs[ESP] = esp;
          throw error;
        }
        return;
      }
      case 0x61: {
        const s = o16 ? 1 : 2;
        const step = o16 ? 2 : 4;
        const values = this.scratch;
        void values;
        // Read all eight first so that a fault leaves the registers alone.
        let v7 = 0;
        let v6 = 0;
        let v5 = 0;
        let v3 = 0;
        let v2 = 0;
        let v1 = 0;
        let v0 = 0;
        v7 = this.stackRead(s, 0);
        v6 = this.stackRead(s, step);
        v5 = this.stackRead(s, 2 * step);
        v3 = this.stackRead(s, 4 * step);
        v2 = this.stackRead(s, 5 * step);
        v1 = this.stackRead(s, 6 * step);
        v0 = this.stackRead(s, 7 * step);
        this.setReg(s, EDI, v7);
        this.setReg(s, ESI, v6);
        this.setReg(s, EBP, v5);
        this.setReg(s, EBX, v3);
        this.setReg(s, EDX, v2);
        this.setReg(s, ECX, v1);
        this.setReg(s, EAX, v0);
        this.adjustEsp(8 * step);
        return;
      }
      case 0x62: {
        if (!(info & Info.MEM)) this.fault(Vector.UD, 0);
        const address = this.ea(slot, size, false);
        const index = this.getReg(size, reg);
        let lower: number;
        let upper: number;
        if (o16) {
          lower = (this.readLin16(address) << 16) >> 16;
          upper = (this.readLin16(this.segOffsetAdd(address, 2)) << 16) >> 16;
          if ((index << 16) >> 16 < lower || (index << 16) >> 16 > upper) {
            this.fault(Vector.BR, 0);
          }
        } else {
          lower = this.readLin32(address);
          upper = this.readLin32((address + 4) | 0);
          if (index < lower || index > upper) this.fault(Vector.BR, 0);
        }
        return;
      }
      case 0x63: {
        // ARPL (protected mode only).
        if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) this.fault(Vector.UD, 0);
        const dst = this.readRmForWrite(slot, 1);
        const src = this.getReg(1, reg);
        this.materializeFlags();
        if ((dst & 3) < (src & 3)) {
          this.writeRmBack(slot, 1, (dst & ~3) | (src & 3));
          this.flagsRaw |= ZF;
        } else {
          this.flagsRaw &= ~ZF;
        }
        return;
      }
      case 0x69:
      case 0x6b: {
        const src = this.readRm(slot, size);
        this.setReg(size, reg, this.imul2(size, src, d.immediate[slot]));
        return;
      }
      case 0x6c:
      case 0x6d:
      case 0x6e:
      case 0x6f:
      case 0xa4:
      case 0xa5:
      case 0xa6:
      case 0xa7:
      case 0xaa:
      case 0xab:
      case 0xac:
      case 0xad:
      case 0xae:
      case 0xaf:
        this.stringInstruction(slot, op, info, op & 1 ? size : 0);
        return;
      case 0x8c: {
        if (reg > 5) this.fault(Vector.UD, 0);
        const value = this.segSel[reg];
        if (info & Info.MEM) this.writeLin16(this.ea(slot, 1, true), value);
        else this.setReg(o16 ? 1 : 2, modrm & 7, value);
        return;
      }
      case 0x8e: {
        if (reg === CS || reg > 5) this.fault(Vector.UD, 0);
        this.loadSegment(reg, this.readRm(slot, 1));
        if (reg === SS) this.setShadow();
        return;
      }
      case 0x8f: {
        if (reg !== 0) this.fault(Vector.UD, 0);
        // The address uses ESP after the pop (SDM vol. 2 POP).
        const value = this.stackRead(size, 0);
        const oldEsp = this.regs[ESP];
        this.adjustEsp(o16 ? 2 : 4);
        if (info & Info.MEM) {
          try {
            this.writeLin(size, this.ea(slot, size, true), value);
          } catch (error) {
            this.regs[ESP] = oldEsp;
            throw error;
          }
        } else {
          this.setReg(size, modrm & 7, value);
        }
        return;
      }
      case 0x91:
      case 0x92:
      case 0x93:
      case 0x94:
      case 0x95:
      case 0x96:
      case 0x97: {
        const value = this.getReg(size, op & 7);
        this.setReg(size, op & 7, this.getReg(size, EAX));
        this.setReg(size, EAX, value);
        return;
      }
      case 0x98:
        if (o16) this.setReg(1, EAX, (this.regs[EAX] << 24) >> 24);
        else this.regs[EAX] = (this.regs[EAX] << 16) >> 16;
        return;
      case 0x99:
        if (o16) this.setReg(1, EDX, (this.regs[EAX] << 16) >> 31);
        else this.regs[EDX] = this.regs[EAX] >> 31;
        return;
      case 0x9a:
        this.farCall(d.immediate2[slot], o16 ? d.immediate[slot] & 0xffff : d.immediate[slot], o16);
        return;
      case 0x9b:
        this.fpu.wait(this);
        return;
      case 0x9c:
        if (this.flagsRaw & VM && (this.flagsRaw & Flag.IOPL) !== Flag.IOPL) {
          this.fault(Vector.GP, 0);
        }
        // VM and RF read as 0 in the image (SDM vol. 2 PUSHF).
        this.push(o16, this.computeFlags() & 0xfcffff);
        return;
      case 0x9d: {
        if (this.flagsRaw & VM && (this.flagsRaw & Flag.IOPL) !== Flag.IOPL) {
          this.fault(Vector.GP, 0);
        }
        const value = o16 ? this.pop16() : this.pop32();
        this.writeFlags(value, o16, false);
        return;
      }
      case 0x9e: {
        this.materializeFlags();
        const ah = (this.regs[EAX] >> 8) & 0xd5;
        this.flagsRaw = (this.flagsRaw & ~0xd5) | ah | 2;
        return;
      }
      case 0x9f: {
        const flags = this.computeFlags();
        this.regs[EAX] = (this.regs[EAX] & ~0xff00) | ((flags & 0xd7) << 8) | 0x200;
        return;
      }
      case 0xa0:
      case 0xa1:
      case 0xa2:
      case 0xa3: {
        const s = op & 1 ? size : 0;
        const seg = (info >> Info.SEG_SHIFT) & 7;
        const offset = info & Info.A16 ? d.displacement[slot] & 0xffff : d.displacement[slot];
        if (op < 0xa2) this.setReg(s, EAX, this.readLin(s, this.segAddress(seg, offset, s, false)));
        else this.writeLin(s, this.segAddress(seg, offset, s, true), this.getReg(s, EAX));
        return;
      }
      case 0xc0:
      case 0xc1:
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: {
        const s = op & 1 ? size : 0;
        const count = op < 0xd0 ? d.immediate[slot] : op < 0xd2 ? 1 : this.regs[ECX];
        this.shiftGroup(slot, reg, s, count & 31);
        return;
      }
      case 0xc2:
        this.eip = o16 ? this.pop16() : this.pop32();
        this.adjustEsp(d.immediate[slot]);
        return;
      case 0xc4:
      case 0xc5:
        this.loadFarPointer(slot, info, o16, size, reg, op === 0xc4 ? ES : DS);
        return;
      case 0xc8: {
        const esp = this.regs[ESP];
        const ebp = this.regs[EBP];
        try {
          this.enter(d.immediate[slot], d.immediate2[slot] & 31, o16);
        } catch (error) {
          this.regs[ESP] = esp;
          this.regs[EBP] = ebp;
          throw error;
        }
        return;
      }
      case 0xc9: {
        const ebp = this.regs[EBP];
        const esp = this.regs[ESP];
        if (this.stack32) this.regs[ESP] = ebp;
        else this.regs[ESP] = (this.regs[ESP] & ~0xffff) | (ebp & 0xffff);
        try {
          const value = o16 ? this.pop16() : this.pop32();
          this.setReg(size, EBP, value);
        } catch (error) {
          this.regs[ESP] = esp;
          throw error;
        }
        return;
      }
      case 0xca:
      case 0xcb:
        this.farReturn(o16, op === 0xca ? d.immediate[slot] : 0);
        return;
      case 0xcc:
        this.softwareInterrupt(Vector.BP);
        return;
      case 0xcd:
        if (this.flagsRaw & VM && (this.flagsRaw & Flag.IOPL) !== Flag.IOPL) {
          this.fault(Vector.GP, 0);
        }
        this.softwareInterrupt(d.immediate[slot] & 0xff);
        return;
      case 0xce:
        if (this.getOFBool()) this.softwareInterrupt(Vector.OF);
        return;
      case 0xf1:
        // ICEBP / INT1: a #DB trap delivered like an external event (no DPL check).
        this.deliverEvent(Vector.DB, EVENT_EXTERNAL, false, 0);
        return;
      case 0xcf:
        this.iret(o16);
        return;
      case 0xd4: {
        const base = d.immediate[slot] & 0xff;
        if (base === 0) this.fault(Vector.DE, 0);
        const al = this.regs[EAX] & 0xff;
        const result = ((((al / base) | 0) & 0xff) << 8) | (al % base);
        this.setReg(1, EAX, result);
        this.setLazyResult(0, result & 0xff, 0);
        return;
      }
      case 0xd5: {
        const base = d.immediate[slot] & 0xff;
        const ax = this.regs[EAX];
        const al = ((ax & 0xff) + ((ax >> 8) & 0xff) * base) & 0xff;
        this.setReg(1, EAX, al);
        this.setLazyResult(0, al, 0);
        return;
      }
      case 0xd6:
        this.setReg(0, EAX, this.getCF() ? 0xff : 0);
        return;
      case 0xd7: {
        const seg = (info >> Info.SEG_SHIFT) & 7;
        let offset = (this.regs[EBX] + (this.regs[EAX] & 0xff)) | 0;
        if (info & Info.A16) offset &= 0xffff;
        this.setReg(0, EAX, this.readLin8(this.segAddress(seg, offset, 0, false)));
        return;
      }
      case 0xd8:
      case 0xd9:
      case 0xda:
      case 0xdb:
      case 0xdc:
      case 0xdd:
      case 0xde:
      case 0xdf:
        if (this.cr0 & (Cr0.EM | Cr0.TS)) this.fault(Vector.NM, 0);
        this.fpu.execute(this, slot, op, modrm, info);
        return;
      case 0xe0:
      case 0xe1:
      case 0xe2:
      case 0xe3: {
        const a16 = (info & Info.A16) !== 0;
        let count = a16 ? this.regs[ECX] & 0xffff : this.regs[ECX];
        let taken: boolean;
        if (op === 0xe3) {
          taken = count === 0;
        } else {
          count = a16 ? (count - 1) & 0xffff : (count - 1) | 0;
          this.setReg(a16 ? 1 : 2, ECX, count);
          taken = count !== 0;
          if (op === 0xe0) taken = taken && !this.getZF();
          else if (op === 0xe1) taken = taken && this.getZF();
        }
        if (taken) this.jumpRelative(d.immediate[slot], o16);
        return;
      }
      case 0xe4:
      case 0xe5:
      case 0xec:
      case 0xed: {
        const s = op & 1 ? size : 0;
        const port = op < 0xe8 ? d.immediate[slot] & 0xff : this.regs[EDX] & 0xffff;
        this.checkIoPermission(port, 1 << s);
        this.hostMayWrite();
        this.setReg(s, EAX, this.io.portRead(port, (1 << s) as 1 | 2 | 4));
        return;
      }
      case 0xe6:
      case 0xe7:
      case 0xee:
      case 0xef: {
        const s = op & 1 ? size : 0;
        const port = op < 0xe8 ? d.immediate[slot] & 0xff : this.regs[EDX] & 0xffff;
        this.checkIoPermission(port, 1 << s);
        this.hostMayWrite();
        this.io.portWrite(port, (1 << s) as 1 | 2 | 4, this.getReg(s, EAX));
        return;
      }
      case 0xea:
        this.farJump(d.immediate2[slot], o16 ? d.immediate[slot] & 0xffff : d.immediate[slot]);
        return;
      case 0xf4:
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        this.halted = true;
        this.eventCheck = true;
        return;
      case 0xf5:
        this.materializeFlags();
        this.flagsRaw ^= CF;
        return;
      case 0xf6:
      case 0xf7:
        this.group3(slot, reg, op & 1 ? size : 0);
        return;
      case 0xf8:
      case 0xf9:
        this.materializeFlags();
        this.flagsRaw = op === 0xf8 ? this.flagsRaw & ~CF : this.flagsRaw | CF;
        return;
      case 0xfa:
      case 0xfb:
        if (this.cr0 & Cr0.PE && this.cpl > ((this.flagsRaw >> 12) & 3)) this.fault(Vector.GP, 0);
        if (op === 0xfa) {
          this.flagsRaw &= ~IF;
        } else {
          if (!(this.flagsRaw & IF)) this.setShadow();
          this.flagsRaw |= IF;
          this.eventCheck = true;
        }
        return;
      case 0xfc:
        this.flagsRaw &= ~DF;
        return;
      case 0xfd:
        this.flagsRaw |= DF;
        return;
      case 0xfe:
        if (reg > 1) this.fault(Vector.UD, 0);
        this.writeRmBack(slot, 0, this.incdec(0, this.readRmForWrite(slot, 0), reg === 1));
        return;
      case 0xff:
        this.group5(slot, reg, info, o16, size);
        return;
      default:
        this.executeTwoByte(slot, op, info, o16, size, modrm, reg);
    }
  }

  /** POP ES/SS/DS/FS/GS: the selector is loaded (and checked) before ESP moves. */
  private popSegment(seg: number, o16: boolean): void {
    const value = o16 ? this.stackRead(1, 0) : this.stackRead(2, 0) & 0xffff;
    this.loadSegment(seg, value);
    this.adjustEsp(o16 ? 2 : 4);
    if (seg === SS) this.setShadow();
  }

  /** LES/LDS/LSS/LFS/LGS: offset and selector from memory, the segment loaded first. */
  private loadFarPointer(
    slot: number,
    info: number,
    o16: boolean,
    size: number,
    reg: number,
    seg: number,
  ): void {
    if (!(info & Info.MEM)) this.fault(Vector.UD, 0);
    const address = this.ea(slot, size, false);
    const offset = this.readLin(size, address);
    const selector = this.readLin16((address + (o16 ? 2 : 4)) | 0);
    this.loadSegment(seg, selector);
    this.setReg(size, reg, offset);
  }

  private segOffsetAdd(linear: number, delta: number): number {
    return (linear + delta) | 0;
  }

  private executeTwoByte(
    slot: number,
    op: number,
    info: number,
    o16: boolean,
    size: number,
    modrm: number,
    reg: number,
  ): void {
    const d = this.decoded;
    switch (op) {
      case 0x100:
        this.group6(slot, reg, info, o16);
        return;
      case 0x1a0:
      case 0x1a8:
        this.push(o16, this.segSel[op === 0x1a0 ? FS : GS]);
        return;
      case 0x1a1:
      case 0x1a9:
        this.popSegment(op === 0x1a1 ? FS : GS, o16);
        return;
      case 0x1af:
        this.setReg(size, reg, this.imul2(size, this.getReg(size, reg), this.readRm(slot, size)));
        return;
      case 0x1b2:
      case 0x1b4:
      case 0x1b5:
        this.loadFarPointer(slot, info, o16, size, reg, op === 0x1b2 ? SS : op === 0x1b4 ? FS : GS);
        return;
      case 0x101:
        this.group7(slot, reg, info, o16, modrm);
        return;
      case 0x102:
      case 0x103:
        this.larLsl(slot, op === 0x103, size);
        return;
      case 0x106:
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        this.cr0 &= ~Cr0.TS;
        return;
      case 0x108:
      case 0x109:
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        return;
      case 0x10b:
      case 0x1b9:
        this.fault(Vector.UD, 0);
        return;
      case 0x10d:
      case 0x118:
      case 0x119:
      case 0x11a:
      case 0x11b:
      case 0x11c:
      case 0x11d:
      case 0x11e:
      case 0x11f:
        // Hint NOPs and prefetches (SDM vol. 2 NOP, PREFETCHh).
        return;
      case 0x120:
      case 0x121:
      case 0x122:
      case 0x123:
        this.moveControl(op, modrm, reg);
        return;
      case 0x130:
        this.wrmsr();
        return;
      case 0x131:
        if (this.cr4 & Cr4.TSD && this.cpl !== 0) this.fault(Vector.GP, 0);
        this.readTsc();
        return;
      case 0x132:
        this.rdmsr();
        return;
      case 0x133:
        this.fault(Vector.GP, 0);
        return;
      case 0x134:
        this.sysenter();
        return;
      case 0x135:
        this.sysexit();
        return;
      case 0x140:
      case 0x141:
      case 0x142:
      case 0x143:
      case 0x144:
      case 0x145:
      case 0x146:
      case 0x147:
      case 0x148:
      case 0x149:
      case 0x14a:
      case 0x14b:
      case 0x14c:
      case 0x14d:
      case 0x14e:
      case 0x14f: {
        // The source is read (and may fault) even when the condition is false.
        const value = this.readRm(slot, size);
        if (this.condition(op & 15)) this.setReg(size, reg, value);
        return;
      }
      case 0x190:
      case 0x191:
      case 0x192:
      case 0x193:
      case 0x194:
      case 0x195:
      case 0x196:
      case 0x197:
      case 0x198:
      case 0x199:
      case 0x19a:
      case 0x19b:
      case 0x19c:
      case 0x19d:
      case 0x19e:
      case 0x19f:
        this.writeRm(slot, 0, this.condition(op & 15) ? 1 : 0);
        return;
      case 0x1a2:
        this.cpuid();
        return;
      case 0x1a3:
      case 0x1ab:
      case 0x1b3:
      case 0x1bb:
        this.bitTest(slot, info, size, (op >> 3) & 3, this.getReg(size, reg), false);
        return;
      case 0x1ba:
        if (reg < 4) this.fault(Vector.UD, 0);
        this.bitTest(slot, info, size, reg & 3, d.immediate[slot] & 0xff, true);
        return;
      case 0x1a4:
      case 0x1a5:
      case 0x1ac:
      case 0x1ad: {
        const count = (op & 1 ? this.regs[ECX] : d.immediate[slot]) & 31;
        this.doubleShift(slot, size, reg, count, op >= 0x1ac);
        return;
      }
      case 0x1ae:
        this.group15(slot, info, modrm, reg);
        return;
      case 0x1b0:
      case 0x1b1: {
        const s = op & 1 ? size : 0;
        const dst = this.readRmForWrite(slot, s);
        const acc = this.getReg(s, EAX);
        this.alu(7, s, acc, dst);
        if (acc === dst) {
          this.writeRmBack(slot, s, this.getReg(s, reg));
        } else {
          // The destination is written back unchanged (SDM vol. 2 CMPXCHG).
          this.writeRmBack(slot, s, dst);
          this.setReg(s, EAX, dst);
        }
        return;
      }
      case 0x1bc:
      case 0x1bd: {
        const value = this.readRm(slot, size);
        this.materializeFlags();
        if (value === 0) {
          this.flagsRaw |= ZF;
          return;
        }
        this.flagsRaw &= ~ZF;
        const result = op === 0x1bc ? 31 - Math.clz32(value & -value) : 31 - Math.clz32(value);
        this.setReg(size, reg, result);
        return;
      }
      case 0x1c0:
      case 0x1c1: {
        const s = op & 1 ? size : 0;
        const dst = this.readRmForWrite(slot, s);
        const src = this.getReg(s, reg);
        const sum = this.alu(0, s, dst, src);
        this.setReg(s, reg, dst);
        this.writeRmBack(slot, s, sum);
        return;
      }
      case 0x1c7:
        if (reg !== 1 || !(info & Info.MEM)) this.fault(Vector.UD, 0);
        this.cmpxchg8b(slot);
        return;
      case 0x1c8:
      case 0x1c9:
      case 0x1ca:
      case 0x1cb:
      case 0x1cc:
      case 0x1cd:
      case 0x1ce:
      case 0x1cf: {
        const r = op & 7;
        const v = this.regs[r];
        // 16-bit BSWAP is undefined; P6-class CPUs zero the low word.
        this.regs[r] = o16
          ? v & ~0xffff
          : (v >>> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24) | 0;
        return;
      }
      case 0x177:
        emms(this);
        return;
      default:
        // MMX, SSE and SSE2 (sse.ts); anything else in the map is #UD there.
        executeSimd(this, slot, op, info);
    }
  }

  // ---------------------------------------------------------------------
  // Arithmetic helpers

  private decimalAdjust(op: number): void {
    const flags = this.computeFlags();
    let al = this.regs[EAX] & 0xff;
    let cf = flags & CF;
    let af = flags & AF;
    let out = 0;
    switch (op) {
      case 0x27: {
        // DAA (SDM vol. 2 DAA).
        const oldAl = al;
        const oldCf = cf;
        cf = 0;
        if ((al & 0xf) > 9 || af) {
          al = (al + 6) & 0xff;
          cf = oldCf || oldAl + 6 > 0xff ? 1 : 0;
          af = AF;
        } else af = 0;
        if (oldAl > 0x99 || oldCf) {
          al = (al + 0x60) & 0xff;
          cf = 1;
        } else cf = 0;
        this.setReg(0, EAX, al);
        out = cf | af;
        this.setLazyResult(0, al, out);
        return;
      }
      case 0x2f: {
        const oldAl = al;
        const oldCf = cf;
        cf = 0;
        if ((al & 0xf) > 9 || af) {
          cf = oldCf || al < 6 ? 1 : 0;
          al = (al - 6) & 0xff;
          af = AF;
        } else af = 0;
        if (oldAl > 0x99 || oldCf) {
          al = (al - 0x60) & 0xff;
          cf = 1;
        }
        this.setReg(0, EAX, al);
        this.setLazyResult(0, al, cf | af);
        return;
      }
      case 0x37:
      case 0x3f: {
        let ax = this.regs[EAX] & 0xffff;
        if ((al & 0xf) > 9 || af) {
          // SDM vol. 2 AAA/AAS: AX += 106H; or AX -= 6 then AH -= 1 (the borrow reaches AH).
          if (op === 0x37) ax = (ax + 0x106) & 0xffff;
          else ax = (ax - 0x106) & 0xffff;
          af = AF;
          cf = 1;
        } else {
          af = 0;
          cf = 0;
        }
        ax &= 0xff0f;
        this.setReg(1, EAX, ax);
        this.setLazyResult(0, ax & 0xff, cf | af);
        return;
      }
    }
  }

  /** Two/three-operand IMUL: truncated product, CF=OF when it does not fit (SDM vol. 2 IMUL). */
  private imul2(size: number, a: number, b: number): number {
    let result: number;
    let overflow: boolean;
    if (size === 2) {
      result = Math.imul(a, b);
      const exact = a * b;
      overflow = exact !== result || (exact === 0 && false);
      if (!Number.isSafeInteger(exact)) overflow = true;
      else overflow = exact !== result;
    } else {
      const product = ((a << 16) >> 16) * ((b << 16) >> 16);
      result = product & 0xffff;
      overflow = product !== (result << 16) >> 16;
    }
    this.setLazyResult(size, result, overflow ? CF | OF : 0);
    return result;
  }

  private group3(slot: number, reg: number, size: number): void {
    const d = this.decoded;
    switch (reg) {
      case 0:
      case 1:
        this.alu(4, size, this.readRm(slot, size), d.immediate[slot] & SIZE_MASK[size]);
        return;
      case 2:
        this.writeRmBack(slot, size, ~this.readRmForWrite(slot, size) & SIZE_MASK[size]);
        return;
      case 3: {
        const value = this.readRmForWrite(slot, size);
        this.writeRmBack(slot, size, this.alu(5, size, 0, value));
        return;
      }
      case 4:
      case 5:
        this.multiply(size, this.readRm(slot, size), reg === 5);
        return;
      default:
        this.divide(size, this.readRm(slot, size), reg === 7);
    }
  }

  private multiply(size: number, src: number, signed: boolean): void {
    const regs = this.regs;
    let overflow: boolean;
    let low: number;
    if (size === 0) {
      const a = regs[EAX] & 0xff;
      const product = signed ? ((a << 24) >> 24) * ((src << 24) >> 24) : a * src;
      this.setReg(1, EAX, product);
      low = product & 0xff;
      overflow = signed ? product !== (product << 24) >> 24 : product > 0xff;
    } else if (size === 1) {
      const a = regs[EAX] & 0xffff;
      const product = signed ? ((a << 16) >> 16) * ((src << 16) >> 16) : a * src;
      this.setReg(1, EAX, product);
      this.setReg(1, EDX, product >> 16);
      low = product & 0xffff;
      overflow = signed ? product !== (product << 16) >> 16 : product > 0xffff;
    } else {
      const a = regs[EAX];
      low = Math.imul(a, src);
      const high = signed ? this.mulHighSigned(a, src) : this.mulHighUnsigned(a, src);
      regs[EAX] = low;
      regs[EDX] = high;
      overflow = signed ? high !== low >> 31 : high !== 0;
    }
    // CF=OF by the high half; SF/ZF/PF from the low result (undefined by the SDM).
    this.setLazyResult(size, low, overflow ? CF | OF : 0);
  }

  private mulHighUnsigned(a: number, b: number): number {
    const a0 = a & 0xffff;
    const a1 = a >>> 16;
    const b0 = b & 0xffff;
    const b1 = b >>> 16;
    const low = a0 * b0;
    const mid1 = a1 * b0;
    const mid2 = a0 * b1;
    const carry = ((low >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
    return (a1 * b1 + (mid1 >>> 16) + (mid2 >>> 16) + carry) | 0;
  }

  private mulHighSigned(a: number, b: number): number {
    let high = this.mulHighUnsigned(a, b);
    if (a < 0) high = (high - b) | 0;
    if (b < 0) high = (high - a) | 0;
    return high;
  }

  private divide(size: number, divisor: number, signed: boolean): void {
    const regs = this.regs;
    if (size === 0) {
      const dividend = regs[EAX] & 0xffff;
      if (divisor === 0) this.fault(Vector.DE, 0);
      if (signed) {
        const n = (dividend << 16) >> 16;
        const m = (divisor << 24) >> 24;
        const q = (n / m) | 0;
        if (q > 127 || q < -128) this.fault(Vector.DE, 0);
        this.setReg(1, EAX, (q & 0xff) | (((n % m) & 0xff) << 8));
      } else {
        const q = (dividend / divisor) >>> 0;
        if (q > 0xff) this.fault(Vector.DE, 0);
        this.setReg(1, EAX, q | ((dividend % divisor) << 8));
      }
      return;
    }
    if (size === 1) {
      const dividend = ((regs[EDX] & 0xffff) << 16) | (regs[EAX] & 0xffff);
      if (divisor === 0) this.fault(Vector.DE, 0);
      if (signed) {
        const m = (divisor << 16) >> 16;
        const q = (dividend / m) | 0;
        if (q > 32767 || q < -32768) this.fault(Vector.DE, 0);
        this.setReg(1, EAX, q);
        this.setReg(1, EDX, dividend % m);
      } else {
        const n = dividend >>> 0;
        const q = Math.floor(n / divisor);
        if (q > 0xffff) this.fault(Vector.DE, 0);
        this.setReg(1, EAX, q);
        this.setReg(1, EDX, n % divisor);
      }
      return;
    }
    if (divisor === 0) this.fault(Vector.DE, 0);
    let high = regs[EDX];
    let low = regs[EAX];
    if (!signed) {
      if (high >>> 0 >= divisor >>> 0) this.fault(Vector.DE, 0);
      this.divide64(high, low, divisor >>> 0);
      regs[EAX] = this.scratch[0];
      regs[EDX] = this.scratch[1];
      return;
    }
    const negative = high < 0;
    if (negative) {
      low = (~low + 1) | 0;
      high = (~high + (low === 0 ? 1 : 0)) | 0;
    }
    const divisorNegative = divisor < 0;
    const absDivisor = divisorNegative ? -divisor >>> 0 : divisor;
    if (high >>> 0 >= absDivisor) this.fault(Vector.DE, 0);
    this.divide64(high, low, absDivisor);
    const quotient = this.scratch[0];
    const remainder = this.scratch[1];
    const quotientNegative = negative !== divisorNegative;
    if (quotientNegative ? quotient > 0x80000000 : quotient > 0x7fffffff) this.fault(Vector.DE, 0);
    regs[EAX] = quotientNegative ? -quotient | 0 : quotient | 0;
    regs[EDX] = negative ? -remainder | 0 : remainder | 0;
  }

  /** Unsigned (high:low) / divisor with high < divisor; quotient and remainder in scratch[0..1]. */
  private divide64(high: number, low: number, divisor: number): void {
    let remainder = high >>> 0;
    let quotient = 0;
    for (let shift = 16; shift >= 0; shift -= 16) {
      const chunk = (low >>> shift) & 0xffff;
      const value = remainder * 65536 + chunk;
      const q = Math.floor(value / divisor);
      remainder = value - q * divisor;
      quotient = quotient * 65536 + q;
    }
    this.scratch[0] = quotient;
    this.scratch[1] = remainder;
  }

  /** ROL ROR RCL RCR SHL SHR SAL SAR (SDM vol. 2 "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR"). */
  private shiftGroup(slot: number, kind: number, size: number, count: number): void {
    const value = this.readRmForWrite(slot, size);
    if (count === 0) {
      this.writeRmBack(slot, size, value);
      return;
    }
    const bits = 8 << size;
    const mask = SIZE_MASK[size];
    const sign = SIZE_SIGN[size];
    let result: number;
    let cf: number;
    let of: number;
    switch (kind) {
      case 0: {
        const n = count & (bits - 1);
        result = n === 0 ? value : ((value << n) | ((value & mask) >>> (bits - n))) & mask;
        cf = result & 1;
        of = (result & sign ? 1 : 0) ^ cf;
        this.rotateFlags(cf, of);
        this.writeRmBack(slot, size, result);
        return;
      }
      case 1: {
        const n = count & (bits - 1);
        result = n === 0 ? value : (((value & mask) >>> n) | (value << (bits - n))) & mask;
        cf = result & sign ? 1 : 0;
        of = ((result ^ (result << 1)) & sign) !== 0 ? 1 : 0;
        this.rotateFlags(cf, of);
        this.writeRmBack(slot, size, result);
        return;
      }
      case 2: {
        const n = size === 2 ? count : count % (bits + 1);
        cf = this.getCF();
        result = value & mask;
        for (let i = 0; i < n; i++) {
          const out = result & sign ? 1 : 0;
          result = ((result << 1) | cf) & mask;
          cf = out;
        }
        of = (result & sign ? 1 : 0) ^ cf;
        this.rotateFlags(cf, of);
        this.writeRmBack(slot, size, result);
        return;
      }
      case 3: {
        const n = size === 2 ? count : count % (bits + 1);
        cf = this.getCF();
        result = value & mask;
        for (let i = 0; i < n; i++) {
          const out = result & 1;
          result = ((result & mask) >>> 1) | (cf ? sign : 0);
          result &= mask;
          cf = out;
        }
        of = ((result ^ (result << 1)) & sign) !== 0 ? 1 : 0;
        this.rotateFlags(cf, of);
        this.writeRmBack(slot, size, result);
        return;
      }
      case 4:
      case 6: {
        result = count < 32 ? (value << count) & mask : 0;
        cf = count <= bits ? ((value & mask) >>> (bits - count)) & 1 : 0;
        if (size === 2 && count === 32) cf = value & 1;
        of = (result & sign ? 1 : 0) ^ cf;
        break;
      }
      case 5: {
        result = count < 32 ? ((value & mask) >>> count) & mask : 0;
        cf = ((value & mask) >>> (count - 1)) & 1;
        if (count > bits) cf = 0;
        of = value & sign ? 1 : 0;
        break;
      }
      default: {
        const signed = size === 2 ? value : size === 1 ? (value << 16) >> 16 : (value << 24) >> 24;
        result = (signed >> Math.min(count, 31)) & mask;
        cf = (signed >> Math.min(count - 1, 31)) & 1;
        of = 0;
        break;
      }
    }
    this.setLazyResult(size, result, (cf ? CF : 0) | (of ? OF : 0));
    this.writeRmBack(slot, size, result);
  }

  /**
   * Shift/rotate group 2 on a 32-bit register (C1, D1, D3 with mod = 3):
   * the common forms inline, the others through `shiftGroup`. Same flags
   * as `shiftGroup` (SDM vol. 2 SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR).
   */
  private shift32(slot: number, modrm: number, rawCount: number): void {
    const count = rawCount & 31;
    // A zero count changes neither the register nor the flags.
    if (count === 0) return;
    const r = modrm & 7;
    const value = this.regs[r];
    let result: number;
    let cf: number;
    switch ((modrm >> 3) & 7) {
      case 0:
        result = (value << count) | (value >>> (32 - count));
        cf = result & 1;
        this.rotateFlags(cf, (result >>> 31) ^ cf);
        break;
      case 1:
        result = (value >>> count) | (value << (32 - count));
        this.rotateFlags(result >>> 31, ((result ^ (result << 1)) >>> 31) & 1);
        break;
      case 4:
      case 6:
        result = value << count;
        cf = (value >>> (32 - count)) & 1;
        this.setLazyResult(2, result, (cf ? CF : 0) | ((result >>> 31) ^ cf ? OF : 0));
        break;
      case 5:
        result = (value >>> count) | 0;
        this.setLazyResult(
          2,
          result,
          ((value >>> (count - 1)) & 1 ? CF : 0) | (value < 0 ? OF : 0),
        );
        break;
      case 7:
        result = value >> count;
        this.setLazyResult(2, result, (value >> (count - 1)) & 1 ? CF : 0);
        break;
      default:
        // RCL/RCR: through the general path.
        this.shiftGroup(slot, (modrm >> 3) & 7, 2, count);
        return;
    }
    this.regs[r] = result;
  }

  private rotateFlags(cf: number, of: number): void {
    // Rotates change only CF and OF (SDM vol. 2 RCL/RCR/ROL/ROR): those two
    // become concrete, the others stay lazy (computeFlags takes each lazy
    // flag on its own), so a rotate does not force a full flags evaluation.
    this.flagsRaw = (this.flagsRaw & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
    this.lazy &= ~(CF | OF);
  }

  private doubleShift(
    slot: number,
    size: number,
    reg: number,
    count: number,
    right: boolean,
  ): void {
    const value = this.readRmForWrite(slot, size);
    if (count === 0) {
      this.writeRmBack(slot, size, value);
      return;
    }
    const fill = this.getReg(size, reg);
    let result: number;
    let cf: number;
    if (size === 2) {
      if (right) {
        result = (value >>> count) | (count === 32 ? 0 : fill << (32 - count));
        cf = (value >>> (count - 1)) & 1;
      } else {
        result = (value << count) | (fill >>> (32 - count));
        cf = (value >>> (32 - count)) & 1;
      }
      result |= 0;
    } else {
      // 16-bit: counts above 16 are undefined; P6 shifts through the 32-bit concatenation.
      const combined = right ? ((fill << 16) | value) >>> 0 : ((value << 16) | fill) >>> 0;
      if (right) {
        const wide = count < 32 ? combined / 2 ** count : 0;
        result = Math.floor(wide) & 0xffff;
        cf = Math.floor(combined / 2 ** (count - 1)) & 1;
        if (count > 16) {
          const rotated = ((value << 16) | fill) >>> 0;
          result = (rotated >>> (count - 16)) & 0xffff;
          cf = (rotated >>> (count - 17)) & 1;
        }
      } else {
        result = ((combined << count) >>> 16) & 0xffff;
        cf = (combined >>> (32 - count)) & 1;
        if (count > 16) {
          result = (((fill << 16) | value) << (count - 16)) >>> 16;
          result &= 0xffff;
          cf = (((fill << 16) | value) >>> (32 - (count - 16))) & 1;
        }
      }
    }
    const sign = SIZE_SIGN[size];
    const of = ((result ^ value) & sign) !== 0 ? OF : 0;
    this.setLazyResult(size, result, (cf ? CF : 0) | of);
    this.writeRmBack(slot, size, result);
  }

  /** BT BTS BTR BTC; a register bit offset reaches beyond the operand in memory (SDM vol. 2 BT). */
  private bitTest(
    slot: number,
    info: number,
    size: number,
    operation: number,
    offset: number,
    immediate: boolean,
  ): void {
    const bits = 8 << size;
    this.materializeFlags();
    if (!(info & Info.MEM)) {
      const r = this.decoded.modrm[slot] & 7;
      const value = this.getReg(size, r);
      const bit = offset & (bits - 1);
      this.flagsRaw = (this.flagsRaw & ~CF) | ((value >>> bit) & 1);
      if (operation === 0) return;
      const m = 1 << bit;
      this.setReg(size, r, operation === 1 ? value | m : operation === 2 ? value & ~m : value ^ m);
      return;
    }
    let displacement = 0;
    let bit: number;
    if (immediate) {
      bit = offset & (bits - 1);
    } else {
      const signedOffset = size === 1 ? (offset << 16) >> 16 : offset;
      bit = signedOffset & (bits - 1);
      displacement = (signedOffset >> (size === 1 ? 4 : 5)) * (bits >> 3);
    }
    // The operand is at EA + displacement, checked against the segment as a whole.
    const info2 = this.decoded.info[slot];
    let operandOffset = (this.effectiveOffset(slot) + displacement) | 0;
    if (info2 & Info.A16) operandOffset &= 0xffff;
    const address = this.segAddress(
      (info2 >> Info.SEG_SHIFT) & 7,
      operandOffset,
      size,
      operation !== 0,
    );
    const value = this.readLin(size, address);
    this.flagsRaw = (this.flagsRaw & ~CF) | ((value >>> bit) & 1);
    if (operation === 0) return;
    const m = 1 << bit;
    this.writeLin(
      size,
      address,
      operation === 1 ? value | m : operation === 2 ? value & ~m : value ^ m,
    );
  }

  private cmpxchg8b(slot: number): void {
    // The segment check covers all 8 bytes; a quadword is 8-byte aligned under #AC.
    const address = this.ea(slot, 3, true);
    this.checkAlignment(address, 8, true);
    const low = this.readLin32(address);
    const high = this.readLin32((address + 4) | 0);
    this.materializeFlags();
    if (low === this.regs[EAX] && high === this.regs[EDX]) {
      this.writeLin32(address, this.regs[EBX]);
      this.writeLin32((address + 4) | 0, this.regs[ECX]);
      this.flagsRaw |= ZF;
    } else {
      // The old value is written back (SDM vol. 2 CMPXCHG8B).
      this.writeLin32(address, low);
      this.writeLin32((address + 4) | 0, high);
      this.regs[EAX] = low;
      this.regs[EDX] = high;
      this.flagsRaw &= ~ZF;
    }
  }

  private enter(frameSize: number, level: number, o16: boolean): void {
    const step = o16 ? 2 : 4;
    this.push(o16, this.regs[EBP]);
    const frame = this.stack32 ? this.regs[ESP] : this.regs[ESP] & 0xffff;
    if (level > 0) {
      let ebp = this.regs[EBP];
      for (let i = 1; i < level; i++) {
        ebp = this.stack32 ? (ebp - step) | 0 : (ebp - step) & 0xffff;
        this.push(o16, this.readLin(o16 ? 1 : 2, this.segAddress(SS, ebp, o16 ? 1 : 2, false)));
      }
      this.push(o16, frame);
    }
    // Probe the new stack top so that a fault happens before EBP changes.
    const newEsp = this.stack32
      ? (this.regs[ESP] - frameSize) | 0
      : (this.regs[ESP] - frameSize) & 0xffff;
    if (frameSize > 0) this.segAddress(SS, newEsp, 0, true);
    this.setReg(o16 ? 1 : 2, EBP, frame);
    this.adjustEsp(-frameSize);
  }

  // ---------------------------------------------------------------------
  // String instructions (SDM vol. 2 MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS, REP)

  private stringInstruction(_slot: number, op: number, info: number, size: number): void {
    const a16 = (info & Info.A16) !== 0;
    const rep = (info & (Info.REP | Info.REPNE)) !== 0;
    const seg = (info >> Info.SEG_SHIFT) & 7;
    const delta = (this.flagsRaw & DF ? -1 : 1) << size;
    const regs = this.regs;
    const addrMask = a16 ? 0xffff : -1;
    const ioSize = (1 << size) as 1 | 2 | 4;
    if (op < 0x70) {
      const port = regs[EDX] & 0xffff;
      this.checkIoPermission(port, ioSize);
    }
    if (
      rep &&
      !a16 &&
      !(this.flagsRaw & DF) &&
      (op === 0xaa || op === 0xab || op === 0xa4 || op === 0xa5) &&
      this.segCheck[ES] === 0 &&
      (op >= 0xaa || this.segCheck[seg] === 0)
    ) {
      // Bulk path for forward rep stos/movs (memset, memcpy, clear_page).
      if (this.bulkString(op, seg, size)) return;
    }
    // Iterations per call are bounded so that interrupts and the budget are
    // honoured; the instruction restarts with EIP unchanged (SDM vol. 3A 6.6).
    let iterations = rep ? 4096 : 1;
    for (;;) {
      if (rep) {
        const count = regs[ECX] & addrMask;
        if (count === 0) return;
      }
      const si = regs[ESI] & addrMask;
      const di = regs[EDI] & addrMask;
      switch (op) {
        case 0xa4:
        case 0xa5: {
          const value = this.readLin(size, this.segAddress(seg, si, size, false));
          this.writeLin(size, this.segAddress(ES, di, size, true), value);
          this.advance(ESI, delta, a16);
          this.advance(EDI, delta, a16);
          break;
        }
        case 0xaa:
        case 0xab:
          this.writeLin(size, this.segAddress(ES, di, size, true), this.getReg(size, EAX));
          this.advance(EDI, delta, a16);
          break;
        case 0xac:
        case 0xad:
          this.setReg(size, EAX, this.readLin(size, this.segAddress(seg, si, size, false)));
          this.advance(ESI, delta, a16);
          break;
        case 0xa6:
        case 0xa7: {
          const a = this.readLin(size, this.segAddress(seg, si, size, false));
          const b = this.readLin(size, this.segAddress(ES, di, size, false));
          this.alu(7, size, a, b);
          this.advance(ESI, delta, a16);
          this.advance(EDI, delta, a16);
          break;
        }
        case 0xae:
        case 0xaf: {
          const b = this.readLin(size, this.segAddress(ES, di, size, false));
          this.alu(7, size, this.getReg(size, EAX), b);
          this.advance(EDI, delta, a16);
          break;
        }
        default:
          // INS and OUTS (0x6c-0x6f): not cases, which would stretch the
          // switch's range past a jump table's (test/dense-switches.test.ts).
          if (op < 0x6e) {
            const address = this.segAddress(ES, di, size, true);
            this.probeWrite(address, 1 << size);
            this.hostMayWrite();
            this.writeLin(size, address, this.io.portRead(regs[EDX] & 0xffff, ioSize));
            this.advance(EDI, delta, a16);
          } else {
            const value = this.readLin(size, this.segAddress(seg, si, size, false));
            this.hostMayWrite();
            this.io.portWrite(regs[EDX] & 0xffff, ioSize, value);
            this.advance(ESI, delta, a16);
          }
      }
      if (!rep) return;
      const count = ((regs[ECX] & addrMask) - 1) & addrMask;
      this.setReg(a16 ? 1 : 2, ECX, count);
      if (count === 0) return;
      if (op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf) {
        const zf = this.getZF();
        if (info & Info.REP ? !zf : zf) return;
      }
      if (--iterations === 0) {
        this.eip = this.startEip;
        return;
      }
    }
  }

  /**
   * Forward `rep stos`/`rep movs` with 32-bit addressing over flat-checked
   * segments, a page at a time with typed-array fills and copies. Returns
   * false (nothing done) when the generic loop must take over: MMIO, a
   * destination that overlaps the source ahead of it (byte-replicating
   * semantics), or an element crossing a page; registers then describe the
   * elements done, so the generic loop continues from there, and a fault
   * restarts correctly (SDM vol. 2 REP).
   */
  private bulkString(op: number, seg: number, size: number): boolean {
    const regs = this.regs;
    const movs = op < 0xaa;
    for (let pages = 0; pages < 64; pages++) {
      const count = regs[ECX] >>> 0;
      if (count === 0) return true;
      const dstLinear = (this.segBase[ES] + regs[EDI]) | 0;
      const dstRoom = (4096 - (dstLinear & 0xfff)) >>> size;
      let n = Math.min(count, dstRoom);
      let srcLinear = 0;
      if (movs) {
        srcLinear = (this.segBase[seg] + regs[ESI]) | 0;
        n = Math.min(n, (4096 - (srcLinear & 0xfff)) >>> size);
      }
      if (n === 0) return false;
      // Translate (and fault) before anything is written.
      let srcPhys = 0;
      if (movs) {
        const vpn = srcLinear >>> 12;
        if ((this.tlbInfo[vpn] & (this.readNeed | T_MMIO)) !== this.readNeed) {
          this.translateSlow(srcLinear, ACCESS_READ);
          if ((this.tlbInfo[vpn] & (this.readNeed | T_MMIO)) !== this.readNeed) return false;
        }
        srcPhys = this.tlbPhys[vpn] | (srcLinear & 0xfff);
      }
      const dstVpn = dstLinear >>> 12;
      if ((this.tlbInfo[dstVpn] & (this.writeNeed | T_MMIO)) !== this.writeNeed) {
        this.translateSlow(dstLinear, ACCESS_WRITE);
        if ((this.tlbInfo[dstVpn] & (this.writeNeed | T_MMIO)) !== this.writeNeed) return false;
      }
      const dstPhys = this.tlbPhys[dstVpn] | (dstLinear & 0xfff);
      const length = n << size;
      if (movs && dstPhys > srcPhys && dstPhys < srcPhys + length) return false;
      if (this.codePage[dstPhys >>> 12]) this.invalidatePhysPage(dstPhys >>> 12);
      const ram = this.ram;
      if (movs) {
        ram.copyWithin(dstPhys, srcPhys, srcPhys + length);
        regs[ESI] = (regs[ESI] + length) | 0;
      } else {
        const value = regs[EAX];
        if (size === 0) ram.fill(value & 0xff, dstPhys, dstPhys + length);
        else if (size === 1) {
          for (let i = 0; i < length; i += 2) this.view.setUint16(dstPhys + i, value, true);
        } else if (value === 0) ram.fill(0, dstPhys, dstPhys + length);
        else {
          for (let i = 0; i < length; i += 4) this.view.setInt32(dstPhys + i, value, true);
        }
      }
      regs[EDI] = (regs[EDI] + length) | 0;
      regs[ECX] = (count - n) | 0;
    }
    // Budget of pages used: restart the instruction (interrupts may come in).
    if (regs[ECX] !== 0) this.eip = this.startEip;
    return true;
  }

  private advance(r: number, delta: number, a16: boolean): void {
    if (a16) this.regs[r] = (this.regs[r] & ~0xffff) | ((this.regs[r] + delta) & 0xffff);
    else this.regs[r] = (this.regs[r] + delta) | 0;
  }

  /** IOPL and the TSS I/O permission bitmap (SDM vol. 1 19.5). */
  private checkIoPermission(port: number, size: number): void {
    if (!(this.cr0 & Cr0.PE)) return;
    if (!(this.flagsRaw & VM) && this.cpl <= ((this.flagsRaw >> 12) & 3)) return;
    const type = this.segAttr[TR] & 0xf;
    if ((type !== 9 && type !== 11) || this.segLimit[TR] >>> 0 < 0x67) this.fault(Vector.GP, 0);
    const base = this.segBase[TR];
    const mapBase = this.systemRead16((base + 0x66) | 0);
    const byte = mapBase + (port >> 3);
    if (byte + 1 > this.segLimit[TR] >>> 0) this.fault(Vector.GP, 0);
    const bits = this.systemRead16((base + byte) | 0);
    if ((bits >> (port & 7)) & ((1 << size) - 1)) this.fault(Vector.GP, 0);
  }

  // ---------------------------------------------------------------------
  // Flags writes (POPF, IRET)

  private writeFlags(value: number, o16: boolean, iret: boolean): void {
    this.materializeFlags();
    // Always writable: CF PF AF ZF SF TF DF OF NT, plus AC ID in 32-bit.
    let mask = 0x4dd5;
    if (!o16) mask |= Flag.AC | Flag.ID | (iret ? Flag.RF : 0);
    const pe = (this.cr0 & Cr0.PE) !== 0;
    const iopl = (this.flagsRaw >> 12) & 3;
    if (!pe || this.cpl === 0) mask |= Flag.IOPL;
    if (!pe || this.cpl <= iopl) mask |= IF;
    if (this.flagsRaw & VM) mask &= ~Flag.IOPL;
    const old = this.flagsRaw;
    this.flagsRaw = (this.flagsRaw & ~mask) | (value & mask) | 2;
    this.eventCheck = true;
    // EFLAGS.AC switches alignment checking (readNeed/writeNeed).
    if ((old ^ this.flagsRaw) & Flag.AC) this.modeChanged();
  }

  // ---------------------------------------------------------------------
  // Control transfers across segments

  private farJump(selector: number, offset: number): void {
    if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) {
      this.loadSegment(CS, selector);
      this.eip = offset;
      this.modeChanged();
      return;
    }
    const cpl = this.checkCodeTarget(selector, false);
    if (cpl < 0) {
      this.systemTarget(selector, false, false);
      return;
    }
    this.checkCodeLimit(offset);
    this.loadCodeSegment(selector, cpl);
    this.eip = offset;
  }

  private farCall(selector: number, offset: number, o16: boolean): void {
    const esp = this.regs[ESP];
    try {
      this.farCallUnchecked(selector, offset, o16);
    } catch (error) {
      this.regs[ESP] = esp;
      throw error;
    }
  }

  private farCallUnchecked(selector: number, offset: number, o16: boolean): void {
    const oldCs = this.segSel[CS];
    const oldEip = this.eip;
    if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) {
      this.push(o16, oldCs);
      this.push(o16, oldEip);
      this.loadSegment(CS, selector);
      this.eip = offset;
      this.modeChanged();
      return;
    }
    const cpl = this.checkCodeTarget(selector, false);
    if (cpl < 0) {
      this.systemTarget(selector, true, o16);
      return;
    }
    this.checkCodeLimit(offset);
    const low = this.descLow;
    const high = this.descHigh;
    this.push(o16, oldCs);
    this.push(o16, oldEip);
    this.descLow = low;
    this.descHigh = high;
    this.loadCodeSegment(selector, cpl);
    this.eip = offset;
  }

  /**
   * A far jump/call to a system descriptor (loaded in descLow/descHigh):
   * a call gate, a task gate or a TSS (SDM vol. 2 JMP/CALL, vol. 3A 5.8.3, 7.3).
   */
  private systemTarget(selector: number, call: boolean, o16: boolean): void {
    const attr = this.descriptorAttr();
    const type = attr & 0x1f;
    const dpl = (attr >> 5) & 3;
    const error = selector & 0xfffc;
    switch (type) {
      case 4:
      case 12:
      case 5:
      case 1:
      case 9:
        if (dpl < this.cpl || dpl < (selector & 3)) this.fault(Vector.GP, error);
        if (!(attr & 0x80)) this.fault(Vector.NP, error);
        break;
      default:
        this.fault(Vector.GP, error);
    }
    if (type === 4 || type === 12) {
      this.callGate(selector, call, o16);
      return;
    }
    let tssSelector = selector;
    if (type === 5) {
      // Task gate: the TSS selector is in the gate; it must be an available TSS in the GDT.
      tssSelector = this.descLow >>> 16;
      if (tssSelector & 4) this.fault(Vector.GP, tssSelector & 0xfffc);
      this.readDescriptor(tssSelector, Vector.GP);
      const tssType = this.descriptorAttr() & 0x1f;
      if (tssType !== 9 && tssType !== 1) this.fault(Vector.GP, tssSelector & 0xfffc);
      if (!(this.descriptorAttr() & 0x80)) this.fault(Vector.NP, tssSelector & 0xfffc);
    }
    this.taskSwitch(tssSelector, call ? TASK_CALL : TASK_JUMP, false, 0);
  }

  /** JMP/CALL through a call gate (SDM vol. 3A 5.8.4-5.8.6). */
  private callGate(gateSelector: number, call: boolean, o16: boolean): void {
    const gateLow = this.descLow;
    const gateHigh = this.descHigh;
    const gate32 = (gateHigh & 0x800) !== 0;
    const selector = gateLow >>> 16;
    const offset = gate32 ? (gateLow & 0xffff) | (gateHigh & 0xffff0000) : gateLow & 0xffff;
    void gateSelector;
    if ((selector & 0xfffc) === 0) this.fault(Vector.GP, 0);
    this.readDescriptor(selector, Vector.GP);
    const attr = this.descriptorAttr();
    const dpl = (attr >> 5) & 3;
    const conforming = (attr & 4) !== 0;
    if (!(attr & 0x10) || !(attr & 8) || dpl > this.cpl) this.fault(Vector.GP, selector & 0xfffc);
    if (!call && !conforming && dpl !== this.cpl) this.fault(Vector.GP, selector & 0xfffc);
    if (!(attr & 0x80)) this.fault(Vector.NP, selector & 0xfffc);
    if (offset >>> 0 > this.descriptorLimit() >>> 0) this.fault(Vector.GP, 0);
    const codeLow = this.descLow;
    const codeHigh = this.descHigh;
    if (!call) {
      this.loadCodeSegment(selector, this.cpl);
      this.eip = offset;
      return;
    }
    const bytes = gate32 ? 4 : 2;
    void o16;
    const oldCs = this.segSel[CS];
    const oldEip = this.eip;
    if (!conforming && dpl < this.cpl) {
      // More privileged: new stack from the TSS, parameters copied across (SDM vol. 3A 5.8.5).
      const { esp: newEsp, ss: newSs } = this.innerStack(dpl, 0);
      this.checkStackSegment(newSs, dpl, Vector.TS);
      const ssBase = this.descriptorBase();
      const ssLimit = this.descriptorLimit();
      const ssAttr = this.descriptorAttr();
      const ss32 = (ssAttr & 0x4000) !== 0;
      const user = dpl === 3;
      const count = gateHigh & 0x1f;
      const oldSs = this.segSel[SS];
      const oldEsp = this.regs[ESP];
      let esp = newEsp;
      const pushValue = (value: number) => {
        esp = ss32 ? (esp - bytes) | 0 : (esp - bytes) & 0xffff;
        this.writeAs((ssBase + esp) | 0, bytes, value, user);
      };
      pushValue(oldSs);
      pushValue(oldEsp);
      for (let i = count - 1; i >= 0; i--)
        pushValue(this.stackRead(bytes === 4 ? 2 : 1, i * bytes));
      pushValue(oldCs);
      pushValue(oldEip);
      this.markAccessed(newSs);
      this.setSegmentCache(SS, newSs, ssBase, ssLimit, ssAttr);
      this.regs[ESP] = ss32 ? esp : (this.regs[ESP] & ~0xffff) | esp;
      this.descLow = codeLow;
      this.descHigh = codeHigh;
      this.loadCodeSegment(selector, dpl);
      this.eip = offset;
      return;
    }
    if (bytes === 4) {
      this.push32(oldCs);
      this.push32(oldEip);
    } else {
      this.push16(oldCs);
      this.push16(oldEip);
    }
    this.descLow = codeLow;
    this.descHigh = codeHigh;
    this.loadCodeSegment(selector, this.cpl);
    this.eip = offset;
  }

  /** SS:ESP for privilege `dpl` from the current TSS (SDM vol. 3A 7.2.1). */
  private innerStack(dpl: number, ext: number): { esp: number; ss: number } {
    const trType = this.segAttr[TR] & 0xf;
    const tss32 = trType === 9 || trType === 11;
    const tssOffset = tss32 ? 4 + 8 * dpl : 2 + 4 * dpl;
    if (tssOffset + (tss32 ? 5 : 3) > this.segLimit[TR] >>> 0) {
      this.fault(Vector.TS, (this.segSel[TR] & 0xfffc) + ext);
    }
    const tssBase = this.segBase[TR];
    if (tss32) {
      return {
        esp: this.systemRead32((tssBase + tssOffset) | 0),
        ss: this.systemRead16((tssBase + tssOffset + 4) | 0),
      };
    }
    return {
      esp: this.systemRead16((tssBase + tssOffset) | 0),
      ss: this.systemRead16((tssBase + tssOffset + 2) | 0),
    };
  }

  /**
   * Hardware task switch to the TSS `selector` (SDM vol. 3A 7.3): saves the
   * current task in its TSS, loads the new one, and handles busy bits, NT
   * and the back-link per kind (JMP, CALL/INT, IRET). Each TSS is read or
   * written in its own format: 32-bit (types 9/11, figure 7-2) or the
   * 80286 16-bit one (types 1/3, SDM vol. 3A 7.6, figure 7-11).
   */
  private taskSwitch(selector: number, kind: number, hasCode: boolean, code: number): void {
    this.readDescriptor(selector, Vector.GP);
    const attr = this.descriptorAttr();
    const new32 = (attr & 8) !== 0;
    const newBase = this.descriptorBase();
    const newLimit = this.descriptorLimit();
    // A 32-bit TSS is 104 bytes (last byte 0x67), a 16-bit one 44 (last byte
    // 0x2b): a shorter limit is #TS(new TSS) before anything changes (SDM
    // vol. 3A 7.3 step 8, table 7-1; the table's "less than 2CH" counts bytes).
    if (newLimit >>> 0 < (new32 ? 0x67 : 0x2b)) this.fault(Vector.TS, selector & 0xfffc);
    const newLow = this.descLow;
    const newHigh = this.descHigh;
    // Make sure both TSSs are writable/readable before anything changes.
    const oldBase = this.segBase[TR];
    const oldSelector = this.segSel[TR];
    const oldType = this.segAttr[TR] & 0xf;
    const old32 = oldType === 9 || oldType === 11;
    this.walk(oldBase, ACCESS_WRITE, false, true);
    this.walk((oldBase + (old32 ? 0x67 : 0x2b)) | 0, ACCESS_WRITE, false, true);
    this.walk(newBase, ACCESS_READ, false, true);
    this.walk((newBase + (new32 ? 0x67 : 0x2b)) | 0, ACCESS_READ, false, true);
    // Save the outgoing task.
    let flags = this.computeFlags();
    if (kind === TASK_IRET) flags &= ~Flag.NT;
    if (old32) {
      this.systemWrite32((oldBase + 0x20) | 0, this.eip);
      this.systemWrite32((oldBase + 0x24) | 0, flags);
      for (let r = 0; r < 8; r++) this.systemWrite32((oldBase + 0x28 + 4 * r) | 0, this.regs[r]);
      for (let seg = 0; seg < 6; seg++) {
        this.systemWrite32((oldBase + 0x48 + 4 * seg) | 0, this.segSel[seg]);
      }
    } else {
      // 16-bit TSS: IP at 0x0e, FLAGS at 0x10, AX..DI at 0x12-0x20, ES CS SS DS
      // at 0x22-0x28; the upper halves of EIP, EFLAGS and the registers, and
      // FS/GS, are lost (SDM vol. 3A 7.6).
      this.systemWrite16((oldBase + 0x0e) | 0, this.eip);
      this.systemWrite16((oldBase + 0x10) | 0, flags);
      for (let r = 0; r < 8; r++) this.systemWrite16((oldBase + 0x12 + 2 * r) | 0, this.regs[r]);
      for (let seg = 0; seg < 4; seg++) {
        this.systemWrite16((oldBase + 0x22 + 2 * seg) | 0, this.segSel[seg]);
      }
    }
    if (kind === TASK_JUMP || kind === TASK_IRET) this.setTssBusy(oldSelector, false);
    // Read the incoming task.
    const regs = this.scratchRegs;
    const selectors = this.scratchSelectors;
    let cr3 = this.cr3;
    let eip: number;
    let newFlags: number;
    let ldt: number;
    if (new32) {
      cr3 = this.systemRead32((newBase + 0x1c) | 0);
      eip = this.systemRead32((newBase + 0x20) | 0);
      newFlags = this.systemRead32((newBase + 0x24) | 0);
      for (let r = 0; r < 8; r++) regs[r] = this.systemRead32((newBase + 0x28 + 4 * r) | 0);
      for (let seg = 0; seg < 6; seg++) {
        selectors[seg] = this.systemRead16((newBase + 0x48 + 4 * seg) | 0);
      }
      ldt = this.systemRead16((newBase + 0x60) | 0);
    } else {
      // No CR3 in a 16-bit TSS: the page tables stay those of the previous
      // task; EIP and EFLAGS get zero upper halves; FS and GS are null
      // (SDM vol. 3A 7.6). The upper halves of the general registers are
      // "modified and not maintained" (ibid.): they are kept here, as
      // qemu-system-i386 does.
      eip = this.systemRead16((newBase + 0x0e) | 0);
      newFlags = this.systemRead16((newBase + 0x10) | 0);
      for (let r = 0; r < 8; r++) {
        regs[r] = (this.regs[r] & ~0xffff) | this.systemRead16((newBase + 0x12 + 2 * r) | 0);
      }
      for (let seg = 0; seg < 4; seg++) {
        selectors[seg] = this.systemRead16((newBase + 0x22 + 2 * seg) | 0);
      }
      selectors[4] = 0;
      selectors[5] = 0;
      ldt = this.systemRead16((newBase + 0x2a) | 0);
    }
    if (kind === TASK_CALL) {
      // The back-link; in a 32-bit TSS its upper half is reserved (zero).
      if (new32) this.systemWrite32(newBase, oldSelector);
      else this.systemWrite16(newBase, oldSelector);
      newFlags |= Flag.NT;
    }
    if (kind !== TASK_IRET) this.setTssBusy(selector, true);
    this.descLow = newLow;
    this.descHigh = newHigh | (kind !== TASK_IRET ? 0x200 : 0);
    this.setSegmentCache(TR, selector, newBase, newLimit, this.descriptorAttr() | 2);
    this.cr0 |= Cr0.TS;
    if (this.cr0 & Cr0.PG && cr3 !== this.cr3) {
      this.cr3 = cr3;
      this.flushTlb(false);
    } else {
      this.cr3 = cr3;
    }
    this.eip = eip;
    for (let r = 0; r < 8; r++) this.regs[r] = regs[r];
    this.flagsRaw = (newFlags & 0x3f7fd5) | 2;
    this.lazy = 0;
    this.eventCheck = true;
    // Segment loads happen in the new task: faults are reported there (SDM 7.3 step 12).
    if (this.flagsRaw & VM) {
      for (let seg = 0; seg < 6; seg++) {
        this.setSegmentCache(
          seg,
          selectors[seg],
          selectors[seg] << 4,
          0xffff,
          seg === CS ? 0xfb : 0xf3,
        );
      }
      this.cpl = 3;
      this.modeChanged();
    } else {
      this.loadLdt(ldt);
      const cs = selectors[CS];
      if ((cs & 0xfffc) === 0) this.fault(Vector.TS, cs & 0xfffc);
      this.readDescriptor(cs, Vector.TS);
      const csAttr = this.descriptorAttr();
      if (!(csAttr & 0x10) || !(csAttr & 8)) this.fault(Vector.TS, cs & 0xfffc);
      if (!(csAttr & 0x80)) this.fault(Vector.NP, cs & 0xfffc);
      this.loadCodeSegment(cs, cs & 3);
      this.cpl = cs & 3;
      this.modeChanged();
      this.loadSegment(SS, selectors[SS]);
      for (const seg of [ES, DS, FS, GS]) this.loadSegment(seg, selectors[seg]);
    }
    if (hasCode) this.push(!(attr & 8), code);
  }

  private setTssBusy(selector: number, busy: boolean): void {
    if ((selector & 0xfffc) === 0) return;
    const address = (this.gdtrBase + (selector & 0xfff8) + 5) | 0;
    const access = this.physRead8(this.walk(address, ACCESS_READ, false, true));
    this.systemWrite8(address, busy ? access | 2 : access & ~2);
  }

  private loadLdt(selector: number): void {
    if ((selector & 0xfffc) === 0) {
      this.setSegmentCache(LDTR, selector, 0, 0, 0);
      return;
    }
    if (selector & 4) this.fault(Vector.TS, selector & 0xfffc);
    this.readDescriptor(selector, Vector.TS);
    const attr = this.descriptorAttr();
    if ((attr & 0x1f) !== 2) this.fault(Vector.TS, selector & 0xfffc);
    if (!(attr & 0x80)) this.fault(Vector.TS, selector & 0xfffc);
    this.setSegmentCache(LDTR, selector, this.descriptorBase(), this.descriptorLimit(), attr);
  }

  private checkCodeLimit(offset: number): void {
    const limit = this.descriptorLimit();
    if (offset >>> 0 > limit >>> 0) this.fault(Vector.GP, 0);
  }

  private farReturn(o16: boolean, release: number): void {
    const s = o16 ? 1 : 2;
    const step = o16 ? 2 : 4;
    const offset = this.stackRead(s, 0);
    const selector = this.stackRead(1, step);
    if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) {
      this.loadSegment(CS, selector);
      this.eip = offset;
      this.adjustEsp(2 * step + release);
      this.modeChanged();
      return;
    }
    const rpl = this.checkCodeTarget(selector, true);
    if (rpl < 0) this.fault(Vector.GP, selector & 0xfffc);
    const low = this.descLow;
    const high = this.descHigh;
    if (rpl === this.cpl) {
      this.loadCodeSegment(selector, rpl);
      this.eip = offset;
      this.adjustEsp(2 * step + release);
      return;
    }
    // Return to an outer level: SS:ESP follow CS:EIP and the released bytes.
    const newEsp = this.stackRead(s, 2 * step + release);
    const newSs = this.stackRead(1, 3 * step + release);
    this.checkStackSegment(newSs, rpl, Vector.GP);
    const ssLow = this.descLow;
    const ssHigh = this.descHigh;
    this.descLow = low;
    this.descHigh = high;
    this.loadCodeSegment(selector, rpl);
    this.eip = offset;
    this.descLow = ssLow;
    this.descHigh = ssHigh;
    this.loadStackSegment(newSs);
    this.regs[ESP] = this.stack32
      ? (newEsp + release) | 0
      : (this.regs[ESP] & ~0xffff) | ((newEsp + release) & 0xffff);
    this.invalidateDataSegments();
  }

  /** Validates SS for a privilege change; leaves its descriptor loaded (SDM vol. 3A 6.12.1). */
  private checkStackSegment(selector: number, dpl: number, vector: number): void {
    if ((selector & 0xfffc) === 0) this.fault(vector, 0);
    this.readDescriptor(selector, vector);
    const attr = this.descriptorAttr();
    if (
      (selector & 3) !== dpl ||
      ((attr >> 5) & 3) !== dpl ||
      !(attr & 0x10) ||
      attr & 8 ||
      !(attr & 2)
    ) {
      this.fault(vector, selector & 0xfffc);
    }
    if (!(attr & 0x80)) this.fault(Vector.SS, selector & 0xfffc);
  }

  private loadStackSegment(selector: number): void {
    this.markAccessed(selector);
    this.setSegmentCache(
      SS,
      selector,
      this.descriptorBase(),
      this.descriptorLimit(),
      this.descriptorAttr(),
    );
    this.modeChanged();
  }

  /** After a return to an outer level, data segments the new CPL may not use become null (SDM vol. 2 RET). */
  private invalidateDataSegments(): void {
    for (const seg of [ES, DS, FS, GS]) {
      const attr = this.segAttr[seg];
      const dpl = (attr >> 5) & 3;
      const conformingCode = (attr & 0x1c) === 0x1c;
      if ((attr & 0x10 && !conformingCode && dpl < this.cpl) || (this.segSel[seg] & 0xfffc) === 0) {
        this.setSegmentCache(seg, 0, 0, 0, 0);
      }
    }
  }

  private iret(o16: boolean): void {
    const s = o16 ? 1 : 2;
    const step = o16 ? 2 : 4;
    if (!(this.cr0 & Cr0.PE)) {
      const offset = this.stackRead(s, 0);
      const selector = this.stackRead(1, step);
      const flags = this.stackRead(s, 2 * step);
      this.loadSegment(CS, selector);
      this.eip = offset;
      this.adjustEsp(3 * step);
      this.writeFlags(o16 ? (this.flagsRaw & ~0xffff) | flags : flags, o16, true);
      this.modeChanged();
      return;
    }
    if (this.flagsRaw & VM) {
      if ((this.flagsRaw & Flag.IOPL) !== Flag.IOPL) this.fault(Vector.GP, 0);
      const offset = this.stackRead(s, 0);
      const selector = this.stackRead(1, step);
      const flags = this.stackRead(s, 2 * step);
      this.loadSegment(CS, selector);
      this.eip = offset;
      this.adjustEsp(3 * step);
      this.writeFlags(o16 ? (this.flagsRaw & ~0xffff) | flags : flags, o16, true);
      return;
    }
    if (this.flagsRaw & Flag.NT) {
      this.taskReturn();
      return;
    }
    const offset = this.stackRead(s, 0);
    const selector = this.stackRead(1, step);
    const flags = o16 ? this.stackRead(1, 2 * step) : this.stackRead(2, 2 * step);
    if (!o16 && flags & VM && this.cpl === 0) {
      this.iretToV86(offset, selector, flags);
      return;
    }
    const rpl = this.checkCodeTarget(selector, true);
    if (rpl < 0) this.fault(Vector.GP, selector & 0xfffc);
    this.checkCodeLimit(offset);
    const low = this.descLow;
    const high = this.descHigh;
    const oldCpl = this.cpl;
    if (rpl === oldCpl) {
      this.loadCodeSegment(selector, rpl);
      this.eip = offset;
      this.adjustEsp(3 * step);
      this.writeFlagsAs(flags, o16, oldCpl);
      return;
    }
    const newEsp = this.stackRead(s, 3 * step);
    const newSs = this.stackRead(1, 4 * step);
    this.checkStackSegment(newSs, rpl, Vector.GP);
    const ssLow = this.descLow;
    const ssHigh = this.descHigh;
    this.descLow = low;
    this.descHigh = high;
    this.loadCodeSegment(selector, rpl);
    this.eip = offset;
    this.descLow = ssLow;
    this.descHigh = ssHigh;
    this.loadStackSegment(newSs);
    this.setReg(this.stack32 ? 2 : 1, ESP, newEsp);
    this.writeFlagsAs(flags, o16, oldCpl);
    this.invalidateDataSegments();
  }

  /**
   * IRET with NT=1 returns to the task in the TSS back-link (SDM vol. 2
   * IRET "TASK-RETURN"), a busy 32-bit (type 11) or 16-bit (type 3) TSS.
   */
  private taskReturn(): void {
    const link = this.systemRead16(this.segBase[TR]);
    if (link & 4) this.fault(Vector.TS, link & 0xfffc);
    if ((link & 0xfffc) === 0 || (link & 0xfff8) + 7 > this.gdtrLimit) {
      this.fault(Vector.TS, link & 0xfffc);
    }
    this.readDescriptor(link, Vector.TS);
    const type = this.descriptorAttr() & 0x1f;
    if (type !== 11 && type !== 3) this.fault(Vector.TS, link & 0xfffc);
    if (!(this.descriptorAttr() & 0x80)) this.fault(Vector.NP, link & 0xfffc);
    this.taskSwitch(link, TASK_IRET, false, 0);
  }

  /** IRET's EFLAGS update uses the privilege the IRET started at. */
  private writeFlagsAs(flags: number, o16: boolean, cpl: number): void {
    const saved = this.cpl;
    this.cpl = cpl;
    this.writeFlags(o16 ? (this.flagsRaw & ~0xffff) | (flags & 0xffff) : flags, o16, true);
    this.cpl = saved;
    this.modeChanged();
  }

  private iretToV86(offset: number, selector: number, flags: number): void {
    const esp = this.stackRead(2, 12);
    const ss = this.stackRead(2, 16) & 0xffff;
    const es = this.stackRead(2, 20) & 0xffff;
    const ds = this.stackRead(2, 24) & 0xffff;
    const fs = this.stackRead(2, 28) & 0xffff;
    const gs = this.stackRead(2, 32) & 0xffff;
    this.materializeFlags();
    this.flagsRaw = (flags & 0x3f7fd5) | 2 | VM;
    this.cpl = 3;
    const segs = [es, selector & 0xffff, ss, ds, fs, gs];
    for (let seg = 0; seg < 6; seg++) {
      this.segSel[seg] = segs[seg];
      this.segBase[seg] = segs[seg] << 4;
      this.segLimit[seg] = 0xffff;
      this.segAttr[seg] = seg === CS ? 0xfb : 0xf3;
      this.updateSegCheck(seg);
    }
    this.regs[ESP] = esp;
    this.eip = offset & 0xffff;
    this.modeChanged();
    this.eventCheck = true;
  }

  private sysenter(): void {
    // SDM vol. 2 SYSENTER.
    if (!(this.cr0 & Cr0.PE) || (this.sysenterCs & 0xfffc) === 0) this.fault(Vector.GP, 0);
    this.materializeFlags();
    this.flagsRaw &= ~(VM | IF | Flag.RF);
    const cs = this.sysenterCs & 0xfffc;
    this.setSegmentCache(CS, cs, 0, -1, 0xc09b);
    this.setSegmentCache(SS, cs + 8, 0, -1, 0xc093);
    this.cpl = 0;
    this.regs[ESP] = this.sysenterEsp;
    this.eip = this.sysenterEip;
    this.modeChanged();
  }

  private sysexit(): void {
    if (
      !(this.cr0 & Cr0.PE) ||
      this.flagsRaw & VM ||
      this.cpl !== 0 ||
      (this.sysenterCs & 0xfffc) === 0
    ) {
      this.fault(Vector.GP, 0);
    }
    const cs = this.sysenterCs & 0xfffc;
    this.setSegmentCache(CS, (cs + 16) | 3, 0, -1, 0xc0fb);
    this.setSegmentCache(SS, (cs + 24) | 3, 0, -1, 0xc0f3);
    this.cpl = 3;
    this.regs[ESP] = this.regs[ECX];
    this.eip = this.regs[EDX];
    this.modeChanged();
  }

  // ---------------------------------------------------------------------
  // Interrupts and exceptions

  private softwareInterrupt(vector: number): void {
    this.deliverEvent(vector, EVENT_SOFTWARE, false, 0);
  }

  /**
   * Delivers an event through the IVT (real mode) or the IDT (SDM vol. 3A
   * 6.12, 20.1.4). EIP must be the return address (the faulting instruction
   * for faults, the next one for traps and interrupts).
   */
  deliverEvent(vector: number, kind: number, hasCode: boolean, code: number): void {
    this.counters.events++;
    this.materializeFlags();
    const ext = kind === EVENT_SOFTWARE ? 0 : 1;
    if (!(this.cr0 & Cr0.PE)) {
      if (vector * 4 + 3 > this.idtrLimit) this.fault(Vector.GP, 0);
      const entry = this.readLin32((this.idtrBase + vector * 4) | 0);
      const esp = this.regs[ESP];
      try {
        this.push16(this.flagsRaw);
        this.push16(this.segSel[CS]);
        this.push16(this.eip);
      } catch (error) {
        this.regs[ESP] = esp;
        throw error;
      }
      this.loadSegment(CS, entry >>> 16);
      this.eip = entry & 0xffff;
      this.flagsRaw &= ~(IF | TF | Flag.AC | Flag.RF);
      this.modeChanged();
      return;
    }
    const gateError = vector * 8 + 2 + ext;
    if (vector * 8 + 7 > this.idtrLimit) this.fault(Vector.GP, gateError);
    const gateLow = this.systemRead32((this.idtrBase + vector * 8) | 0);
    const gateHigh = this.systemRead32((this.idtrBase + vector * 8 + 4) | 0);
    const gateType = (gateHigh >> 8) & 0x1f;
    const gateDpl = (gateHigh >> 13) & 3;
    if (gateType === 5) {
      if (kind === EVENT_SOFTWARE && gateDpl < this.cpl) this.fault(Vector.GP, gateError);
      if (!(gateHigh & 0x8000)) this.fault(Vector.NP, gateError);
      const tssSelector = gateLow >>> 16;
      if (tssSelector & 4) this.fault(Vector.TS, (tssSelector & 0xfffc) + ext);
      this.readDescriptor(tssSelector, Vector.TS);
      const tssType = this.descriptorAttr() & 0x1f;
      if (tssType !== 9 && tssType !== 1) this.fault(Vector.TS, (tssSelector & 0xfffc) + ext);
      if (!(this.descriptorAttr() & 0x80)) this.fault(Vector.NP, (tssSelector & 0xfffc) + ext);
      this.taskSwitch(tssSelector, TASK_CALL, hasCode, code);
      return;
    }
    if (gateType !== 6 && gateType !== 7 && gateType !== 14 && gateType !== 15) {
      this.fault(Vector.GP, gateError);
    }
    if (kind === EVENT_SOFTWARE && gateDpl < this.cpl) this.fault(Vector.GP, gateError);
    if (!(gateHigh & 0x8000)) this.fault(Vector.NP, gateError);
    const gate32 = (gateType & 8) !== 0;
    const selector = gateLow >>> 16;
    const offset = gate32 ? (gateLow & 0xffff) | (gateHigh & 0xffff0000) : gateLow & 0xffff;
    if ((selector & 0xfffc) === 0) this.fault(Vector.GP, ext);
    this.readDescriptor(selector, Vector.GP);
    const attr = this.descriptorAttr();
    const dpl = (attr >> 5) & 3;
    if (!(attr & 0x10) || !(attr & 8) || dpl > this.cpl)
      this.fault(Vector.GP, (selector & 0xfffc) + ext);
    if (!(attr & 0x80)) this.fault(Vector.NP, (selector & 0xfffc) + ext);
    if (offset >>> 0 > this.descriptorLimit() >>> 0) this.fault(Vector.GP, ext);
    const codeLow = this.descLow;
    const codeHigh = this.descHigh;
    const conforming = (attr & 4) !== 0;
    const v86 = (this.flagsRaw & VM) !== 0;
    const oldFlags = this.flagsRaw;
    const oldCs = this.segSel[CS];
    const oldEip = this.eip;
    const oldSs = this.segSel[SS];
    const oldEsp = this.regs[ESP];
    const newCpl = conforming ? this.cpl : dpl;
    const bytes = gate32 ? 4 : 2;
    if (v86 && newCpl !== 0) this.fault(Vector.GP, (selector & 0xfffc) + ext);
    if (newCpl < this.cpl) {
      // Inner-level stack from the TSS (SDM vol. 3A 7.2.1: ESPn at 4+8n, SSn at 8+8n).
      const trType = this.segAttr[TR] & 0xf;
      const tss32 = trType === 9 || trType === 11;
      const tssOffset = tss32 ? 4 + 8 * newCpl : 2 + 4 * newCpl;
      if (tssOffset + (tss32 ? 5 : 3) > this.segLimit[TR] >>> 0) {
        this.fault(Vector.TS, (this.segSel[TR] & 0xfffc) + ext);
      }
      const tssBase = this.segBase[TR];
      let newEsp: number;
      let newSs: number;
      if (tss32) {
        newEsp = this.systemRead32((tssBase + tssOffset) | 0);
        newSs = this.systemRead16((tssBase + tssOffset + 4) | 0);
      } else {
        newEsp = this.systemRead16((tssBase + tssOffset) | 0);
        newSs = this.systemRead16((tssBase + tssOffset + 2) | 0);
      }
      if ((newSs & 0xfffc) === 0) this.fault(Vector.TS, ext);
      this.checkStackSegment(newSs, newCpl, Vector.TS);
      const ssBase = this.descriptorBase();
      const ssAttr = this.descriptorAttr();
      const ssLimit = this.descriptorLimit();
      const ss32 = (ssAttr & 0x4000) !== 0;
      const user = newCpl === 3;
      let esp = newEsp;
      const pushValue = (value: number) => {
        esp = ss32 ? (esp - bytes) | 0 : (esp - bytes) & 0xffff;
        this.writeAs((ssBase + esp) | 0, bytes, value, user);
      };
      void ssLimit;
      if (v86) {
        pushValue(this.segSel[GS]);
        pushValue(this.segSel[FS]);
        pushValue(this.segSel[DS]);
        pushValue(this.segSel[ES]);
      }
      pushValue(oldSs);
      pushValue(oldEsp);
      pushValue(oldFlags);
      pushValue(oldCs);
      pushValue(oldEip);
      if (hasCode) pushValue(code);
      const ssSelector = newSs;
      this.markAccessed(ssSelector);
      this.setSegmentCache(SS, ssSelector, ssBase, ssLimit, ssAttr);
      if (v86) {
        for (const seg of [ES, DS, FS, GS]) this.setSegmentCache(seg, 0, 0, 0, 0);
      }
      this.regs[ESP] = ss32 ? esp : (this.regs[ESP] & ~0xffff) | esp;
    } else if (newCpl === this.cpl && !v86) {
      let esp = oldEsp;
      const ssBase = this.segBase[SS];
      const ss32 = this.stack32;
      const user = this.cpl === 3;
      const pushValue = (value: number) => {
        esp = ss32 ? (esp - bytes) | 0 : (esp - bytes) & 0xffff;
        if (this.segCheck[SS]) this.checkSegment(SS, esp, bytes, true);
        this.writeAs((ssBase + esp) | 0, bytes, value, user);
      };
      pushValue(oldFlags);
      pushValue(oldCs);
      pushValue(oldEip);
      if (hasCode) pushValue(code);
      this.regs[ESP] = ss32 ? esp : (oldEsp & ~0xffff) | esp;
    } else {
      this.fault(Vector.GP, (selector & 0xfffc) + ext);
    }
    this.descLow = codeLow;
    this.descHigh = codeHigh;
    this.flagsRaw &= ~(TF | Flag.NT | VM | Flag.RF);
    if (!(gateType & 1)) this.flagsRaw &= ~IF;
    this.loadCodeSegment(selector, newCpl);
    this.eip = offset;
  }

  /** A write with an explicit privilege (event delivery pushes at the new CPL). */
  private writeAs(linear: number, bytes: number, value: number, user: boolean): void {
    const need = user ? T_USER_WRITE : T_SUP_WRITE;
    const vpn = linear >>> 12;
    if ((this.tlbInfo[vpn] & (need | T_MMIO)) === need && (linear & 0xfff) <= 4096 - bytes) {
      const phys = this.tlbPhys[vpn] | (linear & 0xfff);
      if (this.codePage[phys >>> 12]) this.invalidatePhysPage(phys >>> 12);
      if (bytes === 4) this.view.setInt32(phys, value, true);
      else this.view.setUint16(phys, value, true);
      return;
    }
    for (let i = 0; i < bytes; i++) {
      this.physWrite8(this.walk((linear + i) | 0, ACCESS_WRITE, user, true), value >> (8 * i));
    }
  }

  // ---------------------------------------------------------------------
  // Group 5, 6, 7, 15

  private group5(slot: number, reg: number, info: number, o16: boolean, size: number): void {
    switch (reg) {
      case 0:
      case 1:
        this.writeRmBack(slot, size, this.incdec(size, this.readRmForWrite(slot, size), reg === 1));
        return;
      case 2: {
        const target = this.readRm(slot, size);
        if (this.segCheck[CS] & SC_LIMIT) this.checkNearTarget(target);
        this.push(o16, this.eip);
        this.eip = target;
        return;
      }
      case 4: {
        const target = this.readRm(slot, size);
        if (this.segCheck[CS] & SC_LIMIT) this.checkNearTarget(target);
        this.eip = target;
        return;
      }
      case 3:
      case 5: {
        if (!(info & Info.MEM)) this.fault(Vector.UD, 0);
        const address = this.ea(slot, size, false);
        const offset = this.readLin(size, address);
        const selector = this.readLin16((address + (o16 ? 2 : 4)) | 0);
        if (reg === 3) this.farCall(selector, offset, o16);
        else this.farJump(selector, offset);
        return;
      }
      case 6:
        this.push(o16, this.readRm(slot, size));
        return;
      default:
        this.fault(Vector.UD, 0);
    }
  }

  private protectedOnly(): void {
    if (!(this.cr0 & Cr0.PE) || this.flagsRaw & VM) this.fault(Vector.UD, 0);
  }

  private group6(slot: number, reg: number, info: number, o16: boolean): void {
    this.protectedOnly();
    switch (reg) {
      case 0:
      case 1: {
        const value = this.segSel[reg === 0 ? LDTR : TR];
        if (info & Info.MEM) this.writeLin16(this.ea(slot, 1, true), value);
        else this.setReg(o16 ? 1 : 2, this.decoded.modrm[slot] & 7, value);
        return;
      }
      case 2: {
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        const selector = this.readRm(slot, 1);
        if ((selector & 0xfffc) === 0) {
          this.setSegmentCache(LDTR, selector, 0, 0, 0);
          return;
        }
        if (selector & 4) this.fault(Vector.GP, selector & 0xfffc);
        this.readDescriptor(selector, Vector.GP);
        const attr = this.descriptorAttr();
        if ((attr & 0x1f) !== 2) this.fault(Vector.GP, selector & 0xfffc);
        if (!(attr & 0x80)) this.fault(Vector.NP, selector & 0xfffc);
        this.setSegmentCache(LDTR, selector, this.descriptorBase(), this.descriptorLimit(), attr);
        return;
      }
      case 3: {
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        const selector = this.readRm(slot, 1);
        if ((selector & 0xfffc) === 0 || selector & 4) this.fault(Vector.GP, selector & 0xfffc);
        this.readDescriptor(selector, Vector.GP);
        const attr = this.descriptorAttr();
        const type = attr & 0x1f;
        if (type !== 9 && type !== 1) this.fault(Vector.GP, selector & 0xfffc);
        if (!(attr & 0x80)) this.fault(Vector.NP, selector & 0xfffc);
        // Mark the TSS busy (SDM vol. 2 LTR).
        this.systemWrite8(
          (this.gdtrBase + (selector & 0xfff8) + 5) | 0,
          ((this.descHigh >>> 8) & 0xff) | 2,
        );
        this.setSegmentCache(TR, selector, this.descriptorBase(), this.descriptorLimit(), attr | 2);
        return;
      }
      case 4:
      case 5: {
        const selector = this.readRm(slot, 1);
        this.materializeFlags();
        this.flagsRaw &= ~ZF;
        if (!this.descriptorVisible(selector)) return;
        const attr = this.descriptorAttr();
        if (!(attr & 0x10)) return;
        const type = attr & 0xf;
        const dpl = (attr >> 5) & 3;
        if (!(type & 8 && type & 4) && (dpl < this.cpl || dpl < (selector & 3))) return;
        const ok = reg === 4 ? !(type & 8) || (type & 2) !== 0 : !(type & 8) && (type & 2) !== 0;
        if (ok) this.flagsRaw |= ZF;
        return;
      }
      default:
        this.fault(Vector.UD, 0);
    }
  }

  /** Reads a descriptor for LAR/LSL/VERR/VERW without faulting on a bad selector. */
  private descriptorVisible(selector: number): boolean {
    if ((selector & 0xfffc) === 0) return false;
    const index = selector & 0xfff8;
    const limit = selector & 4 ? this.segLimit[LDTR] >>> 0 : this.gdtrLimit;
    if (selector & 4 && this.segCheck[LDTR] & SC_UNUSABLE) return false;
    if (index + 7 > limit) return false;
    this.readDescriptor(selector, Vector.GP);
    return true;
  }

  private larLsl(slot: number, lsl: boolean, size: number): void {
    this.protectedOnly();
    const selector = this.readRm(slot, 1);
    this.materializeFlags();
    this.flagsRaw &= ~ZF;
    if (!this.descriptorVisible(selector)) return;
    const attr = this.descriptorAttr();
    const type = attr & 0x1f;
    const dpl = (attr >> 5) & 3;
    if (attr & 0x10) {
      if (!((type & 0xc) === 0xc) && (dpl < this.cpl || dpl < (selector & 3))) return;
    } else {
      const validLar = [1, 2, 3, 4, 5, 9, 11, 12];
      const validLsl = [1, 2, 3, 9, 11];
      if (!(lsl ? validLsl : validLar).includes(type)) return;
      if (dpl < this.cpl || dpl < (selector & 3)) return;
    }
    this.flagsRaw |= ZF;
    const reg = (this.decoded.modrm[slot] >> 3) & 7;
    if (lsl) this.setReg(size, reg, this.descriptorLimit());
    else this.setReg(size, reg, this.descHigh & 0x00f0ff00);
  }

  private group7(slot: number, reg: number, info: number, o16: boolean, modrm: number): void {
    if (!(info & Info.MEM)) {
      switch (modrm) {
        case 0xc1:
        case 0xd9:
          this.hypercall();
          return;
        default:
          if (reg === 4) {
            this.setReg(o16 ? 1 : 2, modrm & 7, this.cr0);
            return;
          }
          if (reg === 6) {
            if (this.cpl !== 0) this.fault(Vector.GP, 0);
            this.lmsw(this.getReg(1, modrm & 7));
            return;
          }
          this.fault(Vector.UD, 0);
      }
    }
    switch (reg) {
      case 0:
      case 1: {
        const address = this.ea(slot, 1, true);
        const limit = reg === 0 ? this.gdtrLimit : this.idtrLimit;
        const base = reg === 0 ? this.gdtrBase : this.idtrBase;
        this.probeWrite(address, 6);
        this.writeLin16(address, limit);
        this.writeLin32((address + 2) | 0, o16 ? base & 0xffffff : base);
        return;
      }
      case 2:
      case 3: {
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        const address = this.ea(slot, 1, false);
        const limit = this.readLin16(address);
        let base = this.readLin32((address + 2) | 0);
        if (o16) base &= 0xffffff;
        if (reg === 2) {
          this.gdtrBase = base;
          this.gdtrLimit = limit;
        } else {
          this.idtrBase = base;
          this.idtrLimit = limit;
        }
        return;
      }
      case 4:
        this.writeRm(slot, 1, this.cr0 & 0xffff);
        return;
      case 6:
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        this.lmsw(this.readRm(slot, 1));
        return;
      case 7:
        if (this.cpl !== 0) this.fault(Vector.GP, 0);
        this.invalidatePage(this.ea(slot, 0, false));
        return;
      default:
        this.fault(Vector.UD, 0);
    }
  }

  private lmsw(value: number): void {
    // LMSW changes PE MP EM TS only and cannot clear PE (SDM vol. 2 LMSW).
    const newCr0 = (this.cr0 & ~0xe) | (value & 0xf) | (this.cr0 & 1);
    this.writeCr0(newCr0);
  }

  private hypercall(): void {
    const exit = this.exit;
    const regs = this.regs;
    exit.hypercall = regs[EAX] >>> 0;
    const args = exit.args;
    args[0] = regs[EBX];
    args[2] = regs[ECX];
    args[4] = regs[EDX];
    args[6] = regs[ESI];
    args[8] = regs[EDI];
    args[10] = regs[EBP];
    args[1] = 0;
    args[3] = 0;
    args[5] = 0;
    args[7] = 0;
    args[9] = 0;
    args[11] = 0;
    exit.longMode = false;
    exit.privilege = this.cpl;
    this.exitWith(VcpuExitReason.Hypercall);
  }

  private group15(slot: number, info: number, modrm: number, reg: number): void {
    if (!(info & Info.MEM)) {
      // lfence/mfence (SSE2) and sfence (SSE) order memory; this CPU has no
      // reordering to fence (SDM vol. 2B LFENCE).
      if (reg >= 5 && (reg === 7 ? this.model.sse : this.model.sse2)) return;
      this.fault(Vector.UD, 0);
    }
    switch (reg) {
      case 2:
      case 3:
        loadStoreMxcsr(this, slot, reg === 3);
        return;
      case 0:
      case 1:
        if (!this.model.fxsr) this.fault(Vector.UD, 0);
        if (this.cr0 & (Cr0.EM | Cr0.TS)) this.fault(this.cr0 & Cr0.EM ? Vector.UD : Vector.NM, 0);
        if (reg === 0) this.fpu.fxsave(this, this.ea(slot, 2, true));
        else this.fpu.fxrstor(this, this.ea(slot, 2, false));
        return;
      case 7:
        // clflush: caches are not modelled; the access checks still apply.
        if (!this.model.clflush) this.fault(Vector.UD, 0);
        this.readLin8(this.ea(slot, 0, false));
        return;
      default:
        void modrm;
        this.fault(Vector.UD, 0);
    }
  }

  // ---------------------------------------------------------------------
  // Control registers, MSRs, CPUID, TSC

  private moveControl(op: number, modrm: number, reg: number): void {
    if (this.cpl !== 0 || this.flagsRaw & VM) this.fault(Vector.GP, 0);
    const r = modrm & 7;
    switch (op) {
      case 0x120:
        switch (reg) {
          case 0:
            this.regs[r] = this.cr0;
            return;
          case 2:
            this.regs[r] = this.cr2;
            return;
          case 3:
            this.regs[r] = this.cr3;
            return;
          case 4:
            this.regs[r] = this.cr4;
            return;
          default:
            this.fault(Vector.UD, 0);
        }
        return;
      case 0x122:
        switch (reg) {
          case 0:
            this.writeCr0(this.regs[r]);
            return;
          case 2:
            this.cr2 = this.regs[r];
            return;
          case 3:
            this.cr3 = this.regs[r];
            this.flushTlb(false);
            return;
          case 4:
            this.writeCr4(this.regs[r]);
            return;
          default:
            this.fault(Vector.UD, 0);
        }
        return;
      case 0x121:
        if (reg === 4 || reg === 5) {
          if (this.cr4 & Cr4.DE) this.fault(Vector.UD, 0);
          reg += 2;
        }
        this.regs[r] = this.dr[reg];
        return;
      default:
        if (reg === 4 || reg === 5) {
          if (this.cr4 & Cr4.DE) this.fault(Vector.UD, 0);
          reg += 2;
        }
        // Breakpoints are recorded but not raised (not modelled yet).
        this.dr[reg] =
          reg === 6 ? this.regs[r] | 0xffff0ff0 : reg === 7 ? this.regs[r] | 0x400 : this.regs[r];
    }
  }

  writeCr0(value: number): void {
    value |= Cr0.ET;
    // PG without PE, NW without CD: #GP(0) (SDM vol. 2 MOV CR).
    if ((value & Cr0.PG && !(value & Cr0.PE)) || (value & Cr0.NW && !(value & Cr0.CD))) {
      this.fault(Vector.GP, 0);
    }
    const changed = this.cr0 ^ value;
    this.cr0 = value | 0;
    // The software TLB bakes in PG and, while paging, WP (supervisor write
    // permission, SDM vol. 3A 4.6.1). PE alone changes nothing in it: PG is
    // 0 on both sides of a PE toggle, where every entry is the identity
    // page with all access. Firmware toggles PE for every BIOS call made
    // from 32-bit code (SeaBIOS call16/call32, SYSLINUX), so that path
    // must stay free of whole-cache work.
    if (changed & Cr0.PG || (changed & Cr0.WP && value & Cr0.PG)) this.flushTlb(true);
    // Neither cache is cleared on a PE toggle: a decoded instruction's tag
    // carries its code size (bit 31 for 16-bit code, the only mode input
    // of the decoder), so an entry decoded in the other mode misses; a
    // compiled block is entered only for 32-bit code (`code32`: PE, not
    // VM, CS.D) under its segment and stack-size guards, and decides
    // everything else (CPL, IOPL, paging) at run time.
    this.modeChanged();
  }

  writeCr4(value: number): void {
    const allowed =
      Cr4.TSD |
      Cr4.DE |
      Cr4.PSE |
      Cr4.PAE |
      Cr4.PGE |
      Cr4.PCE |
      Cr4.OSFXSR |
      Cr4.OSXMMEXCPT |
      Cr4.MCE;
    if (value & ~allowed) this.fault(Vector.GP, 0);
    const changed = this.cr4 ^ value;
    this.cr4 = value;
    if (changed & (Cr4.PSE | Cr4.PAE | Cr4.PGE)) this.flushTlb(true);
  }

  private rdmsr(): void {
    if (this.cpl !== 0) this.fault(Vector.GP, 0);
    const index = this.regs[ECX] >>> 0;
    const out = this.scratch;
    this.hostMayWrite();
    if (this.hooks.readMsr?.(index, out)) {
      this.regs[EAX] = out[0];
      this.regs[EDX] = out[1];
      return;
    }
    let low = 0;
    let high = 0;
    switch (index) {
      case Msr.TSC: {
        const tsc = this.hooks.readCounter() + this.tscOffset;
        low = (tsc % 4294967296) | 0;
        high = Math.floor(tsc / 4294967296) | 0;
        break;
      }
      case Msr.APIC_BASE:
        low = this.apicBaseLow;
        high = this.apicBaseHigh;
        break;
      case Msr.SYSENTER_CS:
        low = this.sysenterCs;
        break;
      case Msr.SYSENTER_ESP:
        low = this.sysenterEsp;
        break;
      case Msr.SYSENTER_EIP:
        low = this.sysenterEip;
        break;
      case Msr.PAT:
        low = this.patLow;
        high = this.patHigh;
        break;
      case Msr.EFER:
        if (!this.model.nx) this.fault(Vector.GP, 0);
        low = this.efer;
        break;
      case Msr.BIOS_SIGN_ID:
      case Msr.PLATFORM_ID:
        break;
      case Msr.MISC_ENABLE:
        low = this.miscEnableLow;
        break;
      default:
        if (this.model.mtrr && this.isMtrr(index)) {
          const value = this.mtrr.get(index);
          if (index === Msr.MTRRCAP) {
            low = 0x508; // 8 variable ranges, fixed ranges, write-combining (SDM vol. 3A 11.11.1).
          } else if (index === Msr.MTRR_DEF_TYPE) {
            low = this.mtrrDefType;
          } else if (value) {
            low = value[0];
            high = value[1];
          }
          break;
        }
        this.fault(Vector.GP, 0);
    }
    this.regs[EAX] = low;
    this.regs[EDX] = high;
  }

  private isMtrr(index: number): boolean {
    return (
      index === Msr.MTRRCAP ||
      index === Msr.MTRR_DEF_TYPE ||
      (index >= Msr.MTRR_PHYSBASE0 && index <= Msr.MTRR_PHYSMASK7) ||
      index === Msr.MTRR_FIX64K ||
      index === Msr.MTRR_FIX16K_80000 ||
      index === Msr.MTRR_FIX16K_A0000 ||
      (index >= Msr.MTRR_FIX4K_C0000 && index <= Msr.MTRR_FIX4K_F8000)
    );
  }

  private wrmsr(): void {
    if (this.cpl !== 0) this.fault(Vector.GP, 0);
    const index = this.regs[ECX] >>> 0;
    const low = this.regs[EAX];
    const high = this.regs[EDX];
    this.hostMayWrite();
    const answer = this.hooks.writeMsr?.(index, low, high);
    if (answer === "fault") this.fault(Vector.GP, 0);
    if (answer === true) return;
    switch (index) {
      case Msr.TSC:
        this.tscOffset = (high >>> 0) * 4294967296 + (low >>> 0) - this.hooks.readCounter();
        return;
      case Msr.APIC_BASE:
        this.apicBaseLow = low;
        this.apicBaseHigh = high;
        return;
      case Msr.SYSENTER_CS:
        this.sysenterCs = low & 0xffff;
        return;
      case Msr.SYSENTER_ESP:
        this.sysenterEsp = low;
        return;
      case Msr.SYSENTER_EIP:
        this.sysenterEip = low;
        return;
      case Msr.PAT:
        // Each entry must be a valid memory type: 0, 1, 4, 5, 6, 7 (SDM vol. 3A 11.12.2).
        for (let i = 0; i < 8; i++) {
          const type = ((i < 4 ? low : high) >>> ((i & 3) * 8)) & 0xff;
          if (type === 2 || type === 3 || type > 7) this.fault(Vector.GP, 0);
        }
        this.patLow = low;
        this.patHigh = high;
        return;
      case Msr.EFER:
        if (!this.model.nx || low & ~Efer.NXE || high) this.fault(Vector.GP, 0);
        this.efer = low;
        this.flushTlb(true);
        return;
      case Msr.BIOS_SIGN_ID:
        return;
      case Msr.MISC_ENABLE:
        this.miscEnableLow = low;
        return;
      default:
        if (this.model.mtrr && this.isMtrr(index) && index !== Msr.MTRRCAP) {
          if (index === Msr.MTRR_DEF_TYPE) this.mtrrDefType = low;
          else this.mtrr.set(index, [low, high]);
          return;
        }
        this.fault(Vector.GP, 0);
    }
  }

  private readTsc(): void {
    const tsc = this.hooks.readCounter() + this.tscOffset;
    this.regs[EAX] = (tsc % 4294967296) | 0;
    this.regs[EDX] = Math.floor(tsc / 4294967296) | 0;
  }

  private cpuid(): void {
    const leaf = this.regs[EAX] >>> 0;
    const subleaf = this.regs[ECX] >>> 0;
    const out = this.scratch;
    this.hostMayWrite();
    if (!this.hooks.cpuid?.(leaf, subleaf, out)) this.model.query(leaf, subleaf, out);
    this.regs[EAX] = out[0];
    this.regs[EBX] = out[1];
    this.regs[ECX] = out[2];
    this.regs[EDX] = out[3];
  }
}

export { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, ES, CS, SS, DS, FS, GS };
export {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  EVENT_EXCEPTION,
  EVENT_EXTERNAL,
  EVENT_SOFTWARE,
  FAULT,
  SC_UNUSABLE,
};
export type { X86CpuState };
