/**
 * The PC's 8254 programmable interval timer (Intel 8254 datasheet, order
 * 231164) at ports 0x40-0x43, clocked at 1.193182 MHz (Linux PIT_TICK_RATE),
 * with the speaker/gate port 0x61 of the PC/AT: counter 0 drives IRQ 0,
 * counter 1 is the old DRAM refresh timer, counter 2 feeds the speaker and
 * its gate and output are in port 0x61 (bit 0 gate, bit 1 speaker data,
 * bit 4 refresh toggle, bit 5 counter 2 output).
 *
 * Counts are computed from the injected clock, not ticked: a counter is its
 * reload value and the time it was loaded. Modelled: the six modes, LSB /
 * MSB / LSB-then-MSB access, counter latch and read-back (count and
 * status), gates (counter 2's through port 0x61; 0 and 1 are wired high),
 * and counter 0's output as edges on `irq(level)` timed through the clock's
 * `schedule`, with missed periods collapsed into one edge. Not modelled:
 * BCD counting (the BCD bit is stored and reported; counts are binary),
 * mode 0/4 counting pause while the gate is low, audio.
 */

/** The input clock in Hz (Linux include/linux/timex.h PIT_TICK_RATE). */
export const PIT_FREQUENCY = 1193182;

/** Time for the PIT, from the VMM's clock (as `LocalApicClock`). */
export interface PitClock {
  now(): number;
  /** Call `Pit8254.timerExpired()` at `deadline` ns; Infinity cancels; each call replaces the last. */
  schedule(deadline: number): void;
}

export interface Pit8254Options {
  clock: PitClock;
  /** IRQ 0 line level (counter 0's OUT). */
  irq?: (level: boolean) => void;
}

interface Counter {
  /** Reload value; 0 stands for 65536 (2^16 in binary mode). */
  reload: number;
  /** ns when counting started from `reload`; -1 when not counting (waiting for a count or a trigger). */
  loadedAt: number;
  mode: number;
  /** Access mode (control word bits 5:4): 1 LSB, 2 MSB, 3 LSB then MSB. */
  access: number;
  bcd: boolean;
  gate: boolean;
  /** LSB/MSB access: the next byte written or read is the MSB. */
  writeMsb: boolean;
  readMsb: boolean;
  /** The low byte written first in access mode 3. */
  pendingLow: number;
  /** Latched count (-1 none) and whether its MSB is next. */
  latched: number;
  latchedMsb: boolean;
  /** Latched status byte (-1 none). */
  status: number;
  /** Null count: a count was written but not yet loaded into the counting element. */
  nullCount: boolean;
  /** The OUT level last reported (counter 0 only), for edges. */
  outReported: boolean;
}

