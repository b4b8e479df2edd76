/**
 * An Arm PrimeCell UART (PL011), r1p5 (Arm DDI 0183G "PrimeCell UART
 * (PL011) Technical Reference Manual"): data, receive status, flags, the
 * baud rate divisors, line and control registers, FIFO levels, the
 * interrupt mask/raw/masked/clear registers and the PrimeCell
 * identification registers that Linux's AMBA bus matches the driver by
 * (periph ID 0x00341011: part 0x011, designer 0x41 Arm, revision 3). The
 * SBSA generic UART (Arm DEN 0094, what Xen's `vuart = "sbsa_uart"` offers)
 * is a subset of these registers, so the same model serves both device
 * tree compatibles ("arm,pl011" and "arm,sbsa-uart").
 *
 * Bus-agnostic in the vm-superio shape (docs/style.md): the VMM maps
 * `read`/`write` (an `MmioHandler` of `@kumo/mmu`) at the base its device
 * tree gives, takes transmitted bytes through `output`, feeds received bytes
 * with `enqueue`, and follows the interrupt line (UARTINTR, the OR of the
 * masked interrupts) through `interrupt(asserted)`.
 *
 * Transmission is instant: the transmit FIFO is always empty when the guest
 * looks (UARTFR.TXFE = 1, BUSY = 0), and each byte written raises the
 * transmit interrupt (the FIFO passed through its trigger level on the way
 * back to empty, DDI 0183G 2.8.2; QEMU's hw/char/pl011.c does the same).
 * Bytes are sent whether or not UARTCR.UARTEN/TXE are set, as Xen's vpl011
 * and QEMU do, so that an early console works before the driver enables
 * the UART. The receive timeout interrupt is raised at once when the
 * receive FIFO holds data below its trigger level, since host input comes
 * in bursts (the 16550 model makes the same simplification).
 * Not modelled: DMA (UARTDMACR is stored only), IrDA, break/parity/framing
 * errors (host input has none), modem lines (CTS/DSR/DCD read as asserted).
 */

/** Register offsets (DDI 0183G table 3-1). */
export const Pl011Register = {
  Data: 0x000,
  /** Receive status (read) / error clear (write). */
  ReceiveStatus: 0x004,
  Flag: 0x018,
  IrdaLowPower: 0x020,
  IntegerBaudRate: 0x024,
  FractionalBaudRate: 0x028,
  LineControl: 0x02c,
  Control: 0x030,
  FifoLevelSelect: 0x034,
  InterruptMask: 0x038,
  RawInterruptStatus: 0x03c,
  MaskedInterruptStatus: 0x040,
  InterruptClear: 0x044,
  DmaControl: 0x048,
  PeriphId0: 0xfe0,
  CellId0: 0xff0,
} as const;

/** UARTFR bits (DDI 0183G 3.3.3). */
export const Pl011Flag = {
  ClearToSend: 1 << 0,
  DataSetReady: 1 << 1,
  DataCarrierDetect: 1 << 2,
  Busy: 1 << 3,
  ReceiveFifoEmpty: 1 << 4,
  TransmitFifoFull: 1 << 5,
  ReceiveFifoFull: 1 << 6,
  TransmitFifoEmpty: 1 << 7,
} as const;

/** Interrupt bits of UARTIMSC/RIS/MIS/ICR (DDI 0183G 3.3.10-3.3.13). */
export const Pl011Interrupt = {
  Receive: 1 << 4,
  Transmit: 1 << 5,
  ReceiveTimeout: 1 << 6,
  Overrun: 1 << 10,
} as const;

export const PL011_SIZE = 0x1000;
/** The receive FIFO is 32 entries deep (DDI 0183G 2.4.3). */
const FIFO_SIZE = 32;
/** Receive trigger levels by UARTIFLS.RXIFLSEL: 1/8, 1/4, 1/2, 3/4, 7/8 full (3.3.9). */
const RECEIVE_TRIGGER = [4, 8, 16, 24, 28] as const;
const LCR_FIFO_ENABLE = 1 << 4;
const CR_LOOPBACK = 1 << 7;
const DR_OVERRUN = 1 << 11;
const RSR_OVERRUN = 1 << 3;
/** PrimeCell ID registers, one byte each at 0xFE0-0xFFC (3.3.15-3.3.16). */
const PERIPH_ID = [0x11, 0x10, 0x34, 0x00] as const;
const CELL_ID = [0x0d, 0xf0, 0x05, 0xb1] as const;

