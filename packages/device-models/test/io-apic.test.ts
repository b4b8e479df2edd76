import { describe, expect, it } from "vitest";
import {
  IO_APIC_PINS,
  IoApic,
  type IoApicMessage,
  type IoApicState,
  IoApicStateError,
} from "../src/index";

function ioapic() {
  const messages: IoApicMessage[] = [];
  const device = new IoApic({ id: 2, deliver: (message) => messages.push(message) });
  const select = (register: number) => device.write(0x00, 4, register);
  const readRegister = (register: number) => {
    select(register);
    return device.read(0x10, 4);
  };
  const writeRegister = (register: number, value: number) => {
    select(register);
    device.write(0x10, 4, value);
  };
  return { device, messages, readRegister, writeRegister };
}

describe("82093AA I/O APIC", () => {
  it("identifies itself: ID, version 0x11 with 24 entries, arbitration ID", () => {
    const { readRegister, writeRegister } = ioapic();
    expect(readRegister(0x00)).toBe(0x02000000);
    expect(readRegister(0x01)).toBe(0x00170011);
    expect(IO_APIC_PINS).toBe(24);
    writeRegister(0x00, 0x05000000);
    expect(readRegister(0x00)).toBe(0x05000000);
    expect(readRegister(0x02)).toBe(0x05000000);
  });

  it("starts with every entry masked; read-only bits stay", () => {
    const { readRegister, writeRegister } = ioapic();
    expect(readRegister(0x10)).toBe(0x00010000);
    writeRegister(0x10, 0xffffffff);
    // Delivery status (12) and remote IRR (14) are read-only; bits 31:17 reserved.
    expect(readRegister(0x10)).toBe(0x0001afff);
    writeRegister(0x11, 0xffffffff);
    expect(readRegister(0x11)).toBe(0xff000000);
  });

  it("edge: one message per rising edge; a masked edge is lost", () => {
    const { device, messages, writeRegister } = ioapic();
    writeRegister(0x10 + 2 * 4, 0x00000831); // pin 4, vector 0x31, logical
    writeRegister(0x11 + 2 * 4, 0x01000000);
    device.setIrq(4, true);
    device.setIrq(4, true);
    device.setIrq(4, false);
    device.setIrq(4, true);
    expect(messages).toEqual([
      { vector: 0x31, deliveryMode: 0, logical: true, destination: 1, level: false, pin: 4 },
      { vector: 0x31, deliveryMode: 0, logical: true, destination: 1, level: false, pin: 4 },
    ]);
    writeRegister(0x10 + 2 * 4, 0x00010831);
    device.setIrq(4, false);
    device.setIrq(4, true);
    writeRegister(0x10 + 2 * 4, 0x00000831);
    expect(messages).toHaveLength(2);
  });

  it("level: remote IRR holds until EOI, then an asserted input sends again", () => {
    const { device, messages, readRegister, writeRegister } = ioapic();
    writeRegister(0x10 + 2 * 10, 0x0000a040); // level, active low, vector 0x40
    device.setIrq(10, true);
    expect(messages).toHaveLength(1);
    expect(readRegister(0x10 + 2 * 10) & 0x4000).toBe(0x4000);
    device.setIrq(10, true);
    expect(messages).toHaveLength(1);
    device.eoi(0x41); // another vector: nothing
    device.eoi(0x40);
    expect(messages).toHaveLength(2); // still asserted
    device.setIrq(10, false);
    device.eoi(0x40);
    expect(messages).toHaveLength(2);
    expect(readRegister(0x10 + 2 * 10) & 0x4000).toBe(0);
  });

  it("unmasking a level entry with its input asserted delivers it", () => {
    const { device, messages, writeRegister } = ioapic();
    writeRegister(0x10 + 2 * 9, 0x00018050);
    device.setIrq(9, true);
    expect(messages).toHaveLength(0);
    writeRegister(0x10 + 2 * 9, 0x00008050);
    expect(messages.map((m) => [m.vector, m.level])).toEqual([[0x50, true]]);
  });

  it("ignores narrow writes and unknown offsets; reads of other offsets float", () => {
    const { device, readRegister } = ioapic();
    device.write(0x00, 1, 0x01);
    device.write(0x20, 4, 0x01);
    expect(readRegister(0x01) & 0xff).toBe(0x11);
    expect(device.read(0x20, 4)).toBe(0xffffffff);
    expect(readRegister(0x80)).toBe(0);
  });

  it("saves and restores its state", () => {
    const a = ioapic();
    a.writeRegister(0x12, 0x0000a033);
    a.device.setIrq(1, true);
    const saved = JSON.parse(JSON.stringify(a.device.state())) as IoApicState;
    const b = ioapic();
    b.device.fromState(saved);
    expect(b.readRegister(0x12)).toBe(0x0000e033);
    b.device.eoi(0x33);
    expect(b.messages).toHaveLength(1);
    expect(() => b.device.fromState({ ...saved, kind: "x" } as never)).toThrow(IoApicStateError);
  });
});
