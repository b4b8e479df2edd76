import { describe, expect, it } from "vitest";
import { ensureGuest } from "../src/index";
import { hasCommand, startQemu } from "./helpers";

// A sanity check of the i386 guest independent of Kumo: Debian's
// qemu-system-i386 (TCG) boots it to the busybox prompt on ttyS0, once as a
// bzImage through SeaBIOS and once as vmlinux through QEMU's own PVH loader
// (QEMU hw/i386/x86.c: an ELF -kernel needs XEN_ELFNOTE_PHYS32_ENTRY and is
// entered with an hvm_start_info, the path Kumo's domain builder takes).
// Skipped where qemu-system-x86 is not installed.
describe.skipIf(!hasCommand("qemu-system-i386"))("the i386 guest under qemu-system-i386", () => {
  it.each(["bzImage", "vmlinux"] as const)(
    "boots the %s to the shell, answers commands and powers off",
    async (image) => {
      const guest = await ensureGuest("i386", { progress: false });
      const qemu = startQemu("qemu-system-i386", [
        ...["-m", "128", "-kernel", guest[image] as string, "-initrd", guest.initramfs],
        ...["-append", "console=ttyS0"],
      ]);
      try {
        await qemu.waitFor("Kumo test guest i386 ready", 120_000);
        await qemu.waitFor("~ # ", 60_000);
        qemu.type("uname -m; cat /proc/cmdline; echo $((6*7))");
        await qemu.waitFor("42\r\n", 30_000);
        expect(qemu.output()).toContain("i686\r\n");
        expect(qemu.output()).toContain("console=ttyS0\r\n");
        qemu.type("poweroff");
        // No ACPI power-off in this tiny kernel under QEMU: Linux halts after
        // busybox init has asked it to power off.
        await qemu.waitFor("Requesting system poweroff", 30_000);
        expect(qemu.output()).not.toMatch(/Kernel panic|Oops/);
      } finally {
        qemu.stop();
      }
    },
    600_000,
  );
});
