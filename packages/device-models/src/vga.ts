/**
 * An IBM VGA (IBM VGA Technical Reference; FreeVGA "VGA/SVGA Video
 * Programming" register pages) as the Bochs/QEMU "stdvga" PCI function
 * presents it, text mode first:
 *
 * - I/O ports 0x3C0-0x3DF (`ports`, offsets 0x00-0x1F): attribute controller
 *   (0x3C0 index/data flip-flop, 0x3C1 read), misc output (write 0x3C2, read
 *   0x3CC), input status 0 (0x3C2), sequencer (0x3C4/0x3C5), DAC (0x3C6 pel
 *   mask, 0x3C7 read index / DAC state, 0x3C8 write index, 0x3C9 data in
 *   R, G, B cycles), feature control (read 0x3CA, write 0x3DA/0x3BA),
 *   graphics controller (0x3CE/0x3CF) and CRTC at 0x3D4/0x3D5 or 0x3B4/0x3B5
 *   as misc output bit 0 (I/O address select) says, with input status 1 at
 *   0x3DA/0x3BA (reading it resets the attribute flip-flop; its vertical
 *   retrace bit 3 and display-disabled bit 0 toggle on every read, so
 *   polling loops end). 16-bit writes to an index port write index and data
 *   (`out dx, ax`), as the chip's byte lanes do.
 * - The 128 KiB window 0xA0000-0xBFFFF (`memory`, offsets 0-0x1FFFF) mapped
 *   by GR6 bits 3:2 (0: A0000 128K, 1: A0000 64K, 2: B0000 32K, 3: B8000
 *   32K); addresses outside the selected map read 0xFF and drop writes.
 * - 256 KiB of VRAM as four 64 KiB planes (plane 0 characters, plane 1
 *   attributes, plane 2 fonts in 32-byte cells). Host accesses: chain 4
 *   (SR4 bit 3: A1:A0 select the plane), odd/even (SR4 bit 2 clear /
 *   GR5 bit 4: A0 selects plane 0 or 1, the plane offset is the address with
 *   A0 cleared, so character n sits at offset 2n of planes 0 and 1), or
 *   planar with the four latches, read modes 0/1 (colour compare, GR2/GR7)
 *   and write modes 0-3 (set/reset GR0/GR1, rotate and function GR3, bit
 *   mask GR8, map mask SR2).
 * - The Bochs VBE "dispi" interface (index 0x1CE, data 0x1CF; `dispi`) that
 *   the Bochs/QEMU VGA BIOS probes (SeaBIOS vgasrc/bochsvga.c): ID
 *   0xB0C0-0xB0C5, resolution/bpp/enable/bank/virtual size/offset stored,
 *   GETCAPS maxima, video memory in 64 KiB units. VBE graphics modes are
 *   stored but not drawn (the linear framebuffer BAR decodes nothing yet).
 *
 * Renderers: `textScreen()` (the CRTC's rows x columns of characters as
 * Unicode lines, CP437 glyphs), `cursor()`, and `renderTextPpm()` (a binary
 * PPM of the text screen drawn with the font in plane 2, 8 or 9 dots wide
 * per SR1 bit 0, the attribute palette and the DAC).
 *
 * Not modelled: graphics-mode rendering, split screen, smooth scrolling
 * (stored only), the CRTC's doubleword/byte modes for anything but text
 * (text uses word mode addressing), blinking (attribute bit 7 is shown as
 * background intensity only when AR10 bit 3 is clear), the misc output
 * page bit in odd/even mode.
 */

import { PciFunction } from "./pci-host";
import type { PortWindow } from "./pic-8259";

/** Saved state: named, versioned, plain (JSON-safe). */
export interface VgaState {
  readonly kind: "vga";
  readonly version: 1;
  readonly misc: number;
  readonly featureControl: number;
  readonly sequencerIndex: number;
  readonly sequencer: readonly number[];
  readonly graphicsIndex: number;
  readonly graphics: readonly number[];
  readonly crtcIndex: number;
  readonly crtc: readonly number[];
  readonly attributeIndex: number;
  readonly attributeFlipFlop: boolean;
  readonly attribute: readonly number[];
  readonly dacWriteIndex: number;
  readonly dacReadIndex: number;
  readonly dacComponent: number;
  readonly dacReading: boolean;
  readonly pelMask: number;
  readonly palette: readonly number[];
  readonly latch: readonly number[];
  readonly dispiIndex: number;
  readonly dispi: readonly number[];
  /** VRAM (4 planes x 64 KiB), base64. */
  readonly vram: string;
}

