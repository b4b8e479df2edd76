/**
 * Test helpers for packages that drive `@kumo/cpu-x86` (the differential
 * oracle, the hypervisor core's tests): a CPU over fresh RAM in the flat
 * 32-bit protected-mode state of a Xen PVH entry, and a run-until-hlt loop.
 */
import { VcpuExitReason } from "@kumo/abi";
import { createGuestMemory, type GuestMemory } from "@kumo/mmu";
import { Cr4 } from "../constants";
import { X86_WASM_SCRATCH_BYTES, X86Cpu, type X86CpuOptions } from "../cpu";
import { ramOnly } from "../memory";

export interface FlatCpuOptions extends Partial<X86CpuOptions> {
  /** Guest RAM size in bytes (default 16 MiB). */
  ramSize?: number;
  /** Where `code` is copied and where execution starts (default 0x1000). */
  loadAddress?: number;
  /** Initial ESP (default 0x80000). */
  stackPointer?: number;
  /** Set CR4.OSFXSR and OSXMMEXCPT, as an SSE-aware OS does (default false: a PVH entry has CR4 = 0). */
  sse?: boolean;
  /**
   * RAM in a WebAssembly.Memory with scratch for the CPU, so that its
   * WebAssembly block tier runs (default false: plain RAM, the JavaScript tier).
   */
  wasm?: boolean;
}

/** RAM of `size` bytes holding `code` at `loadAddress`, as `options` ask. */
function flatMemory(
  code: Uint8Array,
  size: number,
  loadAddress: number,
  options: FlatCpuOptions,
): GuestMemory {
  if (options.memory) return options.memory;
  const memory = options.wasm
    ? createGuestMemory({ ramSize: size, wasmScratch: X86_WASM_SCRATCH_BYTES })
    : ramOnly(new Uint8Array(size));
  memory.ram.u8.set(code, loadAddress);
  return memory;
}

/** A CPU in flat 32-bit protected mode (paging off, CPL 0) with `code` loaded at `loadAddress`. */
export function createFlatCpu(code: Uint8Array, options: FlatCpuOptions = {}): X86Cpu {
  const loadAddress = options.loadAddress ?? 0x1000;
  const memory = flatMemory(code, options.ramSize ?? 16 << 20, loadAddress, options);
  const cpu = new X86Cpu({ ...options, memory });
  cpu.setFlatProtectedMode(loadAddress, options.stackPointer ?? 0x80000);
  if (options.sse) cpu.writeCr4(cpu.cr4 | Cr4.OSFXSR | Cr4.OSXMMEXCPT);
  return cpu;
}

/** A CPU in real mode at 0000:`loadAddress` (default 0x7c00) with `code` loaded there. */
export function createRealModeCpu(code: Uint8Array, options: FlatCpuOptions = {}): X86Cpu {
  const loadAddress = options.loadAddress ?? 0x7c00;
  const memory = flatMemory(code, options.ramSize ?? 1 << 20, loadAddress, options);
  const cpu = new X86Cpu({ ...options, memory });
  cpu.setRealMode(0, loadAddress);
  cpu.regs[4] = options.stackPointer ?? 0x7000;
  return cpu;
}

/**
 * Runs until `hlt` (Halt exit) or another exit that is not Budget; returns
 * the exit reason. Throws if `maxInstructions` pass first (a test bug).
 */
export function runUntilHalt(cpu: X86Cpu, maxInstructions = 10_000_000): VcpuExitReason {
  const end = cpu.instructionsRetired + maxInstructions;
  for (;;) {
    const reason = cpu.run(Math.min(1_000_000, end - cpu.instructionsRetired));
    if (reason !== VcpuExitReason.Budget) return reason;
    if (cpu.instructionsRetired >= end) {
      throw new Error(
        `no hlt within ${maxInstructions} instructions (eip=0x${(cpu.eip >>> 0).toString(16)})`,
      );
    }
  }
}
