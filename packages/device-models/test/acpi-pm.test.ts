import { describe, expect, it } from "vitest";
import {
  ACPI_PM_WINDOW_SIZE,
  AcpiPm,
  AcpiPmOffset,
  AcpiPmStateError,
  PM_TIMER_FREQUENCY,
  Pm1Control,
  Pm1Event,
} from "../src/index";

/** A settable clock (ns) that records the last deadline asked for. */
function testClock() {
  const clock = {
    time: 0,
    deadline: Number.POSITIVE_INFINITY,
    now: () => clock.time,
    schedule: (at: number) => {
      clock.deadline = at;
    },
  };
  return clock;
}

function device(options: { timer32?: boolean; sciEnabled?: boolean } = {}) {
  const clock = testClock();
  const sci: boolean[] = [];
  const sleeps: number[] = [];
  const pm = new AcpiPm({
    clock,
    sci: (level) => sci.push(level),
    sleep: (type) => sleeps.push(type),
    ...options,
  });
  return { pm, clock, sci, sleeps };
}

describe("AcpiPm: PM timer", () => {
  it("counts at 3.579545 MHz from the clock, 24 bits wide", () => {
    const { pm, clock } = device();
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(0);
    clock.time = 1e9;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(PM_TIMER_FREQUENCY);
    // One tick is 279.36 ns.
    clock.time = 1e9 + 279;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(PM_TIMER_FREQUENCY);
    clock.time = 1e9 + 280;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(PM_TIMER_FREQUENCY + 1);
    // 24 bits wrap after 2^24 / 3579545 = 4.687 s.
    clock.time = 10e9;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe((10 * PM_TIMER_FREQUENCY) % 2 ** 24);
  });

  it("is exact far from the clock's origin (no precision lost past 2^53 / 3579545 ns)", () => {
    const { pm, clock } = device({ timer32: true });
    // 30 days of guest time: ns * 3579545 exceeds 2^53, the count must not drift.
    const seconds = 30 * 86400;
    clock.time = seconds * 1e9 + 500_000_000;
    const expected = (seconds * PM_TIMER_FREQUENCY + Math.floor(PM_TIMER_FREQUENCY / 2)) % 2 ** 32;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(expected);
  });

  it("32-bit mode (TMR_VAL_EXT) wraps at 2^32", () => {
    const { pm, clock } = device({ timer32: true });
    clock.time = 10e9;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(10 * PM_TIMER_FREQUENCY);
  });

  it("answers only 4-byte reads at offset 8 and ignores writes (Xen handle_pmt_io)", () => {
    const { pm, clock } = device();
    clock.time = 1e9;
    expect(pm.read(AcpiPmOffset.PM_TIMER, 2)).toBe(0xffff);
    expect(pm.read(AcpiPmOffset.PM_TIMER, 1)).toBe(0xff);
    expect(pm.read(AcpiPmOffset.PM_TIMER + 1, 1)).toBe(0xff);
    expect(pm.read(AcpiPmOffset.PM_TIMER + 2, 2)).toBe(0xffff);
    pm.write(AcpiPmOffset.PM_TIMER, 4, 0);
    expect(pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe(PM_TIMER_FREQUENCY);
    expect(ACPI_PM_WINDOW_SIZE).toBe(12);
  });

  it("sets TMR_STS when bit 23 changes and, with TMR_EN and SCI_EN, raises the SCI then", () => {
    const { pm, clock, sci } = device({ sciEnabled: true });
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2) & Pm1Event.TIMER).toBe(0);
    pm.write(AcpiPmOffset.PM1_ENABLE, 2, Pm1Event.TIMER);
    // Bit 23 first changes at tick 2^23: ceil(2^23 * 1e9 / 3579545) ns.
    const toggle = Math.ceil((2 ** 23 * 1e9) / PM_TIMER_FREQUENCY);
    expect(clock.deadline).toBe(toggle);
    clock.time = toggle - 1;
    pm.timerExpired();
    expect(sci).toEqual([]);
    clock.time = toggle;
    pm.timerExpired();
    expect(sci).toEqual([true]);
    expect(pm.sciAsserted).toBe(true);
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2) & Pm1Event.TIMER).toBe(Pm1Event.TIMER);
    // Writing 1 clears it and drops the SCI; the next change is 2^23 ticks later.
    pm.write(AcpiPmOffset.PM1_STATUS, 2, Pm1Event.TIMER);
    expect(sci).toEqual([true, false]);
    expect(clock.deadline).toBe(Math.ceil((2 ** 24 * 1e9) / PM_TIMER_FREQUENCY));
  });

  it("sets TMR_STS without an SCI while TMR_EN is clear", () => {
    const { pm, clock, sci } = device({ sciEnabled: true });
    clock.time = 3e9;
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2)).toBe(Pm1Event.TIMER);
    expect(sci).toEqual([]);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("AcpiPm: PM1 event and control", () => {
  it("sends enabled events to the SCI only while SCI_EN is set (PIIX4: else SMI)", () => {
    const { pm, sci } = device();
    pm.write(AcpiPmOffset.PM1_ENABLE, 2, Pm1Event.POWER_BUTTON);
    pm.pressPowerButton();
    expect(sci).toEqual([]);
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2)).toBe(Pm1Event.POWER_BUTTON);
    pm.write(AcpiPmOffset.PM1_CONTROL, 2, Pm1Control.SCI_ENABLE);
    expect(sci).toEqual([true]);
    expect(pm.read(AcpiPmOffset.PM1_CONTROL, 2)).toBe(Pm1Control.SCI_ENABLE);
    // Write-1-to-clear through the high byte alone.
    pm.write(AcpiPmOffset.PM1_STATUS + 1, 1, Pm1Event.POWER_BUTTON >> 8);
    expect(sci).toEqual([true, false]);
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2)).toBe(0);
  });

  it("keeps only the implemented enable and control bits; SLP_EN and GBL_RLS read 0", () => {
    const { pm } = device();
    pm.write(AcpiPmOffset.PM1_ENABLE, 2, 0xffff);
    expect(pm.read(AcpiPmOffset.PM1_ENABLE, 2)).toBe(0x0721);
    pm.write(AcpiPmOffset.PM1_CONTROL, 2, 0x1c07);
    expect(pm.read(AcpiPmOffset.PM1_CONTROL, 2)).toBe(0x1c03);
    expect(pm.read(6, 2)).toBe(0);
  });

  it("a 32-bit access covers PM1_STS and PM1_EN as byte lanes", () => {
    const { pm } = device();
    pm.write(AcpiPmOffset.PM1_STATUS, 4, Pm1Event.RTC << 16);
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 4)).toBe(Pm1Event.RTC << 16);
    expect(pm.read(AcpiPmOffset.PM1_ENABLE, 2)).toBe(Pm1Event.RTC);
    expect(pm.read(AcpiPmOffset.PM1_ENABLE + 1, 1)).toBe(Pm1Event.RTC >> 8);
  });

  it("SLP_TYP | SLP_EN, as Linux's acpi_hw_legacy_sleep writes PM1a_CNT, reaches sleep(); WAK_STS is bit 15", () => {
    const { pm, sleeps } = device({ sciEnabled: true });
    // drivers/acpi/acpica/hwsleep.c: clear WAK_STS, write SLP_TYP, then SLP_TYP | SLP_EN.
    pm.write(AcpiPmOffset.PM1_STATUS, 2, Pm1Event.WAKE);
    const control = pm.read(AcpiPmOffset.PM1_CONTROL, 2);
    const typed = control | (5 << Pm1Control.SLEEP_TYPE_SHIFT);
    pm.write(AcpiPmOffset.PM1_CONTROL, 2, typed);
    expect(sleeps).toEqual([]);
    pm.write(AcpiPmOffset.PM1_CONTROL, 2, typed | Pm1Control.SLEEP_ENABLE);
    expect(sleeps).toEqual([5]);
    expect(pm.sleep.lastSleepType).toBe(5);
    expect(pm.read(AcpiPmOffset.PM1_CONTROL, 2)).toBe(Pm1Control.SCI_ENABLE | (5 << 10));
    pm.sleep.wake();
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2)).toBe(Pm1Event.WAKE);
    pm.write(AcpiPmOffset.PM1_STATUS, 2, Pm1Event.WAKE);
    expect(pm.read(AcpiPmOffset.PM1_STATUS, 2)).toBe(0);
  });
});

