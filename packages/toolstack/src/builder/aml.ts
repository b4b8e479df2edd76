/**
 * A small ACPI Machine Language encoder for the DSDTs the toolstack builds
 * (ACPI 6.4 chapter 20 "ACPI Machine Language (AML) Specification") and the
 * resource descriptors of their `_CRS` buffers (ACPI 6.4 section 6.4
 * "Resource Data Types for ACPI"). Only the data objects a static
 * description needs: names, scopes, devices, integers, strings, packages,
 * buffers, EISA IDs. Each function returns the bytes of one term; callers
 * concatenate. Encodings are the shortest the grammar allows, as iasl
 * emits them, so the tests can compare with iasl's output.
 */
import { DomainBuildError } from "./errors";

export type Aml = readonly number[];

/** AML opcodes (ACPI 6.4 section 20.3). */
const Op = {
  Zero: 0x00,
  One: 0x01,
  Name: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  Scope: 0x10,
  Buffer: 0x11,
  Package: 0x12,
  DualNamePrefix: 0x2e,
  MultiNamePrefix: 0x2f,
  ExtPrefix: 0x5b,
  Device: 0x82,
  RootChar: 0x5c,
  Ones: 0xff,
} as const;

/**
 * PkgLength (ACPI 6.4 20.2.4) of a package whose contents after the
 * PkgLength are `length` bytes: the encoded value counts itself. One byte
 * holds up to 63; otherwise bits 7:6 of the lead byte give the number of
 * following bytes, its bits 3:0 the low nibble and each following byte the
 * next 8 bits.
 */
export function pkgLength(length: number): Aml {
  if (length + 1 < 0x40) return [length + 1];
  for (let extra = 1; extra <= 3; extra++) {
    const total = length + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const bytes = [(extra << 6) | (total & 0x0f)];
      for (let i = 0; i < extra; i++) bytes.push((total >>> (4 + 8 * i)) & 0xff);
      return bytes;
    }
  }
  throw new DomainBuildError(`an AML package of ${length} bytes is longer than PkgLength allows`);
}

/** A NameSeg: four characters from [A-Z0-9_], padded with "_" (ACPI 6.4 20.2.2). */
function nameSeg(segment: string): Aml {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(segment))
    throw new DomainBuildError(`"${segment}" is not an ACPI name segment`);
  return Array.from(segment.padEnd(4, "_"), (c) => c.charCodeAt(0));
}

/** A NameString: optional root "\\", then segments joined by "." (ACPI 6.4 20.2.2). */
export function nameString(path: string): Aml {
  const root = path.startsWith("\\");
  const segments = (root ? path.slice(1) : path).split(".").filter((s) => s.length > 0);
  const prefix = root ? [Op.RootChar] : [];
  if (segments.length === 0) return [...prefix, 0x00]; // NullName
  const encoded = segments.flatMap(nameSeg);
  if (segments.length === 1) return [...prefix, ...encoded];
  if (segments.length === 2) return [...prefix, Op.DualNamePrefix, ...encoded];
  return [...prefix, Op.MultiNamePrefix, segments.length, ...encoded];
}

/** An integer as the shortest of ZeroOp, OneOp, Byte/Word/DWord/QWordConst (ACPI 6.4 20.2.3). */
export function integer(value: number): Aml {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new DomainBuildError(`${value} is not an AML integer`);
  if (value === 0) return [Op.Zero];
  if (value === 1) return [Op.One];
  if (value <= 0xff) return [Op.BytePrefix, value];
  if (value <= 0xffff) return [Op.WordPrefix, value & 0xff, value >>> 8];
  if (value <= 0xffffffff) return [Op.DWordPrefix, ...le(value, 4)];
  return [Op.QWordPrefix, ...le(value % 2 ** 32, 4), ...le(Math.floor(value / 2 ** 32), 4)];
}

/** `value` as `bytes` little-endian bytes. */
export function le(value: number, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) out.push(Math.floor(value / 2 ** (8 * i)) & 0xff);
  return out;
}

/** A String (ACPI 6.4 20.2.3): StringPrefix, ASCII characters, NUL. */
export function string(text: string): Aml {
  return [Op.StringPrefix, ...Array.from(text, (c) => c.charCodeAt(0) & 0x7f), 0];
}

/**
 * EISAID("PNP0A03") as ASL compiles it (ACPI 6.4 19.6.35): three letters of
 * 5 bits each (A = 1) and four hex digits, stored big-endian in a DWord.
 */
