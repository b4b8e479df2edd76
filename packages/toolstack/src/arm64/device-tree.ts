/**
 * The device tree of an arm64 guest, laid out as Xen's toolstack writes it
 * for a domU (libxl's libxl_arm.c: make_root_properties, make_chosen_node,
 * make_cpus_node, make_psci_node, make_memory_nodes, make_gicv2_node,
 * make_timer_node, make_hypervisor_node, make_vpl011_uart_node), with the
 * addresses and interrupt numbers of Xen's reference guest map (Xen public
 * arch-arm.h `GUEST_*`, `ArmGuest` in `@kumo/abi`).
 *
 * What Linux reads from it (xen-abi.md 1.5): `/hypervisor` (exact name,
 * directly under the root; arch/arm/xen/enlighten.c fdt_find_hyper_node)
 * with "xen,xen-<version>" first, region 0 of `reg` as the grant-table
 * window and `interrupts` as the event-channel PPI; `psci` with method
 * "hvc" (drivers/firmware/psci); `cpus` with enable-method "psci"; the GIC
 * (drivers/irqchip/irq-gic.c); the timer PPIs (drivers/clocksource/
 * arm_arch_timer.c); `/chosen` bootargs and linux,initrd-start/end
 * (drivers/of/fdt.c).
 */
import { ArmGuest } from "@kumo/abi";
import { cells, cells64, DeviceTreeError, empty, FdtWriter, strings } from "./fdt";

/** GIC interrupt specifier flags (Linux Documentation/devicetree/bindings/interrupt-controller/arm,gic.yaml). */
const GIC_SPI = 0;
const GIC_PPI = 1;
const IRQ_TYPE_LEVEL_HIGH = 4;
const IRQ_TYPE_LEVEL_LOW = 8;

export interface Arm64MemoryBank {
  readonly base: number;
  readonly size: number;
}

export interface Arm64DeviceTreeOptions {
  /** RAM banks (Xen: bank 0 at `ArmGuest.RAM0_BASE`). */
  readonly memory: readonly Arm64MemoryBank[];
  /** vCPUs, 1 to 8 (a GICv2 targets 8 CPUs). CPU n has MPIDR Aff0 = n. */
  readonly vcpus: number;
  /** `/chosen` bootargs. */
  readonly bootargs?: string;
  /** The initrd's guest-physical [start, end). */
  readonly initrd?: { readonly start: number; readonly end: number };
  /**
   * Describe Xen: `/hypervisor` with the grant-table window and the event
   * PPI. False builds the tree of a plain arm64 machine (no Xen) for
   * kernels that are not Xen-aware.
   */
  readonly xen?: boolean;
  /** The Xen version in "xen,xen-<version>"; default "4.17". */
  readonly xenVersion?: string;
  /** GICv2 frames; default Xen's GUEST_GICD_BASE / GUEST_GICC_BASE. */
  readonly gic?: { readonly distributorBase: number; readonly cpuInterfaceBase: number };
  /** The grant-table window; default Xen's GUEST_GNTTAB_BASE/SIZE. */
  readonly grantTable?: Arm64MemoryBank;
  /** INTID of the event-channel PPI; default GUEST_EVTCHN_PPI (31). */
  readonly eventChannelPpi?: number;
  /**
   * An SBSA UART (the PL011 subset Xen's `vuart = "sbsa_uart"` offers) at
   * `base` on SPI `spi`; `stdout-path` then points at it. Default none.
   */
  readonly uart?: { readonly base: number; readonly spi: number };
}

/**
 * The timer PPIs in the binding's order (secure physical, non-secure
 * physical, virtual); the optional fourth, the hypervisor timer, is left out
 * as libxl's make_timer_node does: a guest has no EL2.
 */
const TIMER_PPIS = [
  ArmGuest.TIMER_PHYS_S_PPI,
  ArmGuest.TIMER_PHYS_NS_PPI,
  ArmGuest.TIMER_VIRT_PPI,
] as const;

function hex(value: number): string {
  return value.toString(16);
}

