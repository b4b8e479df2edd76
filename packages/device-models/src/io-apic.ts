/**
 * The I/O APIC (Intel 82093AA datasheet, order 290566): 24 interrupt
 * inputs, each with a 64-bit redirection table entry, reached through the
 * indirect IOREGSEL (offset 0x00) / IOWIN (offset 0x10) pair in a 4 KiB
 * MMIO page (PC default base 0xFEC00000).
 *
 * Modelled: the ID (bits 27:24), version (0x11, 24 entries) and arbitration
 * ID registers, the redirection table (vector, delivery mode, destination
 * mode, delivery status, polarity, remote IRR, trigger mode, mask,
 * destination), edge inputs (a rising edge on an unmasked input sends one
 * message; a masked edge is lost, datasheet 3.2.4), level inputs (a message
 * while the input is asserted and remote IRR is clear; remote IRR is set on
 * delivery and cleared by the local APIC's EOI of that vector, after which a
 * still-asserted input sends again). Inputs are logical levels (asserted or
 * not): the polarity bit is stored and reported only, as Xen's vioapic and
 * QEMU do, because the VMM drives the lines. Delivery goes out through
 * `deliver` as the message the APIC bus would carry; the VMM picks the
 * local APIC(s). IOREGSEL/IOWIN are 32-bit registers; other sizes read the
 * bytes of the register and narrow writes are ignored (the datasheet allows
 * only dword accesses).
 */

export const IO_APIC_DEFAULT_BASE = 0xfec00000;
export const IO_APIC_SIZE = 0x1000;
/** 82093AA: 24 redirection entries. */
export const IO_APIC_PINS = 24;
const IO_APIC_VERSION = 0x11;

const REDIRECT_MASK = 1 << 16;
const REDIRECT_LEVEL = 1 << 15;
const REDIRECT_REMOTE_IRR = 1 << 14;
const REDIRECT_DELIVERY_STATUS = 1 << 12;
/** Writable bits of an entry's low dword: all but delivery status and remote IRR. */
const REDIRECT_LOW_WRITABLE = 0x1afff;

/** One interrupt message as the 82093AA sends it to the local APICs. */
export interface IoApicMessage {
  readonly vector: number;
  /** 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT. */
  readonly deliveryMode: number;
  /** False physical (APIC ID), true logical (LDR/DFR match). */
  readonly logical: boolean;
  readonly destination: number;
  readonly level: boolean;
  /** The input pin. */
  readonly pin: number;
}

export interface IoApicOptions {
  /** The APIC ID in register 0 (default 0; the MP table / MADT says which). */
  id?: number;
  /** Send an interrupt message to the local APIC(s) it addresses. */
  deliver: (message: IoApicMessage) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface IoApicState {
  readonly kind: "io-apic";
  readonly version: 1;
  readonly id: number;
  readonly select: number;
  /** Redirection entries as [low, high] dwords. */
  readonly redirection: readonly (readonly [number, number])[];
  /** Input levels (bit per pin). */
  readonly lines: number;
}

export class IoApicStateError extends Error {
  override name = "IoApicStateError";
}

export class IoApic {
  private readonly deliverMessage: (message: IoApicMessage) => void;
  private id: number;
  private select = 0;
  private readonly low = new Uint32Array(IO_APIC_PINS);
  private readonly high = new Uint32Array(IO_APIC_PINS);
  private lines = 0;

  constructor(options: IoApicOptions) {
    this.deliverMessage = options.deliver;
    this.id = (options.id ?? 0) & 0xf;
    // Reset: every entry masked (datasheet 3.2.4).
    this.low.fill(REDIRECT_MASK);
  }

  /** The redirection entry of `pin` as [low, high] (for tests and the VMM's routing). */
  entry(pin: number): [number, number] {
    return [this.low[pin], this.high[pin]];
  }

  read(offset: number, size: 1 | 2 | 4): number {
    const register = offset & ~3;
    let value: number;
    if (register === 0x00) value = this.select;
    else if (register === 0x10) value = this.readRegister(this.select);
    else return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return size === 4 ? value >>> 0 : (value >>> (8 * (offset & 3))) & ((1 << (8 * size)) - 1);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || offset & 3) return;
    if (offset === 0x00) this.select = value & 0xff;
    else if (offset === 0x10) this.writeRegister(this.select, value >>> 0);
  }

