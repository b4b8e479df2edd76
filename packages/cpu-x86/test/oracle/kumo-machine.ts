/**
 * Kumo's side of the differential oracle: the same ring-3 world the host
 * harness runs in, built from real descriptor tables so that Kumo's own
 * protection checks, privilege transitions and exception delivery produce
 * what Linux reports in a signal's sigcontext.
 *
 * Low memory holds a GDT laid out like 64-bit Linux's
 * (arch/x86/include/asm/segment.h: KERNEL32_CS 0x08, KERNEL_CS 0x10,
 * KERNEL_DS 0x18, USER32_CS 0x23, USER_DS 0x2b, USER_CS 0x33, TSS 0x40,
 * LDT 0x50), the harness's two-entry LDT, a TSS whose ring-0 stack receives
 * exception frames, and an IDT whose every vector leads to a ring-0 `hlt`
 * (vectors 3, 4 and 0x80 through DPL-3 gates as in Linux's
 * arch/x86/kernel/idt.c). A ring-0 prologue loads the tables and enters the
 * case with `iret`; the first exception in ring 3 lands on a `hlt` whose
 * address names the vector, and its stack frame gives EIP, CS, EFLAGS, ESP
 * and SS as the CPU pushed them (SDM vol. 3A 6.12.1).
 */
import { VcpuExitReason } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { createX86Cpu, ramOnly, X86_WASM_SCRATCH_BYTES, type X86Cpu } from "../../src/index";
import { assemble } from "../support/nasm";
import { writeSegmentDescriptor } from "../support/segment-descriptor";
import {
  CODE_BASE,
  CODE_OFFSET,
  DATA_BASE,
  DATA_SIZE,
  MAX_DIFFS,
  Mode,
  SEL_CODE16,
  SEL_CODE32,
  SEL_DATA16,
  SEL_DATA32,
  signalForVector,
  type TestCase,
  type TestResult,
} from "./layout";

const RAM_SIZE = 4 << 20;
const GDT = 0x1000;
const LDT = 0x1100;
const TSS = 0x1200;
const IDT = 0x2000;
const HANDLERS = 0x3000;
const PROLOGUE = 0x4000;
const TABLE_POINTERS = 0x5000;
const REGISTER_BLOCK = 0x5100;
const SELECTOR_BLOCK = 0x5200;
const KERNEL_STACK = 0x9000;
const TEMPLATE_SIZE = 0x6000;
const KERNEL_DS = 0x18;
const MAX_INSTRUCTIONS = 200_000;

const PROLOGUE_SOURCE = `
  lgdt [${TABLE_POINTERS}]
  lidt [${TABLE_POINTERS + 8}]
  ; CR0.AM and CR0.NE as Linux runs user code (arch/x86/include/asm/processor-flags.h CR0_STATE)
  mov eax, cr0
  or eax, 0x40020
  mov cr0, eax
  ; CR4.OSFXSR and OSXMMEXCPT, as Linux sets them on SSE CPUs (arch/x86/kernel/fpu/init.c)
  mov eax, cr4
  or eax, 0x600
  mov cr4, eax
  mov ax, ${KERNEL_DS}
  mov ss, ax
  mov ax, 0x40
  ltr ax
  mov ax, 0x50
  lldt ax
  mov esp, ${REGISTER_BLOCK}
  popad
  mov es, [${SELECTOR_BLOCK + 2}]
  mov fs, [${SELECTOR_BLOCK + 4}]
  mov gs, [${SELECTOR_BLOCK + 4}]
  mov ds, [${SELECTOR_BLOCK}]
  iret
`;

