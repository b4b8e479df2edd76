/**
 * A writer for flattened device trees (Devicetree Specification v0.4,
 * chapter 5 "Flattened Devicetree (DTB) Format"): the 40-byte header, the
 * memory reservation block, the structure block (FDT_BEGIN_NODE, FDT_PROP,
 * FDT_END_NODE, FDT_END tokens, big-endian, 4-byte aligned) and the strings
 * block with each property name stored once. Version 17, last compatible 16,
 * as dtc writes.
 *
 * Cells are 32-bit; 64-bit values (addresses and sizes with
 * #address-cells = <2>) are given as numbers below 2^53 and split into two
 * cells without BigInt.
 */

/** A caller's mistake in building a tree: unbalanced nodes, bad names or values. */
export class DeviceTreeError extends Error {
  override readonly name = "DeviceTreeError";
}

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;
const HEADER_SIZE = 40;
const VERSION = 17;
const LAST_COMPATIBLE_VERSION = 16;

const encoder = new TextEncoder();

/** A property value: cells (u32), a 64-bit cell pair, strings, or raw bytes. */
export type PropertyValue = Uint8Array;

/** `<a b c>`: 32-bit cells. */
export function cells(...values: number[]): PropertyValue {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((value, index) => {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw new DeviceTreeError(`cell value ${value} is not a 32-bit unsigned integer`);
    view.setUint32(index * 4, value);
  });
  return bytes;
}

/** Two cells per value (high, low): what #address-cells = <2> or #size-cells = <2> want. */
export function cells64(...values: number[]): PropertyValue {
  const split: number[] = [];
  for (const value of values) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new DeviceTreeError(`64-bit cell value ${value} is not a safe unsigned integer`);
    split.push(Math.floor(value / 0x100000000), value >>> 0);
  }
  return cells(...split);
}

/** A string list: each NUL-terminated, one after another (compatible = "a", "b"). */
export function strings(...values: string[]): PropertyValue {
  const parts = values.map((value) => {
    if (value.includes("\0")) throw new DeviceTreeError(`string "${value}" contains a NUL`);
    return encoder.encode(`${value}\0`);
  });
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** An empty property (`interrupt-controller;`). */
export const empty: PropertyValue = new Uint8Array(0);

/** Node names: 1-31 characters of [0-9a-zA-Z,._+-], then an optional @unit-address (spec 2.2.1). */
const NODE_NAME = /^[0-9a-zA-Z,._+-]{1,31}(@[0-9a-zA-Z,._+-]+)?$/;
/** Property names: 1-31 characters of [0-9a-zA-Z,._+?#-] (spec 2.2.4). */
const PROPERTY_NAME = /^[0-9a-zA-Z,._+?#-]{1,31}$/;

export interface MemoryReservation {
  readonly address: number;
  readonly size: number;
}

/** Builds a DTB: `beginNode`/`property`/`endNode` in document order, then `finish`. */
export class FdtWriter {
  private readonly structure: number[] = [];
  private readonly stringsBlock: number[] = [];
  private readonly stringOffsets = new Map<string, number>();
  private depth = 0;
  private finished = false;
  private nextPhandle = 1;

  /** A fresh phandle value (1, 2, ...) for `property("phandle", cells(n))`. */
  allocatePhandle(): number {
    return this.nextPhandle++;
  }

  beginNode(name: string): this {
    this.checkOpen();
    // The root node's name is empty; every other node needs a valid one.
    if (this.depth > 0 ? !NODE_NAME.test(name) : name !== "")
      throw new DeviceTreeError(
        this.depth > 0 ? `invalid node name "${name}"` : "the root node's name must be empty",
      );
    if (this.depth === 0 && this.structure.length > 0)
      throw new DeviceTreeError("a device tree has exactly one root node");
    this.token(FDT_BEGIN_NODE);
    this.bytes(encoder.encode(`${name}\0`));
    this.depth++;
    return this;
  }

  property(name: string, value: PropertyValue): this {
    this.checkOpen();
    if (this.depth === 0) throw new DeviceTreeError(`property "${name}" outside any node`);
    if (!PROPERTY_NAME.test(name)) throw new DeviceTreeError(`invalid property name "${name}"`);
    this.token(FDT_PROP);
    this.token(value.length);
    this.token(this.stringOffset(name));
    this.bytes(value);
    return this;
  }

  endNode(): this {
    this.checkOpen();
    if (this.depth === 0) throw new DeviceTreeError("endNode without a matching beginNode");
    this.token(FDT_END_NODE);
    this.depth--;
    return this;
  }

  /** The DTB bytes. `bootCpuId` is the header's boot_cpuid_phys (the boot CPU's reg). */
  finish(reservations: readonly MemoryReservation[] = [], bootCpuId = 0): Uint8Array {
    this.checkOpen();
    if (this.depth !== 0 || this.structure.length === 0)
      throw new DeviceTreeError(`unbalanced tree: ${this.depth} node(s) still open`);
    this.token(FDT_END);
    this.finished = true;
    // Layout as dtc writes it: header, reservation map (8-aligned), structure, strings.
    const reservationOffset = HEADER_SIZE;
    const reservationSize = (reservations.length + 1) * 16;
    const structureOffset = reservationOffset + reservationSize;
    const structureSize = this.structure.length;
    const stringsOffset = structureOffset + structureSize;
    const stringsSize = this.stringsBlock.length;
    const total = stringsOffset + stringsSize;
    const bytes = new Uint8Array(total);
    const view = new DataView(bytes.buffer);
    const header = [
      FDT_MAGIC,
      total,
      structureOffset,
      stringsOffset,
      reservationOffset,
      VERSION,
      LAST_COMPATIBLE_VERSION,
      bootCpuId,
      stringsSize,
      structureSize,
    ];
    for (let index = 0; index < header.length; index++) view.setUint32(index * 4, header[index]);
    for (let index = 0; index < reservations.length; index++) {
      const { address, size } = reservations[index];
      bytes.set(cells64(address, size), reservationOffset + index * 16);
    }
    bytes.set(this.structure, structureOffset);
    bytes.set(this.stringsBlock, stringsOffset);
    return bytes;
  }

  private checkOpen(): void {
    if (this.finished) throw new DeviceTreeError("the tree is finished");
  }

  private token(value: number): void {
    this.structure.push(
      (value >>> 24) & 0xff,
      (value >>> 16) & 0xff,
      (value >>> 8) & 0xff,
      value & 0xff,
    );
  }

  private bytes(data: Uint8Array): void {
    for (const byte of data) this.structure.push(byte);
    while (this.structure.length % 4) this.structure.push(0);
  }

  /**
   * A name's offset in the strings block, reusing any earlier string that
   * ends with it ("method" inside "enable-method"), as dtc does
   * (flattree.c: stringtable_insert), so that dtc writes the same bytes back.
   */
  private stringOffset(name: string): number {
    const known = this.stringOffsets.get(name);
    if (known !== undefined) return known;
    const wanted = encoder.encode(`${name}\0`);
    const table = this.stringsBlock;
    let offset = -1;
    for (let at = 0; at + wanted.length <= table.length && offset < 0; at++) {
      let match = true;
      for (let i = 0; i < wanted.length && match; i++) match = table[at + i] === wanted[i];
      if (match) offset = at;
    }
    if (offset < 0) {
      offset = table.length;
      for (const byte of wanted) table.push(byte);
    }
    this.stringOffsets.set(name, offset);
    return offset;
  }
}
