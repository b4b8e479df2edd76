/**
 * Acceptance test of ACPI for firmware-booted HVM guests (issue 9): the
 * i386 Linux 6.1 guest boots through Debian's SeaBIOS from its boot disk
 * (as linux-hvm-seabios-linux.test.ts), and SeaBIOS now gets the PC's ACPI
 * tables from QEMU's fw_cfg (`@kumo/device-models`' `FwCfg`): the files
 * "etc/acpi/tables" and "etc/acpi/rsdp" with the linker/loader script
 * "etc/table-loader" (src/builder/acpi.ts buildPcAcpiLoader, the same
 * tables as direct boot), which SeaBIOS 1.16 runs in qemu_platform_setup
 * (src/fw/romfile_loader.c): it places the tables in high memory and the
 * RSDP in the F segment, links and checksums them. Linux finds the RSDP by
 * its BIOS-area scan, registers the PM timer of the `AcpiPm` block at
 * 0xB000 as a clocksource, takes the SCI on IRQ 9 and IRQ 0 on pin 2 from
 * the MADT, and `poweroff` (not -f) ends the domain through `\_S5`
 * (SLP_TYP 0 written to PM1a_CNT), so `kumo create -c` exits 0.
 *
 * With `acpi = 0` SeaBIOS gets fw_cfg without the tables and builds its
 * MP table with the IRQ0 -> pin 2 override that fw_cfg's
 * "etc/irq0-override" asks for (SeaBIOS src/fw/mptable.c), so Linux's
 * timer check finds the 8254 on pin 2 through the MP table.
 *
 * Slow (minutes of emulated firmware and Linux on the virtual clock): runs
 * when the boot disk is built, fails in CI without it, as the other Linux tests.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findBootDisk } from "./support/linux-guest";

const disk = findBootDisk();

async function bootAndPowerOff(extraLines: readonly string[]) {
  const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-seabios-acpi-"));
  const {
    console: output,
    stdin,
    ended,
    waitFor,
    stderr,
  } = createAttached(dir, [
    'name = "hvm-seabios-acpi"',
    'type = "hvm"',
    "memory = 128",
    'firmware = "seabios"',
    'serial = "pty"',
    // Read-only: the cached image is shared by every test and benchmark.
    `disk = ['format=raw, vdev=hda, access=ro, target=${disk}']`,
    ...extraLines,
  ]);
  await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 800_000);
  const from = output.output.length;
  stdin.write("cat /proc/interrupts; echo $((6*7))\n");
  await output.waitFor(/\s42\s/, 120_000, from);
  const interrupts = output.output.slice(from);
  stdin.write("poweroff\n");
  const code = await ended;
  return {
    code,
    output: output.output,
    interrupts,
    stderr: stderr(),
    log: readFileSync(join(dir, "state", "hypervisor.log"), "latin1"),
  };
}

describe.runIf(disk !== undefined)("Linux i386 HVM guest booted by SeaBIOS with ACPI", () => {
  it("finds the tables SeaBIOS placed from fw_cfg, uses the PM timer and powers off through \\_S5", async () => {
    const { code, output, interrupts, log, stderr } = await bootAndPowerOff([]);
    // SeaBIOS ran from the disk and SYSLINUX loaded Linux, as without ACPI.
    expect(output).toMatch(/SYSLINUX 6\.\d+ /);
    expect(output).toContain(
      "Kernel command line: BOOT_IMAGE=/bzimage console=ttyS0 initrd=/initrd.gz",
    );
    // The RSDP where the loader's FSEG allocation put it, found by the BIOS-area scan; the
    // tables in the RAM SeaBIOS reserved at its top (ZoneHigh), each checksum accepted.
    expect(output).toMatch(/ACPI: RSDP 0x00000000000F[0-9A-F]{4} 000024 \(v02 KUMO {2}\)/);
    expect(output).not.toContain("A valid RSDP was not found");
    for (const table of ["XSDT", "FACP", "DSDT", "FACS", "APIC"])
      expect(output).toMatch(new RegExp(`ACPI: ${table} 0x0000000007FF[0-9A-F]{4}`));
    expect(output).toMatch(
      /BIOS-e820: \[mem 0x0000000007ff[0-9a-f]000-0x0000000007ffffff\] reserved/,
    );
    // The PM block at 0xB000 on this domain too: the PM timer calibrates the TSC and is a clocksource.
    expect(output).toContain("ACPI: PM-Timer IO Port: 0xb008");
    expect(output).toContain("tsc: using PMTIMER reference calibration");
    expect(output).toMatch(/clocksource: acpi_pm: mask: 0xffffff max_cycles: 0xffffff/);
    expect(output).not.toMatch(/PM-Timer (running at invalid rate|had inconsistent|failed)/);
    // The MADT rather than SeaBIOS's MP table: IRQ 0 on pin 2, the SCI on 9.
    expect(output).toContain("ACPI: Using ACPI (MADT) for SMP configuration information");
    expect(output).toContain("ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)");
    expect(output).toContain("..TIMER: vector=0x30 apic1=0 pin1=2");
    expect(output).not.toContain("MP-BIOS bug");
    expect(interrupts).toMatch(/^\s*0:.*IO-APIC\s+2-edge\s+timer/m);
    expect(interrupts).toMatch(/^\s*9:.*IO-APIC\s+9-fasteoi\s+acpi/m);
    // The DSDT.
    expect(output).toContain("ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])");
    expect(output).toMatch(/pnp: PnP ACPI: found [4-9] devices/);
    expect(output).toMatch(/ACPI: PM: \(supports S0 S5\)/);
    expect(output).not.toMatch(/ACPI BIOS Error|ACPI Error|ACPI Warning|\[Firmware Bug\]/);
    expect(output).not.toMatch(/Kernel panic|Oops|BUG:/);
    // poweroff through \_S5.
    expect(output).toContain("reboot: Power down");
    expect(log).toMatch(/ACPI sleep request SLP_TYP 0/);
    expect(log).toMatch(/shutdown: poweroff/);
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/error/i);
  }, 900_000);

  it("with acpi = 0 boots on SeaBIOS's MP table, which has the IRQ0 override, and poweroff halts", async () => {
    const { code, output, log } = await bootAndPowerOff(["acpi = 0"]);
    expect(output).toContain("A valid RSDP was not found");
    expect(output).toContain("MPTABLE: OEM ID: BOCHSCPU");
    // SeaBIOS's MP table routes ISA IRQ 0 to INTIN 2 (fw_cfg "etc/irq0-override"), so the
    // timer check passes without Linux's "8254 timer not connected to IO-APIC" fallback.
    expect(output).toContain("..TIMER: vector=0x30 apic1=0 pin1=2");
    expect(output).not.toContain("MP-BIOS bug");
    expect(output).not.toContain("acpi_pm");
    expect(output).toContain("reboot: System halted");
    expect(log).not.toMatch(/ACPI sleep request/);
    expect(code).toBe(0);
  }, 900_000);
});
