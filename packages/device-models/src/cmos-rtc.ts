/**
 * The PC's CMOS real-time clock (Motorola MC146818A datasheet; the same
 * registers on every PC chipset since the AT): index port 0x70 (bit 7 masks
 * NMI), data port 0x71, 14 clock registers and 114 bytes of NVRAM.
 *
 * Modelled: seconds/minutes/hours/day of week/date/month/year in BCD or
 * binary (register B DM), 12- or 24-hour mode (register B 24/12: bit 7 of
 * the hour is PM in 12-hour mode), the alarm bytes with "don't care" values
 * 0xC0-0xFF, SET (time frozen for the guest to write it), register A's
 * update-in-progress bit (high for the last 244 us of every second, the
 * datasheet's tBUC), the periodic rate RS3-RS0, the periodic, alarm and
 * update-ended flags of register C with IRQF and their interrupt on IRQ 8
 * (register C is cleared by a read, which also drops the line), register D's
 * valid-RAM bit, and the NVRAM with the bytes a PC BIOS reads (memory sizes,
 * century). Not modelled: daylight saving (DSE is stored only), the
 * square-wave output, the divider chain reset (DV2-0 are stored; the clock
 * always runs), the day of week as its own counter (it follows the date).
 *
 * Time comes from the injected clock (ns) plus the wall time the VMM gives
 * at construction; interrupts are timed through `clock.schedule` /
 * `timerExpired()` like the PIT and the local APIC.
 */

import type { PitClock } from "./pit-8254";

export type RtcClock = PitClock;

/** The MC146818A's register indexes (datasheet figure 3) and the PC's NVRAM bytes (IBM AT BIOS). */
export const CmosRegister = {
  Seconds: 0x00,
  SecondsAlarm: 0x01,
  Minutes: 0x02,
  MinutesAlarm: 0x03,
  Hours: 0x04,
  HoursAlarm: 0x05,
  DayOfWeek: 0x06,
  DayOfMonth: 0x07,
  Month: 0x08,
  Year: 0x09,
  A: 0x0a,
  B: 0x0b,
  C: 0x0c,
  D: 0x0d,
  /** Base memory in KiB, low/high (IBM AT; 640). */
  BaseMemoryLow: 0x15,
  BaseMemoryHigh: 0x16,
  /** Extended memory above 1 MiB in KiB, low/high (capped at 0xFFFF), and its copy at 0x30/0x31. */
  ExtendedMemoryLow: 0x17,
  ExtendedMemoryHigh: 0x18,
  ExtendedMemoryCopyLow: 0x30,
  ExtendedMemoryCopyHigh: 0x31,
  /** The century in BCD (IBM PS/2; ACPI FADT CENTURY points here). */
  Century: 0x32,
  /** Memory above 16 MiB below 4 GiB in 64 KiB units, low/high (Bochs/SeaBIOS CMOS_MEM_EXTMEM2). */
  Memory16MLow: 0x34,
  Memory16MHigh: 0x35,
  /** Memory above 4 GiB in 64 KiB units, three bytes (SeaBIOS CMOS_MEM_HIGHMEM). */
  MemoryHighLow: 0x5b,
  MemoryHighMiddle: 0x5c,
  MemoryHighHigh: 0x5d,
} as const;

const A_UIP = 0x80;
const B_SET = 0x80;
const B_PIE = 0x40;
const B_AIE = 0x20;
const B_UIE = 0x10;
const B_DM_BINARY = 0x04;
const B_24H = 0x02;
const C_IRQF = 0x80;
const C_PF = 0x40;
const C_AF = 0x20;
const C_UF = 0x10;
const D_VRT = 0x80;
/** Update cycle time tBUC: UIP rises this long before the update (datasheet "UIP" note, 244 us). */
const UPDATE_WARNING_NS = 244_000;
const SECOND_NS = 1e9;

export interface CmosRtcOptions {
  clock: RtcClock;
  /** The wall time (ms since 1970, UTC) at clock time `clock.now()` now; default `Date.now()`. */
  wallTimeMs?: number;
  /** IRQ 8 line level (IRQF). */
  irq?: (level: boolean) => void;
  /** Guest RAM in bytes, for the BIOS memory-size bytes (see `setMemorySize`). */
  memorySize?: number;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface CmosRtcState {
  readonly kind: "cmos-rtc";
  readonly version: 1;
  /** The 128 bytes (clock bytes as last computed; NVRAM). */
  readonly bytes: readonly number[];
  readonly index: number;
  readonly nmiMasked: boolean;
  /** Seconds since 1970 (UTC) at clock time `baseNs`. */
  readonly baseSeconds: number;
  readonly baseNs: number;
  /** Clock time of the last flag update. */
  readonly checkedNs: number;
}

export class CmosRtcStateError extends Error {
  override name = "CmosRtcStateError";
}

function toBcd(value: number): number {
  return ((value / 10) | 0) * 16 + (value % 10);
}

function fromBcd(value: number): number {
  return (value >> 4) * 10 + (value & 0x0f);
}

export class CmosRtc {
  private readonly clock: RtcClock;
  private readonly irqLine: ((level: boolean) => void) | undefined;
  private bytes = new Uint8Array(128);
  private index = 0;
  private nmiMasked = false;
  private baseSeconds: number;
  private baseNs: number;
  private checkedNs: number;
  private irqLevel = false;

