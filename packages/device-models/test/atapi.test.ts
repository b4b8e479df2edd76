/**
 * The ATAPI CD-ROM drive on the IDE controller against ATA/ATAPI-6 9.8 (the
 * PACKET command protocol: C/D and I/O in the sector count register, the
 * byte count in LBA mid/high) and MMC-5 (sense data, READ CAPACITY, READ);
 * disks whose operations return promises (BSY until they settle); saved
 * state in the middle of a packet's data; random packets.
 * QEMU's answers to the same packets are compared in
 * packages/toolstack/test/hvm-cdrom.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  AdditionalSense,
  AtaCommand,
  AtaError,
  AtapiCommand,
  AtaStatus,
  IdeCdrom,
  IdeController,
  type IdeDisk,
  MemoryDisk,
  PortBus,
  SenseKey,
} from "../src/index";
import { heldDisk } from "./support/held-disk";

const BASE = 0x170;
const CONTROL = 0x376;

/** An ISO-like medium: 2048-byte sector n is filled with n & 0xFF, byte 1 its offset's low bits. */
function medium(sectors2048: number): MemoryDisk {
  const bytes = new Uint8Array(sectors2048 * 2048);
  for (let s = 0; s < sectors2048; s++) {
    bytes.fill(s & 0xff, s * 2048, (s + 1) * 2048);
    for (let i = 0; i < 2048; i += 256) bytes[s * 2048 + i + 1] = i >> 8;
  }
  return new MemoryDisk(bytes, true);
}

function machine(disk: IdeDisk | null = medium(100)) {
  const irqs: boolean[] = [];
  const ide = new IdeController({
    disks: [null, null, new IdeCdrom(disk)],
    irq: (irq, level) => {
      if (irq === 15) irqs.push(level);
    },
  });
  const bus = new PortBus();
  ide.register(bus);
  const status = () => bus.portRead(BASE + 7, 1);
  const reason = () => bus.portRead(BASE + 2, 1) & 7;
  const byteCount = () => bus.portRead(BASE + 4, 1) | (bus.portRead(BASE + 5, 1) << 8);
  /** Writes PACKET and the 12-byte packet; returns the status after the packet. */
  const sendPacket = (packet: number[], limit = 0x800) => {
    bus.portWrite(BASE + 1, 1, 0);
    bus.portWrite(BASE + 4, 1, limit & 0xff);
    bus.portWrite(BASE + 5, 1, limit >> 8);
    bus.portWrite(BASE + 6, 1, 0xa0);
    bus.portWrite(BASE + 7, 1, AtaCommand.PACKET);
    const full = [...packet, ...new Array(12).fill(0)].slice(0, 12);
    for (let i = 0; i < 12; i += 2) bus.portWrite(BASE, 2, full[i] | (full[i + 1] << 8));
    return status();
  };
  /** Reads every DRQ block (synchronous media); returns the bytes and the blocks' byte counts. */
  const readAll = () => {
    const bytes: number[] = [];
    const blocks: number[] = [];
    while (status() & AtaStatus.DRQ) {
      expect(reason()).toBe(2);
      const count = byteCount();
      blocks.push(count);
      for (let i = 0; i < count; i += 2) {
        const word = bus.portRead(BASE, 2);
        bytes.push(word & 0xff, word >> 8);
      }
    }
    return { bytes, blocks };
  };
  const sense = () => {
    sendPacket([AtapiCommand.REQUEST_SENSE, 0, 0, 0, 18]);
    const { bytes } = readAll();
    return [bytes[2], bytes[12], bytes[13]];
  };
  return { ide, bus, irqs, status, reason, byteCount, sendPacket, readAll, sense };
}

