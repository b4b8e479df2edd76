import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import type { X86Cpu } from "../src/cpu";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { random } from "./support/host";
import { assemble } from "./support/nasm";

/**
 * The block tier evaluates conditions from the operands of the last
 * flag-setting instruction, kept in locals (block.ts conditionExpression),
 * and stores the flags only where they can be seen. Every flag producer it
 * generates inline (ADD, SUB, CMP, AND, OR, XOR, TEST, NEG, INC and DEC
 * after each of them, IMUL, SHL, SHR, SAR by a constant and by CL (a count
 * of 0 too; registers and memory), rotates after each, and forms with memory operands) is
 * followed by every Jcc and CMOVcc (register and memory source), on edge
 * and random operands, and by PUSHF (flags stored
 * through the interpreter); the interpreter, itself checked against the
 * host CPU (differential.test.ts), is the reference. A loop block whose
 * head reads the previous pass's flags covers the unknown state at the
 * head of a pass.
 */
const DATA = 0x800000;
/** Below DATA and above the code (about 1 MiB of it from 0x1000). */
const STACK = 0x7f0000;

const PRODUCERS = [
  "add eax, ebx",
  "sub eax, ebx",
  "cmp eax, ebx",
  "and eax, ebx",
  "or eax, ebx",
  "xor eax, ebx",
  "test eax, ebx",
  "add eax, 0x7fffffff",
  "cmp eax, -1",
  "add eax, ebx\n  inc ebx",
  "sub eax, ebx\n  dec ebx",
  "and eax, ebx\n  dec eax",
  "inc eax",
  "dec eax",
  "inc eax\n  dec ebx",
  "imul eax, eax, 0x9e3779b1",
  "imul eax, eax, 3",
  "shl eax, 1",
  "shl eax, 7",
  "shr eax, 1",
  "shr eax, 9",
  "sar eax, 1",
  "sar eax, 31",
  "shl eax, 3\n  inc ebx",
  "imul eax, eax, 5\n  dec ebx",
  "shl eax, cl",
  "shr eax, cl",
  "sar eax, cl",
  "add eax, ebx\n  shl eax, cl",
  "dec eax\n  shr eax, cl\n  inc ebx",
  "shl dword [esi], cl\n  mov eax, [esi]",
  "shr dword [esi], cl\n  mov eax, [esi]",
  "sar dword [esi], cl\n  mov eax, [esi]",
  "shl dword [esi], 5\n  mov eax, [esi]",
  "shr dword [esi], 1\n  mov eax, [esi]",
  "sar dword [esi], 0\n  mov eax, [esi]",
  "rol eax, 3",
  "add eax, ebx\n  rol eax, 3",
  "sub eax, ebx\n  ror ebx, 1",
  "xor eax, ebx\n  rol ebx, 1\n  dec eax",
  "shl eax, 2\n  ror eax, 5",
  "dec eax\n  rol eax, 1\n  ror eax, 2",
  "neg eax",
  "neg ebx\n  inc eax",
  "neg dword [esi]",
  "not eax\n  test eax, ebx",
  "not dword [esi]\n  cmp [esi], eax",
  "test eax, 0x80000001",
  "test dword [esi], 3",
  "cmp [esi], ebx",
  "add [esi], ebx",
  "sub ebx, [esi]",
];

const CONDITIONS = "o no b ae e ne be a s ns p np l ge le g".split(" ");

const EDGES = [0, 1, -1, 0x7fffffff, -0x80000000, 2, -2, 0x80, 0xffff, 0x7ffffffe];

