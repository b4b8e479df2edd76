/**
 * A 16550A UART (National Semiconductor PC16550D datasheet; the PC's COM1-4
 * at 0x3F8/0x2F8/0x3E8/0x2E8, IRQ 4/3): the eight registers with the
 * divisor latch, 16-byte receive and transmit FIFOs, the four-level
 * interrupt priority of the IIR, loopback, and the scratch register.
 *
 * Bus-agnostic in the vm-superio shape (docs/style.md): the VMM maps
 * `read`/`write` at the port base, takes transmitted bytes through
 * `output`, feeds received bytes with `enqueue`, and follows the interrupt
 * line through `interrupt(asserted)`. Transmission is instant (the
 * transmitter is always empty again when the guest looks), so the baud
 * rate only matters to the guest. As on a PC, the IRQ line is gated by
 * MCR.OUT2 (IBM PC/AT technical reference; Linux's 8250 driver sets OUT2).
 *
 * Simplification: the character timeout interrupt (IIR 0xC) is reported at
 * once when the receive FIFO holds fewer bytes than the trigger level,
 * instead of after four character times, since bytes arrive in host-sized
 * bursts anyway.
 */

/** Register offsets from the port base (PC16550D table II). */
export const SerialRegister = {
  /** Receiver buffer (read) / transmitter holding (write); divisor latch low with LCR.DLAB. */
  Data: 0,
  /** Interrupt enable; divisor latch high with LCR.DLAB. */
  InterruptEnable: 1,
  /** Interrupt identification (read) / FIFO control (write). */
  InterruptIdentification: 2,
  LineControl: 3,
  ModemControl: 4,
  LineStatus: 5,
  ModemStatus: 6,
  Scratch: 7,
} as const;

/** Line status bits. */
export const LineStatus = {
  DataReady: 0x01,
  OverrunError: 0x02,
  ParityError: 0x04,
  FramingError: 0x08,
  BreakInterrupt: 0x10,
  TransmitterHoldingEmpty: 0x20,
  TransmitterEmpty: 0x40,
  FifoError: 0x80,
} as const;

const FIFO_SIZE = 16;
const IER_RECEIVED_DATA = 0x01;
const IER_THR_EMPTY = 0x02;
const IER_LINE_STATUS = 0x04;
const IER_MODEM_STATUS = 0x08;
const IIR_NONE = 0x01;
const IIR_LINE_STATUS = 0x06;
const IIR_RECEIVED_DATA = 0x04;
const IIR_CHARACTER_TIMEOUT = 0x0c;
const IIR_THR_EMPTY = 0x02;
const IIR_MODEM_STATUS = 0x00;
const IIR_FIFOS_ENABLED = 0xc0;
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RECEIVE = 0x02;
const LCR_DLAB = 0x80;
const MCR_LOOPBACK = 0x10;
const MCR_OUT2 = 0x08;
/** FCR bits 7:6 select the receive trigger level (PC16550D FCR description). */
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Modem status outside loopback: CTS, DSR and DCD asserted (a terminal is always there), like vm-superio. */
const MSR_CONNECTED = 0xb0;

export interface Serial16550Options {
  /** A byte the guest transmitted (not called in loopback mode). */
  output?: (byte: number) => void;
  /** The IRQ line changed level (true = asserted). */
  interrupt?: (asserted: boolean) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface Serial16550State {
  readonly kind: "serial-16550";
  readonly version: 1;
  readonly divisor: number;
  readonly ier: number;
  readonly fcr: number;
  readonly lcr: number;
  readonly mcr: number;
  readonly lsr: number;
  readonly msr: number;
  readonly scratch: number;
  /** Receive FIFO contents, oldest first. */
  readonly receive: readonly number[];
  /** A THR-empty interrupt is pending (cleared by reading the IIR that reports it or writing THR). */
  readonly thrEmptyPending: boolean;
}

export class Serial16550StateError extends Error {
  override name = "Serial16550StateError";
}

export class Serial16550 {
  private readonly output: ((byte: number) => void) | undefined;
  private readonly line: ((asserted: boolean) => void) | undefined;
  private divisor = 12; // 9600 baud from the 1.8432 MHz clock, as a BIOS leaves it
  private ier = 0;
  private fcr = 0;
  private lcr = 0x03; // 8N1
  private mcr = 0x08; // OUT2, as firmware leaves it
  private lsr = LineStatus.TransmitterHoldingEmpty | LineStatus.TransmitterEmpty;
  private msr = MSR_CONNECTED;
  private scratch = 0;
  /** Receive FIFO as a ring (one byte deep when FIFOs are off). */
  private readonly receive = new Uint8Array(FIFO_SIZE);
  private receiveHead = 0;
  private receiveCount = 0;
  private thrEmptyPending = false;
  private asserted = false;

