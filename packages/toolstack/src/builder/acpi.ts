/**
 * ACPI tables for an x86 PVH guest, as Xen's toolstack builds them with
 * libacpi (tools/libs/light/libxl_x86_acpi.c): a hardware-reduced platform
 * with an RSDP (ACPI 2.0+, pointing at an XSDT), an FADT, a DSDT holding
 * only `\_S5` and an MADT with one local APIC per vCPU. Linux 6.1 PVH has
 * no Xen poweroff path; it powers off by writing the `\_S5` SLP_TYP to the
 * FADT's SLEEP_CONTROL_REG (drivers/acpi/acpica/hwesleep.c), which the
 * toolstack wires to an `AcpiSleep` device.
 *
 * And the tables of the emulated PC of an HVM domain booted without
 * firmware (`buildPcAcpiTables`): a full (not hardware-reduced) PIIX4-style
 * platform with PM1 blocks, PM timer, SCI, I/O APIC and a DSDT describing
 * the PCI root and ISA devices. Both are laid out, linked and checksummed
 * by one assembler (`assemble`). Layouts: ACPI 6.4 chapter 5 (5.2.5.3
 * RSDP, 5.2.6 header, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.9 FADT, 5.2.10 FACS,
 * 5.2.12 MADT) and chapter 20 (AML, encoded by ./aml).
 */
import {
  AddressSpace,
  type Aml,
  aPackage,
  device,
  dwordMemory,
  eisaId,
  integer,
  ioPort,
  irqNoFlags,
  le,
  name,
  resourceTemplate,
  scope,
  wordAddressSpace,
} from "./aml";
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
const FACS_SIZE = 64;
const MADT_LAPIC_SIZE = 8;
/** FADT Flags bit 20 HW_REDUCED_ACPI (ACPI 6.4 table 5.10). */
const FADT_HW_REDUCED_ACPI = 1 << 20;
/** IA-PC boot architecture flags (ACPI 6.4 table 5.11): bit 2 VGA not present, bit 5 CMOS RTC not present. */
const IAPC_NO_VGA = 1 << 2;
const IAPC_NO_CMOS_RTC = 1 << 5;
/** Generic address structure: address space 1 is system I/O; access sizes 1 byte, 2 word, 3 dword (ACPI 6.4 table 5.1). */
const GAS_SYSTEM_IO = 1;
const GAS_ACCESS_BYTE = 1;
const GAS_ACCESS_WORD = 2;
const GAS_ACCESS_DWORD = 3;
const OEM_ID = "KUMO  ";
const CREATOR_ID = "KUMO";

export interface AcpiTables {
  /** Guest-physical address of the RSDP (hvm_start_info.rsdp_paddr). */
  readonly rsdpAddress: number;
  /** The image to copy to `address`. */
  readonly address: number;
  readonly bytes: Uint8Array;
  /** Each table's address, for tests and logs (RSDT and FACS only in the PC tables). */
  readonly tables: Readonly<
    Record<"RSDP" | "XSDT" | "FACP" | "DSDT" | "APIC", number> &
      Partial<Record<"RSDT" | "FACS", number>>
  >;
}

/**
 * The DSDT's AML: `Name (\_S5, Package () { t, t, 0, 0 })` (ACPI 6.4
 * section 7.4.2: SLP_TYPa, SLP_TYPb, reserved, reserved). `path` "\\_S5"
 * or, as iasl shortens it at the root of a definition block, "_S5".
 */
function s5Aml(sleepType: number, path = "\\_S5"): Aml {
  return name(path, aPackage(integer(sleepType), integer(sleepType), integer(0), integer(0)));
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
  oemTableId: string,
): void {
  ascii(view, at, signature);
  view.setUint32(at + 4, length, true);
  view.setUint8(at + 8, revision);
  ascii(view, at + 10, OEM_ID);
  ascii(view, at + 16, oemTableId);
  view.setUint32(at + 24, 1, true); // OEM revision
  ascii(view, at + 28, CREATOR_ID);
  view.setUint32(at + 32, 1, true); // creator revision
}

/**
 * A generic address structure for a register in system I/O space (ACPI 6.4
 * section 5.2.3.2): `bits` wide, accessed `accessSize` (1 byte, 2 word, 3
 * dword) at a time.
 */
