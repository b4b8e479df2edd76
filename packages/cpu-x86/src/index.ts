/**
 * @kumo/cpu-x86: an IA-32 CPU interpreter implementing the `Vcpu` contract
 * of `@kumo/abi`.
 */
import { X86Cpu, type X86CpuOptions } from "./cpu";

export { ARITH_FLAGS, Cr0, Cr4, Efer, Flag, Msr, Reg, Seg, Vector } from "./constants";
export {
  UnsupportedOperation,
  X86_WASM_SCRATCH_BYTES,
  X86Cpu,
  type X86CpuCounters,
  type X86CpuOptions,
  type X86WasmLayout,
} from "./cpu";
export { CpuModel, type CpuModelOptions, defaultCpuModel } from "./cpuid";
export {
  type CodeFetcher,
  DecodedInstructions,
  decodeInstruction,
  Info as DecodedInfo,
  OPCODE_PROPERTIES,
} from "./decoder";
export { ramOnly } from "./memory";
export { type SegmentState, StateError, type X86CpuState } from "./state";

/** Creates an x86 vCPU over guest memory, in the power-on (real mode) state. */
export function createX86Cpu(options: X86CpuOptions): X86Cpu {
  return new X86Cpu(options);
}
