/**
 * The Intel MultiProcessor Specification 1.4 tables a PC BIOS leaves for an
 * OS (MP spec chapter 4): the MP floating pointer structure and the MP
 * configuration table with one processor entry per vCPU, an ISA bus, the
 * I/O APIC and its interrupt assignments: PCI INTA# of the devices given
 * on pins 16-19, ISA IRQ n on I/O APIC pin n,
 * except IRQ 0 on pin 2 (the 8254 behind the PC's interrupt source
 * override), and ExtINT / NMI on every local APIC's LINT0 / LINT1: the
 * 8259A reaches the CPU in virtual wire mode through LINT0 only (no ExtINT
 * entry on an I/O APIC pin, whose redirection entry nobody programs as
 * ExtINT; Linux's enable_IO_APIC warns "ExtINT not setup in hardware but
 * reported by MP table" otherwise). Linux
 * finds it in the last KiB of base memory (arch/x86/kernel/mpparse.c
 * smp_scan_config at 639 KiB).
 */
import type { BootMemory } from "./pvh";

/** The EBDA-area KiB Linux scans (MP spec 4: "the last kilobyte of system base memory"). */
export const MP_TABLE_ADDRESS = 0x9fc00;

export interface MpTableOptions {
  readonly vcpus: number;
  readonly ioApicId: number;
  readonly ioApicAddress: number;
  readonly localApicAddress: number;
  /** CPUID.1:EAX and EDX of the processors (MP spec 4.3.1 processor entry). */
  readonly cpuSignature: number;
  readonly cpuFeatures: number;
  /** PCI bus 0 device numbers whose INTA# the table routes (the Xen platform device). */
  readonly pciDevices?: readonly number[];
}

/** MP bus IDs: a PCI bus's ID is its bus number (MP spec 4.3.2), so PCI bus 0 is 0 and ISA 1. */
const PCI_BUS = 0;
const ISA_BUS = 1;

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** Builds both structures; returns the bytes written at MP_TABLE_ADDRESS. */
export function buildMpTable(options: MpTableOptions): Uint8Array {
  const entries: number[][] = [];
  const u32 = (value: number) => [
    value & 0xff,
    (value >>> 8) & 0xff,
    (value >>> 16) & 0xff,
    (value >>> 24) & 0xff,
  ];
  for (let id = 0; id < options.vcpus; id++) {
    // Processor: type 0, APIC ID, APIC version 0x14, flags EN | (BP for the first), signature, features.
    entries.push([
      0,
      id,
      0x14,
      id === 0 ? 3 : 1,
      ...u32(options.cpuSignature),
      ...u32(options.cpuFeatures),
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
  }
  // Buses: type 1, bus ID, type string.
  entries.push([1, PCI_BUS, ...Array.from("PCI   ", (c) => c.charCodeAt(0))]);
  entries.push([1, ISA_BUS, ...Array.from("ISA   ", (c) => c.charCodeAt(0))]);
  // I/O APIC: type 2, ID, version 0x11, enabled, address.
  entries.push([2, options.ioApicId, 0x11, 1, ...u32(options.ioApicAddress)]);
  // I/O interrupt assignments: type 3, interrupt type 0 (INT), flags 0 (conforms to the
  // bus: ISA is edge, active high), source bus and IRQ, destination I/O APIC and pin.
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue;
    entries.push([3, 0, 0, 0, ISA_BUS, irq, options.ioApicId, irq === 0 ? 2 : irq]);
  }
  // PCI INTx of the devices given: source IRQ = device << 2 | pin (INTA# = 0), level, active low
  // (flags: polarity 3 = low in bits 1:0, trigger 3 = level in bits 3:2), on pin 16 + the PIIX3's
  // PIRQ of that slot ((device + pin) & 3), as Xen's hvmloader wires PCI INTx to GSIs 16 and up.
  for (const device of options.pciDevices ?? []) {
    entries.push([3, 0, 0x0f, 0, PCI_BUS, device << 2, options.ioApicId, 16 + (device & 3)]);
  }
  // Local interrupt assignments to every local APIC (0xFF): ExtINT on LINT0, NMI on LINT1.
  entries.push([4, 3, 0, 0, ISA_BUS, 0, 0xff, 0]);
  entries.push([4, 1, 0, 0, ISA_BUS, 0, 0xff, 1]);

  const body = entries.flat();
  const tableLength = 44 + body.length;
  const bytes = new Uint8Array(16 + tableLength);
  const view = new DataView(bytes.buffer);
  // MP floating pointer structure (MP spec 4.1): "_MP_", table address, length 1 (16 bytes), rev 1.4.
  bytes.set(
    Array.from("_MP_", (c) => c.charCodeAt(0)),
    0,
  );
  view.setUint32(4, MP_TABLE_ADDRESS + 16, true);
  bytes[8] = 1;
  bytes[9] = 4;
  bytes[10] = checksum(bytes.subarray(0, 16));
  // MP configuration table header (MP spec 4.2).
  const table = bytes.subarray(16);
  const tableView = new DataView(table.buffer, table.byteOffset, table.byteLength);
  table.set(
    Array.from("PCMP", (c) => c.charCodeAt(0)),
    0,
  );
  tableView.setUint16(4, tableLength, true);
  table[6] = 4;
  table.set(
    Array.from("KUMO    ", (c) => c.charCodeAt(0)),
    8,
  );
  table.set(
    Array.from("HVM PC      ", (c) => c.charCodeAt(0)),
    16,
  );
  tableView.setUint16(34, entries.length, true);
  tableView.setUint32(36, options.localApicAddress, true);
  table.set(body, 44);
  table[7] = checksum(table);
  return bytes;
}

export function writeMpTable(memory: BootMemory, options: MpTableOptions): number {
  const bytes = buildMpTable(options);
  if (bytes.length > 0x400)
    throw new RangeError(`MP table of ${bytes.length} bytes exceeds the 1 KiB it may use`);
  memory.write(MP_TABLE_ADDRESS, bytes);
  return bytes.length;
}
