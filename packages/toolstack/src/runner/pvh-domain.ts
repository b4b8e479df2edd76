/**
 * Creates a runnable PVH domain from a validated xl.cfg configuration, the
 * way libxl's domain creation does for a PVH guest: create the domain, load
 * the kernel and boot data (buildPvhBoot), back the special pages, allocate
 * the console and xenstore event channels for domain 0 and publish both
 * through HVM params, wire an x86 CPU into each vCPU in the PVH entry
 * state, and start the console backend. (Grant refs 0 and 1 are not seeded:
 * Kumo's console and xenstore map the pages as foreign memory, as
 * xenconsoled and xenstored can.)
 *
 * Browser-safe: everything comes in as bytes and goes out as objects.
 */
import { CpuModel, createX86Cpu } from "@kumo/cpu-x86";
import { AcpiSleep } from "@kumo/device-models";
import type { ClockOptions, Domain, Hypervisor } from "@kumo/hypervisor-core";
import { ACPI_S5_SLEEP_TYPE, ACPI_SLEEP_PORT_BASE } from "../builder/acpi";
import { type ElfImage, parseElf } from "../builder/elf";
import { DomainBuildError } from "../builder/errors";
import {
  applyPvhEntryState,
  buildPvhBoot,
  guestBootMemory,
  type PvhBootLayout,
  PvhSpecialPages,
} from "../builder/pvh";
import type { DomainConfig } from "../config/domain-config";
import type { ConsoleBackend } from "../console/backend";
import { attachLocalApic, type LocalApicWiring } from "./local-apic";
import { onShutdownOf } from "./shutdown-action";
import { createX86GuestMemory } from "./x86-memory";
import { attachXenRings } from "./xen-rings";

export interface PvhDomainImages {
  /** The kernel ELF (see `unpackKernelImage`). */
  readonly kernel: Uint8Array | ElfImage;
  readonly ramdisk?: Uint8Array;
}

export interface PvhDomainOptions {
  /** Leave the domain paused (xl create -p). */
  readonly paused?: boolean;
  /** The domain's clock (default: virtual, reproducible; "wall" for interactive use). */
  readonly clock?: ClockOptions;
  /**
   * Give each vCPU an emulated local APIC, as Xen does for PVH guests
   * (default true). False reproduces a CPU without one (CPUID.1:EDX.APIC
   * clear, nothing at 0xFEE00000), on which Linux stays in PIC mode.
   */
  readonly localApic?: boolean;
  /**
   * Give the guest ACPI tables and the hardware-reduced sleep registers, as
   * Xen's toolstack does for PVH: Linux then powers off through `\_S5`.
   * Default: xl.cfg `acpi`, else true, as libxl
   * (tools/libs/light/libxl_x86.c libxl__arch_domain_build_info_setdefault).
   * A kernel without CONFIG_PCI loads no table (Linux 6.1's ACPICA has no
   * default PCI_Config handler then: AE_BAD_PARAMETER "During Region
   * initialization", drivers/acpi/acpica/evhandler.c) and powers off as
   * with ACPI off. Off: rsdp_paddr = 0 and no sleep registers; Linux's
   * poweroff then halts every vCPU with interrupts off, which the hypervisor
   * takes as a poweroff (Xen hvm_hlt -> hvm_vcpu_down: "All CPUs offline --
   * powering off").
   */
  readonly acpi?: boolean;
}

export interface RunnablePvhDomain {
  readonly domain: Domain;
  readonly layout: PvhBootLayout;
  /** The hvc0 backend (xenconsoled's part) for this domain. */
  readonly console: ConsoleBackend;
  /** The guest's ports for its console and xenstore rings (HVM_PARAM_*_EVTCHN). */
  readonly consolePort: number;
  readonly storePort: number;
  /** The xenstore ring page, for a xenstore daemon to serve (HVM_PARAM_STORE_PFN). */
  readonly storePage: Uint8Array;
  /** Each vCPU's local APIC (device model, mapped base, global enable) by vCPU id; empty with `localApic: false`. */
  readonly localApics: readonly LocalApicWiring[];
  /** The sleep control/status registers at I/O ports 0xb000-0xb007; null without ACPI. */
  readonly acpiSleep: AcpiSleep | null;
}

