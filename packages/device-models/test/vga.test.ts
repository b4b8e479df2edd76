import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { cp437ToUnicode, DISPI_ID5, DispiIndex, PciHost, Vga, VgaStateError } from "../src/index";

// Offsets of the port window (0x3C0-0x3DF) and the legacy window (0xA0000-0xBFFFF).
const P = (port: number) => port - 0x3c0;
const B8000 = 0x18000;

/** BIOS mode 3 (80x25 colour text, 9x16 cells): the register table of the IBM VGA Technical Reference. */
function setMode3(vga: Vga): void {
  const out = (port: number, value: number) => vga.ports.write(P(port), 1, value);
  out(0x3c2, 0x67);
  [0x03, 0x00, 0x03, 0x00, 0x02].forEach((v, i) => {
    out(0x3c4, i);
    out(0x3c5, v);
  });
  const crtc = [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
  ];
  crtc.forEach((v, i) => {
    out(0x3d4, i);
    out(0x3d5, v);
  });
  const gr = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff];
  gr.forEach((v, i) => {
    out(0x3ce, i);
    out(0x3cf, v);
  });
  const ar = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    0x0c, 0x00, 0x0f, 0x08, 0x00,
  ];
  vga.ports.read(P(0x3da), 1);
  ar.forEach((v, i) => {
    out(0x3c0, i);
    out(0x3c0, v);
  });
  out(0x3c0, 0x20); // PAS: the attribute controller drives the display again
}

/** Loads an 8x16 font into plane 2 as a BIOS does (SR2 = 4, SR4 = 6, GR4 = 2, GR5 = 0, GR6 = 4). */
function loadFont(vga: Vga, glyph: (ch: number, line: number) => number): void {
  const seq = (i: number, v: number) => vga.ports.write(P(0x3c4), 2, i | (v << 8));
  const gr = (i: number, v: number) => vga.ports.write(P(0x3ce), 2, i | (v << 8));
  seq(2, 0x04);
  seq(4, 0x06);
  gr(4, 0x02);
  gr(5, 0x00);
  gr(6, 0x04);
  for (let ch = 0; ch < 256; ch++)
    for (let line = 0; line < 16; line++) vga.memory.write(ch * 32 + line, 1, glyph(ch, line));
  seq(2, 0x03);
  seq(4, 0x02);
  gr(4, 0x00);
  gr(5, 0x10);
  gr(6, 0x0e);
}

function putText(vga: Vga, row: number, column: number, text: string, attribute = 0x07): void {
  for (let i = 0; i < text.length; i++)
    vga.memory.write(B8000 + (row * 80 + column + i) * 2, 2, text.charCodeAt(i) | (attribute << 8));
}

