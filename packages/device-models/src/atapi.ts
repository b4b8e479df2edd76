/**
 * The packet commands of an ATAPI CD-ROM drive: what the drive answers to
 * a 12-byte command packet (SCSI Primary Commands SPC-3 and Multi-Media
 * Commands MMC-5, as a read-only CD/DVD-ROM drive implements them). The
 * IDE channel (ide.ts) carries the packets and the data (ATA/ATAPI-6 9.8,
 * the PACKET command protocol); this file decides the answer:
 *
 *   TEST UNIT READY 00h, REQUEST SENSE 03h, INQUIRY 12h, START STOP UNIT 1Bh,
 *   PREVENT ALLOW MEDIUM REMOVAL 1Eh, READ CAPACITY 25h, READ(10) 28h,
 *   SEEK(10) 2Bh, READ TOC/PMA/ATIP 43h (formats 0 and 1), GET CONFIGURATION
 *   46h, GET EVENT STATUS NOTIFICATION 4Ah (polled, media class), READ DISC
 *   INFORMATION 51h, MODE SENSE(10) 5Ah (pages 01h, 0Eh, 2Ah, current
 *   values), READ(12) A8h, SET CD SPEED BBh, MECHANISM STATUS BDh and
 *   READ CD BEh (user data only).
 *
 * Anything else ends with CHECK CONDITION, sense ILLEGAL REQUEST / INVALID
 * COMMAND OPERATION CODE (SPC-3 4.5.6), and the commands that need a medium
 * report NOT READY / MEDIUM NOT PRESENT without one (MMC-5 4.1.8), the set
 * QEMU's hw/ide/atapi.c answers too (the oracle of the tests). Sectors are
 * 2048 bytes (Mode 1 / DVD user data) over a medium of 512-byte sectors.
 */
import type { IdeDisk } from "./ide";

/** SPC-3 4.5.6 table 27: sense keys. */
export const SenseKey = {
  NO_SENSE: 0x0,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
} as const;

/** SPC-3 annex D: additional sense codes used here (ASCQ 0 unless noted). */
export const AdditionalSense = {
  UNRECOVERED_READ_ERROR: 0x11,
  INVALID_OPCODE: 0x20,
  LBA_OUT_OF_RANGE: 0x21,
  INVALID_FIELD_IN_CDB: 0x24,
  MEDIUM_MAY_HAVE_CHANGED: 0x28,
  SAVING_PARAMETERS_NOT_SUPPORTED: 0x39,
  MEDIUM_NOT_PRESENT: 0x3a,
  INCOMPATIBLE_FORMAT: 0x30,
  MEDIUM_REMOVAL_PREVENTED: 0x53,
} as const;

/** Operation codes (SPC-3 / MMC-5). */
export const AtapiCommand = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  INQUIRY: 0x12,
  START_STOP_UNIT: 0x1b,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY: 0x25,
  READ_10: 0x28,
  SEEK_10: 0x2b,
  READ_TOC: 0x43,
  GET_CONFIGURATION: 0x46,
  GET_EVENT_STATUS_NOTIFICATION: 0x4a,
  READ_DISC_INFORMATION: 0x51,
  MODE_SENSE_10: 0x5a,
  READ_12: 0xa8,
  SET_CD_SPEED: 0xbb,
  MECHANISM_STATUS: 0xbd,
  READ_CD: 0xbe,
} as const;

export const CD_SECTOR_SIZE = 2048;
/** The largest CD (MMC: 99 minutes at 75 sectors a second); bigger media are DVDs (profile 0010h). */
const CD_MAX_SECTORS = 99 * 60 * 75;
/** MMC-5 5.3.1 profiles. */
const PROFILE_CD_ROM = 0x0008;
const PROFILE_DVD_ROM = 0x0010;

/** The outcome of one packet, read by the channel after `execute`. */
export const AtapiOutcome = {
  /** GOOD status, no data. */
  Ok: 0,
  /** GOOD status after `dataLength` bytes of `reply` (already cut to the allocation length). */
  Data: 1,
  /** GOOD status after `readSectors` 2048-byte sectors from `readLba` (the channel reads them). */
  Read: 2,
  /** CHECK CONDITION: the sense is set (`senseKey`, `asc`). */
  Error: 3,
} as const;

/** The drive's own state (plain, JSON-safe): [senseKey, asc, ascq, locked, trayOpen, mediaChanged]. */
export type AtapiState = readonly number[];

export class AtapiDrive {
  senseKey = 0;
  asc = 0;
  ascq = 0;
  /** PREVENT ALLOW MEDIUM REMOVAL: the tray cannot be opened. */
  locked = false;
  trayOpen = false;
  /** GET EVENT STATUS NOTIFICATION reports NEW MEDIA once after power-on (QEMU does the same). */
  newMedia = true;
  /** The reply of the last Data outcome (at most 512 bytes here). */
  readonly reply = new Uint8Array(512);
  dataLength = 0;
  readLba = 0;
  readSectors = 0;

