/**
 * The PC keyboard controller (Intel 8042 as programmed by the IBM PC/AT
 * BIOS; the command set in IBM's "Keyboard and Auxiliary Device Controller"
 * technical reference, which Linux's drivers/input/serio/i8042.h names) with
 * a PS/2 keyboard behind it. Data port 0x60 (`data`), status and command
 * port 0x64 (`command`), IRQ 1 for keyboard bytes and IRQ 12 for auxiliary
 * bytes.
 *
 * Controller: status (OBF, SYS, A2, inhibit, AUXB), the command byte (0x20
 * read / 0x60 write: interrupt enables, system flag, port disables,
 * translation), self tests 0xAA (0x55), 0xAB and 0xA9 (0x00), port enables
 * 0xA7/0xA8/0xAD/0xAE, input port 0xC0, output port 0xD0/0xD1 (bit 0 is the
 * CPU reset line: writing 0 resets; bit 1 is A20), 0xD2/0xD3 (write a byte
 * as if from the keyboard / auxiliary device: Linux's loopback probe), 0xD4
 * (to the auxiliary device: none is attached, so it answers 0xFE), and the
 * pulse commands 0xF0-0xFF (0xFE pulses reset). Unknown commands are
 * ignored.
 *
 * Keyboard: reset 0xFF (0xFA, 0xAA), identify 0xF2 (0xFA 0xAB 0x83), enable
 * 0xF4 / disable 0xF5 / defaults 0xF6, LEDs 0xED, echo 0xEE, scan code set
 * 0xF0, typematic 0xF3 (0xFA after each byte), resend 0xFE; other bytes get
 * 0xFE. Host key bytes go in with `sendScancodes`, as the keyboard emits
 * them. Simplification: the controller's set 2 to set 1 translation
 * (command byte bit 6) is stored and reported but not applied; the host
 * gives bytes in the set the guest reads (set 1 when translation is on, as
 * PC BIOSes and Linux leave it).
 */

import type { PortWindow } from "./pic-8259";

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_A2 = 0x08;
/** Keyboard not inhibited (no keylock). */
const STATUS_UNLOCKED = 0x10;
const STATUS_AUXB = 0x20;

const CB_KBD_INT = 0x01;
const CB_AUX_INT = 0x02;
const CB_SYS = 0x04;
const CB_KBD_DISABLE = 0x10;
const CB_AUX_DISABLE = 0x20;
const CB_TRANSLATE = 0x40;

/** Bytes the keyboard holds before it drops input (a PS/2 keyboard buffers 16 keys). */
const KEYBOARD_QUEUE = 16;

export interface I8042Options {
  /** IRQ 1 level: a keyboard byte waits in the output buffer and its interrupt is enabled. */
  keyboardIrq?: (level: boolean) => void;
  /** IRQ 12 level: the same for auxiliary-device bytes. */
  auxIrq?: (level: boolean) => void;
  /** The CPU reset line was pulsed (command 0xFE, or output port bit 0 written as 0). */
  reset?: () => void;
  /** The output port's A20 gate (bit 1) changed. */
  a20?: (enabled: boolean) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface I8042State {
  readonly kind: "i8042";
  readonly version: 1;
  readonly commandByte: number;
  readonly outputPort: number;
  /** The output buffer (-1 empty) and whether its byte came from the auxiliary port. */
  readonly output: number;
  readonly outputAux: boolean;
  readonly lastWasCommand: boolean;
  /** Controller command waiting for its data byte (0 none). */
  readonly pendingCommand: number;
  /** Bytes waiting behind the output buffer, [byte, fromAux]. */
  readonly queue: readonly (readonly [number, boolean])[];
  readonly keyboardEnabled: boolean;
  /** Keyboard command waiting for its argument (0 none). */
  readonly keyboardPending: number;
  readonly scancodeSet: number;
  readonly leds: number;
}

export class I8042StateError extends Error {
  override name = "I8042StateError";
}

export class I8042 {
  /** Port 0x60 (offset 0). */
  readonly data: PortWindow;
  /** Port 0x64 (offset 0). */
  readonly command: PortWindow;
  private readonly options: I8042Options;
  private commandByte = CB_KBD_INT | CB_SYS | CB_TRANSLATE;
  /** Bit 0 reset line (1 = running), bit 1 A20 (PC/AT reset value 0x03 plus the IRQ bits). */
  private outputPort = 0x03;
  private output = -1;
  private outputAux = false;
  private lastWasCommand = false;
  private pendingCommand = 0;
  private queue: [number, boolean][] = [];
  private keyboardEnabled = true;
  private keyboardPending = 0;
  private scancodeSet = 2;
  private leds = 0;
  private keyboardLevel = false;
  private auxLevel = false;