  constructor(options: Serial16550Options = {}) {
    this.output = options.output;
    this.line = options.interrupt;
  }

  /** Bytes `enqueue` would accept now (host-side flow control: nothing is dropped). */
  get receiveSpace(): number {
    return this.capacity() - this.receiveCount;
  }

  /**
   * Bytes from the outside world (a terminal). Accepts what fits in the
   * receive FIFO (one byte with FIFOs off) and returns how many were taken;
   * the host keeps the rest and retries after the guest reads.
   */
  enqueue(bytes: ArrayLike<number>): number {
    let taken = 0;
    while (taken < bytes.length && this.receiveCount < this.capacity()) {
      this.pushReceive(bytes[taken] & 0xff);
      taken++;
    }
    if (taken > 0) this.updateInterrupt();
    return taken;
  }

  /** Reads `size` bytes from consecutive registers (a 16-bit port read covers two). */
  read(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(offset + i) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
  }

  private readByte(offset: number): number {
    switch (offset) {
      case SerialRegister.Data: {
        if (this.lcr & LCR_DLAB) return this.divisor & 0xff;
        if (this.receiveCount === 0) return 0;
        const byte = this.receive[this.receiveHead];
        this.receiveHead = (this.receiveHead + 1) % FIFO_SIZE;
        this.receiveCount--;
        if (this.receiveCount === 0) this.lsr &= ~LineStatus.DataReady;
        this.updateInterrupt();
        return byte;
      }
      case SerialRegister.InterruptEnable:
        return this.lcr & LCR_DLAB ? this.divisor >>> 8 : this.ier;
      case SerialRegister.InterruptIdentification: {
        const id = this.interruptId();
        // Reading the IIR that reports THR empty clears that source (PC16550D table IV).
        if (id === IIR_THR_EMPTY) {
          this.thrEmptyPending = false;
          this.updateInterrupt();
        }
        return id | (this.fcr & FCR_ENABLE ? IIR_FIFOS_ENABLED : 0);
      }
      case SerialRegister.LineControl:
        return this.lcr;
      case SerialRegister.ModemControl:
        return this.mcr;
      case SerialRegister.LineStatus: {
        const value = this.lsr;
        // Reading the LSR clears the error bits (and the line-status interrupt).
        this.lsr &= ~(
          LineStatus.OverrunError |
          LineStatus.ParityError |
          LineStatus.FramingError |
          LineStatus.BreakInterrupt |
          LineStatus.FifoError
        );
        if (value !== this.lsr) this.updateInterrupt();
        return value;
      }
      case SerialRegister.ModemStatus: {
        const value = this.msr;
        // Reading the MSR clears the delta bits 3:0.
        this.msr &= 0xf0;
        if (value !== this.msr) this.updateInterrupt();
        return value;
      }
      case SerialRegister.Scratch:
        return this.scratch;
      default:
        // Beyond the eight registers: nothing decodes the address.
        return 0xff;
    }
  }

  private writeByte(offset: number, value: number): void {
    switch (offset) {
      case SerialRegister.Data:
        if (this.lcr & LCR_DLAB) {
          this.divisor = (this.divisor & 0xff00) | value;
          return;
        }
        if (this.mcr & MCR_LOOPBACK) {
          // Loopback: the transmitter feeds the receiver; an overrun is the guest's (PC16550D MCR bit 4).
          if (this.receiveCount < this.capacity()) this.pushReceive(value);
          else this.lsr |= LineStatus.OverrunError;
        } else {
          this.output?.(value);
        }
        // Sent at once: THR (and the shift register) are empty again.
        this.thrEmptyPending = true;
        this.updateInterrupt();
        return;
      case SerialRegister.InterruptEnable: {
        if (this.lcr & LCR_DLAB) {
          this.divisor = (this.divisor & 0xff) | (value << 8);
          return;
        }
        const enabling = value & ~this.ier;
        this.ier = value & 0x0f;
        // Enabling the THRE interrupt with THR empty raises it at once (Linux's 8250 probes rely on it).
        if (enabling & IER_THR_EMPTY) this.thrEmptyPending = true;
        this.updateInterrupt();
        return;
      }
      case SerialRegister.InterruptIdentification: {
        // FCR: toggling the enable bit clears both FIFOs.
        if ((value ^ this.fcr) & FCR_ENABLE) this.clearReceive();
        if (value & FCR_CLEAR_RECEIVE) this.clearReceive();
        // Bit 2 (clear transmit FIFO) has nothing to do: transmission is instant.
        this.fcr = value & (FCR_ENABLE | 0xc0);
        this.updateInterrupt();
        return;
      }
      case SerialRegister.LineControl:
        this.lcr = value;
        return;
      case SerialRegister.ModemControl:
        this.writeModemControl(value & 0x1f);
        return;
      case SerialRegister.LineStatus:
        // Factory test register on the real part; writes are ignored.
        return;
      case SerialRegister.ModemStatus:
        return;
      case SerialRegister.Scratch:
        this.scratch = value;
        return;
      default:
        return;
    }
  }

