import type { Abi, CompoundDef, FieldSpec, PerAbi, ScalarType } from "./define";

/**
 * One member of a resolved layout. Paths of nested struct/union members are flattened with dots
 * (`time.system_time`, `u.interdomain.port`); offsets are from the start of the outermost struct.
 */
export interface FieldLayout {
  readonly path: string;
  readonly offset: number;
  /** Total bytes (`count * elementSize` for arrays): `sizeof(member)` in C. */
  readonly size: number;
  readonly elementSize: number;
  /** Array length, 1 for a plain member. */
  readonly count: number;
  readonly isArray: boolean;
  readonly type: ScalarType | "struct" | "union";
  /** The member's own layout for struct/union members. */
  readonly compound?: StructLayout;
}

export type Reader = (view: DataView, base: number) => number;
export type Writer = (view: DataView, base: number, value: number) => void;

/**
 * A struct laid out for one ABI, with accessors over a little-endian `DataView` (guest memory,
 * a ring page). Every ABI Kumo serves is little-endian.
 *
 * 64-bit members (`u64`, `i64`, and `ulong`/`pfn`/`handle` on 64-bit ABIs) are read and written
 * as a JavaScript number: exact below 2^53 (frame numbers, guest addresses, nanosecond times,
 * sector numbers). Values that use all 64 bits (opaque ids such as `blkif_request.id`) must be
 * copied as two 32-bit halves: the low half at `offsets[path]`, the high half 4 bytes above.
 *
 * Speed: `offsets` holds plain numbers, so hot paths write `view.getUint32(base + o.req_prod,
 * true)` with `o` hoisted; `reader(path)`/`writer(path)` return a closure specialised to the
 * member's type and offset, to be created once and reused. `get`/`set` look the path up on every
 * call and suit control paths; `read` allocates an object and suits tests and logs.
 */
export interface StructLayout<Names extends string = string> {
  /** The C tag (`blkif_request`). */
  readonly name: string;
  readonly kind: "struct" | "union";
  readonly abi: Abi;
  /** `sizeof` in bytes. */
  readonly size: number;
  /** `_Alignof` in bytes. */
  readonly align: number;
  /** Every member path, in declaration order (nested members after their parent). */
  readonly paths: readonly Names[];
  readonly fields: { readonly [K in Names]: FieldLayout };
  readonly offsets: { readonly [K in Names]: number };
  /** Reads a scalar member (element 0 of an array). */
  get(view: DataView, base: number, path: Names): number;
  /** Writes a scalar member (element 0 of an array). */
  set(view: DataView, base: number, path: Names, value: number): void;
  /** Reads element `index` of a scalar array member (the index is checked against its length). */
  getAt(view: DataView, base: number, path: Names, index: number): number;
  setAt(view: DataView, base: number, path: Names, index: number, value: number): void;
  /**
   * Copies a 64-bit member as two unsigned 32-bit halves into `out[0]` (low) and `out[1]`
   * (high): the lossless way to move values that may use all 64 bits (opaque request ids).
   */
  getHalves(view: DataView, base: number, path: Names, out: Uint32Array | number[]): void;
  setHalves(view: DataView, base: number, path: Names, low: number, high: number): void;
  reader(path: Names): Reader;
  writer(path: Names): Writer;
  /** Every non-array scalar member as a plain object (arrays and compound members left out). */
  read(view: DataView, base: number): Partial<Record<Names, number>>;
  /** Writes the given scalar members; others are left as they are. */
  write(view: DataView, base: number, values: Partial<Record<Names, number>>): void;
}

/** A mistake of the caller of this package (unknown member, non-scalar member). */
export class AbiLayoutError extends Error {
  override readonly name = "AbiLayoutError";
}

const TWO_32 = 4294967296;

interface ScalarInfo {
  readonly size: number;
  readonly align: number;
}

