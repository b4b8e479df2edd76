/**
 * @kumo/cpu-x86 against v86 (npm `v86`, its WebAssembly JIT), same guest
 * code, same process: millions of guest instructions per second on
 * (a) a CPU-bound integer loop, (b) a memory-copy loop, (c) a branchy
 * workload (insertion sort of pseudo-random numbers).
 *
 * The workloads are one tiny multiboot kernel (src/lib/cpu-workloads.ts,
 * assembled with nasm). v86 boots it through its own multiboot loader (no
 * BIOS needed); Kumo loads the same bytes and starts at the multiboot entry
 * in flat protected mode. Each workload runs once to warm up (v86 compiles
 * hot code to WebAssembly) and once measured, between two bytes written to
 * the COM1 data port; both machines time that interval, in the process's
 * CPU time (user + system: on a host shared with other jobs, wall time
 * measures the other jobs too; the wall seconds are shown beside it, and
 * the load average is printed). The instruction
 * count of the measured part is Kumo's retired-instruction count (the same
 * program path on both machines; taken at slice ends, see runKumo); v86's own
 * counter is shown as a check, and each workload prints a checksum that must
 * match on both.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { VcpuExitReason } from "@kumo/abi";
import { createX86Cpu, X86_WASM_SCRATCH_BYTES } from "@kumo/cpu-x86";
import { createGuestMemory } from "@kumo/mmu";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { v86Directory } from "./lib/pc-boot";

const LOAD_ADDRESS = 0x100000;
const MEMORY_SIZE = 32 << 20;
const COM1 = 0x3f8;

interface Run {
  marks: Mark[];
  /** v86 only: its own instruction counter at each mark. */
  counters: number[];
}
/** Offset of the iteration counts in the kernel (after the 32-byte multiboot header). */
const PARAMETERS = 32;

interface Workload {
  marker: string;
  label: string;
  /** Iterations (or passes) per second of --time: about one second of Kumo at 13 MIPS. */
  perSecond: number;
}

export const WORKLOADS: Workload[] = [
  { marker: "a", label: "(a) integer loop (imul/add/xor/rol)", perSecond: 1_600_000 },
  { marker: "b", label: "(b) memory copy (64 KiB, dword loop)", perSecond: 130 },
  { marker: "c", label: "(c) branchy: insertion sort of 256", perSecond: 110 },
];

/**
 * The guest: a multiboot kernel (Multiboot spec 0.6.96 3.1.1, header with
 * the address fields, flag 16, so no ELF is needed) that runs each workload
 * twice (warm-up, then measured between two COM1 bytes) and writes a
 * 4-byte checksum after each. Parameters (iterations) are patched in at
 * PARAMETERS by buildWorkloadKernel.
 */
const KERNEL_SOURCE = `
bits 32
org ${LOAD_ADDRESS}
SRC equ 0x200000
DST equ 0x210000
ARR equ 0x220000
N equ 256
header:
  dd 0x1BADB002
  dd 0x00010000
  dd -(0x1BADB002 + 0x00010000)
  dd header
  dd header
  dd 0
  dd 0
  dd start
parameters:
  times 6 dd 0
start:
  cli
  mov esp, 0x90000
  ; source buffer for the copy: pseudo-random
  mov edi, SRC
  mov ecx, 16384
  mov eax, 7
.fill:
  imul eax, eax, 1103515245
  add eax, 12345
  mov [edi], eax
  add edi, 4
  dec ecx
  jnz .fill
%macro WORKLOAD 3 ; routine, start byte, end byte
  mov ecx, [parameters + %3]
  call %1
  call put32
  mov al, %2
  mov dx, 0x3f8
  out dx, al
  mov ecx, [parameters + %3 - 4]
  call %1
  push eax
  mov al, %2 - 32
  mov dx, 0x3f8
  out dx, al
  pop eax
  call put32
%endmacro
  WORKLOAD integer_loop, 'a', 4
  WORKLOAD memory_copy, 'b', 12
  WORKLOAD sort, 'c', 20
  mov al, 'Z'
  mov dx, 0x3f8
  out dx, al
.halt:
  hlt
  jmp .halt

; (a) ecx iterations of an LCG step mixed into ebx: eax = checksum
integer_loop:
  mov eax, 1
  xor ebx, ebx
.loop:
  imul eax, eax, 1103515245
  add eax, 12345
  mov edx, eax
  shr edx, 16
  xor ebx, edx
  rol ebx, 5
  dec ecx
  jnz .loop
  mov eax, ebx
  ret

; (b) ecx passes copying 64 KiB with a load/store loop: eax = checksum
memory_copy:
  mov dword [SRC + 0x100], 0
.pass:
  mov esi, SRC
  mov edi, DST
  mov edx, 16384
.loop:
  mov eax, [esi]
  mov [edi], eax
  add esi, 4
  add edi, 4
  dec edx
  jnz .loop
  inc dword [SRC + 0x100]
  dec ecx
  jnz .pass
  mov eax, [DST + 0x100]
  xor eax, [DST + 0xfffc]
  ret

; (c) ecx passes: fill N dwords from an LCG, insertion sort them: eax = checksum
sort:
  mov ebp, 12345
  xor ebx, ebx
.pass:
  push ecx
  mov edi, ARR
  mov edx, N
.fill:
  imul ebp, ebp, 1103515245
  add ebp, 12345
  mov eax, ebp
  shr eax, 8
  mov [edi], eax
  add edi, 4
  dec edx
  jnz .fill
  mov esi, 1
.outer:
  mov eax, [ARR + esi*4]
  lea edi, [esi - 1]
.inner:
  test edi, edi
  js .place
  mov edx, [ARR + edi*4]
  cmp edx, eax
  jbe .place
  mov [ARR + 4 + edi*4], edx
  dec edi
  jmp .inner
.place:
  mov [ARR + 4 + edi*4], eax
  inc esi
  cmp esi, N
  jb .outer
  add ebx, [ARR]
  add ebx, [ARR + (N / 2) * 4]
  add ebx, [ARR + (N - 1) * 4]
  pop ecx
  dec ecx
  jnz .pass
  mov eax, ebx
  ret

put32:
  mov ebx, eax
  mov ecx, 4
  mov dx, 0x3f8
.byte:
  mov al, bl
  out dx, al
  shr ebx, 8
  dec ecx
  jnz .byte
  ret
`;

