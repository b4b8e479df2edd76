/**
 * The few shared_info / vcpu_info offsets the core writes itself, per guest
 * ABI, derived from `@kumo/abi`'s struct layouts (which are checked against
 * the C headers): xen-abi.md 3.1, Xen public xen.h, arch-x86/xen.h, arch-arm.h.
 */
import { abiLayouts } from "@kumo/abi";

export type GuestAbi = "x64" | "x32" | "a64";

export interface SharedInfoLayout {
  /** vcpu_info slots built into shared_info (32 on x86, 1 on arm). */
  readonly vcpuSlots: number;
  readonly vcpuInfoSize: number;
  /** Offset of `time` (vcpu_time_info) in vcpu_info. */
  readonly timeOffset: number;
  readonly wcVersion: number;
  readonly wcSec: number;
  readonly wcNsec: number;
  /** wc_sec_hi (in `arch` on x86_32). */
  readonly wcSecHi: number;
  /** Ports the 2-level ABI can name (wordBits squared). */
  readonly portLimit: number;
}

const ABI_NAMES = { x64: "x86_64", x32: "x86_32", a64: "arm64" } as const;

function sharedInfoLayout(abi: GuestAbi): SharedInfoLayout {
  const layouts = abiLayouts(ABI_NAMES[abi]);
  const shared = layouts.shared_info.offsets as Record<string, number>;
  const vcpuInfo = layouts.vcpu_info;
  return {
    vcpuSlots: layouts.shared_info.fields.vcpu_info.count,
    vcpuInfoSize: vcpuInfo.size,
    timeOffset: (vcpuInfo.offsets as Record<string, number>).time,
    wcVersion: shared.wc_version,
    wcSec: shared.wc_sec,
    wcNsec: shared.wc_nsec,
    wcSecHi: shared.wc_sec_hi ?? shared["arch.wc_sec_hi"],
    portLimit: layouts.nrEventChannels2l,
  };
}

export const SHARED_INFO_LAYOUTS: Record<GuestAbi, SharedInfoLayout> = {
  x64: sharedInfoLayout("x64"),
  x32: sharedInfoLayout("x32"),
  a64: sharedInfoLayout("a64"),
};

const timeInfo = abiLayouts("x86_64").vcpu_time_info.offsets as Record<string, number>;

/** vcpu_time_info field offsets (identical in every ABI; Xen public xen.h). */
export const VcpuTimeInfo = {
  version: timeInfo.version,
  tscTimestamp: timeInfo.tsc_timestamp,
  systemTime: timeInfo.system_time,
  tscToSystemMul: timeInfo.tsc_to_system_mul,
  tscShift: timeInfo.tsc_shift,
  flags: timeInfo.flags,
  size: abiLayouts("x86_64").vcpu_time_info.size,
} as const;

/** HVM_NR_PARAMS in Xen 4.17 (public hvm/params.h). */
export const HVM_NR_PARAMS = 39;

/** The Xen version Kumo reports (CPUID base+1, XENVER_version): 4.17. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
