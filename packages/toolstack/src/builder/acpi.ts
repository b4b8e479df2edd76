/**
 * ACPI tables for an x86 PVH guest, as Xen's toolstack builds them with
 * libacpi (tools/libs/light/libxl_x86_acpi.c): a hardware-reduced platform
 * with an RSDP (ACPI 2.0+, pointing at an XSDT), an FADT, a DSDT holding
 * only `\_S5` and an MADT with one local APIC per vCPU. Linux 6.1 PVH has
 * no Xen poweroff path; it powers off by writing the `\_S5` SLP_TYP to the
 * FADT's SLEEP_CONTROL_REG (drivers/acpi/acpica/hwesleep.c), which the
 * toolstack wires to an `AcpiSleep` device. Layouts: ACPI 6.4 chapter 5
 * (5.2.5.3 RSDP, 5.2.6 header, 5.2.8 XSDT, 5.2.9 FADT, 5.2.12 MADT) and
 * chapter 20 (AML).
 */
import { DomainBuildError } from "./errors";

/**
 * I/O ports of the sleep registers. Xen's PM1a event and control blocks
 * (public hvm/ioreq.h ACPI_PM1A_EVT_BLK_ADDRESS_V1 0xb000 and
 * ACPI_PM1A_CNT_BLK_ADDRESS_V1 0xb004): ports no PC device uses, and the
 * ones Xen's guests already know. Status at 0xb000, control at 0xb004.
 */
export const ACPI_SLEEP_PORT_BASE = 0xb000;
export const ACPI_SLEEP_STATUS_PORT = ACPI_SLEEP_PORT_BASE;
export const ACPI_SLEEP_CONTROL_PORT = ACPI_SLEEP_PORT_BASE + 4;
/**
 * The SLP_TYP value of `\_S5` in the DSDT (a Kumo choice: the field is
 * platform-defined, ACPI 6.4 section 7.4.2; 5 mirrors the state number).
 */
export const ACPI_S5_SLEEP_TYPE = 5;
/** The local APIC's physical address (SDM vol. 3A 11.4.1), given in the MADT. */
export const ACPI_LOCAL_APIC_ADDRESS = 0xfee00000;
/**
 * Where the tables go: the BIOS area below 1 MiB where firmware keeps ACPI
 * tables, which Linux never uses as RAM (it reserves 0xA0000-0xFFFFF) and
 * which lies below the kernel. The builder marks it ACPI (memmap type 3).
 */
export const ACPI_TABLES_ADDRESS = 0xe0000;
/** Room reserved for the tables (one page: enough for 128 vCPUs). */
export const ACPI_TABLES_SIZE = 0x1000;
/** One MADT local APIC entry has an 8-bit APIC ID and UID; one page bounds it too. */
export const ACPI_MAX_VCPUS = 128;

const HEADER_SIZE = 36;
const RSDP_SIZE = 36;
const FADT_SIZE = 276;
const MADT_LAPIC_SIZE = 8;
/** FADT Flags bit 20 HW_REDUCED_ACPI (ACPI 6.4 table 5.10). */
const FADT_HW_REDUCED_ACPI = 1 << 20;
/** IA-PC boot architecture flags (ACPI 6.4 table 5.11): bit 2 VGA not present, bit 5 CMOS RTC not present. */
const IAPC_NO_VGA = 1 << 2;
const IAPC_NO_CMOS_RTC = 1 << 5;
/** Generic address structure: address space 1 is system I/O, access size 1 byte (ACPI 6.4 table 5.1). */
const GAS_SYSTEM_IO = 1;
const GAS_ACCESS_BYTE = 1;
const OEM_ID = "KUMO  ";
const OEM_TABLE_ID = "KUMOPVH ";
const CREATOR_ID = "KUMO";

export interface AcpiTables {
  /** Guest-physical address of the RSDP (hvm_start_info.rsdp_paddr). */
  readonly rsdpAddress: number;
  /** The image to copy to `address`. */
  readonly address: number;
  readonly bytes: Uint8Array;
  /** Each table's address, for tests and logs. */
  readonly tables: Readonly<Record<"RSDP" | "XSDT" | "FACP" | "DSDT" | "APIC", number>>;
}

