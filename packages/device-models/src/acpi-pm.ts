/**
 * The ACPI fixed hardware of a PC in the layout of the Intel 82371AB PIIX4
 * power management I/O block (PIIX4 datasheet 7.2 "Power Management
 * Registers", PMBA-relative; the same layout as Xen's in-hypervisor PM
 * timer, xen/arch/x86/hvm/pmtimer.c, and QEMU's hw/acpi/piix4.c):
 *
 *   offset 0  PM1_STS  (16 bits)  TMR_STS 0, GBL_STS 5, PWRBTN_STS 8, SLPBTN_STS 9,
 *                                 RTC_STS 10, WAK_STS 15; write 1 to clear
 *   offset 2  PM1_EN   (16 bits)  TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, SLPBTN_EN 9, RTC_EN 10
 *   offset 4  PM1_CNT  (16 bits)  SCI_EN 0, BM_RLD 1, GBL_RLS 2 (write-only),
 *                                 SLP_TYP 12:10, SLP_EN 13 (write-only)
 *   offset 8  PM_TMR   (32 bits)  the power management timer, read-only
 *
 * (ACPI 6.4 sections 4.8.3.1 PM1 event grouping, tables 4.16-4.18, 4.8.3.2
 * PM1 control, table 4.19, 4.8.3.3 power management timer.)
 *
 * The PM timer counts at 3.579545 MHz from the VMM's clock (as the PIT and
 * RTC do: nothing ticks, the count is computed from `now()`); it is 24 bits
 * wide, or 32 with `timer32` (the FADT's TMR_VAL_EXT flag must then say
 * so). TMR_STS is set each time the counter's top bit changes; with TMR_EN
 * that raises the SCI, timed through `clock.schedule`.
 *
 * The sleep half reuses `AcpiSleep`: the high bytes of PM1_STS and PM1_CNT
 * are bit for bit the hardware-reduced sleep status and sleep control
 * registers (WAK_STS bit 15 = status bit 7; SLP_TYP 12:10 and SLP_EN 13 =
 * control bits 4:2 and 5, ACPI 6.4 tables 4.19/4.20 against 4.37/4.38),
 * so an SLP_EN write reaches the same `sleep(sleepType)` callback a PVH
 * platform uses.
 *
 * SCI: a level, high while SCI_EN is set and any enabled fixed event has
 * its status bit set (ACPI 6.4 4.8.3.1; with SCI_EN clear a PIIX4 sends
 * the events to SMI instead, of which this device has none).
 *
 * Access sizes as Xen answers them (pmtimer.c handle_evt_io, handle_pmt_io):
 * PM1_STS/EN/CNT take any size at any offset, byte by byte, as byte lanes
 * of the 16-bit registers; PM_TMR answers only a 4-byte read at offset 8:
 * other reads there return all ones and writes are ignored. Offsets 6-7
 * (reserved) read 0.
 */
import { AcpiSleep, AcpiSleepOffset, type AcpiSleepState } from "./acpi-sleep";

/** The PM timer's frequency in Hz (ACPI 6.4 4.8.3.3; Linux PMTMR_TICKS_PER_SEC). */
export const PM_TIMER_FREQUENCY = 3579545;
/** The size of the register window (PM1 event, PM1 control, PM timer). */
export const ACPI_PM_WINDOW_SIZE = 12;

/** Register offsets within the window. */
export const AcpiPmOffset = {
  PM1_STATUS: 0,
  PM1_ENABLE: 2,
  PM1_CONTROL: 4,
  PM_TIMER: 8,
} as const;

/** PM1 status/enable bits (ACPI 6.4 tables 4.16, 4.17). */
export const Pm1Event = {
  TIMER: 1 << 0,
  GLOBAL: 1 << 5,
  POWER_BUTTON: 1 << 8,
  SLEEP_BUTTON: 1 << 9,
  RTC: 1 << 10,
  WAKE: 1 << 15,
} as const;

/** PM1 control bits (ACPI 6.4 table 4.18). */
export const Pm1Control = {
  SCI_ENABLE: 1 << 0,
  BUS_MASTER_RELOAD: 1 << 1,
  GLOBAL_RELEASE: 1 << 2,
  SLEEP_TYPE_SHIFT: 10,
  SLEEP_ENABLE: 1 << 13,
} as const;

/** Status bits this device keeps (WAK_STS lives in the AcpiSleep). */
const STATUS_BITS =
  Pm1Event.TIMER | Pm1Event.GLOBAL | Pm1Event.POWER_BUTTON | Pm1Event.SLEEP_BUTTON | Pm1Event.RTC;
/** Enable bits a PIIX4 implements (PMEN: TMROF_EN 0, GBL_EN 5, PWRBTN_EN 8, RTC_EN 10) plus SLPBTN_EN. */
const ENABLE_BITS = STATUS_BITS;
/** PM1_CNT bits that hold a value (SCI_EN, BM_RLD); GBL_RLS and SLP_EN are write-only. */
const CONTROL_BITS = Pm1Control.SCI_ENABLE | Pm1Control.BUS_MASTER_RELOAD;