export interface Pl011Options {
  /** A byte the guest transmitted (not called in loopback mode). */
  output?: (byte: number) => void;
  /** UARTINTR changed level (true = asserted). */
  interrupt?: (asserted: boolean) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface Pl011State {
  readonly kind: "pl011";
  readonly version: 1;
  readonly integerBaudRate: number;
  readonly fractionalBaudRate: number;
  readonly lineControl: number;
  readonly control: number;
  readonly fifoLevelSelect: number;
  readonly interruptMask: number;
  readonly rawInterrupts: number;
  readonly receiveStatus: number;
  readonly irdaLowPower: number;
  readonly dmaControl: number;
  /** Receive FIFO contents (data and error bits 11:8), oldest first. */
  readonly receive: readonly number[];
}

export class Pl011StateError extends Error {
  override name = "Pl011StateError";
}

export class Pl011 {
  private readonly output: ((byte: number) => void) | undefined;
  private readonly line: ((asserted: boolean) => void) | undefined;
  private integerBaudRate = 0;
  private fractionalBaudRate = 0;
  private lineControl = 0;
  /** Reset: TXE and RXE set, UART disabled (3.3.8). */
  private control = 0x300;
  /** Reset: both trigger levels 1/2 (3.3.9). */
  private fifoLevelSelect = 0x12;
  private interruptMask = 0;
  private rawInterrupts = 0;
  private receiveStatus = 0;
  private irdaLowPower = 0;
  private dmaControl = 0;
  private readonly receive = new Uint16Array(FIFO_SIZE);
  private receiveHead = 0;
  private receiveCount = 0;
  private asserted = false;

  constructor(options: Pl011Options = {}) {
    this.output = options.output;
    this.line = options.interrupt;
  }

  /** Bytes `enqueue` would accept now (host-side flow control: nothing is dropped). */
  get receiveSpace(): number {
    return this.capacity() - this.receiveCount;
  }

  /** Bytes from the outside world; takes what fits and returns how many. */
  enqueue(bytes: ArrayLike<number>): number {
    let taken = 0;
    while (taken < bytes.length && this.receiveCount < this.capacity()) {
      this.pushReceive(bytes[taken] & 0xff);
      taken++;
    }
    if (taken > 0) this.updateReceiveInterrupts();
    return taken;
  }

  /** The current level of UARTINTR. */
  get interruptAsserted(): boolean {
    return this.asserted;
  }

  read(offset: number, _size: 1 | 2 | 4): number {
    const R = Pl011Register;
    if (offset >= R.PeriphId0 && offset < R.PeriphId0 + 16 && !(offset & 3))
      return PERIPH_ID[(offset - R.PeriphId0) >>> 2];
    if (offset >= R.CellId0 && offset < R.CellId0 + 16 && !(offset & 3))
      return CELL_ID[(offset - R.CellId0) >>> 2];
    switch (offset) {
      case R.Data:
        return this.readData();
      case R.ReceiveStatus:
        return this.receiveStatus;
      case R.Flag:
        return this.flags();
      case R.IrdaLowPower:
        return this.irdaLowPower;
      case R.IntegerBaudRate:
        return this.integerBaudRate;
      case R.FractionalBaudRate:
        return this.fractionalBaudRate;
      case R.LineControl:
        return this.lineControl;
      case R.Control:
        return this.control;
      case R.FifoLevelSelect:
        return this.fifoLevelSelect;
      case R.InterruptMask:
        return this.interruptMask;
      case R.RawInterruptStatus:
        return this.rawInterrupts;
      case R.MaskedInterruptStatus:
        return this.rawInterrupts & this.interruptMask;
      case R.DmaControl:
        return this.dmaControl;
      default:
        // Reserved and write-only (UARTICR) offsets read as zero.
        return 0;
    }
  }

  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    const R = Pl011Register;
    switch (offset) {
      case R.Data:
        this.writeData(value & 0xff);
        return;
      case R.ReceiveStatus:
        // UARTECR: any write clears the error flags (3.3.2).
        this.receiveStatus = 0;
        return;
      case R.IrdaLowPower:
        this.irdaLowPower = value & 0xff;
        return;
      case R.IntegerBaudRate:
        this.integerBaudRate = value & 0xffff;
        return;
      case R.FractionalBaudRate:
        this.fractionalBaudRate = value & 0x3f;
        return;
      case R.LineControl:
        // Switching the FIFOs off or on flushes them (the 16550 does; Linux reprograms LCR_H only with the FIFO drained).
        if ((value ^ this.lineControl) & LCR_FIFO_ENABLE) {
          this.receiveHead = 0;
          this.receiveCount = 0;
        }
        this.lineControl = value & 0xff;
        this.updateReceiveInterrupts();
        return;
      case R.Control:
        this.control = value & 0xff87;
        return;
      case R.FifoLevelSelect:
        this.fifoLevelSelect = value & 0x3f;
        this.updateReceiveInterrupts();
        return;
      case R.InterruptMask:
        this.interruptMask = value & 0x7ff;
        this.updateLine();
        return;
      case R.InterruptClear:
        this.rawInterrupts &= ~value;
        // A receive FIFO still at or above its level raises the interrupt again at once.
        this.updateReceiveInterrupts();
        return;
      case R.DmaControl:
        this.dmaControl = value & 0x7;
        return;
      default:
        return;
    }
  }

