/**
 * What the hypervisor answers for an x86 CPU: Xen's CPUID leaves at
 * 0x40000000 and the hypercall-page MSR (xen-abi.md 1.3, 1.4; Xen
 * arch/x86/cpuid.c cpuid_hypervisor_leaves, arch/x86/hvm/hypercall.c
 * hvm_hypercall_page_initialise), and the TSC from the domain's clock.
 */
import type { Vcpu } from "@kumo/abi";
import type { Domain } from "./domain";
import { XEN_MAJOR, XEN_MINOR } from "./layouts";
import type { VcpuContext } from "./vcpu-context";

export const XEN_CPUID_BASE = 0x40000000;
/** "XenVMMXenVMM" as EBX, ECX, EDX. */
const SIGNATURE = [0x566e6558, 0x65584d4d, 0x4d4d566e] as const;
/** The hypercall-page MSR index (CPUID base+2 EBX). */
export const XEN_HYPERCALL_MSR = 0x40000000;
/** CPUID base+4 EAX flags (Xen public arch-x86/cpuid.h). */
const XEN_HVM_CPUID_VCPU_ID_PRESENT = 1 << 3;
const XEN_HVM_CPUID_DOMID_PRESENT = 1 << 4;

export function installX86Hooks(domain: Domain, context: VcpuContext, vcpu: Vcpu): void {
  vcpu.hooks = {
    cpuid: (leaf, _subleaf, out) => xenCpuid(domain, context, leaf, out),
    writeMsr: (index, low, high) => {
      if (index !== XEN_HYPERCALL_MSR) return false;
      return writeHypercallPage(domain, context, low, high);
    },
    readCounter: () => domain.clock.tsc(),
  };
}

/** Answers Xen's leaves 0x40000000..0x400000FF; everything else goes to the CPU model. */
export function xenCpuid(
  domain: Domain,
  context: VcpuContext,
  leaf: number,
  out: Uint32Array,
): boolean {
  if (leaf >>> 8 !== XEN_CPUID_BASE >>> 8) return false;
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  switch (leaf - XEN_CPUID_BASE) {
    case 0:
      out[0] = XEN_CPUID_BASE + 5;
      out[1] = SIGNATURE[0];
      out[2] = SIGNATURE[1];
      out[3] = SIGNATURE[2];
      break;
    case 1:
      out[0] = ((XEN_MAJOR << 16) | XEN_MINOR) >>> 0;
      break;
    case 2:
      out[0] = 1; // one hypercall page
      out[1] = XEN_HYPERCALL_MSR;
      break;
    case 4:
      // Upcall-vector bit 6 stays 0 so Linux uses the global callback vector (xen-abi.md 1.3).
      out[0] = XEN_HVM_CPUID_VCPU_ID_PRESENT | XEN_HVM_CPUID_DOMID_PRESENT;
      out[1] = context.id;
      out[2] = domain.domid;
      break;
    default:
      break;
  }
  return true;
}

/**
 * WRMSR to the hypercall MSR: EDX:EAX = GPA of a page | index. Index must be
 * 0 and the page guest RAM, else #GP. Fills 128 32-byte stubs
 * `mov eax, i; vmcall (or vmmcall); ret`, int3 padding, and ud2 for iret (23).
 */
export function writeHypercallPage(
  domain: Domain,
  context: VcpuContext,
  low: number,
  high: number,
): boolean | "fault" {
  if ((low & 0xfff) !== 0) return "fault";
  const gfn = (high >>> 0) * 1048576 + (low >>> 12);
  const page = domain.memory?.frame(gfn) ?? null;
  if (page === null) return "fault";
  page.fill(0xcc);
  const amd = domain.cpuVendor === "amd";
  for (let i = 0; i < 128; i++) {
    const at = i * 32;
    page[at] = 0xb8;
    page[at + 1] = i;
    page[at + 2] = 0;
    page[at + 3] = 0;
    page[at + 4] = 0;
    page[at + 5] = 0x0f;
    page[at + 6] = 0x01;
    page[at + 7] = amd ? 0xd9 : 0xc1;
    page[at + 8] = 0xc3;
  }
  // HYPERVISOR_iret is PV-only: ud2 (Xen hvm_hypercall_page_initialise).
  page[23 * 32] = 0x0f;
  page[23 * 32 + 1] = 0x0b;
  domain.latchAbi(context.lastLongMode);
  return true;
}
