import { describe, expect, it } from "vitest";
import {
  PciFunction,
  PciHost,
  type PciHostState,
  PciHostStateError,
  ResetControl,
} from "../src/index";

const address = (device: number, fn: number, register: number) =>
  (0x80000000 | (device << 11) | (fn << 8) | register) >>> 0;

function host() {
  const routes: [number, number | null][] = [];
  const resets: boolean[] = [];
  const pci = new PciHost({
    pirqRoute: (pirq, irq) => routes.push([pirq, irq]),
    resetControl: new ResetControl({ reset: (hard) => resets.push(hard) }),
  });
  const read = (device: number, fn: number, register: number, size: 1 | 2 | 4 = 4) => {
    pci.address.write(0, 4, address(device, fn, register & 0xfc));
    return pci.data.read(register & 3, size);
  };
  const write = (device: number, fn: number, register: number, size: 1 | 2 | 4, value: number) => {
    pci.address.write(0, 4, address(device, fn, register & 0xfc));
    pci.data.write(register & 3, size, value);
  };
  return { pci, read, write, routes, resets };
}

describe("PCI host bridge, configuration mechanism #1", () => {
  it("finds the i440FX host bridge at 00.0 and the PIIX3 ISA bridge at 01.0", () => {
    const { read } = host();
    expect(read(0, 0, 0)).toBe(0x12378086);
    expect(read(0, 0, 8) >>> 8).toBe(0x060000);
    expect(read(1, 0, 0)).toBe(0x70008086);
    expect(read(1, 0, 8) >>> 8).toBe(0x060100);
    expect(read(1, 0, 0x0e, 1)).toBe(0x80); // multi-function header
    expect(read(0, 0, 2, 2)).toBe(0x1237);
  });

  it("absent functions and other buses read all ones; the enable bit gates data", () => {
    const { pci, read } = host();
    expect(read(2, 0, 0)).toBe(0xffffffff);
    expect(read(0, 1, 0)).toBe(0xffffffff);
    pci.address.write(0, 4, 0x80010000);
    expect(pci.data.read(0, 4)).toBe(0xffffffff);
    pci.address.write(0, 4, 0x00000000);
    expect(pci.data.read(0, 2)).toBe(0xffff);
  });

  it("CONFIG_ADDRESS reads back with bits 1:0 and 30:24 zero; only dword writes load it", () => {
    const { pci } = host();
    pci.address.write(0, 4, 0xffffffff);
    expect(pci.address.read(0, 4)).toBe(0x80fffffc);
    pci.address.write(0, 1, 0x00);
    expect(pci.address.read(0, 4)).toBe(0x80fffffc);
  });

  it("PIIX3 PIRQ route registers: reset 0x80, routing reported on change", () => {
    const { read, write, routes, pci } = host();
    expect(read(1, 0, 0x60)).toBe(0x80808080);
    write(1, 0, 0x60, 4, 0x0b0a800b);
    expect(routes).toEqual([
      [0, 11],
      [2, 10],
      [3, 11],
    ]);
    expect(pci.routeOf(1)).toBe(null);
    write(1, 0, 0x61, 1, 0x05);
    expect(pci.routeOf(1)).toBe(5);
    expect(read(1, 0, 0x60)).toBe(0x0b0a050b);
  });

  it("read-only identity; command and interrupt line are writable", () => {
    const { read, write } = host();
    write(0, 0, 0, 4, 0);
    expect(read(0, 0, 0)).toBe(0x12378086);
    write(0, 0, 4, 2, 0x0007);
    expect(read(0, 0, 4, 2)).toBe(0x0007);
    write(1, 0, 0x3c, 1, 0x0e);
    expect(read(1, 0, 0x3c, 1)).toBe(0x0e);
  });

  it("0xCF9 byte accesses reach the reset control register: 0x02 then 0x06 is a hard reset", () => {
    const { pci, resets } = host();
    pci.address.write(1, 1, 0x02);
    expect(pci.address.read(1, 1)).toBe(0x02);
    pci.address.write(1, 1, 0x06);
    pci.address.write(1, 1, 0x04);
    expect(resets).toEqual([true, false]);
  });

  it("takes more functions and saves their configuration spaces", () => {
    const { pci, read, write } = host();
    const platform = new PciFunction({ vendor: 0x5853, device: 0x0001, classCode: 0xff8000 });
    pci.addFunction(3, 0, platform);
    expect(read(3, 0, 0)).toBe(0x00015853);
    write(3, 0, 0x3c, 1, 0x0b);
    const saved = JSON.parse(JSON.stringify(pci.state())) as PciHostState;
    const other = host();
    expect(() => other.pci.fromState(saved)).toThrow(PciHostStateError);
    other.pci.addFunction(
      3,
      0,
      new PciFunction({ vendor: 0x5853, device: 1, classCode: 0xff8000 }),
    );
    other.pci.fromState(saved);
    expect(other.read(3, 0, 0x3c, 1)).toBe(0x0b);
    expect(() => pci.addFunction(32, 0, platform)).toThrow(RangeError);
  });
});
