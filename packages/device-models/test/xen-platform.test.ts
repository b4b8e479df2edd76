import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  PciHost,
  XEN_PLATFORM_IO_BASE,
  XEN_PLATFORM_MAGIC,
  XenPlatformDevice,
  XenPlatformStateError,
} from "../src/index";

describe("Xen platform PCI device", () => {
  // Oracle: Linux's include/xen/platform_pci.h, when the guest sources are cached.
  const sources = join(
    process.env.KUMO_GUESTS_CACHE ?? join(homedir(), ".cache/kumo/guests"),
    "src",
  );
  const header =
    (existsSync(sources) ? readdirSync(sources) : [])
      .map((tree) => join(sources, tree, "include/xen/platform_pci.h"))
      .find((path) => existsSync(path)) ?? "";
  it.skipIf(header === "")("port and magic match Linux platform_pci.h", () => {
    const text = readFileSync(header, "utf8");
    const define = (name: string) =>
      Number(new RegExp(`#define\\s+${name}\\s+(0x[0-9a-fA-F]+)`).exec(text)?.[1]);
    expect(XEN_PLATFORM_MAGIC).toBe(define("XEN_IOPORT_MAGIC_VAL"));
    expect(XEN_PLATFORM_IO_BASE).toBe(define("XEN_IOPORT_BASE"));
  });

  it("answers Linux's check_platform_magic and takes the unplug mask", () => {
    const masks: number[] = [];
    const device = new XenPlatformDevice({ unplug: (mask) => masks.push(mask) });
    expect(device.ports.read(0, 2)).toBe(0x49d2); // XEN_IOPORT_MAGIC
    expect(device.ports.read(2, 1)).toBe(1); // XEN_IOPORT_PROTOVER
    device.ports.write(2, 2, 0x0003); // XEN_IOPORT_PRODNUM: Linux
    device.ports.write(0, 4, 0x0001); // XEN_IOPORT_DRVVER
    expect(device.ports.read(0, 2)).toBe(0x49d2); // not blacklisted
    device.ports.write(0, 2, 0x0007); // XEN_IOPORT_UNPLUG: all IDE, NICs, aux IDE
    expect(masks).toEqual([7]);
    expect(device.ports.read(1, 1)).toBe(0xff);
  });

  it("keeps one unplug mask however often the guest writes, and saves and restores it", () => {
    const device = new XenPlatformDevice({ blacklisted: (product) => product === 3 });
    for (let i = 0; i < 100_000; i++) device.ports.write(0, 2, 1 << (i % 3));
    expect(device.unplugged).toBe(7);
    device.ports.write(2, 2, 3);
    device.ports.write(0, 4, 1);
    const saved = JSON.parse(JSON.stringify(device.state()));
    const restored = new XenPlatformDevice();
    restored.fromState(saved);
    expect(restored.unplugged).toBe(7);
    expect(restored.ports.read(0, 2)).toBe(0xd249);
    expect(() => restored.fromState({ ...saved, kind: "vga" })).toThrow(XenPlatformStateError);
    expect(() => restored.fromState({ ...saved, version: 2 })).toThrow(/version 2/);
  });

  it("a blacklisted product reads the magic byte-swapped", () => {
    const device = new XenPlatformDevice({ blacklisted: (product) => product === 3 });
    device.ports.write(2, 2, 3);
    device.ports.write(0, 4, 1);
    expect(device.ports.read(0, 2)).toBe(0xd249);
  });

  it("is a PCI function 5853:0001 with sizable BARs", () => {
    const device = new XenPlatformDevice();
    const pci = new PciHost();
    pci.addFunction(2, 0, device.pci);
    const config = (register: number, value?: number) => {
      pci.address.write(0, 4, (0x80000000 | (2 << 11) | register) >>> 0);
      if (value !== undefined) pci.data.write(0, 4, value);
      return pci.data.read(0, 4);
    };
    expect(config(0x00)).toBe(0x00015853);
    expect(config(0x08) >>> 8).toBe(0xff8000);
    expect(config(0x2c)).toBe(0x00015853);
    expect((config(0x3c) >>> 8) & 0xff).toBe(1); // INTA#
    // BAR sizing: all ones written, the size mask read back with the type bits.
    expect(config(0x10, 0xffffffff)).toBe(0xffffff01); // 256 bytes of I/O
    expect(config(0x14, 0xffffffff)).toBe(0xff000008); // 16 MiB prefetchable memory
    device.assign(0xc000, 0xf0000000);
    expect(config(0x10)).toBe(0x0000c001);
    expect(config(0x14)).toBe(0xf0000008);
    expect(config(0x04) & 3).toBe(3);
  });
});