  constructor(options: I8042Options = {}) {
    this.options = options;
    this.data = {
      read: (offset) => (offset === 0 ? this.readData() : 0xff),
      write: (offset, _size, value) => {
        if (offset === 0) this.writeData(value & 0xff);
      },
    };
    this.command = {
      read: (offset) => (offset === 0 ? this.readStatus() : 0xff),
      write: (offset, _size, value) => {
        if (offset === 0) this.writeCommand(value & 0xff);
      },
    };
  }

  /** Key bytes from the host keyboard; returns how many were taken (the keyboard's buffer is small). */
  sendScancodes(bytes: ArrayLike<number>): number {
    if (!this.keyboardEnabled) return 0;
    let taken = 0;
    for (; taken < bytes.length; taken++) {
      if (this.queue.length >= KEYBOARD_QUEUE) break;
      this.queue.push([bytes[taken] & 0xff, false]);
    }
    this.refill();
    return taken;
  }

  private readStatus(): number {
    let status = STATUS_UNLOCKED;
    if (this.output >= 0) status |= STATUS_OBF;
    if (this.output >= 0 && this.outputAux) status |= STATUS_AUXB;
    if (this.commandByte & CB_SYS) status |= STATUS_SYS;
    if (this.lastWasCommand) status |= STATUS_A2;
    return status;
  }

  private readData(): number {
    if (this.output < 0) {
      // An empty buffer reads the last byte again on real controllers; 0 is what they usually hold.
      return 0;
    }
    const value = this.output;
    this.output = -1;
    // The IRQ line follows OBF: it drops with the read and rises again for the next byte, so an
    // edge-triggered PIC or I/O APIC pin sees one edge per byte (Linux's i8042_interrupt reads one).
    this.updateIrqs();
    this.refill();
    return value;
  }

  /** Moves the next byte into the output buffer if it is free and its port is enabled, then sets IRQs. */
  private refill(): void {
    if (this.output < 0 && this.queue.length > 0) {
      const [byte, aux] = this.queue[0];
      const blocked = aux ? this.commandByte & CB_AUX_DISABLE : this.commandByte & CB_KBD_DISABLE;
      if (!blocked) {
        this.queue.shift();
        this.output = byte;
        this.outputAux = aux;
      }
    }
    this.updateIrqs();
  }

  private updateIrqs(): void {
    const full = this.output >= 0;
    const keyboard = full && !this.outputAux && (this.commandByte & CB_KBD_INT) !== 0;
    const aux = full && this.outputAux && (this.commandByte & CB_AUX_INT) !== 0;
    if (keyboard !== this.keyboardLevel) {
      this.keyboardLevel = keyboard;
      this.options.keyboardIrq?.(keyboard);
    }
    if (aux !== this.auxLevel) {
      this.auxLevel = aux;
      this.options.auxIrq?.(aux);
    }
  }

  /** A byte from the controller itself, ahead of anything queued (command responses). */
  private respond(byte: number, aux = false): void {
    // The controller holds one output byte and a keyboard a 16-byte buffer; a guest that
    // issues commands without reading the answers must not grow a host queue: past the
    // keyboard's buffer, the oldest queued byte makes room (the newest answer wins).
    if (this.queue.length >= KEYBOARD_QUEUE) this.queue.pop();
    this.queue.unshift([byte, aux]);
    // Controller responses ignore the port disables: place them directly.
    if (this.output < 0) {
      this.queue.shift();
      this.output = byte;
      this.outputAux = aux;
    }
    this.refill();
  }

  private keyboardReply(...bytes: number[]): void {
    // A keyboard whose buffer is full drops what does not fit (as sendScancodes does).
    for (const byte of bytes)
      if (this.queue.length < KEYBOARD_QUEUE) this.queue.push([byte, false]);
    this.refill();
  }

  private writeCommand(value: number): void {
    this.lastWasCommand = true;
    this.pendingCommand = 0;
    switch (value) {
      case 0x20:
        this.respond(this.commandByte);
        return;
      case 0x60:
      case 0xd1:
      case 0xd2:
      case 0xd3:
      case 0xd4:
        this.pendingCommand = value;
        return;
      case 0xa7:
        this.commandByte |= CB_AUX_DISABLE;
        return;
      case 0xa8:
        this.commandByte &= ~CB_AUX_DISABLE;
        this.refill();
        return;
      case 0xa9:
      case 0xab:
        this.respond(0x00);
        return;
      case 0xaa:
        // Self test passed; the controller also disables both ports like after power-on on many chips.
        this.respond(0x55);
        return;
      case 0xad:
        this.commandByte |= CB_KBD_DISABLE;
        return;
      case 0xae:
        this.commandByte &= ~CB_KBD_DISABLE;
        this.refill();
        return;
      case 0xc0:
        // Input port: keyboard not inhibited (bit 7), colour display (bit 6 clear).
        this.respond(0x80);
        return;
      case 0xd0:
        this.respond(this.outputPortValue());
        return;
      default:
        if (value >= 0xf0) {
          // Pulse output port bits 3:0 low for 6 us where the command bit is 0; bit 0 is reset.
          if (!(value & 1)) this.options.reset?.();
        }
    }
  }