  /** An input changed: `asserted` is the logical level (see the file comment). */
  setIrq(pin: number, asserted: boolean): void {
    if (pin < 0 || pin >= IO_APIC_PINS) return;
    const bit = 1 << pin;
    const was = (this.lines & bit) !== 0;
    if (asserted) this.lines |= bit;
    else this.lines &= ~bit;
    if (!asserted) return;
    const low = this.low[pin];
    if (low & REDIRECT_LEVEL) this.serviceLevel(pin);
    else if (!was && !(low & REDIRECT_MASK)) this.send(pin);
  }

  /** The local APIC's EOI broadcast for a level-triggered `vector` (82093AA 3.2.4 remote IRR). */
  eoi(vector: number): void {
    for (let pin = 0; pin < IO_APIC_PINS; pin++) {
      const low = this.low[pin];
      if ((low & 0xff) !== vector || !(low & REDIRECT_REMOTE_IRR)) continue;
      this.low[pin] = low & ~REDIRECT_REMOTE_IRR;
      this.serviceLevel(pin);
    }
  }

  private serviceLevel(pin: number): void {
    const low = this.low[pin];
    if (!(this.lines & (1 << pin)) || low & (REDIRECT_MASK | REDIRECT_REMOTE_IRR)) return;
    this.low[pin] = low | REDIRECT_REMOTE_IRR;
    this.send(pin);
  }

  private send(pin: number): void {
    const low = this.low[pin];
    const high = this.high[pin];
    this.deliverMessage({
      vector: low & 0xff,
      deliveryMode: (low >>> 8) & 7,
      logical: (low & (1 << 11)) !== 0,
      destination: high >>> 24,
      level: (low & REDIRECT_LEVEL) !== 0,
      pin,
    });
  }

  private readRegister(select: number): number {
    if (select === 0x00) return this.id << 24;
    if (select === 0x01) return ((IO_APIC_PINS - 1) << 16) | IO_APIC_VERSION;
    // Arbitration ID: loaded from the ID (datasheet 3.2.3).
    if (select === 0x02) return this.id << 24;
    if (select >= 0x10 && select < 0x10 + 2 * IO_APIC_PINS) {
      const pin = (select - 0x10) >> 1;
      return select & 1 ? this.high[pin] : this.low[pin];
    }
    // Unimplemented registers read as zero.
    return 0;
  }

  private writeRegister(select: number, value: number): void {
    if (select === 0x00) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    if (select < 0x10 || select >= 0x10 + 2 * IO_APIC_PINS) return;
    const pin = (select - 0x10) >> 1;
    if (select & 1) {
      // Only the destination field (bits 63:56) exists in the high dword.
      this.high[pin] = value & 0xff000000;
      return;
    }
    const kept = this.low[pin] & (REDIRECT_REMOTE_IRR | REDIRECT_DELIVERY_STATUS);
    let low = (value & REDIRECT_LOW_WRITABLE) | kept;
    // Remote IRR is undefined for edge entries; clear it when the entry becomes edge (Xen vioapic does).
    if (!(low & REDIRECT_LEVEL)) low &= ~REDIRECT_REMOTE_IRR;
    this.low[pin] = low >>> 0;
    // Unmasking a level entry whose input is asserted sends it.
    if (low & REDIRECT_LEVEL) this.serviceLevel(pin);
  }

  state(): IoApicState {
    return {
      kind: "io-apic",
      version: 1,
      id: this.id,
      select: this.select,
      redirection: Array.from(this.low, (low, pin) => [low, this.high[pin]] as const),
      lines: this.lines,
    };
  }

  fromState(state: IoApicState): void {
    if (state === null || typeof state !== "object" || state.kind !== "io-apic")
      throw new IoApicStateError('not an I/O APIC state (kind must be "io-apic")');
    if (state.version !== 1)
      throw new IoApicStateError(
        `I/O APIC state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.redirection) || state.redirection.length !== IO_APIC_PINS)
      throw new IoApicStateError(
        `I/O APIC state field redirection must hold ${IO_APIC_PINS} entries`,
      );
    this.id = state.id & 0xf;
    this.select = state.select & 0xff;
    state.redirection.forEach(([low, high], pin) => {
      this.low[pin] = low >>> 0;
      this.high[pin] = high >>> 0;
    });
    this.lines = state.lines >>> 0;
  }
}
