/**
 * `kumo create -n` for an arm64 Image: where the builder would put the
 * kernel, device tree and initrd, and the entry state, without a domain.
 */
import { ArmGuest } from "@kumo/abi";
import type { DomainConfig } from "../config/domain-config";
import { buildArm64Boot } from "./image";

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

export function describeArm64Build(
  config: DomainConfig,
  kernelPath: string,
  kernel: Uint8Array,
  ramdisk: Uint8Array | undefined,
): string {
  const xen = config.xenAware ?? true;
  const uart = config.vuart === "sbsa_uart" || !xen;
  // A memory that only measures: the layout is the same as a real build's.
  const layout = buildArm64Boot(
    { base: ArmGuest.RAM0_BASE, size: config.memoryMiB * 1024 * 1024, write: () => {} },
    {
      kernel,
      initrd: ramdisk,
      cmdline: config.cmdline,
      vcpus: config.vcpus,
      xen,
      // The same UART as createArm64Domain: asked for by vuart, or the plain machine's console.
      ...(uart ? { uart: { base: ArmGuest.PL011_BASE, spi: ArmGuest.VPL011_SPI } } : {}),
    },
  );
  const parts = ["GICv2", "PSCI"];
  if (uart) parts.push(`SBSA UART at ${hex(ArmGuest.PL011_BASE)} SPI ${ArmGuest.VPL011_SPI}`);
  parts.push(xen ? "/hypervisor xen,xen-4.17" : "no /hypervisor (xen_aware = 0)");
  const { header } = layout;
  const rows: [string, string][] = [
    ["name", config.name],
    ["type", `${config.type} (arm64)`],
    ["memory", `${config.memoryMiB} MiB at ${hex(ArmGuest.RAM0_BASE)}`],
    ["vcpus", String(config.vcpus)],
    [
      "kernel",
      `${kernelPath} (arm64 Image, text_offset ${hex(header.textOffset)}, image_size ${hex(header.imageSize)})`,
    ],
    [
      "kernel_range",
      `${hex(layout.kernelAddress)}-${hex(layout.kernelAddress + header.imageSize)}`,
    ],
    [
      "device_tree",
      `${hex(layout.deviceTreeAddress)} (${layout.deviceTree.length} bytes; ${parts.join(", ")})`,
    ],
    ["entry", `${hex(layout.entry.pc)} x0=${hex(layout.entry.x0)} EL1h, DAIF masked, MMU off`],
    ["cmdline", JSON.stringify(config.cmdline)],
    [
      "ramdisk",
      layout.initrd
        ? `${config.ramdisk} at ${hex(layout.initrd.start)}-${hex(layout.initrd.end)}`
        : "none",
    ],
  ];
  const width = Math.max(...rows.map(([key]) => key.length));
  return `${rows.map(([key, value]) => `${key.padEnd(width)} : ${value}`).join("\n")}\n`;
}