/** Assembles the kernel with `counts[i]` = [measured, warm-up] iterations of workload i. */
function buildWorkloadKernel(counts: [number, number][]): { kernel: Uint8Array; entry: number } {
  const directory = mkdtempSync(join(tmpdir(), "kumo-bench-cpu-"));
  let kernel: Uint8Array;
  try {
    writeFileSync(join(directory, "kernel.asm"), KERNEL_SOURCE);
    execFileSync("nasm", [
      "-f",
      "bin",
      "-o",
      join(directory, "kernel.bin"),
      join(directory, "kernel.asm"),
    ]);
    kernel = new Uint8Array(readFileSync(join(directory, "kernel.bin")));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  const view = new DataView(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  counts.forEach(([measured, warm], i) => {
    view.setUint32(PARAMETERS + i * 8, measured, true);
    view.setUint32(PARAMETERS + i * 8 + 4, warm, true);
  });
  return { kernel, entry: view.getUint32(28, true) };
}

interface Mark {
  byte: number;
  /** Wall clock and process CPU time (user + system), milliseconds. */
  time: number;
  cpu: number;
  instructions: number;
}

/** The process's CPU time so far, in milliseconds. */
function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

interface Segment {
  /** CPU seconds of the segment (the rates use these) and wall seconds. */
  seconds: number;
  wallSeconds: number;
  instructions: number;
  /** v86: its own instruction counter over the segment. */
  counted: number;
  warmChecksum: number;
  checksum: number;
}

/**
 * Splits the COM1 bytes into one measured segment per workload: 4 bytes of
 * the warm-up's checksum, start, end, 4 bytes of the measured checksum.
 */
function parseMarks(marks: Mark[], counters: number[] = []): Map<string, Segment> {
  const segments = new Map<string, Segment>();
  const word = (at: number) => {
    let value = 0;
    for (let i = 0; i < 4; i++) value |= (marks[at + i]?.byte ?? 0) << (8 * i);
    return value >>> 0;
  };
  let at = 0;
  for (const workload of WORKLOADS) {
    const start = marks[at + 4];
    const end = marks[at + 5];
    if (!start || !end || String.fromCharCode(start.byte) !== workload.marker) {
      throw new Error(`unexpected COM1 output at byte ${at + 4} (workload ${workload.marker})`);
    }
    segments.set(workload.marker, {
      seconds: (end.cpu - start.cpu) / 1000,
      wallSeconds: (end.time - start.time) / 1000,
      instructions: end.instructions - start.instructions,
      counted: (counters[at + 5] ?? 0) - (counters[at + 4] ?? 0),
      warmChecksum: word(at),
      checksum: word(at + 6),
    });
    at += 10;
  }
  return segments;
}

/**
 * Runs the kernel on Kumo. The retired-instruction counter is exact only
 * between calls of run() (the interpreter keeps it in a local while it
 * runs), so the guest runs in slices of SLICE instructions and each COM1
 * byte takes the count at the end of its slice: at most SLICE off, against
 * tens of millions per measured segment.
 */
const SLICE = 20_000;
/** v86 and the block tier run this many times the iterations the interpreter runs. */
const V86_SCALE = 30;

/**
 * How Kumo runs the kernel: "wasm", the default tiers of an x86 domain
 * (its memory has WebAssembly scratch, hot blocks compile to WebAssembly);
 * "js", the JavaScript block tier (for hosts without WebAssembly); "off",
 * the interpreter alone.
 */
type KumoTier = "wasm" | "js" | "off";

/** Runs the kernel on Kumo with `tier`. */
function runKumo(kernel: Uint8Array, entry: number, tier: KumoTier): Run {
  const memory = createGuestMemory({
    ramSize: MEMORY_SIZE,
    wasmScratch: tier === "wasm" ? X86_WASM_SCRATCH_BYTES : 0,
  });
  memory.ram.u8.set(kernel, LOAD_ADDRESS);
  const marks: Mark[] = [];
  let pending = 0;
  const cpu = createX86Cpu({
    memory,
    jit: tier !== "off",
    jitTier: tier === "js" ? "js" : undefined,
    io: {
      portRead: (_port, size) => (size === 1 ? 0xff : size === 2 ? 0xffff : -1),
      portWrite: (port, _size, value) => {
        if (port !== COM1) return;
        marks.push({
          byte: value & 0xff,
          time: performance.now(),
          cpu: cpuMilliseconds(),
          instructions: -1,
        });
        pending++;
      },
    },
  });
  if (tier === "wasm" && cpu.wasmLayout === null) {
    throw new Error("the host gave no WebAssembly memory: the WebAssembly tier cannot be measured");
  }
  cpu.setFlatProtectedMode(entry, 0x90000);
  for (;;) {
    const reason = cpu.run(SLICE);
    if (pending > 0) {
      for (let i = marks.length - pending; i < marks.length; i++)
        marks[i].instructions = cpu.instructionsRetired;
      pending = 0;
    }
    if (reason === VcpuExitReason.Halt) break;
    if (reason !== VcpuExitReason.Budget) {
      throw new Error(
        `Kumo stopped with exit ${reason} ${cpu.exit.message} at 0x${(cpu.eip >>> 0).toString(16)}`,
      );
    }
  }
  return { marks, counters: [] };
}

async function runV86(kernel: Uint8Array): Promise<Run> {
  const directory = v86Directory();
  const { V86 } = await import(join(directory, "build/libv86.mjs"));
  const marks: Mark[] = [];
  const counters: number[] = [];
  const buffer = kernel.buffer.slice(kernel.byteOffset, kernel.byteOffset + kernel.byteLength);
  return new Promise((resolve, reject) => {
    const emulator = new V86({
      wasm_path: join(directory, "build/v86.wasm"),
      multiboot: { buffer },
      memory_size: MEMORY_SIZE,
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    const timeout = setTimeout(() => {
      emulator.destroy();
      reject(
        new Error(`v86 did not finish the workloads within 5 minutes (marks: ${marks.length})`),
      );
    }, 300_000);
    emulator.add_listener("serial0-output-byte", (byte: number) => {
      marks.push({ byte, time: performance.now(), cpu: cpuMilliseconds(), instructions: 0 });
      counters.push(emulator.get_instruction_counter());
      if (byte === 0x5a /* Z: all done */) {
        clearTimeout(timeout);
        emulator.destroy().then(() => resolve({ marks, counters }), reject);
      }
    });
  });
}

function format(value: number): string {
  return (value / 1e6).toFixed(1);
}

const benchmark: Benchmark = {
  name: "cpu-x86",
  description:
    "guest instructions per second, @kumo/cpu-x86 (block tier, and interpreter alone) vs v86 (WebAssembly JIT), same guest code",
  async run(context: BenchmarkContext) {
    // The interpreter alone runs each workload for about `seconds`; v86 and
    // the block tier, some 20-30 times faster, run V86_SCALE times more
    // iterations so that their intervals are long enough to time, after a
    // warm-up equal to the interpreter's measured run, whose checksum must
    // then match the interpreter's.
    const loadBefore = loadavg()[0];
    const measured = WORKLOADS.map((w) => Math.max(1, Math.round(w.perSecond * context.seconds)));
    const kumoKernel = buildWorkloadKernel(
      measured.map((m) => [m, Math.max(1, Math.round(m / 4))]),
    );
    const v86Kernel = buildWorkloadKernel(measured.map((m) => [m * V86_SCALE, m]));
    // The block tier runs the same kernel as v86 (the same iterations, the
    // same warm-up), so both are timed over the same guest work with their
    // compilers warm; the interpreter alone runs the shorter kernel.
    const blockSegments = parseMarks(runKumo(v86Kernel.kernel, v86Kernel.entry, "wasm").marks);
    const jsSegments = parseMarks(runKumo(v86Kernel.kernel, v86Kernel.entry, "js").marks);
    const interpreter = runKumo(kumoKernel.kernel, kumoKernel.entry, "off");
    const v86 = await runV86(v86Kernel.kernel);
    const interpreterSegments = parseMarks(interpreter.marks);
    const v86Segments = parseMarks(v86.marks, v86.counters);
    const rows: string[] = [];
    for (const workload of WORKLOADS) {
      const k = blockSegments.get(workload.marker);
      const j = jsSegments.get(workload.marker);
      const i = interpreterSegments.get(workload.marker);
      const v = v86Segments.get(workload.marker);
      if (!k || !j || !i || !v) {
        throw new Error(`workload ${workload.marker} did not report on every machine`);
      }
      // The interpreter's measured run is the block tier's and v86's warm-up.
      if (i.checksum !== k.warmChecksum) {
        throw new Error(`${workload.label}: the block tier and the interpreter disagree`);
      }
      if (j.checksum !== k.checksum || j.instructions !== k.instructions) {
        throw new Error(`${workload.label}: the WebAssembly and JavaScript tiers disagree`);
      }
      if (k.checksum !== v.checksum || k.warmChecksum !== v.warmChecksum) {
        throw new Error(
          `${workload.label}: checksum differs, Kumo 0x${k.checksum.toString(16)} v86 0x${v.checksum.toString(16)}`,
        );
      }
      const instructions = k.instructions;
      const kumoRate = instructions / k.seconds;
      const interpreterRate = i.instructions / i.seconds;
      const jsRate = j.instructions / j.seconds;
      // v86's own counter over the same run, checked against Kumo's exact count.
      if (Math.abs(v.counted - instructions) > 0.05 * instructions) {
        throw new Error(
          `${workload.label}: v86 counted ${v.counted} instructions, Kumo ${instructions}`,
        );
      }
      const v86Rate = v.counted / v.seconds;
      const ratio = kumoRate / v86Rate;
      context.report({
        label: `${workload.label}: Kumo`,
        value: kumoRate,
        unit: "instr/s",
        detail: `${(instructions / 1e6).toFixed(0)}M instructions in ${k.seconds.toFixed(3)} s CPU (${k.wallSeconds.toFixed(3)} s wall)`,
      });
      context.report({
        label: `${workload.label}: Kumo JavaScript tier`,
        value: jsRate,
        unit: "instr/s",
        detail: `jitTier: "js", ${j.seconds.toFixed(3)} s CPU (${j.wallSeconds.toFixed(3)} s wall)`,
      });
      context.report({
        label: `${workload.label}: Kumo interpreter alone`,
        value: interpreterRate,
        unit: "instr/s",
        detail: `jit: false, ${i.seconds.toFixed(2)} s CPU (${i.wallSeconds.toFixed(2)} s wall)`,
      });
      context.report({
        label: `${workload.label}: v86`,
        value: v86Rate,
        unit: "instr/s",
        detail: `${(v.counted / 1e6).toFixed(0)}M instructions (v86's counter) in ${v.seconds.toFixed(2)} s CPU (${v.wallSeconds.toFixed(2)} s wall)`,
      });
      context.report({ label: `${workload.label}: Kumo/v86`, value: ratio, unit: "x" });
      rows.push(
        `  ${workload.label.padEnd(34)} ${format(kumoRate).padStart(9)} ${format(jsRate).padStart(9)} ${format(interpreterRate).padStart(11)} ${format(v86Rate).padStart(8)} ${ratio.toFixed(3).padStart(9)}`,
      );
    }
    // The summary table goes to stderr: with --json, stdout carries only the JSON document.
    console.error(
      `  rates per CPU second; 1-minute load average ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after`,
    );
    console.error(
      `  ${"workload".padEnd(34)} ${"Kumo MIPS".padStart(9)} ${"JS tier".padStart(9)} ${"interpreter".padStart(11)} ${"v86 MIPS".padStart(8)} ${"Kumo/v86".padStart(9)}`,
    );
    for (const row of rows) console.error(row);
  },
};

export default benchmark;
