/**
 * The HVM PC's ACPI tables (src/builder/acpi.ts buildPcAcpiTables) checked
 * by Debian's iasl (acpica-tools) as an independent oracle: every table is
 * disassembled (`iasl -d`, which verifies checksums and decodes fields and
 * AML) and the DSDT's AML is compared byte for byte with what iasl compiles
 * from the same description written in ASL here. Skipped without iasl.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ACPI_PC_S5_SLEEP_TYPE,
  ACPI_PM_PORT_BASE,
  ACPI_SCI_IRQ,
  ACPI_TABLES_ADDRESS,
  type AcpiTables,
  buildPcAcpiTables,
} from "../src/builder/acpi";
import { eisaId, integer, pkgLength } from "../src/builder/aml";
import { DomainBuildError } from "../src/builder/errors";

function hasIasl(): boolean {
  try {
    execFileSync("iasl", ["-v"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function tableBytes(tables: AcpiTables, name: keyof AcpiTables["tables"]): Uint8Array {
  const offset = (tables.tables[name] as number) - tables.address;
  const view = new DataView(tables.bytes.buffer);
  const length = name === "RSDP" ? 36 : view.getUint32(offset + 4, true);
  return tables.bytes.subarray(offset, offset + length);
}

/** Disassembles every table but the RSDP (iasl 20200925 rejects a bare RSDP file). */
function disassemble(tables: AcpiTables): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "kumo-pc-acpi-"));
  const out: Record<string, string> = {};
  for (const name of Object.keys(tables.tables) as (keyof AcpiTables["tables"])[]) {
    if (name === "RSDP") continue;
    const file = join(dir, `${name.toLowerCase()}.dat`);
    writeFileSync(file, tableBytes(tables, name));
    execFileSync("iasl", ["-d", file], { cwd: dir, stdio: "pipe" });
    out[name] = readFileSync(join(dir, `${name.toLowerCase()}.dsl`), "latin1");
  }
  return out;
}

/** The value iasl prints for a data table field ("Field Name : value"), the n-th time. */
function field(dsl: string, name: string, occurrence = 0): string {
  const escaped = name.replace(/[()/]/g, "\\$&");
  const matches = [...dsl.matchAll(new RegExp(`^[^\\n]*?\\s${escaped} : ([^\\n]*)$`, "gm"))];
  const match = matches[occurrence];
  if (match === undefined) throw new Error(`iasl output has no field "${name}":\n${dsl}`);
  return match[1].trim();
}

/** The fields of one generic address structure, found after its title. */
function gas(dsl: string, title: string) {
  const part = dsl.slice(dsl.indexOf(title));
  return {
    space: field(part, "Space ID"),
    bits: Number.parseInt(field(part, "Bit Width"), 16),
    address: Number.parseInt(field(part, "Address"), 16),
  };
}

