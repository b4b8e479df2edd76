/**
 * Acceptance test of the local APIC wiring (issue 9): the unmodified Linux
 * 6.1 i386 guest (built by guests/, cached in ~/.cache/kumo/guests) boots as
 * a PVH domain with `kumo create -c` on the virtual clock, finds the
 * emulated local APIC, installs the Xen PV timer (which it skips in PIC
 * mode: arch/x86/xen/time.c xen_time_init via setup_percpu_clockev), prints
 * no APIC complaint (Linux's "APIC: Stale IRR" appears when nothing answers
 * at 0xFEE00000), and takes keyboard input through hvc_xen, whose delayed
 * event-channel re-enable needs timer ticks.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();

describe.skipIf(guest === null)("Linux i386 PVH guest with the local APIC", () => {
  it("installs the Xen timer, prints no APIC warning and takes keyboard input", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-apic-"));
    const {
      console: output,
      stdin,
      ended,
      waitFor,
    } = createAttached(dir, [
      'name = "apic"',
      'type = "pvh"',
      "memory = 128",
      `kernel = "${guest?.vmlinux}"`,
      `ramdisk = "${guest?.initramfs}"`,
      'cmdline = "console=hvc0"',
    ]);
    await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 300_000);
    // The APIC comes from the MADT (ACPI is on by default, as libxl gives PVH guests);
    // without tables Linux would probe it and print "Found and enabled local APIC!"
    // (arch/x86/kernel/apic/apic.c detect_init_APIC).
    expect(output.output).toContain(
      "ACPI: Using ACPI for processor (LAPIC) configuration information",
    );
    expect(output.output).toMatch(/Enabling APIC mode: +Flat/);
    expect(output.output).toContain("installing Xen timer for CPU 0");
    expect(output.output).not.toMatch(/Stale IRR|APIC.*(error|warn|fail)|spurious APIC/i);
    // Timer ticks run: printk time advances through the boot instead of freezing and jumping.
    const freeing = /\[\s*([0-9.]+)\] Freeing unused kernel image/.exec(output.output);
    expect(freeing).not.toBeNull();
    expect(Number(freeing?.[1])).toBeLessThan(5);

    const from = output.output.length;
    stdin.write('echo "@@$((40+2))@@"; uname -m\n');
    await output.waitFor(/@@42@@\s+i686/, 120_000, from);
    stdin.write("poweroff -f\n");
    expect(await ended).toBe(0);
  }, 600_000);
});
