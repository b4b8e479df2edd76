import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { XlConfigError } from "../src/config/errors";
import { parseHvmOptions, VGABIOS_STDVGA_PATH } from "../src/config/hvm-options";
import { readConfiguredVgaBios, VgaBiosError } from "../src/node/vga";

describe("xl.cfg vga", () => {
  it('reads vga = "stdvga" and "none" (the default), refuses cards Kumo does not emulate', () => {
    expect(parseHvmOptions('vga = "stdvga"').vga).toBe("stdvga");
    expect(parseHvmOptions('vga = "none"').vga).toBeUndefined();
    expect(parseHvmOptions("").vga).toBeUndefined();
    expect(() => parseHvmOptions('vga = "cirrus"', "g.cfg")).toThrow(XlConfigError);
    expect(() => parseHvmOptions("vga = 1", "g.cfg")).toThrow(/g.cfg:1:7/);
    expect(() =>
      parseDomainConfig(
        'name = "v"\ntype = "hvm"\nmemory = 32\nfirmware = "seabios"\nvga = "stdvga"',
      ),
    ).not.toThrow();
  });
});

describe('the VGA BIOS that vga = "stdvga" loads', () => {
  it('is read before the domain is built; none for vga = "none"; a clear error when missing', () => {
    expect(readConfiguredVgaBios(parseHvmOptions('vga = "none"'))).toBeUndefined();
    expect(() =>
      readConfiguredVgaBios(parseHvmOptions('vga = "stdvga"'), "/nonexistent/vgabios.bin"),
    ).toThrow(VgaBiosError);
    expect(() =>
      readConfiguredVgaBios(parseHvmOptions('vga = "stdvga"'), "/nonexistent/vgabios.bin"),
    ).toThrow(/Debian package seabios/);
    if (existsSync(VGABIOS_STDVGA_PATH)) {
      const rom = readConfiguredVgaBios(parseHvmOptions('vga = "stdvga"'));
      expect(rom).toEqual(new Uint8Array(readFileSync(VGABIOS_STDVGA_PATH)));
      // An option ROM starts with 55 AA (PCI Firmware Specification 5.1).
      expect([rom?.[0], rom?.[1]]).toEqual([0x55, 0xaa]);
    }
  });
});