export class VgaStateError extends Error {
  override name = "VgaStateError";
}

/** Bochs VBE dispi register indices (Bochs vbe.h, SeaBIOS vgasrc/bochsvga.h). */
export const DispiIndex = {
  Id: 0,
  Xres: 1,
  Yres: 2,
  Bpp: 3,
  Enable: 4,
  Bank: 5,
  VirtWidth: 6,
  VirtHeight: 7,
  XOffset: 8,
  YOffset: 9,
  VideoMemory64K: 10,
} as const;

export const DISPI_ID0 = 0xb0c0;
export const DISPI_ID5 = 0xb0c5;
/** Dispi enable register bits (Bochs vbe.h). */
const DISPI_ENABLED = 0x01;
const DISPI_GETCAPS = 0x02;
/** Maximum resolution and depth the dispi interface reports with GETCAPS (QEMU's VBE_DISPI_MAX_*). */
const DISPI_MAX_XRES = 2560;
const DISPI_MAX_YRES = 1600;
const DISPI_MAX_BPP = 32;

export const VGA_PLANE_SIZE = 0x10000;
/** The legacy window 0xA0000-0xBFFFF. */
export const VGA_WINDOW_BASE = 0xa0000;
export const VGA_WINDOW_SIZE = 0x20000;
/** QEMU stdvga's linear framebuffer size (BAR 0), reported through dispi VIDEO_MEMORY_64K. */
export const VGA_LFB_SIZE = 16 * 1024 * 1024;

const SEQ_COUNT = 5;
const GR_COUNT = 9;
const CRTC_COUNT = 0x19;
const AR_COUNT = 0x15;

/**
 * CP437 to Unicode (the IBM PC code page; 0x01-0x1F and 0x7F as the
 * display glyphs the VGA's ROM font draws, as Unicode's "IBM PC graphics"
 * mapping gives them; 0x80-0xFF as Python's cp437 codec and iconv CP437).
 */
const CP437 =
  " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼" +
  " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~⌂" +
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0";

/** The Unicode character a CP437 byte shows (0x00 as a space). */
export function cp437ToUnicode(byte: number): string {
  return CP437[byte & 0xff];
}

export interface VgaRenderOptions {
  /**
   * A font to draw with when plane 2's selected character map is empty:
   * 256 glyphs of N bytes each (one byte per scan line, bit 7 leftmost), as
   * a VGA BIOS stores its 8x16 font.
   */
  readonly font?: Uint8Array;
}

export interface VgaOptions {
  /** VGA BIOS image for the PCI ROM BAR (e.g. /usr/share/seabios/vgabios-stdvga.bin). */
  readonly rom?: Uint8Array;
}

export class Vga {
  /** Planes 0-3, 64 KiB each, plane p at p * VGA_PLANE_SIZE. */
  readonly vram = new Uint8Array(4 * VGA_PLANE_SIZE);
  /** Ports 0x3C0-0x3DF as offsets 0x00-0x1F. */
  readonly ports: PortWindow;
  /** The window 0xA0000-0xBFFFF as offsets 0-0x1FFFF. */
  readonly memory: PortWindow;
  /** Bochs VBE ports 0x1CE-0x1CF as offsets 0-1. */
  readonly dispiPorts: PortWindow;
  /** The expansion ROM contents (padded to a power of two, at least 2 KiB), empty when none. */
  readonly rom: Uint8Array;
  /**
   * The PCI function QEMU's "VGA" (stdvga) device presents: 1234:1111, class
   * 03 00 00, BAR 0 a 16 MiB prefetchable memory BAR (the linear
   * framebuffer), and the expansion ROM BAR at 0x30 sized to `rom` (PCI 3.0
   * 6.2.5.2: bit 0 enables decoding, the size is read back as writable bits).
   */
  readonly pci: PciFunction;