function buildTemplate(): Uint8Array {
  const memory = new Uint8Array(TEMPLATE_SIZE);
  const view = new DataView(memory.buffer);
  // GDT (16 entries like Linux's; unlisted entries stay zero).
  writeSegmentDescriptor(view, GDT + 0x08, 0, 0xfffff, 0x9b, 0xc);
  writeSegmentDescriptor(view, GDT + 0x10, 0, 0xfffff, 0x9b, 0xa);
  writeSegmentDescriptor(view, GDT + 0x18, 0, 0xfffff, 0x93, 0xc);
  writeSegmentDescriptor(view, GDT + 0x20, 0, 0xfffff, 0xfb, 0xc);
  writeSegmentDescriptor(view, GDT + 0x28, 0, 0xfffff, 0xf3, 0xc);
  writeSegmentDescriptor(view, GDT + 0x30, 0, 0xfffff, 0xfb, 0xa);
  writeSegmentDescriptor(view, GDT + 0x40, TSS, 0x67, 0x89, 0);
  writeSegmentDescriptor(view, GDT + 0x50, LDT, 0x0f, 0x82, 0);
  // LDT as modify_ldt builds it (Linux arch/x86/include/asm/desc.h fill_ldt: accessed bit set).
  writeSegmentDescriptor(view, LDT + 0, CODE_BASE, 0xffff, 0xfb, 0);
  writeSegmentDescriptor(view, LDT + 8, DATA_BASE, 0xffff, 0xf3, 0);
  // TSS: ring-0 stack; I/O map base past the limit, so every port is denied at CPL 3.
  view.setUint32(TSS + 4, KERNEL_STACK, true);
  view.setUint32(TSS + 8, KERNEL_DS, true);
  view.setUint16(TSS + 0x66, 0x68, true);
  // IDT: interrupt gates to one `hlt` per vector.
  for (let vector = 0; vector < 256; vector++) {
    const handler = HANDLERS + vector * 16;
    const dpl3 = vector === 3 || vector === 4 || vector === 0x80;
    view.setUint32(IDT + vector * 8, ((handler & 0xffff) | (0x08 << 16)) >>> 0, true);
    view.setUint32(
      IDT + vector * 8 + 4,
      ((handler & 0xffff0000) | (dpl3 ? 0xee00 : 0x8e00)) >>> 0,
      true,
    );
    memory[handler] = 0xf4;
  }
  // Real-mode IVT (0000:0000) to the same `hlt`s, for runRealMode.
  for (let vector = 0; vector < 256; vector++)
    view.setUint16(vector * 4, HANDLERS + vector * 16, true);
  view.setUint16(TABLE_POINTERS, 0x7f, true);
  view.setUint32(TABLE_POINTERS + 2, GDT, true);
  view.setUint16(TABLE_POINTERS + 8, 0x7ff, true);
  view.setUint32(TABLE_POINTERS + 10, IDT, true);
  memory.set(assemble(PROLOGUE_SOURCE, 32, PROLOGUE), PROLOGUE);
  return memory;
}

/** Runs test cases on Kumo's CPU, one reused vCPU over 4 MiB of RAM. */
export class KumoMachine {
  readonly cpu: X86Cpu;
  private readonly ram: Uint8Array;
  private readonly view: DataView;
  private readonly template = buildTemplate();
  private readonly hlts = new Uint8Array(0x1000).fill(0xf4);
  private readonly expected = new Uint8Array(DATA_SIZE);
  private readonly expectedWords = new Int32Array(this.expected.buffer);
  /** Instructions retired by the cases (prologue included). */
  instructions = 0;

  constructor() {
    // KUMO_DIFF_MEMORY=wasm: RAM in a WebAssembly.Memory with scratch for
    // the CPU, so that its WebAssembly block tier runs (differential-wasm).
    if (process.env.KUMO_DIFF_MEMORY === "wasm") {
      const memory = createGuestMemory({ ramSize: RAM_SIZE, wasmScratch: X86_WASM_SCRATCH_BYTES });
      this.ram = memory.ram.u8;
      this.cpu = createX86Cpu({ memory });
      if (this.cpu.wasmTier === null) throw new Error("the WebAssembly block tier is not active");
    } else {
      this.ram = new Uint8Array(RAM_SIZE);
      this.cpu = createX86Cpu({ memory: ramOnly(this.ram) });
    }
    this.view = new DataView(this.ram.buffer, 0, RAM_SIZE);
  }