  constructor(options: CmosRtcOptions) {
    this.clock = options.clock;
    this.irqLine = options.irq;
    const now = this.clock.now();
    const wall = options.wallTimeMs ?? Date.now();
    this.baseSeconds = Math.floor(wall / 1000);
    this.baseNs = now - (wall - this.baseSeconds * 1000) * 1e6;
    this.checkedNs = now;
    // Power-on values a BIOS leaves: 32.768 kHz divider and 1024 Hz rate (0x26), 24-hour BCD.
    this.bytes[CmosRegister.A] = 0x26;
    this.bytes[CmosRegister.B] = B_24H;
    this.bytes[CmosRegister.D] = D_VRT;
    this.bytes[CmosRegister.Century] = toBcd(Math.floor(this.currentDate().getUTCFullYear() / 100));
    this.setMemorySize(options.memorySize ?? 0);
  }

  /** Whether the last write to port 0x70 set bit 7 (NMI disabled on a PC). */
  get nmiDisabled(): boolean {
    return this.nmiMasked;
  }

  /**
   * Fills the memory-size bytes a PC BIOS reads (SeaBIOS src/fw/paravirt.c,
   * Bochs rombios): 640 KiB base, KiB above 1 MiB (capped at 0xFFFF) at
   * 0x17/0x18 and 0x30/0x31, 64 KiB units above 16 MiB at 0x34/0x35, and
   * above 4 GiB at 0x5B-0x5D. `belowFourGiB` is the RAM below the PCI hole.
   */
  setMemorySize(belowFourGiB: number, aboveFourGiB = 0): void {
    const b = this.bytes;
    b[CmosRegister.BaseMemoryLow] = 640 & 0xff;
    b[CmosRegister.BaseMemoryHigh] = 640 >> 8;
    const extendedKiB = Math.min(0xffff, Math.max(0, Math.floor((belowFourGiB - 0x100000) / 1024)));
    b[CmosRegister.ExtendedMemoryLow] = b[CmosRegister.ExtendedMemoryCopyLow] = extendedKiB & 0xff;
    b[CmosRegister.ExtendedMemoryHigh] = b[CmosRegister.ExtendedMemoryCopyHigh] = extendedKiB >> 8;
    const above16M = Math.min(0xffff, Math.max(0, Math.floor((belowFourGiB - 0x1000000) / 65536)));
    b[CmosRegister.Memory16MLow] = above16M & 0xff;
    b[CmosRegister.Memory16MHigh] = above16M >> 8;
    const high = Math.floor(aboveFourGiB / 65536);
    b[CmosRegister.MemoryHighLow] = high & 0xff;
    b[CmosRegister.MemoryHighMiddle] = (high >> 8) & 0xff;
    b[CmosRegister.MemoryHighHigh] = (high >> 16) & 0xff;
  }

  /** Port 0x70 at offset 0, port 0x71 at offset 1; byte-wide (wider accesses cover the next port). */
  read(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
  }

  /** The VMM calls this at the time asked through `clock.schedule` (early or twice is harmless). */
  timerExpired(): void {
    this.catchUp();
  }

  private readByte(offset: number): number {
    // The index port is write-only on the PC; reads float.
    if (offset !== 1) return 0xff;
    const index = this.index;
    this.catchUp();
    if (index < CmosRegister.A) return this.readClock(index);
    if (index === CmosRegister.A) {
      const a = this.bytes[CmosRegister.A] & 0x7f;
      return this.updateInProgress() ? a | A_UIP : a;
    }
    if (index === CmosRegister.C) {
      // Reading C clears every flag and the interrupt (datasheet register C).
      const c = this.bytes[CmosRegister.C];
      this.bytes[CmosRegister.C] = 0;
      this.report();
      return c;
    }
    return this.bytes[index];
  }