describe("VGA text mode", () => {
  it("mode 3 is 80x25 and text written at 0xB8000 lands in planes 0 and 1 (odd/even)", () => {
    const vga = new Vga();
    setMode3(vga);
    expect(vga.textSize()).toEqual({ columns: 80, rows: 25, cellHeight: 16 });
    putText(vga, 0, 0, "Hello", 0x1f);
    putText(vga, 24, 75, "end");
    const screen = vga.textScreen();
    expect(screen).toHaveLength(25);
    expect(screen[0]).toBe(`Hello${" ".repeat(75)}`);
    expect(screen[24].endsWith("end  ")).toBe(true);
    // Plane 0 holds the characters, plane 1 the attributes, at even offsets (IBM VGA ref., odd/even mode).
    expect(vga.vram[0]).toBe(0x48);
    expect(vga.vram[0x10000]).toBe(0x1f);
    expect(vga.vram[2]).toBe(0x65);
    expect(vga.vram[1]).toBe(0);
    // Reads through the window give back the bytes.
    expect(vga.memory.read(B8000, 2)).toBe(0x1f48);
    // 0xA0000 is outside the B8000 32K map: reads float high, writes are dropped.
    expect(vga.memory.read(0, 1)).toBe(0xff);
    vga.memory.write(0, 1, 0x41);
    expect(vga.vram[0]).toBe(0x48);
  });

  it("the CRTC start address scrolls and the cursor registers say where the cursor is", () => {
    const vga = new Vga();
    setMode3(vga);
    putText(vga, 1, 0, "second line");
    vga.ports.write(P(0x3d4), 2, 0x0c | (0 << 8));
    vga.ports.write(P(0x3d4), 2, 0x0d | (80 << 8));
    expect(vga.textScreen()[0].trimEnd()).toBe("second line");
    vga.ports.write(P(0x3d4), 2, 0x0d);
    const location = 3 * 80 + 7;
    vga.ports.write(P(0x3d4), 2, 0x0e | ((location >> 8) << 8));
    vga.ports.write(P(0x3d4), 2, 0x0f | ((location & 0xff) << 8));
    expect(vga.cursor()).toEqual({ row: 3, column: 7, start: 13, end: 14, visible: true });
    vga.ports.write(P(0x3d4), 2, 0x0a | (0x20 << 8));
    expect(vga.cursor().visible).toBe(false);
  });

  it("CP437 maps as iconv does, with the ROM font's glyphs for the control range", () => {
    const bytes = Buffer.from(Array.from({ length: 0x80 }, (_, i) => 0x80 + i));
    // Oracle: glibc's iconv (libc-bin) CP437 table.
    const expected = execFileSync("iconv", ["-f", "CP437", "-t", "UTF-8"], {
      input: bytes,
    }).toString();
    const ours = Array.from({ length: 0x80 }, (_, i) => cp437ToUnicode(0x80 + i)).join("");
    expect(ours).toBe(expected);
    expect(cp437ToUnicode(0x41)).toBe("A");
    expect(cp437ToUnicode(0x01)).toBe("☺");
    expect(cp437ToUnicode(0x00)).toBe(" ");
    expect(cp437ToUnicode(0xb0)).toBe("░");
  });

  it("renders the text screen with the font in plane 2 as a PPM", () => {
    const vga = new Vga();
    setMode3(vga);
    // DAC entries 0 (black) and 0x3F (white) as the BIOS palette has them.
    vga.ports.write(P(0x3c8), 1, 0);
    for (const v of [0, 0, 0]) vga.ports.write(P(0x3c9), 1, v);
    vga.ports.write(P(0x3c8), 1, 0x07);
    for (const v of [0x2a, 0x2a, 0x2a]) vga.ports.write(P(0x3c9), 1, v);
    // A font where character 'X' is a full block on line 0 only.
    loadFont(vga, (ch, line) => (ch === 0x58 && line === 0 ? 0xff : 0));
    putText(vga, 0, 0, "X");
    vga.ports.write(P(0x3d4), 2, 0x0a | (0x20 << 8)); // no cursor
    const ppm = vga.renderTextPpm();
    const header = "P6\n720 400\n255\n";
    expect(new TextDecoder().decode(ppm.subarray(0, header.length))).toBe(header);
    const pixel = (x: number, y: number) =>
      Array.from(
        ppm.subarray(header.length + (y * 720 + x) * 3, header.length + (y * 720 + x) * 3 + 3),
      );
    // Attribute 7 -> AR7 = 0x07 -> DAC 7 = 0x2A (6 bits) = 0xAA (8 bits).
    expect(pixel(0, 0)).toEqual([0xaa, 0xaa, 0xaa]);
    expect(pixel(7, 0)).toEqual([0xaa, 0xaa, 0xaa]);
    expect(pixel(8, 0)).toEqual([0, 0, 0]); // 9th dot blank outside 0xC0-0xDF
    expect(pixel(0, 1)).toEqual([0, 0, 0]);
    expect(pixel(9, 0)).toEqual([0, 0, 0]);
    // The font landed in plane 2 at 32 bytes per character.
    expect(vga.vram[0x20000 + 0x58 * 32]).toBe(0xff);
  });
});

