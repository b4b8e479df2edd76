/**
 * A PCI bus 0 behind an Intel 440FX host bridge with PCI configuration
 * mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): the 32-bit
 * CONFIG_ADDRESS register at I/O port 0xCF8 (bit 31 enable, bus 23:16,
 * device 15:11, function 10:8, register 7:2) and CONFIG_DATA at 0xCFC-0xCFF
 * (byte, word or dword lanes of the addressed dword).
 *
 * Functions present from the start, as on a PC with the 440FX chipset
 * (Intel 82441FX PMC and 82371SB PIIX3 datasheets):
 * - 00.0 host bridge, vendor 0x8086 device 0x1237, class 06 00 00, with the
 *   PAM registers 0x59-0x5F and SMRAM 0x72 stored (the VMM can watch them
 *   through `onConfigWrite`);
 * - 01.0 PIIX3 PCI-to-ISA bridge, 8086:7000, class 06 01 00, multi-function
 *   header, with the PIRQ route control registers PIRQRC[A:D] at 0x60-0x63
 *   (bit 7 disables routing, bits 3:0 the ISA IRQ; reset 0x80, PIIX3
 *   datasheet 2.2.9): `pirqRoute` reports changes and `routeOf(pirq)` says
 *   where INTA#-INTD# go now.
 *
 * Other functions join with `addFunction` (a `PciFunction`: 256 bytes of
 * configuration space with a write mask). Accesses to absent functions read
 * all ones and writes are dropped (master abort); with the enable bit clear
 * 0xCFC-0xCFF read all ones. Only dword accesses at 0xCF8 load
 * CONFIG_ADDRESS (PCI 3.0 3.2.2.3.2: byte accesses there are normal I/O);
 * a byte at 0xCF9 goes to the PIIX3 reset control register given as
 * `resetControl`.
 */

import type { PortWindow } from "./pic-8259";

/** A PCI function's configuration space: bytes and which bits the guest may write. */
export class PciFunction {
  readonly config = new Uint8Array(256);
  readonly writable = new Uint8Array(256);

  constructor(ids: {
    vendor: number;
    device: number;
    classCode: number;
    revision?: number;
    headerType?: number;
    subsystemVendor?: number;
    subsystem?: number;
  }) {
    const c = this.config;
    c[0] = ids.vendor & 0xff;
    c[1] = ids.vendor >> 8;
    c[2] = ids.device & 0xff;
    c[3] = ids.device >> 8;
    c[8] = ids.revision ?? 0;
    c[9] = ids.classCode & 0xff;
    c[10] = (ids.classCode >> 8) & 0xff;
    c[11] = (ids.classCode >> 16) & 0xff;
    c[0x0e] = ids.headerType ?? 0;
    c[0x2c] = (ids.subsystemVendor ?? 0) & 0xff;
    c[0x2d] = (ids.subsystemVendor ?? 0) >> 8;
    c[0x2e] = (ids.subsystem ?? 0) & 0xff;
    c[0x2f] = (ids.subsystem ?? 0) >> 8;
    // Command: I/O, memory, bus master, SERR, ... (bits 0-10 as a generic device allows).
    this.writable[4] = 0xff;
    this.writable[5] = 0x07;
    // Latency timer and the interrupt line register are plain storage.
    this.writable[0x0d] = 0xff;
    this.writable[0x3c] = 0xff;
  }

  readByte(register: number): number {
    return this.config[register & 0xff];
  }

  /** Writes through the mask; returns whether anything changed. */
  writeByte(register: number, value: number): boolean {
    const r = register & 0xff;
    const mask = this.writable[r];
    const next = (this.config[r] & ~mask) | (value & mask);
    if (next === this.config[r]) return false;
    this.config[r] = next;
    return true;
  }
}

export interface PciHostOptions {
  /** PIRQ A-D (0-3) now routed to ISA `irq`, or null when routing is disabled. */
  pirqRoute?: (pirq: number, irq: number | null) => void;
  /** Any configuration write to a present function (device, function, register, size). */
  onConfigWrite?: (device: number, fn: number, register: number, size: number) => void;
  /** The PIIX3 reset control register at 0xCF9 (see ResetControl). */
  resetControl?: PortWindow;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface PciHostState {
  readonly kind: "pci-host";
  readonly version: 1;
  readonly address: number;
  /** Configuration spaces by "device.function". */
  readonly functions: Readonly<Record<string, readonly number[]>>;
}

export class PciHostStateError extends Error {
  override name = "PciHostStateError";
}

/** PIIX3 PIRQRC[A:D] registers (datasheet 2.2.9). */
const PIRQ_ROUTE_REGISTER = 0x60;

export class PciHost {
  /** Ports 0xCF8-0xCFB (CONFIG_ADDRESS; 0xCF9 reset control). */
  readonly address: PortWindow;
  /** Ports 0xCFC-0xCFF (CONFIG_DATA). */
  readonly data: PortWindow;
  readonly hostBridge: PciFunction;
  readonly isaBridge: PciFunction;
  private configAddress = 0;
  /** Functions by device * 8 + function on bus 0. */
  private readonly functions = new Map<number, PciFunction>();
  private readonly options: PciHostOptions;

