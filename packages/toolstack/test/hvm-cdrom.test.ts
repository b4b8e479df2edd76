/**
 * The ATAPI CD-ROM drive and the `boot` key through Debian's SeaBIOS
 * (issue 9). An ISO made here with xorriso carries an El Torito "no
 * emulation" boot image (guests/freestanding/cdrom-atapi.asm, nasm) that
 * reads its own ISO's sectors through INT 13h AH=42h and then drives the
 * drive by hand with ATAPI packets. The same ISO boots under
 * qemu-system-i386 (`-boot d`, its PIIX3 IDE CD-ROM at hdc) as the oracle
 * and on Kumo with `boot = "d"`; the lines it prints on the 0xE9 debug
 * console must agree. With a disk and a CD, `boot = "cd"` boots the disk
 * and `boot = "dc"` the CD, as SeaBIOS reads the order from CMOS 0x3D/0x38.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { XlConfigError } from "../src/config/errors";
import { parseHvmOptions } from "../src/config/hvm-options";
import { createHvmDomain } from "../src/runner/hvm-domain";
import {
  assemble,
  debugconLines,
  freestanding,
  hasSeabiosAnd,
  mbrDiskImage,
  runSeabiosConfig,
  runUnderQemuAndKumo,
  seabiosConfig,
} from "./support/hvm";
import { createAttached } from "./support/linux-guest";

/** An ISO whose El Torito boot image (no emulation, 4 virtual sectors) is cdrom-atapi.asm. */
function bootIso(dir: string): string {
  const root = join(dir, "iso");
  mkdirSync(root);
  writeFileSync(join(root, "boot.bin"), assemble(freestanding("cdrom-atapi.asm"), dir));
  const iso = join(dir, "cd.iso");
  execFileSync(
    "xorriso",
    [
      ...["-as", "mkisofs", "-quiet", "-V", "KUMO_CD", "-o", iso],
      ...["-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4", root],
    ],
    { stdio: "ignore" },
  );
  return iso;
}

describe.skipIf(!hasSeabiosAnd("nasm", "xorriso", "qemu-system-i386"))(
  "ATAPI CD-ROM and boot order through SeaBIOS",
  () => {
    it('boots an El Torito image with boot = "d" and answers its packets as QEMU does', async () => {
      const dir = mkdtempSync(join(tmpdir(), "kumo-cdrom-"));
      bootIso(dir);
      const run = await runUnderQemuAndKumo(
        dir,
        [{ vdev: "hdc", file: "cd.iso", cdrom: true }],
        "d",
      );
      expect(run.qemuStatus).toBe((0x21 << 1) | 1);
      expect(run.kumoStatus).toBe((0x21 << 1) | 1);
      expect(run.qemu.slice(0, 3)).toEqual([
        "dl=E0",
        "pvd=CD001 KUMO_CD",
        "brvd=EL TORITO SPECIFICATION",
      ]);
      expect(run.qemu.length).toBe(32);
      expect(run.kumo).toEqual(run.qemu);
    }, 120_000);

    it('boots the disk with boot = "cd" and the CD with boot = "dc" when both are present', async () => {
      const dir = mkdtempSync(join(tmpdir(), "kumo-cdrom-order-"));
      bootIso(dir);
      mbrDiskImage(freestanding("disk-hello.asm"), dir);
      const config = (boot: string) =>
        // The short positional form xl-disk-configuration(5) documents: target, format, vdev, cdrom.
        seabiosConfig(
          "order",
          ["format=raw, vdev=hda, target=disk.img", "cd.iso,raw,hdc,cdrom"],
          boot,
        );
      const disk = await runSeabiosConfig(config("cd"), dir);
      // disk-hello.asm exits with 0x40 | (DL & 0x0F) for drive 0x80.
      expect(disk.runnable.exitStatus).toBe((0x40 << 1) | 1);
      expect(disk.debugcon).toContain("Kumo IDE boot sector");
      const cd = await runSeabiosConfig(config("dc"), dir);
      expect(cd.runnable.exitStatus).toBe((0x21 << 1) | 1);
      expect(debugconLines(cd.debugcon)[1]).toBe("pvd=CD001 KUMO_CD");
    }, 120_000);
  },
);

describe.skipIf(!hasSeabiosAnd("nasm", "xorriso", "qemu-img"))(
  "kumo create with a CD-ROM and a qcow2 disk",
  () => {
    it('boots the qcow2 disk (boot = "cd") and the CD (boot = "d") from the command line', async () => {
      const dir = mkdtempSync(join(tmpdir(), "kumo-cdrom-cli-"));
      bootIso(dir);
      mbrDiskImage(freestanding("disk-hello.asm"), dir);
      // The disk as qcow2: read through @kumo/blkback (BSY while it works), and shared with the PV vbd.
      execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", "disk.img", "disk.qcow2"], {
        cwd: dir,
      });
      const create = async (boot: string) => {
        const config = seabiosConfig(
          "clicd",
          ["format=qcow2, vdev=hda, target=disk.qcow2", "cd.iso,raw,hdc,cdrom"],
          boot,
        );
        const guest = createAttached(dir, config, { env: { KUMO_STATE_DIR: join(dir, "state") } });
        return { status: await guest.ended, stderr: guest.stderr() };
      };
      const disk = await create("cd");
      expect(disk.stderr).not.toMatch(/error/i);
      expect(disk.status).toBe(129);
      expect((await create("d")).status).toBe((0x21 << 1) | 1);
    }, 150_000);
  },
);

describe("xl.cfg boot", () => {
  it("reads up to three of a, b, c, d, n and refuses anything else", () => {
    expect(parseHvmOptions('boot = "d"').boot).toBe("d");
    expect(parseHvmOptions('serial = "pty"').boot).toBeUndefined();
    expect(
      parseDomainConfig('name = "b"\ntype = "hvm"\nfirmware = "seabios"\nboot = "dc"\n').warnings,
    ).toEqual([]);
    for (const bad of ['boot = "x"', 'boot = "cdna"', 'boot = ""', "boot = 3"])
      expect(() => parseHvmOptions(bad)).toThrow(XlConfigError);
  });

  it("puts the order in CMOS 0x3D and 0x38 as QEMU's PC does for SeaBIOS", () => {
    const cmos = (bootOrder: string | undefined) => {
      const hypervisor = new Hypervisor();
      const runnable = createHvmDomain(
        hypervisor,
        parseDomainConfig('name = "cmos"\ntype = "hvm"\nmemory = 16\nfirmware = "seabios"\n'),
        { firmware: new Uint8Array(65536) },
        { paused: true, bootOrder },
      );
      const read = (index: number) => {
        runnable.platform.bus.portWrite(0x70, 1, index);
        return runnable.platform.bus.portRead(0x71, 1);
      };
      const bytes = [read(0x3d), read(0x38)];
      runnable.platform.close();
      return bytes;
    };
    // Nibbles: floppy 1, disk 2, CD 3, network 4 (SeaBIOS boot_init).
    expect(cmos(undefined)).toEqual([0x32, 0x00]);
    expect(cmos("d")).toEqual([0x03, 0x00]);
    expect(cmos("dcn")).toEqual([0x23, 0x40]);
  });
});
