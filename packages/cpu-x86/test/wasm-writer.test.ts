/**
 * The WebAssembly binary writer: LEB128 encodings against the spec's
 * examples, and modules the host's WebAssembly engine (the oracle) accepts
 * and runs, including `try`/`catch_all`/`rethrow` around a JavaScript
 * exception thrown by an import (what the block tier's fault path needs).
 */
import { describe, expect, it } from "vitest";
import { ByteWriter, CodeWriter, encodeModule, I32, Op } from "../src/wasm-writer";

const bytes = (write: (w: ByteWriter) => void): number[] => {
  const w = new ByteWriter();
  write(w);
  return [...w.toBytes()];
};

describe("wasm writer", () => {
  it("encodes LEB128 as the spec's examples", () => {
    expect(bytes((w) => w.u32(0))).toEqual([0]);
    expect(bytes((w) => w.u32(624485))).toEqual([0xe5, 0x8e, 0x26]);
    expect(bytes((w) => w.u32(0xffffffff))).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(bytes((w) => w.s32(-123456))).toEqual([0xc0, 0xbb, 0x78]);
    expect(bytes((w) => w.s32(63))).toEqual([0x3f]);
    expect(bytes((w) => w.s32(64))).toEqual([0xc0, 0x00]);
    expect(bytes((w) => w.s32(-64))).toEqual([0x40]);
    expect(bytes((w) => w.s32(-65))).toEqual([0xbf, 0x7f]);
    expect(bytes((w) => w.s32(-2147483648))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
  });

  it("round-trips every 32-bit constant class through the engine", () => {
    const values = [0, 1, -1, 63, 64, -64, -65, 0x7fffffff, -0x80000000, 0x12345678, -0x1234567];
    for (const value of values) {
      const body = new CodeWriter().i32(value);
      const module = encodeModule({
        imports: [],
        functions: [{ type: { params: [], results: [I32] }, locals: 0, body, export: "f" }],
      });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(module));
      expect((instance.exports.f as () => number)()).toBe(value);
    }
  });

  it("defines mutable globals that start at 0 and keep their values between calls", () => {
    // f(x): returns global 1, then stores x in it (global 0 stays 0).
    const body = new CodeWriter().getGlobal(1).get(0).setGlobal(1).getGlobal(0).op(Op.i32Add);
    const module = encodeModule({
      imports: [],
      globals: 2,
      functions: [{ type: { params: [I32], results: [I32] }, locals: 0, body, export: "f" }],
    });
    const f = new WebAssembly.Instance(new WebAssembly.Module(module)).exports.f as (
      x: number,
    ) => number;
    expect([f(5), f(-7), f(0)]).toEqual([0, 5, -7]);
  });

  it("reads and writes an imported memory at constant offsets", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const view = new DataView(memory.buffer);
    view.setInt32(100, 41, true);
    // mem[104] = mem[100] + param; return mem[104] (load8_u of the low byte)
    const body = new CodeWriter()
      .i32(0)
      .i32(0)
      .memory(Op.i32Load, 2, 100)
      .get(0)
      .op(Op.i32Add)
      .memory(Op.i32Store, 2, 104)
      .i32(0)
      .memory(Op.i32Load8U, 0, 104);
    const module = encodeModule({
      memory: { module: "e", field: "m", minimumPages: 1 },
      imports: [],
      functions: [{ type: { params: [I32], results: [I32] }, locals: 0, body, export: "f" }],
    });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(module), { e: { m: memory } });
    expect((instance.exports.f as (x: number) => number)(1)).toBe(42);
    expect(view.getInt32(104, true)).toBe(42);
  });

  it("catches a JavaScript exception from an import in catch_all and rethrows it", () => {
    const seen: number[] = [];
    const error = new Error("from JS");
    // try { note(1); boom(); note(2) } catch_all { note(local) ; rethrow }
    const body = new CodeWriter()
      .i32(7)
      .set(1)
      .begin(Op.try)
      .i32(1)
      .call(0)
      .call(1)
      .i32(2)
      .call(0)
      .op(Op.catchAll)
      .get(1)
      .call(0)
      .byte(Op.rethrow)
      .u32(0)
      .end()
      .i32(5);
    const module = encodeModule({
      imports: [
        { module: "e", field: "note", type: { params: [I32], results: [] } },
        { module: "e", field: "boom", type: { params: [], results: [] } },
      ],
      functions: [{ type: { params: [I32], results: [I32] }, locals: 1, body, export: "f" }],
    });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(module), {
      e: {
        note: (v: number) => seen.push(v),
        boom: () => {
          throw error;
        },
      },
    });
    expect(() => (instance.exports.f as (x: number) => number)(0)).toThrow(error);
    expect(seen).toEqual([1, 7]);
  });
});
