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
 * (6.2.1). IDENTIFY PACKET DEVICE aborts too (these are not ATAPI devices),
 * which is how SeaBIOS and Linux tell an ATA disk from an ATAPI one.
 *
 * Commands complete at once (the disk is synchronous); BSY is never seen
 * outside SRST. The interrupt follows 9.5-9.7: PIO data-in raises INTRQ
 * for each DRQ block, PIO data-out after each block written and at the end,
 * non-data commands at completion; reading the status register (not the
 * alternate status) or writing a command clears it, nIEN masks the line.
 *
 * As QEMU's ide core does, the task-file registers are written to both
 * devices of a channel, an absent device 1 answers status 0 and ignores
 * commands, and a channel with no device reads 0 everywhere (SeaBIOS's
 * probe then moves on at once instead of waiting for BSY to clear).
 *
 * Simplifications: no bus-master DMA (BAR 4 is absent, so Linux's ata_piix
 * falls back to PIO), no ATAPI, the IDE decode enable bits of IDETIM are
 * storage and the legacy ports always decode.
 */

import { PciFunction } from "./pci-host";
import type { PortWindow } from "./pic-8259";

export const SECTOR_SIZE = 512;

/** A disk the controller reads and writes synchronously, in 512-byte sectors. */
export interface IdeDisk {
  /** Size in sectors. */
  readonly sectors: number;
  /** Writes are refused (the command aborts). */
  readonly readOnly?: boolean;
  /** Fills `buffer` (a multiple of 512 bytes) from sector `sector` on. */
  read(sector: number, buffer: Uint8Array): void;
  /** Stores `data` (a multiple of 512 bytes) at sector `sector`. */
  write(sector: number, data: Uint8Array): void;
  /** Makes earlier writes durable (FLUSH CACHE). */
  flush?(): void;
}

/** One channel's saved registers and PIO transfer (plain, JSON-safe). */
export interface IdeChannelState {
  /** features, count, lbaLow, lbaMid, lbaHigh, their HOB bytes (count..lbaHigh), device, control. */
  readonly registers: readonly number[];
  readonly pending: boolean;
  /** transfer (0 none, 1 in, 2 out), bufferPosition, bufferLength, nextSector, remaining, blockSectors, identify (0/1). */
  readonly transfer: readonly number[];
  /** The current DRQ block's bytes (empty when no transfer is in progress). */
  readonly buffer: readonly number[];
  /** Per device: [status, error, multiple, heads, sectorsPerTrack], or null when absent. */
  readonly drives: readonly (readonly number[] | null)[];
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
  /** Disks: [primary master, primary slave, secondary master, secondary slave] (hda..hdd). */
  readonly disks?: readonly (IdeDisk | null | undefined)[];
  /** ISA IRQ 14 (primary) and 15 (secondary) levels. */
  readonly irq: (irq: number, level: boolean) => void;
  /** Model string of IDENTIFY DEVICE words 27-46 (default "KUMO HARDDISK"). */
  readonly model?: string;
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
export const AtaError = { ABRT: 0x04, IDNF: 0x10 } as const;

/** Command codes (ATA/ATAPI-6 annex: command matrix). */
export const AtaCommand = {
  NOP: 0x00,
  RECALIBRATE: 0x10,
  READ_SECTORS: 0x20,
  READ_SECTORS_EXT: 0x24,
  READ_MULTIPLE_EXT: 0x29,
  WRITE_SECTORS: 0x30,
  WRITE_SECTORS_EXT: 0x34,
  WRITE_MULTIPLE_EXT: 0x39,
  READ_VERIFY_SECTORS: 0x40,
  READ_VERIFY_SECTORS_EXT: 0x42,
  EXECUTE_DEVICE_DIAGNOSTIC: 0x90,
  INITIALIZE_DEVICE_PARAMETERS: 0x91,
  IDENTIFY_PACKET_DEVICE: 0xa1,
  READ_MULTIPLE: 0xc4,
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

/** PIO transfer direction. */
const Transfer = { None: 0, In: 1, Out: 2 } as const;

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
  constructor(
    readonly disk: IdeDisk,
    model: string,
    serial: string,
  ) {
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
    w[49] = 0x0200; // LBA supported (bit 9); no DMA (bit 8 clear)
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
    if (perCylinder === 0) return 0;
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

/** One ATA channel: its task file, up to two drives and a PIO transfer in progress. */
export class IdeChannel {
  /** Ports base+0 .. base+7. */
  readonly commandBlock: PortWindow;
  /** Port control+0 (0x3F6 / 0x376). */
  readonly controlBlock: PortWindow;
  private readonly drives: (Drive | null)[];
  // Task file; "hob" is the previous value of each register (48-bit commands, 6.20).
  private features = 0;
  private count = 0;
  private lbaLow = 0;
  private lbaMid = 0;
  private lbaHigh = 0;
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
  private readonly buffer = new Uint8Array(SECTOR_SIZE * IDE_MAX_MULTIPLE);
  private bufferPosition = 0;
  private bufferLength = 0;
  /** Next sector to read or write, sectors left, sectors per DRQ block. */
  private nextSector = 0;
  private remaining = 0;
  private blockSectors = 1;
  /** The transfer is IDENTIFY data (no disk behind it). */
  private identifyTransfer = false;

  constructor(
    disks: readonly (IdeDisk | null | undefined)[],
    private readonly setIrq: (level: boolean) => void,
    model: string,
    serialBase: number,
  ) {
    this.drives = [0, 1].map((i) => {
      const disk = disks[i];
      return disk ? new Drive(disk, model, `KUMO${serialBase + i}`) : null;
    });
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

  state(): IdeChannelState {
    const transferring = this.transfer !== Transfer.None;
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
    };
  }

  fromState(state: IdeChannelState): void {
    const r = state.registers;
    const t = state.transfer;
    if (!Array.isArray(r) || r.length !== 11 || !Array.isArray(t) || t.length !== 7)
      throw new IdeStateError("IDE channel state needs 11 registers and 7 transfer values");
    if (t[0] < 0 || t[0] > 2 || t[2] > this.buffer.length || t[1] > t[2] || t[5] > IDE_MAX_MULTIPLE)
      throw new IdeStateError("IDE channel state has a transfer this controller cannot hold");
    if (!Array.isArray(state.drives) || state.drives.length !== 2)
      throw new IdeStateError("IDE channel state needs 2 device entries");
    for (let i = 0; i < 2; i++)
      if ((state.drives[i] === null) !== (this.drives[i] === null))
        throw new IdeStateError(
          `IDE channel state has device ${i} ${state.drives[i] === null ? "absent" : "present"}, unlike this controller`,
        );
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
    });
    this.pending = state.pending === true;
    this.updateIrq();
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
    // Writing any task-file register clears HOB (7.8).
    this.control &= ~CONTROL_HOB;
    switch (offset) {
      case 1:
        // No 48-bit command here takes a features value, so its previous byte is not kept.
        this.features = byte;
        break;
      case 2:
        this.hobCount = this.count;
        this.count = byte;
        break;
      case 3:
        this.hobLbaLow = this.lbaLow;
        this.lbaLow = byte;
        break;
      case 4:
        this.hobLbaMid = this.lbaMid;
        this.lbaMid = byte;
        break;
      case 5:
        this.hobLbaHigh = this.lbaHigh;
        this.lbaHigh = byte;
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
        // 9.2: the devices go BSY while SRST is set.
        for (const drive of this.drives) if (drive) drive.status = AtaStatus.BSY | AtaStatus.DSC;
        this.transfer = Transfer.None;
        this.pending = false;
      }
    } else if (wasReset) {
      this.softReset();
    }
    this.updateIrq();
  }