describe("VGA image without a font in plane 2", () => {
  it("draws with the caller's font", () => {
    const vga = new Vga();
    setMode3(vga);
    vga.ports.write(P(0x3c8), 1, 0x07);
    for (const v of [0x3f, 0x3f, 0x3f]) vga.ports.write(P(0x3c9), 1, v);
    putText(vga, 0, 0, "A");
    vga.ports.write(P(0x3d4), 2, 0x0a | (0x20 << 8));
    const font = new Uint8Array(256 * 16);
    font[0x41 * 16 + 2] = 0x80;
    const ppm = vga.renderTextPpm({ font });
    const at = (x: number, y: number) => ppm[15 + (y * 720 + x) * 3];
    expect(at(0, 2)).toBe(0xff);
    expect(at(1, 2)).toBe(0);
    expect(at(0, 1)).toBe(0);
    // With a font in plane 2, plane 2 wins.
    loadFont(vga, (ch, line) => (ch === 0x41 && line === 5 ? 0x80 : 0));
    const again = vga.renderTextPpm({ font });
    expect(again[15 + 5 * 720 * 3]).toBe(0xff);
    expect(again[15 + 2 * 720 * 3]).toBe(0);
  });
});

describe("VGA registers", () => {
  it("the attribute controller's flip-flop alternates index and data and 0x3DA resets it", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c2), 1, 0x01); // colour I/O addresses
    vga.ports.read(P(0x3da), 1);
    vga.ports.write(P(0x3c0), 1, 0x02);
    vga.ports.write(P(0x3c0), 1, 0x15);
    vga.ports.write(P(0x3c0), 1, 0x22);
    expect(vga.ports.read(P(0x3c0), 1)).toBe(0x22);
    vga.ports.write(P(0x3c0), 1, 0x2a); // data of index 2
    vga.ports.write(P(0x3c0), 1, 0x02);
    expect(vga.ports.read(P(0x3c1), 1)).toBe(0x2a);
    vga.ports.read(P(0x3da), 1); // back to index
    vga.ports.write(P(0x3c0), 1, 0x03);
    expect(vga.ports.read(P(0x3c0), 1)).toBe(0x03);
  });

  it("input status 1 toggles vertical retrace and display-disabled, and follows misc bit 0", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c2), 1, 0x01);
    const a = vga.ports.read(P(0x3da), 1);
    const b = vga.ports.read(P(0x3da), 1);
    expect((a ^ b) & 0x09).toBe(0x09);
    expect(vga.monoPorts.read(0x0a, 1)).toBe(0xff);
    vga.ports.write(P(0x3c2), 1, 0x00); // monochrome addresses: 0x3Bx
    expect(vga.ports.read(P(0x3da), 1)).toBe(0xff);
    const c = vga.monoPorts.read(0x0a, 1);
    const d = vga.monoPorts.read(0x0a, 1);
    expect((c ^ d) & 0x08).toBe(0x08);
    expect(vga.ports.read(P(0x3cc), 1)).toBe(0x00);
  });

  it("CR11 bit 7 write-protects CR00-CR07 except the line compare bit CR07.4", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c2), 1, 0x01);
    vga.ports.write(P(0x3d4), 2, 0x01 | (0x4f << 8));
    vga.ports.write(P(0x3d4), 2, 0x11 | (0x80 << 8));
    vga.ports.write(P(0x3d4), 2, 0x01 | (0x27 << 8));
    vga.ports.write(P(0x3d4), 2, 0x07 | (0xff << 8));
    vga.ports.write(P(0x3d4), 1, 0x01);
    expect(vga.ports.read(P(0x3d5), 1)).toBe(0x4f);
    vga.ports.write(P(0x3d4), 1, 0x07);
    expect(vga.ports.read(P(0x3d5), 1)).toBe(0x10);
  });

  it("the DAC auto-increments over R, G, B and reports its read/write state", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c8), 1, 0x10);
    for (const v of [0x3f, 0x41, 0x01, 0x02, 0x03, 0x04]) vga.ports.write(P(0x3c9), 1, v);
    expect(vga.ports.read(P(0x3c8), 1)).toBe(0x12);
    expect(vga.ports.read(P(0x3c7), 1)).toBe(0x00);
    vga.ports.write(P(0x3c7), 1, 0x10);
    expect(vga.ports.read(P(0x3c7), 1)).toBe(0x03);
    const values = Array.from({ length: 6 }, () => vga.ports.read(P(0x3c9), 1));
    expect(values).toEqual([0x3f, 0x01, 0x01, 0x02, 0x03, 0x04]); // 6-bit DAC
  });

  it("planar write modes 0-3, latches and read modes 0/1 (FreeVGA graphics controller)", () => {
    const vga = new Vga();
    const seq = (i: number, v: number) => vga.ports.write(P(0x3c4), 2, i | (v << 8));
    const gr = (i: number, v: number) => vga.ports.write(P(0x3ce), 2, i | (v << 8));
    seq(4, 0x06); // planar, no chain 4, odd/even off
    seq(2, 0x0f);
    gr(6, 0x05); // graphics, A0000 64K
    gr(5, 0x00);
    gr(8, 0xff);
    // Write mode 0 with set/reset on planes 0 and 2 (value 0b0101 -> plane 0 ones, plane 2 zeros).
    gr(0, 0x01);
    gr(1, 0x05);
    vga.memory.write(0, 1, 0x3c);
    expect([0, 1, 2, 3].map((p) => vga.vram[p * 0x10000])).toEqual([0xff, 0x3c, 0x00, 0x3c]);
    // Rotate by 4 and XOR with the latches (loaded by a read).
    gr(1, 0x00);
    gr(3, 0x18 | 4);
    vga.memory.read(0, 1);
    vga.memory.write(0, 1, 0x0f); // rotated: 0xF0
    expect([0, 1, 2, 3].map((p) => vga.vram[p * 0x10000])).toEqual([0x0f, 0xcc, 0xf0, 0xcc]);
    gr(3, 0x00);
    // Write mode 1 copies the latches to another address.
    gr(5, 0x01);
    vga.memory.read(0, 1);
    vga.memory.write(1, 1, 0x00);
    expect([0, 1, 2, 3].map((p) => vga.vram[p * 0x10000 + 1])).toEqual([0x0f, 0xcc, 0xf0, 0xcc]);
    // Write mode 2: bit p of the value fills plane p, through the bit mask.
    gr(5, 0x02);
    gr(8, 0x0f);
    vga.memory.read(2, 1);
    vga.memory.write(2, 1, 0x09);
    expect([0, 1, 2, 3].map((p) => vga.vram[p * 0x10000 + 2])).toEqual([0x0f, 0x00, 0x00, 0x0f]);
    // Write mode 3: set/reset colour through (rotated value AND bit mask).
    gr(5, 0x03);
    gr(8, 0xff);
    gr(0, 0x02);
    vga.memory.read(3, 1);
    vga.memory.write(3, 1, 0x81);
    expect([0, 1, 2, 3].map((p) => vga.vram[p * 0x10000 + 3])).toEqual([0x00, 0x81, 0x00, 0x00]);
    // Read mode 0 returns the plane GR4 selects; the map mask gates writes.
    gr(5, 0x00);
    gr(4, 0x01);
    expect(vga.memory.read(0, 1)).toBe(0xcc);
    // Read mode 1: colour compare 0b1010 (planes 1, 3 set), all planes cared for.
    gr(5, 0x08);
    gr(2, 0x0a);
    gr(7, 0x0f);
    expect(vga.memory.read(0, 1)).toBe(
      ~((0x0f ^ 0x00) | (0xcc ^ 0xff) | (0xf0 ^ 0x00) | (0xcc ^ 0xff)) & 0xff,
    );
  });

  it("chain 4 selects the plane with A1:A0", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c4), 2, 0x04 | (0x0e << 8));
    vga.ports.write(P(0x3c4), 2, 0x02 | (0x0f << 8));
    vga.ports.write(P(0x3ce), 2, 0x06 | (0x05 << 8));
    vga.memory.write(0x101, 1, 0x77);
    expect(vga.vram[0x10000 + 0x101]).toBe(0x77);
    expect(vga.memory.read(0x101, 1)).toBe(0x77);
  });

  it("unknown registers are ignored and never throw", () => {
    const vga = new Vga();
    vga.ports.write(P(0x3c4), 2, 0x07 | (0x55 << 8));
    expect(vga.ports.read(P(0x3c5), 1)).toBe(0);
    vga.ports.write(P(0x3ce), 2, 0x0f | (0x55 << 8));
    expect(vga.ports.read(P(0x3cf), 1)).toBe(0);
    expect(vga.ports.read(P(0x3c3), 1)).toBe(0xff);
    vga.ports.write(P(0x3c3), 4, 0xffffffff);
  });
});

