/**
 * Acceptance test of HVM firmware boot from a disk (issue 9): the i386 Linux
 * 6.1 guest from guests/ boots as `type = "hvm"` with `firmware = "seabios"`
 * from its boot disk on the emulated IDE primary master, as a PC boots Linux
 * from its hard disk. The disk (guests/recipes/hvm-disk.sh) holds SYSLINUX's
 * MBR and a FAT16 partition with SYSLINUX, the bzImage and the initramfs;
 * Debian's SeaBIOS POSTs, reads the MBR to 0000:7C00 through its ATA driver,
 * the MBR chains to SYSLINUX, which reads the kernel and initramfs through
 * INT 13h and starts Linux by the x86 boot protocol with `console=ttyS0`.
 * `kumo create -c` attaches to COM1 (`serial = "pty"`), where SYSLINUX
 * (its SERIAL directive), Linux's 8250 console and the busybox shell all
 * write, and the shell answers.
 *
 * The firmware sees no Xen CPUID leaves (see hvm-options.ts), so Linux boots
 * as on bare hardware, with the e820 map and ACPI tables SeaBIOS makes from
 * the fw_cfg items Kumo gives it.
 *
 * On the virtual clock, so that the guest's timing loops do not depend on
 * the host's load. Slow (tens of seconds to minutes of emulated firmware
 * and Linux): it runs whenever the boot disk is built (findGuest; `pnpm test`
 * builds it with the guest), and with `CI` set a missing disk fails the file
 * instead of skipping it, as the other Linux tests do.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findBootDisk } from "./support/linux-guest";

const disk = findBootDisk();

describe.runIf(disk !== undefined)("Linux i386 HVM guest booted by SeaBIOS from a disk", () => {
  it("SeaBIOS, SYSLINUX and Linux on COM1 through kumo create -c; the shell answers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-disk-"));
    const {
      console: output,
      stdin,
      ended,
      stderr,
      waitFor,
    } = createAttached(dir, [
      'name = "hvmdisk"',
      'type = "hvm"',
      "memory = 128",
      'firmware = "seabios"',
      'serial = "pty"',
      // Read-only: the cached image is shared by every test and benchmark.
      `disk = ['format=raw, vdev=hda, access=ro, target=${disk}']`,
    ]);
    await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 800_000);
    // SYSLINUX ran from the disk and loaded both files through INT 13h.
    expect(output.output).toMatch(/SYSLINUX 6\.\d+ /);
    expect(output.output).toContain("Loading /bzimage... ok");
    expect(output.output).toContain("Loading /initrd.gz...ok");
    expect(output.output).toContain(
      "Kernel command line: BOOT_IMAGE=/bzimage console=ttyS0 initrd=/initrd.gz",
    );
    // The machine Linux found is the one SeaBIOS described: its e820 map (RAM up to the pages
    // it keeps for the ACPI tables) and the tables it placed from fw_cfg (linux-hvm-seabios-acpi).
    expect(output.output).toMatch(
      /BIOS-e820: \[mem 0x0000000000100000-0x0000000007ff[0-9a-f]fff\] usable/,
    );
    expect(output.output).toMatch(/ACPI: RSDP 0x00000000000F/);
    expect(output.output).toContain("Booting paravirtualized kernel on bare hardware");
    expect(output.output).toMatch(/ttyS0 at I\/O 0x3f8 \(irq = 4/);
    expect(output.output).not.toMatch(/Kernel panic|Oops|BUG:/);

    const from = output.output.length;
    stdin.write("cat /proc/cmdline\n");
    await output.waitFor(/cat \/proc\/cmdline\s+BOOT_IMAGE=\/bzimage console=ttyS0/, 120_000, from);
    stdin.write("echo $((6*7))\n");
    await output.waitFor(/echo \$\(\(6\*7\)\)\s+42\s/, 120_000, from);
    // Linux powers off through the ACPI \_S5 (without tables it would halt with interrupts
    // off, which Kumo, as Xen, also takes as a poweroff).
    stdin.write("poweroff -f\n");
    expect(await ended).toBe(0);
    expect(stderr()).not.toMatch(/error/i);
  }, 900_000);
});