/** The DSDT as ASL (ACPI 6.4 chapter 19), written from the description in acpi.ts. */
function expectedDsdtAsl(memoryStart: number, serialPorts = 1): string {
  const hex = (n: number, width: number) =>
    `0x${n.toString(16).toUpperCase().padStart(width, "0")}`;
  const routes: string[] = [];
  for (let slot = 1; slot < 32; slot++)
    for (let pin = 0; pin < 4; pin++)
      routes.push(
        `Package () { ${hex(slot * 0x10000 + 0xffff, 8)}, ${pin}, 0, ${16 + ((slot + pin) & 3)} }`,
      );
  // COM1-COM4 where QEMU's isa-serial puts them (hw/char/serial-isa.c isa_serial_io, isa_serial_irq).
  const comDevices = [
    [0x3f8, 4],
    [0x2f8, 3],
    [0x3e8, 4],
    [0x2e8, 3],
  ].map(
    ([port, irq], index) => `Device (COM${index + 1})
                {
                    Name (_HID, EisaId ("PNP0501"))
                    Name (_UID, ${index + 1})
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, ${hex(port as number, 3)}, ${hex(port as number, 3)}, 0, 8)
                        IRQNoFlags () {${irq}}
                    })
                }`,
  );
  return `DefinitionBlock ("", "DSDT", 2, "KUMO", "KUMOPC", 1)
{
    Name (\\_S5, Package (4) { ${ACPI_PC_S5_SLEEP_TYPE}, ${ACPI_PC_S5_SLEEP_TYPE}, 0, 0 })
    Scope (\\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_ADR, 0)
            Name (_UID, 0)
            Name (_BBN, 0)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
                IO (Decode16, 0xCF8, 0xCF8, 1, 8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0, 0xCF7, 0, 0xCF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0xD00, 0xFFFF, 0, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
                    0, 0xA0000, 0xBFFFF, 0, 0x20000)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
                    0, ${hex(memoryStart, 8)}, 0xFEBFFFFF, 0, ${hex(0xfebfffff - memoryStart + 1, 8)})
            })
            Name (_PRT, Package ()
            {
                ${routes.join(",\n                ")}
            })
            Device (ISA)
            {
                Name (_ADR, 0x00010000)
                Device (KBD)
                {
                    Name (_HID, EisaId ("PNP0303"))
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x60, 0x60, 1, 1)
                        IO (Decode16, 0x64, 0x64, 1, 1)
                        IRQNoFlags () {1}
                    })
                }
                Device (MOU)
                {
                    Name (_HID, EisaId ("PNP0F13"))
                    Name (_CRS, ResourceTemplate () { IRQNoFlags () {12} })
                }
                ${comDevices.slice(0, serialPorts).join("\n")}
                Device (RTC)
                {
                    Name (_HID, EisaId ("PNP0B00"))
                    Name (_CRS, ResourceTemplate ()
                    {
                        IO (Decode16, 0x70, 0x70, 1, 2)
                        IRQNoFlags () {8}
                    })
                }
            }
        }
    }
}
`;
}