  run(pristine: Uint8Array, c: TestCase): TestResult {
    const { ram, cpu } = this;
    const view = this.view;
    ram.set(this.template, 0);
    ram.fill(0, TEMPLATE_SIZE, KERNEL_STACK);
    ram.set(pristine, DATA_BASE);
    ram.set(c.patch, DATA_BASE + c.patchOffset);
    ram.set(this.hlts, CODE_BASE);
    ram.set(c.code, CODE_BASE + CODE_OFFSET);
    // Only the code page changes between cases; the template is rewritten with
    // the same bytes (a CPU bug could have scribbled on it) and its decoded
    // code stays valid. Dropping decoded pages is not free (it is per page).
    cpu.invalidateCode(CODE_BASE, 0x1000);

    // popad order: EDI ESI EBP (ESP) EBX EDX ECX EAX; then the iret frame.
    const order = [7, 6, 5, 4, 3, 2, 1, 0];
    for (let i = 0; i < 8; i++) view.setUint32(REGISTER_BLOCK + i * 4, c.regs[order[i]], true);
    const bits16 = c.mode === Mode.Bits16;
    view.setUint32(REGISTER_BLOCK + 32, bits16 ? CODE_OFFSET : CODE_BASE + CODE_OFFSET, true);
    view.setUint32(REGISTER_BLOCK + 36, bits16 ? SEL_CODE16 : SEL_CODE32, true);
    view.setUint32(REGISTER_BLOCK + 40, c.eflags, true);
    view.setUint32(REGISTER_BLOCK + 44, c.regs[4], true);
    view.setUint32(REGISTER_BLOCK + 48, bits16 ? SEL_DATA16 : SEL_DATA32, true);
    view.setUint16(SELECTOR_BLOCK, bits16 ? SEL_DATA16 : SEL_DATA32, true);
    view.setUint16(SELECTOR_BLOCK + 2, SEL_DATA16, true);
    view.setUint16(SELECTOR_BLOCK + 4, SEL_DATA16, true);

    cpu.setFlatProtectedMode(PROLOGUE, KERNEL_STACK);
    const start = cpu.instructionsRetired;
    let reason: number = VcpuExitReason.Budget;
    let message = "";
    try {
      while (cpu.instructionsRetired - start < MAX_INSTRUCTIONS) {
        reason = cpu.run(10_000);
        if (reason !== VcpuExitReason.Budget) break;
      }
    } catch (error) {
      message = `run() threw: ${(error as Error).message}`;
    }
    this.instructions += cpu.instructionsRetired - start;
    const result: TestResult = {
      signal: -1,
      vector: -1,
      error: -1,
      eip: cpu.eip >>> 0,
      eflags: cpu.getEflags() >>> 0,
      regs: new Uint32Array(8),
      segments: new Uint16Array(6),
      diffs: [],
      diffCount: 0,
      anomaly: "",
    };
    for (let r = 0; r < 8; r++) result.regs[r] = cpu.regs[r] >>> 0;
    const handler = (cpu.eip >>> 0) - 1 - HANDLERS;
    if (message) {
      result.anomaly = message;
    } else if (
      reason !== VcpuExitReason.Halt ||
      handler < 0 ||
      handler >= 0x1000 ||
      handler % 16 !== 0
    ) {
      result.anomaly =
        reason === VcpuExitReason.Halt
          ? `halted outside the handlers at 0x${(cpu.eip >>> 0).toString(16)}`
          : `exit ${reason}${cpu.exit.message ? ` (${cpu.exit.message})` : ""} at 0x${(cpu.eip >>> 0).toString(16)}`;
    } else {
      const vector = handler / 16;
      const esp = cpu.regs[4] >>> 0;
      const frameSize = KERNEL_STACK - esp;
      let at = esp;
      if (frameSize === 24) {
        result.error = view.getUint32(at, true);
        at += 4;
      } else if (frameSize === 20) {
        result.error = 0;
      } else {
        result.anomaly = `exception frame of ${frameSize} bytes (no privilege change?)`;
      }
      result.vector = vector;
      result.signal = signalForVector(vector);
      result.eip = view.getUint32(at, true);
      result.segments[0] = view.getUint32(at + 4, true);
      result.eflags = view.getUint32(at + 8, true);
      result.regs[4] = view.getUint32(at + 12, true);
      result.segments[1] = view.getUint32(at + 16, true);
      result.segments[2] = cpu.segSel[3];
      result.segments[3] = cpu.segSel[0];
      result.segments[4] = cpu.segSel[4];
      result.segments[5] = cpu.segSel[5];
    }
    // Memory changes against the initial region (pristine plus patch),
    // word by word first: most of the 8 KiB is untouched.
    const expected = this.expected;
    expected.set(pristine);
    expected.set(c.patch, c.patchOffset);
    const before = this.expectedWords;
    const after = new Int32Array(ram.buffer, DATA_BASE, DATA_SIZE / 4);
    let count = 0;
    for (let w = 0; w < before.length; w++) {
      if (before[w] === after[w]) continue;
      for (let i = w * 4; i < w * 4 + 4; i++) {
        const value = ram[DATA_BASE + i];
        if (value !== expected[i]) {
          if (count < MAX_DIFFS) result.diffs.push((i << 8) | value);
          count++;
        }
      }
    }
    result.diffCount = count;
    return result;
  }

