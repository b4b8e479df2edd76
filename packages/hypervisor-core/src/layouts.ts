/**
 * The few shared_info / vcpu_info offsets the core writes itself, per guest
 * ABI (xen-abi.md 3.1; Xen public xen.h, arch-x86/xen.h, arch-arm.h).
 * TODO(abi): switch to @kumo/abi's struct layouts once they land.
 */
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
  /** wc_sec_hi, or -1 where the ABI has none in a fixed place Linux reads. */
  readonly wcSecHi: number;
  /** Ports the 2-level ABI can name (wordBits squared). */
  readonly portLimit: number;
}

export const SHARED_INFO_LAYOUTS: Record<GuestAbi, SharedInfoLayout> = {
  x64: {
    vcpuSlots: 32,
    vcpuInfoSize: 64,
    timeOffset: 32,
    wcVersion: 3072,
    wcSec: 3076,
    wcNsec: 3080,
    wcSecHi: 3084,
    portLimit: 4096,
  },
  x32: {
    vcpuSlots: 32,
    vcpuInfoSize: 64,
    timeOffset: 32,
    wcVersion: 2304,
    wcSec: 2308,
    wcNsec: 2312,
    wcSecHi: 2340,
    portLimit: 1024,
  },
  a64: {
    vcpuSlots: 1,
    vcpuInfoSize: 48,
    timeOffset: 16,
    wcVersion: 1072,
    wcSec: 1076,
    wcNsec: 1080,
    wcSecHi: 1084,
    portLimit: 4096,
  },
};

/** vcpu_time_info field offsets (identical in every ABI; Xen public xen.h). */
export const VcpuTimeInfo = {
  version: 0,
  tscTimestamp: 8,
  systemTime: 16,
  tscToSystemMul: 24,
  tscShift: 28,
  flags: 29,
  size: 32,
} as const;

/** HVM_NR_PARAMS in Xen 4.17 (public hvm/params.h). */
export const HVM_NR_PARAMS = 39;

/** The Xen version Kumo reports (CPUID base+1, XENVER_version): 4.17. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
