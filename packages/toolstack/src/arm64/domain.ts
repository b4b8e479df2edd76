/**
 * Creates a runnable arm64 Xen guest, the way libxl does for Xen on Arm
 * (`type = "pvh"` with an arm64 `Image`): create the domain, load the
 * Image, the device tree and the initrd (buildArm64Boot), map a GICv2 at
 * Xen's GUEST_GICD_BASE/GUEST_GICC_BASE, back the console and xenstore
 * special pages in the GUEST_MAGIC region, allocate their event channels
 * for domain 0 and publish them through HVM params, wire an arm64 CPU into
 * each vCPU (vCPU 0 at the Image's entry), and start the console backend.
 *
 * Browser-safe: everything comes in as bytes and goes out as objects.
 * Up to 8 vCPUs (a GICv2): each vCPU's `run` sets `gic.currentCpu` first,
 * since the banked GIC registers belong to the vCPU that accesses them;
 * secondary vCPUs start through PSCI CPU_ON.
 */
import { ArmGuest } from "@kumo/abi";
import { ARM64_TIMER_PPI, createArm64Cpu } from "@kumo/cpu-arm";
import { GicV2, Pl011 } from "@kumo/device-models";
import type { ClockOptions, Domain, Hypervisor } from "@kumo/hypervisor-core";
import { DomainBuildError } from "../builder/errors";
import type { DomainConfig } from "../config/domain-config";
import type { ConsoleBackend } from "../console/backend";
import { attachXenRings } from "../runner/xen-rings";
import {
  type Arm64BootLayout,
  applyArm64EntryState,
  arm64BootMemory,
  buildArm64Boot,
} from "./image";

/** Special pages in Xen's GUEST_MAGIC region (libxl_arm.c / xc_dom_arm.c: console, xenstore). */
export const Arm64SpecialPages = {
  consoleGfn: ArmGuest.MAGIC_BASE / 4096,
  xenstoreGfn: ArmGuest.MAGIC_BASE / 4096 + 1,
} as const;

/** CNTFRQ_EL0 of Kumo's arm64 CPUs (the default of `@kumo/cpu-arm`, QEMU virt's 62.5 MHz). */
const COUNTER_HZ = 62_500_000;
/** How often a vCPU's timer deadlines are re-read while none is armed (virtual ns). */
const TIMER_POLL_NS = 1_000_000;

export interface Arm64DomainImages {
  /** The arm64 `Image`. */
  readonly kernel: Uint8Array;
  readonly ramdisk?: Uint8Array;
}

export interface Arm64DomainOptions {
  readonly paused?: boolean;
  readonly clock?: ClockOptions;
  /** An SBSA UART at GUEST_PL011_BASE on SPI 32 (xl.cfg `vuart = "sbsa_uart"`); its bytes go to `uartOutput`. */
  readonly uart?: boolean;
  readonly uartOutput?: (byte: number) => void;
  /**
   * Describe Xen in the device tree (default true). False boots the Image on a
   * plain arm64 machine (GIC, timer, PSCI, the SBSA UART as its console; no
   * `/hypervisor` node) for kernels that are not Xen-aware; it implies `uart`.
   */
  readonly xen?: boolean;
}

/** The SBSA UART as a console, shaped like ConsoleBackend's terminal side (for attachTerminal). */
export interface Arm64UartConsole {
  onOutput(listener: (bytes: Uint8Array) => void): () => void;
  write(input: Uint8Array | string): void;
}

export interface RunnableArm64Domain {
  readonly domain: Domain;
  readonly layout: Arm64BootLayout;
  readonly gic: GicV2;
  readonly uart: Pl011 | null;
  /** The UART's bytes both ways (xl console -t vuart), or null without a UART. */
  readonly uartConsole: Arm64UartConsole | null;
  /** False when the device tree does not describe Xen (`xen: false`). */
  readonly xen: boolean;
  readonly console: ConsoleBackend;
  readonly consolePort: number;
  readonly storePort: number;
  readonly storePage: Uint8Array;
}