function ioRegister(
  view: DataView,
  at: number,
  port: number,
  bits = 8,
  accessSize = GAS_ACCESS_BYTE,
): void {
  view.setUint8(at, GAS_SYSTEM_IO);
  view.setUint8(at + 1, bits);
  view.setUint8(at + 2, 0); // bit offset
  view.setUint8(at + 3, accessSize);
  u64(view, at + 4, port);
}

function checkVcpus(vcpus: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > ACPI_MAX_VCPUS) {
    throw new DomainBuildError(
      `ACPI tables describe 1 to ${ACPI_MAX_VCPUS} vCPUs (8-bit APIC IDs), not ${vcpus}`,
    );
  }
}

/** What differs between the PVH and the PC tables; the rest is assembled by `assemble`. */
interface TablePlan {
  readonly vcpus: number;
  readonly address: number;
  readonly limit: number;
  readonly oemTableId: string;
  /** An RSDT beside the XSDT (ACPI 1.0 OSes), and a FACS (required unless hardware-reduced). */
  readonly rsdt: boolean;
  readonly facs: boolean;
  readonly dsdt: Aml;
  /** MADT flags (bit 0 PCAT_COMPAT) and the entries after the local APICs. */
  readonly madtFlags: number;
  readonly madtEntries: Aml;
  /** Fills the FADT fields after the header other than FIRMWARE_CTRL, DSDT and X_DSDT. */
  fadt(view: DataView, at: number): void;
  /** Alignment of the first table after the RSDP (default 16; 64 keeps the FACS aligned in a file of its own). */
  readonly tablesAlign?: number;
}

/**
 * Where `assemble` put addresses and checksums, offsets in `bytes`: what a
 * firmware's linker/loader must patch when it moves the tables
 * (`buildPcAcpiLoader`).
 */
interface TableLinks {
  /** An address of `size` bytes at `at` (its value is `address` + the target's offset). */
  readonly pointers: { readonly at: number; readonly size: 4 | 8 }[];
  /** The checksum byte `at` over [start, start + length). */
  readonly checksums: { readonly at: number; readonly start: number; readonly length: number }[];
  /** The offset of the first table after the RSDP. */
  readonly tablesStart: number;
}

/**
 * Lays the tables out from `plan.address`: RSDP, [RSDT], XSDT, [FACS],
 * FADT, DSDT, MADT, and links and checksums them. vCPU n gets ACPI
 * processor UID n and APIC ID n: Linux takes the Xen vcpu id from the UID
 * (arch/x86/xen/enlighten_pvh.c, xen-abi.md 1.2) and Kumo's emulated LAPIC
 * of vCPU n has APIC ID n.
 */