export function eisaId(id: string): Aml {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id))
    throw new DomainBuildError(`"${id}" is not an EISA ID (three letters, four hex digits)`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const vendor = (letters[0] << 10) | (letters[1] << 5) | letters[2];
  const product = Number.parseInt(id.slice(3), 16);
  return [Op.DWordPrefix, vendor >>> 8, vendor & 0xff, product >>> 8, product & 0xff];
}

/** Name (path, object) (ACPI 6.4 20.2.5.1 DefName). */
export function name(path: string, object: Aml): Aml {
  return [Op.Name, ...nameString(path), ...object];
}

/** Scope (path) { terms } (ACPI 6.4 20.2.5.1 DefScope). */
export function scope(path: string, ...terms: Aml[]): Aml {
  const body = [...nameString(path), ...terms.flat()];
  return [Op.Scope, ...pkgLength(body.length), ...body];
}

/** Device (path) { terms } (ACPI 6.4 20.2.5.2 DefDevice). */
export function device(path: string, ...terms: Aml[]): Aml {
  const body = [...nameString(path), ...terms.flat()];
  return [Op.ExtPrefix, Op.Device, ...pkgLength(body.length), ...body];
}

/** Package () { elements } (ACPI 6.4 20.2.5.4 DefPackage). */
export function aPackage(...elements: Aml[]): Aml {
  if (elements.length > 255)
    throw new DomainBuildError(`an AML Package holds at most 255 elements, not ${elements.length}`);
  const body = [elements.length, ...elements.flat()];
  return [Op.Package, ...pkgLength(body.length), ...body];
}

/** Buffer () { bytes } (ACPI 6.4 20.2.5.4 DefBuffer). */
export function buffer(bytes: Aml): Aml {
  const body = [...integer(bytes.length), ...bytes];
  return [Op.Buffer, ...pkgLength(body.length), ...body];
}

/** ResourceTemplate () { descriptors }: a Buffer ending with the End Tag (ACPI 6.4 6.4.2.9). */
export function resourceTemplate(...descriptors: Aml[]): Aml {
  // End tag: small item 0xF, length 1; checksum 0 means "the sum is fine" (6.4.2.9).
  return buffer([...descriptors.flat(), 0x79, 0x00]);
}

/** IO (Decode16, base, base, alignment, length): I/O port descriptor (ACPI 6.4 6.4.2.5). */
export function ioPort(base: number, length: number, alignment = 1): Aml {
  return [0x47, 0x01, ...le(base, 2), ...le(base, 2), alignment, length];
}

/** IRQNoFlags () { irq }: an edge-triggered, active-high ISA IRQ (ACPI 6.4 6.4.2.1, 2-byte form). */
export function irqNoFlags(irq: number): Aml {
  return [0x22, ...le(1 << irq, 2)];
}

/** Address space resource types (ACPI 6.4 table 6.44). */
export const AddressSpace = { Memory: 0, Io: 1, BusNumber: 2 } as const;

/**
 * A Word (16-bit) address space descriptor (ACPI 6.4 6.4.3.5.3) produced by
 * a bridge, with fixed minimum and maximum and positive decode: the
 * WordBusNumber and WordIO of a PCI root's `_CRS`. I/O type-specific flags
 * 3: "EntireRange" (ISA and non-ISA ranges).
 */
export function wordAddressSpace(type: number, min: number, max: number): Aml {
  // General flags: bit 3 MaxFixed, bit 2 MinFixed, bit 1 0 = positive decode, bit 0 0 = producer.
  const typeFlags = type === AddressSpace.Io ? 0x03 : 0x00;
  const body = [type, 0x0c, typeFlags, ...le(0, 2), ...le(min, 2), ...le(max, 2), 0, 0];
  body.push(...le(max - min + 1, 2));
  return [0x88, ...le(body.length, 2), ...body];
}

/**
 * A DWord memory range a bridge produces (ACPI 6.4 6.4.3.5.2), fixed
 * minimum and maximum, positive decode, cacheable, read-write: the
 * DWordMemory of a PCI root's `_CRS`.
 */
export function dwordMemory(min: number, max: number): Aml {
  // Type-specific flags: bit 0 read-write, bits 2:1 = 1 cacheable.
  const body = [AddressSpace.Memory, 0x0c, 0x03, ...le(0, 4), ...le(min, 4), ...le(max, 4)];
  body.push(...le(0, 4), ...le(max - min + 1, 4));
  return [0x87, ...le(body.length, 2), ...body];
}
