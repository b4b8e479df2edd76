/**
 * The PVH ACPI tables checked by an independent oracle: Debian's iasl
 * (acpica-tools) disassembles each binary table (`iasl -d`), verifying
 * checksums and decoding the AML; the tests read its output. Skipped when
 * iasl is not installed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HvmMemmapType } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import {
  ACPI_SLEEP_CONTROL_PORT,
  ACPI_SLEEP_STATUS_PORT,
  ACPI_TABLES_ADDRESS,
  buildAcpiTables,
} from "../src/builder/acpi";
import { DomainBuildError } from "../src/builder/errors";
import { buildPvhBoot, ramBootMemory } from "../src/builder/pvh";
import { buildTestKernel } from "./support/oracles";

function hasIasl(): boolean {
  try {
    execFileSync("iasl", ["-v"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Disassembles every table with iasl and returns each .dsl text by signature. */
function disassemble(vcpus: number): Record<string, string> {
  const tables = buildAcpiTables(vcpus);
  const dir = mkdtempSync(join(tmpdir(), "kumo-acpi-"));
  const view = new DataView(tables.bytes.buffer);
  const out: Record<string, string> = {};
  for (const [name, address] of Object.entries(tables.tables)) {
    // iasl 20200925 (Debian 12) rejects a bare RSDP file (no table header); checked below.
    if (name === "RSDP") continue;
    const offset = address - tables.address;
    const length = name === "RSDP" ? 36 : view.getUint32(offset + 4, true);
    const file = join(dir, `${name.toLowerCase()}.dat`);
    writeFileSync(file, tables.bytes.subarray(offset, offset + length));
    execFileSync("iasl", ["-d", file], { cwd: dir, stdio: "pipe" });
    out[name] = readFileSync(join(dir, `${name.toLowerCase()}.dsl`), "latin1");
  }
  return out;
}

/** The value iasl prints for a field of a data table ("Field Name : value"). */
function field(dsl: string, name: string, occurrence = 0): string {
  const matches = [
    ...dsl.matchAll(new RegExp(`^[^\\n]*?\\s${name.replace(/[()]/g, "\\$&")} : ([^\\n]*)$`, "gm")),
  ];
  const match = matches[occurrence];
  if (match === undefined) throw new Error(`iasl output has no field "${name}":\n${dsl}`);
  return match[1].trim();
}

