import { describe, expect, it } from "vitest";
import { PicPair, type PicPairState, PicPairStateError } from "../src/index";

/** Programs the pair as Linux's init_8259A does (arch/x86/kernel/i8259.c): vectors 0x30/0x38 here. */
function initialized(autoEoi = false) {
  const levels: boolean[] = [];
  const pic = new PicPair({ interrupt: (asserted) => levels.push(asserted) });
  pic.master.write(1, 1, 0xff);
  pic.slave.write(1, 1, 0xff);
  pic.master.write(0, 1, 0x11); // ICW1: edge, cascade, ICW4
  pic.master.write(1, 1, 0x30); // ICW2
  pic.master.write(1, 1, 0x04); // ICW3: slave on IR2
  pic.master.write(1, 1, autoEoi ? 0x03 : 0x01); // ICW4: 8086 mode
  pic.slave.write(0, 1, 0x11);
  pic.slave.write(1, 1, 0x38);
  pic.slave.write(1, 1, 0x02);
  pic.slave.write(1, 1, autoEoi ? 0x03 : 0x01);
  pic.master.write(1, 1, 0x00);
  pic.slave.write(1, 1, 0x00);
  return { pic, levels };
}

const eoi = (window: PicPair["master"]) => window.write(0, 1, 0x20);

describe("8259A pair", () => {
  it("delivers an edge IRQ at vector base + IR and holds lower ones until EOI", () => {
    const { pic, levels } = initialized();
    pic.setIrq(4, true);
    pic.setIrq(1, true);
    expect(pic.hasPending()).toBe(true);
    expect(levels).toEqual([true]);
    expect(pic.acknowledge()).toBe(0x31);
    expect(pic.hasPending()).toBe(false); // IR4 is below IR1 in service
    pic.master.write(0, 1, 0x0b); // OCW3: read ISR
    expect(pic.master.read(0, 1)).toBe(0x02);
    eoi(pic.master);
    expect(pic.acknowledge()).toBe(0x34);
    eoi(pic.master);
    expect(pic.master.read(0, 1)).toBe(0);
  });

  it("an edge needs a new rising edge; the mask holds the request", () => {
    const { pic } = initialized();
    pic.master.write(1, 1, 0x01);
    pic.setIrq(0, true);
    expect(pic.hasPending()).toBe(false);
    pic.master.write(0, 1, 0x0a); // read IRR
    expect(pic.master.read(0, 1)).toBe(0x01);
    pic.master.write(1, 1, 0x00);
    expect(pic.acknowledge()).toBe(0x30);
    eoi(pic.master);
    pic.setIrq(0, true); // still high: no edge
    expect(pic.hasPending()).toBe(false);
    pic.setIrq(0, false);
    pic.setIrq(0, true);
    expect(pic.acknowledge()).toBe(0x30);
  });

  it("routes slave IRQs through the cascade on IR2", () => {
    const { pic } = initialized();
    pic.setIrq(12, true);
    expect(pic.acknowledge()).toBe(0x3c);
    pic.master.write(0, 1, 0x0b);
    pic.slave.write(0, 1, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0x04);
    expect(pic.slave.read(0, 1)).toBe(0x10);
    eoi(pic.slave);
    eoi(pic.master);
    expect(pic.master.read(0, 1)).toBe(0);
  });

  it("level-triggered lines (ELCR) re-request until the line drops", () => {
    const { pic } = initialized();
    pic.elcr.write(1, 1, 0xff);
    expect(pic.elcr.read(0, 2)).toBe(0xde00); // IRQ 8 and 13 cannot be level
    pic.setIrq(11, true);
    expect(pic.acknowledge()).toBe(0x3b);
    eoi(pic.slave);
    eoi(pic.master);
    expect(pic.hasPending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x3b);
    pic.setIrq(11, false);
    eoi(pic.slave);
    eoi(pic.master);
    expect(pic.hasPending()).toBe(false);
  });

  it("a vanished request answers the spurious IR7 vector without ISR", () => {
    const { pic } = initialized();
    expect(pic.acknowledge()).toBe(0x37);
    pic.master.write(0, 1, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0);
  });

  it("automatic EOI leaves nothing in service", () => {
    const { pic } = initialized(true);
    pic.setIrq(3, true);
    expect(pic.acknowledge()).toBe(0x33);
    pic.master.write(0, 1, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0);
  });

  it("poll command returns 0x80 | level and acknowledges", () => {
    const { pic } = initialized();
    pic.setIrq(5, true);
    pic.master.write(0, 1, 0x0c);
    expect(pic.master.read(0, 1)).toBe(0x85);
    pic.master.write(0, 1, 0x0b);
    expect(pic.master.read(0, 1)).toBe(0x20);
    pic.master.write(0, 1, 0x0c);
    expect(pic.master.read(0, 1)).toBe(0);
  });

  it("specific EOI, set priority and rotation change the order", () => {
    const { pic } = initialized();
    pic.setIrq(1, true);
    expect(pic.acknowledge()).toBe(0x31);
    pic.master.write(0, 1, 0x61); // specific EOI IR1
    pic.master.write(0, 1, 0xc4); // set priority: IR4 lowest, so IR5 highest
    pic.setIrq(3, true);
    pic.setIrq(6, true);
    expect(pic.acknowledge()).toBe(0x36);
    pic.master.write(0, 1, 0xa0); // rotate on non-specific EOI: IR6 becomes lowest
    expect(pic.acknowledge()).toBe(0x33);
  });

  it("special mask mode lets masked in-service levels stop blocking", () => {
    const { pic } = initialized();
    pic.setIrq(1, true);
    pic.acknowledge();
    pic.master.write(1, 1, 0x02); // mask IR1 while in service
    pic.master.write(0, 1, 0x68); // OCW3: set special mask
    pic.setIrq(5, true);
    expect(pic.acknowledge()).toBe(0x35);
  });

  it("IMR reads back; ICW1 resets the chip; never throws", () => {
    const { pic } = initialized();
    pic.master.write(1, 1, 0xa5);
    expect(pic.master.read(1, 1)).toBe(0xa5);
    pic.master.write(0, 1, 0x11);
    expect(pic.master.read(1, 1)).toBe(0);
    for (let offset = 0; offset < 4; offset++)
      for (const size of [1, 2, 4] as const)
        for (let value = 0; value < 256; value += 7) {
          pic.master.write(offset, size, value);
          pic.slave.write(offset, size, value);
          pic.elcr.write(offset, size, value);
          pic.master.read(offset, size);
          pic.slave.read(offset, size);
          pic.setIrq(value & 15, (value & 16) !== 0);
          if (pic.hasPending()) pic.acknowledge();
        }
    expect(typeof pic.hasPending()).toBe("boolean");
  });

  it("state round-trips through JSON", () => {
    const { pic } = initialized();
    pic.elcr.write(1, 1, 0x08);
    pic.setIrq(11, true);
    pic.setIrq(4, true);
    const saved = JSON.parse(JSON.stringify(pic.state())) as PicPairState;
    const other = new PicPair();
    other.fromState(saved);
    expect(other.state()).toEqual(pic.state());
    expect(other.hasPending()).toBe(true);
    expect(other.acknowledge()).toBe(0x3b);
    expect(() => other.fromState({ ...saved, version: 2 } as unknown as PicPairState)).toThrow(
      PicPairStateError,
    );
  });
});