/**
 * The DSDT's AML: `Name (\_S5, Package () { 5, 5, 0, 0 })` (ACPI 6.4
 * section 7.4.2: SLP_TYPa, SLP_TYPb, reserved, reserved). Encoding, ACPI
 * 6.4 chapter 20: DefName = NameOp (0x08) NameString; NameString =
 * RootChar (0x5C) NameSeg "_S5_" (20.2.2); DefPackage = PackageOp (0x12)
 * PkgLength NumElements PackageElementList (20.2.5.4); PkgLength is one
 * byte below 64 and counts itself (20.2.4); 5 is BytePrefix (0x0A) 0x05 and
 * 0 is ZeroOp (0x00) (20.2.3).
 */
function s5Aml(sleepType: number): Uint8Array {
  const elements = [0x0a, sleepType, 0x0a, sleepType, 0x00, 0x00];
  const pkgLength = 1 + 1 + elements.length;
  return new Uint8Array([0x08, 0x5c, 0x5f, 0x53, 0x35, 0x5f, 0x12, pkgLength, 4, ...elements]);
}

function ascii(view: DataView, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
}

function u64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 0x100000000), true);
}

/** Makes the bytes [start, start + length) sum to 0 mod 256 by setting the byte at `at`. */
function checksum(bytes: Uint8Array, start: number, length: number, at: number): void {
  bytes[at] = 0;
  let sum = 0;
  for (let i = start; i < start + length; i++) sum += bytes[i];
  bytes[at] = (256 - (sum & 0xff)) & 0xff;
}

/** The system description table header (ACPI 6.4 section 5.2.6); the checksum comes last. */
function header(
  view: DataView,
  at: number,
  signature: string,
  length: number,
  revision: number,
): void {
  ascii(view, at, signature);
  view.setUint32(at + 4, length, true);
  view.setUint8(at + 8, revision);
  ascii(view, at + 10, OEM_ID);
  ascii(view, at + 16, OEM_TABLE_ID);
  view.setUint32(at + 24, 1, true); // OEM revision
  ascii(view, at + 28, CREATOR_ID);
  view.setUint32(at + 32, 1, true); // creator revision
}

/** A generic address structure for a byte register in system I/O space (ACPI 6.4 section 5.2.3.2). */
function ioRegister(view: DataView, at: number, port: number): void {
  view.setUint8(at, GAS_SYSTEM_IO);
  view.setUint8(at + 1, 8); // register bit width
  view.setUint8(at + 2, 0); // bit offset
  view.setUint8(at + 3, GAS_ACCESS_BYTE);
  u64(view, at + 4, port);
}

/**
 * Builds the tables for `vcpus` vCPUs to be placed at `address` (default
 * `ACPI_TABLES_ADDRESS`). vCPU n gets ACPI processor UID n and APIC ID n:
 * Linux takes the Xen vcpu id from the UID (arch/x86/xen/enlighten_pvh.c,
 * xen-abi.md 1.2) and Kumo's emulated LAPIC of vCPU n has APIC ID n.
 */
