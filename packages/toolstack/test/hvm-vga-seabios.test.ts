/**
 * The stdvga on the HVM PC (issue 9): SeaBIOS finds the VGA's PCI function
 * (1234:1111, class 03 00 00), copies Debian's vgabios-stdvga.bin from its
 * expansion ROM BAR to 0xC0000 and runs it; the VGA BIOS probes the Bochs
 * dispi ports and sets text mode 3; SeaBIOS then prints its banner on the
 * screen (src/bootsplash.c enable_vga_console). The boot sector
 * (guests/freestanding/vga-hello.asm, nasm) prints
 * through INT 10h AH=0Eh and exits through port 0xF4. Read back with
 * `platform.vgaTextScreen()`.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { SEABIOS_PATH } from "../src/config/hvm-options";
import { openIdeDisks } from "../src/node/ide-disk";
import {
  assemble,
  freestanding,
  hasSeabiosAnd,
  runHvmUntilShutdown,
  seabiosConfig,
} from "./support/hvm";

const VGABIOS_PATH = "/usr/share/seabios/vgabios-stdvga.bin";
const source = freestanding("vga-hello.asm");

describe.skipIf(!hasSeabiosAnd("nasm") || !existsSync(VGABIOS_PATH))("stdvga with SeaBIOS", () => {
  it("shows SeaBIOS's banner and the boot sector's INT 10h output on the text screen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-vga-"));
    const image = new Uint8Array(1 << 20);
    image.set(assemble(source, dir));
    writeFileSync(join(dir, "disk.img"), image);
    const config = parseDomainConfig(
      seabiosConfig("vgabios", ["format=raw, vdev=hda, target=disk.img"], "c").join("\n"),
    );
    const ide = openIdeDisks(config.disks, dir);
    let screen: string[] = [];
    let ppm: Uint8Array = new Uint8Array();
    const { runnable, debugcon: bios } = await runHvmUntilShutdown(
      new Hypervisor(),
      config,
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      { clock: { mode: "wall" }, debugconPort: 0x402, hideXenCpuid: true, ideDisks: ide.disks },
      90_000,
      {
        beforeRun: (domain) => domain.platform.addVga(new Uint8Array(readFileSync(VGABIOS_PATH))),
        beforeClose: (domain) => {
          screen = domain.platform.vgaTextScreen();
          ppm = domain.platform.vga?.renderTextPpm() ?? new Uint8Array();
        },
      },
    );
    ide.close();
    writeFileSync(join(dir, "bios.log"), bios);
    writeFileSync(join(dir, "screen.txt"), screen.join("\n"));
    writeFileSync(join(dir, "screen.ppm"), ppm);
    expect(bios, `SeaBIOS log in ${dir}/bios.log`).toContain("id=1234:1111");
    expect(screen).toHaveLength(25);
    expect(screen.join("\n")).toMatch(/SeaBIOS \(version [^)]+\)/);
    expect(screen.join("\n")).toContain("Kumo VGA boot sector: INT 10h teletype");
    expect(runnable.exitStatus).toBe((0x21 << 1) | 1);
    // The image: mode 3's 720x400 (9x16 cells), drawn with the font the VGA BIOS loaded into
    // plane 2; the banner's first cell row has light grey (attribute 7 -> DAC 7 = 0x2A, 6 bits)
    // glyph dots on black.
    const header = "P6\n720 400\n255\n";
    expect(new TextDecoder().decode(ppm.subarray(0, header.length))).toBe(header);
    let lit = 0;
    for (let p = header.length; p < header.length + 720 * 16 * 3; p += 3) {
      if (ppm[p] === 0xaa && ppm[p + 1] === 0xaa && ppm[p + 2] === 0xaa) lit++;
      else expect([ppm[p], ppm[p + 1], ppm[p + 2]]).toEqual([0, 0, 0]);
    }
    expect(lit).toBeGreaterThan(40 * 20);
  }, 150_000);
});