describe("AcpiPm: state", () => {
  it("round-trips through JSON and the timer continues from the saved count", () => {
    const a = device({ sciEnabled: true });
    a.pm.write(AcpiPmOffset.PM1_ENABLE, 2, Pm1Event.POWER_BUTTON);
    a.pm.pressPowerButton();
    a.pm.write(AcpiPmOffset.PM1_CONTROL, 2, Pm1Control.SCI_ENABLE | (3 << 10));
    a.clock.time = 2e9;
    const saved = JSON.parse(JSON.stringify(a.pm.state()));
    expect(saved.timer).toBe(2 * PM_TIMER_FREQUENCY);

    const b = device();
    b.clock.time = 50e9;
    b.pm.fromState(saved);
    expect(b.sci).toEqual([true]);
    expect(b.pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe((2 * PM_TIMER_FREQUENCY) % 2 ** 24);
    b.clock.time = 51e9;
    expect(b.pm.read(AcpiPmOffset.PM_TIMER, 4)).toBe((3 * PM_TIMER_FREQUENCY) % 2 ** 24);
    expect(b.pm.read(AcpiPmOffset.PM1_CONTROL, 2)).toBe(Pm1Control.SCI_ENABLE | (3 << 10));
    expect(b.pm.read(AcpiPmOffset.PM1_STATUS, 2) & Pm1Event.POWER_BUTTON).toBe(
      Pm1Event.POWER_BUTTON,
    );
  });

  it("rejects states that are not its own with a typed error", () => {
    const { pm } = device();
    const good = pm.state();
    expect(() => pm.fromState({ ...good, kind: "acpi-sleep" } as never)).toThrow(AcpiPmStateError);
    expect(() => pm.fromState({ ...good, version: 2 } as never)).toThrow(/version 2/);
    expect(() => pm.fromState({ ...good, enable: 0x8000 })).toThrow(/enable/);
    expect(() => pm.fromState({ ...good, timer: -1 })).toThrow(/timer/);
  });
});

describe("AcpiPm: guest accesses (fuzz, seeded)", () => {
  it("never throws; SCI follows SCI_EN & status & enable; the timer never runs backwards; state round-trips", () => {
    let seed = 0x2545f491;
    const random = () => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed;
    };
    const sizes = [1, 2, 4] as const;
    const { pm, clock, sci, sleeps } = device();
    let lastTimer = 0;
    for (let step = 0; step < 20000; step++) {
      clock.time += random() % 5000;
      const offset = random() % 16;
      const size = sizes[random() % 3];
      if (random() & 1) {
        const value = pm.read(offset, size);
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(2 ** (8 * size));
      } else {
        // Keep SLP_EN rare so that sleep requests do not dominate.
        pm.write(offset, size, random() & ((random() & 7) === 0 ? 0xffffffff : 0xffffdfff));
      }
      if ((random() & 63) === 0) pm.pressPowerButton();
      if (clock.time >= clock.deadline) pm.timerExpired();
      const status = pm.read(AcpiPmOffset.PM1_STATUS, 2) & 0x0721;
      const enable = pm.read(AcpiPmOffset.PM1_ENABLE, 2);
      const sciEnabled = (pm.read(AcpiPmOffset.PM1_CONTROL, 2) & Pm1Control.SCI_ENABLE) !== 0;
      expect(pm.sciAsserted).toBe(sciEnabled && (status & enable) !== 0);
      const timer = pm.read(AcpiPmOffset.PM_TIMER, 4);
      expect((timer - lastTimer) & 0xffffff).toBeLessThan(2 ** 23);
      lastTimer = timer;
    }
    // The level reported through sci() is the level the device says.
    expect(sci.at(-1) ?? false).toBe(pm.sciAsserted);
    expect(sleeps.length).toBeGreaterThan(0);
    const copy = device();
    copy.clock.time = clock.time;
    copy.pm.fromState(JSON.parse(JSON.stringify(pm.state())));
    for (const offset of [0, 2, 4, 8])
      expect(copy.pm.read(offset, offset === 8 ? 4 : 2)).toBe(
        pm.read(offset, offset === 8 ? 4 : 2),
      );
  });
});