function assemble(plan: TablePlan): AcpiTables & { readonly links: TableLinks } {
  checkVcpus(plan.vcpus);
  const address = plan.address;
  const dsdtSize = HEADER_SIZE + plan.dsdt.length;
  const madtSize = HEADER_SIZE + 8 + plan.vcpus * MADT_LAPIC_SIZE + plan.madtEntries.length;
  const rsdtSize = HEADER_SIZE + 2 * 4;
  const xsdtSize = HEADER_SIZE + 2 * 8;
  // 16-byte alignment for the RSDP (ACPI 6.4 5.2.5.1) and 8 for the tables; 64 for the FACS (5.2.10).
  const align = (n: number, to = 16) => Math.ceil(n / to) * to;
  const rsdpAt = 0;
  const tablesStart = align(rsdpAt + RSDP_SIZE, plan.tablesAlign ?? 16);
  const rsdtAt = plan.rsdt ? tablesStart : -1;
  const xsdtAt = plan.rsdt ? align(rsdtAt + rsdtSize) : tablesStart;
  const facsAt = plan.facs ? align(xsdtAt + xsdtSize, 64) : -1;
  const fadtAt = align(plan.facs ? facsAt + FACS_SIZE : xsdtAt + xsdtSize);
  const dsdtAt = align(fadtAt + FADT_SIZE);
  const madtAt = align(dsdtAt + dsdtSize);
  const total = madtAt + madtSize;
  if (total > plan.limit) {
    throw new DomainBuildError(`the ACPI tables need ${total} bytes, more than ${plan.limit}`);
  }
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const links: TableLinks = { pointers: [], checksums: [], tablesStart };
  const pointer32 = (at: number, target: number) => {
    view.setUint32(at, address + target, true);
    links.pointers.push({ at, size: 4 });
  };
  const pointer64 = (at: number, target: number) => {
    u64(view, at, address + target);
    links.pointers.push({ at, size: 8 });
  };
  const sum = (start: number, length: number, at: number) => {
    checksum(bytes, start, length, at);
    links.checksums.push({ at, start, length });
  };

  // RSDT and XSDT: the FADT and the MADT (the DSDT and FACS are reached through the FADT).
  if (plan.rsdt) {
    header(view, rsdtAt, "RSDT", rsdtSize, 1, plan.oemTableId);
    pointer32(rsdtAt + HEADER_SIZE, fadtAt);
    pointer32(rsdtAt + HEADER_SIZE + 4, madtAt);
    sum(rsdtAt, rsdtSize, rsdtAt + 9);
  }
  header(view, xsdtAt, "XSDT", xsdtSize, 1, plan.oemTableId);
  pointer64(xsdtAt + HEADER_SIZE, fadtAt);
  pointer64(xsdtAt + HEADER_SIZE + 8, madtAt);
  sum(xsdtAt, xsdtSize, xsdtAt + 9);

  if (plan.facs) {
    // FACS (ACPI 6.4 5.2.10): no checksum; hardware signature 0, no waking vector, version 2.
    ascii(view, facsAt, "FACS");
    view.setUint32(facsAt + 4, FACS_SIZE, true);
    view.setUint8(facsAt + 32, 2);
  }

  // FADT revision 6 (276 bytes).
  header(view, fadtAt, "FACP", FADT_SIZE, 6, plan.oemTableId);
  // FIRMWARE_CTRL (32-bit) only; X_FIRMWARE_CTRL stays 0 (one of the two, ACPI 6.4 table 5.9).
  if (plan.facs) pointer32(fadtAt + 36, facsAt);
  pointer32(fadtAt + 40, dsdtAt); // DSDT
  plan.fadt(view, fadtAt);
  view.setUint8(fadtAt + 131, 0); // FADT minor version
  pointer64(fadtAt + 140, dsdtAt); // X_DSDT, equal to DSDT
  ascii(view, fadtAt + 268, "KumoXen "); // hypervisor vendor identity
  sum(fadtAt, FADT_SIZE, fadtAt + 9);

  // DSDT revision 2 (64-bit AML integers).
  header(view, dsdtAt, "DSDT", dsdtSize, 2, plan.oemTableId);
  bytes.set(plan.dsdt, dsdtAt + HEADER_SIZE);
  sum(dsdtAt, dsdtSize, dsdtAt + 9);

  // MADT revision 4: LAPIC address, flags, one processor local APIC (type 0) per vCPU, the rest.
  header(view, madtAt, "APIC", madtSize, 4, plan.oemTableId);
  view.setUint32(madtAt + HEADER_SIZE, ACPI_LOCAL_APIC_ADDRESS, true);
  view.setUint32(madtAt + HEADER_SIZE + 4, plan.madtFlags, true);
  for (let id = 0; id < plan.vcpus; id++) {
    const at = madtAt + HEADER_SIZE + 8 + id * MADT_LAPIC_SIZE;
    view.setUint8(at, 0); // type: processor local APIC
    view.setUint8(at + 1, MADT_LAPIC_SIZE);
    view.setUint8(at + 2, id); // ACPI processor UID = Xen vcpu id
    view.setUint8(at + 3, id); // APIC ID
    view.setUint32(at + 4, 1, true); // flags: enabled
  }
  bytes.set(plan.madtEntries, madtAt + HEADER_SIZE + 8 + plan.vcpus * MADT_LAPIC_SIZE);
  sum(madtAt, madtSize, madtAt + 9);

  // RSDP (ACPI 2.0+): checksum over the first 20 bytes, extended checksum over all 36.
  ascii(view, rsdpAt, "RSD PTR ");
  ascii(view, rsdpAt + 9, OEM_ID);
  view.setUint8(rsdpAt + 15, 2); // revision 2: ACPI 2.0 and later
  if (plan.rsdt) pointer32(rsdpAt + 16, rsdtAt);
  view.setUint32(rsdpAt + 20, RSDP_SIZE, true);
  pointer64(rsdpAt + 24, xsdtAt);
  // The 20-byte checksum first: the extended one covers it.
  sum(rsdpAt, 20, rsdpAt + 8);
  sum(rsdpAt, RSDP_SIZE, rsdpAt + 32);

  return {
    rsdpAddress: address + rsdpAt,
    address,
    bytes,
    tables: {
      RSDP: address + rsdpAt,
      ...(plan.rsdt ? { RSDT: address + rsdtAt } : {}),
      XSDT: address + xsdtAt,
      ...(plan.facs ? { FACS: address + facsAt } : {}),
      FACP: address + fadtAt,
      DSDT: address + dsdtAt,
      APIC: address + madtAt,
    },
    links,
  };
}

