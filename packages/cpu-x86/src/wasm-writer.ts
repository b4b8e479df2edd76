/**
 * A small WebAssembly binary writer for the block tier (WebAssembly Core
 * Specification 2.0, chapter 5 "Binary Format"; the legacy exception
 * handling proposal for `try`/`catch_all`/`rethrow`, which Node 20 ships).
 * Only what compiled blocks use: i32/i64 code, one imported memory,
 * imported functions, exported functions. No dependency: it is a few
 * LEB128 encoders and section framing.
 */

/** Value types (spec 5.3.1). */
export const I32 = 0x7f;
export const I64 = 0x7e;
/** The empty block type (spec 5.4.1). */
export const VOID = 0x40;

/** Opcodes used by the block tier (spec 5.4, exception handling proposal). */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  try: 0x06,
  rethrow: 0x09,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  catchAll: 0x19,
  drop: 0x1a,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  i32Load: 0x28,
  i64Load: 0x29,
  i32Load8S: 0x2c,
  i32Load8U: 0x2d,
  i32Load16S: 0x2e,
  i32Load16U: 0x2f,
  i32Store: 0x36,
  i32Store8: 0x3a,
  i32Store16: 0x3b,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32LtU: 0x49,
  i32GtS: 0x4a,
  i32GtU: 0x4b,
  i32LeS: 0x4c,
  i32LeU: 0x4d,
  i32GeS: 0x4e,
  i32GeU: 0x4f,
  i64Eqz: 0x50,
  i64Eq: 0x51,
  i64Ne: 0x52,
  i64LtS: 0x53,
  i64LeS: 0x57,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrS: 0x75,
  i32ShrU: 0x76,
  i32Rotl: 0x77,
  i32Rotr: 0x78,
  i64Add: 0x7c,
  i64Mul: 0x7e,
  i64ShrU: 0x88,
  i32WrapI64: 0xa7,
  i64ExtendI32S: 0xac,
  i64ExtendI32U: 0xad,
} as const;

/** A growable byte buffer with the spec's integer encodings. */
export class ByteWriter {
  private bytes: Uint8Array<ArrayBuffer>;
  length = 0;

  /** `capacity`: the initial buffer (it doubles when full; a good guess saves the copies). */
  constructor(capacity = 256) {
    this.bytes = new Uint8Array(capacity);
  }

  byte(value: number): this {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = value & 0xff;
    return this;
  }

  append(bytes: Uint8Array): this {
    if (this.length + bytes.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + bytes.length));
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** Unsigned LEB128 of a value in [0, 2^32) (spec 5.2.2). */
  u32(value: number): this {
    let v = value >>> 0;
    for (;;) {
      const low = v & 0x7f;
      v >>>= 7;
      if (v === 0) return this.byte(low);
      this.byte(low | 0x80);
    }
  }

  /** Signed LEB128 of a 32-bit integer (spec 5.2.2). */
  s32(value: number): this {
    let v = value | 0;
    for (;;) {
      const low = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (low & 0x40) === 0) || (v === -1 && (low & 0x40) !== 0)) {
        return this.byte(low);
      }
      this.byte(low | 0x80);
    }
  }

  /** A name: its UTF-8 length and bytes (ASCII here). */
  name(text: string): this {
    this.u32(text.length);
    for (let i = 0; i < text.length; i++) this.byte(text.charCodeAt(i));
    return this;
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    return this.bytes.slice(0, this.length);
  }

  /** The bytes written so far without a copy (valid until the next write). */
  view(): Uint8Array<ArrayBuffer> {
    return this.bytes.subarray(0, this.length);
  }
}

/**
 * A function body's instructions. Methods append one instruction each and
 * return `this`, so code reads in stack order:
 * `c.get(a).get(b).op(Op.i32Add).set(r)`.
 */
export class CodeWriter extends ByteWriter {
  op(opcode: number): this {
    return this.byte(opcode);
  }

  i32(value: number): this {
    return this.byte(Op.i32Const).s32(value);
  }

  /** `i64.const` of the 64-bit integer high:low (two's complement halves; signed LEB128). */
  i64(low: number, high: number): this {
    this.byte(Op.i64Const);
    let lo = low >>> 0;
    let hi = high | 0;
    for (;;) {
      const bits = lo & 0x7f;
      lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
      hi >>= 7;
      const done =
        (hi === 0 && lo === 0 && (bits & 0x40) === 0) ||
        (hi === -1 && lo === 0xffffffff && (bits & 0x40) !== 0);
      if (done) return this.byte(bits);
      this.byte(bits | 0x80);
    }
  }

  get(local: number): this {
    return this.byte(Op.localGet).u32(local);
  }

  set(local: number): this {
    return this.byte(Op.localSet).u32(local);
  }

  tee(local: number): this {
    return this.byte(Op.localTee).u32(local);
  }

  getGlobal(global: number): this {
    return this.byte(Op.globalGet).u32(global);
  }

  setGlobal(global: number): this {
    return this.byte(Op.globalSet).u32(global);
  }

  call(func: number): this {
    return this.byte(Op.call).u32(func);
  }

  /** `call_indirect` through table 0 with type `typeIndex` (the table index is on the stack). */
  callIndirect(typeIndex: number): this {
    return this.byte(Op.callIndirect).u32(typeIndex).byte(0);
  }

  /** A load or store with a memarg: alignment hint (log2 bytes) and constant offset. */
  memory(opcode: number, align: number, offset: number): this {
    return this.byte(opcode).u32(align).u32(offset);
  }