  private outputPortValue(): number {
    // Bits 4/5: output buffer full from keyboard / auxiliary (IBM AT output port).
    let value = this.outputPort & 0x03;
    if (this.output >= 0 && !this.outputAux) value |= 0x10;
    if (this.output >= 0 && this.outputAux) value |= 0x20;
    return value | 0xc0;
  }

  private writeData(value: number): void {
    this.lastWasCommand = false;
    const pending = this.pendingCommand;
    this.pendingCommand = 0;
    switch (pending) {
      case 0x60:
        this.commandByte = value;
        this.refill();
        return;
      case 0xd1: {
        const was = this.outputPort;
        this.outputPort = value & 0x03;
        if ((was ^ value) & 2) this.options.a20?.((value & 2) !== 0);
        if (!(value & 1)) this.options.reset?.();
        return;
      }
      case 0xd2:
        this.respond(value, false);
        return;
      case 0xd3:
        this.respond(value, true);
        return;
      case 0xd4:
        // No auxiliary device: the controller reports a failed transmission.
        this.respond(0xfe, true);
        return;
      default:
        this.keyboardCommand(value);
    }
  }

  private keyboardCommand(value: number): void {
    const pending = this.keyboardPending;
    this.keyboardPending = 0;
    if (pending === 0xed) {
      this.leds = value & 7;
      this.keyboardReply(0xfa);
      return;
    }
    if (pending === 0xf3) {
      this.keyboardReply(0xfa);
      return;
    }
    if (pending === 0xf0) {
      if (value === 0) {
        this.keyboardReply(0xfa, this.scancodeSet);
      } else if (value <= 3) {
        this.scancodeSet = value;
        this.keyboardReply(0xfa);
      } else {
        this.keyboardReply(0xfe);
      }
      return;
    }
    switch (value) {
      case 0xed:
      case 0xf0:
      case 0xf3:
        this.keyboardPending = value;
        this.keyboardReply(0xfa);
        return;
      case 0xee:
        this.keyboardReply(0xee);
        return;
      case 0xf2:
        this.keyboardReply(0xfa, 0xab, 0x83);
        return;
      case 0xf4:
        this.keyboardEnabled = true;
        this.keyboardReply(0xfa);
        return;
      case 0xf5:
        this.keyboardEnabled = false;
        this.scancodeSet = 2;
        this.keyboardReply(0xfa);
        return;
      case 0xf6:
        this.scancodeSet = 2;
        this.keyboardReply(0xfa);
        return;
      case 0xff:
        // Reset: acknowledge, then the basic assurance test result.
        this.queue = this.queue.filter(([, aux]) => aux);
        this.keyboardEnabled = true;
        this.scancodeSet = 2;
        this.leds = 0;
        this.keyboardReply(0xfa, 0xaa);
        return;
      case 0xfe:
        this.keyboardReply(0xfa);
        return;
      default:
        this.keyboardReply(0xfe);
    }
  }

  state(): I8042State {
    return {
      kind: "i8042",
      version: 1,
      commandByte: this.commandByte,
      outputPort: this.outputPort,
      output: this.output,
      outputAux: this.outputAux,
      lastWasCommand: this.lastWasCommand,
      pendingCommand: this.pendingCommand,
      queue: this.queue.map(([byte, aux]) => [byte, aux] as const),
      keyboardEnabled: this.keyboardEnabled,
      keyboardPending: this.keyboardPending,
      scancodeSet: this.scancodeSet,
      leds: this.leds,
    };
  }

  fromState(state: I8042State): void {
    if (state === null || typeof state !== "object" || state.kind !== "i8042")
      throw new I8042StateError('not an i8042 state (kind must be "i8042")');
    if (state.version !== 1)
      throw new I8042StateError(
        `i8042 state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.queue))
      throw new I8042StateError("i8042 state field queue must be an array of [byte, aux] pairs");
    this.commandByte = state.commandByte & 0xff;
    this.outputPort = state.outputPort & 0x03;
    this.output = state.output >= 0 ? state.output & 0xff : -1;
    this.outputAux = state.outputAux === true;
    this.lastWasCommand = state.lastWasCommand === true;
    this.pendingCommand = state.pendingCommand & 0xff;
    this.queue = state.queue.map(([byte, aux]) => [byte & 0xff, aux === true]);
    this.keyboardEnabled = state.keyboardEnabled !== false;
    this.keyboardPending = state.keyboardPending & 0xff;
    this.scancodeSet = state.scancodeSet;
    this.leds = state.leds & 7;
    this.keyboardLevel = false;
    this.auxLevel = false;
    this.refill();
  }
}
