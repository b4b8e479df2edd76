import { SoftTlb, TlbPermission as T } from "@kumo/mmu";
import { describe, expect, it } from "vitest";

const RW = T.ReadSupervisor | T.WriteSupervisor;

describe("SoftTlb", () => {
  it("hits only for the cached page and the rights it holds", () => {
    const tlb = new SoftTlb(64);
    const index = tlb.insert(0x00401234, 0, 0x5000, RW, 12, 0x5000, 0);
    expect(tlb.lookup(0x00401fff, 0, T.ReadSupervisor)).toBe(index);
    expect(tlb.translate(0x00401abc, 0, T.WriteSupervisor)).toBe(0x5abc);
    expect(tlb.lookup(0x00401000, 0, T.ReadUser)).toBe(-1);
    expect(tlb.lookup(0x00402000, 0, T.ReadSupervisor)).toBe(-1);
    // Same index and low tag bits, different high half: a miss.
    expect(tlb.lookup(0x00401000, 1, T.ReadSupervisor)).toBe(-1);
    expect(tlb.hostOffset[index]).toBe(0x5000);
  });

  it("tells apart the top and bottom of a 64-bit address space", () => {
    const tlb = new SoftTlb(64);
    tlb.insert(0x81000000, 0xffffffff, 0x1000000, RW, 12, -1, 0);
    expect(tlb.lookup(0x81000000, 0xffffffff, T.ReadSupervisor)).toBeGreaterThanOrEqual(0);
    expect(tlb.lookup(0x81000000, 0x7fffffff, T.ReadSupervisor)).toBe(-1);
    expect(tlb.lookup(0x81000000, 0xfffffffe, T.ReadSupervisor)).toBe(-1);
  });

  it("keeps global entries and drops the others on flushNonGlobal (MOV CR3)", () => {
    const tlb = new SoftTlb(64);
    tlb.insert(0x1000, 0, 0x1000, RW | T.Global, 12, -1, 0);
    tlb.insert(0x2000, 0, 0x2000, RW, 12, -1, 0);
    tlb.flushNonGlobal();
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(0x1000);
    expect(tlb.translate(0x2000, 0, T.ReadSupervisor)).toBe(-1);
    tlb.flushAll();
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(-1);
  });

  it("tags entries with the ASID/PCID and flushes one identifier", () => {
    const tlb = new SoftTlb(64);
    tlb.setAsid(1);
    tlb.insert(0x1000, 0, 0xa000, RW, 12, -1, 0);
    tlb.insert(0x3000, 0, 0xc000, RW | T.Global, 12, -1, 0);
    tlb.setAsid(2);
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(-1);
    expect(tlb.translate(0x3000, 0, T.ReadSupervisor)).toBe(0xc000);
    tlb.insert(0x2000, 0, 0xb000, RW, 12, -1, 0);
    tlb.setAsid(1);
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(0xa000);
    tlb.flushAsid(2);
    tlb.setAsid(2);
    expect(tlb.translate(0x2000, 0, T.ReadSupervisor)).toBe(-1);
    tlb.setAsid(1);
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(0xa000);
    // flushNonGlobal reaches identifiers that are not current.
    tlb.flushNonGlobal();
    tlb.setAsid(1);
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(-1);
    expect(tlb.translate(0x3000, 0, T.ReadSupervisor)).toBe(0xc000);
  });

  it("flushes every 4 KiB slice of a large page from any address in it (INVLPG)", () => {
    const tlb = new SoftTlb(1024);
    // Two slices of a 2 MiB page at 0x00200000 and one of a 1 GiB page.
    tlb.insert(0x00200000, 0, 0x800000, RW, 21, -1, 0);
    tlb.insert(0x003ff000, 0, 0x9ff000, RW, 21, -1, 0);
    tlb.insert(0x40005000, 0, 0x80005000, RW, 30, -1, 0);
    tlb.insert(0x00400000, 0, 0xa00000, RW, 12, -1, 0);
    tlb.flushPage(0x00234567, 0);
    expect(tlb.translate(0x00200000, 0, T.ReadSupervisor)).toBe(-1);
    expect(tlb.translate(0x003ff000, 0, T.ReadSupervisor)).toBe(-1);
    expect(tlb.translate(0x40005000, 0, T.ReadSupervisor)).toBe(0x80005000);
    expect(tlb.translate(0x00400000, 0, T.ReadSupervisor)).toBe(0xa00000);
    tlb.flushPage(0x7fffffff, 0);
    expect(tlb.translate(0x40005000, 0, T.ReadSupervisor)).toBe(-1);
  });

  it("evicts on an index collision (direct-mapped)", () => {
    const tlb = new SoftTlb(16);
    tlb.insert(0x1000, 0, 0xa000, RW, 12, -1, 0);
    tlb.insert(0x11000, 0, 0xb000, RW, 12, -1, 0);
    expect(tlb.translate(0x1000, 0, T.ReadSupervisor)).toBe(-1);
    expect(tlb.translate(0x11000, 0, T.ReadSupervisor)).toBe(0xb000);
  });

  it("rejects a size that is not a power of two", () => {
    expect(() => new SoftTlb(100)).toThrow(RangeError);
  });
});
