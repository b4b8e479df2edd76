import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { bootDiskCmdline, ensureGuest, findGuest, type GuestImages, guestsDir } from "../src/index";
import { hasCommand, startQemu } from "./helpers";

// The i386 guest's boot disk (recipes/hvm-disk.sh), read back with the tools
// that are the oracles for its formats: SYSLINUX's own mbr.bin for sector 0,
// mtools for the FAT file system, and qemu-system-i386 with QEMU's own SeaBIOS
// booting it. The partition entry is checked byte by byte (the PC MBR layout:
// status, CHS, type, CHS, LBA start, sector count). Skipped without syslinux
// and mtools (the boot disk is then not made).
const tools = ["syslinux", "mcopy", "mdir", "mkfs.fat"].every(hasCommand);
const offset = 2048 * 512;
let guest: GuestImages;

beforeAll(
  async () => {
    if (tools) guest = await ensureGuest("i386", { progress: false });
  },
  60 * 60 * 1000,
);

describe.skipIf(!tools)("the i386 guest's boot disk", () => {
  it("is made with the guest, cached apart from it, and found by findGuest", () => {
    expect(guest.bootDisk).toMatch(/\/disk\/i386-[0-9a-f]{16}\/disk\.img$/);
    expect(findGuest("i386")?.bootDisk).toBe(guest.bootDisk);
  });

  it("has SYSLINUX's MBR and one active FAT16 (LBA) partition from sector 2048", () => {
    const image = readFileSync(guest.bootDisk as string);
    const mbr = readFileSync("/usr/lib/syslinux/mbr/mbr.bin");
    expect(image.subarray(0, 440).equals(mbr.subarray(0, 440))).toBe(true);
    const entry = new DataView(image.buffer, image.byteOffset + 446, 16);
    expect(entry.getUint8(0)).toBe(0x80); // active
    expect(entry.getUint8(4)).toBe(0x0e); // FAT16, LBA-addressed
    expect(entry.getUint32(8, true)).toBe(2048);
    expect(entry.getUint32(8, true) + entry.getUint32(12, true)).toBe(image.length / 512);
    expect(image.subarray(462, 510).every((byte) => byte === 0)).toBe(true);
    expect([image[510], image[511]]).toEqual([0x55, 0xaa]);
    // The partition's boot sector: a FAT16 BPB whose hidden sectors are the partition's start.
    const boot = new DataView(image.buffer, image.byteOffset + offset, 512);
    expect(boot.getUint16(11, true)).toBe(512);
    expect(boot.getUint32(28, true)).toBe(2048);
    expect(new TextDecoder().decode(image.subarray(offset + 54, offset + 62))).toBe("FAT16   ");
  });

  it("holds SYSLINUX, its configuration, the bzImage and the initramfs, as mtools reads them", () => {
    const at = `${guest.bootDisk}@@${offset}`;
    const listing = execFileSync("mdir", ["-a", "-b", "-i", at, "::/"], { encoding: "utf8" });
    expect(listing.split("\n").filter(Boolean).sort()).toEqual(
      ["::/bzimage", "::/initrd.gz", "::/ldlinux.c32", "::/ldlinux.sys", "::/syslinux.cfg"].sort(),
    );
    const config = execFileSync("mtype", ["-i", at, "::/syslinux.cfg"], { encoding: "utf8" });
    expect(config).toContain("SERIAL 0 115200");
    expect(config).toMatch(/LINUX \/bzimage\n\s+INITRD \/initrd\.gz\n\s+APPEND (.*)\n/);
    expect(/APPEND (.*)\n/.exec(config)?.[1]).toBe(bootDiskCmdline);
    const out = mkdtempSync(join(tmpdir(), "kumo-boot-disk-"));
    try {
      execFileSync("mcopy", ["-i", at, "::/bzimage", "::/initrd.gz", out]);
      expect(readFileSync(join(out, "bzimage")).equals(readFileSync(guest.kernel))).toBe(true);
      expect(readFileSync(join(out, "initrd.gz")).equals(readFileSync(guest.initramfs))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("is reproducible: the recipe run again gives the same bytes", () => {
    const work = mkdtempSync(join(tmpdir(), "kumo-boot-disk-"));
    try {
      const again = join(work, "disk.img");
      execFileSync("bash", [
        join(guestsDir, "recipes", "hvm-disk.sh"),
        guest.kernel,
        guest.initramfs,
        bootDiskCmdline,
        join(work, "files"),
        again,
      ]);
      expect(readFileSync(again).equals(readFileSync(guest.bootDisk as string))).toBe(true);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasCommand("qemu-system-i386"))(
    "boots under qemu-system-i386 from the IDE disk through SeaBIOS and SYSLINUX",
    async () => {
      const qemu = startQemu("qemu-system-i386", [
        ...["-m", "128", "-drive", `file=${guest.bootDisk},format=raw,if=ide,snapshot=on`],
      ]);
      try {
        await qemu.waitFor("Kumo test guest i386 ready", 120_000);
        await qemu.waitFor("~ # ", 60_000);
        qemu.type("cat /proc/cmdline; echo $((6*7))");
        await qemu.waitFor("42\r\n", 30_000);
        expect(qemu.output()).toContain("SYSLINUX 6.04");
        expect(qemu.output()).toContain(`BOOT_IMAGE=/bzimage ${bootDiskCmdline} initrd=/initrd.gz`);
        expect(qemu.output()).not.toMatch(/Kernel panic|Oops/);
      } finally {
        qemu.stop();
      }
    },
    300_000,
  );
});