  private misc = 0;
  private featureControl = 0;
  private sequencerIndex = 0;
  private readonly sequencer = new Uint8Array(8);
  private graphicsIndex = 0;
  private readonly graphics = new Uint8Array(16);
  private crtcIndex = 0;
  private readonly crtc = new Uint8Array(32);
  private attributeIndex = 0;
  private attributeFlipFlop = false;
  private readonly attribute = new Uint8Array(32);
  private dacWriteIndex = 0;
  private dacReadIndex = 0;
  private dacComponent = 0;
  private dacReading = false;
  private pelMask = 0xff;
  /** 256 entries x R, G, B (6 bits each). */
  private readonly palette = new Uint8Array(768);
  private readonly latch = new Uint8Array(4);
  private retraceToggle = 0;
  private dispiIndex = 0;
  private readonly dispi = new Uint16Array(16);

  constructor(options: VgaOptions = {}) {
    let romSize = 0;
    if (options.rom !== undefined && options.rom.length > 0) {
      romSize = 2048;
      while (romSize < options.rom.length) romSize *= 2;
    }
    this.rom = new Uint8Array(romSize);
    if (options.rom !== undefined) this.rom.set(options.rom);
    this.pci = new PciFunction({
      vendor: 0x1234,
      device: 0x1111,
      classCode: 0x030000,
      revision: 2,
      subsystemVendor: 0x1af4,
      subsystem: 0x1100,
    });
    this.pci.config[0x10] = 0x08; // memory, 32-bit, prefetchable
    this.pci.writable[0x13] = 0xff; // 16 MiB: address bits 31:24
    if (romSize > 0) {
      const mask = ~(romSize - 1) >>> 0;
      this.pci.writable[0x30] = 0x01 | (mask & 0xf800 & 0xff);
      this.pci.writable[0x31] = (mask >>> 8) & 0xff;
      this.pci.writable[0x32] = (mask >>> 16) & 0xff;
      this.pci.writable[0x33] = (mask >>> 24) & 0xff;
    }
    this.dispi[DispiIndex.Id] = DISPI_ID0;
    this.dispi[DispiIndex.VideoMemory64K] = VGA_LFB_SIZE >>> 16;
    this.ports = {
      read: (offset, size) => {
        let value = 0;
        for (let i = 0; i < size; i++) value |= this.readPort((offset + i) & 0x1f) << (8 * i);
        return value >>> 0;
      },
      write: (offset, size, value) => {
        for (let i = 0; i < size; i++)
          this.writePort((offset + i) & 0x1f, (value >>> (8 * i)) & 0xff);
      },
    };
    this.memory = {
      read: (offset, size) => {
        let value = 0;
        for (let i = 0; i < size; i++) value |= this.readMemory(offset + i) << (8 * i);
        return value >>> 0;
      },
      write: (offset, size, value) => {
        for (let i = 0; i < size; i++) this.writeMemory(offset + i, (value >>> (8 * i)) & 0xff);
      },
    };
    this.dispiPorts = {
      read: (offset, size) => {
        const value = offset === 0 ? this.dispiIndex : this.readDispi();
        return size === 1 ? value & 0xff : value;
      },
      write: (offset, _size, value) => {
        if (offset === 0) this.dispiIndex = value & 0xffff;
        else this.writeDispi(value & 0xffff);
      },
    };
  }

  /** Where the expansion ROM decodes now (ROM BAR enabled and memory space on), or null. */
  romAddress(): number | null {
    const c = this.pci.config;
    const bar = (c[0x30] | (c[0x31] << 8) | (c[0x32] << 16) | (c[0x33] << 24)) >>> 0;
    if (this.rom.length === 0 || (bar & 1) === 0 || (c[4] & 0x02) === 0) return null;
    return (bar & ~(this.rom.length - 1)) >>> 0;
  }

  /** Reads of the expansion ROM (offsets within `rom`); writes are dropped. */
  readonly romWindow: PortWindow = {
    read: (offset, size) => {
      let value = 0;
      for (let i = 0; i < size; i++) value |= (this.rom[offset + i] ?? 0xff) << (8 * i);
      return value >>> 0;
    },
    write: () => {},
  };

  // ---- I/O ports

