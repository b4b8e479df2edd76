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
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { SEABIOS_PATH } from "../src/config/hvm-options";
import { KumoDaemon } from "../src/daemon/server";
import { openIdeDisks } from "../src/node/ide-disk";
import {
  freestanding,
  hasSeabiosAnd,
  mbrDiskImage,
  runHvmUntilShutdown,
  seabiosConfig,
} from "./support/hvm";
import { createAttached } from "./support/linux-guest";

const source = freestanding("disk-hello.asm");

describe.skipIf(!hasSeabiosAnd("nasm"))("SeaBIOS boots from IDE", () => {
  it("finds the disk on the primary master and runs its boot sector", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-"));
    mbrDiskImage(source, dir);
    const config = parseDomainConfig(
      seabiosConfig("idebios", ["format=raw, vdev=hda, target=disk.img"], "c").join("\n"),
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
    const guest = createAttached(
      dir,
      [
        ...seabiosConfig("idecli", ["format=raw, vdev=hda, access=rw, target=disk.img"], "c"),
        'serial = "pty"',
      ],
      { env: { KUMO_STATE_DIR: join(dir, "state") } },
    );
    expect(await guest.ended).toBe(129);
    expect(guest.console.output).toContain(
      "Kumo IDE boot sector\r\nSector 1 read through INT 13h\r\n",
    );
    expect(guest.stderr()).not.toMatch(/error/i);
  }, 150_000);

  it("kumo create refuses an IDE disk whose image is not what its format says", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-cli-"));
    writeFileSync(join(dir, "disk.qcow2"), new Uint8Array(512));
    const guest = createAttached(
      dir,
      seabiosConfig("ideqcow", ["format=qcow2, vdev=hda, target=disk.qcow2"]),
      { env: { KUMO_STATE_DIR: join(dir, "state") } },
    );
    expect(await guest.ended).not.toBe(0);
    // qcow2 images are opened through @kumo/blkback now; 512 zero bytes are no qcow2 image.
    expect(guest.stderr()).toMatch(/disk hda: .*disk\.qcow2.*qcow2/);
  });

  it("the kumo daemon gives the disk to the IDE controller too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-daemon-"));
    mbrDiskImage(source, dir);
    const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir } });
    await daemon.listen(join(dir, "kumo.sock"));
    try {
      const guest = createAttached(
        dir,
        [
          ...seabiosConfig("idedaemon", ["format=raw, vdev=hda, target=disk.img"]),
          'serial = "pty"',
        ],
        { env: { KUMO_STATE_DIR: dir } },
      );
      // Through the daemon the console reports the exit port's poweroff, not its status.
      expect(await guest.ended).toBe(0);
      expect(guest.stderr()).not.toMatch(/error/i);
      expect(guest.console.output).toContain("Sector 1 read through INT 13h\r\n");
    } finally {
      await daemon.close();
    }
  }, 150_000);
});
