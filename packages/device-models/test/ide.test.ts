/**
 * The PIIX3 IDE controller against the ATA/ATAPI-6 host protocols (T13
 * 1410D rev. 3b, section 9): PIO data-in/out, non-data commands, the
 * software reset signature and the interrupt rules.
 */
import { describe, expect, it } from "vitest";
import {
  AtaCommand,
  AtaError,
  AtaStatus,
  IdeController,
  IdeStateError,
  MemoryDisk,
  PciHost,
  PortBus,
} from "../src/index";

const BASE = 0x1f0;
const CONTROL = 0x3f6;

function machine(sectors = 4096, second: MemoryDisk | null = null) {
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) bytes.fill(s & 0xff, s * 512, s * 512 + 512);
  const disk = new MemoryDisk(bytes);
  const irqs: [number, boolean][] = [];
  const ide = new IdeController({
    disks: [disk, second],
    irq: (irq, level) => irqs.push([irq, level]),
  });
  const bus = new PortBus();
  ide.register(bus);
  const line = () => {
    const last = irqs.filter(([irq]) => irq === 14).at(-1);
    return last?.[1] ?? false;
  };
  const readWords = (n: number) => {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = bus.portRead(BASE, 2);
    return out;
  };
  const lba28 = (command: number, lba: number, count: number) => {
    bus.portWrite(BASE + 2, 1, count);
    bus.portWrite(BASE + 3, 1, lba & 0xff);
    bus.portWrite(BASE + 4, 1, (lba >> 8) & 0xff);
    bus.portWrite(BASE + 5, 1, (lba >> 16) & 0xff);
    bus.portWrite(BASE + 6, 1, 0xe0 | ((lba >> 24) & 0x0f));
    bus.portWrite(BASE + 7, 1, command);
  };
  return { bytes, disk, ide, bus, irqs, line, readWords, lba28 };
}

