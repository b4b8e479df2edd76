import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ensureGuest,
  findGuest,
  GuestBuildError,
  type GuestImages,
  guestInputs,
  guestsDir,
} from "../src/index";
import {
  fragmentOptions,
  listInitramfs,
  readElf,
  symbolAddress,
  xenHeaderConstant,
} from "./helpers";

// The first run builds the kernel (about 6 minutes on 2 idle cores, more on
// a loaded machine); later runs find it in the cache.
const buildTimeout = 60 * 60 * 1000;
let guest: GuestImages;

beforeAll(async () => {
  guest = await ensureGuest("i386");
}, buildTimeout);

describe("the i386 guest kernel", () => {
  it("is an ELF32 for EM_386 with a Xen XEN_ELFNOTE_PHYS32_ENTRY note for PVH boot", () => {
    const elf = readElf(readFileSync(guest.vmlinux));
    expect(elf.elfClass).toBe(32);
    expect(elf.machine).toBe(3); // EM_386, Linux include/uapi/linux/elf-em.h
    const phys32 = xenHeaderConstant("elfnote.h", "XEN_ELFNOTE_PHYS32_ENTRY");
    const note = elf.notes.find((entry) => entry.name === "Xen" && entry.type === phys32);
    expect(note, "Xen note of type XEN_ELFNOTE_PHYS32_ENTRY").toBeDefined();
    const entry = new DataView(note!.desc.buffer, note!.desc.byteOffset, 4).getUint32(0, true);
    // The entry is a physical address inside a loaded segment, and maps to
    // the symbol Linux's arch/x86/platform/pvh/head.S names pvh_start_xen.
    const segment = elf.loads.find(
      (load) => entry >= load.paddr && entry < load.paddr + load.filesz,
    );
    expect(segment, "segment holding the PVH entry").toBeDefined();
    expect(segment!.vaddr + (entry - segment!.paddr)).toBe(
      symbolAddress(guest.vmlinux, "pvh_start_xen"),
    );
  });

  it("has every option of configs/i386.config in its final .config", () => {
    const wanted = fragmentOptions(readFileSync(join(guestsDir, "configs", "i386.config"), "utf8"));
    const final = fragmentOptions(readFileSync(guest.config, "utf8"));
    expect(wanted.get("CONFIG_XEN_PVH")).toBe("y");
    for (const [option, value] of wanted) {
      expect(final.get(option) ?? "n", option).toBe(value);
    }
  });

  it("comes with a bzImage that carries the Linux boot protocol header", () => {
    const bytes = readFileSync(guest.kernel);
    // Linux Documentation/x86/boot.rst: "HdrS" at 0x202, boot flag 0xAA55 at 0x1FE.
    expect(bytes.subarray(0x202, 0x206).toString("latin1")).toBe("HdrS");
    expect(bytes.readUInt16LE(0x1fe)).toBe(0xaa55);
    expect(guest.bzImage).toBe(guest.kernel);
  });
});

describe("the i386 initramfs", () => {
  it("holds an executable /init, an i386 busybox, its applet links and /dev/console", () => {
    const entries = new Map(listInitramfs(guest.initramfs).map((entry) => [entry.path, entry]));
    expect(entries.get("init")?.mode).toMatch(/^-rwx/);
    expect(entries.get("bin/busybox")?.mode).toMatch(/^-rwx/);
    expect(entries.get("bin/sh")).toMatchObject({
      mode: expect.stringMatching(/^l/),
      target: "../bin/busybox",
    });
    expect(entries.get("sbin/init")?.target).toBe("../bin/busybox");
    expect(entries.get("dev/console")?.mode).toMatch(/^c/);
    expect(entries.get("etc/inittab")).toBeDefined();
  });

  it("has a busybox built for i386", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-guests-"));
    try {
      const run = spawnSync(
        "sh",
        ["-c", 'zcat "$1" | cpio -id --quiet bin/busybox', "sh", guest.initramfs],
        {
          cwd: dir,
        },
      );
      expect(run.status).toBe(0);
      const elf = readElf(readFileSync(join(dir, "bin", "busybox")));
      expect(elf.elfClass).toBe(32);
      expect(elf.machine).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints the banner the tests wait for from /init", () => {
    const init = readFileSync(join(guestsDir, "initramfs", "init"), "utf8");
    expect(init).toContain('echo "Kumo test guest @ARCH@ ready');
  });
});

describe("the cache", () => {
  it("answers the second request at once, from the same folder", async () => {
    const started = performance.now();
    const again = await ensureGuest("i386", { progress: false });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(again.dir).toBe(guest.dir);
    expect(findGuest("i386")?.dir).toBe(guest.dir);
  });

  it("keys the kernel by its config fragment and leaves the initramfs key alone", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-guests-"));
    try {
      const fragment = join(dir, "i386.config");
      copyFileSync(join(guestsDir, "configs", "i386.config"), fragment);
      const same = guestInputs("i386", { configFragment: fragment });
      writeFileSync(fragment, `${readFileSync(fragment, "utf8")}CONFIG_IKCONFIG=y\n`);
      const changed = guestInputs("i386", { configFragment: fragment });
      expect(same.key).toBe(guest.key);
      expect(changed.kernelKey).not.toBe(same.kernelKey);
      expect(changed.key).not.toBe(same.key);
      expect(changed.initramfsKey).toBe(same.initramfsKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing fragment as a GuestBuildError naming the file", () => {
    expect(() => guestInputs("i386", { configFragment: "/nonexistent/i386.config" })).toThrow(
      GuestBuildError,
    );
    expect(() => guestInputs("i386", { configFragment: "/nonexistent/i386.config" })).toThrow(
      /no kernel config fragment at \/nonexistent\/i386.config/,
    );
  });
});
