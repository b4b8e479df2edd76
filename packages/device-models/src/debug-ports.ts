/**
 * The test-harness ports of PC emulators:
 *
 * - `DebugConsole`: the Bochs/QEMU debug console (Bochs port 0xE9 hack,
 *   QEMU `isa-debugcon`, default port 0xE9, any port configurable): each
 *   byte written goes to `output`; a read returns the readback value (0xE9
 *   by default), which is how software detects the port.
 * - `DebugExit`: QEMU's `isa-debug-exit` (default port 0xF4): a write of
 *   `value` ends the machine with exit status `(value << 1) | 1`, so a test
 *   can never exit 0 by accident; reads return all ones (nothing to read).
 *
 * One-register windows at offset 0 of any width (the whole value counts).
 */

export interface DebugConsoleOptions {
  output: (byte: number) => void;
  /** What a read returns (QEMU `readback`, default 0xE9). */
  readback?: number;
}

export class DebugConsole {
  private readonly output: (byte: number) => void;
  private readonly readback: number;

  constructor(options: DebugConsoleOptions) {
    this.output = options.output;
    this.readback = (options.readback ?? 0xe9) & 0xff;
  }

  read(_offset: number, size: 1 | 2 | 4): number {
    // Wider reads repeat the byte in every lane, as a byte-wide ISA port decoded at each address.
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readback << (8 * i);
    return value >>> 0;
  }

  write(_offset: number, size: 1 | 2 | 4, value: number): void {
    // QEMU's debugcon writes the low byte only, whatever the width.
    void size;
    this.output(value & 0xff);
  }
}

export interface DebugExitOptions {
  /** The machine ends with this status, `(value << 1) | 1`. */
  exit: (status: number) => void;
}

export class DebugExit {
  private readonly onExit: (status: number) => void;

  constructor(options: DebugExitOptions) {
    this.onExit = options.exit;
  }

  read(_offset: number, size: 1 | 2 | 4): number {
    return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(_offset: number, size: 1 | 2 | 4, value: number): void {
    const mask = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    this.onExit((((value & mask) >>> 0) * 2 + 1) >>> 0);
  }
}