/**
 * Builds the PVH tables for `vcpus` vCPUs to be placed at `address`
 * (default `ACPI_TABLES_ADDRESS`): hardware-reduced, no FACS, no RSDT.
 */
export function buildAcpiTables(vcpus: number, address = ACPI_TABLES_ADDRESS): AcpiTables {
  const { links: _links, ...tables } = assemble({
    vcpus,
    address,
    limit: ACPI_TABLES_SIZE,
    oemTableId: "KUMOPVH ",
    rsdt: false,
    facs: false,
    dsdt: s5Aml(ACPI_S5_SLEEP_TYPE),
    // PCAT_COMPAT clear: no 8259 pair to mask, no I/O APIC.
    madtFlags: 0,
    madtEntries: [],
    fadt(view, at) {
      // No SCI, no PM1 or GPE blocks: only the sleep registers.
      view.setUint16(at + 109, IAPC_NO_VGA | IAPC_NO_CMOS_RTC, true);
      view.setUint32(at + 112, FADT_HW_REDUCED_ACPI, true);
      ioRegister(view, at + 244, ACPI_SLEEP_CONTROL_PORT); // SLEEP_CONTROL_REG
      ioRegister(view, at + 256, ACPI_SLEEP_STATUS_PORT); // SLEEP_STATUS_REG
    },
  });
  return tables;
}

/**
 * The PC's ACPI I/O block: PIIX4-style PM1 event (status at +0, enable at
 * +2), PM1 control (+4) and PM timer (+8), at the ports of Xen's v1 layout
 * (public hvm/ioreq.h ACPI_PM1A_EVT_BLK_ADDRESS_V1 0xb000,
 * ACPI_PM1A_CNT_BLK_ADDRESS_V1 0xb004, ACPI_PM_TMR_BLK_ADDRESS_V1 0xb008),
 * where `@kumo/device-models`' `AcpiPm` sits; the same base as the PVH
 * sleep registers.
 */
export const ACPI_PM_PORT_BASE = 0xb000;
/** The SCI's ISA IRQ on a PIIX4 PC (PIIX4 datasheet, SCI routed to IRQ 9; QEMU and SeaBIOS use 9). */
export const ACPI_SCI_IRQ = 9;
/**
 * SLP_TYP of `\_S5` on the PC: 0, the PIIX4's "soft off" encoding of
 * PMCNTRL SUS_TYP (PIIX4 datasheet 7.2.3), which QEMU's and SeaBIOS's PIIX4
 * DSDTs also give.
 */
export const ACPI_PC_S5_SLEEP_TYPE = 0;
/** Room for the PC tables: the 64 KiB E segment of the BIOS area. */
export const ACPI_PC_TABLES_SIZE = 0x10000;
/** The PCI configuration mechanism #1 ports the host bridge decodes (0xCF8-0xCFF). */
const PCI_CONFIG_PORTS = 0xcf8;
/** The legacy VGA memory window a PC's PCI root forwards (0xA0000-0xBFFFF). */
const VGA_WINDOW = { start: 0xa0000, end: 0xbffff };
/** The top of the PCI memory window: below the I/O APIC at 0xFEC00000. */
const PCI_MEMORY_END = 0xfebfffff;
/** IA-PC boot architecture flags bit 0 LEGACY_DEVICES, bit 1 8042 (ACPI 6.4 table 5.11). */
const IAPC_LEGACY_DEVICES = 1 << 0;
const IAPC_8042 = 1 << 1;
/** FADT flags (ACPI 6.4 table 5.10). */
const FADT_WBINVD = 1 << 0;
const FADT_PROC_C1 = 1 << 2;
const FADT_SLP_BUTTON = 1 << 5;
const FADT_TMR_VAL_EXT = 1 << 8;
const FADT_RESET_REG_SUP = 1 << 10;
/** MPS INTI flags (ACPI 6.4 table 5.50): polarity 01 active high, trigger 11 level. */
const INTI_ACTIVE_HIGH_LEVEL = 0x0d;
/** The PIIX3 reset control register and the value that makes it reset the system (PIIX3 datasheet 4.1.16). */
const RESET_CONTROL_PORT = 0xcf9;
const RESET_CONTROL_VALUE = 0x06;
/** The RTC's century byte (IBM PS/2 CMOS 0x32; `@kumo/device-models` CmosRegister.Century). */
const CMOS_CENTURY = 0x32;