describe.skipIf(!hasIasl())("HVM PC ACPI tables (iasl as the oracle)", () => {
  const options = { vcpus: 2, ioApicId: 2, ioApicAddress: 0xfec00000, ramBelow4G: 128 << 20 };
  const tables = buildPcAcpiTables(options);
  const dsl = disassemble(tables);

  it("RSDP: ACPI 2.0+ in the BIOS area with valid checksums, pointing at the RSDT and the XSDT", () => {
    const rsdp = tableBytes(tables, "RSDP");
    const sum = (bytes: Uint8Array) => bytes.reduce((a, b) => a + b, 0) & 0xff;
    expect(sum(rsdp.subarray(0, 20))).toBe(0);
    expect(sum(rsdp)).toBe(0);
    const view = new DataView(rsdp.buffer, rsdp.byteOffset, 36);
    expect(new TextDecoder().decode(rsdp.subarray(0, 8))).toBe("RSD PTR ");
    expect(rsdp[15]).toBe(2);
    expect(view.getUint32(16, true)).toBe(tables.tables.RSDT);
    expect(view.getUint32(24, true)).toBe(tables.tables.XSDT);
    // Linux and SeaBIOS look for it on 16-byte boundaries in 0xE0000-0xFFFFF (ACPI 6.4 5.2.5.1).
    expect(tables.rsdpAddress).toBe(ACPI_TABLES_ADDRESS);
    expect(tables.rsdpAddress % 16).toBe(0);
  });

  it("RSDT and XSDT list the FADT and the MADT; every table's checksum is right", () => {
    for (const text of Object.values(dsl))
      expect(text).not.toMatch(/Incorrect checksum|Error|Warning/i);
    expect(Number.parseInt(field(dsl.RSDT, "ACPI Table Address   0"), 16)).toBe(tables.tables.FACP);
    expect(Number.parseInt(field(dsl.RSDT, "ACPI Table Address   1"), 16)).toBe(tables.tables.APIC);
    expect(Number.parseInt(field(dsl.XSDT, "ACPI Table Address   0"), 16)).toBe(tables.tables.FACP);
    expect(Number.parseInt(field(dsl.XSDT, "ACPI Table Address   1"), 16)).toBe(tables.tables.APIC);
  });

  it("FADT: not hardware-reduced; PM1a event/control and PM timer at the PM block, SCI 9, no SMI, reset via 0xCF9", () => {
    const fadt = dsl.FACP;
    expect(field(fadt, "Revision")).toBe("06");
    expect(field(fadt, "Hardware Reduced (V5)")).toBe("0");
    expect(Number.parseInt(field(fadt, "FACS Address"), 16)).toBe(tables.tables.FACS);
    expect(Number.parseInt(field(fadt, "DSDT Address"), 16)).toBe(tables.tables.DSDT);
    expect(Number.parseInt(field(fadt, "SCI Interrupt"), 16)).toBe(ACPI_SCI_IRQ);
    expect(Number.parseInt(field(fadt, "SMI Command Port"), 16)).toBe(0);
    expect(Number.parseInt(field(fadt, "PM1A Event Block Address"), 16)).toBe(ACPI_PM_PORT_BASE);
    expect(Number.parseInt(field(fadt, "PM1A Control Block Address"), 16)).toBe(
      ACPI_PM_PORT_BASE + 4,
    );
    expect(Number.parseInt(field(fadt, "PM Timer Block Address"), 16)).toBe(ACPI_PM_PORT_BASE + 8);
    expect(field(fadt, "PM1 Event Block Length")).toBe("04");
    expect(field(fadt, "PM1 Control Block Length")).toBe("02");
    expect(field(fadt, "PM Timer Block Length")).toBe("04");
    expect(field(fadt, "GPE0 Block Length")).toBe("00");
    expect(field(fadt, "32-bit PM Timer (V1)")).toBe("0");
    expect(field(fadt, "Control Method Power Button (V1)")).toBe("0");
    expect(field(fadt, "Legacy Devices Supported (V2)")).toBe("1");
    expect(field(fadt, "8042 Present on ports 60/64 (V2)")).toBe("1");
    expect(field(fadt, "CMOS RTC Not Present (V5)")).toBe("0");
    expect(field(fadt, "RTC Century Index")).toBe("32");
    expect(field(fadt, "Reset Register Supported (V2)")).toBe("1");
    expect(gas(fadt, "Reset Register")).toEqual({
      space: "01 [SystemIO]",
      bits: 8,
      address: 0xcf9,
    });
    expect(field(fadt, "Value to cause reset")).toBe("06");
    // The X_ blocks agree with the 32-bit ones (ACPICA warns "32/64X address mismatch" otherwise).
    expect(gas(fadt, "PM1A Event Block :")).toEqual({
      space: "01 [SystemIO]",
      bits: 32,
      address: 0xb000,
    });
    expect(gas(fadt, "PM1A Control Block :")).toEqual({
      space: "01 [SystemIO]",
      bits: 16,
      address: 0xb004,
    });
    expect(gas(fadt, "PM Timer Block :")).toEqual({
      space: "01 [SystemIO]",
      bits: 32,
      address: 0xb008,
    });
  });

  it("FADT says TMR_VAL_EXT for a 32-bit PM timer", () => {
    const wide = disassemble(buildPcAcpiTables({ ...options, pmTimer32: true }));
    expect(field(wide.FACP, "32-bit PM Timer (V1)")).toBe("1");
  });

  it("FACS: 64 bytes, 64-byte aligned", () => {
    expect(field(dsl.FACS, "Signature")).toMatch(/^"FACS"/);
    expect(Number.parseInt(field(dsl.FACS, "Length"), 16)).toBe(64);
    expect((tables.tables.FACS as number) % 64).toBe(0);
  });

  it("MADT: PCAT_COMPAT, LAPICs, the I/O APIC, IRQ 0 -> GSI 2, SCI level/active high, LINT1 NMI", () => {
    const madt = dsl.APIC;
    expect(field(madt, "Local Apic Address")).toBe("FEE00000");
    expect(field(madt, "PC-AT Compatibility")).toBe("1");
    for (let id = 0; id < 2; id++) {
      expect(field(madt, "Processor ID", id)).toBe(`0${id}`);
      expect(field(madt, "Local Apic ID", id)).toBe(`0${id}`);
    }
    expect(field(madt, "I/O Apic ID")).toBe("02");
    expect(field(madt, "Address", 1)).toBe("FEC00000");
    expect(field(madt, "Interrupt", 0)).toBe("00000000");
    expect(field(madt, "Bus", 0)).toBe("00");
    expect(field(madt, "Source", 0)).toBe("00");
    expect(field(madt, "Interrupt", 1)).toBe("00000002");
    expect(field(madt, "Polarity", 0)).toBe("0");
    expect(field(madt, "Trigger Mode", 0)).toBe("0");
    expect(field(madt, "Source", 1)).toBe("09");
    expect(field(madt, "Interrupt", 2)).toBe("00000009");
    expect(field(madt, "Polarity", 1)).toBe("1");
    expect(field(madt, "Trigger Mode", 1)).toBe("3");
    expect(field(madt, "Processor ID", 2)).toBe("FF");
    expect(field(madt, "Interrupt Input LINT")).toBe("01");
  });

  it("DSDT: the AML equals what iasl compiles from the ASL description", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-pc-dsdt-"));
    writeFileSync(join(dir, "dsdt.asl"), expectedDsdtAsl(128 << 20));
    execFileSync("iasl", ["-p", join(dir, "dsdt"), join(dir, "dsdt.asl")], { stdio: "pipe" });
    const compiled = new Uint8Array(readFileSync(join(dir, "dsdt.aml")));
    const ours = tableBytes(tables, "DSDT");
    // The definition block's header differs (OEM fields, compiler ID); the AML after it may not.
    expect(Buffer.from(ours.subarray(36)).toString("hex")).toBe(
      Buffer.from(compiled.subarray(36)).toString("hex"),
    );
    expect(dsl.DSDT).toMatch(/Device \(PCI0\)/);
  });

  it("DSDT with COM1-COM4: one PNP0501 device per port, as iasl compiles them", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-pc-dsdt-com-"));
    writeFileSync(join(dir, "dsdt.asl"), expectedDsdtAsl(128 << 20, 4));
    execFileSync("iasl", ["-p", join(dir, "dsdt"), join(dir, "dsdt.asl")], { stdio: "pipe" });
    const compiled = new Uint8Array(readFileSync(join(dir, "dsdt.aml")));
    const ours = tableBytes(buildPcAcpiTables({ ...options, serialPorts: 4 }), "DSDT");
    expect(Buffer.from(ours.subarray(36)).toString("hex")).toBe(
      Buffer.from(compiled.subarray(36)).toString("hex"),
    );
  });

  it("RAM up to the I/O APIC leaves no PCI memory window above it", () => {
    const big = buildPcAcpiTables({ ...options, ramBelow4G: 0xfec00000 });
    const text = disassemble(big).DSDT;
    expect(text.match(/DWordMemory/g)?.length).toBe(1);
  });

  it("rejects vCPU counts the MADT cannot describe", () => {
    expect(() => buildPcAcpiTables({ ...options, vcpus: 0 })).toThrow(DomainBuildError);
    expect(() => buildPcAcpiTables({ ...options, vcpus: 129 })).toThrow(/1 to 128/);
    expect(buildPcAcpiTables({ ...options, vcpus: 128 }).bytes.length).toBeLessThanOrEqual(0x10000);
  });
});

