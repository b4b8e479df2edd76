import { describe, expect, it } from "vitest";
import {
  LineStatus,
  SerialRegister as R,
  Serial16550,
  type Serial16550State,
  Serial16550StateError,
} from "../src/index";

function setup() {
  const output: number[] = [];
  const levels: boolean[] = [];
  const uart = new Serial16550({
    output: (byte) => output.push(byte),
    interrupt: (asserted) => levels.push(asserted),
  });
  return { uart, output, levels };
}

const iir = (uart: Serial16550) => uart.read(R.InterruptIdentification, 1);

describe("16550A UART (PC16550D)", () => {
  it("transmits THR writes at once and reports the transmitter empty", () => {
    const { uart, output } = setup();
    for (const byte of Buffer.from("hi\n")) uart.write(R.Data, 1, byte);
    expect(Buffer.from(output).toString()).toBe("hi\n");
    expect(uart.read(R.LineStatus, 1)).toBe(
      LineStatus.TransmitterHoldingEmpty | LineStatus.TransmitterEmpty,
    );
  });

  it("DLAB switches offsets 0 and 1 to the divisor latch", () => {
    const { uart, output } = setup();
    uart.write(R.LineControl, 1, 0x83);
    uart.write(R.Data, 1, 0x01);
    uart.write(R.InterruptEnable, 1, 0x00);
    expect(uart.read(R.Data, 1)).toBe(1);
    expect(uart.read(R.InterruptEnable, 1)).toBe(0);
    uart.write(R.LineControl, 1, 0x03);
    expect(output).toEqual([]);
    expect(uart.read(R.InterruptEnable, 1)).toBe(0);
    expect(uart.read(R.LineControl, 1)).toBe(3);
  });

  it("receives into a 16-byte FIFO with host-side flow control", () => {
    const { uart } = setup();
    expect(uart.enqueue([1, 2])).toBe(1); // FIFOs off: one holding byte
    uart.write(R.InterruptIdentification, 1, 0x01);
    expect(uart.read(R.Data, 1)).toBe(0); // toggling FCR.enable cleared it
    expect(uart.enqueue(new Uint8Array(20).map((_, i) => i))).toBe(16);
    expect(uart.receiveSpace).toBe(0);
    expect(uart.read(R.LineStatus, 1) & LineStatus.DataReady).toBe(1);
    const got: number[] = [];
    while (uart.read(R.LineStatus, 1) & LineStatus.DataReady) got.push(uart.read(R.Data, 1));
    expect(got).toEqual([...Array(16).keys()]);
    expect(uart.read(R.LineStatus, 1) & LineStatus.OverrunError).toBe(0);
  });

  it("IIR reports FIFOs, trigger level vs character timeout, and priorities", () => {
    const { uart } = setup();
    uart.write(R.InterruptIdentification, 1, 0x81); // FIFO on, trigger 8
    uart.write(R.InterruptEnable, 1, 0x01);
    expect(iir(uart)).toBe(0xc1);
    uart.enqueue([1, 2, 3]);
    expect(iir(uart)).toBe(0xcc); // below the trigger: timeout
    uart.enqueue([4, 5, 6, 7, 8]);
    expect(iir(uart)).toBe(0xc4);
    uart.write(R.InterruptIdentification, 1, 0x83); // clear receive FIFO
    expect(iir(uart)).toBe(0xc1);
  });

  it("THR-empty: raised on enable and after a write, cleared by reading the IIR", () => {
    const { uart, levels } = setup();
    uart.write(R.InterruptEnable, 1, 0x02);
    expect(uart.interruptAsserted).toBe(true);
    expect(iir(uart)).toBe(0x02);
    expect(iir(uart)).toBe(0x01);
    expect(uart.interruptAsserted).toBe(false);
    uart.write(R.Data, 1, 0x41);
    expect(uart.interruptAsserted).toBe(true);
    expect(levels).toEqual([true, false, true]);
  });

  it("received data outranks THR empty; the IRQ line is gated by OUT2", () => {
    const { uart } = setup();
    uart.write(R.InterruptEnable, 1, 0x03);
    uart.enqueue([0x61]);
    expect(iir(uart)).toBe(0x04);
    uart.write(R.ModemControl, 1, 0x00);
    expect(uart.interruptAsserted).toBe(false);
    uart.write(R.ModemControl, 1, 0x08);
    expect(uart.interruptAsserted).toBe(true);
    expect(uart.read(R.Data, 1)).toBe(0x61);
    expect(iir(uart)).toBe(0x02);
  });

  it("loopback feeds the receiver, wires MCR to MSR with deltas, and overruns", () => {
    const { uart, output } = setup();
    uart.write(R.ModemControl, 1, 0x10);
    expect(uart.read(R.ModemStatus, 1) & 0xf0).toBe(0);
    uart.write(R.ModemControl, 1, 0x1f);
    expect(uart.read(R.ModemStatus, 1)).toBe(0xf0 | 0x0b);
    expect(uart.read(R.ModemStatus, 1)).toBe(0xf0); // deltas cleared by the read
    uart.write(R.Data, 1, 0x55);
    uart.write(R.Data, 1, 0x66); // FIFOs off: overrun
    expect(output).toEqual([]);
    expect(uart.read(R.LineStatus, 1) & (LineStatus.OverrunError | LineStatus.DataReady)).toBe(3);
    expect(uart.read(R.LineStatus, 1) & LineStatus.OverrunError).toBe(0);
    expect(uart.read(R.Data, 1)).toBe(0x55);
  });

  it("line status interrupt has the highest priority and clears on LSR read", () => {
    const { uart } = setup();
    uart.write(R.ModemControl, 1, 0x18);
    uart.write(R.InterruptEnable, 1, 0x07);
    uart.write(R.Data, 1, 1);
    uart.write(R.Data, 1, 2);
    expect(iir(uart)).toBe(0x06);
    uart.read(R.LineStatus, 1);
    expect(iir(uart)).toBe(0x04);
  });

  it("outside loopback the modem lines read connected (CTS, DSR, DCD)", () => {
    const { uart } = setup();
    expect(uart.read(R.ModemStatus, 1)).toBe(0xb0);
  });

  it("scratch register holds a byte; wide accesses cover consecutive registers; beyond 7 reads 0xFF", () => {
    const { uart } = setup();
    uart.write(R.Scratch, 1, 0x5a);
    expect(uart.read(R.Scratch, 1)).toBe(0x5a);
    expect(uart.read(R.LineControl, 2)).toBe(0x0803);
    expect(uart.read(R.Scratch, 2)).toBe(0xff5a);
    uart.write(8, 1, 1);
  });

  it("never throws for any offset, size and value", () => {
    const { uart } = setup();
    for (let offset = 0; offset < 12; offset++)
      for (const size of [1, 2, 4] as const)
        for (let value = 0; value < 256; value += 17) {
          uart.write(offset, size, value * 0x01010101);
          uart.read(offset, size);
        }
    expect(typeof uart.interruptAsserted).toBe("boolean");
  });

  it("state round-trips through JSON with FIFO contents", () => {
    const { uart } = setup();
    uart.write(R.InterruptIdentification, 1, 0xc1);
    uart.write(R.InterruptEnable, 1, 0x01);
    uart.enqueue([7, 8, 9]);
    uart.read(R.Data, 1);
    const saved = JSON.parse(JSON.stringify(uart.state())) as Serial16550State;
    const other = setup();
    other.uart.fromState(saved);
    expect(other.uart.state()).toEqual(uart.state());
    expect(other.uart.interruptAsserted).toBe(true);
    expect(other.uart.read(R.Data, 1)).toBe(8);
    expect(() =>
      other.uart.fromState({ ...saved, version: 9 } as unknown as Serial16550State),
    ).toThrow(Serial16550StateError);
  });
});
