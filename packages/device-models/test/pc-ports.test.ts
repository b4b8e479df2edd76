import { describe, expect, it } from "vitest";
import {
  DebugConsole,
  DebugExit,
  PortBus,
  PortBusError,
  ResetControl,
  ResetPortStateError,
  SystemControlPortA,
} from "../src/index";

describe("port 0x92 (system control port A)", () => {
  it("bit 1 gates A20, a rising bit 0 resets, bit 0 reads back 0", () => {
    const events: string[] = [];
    const port = new SystemControlPortA({
      reset: () => events.push("reset"),
      a20: (enabled) => events.push(`a20 ${enabled}`),
    });
    port.write(0, 1, 0x02);
    expect(port.a20).toBe(true);
    port.write(0, 1, 0x03);
    expect(port.read(0, 1)).toBe(0x02);
    expect(events).toEqual(["a20 true", "reset"]);
    const copy = new SystemControlPortA();
    copy.fromState(port.state());
    expect(copy.a20).toBe(true);
    expect(() => copy.fromState({ kind: "reset-control", version: 1, value: 0 })).toThrow(
      ResetPortStateError,
    );
  });
});

describe("reset control register 0xCF9", () => {
  it("resets on the 0-to-1 edge of RCPU, hard with SRST", () => {
    const resets: boolean[] = [];
    const rc = new ResetControl({ reset: (hard) => resets.push(hard) });
    rc.write(0, 1, 0x04);
    rc.write(0, 1, 0x06);
    rc.write(0, 1, 0x02);
    expect(rc.read(0, 1)).toBe(0x02);
    expect(resets).toEqual([false, true]);
  });
});

describe("debug console and exit ports", () => {
  it("debugcon passes bytes and reads back 0xE9", () => {
    const bytes: number[] = [];
    const console = new DebugConsole({ output: (byte) => bytes.push(byte) });
    for (const c of "ok\n") console.write(0, 1, c.charCodeAt(0));
    console.write(0, 2, 0x4141);
    expect(String.fromCharCode(...bytes)).toBe("ok\nA");
    expect(console.read(0, 1)).toBe(0xe9);
    expect(new DebugConsole({ output: () => {}, readback: 0x12 }).read(0, 2)).toBe(0x1212);
  });

  it("isa-debug-exit: status is (value << 1) | 1", () => {
    const statuses: number[] = [];
    const exit = new DebugExit({ exit: (status) => statuses.push(status) });
    exit.write(0, 1, 0);
    exit.write(0, 1, 0x31);
    exit.write(0, 1, 0x1ff);
    exit.write(0, 4, 0x7fffffff);
    expect(statuses).toEqual([1, 0x63, 0x1ff, 0xffffffff]);
    expect(exit.read(0, 1)).toBe(0xff);
  });
});

describe("I/O port bus", () => {
  it("routes ports to windows by offset and floats elsewhere", () => {
    const bus = new PortBus();
    const seen: string[] = [];
    bus.register(
      0x3f8,
      8,
      {
        read: (offset, size) => offset * 16 + size,
        write: (offset, size, value) => seen.push(`${offset}/${size}=${value}`),
      },
      "com1",
    );
    expect(bus.portRead(0x3fd, 1)).toBe(0x51);
    bus.portWrite(0x3f9, 2, 7);
    expect(seen).toEqual(["1/2=7"]);
    expect(bus.portRead(0x80, 1)).toBe(0xff);
    expect(bus.portRead(0x80, 2)).toBe(0xffff);
    expect(bus.portRead(0x80, 4)).toBe(-1);
    expect(bus.claims(0x3ff)).toBe(true);
    expect(bus.claims(0x400)).toBe(false);
    expect(() => bus.register(0x3fc, 1, { read: () => 0, write: () => {} }, "x")).toThrow(/com1/);
    expect(() => bus.register(0xffff, 2, { read: () => 0, write: () => {} })).toThrow(PortBusError);
  });
});