/** Size and alignment of each scalar type per ABI (i386 and AAPCS64/x86-64 System V psABIs). */
function scalarInfo(type: ScalarType, abi: Abi): ScalarInfo {
  switch (type) {
    case "u8":
    case "i8":
    case "char":
      return { size: 1, align: 1 };
    case "u16":
    case "i16":
      return { size: 2, align: 2 };
    case "u32":
    case "i32":
      return { size: 4, align: 4 };
    case "u64":
    case "i64":
      // i386 System V ABI: 8-byte integers are 4-byte aligned inside structs.
      return { size: 8, align: abi === "x86_32" ? 4 : 8 };
    case "ulong":
    case "pfn":
    case "handle":
      return abi === "x86_32" ? { size: 4, align: 4 } : { size: 8, align: 8 };
  }
}

function perAbi<T>(value: PerAbi<T>, abi: Abi): T {
  if (typeof value === "object" && value !== null && abi in (value as object)) {
    return (value as { [A in Abi]: T })[abi];
  }
  return value as T;
}

interface MutableField {
  path: string;
  offset: number;
  size: number;
  elementSize: number;
  count: number;
  isArray: boolean;
  type: ScalarType | "struct" | "union";
  compound?: StructLayout;
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

/** Lays `def` out for `abi` with the C rules: members in order, each at its alignment. */
export function resolveLayout<Names extends string>(
  def: CompoundDef<Names>,
  abi: Abi,
): StructLayout<Names> {
  const fields: MutableField[] = [];
  let offset = 0;
  let size = 0;
  let align = 1;
  for (const spec of def.fields as readonly FieldSpec[]) {
    const [name, type, options] = spec;
    if (options?.abis && !options.abis.includes(abi)) continue;
    const isArray = options?.count !== undefined;
    const count = isArray ? perAbi(options.count as PerAbi<number>, abi) : 1;
    let elementSize: number;
    let elementAlign: number;
    let compound: StructLayout | undefined;
    if (typeof type === "string") {
      const info = scalarInfo(type, abi);
      elementSize = info.size;
      elementAlign = info.align;
    } else {
      compound = resolveLayout(type, abi);
      elementSize = compound.size;
      elementAlign = compound.align;
    }
    const memberOffset = def.kind === "union" ? 0 : alignUp(offset, elementAlign);
    const memberSize = elementSize * count;
    align = Math.max(align, elementAlign);
    fields.push({
      path: name,
      offset: memberOffset,
      size: memberSize,
      elementSize,
      count,
      isArray,
      type: typeof type === "string" ? type : type.kind,
      compound,
    });
    // Nested members of a non-array compound are addressable by dotted path.
    if (compound && !isArray) {
      for (const path of compound.paths) {
        const inner = compound.fields[path];
        fields.push({ ...inner, path: `${name}.${path}`, offset: memberOffset + inner.offset });
      }
    }
    if (def.kind === "union") size = Math.max(size, memberSize);
    else offset = memberOffset + memberSize;
  }
  if (def.kind === "struct") size = offset;
  size = alignUp(size, align);
  return makeLayout(def, abi, size, align, fields) as StructLayout<Names>;
}

function makeReader(field: FieldLayout, index: number): Reader {
  const o = field.offset + index * field.elementSize;
  switch (field.type) {
    case "u8":
    case "char":
      return (view, base) => view.getUint8(base + o);
    case "i8":
      return (view, base) => view.getInt8(base + o);
    case "u16":
      return (view, base) => view.getUint16(base + o, true);
    case "i16":
      return (view, base) => view.getInt16(base + o, true);
    case "u32":
      return (view, base) => view.getUint32(base + o, true);
    case "i32":
      return (view, base) => view.getInt32(base + o, true);
    case "i64":
      return (view, base) =>
        view.getUint32(base + o, true) + view.getInt32(base + o + 4, true) * TWO_32;
    case "u64":
    case "ulong":
    case "pfn":
    case "handle":
      if (field.elementSize === 4) return (view, base) => view.getUint32(base + o, true);
      return (view, base) =>
        view.getUint32(base + o, true) + view.getUint32(base + o + 4, true) * TWO_32;
    default:
      throw new AbiLayoutError(`${field.path} is a ${field.type}, not a scalar member`);
  }
}

function makeWriter(field: FieldLayout, index: number): Writer {
  const o = field.offset + index * field.elementSize;
  switch (field.type) {
    case "u8":
    case "i8":
    case "char":
      return (view, base, value) => view.setUint8(base + o, value & 0xff);
    case "u16":
    case "i16":
      return (view, base, value) => view.setUint16(base + o, value & 0xffff, true);
    case "u32":
    case "i32":
      return (view, base, value) => view.setUint32(base + o, value >>> 0, true);
    case "u64":
    case "i64":
    case "ulong":
    case "pfn":
    case "handle":
      if (field.elementSize === 4) {
        return (view, base, value) => view.setUint32(base + o, value >>> 0, true);
      }
      // ToUint32 is exact modulo 2^32 for integers below 2^53; floor() gives the two's
      // complement high half for negative values too.
      return (view, base, value) => {
        view.setUint32(base + o, value >>> 0, true);
        view.setUint32(base + o + 4, Math.floor(value / TWO_32) >>> 0, true);
      };
    default:
      throw new AbiLayoutError(`${field.path} is a ${field.type}, not a scalar member`);
  }
}

function makeLayout(
  def: CompoundDef,
  abi: Abi,
  size: number,
  align: number,
  list: MutableField[],
): StructLayout {
  const fields: Record<string, FieldLayout> = Object.create(null);
  const offsets: Record<string, number> = Object.create(null);
  const readers: Record<string, Reader> = Object.create(null);
  const writers: Record<string, Writer> = Object.create(null);
  const scalarPaths: string[] = [];
  for (const field of list) {
    fields[field.path] = field;
    offsets[field.path] = field.offset;
    if (field.compound === undefined) {
      readers[field.path] = makeReader(field, 0);
      writers[field.path] = makeWriter(field, 0);
      if (!field.isArray) scalarPaths.push(field.path);
    }
  }
  const label = `${def.kind} ${def.name || "(anonymous)"} (${abi})`;
  const field = (path: string): FieldLayout => {
    const found = fields[path];
    if (found === undefined) throw new AbiLayoutError(`${label} has no member "${path}"`);
    return found;
  };
  const reader = (path: string): Reader => {
    const found = readers[path];
    if (found !== undefined) return found;
    return makeReader(field(path), 0);
  };
  const writer = (path: string): Writer => {
    const found = writers[path];
    if (found !== undefined) return found;
    return makeWriter(field(path), 0);
  };
  const checkIndex = (f: FieldLayout, index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= f.count) {
      throw new AbiLayoutError(`${label}: index ${index} out of range for ${f.path}[${f.count}]`);
    }
  };
  return {
    name: def.name,
    kind: def.kind,
    abi,
    size,
    align,
    paths: list.map((f) => f.path),
    fields,
    offsets,
    get: (view, base, path) => reader(path)(view, base),
    set: (view, base, path, value) => writer(path)(view, base, value),
    // Element i of an array is element 0 of the same array at a base i elements further.
    getAt: (view, base, path, index) => {
      const f = field(path);
      checkIndex(f, index);
      return reader(path)(view, base + index * f.elementSize);
    },
    setAt: (view, base, path, index, value) => {
      const f = field(path);
      checkIndex(f, index);
      writer(path)(view, base + index * f.elementSize, value);
    },
    getHalves: (view, base, path, out) => {
      const f = field(path);
      if (f.elementSize !== 8 || f.compound !== undefined) {
        throw new AbiLayoutError(`${label}: ${path} is not a 64-bit member`);
      }
      out[0] = view.getUint32(base + f.offset, true);
      out[1] = view.getUint32(base + f.offset + 4, true);
    },
    setHalves: (view, base, path, low, high) => {
      const f = field(path);
      if (f.elementSize !== 8 || f.compound !== undefined) {
        throw new AbiLayoutError(`${label}: ${path} is not a 64-bit member`);
      }
      view.setUint32(base + f.offset, low >>> 0, true);
      view.setUint32(base + f.offset + 4, high >>> 0, true);
    },
    reader,
    writer,
    read: (view, base) => {
      const out: Record<string, number> = {};
      for (const path of scalarPaths) out[path] = readers[path](view, base);
      return out;
    },
    write: (view, base, values) => {
      for (const path of Object.keys(values)) {
        const value = (values as Record<string, number | undefined>)[path];
        if (value !== undefined) writer(path)(view, base, value);
      }
    },
  };
}
