/**
 * The PIIX3 IDE controller (Intel 82371SB datasheet, function 1: PCI
 * 8086:7010, class 01 01 80) with ATA disks driven by PIO, as the ATA/ATAPI-6
 * specification (T13 1410D rev. 3b) describes the host interface:
 *
 *   primary   ports 0x1F0-0x1F7 (command block), 0x3F6 (control block), IRQ 14
 *   secondary ports 0x170-0x177, 0x376, IRQ 15   (legacy "compatibility" mode)
 *
 *   command block: 0 data (16/32 bits), 1 error / features, 2 sector count,
 *   3 LBA low, 4 LBA mid, 5 LBA high, 6 device, 7 status / command;
 *   control block: alternate status / device control (nIEN bit 1, SRST bit 2, HOB bit 7).
 *
 * Commands (ATA/ATAPI-6 section 8): IDENTIFY DEVICE, READ/WRITE SECTORS
 * (EXT), READ/WRITE MULTIPLE (EXT), SET MULTIPLE MODE, READ VERIFY SECTORS
 * (EXT), SET FEATURES, FLUSH CACHE (EXT), INITIALIZE DEVICE PARAMETERS,
 * EXECUTE DEVICE DIAGNOSTIC, RECALIBRATE, the power commands (IDLE,
 * STANDBY, CHECK POWER MODE: the disk never spins down) and NOP; any other
 * command ends with ABRT, as a device that does not implement it answers
 * (6.2.1). IDENTIFY PACKET DEVICE aborts too on a disk, which is how
 * SeaBIOS and Linux tell an ATA disk from an ATAPI one.
 *
 * ATAPI CD-ROM drives (`IdeCdrom`) answer IDENTIFY PACKET DEVICE and the
 * PACKET command (8.21, 9.8: the 12-byte packet is written while DRQ with
 * the interrupt reason C/D=1 I/O=0; data-in comes in DRQ blocks of at most
 * the byte count the host wrote to LBA mid/high, each announced by INTRQ
 * with I/O=1 and the block's length in LBA mid/high; the end by I/O=1 C/D=1
 * and INTRQ). The packets themselves are atapi.ts's. Their signature is
 * 14h/EBh (9.12), their status after a reset 00h; ATA commands that read
 * or identify end with ABRT and the signature, as ATAPI-6 8.15.5 says.
 *
 * A disk operation may complete at once or return a promise (an image file
 * read through the host's asynchronous I/O): the drive is BSY (D0h, as QEMU
 * shows it during its asynchronous I/O) until the promise settles, then
 * goes on (DRQ and INTRQ for data-in, the next block or the end for
 * data-out). While BSY, writes to the command block are ignored and the
 * data port floats (ATA-6 7.1: the host shall not access them; QEMU
 * ignores them the same way); SRST abandons the request. A failed read is
 * ERR with UNC (8.27.5.2), a failed write or flush ERR with ABRT, a failed
 * CD read CHECK CONDITION with MEDIUM ERROR / UNRECOVERED READ ERROR.
 *
 * The interrupt follows 9.5-9.7: PIO data-in raises INTRQ
 * for each DRQ block, PIO data-out after each block written and at the end,
 * non-data commands at completion; reading the status register (not the
 * alternate status) or writing a command clears it, nIEN masks the line.
 *
 * As QEMU's ide core does, the task-file registers are written to both
 * devices of a channel, an absent device 1 answers status 0 and ignores
 * commands, and a channel with no device reads 0 everywhere (SeaBIOS's
 * probe then moves on at once instead of waiting for BSY to clear).
 *
 * Bus-master DMA (82371SB 2.7), when the controller is given guest memory:
 * BAR 4 holds BMICOM/BMISTA/BMIDTP per channel; READ/WRITE DMA (EXT) and
 * PACKET with features bit 0 leave the device at DRQ until the host starts
 * the bus master (either order, as QEMU allows), then the whole PRD table
 * is read first: too short moves nothing, clears Active and raises no
 * interrupt; longer leaves Active set at the end (QEMU ide_dma_cb, the
 * datasheet's PRD rules). BMISTA's interrupt bit follows the device's
 * INTRQ (so not with nIEN, as QEMU's bmdma_irq). IDENTIFY then offers
 * multiword DMA 0-2 (the PIIX3 has no Ultra DMA). Without memory there is
 * no BAR 4, and hosts use PIO (Linux's ata_piix falls back to it).
 *
 * Simplifications: the IDE decode enable bits of IDETIM are storage and
 * the legacy ports always decode; the PCI bus master enable bit is not
 * checked; RWCON does not have to match the command's direction.
 */

import type { GuestMemory } from "@kumo/mmu";
import { AdditionalSense, AtapiDrive, AtapiOutcome, SenseKey } from "./atapi";
import { PciFunction } from "./pci-host";
import type { PortWindow } from "./pic-8259";

export const SECTOR_SIZE = 512;

/**
 * A disk the controller reads and writes in 512-byte sectors. Each operation
 * completes when it returns, or returns a promise (the drive is BSY until
 * it settles; a rejection or a throw is an I/O error the guest sees as an
 * ATA error). The controller never has two operations of one channel in
 * flight, and keeps `buffer`/`data` untouched until the operation ends.
 */
export interface IdeDisk {
  /** Size in sectors. */
  readonly sectors: number;
  /** Writes are refused (the command aborts). */
  readonly readOnly?: boolean;
  /** Fills `buffer` (a multiple of 512 bytes) from sector `sector` on. */
  read(sector: number, buffer: Uint8Array): void | Promise<void>;
  /** Stores `data` (a multiple of 512 bytes) at sector `sector`. */
  write(sector: number, data: Uint8Array): void | Promise<void>;
  /** Makes earlier writes durable (FLUSH CACHE). */
  flush?(): void | Promise<void>;
}

/**
 * An ATAPI CD-ROM drive for an IDE slot, read-only, with 2048-byte sectors
 * over `medium` (an ISO image as an `IdeDisk` of 512-byte sectors; null is
 * an empty drive, which reports MEDIUM NOT PRESENT).
 */
export class IdeCdrom {
  readonly kind = "cdrom";
  constructor(readonly medium: IdeDisk | null) {}
  /** The medium's size in 512-byte sectors (0 for an empty drive). */
  get sectors(): number {
    return this.medium?.sectors ?? 0;
  }
}

/** What an IDE slot holds: an ATA disk or an ATAPI CD-ROM drive. */
export type IdeDevice = IdeDisk | IdeCdrom;

/** One channel's saved registers and PIO transfer (plain, JSON-safe). */
export interface IdeChannelState {
  /** features, count, lbaLow, lbaMid, lbaHigh, their HOB bytes (count..lbaHigh), device, control. */
  readonly registers: readonly number[];
  readonly pending: boolean;
  /** transfer (0 none, 1 in, 2 out, 3 packet, 4 ATAPI in), bufferPosition, bufferLength, nextSector, remaining, blockSectors, identify (0/1). */
  readonly transfer: readonly number[];
  /** The current DRQ block's bytes (empty when no transfer is in progress). */
  readonly buffer: readonly number[];
  /** Per device: [status, error, multiple, heads, sectorsPerTrack], or null when absent. */
  readonly drives: readonly (readonly number[] | null)[];
  /** Bus master: [BMICOM, BMISTA, BMIDTP], and a DMA job: [kind, segment, offset, stayActive, started] with its PRD segments [address, length, ...]. */
  readonly busMaster?: readonly number[];
  readonly dma?: readonly number[];
  readonly dmaSegments?: readonly number[];
  /** Sector count and LBA low/mid/high of device 0 then device 1 (each device keeps its own outputs). */
  readonly outputs?: readonly number[];
  /** A disk operation in flight: [kind (1 read, 2 write, 3 flush, 4 CD read), sector, sectors, buffer offset]; re-issued on restore. */
  readonly io?: readonly number[];
  /** ATAPI: [byteLimit, remaining, offset, fromMedium (0/1)] of the packet's data-in. */
  readonly atapi?: readonly number[];
  /** ATAPI: the reply being sent, and per device the drive's state (null for a disk or an absent device). */
  readonly reply?: readonly number[];
  readonly atapiDrives?: readonly (readonly number[] | null)[];
}

/** The saved state: named, versioned, plain (JSON-safe). The disks themselves are not in it. */
export interface IdeControllerState {
  readonly kind: "ide";
  readonly version: 1;
  readonly channels: readonly IdeChannelState[];
  /** PCI configuration space of function 01.1. */
  readonly pci: readonly number[];
}

export class IdeStateError extends Error {
  override name = "IdeStateError";
}

/** A disk held in memory (tests, small images). */
export class MemoryDisk implements IdeDisk {
  readonly sectors: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly readOnly = false,
  ) {
    if (bytes.length % SECTOR_SIZE !== 0)
      throw new RangeError(`a disk of ${bytes.length} bytes is not a whole number of sectors`);
    this.sectors = bytes.length / SECTOR_SIZE;
  }
  read(sector: number, buffer: Uint8Array): void {
    buffer.set(this.bytes.subarray(sector * SECTOR_SIZE, sector * SECTOR_SIZE + buffer.length));
  }
  write(sector: number, data: Uint8Array): void {
    this.bytes.set(data, sector * SECTOR_SIZE);
  }
}