/** Time for the PM timer, from the VMM's clock (as `PitClock`). */
export interface AcpiPmClock {
  /** Now, in ns. */
  now(): number;
  /** Call `AcpiPm.timerExpired()` at `deadline` ns; Infinity cancels; each call replaces the last. */
  schedule(deadline: number): void;
}

export interface AcpiPmOptions {
  clock: AcpiPmClock;
  /** The SCI line's level (a PC wires it to ISA IRQ 9, level, active high). */
  sci?: (level: boolean) => void;
  /** SLP_EN written with SLP_TYP `sleepType` (see `AcpiSleepOptions.sleep`). */
  sleep(sleepType: number): void;
  /** A 32-bit PM timer (FADT TMR_VAL_EXT); default 24 bits as on a PIIX4. */
  timer32?: boolean;
  /**
   * SCI_EN at reset. A PIIX4 resets it to 0 and the firmware's SMI handler
   * sets it when the OS writes ACPI_ENABLE to SMI_CMD; a platform whose FADT
   * has SMI_CMD 0 is always in ACPI mode (ACPI 6.4 5.2.9, SMI_CMD) and
   * starts with it set. Default false.
   */
  sciEnabled?: boolean;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface AcpiPmState {
  readonly kind: "acpi-pm";
  readonly version: 1;
  /** PM1_STS without WAK_STS (which is in `sleep`). */
  readonly status: number;
  readonly enable: number;
  /** PM1_CNT's stored bits (SCI_EN, BM_RLD). */
  readonly control: number;
  /** The PM timer's count when saved (32 bits; the 24-bit timer reads its low 24). */
  readonly timer: number;
  readonly timer32: boolean;
  readonly sleep: AcpiSleepState;
}

export class AcpiPmStateError extends Error {
  override name = "AcpiPmStateError";
}

const TWO_32 = 4294967296;

/** PM timer ticks from clock 0 to `ns`, exactly: floor(ns * 3579545 / 1e9) without leaving 2^53. */
function ticksAt(ns: number): number {
  const seconds = Math.floor(ns / 1e9);
  return (
    seconds * PM_TIMER_FREQUENCY + Math.floor(((ns - seconds * 1e9) * PM_TIMER_FREQUENCY) / 1e9)
  );
}

/** The first ns at which ticksAt(ns) >= ticks. */
function nsAtTicks(ticks: number): number {
  const seconds = Math.floor(ticks / PM_TIMER_FREQUENCY);
  return (
    seconds * 1e9 + Math.ceil(((ticks - seconds * PM_TIMER_FREQUENCY) * 1e9) / PM_TIMER_FREQUENCY)
  );
}

export class AcpiPm {
  /** The sleep registers: the high bytes of PM1_STS (WAK_STS) and PM1_CNT (SLP_TYP, SLP_EN). */
  readonly sleep: AcpiSleep;
  private readonly clock: AcpiPmClock;
  private readonly onSci: (level: boolean) => void;
  private timer32: boolean;
  private status = 0;
  private enable = 0;
  private control: number;
  /** Counter = ticksAt(now) + offset (unwrapped; the register is its low 24 or 32 bits). */
  private offset = 0;
  /** The counter's top-bit period (2^23 or 2^31 ticks) index when TMR_STS was last brought up to date. */
  private timerPeriod = 0;
  private sciLevel = false;

  constructor(options: AcpiPmOptions) {
    this.clock = options.clock;
    this.onSci = options.sci ?? (() => {});
    this.timer32 = options.timer32 ?? false;
    this.control = options.sciEnabled ? Pm1Control.SCI_ENABLE : 0;
    this.sleep = new AcpiSleep({ sleep: options.sleep });
    this.timerPeriod = this.periodOf(this.count());
  }

  /** The SCI level now. */
  get sciAsserted(): boolean {
    return this.sciLevel;
  }

  private count(): number {
    return ticksAt(this.clock.now()) + this.offset;
  }

  private periodOf(count: number): number {
    return Math.floor(count / (this.timer32 ? 2147483648 : 8388608));
  }

  /** The PM_TMR register now. */
  timerValue(): number {
    const count = this.count();
    return this.timer32 ? count % TWO_32 : count % 16777216;
  }

  /**
   * Sets TMR_STS if the counter's top bit changed since the last look (ACPI
   * 6.4 4.8.3.3); true when that newly set it.
   */
  private catchUp(): boolean {
    const period = this.periodOf(this.count());
    if (period === this.timerPeriod) return false;
    this.timerPeriod = period;
    const was = this.status & Pm1Event.TIMER;
    this.status |= Pm1Event.TIMER;
    return was === 0;
  }

  /** Recomputes the SCI and, with TMR_EN, asks to be called at the next top-bit change. */
  private update(): void {
    const level =
      (this.control & Pm1Control.SCI_ENABLE) !== 0 &&
      (this.status & this.enable & ENABLE_BITS) !== 0;
    if (level !== this.sciLevel) {
      this.sciLevel = level;
      this.onSci(level);
    }
    if ((this.enable & Pm1Event.TIMER) !== 0 && (this.status & Pm1Event.TIMER) === 0) {
      const periodTicks = this.timer32 ? 2147483648 : 8388608;
      this.clock.schedule(nsAtTicks((this.timerPeriod + 1) * periodTicks - this.offset));
    } else {
      this.clock.schedule(Number.POSITIVE_INFINITY);
    }
  }

