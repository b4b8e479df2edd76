/**
 * @kumo/cpu-arm against QEMU user mode (Debian's `qemu-aarch64`, TCG), same
 * guest code, same run: millions of guest instructions per second on the
 * three workloads of cpu-x86.ts written for A64: (a) a CPU-bound integer loop
 * (mul/add/eor/ror), (b) a memory-copy loop (64 KiB, word load/store),
 * (c) a branchy workload (insertion sort of 256 pseudo-random words).
 *
 * The workloads are one static, freestanding AArch64 Linux program (no libc),
 * assembled with clang-14 --target=aarch64-linux-gnu and linked by
 * binutils-aarch64-linux-gnu's ld at 0x40000000 when the benchmark runs.
 * - QEMU runs the whole program: it reads six iteration counts (warm-up,
 *   measured, per workload) from stdin, runs each workload twice and writes
 *   the checksums and CLOCK_MONOTONIC (clock_gettime, syscall 113) around
 *   each measured run to stdout. The warm-up uses the iteration count Kumo
 *   measures, so its checksum must equal Kumo's.
 * - Kumo loads the same bytes (objcopy -O binary) into RAM at 0x40000000 and
 *   calls each workload function directly at EL1 with the MMU off (x0 = the
 *   iterations, x30 = a `wfi` loop, which exits as Halt), once to warm up and
 *   twice measured (the faster round is reported); Kumo's retired-instruction
 *   counter gives the exact count.
 * QEMU does not count instructions, so its count is derived from Kumo's two
 * exact counts: every iteration (or pass: the sort reseeds its generator each
 * pass) runs the same instructions, so count(N) = base + perIteration * N;
 * the benchmark checks that perIteration is a whole number.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VcpuExitReason } from "@kumo/abi";
import { createArm64Cpu } from "@kumo/cpu-arm";
import { createGuestMemory } from "@kumo/mmu";
import type { Benchmark, BenchmarkContext } from "./lib/harness";

const LOAD_ADDRESS = 0x40000000;
const MEMORY_SIZE = 1 << 20;

interface Workload {
  symbol: string;
  label: string;
  /** Iterations (or passes) per second of --time for Kumo. */
  perSecond: number;
}

export const WORKLOADS: Workload[] = [
  { symbol: "integer_loop", label: "(a) integer loop (mul/add/eor/ror)", perSecond: 6_000_000 },
  { symbol: "memory_copy", label: "(b) memory copy (64 KiB, word loop)", perSecond: 500 },
  { symbol: "sort", label: "(c) branchy: insertion sort of 256", perSecond: 270 },
];

/**
 * The program. `_start` (QEMU only) reads the parameters, fills the copy's
 * source buffer and runs `one` per workload: warm-up, clock_gettime,
 * measured run, clock_gettime; 48 bytes of results per workload (warm-up
 * checksum, start and end timespec, measured checksum). Syscall numbers are
 * the generic ones of Linux's include/uapi/asm-generic/unistd.h (read 63,
 * write 64, exit 93, clock_gettime 113); CLOCK_MONOTONIC is 1.
 */
