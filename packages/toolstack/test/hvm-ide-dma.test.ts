/**
 * PIIX3 bus-master DMA against QEMU as the oracle (issue 9): an MBR
 * (guests/freestanding/ide-dma.asm, nasm) booted by SeaBIOS finds BAR 4,
 * builds PRD tables and runs READ DMA (two regions; a table longer than the
 * transfer; one too short), WRITE DMA read back by PIO, and an ATAPI
 * READ(10) by DMA from a CD-ROM on the secondary channel, under
 * qemu-system-i386 and on Kumo's HVM PC; the lines it prints on the 0xE9
 * debug console must agree.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { parseHvmOptions, SEABIOS_PATH } from "../src/config/hvm-options";
import { openIdeDevices } from "../src/node/ide-disk";
import { assemble, runHvmUntilShutdown } from "./support/hvm";
import { hasTool } from "./support/linux-guest";

const source = join(import.meta.dirname, "../../../guests/freestanding/ide-dma.asm");
const lines = (output: string) => output.split("\n").filter((line) => line.length > 0);

describe.skipIf(
  !existsSync(SEABIOS_PATH) ||
    !hasTool("nasm") ||
    !hasTool("xorriso") ||
    !hasTool("qemu-system-i386"),
)("IDE bus-master DMA against QEMU", () => {
  it("moves ATA and ATAPI data through PRD tables as QEMU's PIIX3 does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-ide-dma-"));
    const image = new Uint8Array(4 << 20);
    image.set(assemble(source, dir));
    writeFileSync(join(dir, "disk.img"), image);
    mkdirSync(join(dir, "iso"));
    writeFileSync(join(dir, "iso", "a.txt"), "a file\n");
    execFileSync(
      "xorriso",
      ["-as", "mkisofs", "-quiet", "-V", "KUMO_CD", "-o", join(dir, "cd.iso"), join(dir, "iso")],
      { stdio: "ignore" },
    );
    const qemuDisk = join(dir, "qemu-disk.img");
    writeFileSync(qemuDisk, image);
    const qemu = spawnSync(
      "qemu-system-i386",
      [
        ...["-M", "pc", "-display", "none", "-no-reboot", "-serial", "null", "-monitor", "none"],
        ...["-nic", "none", "-drive", `file=${qemuDisk},format=raw,if=ide,index=0`],
        ...["-drive", `file=${join(dir, "cd.iso")},format=raw,if=ide,index=2,media=cdrom`],
        ...["-boot", "c", "-debugcon", `file:${join(dir, "qemu.out")}`],
        ...["-device", "isa-debug-exit,iobase=0xf4"],
      ],
      { timeout: 60_000, stdio: "ignore" },
    );
    expect(qemu.status).toBe((0x21 << 1) | 1);
    const oracle = lines(readFileSync(join(dir, "qemu.out"), "latin1"));

    const text = [
      'name = "idedma"',
      'type = "hvm"',
      "memory = 32",
      'firmware = "seabios"',
      'boot = "c"',
      "disk = [ 'format=raw, vdev=hda, target=disk.img', 'cd.iso,raw,hdc,cdrom' ]",
      "",
    ].join("\n");
    const config = parseDomainConfig(text);
    const ide = await openIdeDevices(config.disks, dir);
    const { runnable, debugcon } = await runHvmUntilShutdown(
      new Hypervisor(),
      config,
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      {
        clock: { mode: "wall" },
        hideXenCpuid: true,
        ideDisks: ide.disks,
        bootOrder: parseHvmOptions(text).boot,
      },
      60_000,
    ).finally(() => ide.close());
    expect(runnable.exitStatus).toBe((0x21 << 1) | 1);
    expect(oracle).toContain("c=00 50 03 CD001");
    expect(oracle.length).toBe(12);
    expect(lines(debugcon)).toEqual(oracle);
  }, 120_000);
});