export interface IdeControllerOptions {
  /** Disks and CD-ROM drives: [primary master, primary slave, secondary master, secondary slave] (hda..hdd). */
  readonly disks?: readonly (IdeDevice | null | undefined)[];
  /** ISA IRQ 14 (primary) and 15 (secondary) levels. */
  readonly irq: (irq: number, level: boolean) => void;
  /** Model string of IDENTIFY DEVICE words 27-46 (default "KUMO HARDDISK"). */
  readonly model?: string;
  /** Model string of a CD-ROM drive's IDENTIFY PACKET DEVICE and INQUIRY (default "KUMO DVD-ROM"). */
  readonly cdromModel?: string;
  /**
   * Guest memory for bus-master DMA: with it the function has BAR 4 (16
   * I/O ports, `busMaster`), the devices offer multiword DMA modes 0-2 and
   * READ/WRITE DMA (EXT) and DMA packets work; without it, PIO only.
   */
  readonly memory?: Pick<GuestMemory, "readBytes" | "writeBytes" | "read32">;
}

/** Status register bits (ATA/ATAPI-6 7.15.6). */
export const AtaStatus = {
  ERR: 0x01,
  DRQ: 0x08,
  DSC: 0x10,
  DF: 0x20,
  DRDY: 0x40,
  BSY: 0x80,
} as const;

/** Error register bits (7.9.6). */
export const AtaError = { ABRT: 0x04, IDNF: 0x10, UNC: 0x40 } as const;

/** Command codes (ATA/ATAPI-6 annex: command matrix). */
export const AtaCommand = {
  NOP: 0x00,
  DEVICE_RESET: 0x08,
  RECALIBRATE: 0x10,
  READ_SECTORS: 0x20,
  READ_SECTORS_EXT: 0x24,
  READ_DMA_EXT: 0x25,
  READ_MULTIPLE_EXT: 0x29,
  WRITE_SECTORS: 0x30,
  WRITE_SECTORS_EXT: 0x34,
  WRITE_DMA_EXT: 0x35,
  WRITE_MULTIPLE_EXT: 0x39,
  READ_VERIFY_SECTORS: 0x40,
  READ_VERIFY_SECTORS_EXT: 0x42,
  EXECUTE_DEVICE_DIAGNOSTIC: 0x90,
  INITIALIZE_DEVICE_PARAMETERS: 0x91,
  PACKET: 0xa0,
  IDENTIFY_PACKET_DEVICE: 0xa1,
  READ_MULTIPLE: 0xc4,
  READ_DMA: 0xc8,
  WRITE_DMA: 0xca,
  WRITE_MULTIPLE: 0xc5,
  SET_MULTIPLE_MODE: 0xc6,
  STANDBY_IMMEDIATE: 0xe0,
  IDLE_IMMEDIATE: 0xe1,
  STANDBY: 0xe2,
  IDLE: 0xe3,
  CHECK_POWER_MODE: 0xe5,
  SLEEP: 0xe6,
  FLUSH_CACHE: 0xe7,
  FLUSH_CACHE_EXT: 0xea,
  IDENTIFY_DEVICE: 0xec,
  SET_FEATURES: 0xef,
} as const;

/** The largest DRQ block of READ/WRITE MULTIPLE (IDENTIFY word 47). */
export const IDE_MAX_MULTIPLE = 16;

/** PIO transfer: ATA data-in, data-out, an ATAPI command packet, ATAPI data-in. */
const Transfer = { None: 0, In: 1, Out: 2, Packet: 3, AtapiIn: 4 } as const;

/** A disk operation in flight (the continuation when it settles follows from the kind). */
const Io = {
  None: 0,
  Read: 1,
  Write: 2,
  Flush: 3,
  CdRead: 4,
  DmaRead: 5,
  DmaWrite: 6,
  CdDmaRead: 7,
} as const;

/** A bus-master DMA job: ATA read or write, ATAPI sectors or an ATAPI reply (82371SB 2.7). */
const Dma = { None: 0, Read: 1, Write: 2, CdRead: 3, CdReply: 4 } as const;
/** BMICOM and BMISTA bits (82371SB 2.7.1, 2.7.2). */
const BM_START = 0x01;
const BM_READ_WRITE = 0x08;
const BM_ACTIVE = 0x01;
const BM_ERROR = 0x02;
const BM_INTERRUPT = 0x04;
/** The largest DMA chunk through the buffer: 128 disk sectors. */
const DMA_CHUNK = 0x10000;
/** A PRD table is at most 64 KiB (82371SB 2.7.3); QEMU stops after one page, as here. */
const PRD_TABLE_MAX = 512;

/** The data buffer: a 64 KiB ATAPI DRQ block plus the partial 512-byte sectors around it. */
const BUFFER_SIZE = 0x10000 + 1024;
/** ATAPI interrupt reason in the sector count register (ATA-6 9.8): C/D (bit 0), I/O (bit 1). */
const REASON_COMMAND = 0x01;
const REASON_IO = 0x02;
const ATAPI_PACKET_SIZE = 12;

/** A promise from a disk operation (anything with `then`; undefined for one that completed). */
function isPromise(value: unknown): value is Promise<void> {
  return value !== undefined && typeof (value as Promise<void>).then === "function";
}

/** Device register bits: LBA mode (6), device 1 (4) (7.10). */
const DEVICE_LBA = 0x40;
const DEVICE_DEV1 = 0x10;
/** Device control bits (7.8). */
const CONTROL_NIEN = 0x02;
const CONTROL_SRST = 0x04;
const CONTROL_HOB = 0x80;

class Drive {
  status: number = AtaStatus.DRDY | AtaStatus.DSC;
  error = 0x01;
  multiple = 0;
  /** CHS translation (INITIALIZE DEVICE PARAMETERS). */
  heads: number;
  sectorsPerTrack: number;
  readonly identify = new Uint16Array(256);
  readonly defaultCylinders: number;
  /** The ATA disk, or the CD-ROM's medium (null: an empty drive). */
  readonly disk: IdeDisk | null;
  /** The packet interface of a CD-ROM drive; null for a disk. */
  readonly atapi: AtapiDrive | null;
  constructor(
    device: IdeDevice,
    model: string,
    cdromModel: string,
    serial: string,
    readonly dma: boolean,
  ) {
    if (device instanceof IdeCdrom) {
      this.disk = device.medium;
      this.atapi = new AtapiDrive(device.medium, cdromModel);
      // Packet devices leave DRDY clear after a reset (ATA-6 9.12).
      this.status = 0;
      this.heads = 0;
      this.sectorsPerTrack = 0;
      this.defaultCylinders = 0;
      const w = this.identify;
      // ATA-6 8.16 IDENTIFY PACKET DEVICE: ATAPI (10b), CD-ROM (05h), removable,
      // 50 us to DRQ after PACKET (10b), 12-byte packets (00b).
      w[0] = (2 << 14) | (5 << 8) | (1 << 7) | (2 << 5);
      putString(w, 10, 20, serial);
      putString(w, 23, 8, "1.0");
      putString(w, 27, 40, cdromModel);
      // LBA; DMA (bit 8) only with the bus master (without it hosts send packets for PIO).
      w[49] = dma ? 0x0300 : 0x0200;
      w[53] = 0x0003; // words 64-70 valid
      if (dma) w[63] = 0x0007; // multiword DMA modes 0-2 (the PIIX3's; no Ultra DMA)
      w[64] = 0x0003; // PIO modes 3 and 4
      w[65] = 0xb4;
      w[66] = 0xb4;
      w[67] = 0x12c;
      w[68] = 0xb4;
      w[71] = 30; // typical time from PACKET to release of the bus, ns
      w[72] = 30;
      w[80] = 0x001e; // ATA/ATAPI-1 .. 4
      return;
    }
    const disk = device;
    this.disk = disk;
    this.atapi = null;
    const total = disk.sectors;
    // The usual translation of ATA disks: 16 heads, 63 sectors per track, at most 16383 cylinders.
    this.heads = 16;
    this.sectorsPerTrack = 63;
    this.defaultCylinders = Math.max(1, Math.min(16383, Math.floor(total / (16 * 63))));
    const w = this.identify;
    w[0] = 0x0040; // fixed device (6.2.1, word 0 bit 6)
    w[1] = this.defaultCylinders;
    w[3] = 16;
    w[6] = 63;
    putString(w, 10, 20, serial);
    putString(w, 23, 8, "1.0");
    putString(w, 27, 40, model);
    w[47] = 0x8000 | IDE_MAX_MULTIPLE;
    w[49] = dma ? 0x0300 : 0x0200; // LBA supported (bit 9); DMA (bit 8) with the bus master
    if (dma) w[63] = 0x0007; // multiword DMA modes 0-2 (the PIIX3's; no Ultra DMA)
    w[50] = 0x4000;
    w[51] = 0x0200; // PIO mode 2 timing (obsolete field)
    w[53] = 0x0003; // words 54-58 and 64-70 valid
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[80] = 0x007e; // ATA-1 .. ATA-6
    w[82] = 0x4000; // NOP supported
    w[83] = 0x7400; // bit 14 one, FLUSH CACHE EXT (13), FLUSH CACHE (12), 48-bit address (10)
    w[84] = 0x4000;
    w[85] = 0x4000;
    w[86] = 0x3400;
    w[87] = 0x4000;
    const lba28 = Math.min(total, 0x0fffffff);
    w[60] = lba28 & 0xffff;
    w[61] = lba28 >>> 16;
    // Words 100-103: the 48-bit maximum (2^53 covers any disk JavaScript can address).
    w[100] = total % 0x10000;
    w[101] = Math.floor(total / 0x10000) % 0x10000;
    w[102] = Math.floor(total / 0x100000000) % 0x10000;
    w[103] = 0;
    this.updateIdentify();
  }