describe("IDE controller (PIIX3 function 1, ATA PIO)", () => {
  it("is PCI 8086:7010 class 01 01 80 with the channels' decode enabled", () => {
    const { ide } = machine();
    const pci = new PciHost();
    pci.addFunction(1, 1, ide.pci);
    pci.address.write(0, 4, 0x80000900);
    expect(pci.data.read(0, 4)).toBe(0x70108086);
    pci.address.write(0, 4, 0x80000908);
    expect(pci.data.read(0, 4) >>> 8).toBe(0x010180);
    pci.address.write(0, 4, 0x80000940);
    expect(pci.data.read(0, 4)).toBe(0x80008000);
    pci.address.write(0, 4, 0x80000900);
    expect(pci.data.read(0, 1)).toBe(0x86);
  });

  it("IDENTIFY DEVICE gives the geometry, LBA28 and LBA48 capacity (ATA-6 8.15)", () => {
    const sectors = 20000;
    const { bus, readWords, line } = machine(sectors);
    bus.portWrite(BASE + 6, 1, 0xa0);
    bus.portWrite(BASE + 7, 1, AtaCommand.IDENTIFY_DEVICE);
    expect(line()).toBe(true);
    expect(bus.portRead(CONTROL, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
    expect(line()).toBe(true); // alternate status leaves INTRQ alone
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.DRQ).toBe(AtaStatus.DRQ);
    expect(line()).toBe(false);
    const w = readWords(256);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect(w[0] & 0x8000).toBe(0); // ATA device
    const cylinders = Math.floor(sectors / (16 * 63));
    expect([w[1], w[3], w[6]]).toEqual([cylinders, 16, 63]);
    expect([w[54], w[55], w[56]]).toEqual([cylinders, 16, 63]);
    expect(w[57] | (w[58] << 16)).toBe(cylinders * 16 * 63);
    expect(w[49] & 0x0200).toBe(0x0200);
    expect(w[60] | (w[61] << 16)).toBe(sectors);
    expect(w[83] & 0xc400).toBe(0x4400);
    expect(w[86] & 0x0400).toBe(0x0400);
    expect(w[100] + w[101] * 65536).toBe(sectors);
    expect(w[47] & 0xff).toBe(16);
    const model = Array.from(w.subarray(27, 47), (x) => String.fromCharCode(x >> 8, x & 0xff))
      .join("")
      .trim();
    expect(model).toBe("KUMO HARDDISK");
  });

  it("READ SECTORS: one interrupt per sector, 16- and 32-bit data reads", () => {
    const { bus, lba28, irqs } = machine();
    lba28(AtaCommand.READ_SECTORS, 5, 2);
    const raised = () => irqs.filter(([, level]) => level).length;
    expect(raised()).toBe(1);
    bus.portRead(BASE + 7, 1);
    const first = [];
    for (let i = 0; i < 128; i++) first.push(bus.portRead(BASE, 4) >>> 0);
    expect(first.every((v) => v === 0x05050505)).toBe(true);
    expect(raised()).toBe(2);
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.DRQ).toBe(AtaStatus.DRQ);
    for (let i = 0; i < 256; i++) expect(bus.portRead(BASE, 2)).toBe(0x0606);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect(raised()).toBe(2);
  });

  it("WRITE SECTORS: DRQ without an interrupt first, then one per block", () => {
    const { bus, lba28, bytes, line } = machine();
    lba28(AtaCommand.WRITE_SECTORS, 7, 2);
    expect(line()).toBe(false);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
    for (let i = 0; i < 256; i++) bus.portWrite(BASE, 2, 0xbeef);
    expect(line()).toBe(true);
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.DRQ).toBe(AtaStatus.DRQ);
    for (let i = 0; i < 128; i++) bus.portWrite(BASE, 4, 0x12345678);
    expect(line()).toBe(true);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect(Array.from(bytes.subarray(7 * 512, 7 * 512 + 4))).toEqual([0xef, 0xbe, 0xef, 0xbe]);
    expect(Array.from(bytes.subarray(8 * 512, 8 * 512 + 4))).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(bytes[9 * 512]).toBe(9);
  });

  it("48-bit commands take the HOB bytes, which HOB in device control reads back (ATA-6 6.20)", () => {
    const { bus, readWords } = machine(70000);
    bus.portWrite(BASE + 6, 1, 0x40);
    // Sector count 0x0001, LBA 0x000000010005 (65541): previous bytes first.
    bus.portWrite(BASE + 2, 1, 0x00);
    bus.portWrite(BASE + 2, 1, 0x01);
    bus.portWrite(BASE + 3, 1, 0x00);
    bus.portWrite(BASE + 3, 1, 0x05);
    bus.portWrite(BASE + 4, 1, 0x00);
    bus.portWrite(BASE + 4, 1, 0x00);
    bus.portWrite(BASE + 5, 1, 0x00);
    bus.portWrite(BASE + 5, 1, 0x01);
    bus.portWrite(CONTROL, 1, 0x80);
    expect(bus.portRead(BASE + 3, 1)).toBe(0x00);
    bus.portWrite(CONTROL, 1, 0x00);
    expect(bus.portRead(BASE + 3, 1)).toBe(0x05);
    bus.portWrite(BASE + 7, 1, AtaCommand.READ_SECTORS_EXT);
    expect(readWords(1)[0]).toBe(((65541 & 0xff) << 8) | (65541 & 0xff));
  });

  it("READ/WRITE MULTIPLE need SET MULTIPLE MODE and move blocks of that size", () => {
    const { bus, lba28, irqs } = machine();
    lba28(AtaCommand.READ_MULTIPLE, 0, 8);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.ERR);
    expect(bus.portRead(BASE + 1, 1)).toBe(AtaError.ABRT);
    bus.portWrite(BASE + 2, 1, 3);
    bus.portWrite(BASE + 7, 1, AtaCommand.SET_MULTIPLE_MODE);
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.ERR).toBe(AtaStatus.ERR);
    bus.portWrite(BASE + 2, 1, 4);
    bus.portWrite(BASE + 7, 1, AtaCommand.SET_MULTIPLE_MODE);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    const before = irqs.filter(([, level]) => level).length;
    lba28(AtaCommand.READ_MULTIPLE, 10, 6);
    bus.portRead(BASE + 7, 1);
    for (let i = 0; i < 4 * 256; i++) bus.portRead(BASE, 2);
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.DRQ).toBe(AtaStatus.DRQ);
    const words = [];
    for (let i = 0; i < 2 * 256; i++) words.push(bus.portRead(BASE, 2));
    expect(words[0]).toBe(0x0e0e);
    expect(words[511]).toBe(0x0f0f);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect(irqs.filter(([, level]) => level).length - before).toBe(2);
  });

  it("addresses past the end fail with IDNF; CHS addresses use the translation", () => {
    const { bus, lba28, readWords } = machine(1008 * 2);
    lba28(AtaCommand.READ_SECTORS, 2016, 1);
    expect(bus.portRead(BASE + 7, 1) & AtaStatus.ERR).toBe(AtaStatus.ERR);
    expect(bus.portRead(BASE + 1, 1)).toBe(AtaError.IDNF);
    // Cylinder 1, head 2, sector 3: (1 * 16 + 2) * 63 + 2 = 1136.
    bus.portWrite(BASE + 2, 1, 1);
    bus.portWrite(BASE + 3, 1, 3);
    bus.portWrite(BASE + 4, 1, 1);
    bus.portWrite(BASE + 5, 1, 0);
    bus.portWrite(BASE + 6, 1, 0xa2);
    bus.portWrite(BASE + 7, 1, AtaCommand.READ_SECTORS);
    expect(readWords(1)[0]).toBe(((1136 & 0xff) << 8) | (1136 & 0xff));
  });

  it("SRST: BSY while set, then the ATA signature and diagnostic code 01h (ATA-6 9.2, 9.12)", () => {
    const { bus } = machine();
    bus.portWrite(BASE + 2, 1, 0x55);
    bus.portWrite(CONTROL, 1, 0x04);
    expect(bus.portRead(CONTROL, 1) & AtaStatus.BSY).toBe(AtaStatus.BSY);
    bus.portWrite(CONTROL, 1, 0x00);
    expect(bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect([1, 2, 3, 4, 5].map((r) => bus.portRead(BASE + r, 1))).toEqual([1, 1, 1, 0, 0]);
  });

  it("nIEN masks INTRQ; a pending interrupt shows when it clears", () => {
    const { bus, line } = machine();
    bus.portWrite(CONTROL, 1, 0x02);
    bus.portWrite(BASE + 7, 1, AtaCommand.FLUSH_CACHE);
    expect(line()).toBe(false);
    bus.portWrite(CONTROL, 1, 0x00);
    expect(line()).toBe(true);
    bus.portRead(BASE + 7, 1);
    expect(line()).toBe(false);
  });

  it("aborts IDENTIFY PACKET DEVICE, NOP and unknown commands; answers SET FEATURES and power commands", () => {
    const { bus } = machine();
    const run = (command: number, features = 0, count = 0) => {
      bus.portWrite(BASE + 1, 1, features);
      bus.portWrite(BASE + 2, 1, count);
      bus.portWrite(BASE + 7, 1, command);
      return [bus.portRead(BASE + 7, 1), bus.portRead(BASE + 1, 1)];
    };
    const ok = [AtaStatus.DRDY | AtaStatus.DSC, 0];
    const abort = [AtaStatus.DRDY | AtaStatus.ERR, AtaError.ABRT];
    expect(run(AtaCommand.IDENTIFY_PACKET_DEVICE)).toEqual(abort);
    expect(run(AtaCommand.NOP)).toEqual(abort);
    expect(run(0xb0)).toEqual(abort);
    expect(run(AtaCommand.SET_FEATURES, 0x03, 0x0c)).toEqual(ok); // PIO mode 4
    expect(run(AtaCommand.SET_FEATURES, 0x03, 0x42)).toEqual(abort); // UDMA 2: no DMA
    expect(run(AtaCommand.SET_FEATURES, 0x02)).toEqual(ok);
    expect(run(AtaCommand.FLUSH_CACHE_EXT)).toEqual(ok);
    expect(run(AtaCommand.CHECK_POWER_MODE)).toEqual(ok);
    expect(bus.portRead(BASE + 2, 1)).toBe(0xff);
    expect(run(AtaCommand.IDLE_IMMEDIATE)).toEqual(ok);
  });

  it("answers as QEMU for an absent device 1 and an empty channel (SeaBIOS's probe)", () => {
    const { bus } = machine();
    bus.portWrite(BASE + 6, 1, 0xb0);
    expect(bus.portRead(BASE + 6, 1)).toBe(0xb0);
    expect(bus.portRead(BASE + 7, 1)).toBe(0);
    bus.portWrite(BASE + 7, 1, AtaCommand.IDENTIFY_DEVICE);
    expect(bus.portRead(BASE + 7, 1)).toBe(0);
    for (let r = 1; r < 8; r++) expect(bus.portRead(0x170 + r, 1)).toBe(0);
    expect(bus.portRead(0x376, 1)).toBe(0);
  });

  it("device 1 answers when present and device 0 keeps its own status", () => {
    const slave = new MemoryDisk(new Uint8Array(512 * 100).fill(0x77));
    const { bus, lba28 } = machine(4096, slave);
    bus.portWrite(BASE + 6, 1, 0xf0);
    lba28(AtaCommand.READ_SECTORS, 0, 1);
    // lba28 wrote device = 0xE0 (device 0); select device 1 and read again.
    bus.portWrite(BASE + 6, 1, 0xf0);
    bus.portWrite(BASE + 7, 1, AtaCommand.READ_SECTORS);
    expect(bus.portRead(BASE, 2)).toBe(0x7777);
  });

  it("refuses writes to a read-only disk with ABRT", () => {
    const disk = new MemoryDisk(new Uint8Array(512 * 8), true);
    const ide = new IdeController({ disks: [disk], irq: () => {} });
    const bus = new PortBus();
    ide.register(bus);
    bus.portWrite(BASE + 2, 1, 1);
    bus.portWrite(BASE + 6, 1, 0xe0);
    bus.portWrite(BASE + 7, 1, AtaCommand.WRITE_SECTORS);
    expect(bus.portRead(BASE + 1, 1)).toBe(AtaError.ABRT);
  });
});

