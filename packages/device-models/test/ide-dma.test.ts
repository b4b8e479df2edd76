/**
 * PIIX3 bus-master IDE (82371SB 2.7: BMICOM, BMISTA, BMIDTP in BAR 4, PRD
 * tables) with READ/WRITE DMA and ATAPI packets by DMA. QEMU's answers to
 * the same programs are compared in packages/toolstack/test/hvm-ide-dma.test.ts.
 */
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import {
  AtaCommand,
  AtaError,
  AtapiCommand,
  AtaStatus,
  IdeCdrom,
  IdeController,
  type IdeDisk,
  MemoryDisk,
  PciHost,
  PortBus,
} from "../src/index";
import { heldDisk } from "./support/held-disk";

const BM = 0xc000;
const PRD = 0x9000;

function machine(disk: IdeDisk = patterned(64), cd: IdeDisk | null = null) {
  const memory = createGuestMemory({ ramSize: 1 << 20 });
  const irqs: [number, boolean][] = [];
  const ide = new IdeController({
    disks: [disk, null, cd ? new IdeCdrom(cd) : null],
    irq: (irq, level) => irqs.push([irq, level]),
    memory,
  });
  const bus = new PortBus();
  ide.register(bus);
  bus.register(BM, 16, ide.busMaster);
  /** PRD entries [address, bytes, eot]. */
  const table = (entries: [number, number, boolean][]) =>
    entries.forEach(([address, bytes, eot], i) => {
      memory.write32(PRD + 8 * i, address);
      memory.write32(PRD + 8 * i + 4, ((eot ? 0x80000000 : 0) | (bytes & 0xffff)) >>> 0);
    });
  const ata = (command: number, lba: number, count: number) => {
    bus.portWrite(0x1f2, 1, count);
    bus.portWrite(0x1f3, 1, lba);
    bus.portWrite(0x1f4, 1, 0);
    bus.portWrite(0x1f5, 1, 0);
    bus.portWrite(0x1f6, 1, 0xe0);
    bus.portWrite(0x1f7, 1, command);
  };
  const prepare = (channel = 0) => {
    bus.portWrite(BM + channel + 2, 1, 0x06);
    bus.portWrite(BM + channel + 4, 4, PRD);
  };
  const start = (toMemory: boolean, channel = 0) =>
    bus.portWrite(BM + channel, 1, (toMemory ? 0x08 : 0) | 0x01);
  const bmStatus = (channel = 0) => bus.portRead(BM + channel + 2, 1);
  return { memory, ide, bus, irqs, table, ata, prepare, start, bmStatus };
}

/** Sector n filled with n + 1. */
function patterned(sectors: number): MemoryDisk {
  const bytes = new Uint8Array(sectors * 512);
  for (let s = 0; s < sectors; s++) bytes.fill(s + 1, s * 512, s * 512 + 512);
  return new MemoryDisk(bytes);
}