  private writeByte(offset: number, value: number): void {
    if (offset === 0) {
      this.index = value & 0x7f;
      this.nmiMasked = (value & 0x80) !== 0;
      return;
    }
    if (offset !== 1) return;
    const index = this.index;
    this.catchUp();
    if (index < CmosRegister.A) {
      this.writeClock(index, value);
    } else if (index === CmosRegister.A) {
      // UIP is read-only.
      this.bytes[index] = value & 0x7f;
    } else if (index === CmosRegister.B) {
      const was = this.bytes[index];
      if (!(was & B_SET) && value & B_SET) {
        // Freeze at the current second: the base becomes now.
        const now = this.clock.now();
        this.baseSeconds = this.seconds(now);
        this.baseNs = now;
      }
      // Setting SET clears UIE (datasheet register B, "SET").
      this.bytes[index] = value & B_SET ? value & ~B_UIE : value;
      if (was & B_SET && !(value & B_SET)) {
        // The clock restarts from the time written while it was frozen, at a second's start.
        this.baseNs = this.clock.now();
      }
    } else if (index === CmosRegister.C || index === CmosRegister.D) {
      // Read-only.
    } else {
      this.bytes[index] = value;
    }
    this.report();
  }

  private seconds(now: number): number {
    return this.baseSeconds + Math.floor((now - this.baseNs) / SECOND_NS);
  }

  private currentDate(): Date {
    return new Date(this.seconds(this.frozenOrNow()) * 1000);
  }

  private frozenOrNow(): number {
    // With SET the clock stands still at the time of its base.
    return this.bytes[CmosRegister.B] & B_SET ? this.baseNs : this.clock.now();
  }

  private updateInProgress(): boolean {
    if (this.bytes[CmosRegister.B] & B_SET) return false;
    const into = (this.clock.now() - this.baseNs) % SECOND_NS;
    const fraction = into < 0 ? into + SECOND_NS : into;
    return fraction >= SECOND_NS - UPDATE_WARNING_NS;
  }

  private encode(value: number): number {
    return this.bytes[CmosRegister.B] & B_DM_BINARY ? value : toBcd(value);
  }

  private decode(value: number): number {
    return this.bytes[CmosRegister.B] & B_DM_BINARY ? value : fromBcd(value);
  }

  private encodeHour(hour: number): number {
    if (this.bytes[CmosRegister.B] & B_24H) return this.encode(hour);
    const twelve = hour % 12 === 0 ? 12 : hour % 12;
    return this.encode(twelve) | (hour >= 12 ? 0x80 : 0);
  }

  private decodeHour(value: number): number {
    if (this.bytes[CmosRegister.B] & B_24H) return this.decode(value);
    const twelve = this.decode(value & 0x7f) % 12;
    return value & 0x80 ? twelve + 12 : twelve;
  }

  private readClock(index: number): number {
    const date = this.currentDate();
    switch (index) {
      case CmosRegister.Seconds:
        return this.encode(date.getUTCSeconds());
      case CmosRegister.Minutes:
        return this.encode(date.getUTCMinutes());
      case CmosRegister.Hours:
        return this.encodeHour(date.getUTCHours());
      case CmosRegister.DayOfWeek:
        // 1 = Sunday (datasheet table 3).
        return this.encode(date.getUTCDay() + 1);
      case CmosRegister.DayOfMonth:
        return this.encode(date.getUTCDate());
      case CmosRegister.Month:
        return this.encode(date.getUTCMonth() + 1);
      case CmosRegister.Year:
        return this.encode(date.getUTCFullYear() % 100);
      default:
        // The alarm bytes are plain storage.
        return this.bytes[index];
    }
  }

  private writeClock(index: number, value: number): void {
    if (
      index === CmosRegister.SecondsAlarm ||
      index === CmosRegister.MinutesAlarm ||
      index === CmosRegister.HoursAlarm
    ) {
      this.bytes[index] = value;
      return;
    }
    const now = this.frozenOrNow();
    const date = new Date(this.seconds(now) * 1000);
    let year = date.getUTCFullYear();
    let month = date.getUTCMonth();
    let day = date.getUTCDate();
    let hours = date.getUTCHours();
    let minutes = date.getUTCMinutes();
    let seconds = date.getUTCSeconds();
    switch (index) {
      case CmosRegister.Seconds:
        seconds = this.decode(value);
        break;
      case CmosRegister.Minutes:
        minutes = this.decode(value);
        break;
      case CmosRegister.Hours:
        hours = this.decodeHour(value);
        break;
      case CmosRegister.DayOfMonth:
        day = this.decode(value);
        break;
      case CmosRegister.Month:
        month = this.decode(value) - 1;
        break;
      case CmosRegister.Year:
        year = fromBcd(this.bytes[CmosRegister.Century]) * 100 + this.decode(value);
        break;
      default:
        // Day of week: derived from the date here (see the file comment).
        return;
    }
    const written = Date.UTC(year, month, day, hours, minutes, seconds) / 1000;
    if (!Number.isFinite(written)) return;
    // Keep the phase within the second: the divider chain is not reset by a time write.
    this.baseNs += (this.seconds(now) - this.baseSeconds) * SECOND_NS;
    this.baseSeconds = written;
  }

