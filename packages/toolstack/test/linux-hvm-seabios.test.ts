/**
 * Debian's SeaBIOS (package seabios, /usr/share/seabios/bios.bin) as the
 * firmware of an HVM domain (issue 9, firmware boot): mapped below 4 GiB and
 * at 0xE0000, started at the reset vector, it runs its POST on the emulated
 * PC (RAM size from the CMOS, the i440FX/PIIX3 PCI devices, PIR, MP and
 * SMBIOS tables, the PS/2 keyboard, COM1) and, with no disk controller yet,
 * ends in "No bootable device". Its log comes through the QEMU debug
 * console port 0x402, which SeaBIOS uses when a read there answers 0xE9.
 */
import { existsSync, readFileSync } from "node:fs";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { SEABIOS_PATH } from "../src/config/hvm-options";
import { createHvmDomain } from "../src/runner/hvm-domain";

describe.skipIf(!existsSync(SEABIOS_PATH))("SeaBIOS on the HVM PC", () => {
  it("POSTs to the boot device search", async () => {
    const hypervisor = new Hypervisor();
    const config = parseDomainConfig(
      'name = "bios"\ntype = "hvm"\nmemory = 64\nfirmware = "seabios"\n',
    );
    let debug = "";
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    const runnable = createHvmDomain(
      hypervisor,
      config,
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      {
        // The boot menu waits for ESC on the host's clock.
        clock: { mode: "wall" },
        debugconPort: 0x402,
        debugconOutput: (byte) => {
          debug += String.fromCharCode(byte);
          if (debug.endsWith("No bootable device.")) resolveDone();
        },
        hideXenCpuid: true,
      },
    );
    const running = hypervisor.run();
    const timer = setTimeout(resolveDone, 60_000);
    await done;
    clearTimeout(timer);
    hypervisor.destroyDomain(runnable.domain.domid);
    hypervisor.stop();
    await running;
    runnable.platform.close();
    expect(debug).toMatch(/^SeaBIOS \(version /);
    expect(debug).toContain("RamSize: 0x04000000 [cmos]");
    expect(debug).toContain("PCI: init bdf=00:00.0 id=8086:1237");
    expect(debug).toContain("PCI: init bdf=00:01.0 id=8086:7000");
    expect(debug).toContain("Found 1 serial ports");
    expect(debug).toContain("PS2 keyboard initialized");
    expect(debug).toMatch(/3: 0000000000100000 - 0000000004000000 = 1 RAM/);
    expect(debug).toContain("No bootable device.");
  }, 120_000);
});