describe("stdvga PCI function and Bochs dispi", () => {
  it("is 1234:1111 class 03 00 00 with a 16 MiB BAR 0 and a ROM BAR sized to the ROM", () => {
    const vga = new Vga({ rom: new Uint8Array(38 * 1024).fill(0x55) });
    const host = new PciHost();
    host.addFunction(2, 0, vga.pci);
    const cfg = (reg: number) => {
      host.address.write(0, 4, 0x80000000 | (2 << 11) | reg);
      return host.data.read(0, 4);
    };
    const set = (reg: number, value: number) => {
      host.address.write(0, 4, 0x80000000 | (2 << 11) | reg);
      host.data.write(0, 4, value);
    };
    expect(cfg(0)).toBe(0x11111234);
    expect(cfg(8) >>> 8).toBe(0x030000);
    set(0x10, 0xffffffff);
    expect(cfg(0x10)).toBe(0xff000008);
    set(0x30, 0xfffffffe);
    expect(cfg(0x30)).toBe(0xffff0000); // 64 KiB
    expect(vga.romAddress()).toBeNull();
    set(0x30, 0xfebc0001);
    set(0x04, 0x0002);
    expect(vga.romAddress()).toBe(0xfebc0000);
    expect(vga.romWindow.read(0, 2)).toBe(0x5555);
  });

  it("answers the ID probe of the VGA BIOS and reports its capabilities", () => {
    const vga = new Vga();
    const write = (index: number, value: number) => {
      vga.dispiPorts.write(0, 2, index);
      vga.dispiPorts.write(1, 2, value);
    };
    const read = (index: number) => {
      vga.dispiPorts.write(0, 2, index);
      return vga.dispiPorts.read(1, 2);
    };
    write(DispiIndex.Id, DISPI_ID5);
    expect(read(DispiIndex.Id)).toBe(DISPI_ID5);
    write(DispiIndex.Id, 0x1234);
    expect(read(DispiIndex.Id)).toBe(DISPI_ID5);
    expect(read(DispiIndex.VideoMemory64K)).toBe(256);
    write(DispiIndex.Enable, 0x02);
    expect(read(DispiIndex.Xres)).toBe(2560);
    expect(read(DispiIndex.Bpp)).toBe(32);
    write(DispiIndex.Enable, 0x00);
    write(DispiIndex.Xres, 1024);
    expect(read(DispiIndex.Xres)).toBe(1024);
    expect(vga.vbeEnabled).toBe(false);
  });
});

describe("VGA over plain memory", () => {
  it("loadLinearWindow puts the text map in planes 0/1 and the first 64 KiB in plane 2", () => {
    const vga = new Vga();
    setMode3(vga);
    const window = new Uint8Array(0x20000);
    window.set([0x4f, 0x1e, 0x4b, 0x1e], B8000);
    window[0x41 * 32] = 0x18;
    vga.loadLinearWindow(window);
    expect(vga.textScreen()[0].startsWith("OK ")).toBe(true);
    expect(vga.vram[0x10000]).toBe(0x1e);
    expect(vga.vram[0x20000 + 0x41 * 32]).toBe(0x18);
  });
});

describe("VGA state", () => {
  it("round-trips through JSON and refuses foreign state", () => {
    const vga = new Vga();
    setMode3(vga);
    putText(vga, 2, 3, "saved");
    const copy = new Vga();
    copy.fromState(JSON.parse(JSON.stringify(vga.state())));
    expect(copy.textScreen()).toEqual(vga.textScreen());
    expect(copy.state()).toEqual(vga.state());
    expect(() => copy.fromState({ kind: "pit" } as never)).toThrow(VgaStateError);
  });
});
