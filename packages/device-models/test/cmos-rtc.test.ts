import { describe, expect, it } from "vitest";
import { CmosRegister, CmosRtc, type CmosRtcState, CmosRtcStateError } from "../src/index";

/** 2026-11-27 05:30:59.5 UTC, a Friday. */
const WALL = Date.UTC(2026, 10, 27, 5, 30, 59, 500);

function rtc(memorySize = 0) {
  let time = 1_000_000;
  let deadline = Number.POSITIVE_INFINITY;
  const levels: boolean[] = [];
  const device = new CmosRtc({
    clock: { now: () => time, schedule: (at) => (deadline = at) },
    wallTimeMs: WALL,
    irq: (level) => levels.push(level),
    memorySize,
  });
  const read = (index: number) => {
    device.write(0, 1, index);
    return device.read(1, 1);
  };
  const write = (index: number, value: number) => {
    device.write(0, 1, index);
    device.write(1, 1, value);
  };
  return {
    device,
    read,
    write,
    levels,
    advance(ns: number) {
      time += ns;
    },
    fire() {
      time = Math.max(time, deadline);
      device.timerExpired();
    },
    get deadline() {
      return deadline;
    },
  };
}

describe("MC146818 CMOS RTC", () => {
  it("reads the wall time in BCD, 24-hour mode by default", () => {
    const { read } = rtc();
    expect(read(CmosRegister.Seconds)).toBe(0x59);
    expect(read(CmosRegister.Minutes)).toBe(0x30);
    expect(read(CmosRegister.Hours)).toBe(0x05);
    expect(read(CmosRegister.DayOfWeek)).toBe(6); // Friday, 1 = Sunday
    expect(read(CmosRegister.DayOfMonth)).toBe(0x27);
    expect(read(CmosRegister.Month)).toBe(0x11);
    expect(read(CmosRegister.Year)).toBe(0x26);
    expect(read(CmosRegister.Century)).toBe(0x20);
    expect(read(CmosRegister.D)).toBe(0x80); // valid RAM and time
  });

  it("binary and 12-hour modes follow register B", () => {
    const { read, write, advance } = rtc();
    advance(12 * 3600e9); // 17:30
    write(CmosRegister.B, 0x04); // binary, 12-hour
    expect(read(CmosRegister.Seconds)).toBe(59);
    expect(read(CmosRegister.Hours)).toBe(0x80 | 5); // PM bit + 5
    write(CmosRegister.B, 0x00); // BCD 12-hour
    expect(read(CmosRegister.Hours)).toBe(0x85);
    write(CmosRegister.Hours, 0x12); // 12 AM = midnight
    write(CmosRegister.B, 0x02);
    expect(read(CmosRegister.Hours)).toBe(0x00);
  });

  it("the time advances with the clock and carries into the date", () => {
    const { read, advance } = rtc();
    advance(0.5e9 + 29 * 60e9 + 18 * 3600e9); // 2026-11-28 00:00:00
    expect([read(0), read(2), read(4), read(7), read(8)]).toEqual([0x00, 0x00, 0x00, 0x28, 0x11]);
  });

  it("SET freezes the clock; written fields hold and it restarts on clear", () => {
    const { read, write, advance } = rtc();
    write(CmosRegister.B, 0x82);
    write(CmosRegister.Year, 0x99);
    write(CmosRegister.Month, 0x12);
    write(CmosRegister.DayOfMonth, 0x31);
    write(CmosRegister.Hours, 0x23);
    write(CmosRegister.Minutes, 0x59);
    write(CmosRegister.Seconds, 0x58);
    advance(5e9);
    expect(read(CmosRegister.Seconds)).toBe(0x58);
    write(CmosRegister.B, 0x02);
    advance(2e9);
    // 2099-12-31 23:59:58 + 2 s: the year rolls over, the century byte is the guest's business.
    expect([read(0), read(2), read(4), read(7), read(8), read(9)]).toEqual([0, 0, 0, 1, 1, 0x00]);
  });

  it("update in progress is set for the last 244 us of each second", () => {
    const { read, advance } = rtc();
    // 0.5 s into the second now.
    expect(read(CmosRegister.A) & 0x80).toBe(0);
    advance(0.5e9 - 244_000);
    expect(read(CmosRegister.A)).toBe(0xa6);
    advance(244_000);
    expect(read(CmosRegister.A)).toBe(0x26);
  });

  it("periodic interrupt at the RS rate on IRQ 8, cleared by reading C", () => {
    const t = rtc();
    t.write(CmosRegister.A, 0x26); // 1024 Hz
    t.write(CmosRegister.B, 0x42); // PIE
    expect(t.deadline - 1_000_000).toBeLessThanOrEqual(976_563);
    t.fire();
    expect(t.levels).toEqual([true]);
    expect(t.read(CmosRegister.C)).toBe(0xc0);
    expect(t.levels).toEqual([true, false]);
    expect(t.read(CmosRegister.C)).toBe(0);
    // RS 15 = 2 Hz, RS 3 = 8192 Hz (datasheet table 5)
    t.write(CmosRegister.A, 0x2f);
    const now = t.deadline;
    expect(now % 500_000_000).toBe(0);
  });

  it("update-ended and alarm interrupts, with don't-care alarm bytes", () => {
    const t = rtc();
    t.write(CmosRegister.A, 0x20); // no periodic rate
    t.write(CmosRegister.SecondsAlarm, 0x01);
    t.write(CmosRegister.MinutesAlarm, 0xc0);
    t.write(CmosRegister.HoursAlarm, 0xff);
    t.write(CmosRegister.B, 0x32); // AIE | UIE
    t.fire(); // 05:31:00
    expect(t.read(CmosRegister.C)).toBe(0x90);
    t.fire(); // 05:31:01
    expect(t.read(CmosRegister.C)).toBe(0xb0);
    // Flags without their enables are set, IRQF not.
    t.write(CmosRegister.B, 0x02);
    t.advance(1e9);
    expect(t.read(CmosRegister.C)).toBe(0x10);
  });

  it("holds NVRAM and the memory size bytes a BIOS reads", () => {
    const { read, write, device } = rtc(32 * 1024 * 1024);
    expect(read(0x15) | (read(0x16) << 8)).toBe(640);
    expect(read(0x17) | (read(0x18) << 8)).toBe(31 * 1024);
    expect(read(0x30) | (read(0x31) << 8)).toBe(31 * 1024);
    expect(read(0x34) | (read(0x35) << 8)).toBe((16 * 1024 * 1024) / 65536);
    device.setMemorySize(3 * 2 ** 30, 2 ** 30);
    expect(read(0x17) | (read(0x18) << 8)).toBe(0xffff);
    expect(read(0x5b) | (read(0x5c) << 8) | (read(0x5d) << 16)).toBe(16384);
    write(0x40, 0xa5);
    expect(read(0x40)).toBe(0xa5);
    write(CmosRegister.D, 0);
    expect(read(CmosRegister.D)).toBe(0x80);
  });

  it("port 0x70 bit 7 masks NMI and selects with the low 7 bits; reads of 0x70 float", () => {
    const { device } = rtc();
    device.write(0, 1, 0x80 | CmosRegister.Minutes);
    expect(device.nmiDisabled).toBe(true);
    expect(device.read(1, 1)).toBe(0x30);
    expect(device.read(0, 1)).toBe(0xff);
  });

  it("saves and restores its state", () => {
    const a = rtc();
    a.write(0x50, 0x77);
    a.write(CmosRegister.B, 0x06);
    const saved = JSON.parse(JSON.stringify(a.device.state())) as CmosRtcState;
    const b = rtc();
    b.device.fromState(saved);
    expect(b.read(0x50)).toBe(0x77);
    expect(b.read(CmosRegister.Seconds)).toBe(59);
    expect(() => b.device.fromState({ ...saved, version: 2 } as never)).toThrow(CmosRtcStateError);
  });
});