  private readPort(port: number): number {
    // Offsets: 0x00 = 0x3C0 ... 0x1F = 0x3DF. The mono CRTC ports 0x3B4/0x3B5/0x3BA are
    // decoded by the owner through `monoPorts` at the same offsets minus 0x20.
    switch (port) {
      case 0x00:
        return this.attributeIndex;
      case 0x01: {
        const index = this.attributeIndex & 0x1f;
        return index < AR_COUNT ? this.attribute[index] : 0;
      }
      case 0x02:
        // Input status 0: bit 4 switch sense (reads 0 on QEMU), bit 7 vertical retrace interrupt.
        return 0;
      case 0x04:
        return this.sequencerIndex;
      case 0x05:
        return this.sequencerIndex < SEQ_COUNT ? this.sequencer[this.sequencerIndex] : 0;
      case 0x06:
        return this.pelMask;
      case 0x07:
        // DAC state: 0x03 after a read index write, 0x00 after a write index write (FreeVGA).
        return this.dacReading ? 0x03 : 0x00;
      case 0x08:
        return this.dacWriteIndex;
      case 0x09: {
        const value = this.palette[this.dacReadIndex * 3 + this.dacComponent] & 0x3f;
        if (++this.dacComponent === 3) {
          this.dacComponent = 0;
          this.dacReadIndex = (this.dacReadIndex + 1) & 0xff;
        }
        return value;
      }
      case 0x0a:
        return this.featureControl;
      case 0x0c:
        return this.misc;
      case 0x0e:
        return this.graphicsIndex;
      case 0x0f:
        return this.graphicsIndex < GR_COUNT ? this.graphics[this.graphicsIndex] : 0;
      case 0x14:
        return this.colourCrtc() ? this.crtcIndex : 0xff;
      case 0x15:
        return this.colourCrtc() ? this.readCrtc() : 0xff;
      case 0x1a:
        return this.colourCrtc() ? this.inputStatus1() : 0xff;
      default:
        return 0xff;
    }
  }

  private writePort(port: number, value: number): void {
    switch (port) {
      case 0x00:
        if (!this.attributeFlipFlop) {
          this.attributeIndex = value & 0x3f;
        } else {
          const index = this.attributeIndex & 0x1f;
          if (index < AR_COUNT) this.attribute[index] = value;
        }
        this.attributeFlipFlop = !this.attributeFlipFlop;
        return;
      case 0x02:
        this.misc = value;
        return;
      case 0x04:
        this.sequencerIndex = value & 0x07;
        return;
      case 0x05:
        if (this.sequencerIndex < SEQ_COUNT) this.sequencer[this.sequencerIndex] = value;
        return;
      case 0x06:
        this.pelMask = value;
        return;
      case 0x07:
        this.dacReadIndex = value;
        this.dacComponent = 0;
        this.dacReading = true;
        return;
      case 0x08:
        this.dacWriteIndex = value;
        this.dacComponent = 0;
        this.dacReading = false;
        return;
      case 0x09:
        this.palette[this.dacWriteIndex * 3 + this.dacComponent] = value & 0x3f;
        if (++this.dacComponent === 3) {
          this.dacComponent = 0;
          this.dacWriteIndex = (this.dacWriteIndex + 1) & 0xff;
        }
        return;
      case 0x0e:
        this.graphicsIndex = value & 0x0f;
        return;
      case 0x0f:
        if (this.graphicsIndex < GR_COUNT) this.graphics[this.graphicsIndex] = value;
        return;
      case 0x14:
        if (this.colourCrtc()) this.crtcIndex = value & 0x1f;
        return;
      case 0x15:
        if (this.colourCrtc()) this.writeCrtc(value);
        return;
      case 0x1a:
        if (this.colourCrtc()) this.featureControl = value & 0x03;
        return;
    }
  }

  /** Ports 0x3B0-0x3BF as offsets 0x00-0x0F: the CRTC when misc output bit 0 is clear (monochrome). */
  readonly monoPorts: PortWindow = {
    read: (offset, size) => {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readMono((offset + i) & 0x0f) << (8 * i);
      return value >>> 0;
    },
    write: (offset, size, value) => {
      for (let i = 0; i < size; i++) {
        const port = (offset + i) & 0x0f;
        const byte = (value >>> (8 * i)) & 0xff;
        if (this.colourCrtc()) continue;
        if (port === 0x04) this.crtcIndex = byte & 0x1f;
        else if (port === 0x05) this.writeCrtc(byte);
        else if (port === 0x0a) this.featureControl = byte & 0x03;
      }
    },
  };