function program(values: [number, number][]): string {
  const lines: string[] = [`  mov esi, ${DATA}`, `  mov edi, ${DATA + 32}`];
  let label = 0;
  for (const [a, b] of values) {
    for (const producer of PRODUCERS) {
      for (const cc of CONDITIONS) {
        const taken = `t${label}`;
        const done = `d${label++}`;
        lines.push(
          `  mov dword [esi], ${a}`,
          `  mov eax, ${a}`,
          `  mov ebx, ${b}`,
          `  mov ecx, ${b}`,
          `  ${producer}`,
          `  j${cc} ${taken}`,
          "  mov ecx, 0",
          `  jmp ${done}`,
          `${taken}:`,
          "  mov ecx, 1",
          `${done}:`,
          "  mov [edi], ecx",
          "  mov [edi + 4], eax",
          "  mov [edi + 8], ebx",
          `  ${producer}`,
          "  pushf",
          "  pop dword [edi + 12]",
          `  mov ecx, ${b}`,
          "  mov ebp, 0x11111111",
          "  mov edx, 0x22222222",
          `  mov dword [esi], ${a}`,
          `  mov eax, ${a}`,
          `  ${producer}`,
          `  cmov${cc} ebp, ebx`,
          `  cmov${cc} edx, [esi]`,
          "  mov [edi + 16], ebp",
          "  mov [edi + 20], edx",
          "  add edi, 32",
        );
      }
    }
  }
  // A loop block whose first instruction reads the flags of the previous pass.
  lines.push(
    "  mov ecx, 40",
    "  xor edx, edx",
    "  mov eax, 5",
    "loop:",
    "  adc edx, ecx",
    "  cmp ecx, 17",
    "  setb bl",
    "  add dl, bl",
    "  sub eax, 3",
    "  dec ecx",
    "  jnz loop",
    "  pushf",
    "  pop dword [edi]",
    "  mov [edi + 4], edx",
    "  mov [edi + 8], eax",
    "  hlt",
  );
  return lines.join("\n");
}

function run(code: Uint8Array, jit: boolean): X86Cpu {
  const cpu = createFlatCpu(code, {
    ...(jit ? { jit: true, jitThreshold: 1 } : { jit: false }),
    stackPointer: STACK,
  });
  const reason = runUntilHalt(cpu, 50_000_000);
  if (reason !== VcpuExitReason.Halt)
    throw new Error(
      `jit ${jit}: exit ${reason} at 0x${(cpu.eip >>> 0).toString(16)}: ${cpu.exit.message}`,
    );
  return cpu;
}

describe("block tier flags", () => {
  it("agrees with the interpreter on every inline flag producer followed by every Jcc and PUSHF", () => {
    const next = random(7);
    const values: [number, number][] = [];
    for (const a of EDGES.slice(0, 6)) values.push([a, EDGES[(next() >>> 0) % EDGES.length]]);
    for (let i = 0; i < 4; i++) values.push([next() | 0, next() | 0]);
    values.push([5, 5], [-0x80000000, 1], [0x7fffffff, -1]);
    const code = assemble(program(values));
    expect(0x1000 + code.length).toBeLessThan(STACK - 0x10000);
    const compiled = run(code, true);
    const interpreted = run(code, false);
    expect(compiled.exit.message).toBe("");
    const cases = values.length * PRODUCERS.length * CONDITIONS.length;
    const end = DATA + 32 + cases * 32 + 12;
    const a = compiled.ram.subarray(DATA, end);
    const b = interpreted.ram.subarray(DATA, end);
    for (let i = 0; i < a.length; i += 32) {
      if (a.subarray(i, i + 32).some((byte, j) => byte !== b[i + j])) {
        const index = (i - 32) / 32;
        const pair = values[Math.floor(index / (PRODUCERS.length * CONDITIONS.length))];
        const producer = PRODUCERS[Math.floor(index / CONDITIONS.length) % PRODUCERS.length];
        const cc = CONDITIONS[index % CONDITIONS.length];
        expect.fail(
          `case ${index}: ${JSON.stringify(producer)} then j${cc}/cmov${cc} with ${pair}: block tier ${[...a.subarray(i, i + 32)]} interpreter ${[...b.subarray(i, i + 32)]}`,
        );
      }
    }
    expect(compiled.saveState()).toEqual(interpreted.saveState());
    // The cases ran in blocks, not in the interpreter (a block starts after each Jcc).
    const share = compiled.counters.blockInstructions / compiled.instructionsRetired;
    expect(share).toBeGreaterThan(0.95);
    console.log(
      `block tier flags: ${cases} producer/condition cases, ${compiled.blocks?.compiled} blocks compiled, ${(share * 100).toFixed(1)}% of the instructions in blocks`,
    );
  });
});
