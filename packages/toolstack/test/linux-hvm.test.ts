/**
 * Acceptance test of HVM direct kernel boot (issue 9): the unmodified Linux
 * 6.1 i386 bzImage from guests/ boots as `type = "hvm"` with `kumo create -c`
 * on the emulated PC (no firmware; the Linux x86 32-bit boot protocol), its
 * console on COM1 (the 16550 on IRQ 4 through the I/O APIC, which Linux finds
 * in the ACPI MADT, or in the MP table with `acpi = 0`; ACPI itself is
 * tested in linux-hvm-acpi.test.ts), and answers at the
 * busybox prompt. Linux finds Xen through CPUID and runs as a PVHVM guest
 * (Xen clock and timer, event channels through the callback vector), as it
 * does on Xen.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findI386BzImage, hvmDirectBootConfig } from "./support/linux-guest";

const bzImage = findI386BzImage();

describe.skipIf(bzImage === null)("Linux i386 HVM guest, direct kernel boot", () => {
  it("boots to the busybox prompt on COM1 and answers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-"));
    const {
      console: output,
      stdin,
      ended,
      waitFor,
    } = createAttached(dir, hvmDirectBootConfig("hvm"));
    await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 400_000);
    expect(output.output).toContain("Hypervisor detected: Xen HVM");
    expect(output.output).toContain(
      "BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable",
    );
    expect(output.output).toMatch(/ttyS0 at I\/O 0x3f8 \(irq = 4/);
    // The MADT (MP table without ACPI) leads Linux to the I/O APIC, and the 8254 works through its pin 2.
    expect(output.output).toContain(
      "IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23",
    );
    expect(output.output).toContain("..TIMER: vector=0x30 apic1=0 pin1=2");
    expect(output.output).not.toMatch(/MP-BIOS bug|ExtINT not setup|APIC.*(error|fail)/i);
    // The i8042 answers Linux's probe and atkbd finds the PS/2 keyboard behind it.
    expect(output.output).toContain("serio: i8042 KBD port at 0x60,0x64 irq 1");
    expect(output.output).toContain("input: AT Translated Set 2 keyboard");

    const from = output.output.length;
    stdin.write("uname -m\n");
    await output.waitFor(/uname -m\s+i686/, 120_000, from);
    stdin.write("echo $((6*7))\n");
    await output.waitFor(/echo \$\(\(6\*7\)\)\s+42\s/, 120_000, from);
    stdin.write("poweroff -f\n");
    expect(await ended).toBe(0);
  }, 600_000);
});
