import { describe, expect, it } from "vitest";
import { I8042, type I8042State, I8042StateError } from "../src/index";

function controller() {
  const irq1: boolean[] = [];
  const irq12: boolean[] = [];
  const events: string[] = [];
  const kbc = new I8042({
    keyboardIrq: (level) => irq1.push(level),
    auxIrq: (level) => irq12.push(level),
    reset: () => events.push("reset"),
    a20: (enabled) => events.push(`a20 ${enabled}`),
  });
  const status = () => kbc.command.read(0, 1);
  const command = (value: number) => kbc.command.write(0, 1, value);
  const data = () => kbc.data.read(0, 1);
  const send = (value: number) => kbc.data.write(0, 1, value);
  const drain = () => {
    const bytes: number[] = [];
    while (status() & 1) bytes.push(data());
    return bytes;
  };
  return { kbc, irq1, irq12, events, status, command, data, send, drain };
}

describe("i8042 keyboard controller with a PS/2 keyboard", () => {
  it("self tests and the command byte, as Linux's i8042 probe uses them", () => {
    const k = controller();
    k.command(0xaa);
    expect(k.drain()).toEqual([0x55]);
    k.command(0x20);
    expect(k.drain()).toEqual([0x45]); // kbd int, sys, translate
    k.command(0x60);
    expect(k.status() & 0x08).toBe(0x08); // A2: last write was a command
    k.send(0x47);
    k.command(0x20);
    expect(k.drain()).toEqual([0x47]);
    k.command(0xab);
    k.command(0xa9);
    expect(k.drain()).toEqual([0x00, 0x00]);
  });

  it("auxiliary loopback (0xD3) sets AUXB and IRQ 12; 0xD4 finds no device", () => {
    const k = controller();
    k.command(0x60);
    k.send(0x47); // aux interrupts on
    k.command(0xd3);
    k.send(0x5a);
    expect(k.status() & 0x21).toBe(0x21);
    expect(k.irq12).toEqual([true]);
    expect(k.data()).toBe(0x5a);
    expect(k.irq12).toEqual([true, false]);
    k.command(0xd4);
    k.send(0xf2);
    expect(k.drain()).toEqual([0xfe]);
  });

  it("keyboard commands: reset, identify, LEDs, echo, scan code set, unknown", () => {
    const k = controller();
    k.send(0xff);
    expect(k.drain()).toEqual([0xfa, 0xaa]);
    k.send(0xf2);
    expect(k.drain()).toEqual([0xfa, 0xab, 0x83]);
    k.send(0xed);
    k.send(0x07);
    expect(k.drain()).toEqual([0xfa, 0xfa]);
    k.send(0xee);
    expect(k.drain()).toEqual([0xee]);
    k.send(0xf0);
    k.send(0x00);
    expect(k.drain()).toEqual([0xfa, 0xfa, 0x02]);
    k.send(0x12);
    expect(k.drain()).toEqual([0xfe]);
  });

  it("key bytes raise IRQ 1 one byte at a time, held while the keyboard port is disabled", () => {
    const k = controller();
    expect(k.kbc.sendScancodes([0x1e, 0x9e])).toBe(2);
    expect(k.irq1).toEqual([true]);
    k.command(0xad);
    expect(k.data()).toBe(0x1e);
    expect(k.status() & 1).toBe(0);
    k.command(0xae);
    expect(k.data()).toBe(0x9e);
    expect(k.irq1).toEqual([true, false, true, false]);
    expect(k.kbc.sendScancodes(new Array(40).fill(0x1e))).toBe(16);
  });

  it("drops the IRQ line at each read so that every queued byte makes a new edge", () => {
    const k = controller();
    k.send(0xf2); // identify: FA AB 83
    expect(k.irq1).toEqual([true]);
    expect(k.data()).toBe(0xfa);
    expect(k.data()).toBe(0xab);
    expect(k.data()).toBe(0x83);
    expect(k.irq1).toEqual([true, false, true, false, true, false]);
  });

  it("pulses reset with 0xFE and via output port bit 0; output port bit 1 is A20", () => {
    const k = controller();
    k.command(0xfe);
    k.command(0xff); // pulse nothing
    k.command(0xd1);
    k.send(0x01); // A20 off, reset line high
    k.command(0xd1);
    k.send(0x02); // A20 on, reset line low
    k.command(0xd0);
    expect(k.drain()).toEqual([0xc2]);
    expect(k.events).toEqual(["reset", "a20 false", "a20 true", "reset"]);
  });

  it("ignores unknown controller commands; an empty buffer reads 0", () => {
    const k = controller();
    k.command(0x99);
    expect(k.status() & 1).toBe(0);
    expect(k.data()).toBe(0);
  });

  it("saves and restores its state", () => {
    const a = controller();
    a.kbc.sendScancodes([0x1e, 0x9e]);
    const saved = JSON.parse(JSON.stringify(a.kbc.state())) as I8042State;
    const b = controller();
    b.kbc.fromState(saved);
    expect(b.drain()).toEqual([0x1e, 0x9e]);
    expect(() => b.kbc.fromState({ ...saved, version: 9 } as never)).toThrow(I8042StateError);
  });

  it("a guest that never reads the answers cannot grow the queue", () => {
    const k = controller();
    for (let i = 0; i < 100_000; i++) {
      k.command(0x20); // read command byte
      k.send(0xf2); // keyboard identify: FA AB 83
    }
    expect(k.kbc.state().queue.length).toBeLessThanOrEqual(16);
    expect(k.drain().length).toBeLessThanOrEqual(17);
    k.command(0xaa);
    expect(k.drain()).toEqual([0x55]);
  });
});