  /** `block`, `loop`, `if` or `try` with a block type (VOID or a value type). */
  begin(opcode: number, type: number = VOID): this {
    return this.byte(opcode).byte(type);
  }

  end(): this {
    return this.byte(Op.end);
  }

  br(depth: number): this {
    return this.byte(Op.br).u32(depth);
  }

  brIf(depth: number): this {
    return this.byte(Op.brIf).u32(depth);
  }
}

/** One function type: parameter and result value types. */
export interface FunctionType {
  params: number[];
  results: number[];
}

/** An imported function of module `module`, field `field`. */
export interface FunctionImport {
  module: string;
  field: string;
  type: FunctionType;
}

/** A defined function: its type, extra locals (all of `localType`), body and export name. */
export interface FunctionDefinition {
  type: FunctionType;
  locals: number;
  localType?: number;
  body: CodeWriter;
  export?: string;
}

export interface ModuleDefinition {
  /** Types given indices 0, 1, ... in this order (for `call_indirect`), before any other. */
  types?: FunctionType[];
  /** Imported memory (module, field), with its minimum page count. */
  memory?: { module: string; field: string; minimumPages: number };
  /** Imported table of functions (module, field), with its minimum length. */
  table?: { module: string; field: string; minimum: number };
  imports: FunctionImport[];
  functions: FunctionDefinition[];
  /** Mutable i32 globals the module defines, each starting at 0: globals 0, 1, ... */
  globals?: number;
  /** Further exports by function index (imports count first). */
  exports?: { name: string; index: number }[];
}

const typeKey = (type: FunctionType): string =>
  `${type.params.join(",")}:${type.results.join(",")}`;

function section(out: ByteWriter, id: number, content: ByteWriter): void {
  out.byte(id).u32(content.length).append(content.view());
}

/**
 * Encodes a module: type, import, function, export and code sections in
 * the order spec 5.5.2 requires. Function indices count the imports first,
 * then the definitions in order.
 */
export function encodeModule(definition: ModuleDefinition): Uint8Array<ArrayBuffer> {
  const types: FunctionType[] = [];
  const typeIndex = new Map<string, number>();
  const indexOf = (type: FunctionType): number => {
    const key = typeKey(type);
    let index = typeIndex.get(key);
    if (index === undefined) {
      index = types.length;
      types.push(type);
      typeIndex.set(key, index);
    }
    return index;
  };
  for (const type of definition.types ?? []) indexOf(type);
  const importTypes = definition.imports.map((entry) => indexOf(entry.type));
  const functionTypes = definition.functions.map((entry) => indexOf(entry.type));

  let codeBytes = 64;
  for (const entry of definition.functions) codeBytes += entry.body.length + 8;
  const out = new ByteWriter(codeBytes + 512);
  out.append(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));

  const typeSection = new ByteWriter().u32(types.length);
  for (const type of types) {
    typeSection.byte(0x60).u32(type.params.length);
    for (const param of type.params) typeSection.byte(param);
    typeSection.u32(type.results.length);
    for (const result of type.results) typeSection.byte(result);
  }
  section(out, 1, typeSection);

  const memory = definition.memory;
  const table = definition.table;
  const importSection = new ByteWriter().u32(
    definition.imports.length + (memory ? 1 : 0) + (table ? 1 : 0),
  );
  if (memory) {
    // Limits flag 0: a minimum only, so any larger memory matches (spec 5.3.4).
    importSection.name(memory.module).name(memory.field).byte(0x02).byte(0);
    importSection.u32(memory.minimumPages);
  }
  if (table) {
    // funcref (0x70), minimum only.
    importSection.name(table.module).name(table.field).byte(0x01).byte(0x70).byte(0);
    importSection.u32(table.minimum);
  }
  definition.imports.forEach((entry, i) => {
    importSection.name(entry.module).name(entry.field).byte(0x00).u32(importTypes[i]);
  });
  section(out, 2, importSection);

  const functionSection = new ByteWriter().u32(functionTypes.length);
  for (const index of functionTypes) functionSection.u32(index);
  section(out, 3, functionSection);

  if (definition.globals) {
    // i32, mutable, initialized by the constant expression `i32.const 0 end` (spec 5.5.9).
    const globalSection = new ByteWriter().u32(definition.globals);
    for (let i = 0; i < definition.globals; i++) {
      globalSection.byte(I32).byte(0x01).byte(Op.i32Const).byte(0).byte(Op.end);
    }
    section(out, 6, globalSection);
  }

  const exported = definition.functions
    .map((entry, i) => ({ name: entry.export, index: definition.imports.length + i }))
    .filter((entry): entry is { name: string; index: number } => entry.name !== undefined)
    .concat(definition.exports ?? []);
  const exportSection = new ByteWriter().u32(exported.length);
  for (const entry of exported) exportSection.name(entry.name).byte(0x00).u32(entry.index);
  section(out, 7, exportSection);

  const codeSection = new ByteWriter(codeBytes).u32(definition.functions.length);
  const header = new ByteWriter(16);
  for (const entry of definition.functions) {
    header.length = 0;
    if (entry.locals > 0)
      header
        .u32(1)
        .u32(entry.locals)
        .byte(entry.localType ?? I32);
    else header.u32(0);
    codeSection.u32(header.length + entry.body.length + 1);
    codeSection.append(header.view()).append(entry.body.view()).byte(Op.end);
  }
  section(out, 10, codeSection);
  return out.view();
}
