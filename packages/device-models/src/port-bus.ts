/**
 * An x86 I/O-port bus: maps port ranges to device register windows
 * (`read(offset, size)` / `write(offset, size, value)`, the shape every
 * device here has) and answers what a PC's ISA bus answers where nothing
 * decodes: all ones on reads, writes dropped. It implements the
 * `portRead` / `portWrite` pair that `@kumo/cpu-x86` calls for IN/OUT.
 *
 * Hot path: one typed-array lookup per access, no allocation. An access is
 * given whole to the window that decodes its first port (as a device
 * decoding a 16- or 32-bit cycle does); windows handle their own widths.
 */

import type { PortWindow } from "./pic-8259";

export class PortBusError extends Error {
  override name = "PortBusError";
}

export class PortBus {
  /** Window index + 1 per port; 0 = nothing there. */
  private readonly owner = new Uint16Array(0x10000);
  private readonly bases: number[] = [];
  private readonly windows: PortWindow[] = [];
  private readonly names: string[] = [];

  /** Maps ports [base, base + length) to `window` (offsets from 0). Overlaps are a VMM bug. */
  register(base: number, length: number, window: PortWindow, name = "device"): void {
    if (
      !Number.isInteger(base) ||
      !Number.isInteger(length) ||
      base < 0 ||
      length < 1 ||
      base + length > 0x10000
    )
      throw new PortBusError(`I/O ports 0x${base.toString(16)}+${length} are outside 0-0xffff`);
    for (let port = base; port < base + length; port++) {
      const index = this.owner[port];
      if (index !== 0)
        throw new PortBusError(
          `I/O port 0x${port.toString(16)} of ${name} is already taken by ${this.names[index - 1]}`,
        );
    }
    this.bases.push(base);
    this.windows.push(window);
    this.names.push(name);
    this.owner.fill(this.windows.length, base, base + length);
  }

  /**
   * Unmaps the window registered at `base` (a PCI I/O BAR that moved or was
   * disabled); does nothing when no window starts there.
   */
  unregister(base: number): void {
    const index = this.owner[base & 0xffff];
    if (index === 0 || this.bases[index - 1] !== base) return;
    for (let port = base; port < 0x10000 && this.owner[port] === index; port++)
      this.owner[port] = 0;
  }

  /** Whether any window decodes `port`. */
  claims(port: number): boolean {
    return this.owner[port & 0xffff] !== 0;
  }

  portRead(port: number, size: 1 | 2 | 4): number {
    const index = this.owner[port & 0xffff];
    if (index === 0) return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
    return this.windows[index - 1].read((port & 0xffff) - this.bases[index - 1], size);
  }

  portWrite(port: number, size: 1 | 2 | 4, value: number): void {
    const index = this.owner[port & 0xffff];
    if (index === 0) return;
    this.windows[index - 1].write((port & 0xffff) - this.bases[index - 1], size, value);
  }
}
