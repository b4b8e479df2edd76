import { describe, expect, it } from "vitest";
import {
  Pl011Flag as F,
  Pl011Interrupt as I,
  Pl011,
  type Pl011State,
  Pl011StateError,
  Pl011Register as R,
} from "../src/index";

// Behaviour from Arm DDI 0183G (PrimeCell UART PL011 TRM); section numbers in the names.

function setup() {
  const output: number[] = [];
  const levels: boolean[] = [];
  const uart = new Pl011({
    output: (byte) => output.push(byte),
    interrupt: (asserted) => levels.push(asserted),
  });
  return { uart, output, levels };
}

describe("PL011 UART (DDI 0183G)", () => {
  it("identifies as PrimeCell part 0x011 by Arm, revision 3 (3.3.15-16): Linux's AMBA id 0x00341011", () => {
    const { uart } = setup();
    const id = [0, 1, 2, 3].map((i) => uart.read(R.PeriphId0 + 4 * i, 4));
    expect(id[0] | (id[1] << 8) | (id[2] << 16) | (id[3] << 24)).toBe(0x00341011);
    const cell = [0, 1, 2, 3].map((i) => uart.read(R.CellId0 + 4 * i, 4));
    expect((cell[0] | (cell[1] << 8) | (cell[2] << 16) | (cell[3] << 24)) >>> 0).toBe(0xb105f00d);
  });

  it("resets with TXE/RXE, both FIFO levels at 1/2, empty FIFOs (3.3)", () => {
    const { uart } = setup();
    expect(uart.read(R.Control, 4)).toBe(0x300);
    expect(uart.read(R.FifoLevelSelect, 4)).toBe(0x12);
    expect(uart.read(R.Flag, 4) & (F.TransmitFifoEmpty | F.ReceiveFifoEmpty | F.Busy)).toBe(
      F.TransmitFifoEmpty | F.ReceiveFifoEmpty,
    );
  });

  it("transmits data writes at once and raises TXRIS, cleared by UARTICR (2.8.2)", () => {
    const { uart, output, levels } = setup();
    uart.write(R.InterruptMask, 4, I.Transmit);
    for (const byte of Buffer.from("ok\n")) uart.write(R.Data, 4, byte);
    expect(Buffer.from(output).toString()).toBe("ok\n");
    expect(uart.read(R.RawInterruptStatus, 4)).toBe(I.Transmit);
    expect(uart.read(R.MaskedInterruptStatus, 4)).toBe(I.Transmit);
    expect(levels).toEqual([true]);
    uart.write(R.InterruptClear, 4, I.Transmit);
    expect(levels).toEqual([true, false]);
    expect(uart.read(R.Flag, 4) & F.TransmitFifoFull).toBe(0);
  });

  it("without FIFOs one byte is held: RXRIS, RXFF, and enqueue takes one (2.4.3)", () => {
    const { uart, levels } = setup();
    uart.write(R.InterruptMask, 4, I.Receive | I.ReceiveTimeout);
    expect(uart.enqueue([0x61, 0x62])).toBe(1);
    expect(uart.receiveSpace).toBe(0);
    expect(uart.read(R.Flag, 4) & (F.ReceiveFifoFull | F.ReceiveFifoEmpty)).toBe(F.ReceiveFifoFull);
    expect(uart.read(R.RawInterruptStatus, 4) & I.Receive).toBe(I.Receive);
    expect(levels).toEqual([true]);
    expect(uart.read(R.Data, 4)).toBe(0x61);
    expect(uart.read(R.Flag, 4) & F.ReceiveFifoEmpty).toBe(F.ReceiveFifoEmpty);
    expect(levels).toEqual([true, false]);
  });

  it("with FIFOs: 32 entries, RXRIS at the trigger level, the timeout below it (2.8.1, 3.3.9)", () => {
    const { uart } = setup();
    uart.write(R.LineControl, 4, 0x70); // 8 bits, FEN
    uart.write(R.FifoLevelSelect, 4, 0 << 3); // receive at 1/8 = 4 entries
    uart.write(R.InterruptMask, 4, I.Receive | I.ReceiveTimeout);
    expect(uart.enqueue([1, 2, 3])).toBe(3);
    expect(uart.read(R.MaskedInterruptStatus, 4)).toBe(I.ReceiveTimeout);
    uart.enqueue([4]);
    expect(uart.read(R.MaskedInterruptStatus, 4) & I.Receive).toBe(I.Receive);
    expect(uart.enqueue(new Uint8Array(40))).toBe(28);
    expect(uart.read(R.Flag, 4) & F.ReceiveFifoFull).toBe(F.ReceiveFifoFull);
    let drained = 0;
    while (!(uart.read(R.Flag, 4) & F.ReceiveFifoEmpty)) {
      uart.read(R.Data, 4);
      drained++;
    }
    expect(drained).toBe(32);
    expect(uart.read(R.MaskedInterruptStatus, 4)).toBe(0);
    expect(uart.interruptAsserted).toBe(false);
  });

  it("loopback feeds the receiver; an overrun sets OE in the data and UARTRSR (3.3.1-2, 3.3.8)", () => {
    const { uart, output } = setup();
    uart.write(R.Control, 4, 0x381); // UARTEN, LBE, TXE, RXE
    uart.write(R.Data, 4, 0x41);
    uart.write(R.Data, 4, 0x42); // one-byte holding register: overrun
    expect(output).toEqual([]);
    expect(uart.read(R.RawInterruptStatus, 4) & I.Overrun).toBe(I.Overrun);
    expect(uart.read(R.Data, 4)).toBe(0x41 | (1 << 11));
    expect(uart.read(R.ReceiveStatus, 4)).toBe(1 << 3);
    uart.write(R.ReceiveStatus, 4, 0);
    expect(uart.read(R.ReceiveStatus, 4)).toBe(0);
  });

  it("keeps the baud divisors and line control as written (3.3.5-7)", () => {
    const { uart } = setup();
    uart.write(R.IntegerBaudRate, 4, 0x1_0013);
    uart.write(R.FractionalBaudRate, 4, 0xff);
    uart.write(R.LineControl, 4, 0x60);
    expect(uart.read(R.IntegerBaudRate, 4)).toBe(0x13);
    expect(uart.read(R.FractionalBaudRate, 4)).toBe(0x3f);
    expect(uart.read(R.LineControl, 4)).toBe(0x60);
  });

  it("state() survives JSON; fromState checks kind and version", () => {
    const { uart } = setup();
    uart.write(R.LineControl, 4, 0x70);
    uart.write(R.InterruptMask, 4, I.Receive | I.ReceiveTimeout);
    uart.enqueue([7, 8, 9]);
    const saved = JSON.parse(JSON.stringify(uart.state())) as Pl011State;
    const copy = new Pl011();
    copy.fromState(saved);
    expect(copy.state()).toEqual(uart.state());
    expect(copy.interruptAsserted).toBe(true);
    expect(copy.read(R.Data, 4)).toBe(7);
    expect(() => copy.fromState({ ...saved, version: 2 } as unknown as Pl011State)).toThrow(
      Pl011StateError,
    );
  });
});