/** Builds the DTB of one arm64 guest. Throws `DeviceTreeError` for impossible options. */
export function buildArm64DeviceTree(options: Arm64DeviceTreeOptions): Uint8Array {
  const { vcpus } = options;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 8)
    throw new DeviceTreeError(`a GICv2 guest has 1 to 8 vCPUs, not ${vcpus}`);
  if (options.memory.length === 0) throw new DeviceTreeError("the guest has no memory bank");
  const xen = options.xen ?? true;
  const xenVersion = options.xenVersion ?? "4.17";
  const gic = options.gic ?? {
    distributorBase: ArmGuest.GICD_BASE,
    cpuInterfaceBase: ArmGuest.GICC_BASE,
  };
  const grantTable = options.grantTable ?? {
    base: ArmGuest.GNTTAB_BASE,
    size: ArmGuest.GNTTAB_SIZE,
  };
  const eventChannelPpi = options.eventChannelPpi ?? ArmGuest.EVTCHN_PPI;
  if (eventChannelPpi < 16 || eventChannelPpi > 31)
    throw new DeviceTreeError(
      `the event-channel interrupt ${eventChannelPpi} is not a PPI (16-31)`,
    );
  const uart = options.uart;
  if (uart && (uart.spi < 32 || uart.spi > 1019))
    throw new DeviceTreeError(`the UART's interrupt ${uart.spi} is not an SPI (32-1019)`);
  const uartPath = uart ? `/sbsa-uart@${hex(uart.base)}` : undefined;
  // PPI specifiers carry a CPU mask in bits 15:8: every vCPU.
  const ppiCpus = ((1 << vcpus) - 1) << 8;

  const fdt = new FdtWriter();
  const gicPhandle = fdt.allocatePhandle();
  fdt.beginNode("");
  if (xen) {
    fdt.property("compatible", strings(`xen,xenvm-${xenVersion}`, "xen,xenvm"));
    fdt.property("model", strings(`XENVM-${xenVersion}`));
  } else {
    fdt.property("compatible", strings("kumo,arm64-virt"));
    fdt.property("model", strings("Kumo arm64 virtual machine"));
  }
  fdt.property("interrupt-parent", cells(gicPhandle));
  fdt.property("#address-cells", cells(2));
  fdt.property("#size-cells", cells(2));

  fdt.beginNode("chosen");
  if (options.bootargs !== undefined) fdt.property("bootargs", strings(options.bootargs));
  if (options.initrd) {
    if (options.initrd.end < options.initrd.start)
      throw new DeviceTreeError("the initrd ends before it starts");
    fdt.property("linux,initrd-start", cells64(options.initrd.start));
    fdt.property("linux,initrd-end", cells64(options.initrd.end));
  }
  if (uartPath) fdt.property("stdout-path", strings(uartPath));
  fdt.endNode();

  fdt.beginNode("cpus");
  fdt.property("#address-cells", cells(1));
  fdt.property("#size-cells", cells(0));
  for (let cpu = 0; cpu < vcpus; cpu++) {
    fdt.beginNode(`cpu@${hex(cpu)}`);
    fdt.property("device_type", strings("cpu"));
    fdt.property("compatible", strings("arm,armv8"));
    fdt.property("enable-method", strings("psci"));
    fdt.property("reg", cells(cpu));
    fdt.endNode();
  }
  fdt.endNode();

  // PSCI 1.0 over HVC #0 (Arm DEN 0022; Linux drivers/firmware/psci/psci.c takes the IDs from the version).
  fdt.beginNode("psci");
  fdt.property("compatible", strings("arm,psci-1.0", "arm,psci-0.2"));
  fdt.property("method", strings("hvc"));
  fdt.endNode();

  for (const bank of options.memory) {
    fdt.beginNode(`memory@${hex(bank.base)}`);
    fdt.property("device_type", strings("memory"));
    fdt.property("reg", cells64(bank.base, bank.size));
    fdt.endNode();
  }

  fdt.beginNode(`interrupt-controller@${hex(gic.distributorBase)}`);
  fdt.property("compatible", strings("arm,cortex-a15-gic", "arm,cortex-a9-gic"));
  fdt.property("#interrupt-cells", cells(3));
  fdt.property("#address-cells", cells(0));
  fdt.property("interrupt-controller", empty);
  fdt.property(
    "reg",
    cells64(gic.distributorBase, ArmGuest.GICD_SIZE, gic.cpuInterfaceBase, ArmGuest.GICC_SIZE),
  );
  fdt.property("phandle", cells(gicPhandle));
  fdt.endNode();

  fdt.beginNode("timer");
  fdt.property("compatible", strings("arm,armv8-timer"));
  fdt.property(
    "interrupts",
    cells(...TIMER_PPIS.flatMap((ppi) => [GIC_PPI, ppi - 16, ppiCpus | IRQ_TYPE_LEVEL_LOW])),
  );
  fdt.endNode();

  if (uart) {
    fdt.beginNode(uartPath?.slice(1) ?? "");
    fdt.property("compatible", strings("arm,sbsa-uart"));
    fdt.property("reg", cells64(uart.base, ArmGuest.PL011_SIZE));
    fdt.property("interrupts", cells(GIC_SPI, uart.spi - 32, IRQ_TYPE_LEVEL_HIGH));
    fdt.property("current-speed", cells(115200));
    fdt.endNode();
  }

  if (xen) {
    fdt.beginNode("hypervisor");
    fdt.property("compatible", strings(`xen,xen-${xenVersion}`, "xen,xen"));
    fdt.property("reg", cells64(grantTable.base, grantTable.size));
    fdt.property("interrupts", cells(GIC_PPI, eventChannelPpi - 16, ppiCpus | IRQ_TYPE_LEVEL_LOW));
    fdt.endNode();
  }

  fdt.endNode();
  return fdt.finish();
}