  private readMono(port: number): number {
    if (this.colourCrtc()) return 0xff;
    if (port === 0x04) return this.crtcIndex;
    if (port === 0x05) return this.readCrtc();
    if (port === 0x0a) return this.inputStatus1();
    return 0xff;
  }

  private colourCrtc(): boolean {
    return (this.misc & 0x01) !== 0;
  }

  private readCrtc(): number {
    return this.crtcIndex < CRTC_COUNT ? this.crtc[this.crtcIndex] : 0;
  }

  private writeCrtc(value: number): void {
    const index = this.crtcIndex;
    if (index >= CRTC_COUNT) return;
    // CR11 bit 7 protects CR00-CR07, except CR07 bit 4 (line compare bit 8) (IBM VGA ref., FreeVGA).
    if ((this.crtc[0x11] & 0x80) !== 0 && index <= 0x07) {
      if (index === 0x07) this.crtc[7] = (this.crtc[7] & ~0x10) | (value & 0x10);
      return;
    }
    this.crtc[index] = value;
  }

  private inputStatus1(): number {
    // Reading input status 1 resets the attribute controller's flip-flop to "index" (FreeVGA).
    this.attributeFlipFlop = false;
    this.retraceToggle ^= 0x09;
    return this.retraceToggle;
  }

  // ---- Bochs VBE dispi

  private readDispi(): number {
    const index = this.dispiIndex;
    if (index > DispiIndex.VideoMemory64K) return 0;
    if ((this.dispi[DispiIndex.Enable] & DISPI_GETCAPS) !== 0) {
      if (index === DispiIndex.Xres) return DISPI_MAX_XRES;
      if (index === DispiIndex.Yres) return DISPI_MAX_YRES;
      if (index === DispiIndex.Bpp) return DISPI_MAX_BPP;
    }
    return this.dispi[index];
  }

  private writeDispi(value: number): void {
    const index = this.dispiIndex;
    switch (index) {
      case DispiIndex.Id:
        if (value >= DISPI_ID0 && value <= DISPI_ID5) this.dispi[0] = value;
        return;
      case DispiIndex.Bpp:
        if (value === 0) value = 8;
        if ([4, 8, 15, 16, 24, 32].includes(value)) this.dispi[index] = value;
        return;
      case DispiIndex.VideoMemory64K:
        return;
      default:
        if (index <= DispiIndex.YOffset) this.dispi[index] = value;
    }
  }

  /** Whether a VBE (dispi) mode is enabled rather than the VGA's own. */
  get vbeEnabled(): boolean {
    return (this.dispi[DispiIndex.Enable] & DISPI_ENABLED) !== 0;
  }

  // ---- The legacy window

  /** The plane offset of window offset `offset`, or -1 outside the map GR6 selects. */
  private mapOffset(offset: number): number {
    switch ((this.graphics[6] >> 2) & 3) {
      case 0:
        return offset < 0x20000 ? offset : -1;
      case 1:
        return offset < 0x10000 ? offset : -1;
      case 2:
        return offset >= 0x10000 && offset < 0x18000 ? offset - 0x10000 : -1;
      default:
        return offset >= 0x18000 && offset < 0x20000 ? offset - 0x18000 : -1;
    }
  }

  private readMemory(windowOffset: number): number {
    let address = this.mapOffset(windowOffset);
    if (address < 0) return 0xff;
    const seq4 = this.sequencer[4];
    if ((seq4 & 0x08) !== 0) {
      // Chain 4: A1:A0 select the plane.
      return this.vram[(address & 3) * VGA_PLANE_SIZE + (address & 0xffff)];
    }
    if ((this.graphics[5] & 0x10) !== 0) {
      // Odd/even: A0 picks plane 0/1 (or 2/3 with read map select bit 1).
      const plane = (this.graphics[4] & 0x02) | (address & 1);
      return this.vram[plane * VGA_PLANE_SIZE + (address & 0xfffe)];
    }
    address &= 0xffff;
    const vram = this.vram;
    const latch = this.latch;
    for (let p = 0; p < 4; p++) latch[p] = vram[p * VGA_PLANE_SIZE + address];
    if ((this.graphics[5] & 0x08) === 0) return latch[this.graphics[4] & 3];
    // Read mode 1: bits whose (cared-for) planes equal the colour compare value read 1.
    const compare = this.graphics[2];
    const care = this.graphics[7];
    let differ = 0;
    for (let p = 0; p < 4; p++) {
      if ((care & (1 << p)) === 0) continue;
      differ |= latch[p] ^ ((compare >> p) & 1 ? 0xff : 0x00);
    }
    return ~differ & 0xff;
  }