  /** Words 54-59: the current CHS translation and multiple setting. */
  updateIdentify(): void {
    if (this.atapi !== null) return;
    const w = this.identify;
    const cylinders = this.cylinders();
    w[54] = cylinders;
    w[55] = this.heads;
    w[56] = this.sectorsPerTrack;
    const capacity = cylinders * this.heads * this.sectorsPerTrack;
    w[57] = capacity & 0xffff;
    w[58] = capacity >>> 16;
    w[59] = this.multiple === 0 ? 0 : 0x0100 | this.multiple;
  }

  cylinders(): number {
    const perCylinder = this.heads * this.sectorsPerTrack;
    if (perCylinder === 0 || this.disk === null) return 0;
    return Math.min(65535, Math.floor(Math.min(this.disk.sectors, 16514064) / perCylinder));
  }
}

/** ATA strings: two characters a word, the first in the high byte, padded with spaces (6.2.1). */
function putString(words: Uint16Array, first: number, length: number, text: string): void {
  for (let i = 0; i < length; i += 2) {
    const hi = i < text.length ? text.charCodeAt(i) & 0x7f : 0x20;
    const lo = i + 1 < text.length ? text.charCodeAt(i + 1) & 0x7f : 0x20;
    words[first + i / 2] = (hi << 8) | lo;
  }
}

/** One ATA channel: its task file, up to two devices and a PIO transfer in progress. */
export class IdeChannel {
  /** Ports base+0 .. base+7. */
  readonly commandBlock: PortWindow;
  /** Port control+0 (0x3F6 / 0x376). */
  readonly controlBlock: PortWindow;
  private readonly drives: (Drive | null)[];
  // Task file; "hob" is the previous value of each register (48-bit commands, 6.20).
  private features = 0;
  /**
   * Sector count and LBA low/mid/high of device 0 (bytes 0-3) and device 1
   * (4-7): the host's writes reach both devices, a command's outputs (the
   * signature, an ATAPI byte count and interrupt reason) only the selected
   * one, as each device of a real channel (and QEMU's) keeps its own.
   */
  private readonly outputs = new Uint8Array(8);
  private hobCount = 0;
  private hobLbaLow = 0;
  private hobLbaMid = 0;
  private hobLbaHigh = 0;
  private device = 0;
  private control = 0;
  private pending = false;
  private line = false;
  // PIO transfer: `buffer` holds the current DRQ block.
  private transfer: number = Transfer.None;
  private readonly buffer = new Uint8Array(BUFFER_SIZE);
  private bufferPosition = 0;
  private bufferLength = 0;
  /** Next sector to read or write, sectors left, sectors per DRQ block. */
  private nextSector = 0;
  private remaining = 0;
  private blockSectors = 1;
  /** The transfer is IDENTIFY data (no disk behind it). */
  private identifyTransfer = false;
  /** The disk operation in flight (Io), its sector, sectors and buffer offset; `ioToken` tells a stale settlement. */
  private ioKind: number = Io.None;
  private ioSector = 0;
  private ioSectors = 0;
  private ioOffset = 0;
  private ioToken = 0;
  /** ATAPI data-in: byte count limit of the packet, bytes left after this block, next byte (medium or reply), from the medium. */
  private byteLimit = 0;
  private atapiRemaining = 0;
  private atapiOffset = 0;
  private atapiFromMedium = false;
  /** The packet's data goes by DMA (PACKET features bit 0). */
  private packetDma = false;

  private get at(): number {
    return this.device & DEVICE_DEV1 ? 4 : 0;
  }
  private get count(): number {
    return this.outputs[this.at];
  }
  private set count(value: number) {
    this.outputs[this.at] = value;
  }
  private get lbaLow(): number {
    return this.outputs[this.at + 1];
  }
  private set lbaLow(value: number) {
    this.outputs[this.at + 1] = value;
  }
  private get lbaMid(): number {
    return this.outputs[this.at + 2];
  }
  private set lbaMid(value: number) {
    this.outputs[this.at + 2] = value;
  }
  private get lbaHigh(): number {
    return this.outputs[this.at + 3];
  }
  private set lbaHigh(value: number) {
    this.outputs[this.at + 3] = value;
  }

  /** A host write of task-file register 2-5 (`index` 0-3): both devices take it. */
  private writeBoth(index: number, value: number): void {
    this.outputs[index] = value;
    this.outputs[4 + index] = value;
  }

  /** Bus master IDE registers (82371SB 2.7): BMICOM, BMISTA, BMIDTP. */
  private bmCommand = 0;
  private bmStatus = 0;
  private bmTable = 0;
  /** Ports 0-7 of BAR 4 for this channel (BMICOM at 0, BMISTA at 2, BMIDTP at 4-7). */
  readonly busMaster: PortWindow;
  /** The DMA job: its kind (Dma), whether the bus master started it, its PRD segments and where it is in them. */
  private dmaKind: number = Dma.None;
  private dmaStarted = false;
  private dmaSegments: number[] = [];
  private dmaSegment = 0;
  private dmaOffset = 0;
  private dmaStayActive = false;

  constructor(
    devices: readonly (IdeDevice | null | undefined)[],
    private readonly setIrq: (level: boolean) => void,
    model: string,
    serialBase: number,
    cdromModel = "KUMO DVD-ROM",
    private readonly memory: Pick<GuestMemory, "readBytes" | "writeBytes" | "read32"> | null = null,
  ) {
    this.drives = [0, 1].map((i) => {
      const device = devices[i];
      return device
        ? new Drive(device, model, cdromModel, `KUMO${serialBase + i}`, memory !== null)
        : null;
    });
    this.busMaster = {
      read: (offset, size) => this.readBusMaster(offset, size),
      write: (offset, size, value) => this.writeBusMaster(offset, size, value),
    };
    // The power-on signature (ATA-6 9.1) of each device.
    this.setSignatures();
    this.commandBlock = {
      read: (offset, size) => this.readCommand(offset, size),
      write: (offset, size, value) => this.writeCommand(offset, size, value),
    };
    this.controlBlock = {
      read: (offset) => (offset === 0 ? this.readStatus(false) : 0xff),
      write: (offset, _size, value) => {
        if (offset === 0) this.writeControl(value & 0xff);
      },
    };
  }

  /** A disk operation is in flight (the drive shows BSY). */
  get busy(): boolean {
    return this.ioKind !== Io.None;
  }

  state(): IdeChannelState {
    const transferring = this.transfer !== Transfer.None || this.ioKind !== Io.None;
    const atapi = this.drives.find((drive) => drive?.atapi)?.atapi ?? null;
    return {
      registers: [
        this.features,
        this.count,
        this.lbaLow,
        this.lbaMid,
        this.lbaHigh,
        this.hobCount,
        this.hobLbaLow,
        this.hobLbaMid,
        this.hobLbaHigh,
        this.device,
        this.control,
      ],
      pending: this.pending,
      transfer: [
        this.transfer,
        this.bufferPosition,
        this.bufferLength,
        this.nextSector,
        this.remaining,
        this.blockSectors,
        this.identifyTransfer ? 1 : 0,
      ],
      buffer: transferring ? Array.from(this.buffer.subarray(0, this.bufferLength)) : [],
      drives: this.drives.map((d) =>
        d === null ? null : [d.status, d.error, d.multiple, d.heads, d.sectorsPerTrack],
      ),
      io: [this.ioKind, this.ioSector, this.ioSectors, this.ioOffset],
      busMaster: [this.bmCommand, this.bmStatus, this.bmTable],
      dma: [
        this.dmaKind,
        this.dmaSegment,
        this.dmaOffset,
        this.dmaStayActive ? 1 : 0,
        this.dmaStarted ? 1 : 0,
        this.packetDma ? 1 : 0,
      ],
      dmaSegments: [...this.dmaSegments],
      outputs: Array.from(this.outputs),
      atapi: [this.byteLimit, this.atapiRemaining, this.atapiOffset, this.atapiFromMedium ? 1 : 0],
      reply:
        atapi !== null && this.transfer === Transfer.AtapiIn && !this.atapiFromMedium
          ? Array.from(atapi.reply)
          : [],
      atapiDrives: this.drives.map((d) => d?.atapi?.state() ?? null),
    };
  }

