/**
 * The machine every differential case runs on, shared by the host harness
 * (harness.c repeats these numbers; the build checks them) and Kumo's side.
 *
 * The case code runs in ring 3 like a Linux process: CS 0x23 and DS 0x2b
 * are Linux's __USER32_CS and __USER_DS (arch/x86/include/asm/segment.h)
 * for CS, DS and SS; ES, FS and GS hold a 16-bit data segment in the LDT
 * with base DATA_BASE (so segment bases and 16-bit addressing are covered
 * in 32-bit code too, and string destinations stay in the data region), and
 * 16-bit cases use an LDT code segment (CS.D = 0) and that data segment for
 * every other register (SS.B = 0), as in real mode.
 */

/** Two pages of data: page 0 for memory operands, page 1 as the stack. */
export const DATA_BASE = 0x0002_0000;
export const DATA_SIZE = 0x2000;
/** The code page: all `hlt` (0xf4) except the case's bytes at CODE_OFFSET. */
export const CODE_BASE = 0x0003_0000;
export const CODE_OFFSET = 0x80;
export const CODE_MAX = 64;
export const PATCH_MAX = 20;

export const SEL_CODE16 = 0x07;
export const SEL_DATA16 = 0x0f;
export const SEL_CODE32 = 0x23;
export const SEL_DATA32 = 0x2b;

export const MAGIC = 0x43524f4b;
export const HEADER_SIZE = 16;
export const CASE_SIZE = 128;
export const RESULT_SIZE = 256;
export const MAX_DIFFS = 40;

/** Operating mode of a case: the default operand and address size of CS. */
export const Mode = { Bits32: 0, Bits16: 1 } as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/** One test case as the harness reads it. Registers in ModRM order EAX..EDI. */
export interface TestCase {
  regs: Uint32Array;
  eflags: number;
  mode: Mode;
  code: Uint8Array;
  /** Bytes written at `patchOffset` of the data region for this case only (at most PATCH_MAX). */
  patch: Uint8Array;
  patchOffset: number;
}

/** What a machine did with one case: the first exception and the state at it. */
export interface TestResult {
  /** Linux signal number (host) or the one Linux would send for `vector` (Kumo). */
  signal: number;
  /** Exception vector, -1 when the oracle does not report it (qemu-i386). */
  vector: number;
  /** Error code, -1 when not reported. */
  error: number;
  eip: number;
  eflags: number;
  regs: Uint32Array;
  /** Selectors of CS SS DS ES FS GS at the exception. */
  segments: Uint16Array;
  /** Changed bytes of the data region: offset << 8 | value (at most MAX_DIFFS). */
  diffs: number[];
  diffCount: number;
  /** Set when the machine did not end in an exception the way cases must (Kumo only). */
  anomaly?: string;
}

/** Segment base of each segment register (ES CS SS DS FS GS) in a mode. */
export function segmentBases(mode: Mode): readonly number[] {
  return mode === Mode.Bits32
    ? [DATA_BASE, 0, 0, 0, DATA_BASE, DATA_BASE]
    : [DATA_BASE, CODE_BASE, DATA_BASE, DATA_BASE, DATA_BASE, DATA_BASE];
}

export function encodeCases(pristine: Uint8Array, cases: readonly TestCase[]): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + DATA_SIZE + cases.length * CASE_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, cases.length, true);
  out.set(pristine, HEADER_SIZE);
  let at = HEADER_SIZE + DATA_SIZE;
  for (const c of cases) {
    for (let i = 0; i < 8; i++) view.setUint32(at + i * 4, c.regs[i], true);
    view.setUint32(at + 32, c.eflags >>> 0, true);
    out[at + 36] = c.mode;
    out[at + 37] = c.code.length;
    out[at + 38] = c.patch.length;
    view.setUint16(at + 40, c.patchOffset, true);
    out.set(c.code, at + 44);
    out.set(c.patch, at + 44 + CODE_MAX);
    at += CASE_SIZE;
  }
  return out;
}

export function decodeResults(
  bytes: Uint8Array,
  count: number,
  trapnoKnown: boolean,
): TestResult[] {
  if (bytes.length !== count * RESULT_SIZE) {
    throw new Error(`oracle returned ${bytes.length} bytes, expected ${count * RESULT_SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const results: TestResult[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * RESULT_SIZE;
    const word = (index: number) => view.getUint32(at + index * 4, true);
    const regs = new Uint32Array(8);
    for (let r = 0; r < 8; r++) regs[r] = word(5 + r);
    const segments = new Uint16Array(6);
    for (let s = 0; s < 6; s++) segments[s] = word(14 + s);
    const diffCount = word(20);
    const diffs: number[] = [];
    for (let d = 0; d < Math.min(diffCount, MAX_DIFFS); d++) diffs.push(word(21 + d));
    results.push({
      signal: word(0),
      vector: trapnoKnown ? word(1) : -1,
      error: trapnoKnown ? word(2) : -1,
      eip: word(3),
      eflags: word(4),
      regs,
      segments,
      diffs,
      diffCount,
    });
  }
  return results;
}

/** The signal Linux sends a 32-bit process for an exception vector (arch/x86/kernel/traps.c). */
export function signalForVector(vector: number): number {
  switch (vector) {
    case 0: // #DE
    case 16: // #MF
    case 19: // #XM
      return 8; // SIGFPE
    case 1: // #DB
    case 3: // #BP
      return 5; // SIGTRAP
    case 6: // #UD
      return 4; // SIGILL
    case 17: // #AC
      return 7; // SIGBUS
    default: // #OF #BR #NP #SS #GP #PF and INT n through a DPL-0 gate
      return 11; // SIGSEGV
  }
}