export interface PcAcpiOptions {
  readonly vcpus: number;
  /** The I/O APIC's ID and address (MADT I/O APIC entry, GSI base 0). */
  readonly ioApicId: number;
  readonly ioApicAddress: number;
  /** Guest RAM below 4 GiB, in bytes: the PCI root's memory window starts above it. */
  readonly ramBelow4G: number;
  /** The PM timer is 32 bits wide (FADT TMR_VAL_EXT); default 24 as on a PIIX4. */
  readonly pmTimer32?: boolean;
  /** Where the tables go (default ACPI_TABLES_ADDRESS, 0xE0000: the RSDP must lie in 0xE0000-0xFFFFF). */
  readonly address?: number;
  /** How many serial ports the PC has, COM1 first (1-4, default 1): one PNP0501 device each. */
  readonly serialPorts?: number;
}

/** COM1-COM4's ports and IRQs (QEMU hw/char/serial-isa.c isa_serial_io, isa_serial_irq). */
const COM_RESOURCES: readonly (readonly [number, number])[] = [
  [0x3f8, 4],
  [0x2f8, 3],
  [0x3e8, 4],
  [0x2e8, 3],
];

/**
 * The DSDT of the PC: `\_S5` and the PCI root bridge with the ISA devices
 * Linux looks for through ACPI/PNP. `\_SB.PCI0` (PNP0A03, bus 0) gives its
 * windows in `_CRS` (bus numbers 0-255, I/O below and above the
 * configuration ports, the VGA window, memory from the top of RAM to the
 * I/O APIC) and its interrupt routing in `_PRT`: in APIC mode, INTx of
 * slot d pin p reaches GSI 16 + ((d + p) & 3), the PIIX3 PIRQ rotation the
 * MP table describes too (src/builder/mp-table.ts). Under the PIIX3 ISA
 * bridge (00:01.0): the i8042 keyboard (PNP0303, ports 0x60/0x64, IRQ 1)
 * and mouse (PNP0F13, IRQ 12), COM1 (PNP0501, 0x3F8, IRQ 4) and, when
 * present, COM2-COM4 (0x2F8 IRQ 3, 0x3E8 IRQ 4, 0x2E8 IRQ 3; _UID 1-4 as
 * QEMU's DSDT numbers them), and the RTC (PNP0B00, 0x70, IRQ 8).
 */