describe("ATAPI CD-ROM drive (ATA/ATAPI-6 9.8, MMC-5)", () => {
  it("identifies as a packet device: IDENTIFY PACKET DEVICE word 0, ABRT and the 14h/EBh signature for IDENTIFY DEVICE", () => {
    const { bus, status } = machine();
    bus.portWrite(BASE + 6, 1, 0xa0);
    bus.portWrite(BASE + 7, 1, AtaCommand.IDENTIFY_PACKET_DEVICE);
    expect(status()).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
    const words = Array.from({ length: 256 }, () => bus.portRead(BASE, 2));
    expect(words[0]).toBe(0x85c0);
    expect(String.fromCharCode(...words.slice(27, 33).flatMap((w) => [w >> 8, w & 0xff]))).toBe(
      "KUMO DVD-ROM",
    );
    expect(words[49] & 0x0100).toBe(0); // no DMA: hosts use PIO packets
    bus.portWrite(BASE + 7, 1, AtaCommand.IDENTIFY_DEVICE);
    expect([status(), bus.portRead(BASE + 1, 1)]).toEqual([
      AtaStatus.DRDY | AtaStatus.ERR,
      AtaError.ABRT,
    ]);
    expect([bus.portRead(BASE + 4, 1), bus.portRead(BASE + 5, 1)]).toEqual([0x14, 0xeb]);
    bus.portWrite(BASE + 7, 1, AtaCommand.READ_SECTORS);
    expect(bus.portRead(BASE + 1, 1)).toBe(AtaError.ABRT);
    // SRST: status 00h (no DRDY on a packet device), diagnostic code 01h, the signature.
    bus.portWrite(CONTROL, 1, 0x04);
    bus.portWrite(CONTROL, 1, 0x00);
    expect([status(), bus.portRead(BASE + 1, 1)]).toEqual([0, 1]);
    expect([2, 3, 4, 5].map((r) => bus.portRead(BASE + r, 1))).toEqual([1, 1, 0x14, 0xeb]);
  });

  it("takes the packet with DRQ and C/D=1 and no interrupt, then sends data in byte-count blocks and ends with I/O=1 C/D=1", () => {
    const { bus, irqs, status, reason, readAll } = machine();
    bus.portWrite(BASE + 4, 1, 0x00);
    bus.portWrite(BASE + 5, 1, 0x08);
    bus.portWrite(BASE + 7, 1, AtaCommand.PACKET);
    expect([status(), reason(), irqs.length]).toEqual([
      AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ,
      1,
      0,
    ]);
    const packet = [AtapiCommand.INQUIRY, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 12; i += 2) bus.portWrite(BASE, 2, packet[i] | (packet[i + 1] << 8));
    expect(irqs.at(-1)).toBe(true);
    const { bytes, blocks } = readAll();
    expect(blocks).toEqual([36]);
    expect(bytes.slice(0, 5)).toEqual([0x05, 0x80, 0x00, 0x21, 31]);
    expect(String.fromCharCode(...bytes.slice(8, 12))).toBe("KUMO");
    expect([status(), reason()]).toEqual([AtaStatus.DRDY | AtaStatus.DSC, 3]);
  });

  it("reads 2048-byte sectors in DRQ blocks of at most the byte count limit (odd limits made even, FFFFh as FFFEh)", () => {
    const { sendPacket, readAll } = machine();
    const read = (lba: number, count: number, limit: number) => {
      sendPacket([AtapiCommand.READ_10, 0, 0, 0, 0, lba, 0, 0, count], limit);
      return readAll();
    };
    const whole = read(7, 3, 0xffff);
    expect(whole.blocks).toEqual([6144]);
    expect([whole.bytes[0], whole.bytes[2048], whole.bytes[4096 + 257]]).toEqual([7, 8, 1]);
    const odd = read(7, 3, 3001);
    expect(odd.blocks).toEqual([3000, 3000, 144]);
    expect(odd.bytes).toEqual(whole.bytes);
    expect(read(7, 1, 0x200).blocks).toEqual([512, 512, 512, 512]);
    // READ(12) and READ CAPACITY (the last LBA, 2048).
    sendPacket([AtapiCommand.READ_12, 0, 0, 0, 0, 99, 0, 0, 0, 1]);
    expect(readAll().bytes[0]).toBe(99);
    sendPacket([AtapiCommand.READ_CAPACITY]);
    expect(readAll().bytes).toEqual([0, 0, 0, 99, 0, 0, 8, 0]);
  });

  it("ends errors with CHECK CONDITION: ERR, the sense key in the error register, REQUEST SENSE", () => {
    const { bus, status, reason, sendPacket, sense } = machine();
    const check = (packet: number[], key: number, asc: number, ascq = 0) => {
      expect(sendPacket(packet)).toBe(AtaStatus.DRDY | AtaStatus.ERR);
      expect([bus.portRead(BASE + 1, 1), reason()]).toEqual([key << 4, 3]);
      expect(sense()).toEqual([key, asc, ascq]);
      // REQUEST SENSE reported it once.
      expect(sense()).toEqual([0, 0, 0]);
    };
    check([AtapiCommand.READ_10, 0, 0, 0, 0, 100, 0, 0, 1], SenseKey.ILLEGAL_REQUEST, 0x21);
    check([0xff], SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_OPCODE);
    check(
      [AtapiCommand.MODE_SENSE_10, 0, 0x3f, 0, 0, 0, 0, 0, 0x20],
      SenseKey.ILLEGAL_REQUEST,
      0x24,
    );
    // Locked, the tray does not open; unlocked it does, and the medium is gone.
    sendPacket([AtapiCommand.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1]);
    check([AtapiCommand.START_STOP_UNIT, 0, 0, 0, 2], SenseKey.NOT_READY, 0x53, 2);
    sendPacket([AtapiCommand.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0]);
    expect(sendPacket([AtapiCommand.START_STOP_UNIT, 0, 0, 0, 2])).toBe(
      AtaStatus.DRDY | AtaStatus.DSC,
    );
    check([AtapiCommand.TEST_UNIT_READY], SenseKey.NOT_READY, AdditionalSense.MEDIUM_NOT_PRESENT);
    sendPacket([AtapiCommand.START_STOP_UNIT, 0, 0, 0, 3]);
    expect(sendPacket([AtapiCommand.TEST_UNIT_READY])).toBe(AtaStatus.DRDY | AtaStatus.DSC);
    // DMA or overlap asked in the features register: ABRT (IDENTIFY PACKET word 49 offers neither).
    bus.portWrite(BASE + 1, 1, 1);
    bus.portWrite(BASE + 7, 1, AtaCommand.PACKET);
    expect([status(), bus.portRead(BASE + 1, 1)]).toEqual([
      AtaStatus.DRDY | AtaStatus.ERR,
      AtaError.ABRT,
    ]);
  });

  it("shares a channel with a disk: each device shows its own signature and outputs", () => {
    const ide = new IdeController({
      disks: [new MemoryDisk(new Uint8Array(64 * 512)), new IdeCdrom(medium(4))],
      irq: () => {},
    });
    const bus = new PortBus();
    ide.register(bus);
    bus.portWrite(0x3f6, 1, 0x04);
    bus.portWrite(0x3f6, 1, 0x00);
    const signature = (device: number) => {
      bus.portWrite(0x1f6, 1, device);
      return [bus.portRead(0x1f4, 1), bus.portRead(0x1f5, 1), bus.portRead(0x1f7, 1)];
    };
    expect(signature(0xa0)).toEqual([0, 0, AtaStatus.DRDY | AtaStatus.DSC]);
    expect(signature(0xb0)).toEqual([0x14, 0xeb, 0]);
    // An ATAPI byte count goes to the CD's registers only.
    bus.portWrite(0x1f4, 1, 0x00);
    bus.portWrite(0x1f5, 1, 0x08);
    bus.portWrite(0x1f7, 1, AtaCommand.PACKET);
    const packet = [AtapiCommand.INQUIRY, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 12; i += 2) bus.portWrite(0x1f0, 2, packet[i] | (packet[i + 1] << 8));
    expect([bus.portRead(0x1f4, 1), bus.portRead(0x1f2, 1) & 7]).toEqual([36, 2]);
    bus.portWrite(0x1f6, 1, 0xa0);
    expect([bus.portRead(0x1f4, 1), bus.portRead(0x1f5, 1)]).toEqual([0, 8]);
  });

  it("reports an empty drive as NOT READY / MEDIUM NOT PRESENT and still answers INQUIRY", () => {
    const { sendPacket, sense, readAll } = machine(null);
    expect(sendPacket([AtapiCommand.TEST_UNIT_READY]) & AtaStatus.ERR).toBe(AtaStatus.ERR);
    expect(sense()).toEqual([SenseKey.NOT_READY, AdditionalSense.MEDIUM_NOT_PRESENT, 0]);
    sendPacket([AtapiCommand.INQUIRY, 0, 0, 0, 36]);
    expect(readAll().bytes[0]).toBe(5);
  });

  it("waits for a medium whose reads are promises: BSY, then DRQ and INTRQ; SRST abandons a read", async () => {
    const backing = medium(10);
    const pending: (() => void)[] = [];
    const slow: IdeDisk = {
      sectors: backing.sectors,
      readOnly: true,
      read: (sector, buffer) =>
        new Promise<void>((resolve) => {
          pending.push(() => {
            backing.read(sector, buffer);
            resolve();
          });
        }),
      write: () => {},
    };
    const { bus, irqs, status, byteCount, sendPacket } = machine(slow);
    expect(sendPacket([AtapiCommand.READ_10, 0, 0, 0, 0, 3, 0, 0, 2])).toBe(
      AtaStatus.BSY | AtaStatus.DRDY | AtaStatus.DSC,
    );
    // The task file ignores writes while BSY; the data port floats.
    bus.portWrite(BASE + 4, 1, 0x12);
    expect(bus.portRead(BASE, 2)).toBe(0xffff);
    pending.shift()?.();
    await Promise.resolve();
    expect(irqs.at(-1)).toBe(true);
    expect(status()).toBe(AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ);
    expect(byteCount()).toBe(2048);
    for (let i = 0; i < 1024; i++) bus.portRead(BASE, 2);
    expect(status() & AtaStatus.BSY).toBe(AtaStatus.BSY);
    bus.portWrite(CONTROL, 1, 0x04);
    bus.portWrite(CONTROL, 1, 0x00);
    pending.shift()?.();
    await Promise.resolve();
    expect(status()).toBe(0);
    expect(sendPacket([AtapiCommand.INQUIRY, 0, 0, 0, 36])).toBe(
      AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ,
    );
  });

  it("turns a rejected medium read into MEDIUM ERROR / UNRECOVERED READ ERROR", async () => {
    const broken: IdeDisk = {
      sectors: 400,
      read: () => Promise.reject(new Error("EIO")),
      write: () => {},
    };
    const { bus, status, sendPacket, sense } = machine(broken);
    sendPacket([AtapiCommand.READ_10, 0, 0, 0, 0, 1, 0, 0, 1]);
    await new Promise((resolve) => setImmediate(resolve));
    expect([status(), bus.portRead(BASE + 1, 1)]).toEqual([
      AtaStatus.DRDY | AtaStatus.ERR,
      SenseKey.MEDIUM_ERROR << 4,
    ]);
    expect(sense()).toEqual([SenseKey.MEDIUM_ERROR, AdditionalSense.UNRECOVERED_READ_ERROR, 0]);
  });

  it("goes on after save and restore in the middle of a packet's data and of a pending read", async () => {
    const a = machine();
    a.sendPacket([AtapiCommand.READ_10, 0, 0, 0, 0, 5, 0, 0, 2], 3000);
    for (let i = 0; i < 700; i++) a.bus.portRead(BASE, 2);
    const saved = JSON.parse(JSON.stringify(a.ide.state()));
    const b = machine();
    b.ide.fromState(saved);
    const rest: number[] = [];
    for (let i = 700; i < 1500; i++) rest.push(b.bus.portRead(BASE, 2));
    expect(rest[0]).toBe(0x0505);
    expect(b.readAll().blocks).toEqual([1096]);
    expect(b.reason()).toBe(3);

    // A read in flight is issued again after the restore.
    const { disk: slow, release: resolveRead } = heldDisk(medium(10));
    const c = machine(slow);
    c.sendPacket([AtapiCommand.READ_10, 0, 0, 0, 0, 9, 0, 0, 1]);
    const busy = JSON.parse(JSON.stringify(c.ide.state()));
    const d = machine(slow);
    d.ide.fromState(busy);
    expect(d.status() & AtaStatus.BSY).toBe(AtaStatus.BSY);
    resolveRead();
    await Promise.resolve();
    expect(d.readAll().bytes[0]).toBe(9);
  });

  it("answers random packets and byte count limits without throwing (fuzz, seeded)", () => {
    let seed = 0x9e3779b9;
    const random = () => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed;
    };
    const { status, sendPacket, bus } = machine(medium(20));
    const commands = Object.values(AtapiCommand);
    for (let round = 0; round < 3000; round++) {
      const packet = Array.from({ length: 12 }, () => random() & 0xff);
      // Half the time a real operation code, with small LBAs and lengths more often than not.
      if (random() & 1) packet[0] = commands[random() % commands.length];
      if (random() & 1) for (const i of [2, 3, 4, 6, 7]) packet[i] &= 0x01;
      sendPacket(packet, random() & 0xffff);
      let words = 0;
      while (status() & AtaStatus.DRQ && words < 40_000) {
        bus.portRead(BASE, 2);
        words++;
      }
      expect(status() & (AtaStatus.BSY | AtaStatus.DRQ)).toBe(0);
    }
  });
});