  constructor(options: PciHostOptions = {}) {
    this.options = options;
    this.hostBridge = new PciFunction({
      vendor: 0x8086,
      device: 0x1237,
      classCode: 0x060000,
      revision: 0x02,
    });
    // 82441FX PAM0-6 and SMRAM: storage the firmware programs (datasheet 3.2.18, 3.2.21).
    for (let r = 0x59; r <= 0x5f; r++) this.hostBridge.writable[r] = r === 0x59 ? 0x30 : 0x33;
    this.hostBridge.writable[0x72] = 0x78;
    this.hostBridge.config[0x72] = 0x02;
    this.isaBridge = new PciFunction({
      vendor: 0x8086,
      device: 0x7000,
      classCode: 0x060100,
      headerType: 0x80,
    });
    for (let pirq = 0; pirq < 4; pirq++) {
      this.isaBridge.config[PIRQ_ROUTE_REGISTER + pirq] = 0x80;
      this.isaBridge.writable[PIRQ_ROUTE_REGISTER + pirq] = 0x8f;
    }
    this.addFunction(0, 0, this.hostBridge);
    this.addFunction(1, 0, this.isaBridge);
    this.address = {
      read: (offset, size) => {
        if (offset === 0 && size === 4) return this.configAddress >>> 0;
        if (offset === 1 && size === 1 && this.options.resetControl)
          return this.options.resetControl.read(0, 1);
        return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
      },
      write: (offset, size, value) => {
        if (offset === 0 && size === 4) this.configAddress = (value & 0x80fffffc) >>> 0;
        else if (offset === 1 && size === 1) this.options.resetControl?.write(0, 1, value);
      },
    };
    this.data = {
      read: (offset, size) => this.readData(offset, size),
      write: (offset, size, value) => this.writeData(offset, size, value),
    };
  }

  /** Puts `fn` at bus 0 `device`.`function` (device 0-31, function 0-7). */
  addFunction(device: number, fn: number, pciFunction: PciFunction): void {
    if (device < 0 || device > 31 || fn < 0 || fn > 7)
      throw new RangeError(
        `PCI device ${device}.${fn} is outside bus 0 (device 0-31, function 0-7)`,
      );
    this.functions.set(device * 8 + fn, pciFunction);
  }

  /** Where PIRQ A-D (0-3) is routed now: an ISA IRQ, or null when disabled. */
  routeOf(pirq: number): number | null {
    const value = this.isaBridge.config[PIRQ_ROUTE_REGISTER + pirq];
    return value & 0x80 ? null : value & 0x0f;
  }

  private target(): PciFunction | undefined {
    const address = this.configAddress;
    // Bus 0 only; a type 1 cycle to another bus finds no device.
    if (!(address & 0x80000000) || (address >>> 16) & 0xff) return undefined;
    return this.functions.get((address >>> 8) & 0xff);
  }

  private readData(offset: number, size: 1 | 2 | 4): number {
    const fn = this.target();
    const ones = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (fn === undefined) return ones;
    const register = (this.configAddress & 0xfc) + offset;
    let value = 0;
    for (let i = 0; i < size; i++) value |= fn.readByte(register + i) << (8 * i);
    return value >>> 0;
  }

  private writeData(offset: number, size: 1 | 2 | 4, value: number): void {
    const fn = this.target();
    if (fn === undefined) return;
    const register = (this.configAddress & 0xfc) + offset;
    const routesBefore = fn === this.isaBridge ? [0, 1, 2, 3].map((p) => this.routeOf(p)) : null;
    for (let i = 0; i < size && register + i < 256; i++)
      fn.writeByte(register + i, (value >>> (8 * i)) & 0xff);
    const id = (this.configAddress >>> 8) & 0xff;
    this.options.onConfigWrite?.(id >> 3, id & 7, register, size);
    if (routesBefore !== null) {
      for (let pirq = 0; pirq < 4; pirq++) {
        const now = this.routeOf(pirq);
        if (now !== routesBefore[pirq]) this.options.pirqRoute?.(pirq, now);
      }
    }
  }

  state(): PciHostState {
    const functions: Record<string, number[]> = {};
    for (const [id, fn] of this.functions)
      functions[`${id >> 3}.${id & 7}`] = Array.from(fn.config);
    return { kind: "pci-host", version: 1, address: this.configAddress, functions };
  }

  /** Restores the configuration spaces of functions present in both (added functions must be added first). */
  fromState(state: PciHostState): void {
    if (state === null || typeof state !== "object" || state.kind !== "pci-host")
      throw new PciHostStateError('not a PCI host state (kind must be "pci-host")');
    if (state.version !== 1)
      throw new PciHostStateError(
        `PCI host state version ${state.version} is not supported (expected 1)`,
      );
    for (const [key, bytes] of Object.entries(state.functions ?? {})) {
      const [device, fn] = key.split(".").map(Number);
      const target = this.functions.get(device * 8 + fn);
      if (target === undefined)
        throw new PciHostStateError(`PCI host state has function ${key}, which this bus lacks`);
      if (!Array.isArray(bytes) || bytes.length !== 256)
        throw new PciHostStateError(`PCI host state function ${key} must hold 256 bytes`);
      target.config.set(bytes);
    }
    this.configAddress = (state.address & 0x80fffffc) >>> 0;
  }
}
