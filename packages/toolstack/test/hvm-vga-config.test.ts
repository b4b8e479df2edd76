import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { XlConfigError } from "../src/config/errors";
import { parseHvmOptions } from "../src/config/hvm-options";

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