  private writeModemControl(value: number): void {
    this.mcr = value;
    const before = this.msr;
    let status: number;
    if (value & MCR_LOOPBACK) {
      // Loopback wiring: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD (PC16550D MCR bit 4).
      status =
        ((value & 0x02) << 3) |
        ((value & 0x01) << 5) |
        ((value & 0x04) << 4) |
        ((value & 0x08) << 4);
    } else {
      status = MSR_CONNECTED;
    }
    const changed = (before ^ status) & 0xf0;
    let delta = before & 0x0f;
    if (changed & 0x10) delta |= 0x01; // DCTS
    if (changed & 0x20) delta |= 0x02; // DDSR
    if (before & 0x40 && !(status & 0x40)) delta |= 0x04; // TERI: RI trailing edge
    if (changed & 0x80) delta |= 0x08; // DDCD
    this.msr = status | delta;
    this.updateInterrupt();
  }

  private capacity(): number {
    return this.fcr & FCR_ENABLE ? FIFO_SIZE : 1;
  }

  private pushReceive(byte: number): void {
    this.receive[(this.receiveHead + this.receiveCount) % FIFO_SIZE] = byte;
    this.receiveCount++;
    this.lsr |= LineStatus.DataReady;
  }

  private clearReceive(): void {
    this.receiveHead = 0;
    this.receiveCount = 0;
    this.lsr &= ~LineStatus.DataReady;
  }

  /** The highest-priority enabled source, as IIR bits 3:0 (PC16550D table IV). */
  private interruptId(): number {
    const ier = this.ier;
    if (
      ier & IER_LINE_STATUS &&
      this.lsr &
        (LineStatus.OverrunError |
          LineStatus.ParityError |
          LineStatus.FramingError |
          LineStatus.BreakInterrupt)
    ) {
      return IIR_LINE_STATUS;
    }
    if (ier & IER_RECEIVED_DATA && this.receiveCount > 0) {
      if (!(this.fcr & FCR_ENABLE)) return IIR_RECEIVED_DATA;
      return this.receiveCount >= TRIGGER_LEVELS[this.fcr >>> 6]
        ? IIR_RECEIVED_DATA
        : IIR_CHARACTER_TIMEOUT;
    }
    if (ier & IER_THR_EMPTY && this.thrEmptyPending) return IIR_THR_EMPTY;
    if (ier & IER_MODEM_STATUS && this.msr & 0x0f) return IIR_MODEM_STATUS;
    return IIR_NONE;
  }

  private updateInterrupt(): void {
    const asserted = this.interruptId() !== IIR_NONE && (this.mcr & MCR_OUT2) !== 0;
    if (asserted === this.asserted) return;
    this.asserted = asserted;
    this.line?.(asserted);
  }

  /** The current level of the IRQ line. */
  get interruptAsserted(): boolean {
    return this.asserted;
  }

  state(): Serial16550State {
    const receive: number[] = [];
    for (let i = 0; i < this.receiveCount; i++)
      receive.push(this.receive[(this.receiveHead + i) % FIFO_SIZE]);
    return {
      kind: "serial-16550",
      version: 1,
      divisor: this.divisor,
      ier: this.ier,
      fcr: this.fcr,
      lcr: this.lcr,
      mcr: this.mcr,
      lsr: this.lsr,
      msr: this.msr,
      scratch: this.scratch,
      receive,
      thrEmptyPending: this.thrEmptyPending,
    };
  }

  fromState(state: Serial16550State): void {
    if (state === null || typeof state !== "object" || state.kind !== "serial-16550")
      throw new Serial16550StateError('not a 16550 state (kind must be "serial-16550")');
    if (state.version !== 1)
      throw new Serial16550StateError(
        `16550 state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.receive) || state.receive.length > FIFO_SIZE)
      throw new Serial16550StateError(
        `16550 state field receive must hold at most ${FIFO_SIZE} bytes`,
      );
    this.divisor = state.divisor & 0xffff;
    this.ier = state.ier & 0x0f;
    this.fcr = state.fcr & (FCR_ENABLE | 0xc0);
    this.lcr = state.lcr & 0xff;
    this.mcr = state.mcr & 0x1f;
    this.lsr = state.lsr & 0xff;
    this.msr = state.msr & 0xff;
    this.scratch = state.scratch & 0xff;
    this.clearReceive();
    for (const byte of state.receive) this.pushReceive(byte & 0xff);
    this.thrEmptyPending = state.thrEmptyPending === true;
    this.updateInterrupt();
  }
}