function pcDsdt(options: PcAcpiOptions): Aml {
  const memoryStart = Math.ceil(options.ramBelow4G / 0x100000) * 0x100000;
  const routes: Aml[] = [];
  for (let slot = 1; slot < 32; slot++) {
    for (let pin = 0; pin < 4; pin++) {
      // Package { Address (slot << 16 | 0xFFFF: any function), Pin, Source 0 (a GSI), GSI } (ACPI 6.4 6.2.13).
      routes.push(
        aPackage(
          integer(slot * 0x10000 + 0xffff),
          integer(pin),
          integer(0),
          integer(16 + ((slot + pin) & 3)),
        ),
      );
    }
  }
  const crs = resourceTemplate(
    wordAddressSpace(AddressSpace.BusNumber, 0, 0xff),
    ioPort(PCI_CONFIG_PORTS, 8),
    wordAddressSpace(AddressSpace.Io, 0, PCI_CONFIG_PORTS - 1),
    wordAddressSpace(AddressSpace.Io, PCI_CONFIG_PORTS + 8, 0xffff),
    dwordMemory(VGA_WINDOW.start, VGA_WINDOW.end),
    ...(memoryStart <= PCI_MEMORY_END ? [dwordMemory(memoryStart, PCI_MEMORY_END)] : []),
  );
  // A Package holds at most 255 elements: the _PRT is one Package of 124.
  const isaDevice = (path: string, id: string, resources: Aml[], uid?: number) =>
    device(
      path,
      name("_HID", eisaId(id)),
      ...(uid === undefined ? [] : [name("_UID", integer(uid))]),
      name("_CRS", resourceTemplate(...resources)),
    );
  return [
    // Names at the root written relative to it, as iasl emits them (the test compares with iasl).
    ...s5Aml(ACPI_PC_S5_SLEEP_TYPE, "_S5"),
    ...scope(
      "_SB",
      device(
        "PCI0",
        name("_HID", eisaId("PNP0A03")),
        name("_ADR", integer(0)),
        name("_UID", integer(0)),
        name("_BBN", integer(0)),
        name("_CRS", crs),
        name("_PRT", aPackage(...routes)),
        device(
          "ISA",
          name("_ADR", integer(0x00010000)),
          isaDevice("KBD", "PNP0303", [ioPort(0x60, 1), ioPort(0x64, 1), irqNoFlags(1)]),
          isaDevice("MOU", "PNP0F13", [irqNoFlags(12)]),
          ...COM_RESOURCES.slice(0, options.serialPorts ?? 1).map(([port, irq], index) =>
            isaDevice(
              `COM${index + 1}`,
              "PNP0501",
              [ioPort(port, 8, 0), irqNoFlags(irq)],
              index + 1,
            ),
          ),
          isaDevice("RTC", "PNP0B00", [ioPort(0x70, 2), irqNoFlags(8)]),
        ),
      ),
    ),
  ];
}

/**
 * Builds the ACPI tables of the emulated PC (an HVM domain booted without
 * firmware), in the shape a PIIX4 PC's BIOS leaves them: RSDP (2.0+) with
 * an RSDT and an XSDT, a FACS, an FADT (not hardware-reduced) pointing at
 * the PM1a event/control blocks and the PM timer at `ACPI_PM_PORT_BASE`,
 * SCI on IRQ 9 and the 0xCF9 reset register, SMI_CMD 0 (no SMI: the
 * platform is always in ACPI mode, ACPI 6.4 5.2.9), a DSDT (`pcDsdt`), and
 * an MADT with PCAT_COMPAT, the local APICs, the I/O APIC, the interrupt
 * source overrides (ISA IRQ 0 on GSI 2; the SCI, IRQ 9, level and active
 * high) and LINT1 as NMI on every processor.
 */
export function buildPcAcpiTables(options: PcAcpiOptions): AcpiTables {
  const { links: _links, ...tables } = assemble(
    pcTablePlan(options, options.address ?? ACPI_TABLES_ADDRESS),
  );
  return tables;
}