describe("AML encoding (ACPI 6.4 chapter 20)", () => {
  it("PkgLength counts itself and grows to 2-4 bytes past 63", () => {
    expect(pkgLength(0)).toEqual([1]);
    expect(pkgLength(62)).toEqual([63]);
    // 63 content bytes + 2 length bytes = 65 = 0x41: lead 0x41 (1 follower, low nibble 1), then 0x04.
    expect(pkgLength(63)).toEqual([0x41, 0x04]);
    expect(pkgLength(0xffd)).toEqual([0x4f, 0xff]);
    expect(pkgLength(0xffe)).toEqual([0x81, 0x00, 0x01]);
  });

  it("integers take the shortest encoding; EISA IDs as iasl compiles them", () => {
    expect(integer(0)).toEqual([0x00]);
    expect(integer(1)).toEqual([0x01]);
    expect(integer(0xff)).toEqual([0x0a, 0xff]);
    expect(integer(0x100)).toEqual([0x0b, 0x00, 0x01]);
    expect(integer(0x10000)).toEqual([0x0c, 0x00, 0x00, 0x01, 0x00]);
    expect(integer(2 ** 32)).toEqual([0x0e, 0, 0, 0, 0, 1, 0, 0, 0]);
    expect(eisaId("PNP0A03")).toEqual([0x0c, 0x41, 0xd0, 0x0a, 0x03]);
    expect(() => eisaId("pnp0a03")).toThrow(DomainBuildError);
  });
});
