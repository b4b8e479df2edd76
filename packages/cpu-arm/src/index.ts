/**
 * @kumo/cpu-arm: an AArch64 (ARMv8-A) CPU interpreter implementing the
 * `Vcpu` contract of `@kumo/abi`.
 */
import { Arm64Cpu, type Arm64CpuOptions } from "./cpu";

export {
  ARM64_TIMER_PPI,
  Arm64Cpu,
  type Arm64CpuOptions,
  type Arm64CpuState,
  Arm64StateError,
  Arm64Timer,
  ExceptionClass,
  XEN_HYPERCALL_TAG,
} from "./cpu";
export { DECODED_STRIDE, decodeInstruction, LoadKind, Op } from "./decoder";
export { SYSTEM_REGISTERS, type SysRegInfo, sysRegKey } from "./system-registers";

/** Creates an arm64 vCPU over guest memory, at EL1h with the MMU off and PC 0. */
export function createArm64Cpu(options: Arm64CpuOptions): Arm64Cpu {
  return new Arm64Cpu(options);
}
