/**
 * Debian's SeaBIOS (package seabios, /usr/share/seabios/bios.bin) as the
 * firmware of an HVM domain (issue 9, firmware boot): mapped below 4 GiB and
 * at 0xE0000, started at the reset vector, it runs its POST on the emulated
 * PC (RAM size from the CMOS, the i440FX/PIIX3 PCI devices, PIR, MP and
 * SMBIOS tables, the PS/2 keyboard, COM1) and, with no disk controller yet,
 * ends in "No bootable device". Its log comes through the QEMU debug
 * console port 0x402, which SeaBIOS uses when a read there answers 0xE9.
 *
 * QEMU's fw_cfg (src/runner/pc-platform.ts `fwCfg`): SeaBIOS finds it and
 * its DMA interface, takes the RAM from "etc/e820" (which says what the
 * CMOS says), skips the boot menu (QEMU's default, "etc/show-boot-menu" 0),
 * runs the ACPI linker/loader script: the RSDP it leaves in the F segment
 * leads to the same tables as direct boot's `buildPcAcpiTables` (the DSDT
 * and MADT byte for byte, the FADT but for its addresses), every checksum
 * right; and its MP table routes ISA IRQ 0 to I/O APIC pin 2
 * ("etc/irq0-override", SeaBIOS src/fw/mptable.c), as the platform wires it.
 */
import { existsSync, readFileSync } from "node:fs";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { buildPcAcpiTables } from "../src/builder/acpi";
import { parseDomainConfig } from "../src/config/domain-config";
import { SEABIOS_PATH } from "../src/config/hvm-options";
import { createHvmDomain } from "../src/runner/hvm-domain";

const sum = (bytes: Uint8Array) => bytes.reduce((total, byte) => (total + byte) & 0xff, 0);
const text = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/**
 * Runs Debian's SeaBIOS on a 64 MiB HVM PC with `vcpus` vCPUs until its POST
 * ends in "No bootable device." (or 60 s): its debug-console log, guest
 * memory to read while the domain still exists, and `close` to end it.
 */