const SOURCE = `
        .text
        .global _start
        .global integer_loop, memory_copy, sort, fill_source, halt
_start:
        // read 6 u64 parameters from stdin
        mov x0, #0
        adrp x1, params
        add x1, x1, :lo12:params
        mov x2, #48
        mov x8, #63
        svc #0
        bl fill_source
        adrp x19, params
        add x19, x19, :lo12:params
        adrp x20, out
        add x20, x20, :lo12:out
        adr x21, integer_loop
        bl one
        adr x21, memory_copy
        bl one
        adr x21, sort
        bl one
        mov x0, #1
        adrp x1, out
        add x1, x1, :lo12:out
        mov x2, #(3*48)
        mov x8, #64
        svc #0
        mov x0, #0
        mov x8, #93
        svc #0
one:    mov x22, x30
        ldr x0, [x19], #8
        blr x21
        str x0, [x20], #8
        mov x0, #1
        mov x1, x20
        mov x8, #113
        svc #0
        ldr x0, [x19], #8
        blr x21
        str x0, [x20, #32]
        mov x0, #1
        add x1, x20, #16
        mov x8, #113
        svc #0
        add x20, x20, #40
        ret x22
integer_loop:
        mov w1, #1
        mov w2, #0
        movz w3, #0x4e6d
        movk w3, #0x41c6, lsl #16
        mov w4, #12345
1:      mul w1, w1, w3
        add w1, w1, w4
        eor w2, w2, w1, lsr #16
        ror w2, w2, #27
        subs x0, x0, #1
        b.ne 1b
        mov w0, w2
        ret
fill_source:
        adrp x1, src
        add x1, x1, :lo12:src
        mov x2, #16384
        mov w0, #7
        movz w3, #0x4e6d
        movk w3, #0x41c6, lsl #16
        mov w4, #12345
1:      mul w0, w0, w3
        add w0, w0, w4
        str w0, [x1], #4
        subs x2, x2, #1
        b.ne 1b
        ret
memory_copy:
        adrp x6, src
        add x6, x6, :lo12:src
        adrp x7, dst
        add x7, x7, :lo12:dst
        str wzr, [x6, #0x100]
2:      mov x1, x6
        mov x2, x7
        mov x3, #16384
1:      ldr w5, [x1], #4
        str w5, [x2], #4
        subs x3, x3, #1
        b.ne 1b
        ldr w5, [x6, #0x100]
        add w5, w5, #1
        str w5, [x6, #0x100]
        subs x0, x0, #1
        b.ne 2b
        ldr w0, [x7, #0x100]
        add x8, x7, #0xf000
        ldr w5, [x8, #0xffc]
        eor w0, w0, w5
        ret
sort:
        mov w9, #0
        adrp x10, arr
        add x10, x10, :lo12:arr
        movz w3, #0x4e6d
        movk w3, #0x41c6, lsl #16
        mov w4, #12345
3:      mov w6, #12345
        mov x7, x10
        mov w8, #256
1:      mul w6, w6, w3
        add w6, w6, w4
        lsr w5, w6, #8
        str w5, [x7], #4
        subs w8, w8, #1
        b.ne 1b
        mov w11, #1
4:      ldr w5, [x10, w11, uxtw #2]
        sub w12, w11, #1
5:      tbnz w12, #31, 6f
        ldr w13, [x10, w12, sxtw #2]
        cmp w13, w5
        b.ls 6f
        add w14, w12, #1
        str w13, [x10, w14, sxtw #2]
        sub w12, w12, #1
        b 5b
6:      add w14, w12, #1
        str w5, [x10, w14, sxtw #2]
        add w11, w11, #1
        cmp w11, #256
        b.lo 4b
        ldr w13, [x10]
        add w9, w9, w13
        ldr w13, [x10, #512]
        add w9, w9, w13
        ldr w13, [x10, #1020]
        add w9, w9, w13
        subs x0, x0, #1
        b.ne 3b
        mov w0, w9
        ret
halt:   wfi
        b halt
        .bss
        .balign 16
params: .skip 48
out:    .skip 3*48
        .balign 4096
src:    .skip 65536
dst:    .skip 65536
arr:    .skip 1024
`;

interface Program {
  /** The loaded image (text and data; .bss follows, zero). */
  image: Uint8Array;
  elf: string;
  symbols: Map<string, number>;
  directory: string;
}

