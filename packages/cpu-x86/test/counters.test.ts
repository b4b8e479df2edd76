import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { assemble } from "./support/nasm";

/** A loop, then one of each event the counters see: invlpg, a CR3 write, a write to a code page. */
const PROGRAM = `
  mov ecx, 3000
loop:
  add eax, ecx
  dec ecx
  jnz loop
  invlpg [0x5000]
  mov eax, cr3
  mov cr3, eax
  mov byte [patch], 0x90
patch:
  int3
  hlt
`;

describe("cpu.counters", () => {
  it("counts decodes, TLB work and code-page writes; interpreted runs have no block instructions", () => {
    const cpu = createFlatCpu(assemble(PROGRAM), { jit: false });
    // Setting up the CPU (reset, PVH entry state) flushed the TLB already.
    const flushes = cpu.counters.tlbFlushes;
    expect(runUntilHalt(cpu, 100_000)).toBe(VcpuExitReason.Halt);
    const c = cpu.counters;
    expect(cpu.instructionsRetired).toBe(1 + 3 * 3000 + 6);
    expect(c.blockInstructions).toBe(0);
    expect(c.blockRuns).toBe(0);
    // Ten distinct instructions, the patched one twice (decoded, its page written, decoded again).
    expect(c.decodes).toBe(10);
    expect(c.codePageWrites).toBe(1);
    expect(c.pageInvalidations).toBe(1);
    expect(c.tlbFlushes - flushes).toBe(1);
    expect(c.tlbMisses).toBeGreaterThan(0);
    expect(c.events).toBe(0);
  });

  it("splits retired instructions between compiled blocks and the interpreter", () => {
    const cpu = createFlatCpu(assemble(PROGRAM), { jit: true, jitThreshold: 10 });
    expect(runUntilHalt(cpu, 100_000)).toBe(VcpuExitReason.Halt);
    const c = cpu.counters;
    expect(cpu.instructionsRetired).toBe(1 + 3 * 3000 + 6);
    // A block may loop in place (a backward branch to its own start), so runs can be few.
    expect(c.blockRuns).toBeGreaterThan(0);
    expect(c.blockInstructions).toBeGreaterThan(3 * 2900);
    expect(c.blockInstructions).toBeLessThan(cpu.instructionsRetired);
  });
});