  constructor(
    readonly medium: IdeDisk | null,
    readonly model: string,
  ) {}

  /** Whole 2048-byte sectors of the medium (0 without one or with the tray open). */
  get capacity(): number {
    if (this.medium === null || this.trayOpen) return 0;
    return Math.floor(this.medium.sectors / 4);
  }

  state(): AtapiState {
    return [
      this.senseKey,
      this.asc,
      this.ascq,
      this.locked ? 1 : 0,
      this.trayOpen ? 1 : 0,
      this.newMedia ? 1 : 0,
    ];
  }

  fromState(state: AtapiState): void {
    this.senseKey = state[0] & 0x0f;
    this.asc = state[1] & 0xff;
    this.ascq = state[2] & 0xff;
    this.locked = state[3] === 1;
    this.trayOpen = state[4] === 1;
    this.newMedia = state[5] === 1;
  }

  /** Power-on or DEVICE RESET: the sense is cleared; the lock and tray stay (MMC-5 4.1.6). */
  reset(): void {
    this.senseKey = 0;
    this.asc = 0;
    this.ascq = 0;
  }

  /** Sets CHECK CONDITION's sense (SPC-3 4.5). */
  fail(senseKey: number, asc: number, ascq = 0): number {
    this.senseKey = senseKey;
    this.asc = asc;
    this.ascq = ascq;
    return AtapiOutcome.Error;
  }

