/**
 * Xen's vbd numbering (docs/misc/vbd-interface.pandoc). The expected numbers
 * come from the formulas of that document, checked against the Linux
 * major/minor numbers they must reproduce (xvd 202, sd 8, hda/hdb 3,
 * hdc/hdd 22) and the document's own example (xvda = 51712).
 */
import { describe, expect, it } from "vitest";
import { parseVdev, VdevError } from "../src/index";

const dev = (major: number, minor: number) => major * 256 + minor;

describe("parseVdev", () => {
  it("numbers xvd disks and partitions, switching to the extended form past 15", () => {
    expect(parseVdev("xvda").number).toBe(51712);
    expect(parseVdev("xvdb").number).toBe(dev(202, 16));
    expect(parseVdev("xvda1").number).toBe(dev(202, 1));
    expect(parseVdev("xvdp15").number).toBe(dev(202, 15 * 16 + 15));
    expect(parseVdev("xvdq").number).toBe(2 ** 28 + 16 * 256);
    expect(parseVdev("xvda16").number).toBe(2 ** 28 + 16);
    expect(parseVdev("xvdaa").number).toBe(2 ** 28 + 26 * 256);
    expect(parseVdev("d0p1").number).toBe(dev(202, 1));
    expect(parseVdev("d20p3").number).toBe(2 ** 28 + 20 * 256 + 3);
  });

  it("numbers IDE and SCSI names on Linux's majors", () => {
    expect(parseVdev("hda").number).toBe(dev(3, 0));
    expect(parseVdev("hdb2").number).toBe(dev(3, 66));
    expect(parseVdev("hdc").number).toBe(dev(22, 0));
    expect(parseVdev("hdd63").number).toBe(dev(22, 127));
    expect(parseVdev("sda").number).toBe(dev(8, 0));
    expect(parseVdev("sdb3").number).toBe(dev(8, 19));
  });

  it("takes a plain number as the device number", () => {
    expect(parseVdev("51728").number).toBe(51728);
  });

  it("refuses names outside the scheme", () => {
    for (const name of ["hde", "hda64", "sdq", "sda16", "xvda01", "vda", "xvd", "0", "xvda256"]) {
      expect(() => parseVdev(name), name).toThrow(VdevError);
    }
  });
});