/** What the PC's tables are, wherever they go (`buildPcAcpiTables`, `buildPcAcpiLoader`). */
function pcTablePlan(options: PcAcpiOptions, address: number): TablePlan {
  const madtEntries: number[] = [];
  // I/O APIC (type 1): ID, reserved, address, GSI base 0.
  madtEntries.push(1, 12, options.ioApicId, 0, ...le(options.ioApicAddress, 4), ...le(0, 4));
  // Interrupt source overrides (type 2): bus 0 (ISA), source IRQ, GSI, MPS INTI flags.
  madtEntries.push(2, 10, 0, 0, ...le(2, 4), ...le(0, 2));
  madtEntries.push(
    2,
    10,
    0,
    ACPI_SCI_IRQ,
    ...le(ACPI_SCI_IRQ, 4),
    ...le(INTI_ACTIVE_HIGH_LEVEL, 2),
  );
  // Local APIC NMI (type 4): all processors (0xFF), flags conforming, LINT1.
  madtEntries.push(4, 6, 0xff, 0, 0, 1);
  const pmBase = ACPI_PM_PORT_BASE;
  return {
    vcpus: options.vcpus,
    address,
    limit: ACPI_PC_TABLES_SIZE,
    oemTableId: "KUMOPC  ",
    rsdt: true,
    facs: true,
    dsdt: pcDsdt(options),
    madtFlags: 1, // PCAT_COMPAT: the 8259 pair is there (and masked by the OS when it uses the I/O APIC)
    madtEntries,
    fadt(view, at) {
      view.setUint16(at + 46, ACPI_SCI_IRQ, true); // SCI_INT
      view.setUint32(at + 48, 0, true); // SMI_CMD: none
      view.setUint32(at + 56, pmBase, true); // PM1a_EVT_BLK
      view.setUint32(at + 64, pmBase + 4, true); // PM1a_CNT_BLK
      view.setUint32(at + 76, pmBase + 8, true); // PM_TMR_BLK
      view.setUint8(at + 88, 4); // PM1_EVT_LEN
      view.setUint8(at + 89, 2); // PM1_CNT_LEN
      view.setUint8(at + 91, 4); // PM_TMR_LEN
      // C2/C3 latencies above 100 / 1000 us: not supported (ACPI 6.4 table 5.9).
      view.setUint16(at + 96, 101, true);
      view.setUint16(at + 98, 1001, true);
      view.setUint8(at + 108, CMOS_CENTURY);
      // VGA Not Present stays clear, as a PC BIOS leaves it: xl.cfg `vga` may add one later.
      view.setUint16(at + 109, IAPC_LEGACY_DEVICES | IAPC_8042, true);
      view.setUint32(
        at + 112,
        FADT_WBINVD |
          FADT_PROC_C1 |
          FADT_SLP_BUTTON |
          FADT_RESET_REG_SUP |
          (options.pmTimer32 ? FADT_TMR_VAL_EXT : 0),
        true,
      );
      ioRegister(view, at + 116, RESET_CONTROL_PORT); // RESET_REG
      view.setUint8(at + 128, RESET_CONTROL_VALUE);
      ioRegister(view, at + 148, pmBase, 32, GAS_ACCESS_WORD); // X_PM1a_EVT_BLK
      ioRegister(view, at + 172, pmBase + 4, 16, GAS_ACCESS_WORD); // X_PM1a_CNT_BLK
      ioRegister(view, at + 208, pmBase + 8, 32, GAS_ACCESS_DWORD); // X_PM_TMR_BLK
    },
  };
}

/**
 * The fw_cfg files through which QEMU gives SeaBIOS (and OVMF) its ACPI
 * tables, and which SeaBIOS 1.16 reads in qemu_platform_setup
 * (src/fw/romfile_loader.c): the tables themselves ("etc/acpi/tables"),
 * the RSDP on its own ("etc/acpi/rsdp") and the script that places and
 * links them ("etc/table-loader", QEMU hw/acpi/bios-linker-loader.c).
 */
export const ACPI_TABLES_FILE = "etc/acpi/tables";
export const ACPI_RSDP_FILE = "etc/acpi/rsdp";
export const ACPI_LOADER_FILE = "etc/table-loader";

/** Linker/loader commands (QEMU bios-linker-loader.c BIOS_LINKER_LOADER_COMMAND_*, SeaBIOS romfile_loader.h). */
export const LoaderCommand = { ALLOCATE: 1, ADD_POINTER: 2, ADD_CHECKSUM: 3 } as const;
/** ALLOCATE zones: anywhere in high memory, or the F segment (0xF0000-0xFFFFF, where an OS looks for the RSDP). */
export const LoaderZone = { HIGH: 1, FSEG: 2 } as const;
/** One command is 128 bytes; a file name has 56 (NUL-terminated). */
export const LOADER_ENTRY_SIZE = 128;
const LOADER_FILE_SIZE = 56;

export interface AcpiLoaderFiles {
  /** "etc/acpi/tables": RSDT, XSDT, FACS, FADT, DSDT, MADT; addresses in it are offsets in this file. */
  readonly tables: Uint8Array;
  /** "etc/acpi/rsdp": the 36-byte RSDP; its RSDT and XSDT addresses are offsets in `tables`. */
  readonly rsdp: Uint8Array;
  /** "etc/table-loader": ALLOCATE both, ADD_POINTER for every address, ADD_CHECKSUM for every checksum. */
  readonly loader: Uint8Array;
}