  /** The end of a software reset: the signature of an ATA device (9.12) and diagnostic code 01h. */
  private softReset(): void {
    for (const drive of this.drives) {
      if (drive === null) continue;
      drive.status = AtaStatus.DRDY | AtaStatus.DSC;
      drive.error = 0x01;
      drive.multiple = 0;
      drive.updateIdentify();
    }
    this.setSignature();
    this.device = 0;
    this.transfer = Transfer.None;
  }

  private setSignature(): void {
    this.count = 1;
    this.lbaLow = 1;
    this.lbaMid = 0;
    this.lbaHigh = 0;
  }

  private readData(size: 1 | 2 | 4): number {
    if (this.transfer !== Transfer.In) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
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
    if (this.transfer !== Transfer.Out) return;
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
    if (this.transfer === Transfer.Out) {
      const sectors = this.bufferLength / SECTOR_SIZE;
      drive.disk.write(this.nextSector, this.buffer.subarray(0, this.bufferLength));
      this.nextSector += sectors;
      this.remaining -= sectors;
      if (this.remaining > 0) this.startBlock(drive);
      else this.finish(drive);
      // 9.7: the device interrupts after each block written, including the last.
      this.raise();
      return;
    }
    if (this.identifyTransfer || this.remaining <= 0) {
      this.finish(drive);
      return;
    }
    this.startBlock(drive);
    this.raise();
  }