describe("IDE controller state", () => {
  it("a read in the middle of a block goes on after save and restore (through JSON)", () => {
    const a = machine();
    a.bus.portWrite(BASE + 2, 1, 4);
    a.bus.portWrite(BASE + 7, 1, AtaCommand.SET_MULTIPLE_MODE);
    a.lba28(AtaCommand.READ_MULTIPLE, 20, 6);
    for (let i = 0; i < 300; i++) a.bus.portRead(BASE, 2);
    const saved = JSON.parse(JSON.stringify(a.ide.state()));
    const b = machine();
    b.ide.fromState(saved);
    expect(b.line()).toBe(true);
    const words = [];
    for (let i = 300; i < 6 * 256; i++) words.push(b.bus.portRead(BASE, 2));
    expect(words[0]).toBe(0x1515);
    expect(words.at(-1)).toBe(0x1919);
    expect(b.bus.portRead(BASE + 7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    expect(b.ide.state().channels[0].drives[0]?.[2]).toBe(4);
  });

  it("refuses a state of another kind, version or set of devices", () => {
    const { ide } = machine();
    const state = ide.state();
    expect(() => ide.fromState({ ...state, kind: "pic" } as never)).toThrow(IdeStateError);
    expect(() => ide.fromState({ ...state, version: 2 } as never)).toThrow(/version 2/);
    const other = new IdeController({ disks: [], irq: () => {} });
    expect(() => other.fromState(state)).toThrow(/device 0 present/);
  });
});