export function createArm64Domain(
  hypervisor: Hypervisor,
  config: DomainConfig,
  images: Arm64DomainImages,
  options: Arm64DomainOptions = {},
): RunnableArm64Domain {
  if (config.type !== "pvh")
    throw new DomainBuildError(`an arm64 guest has type = "pvh", not "${config.type}"`);
  if (config.vcpus > 8)
    throw new DomainBuildError(`a GICv2 guest has at most 8 vCPUs, not ${config.vcpus}`);
  const domain = hypervisor.createDomain({
    name: config.name,
    memory: config.memoryMiB * 1024 * 1024,
    vcpus: config.vcpus,
    type: "pvh",
    architecture: "arm64",
    // The generic counter is the domain's TSC: one clock source (docs/architecture.md "Time"),
    // at the frequency CNTFRQ_EL0 reports.
    clock: { mode: "virtual", ...options.clock, tscHz: COUNTER_HZ },
  });
  const xen = options.xen ?? true;
  const withUart = options.uart === true || !xen;
  try {
    const memory = domain.memory;
    if (memory === null) throw new DomainBuildError("the new domain has no memory");
    const layout = buildArm64Boot(arm64BootMemory(memory), {
      kernel: images.kernel,
      initrd: images.ramdisk,
      cmdline: config.cmdline,
      vcpus: config.vcpus,
      xen,
      ...(withUart ? { uart: { base: ArmGuest.PL011_BASE, spi: ArmGuest.VPL011_SPI } } : {}),
    });

    const cpus = Array.from({ length: config.vcpus }, (_, id) =>
      createArm64Cpu({ memory, vcpuId: id, counterFrequency: COUNTER_HZ }),
    );
    const gic = new GicV2({
      cpus: config.vcpus,
      // A raised IRQ line wakes the vCPU from wfi (Xen vcpu_kick, without the event-channel
      // line that kick() would also raise: this is the GIC's own output).
      interrupt: (cpu, asserted) => {
        if (!asserted) return;
        domain.vcpus[cpu]?.wake();
        cpus[cpu]?.notifyInterrupt();
      },
      // The event-channel PPI is a level: pending again at EOI while upcall_pending is set.
      resamplePpi: (cpu, intid) => intid === ArmGuest.EVTCHN_PPI && domain.eventLineLevel(cpu),
    });
    memory.addMmio(ArmGuest.GICD_BASE, ArmGuest.GICD_SIZE, gic.distributor);
    memory.addMmio(ArmGuest.GICC_BASE, ArmGuest.GICC_SIZE, gic.cpuInterface);
    let uart: Pl011 | null = null;
    let uartConsole: Arm64UartConsole | null = null;
    if (withUart) {
      const listeners = new Set<(bytes: Uint8Array) => void>();
      const uartOutput = options.uartOutput;
      uart = new Pl011({
        output: (byte) => {
          uartOutput?.(byte);
          if (listeners.size === 0) return;
          const bytes = Uint8Array.of(byte);
          for (const listener of listeners) listener(bytes);
        },
        interrupt: (asserted) => gic.setSpi(ArmGuest.VPL011_SPI, asserted),
      });
      memory.addMmio(ArmGuest.PL011_BASE, ArmGuest.PL011_SIZE, uart);
      const receiver = uart;
      // Typed bytes wait here while the receive FIFO is full and go in as the guest drains it
      // (xenconsoled buffers for the PV console the same way), retried every TIMER_POLL_NS.
      let pending: number[] = [];
      const feed = domain.createTimer(() => {
        pending = pending.slice(receiver.enqueue(pending));
        if (pending.length > 0) feed.set(domain.clock.now() + TIMER_POLL_NS);
      });
      uartConsole = {
        onOutput(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        write(input) {
          const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
          for (const byte of bytes) pending.push(byte);
          pending = pending.slice(receiver.enqueue(pending));
          if (pending.length > 0) feed.set(domain.clock.now() + TIMER_POLL_NS);
        },
      };
    }

    const { consolePort, storePort, storePage, console } = attachXenRings(
      hypervisor,
      domain,
      memory,
      Arm64SpecialPages,
    );

    cpus.forEach((cpu, id) => {
      cpu.interrupts = gic.source(id);
      // Banked GIC registers belong to the vCPU that runs: one store per slice.
      const run = cpu.run.bind(cpu);
      cpu.run = (budget) => {
        gic.currentCpu = id;
        return run(budget);
      };
      // The generic timer's outputs drive its PPIs (27 virtual, 30 physical).
      cpu.onTimer = (timer, asserted) => gic.setPpi(id, ARM64_TIMER_PPI[timer], asserted);
      if (id === 0) applyArm64EntryState(cpu, layout.entry);
      domain.attachVcpu(id, cpu, {
        interruptController: gic,
        // PSCI CPU_ON: the target starts at `entry` with x0 = `context`, EL1h, MMU off (DEN0022 6.4.3).
        cpuOn: (target, entry, context) => {
          const other = cpus[target];
          if (other === undefined) return false;
          other.reset();
          other.setX(0, context);
          other.pc = entry;
          return true;
        },
      });
      // The CPU samples its timers at each slice start and at timer writes; a vCPU asleep in
      // wfi needs the hypervisor to look at the deadline (Xen: vtimer.c's per-vCPU timers).
      // The CPU reports no arming, so the deadline is re-read at least every TIMER_POLL_NS.
      const timer = domain.createTimer(() => {
        cpu.updateTimers();
        const deadline = cpu.nextTimerDeadline();
        const now = domain.clock.now();
        const due = (deadline * 1e9) / COUNTER_HZ;
        timer.set(due > now ? Math.min(due, now + TIMER_POLL_NS) : now + TIMER_POLL_NS);
      });
      timer.set(domain.clock.now() + TIMER_POLL_NS);
    });
    if (!options.paused) domain.unpause();
    return {
      domain,
      layout,
      gic,
      uart,
      uartConsole,
      xen,
      console,
      consolePort,
      storePort,
      storePage,
    };
  } catch (error) {
    hypervisor.destroyDomain(domain.domid);
    throw error;
  }
}