export function buildAcpiTables(vcpus: number, address = ACPI_TABLES_ADDRESS): AcpiTables {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > ACPI_MAX_VCPUS) {
    throw new DomainBuildError(
      `ACPI tables describe 1 to ${ACPI_MAX_VCPUS} vCPUs (8-bit APIC IDs), not ${vcpus}`,
    );
  }
  const aml = s5Aml(ACPI_S5_SLEEP_TYPE);
  const dsdtSize = HEADER_SIZE + aml.length;
  const madtSize = HEADER_SIZE + 8 + vcpus * MADT_LAPIC_SIZE;
  const xsdtSize = HEADER_SIZE + 2 * 8;
  // 16-byte alignment for the RSDP (ACPI 6.4 5.2.5.1) and 8 for the tables.
  const align = (n: number) => Math.ceil(n / 16) * 16;
  const rsdpAt = 0;
  const xsdtAt = align(rsdpAt + RSDP_SIZE);
  const fadtAt = align(xsdtAt + xsdtSize);
  const dsdtAt = align(fadtAt + FADT_SIZE);
  const madtAt = align(dsdtAt + dsdtSize);
  const total = madtAt + madtSize;
  if (total > ACPI_TABLES_SIZE) {
    throw new DomainBuildError(
      `the ACPI tables need ${total} bytes, more than ${ACPI_TABLES_SIZE}`,
    );
  }
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);

  // XSDT: the FADT and the MADT (the DSDT is reached through the FADT).
  header(view, xsdtAt, "XSDT", xsdtSize, 1);
  u64(view, xsdtAt + HEADER_SIZE, address + fadtAt);
  u64(view, xsdtAt + HEADER_SIZE + 8, address + madtAt);
  checksum(bytes, xsdtAt, xsdtSize, xsdtAt + 9);

  // FADT revision 6 (276 bytes). No FACS (optional when hardware-reduced), no
  // SCI, no PM1 or GPE blocks: only the sleep registers.
  header(view, fadtAt, "FACP", FADT_SIZE, 6);
  view.setUint32(fadtAt + 40, address + dsdtAt, true); // DSDT
  view.setUint16(fadtAt + 109, IAPC_NO_VGA | IAPC_NO_CMOS_RTC, true);
  view.setUint32(fadtAt + 112, FADT_HW_REDUCED_ACPI, true);
  view.setUint8(fadtAt + 131, 0); // FADT minor version
  u64(view, fadtAt + 140, address + dsdtAt); // X_DSDT, equal to DSDT
  ioRegister(view, fadtAt + 244, ACPI_SLEEP_CONTROL_PORT); // SLEEP_CONTROL_REG
  ioRegister(view, fadtAt + 256, ACPI_SLEEP_STATUS_PORT); // SLEEP_STATUS_REG
  ascii(view, fadtAt + 268, "KumoXen "); // hypervisor vendor identity
  checksum(bytes, fadtAt, FADT_SIZE, fadtAt + 9);

  // DSDT revision 2 (64-bit AML integers).
  header(view, dsdtAt, "DSDT", dsdtSize, 2);
  bytes.set(aml, dsdtAt + HEADER_SIZE);
  checksum(bytes, dsdtAt, dsdtSize, dsdtAt + 9);

  // MADT revision 4: LAPIC address, flags 0 (PCAT_COMPAT clear: no 8259 pair
  // to mask, no I/O APIC), then one processor local APIC (type 0) per vCPU.
  header(view, madtAt, "APIC", madtSize, 4);
  view.setUint32(madtAt + HEADER_SIZE, ACPI_LOCAL_APIC_ADDRESS, true);
  view.setUint32(madtAt + HEADER_SIZE + 4, 0, true);
  for (let id = 0; id < vcpus; id++) {
    const at = madtAt + HEADER_SIZE + 8 + id * MADT_LAPIC_SIZE;
    view.setUint8(at, 0); // type: processor local APIC
    view.setUint8(at + 1, MADT_LAPIC_SIZE);
    view.setUint8(at + 2, id); // ACPI processor UID = Xen vcpu id
    view.setUint8(at + 3, id); // APIC ID
    view.setUint32(at + 4, 1, true); // flags: enabled
  }
  checksum(bytes, madtAt, madtSize, madtAt + 9);

  // RSDP (ACPI 2.0+): checksum over the first 20 bytes, extended checksum over all 36.
  ascii(view, rsdpAt, "RSD PTR ");
  ascii(view, rsdpAt + 9, OEM_ID);
  view.setUint8(rsdpAt + 15, 2); // revision 2: ACPI 2.0 and later
  view.setUint32(rsdpAt + 16, 0, true); // no RSDT
  view.setUint32(rsdpAt + 20, RSDP_SIZE, true);
  u64(view, rsdpAt + 24, address + xsdtAt);
  checksum(bytes, rsdpAt, 20, rsdpAt + 8);
  checksum(bytes, rsdpAt, RSDP_SIZE, rsdpAt + 32);

  return {
    rsdpAddress: address + rsdpAt,
    address,
    bytes,
    tables: {
      RSDP: address + rsdpAt,
      XSDT: address + xsdtAt,
      FACP: address + fadtAt,
      DSDT: address + dsdtAt,
      APIC: address + madtAt,
    },
  };
}