  fromState(state: IdeChannelState): void {
    const r = state.registers;
    const t = state.transfer;
    if (!Array.isArray(r) || r.length !== 11 || !Array.isArray(t) || t.length !== 7)
      throw new IdeStateError("IDE channel state needs 11 registers and 7 transfer values");
    if (t[0] < 0 || t[0] > 4 || t[2] > this.buffer.length || t[1] > t[2] || t[5] > IDE_MAX_MULTIPLE)
      throw new IdeStateError("IDE channel state has a transfer this controller cannot hold");
    if (!Array.isArray(state.drives) || state.drives.length !== 2)
      throw new IdeStateError("IDE channel state needs 2 device entries");
    for (let i = 0; i < 2; i++)
      if ((state.drives[i] === null) !== (this.drives[i] === null))
        throw new IdeStateError(
          `IDE channel state has device ${i} ${state.drives[i] === null ? "absent" : "present"}, unlike this controller`,
        );
    const io = state.io ?? [Io.None, 0, 0, 0];
    if (
      !Array.isArray(io) ||
      io.length !== 4 ||
      io[0] < Io.None ||
      io[0] > Io.CdDmaRead ||
      io[3] + io[2] * SECTOR_SIZE > this.buffer.length
    )
      throw new IdeStateError("IDE channel state has a disk operation this controller cannot hold");
    [
      this.features,
      this.count,
      this.lbaLow,
      this.lbaMid,
      this.lbaHigh,
      this.hobCount,
      this.hobLbaLow,
      this.hobLbaMid,
      this.hobLbaHigh,
      this.device,
      this.control,
    ] = r.map((value) => value & 0xff);
    // A state without both devices' outputs (older) gives them the saved registers.
    const outputs = state.outputs;
    if (Array.isArray(outputs) && outputs.length === 8)
      this.outputs.set(outputs.map((v) => v & 0xff));
    else for (let i = 0; i < 4; i++) this.writeBoth(i, r[1 + i] & 0xff);
    [
      this.transfer,
      this.bufferPosition,
      this.bufferLength,
      this.nextSector,
      this.remaining,
      this.blockSectors,
    ] = t;
    this.identifyTransfer = t[6] === 1;
    this.buffer.fill(0);
    this.buffer.set(state.buffer.slice(0, this.buffer.length));
    state.drives.forEach((saved, i) => {
      const drive = this.drives[i];
      if (saved === null || drive === null) return;
      [drive.status, drive.error, drive.multiple, drive.heads, drive.sectorsPerTrack] = saved;
      drive.updateIdentify();
      const atapiSaved = state.atapiDrives?.[i];
      if (drive.atapi !== null && Array.isArray(atapiSaved)) drive.atapi.fromState(atapiSaved);
    });
    const atapi = state.atapi ?? [0, 0, 0, 0];
    this.byteLimit = atapi[0] & 0xffff;
    this.atapiRemaining = atapi[1];
    this.atapiOffset = atapi[2];
    this.atapiFromMedium = atapi[3] === 1;
    const replyDrive = this.drives.find((drive) => drive?.atapi)?.atapi;
    if (replyDrive && Array.isArray(state.reply))
      replyDrive.reply.set(state.reply.slice(0, replyDrive.reply.length));
    const bm = state.busMaster ?? [0, 0, 0];
    this.bmCommand = bm[0] & (BM_START | BM_READ_WRITE);
    this.bmStatus = bm[1] & 0x67;
    this.bmTable = (bm[2] & ~3) >>> 0;
    const dma = state.dma ?? [Dma.None, 0, 0, 0, 0, 0];
    const segments = state.dmaSegments ?? [];
    if (
      dma[0] < Dma.None ||
      dma[0] > Dma.CdReply ||
      (dma[0] !== Dma.None && this.memory === null) ||
      segments.length > 2 * PRD_TABLE_MAX ||
      segments.length % 2 !== 0 ||
      dma[1] * 2 > segments.length
    )
      throw new IdeStateError("IDE channel state has a DMA job this controller cannot hold");
    this.dmaKind = dma[0];
    this.dmaSegment = dma[1];
    this.dmaOffset = dma[2];
    this.dmaStayActive = dma[3] === 1;
    this.dmaStarted = dma[4] === 1;
    this.packetDma = dma[5] === 1;
    this.dmaSegments = segments.map((value) => value >>> 0);
    this.pending = state.pending === true;
    this.updateIrq();
    // An operation that was in flight is issued again (its promise did not survive the save).
    this.ioToken++;
    this.ioKind = Io.None;
    const drive = this.selected;
    if (io[0] !== Io.None && drive !== null) this.issue(drive, io[0], io[1], io[2], io[3]);
  }

  private get selected(): Drive | null {
    return this.drives[this.device & DEVICE_DEV1 ? 1 : 0];
  }

  private get empty(): boolean {
    return this.drives[0] === null && this.drives[1] === null;
  }

  private updateIrq(): void {
    const level = this.pending && !(this.control & CONTROL_NIEN);
    if (level !== this.line) {
      this.line = level;
      // BMISTA bit 2 follows the device's interrupt whether or not it came from DMA (QEMU bmdma_irq).
      if (level) this.bmStatus |= BM_INTERRUPT;
      this.setIrq(level);
    }
  }

  private raise(): void {
    this.pending = true;
    this.updateIrq();
  }

  private readStatus(clear: boolean): number {
    const drive = this.selected;
    if (drive === null) return 0;
    if (clear && this.pending) {
      this.pending = false;
      this.updateIrq();
    }
    return drive.status;
  }

  private readCommand(offset: number, size: 1 | 2 | 4): number {
    if (offset === 0) return this.readData(size);
    if (this.empty) return 0;
    const hob = (this.control & CONTROL_HOB) !== 0;
    switch (offset) {
      case 1:
        return this.selected === null ? 0 : this.selected.error;
      case 2:
        return hob ? this.hobCount : this.count;
      case 3:
        return hob ? this.hobLbaLow : this.lbaLow;
      case 4:
        return hob ? this.hobLbaMid : this.lbaMid;
      case 5:
        return hob ? this.hobLbaHigh : this.lbaHigh;
      case 6:
        return this.device;
      default:
        return this.readStatus(true);
    }
  }

