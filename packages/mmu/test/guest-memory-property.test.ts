/**
 * ArrayBufferGuestMemory against a deliberately naive model (a map from
 * guest-physical byte address to its backing), across random sequences of
 * 8/16/32/64-bit and byte-copy accesses at any alignment (page-crossing
 * included), MMIO regions, grant mappings (read-only and writable), unmaps,
 * ballooning out and in. Every read must match the model; no operation may
 * throw for any guest address.
 */

import { createGuestMemory, type MmioHandler } from "@kumo/mmu";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const RAM_BASE = 0x10000;
const RAM_SIZE = 0x8000; // 8 frames at gfn 0x10..0x17
const MMIO_BASE = 0x30000;
const MMIO_SIZE = 0x2000;
const SPACE = 0x40000; // addresses probed: 0 .. SPACE + 8

type Op =
  | { kind: "write"; address: number; size: 1 | 2 | 4 | 8; value: number; high: number }
  | { kind: "read"; address: number; size: 1 | 2 | 4 | 8 }
  | { kind: "writeBytes"; address: number; bytes: number[] }
  | { kind: "readBytes"; address: number; length: number }
  | { kind: "map"; gfn: number; source: number; writable: boolean }
  | { kind: "unmap"; gfn: number }
  | { kind: "remove"; gfn: number }
  | { kind: "populate"; gfn: number };

const gfn = fc.oneof(fc.integer({ min: 0x0e, max: 0x19 }), fc.integer({ min: 0x2f, max: 0x32 }));
// Mostly near the edges of the interesting frames, where accesses cross from
// one kind of backing into another.
const address = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: SPACE + 8 }), weight: 1 },
  {
    arbitrary: fc
      .tuple(
        gfn,
        fc.oneof(
          fc.integer({ min: 0, max: 8 }),
          fc.integer({ min: 4088, max: 4095 }),
          fc.nat(4095),
        ),
      )
      .map(([frame, offset]) => frame * 4096 + offset),
    weight: 4,
  },
);
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant("write" as const),
      address,
      size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      value: fc.nat({ max: 0xffffffff }),
      high: fc.nat({ max: 0xffffffff }),
    }),
    fc.record({
      kind: fc.constant("read" as const),
      address,
      size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
    }),
    fc.record({
      kind: fc.constant("writeBytes" as const),
      address,
      bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 5000 }),
    }),
    fc.record({ kind: fc.constant("readBytes" as const), address, length: fc.nat({ max: 5000 }) }),
    fc.record({
      kind: fc.constant("map" as const),
      gfn,
      source: fc.integer({ min: 0, max: 3 }),
      writable: fc.boolean(),
    }),
    fc.record({ kind: fc.constant("unmap" as const), gfn }),
    fc.record({ kind: fc.constant("remove" as const), gfn }),
    fc.record({ kind: fc.constant("populate" as const), gfn }),
  ),
  { maxLength: 60 },
);