function buildProgram(): Program {
  const directory = mkdtempSync(join(tmpdir(), "kumo-bench-cpu-arm-"));
  const path = (name: string) => join(directory, name);
  writeFileSync(path("w.S"), SOURCE);
  const tool = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      throw new Error(
        `${command} failed (clang-14 and binutils-aarch64-linux-gnu are needed): ${String((error as { stderr?: string }).stderr ?? error)}`,
      );
    }
  };
  tool("clang-14", ["--target=aarch64-linux-gnu", "-c", path("w.S"), "-o", path("w.o")]);
  // -N: one RWX segment, text, data and .bss contiguous from 0x40000000 (the same bytes Kumo loads).
  tool("aarch64-linux-gnu-ld", [
    "-static",
    "-N",
    "--no-warn-rwx-segments",
    `-Ttext=0x${LOAD_ADDRESS.toString(16)}`,
    "-e",
    "_start",
    path("w.o"),
    "-o",
    path("w.elf"),
  ]);
  tool("aarch64-linux-gnu-objcopy", ["-O", "binary", path("w.elf"), path("w.bin")]);
  const symbols = new Map<string, number>();
  for (const line of tool("aarch64-linux-gnu-nm", [path("w.elf")]).split("\n")) {
    const [address, , name] = line.trim().split(/\s+/);
    if (name) symbols.set(name, Number.parseInt(address, 16));
  }
  return {
    image: new Uint8Array(readFileSync(path("w.bin"))),
    elf: path("w.elf"),
    symbols,
    directory,
  };
}

function symbol(program: Program, name: string): number {
  const address = program.symbols.get(name);
  if (address === undefined) throw new Error(`the workload program has no symbol ${name}`);
  return address;
}

interface KumoRun {
  seconds: number;
  instructions: number;
  checksum: number;
}

const SLICE = 1_000_000;

