import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureGuest, findGuest } from "../src/index";
import { hasCommand, listInitramfs, readElf, startQemu, xenHeaderConstant } from "./helpers";

// Building the x86_64 and arm64 kernels takes about as long again as i386
// each: only with KUMO_GUESTS_ALL=1 (scripts: `pnpm --filter @kumo/guests
// test:all`).
const all = process.env.KUMO_GUESTS_ALL === "1";
const buildTimeout = 90 * 60 * 1000;

/**
 * The arm64 guest is checked in the default run too when it is already
 * built for the current inputs (never built there): it needs clang-14 and
 * lld-14, which guestInputs checks (and throws about) first.
 */
function arm64Cached(): boolean {
  try {
    return findGuest("arm64") !== undefined;
  } catch {
    return false;
  }
}
const arm64 = all || arm64Cached();

describe.runIf(all)("the x86_64 guest", () => {
  it(
    "is an ELF64 for EM_X86_64 with XEN_ELFNOTE_PHYS32_ENTRY and a bzImage",
    async () => {
      const guest = await ensureGuest("x86_64");
      const elf = readElf(readFileSync(guest.vmlinux));
      expect(elf.elfClass).toBe(64);
      expect(elf.machine).toBe(62); // EM_X86_64, Linux include/uapi/linux/elf-em.h
      const phys32 = xenHeaderConstant("elfnote.h", "XEN_ELFNOTE_PHYS32_ENTRY");
      expect(elf.notes.some((note) => note.name === "Xen" && note.type === phys32)).toBe(true);
      expect(readFileSync(guest.kernel).subarray(0x202, 0x206).toString("latin1")).toBe("HdrS");
      expect(listInitramfs(guest.initramfs).some((entry) => entry.path === "init")).toBe(true);
    },
    buildTimeout,
  );
});

describe.runIf(arm64)("the arm64 guest", () => {
  it(
    "is an ELF64 for EM_AARCH64 with an arm64 Image and an arm64 busybox",
    async () => {
      const guest = await ensureGuest("arm64");
      const elf = readElf(readFileSync(guest.vmlinux));
      expect(elf.elfClass).toBe(64);
      expect(elf.machine).toBe(183); // EM_AARCH64
      // Linux Documentation/arm64/booting.rst: magic "ARM\x64" at offset 56.
      expect(readFileSync(guest.kernel).readUInt32LE(56)).toBe(0x644d5241);
      expect(guest.image).toBe(guest.kernel);
      expect(listInitramfs(guest.initramfs).some((entry) => entry.path === "bin/busybox")).toBe(
        true,
      );
    },
    buildTimeout,
  );
});

/** Boots a guest under QEMU TCG to its prompt and checks `uname -m`. */
async function bootToShell(command: string, args: string[], arch: string, machine: string) {
  const qemu = startQemu(command, args);
  try {
    await qemu.waitFor(`Kumo test guest ${arch} ready`, 300_000);
    await qemu.waitFor("~ # ", 60_000);
    qemu.type("uname -m; echo $((6*7))");
    await qemu.waitFor("42\r\n", 30_000);
    expect(qemu.output()).toContain(`${machine}\r\n`);
    expect(qemu.output()).not.toMatch(/Kernel panic|Oops/);
  } finally {
    qemu.stop();
  }
}

describe.runIf(all && hasCommand("qemu-system-x86_64"))("the x86_64 guest under QEMU", () => {
  it.each(["bzImage", "vmlinux"] as const)(
    "boots the %s to the shell",
    async (image) => {
      const guest = await ensureGuest("x86_64", { progress: false });
      await bootToShell(
        "qemu-system-x86_64",
        [
          "-m",
          "256",
          "-kernel",
          guest[image] as string,
          "-initrd",
          guest.initramfs,
          "-append",
          "console=ttyS0",
        ],
        "x86_64",
        "x86_64",
      );
    },
    buildTimeout,
  );
});

describe.runIf(arm64 && hasCommand("qemu-system-aarch64"))("the arm64 guest under QEMU", () => {
  it(
    "boots the Image on the virt machine (GIC, generic timer, PL011) to the shell and powers off",
    async () => {
      const guest = await ensureGuest("arm64", { progress: false });
      const qemu = startQemu("qemu-system-aarch64", [
        ...["-M", "virt", "-cpu", "cortex-a57", "-m", "256"],
        ...["-kernel", guest.kernel, "-initrd", guest.initramfs, "-append", "console=ttyAMA0"],
      ]);
      try {
        await qemu.waitFor("Kumo test guest arm64 ready", 300_000);
        await qemu.waitFor("~ # ", 60_000);
        qemu.type("uname -m; echo $((6*7))");
        await qemu.waitFor("42\r\n", 30_000);
        expect(qemu.output()).toContain("aarch64\r\n");
        // PSCI SYSTEM_OFF through QEMU's built-in PSCI (hvc conduit on virt without firmware).
        qemu.type("poweroff");
        await qemu.waitFor("reboot: Power down", 60_000);
        expect(qemu.output()).not.toMatch(/Kernel panic|Oops/);
      } finally {
        qemu.stop();
      }
    },
    buildTimeout,
  );
});
