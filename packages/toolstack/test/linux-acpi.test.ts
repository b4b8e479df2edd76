/**
 * Acceptance test of the PVH ACPI tables (issue 6): the unmodified Linux 6.1
 * i386 guest (built by guests/, cached in ~/.cache/kumo/guests) boots with
 * the toolstack's hardware-reduced ACPI tables, prints no ACPI error, and
 * `poweroff` (not -f) powers the domain off through \_S5: Linux writes
 * SLP_TYP | SLP_EN to the FADT's sleep control register
 * (drivers/acpi/acpica/hwesleep.c) and prints "reboot: Power down" (with
 * no pm_power_off it would print "reboot: System halted" and halt,
 * kernel/reboot.c). The hypervisor log shows the S5 write.
 *
 * Linux 6.1's ACPICA loads no table in a kernel without CONFIG_PCI (the
 * default PCI_Config region handler is compiled out and installing it fails:
 * "ACPI Error: AE_BAD_PARAMETER, During Region initialization",
 * drivers/acpi/acpica/evhandler.c; the same on QEMU with its own tables).
 * The guests/ i386 kernel has CONFIG_PCI=y for this; with an older guest
 * without it (KUMO_GUESTS_CACHE may point at one) the test checks only what
 * the tables alone give (Linux finds and lists them) and that poweroff still
 * ends the domain.
 *
 * With `acpi = 0` the guest gets no tables (rsdp_paddr 0, no sleep
 * registers); Linux's poweroff then has no pm_power_off and halts every CPU
 * with interrupts off (kernel/reboot.c "reboot: System halted",
 * arch/x86/kernel/reboot.c native_machine_halt -> stop_this_cpu), which
 * Xen's hvm_hlt takes as the vCPU going down and, once no vCPU is left, as
 * a poweroff (xen/arch/x86/hvm/hvm.c hvm_vcpu_down: "All CPUs offline --
 * powering off"); the hypervisor does the same.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();
/** Whether the guest kernel can load ACPI tables at all (see above). */
const pciKernel =
  guest !== null &&
  /^CONFIG_PCI=y$/m.test(
    readFileSync(join(guest.vmlinux, "..", "config"), { encoding: "latin1", flag: "r" }),
  );

async function bootAndPowerOff(acpiLine: string) {
  const dir = mkdtempSync(join(tmpdir(), "kumo-acpi-"));
  const stateDir = join(dir, "state");
  const {
    console: output,
    stdin,
    ended,
    waitFor,
  } = createAttached(dir, [
    'name = "acpi"',
    'type = "pvh"',
    "memory = 128",
    `kernel = "${guest?.vmlinux}"`,
    `ramdisk = "${guest?.initramfs}"`,
    'cmdline = "console=hvc0"',
    acpiLine,
  ]);
  await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 600_000);
  const from = output.output.length;
  stdin.write("uname -m\n");
  await output.waitFor(/i686/, 120_000, from);
  stdin.write("poweroff\n");
  const code = await ended;
  return {
    code,
    output: output.output,
    log: readFileSync(join(stateDir, "hypervisor.log"), "latin1"),
  };
}

describe.skipIf(guest === null)("Linux i386 PVH guest with ACPI", () => {
  it("finds the tables and (with a CONFIG_PCI kernel) powers off through \\_S5", async () => {
    const { code, output, log } = await bootAndPowerOff("acpi = 1");
    // Linux found the RSDP through hvm_start_info and read our tables.
    expect(output).not.toContain("A valid RSDP was not found");
    expect(output).toMatch(/ACPI: RSDP 0x00000000000E0000/);
    expect(output).toMatch(/ACPI: FACP 0x/);
    expect(output).toMatch(/ACPI: DSDT 0x/);
    expect(output).toMatch(/ACPI: APIC 0x/);
    expect(code).toBe(0);
    expect(log).toMatch(/shutdown: poweroff/);
    if (!pciKernel) {
      // No ACPI in this kernel: poweroff halts (kernel/reboot.c) and the hypervisor
      // takes hlt with interrupts off on every vCPU as a poweroff.
      expect(output).toContain("reboot: System halted");
      return;
    }
    expect(output).toContain("reboot: Power down");
    expect(output).not.toContain("System halted");
    expect(output).not.toMatch(/ACPI BIOS Error|ACPI Error|ACPI Warning/);
    expect(log).toMatch(/ACPI sleep request SLP_TYP 5/);
  }, 900_000);

  it("with acpi = 0 gives no tables, and poweroff ends the domain by halting", async () => {
    const { code, output, log } = await bootAndPowerOff("acpi = 0");
    expect(output).toContain("A valid RSDP was not found");
    expect(output).toContain("reboot: System halted");
    expect(code).toBe(0);
    expect(log).toMatch(/shutdown: poweroff/);
    expect(log).not.toMatch(/ACPI sleep request/);
  }, 900_000);
});