function newCounter(gate: boolean): Counter {
  return {
    reload: 0,
    loadedAt: -1,
    mode: 0,
    access: 3,
    bcd: false,
    gate,
    writeMsb: false,
    readMsb: false,
    pendingLow: 0,
    latched: -1,
    latchedMsb: false,
    status: -1,
    nullCount: true,
    outReported: false,
  };
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface Pit8254State {
  readonly kind: "pit-8254";
  readonly version: 1;
  readonly counters: readonly Readonly<Counter>[];
  readonly speakerData: boolean;
  readonly refresh: boolean;
}

export class Pit8254StateError extends Error {
  override name = "Pit8254StateError";
}

export class Pit8254 {
  private readonly clock: PitClock;
  private readonly irqLine: ((level: boolean) => void) | undefined;
  private counters: [Counter, Counter, Counter] = [
    newCounter(true),
    newCounter(true),
    newCounter(false),
  ];
  private speakerData = false;
  private refresh = false;
  /** Counter 0: periods already reported as edges, and whether the mode 4/5 strobe was. */
  private reportedPeriods = 0;
  private strobed = false;
  /** Port 0x61 as a one-byte window (offset 0) for the VMM. */
  readonly speakerPort: {
    read(offset: number, size: 1 | 2 | 4): number;
    write(offset: number, size: 1 | 2 | 4, value: number): void;
  };

  constructor(options: Pit8254Options) {
    this.clock = options.clock;
    this.irqLine = options.irq;
    this.speakerPort = {
      read: (offset) => (offset === 0 ? this.readSpeaker() : 0xff),
      write: (offset, _size, value) => {
        if (offset === 0) this.writeSpeaker(value & 0xff);
      },
    };
  }

  /** Ports 0x40-0x43 at offsets 0-3; byte-wide (a wider access covers the next ports). */
  read(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
  }

  private ticksSince(counter: Counter): number {
    return Math.floor(((this.clock.now() - counter.loadedAt) * PIT_FREQUENCY) / 1e9);
  }

  private period(counter: Counter): number {
    return counter.reload === 0 ? 65536 : counter.reload;
  }

  /** The counting element now (datasheet "Operation" per mode). */
  private count(counter: Counter): number {
    if (counter.loadedAt < 0) return counter.reload;
    const period = this.period(counter);
    const ticks = this.ticksSince(counter);
    switch (counter.mode) {
      case 2:
        return period - (ticks % period);
      case 3:
        // Square wave: decrements by two each clock through each half period.
        return (period - ((2 * ticks) % period)) & 0xffff;
      default:
        // Modes 0, 1, 4, 5: counts down and wraps past 0.
        return (period - ticks) & 0xffff;
    }
  }

  /** OUT now. */
  private out(counter: Counter): boolean {
    if (counter.loadedAt < 0) return counter.mode !== 0;
    const period = this.period(counter);
    const ticks = this.ticksSince(counter);
    switch (counter.mode) {
      case 0:
      case 1:
        return ticks >= period;
      case 2:
        // Low for the one clock when the count is 1.
        return ticks % period !== period - 1;
      case 3:
        return ticks % period < (period + 1) >>> 1;
      default:
        // Modes 4 and 5: a one-clock low strobe at terminal count.
        return ticks !== period;
    }
  }

  private readByte(offset: number): number {
    if (offset > 2) return 0xff; // the control word register cannot be read
    const counter = this.counters[offset];
    if (counter.status >= 0) {
      const status = counter.status;
      counter.status = -1;
      return status;
    }
    if (counter.latched >= 0) {
      const value = counter.latched;
      if (counter.access === 3 && !counter.latchedMsb) {
        counter.latchedMsb = true;
        return value & 0xff;
      }
      counter.latched = -1;
      counter.latchedMsb = false;
      return counter.access === 1 ? value & 0xff : (value >>> 8) & 0xff;
    }
    const value = this.count(counter);
    if (counter.access === 1) return value & 0xff;
    if (counter.access === 2) return (value >>> 8) & 0xff;
    counter.readMsb = !counter.readMsb;
    return counter.readMsb ? value & 0xff : (value >>> 8) & 0xff;
  }

  private writeByte(offset: number, value: number): void {
    if (offset === 3) {
      this.writeControl(value);
      return;
    }
    if (offset > 3) return;
    const counter = this.counters[offset];
    switch (counter.access) {
      case 1:
        this.load(offset, value);
        return;
      case 2:
        this.load(offset, value << 8);
        return;
      default:
        if (!counter.writeMsb) {
          counter.pendingLow = value;
          counter.writeMsb = true;
          return;
        }
        counter.writeMsb = false;
        this.load(offset, counter.pendingLow | (value << 8));
    }
  }

  private writeControl(value: number): void {
    const select = value >>> 6;
    if (select === 3) {
      // Read-back (8254 only): bit 5 clear latches counts, bit 4 clear latches status.
      for (let index = 0; index < 3; index++) {
        if (!(value & (2 << index))) continue;
        const counter = this.counters[index];
        if (!(value & 0x20) && counter.latched < 0) this.latchCount(counter);
        if (!(value & 0x10) && counter.status < 0) {
          counter.status =
            (this.out(counter) ? 0x80 : 0) |
            (counter.nullCount ? 0x40 : 0) |
            (counter.access << 4) |
            (counter.mode << 1) |
            (counter.bcd ? 1 : 0);
        }
      }
      return;
    }
    const counter = this.counters[select];
    const access = (value >>> 4) & 3;
    if (access === 0) {
      // Counter latch command; a second latch before the read is ignored.
      if (counter.latched < 0) this.latchCount(counter);
      return;
    }
    let mode = (value >>> 1) & 7;
    if (mode > 5) mode -= 4; // 6 and 7 are modes 2 and 3 (datasheet: "X10", "X11")
    counter.access = access;
    counter.mode = mode;
    counter.bcd = (value & 1) !== 0;
    counter.writeMsb = false;
    counter.readMsb = false;
    counter.latched = -1;
    counter.status = -1;
    counter.nullCount = true;
    // A control word stops the counter until a count is written (OUT low in mode 0, high otherwise).
    counter.loadedAt = -1;
    if (select === 0) this.report();
  }

  private latchCount(counter: Counter): void {
    counter.latched = this.count(counter);
    counter.latchedMsb = false;
  }

  private load(index: number, value: number): void {
    const counter = this.counters[index];
    counter.reload = value & 0xffff;
    counter.nullCount = false;
    // Modes 1 and 5 wait for a gate trigger; the others start counting on the write.
    if (counter.mode === 1 || counter.mode === 5) {
      if (counter.loadedAt < 0) return;
    }
    // Simplification: in modes 2 and 3 a count written while running should take effect at the
    // end of the current period; it restarts at once (Linux and BIOSes program stopped counters).
    counter.loadedAt = this.clock.now();
    if (index === 0) {
      this.reportedPeriods = 0;
      this.strobed = false;
      this.report();
    }
  }

  private readSpeaker(): number {
    // The refresh bit toggles on each read: BIOS delay loops poll it for changes.
    this.refresh = !this.refresh;
    const counter = this.counters[2];
    return (
      (counter.gate ? 0x01 : 0) |
      (this.speakerData ? 0x02 : 0) |
      (this.refresh ? 0x10 : 0) |
      (this.out(counter) ? 0x20 : 0)
    );
  }

  private writeSpeaker(value: number): void {
    this.speakerData = (value & 0x02) !== 0;
    this.setGate(2, (value & 0x01) !== 0);
  }

  /** Drives counter `index`'s GATE input. A rising edge (re)starts modes 1, 2, 3 and 5. */
  setGate(index: 0 | 1 | 2, level: boolean): void {
    const counter = this.counters[index];
    const rising = level && !counter.gate;
    counter.gate = level;
    if (rising && counter.mode !== 0 && counter.mode !== 4 && !counter.nullCount) {
      counter.loadedAt = this.clock.now();
      if (index === 0) {
        this.reportedPeriods = 0;
        this.strobed = false;
        this.report();
      }
    }
  }

  /** The VMM calls this at the time asked through `clock.schedule` (early or twice is harmless). */
  timerExpired(): void {
    this.report();
  }

  /**
   * Reports counter 0's OUT on IRQ 0 and schedules its next edge. A
   * periodic mode passing a period boundary gives one low-high pulse.
   */
  private report(): void {
    const counter = this.counters[0];
    const line = this.irqLine;
    if (counter.loadedAt < 0) {
      const level = counter.mode !== 0;
      if (level !== counter.outReported) {
        counter.outReported = level;
        line?.(level);
      }
      this.clock.schedule(Number.POSITIVE_INFINITY);
      return;
    }
    const period = this.period(counter);
    const ticks = this.ticksSince(counter);
    const periodic = counter.mode === 2 || counter.mode === 3;
    if (periodic) {
      const periods = Math.floor(ticks / period);
      if (!counter.outReported) {
        counter.outReported = true;
        line?.(true);
      }
      if (periods > this.reportedPeriods) {
        // One or more periods ended since the last report: one rising edge.
        line?.(false);
        line?.(true);
      }
      this.reportedPeriods = periods;
      this.clock.schedule(
        counter.loadedAt + Math.ceil(((periods + 1) * period * 1e9) / PIT_FREQUENCY),
      );
      return;
    }
    const level = this.out(counter);
    if (level !== counter.outReported) {
      counter.outReported = level;
      line?.(level);
    }
    if (counter.mode === 4 || counter.mode === 5) {
      // Strobe: report the low pulse as an edge once terminal count passed.
      if (ticks >= period && !this.strobed) {
        this.strobed = true;
        line?.(false);
        line?.(true);
      }
    }
    this.clock.schedule(
      ticks < period
        ? counter.loadedAt + Math.ceil((period * 1e9) / PIT_FREQUENCY)
        : Number.POSITIVE_INFINITY,
    );
  }

  state(): Pit8254State {
    return {
      kind: "pit-8254",
      version: 1,
      counters: this.counters.map((counter) => ({ ...counter })),
      speakerData: this.speakerData,
      refresh: this.refresh,
    };
  }

  fromState(state: Pit8254State): void {
    if (state === null || typeof state !== "object" || state.kind !== "pit-8254")
      throw new Pit8254StateError('not an 8254 state (kind must be "pit-8254")');
    if (state.version !== 1)
      throw new Pit8254StateError(
        `8254 state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.counters) || state.counters.length !== 3)
      throw new Pit8254StateError("8254 state field counters must hold three counters");
    const counters = state.counters.map((saved, index) => {
      const counter = newCounter(false);
      for (const key of Object.keys(counter) as (keyof Counter)[]) {
        if (typeof saved[key] !== typeof counter[key])
          throw new Pit8254StateError(
            `8254 state counters[${index}].${key} must be a ${typeof counter[key]}`,
          );
        (counter as unknown as Record<string, unknown>)[key] = saved[key];
      }
      return counter;
    });
    this.counters = [counters[0], counters[1], counters[2]];
    this.speakerData = state.speakerData === true;
    this.refresh = state.refresh === true;
    const zero = this.counters[0];
    this.reportedPeriods =
      zero.loadedAt >= 0 ? Math.floor(this.ticksSince(zero) / this.period(zero)) : 0;
    this.strobed = false;
    this.report();
  }
}