  /** Loads (data-in) or opens (data-out) the next DRQ block. */
  private startBlock(drive: Drive): void {
    const sectors = Math.min(this.remaining, this.blockSectors);
    this.bufferLength = sectors * SECTOR_SIZE;
    this.bufferPosition = 0;
    if (this.transfer === Transfer.In) {
      drive.disk.read(this.nextSector, this.buffer.subarray(0, this.bufferLength));
      this.nextSector += sectors;
      this.remaining -= sectors;
    }
    drive.status = AtaStatus.DRDY | AtaStatus.DSC | AtaStatus.DRQ;
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

  private execute(command: number): void {
    const drive = this.selected;
    // QEMU: an absent device 1 ignores commands; nothing answers on an empty channel.
    if (drive === null) return;
    if (drive.status & AtaStatus.BSY) return;
    this.pending = false;
    this.updateIrq();
    this.transfer = Transfer.None;
    drive.error = 0;
    const C = AtaCommand;
    switch (command) {
      case C.IDENTIFY_DEVICE:
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
      case C.SET_FEATURES:
        // 8.37: transfer mode (03h, PIO modes only here), write cache and
        // read look-ahead on/off (02h/82h, AAh/55h), reverting to defaults (66h/CCh).
        switch (this.features) {
          case 0x03: {
            const mode = this.count >> 3;
            if (mode <= 1) this.complete(drive);
            else this.fail(drive, AtaError.ABRT);
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
        drive.disk.flush?.();
        this.complete(drive);
        return;
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
      case C.EXECUTE_DEVICE_DIAGNOSTIC:
        // 8.11 / 9.12: signature and diagnostic code 01h (device 0 passed, device 1 absent or passed).
        for (const d of this.drives) if (d) d.error = 0x01;
        this.setSignature();
        this.device &= ~DEVICE_DEV1;
        this.finish(drive);
        drive.error = 0x01;
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
        // RECALIBRATE is any 1xh (obsolete, still answered by disks and SeaBIOS-era BIOSes).
        if ((command & 0xf0) === C.RECALIBRATE) {
          this.complete(drive);
          return;
        }
        // NOP (8.20), IDENTIFY PACKET DEVICE on an ATA device and unknown commands: ABRT.
        this.fail(drive, AtaError.ABRT);
    }
  }

  private readWrite(drive: Drive, command: number): void {
    const C = AtaCommand;
    const ext =
      command === C.READ_SECTORS_EXT ||
      command === C.WRITE_SECTORS_EXT ||
      command === C.READ_MULTIPLE_EXT ||
      command === C.WRITE_MULTIPLE_EXT ||
      command === C.READ_VERIFY_SECTORS_EXT;
    const multiple =
      command === C.READ_MULTIPLE ||
      command === C.READ_MULTIPLE_EXT ||
      command === C.WRITE_MULTIPLE ||
      command === C.WRITE_MULTIPLE_EXT;
    const write =
      command === C.WRITE_SECTORS ||
      command === C.WRITE_SECTORS_EXT ||
      command === C.WRITE_MULTIPLE ||
      command === C.WRITE_MULTIPLE_EXT;
    const verify = command === C.READ_VERIFY_SECTORS || command === C.READ_VERIFY_SECTORS_EXT;
    // A count of 0 means 256 sectors (65536 for the 48-bit commands).
    let count = ext ? (this.hobCount << 8) | this.count : this.count;
    if (count === 0) count = ext ? 65536 : 256;
    const lba = ext ? this.address48() : this.address28(drive);
    // 8.22/8.23: READ/WRITE MULTIPLE before SET MULTIPLE MODE abort.
    if ((multiple && drive.multiple === 0) || (write && drive.disk.readOnly)) {
      this.fail(drive, AtaError.ABRT);
      return;
    }
    if (lba < 0 || lba + count > drive.disk.sectors) {
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
    this.transfer = write ? Transfer.Out : Transfer.In;
    this.startBlock(drive);
    // Data-in: interrupt when the first block is ready; data-out: the host writes the first block unprompted (9.7).
    if (!write) this.raise();
  }
}

/** PIIX3 IDETIM registers 0x40-0x43: bit 15 enables the channel's decode (datasheet 2.3.12). */
const IDETIM = 0x40;

export class IdeController {
  /** PCI function 01.1 (`PciHost.addFunction(1, 1, controller.pci)`). */
  readonly pci: PciFunction;
  readonly primary: IdeChannel;
  readonly secondary: IdeChannel;

  constructor(options: IdeControllerOptions) {
    const disks = options.disks ?? [];
    if (disks.length > 4)
      throw new RangeError(`the IDE controller has 4 device slots (hda-hdd), not ${disks.length}`);
    const model = options.model ?? "KUMO HARDDISK";
    this.primary = new IdeChannel(disks.slice(0, 2), (level) => options.irq(14, level), model, 0);
    this.secondary = new IdeChannel(disks.slice(2, 4), (level) => options.irq(15, level), model, 2);
    // 82371SB function 1: class 01 01 80 (IDE, legacy mode, bus-master capable), no interrupt pin.
    this.pci = new PciFunction({ vendor: 0x8086, device: 0x7010, classCode: 0x010180 });
    // IDETIM primary and secondary: decode enabled, as QEMU's piix_ide_reset leaves them.
    this.pci.config[IDETIM + 1] = 0x80;
    this.pci.config[IDETIM + 3] = 0x80;
    for (let r = IDETIM; r < IDETIM + 4; r++) this.pci.writable[r] = 0xff;
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