  private writeCommand(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset === 0) {
      this.writeData(size, value);
      return;
    }
    const byte = value & 0xff;
    // ATA-6 7.1: the command block is not written while BSY (QEMU ignores it, as here);
    // only DEVICE RESET reaches a busy packet device (8.10).
    if (this.ioKind !== Io.None) {
      if (offset === 7 && byte === AtaCommand.DEVICE_RESET && this.selected?.atapi)
        this.execute(byte);
      return;
    }
    // Writing any task-file register clears HOB (7.8).
    this.control &= ~CONTROL_HOB;
    switch (offset) {
      case 1:
        // No 48-bit command here takes a features value, so its previous byte is not kept.
        this.features = byte;
        break;
      case 2:
        this.hobCount = this.count;
        this.writeBoth(0, byte);
        break;
      case 3:
        this.hobLbaLow = this.lbaLow;
        this.writeBoth(1, byte);
        break;
      case 4:
        this.hobLbaMid = this.lbaMid;
        this.writeBoth(2, byte);
        break;
      case 5:
        this.hobLbaHigh = this.lbaHigh;
        this.writeBoth(3, byte);
        break;
      case 6:
        // Bits 7 and 5 are obsolete and read as written (QEMU keeps them); DEV selects the drive.
        this.device = byte;
        break;
      default:
        this.execute(byte);
    }
  }

  private writeControl(value: number): void {
    const wasReset = (this.control & CONTROL_SRST) !== 0;
    this.control = value;
    if (value & CONTROL_SRST) {
      if (!wasReset) {
        // 9.2: the devices go BSY while SRST is set; a request in flight is abandoned.
        for (const drive of this.drives) if (drive) drive.status = AtaStatus.BSY | AtaStatus.DSC;
        this.cancelIo();
        this.dmaKind = Dma.None;
        this.transfer = Transfer.None;
        this.pending = false;
      }
    } else if (wasReset) {
      this.softReset();
    }
    this.updateIrq();
  }

  private cancelIo(): void {
    this.ioToken++;
    this.ioKind = Io.None;
  }

  /** The end of a software reset: each device's signature (9.12) and diagnostic code 01h. */
  private softReset(): void {
    for (const drive of this.drives) {
      if (drive === null) continue;
      // Packet devices clear DRDY (ATA-6 9.12; QEMU's CD-ROM reads 00h).
      drive.status = drive.atapi ? 0 : AtaStatus.DRDY | AtaStatus.DSC;
      drive.error = 0x01;
      drive.multiple = 0;
      drive.atapi?.reset();
      drive.updateIdentify();
    }
    this.setSignatures();
    this.device = 0;
    this.transfer = Transfer.None;
  }

  /** Each device's signature (9.12); an absent device shows the present one's, as before. */
  private setSignatures(): void {
    for (let i = 0; i < 2; i++) this.setSignature(this.drives[i] ?? this.drives[1 - i], i);
  }

  /** The signature (9.12) of `drive` in device `index`'s registers: ATA 00h/00h, ATAPI 14h/EBh. */
  private setSignature(drive: Drive | null, index = this.drives.indexOf(drive)): void {
    const at = index === 1 ? 4 : 0;
    const atapi = drive?.atapi != null;
    this.outputs[at] = 1;
    this.outputs[at + 1] = 1;
    this.outputs[at + 2] = atapi ? 0x14 : 0;
    this.outputs[at + 3] = atapi ? 0xeb : 0;
  }

  private readData(size: 1 | 2 | 4): number {
    if (
      (this.transfer !== Transfer.In && this.transfer !== Transfer.AtapiIn) ||
      this.ioKind !== Io.None
    )
      return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    const b = this.buffer;
    const p = this.bufferPosition;
    let value = b[p];
    if (size >= 2) value |= b[p + 1] << 8;
    if (size === 4) value = (value | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    this.bufferPosition = p + size;
    if (this.bufferPosition >= this.bufferLength) this.blockDone();
    return value;
  }

  private writeData(size: 1 | 2 | 4, value: number): void {
    if (
      (this.transfer !== Transfer.Out && this.transfer !== Transfer.Packet) ||
      this.ioKind !== Io.None
    )
      return;
    const b = this.buffer;
    const p = this.bufferPosition;
    b[p] = value & 0xff;
    if (size >= 2) b[p + 1] = (value >>> 8) & 0xff;
    if (size === 4) {
      b[p + 2] = (value >>> 16) & 0xff;
      b[p + 3] = (value >>> 24) & 0xff;
    }
    this.bufferPosition = p + size;
    if (this.bufferPosition >= this.bufferLength) this.blockDone();
  }

  /** A DRQ block was transferred: move to the next one or finish. */
  private blockDone(): void {
    const drive = this.selected;
    if (drive === null) return;
    switch (this.transfer) {
      case Transfer.Out:
        // The block goes to the disk; Io.Write's settlement opens the next one or finishes.
        this.issue(drive, Io.Write, this.nextSector, this.bufferLength / SECTOR_SIZE, 0);
        return;
      case Transfer.Packet:
        drive.status = AtaStatus.DRDY | AtaStatus.DSC;
        this.transfer = Transfer.None;
        this.packet(drive);
        return;
      case Transfer.AtapiIn:
        if (this.atapiRemaining > 0) this.atapiBlock(drive);
        else this.atapiDone(drive);
        return;
    }
    if (this.identifyTransfer || this.remaining <= 0) {
      this.finish(drive);
      return;
    }
    this.readBlock(drive);
  }

  /** Data-in: reads the next DRQ block; DRQ and INTRQ when it is there. */
  private readBlock(drive: Drive): void {
    const sectors = Math.min(this.remaining, this.blockSectors);
    this.bufferLength = sectors * SECTOR_SIZE;
    this.bufferPosition = 0;
    const sector = this.nextSector;
    this.nextSector += sectors;
    this.remaining -= sectors;
    this.issue(drive, Io.Read, sector, sectors, 0);
  }

  /** Data-out: opens the next DRQ block for the host to fill. */
  private openBlock(drive: Drive): void {
    const sectors = Math.min(this.remaining, this.blockSectors);
    this.bufferLength = sectors * SECTOR_SIZE;
    this.bufferPosition = 0;
    drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
  }

  /**
   * Starts a disk operation. One that completes at once goes on at once; a
   * promise leaves the drive BSY until it settles (unless SRST or a restore
   * abandoned it in between: `ioToken` changed).
   */
  private issue(drive: Drive, kind: number, sector: number, sectors: number, offset: number): void {
    const disk = drive.disk;
    let result: void | Promise<void>;
    try {
      if (disk === null) throw new Error("no medium");
      const bytes = this.buffer.subarray(offset, offset + sectors * SECTOR_SIZE);
      result =
        kind === Io.Write || kind === Io.DmaWrite
          ? disk.write(sector, bytes)
          : kind === Io.Flush
            ? disk.flush?.()
            : disk.read(sector, bytes);
    } catch {
      this.ioFailed(drive, kind);
      return;
    }
    if (!isPromise(result)) {
      this.ioDone(drive, kind, sectors);
      return;
    }
    const token = ++this.ioToken;
    this.ioKind = kind;
    this.ioSector = sector;
    this.ioSectors = sectors;
    this.ioOffset = offset;
    drive.status = AtaStatus.BSY | AtaStatus.DRDY | AtaStatus.DSC;
    result.then(
      () => {
        if (token !== this.ioToken) return;
        this.ioKind = Io.None;
        this.ioDone(drive, kind, sectors);
      },
      () => {
        if (token !== this.ioToken) return;
        this.ioKind = Io.None;
        this.ioFailed(drive, kind);
      },
    );
  }

  private ioDone(drive: Drive, kind: number, sectors: number): void {
    switch (kind) {
      case Io.Read:
        drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
        this.raise();
        return;
      case Io.Write:
        this.nextSector += sectors;
        this.remaining -= sectors;
        if (this.remaining > 0) this.openBlock(drive);
        else this.finish(drive);
        // 9.7: the device interrupts after each block written, including the last.
        this.raise();
        return;
      case Io.Flush:
        this.complete(drive);
        return;
      case Io.CdRead:
        drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
        this.count = (this.count & ~7) | REASON_IO;
        this.raise();
        return;
      case Io.DmaRead:
      case Io.CdDmaRead:
        if (!this.scatter(sectors * SECTOR_SIZE)) {
          this.dmaFailed(drive);
          return;
        }
        this.dmaAdvance(drive, kind, sectors);
        return;
      case Io.DmaWrite:
        this.dmaAdvance(drive, kind, sectors);
        return;
    }
  }

  private ioFailed(drive: Drive, kind: number): void {
    if (kind >= Io.DmaRead) {
      // QEMU ide_dma_error: the bus master stops (Active clear), the device ends with the error.
      this.dmaKind = Dma.None;
      this.bmStatus &= ~BM_ACTIVE;
    }
    if ((kind === Io.CdRead || kind === Io.CdDmaRead) && drive.atapi !== null) {
      drive.atapi.fail(SenseKey.MEDIUM_ERROR, AdditionalSense.UNRECOVERED_READ_ERROR);
      this.atapiError(drive);
      return;
    }
    // 8.27.5.2: an unreadable sector is UNC; a write or flush that failed ends with ABRT (as QEMU reports both).
    this.fail(drive, kind === Io.Read || kind === Io.DmaRead ? AtaError.UNC : AtaError.ABRT);
  }

  private finish(drive: Drive): void {
    this.transfer = Transfer.None;
    this.identifyTransfer = false;
    drive.status = AtaStatus.DRDY | AtaStatus.DSC;
  }

  private fail(drive: Drive, error: number): void {
    this.transfer = Transfer.None;
    drive.error = error;
    // DRDY and ERR: bit 4 (DSC in ATA-3, command-specific in ATA-6 7.15.6) clear, as QEMU's ide_abort_command leaves it.
    drive.status = AtaStatus.DRDY | AtaStatus.ERR;
    this.raise();
  }

  private complete(drive: Drive): void {
    drive.error = 0;
    this.finish(drive);
    this.raise();
  }

  /** The 28-bit address (LBA or CHS) of the task file, or -1 for a CHS address off the geometry. */
  private address28(drive: Drive): number {
    if (this.device & DEVICE_LBA)
      return ((this.device & 0x0f) << 24) | (this.lbaHigh << 16) | (this.lbaMid << 8) | this.lbaLow;
    // CHS (6.1): LBA = (cylinder * heads + head) * sectors per track + sector - 1.
    const cylinder = (this.lbaHigh << 8) | this.lbaMid;
    const head = this.device & 0x0f;
    const sector = this.lbaLow;
    if (sector === 0 || sector > drive.sectorsPerTrack || head >= drive.heads) return -1;
    return (cylinder * drive.heads + head) * drive.sectorsPerTrack + sector - 1;
  }

  private address48(): number {
    return (
      (this.hobLbaHigh * 0x10000 + this.hobLbaMid * 0x100 + this.hobLbaLow) * 0x1000000 +
      ((this.lbaHigh << 16) | (this.lbaMid << 8) | this.lbaLow)
    );
  }

  /** Sends 512 bytes of IDENTIFY data (PIO data-in, one block, INTRQ). */
  private sendIdentify(drive: Drive): void {
    drive.updateIdentify();
    for (let i = 0; i < 256; i++) {
      this.buffer[2 * i] = drive.identify[i] & 0xff;
      this.buffer[2 * i + 1] = drive.identify[i] >> 8;
    }
    this.transfer = Transfer.In;
    this.identifyTransfer = true;
    this.bufferPosition = 0;
    this.bufferLength = SECTOR_SIZE;
    drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
    this.raise();
  }

  private execute(command: number): void {
    const drive = this.selected;
    // QEMU: an absent device 1 ignores commands; nothing answers on an empty channel.
    if (drive === null) return;
    if (drive.status & AtaStatus.BSY && !(drive.atapi && command === AtaCommand.DEVICE_RESET))
      return;
    this.pending = false;
    this.updateIrq();
    this.transfer = Transfer.None;
    drive.error = 0;
    if (drive.atapi !== null) {
      this.executePacketDevice(drive, command);
      return;
    }
    const C = AtaCommand;
    switch (command) {
      case C.IDENTIFY_DEVICE:
        this.sendIdentify(drive);
        return;
      case C.READ_SECTORS:
      case C.READ_SECTORS_EXT:
      case C.READ_MULTIPLE:
      case C.READ_MULTIPLE_EXT:
      case C.WRITE_SECTORS:
      case C.WRITE_SECTORS_EXT:
      case C.WRITE_MULTIPLE:
      case C.WRITE_MULTIPLE_EXT:
      case C.READ_VERIFY_SECTORS:
      case C.READ_VERIFY_SECTORS_EXT:
      case C.READ_DMA:
      case C.READ_DMA_EXT:
      case C.WRITE_DMA:
      case C.WRITE_DMA_EXT:
        this.readWrite(drive, command);
        return;
      case C.SET_MULTIPLE_MODE: {
        // 8.39: 0 disables; otherwise a power of two up to word 47's maximum.
        const n = this.count;
        if (n > IDE_MAX_MULTIPLE || (n & (n - 1)) !== 0) this.fail(drive, AtaError.ABRT);
        else {
          drive.multiple = n;
          drive.updateIdentify();
          this.complete(drive);
        }
        return;
      }
      case C.INITIALIZE_DEVICE_PARAMETERS: {
        // 8.16: sectors per track from the sector count, heads from the device register.
        const heads = (this.device & 0x0f) + 1;
        const sectors = this.count;
        if (sectors === 0) {
          this.fail(drive, AtaError.ABRT);
          return;
        }
        drive.heads = heads;
        drive.sectorsPerTrack = sectors;
        drive.updateIdentify();
        this.complete(drive);
        return;
      }
      default:
        // RECALIBRATE is any 1xh (obsolete, still answered by disks and SeaBIOS-era BIOSes).
        if ((command & 0xf0) === C.RECALIBRATE) {
          this.complete(drive);
          return;
        }
        this.executeCommon(drive, command);
    }
  }

  /** The commands disks and packet devices answer alike. */
  private executeCommon(drive: Drive, command: number): void {
    const C = AtaCommand;
    switch (command) {
      case C.SET_FEATURES:
        // 8.37: transfer mode (03h, PIO modes only here), write cache and
        // read look-ahead on/off (02h/82h, AAh/55h), reverting to defaults (66h/CCh).
        switch (this.features) {
          case 0x03: {
            // PIO default/flow control (00h-0Fh), and multiword DMA 0-2 (20h-22h) with the bus master.
            const mode = this.count;
            if (mode < 0x10 || (drive.dma && mode >= 0x20 && mode <= 0x22)) {
              if (mode >= 0x20) drive.identify[63] = 0x0007 | (0x100 << (mode & 7));
              this.complete(drive);
            } else this.fail(drive, AtaError.ABRT);
            return;
          }
          case 0x02:
          case 0x82:
          case 0xaa:
          case 0x55:
          case 0x66:
          case 0xcc:
            this.complete(drive);
            return;
          default:
            this.fail(drive, AtaError.ABRT);
            return;
        }
      case C.FLUSH_CACHE:
      case C.FLUSH_CACHE_EXT:
        if (drive.atapi !== null || drive.disk?.flush === undefined) this.complete(drive);
        else this.issue(drive, Io.Flush, 0, 0, 0);
        return;
      case C.EXECUTE_DEVICE_DIAGNOSTIC:
        // 8.11 / 9.12: signature and diagnostic code 01h (device 0 passed, device 1 absent or passed).
        for (const d of this.drives) if (d) d.error = 0x01;
        this.setSignatures();
        this.device &= ~DEVICE_DEV1;
        this.finish(drive);
        drive.error = 0x01;
        if (drive.atapi !== null) {
          // ATA-6 9.12: a packet device's status is 00h afterwards (QEMU: no interrupt).
          drive.status = 0;
          return;
        }
        this.raise();
        return;
      case C.CHECK_POWER_MODE:
        this.count = 0xff; // active or idle (8.6)
        this.complete(drive);
        return;
      case C.STANDBY_IMMEDIATE:
      case C.IDLE_IMMEDIATE:
      case C.STANDBY:
      case C.IDLE:
      case C.SLEEP:
        this.complete(drive);
        return;
      default:
        // NOP (8.20), IDENTIFY PACKET DEVICE on an ATA device and unknown commands: ABRT.
        this.fail(drive, AtaError.ABRT);
    }
  }

  /** The ATA commands of a packet device (ATA-6 6.3 packet command feature set). */
  private executePacketDevice(drive: Drive, command: number): void {
    const C = AtaCommand;
    switch (command) {
      case C.IDENTIFY_PACKET_DEVICE:
        this.sendIdentify(drive);
        return;
      case C.PACKET:
        // 8.21: features bit 0 asks for DMA (offered with the bus master, IDENTIFY word 49), bit 1 for overlap (never).
        if (this.features & 0x02 || (this.features & 0x01 && !drive.dma)) {
          this.fail(drive, AtaError.ABRT);
          return;
        }
        this.packetDma = (this.features & 0x01) !== 0;
        this.byteLimit = this.lbaMid | (this.lbaHigh << 8);
        this.count = (this.count & ~7) | REASON_COMMAND;
        this.transfer = Transfer.Packet;
        this.bufferPosition = 0;
        this.bufferLength = ATAPI_PACKET_SIZE;
        // 9.8: DRQ for the packet; INTRQ is not asserted for it (word 0 bits 6:5 = 10b).
        drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
        return;
      case C.DEVICE_RESET:
        // 8.10: the device's own reset: signature, diagnostic code, status 00h, no interrupt.
        this.cancelIo();
        drive.atapi?.reset();
        this.setSignature(drive);
        drive.error = 0x01;
        drive.status = 0;
        return;
      case C.IDENTIFY_DEVICE:
      case C.READ_SECTORS:
      case C.READ_SECTORS_EXT:
      case C.READ_MULTIPLE:
      case C.READ_MULTIPLE_EXT:
      case C.WRITE_SECTORS:
      case C.WRITE_SECTORS_EXT:
      case C.WRITE_MULTIPLE:
      case C.WRITE_MULTIPLE_EXT:
      case C.READ_DMA:
      case C.READ_DMA_EXT:
      case C.WRITE_DMA:
      case C.WRITE_DMA_EXT:
        // ATAPI-6 8.15.5 / 8.27.5: a packet device aborts them and shows its signature.
        this.setSignature(drive);
        this.fail(drive, AtaError.ABRT);
        return;
      case C.SET_FEATURES:
      case C.FLUSH_CACHE:
      case C.FLUSH_CACHE_EXT:
      case C.EXECUTE_DEVICE_DIAGNOSTIC:
      case C.CHECK_POWER_MODE:
      case C.STANDBY_IMMEDIATE:
      case C.IDLE_IMMEDIATE:
      case C.STANDBY:
      case C.IDLE:
      case C.SLEEP:
        this.executeCommon(drive, command);
        return;
      default:
        this.fail(drive, AtaError.ABRT);
    }
  }

  /** A command packet arrived: run it (atapi.ts) and start its data-in or end it. */
  private packet(drive: Drive): void {
    const atapi = drive.atapi as AtapiDrive;
    const outcome = atapi.execute(this.buffer.subarray(0, ATAPI_PACKET_SIZE));
    switch (outcome) {
      case AtapiOutcome.Ok:
        this.atapiDone(drive);
        return;
      case AtapiOutcome.Error:
        this.atapiError(drive);
        return;
      case AtapiOutcome.Data:
        this.atapiFromMedium = false;
        this.atapiOffset = 0;
        this.atapiRemaining = atapi.dataLength;
        break;
      default:
        this.atapiFromMedium = true;
        this.atapiOffset = atapi.readLba * 2048;
        this.atapiRemaining = atapi.readSectors * 2048;
    }
    if (this.packetDma) {
      this.startDma(drive, this.atapiFromMedium ? Dma.CdRead : Dma.CdReply);
      return;
    }
    this.atapiBlock(drive);
  }

  /**
   * The next ATAPI DRQ block (ATA-6 9.8 / QEMU ide_atapi_cmd_reply_end): at
   * most the byte count limit (FFFFh counts as FFFEh, an odd limit is made
   * even when the data is longer), its length in LBA mid/high, I/O=1 C/D=0.
   */
  private atapiBlock(drive: Drive): void {
    let limit = this.byteLimit;
    if (limit === 0xffff || limit === 0) limit = 0xfffe;
    let size = this.atapiRemaining;
    if (size > limit) size = limit & ~1;
    this.lbaMid = size & 0xff;
    this.lbaHigh = size >> 8;
    this.atapiRemaining -= size;
    this.transfer = Transfer.AtapiIn;
    if (!this.atapiFromMedium) {
      const reply = (drive.atapi as AtapiDrive).reply;
      this.buffer.set(reply.subarray(this.atapiOffset, this.atapiOffset + size));
      this.atapiOffset += size;
      this.bufferPosition = 0;
      this.bufferLength = size;
      this.ioDone(drive, Io.CdRead, 0);
      return;
    }
    // The 512-byte sectors of the medium that hold the block's bytes.
    const first = Math.floor(this.atapiOffset / SECTOR_SIZE);
    const end = Math.ceil((this.atapiOffset + size) / SECTOR_SIZE);
    this.bufferPosition = this.atapiOffset - first * SECTOR_SIZE;
    this.bufferLength = this.bufferPosition + size;
    this.atapiOffset += size;
    this.issue(drive, Io.CdRead, first, end - first, 0);
  }

  /**
   * A DMA command is ready (ATA-6 9.10, 82371SB 2.7): DRQ, then the
   * transfer when the host starts the bus master (before or after the
   * command, as QEMU's bmdma_start_dma allows).
   */
  private startDma(drive: Drive, kind: number): void {
    this.dmaKind = kind;
    this.dmaStarted = false;
    this.transfer = Transfer.None;
    drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
    if (this.bmCommand & BM_START) this.beginDma(drive);
  }

  /** Bytes the DMA job still has to move. */
  private dmaBytesLeft(): number {
    return this.dmaKind === Dma.Read || this.dmaKind === Dma.Write
      ? this.remaining * SECTOR_SIZE
      : this.atapiRemaining;
  }

  /**
   * Reads the PRD table (82371SB 2.7.3: 32-bit address, byte count in bits
   * 15:1 with 0 meaning 64 KiB, EOT in bit 31) for the whole transfer. A
   * table too short moves nothing: Active clears and no interrupt comes
   * (QEMU ide_dma_cb); a longer one leaves Active set at the end.
   */
  private beginDma(drive: Drive): void {
    this.dmaStarted = true;
    const memory = this.memory as NonNullable<typeof this.memory>;
    const needed = this.dmaBytesLeft();
    const segments: number[] = [];
    let total = 0;
    try {
      let entry = this.bmTable;
      for (let i = 0; i < PRD_TABLE_MAX && total < needed; i++, entry += 8) {
        const control = memory.read32(entry + 4);
        const length = control & 0xfffe || 0x10000;
        segments.push(memory.read32(entry) & ~1, length);
        total += length;
        if (control & 0x80000000) break;
      }
    } catch {
      this.dmaFailed(drive);
      return;
    }
    if (total < needed) {
      this.dmaKind = Dma.None;
      this.bmStatus &= ~BM_ACTIVE;
      drive.status = AtaStatus.DRDY | AtaStatus.DSC;
      return;
    }
    this.dmaSegments = segments;
    this.dmaSegment = 0;
    this.dmaOffset = 0;
    this.dmaStayActive = total > needed;
    this.dmaStep(drive);
  }

  /** Moves the next chunk (up to 64 KiB through the buffer) or ends the job. */
  private dmaStep(drive: Drive): void {
    switch (this.dmaKind) {
      case Dma.Read:
      case Dma.Write: {
        const sectors = Math.min(this.remaining, DMA_CHUNK / SECTOR_SIZE);
        this.bufferLength = sectors * SECTOR_SIZE;
        if (this.dmaKind === Dma.Write && !this.gather(this.bufferLength)) {
          this.dmaFailed(drive);
          return;
        }
        this.issue(
          drive,
          this.dmaKind === Dma.Read ? Io.DmaRead : Io.DmaWrite,
          this.nextSector,
          sectors,
          0,
        );
        return;
      }
      case Dma.CdRead: {
        const bytes = Math.min(this.atapiRemaining, DMA_CHUNK);
        this.bufferLength = bytes;
        this.issue(drive, Io.CdDmaRead, this.atapiOffset / SECTOR_SIZE, bytes / SECTOR_SIZE, 0);
        return;
      }
      case Dma.CdReply: {
        const reply = (drive.atapi as AtapiDrive).reply;
        this.buffer.set(reply.subarray(0, this.atapiRemaining));
        if (!this.scatter(this.atapiRemaining)) {
          this.dmaFailed(drive);
          return;
        }
        this.atapiRemaining = 0;
        this.endDma(drive);
        return;
      }
    }
  }

  private dmaAdvance(drive: Drive, kind: number, sectors: number): void {
    if (kind === Io.CdDmaRead) {
      this.atapiOffset += sectors * SECTOR_SIZE;
      this.atapiRemaining -= sectors * SECTOR_SIZE;
    } else {
      this.nextSector += sectors;
      this.remaining -= sectors;
    }
    if (this.dmaBytesLeft() > 0) this.dmaStep(drive);
    else this.endDma(drive);
  }

  /** The transfer is done: the device completes (INTRQ, which sets BMISTA's interrupt bit). */
  private endDma(drive: Drive): void {
    const atapi = this.dmaKind === Dma.CdRead || this.dmaKind === Dma.CdReply;
    this.dmaKind = Dma.None;
    if (!this.dmaStayActive) this.bmStatus &= ~BM_ACTIVE;
    if (atapi) this.atapiDone(drive);
    else this.complete(drive);
  }

  /** Guest memory refused the transfer: the bus master's error bit, the device ends with ABRT. */
  private dmaFailed(drive: Drive): void {
    const atapi = this.dmaKind === Dma.CdRead || this.dmaKind === Dma.CdReply;
    this.dmaKind = Dma.None;
    this.bmStatus = (this.bmStatus & ~BM_ACTIVE) | BM_ERROR;
    if (atapi && drive.atapi !== null) {
      drive.atapi.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
      this.atapiError(drive);
    } else this.fail(drive, AtaError.ABRT);
  }

  /** Copies `bytes` of the buffer to the PRD segments from where the job is (device to memory). */
  private scatter(bytes: number): boolean {
    return this.walkSegments(bytes, true);
  }

  /** Copies `bytes` from the PRD segments into the buffer (memory to device). */
  private gather(bytes: number): boolean {
    return this.walkSegments(bytes, false);
  }

  private walkSegments(bytes: number, toMemory: boolean): boolean {
    const memory = this.memory as NonNullable<typeof this.memory>;
    const segments = this.dmaSegments;
    let done = 0;
    try {
      while (done < bytes) {
        const address = segments[2 * this.dmaSegment];
        const length = segments[2 * this.dmaSegment + 1];
        const take = Math.min(length - this.dmaOffset, bytes - done);
        const part = this.buffer.subarray(done, done + take);
        if (toMemory) memory.writeBytes(address + this.dmaOffset, part);
        else memory.readBytes(address + this.dmaOffset, part);
        done += take;
        this.dmaOffset += take;
        if (this.dmaOffset === length) {
          this.dmaSegment++;
          this.dmaOffset = 0;
        }
      }
    } catch {
      return false;
    }
    return true;
  }

  private readBusMaster(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.busMasterByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  private busMasterByte(offset: number): number {
    switch (offset) {
      case 0:
        return this.bmCommand;
      case 2:
        return this.bmStatus;
      case 4:
      case 5:
      case 6:
      case 7:
        return (this.bmTable >>> (8 * (offset - 4))) & 0xff;
      default:
        return 0;
    }
  }

  private writeBusMaster(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.writeBusMasterByte(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** 82371SB 2.7.1-2.7.3: BMICOM start/stop and direction, BMISTA write-one-to-clear bits, BMIDTP. */
  private writeBusMasterByte(offset: number, value: number): void {
    switch (offset) {
      case 0: {
        const was = this.bmCommand & BM_START;
        this.bmCommand = value & (BM_START | BM_READ_WRITE);
        const drive = this.selected;
        if (!was && value & BM_START) {
          this.bmStatus |= BM_ACTIVE;
          if (this.dmaKind !== Dma.None && !this.dmaStarted && drive !== null) this.beginDma(drive);
        } else if (was && !(value & BM_START)) {
          // Stopping the bus master abandons a transfer in progress (QEMU cancels it the same way).
          this.bmStatus &= ~BM_ACTIVE;
          if (this.dmaKind !== Dma.None && this.dmaStarted) {
            this.cancelIo();
            this.dmaKind = Dma.None;
            if (drive !== null) drive.status = AtaStatus.DRDY | AtaStatus.DSC;
          }
        }
        return;
      }
      case 2:
        // Bits 5-6 (drive DMA capable) are storage; 1 and 2 clear when written with one.
        this.bmStatus =
          ((this.bmStatus & ~0x60) | (value & 0x60)) & ~(value & (BM_ERROR | BM_INTERRUPT));
        return;
      case 4:
      case 5:
      case 6:
      case 7: {
        const shift = 8 * (offset - 4);
        this.bmTable = ((this.bmTable & ~(0xff << shift)) | (value << shift)) & ~3;
        this.bmTable >>>= 0;
        return;
      }
    }
  }

  /** GOOD status: I/O=1 C/D=1, DRDY, INTRQ (9.8). */
  private atapiDone(drive: Drive): void {
    this.transfer = Transfer.None;
    drive.error = 0;
    drive.status = AtaStatus.DRDY | AtaStatus.DSC;
    this.count = (this.count & ~7) | REASON_IO | REASON_COMMAND;
    this.raise();
  }

  /** CHECK CONDITION: ERR, the sense key in the error register's bits 7:4 (ATA-6 8.21.5), INTRQ. */
  private atapiError(drive: Drive): void {
    this.transfer = Transfer.None;
    drive.error = (drive.atapi as AtapiDrive).senseKey << 4;
    drive.status = AtaStatus.DRDY | AtaStatus.ERR;
    this.count = (this.count & ~7) | REASON_IO | REASON_COMMAND;
    this.raise();
  }

  private readWrite(drive: Drive, command: number): void {
    const disk = drive.disk as IdeDisk;
    const C = AtaCommand;
    const dma =
      command === C.READ_DMA ||
      command === C.READ_DMA_EXT ||
      command === C.WRITE_DMA ||
      command === C.WRITE_DMA_EXT;
    const ext =
      command === C.READ_SECTORS_EXT ||
      command === C.WRITE_SECTORS_EXT ||
      command === C.READ_MULTIPLE_EXT ||
      command === C.WRITE_MULTIPLE_EXT ||
      command === C.READ_VERIFY_SECTORS_EXT ||
      command === C.READ_DMA_EXT ||
      command === C.WRITE_DMA_EXT;
    const multiple =
      command === C.READ_MULTIPLE ||
      command === C.READ_MULTIPLE_EXT ||
      command === C.WRITE_MULTIPLE ||
      command === C.WRITE_MULTIPLE_EXT;
    const write =
      command === C.WRITE_SECTORS ||
      command === C.WRITE_SECTORS_EXT ||
      command === C.WRITE_MULTIPLE ||
      command === C.WRITE_MULTIPLE_EXT ||
      command === C.WRITE_DMA ||
      command === C.WRITE_DMA_EXT;
    const verify = command === C.READ_VERIFY_SECTORS || command === C.READ_VERIFY_SECTORS_EXT;
    // A count of 0 means 256 sectors (65536 for the 48-bit commands).
    let count = ext ? (this.hobCount << 8) | this.count : this.count;
    if (count === 0) count = ext ? 65536 : 256;
    const lba = ext ? this.address48() : this.address28(drive);
    // 8.22/8.23: READ/WRITE MULTIPLE before SET MULTIPLE MODE abort; DMA needs the bus master.
    if ((multiple && drive.multiple === 0) || (write && disk.readOnly) || (dma && !drive.dma)) {
      this.fail(drive, AtaError.ABRT);
      return;
    }
    if (lba < 0 || lba + count > disk.sectors) {
      this.fail(drive, AtaError.IDNF);
      return;
    }
    if (verify) {
      this.complete(drive);
      return;
    }
    this.nextSector = lba;
    this.remaining = count;
    this.blockSectors = multiple ? drive.multiple : 1;
    this.identifyTransfer = false;
    if (dma) {
      this.startDma(drive, write ? Dma.Write : Dma.Read);
      return;
    }
    if (write) {
      // Data-out: the host writes the first block unprompted (9.7).
      this.transfer = Transfer.Out;
      this.openBlock(drive);
      return;
    }
    // Data-in: interrupt when the first block is ready.
    this.transfer = Transfer.In;
    this.readBlock(drive);
  }
}

/** PIIX3 IDETIM registers 0x40-0x43: bit 15 enables the channel's decode (datasheet 2.3.12). */
const IDETIM = 0x40;
/** PIIX3 BMIBA, the bus master base address (BAR 4, datasheet 2.3.9). */
const BMIBA = 0x20;

export class IdeController {
  /** PCI function 01.1 (`PciHost.addFunction(1, 1, controller.pci)`). */
  readonly pci: PciFunction;
  readonly primary: IdeChannel;
  readonly secondary: IdeChannel;
  /** BAR 4's 16 bus master ports (primary 0-7, secondary 8-15); see `busMasterBase`. Only with `memory`. */
  readonly busMaster: PortWindow;

  constructor(options: IdeControllerOptions) {
    const disks = options.disks ?? [];
    if (disks.length > 4)
      throw new RangeError(`the IDE controller has 4 device slots (hda-hdd), not ${disks.length}`);
    const model = options.model ?? "KUMO HARDDISK";
    const cdrom = options.cdromModel ?? "KUMO DVD-ROM";
    const memory = options.memory ?? null;
    this.primary = new IdeChannel(
      disks.slice(0, 2),
      (level) => options.irq(14, level),
      model,
      0,
      cdrom,
      memory,
    );
    this.secondary = new IdeChannel(
      disks.slice(2, 4),
      (level) => options.irq(15, level),
      model,
      2,
      cdrom,
      memory,
    );
    this.busMaster = {
      read: (offset, size) =>
        offset < 8
          ? this.primary.busMaster.read(offset, size)
          : this.secondary.busMaster.read(offset - 8, size),
      write: (offset, size, value) => {
        if (offset < 8) this.primary.busMaster.write(offset, size, value);
        else this.secondary.busMaster.write(offset - 8, size, value);
      },
    };
    // 82371SB function 1: class 01 01 80 (IDE, legacy mode, bus-master capable), no interrupt pin.
    this.pci = new PciFunction({ vendor: 0x8086, device: 0x7010, classCode: 0x010180 });
    // IDETIM primary and secondary: decode enabled, as QEMU's piix_ide_reset leaves them.
    this.pci.config[IDETIM + 1] = 0x80;
    this.pci.config[IDETIM + 3] = 0x80;
    for (let r = IDETIM; r < IDETIM + 4; r++) this.pci.writable[r] = 0xff;
    if (memory !== null) {
      // BAR 4 (BMIBA): 16 bytes of I/O space for the bus master registers (datasheet 2.3.9).
      this.pci.config[BMIBA] = 0x01;
      // All 28 address bits are writable, so sizing (all ones written) reads back FFFFFFF1h: 16 bytes.
      this.pci.writable[BMIBA] = 0xf0;
      this.pci.writable[BMIBA + 1] = 0xff;
      this.pci.writable[BMIBA + 2] = 0xff;
      this.pci.writable[BMIBA + 3] = 0xff;
    }
  }

  /**
   * Where BAR 4's bus master registers decode now (`busMaster`, 16 ports),
   * or null while the BAR is unassigned or I/O space is disabled. The VMM
   * maps `busMaster` there and moves it when the guest reprograms the BAR.
   */
  busMasterBase(): number | null {
    const c = this.pci.config;
    if (!(c[BMIBA] & 0x01) || !(c[4] & 0x01)) return null;
    // An address past the 64 KiB I/O space (bits 31:16 set) decodes nowhere on a PC.
    if (c[BMIBA + 2] !== 0 || c[BMIBA + 3] !== 0) return null;
    const base = (c[BMIBA] & 0xf0) | (c[BMIBA + 1] << 8);
    return base === 0 ? null : base;
  }

  state(): IdeControllerState {
    return {
      kind: "ide",
      version: 1,
      channels: [this.primary.state(), this.secondary.state()],
      pci: Array.from(this.pci.config),
    };
  }

  /** Restores a state saved from a controller with the same devices present (the disks are the VMM's). */
  fromState(state: IdeControllerState): void {
    if (state === null || typeof state !== "object" || state.kind !== "ide")
      throw new IdeStateError('not an IDE controller state (kind must be "ide")');
    if (state.version !== 1)
      throw new IdeStateError(`IDE state version ${state.version} is not supported (expected 1)`);
    if (!Array.isArray(state.channels) || state.channels.length !== 2)
      throw new IdeStateError("IDE state needs 2 channels");
    if (!Array.isArray(state.pci) || state.pci.length !== 256)
      throw new IdeStateError("IDE state's PCI configuration space must hold 256 bytes");
    this.primary.fromState(state.channels[0]);
    this.secondary.fromState(state.channels[1]);
    this.pci.config.set(state.pci);
  }

  /** Registers the legacy ports on a bus (0x1F0-0x1F7, 0x3F6, 0x170-0x177, 0x376). */
  register(bus: {
    register(base: number, length: number, window: PortWindow, name?: string): void;
  }): void {
    bus.register(0x1f0, 8, this.primary.commandBlock, "IDE primary");
    bus.register(0x3f6, 1, this.primary.controlBlock, "IDE primary control");
    bus.register(0x170, 8, this.secondary.commandBlock, "IDE secondary");
    bus.register(0x376, 1, this.secondary.controlBlock, "IDE secondary control");
  }
}
