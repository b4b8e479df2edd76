/**
 * Acceptance test of ACPI on the HVM PC (issue 9): the unmodified Linux 6.1
 * i386 bzImage from guests/ boots as `type = "hvm"` by direct kernel boot
 * with the toolstack's PC tables (src/builder/acpi.ts buildPcAcpiTables:
 * RSDP at 0xE0000, RSDT/XSDT, FACS, FADT with the PIIX4-style PM block at
 * 0xB000 and the SCI on IRQ 9, DSDT, MADT), finds them, registers the ACPI
 * PM timer as a clocksource (drivers/clocksource/acpi_pm.c, which first
 * checks the timer's rate against the 8254, verify_pmtmr_rate), routes the
 * SCI through the MADT's interrupt source override, enumerates PCI and the
 * ISA devices through the DSDT (ACPI PNP), prints no ACPI error, and
 * `poweroff` (not -f) ends the domain through `\_S5`: Linux writes SLP_TYP
 * | SLP_EN to PM1a_CNT (drivers/acpi/acpica/hwsleep.c
 * acpi_hw_legacy_sleep), the `AcpiPm` device reports SLP_TYP 0 (the
 * PIIX4's soft off) and the domain shuts down with reason poweroff, so
 * `kumo create -c` exits 0, as the PVH test (linux-acpi.test.ts) does.
 * With `acpi = 0` the guest has the MP table only, as before ACPI, and
 * `poweroff` ends the domain by halting.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findI386BzImage, hvmDirectBootConfig } from "./support/linux-guest";

const bzImage = findI386BzImage();

async function bootAndPowerOff(extraLines: readonly string[], command: string) {
  const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-acpi-"));
  const stateDir = join(dir, "state");
  const {
    console: output,
    stdin,
    ended,
    waitFor,
  } = createAttached(dir, hvmDirectBootConfig("hvm-acpi", extraLines));
  await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 600_000);
  const from = output.output.length;
  stdin.write("cat /proc/interrupts; echo $((6*7))\n");
  await output.waitFor(/\s42\s/, 120_000, from);
  const interrupts = output.output.slice(from);
  stdin.write(`${command}\n`);
  const code = await ended;
  return {
    code,
    output: output.output,
    interrupts,
    log: readFileSync(join(stateDir, "hypervisor.log"), "latin1"),
  };
}

describe.skipIf(bzImage === null)("Linux i386 HVM guest with ACPI (direct kernel boot)", () => {
  it("finds the tables, registers the acpi_pm clocksource and powers off through \\_S5", async () => {
    const { code, output, interrupts, log } = await bootAndPowerOff([], "poweroff");
    // The tables, found by the BIOS-area scan (acpi_find_root_pointer, 0xE0000-0xFFFFF).
    expect(output).toMatch(/ACPI: RSDP 0x00000000000E0000 000024 \(v02 KUMO {2}\)/);
    for (const table of ["XSDT", "FACP", "DSDT", "FACS", "APIC"])
      expect(output).toMatch(new RegExp(`ACPI: ${table} 0x00000000000E`));
    // The PM timer at the FADT's PM_TMR_BLK, checked against the PIT and registered.
    expect(output).toContain("ACPI: PM-Timer IO Port: 0xb008");
    expect(output).toMatch(/clocksource: acpi_pm: mask: 0xffffff max_cycles: 0xffffff/);
    expect(output).not.toMatch(/PM-Timer (running at invalid rate|had inconsistent|failed)/);
    // The MADT: I/O APIC, IRQ 0 -> pin 2, the SCI on 9 level / active high.
    expect(output).toContain("IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23");
    expect(output).toContain("ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)");
    expect(output).toContain("ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)");
    expect(output).toContain("Using ACPI (MADT) for SMP configuration information");
    expect(output).toContain("..TIMER: vector=0x30 apic1=0 pin1=2");
    expect(interrupts).toMatch(/^\s*9:.*IO-APIC\s+9-fasteoi\s+acpi/m);
    // The DSDT: the PCI root bridge, and the ISA devices through ACPI PNP.
    expect(output).toContain("ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])");
    expect(output).toMatch(/pnp: PnP ACPI: found [4-9] devices/);
    expect(output).toMatch(/ttyS0 at I\/O 0x3f8 \(irq = 4/);
    expect(output).toContain("serio: i8042 KBD port at 0x60,0x64 irq 1");
    expect(output).toMatch(/ACPI: PM: \(supports S0 S5\)/);
    expect(output).not.toMatch(/ACPI BIOS Error|ACPI Error|ACPI Warning|\[Firmware Bug\]/);
    // poweroff through \_S5: SLP_TYP 0 (PIIX4 soft off), reason poweroff, exit status 0.
    expect(output).toContain("reboot: Power down");
    expect(output).not.toContain("System halted");
    expect(log).toMatch(/ACPI sleep request SLP_TYP 0/);
    expect(log).toMatch(/shutdown: poweroff/);
    expect(code).toBe(0);
  }, 900_000);

  it("with acpi = 0 boots on the MP table alone, without the PM block, and poweroff halts", async () => {
    const { code, output, log } = await bootAndPowerOff(["acpi = 0"], "poweroff");
    expect(output).not.toMatch(/ACPI: RSDP/);
    expect(output).not.toContain("acpi_pm");
    expect(output).toContain("IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23");
    expect(output).toContain("..TIMER: vector=0x30 apic1=0 pin1=2");
    // No pm_power_off: Linux halts every CPU with interrupts off (kernel/reboot.c), which
    // ends the domain as Xen's hvm_hlt does once no vCPU is left (hvm_vcpu_down).
    expect(output).toContain("reboot: System halted");
    expect(log).not.toMatch(/ACPI sleep request/);
    expect(log).toMatch(/shutdown: poweroff/);
    expect(code).toBe(0);
  }, 900_000);
});