/**
 * The PC's ACPI tables (the same `pcTablePlan` as `buildPcAcpiTables`) as
 * QEMU hands them to firmware: the firmware ALLOCATEs the tables in high
 * memory (64-byte aligned, for the FACS) and the RSDP in the F segment
 * (16-byte aligned, ACPI 6.4 5.2.5.1), adds each file's address to every
 * pointer into it (ADD_POINTER; the file holds the target's offset), and
 * recomputes each checksum (ADD_CHECKSUM, after the pointers it covers;
 * the checksum bytes start at 0, as QEMU leaves them and as OVMF, which
 * stores rather than adjusts the sum, requires). The firmware then finds
 * the RSDP in the F segment as an OS does.
 */
export function buildPcAcpiLoader(options: Omit<PcAcpiOptions, "address">): AcpiLoaderFiles {
  // At address 0 every pointer holds its target's offset in the whole image.
  const image = assemble({ ...pcTablePlan(options, 0), tablesAlign: 64 });
  const start = image.links.tablesStart;
  const bytes = image.bytes.slice();
  const view = new DataView(bytes.buffer);
  const commands: Uint8Array[] = [];
  const command = (code: number, fill: (entry: DataView, raw: Uint8Array) => void) => {
    const raw = new Uint8Array(LOADER_ENTRY_SIZE);
    const entry = new DataView(raw.buffer);
    entry.setUint32(0, code, true);
    fill(entry, raw);
    commands.push(raw);
  };
  const fileName = (raw: Uint8Array, at: number, name: string) => {
    for (let i = 0; i < name.length; i++) raw[at + i] = name.charCodeAt(i);
  };
  const fileOf = (at: number) => (at < start ? ACPI_RSDP_FILE : ACPI_TABLES_FILE);
  const offsetIn = (at: number) => (at < start ? at : at - start);
  // ALLOCATE { file[56], u32 align, u8 zone }.
  command(LoaderCommand.ALLOCATE, (entry, raw) => {
    fileName(raw, 4, ACPI_TABLES_FILE);
    entry.setUint32(4 + LOADER_FILE_SIZE, 64, true);
    entry.setUint8(8 + LOADER_FILE_SIZE, LoaderZone.HIGH);
  });
  command(LoaderCommand.ALLOCATE, (entry, raw) => {
    fileName(raw, 4, ACPI_RSDP_FILE);
    entry.setUint32(4 + LOADER_FILE_SIZE, 16, true);
    entry.setUint8(8 + LOADER_FILE_SIZE, LoaderZone.FSEG);
  });
  // ADD_POINTER { dest_file[56], src_file[56], u32 offset, u8 size }: every pointer targets a table.
  for (const pointer of image.links.pointers) {
    const value =
      pointer.size === 4
        ? view.getUint32(pointer.at, true)
        : view.getUint32(pointer.at, true) + view.getUint32(pointer.at + 4, true) * 0x100000000;
    if (value < start) throw new Error(`ACPI pointer at ${pointer.at} does not point at a table`);
    if (pointer.size === 4) view.setUint32(pointer.at, value - start, true);
    else u64(view, pointer.at, value - start);
    command(LoaderCommand.ADD_POINTER, (entry, raw) => {
      fileName(raw, 4, fileOf(pointer.at));
      fileName(raw, 4 + LOADER_FILE_SIZE, ACPI_TABLES_FILE);
      entry.setUint32(4 + 2 * LOADER_FILE_SIZE, offsetIn(pointer.at), true);
      entry.setUint8(8 + 2 * LOADER_FILE_SIZE, pointer.size);
    });
  }
  // ADD_CHECKSUM { file[56], u32 offset, u32 start, u32 length }, in the order assemble summed.
  for (const sum of image.links.checksums) {
    bytes[sum.at] = 0;
    command(LoaderCommand.ADD_CHECKSUM, (entry, raw) => {
      fileName(raw, 4, fileOf(sum.at));
      entry.setUint32(4 + LOADER_FILE_SIZE, offsetIn(sum.at), true);
      entry.setUint32(8 + LOADER_FILE_SIZE, offsetIn(sum.start), true);
      entry.setUint32(12 + LOADER_FILE_SIZE, sum.length, true);
    });
  }
  const loader = new Uint8Array(commands.length * LOADER_ENTRY_SIZE);
  for (let index = 0; index < commands.length; index++)
    loader.set(commands[index], index * LOADER_ENTRY_SIZE);
  return { tables: bytes.slice(start), rsdp: bytes.slice(0, RSDP_SIZE), loader };
}