  private writeMemory(windowOffset: number, value: number): void {
    let address = this.mapOffset(windowOffset);
    if (address < 0) return;
    const mapMask = this.sequencer[2] & 0x0f;
    const seq4 = this.sequencer[4];
    const vram = this.vram;
    if ((seq4 & 0x08) !== 0) {
      const plane = address & 3;
      if ((mapMask & (1 << plane)) !== 0) vram[plane * VGA_PLANE_SIZE + (address & 0xffff)] = value;
      return;
    }
    if ((seq4 & 0x04) === 0) {
      // Odd/even writes: A0 picks plane 0/1 (2/3 for the higher pair), each gated by the map mask.
      const low = address & 1;
      const offset = address & 0xfffe;
      for (let plane = low; plane < 4; plane += 2) {
        if ((mapMask & (1 << plane)) !== 0) vram[plane * VGA_PLANE_SIZE + offset] = value;
      }
      return;
    }
    address &= 0xffff;
    const gr = this.graphics;
    const mode = gr[5] & 3;
    const rotate = gr[3] & 7;
    const operation = (gr[3] >> 3) & 3;
    const rotated = ((value >> rotate) | (value << (8 - rotate))) & 0xff;
    let bitMask = gr[8];
    for (let p = 0; p < 4; p++) {
      if ((mapMask & (1 << p)) === 0) continue;
      const latch = this.latch[p];
      let data: number;
      if (mode === 1) {
        vram[p * VGA_PLANE_SIZE + address] = latch;
        continue;
      }
      if (mode === 0) {
        data = (gr[1] & (1 << p)) !== 0 ? ((gr[0] >> p) & 1 ? 0xff : 0) : rotated;
      } else if (mode === 2) {
        data = (value >> p) & 1 ? 0xff : 0;
      } else {
        data = (gr[0] >> p) & 1 ? 0xff : 0;
        bitMask = gr[8] & rotated;
      }
      if (operation === 1) data &= latch;
      else if (operation === 2) data |= latch;
      else if (operation === 3) data ^= latch;
      vram[p * VGA_PLANE_SIZE + address] = ((data & bitMask) | (latch & ~bitMask)) & 0xff;
    }
  }

  /**
   * Loads VRAM from a linear copy of the 128 KiB window (offset 0 =
   * 0xA0000), for a VMM that leaves the window as plain memory: bytes at
   * the text map (GR6: 0xB8000 or 0xB0000) go to planes 0 and 1 as odd/even
   * addressing puts them (character n at offset 2n of each), and the first
   * 64 KiB to plane 2, where a BIOS writing only plane 2 (map mask 4) loads
   * its font. Exact for text modes set up that way; graphics modes are not.
   */
  loadLinearWindow(window: Uint8Array): void {
    const textBase = ((this.graphics[6] >> 2) & 3) === 2 ? 0x10000 : 0x18000;
    const vram = this.vram;
    for (let i = 0; i + 1 < 0x8000 && textBase + i + 1 < window.length; i += 2) {
      vram[i] = window[textBase + i];
      vram[VGA_PLANE_SIZE + i] = window[textBase + i + 1];
    }
    vram.set(window.subarray(0, VGA_PLANE_SIZE), 2 * VGA_PLANE_SIZE);
  }

  // ---- Renderers

  /** Text columns (CR01 + 1) and rows (vertical display end / character height). */
  textSize(): { columns: number; rows: number; cellHeight: number } {
    const c = this.crtc;
    const columns = c[0x01] + 1;
    const displayEnd = c[0x12] | ((c[0x07] & 0x02) << 7) | ((c[0x07] & 0x40) << 3);
    const cellHeight = (c[0x09] & 0x1f) + 1;
    // CR09 bit 7 doubles scan lines (200-line modes shown on 400).
    const lines = (displayEnd + 1) >> (c[0x09] & 0x80 ? 1 : 0);
    return { columns, rows: Math.max(1, Math.floor(lines / cellHeight)), cellHeight };
  }