async function postToBootSearch(vcpus: number) {
  const hypervisor = new Hypervisor();
  const config = parseDomainConfig(
    `name = "bios"\ntype = "hvm"\nmemory = 64\nvcpus = ${vcpus}\nfirmware = "seabios"\n`,
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
  const memory = runnable.domain.memory;
  if (memory === null) throw new Error("no memory");
  return {
    debug,
    read(address: number, length: number): Uint8Array {
      const bytes = new Uint8Array(length);
      memory.readBytes(address, bytes);
      return bytes;
    },
    async close(): Promise<void> {
      hypervisor.destroyDomain(runnable.domain.domid);
      hypervisor.stop();
      await running;
      runnable.platform.close();
    },
  };
}

describe.skipIf(!existsSync(SEABIOS_PATH))("SeaBIOS on the HVM PC", () => {
  it("POSTs to the boot device search", async () => {
    const { debug, read, close } = await postToBootSearch(1);
    const table = (address: number) =>
      read(address, new DataView(read(address, 8).buffer).getUint32(4, true));
    // The F segment as SeaBIOS left it: its RSDP and MP floating pointer (16-byte aligned).
    const segment = read(0xf0000, 0x10000);
    let rsdpAt = -1;
    let mpAt = -1;
    for (let at = 0; at < segment.length; at += 16) {
      if (text(segment.subarray(at, at + 8)) === "RSD PTR ") rsdpAt = 0xf0000 + at;
      if (text(segment.subarray(at, at + 4)) === "_MP_") mpAt = 0xf0000 + at;
    }
    const acpiTables: Record<string, Uint8Array> = {};
    let fadtPointers: number[] = [];
    if (rsdpAt >= 0) {
      const rsdp = read(rsdpAt, 36);
      expect([sum(rsdp.subarray(0, 20)), sum(rsdp)]).toEqual([0, 0]);
      const rsdpView = new DataView(rsdp.buffer);
      const rsdt = table(rsdpView.getUint32(16, true));
      const xsdt = table(rsdpView.getUint32(24, true));
      acpiTables.RSDT = rsdt;
      acpiTables.XSDT = xsdt;
      const rsdtView = new DataView(rsdt.buffer);
      for (let at = 36; at < rsdt.length; at += 4) {
        const entry = table(rsdtView.getUint32(at, true));
        acpiTables[text(entry.subarray(0, 4))] = entry;
        // The XSDT lists the same tables.
        expect(new DataView(xsdt.buffer).getUint32(36 + 2 * (at - 36), true)).toBe(
          rsdtView.getUint32(at, true),
        );
      }
      const fadt = new DataView(acpiTables.FACP.buffer);
      fadtPointers = [
        fadt.getUint32(36, true),
        fadt.getUint32(40, true),
        fadt.getUint32(140, true),
      ];
      acpiTables.FACS = read(fadtPointers[0], 64);
      acpiTables.DSDT = table(fadtPointers[1]);
    }
    // The MP configuration table's length is its u16 at offset 4 (MP spec 1.4 table 4-2).
    const mpConfigAt = mpAt >= 0 ? new DataView(read(mpAt, 8).buffer).getUint32(4, true) : -1;
    const mpConfig =
      mpConfigAt >= 0
        ? read(mpConfigAt, new DataView(read(mpConfigAt, 8).buffer).getUint16(4, true))
        : null;
    await close();
    expect(debug).toMatch(/^SeaBIOS \(version /);
    expect(debug).toContain("Found QEMU fw_cfg");
    expect(debug).toContain("QEMU fw_cfg DMA interface supported");
    expect(debug).toContain("qemu/e820: addr 0x0000000000000000 len 0x0000000004000000 [RAM]");
    expect(debug).not.toContain("Press ESC for boot menu");
    expect(debug).toContain("PCI: init bdf=00:00.0 id=8086:1237");
    expect(debug).toContain("PCI: init bdf=00:01.0 id=8086:7000");
    expect(debug).toContain("Found 1 serial ports");
    expect(debug).toContain("PS2 keyboard initialized");
    // RAM to the top but for the pages SeaBIOS keeps (its ZoneHigh, now holding the ACPI tables).
    expect(debug).toMatch(/3: 0000000000100000 - 0000000003fff000 = 1 RAM/);
    expect(debug).toMatch(/4: 0000000003fff000 - 0000000004000000 = 2 RESERVED/);
    expect(debug).toContain("No bootable device.");

    // ACPI: the loader's tables, checksummed, equal to direct boot's but for their addresses.
    expect(rsdpAt).toBeGreaterThan(0);
    for (const signature of ["RSDT", "XSDT", "FACP", "DSDT", "APIC"])
      expect([signature, sum(acpiTables[signature])]).toEqual([signature, 0]);
    expect(text(acpiTables.FACS.subarray(0, 4))).toBe("FACS");
    expect(fadtPointers[0] % 64).toBe(0);
    expect(fadtPointers[2]).toBe(fadtPointers[1]);
    const direct = buildPcAcpiTables({
      vcpus: 1,
      ioApicId: 1,
      ioApicAddress: 0xfec00000,
      ramBelow4G: 64 << 20,
    });
    const directTable = (signature: "FACP" | "DSDT" | "APIC") => {
      const at = direct.tables[signature] - direct.address;
      const length = new DataView(direct.bytes.buffer).getUint32(at + 4, true);
      return direct.bytes.slice(at, at + length);
    };
    expect(acpiTables.DSDT).toEqual(directTable("DSDT"));
    expect(acpiTables.APIC).toEqual(directTable("APIC"));
    const withoutAddresses = (fadt: Uint8Array) => {
      const copy = fadt.slice();
      for (const [at, length] of [
        [9, 1],
        [36, 8],
        [140, 8],
      ])
        copy.fill(0, at, at + length);
      return copy;
    };
    expect(withoutAddresses(acpiTables.FACP)).toEqual(withoutAddresses(directTable("FACP")));

    // MP table (MP spec 1.4 4.3.4): the I/O interrupt entry for ISA IRQ 0 names INTIN 2.
    expect(mpConfig).not.toBeNull();
    const mp = mpConfig as Uint8Array;
    const mpView = new DataView(mp.buffer);
    const entrySize = [20, 8, 8, 8, 8];
    let isaBus = -1;
    let irq0Pin = -1;
    for (let at = 44, n = 0; n < mpView.getUint16(34, true); n++) {
      const type = mp[at];
      if (type === 1 && text(mp.subarray(at + 2, at + 5)) === "ISA") isaBus = mp[at + 1];
      // Type 3, interrupt type 0 (INT), source bus ISA, source IRQ 0.
      if (type === 3 && mp[at + 1] === 0 && mp[at + 4] === isaBus && mp[at + 5] === 0)
        irq0Pin = mp[at + 7];
      at += entrySize[type] ?? 8;
    }
    expect(isaBus).toBeGreaterThanOrEqual(0);
    expect(irq0Pin).toBe(2);
  }, 120_000);

  it("POSTs with 2 vCPUs: fw_cfg counts the BSP present, so SeaBIOS does not wait for the APs", async () => {
    // SeaBIOS's smp_setup waits for as many CPUs as fw_cfg's NB_CPUS after its INIT-SIPI-SIPI,
    // which the HVM PC's vCPUs do not answer yet.
    const { debug, close } = await postToBootSearch(2);
    await close();
    expect(debug).toContain("Found 1 cpu(s) max supported 2 cpu(s)");
    expect(debug).toContain("No bootable device.");
  }, 120_000);
});
