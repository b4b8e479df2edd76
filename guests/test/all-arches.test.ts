import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureGuest } from "../src/index";
import { listInitramfs, readElf, xenHeaderConstant } from "./helpers";

// Building the x86_64 and arm64 kernels takes about as long again as i386
// each: only with KUMO_GUESTS_ALL=1 (scripts: `pnpm --filter @kumo/guests
// test:all`).
const all = process.env.KUMO_GUESTS_ALL === "1";
const buildTimeout = 90 * 60 * 1000;

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

describe.runIf(all)("the arm64 guest", () => {
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