/**
 * The vCPUs' port I/O: the ACPI sleep registers, and all ones for every
 * other port (nothing there: legacy probes find nothing, xen-abi.md 1.2).
 */
function acpiPortIo(sleep: AcpiSleep) {
  return {
    portRead(port: number, size: 1 | 2 | 4): number {
      const offset = port - ACPI_SLEEP_PORT_BASE;
      if (offset >= 0 && offset < 8) return sleep.read(offset, size);
      return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
    },
    portWrite(port: number, size: 1 | 2 | 4, value: number): void {
      const offset = port - ACPI_SLEEP_PORT_BASE;
      if (offset >= 0 && offset < 8) sleep.write(offset, size, value);
    },
  };
}

export function createPvhDomain(
  hypervisor: Hypervisor,
  config: DomainConfig,
  images: PvhDomainImages,
  options: PvhDomainOptions = {},
): RunnablePvhDomain {
  if (config.type !== "pvh")
    throw new DomainBuildError(`domain type "${config.type}" is not supported yet`);
  const elf = images.kernel instanceof Uint8Array ? parseElf(images.kernel) : images.kernel;
  const domain = hypervisor.createDomain({
    name: config.name,
    memory: createX86GuestMemory(config.memoryMiB, config.vcpus),
    vcpus: config.vcpus,
    type: "pvh",
    architecture: "x86",
    // The kernel's ELF class latches the initial shared_info layout (xen-abi.md 3.1).
    guestWidth: elf.bits,
    clock: options.clock,
    onShutdown: onShutdownOf(config),
  });
  try {
    const memory = domain.memory;
    if (memory === null) throw new DomainBuildError("the new domain has no memory");
    const acpiEnabled = options.acpi ?? config.acpi ?? true;
    const layout = buildPvhBoot(guestBootMemory(memory), {
      kernel: elf,
      ramdisk: images.ramdisk,
      cmdline: config.cmdline,
      acpiVcpus: acpiEnabled ? config.vcpus : undefined,
    });
    // XENMEM_memory_map answers with the same map as hvm_start_info.
    domain.memoryMap = layout.memmap.map((entry) => ({ ...entry }));

    const { consolePort, storePort, storePage, console } = attachXenRings(
      hypervisor,
      domain,
      memory,
      PvhSpecialPages,
    );

    // Xen enters S5 on the guest's write (domain_shutdown(SHUTDOWN_poweroff)); other
    // sleep states are not offered in the DSDT, so a write of another SLP_TYP is ignored.
    const acpiSleep = !acpiEnabled
      ? null
      : new AcpiSleep({
          sleep(sleepType) {
            hypervisor.log(`(d${domain.domid}) ACPI sleep request SLP_TYP ${sleepType}`);
            if (sleepType === ACPI_S5_SLEEP_TYPE) domain.shutdown(0);
          },
        });
    const io = acpiSleep === null ? undefined : acpiPortIo(acpiSleep);
    const localApics: LocalApicWiring[] = [];
    // A PVH domain has no PIT. CPUID leaf 0x16 gives Linux the CPU frequency (the TSC rate, in
    // the leaf's 16 bits of MHz), so it skips its PIT calibration (quick_pit_calibrate: 50,000
    // rounds reading a port no device answers).
    const mhz = Math.min(0xffff, Math.max(1, Math.round(domain.clock.tscHz / 1e6)));
    const model = new CpuModel({ frequencyMhz: mhz });
    for (let id = 0; id < config.vcpus; id++) {
      const cpu = createX86Cpu({ memory, io, model });
      // vCPU 0 starts at the PVH entry; the others wait for the guest to start them.
      if (id === 0) applyPvhEntryState(cpu, layout.vcpu);
      domain.attachVcpu(id, cpu);
      // Xen emulates a local APIC for PVH guests (vlapic); Linux needs it to use the Xen timer.
      if (options.localApic !== false) localApics.push(attachLocalApic(domain, id, cpu, memory));
    }
    if (!options.paused) domain.unpause();
    return {
      domain,
      layout,
      console,
      consolePort,
      storePort,
      storePage,
      localApics,
      acpiSleep,
    };
  } catch (error) {
    hypervisor.destroyDomain(domain.domid);
    throw error;
  }
}