  /** Plane offset (of planes 0/1) of the character at row `row`, column `column`. */
  private cellOffset(row: number, column: number): number {
    const c = this.crtc;
    const start = (c[0x0c] << 8) | c[0x0d];
    // CR13 counts words per row in word mode (2 characters); text modes run in word mode.
    const stride = c[0x13] * 2;
    return ((start + row * stride + column) * 2) & 0xfffe;
  }

  /** The text screen as lines (CP437 shown as Unicode, trailing spaces kept). */
  textScreen(): string[] {
    const { columns, rows } = this.textSize();
    const lines: string[] = [];
    for (let row = 0; row < rows; row++) {
      let line = "";
      for (let column = 0; column < columns; column++) {
        line += CP437[this.vram[this.cellOffset(row, column)]];
      }
      lines.push(line);
    }
    return lines;
  }

  /** The text cursor: location (CR0E:CR0F) as row/column, start/end scan lines (CR0A/CR0B), visibility (CR0A bit 5). */
  cursor(): { row: number; column: number; start: number; end: number; visible: boolean } {
    const c = this.crtc;
    const location = (c[0x0e] << 8) | c[0x0f];
    const start = (c[0x0c] << 8) | c[0x0d];
    const stride = Math.max(1, c[0x13] * 2);
    const relative = (location - start) & 0xffff;
    return {
      row: Math.floor(relative / stride),
      column: relative % stride,
      start: c[0x0a] & 0x1f,
      end: c[0x0b] & 0x1f,
      visible: (c[0x0a] & 0x20) === 0,
    };
  }

  /** RGB (8 bits each) of attribute colour `colour` (0-15) through the attribute palette and the DAC. */
  private colour(colour: number, rgb: Uint8Array): void {
    const ar = this.attribute;
    const select = ar[0x14];
    let index = ar[colour & 0x0f] & 0x3f;
    // AR10 bit 7: palette bits 5:4 come from the colour select register (IBM VGA ref., AR10/AR14).
    if ((ar[0x10] & 0x80) !== 0) index = (index & 0x0f) | ((select & 0x03) << 4);
    index = (index | ((select & 0x0c) << 4)) & this.pelMask;
    for (let i = 0; i < 3; i++) {
      const v = this.palette[index * 3 + i];
      rgb[i] = (v << 2) | (v >> 4);
    }
  }

  /**
   * The text screen as a binary PPM (P6): each character cell drawn from
   * its font glyph in plane 2 (32-byte cells of character map A, SR3),
   * 9 dots wide unless SR1 bit 0 selects 8 (line-graphics characters
   * 0xC0-0xDF repeat dot 8 when AR10 bit 2 is set), foreground/background
   * from the attribute byte through the palette and DAC, and the cursor.
   */
  renderTextPpm(options: VgaRenderOptions = {}): Uint8Array {
    const { columns, rows, cellHeight } = this.textSize();
    const cellWidth = (this.sequencer[1] & 0x01) !== 0 ? 8 : 9;
    const width = columns * cellWidth;
    const height = rows * cellHeight;
    const header = new TextEncoder().encode(`P6\n${width} ${height}\n255\n`);
    const out = new Uint8Array(header.length + width * height * 3);
    out.set(header);
    const sr3 = this.sequencer[3];
    const mapA = ((sr3 >> 3) & 0x04) | (sr3 & 0x03);
    // Character map n starts at 16 KiB * (n & 3) + 8 KiB * (n >> 2) in plane 2 (FreeVGA SR3).
    let font: Uint8Array = this.vram;
    let fontBase = 2 * VGA_PLANE_SIZE + (mapA & 3) * 0x4000 + (mapA >> 2) * 0x2000;
    let glyphSize = 32;
    // Plane 2 without a font (nothing loaded it yet): the caller's, e.g. its BIOS's 8xN font.
    if (
      options.font !== undefined &&
      this.vram.subarray(fontBase, fontBase + 0x2000).every((b) => b === 0)
    ) {
      font = options.font;
      fontBase = 0;
      glyphSize = Math.floor(options.font.length / 256);
    }
    const lineGraphics = (this.attribute[0x10] & 0x04) !== 0;
    const blink = (this.attribute[0x10] & 0x08) !== 0;
    const fg = new Uint8Array(3);
    const bg = new Uint8Array(3);
    const cursor = this.cursor();
    for (let row = 0; row < rows; row++) {
      for (let column = 0; column < columns; column++) {
        const offset = this.cellOffset(row, column);
        const ch = this.vram[offset];
        const attr = this.vram[VGA_PLANE_SIZE + offset];
        this.colour(attr & 0x0f, fg);
        this.colour(blink ? (attr >> 4) & 0x07 : attr >> 4, bg);
        const isCursor = cursor.visible && cursor.row === row && cursor.column === column;
        for (let y = 0; y < cellHeight; y++) {
          let bits = y < glyphSize ? (font[fontBase + ch * glyphSize + y] ?? 0) : 0;
          if (isCursor && y >= cursor.start && y <= cursor.end) bits = 0xff;
          let p = header.length + ((row * cellHeight + y) * width + column * cellWidth) * 3;
          for (let x = 0; x < cellWidth; x++) {
            const on =
              x < 8
                ? (bits >> (7 - x)) & 1
                : lineGraphics && ch >= 0xc0 && ch <= 0xdf
                  ? bits & 1
                  : 0;
            const rgb = on ? fg : bg;
            out[p++] = rgb[0];
            out[p++] = rgb[1];
            out[p++] = rgb[2];
          }
        }
      }
    }
    return out;
  }

