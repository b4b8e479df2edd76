import { describe, expect, it } from "vitest";
import { PIT_FREQUENCY, Pit8254, type Pit8254State, Pit8254StateError } from "../src/index";

function setup() {
  const clock = {
    time: 0,
    deadline: Number.POSITIVE_INFINITY,
    now() {
      return this.time;
    },
    schedule(deadline: number) {
      this.deadline = deadline;
    },
  };
  const levels: boolean[] = [];
  const pit = new Pit8254({ clock, irq: (level) => levels.push(level) });
  const at = (ticks: number) => Math.ceil((ticks * 1e9) / PIT_FREQUENCY);
  const advanceTo = (ns: number) => {
    clock.time = ns;
    if (clock.time >= clock.deadline) pit.timerExpired();
  };
  return { pit, clock, levels, at, advanceTo };
}

/** Linux's LATCH for HZ=1000: (PIT_TICK_RATE + HZ/2) / HZ (include/linux/jiffies.h). */
const LATCH = Math.floor((PIT_FREQUENCY + 500) / 1000);

describe("8254 PIT", () => {
  it("mode 2 on counter 0 gives one IRQ 0 edge per period, as Linux's periodic tick programs it", () => {
    const { pit, clock, levels, at, advanceTo } = setup();
    pit.write(3, 1, 0x34); // counter 0, LSB then MSB, mode 2, binary (arch/x86/kernel/i8253.c)
    pit.write(0, 1, LATCH & 0xff);
    pit.write(0, 1, LATCH >>> 8);
    expect(levels).toEqual([true]);
    expect(clock.deadline).toBe(at(LATCH));
    advanceTo(at(LATCH));
    expect(levels).toEqual([true, false, true]);
    expect(clock.deadline).toBe(at(2 * LATCH));
    advanceTo(at(10 * LATCH) + 5); // missed periods collapse into one edge
    expect(levels).toEqual([true, false, true, false, true]);
    expect(clock.deadline).toBe(at(11 * LATCH));
  });

  it("counts down at 1.193182 MHz; the latch command freezes the count for LSB/MSB reads", () => {
    const { pit, clock, at } = setup();
    pit.write(3, 1, 0x34);
    pit.write(0, 1, LATCH & 0xff);
    pit.write(0, 1, LATCH >>> 8);
    clock.time = at(100);
    pit.write(3, 1, 0x00); // latch counter 0
    clock.time = at(500);
    const low = pit.read(0, 1);
    const high = pit.read(0, 1);
    expect(low | (high << 8)).toBe(LATCH - 100);
    // Unlatched reads follow the counter.
    expect(pit.read(0, 1) | (pit.read(0, 1) << 8)).toBe(LATCH - 500);
  });

  it("mode 0 raises OUT once at terminal count", () => {
    const { pit, clock, levels, at, advanceTo } = setup();
    pit.write(3, 1, 0x30);
    expect(levels).toEqual([]);
    pit.write(0, 1, 0x10);
    pit.write(0, 1, 0x00);
    expect(clock.deadline).toBe(at(16));
    advanceTo(at(16));
    expect(levels).toEqual([true]);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
    pit.write(3, 1, 0x30); // a new control word drops OUT in mode 0
    expect(levels).toEqual([true, false]);
  });

  it("read-back latches status (OUT, null count, access, mode) and count", () => {
    const { pit, clock, at } = setup();
    pit.write(3, 1, 0x36); // counter 0, mode 3
    expect(pit.write(3, 1, 0xe2)).toBeUndefined(); // read-back status+count of counter 0
    expect(pit.read(0, 1)).toBe(0x80 | 0x40 | 0x30 | 0x06);
    pit.write(0, 1, 0x00);
    pit.write(0, 1, 0x10); // 0x1000
    clock.time = at(0x100);
    pit.write(3, 1, 0xe2);
    expect(pit.read(0, 1)).toBe(0x80 | 0x30 | 0x06);
    expect(pit.read(0, 1) | (pit.read(0, 1) << 8)).toBe(0x1000 - 0x200); // mode 3 counts by two
  });

  it("port 0x61: counter 2 gate and OUT, speaker data, refresh toggle (Linux pit_calibrate_tsc style)", () => {
    const { pit, clock, at } = setup();
    pit.speakerPort.write(0, 1, 0x01); // gate high, speaker off
    pit.write(3, 1, 0xb0); // counter 2, LSB/MSB, mode 0
    pit.write(2, 1, 0xff);
    pit.write(2, 1, 0xff);
    expect(pit.speakerPort.read(0, 1) & 0x21).toBe(0x01);
    clock.time = at(0xffff);
    expect(pit.speakerPort.read(0, 1) & 0x20).toBe(0x20);
    const first = pit.speakerPort.read(0, 1) & 0x10;
    const second = pit.speakerPort.read(0, 1) & 0x10;
    expect(first ^ second).toBe(0x10);
    pit.speakerPort.write(0, 1, 0x03);
    expect(pit.speakerPort.read(0, 1) & 0x03).toBe(0x03);
  });

  it("mode 1 waits for a gate trigger", () => {
    const { pit, clock, at } = setup();
    pit.write(3, 1, 0xb2); // counter 2, mode 1
    pit.write(2, 1, 0x10);
    pit.write(2, 1, 0x00);
    clock.time = at(100);
    expect(pit.speakerPort.read(0, 1) & 0x20).toBe(0x20); // OUT high until triggered
    pit.speakerPort.write(0, 1, 0x01); // rising gate: one-shot starts, OUT low
    expect(pit.speakerPort.read(0, 1) & 0x20).toBe(0);
    clock.time += at(16) + 1;
    expect(pit.speakerPort.read(0, 1) & 0x20).toBe(0x20);
  });

  it("LSB-only and MSB-only access", () => {
    const { pit, clock, at } = setup();
    pit.write(3, 1, 0x54); // counter 1, LSB only, mode 2
    pit.write(1, 1, 0x12);
    expect(pit.read(1, 1)).toBe(0x12);
    pit.write(3, 1, 0x64); // counter 1, MSB only, mode 2
    pit.write(1, 1, 0x12);
    clock.time = at(0x100);
    expect(pit.read(1, 1)).toBe(0x11);
  });

  it("never throws; the control register reads 0xFF", () => {
    const { pit } = setup();
    expect(pit.read(3, 1)).toBe(0xff);
    for (let offset = 0; offset < 6; offset++)
      for (const size of [1, 2, 4] as const)
        for (let value = 0; value < 256; value += 5) {
          pit.write(offset, size, value);
          pit.read(offset, size);
          pit.speakerPort.write(offset & 1, 1, value);
          pit.timerExpired();
        }
    expect(pit.state().kind).toBe("pit-8254");
  });

  it("state round-trips through JSON", () => {
    const { pit, clock, at } = setup();
    pit.write(3, 1, 0x34);
    pit.write(0, 1, 0x00);
    pit.write(0, 1, 0x10);
    clock.time = at(0x20);
    const saved = JSON.parse(JSON.stringify(pit.state())) as Pit8254State;
    const other = setup();
    other.clock.time = clock.time;
    other.pit.fromState(saved);
    expect(other.pit.state()).toEqual(pit.state());
    expect(other.pit.read(0, 1) | (other.pit.read(0, 1) << 8)).toBe(0x1000 - 0x20);
    expect(other.clock.deadline).toBe(at(0x1000));
    expect(() => other.pit.fromState({ ...saved, version: 3 } as unknown as Pit8254State)).toThrow(
      Pit8254StateError,
    );
  });
});
