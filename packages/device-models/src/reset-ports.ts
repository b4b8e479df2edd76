/**
 * The PC's two reset registers outside the keyboard controller:
 *
 * - System control port A at I/O port 0x92 (IBM PS/2 "fast A20 and reset";
 *   Intel PIIX3 datasheet 4.2, "Port 92h"): bit 1 gates A20, a 0-to-1
 *   transition of bit 0 resets the processor (fast reset); the other bits
 *   read back as written.
 * - The reset control register at I/O port 0xCF9 (Intel PIIX3 datasheet
 *   4.1.16, RC): bit 1 SRST selects a hard (system) reset over a soft (CPU
 *   only) one, and a 0-to-1 transition of bit 2 RCPU starts it. Linux's
 *   `reboot=pci` and SeaBIOS write 0x02 then 0x06.
 *
 * Both are one-byte windows at offset 0. Bus-agnostic: the VMM decides what
 * a reset does.
 */

export interface SystemControlPortAOptions {
  /** The guest wrote bit 0 from 0 to 1. */
  reset?: () => void;
  /** Bit 1 changed: A20 enabled or masked. */
  a20?: (enabled: boolean) => void;
}

/** The saved state of a one-byte register: named, versioned, plain. */
export interface ResetPortState {
  readonly kind: "port-92" | "reset-control";
  readonly version: 1;
  readonly value: number;
}

export class ResetPortStateError extends Error {
  override name = "ResetPortStateError";
}

function checkState(state: ResetPortState, kind: ResetPortState["kind"]): number {
  if (state === null || typeof state !== "object" || state.kind !== kind)
    throw new ResetPortStateError(`not a ${kind} state (kind must be "${kind}")`);
  if (state.version !== 1)
    throw new ResetPortStateError(
      `${kind} state version ${state.version} is not supported (expected 1)`,
    );
  if (typeof state.value !== "number")
    throw new ResetPortStateError(`${kind} state field value must be a number`);
  return state.value & 0xff;
}

export class SystemControlPortA {
  private value = 0;
  private readonly options: SystemControlPortAOptions;

  constructor(options: SystemControlPortAOptions = {}) {
    this.options = options;
  }

  /** Whether bit 1 enables A20. */
  get a20(): boolean {
    return (this.value & 2) !== 0;
  }

  read(offset: number, _size: 1 | 2 | 4): number {
    return offset === 0 ? this.value : 0xff;
  }

  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    if (offset !== 0) return;
    const was = this.value;
    // Bit 0 self-clears once the reset is done; it reads back 0 afterwards (PIIX3 4.2).
    this.value = value & 0xfe;
    if ((was ^ value) & 2) this.options.a20?.((value & 2) !== 0);
    if (value & 1) this.options.reset?.();
  }

  state(): ResetPortState {
    return { kind: "port-92", version: 1, value: this.value };
  }

  fromState(state: ResetPortState): void {
    this.value = checkState(state, "port-92");
  }
}

export interface ResetControlOptions {
  /** RCPU rose: `hard` when SRST (bit 1) is set. */
  reset: (hard: boolean) => void;
}

export class ResetControl {
  private value = 0;
  private readonly onReset: (hard: boolean) => void;

  constructor(options: ResetControlOptions) {
    this.onReset = options.reset;
  }

  read(offset: number, _size: 1 | 2 | 4): number {
    // RCPU reads back 0 (PIIX3 4.1.16: the bit is write-only in effect).
    return offset === 0 ? this.value & 0x02 : 0xff;
  }

  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    if (offset !== 0) return;
    const was = this.value;
    this.value = value & 0x06;
    if (!(was & 4) && value & 4) {
      this.value &= ~4;
      this.onReset((value & 2) !== 0);
    }
  }

  state(): ResetPortState {
    return { kind: "reset-control", version: 1, value: this.value };
  }

  fromState(state: ResetPortState): void {
    this.value = checkState(state, "reset-control") & 0x06;
  }
}