  private readData(): number {
    if (this.receiveCount === 0) return 0;
    const entry = this.receive[this.receiveHead];
    this.receiveHead = (this.receiveHead + 1) % FIFO_SIZE;
    this.receiveCount--;
    // The error bits travel with the byte; UARTRSR shows those of the last byte read (3.3.2).
    this.receiveStatus |= (entry >>> 8) & 0xf;
    // Reading clears the receive and timeout interrupts as the FIFO drains (3.3.12).
    this.rawInterrupts &= ~(Pl011Interrupt.Receive | Pl011Interrupt.ReceiveTimeout);
    this.updateReceiveInterrupts();
    return entry;
  }

  private writeData(byte: number): void {
    if (this.control & CR_LOOPBACK) {
      // Loopback: the transmitter feeds the receiver (3.3.8 LBE).
      if (this.receiveCount < this.capacity()) this.pushReceive(byte);
      else this.overrun();
      this.updateReceiveInterrupts();
    } else {
      this.output?.(byte);
    }
    this.rawInterrupts |= Pl011Interrupt.Transmit;
    this.updateLine();
  }

  private overrun(): void {
    // The byte is lost; the last FIFO entry carries OE (3.3.1) and UARTRSR.OE is set.
    const last = (this.receiveHead + this.receiveCount - 1) % FIFO_SIZE;
    this.receive[last] |= DR_OVERRUN;
    this.receiveStatus |= RSR_OVERRUN;
    this.rawInterrupts |= Pl011Interrupt.Overrun;
  }

  private flags(): number {
    let flags =
      Pl011Flag.TransmitFifoEmpty |
      Pl011Flag.ClearToSend |
      Pl011Flag.DataSetReady |
      Pl011Flag.DataCarrierDetect;
    if (this.receiveCount === 0) flags |= Pl011Flag.ReceiveFifoEmpty;
    if (this.receiveCount === this.capacity()) flags |= Pl011Flag.ReceiveFifoFull;
    return flags;
  }

  private capacity(): number {
    return this.lineControl & LCR_FIFO_ENABLE ? FIFO_SIZE : 1;
  }

  private pushReceive(byte: number): void {
    this.receive[(this.receiveHead + this.receiveCount) % FIFO_SIZE] = byte;
    this.receiveCount++;
  }

  /**
   * RXRIS: the FIFO is at or above its trigger level (with FIFOs off, holds
   * a byte); RTRIS: it holds data below that level (DDI 0183G 2.8.1).
   */
  private updateReceiveInterrupts(): void {
    const count = this.receiveCount;
    if (count > 0) {
      const level =
        this.lineControl & LCR_FIFO_ENABLE
          ? (RECEIVE_TRIGGER[(this.fifoLevelSelect >>> 3) & 7] ?? FIFO_SIZE)
          : 1;
      this.rawInterrupts |= count >= level ? Pl011Interrupt.Receive : Pl011Interrupt.ReceiveTimeout;
    }
    this.updateLine();
  }

  private updateLine(): void {
    const asserted = (this.rawInterrupts & this.interruptMask) !== 0;
    if (asserted === this.asserted) return;
    this.asserted = asserted;
    this.line?.(asserted);
  }

  state(): Pl011State {
    const receive: number[] = [];
    for (let i = 0; i < this.receiveCount; i++)
      receive.push(this.receive[(this.receiveHead + i) % FIFO_SIZE]);
    return {
      kind: "pl011",
      version: 1,
      integerBaudRate: this.integerBaudRate,
      fractionalBaudRate: this.fractionalBaudRate,
      lineControl: this.lineControl,
      control: this.control,
      fifoLevelSelect: this.fifoLevelSelect,
      interruptMask: this.interruptMask,
      rawInterrupts: this.rawInterrupts,
      receiveStatus: this.receiveStatus,
      irdaLowPower: this.irdaLowPower,
      dmaControl: this.dmaControl,
      receive,
    };
  }

  fromState(state: Pl011State): void {
    if (state === null || typeof state !== "object" || state.kind !== "pl011")
      throw new Pl011StateError('not a PL011 state (kind must be "pl011")');
    if (state.version !== 1)
      throw new Pl011StateError(
        `PL011 state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.receive) || state.receive.length > FIFO_SIZE)
      throw new Pl011StateError(`PL011 state field receive must hold at most ${FIFO_SIZE} entries`);
    this.integerBaudRate = state.integerBaudRate & 0xffff;
    this.fractionalBaudRate = state.fractionalBaudRate & 0x3f;
    this.lineControl = state.lineControl & 0xff;
    this.control = state.control & 0xff87;
    this.fifoLevelSelect = state.fifoLevelSelect & 0x3f;
    this.interruptMask = state.interruptMask & 0x7ff;
    this.rawInterrupts = state.rawInterrupts & 0x7ff;
    this.receiveStatus = state.receiveStatus & 0xf;
    this.irdaLowPower = state.irdaLowPower & 0xff;
    this.dmaControl = state.dmaControl & 0x7;
    this.receiveHead = 0;
    this.receiveCount = 0;
    for (const entry of state.receive) this.pushReceive(entry & 0xfff);
    this.updateLine();
  }
}
