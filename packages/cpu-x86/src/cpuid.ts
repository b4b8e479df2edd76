/**
 * The CPUID model (Intel SDM vol. 2 CPUID). Only what the interpreter
 * implements is advertised: features are derived from the flags below.
 */
export interface CpuModelOptions {
  /** 12-character vendor string. "GenuineIntel" makes Linux use VMCALL, "AuthenticAMD" VMMCALL. */
  vendor?: string;
  /** CPUID.1:EAX (family/model/stepping). Default 0x6fb: family 6 model 15 stepping 11. */
  signature?: number;
  /** Brand string (up to 48 characters) for leaves 0x80000002-4. */
  brand?: string;
  /** Advertise NX (CPUID.80000001:EDX.20) and EFER.NXE. Default true. */
  nx?: boolean;
  /** Advertise MTRRs (CPUID.1:EDX.12) and their MSRs. Default false. */
  mtrr?: boolean;
  /**
   * Processor base frequency in MHz, advertised in leaf 0x16 (EAX base,
   * EBX maximum, ECX bus: 100 MHz), which raises the maximum basic leaf
   * from 1 to 0x16; leaves 2 to 0x15 then answer zeros (no cache,
   * topology or feature information). The VMM passes its TSC rate: Linux
   * on an Intel CPU takes leaf 0x16 as the CPU frequency instead of
   * calibrating against the PIT (`cpu_khz_from_cpuid`), which a PVH
   * domain does not have. Default: not advertised.
   */
  frequencyMhz?: number;
}

/** CPUID leaf 16H: processor frequency information. */
const FREQUENCY_LEAF = 0x16;

export class CpuModel {
  readonly vendor: string;
  readonly signature: number;
  readonly brand: string;
  readonly nx: boolean;
  readonly mtrr: boolean;
  /** Leaf 0x16's base frequency, or 0 (maximum basic leaf 1). */
  readonly frequencyMhz: number;
  /** FXSAVE/FXRSTOR are implemented. */
  readonly fxsr = true;
  /** CLFLUSH is implemented (as an access check). */
  readonly clflush = true;
  /** MMX, SSE and SSE2 are implemented (sse.ts) and advertised. */
  readonly mmx = true;
  readonly sse = true;
  readonly sse2 = true;

  constructor(options: CpuModelOptions = {}) {
    this.vendor = options.vendor ?? "GenuineIntel";
    if (this.vendor.length !== 12) {
      throw new RangeError(`CPUID vendor must be 12 characters, got "${this.vendor}"`);
    }
    this.signature = options.signature ?? 0x6fb;
    this.brand = (options.brand ?? "Kumo virtual IA-32 CPU").slice(0, 47);
    this.nx = options.nx ?? true;
    this.mtrr = options.mtrr ?? false;
    const mhz = options.frequencyMhz ?? 0;
    if (!Number.isInteger(mhz) || mhz < 0 || mhz > 0xffff) {
      throw new RangeError(`CPUID frequency must be a whole number of MHz up to 65535, got ${mhz}`);
    }
    this.frequencyMhz = mhz;
  }

  /** CPUID.1:EDX: FPU PSE TSC MSR PAE CX8 SEP (MTRR) PGE CMOV PAT CLFSH MMX FXSR SSE SSE2. */
  featuresEdx(): number {
    let edx =
      (1 << 0) | // FPU
      (1 << 3) | // PSE
      (1 << 4) | // TSC
      (1 << 5) | // MSR
      (1 << 6) | // PAE
      (1 << 8) | // CX8
      (1 << 11) | // SEP
      (1 << 13) | // PGE
      (1 << 15) | // CMOV
      (1 << 16); // PAT
    if (this.mtrr) edx |= 1 << 12;
    if (this.clflush) edx |= 1 << 19;
    if (this.mmx) edx |= 1 << 23;
    if (this.fxsr) edx |= 1 << 24;
    if (this.sse) edx |= 1 << 25;
    if (this.sse2) edx |= 1 << 26;
    return edx;
  }

  /** Fills out[0..3] with EAX EBX ECX EDX for `leaf`. */
  query(leaf: number, _subleaf: number, out: Uint32Array): void {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0;
    out[3] = 0;
    switch (leaf) {
      case 0:
        out[0] = this.frequencyMhz > 0 ? FREQUENCY_LEAF : 1;
        out[1] = word(this.vendor, 0);
        out[3] = word(this.vendor, 4);
        out[2] = word(this.vendor, 8);
        return;
      case 1:
        out[0] = this.signature;
        // CLFLUSH line size 8 (x8 = 64 bytes), one logical processor, APIC ID 0.
        out[1] = (8 << 8) | (1 << 16);
        // ECX bit 31: running under a hypervisor (xen-abi.md 1.3).
        out[2] = 0x80000000;
        out[3] = this.featuresEdx();
        return;
      case FREQUENCY_LEAF:
        // SDM vol. 2 CPUID leaf 16H: EAX[15:0] base, EBX[15:0] maximum, ECX[15:0] bus (reference) MHz.
        if (this.frequencyMhz > 0) {
          out[0] = this.frequencyMhz;
          out[1] = this.frequencyMhz;
          out[2] = 100;
        }
        return;
      case 0x80000000:
        out[0] = 0x80000008;
        return;
      case 0x80000001:
        out[3] = this.nx ? 1 << 20 : 0;
        return;
      case 0x80000002:
      case 0x80000003:
      case 0x80000004: {
        const offset = (leaf - 0x80000002) * 16;
        for (let i = 0; i < 4; i++) out[i] = word(this.brand, offset + 4 * i);
        return;
      }
      case 0x80000008:
        // 36 physical (PAE), 32 linear address bits.
        out[0] = 0x2024;
        return;
      default:
        // Leaves above the maximum return the highest basic leaf (SDM vol. 2 CPUID);
        // this model answers zeros, as Xen does for hidden leaves.
        return;
    }
  }
}

function word(text: string, offset: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const code = offset + i < text.length ? text.charCodeAt(offset + i) & 0xff : 0;
    value |= code << (8 * i);
  }
  return value >>> 0;
}

export function defaultCpuModel(): CpuModel {
  return new CpuModel();
}