describe.skipIf(!hasIasl())("PVH ACPI tables (iasl -d as the oracle)", () => {
  const dsl = disassemble(3);
  const tables = buildAcpiTables(3);

  it("RSDP: ACPI 2.0+ with valid checksums, pointing at the XSDT only", () => {
    // ACPI 6.4 5.2.5.3: bytes 0-19 sum to 0, all 36 bytes sum to 0.
    const rsdp = tables.bytes.subarray(0, 36);
    const sum = (bytes: Uint8Array) => bytes.reduce((a, b) => a + b, 0) & 0xff;
    expect(sum(rsdp.subarray(0, 20))).toBe(0);
    expect(sum(rsdp)).toBe(0);
    const view = new DataView(rsdp.buffer, rsdp.byteOffset, 36);
    expect(new TextDecoder().decode(rsdp.subarray(0, 8))).toBe("RSD PTR ");
    expect(rsdp[15]).toBe(2);
    expect(view.getUint32(16, true)).toBe(0);
    expect(view.getUint32(20, true)).toBe(36);
    expect(view.getUint32(24, true) + view.getUint32(28, true) * 2 ** 32).toBe(tables.tables.XSDT);
    expect(tables.rsdpAddress).toBe(ACPI_TABLES_ADDRESS);
  });

  it("XSDT lists the FADT and the MADT", () => {
    const xsdt = dsl.XSDT;
    expect(xsdt).not.toMatch(/Incorrect checksum/i);
    expect(Number.parseInt(field(xsdt, "ACPI Table Address   0"), 16)).toBe(tables.tables.FACP);
    expect(Number.parseInt(field(xsdt, "ACPI Table Address   1"), 16)).toBe(tables.tables.APIC);
  });

  it("FADT: hardware-reduced, sleep registers in system I/O at Xen's PM1a ports, DSDT", () => {
    const fadt = dsl.FACP;
    expect(fadt).not.toMatch(/Incorrect checksum|Warning|Error/i);
    expect(field(fadt, "Revision")).toBe("06");
    expect(field(fadt, "Hardware Reduced (V5)")).toBe("1");
    expect(field(fadt, "VGA Not Present (V4)")).toBe("1");
    expect(field(fadt, "CMOS RTC Not Present (V5)")).toBe("1");
    expect(Number.parseInt(field(fadt, "DSDT Address"), 16)).toBe(tables.tables.DSDT);
    const sleepControl = fadt.slice(fadt.indexOf("Sleep Control Register"));
    expect(field(sleepControl, "Space ID")).toMatch(/^01 \[SystemIO\]/);
    expect(field(sleepControl, "Bit Width")).toBe("08");
    expect(Number.parseInt(field(sleepControl, "Address"), 16)).toBe(ACPI_SLEEP_CONTROL_PORT);
    const sleepStatus = fadt.slice(fadt.indexOf("Sleep Status Register"));
    expect(field(sleepStatus, "Space ID")).toMatch(/^01 \[SystemIO\]/);
    expect(Number.parseInt(field(sleepStatus, "Address"), 16)).toBe(ACPI_SLEEP_STATUS_PORT);
  });

  it("DSDT: Name (_S5, Package (4) { 5, 5, Zero, Zero })", () => {
    const dsdt = dsl.DSDT;
    expect(dsdt).not.toMatch(/Incorrect checksum/i);
    const compact = dsdt.replace(/\/\/[^\n]*/g, "").replace(/\s+/g, " ");
    expect(compact).toMatch(/\{ Name \(\\_S5, Package \(0x04\) \{ 0x05, 0x05, Zero, Zero \}\) \}/);
  });

  it("MADT: LAPIC at 0xFEE00000, PCAT_COMPAT clear, one enabled LAPIC per vCPU with UID = APIC ID = vcpu id", () => {
    const madt = dsl.APIC;
    expect(madt).not.toMatch(/Incorrect checksum/i);
    expect(field(madt, "Local Apic Address")).toBe("FEE00000");
    expect(field(madt, "PC-AT Compatibility")).toBe("0");
    expect(madt).not.toMatch(/I\/O APIC/);
    for (let id = 0; id < 3; id++) {
      expect(field(madt, "Processor ID", id)).toBe(`0${id}`);
      expect(field(madt, "Local Apic ID", id)).toBe(`0${id}`);
      expect(field(madt, "Processor Enabled", id)).toBe("1");
    }
    expect(() => field(madt, "Processor ID", 3)).toThrow();
  });

  it("rejects vCPU counts the MADT cannot describe", () => {
    expect(() => buildAcpiTables(0)).toThrow(DomainBuildError);
    expect(() => buildAcpiTables(129)).toThrow(/1 to 128/);
    expect(buildAcpiTables(128).bytes.length).toBeLessThanOrEqual(4096);
  });
});

describe("PVH builder with ACPI", () => {
  it("writes the tables, marks their page ACPI (type 3) and sets rsdp_paddr", () => {
    const ram = new Uint8Array(4 << 20);
    const layout = buildPvhBoot(ramBootMemory(ram), { kernel: buildTestKernel(32), acpiVcpus: 2 });
    const acpi = layout.acpi;
    expect(acpi).toBeDefined();
    expect(ram.subarray(ACPI_TABLES_ADDRESS, ACPI_TABLES_ADDRESS + 8)).toEqual(
      new TextEncoder().encode("RSD PTR "),
    );
    expect(ram.subarray(acpi?.address, (acpi?.address ?? 0) + (acpi?.bytes.length ?? 0))).toEqual(
      acpi?.bytes,
    );
    // hvm_start_info.rsdp_paddr at offset 32 (Xen public hvm/start_info.h).
    const view = new DataView(ram.buffer);
    expect(view.getUint32(layout.startInfoAddress + 32, true)).toBe(ACPI_TABLES_ADDRESS);
    expect(layout.memmap).toContainEqual({
      address: ACPI_TABLES_ADDRESS,
      size: 4096,
      type: HvmMemmapType.ACPI,
    });
    // RAM is split around the tables and still covers everything else.
    const ramEntries = layout.memmap.filter((entry) => entry.type === HvmMemmapType.RAM);
    expect(ramEntries.reduce((total, entry) => total + entry.size, 0)).toBe(ram.length - 4096);
    expect(layout.startInfoAddress + 64).toBeLessThan(ACPI_TABLES_ADDRESS);
  });

  it("without acpiVcpus leaves rsdp_paddr 0 and one RAM range", () => {
    const ram = new Uint8Array(4 << 20);
    const layout = buildPvhBoot(ramBootMemory(ram), { kernel: buildTestKernel(32) });
    expect(layout.acpi).toBeUndefined();
    expect(new DataView(ram.buffer).getUint32(layout.startInfoAddress + 32, true)).toBe(0);
    expect(layout.memmap.filter((entry) => entry.type !== HvmMemmapType.RESERVED)).toEqual([
      { address: 0, size: ram.length, type: HvmMemmapType.RAM },
    ]);
  });
});
