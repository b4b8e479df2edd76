/**
 * Debian's SeaBIOS boots an HVM domain from an IDE disk (issue 9): the xl.cfg
 * `disk = ['format=raw, vdev=hda, target=...']` puts a raw image on the PIIX3
 * IDE primary master; SeaBIOS's own ATA driver (src/hw/ata.c) probes the
 * channel, IDENTIFYs the disk, reads its MBR to 0000:7C00 and jumps to it.
 * The boot sector (guests/freestanding/disk-hello.asm,
 * assembled with nasm) prints on COM1, reads LBA 1 back through INT 13h
 * AH=42h and exits through isa-debug-exit with 0x40 | the drive number
 * SeaBIOS gave it in DL (0x80), which `kumo create` returns as status 129. In the linux-hvm* family for the test-name pattern only.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { SEABIOS_PATH } from "../src/config/hvm-options";
import { KumoDaemon } from "../src/daemon/server";
import { openIdeDisks } from "../src/node/ide-disk";
import { runKumo } from "../src/node/index";
import { freestanding, mbrDiskImage, runHvmUntilShutdown } from "./support/hvm";
import { Console, hasTool } from "./support/linux-guest";

const source = freestanding("disk-hello.asm");

describe.skipIf(!existsSync(SEABIOS_PATH) || !hasTool("nasm"))("SeaBIOS boots from IDE", () => {
  it("finds the disk on the primary master and runs its boot sector", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-"));
    mbrDiskImage(source, dir);
    const config = parseDomainConfig(
      [
        'name = "idebios"',
        'type = "hvm"',
        "memory = 32",
        'firmware = "seabios"',
        'boot = "c"',
        "disk = ['format=raw, vdev=hda, target=disk.img']",
      ].join("\n"),
    );
    const ide = openIdeDisks(config.disks, dir);
    expect(ide.disks[0]?.sectors).toBe(8192);
    const {
      runnable,
      debugcon: bios,
      serial,
    } = await runHvmUntilShutdown(
      new Hypervisor(),
      config,
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      { clock: { mode: "wall" }, debugconPort: 0x402, hideXenCpuid: true, ideDisks: ide.disks },
      90_000,
    );
    ide.close();
    expect(bios).toContain("PCI: init bdf=00:01.1 id=8086:7010");
    expect(bios).toMatch(/ata0-0: KUMO HARDDISK ATA-6 Hard-Disk \(4 MiBytes\)/);
    expect(bios).toContain("Booting from Hard Disk...");
    expect(serial).toContain("Kumo IDE boot sector\r\nSector 1 read through INT 13h\r\n");
    expect(runnable.exitStatus).toBe((0x40 << 1) | 1);
  }, 150_000);

  it("kumo create -c: the boot sector's line on the console, its exit status returned", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-cli-"));
    mbrDiskImage(source, dir);
    writeFileSync(
      join(dir, "guest.cfg"),
      [
        'name = "idecli"',
        'type = "hvm"',
        "memory = 32",
        'firmware = "seabios"',
        'boot = "c"',
        'serial = "pty"',
        "disk = ['format=raw, vdev=hda, access=rw, target=disk.img']",
        "",
      ].join("\n"),
    );
    const stdin = new PassThrough();
    const output = new Console(stdin);
    let stderr = "";
    const status = await runKumo(["create", "-c", "guest.cfg"], {
      stdout: output,
      stderr: { write: (text: string) => (stderr += text) },
      stdin,
      env: { KUMO_STATE_DIR: join(dir, "state") },
      cwd: dir,
    });
    stdin.end();
    expect(output.output).toContain("Kumo IDE boot sector\r\nSector 1 read through INT 13h\r\n");
    expect(status).toBe(129);
    expect(stderr).not.toMatch(/error/i);
  }, 150_000);

  it("kumo create refuses an IDE disk whose image is not what its format says", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-cli-"));
    writeFileSync(join(dir, "disk.qcow2"), new Uint8Array(512));
    writeFileSync(
      join(dir, "guest.cfg"),
      [
        'name = "ideqcow"',
        'type = "hvm"',
        "memory = 32",
        'firmware = "seabios"',
        "disk = ['format=qcow2, vdev=hda, target=disk.qcow2']",
        "",
      ].join("\n"),
    );
    let stderr = "";
    const status = await runKumo(["create", "-c", "guest.cfg"], {
      stdout: { write: () => {} },
      stderr: { write: (text: string) => (stderr += text) },
      env: { KUMO_STATE_DIR: join(dir, "state") },
      cwd: dir,
    });
    expect(status).not.toBe(0);
    // qcow2 images are opened through @kumo/blkback now; 512 zero bytes are no qcow2 image.
    expect(stderr).toMatch(/disk hda: .*disk\.qcow2.*qcow2/);
  });

  it("the kumo daemon gives the disk to the IDE controller too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-daemon-"));
    mbrDiskImage(source, dir);
    writeFileSync(
      join(dir, "guest.cfg"),
      [
        'name = "idedaemon"',
        'type = "hvm"',
        "memory = 32",
        'firmware = "seabios"',
        'serial = "pty"',
        "disk = ['format=raw, vdev=hda, target=disk.img']",
        "",
      ].join("\n"),
    );
    const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir } });
    await daemon.listen(join(dir, "kumo.sock"));
    try {
      const stdin = new PassThrough();
      const output = new Console(stdin);
      let stderr = "";
      const status = await runKumo(["create", "-c", "guest.cfg"], {
        stdout: output,
        stderr: { write: (text: string) => (stderr += text) },
        stdin,
        env: { KUMO_STATE_DIR: dir },
        cwd: dir,
      });
      stdin.end();
      expect(stderr).not.toMatch(/error/i);
      expect(output.output).toContain("Sector 1 read through INT 13h\r\n");
      // Through the daemon the console reports the exit port's poweroff, not its status.
      expect(status).toBe(0);
    } finally {
      await daemon.close();
    }
  }, 150_000);
});
