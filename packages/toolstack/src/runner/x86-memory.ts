import { X86_WASM_SCRATCH_BYTES } from "@kumo/cpu-x86";
import { type ArrayBufferGuestMemory, createGuestMemory } from "@kumo/mmu";

/**
 * RAM for an x86 domain, with WebAssembly scratch after it for each vCPU
 * (`X86_WASM_SCRATCH_BYTES`): cpu-x86's WebAssembly tier needs its TLB and
 * registers in the same WebAssembly.Memory as RAM. Where the host cannot
 * allocate that, the memory is plain RAM and the CPUs use their other tiers.
 */
export function createX86GuestMemory(memoryMiB: number, vcpus: number): ArrayBufferGuestMemory {
  return createGuestMemory({
    ramSize: memoryMiB * 1024 * 1024,
    wasmScratch: vcpus * X86_WASM_SCRATCH_BYTES,
  });
}
