import { describe, expect, it } from "vitest";
import { AcpiSleep, AcpiSleepOffset, AcpiSleepStateError } from "../src/index";

describe("AcpiSleep (hardware-reduced sleep control/status)", () => {
  it("reports SLP_TYP on an SLP_EN write, as Linux's acpi_hw_extended_sleep writes it", () => {
    const requests: number[] = [];
    const device = new AcpiSleep({ sleep: (type) => requests.push(type) });
    // Linux: clear WAK_STS, then (SLP_TYP << 2) & 0x1c | SLP_EN (0x20) as one byte.
    device.write(AcpiSleepOffset.STATUS, 1, 0x80);
    device.write(AcpiSleepOffset.CONTROL, 1, ((5 << 2) & 0x1c) | 0x20);
    expect(requests).toEqual([5]);
    expect(device.sleepRequests).toBe(1);
    expect(device.lastSleepType).toBe(5);
    // SLP_EN is write-only; SLP_TYP reads back.
    expect(device.read(AcpiSleepOffset.CONTROL, 1)).toBe(5 << 2);
  });

  it("does not sleep without SLP_EN", () => {
    const requests: number[] = [];
    const device = new AcpiSleep({ sleep: (type) => requests.push(type) });
    device.write(AcpiSleepOffset.CONTROL, 1, 3 << 2);
    expect(requests).toEqual([]);
    expect(device.read(AcpiSleepOffset.CONTROL, 1)).toBe(3 << 2);
  });

  it("sets WAK_STS on wake and clears it on a write of 1", () => {
    const device = new AcpiSleep({ sleep: () => {} });
    expect(device.read(AcpiSleepOffset.STATUS, 1)).toBe(0);
    device.wake();
    expect(device.read(AcpiSleepOffset.STATUS, 1)).toBe(0x80);
    device.write(AcpiSleepOffset.STATUS, 1, 0x7f);
    expect(device.read(AcpiSleepOffset.STATUS, 1)).toBe(0x80);
    device.write(AcpiSleepOffset.STATUS, 1, 0x80);
    expect(device.read(AcpiSleepOffset.STATUS, 1)).toBe(0);
  });

  it("reads all ones outside its registers", () => {
    const device = new AcpiSleep({ sleep: () => {} });
    expect(device.read(1, 1)).toBe(0xff);
    expect(device.read(8, 2)).toBe(0xffff);
    expect(device.read(8, 4)).toBe(0xffffffff);
  });

  it("saves and restores its state and rejects a bad one", () => {
    const device = new AcpiSleep({ sleep: () => {} });
    device.write(AcpiSleepOffset.CONTROL, 1, (5 << 2) | 0x20);
    device.wake();
    const saved = JSON.parse(JSON.stringify(device.state()));
    const copy = new AcpiSleep({ sleep: () => {} });
    copy.fromState(saved);
    expect(copy.state()).toEqual(device.state());
    expect(() => copy.fromState({ ...saved, kind: "pit-8254" })).toThrow(AcpiSleepStateError);
    expect(() => copy.fromState({ ...saved, version: 2 })).toThrow(/version 2/);
    expect(() => copy.fromState({ ...saved, sleepType: 8 })).toThrow(/sleepType/);
  });
});
