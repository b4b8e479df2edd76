import { createGuestMemory, GuestMemoryConfigError, type MmioHandler } from "@kumo/mmu";
import { describe, expect, it } from "vitest";

describe("ArrayBufferGuestMemory", () => {
  it("reads back what it wrote, aligned and unaligned, at every width", () => {
    const memory = createGuestMemory({ ramSize: 0x10000 });
    memory.write32(0x100, 0xdeadbeef);
    expect(memory.read32(0x100)).toBe(0xdeadbeef);
    expect(memory.read16(0x101)).toBe(0xadbe);
    expect(memory.read8(0x103)).toBe(0xde);
    memory.write32(0x203, 0x11223344);
    expect(memory.read32(0x203)).toBe(0x11223344);
    expect(memory.read8(0x203)).toBe(0x44);
    memory.write16(0x301, 0xabcd);
    expect(memory.read16(0x301)).toBe(0xabcd);
    memory.write64(0x400, 0x89abcdef, 0x01234567);
    const out = new Uint32Array(2);
    memory.read64(0x400, out);
    expect([...out]).toEqual([0x89abcdef, 0x01234567]);
  });

  it("crosses a page boundary with an unaligned access", () => {
    const memory = createGuestMemory({ ramSize: 0x3000 });
    memory.write32(0xffe, 0xa1b2c3d4);
    expect(memory.read32(0xffe)).toBe(0xa1b2c3d4);
    expect(memory.read8(0x1000)).toBe(0xb2);
    memory.write64(0x1ffc, 0x01020304, 0x05060708);
    expect(memory.read32(0x2000)).toBe(0x05060708);
  });

  it("reads holes as all-ones and ignores writes to them, never throwing", () => {
    const memory = createGuestMemory({ ramSize: 0x1000 });
    expect(memory.read8(0x5000)).toBe(0xff);
    expect(memory.read16(0x5000)).toBe(0xffff);
    expect(memory.read32(0x5000)).toBe(0xffffffff);
    expect(memory.read32(2 ** 50)).toBe(0xffffffff);
    memory.write32(0x5000, 0);
    expect(memory.read32(0x5000)).toBe(0xffffffff);
    // Half in RAM, half in the hole.
    memory.write32(0xffc, 0);
    expect(memory.read32(0xffe)).toBe(0xffff0000);
    const bytes = new Uint8Array(8);
    memory.readBytes(0xffc, bytes);
    expect([...bytes]).toEqual([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  });

  it("honours a RAM base other than zero (arm virt)", () => {
    const memory = createGuestMemory({ ramSize: 0x2000, ramBase: 0x40000000 });
    memory.write32(0x40001000, 7);
    expect(memory.ram.i32[0x1000 >> 2]).toBe(7);
    expect(memory.read32(0)).toBe(0xffffffff);
    expect(memory.directOffset(0x40001004)).toBe(0x1004);
    expect(memory.directOffset(0x3fffffff)).toBe(-1);
  });

  it("dispatches MMIO with region-relative offsets and splits 64-bit accesses", () => {
    const memory = createGuestMemory({ ramSize: 0x1000 });
    const log: string[] = [];
    const device: MmioHandler = {
      read: (offset, size) => {
        log.push(`r${offset}/${size}`);
        return 0x12345678;
      },
      write: (offset, size, value) => log.push(`w${offset}/${size}=${value.toString(16)}`),
    };
    memory.addMmio(0xfee00000, 0x1000, device);
    expect(memory.read32(0xfee00020)).toBe(0x12345678);
    expect(memory.read8(0xfee00021)).toBe(0x78);
    memory.write64(0xfee00030, 0xaabbccdd, 0x11);
    expect(log).toEqual(["r32/4", "r33/1", "w48/4=aabbccdd", "w52/4=11"]);
    expect(memory.frameKind(0xfee00)).toBe("mmio");
    expect(() => memory.addMmio(0x800, 0x1000, device)).toThrow(GuestMemoryConfigError);
  });

  it("maps another domain's frame, read-only or writable, and unmaps it", () => {
    const dom0 = createGuestMemory({ ramSize: 0x4000 });
    const domU = createGuestMemory({ ramSize: 0x4000 });
    domU.write32(0x2000, 0xcafe);
    const changes: number[] = [];
    dom0.addP2mListener((gfn) => changes.push(gfn));
    const frame = domU.frame(2)!;
    dom0.mapFrame(0x100, frame, false);
    expect(dom0.read32(0x100000)).toBe(0xcafe);
    dom0.write32(0x100000, 1);
    expect(domU.read32(0x2000)).toBe(0xcafe);
    dom0.mapFrame(1, frame, true);
    expect(dom0.directOffset(0x1000)).toBe(-1);
    dom0.write32(0x1004, 0xbeef);
    expect(domU.read32(0x2004)).toBe(0xbeef);
    expect(dom0.unmapFrame(1)).toBe(true);
    expect(dom0.read32(0x1004)).toBe(0);
    expect(dom0.directOffset(0x1000)).toBe(0x1000);
    expect(changes).toEqual([0x100, 1, 1]);
  });

  it("balloons frames out (all-ones) and back in (zeroed)", () => {
    const memory = createGuestMemory({ ramSize: 0x4000 });
    memory.write32(0x1000, 42);
    expect(memory.removeFrame(1)).toBe(true);
    expect(memory.read32(0x1000)).toBe(0xffffffff);
    memory.write32(0x1000, 5);
    expect(memory.frame(1)).toBeNull();
    expect(memory.frameKind(1)).toBe("removed");
    expect(memory.removeFrame(1)).toBe(false);
    expect(memory.populateFrame(1)).toBe(true);
    expect(memory.read32(0x1000)).toBe(0);
  });

  it("can be backed by a SharedArrayBuffer", () => {
    const memory = createGuestMemory({ ramSize: 0x1000, shared: true });
    expect(memory.ram.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it("puts RAM and WebAssembly scratch in one WebAssembly.Memory", () => {
    const memory = createGuestMemory({ ramSize: 0x3000, wasmScratch: 0x5000 });
    expect(memory.ram.u8.length).toBe(0x3000);
    expect(memory.ram.view.byteLength).toBe(0x3000);
    const first = memory.claimWasmScratch(100);
    const second = memory.claimWasmScratch(0x4000);
    expect(first?.offset).toBe(0x3000);
    expect(second?.offset).toBe(0x4000);
    expect(second?.memory).toBe(first?.memory);
    // The rounded-up rest of the 64 KiB WebAssembly page is scratch too; past it, none.
    expect(memory.claimWasmScratch(0x10000)).toBeNull();
    // RAM written through the memory is what WebAssembly code sees at the same offset.
    memory.write32(0x1000, 0x12345678);
    const words = new Int32Array((first as { memory: WebAssembly.Memory }).memory.buffer);
    expect(words[0x1000 >>> 2]).toBe(0x12345678);
  });

  it("has no WebAssembly scratch unless asked, or with a buffer of its own", () => {
    expect(createGuestMemory({ ramSize: 0x1000 }).claimWasmScratch(16)).toBeNull();
    const given = createGuestMemory({
      ramSize: 0x1000,
      buffer: new ArrayBuffer(0x1000),
      wasmScratch: 0x1000,
    });
    expect(given.claimWasmScratch(16)).toBeNull();
    expect(() => createGuestMemory({ ramSize: 0x1000, wasmScratch: -1 })).toThrow(
      GuestMemoryConfigError,
    );
  });

  it("rejects a bad configuration with a typed error", () => {
    expect(() => createGuestMemory({ ramSize: 1000 })).toThrow(GuestMemoryConfigError);
    expect(() => createGuestMemory({ ramSize: 0x1000, ramBase: 3 })).toThrow(/4096-aligned/);
  });
});