/** Calls `name(x0 = iterations)` on a fresh-enough Kumo vCPU until it halts at `halt`. */
function callKumo(
  cpu: ReturnType<typeof createArm64Cpu>,
  program: Program,
  name: string,
  iterations: number,
): KumoRun {
  cpu.setX(0, iterations);
  cpu.setX(30, symbol(program, "halt"));
  cpu.pc = symbol(program, name);
  const before = cpu.instructionsRetired;
  const start = performance.now();
  for (;;) {
    const reason = cpu.run(SLICE);
    if (reason === VcpuExitReason.Halt) break;
    if (reason !== VcpuExitReason.Budget) {
      throw new Error(
        `Kumo stopped with exit ${reason} ${cpu.exit.message} at 0x${cpu.pc.toString(16)}`,
      );
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    seconds,
    instructions: cpu.instructionsRetired - before,
    checksum: Number(cpu.getX(0) & 0xffffffffn),
  };
}

interface QemuSegment {
  seconds: number;
  warmChecksum: number;
  checksum: number;
}

function runQemu(program: Program, counts: [number, number][]): QemuSegment[] {
  const input = Buffer.alloc(48);
  counts.forEach(([warm, measured], i) => {
    input.writeBigUInt64LE(BigInt(warm), i * 16);
    input.writeBigUInt64LE(BigInt(measured), i * 16 + 8);
  });
  const output = execFileSync("qemu-aarch64", [program.elf], { input, timeout: 300_000 });
  if (output.length !== 3 * 48)
    throw new Error(`qemu-aarch64 wrote ${output.length} bytes, expected 144`);
  return counts.map((_, i) => {
    const at = i * 48;
    const time = (offset: number) =>
      Number(output.readBigUInt64LE(at + offset)) +
      Number(output.readBigUInt64LE(at + offset + 8)) / 1e9;
    return {
      warmChecksum: output.readUInt32LE(at),
      seconds: time(24) - time(8),
      checksum: output.readUInt32LE(at + 40),
    };
  });
}

function format(value: number): string {
  return (value / 1e6).toFixed(1);
}

const benchmark: Benchmark = {
  name: "cpu-arm",
  description:
    "guest instructions per second, @kumo/cpu-arm (interpreter) vs qemu-aarch64 user mode (TCG), same A64 code",
  run(context: BenchmarkContext) {
    const program = buildProgram();
    try {
      const measured = WORKLOADS.map((w) => Math.max(2, Math.round(w.perSecond * context.seconds)));
      const warm = measured.map((m) => Math.max(1, Math.round(m / 4)));
      // Kumo: RAM at the link address, the program's bytes, then the copy's source buffer filled by the program's own routine.
      const memory = createGuestMemory({ ramSize: MEMORY_SIZE, ramBase: LOAD_ADDRESS });
      memory.writeBytes(LOAD_ADDRESS, program.image);
      const cpu = createArm64Cpu({ memory, hooks: { readCounter: () => 0 } });
      callKumo(cpu, program, "fill_source", 0);
      const kumo = WORKLOADS.map((w, i) => {
        const warmRun = callKumo(cpu, program, w.symbol, warm[i]);
        // Two measured rounds, the faster reported (the host is shared); both retire the same count.
        const first = callKumo(cpu, program, w.symbol, measured[i]);
        const second = callKumo(cpu, program, w.symbol, measured[i]);
        if (first.instructions !== second.instructions || first.checksum !== second.checksum) {
          throw new Error(`${w.label}: two identical runs on Kumo differ`);
        }
        const run = second.seconds < first.seconds ? second : first;
        const perIteration = (run.instructions - warmRun.instructions) / (measured[i] - warm[i]);
        if (!Number.isInteger(perIteration)) {
          throw new Error(
            `${w.label}: instruction count is not linear in the iterations (${perIteration})`,
          );
        }
        return { run, perIteration, base: run.instructions - perIteration * measured[i] };
      });
      // QEMU: its warm-up is Kumo's measured run (checksums must match);
      // its measured run is scaled until it lasts about `seconds`.
      let scale = 50;
      let qemu = runQemu(
        program,
        measured.map((m) => [m, m * scale]),
      );
      const shortest = Math.min(...qemu.map((q) => q.seconds));
      if (shortest < 0.5 * context.seconds) {
        scale = Math.ceil((scale * context.seconds) / Math.max(shortest, 0.001));
        qemu = runQemu(
          program,
          measured.map((m) => [m, m * scale]),
        );
      }
      const rows: string[] = [];
      WORKLOADS.forEach((w, i) => {
        const k = kumo[i];
        const q = qemu[i];
        if (q.warmChecksum !== k.run.checksum) {
          throw new Error(
            `${w.label}: checksum differs, Kumo 0x${k.run.checksum.toString(16)} QEMU 0x${q.warmChecksum.toString(16)}`,
          );
        }
        const kumoRate = k.run.instructions / k.run.seconds;
        const qemuInstructions = k.base + k.perIteration * measured[i] * scale;
        const qemuRate = qemuInstructions / q.seconds;
        const ratio = kumoRate / qemuRate;
        context.report({
          label: `${w.label}: Kumo`,
          value: kumoRate,
          unit: "instr/s",
          detail: `${(k.run.instructions / 1e6).toFixed(0)}M instructions in ${k.run.seconds.toFixed(2)} s`,
        });
        context.report({
          label: `${w.label}: qemu-aarch64`,
          value: qemuRate,
          unit: "instr/s",
          detail: `${(qemuInstructions / 1e6).toFixed(0)}M instructions (${k.perIteration}/iteration, from Kumo's count) in ${q.seconds.toFixed(2)} s`,
        });
        context.report({
          label: `${w.label}: Kumo/QEMU`,
          value: ratio,
          unit: "x",
          detail: `${ratio.toFixed(4)}; QEMU ${(1 / ratio).toFixed(0)} times faster`,
        });
        rows.push(
          `  ${w.label.padEnd(36)} ${format(kumoRate).padStart(9)} ${format(qemuRate).padStart(9)} ${ratio.toFixed(4).padStart(10)}`,
        );
      });
      // The table goes to stderr, so that `--json` keeps stdout parseable.
      console.error(
        `  ${"workload".padEnd(36)} ${"Kumo MIPS".padStart(9)} ${"QEMU MIPS".padStart(9)} ${"Kumo/QEMU".padStart(10)}`,
      );
      for (const row of rows) console.error(row);
    } finally {
      rmSync(program.directory, { recursive: true, force: true });
    }
  },
};

export default benchmark;
