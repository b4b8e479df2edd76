/**
 * PSCI and SMCCC for arm64 guests (`hvc #0`), which Xen implements in the
 * hypervisor (xen/arch/arm/vpsci.c, vsmc.c). Function ids and return codes
 * are Arm DEN0022 (PSCI 1.1) and DEN0028 (SMCCC); the id is in w0, arguments
 * in x1..x3, the result in x0 (xen-abi.md 1.5).
 * TODO(abi): move these numbers to @kumo/abi.
 */
import type { Domain } from "./domain";
import type { VcpuContext } from "./vcpu-context";

export const PsciFunction = {
  VERSION: 0x84000000,
  CPU_OFF: 0x84000002,
  CPU_ON_32: 0x84000003,
  CPU_ON_64: 0xc4000003,
  AFFINITY_INFO_32: 0x84000004,
  AFFINITY_INFO_64: 0xc4000004,
  MIGRATE_INFO_TYPE: 0x84000006,
  SYSTEM_OFF: 0x84000008,
  SYSTEM_RESET: 0x84000009,
  FEATURES: 0x8400000a,
  SMCCC_VERSION: 0x80000000,
  SMCCC_ARCH_FEATURES: 0x80000001,
} as const;

export const PsciReturn = {
  SUCCESS: 0,
  NOT_SUPPORTED: -1,
  INVALID_PARAMETERS: -2,
  DENIED: -3,
  ALREADY_ON: -4,
  INTERNAL_FAILURE: -6,
} as const;

/** PSCI 1.1 and SMCCC 1.1, as Xen 4.17 reports them. */
const PSCI_VERSION_1_1 = 0x10001;
const SMCCC_VERSION_1_1 = 0x10001;
/** MIGRATE_INFO_TYPE: 2 = no trusted OS needing migration (DEN0022 5.9). */
const MIGRATE_INFO_NONE = 2;

/**
 * Where a vCPU starts after PSCI CPU_ON: the toolstack (or CPU package)
 * sets PC = `entry`, x0 = `context`, EL1h with MMU and caches off
 * (DEN0022 6.4.3), and returns false if it cannot.
 */
export type CpuOnHandler = (vcpuId: number, entry: number, context: number) => boolean;

const SUPPORTED = new Set<number>(Object.values(PsciFunction));

/** MPIDR affinity of a vCPU as Xen numbers them (vcpuid_to_vaffinity: Aff0 = id & 15, Aff1 = id >> 4). */
export function vcpuAffinity(vcpuId: number): number {
  return (vcpuId & 0xf) | ((vcpuId >> 4) << 8);
}

function vcpuOfAffinity(domain: Domain, low: number, high: number): VcpuContext | undefined {
  // Aff2 (bits 23:16) and Aff3 (bits 39:32) are always 0 for Xen guests.
  if (high !== 0 || low & 0xff0000 || (low & 0xff) > 0xf) return undefined;
  return domain.vcpus[(low & 0xf) + ((low >>> 8) & 0xff) * 16];
}

/** Answers one PSCI/SMCCC call; returns the signed value for x0. */
export function handlePsci(
  domain: Domain,
  context: VcpuContext,
  args: Uint32Array,
  cpuOn: CpuOnHandler | null,
): number {
  const fn = args[0] >>> 0;
  switch (fn) {
    case PsciFunction.VERSION:
      return PSCI_VERSION_1_1;
    case PsciFunction.SMCCC_VERSION:
      return SMCCC_VERSION_1_1;
    case PsciFunction.MIGRATE_INFO_TYPE:
      return MIGRATE_INFO_NONE;
    case PsciFunction.FEATURES:
      return SUPPORTED.has(args[2] >>> 0) ? PsciReturn.SUCCESS : PsciReturn.NOT_SUPPORTED;
    case PsciFunction.SYSTEM_OFF:
      domain.shutdown(0);
      return PsciReturn.SUCCESS;
    case PsciFunction.SYSTEM_RESET:
      domain.shutdown(1);
      return PsciReturn.SUCCESS;
    case PsciFunction.CPU_OFF: {
      context.online = false;
      if (!domain.vcpus.some((other) => other.online)) domain.shutdown(0);
      return PsciReturn.SUCCESS;
    }
    case PsciFunction.CPU_ON_32:
    case PsciFunction.CPU_ON_64: {
      const target = vcpuOfAffinity(domain, args[2], fn === PsciFunction.CPU_ON_64 ? args[3] : 0);
      if (target === undefined || target.vcpu === null) return PsciReturn.INVALID_PARAMETERS;
      if (target.online) return PsciReturn.ALREADY_ON;
      const wide = fn === PsciFunction.CPU_ON_64;
      const entry = args[4] + (wide ? args[5] * 4294967296 : 0);
      const contextId = args[6] + (wide ? args[7] * 4294967296 : 0);
      if (cpuOn === null || !cpuOn(target.id, entry, contextId)) return PsciReturn.INTERNAL_FAILURE;
      domain.startVcpu(target.id);
      return PsciReturn.SUCCESS;
    }
    case PsciFunction.AFFINITY_INFO_32:
    case PsciFunction.AFFINITY_INFO_64: {
      // Only level 0 (x2 = 0) is meaningful for Xen guests.
      if (args[4] !== 0) return PsciReturn.INVALID_PARAMETERS;
      const target = vcpuOfAffinity(
        domain,
        args[2],
        fn === PsciFunction.AFFINITY_INFO_64 ? args[3] : 0,
      );
      if (target === undefined) return PsciReturn.INVALID_PARAMETERS;
      return target.online ? 0 : 1;
    }
    default:
      return PsciReturn.NOT_SUPPORTED;
  }
}
