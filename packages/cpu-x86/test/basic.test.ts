import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { assemble } from "./support/nasm";

function run(source: string) {
  const cpu = createFlatCpu(assemble(source));
  const reason = runUntilHalt(cpu, 1_000_000);
  return { cpu, reason };
}

describe("flat protected mode", () => {
  it("runs moves and arithmetic until hlt", () => {
    const { cpu, reason } = run(`
      mov eax, 5
      mov ebx, 7
      add eax, ebx
      sub ebx, 10
      hlt`);
    expect(reason).toBe(VcpuExitReason.Halt);
    expect(cpu.regs[0]).toBe(12);
    expect(cpu.regs[3]).toBe(-3);
    expect(cpu.getEflags() & 1).toBe(1);
  });

  it("loops, calls and uses the stack", () => {
    const { cpu } = run(`
      xor eax, eax
      mov ecx, 100
    again:
      call addone
      loop again
      hlt
    addone:
      push ebx
      inc eax
      pop ebx
      ret`);
    expect(cpu.regs[0]).toBe(100);
    expect(cpu.regs[4]).toBe(0x80000);
  });
});
