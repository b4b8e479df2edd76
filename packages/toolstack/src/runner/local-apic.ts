/**
 * Gives an x86 vCPU of a PVH domain a local APIC, as Xen's vlapic does for
 * PVH guests in the hypervisor (xen/arch/x86/hvm/vlapic.c). Without one,
 * Linux stays in PIC mode and never installs the Xen PV clockevent
 * (arch/x86/kernel/apic/apic.c apic_intr_mode_init; x86_init.timers.
 * setup_percpu_clockev is xen_time_init on PVH), so its boot stalls until
 * timeouts expire.
 *
 * The wiring: the `@kumo/device-models` LAPIC as an MMIO region at the
 * IA32_APIC_BASE address (following relocations the guest makes with
 * WRMSR), CPUID.1:EDX.APIC set and CPUID.1:EBX[31:24] its APIC ID, and one
 * interrupt source for the CPU that puts the Xen callback vector first and
 * the LAPIC's vectors after it. The callback vector bypasses the LAPIC (no
 * IRR/ISR, no EOI), as Xen's hvm_vcpu_has_pending_irq checks it before the
 * vlapic and Linux 6.1's global callback mode expects
 * (arch/x86/xen/enlighten_hvm.c, xen-abi.md 3.3).
 */
import { Msr, type X86Cpu } from "@kumo/cpu-x86";
import { LOCAL_APIC_SIZE, LocalApic, type LocalApicIpi } from "@kumo/device-models";
import type { Domain, VcpuContext } from "@kumo/hypervisor-core";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";

/** CPUID.1:EDX bit 9: on-chip APIC (SDM vol. 2A, CPUID table 3-11). */
const CPUID_1_EDX_APIC = 1 << 9;
/** IA32_APIC_BASE bit 11: APIC global enable (SDM vol. 3A 11.4.4). */
const APIC_BASE_ENABLE = 1 << 11;
/** IA32_APIC_BASE bits that must be 0: 0-7 and 9 reserved, 10 x2APIC enable (x2APIC not offered). */
const APIC_BASE_RESERVED_LOW = 0x6ff;
/** Bits 35:32 of the base exist with 36 physical address bits (CPUID 0x80000008 says 36). */
const APIC_BASE_RESERVED_HIGH = ~0xf;

/** The interrupt source given to the CPU: the Xen upcall first, then the LAPIC. Hot: no allocation. */
class UpcallThenApic {
  constructor(
    private readonly upcall: VcpuContext,
    private readonly apic: LocalApic,
    private readonly wiring: LocalApicWiring,
  ) {}

  hasPending(): boolean {
    return this.upcall.hasPending() || (this.wiring.enabled && this.apic.hasPending());
  }

  acknowledge(): number {
    if (this.upcall.hasPending()) return this.upcall.acknowledge();
    return this.wiring.enabled ? this.apic.acknowledge() : -1;
  }
}

/** What the toolstack keeps per vCPU: the APIC, where it is mapped, and whether it is globally enabled. */
export interface LocalApicWiring {
  readonly apic: LocalApic;
  /** Guest-physical base currently mapped (IA32_APIC_BASE bits 35:12), or -1 when unmapped. */
  mappedBase: number;
  /** IA32_APIC_BASE.EN: a hardware-disabled APIC delivers nothing and has no MMIO page. */
  enabled: boolean;
}

/**
 * Creates vCPU `id`'s local APIC and wires it into `cpu`, which must
 * already be attached to `domain` (attachVcpu installs the hooks this
 * wraps).
 */