  // ---- State

  state(): VgaState {
    return {
      kind: "vga",
      version: 1,
      misc: this.misc,
      featureControl: this.featureControl,
      sequencerIndex: this.sequencerIndex,
      sequencer: Array.from(this.sequencer),
      graphicsIndex: this.graphicsIndex,
      graphics: Array.from(this.graphics),
      crtcIndex: this.crtcIndex,
      crtc: Array.from(this.crtc),
      attributeIndex: this.attributeIndex,
      attributeFlipFlop: this.attributeFlipFlop,
      attribute: Array.from(this.attribute),
      dacWriteIndex: this.dacWriteIndex,
      dacReadIndex: this.dacReadIndex,
      dacComponent: this.dacComponent,
      dacReading: this.dacReading,
      pelMask: this.pelMask,
      palette: Array.from(this.palette),
      latch: Array.from(this.latch),
      dispiIndex: this.dispiIndex,
      dispi: Array.from(this.dispi),
      vram: Buffer.from(this.vram).toString("base64"),
    };
  }

  fromState(state: VgaState): void {
    if (state?.kind !== "vga" || state.version !== 1)
      throw new VgaStateError(`not a version 1 VGA state: ${JSON.stringify(state?.kind)}`);
    const arrays: [readonly number[], Uint8Array | Uint16Array, string][] = [
      [state.sequencer, this.sequencer, "sequencer"],
      [state.graphics, this.graphics, "graphics"],
      [state.crtc, this.crtc, "crtc"],
      [state.attribute, this.attribute, "attribute"],
      [state.palette, this.palette, "palette"],
      [state.latch, this.latch, "latch"],
      [state.dispi, this.dispi, "dispi"],
    ];
    for (const [source, target, name] of arrays) {
      if (!Array.isArray(source) || source.length !== target.length)
        throw new VgaStateError(`VGA state: ${name} must have ${target.length} entries`);
    }
    const vram = Buffer.from(state.vram, "base64");
    if (vram.length !== this.vram.length)
      throw new VgaStateError(
        `VGA state: vram must be ${this.vram.length} bytes, got ${vram.length}`,
      );
    for (const [source, target] of arrays) target.set(source);
    this.vram.set(vram);
    this.misc = state.misc & 0xff;
    this.featureControl = state.featureControl & 0x03;
    this.sequencerIndex = state.sequencerIndex & 0x07;
    this.graphicsIndex = state.graphicsIndex & 0x0f;
    this.crtcIndex = state.crtcIndex & 0x1f;
    this.attributeIndex = state.attributeIndex & 0x3f;
    this.attributeFlipFlop = state.attributeFlipFlop === true;
    this.dacWriteIndex = state.dacWriteIndex & 0xff;
    this.dacReadIndex = state.dacReadIndex & 0xff;
    this.dacComponent = state.dacComponent % 3;
    this.dacReading = state.dacReading === true;
    this.pelMask = state.pelMask & 0xff;
    this.dispiIndex = state.dispiIndex & 0xffff;
  }
}