  /** Runs one command packet; the result is an `AtapiOutcome` plus the fields it names. */
  execute(packet: Uint8Array): number {
    const C = AtapiCommand;
    const opcode = packet[0];
    const needsMedium =
      opcode === C.TEST_UNIT_READY ||
      opcode === C.READ_CAPACITY ||
      opcode === C.READ_10 ||
      opcode === C.READ_12 ||
      opcode === C.SEEK_10 ||
      opcode === C.READ_TOC ||
      opcode === C.READ_DISC_INFORMATION ||
      opcode === C.READ_CD;
    if (needsMedium && this.capacity === 0)
      return this.fail(SenseKey.NOT_READY, AdditionalSense.MEDIUM_NOT_PRESENT);
    // A command other than REQUEST SENSE starts with no sense (SPC-3 4.5.1: sense is for the previous command).
    if (opcode !== C.REQUEST_SENSE) this.reset();
    const reply = this.reply;
    switch (opcode) {
      case C.TEST_UNIT_READY:
      case C.SET_CD_SPEED:
        return AtapiOutcome.Ok;
      case C.REQUEST_SENSE: {
        // SPC-3 4.5.3 fixed format: 70h current error (bit 7 VALID as QEMU sets it), 10 more bytes.
        reply.fill(0, 0, 18);
        reply[0] = 0xf0;
        reply[2] = this.senseKey;
        reply[7] = 10;
        reply[12] = this.asc;
        reply[13] = this.ascq;
        this.reset();
        return this.data(18, packet[4]);
      }
      case C.INQUIRY: {
        // SPC-3 6.4.2 standard data: peripheral type 05h (CD/DVD), removable, 31 more bytes.
        if (packet[1] & 0x01)
          return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
        reply.fill(0, 0, 36);
        reply[0] = 0x05;
        reply[1] = 0x80;
        reply[2] = 0x00;
        reply[3] = 0x21; // response data format 1, as ATAPI drives (and QEMU) report
        reply[4] = 31;
        putAscii(reply, 8, 8, "KUMO");
        putAscii(reply, 16, 16, this.model);
        putAscii(reply, 32, 4, "1.0");
        return this.data(36, packet[4]);
      }
      case C.START_STOP_UNIT: {
        // SBC/MMC: LOEJ (bit 1) with START (bit 0) loads, without it ejects; power conditions are ignored.
        const start = (packet[4] & 1) !== 0;
        const loej = (packet[4] & 2) !== 0;
        if (packet[4] & 0xf0) return AtapiOutcome.Ok;
        if (loej) {
          if (!start && this.locked)
            return this.fail(
              this.medium === null ? SenseKey.ILLEGAL_REQUEST : SenseKey.NOT_READY,
              AdditionalSense.MEDIUM_REMOVAL_PREVENTED,
              2,
            );
          this.trayOpen = !start;
        }
        return AtapiOutcome.Ok;
      }
      case C.PREVENT_ALLOW_MEDIUM_REMOVAL:
        this.locked = (packet[4] & 1) !== 0;
        return AtapiOutcome.Ok;
      case C.READ_CAPACITY:
        // MMC-5 6.23: the last LBA and the block length.
        put32(reply, 0, this.capacity - 1);
        put32(reply, 4, CD_SECTOR_SIZE);
        return this.data(8, 8);
      case C.READ_10:
      case C.READ_12: {
        const lba = get32(packet, 2);
        const count = opcode === C.READ_10 ? (packet[7] << 8) | packet[8] : get32(packet, 6);
        return this.read(lba, count);
      }
      case C.READ_CD: {
        // MMC-5 6.19: expected sector type any (0) or Mode 1; only user data (byte 9 = 10h) is returned.
        const lba = get32(packet, 2);
        const count = (packet[6] << 16) | (packet[7] << 8) | packet[8];
        const fields = packet[9] & 0xf8;
        if (fields === 0 || count === 0) return AtapiOutcome.Ok;
        if (fields !== 0x10)
          return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
        return this.read(lba, count);
      }
      case C.SEEK_10:
        if (get32(packet, 2) >= this.capacity)
          return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.LBA_OUT_OF_RANGE);
        return AtapiOutcome.Ok;
      case C.READ_TOC:
        return this.readToc(packet);
      case C.GET_CONFIGURATION:
        return this.getConfiguration(packet);
      case C.GET_EVENT_STATUS_NOTIFICATION: {
        // MMC-5 6.6: polled mode only (bit 0); the media class (bit 4) is the one supported.
        if (!(packet[1] & 1))
          return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
        const allocation = (packet[7] << 8) | packet[8];
        reply.fill(0, 0, 8);
        reply[3] = 1 << 4; // supported classes: media
        if (packet[4] & (1 << 4)) {
          reply[1] = 6;
          reply[2] = 4; // media class
          reply[4] = this.newMedia && !this.trayOpen ? 2 : 0; // NewMedia or no change
          if (!this.trayOpen) this.newMedia = false;
          reply[5] = this.trayOpen ? 1 : this.capacity > 0 ? 2 : 0; // tray open / media present
          return this.data(8, allocation);
        }
        reply[1] = 2;
        reply[2] = 0x80; // NEA: no event of a requested class
        return this.data(4, allocation);
      }
      case C.READ_DISC_INFORMATION: {
        // MMC-5 6.22: one complete session with one track, finalized, unrestricted use.
        if (packet[1] & 7)
          return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
        reply.fill(0, 0, 34);
        reply[1] = 32;
        reply[2] = 0x0e;
        reply[3] = 1;
        reply[4] = 1;
        reply[5] = 1;
        reply[6] = 1;
        reply[7] = 0x20;
        return this.data(34, (packet[7] << 8) | packet[8]);
      }
      case C.MODE_SENSE_10:
        return this.modeSense(packet);
      case C.MECHANISM_STATUS:
        // MMC-5 6.11: no changer, one slot, no current LBA.
        reply.fill(0, 0, 8);
        reply[5] = 1;
        return this.data(8, (packet[8] << 8) | packet[9]);
      default:
        return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_OPCODE);
    }
  }

  private data(length: number, allocation: number): number {
    this.dataLength = Math.min(length, allocation);
    return this.dataLength === 0 ? AtapiOutcome.Ok : AtapiOutcome.Data;
  }

  private read(lba: number, count: number): number {
    if (count === 0) return AtapiOutcome.Ok;
    // MMC-5 6.15: a range past the last sector is LOGICAL BLOCK ADDRESS OUT OF RANGE.
    if (lba + count > this.capacity)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.LBA_OUT_OF_RANGE);
    this.readLba = lba;
    this.readSectors = count;
    return AtapiOutcome.Read;
  }

  /** MMC-5 6.26 READ TOC/PMA/ATIP, format 0 (TOC) and 1 (session information) for one data track. */
  private readToc(packet: Uint8Array): number {
    const allocation = (packet[7] << 8) | packet[8];
    const msf = (packet[1] & 2) !== 0;
    const format = packet[2] & 0x0f || packet[9] >> 6;
    const reply = this.reply;
    if (format === 1) {
      reply.fill(0, 0, 12);
      reply[1] = 10;
      reply[2] = 1;
      reply[3] = 1;
      reply[5] = 0x14;
      reply[6] = 1;
      this.putAddress(8, 0, msf);
      return this.data(12, allocation);
    }
    if (format !== 0)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
    const start = packet[6];
    if (start > 1 && start !== 0xaa)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
    let length = 4;
    reply[2] = 1; // first and last track
    reply[3] = 1;
    if (start <= 1) {
      // Track 1: data track (control 4), Q sub-channel mode 1, at LBA 0.
      reply.fill(0, length, length + 8);
      reply[length + 1] = 0x14;
      reply[length + 2] = 1;
      this.putAddress(length + 4, 0, msf);
      length += 8;
    }
    // The lead-out (track AAh) at the end of the medium; ADR 1, control 6 as QEMU's cdrom_read_toc writes it.
    reply.fill(0, length, length + 8);
    reply[length + 1] = 0x16;
    reply[length + 2] = 0xaa;
    this.putAddress(length + 4, this.capacity, msf);
    length += 8;
    reply[0] = (length - 2) >> 8;
    reply[1] = (length - 2) & 0xff;
    return this.data(length, allocation);
  }

  /** An address as LBA or as MSF (minute, second, frame with the 150-frame pregap, MMC-5 4.2.3.3). */
  private putAddress(at: number, lba: number, msf: boolean): void {
    if (!msf) {
      put32(this.reply, at, lba);
      return;
    }
    const frames = lba + 150;
    this.reply[at] = 0;
    this.reply[at + 1] = Math.floor(frames / 4500);
    this.reply[at + 2] = Math.floor(frames / 75) % 60;
    this.reply[at + 3] = frames % 75;
  }

  /** MMC-5 6.6 GET CONFIGURATION: the profile list feature (0000h) with DVD-ROM and CD-ROM. */
  private getConfiguration(packet: Uint8Array): number {
    const allocation = (packet[7] << 8) | packet[8];
    if (packet[2] !== 0 || packet[3] !== 0)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
    const reply = this.reply;
    reply.fill(0, 0, 20);
    const capacity = this.capacity;
    const current =
      capacity === 0 ? 0 : capacity > CD_MAX_SECTORS ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
    reply[6] = current >> 8;
    reply[7] = current & 0xff;
    // Feature 0000h header: version 0, persistent and current, 8 bytes of profile descriptors.
    reply[10] = 0x03;
    reply[11] = 8;
    const profiles = [PROFILE_DVD_ROM, PROFILE_CD_ROM];
    for (let i = 0; i < profiles.length; i++) {
      reply[12 + 4 * i] = profiles[i] >> 8;
      reply[13 + 4 * i] = profiles[i] & 0xff;
      reply[14 + 4 * i] = profiles[i] === current ? 1 : 0;
    }
    put32(reply, 0, 20 - 4);
    return this.data(20, allocation);
  }

  /** MMC-5 6.13 / 7: MODE SENSE(10), current values of pages 01h, 0Eh and 2Ah. */
  private modeSense(packet: Uint8Array): number {
    const allocation = (packet[7] << 8) | packet[8];
    const control = packet[2] >> 6;
    const page = packet[2] & 0x3f;
    if (control === 3)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.SAVING_PARAMETERS_NOT_SUPPORTED);
    if (control !== 0)
      return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
    const reply = this.reply;
    let length: number;
    switch (page) {
      case 0x01: // read/write error recovery: read retry count 5
        length = 16;
        reply.fill(0, 0, length);
        reply[8] = 0x01;
        reply[9] = 6;
        reply[11] = 5;
        break;
      case 0x0e: // CD audio control: volumes 0
        length = 24;
        reply.fill(0, 0, length);
        reply[8] = 0x0e;
        reply[9] = 14;
        break;
      case 0x2a: {
        // CD/DVD capabilities and mechanical status (MMC-3 6.3.11): reads CD-R/RW and DVD-ROM,
        // plays audio (Linux's sr checks it), tray loading, lock state, 4x speed.
        length = 30;
        reply.fill(0, 0, length);
        reply[8] = 0x2a;
        reply[9] = 20;
        reply[10] = 0x3b;
        reply[12] = 0x71;
        reply[13] = 0x60;
        reply[14] = 0x29 | (this.locked ? 0x02 : 0);
        reply[16] = 704 >> 8;
        reply[17] = 704 & 0xff;
        reply[19] = 2;
        reply[20] = 512 >> 8;
        reply[22] = 704 >> 8;
        reply[23] = 704 & 0xff;
        break;
      }
      default:
        return this.fail(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB);
    }
    // Mode parameter header (10): data length, medium type 70h (no disc / door closed, as QEMU).
    reply[0] = (length - 2) >> 8;
    reply[1] = (length - 2) & 0xff;
    reply[2] = 0x70;
    return this.data(length, allocation);
  }
}

function put32(buffer: Uint8Array, at: number, value: number): void {
  buffer[at] = value >>> 24;
  buffer[at + 1] = (value >>> 16) & 0xff;
  buffer[at + 2] = (value >>> 8) & 0xff;
  buffer[at + 3] = value & 0xff;
}

function get32(buffer: Uint8Array, at: number): number {
  return (
    ((buffer[at] << 24) | (buffer[at + 1] << 16) | (buffer[at + 2] << 8) | buffer[at + 3]) >>> 0
  );
}

/** SPC-3 4.4.1: ASCII fields, left-aligned, padded with spaces. */
function putAscii(buffer: Uint8Array, at: number, length: number, text: string): void {
  for (let i = 0; i < length; i++)
    buffer[at + i] = i < text.length ? text.charCodeAt(i) & 0x7f : 0x20;
}