export function attachLocalApic(
  domain: Domain,
  id: number,
  cpu: X86Cpu,
  memory: ArrayBufferGuestMemory,
  /** The APIC's EOI of a level-triggered vector (an HVM PC forwards it to its I/O APIC). */
  eoi?: (vector: number) => void,
): LocalApicWiring {
  const context = domain.vcpus[id];
  // The APIC timer on the scheduler's timer list (as Xen's vlapic timer sits on Xen's timer
  // heap, xen/arch/x86/hvm/vpt.c): a virtual-clock domain halted until it skips to its deadline,
  // a wall-clock one's idle sleep ends at it. Destroying the domain drops it.
  const timer = domain.createTimer(() => apic.timerExpired());
  const apic: LocalApic = new LocalApic({
    apicId: id,
    clock: {
      now: () => domain.clock.now(),
      schedule: (deadline) => timer.set(deadline),
    },
    // Xen vcpu_kick: wake a halted or blocked vCPU and make the CPU look at its interrupts.
    interrupt: () => context.kick(),
    ipi: (ipi) => ignoredIpi(domain, id, ipi),
    eoi,
  });
  const wiring: LocalApicWiring = { apic, mappedBase: -1, enabled: false };
  applyApicBase(domain, memory, wiring, cpu.apicBaseLow, cpu.apicBaseHigh);
  cpu.interrupts = new UpcallThenApic(context, apic, wiring);

  const hooks = cpu.hooks;
  const xenCpuid = hooks.cpuid;
  hooks.cpuid = (leaf, subleaf, out) => {
    if (xenCpuid?.(leaf, subleaf, out)) return true;
    if (leaf !== 1) return false;
    cpu.model.query(leaf, subleaf, out);
    // The APIC feature flag follows IA32_APIC_BASE.EN (SDM vol. 3A 11.4.3); EBX[31:24] is the initial APIC ID.
    if (wiring.enabled) out[3] |= CPUID_1_EDX_APIC;
    out[1] = ((out[1] & 0x00ffffff) | (id << 24)) >>> 0;
    return true;
  };
  const xenWriteMsr = hooks.writeMsr;
  hooks.writeMsr = (index, low, high) => {
    if (index !== Msr.APIC_BASE) return xenWriteMsr?.(index, low, high) ?? false;
    // Reserved bits #GP (SDM vol. 4 IA32_APIC_BASE; Xen vlapic_msr_set); the CPU keeps the value.
    if (low & APIC_BASE_RESERVED_LOW || high & APIC_BASE_RESERVED_HIGH) return "fault";
    applyApicBase(domain, memory, wiring, low, high);
    return false;
  };
  return wiring;
}

/** Maps the APIC page where IA32_APIC_BASE says, or unmaps it when the APIC is globally disabled. */
function applyApicBase(
  domain: Domain,
  memory: ArrayBufferGuestMemory,
  wiring: LocalApicWiring,
  low: number,
  high: number,
): void {
  const enabled = (low & APIC_BASE_ENABLE) !== 0;
  const base = (high & 0xf) * 4294967296 + ((low & 0xfffff000) >>> 0);
  const target = enabled ? base : -1;
  if (target !== wiring.mappedBase) {
    if (wiring.mappedBase >= 0) memory.removeMmio(wiring.mappedBase);
    wiring.mappedBase = -1;
    if (target >= 0) {
      try {
        memory.addMmio(target, LOCAL_APIC_SIZE, wiring.apic);
        wiring.mappedBase = target;
      } catch (error) {
        // The guest moved its APIC onto RAM or another device; accesses then reach what is there.
        domain.hypervisor.log(
          `d${domain.domid}: local APIC base 0x${target.toString(16)} not mapped: ${(error as Error).message}`,
        );
      }
    }
  }
  if (wiring.enabled && !enabled) {
    // Hardware disable returns the APIC to its power-up state (SDM vol. 3A 11.4.3).
    wiring.apic.reset();
  }
  wiring.enabled = enabled;
}

function ignoredIpi(domain: Domain, id: number, ipi: LocalApicIpi): void {
  // PVH secondary vCPUs start through VCPUOP_up, not INIT/SIPI; other IPIs need an SMP APIC bus.
  domain.hypervisor.log(
    `d${domain.domid}v${id}: local APIC IPI not delivered (mode ${ipi.deliveryMode}, vector 0x${ipi.vector.toString(16)}, shorthand ${ipi.shorthand}, destination ${ipi.destination})`,
  );
}
