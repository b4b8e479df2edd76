import { spawn, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ensureGuest } from "../src/index";

// A sanity check of the i386 guest independent of Kumo: Debian's
// qemu-system-i386 (TCG) boots it to the busybox prompt on ttyS0, once as a
// bzImage through SeaBIOS and once as vmlinux through QEMU's own PVH loader
// (hw/i386/x86.c: an ELF -kernel needs XEN_ELFNOTE_PHYS32_ENTRY and is
// entered with an hvm_start_info, the path Kumo's domain builder takes).
// Skipped where qemu-system-x86 is not installed.
const hasQemu = spawnSync("sh", ["-c", "command -v qemu-system-i386"]).status === 0;

describe.skipIf(!hasQemu)("the i386 guest under qemu-system-i386", () => {
  it.each(["bzImage", "vmlinux"] as const)(
    "boots the %s to the shell, answers commands and powers off",
    async (image) => {
      const guest = await ensureGuest("i386", { progress: false });
      const qemu = spawn(
        "qemu-system-i386",
        [
          ...["-m", "128", "-kernel", guest[image]!, "-initrd", guest.initramfs],
          ...[
            "-append",
            "console=ttyS0",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
          ],
          "-no-reboot",
        ],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      let output = "";
      const started = performance.now();
      const waitFor = (text: string, timeoutMs: number) =>
        new Promise<number>((resolve, reject) => {
          const check = () => {
            if (output.includes(text)) {
              clearInterval(timer);
              clearTimeout(limit);
              resolve(performance.now() - started);
            }
          };
          const timer = setInterval(check, 20);
          const limit = setTimeout(() => {
            clearInterval(timer);
            reject(
              new Error(`no "${text}" after ${timeoutMs} ms; output:\n${output.slice(-2000)}`),
            );
          }, timeoutMs);
          check();
        });
      qemu.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString("latin1");
      });
      try {
        await waitFor("Kumo test guest i386 ready", 120_000);
        await waitFor("~ # ", 60_000);
        qemu.stdin.write("uname -m; cat /proc/cmdline; echo $((6*7))\n");
        await waitFor("42\r\n", 30_000);
        expect(output).toContain("i686\r\n");
        expect(output).toContain("console=ttyS0\r\n");
        qemu.stdin.write("poweroff\n");
        // No ACPI power-off in this tiny kernel under QEMU: Linux halts after
        // busybox init has asked it to power off.
        await waitFor("Requesting system poweroff", 30_000);
        expect(output).not.toMatch(/Kernel panic|Oops/);
      } finally {
        qemu.kill();
      }
    },
    600_000,
  );
});