  /**
   * Runs a 16-bit case in real mode instead of ring 3: CS = CODE_BASE >> 4,
   * every data segment DATA_BASE >> 4, so segment bases and offsets are the
   * ones the host's 16-bit LDT segments give (layout.ts). The result is put
   * in the host's terms: the final `hlt` (which halts at CPL 0) reads as the
   * #GP(0) it raises in ring 3, and an exception's real-mode frame (IP, CS,
   * FLAGS pushed on the case's own stack, SDM vol. 3A 20.1.4) gives EIP and
   * FLAGS and is removed from the data region before it is compared.
   */
  runRealMode(pristine: Uint8Array, c: TestCase): TestResult {
    const { ram, cpu } = this;
    const view = this.view;
    ram.set(this.template, 0);
    ram.set(pristine, DATA_BASE);
    ram.set(c.patch, DATA_BASE + c.patchOffset);
    ram.set(this.hlts, CODE_BASE);
    ram.set(c.code, CODE_BASE + CODE_OFFSET);
    cpu.invalidateCode(CODE_BASE, 0x1000);
    cpu.setRealMode(CODE_BASE >>> 4, CODE_OFFSET);
    // ES SS DS FS GS: real-mode segments at the data region (Seg numbering of constants.ts).
    for (const segment of [0, 2, 3, 4, 5])
      cpu.setSegment(segment, DATA_BASE >>> 4, DATA_BASE, 0xffff, 0x93);
    for (let r = 0; r < 8; r++) cpu.regs[r] = c.regs[r];
    cpu.setEflags(c.eflags);
    const start = cpu.instructionsRetired;
    let reason: number = VcpuExitReason.Budget;
    let message = "";
    try {
      while (cpu.instructionsRetired - start < MAX_INSTRUCTIONS) {
        reason = cpu.run(10_000);
        if (reason !== VcpuExitReason.Budget) break;
      }
    } catch (error) {
      message = `run() threw: ${(error as Error).message}`;
    }
    this.instructions += cpu.instructionsRetired - start;
    const result: TestResult = {
      signal: -1,
      vector: -1,
      error: -1,
      eip: cpu.eip >>> 0,
      eflags: cpu.getEflags() >>> 0,
      regs: new Uint32Array(8),
      segments: new Uint16Array(6),
      diffs: [],
      diffCount: 0,
      anomaly: "",
    };
    for (let r = 0; r < 8; r++) result.regs[r] = cpu.regs[r] >>> 0;
    const linear = (cpu.segBase[1] >>> 0) + (cpu.eip >>> 0) - 1;
    const handler = linear - HANDLERS;
    if (message) {
      result.anomaly = message;
    } else if (reason !== VcpuExitReason.Halt) {
      result.anomaly = `exit ${reason}${cpu.exit.message ? ` (${cpu.exit.message})` : ""}`;
    } else if (linear >= CODE_BASE && linear < CODE_BASE + 0x1000) {
      // The case's final hlt: the host's ring 3 raises #GP(0) there.
      result.vector = 13;
      result.signal = signalForVector(13);
      result.error = 0;
      result.eip = (cpu.eip - 1) >>> 0;
    } else if (handler >= 0 && handler < 0x1000 && handler % 16 === 0) {
      const vector = handler / 16;
      const sp = cpu.regs[4] & 0xffff;
      const frame = (cpu.segBase[2] >>> 0) + sp;
      result.vector = vector;
      result.signal = signalForVector(vector);
      // Real mode pushes no error code; the host's are 0 for the faults cases raise here.
      result.error = 0;
      result.eip = view.getUint16(frame, true);
      result.eflags = ((cpu.getEflags() & 0xffff0000) | view.getUint16(frame + 4, true)) >>> 0;
      result.regs[4] = ((cpu.regs[4] & 0xffff0000) | ((sp + 6) & 0xffff)) >>> 0;
      // Put back what the frame overwrote, as far as the case's initial data says.
      for (let i = 0; i < 6; i++) {
        const offset = frame + i - DATA_BASE;
        if (offset < 0 || offset >= DATA_SIZE) continue;
        const p = offset - c.patchOffset;
        ram[frame + i] = p >= 0 && p < c.patch.length ? c.patch[p] : pristine[offset];
      }
    } else {
      result.anomaly = `halted at linear 0x${(linear + 1).toString(16)}`;
    }
    const expected = this.expected;
    expected.set(pristine);
    expected.set(c.patch, c.patchOffset);
    let count = 0;
    for (let i = 0; i < DATA_SIZE; i++) {
      const value = ram[DATA_BASE + i];
      if (value !== expected[i]) {
        if (count < MAX_DIFFS) result.diffs.push((i << 8) | value);
        count++;
      }
    }
    result.diffCount = count;
    return result;
  }
}