  /** The VMM calls this at the time asked through `clock.schedule` (early or twice is harmless). */
  timerExpired(): void {
    this.catchUp();
    this.update();
  }

  /**
   * The power button was pressed: sets PWRBTN_STS (an SCI if PWRBTN_EN),
   * as a PC's fixed-feature power button does (ACPI 6.4 4.8.2.2.1.1).
   */
  pressPowerButton(): void {
    this.status |= Pm1Event.POWER_BUTTON;
    this.update();
  }

  private readByte(offset: number): number {
    switch (offset) {
      case 0:
        // A read can see TMR_STS before the VMM's timer fires: raise the SCI with it.
        if (this.catchUp()) this.update();
        return this.status & 0xff;
      case 1:
        return ((this.status >>> 8) & 0xff) | (this.sleep.read(AcpiSleepOffset.STATUS, 1) & 0x80);
      case 2:
        return this.enable & 0xff;
      case 3:
        return (this.enable >>> 8) & 0xff;
      case 4:
        return this.control & 0xff;
      case 5:
        // SLP_TYP (bits 4:2 of this byte) reads back; SLP_EN reads 0.
        return this.sleep.read(AcpiSleepOffset.CONTROL, 1) & 0x1c;
      default:
        return 0;
    }
  }

  private writeByte(offset: number, value: number): void {
    switch (offset) {
      case 0:
        // Write 1 to clear (ACPI 6.4 4.8.3.1); bring TMR_STS up to date first so a clear is not undone.
        this.catchUp();
        this.status &= ~(value & STATUS_BITS & 0xff);
        return;
      case 1:
        this.status &= ~((value << 8) & STATUS_BITS);
        if ((value & 0x80) !== 0) this.sleep.write(AcpiSleepOffset.STATUS, 1, 0x80);
        return;
      case 2:
        this.enable = (this.enable & 0xff00) | (value & ENABLE_BITS & 0xff);
        return;
      case 3:
        this.enable = (this.enable & 0xff) | ((value << 8) & ENABLE_BITS);
        return;
      case 4:
        // GBL_RLS (bit 2) would signal the BIOS through SMI: there is none to signal.
        this.control = value & CONTROL_BITS;
        return;
      case 5:
        // SLP_TYP and SLP_EN: the hardware-reduced sleep control register's layout.
        this.sleep.write(AcpiSleepOffset.CONTROL, 1, value & 0x3c);
        return;
      default:
        return;
    }
  }

  /** Reads `size` bytes at `offset` of the window. */
  read(offset: number, size: 1 | 2 | 4): number {
    if (offset >= AcpiPmOffset.PM_TIMER) {
      // Only a whole 32-bit read of PM_TMR is answered (Xen handle_pmt_io).
      if (offset === AcpiPmOffset.PM_TIMER && size === 4) return this.timerValue();
      return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    }
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  /** Writes `size` bytes at `offset` of the window (PM_TMR is read-only). */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset >= AcpiPmOffset.PM_TIMER) return;
    for (let i = 0; i < size && offset + i < AcpiPmOffset.PM_TIMER; i++)
      this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
    this.update();
  }

  state(): AcpiPmState {
    if (this.catchUp()) this.update();
    return {
      kind: "acpi-pm",
      version: 1,
      status: this.status,
      enable: this.enable,
      control: this.control,
      timer: this.count() % TWO_32,
      timer32: this.timer32,
      sleep: this.sleep.state(),
    };
  }

  fromState(state: AcpiPmState): void {
    if (state === null || typeof state !== "object" || state.kind !== "acpi-pm")
      throw new AcpiPmStateError('not an ACPI PM state (kind must be "acpi-pm")');
    if (state.version !== 1)
      throw new AcpiPmStateError(
        `ACPI PM state version ${state.version} is not supported (expected 1)`,
      );
    const bits = (name: "status" | "enable" | "control", mask: number) => {
      const value = state[name];
      if (!Number.isInteger(value) || (value & ~mask) !== 0)
        throw new AcpiPmStateError(
          `ACPI PM state field ${name} must be an integer within 0x${mask.toString(16)}`,
        );
    };
    bits("status", STATUS_BITS);
    bits("enable", ENABLE_BITS);
    bits("control", CONTROL_BITS);
    if (!Number.isInteger(state.timer) || state.timer < 0 || state.timer >= TWO_32)
      throw new AcpiPmStateError("ACPI PM state field timer must be a 32-bit unsigned integer");
    if (typeof state.timer32 !== "boolean")
      throw new AcpiPmStateError("ACPI PM state field timer32 must be a boolean");
    this.sleep.fromState(state.sleep);
    this.status = state.status;
    this.enable = state.enable;
    this.control = state.control;
    this.timer32 = state.timer32;
    // The counter continues from the saved count on this clock.
    this.offset = state.timer - ticksAt(this.clock.now());
    this.timerPeriod = this.periodOf(this.count());
    this.update();
  }
}