describe("IDE bus-master DMA (82371SB 2.7)", () => {
  it("has BAR 4 (16 I/O ports) and offers multiword DMA only with guest memory", () => {
    const { ide, bus } = machine();
    const pci = new PciHost();
    pci.addFunction(1, 1, ide.pci);
    pci.address.write(0, 4, 0x80000920);
    pci.data.write(0, 4, 0xffffffff);
    expect(pci.data.read(0, 4) >>> 0).toBe(0xfffffff1);
    pci.data.write(0, 4, 0xc041);
    pci.address.write(0, 4, 0x80000904);
    pci.data.write(0, 2, 0x0005);
    expect(ide.busMasterBase()).toBe(0xc040);
    bus.portWrite(0x1f6, 1, 0xa0);
    bus.portWrite(0x1f7, 1, AtaCommand.IDENTIFY_DEVICE);
    const words = Array.from({ length: 256 }, () => bus.portRead(0x1f0, 2));
    expect([words[49] & 0x0100, words[63]]).toEqual([0x0100, 0x0007]);

    const pio = new IdeController({ disks: [patterned(8)], irq: () => {} });
    expect(pio.pci.config[0x20]).toBe(0);
    expect(pio.busMasterBase()).toBeNull();
    const pioBus = new PortBus();
    pio.register(pioBus);
    pioBus.portWrite(0x1f2, 1, 1);
    pioBus.portWrite(0x1f6, 1, 0xe0);
    pioBus.portWrite(0x1f7, 1, AtaCommand.READ_DMA);
    expect(pioBus.portRead(0x1f1, 1)).toBe(AtaError.ABRT);
  });

  it("reads into the PRD regions, interrupts, and clears Active when the table was exact", () => {
    const { memory, irqs, table, ata, prepare, start, bmStatus, bus } = machine();
    table([
      [0x10000, 512, false],
      [0x20000, 1024, true],
    ]);
    prepare();
    ata(AtaCommand.READ_DMA, 4, 3);
    expect(bus.portRead(0x3f6, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
    start(true);
    expect([memory.read8(0x10000), memory.read8(0x20000), memory.read8(0x20200)]).toEqual([
      5, 6, 7,
    ]);
    expect(bmStatus()).toBe(0x04);
    expect(irqs.at(-1)).toEqual([14, true]);
    expect(bus.portRead(0x1f7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
  });

  it("starts when the bus master was started first; a longer table leaves Active set; a shorter one moves nothing", () => {
    const { memory, irqs, table, ata, prepare, start, bmStatus, bus } = machine();
    table([[0x10000, 0, true]]); // 0 = 64 KiB
    prepare();
    start(true);
    // 48-bit: the first write of each register is its high-order byte (ATA-6 6.20).
    for (const port of [0x1f2, 0x1f3, 0x1f4, 0x1f5]) bus.portWrite(port, 1, 0);
    ata(AtaCommand.READ_DMA_EXT, 2, 1);
    expect(memory.read8(0x10000)).toBe(3);
    expect(bmStatus()).toBe(0x05);
    bus.portWrite(BM, 1, 0);
    expect(bmStatus()).toBe(0x04);

    table([[0x30000, 512, true]]);
    prepare();
    ata(AtaCommand.READ_DMA, 2, 2);
    start(true);
    // The command lowered the line; nothing raised it again.
    expect([memory.read8(0x30000), bmStatus(), irqs.at(-1)]).toEqual([0, 0x00, [14, false]]);
    expect(bus.portRead(0x1f7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
  });

  it("writes from memory with WRITE DMA", () => {
    const disk = patterned(16);
    const { memory, table, ata, prepare, start } = machine(disk);
    memory.writeBytes(0x40000, new Uint8Array(1024).fill(0xab));
    table([[0x40000, 1024, true]]);
    prepare();
    ata(AtaCommand.WRITE_DMA, 9, 2);
    start(false);
    expect([
      disk.bytes[9 * 512 - 1],
      disk.bytes[9 * 512],
      disk.bytes[11 * 512 - 1],
      disk.bytes[11 * 512],
    ]).toEqual([9, 0xab, 0xab, 12]);
  });

  it("waits for a disk whose reads are promises (BSY), and a restore issues a pending read again", async () => {
    const { disk: slow, release } = heldDisk(patterned(32));
    const a = machine(slow);
    a.table([[0x10000, 512, true]]);
    a.prepare();
    a.ata(AtaCommand.READ_DMA, 7, 1);
    a.start(true);
    expect(a.bus.portRead(0x3f6, 1) & AtaStatus.BSY).toBe(AtaStatus.BSY);
    const saved = JSON.parse(JSON.stringify(a.ide.state()));
    const b = machine(slow);
    b.ide.fromState(saved);
    release();
    await Promise.resolve();
    expect([b.memory.read8(0x10000), b.bmStatus()]).toEqual([8, 0x04]);
    expect(b.bus.portRead(0x1f7, 1)).toBe(AtaStatus.DRDY | AtaStatus.DSC);
  });

  it("sends ATAPI data by DMA after a PACKET with features bit 0 (sectors and replies)", () => {
    const iso = new Uint8Array(20 * 2048);
    iso.fill(0x42, 16 * 2048, 17 * 2048);
    const { memory, table, prepare, start, bmStatus, bus } = machine(
      patterned(8),
      new MemoryDisk(iso, true),
    );
    const packet = (bytes: number[]) => {
      bus.portWrite(0x176, 1, 0xa0);
      bus.portWrite(0x171, 1, 1);
      bus.portWrite(0x174, 1, 0);
      bus.portWrite(0x175, 1, 8);
      bus.portWrite(0x177, 1, AtaCommand.PACKET);
      const full = [...bytes, ...new Array(12).fill(0)].slice(0, 12);
      for (let i = 0; i < 12; i += 2) bus.portWrite(0x170, 2, full[i] | (full[i + 1] << 8));
    };
    table([[0x10000, 2048, true]]);
    prepare(8);
    packet([AtapiCommand.READ_10, 0, 0, 0, 0, 16, 0, 0, 1]);
    start(true, 8);
    expect([memory.read8(0x10000), memory.read8(0x107ff), bmStatus(8)]).toEqual([0x42, 0x42, 0x04]);
    expect([bus.portRead(0x177, 1), bus.portRead(0x172, 1) & 7]).toEqual([
      AtaStatus.DRDY | AtaStatus.DSC,
      3,
    ]);
    bus.portWrite(BM + 8, 1, 0);
    table([[0x20000, 36, true]]);
    prepare(8);
    packet([AtapiCommand.INQUIRY, 0, 0, 0, 36]);
    start(true, 8);
    expect([memory.read8(0x20000), memory.read8(0x20008)]).toEqual([0x05, "K".charCodeAt(0)]);
  });

  it("survives random PRD tables, commands and bus master writes (fuzz, seeded)", () => {
    let seed = 0x2545f491;
    const random = () => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed;
    };
    const { memory, bus, ata } = machine(patterned(300), medium());
    const commands = [
      AtaCommand.READ_DMA,
      AtaCommand.WRITE_DMA,
      AtaCommand.READ_DMA_EXT,
      AtaCommand.WRITE_DMA_EXT,
    ];
    for (let round = 0; round < 400; round++) {
      // A table of up to 600 entries: addresses anywhere in 4 GiB (most outside RAM), any length, EOT or not.
      const entries = 1 + (random() % 600);
      for (let i = 0; i < entries; i++) {
        memory.write32(PRD + 8 * i, random() & 1 ? random() & 0xffffe : random());
        memory.write32(PRD + 8 * i + 4, (random() & 0x8000ffff) >>> 0);
      }
      bus.portWrite(BM + (random() & 8) + 4, 4, random() & 1 ? PRD : random());
      bus.portWrite(BM + 2, 1, random() & 0xff);
      if (random() & 1) bus.portWrite(BM, 1, random() & 0x09);
      const channel = random() & 1 ? 0x1f0 : 0x170;
      if (channel === 0x1f0)
        ata(commands[random() % commands.length], random() & 0xff, random() & 0xff);
      else {
        bus.portWrite(0x171, 1, random() & 3);
        bus.portWrite(0x177, 1, AtaCommand.PACKET);
        for (let i = 0; i < 6; i++) bus.portWrite(0x170, 2, random() & 0xffff);
      }
      bus.portWrite(BM + 8, 1, random() & 0x09);
      bus.portWrite(BM, 1, random() & 0x09);
      for (const base of [0x1f0, 0x170]) expect(bus.portRead(base + 7, 1) & AtaStatus.BSY).toBe(0);
      // Whatever happened, a software reset brings both channels back.
      for (const control of [0x3f6, 0x376]) {
        bus.portWrite(control, 1, 0x04);
        bus.portWrite(control, 1, 0x00);
      }
      bus.portWrite(BM, 1, 0);
      bus.portWrite(BM + 8, 1, 0);
    }
  });
});

function medium(): MemoryDisk {
  return new MemoryDisk(new Uint8Array(64 * 2048), true);
}