  private periodNs(): number {
    const rate = this.bytes[CmosRegister.A] & 0x0f;
    if (rate === 0) return 0;
    // Datasheet table 5 at 32.768 kHz: RS 1-2 give 256/128 Hz, RS 3-15 give 32768 >> (RS - 1) Hz.
    const divider = rate <= 2 ? 1 << (rate + 6) : 1 << (rate - 1);
    return (divider * SECOND_NS) / 32768;
  }

  private alarmMatches(date: Date): boolean {
    const b = this.bytes;
    const match = (alarm: number, actual: number) => alarm >= 0xc0 || alarm === actual;
    return (
      match(b[CmosRegister.SecondsAlarm], this.encode(date.getUTCSeconds())) &&
      match(b[CmosRegister.MinutesAlarm], this.encode(date.getUTCMinutes())) &&
      match(b[CmosRegister.HoursAlarm], this.encodeHour(date.getUTCHours()))
    );
  }

  /** Sets the flags for what happened since the last look, then reports IRQ 8 and schedules the next event. */
  private catchUp(): void {
    const now = this.clock.now();
    const last = this.checkedNs;
    if (now > last) {
      const period = this.periodNs();
      if (period > 0 && Math.floor(now / period) > Math.floor(last / period))
        this.bytes[CmosRegister.C] |= C_PF;
      if (!(this.bytes[CmosRegister.B] & B_SET)) {
        const from = this.seconds(last);
        const to = this.seconds(now);
        if (to > from) {
          this.bytes[CmosRegister.C] |= C_UF;
          // Alarm: any second passed matching (at most one day of seconds checked).
          for (let second = Math.max(from + 1, to - 86399); second <= to; second++) {
            if (this.alarmMatches(new Date(second * 1000))) {
              this.bytes[CmosRegister.C] |= C_AF;
              break;
            }
          }
        }
      }
      this.checkedNs = now;
    }
    this.report();
  }

  private report(): void {
    const b = this.bytes[CmosRegister.B];
    let c = this.bytes[CmosRegister.C] & 0x70;
    if (c & b & (C_PF | C_AF | C_UF)) c |= C_IRQF;
    this.bytes[CmosRegister.C] = c;
    const level = (c & C_IRQF) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irqLine?.(level);
    }
    // Next event the guest enabled an interrupt for (flags alone are computed on read).
    const now = this.clock.now();
    let deadline = Number.POSITIVE_INFINITY;
    const period = this.periodNs();
    if (b & B_PIE && period > 0) deadline = (Math.floor(now / period) + 1) * period;
    if (b & (B_UIE | B_AIE) && !(b & B_SET)) {
      const next = this.baseNs + (this.seconds(now) - this.baseSeconds + 1) * SECOND_NS;
      deadline = Math.min(deadline, next);
    }
    this.clock.schedule(Math.ceil(deadline));
  }

  state(): CmosRtcState {
    return {
      kind: "cmos-rtc",
      version: 1,
      bytes: Array.from(this.bytes),
      index: this.index,
      nmiMasked: this.nmiMasked,
      baseSeconds: this.baseSeconds,
      baseNs: this.baseNs,
      checkedNs: this.checkedNs,
    };
  }

  fromState(state: CmosRtcState): void {
    if (state === null || typeof state !== "object" || state.kind !== "cmos-rtc")
      throw new CmosRtcStateError('not a CMOS RTC state (kind must be "cmos-rtc")');
    if (state.version !== 1)
      throw new CmosRtcStateError(
        `CMOS RTC state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.bytes) || state.bytes.length !== 128)
      throw new CmosRtcStateError("CMOS RTC state field bytes must hold 128 numbers");
    for (const key of ["index", "baseSeconds", "baseNs", "checkedNs"] as const) {
      if (typeof state[key] !== "number" || !Number.isFinite(state[key]))
        throw new CmosRtcStateError(`CMOS RTC state field ${key} must be a finite number`);
    }
    this.bytes = Uint8Array.from(state.bytes);
    this.index = state.index & 0x7f;
    this.nmiMasked = state.nmiMasked === true;
    this.baseSeconds = state.baseSeconds;
    this.baseNs = state.baseNs;
    this.checkedNs = state.checkedNs;
    this.irqLevel = false;
    this.report();
  }
}