function run(script: Op[]): void {
  const memory = createGuestMemory({ ramSize: RAM_SIZE, ramBase: RAM_BASE });
  const foreign = createGuestMemory({ ramSize: 0x4000 });
  for (let i = 0; i < 0x4000; i++) foreign.write8(i, (i * 7 + 3) & 0xff);
  // The model's own copy of the other domain's memory.
  const foreignModel = Uint8Array.from(foreign.ram.u8);
  // MMIO device: a register file of bytes, accessed at any size.
  const registers = new Uint8Array(MMIO_SIZE);
  const device: MmioHandler = {
    read(offset, size) {
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = value * 256 + registers[offset + i];
      return value;
    },
    write(offset, size, value) {
      for (let i = 0; i < size; i++) registers[offset + i] = Math.floor(value / 256 ** i) & 0xff;
    },
  };
  memory.addMmio(MMIO_BASE, MMIO_SIZE, device);

  // The model: own RAM bytes, frame states, mappings.
  const ram = new Uint8Array(RAM_SIZE);
  const removed = new Set<number>();
  const mapped = new Map<number, { source: number; writable: boolean }>();
  const modelRead8 = (a: number): number => {
    const frame = Math.floor(a / 4096);
    const m = mapped.get(frame);
    if (m) return foreignModel[m.source * 4096 + (a % 4096)];
    if (a >= RAM_BASE && a < RAM_BASE + RAM_SIZE)
      return removed.has(frame) ? 0xff : ram[a - RAM_BASE];
    if (a >= MMIO_BASE && a < MMIO_BASE + MMIO_SIZE) return registers[a - MMIO_BASE];
    return 0xff;
  };
  const modelWrite8 = (a: number, v: number) => {
    const frame = Math.floor(a / 4096);
    const m = mapped.get(frame);
    if (m) {
      if (m.writable) foreignModel[m.source * 4096 + (a % 4096)] = v;
      return;
    }
    if (a >= RAM_BASE && a < RAM_BASE + RAM_SIZE) {
      if (!removed.has(frame)) ram[a - RAM_BASE] = v;
      return;
    }
    if (a >= MMIO_BASE && a < MMIO_BASE + MMIO_SIZE) registers[a - MMIO_BASE] = v;
  };
  const modelRead = (a: number, size: number): number => {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + modelRead8(a + i);
    return value;
  };
  const out = new Uint32Array(2);

  for (const op of script) {
    switch (op.kind) {
      case "write": {
        const { address: a, size, value, high } = op;
        if (size === 1) memory.write8(a, value & 0xff);
        else if (size === 2) memory.write16(a, value & 0xffff);
        else if (size === 4) memory.write32(a, value);
        else memory.write64(a, value, high);
        const bytes = size === 8 ? 4 : size;
        for (let i = 0; i < bytes; i++) modelWrite8(a + i, Math.floor(value / 256 ** i) & 0xff);
        if (size === 8)
          for (let i = 0; i < 4; i++) modelWrite8(a + 4 + i, Math.floor(high / 256 ** i) & 0xff);
        break;
      }
      case "read": {
        const { address: a, size } = op;
        if (size === 8) {
          memory.read64(a, out);
          expect([out[0], out[1]]).toEqual([modelRead(a, 4), modelRead(a + 4, 4)]);
        } else {
          const got =
            size === 1 ? memory.read8(a) : size === 2 ? memory.read16(a) : memory.read32(a);
          expect(got, `read${size * 8} at ${a.toString(16)}`).toBe(modelRead(a, size));
        }
        break;
      }
      case "writeBytes":
        memory.writeBytes(op.address, Uint8Array.from(op.bytes));
        op.bytes.forEach((b, i) => {
          modelWrite8(op.address + i, b);
        });
        break;
      case "readBytes": {
        const target = new Uint8Array(op.length);
        memory.readBytes(op.address, target);
        const expected = Array.from({ length: op.length }, (_, i) => modelRead8(op.address + i));
        expect(Array.from(target)).toEqual(expected);
        break;
      }
      case "map":
        memory.mapFrame(op.gfn, foreign.frame(op.source)!, op.writable);
        mapped.set(op.gfn, { source: op.source, writable: op.writable });
        break;
      case "unmap":
        expect(memory.unmapFrame(op.gfn)).toBe(mapped.delete(op.gfn));
        break;
      case "remove": {
        const inRam = op.gfn >= RAM_BASE / 4096 && op.gfn < (RAM_BASE + RAM_SIZE) / 4096;
        const ok = inRam && !removed.has(op.gfn);
        expect(memory.removeFrame(op.gfn)).toBe(ok);
        if (ok) removed.add(op.gfn);
        break;
      }
      case "populate": {
        const ok = removed.has(op.gfn);
        expect(memory.populateFrame(op.gfn)).toBe(ok);
        if (ok) {
          removed.delete(op.gfn);
          ram.fill(0, op.gfn * 4096 - RAM_BASE, op.gfn * 4096 - RAM_BASE + 4096);
        }
        break;
      }
    }
    if (Buffer.compare(foreign.ram.u8, foreignModel) !== 0) {
      throw new Error(`${op.kind}: the other domain's memory differs from the model`);
    }
    // The direct view agrees with the model wherever it claims a frame.
    for (let frame = RAM_BASE / 4096; frame < (RAM_BASE + RAM_SIZE) / 4096; frame++) {
      const offset = memory.directOffset(frame * 4096);
      const direct = !mapped.has(frame) && !removed.has(frame);
      expect(offset >= 0).toBe(direct);
    }
  }
}

describe("ArrayBufferGuestMemory matches a byte-by-byte model", () => {
  it("across random accesses, MMIO, grant maps and ballooning", () => {
    fc.assert(
      fc.property(ops, (script) => run(script)),
      { numRuns: 300 },
    );
  });
});
