import {
  Arm64Access,
  Arm64PageWalker,
  Arm64WalkFlags,
  createGuestMemory,
  X86Access,
  X86Control,
  X86PageWalker,
  X86WalkFlags,
} from "@kumo/mmu";
import { Arm64PageTableBuilder, X86PageTableBuilder } from "@kumo/mmu/test";
import { describe, expect, it } from "vitest";

const PG_WP = (X86Control.Cr0Pg | X86Control.Cr0Wp | 1) >>> 0;

describe("@kumo/mmu/test page-table builders", () => {
  it("build x86 tables in all three modes that the walker follows", () => {
    const memory = createGuestMemory({ ramSize: 8 << 20 });
    const walker = new X86PageWalker(memory);
    const region = { start: 0x100000, end: 0x200000 };

    const legacy = new X86PageTableBuilder(memory, "32", region);
    legacy.map(0x00400000, 0x300000, 0x2000, { writable: true, user: true });
    legacy.map(0x00800000, 0x400000, 4 << 20, { pageSize: 4 << 20 });
    expect(
      walker.walk(PG_WP, legacy.cr3, 0, 0, 0, 0x00401234, 0, X86Access.Write | X86WalkFlags.User),
    ).toBe(0x301234);
    expect(
      walker.walk(PG_WP, legacy.cr3, 0, X86Control.Cr4Pse, 0, 0x00812345, 0, X86Access.Read),
    ).toBe(0x412345);

    const pae = new X86PageTableBuilder(memory, "pae", { start: 0x200000, end: 0x280000 });
    pae.map(0xc0000000, 0x200000, 2 << 20, { pageSize: 2 << 20, noExecute: true });
    const cr4 = X86Control.Cr4Pae;
    expect(
      walker.walk(PG_WP, pae.cr3, 0, cr4, X86Control.EferNxe, 0xc0012345, 0, X86Access.Read),
    ).toBe(0x212345);
    expect(
      walker.walk(PG_WP, pae.cr3, 0, cr4, X86Control.EferNxe, 0xc0012345, 0, X86Access.Execute),
    ).toBe(-1);

    const long = new X86PageTableBuilder(memory, "long", { start: 0x280000, end: 0x300000 });
    long.map(0xffffffff81000000n, 0x1000000, 0x1000, { global: true });
    long.map(0xffff888000000000n, 0, 1 << 30, { pageSize: 1 << 30, writable: true });
    const efer = X86Control.EferLma | X86Control.EferNxe;
    expect(
      walker.walk(PG_WP, long.cr3, 0, cr4, efer, 0x81000010, 0xffffffff, X86Access.Execute),
    ).toBe(0x1000010);
    expect(
      walker.walk(PG_WP, long.cr3, 0, cr4, efer, 0x00345678, 0xffff8880, X86Access.Write),
    ).toBe(0x345678);
  });

  it("build arm64 tables for 48- and 39-bit spaces", () => {
    const memory = createGuestMemory({ ramSize: 8 << 20, ramBase: 0x40000000 });
    const walker = new Arm64PageWalker(memory);
    const low = new Arm64PageTableBuilder(memory, 48, { start: 0x40100000, end: 0x40180000 });
    low.map(0x400000, 0x40300000, 0x3000, { accessPermissions: 1, pxn: true, notGlobal: true });
    const high = new Arm64PageTableBuilder(memory, 39, { start: 0x40180000, end: 0x40200000 });
    high.map(0xffffff8000000000n, 0x40000000, 2 << 20, { pageSize: 2 << 20, attributeIndex: 1 });
    walker.sctlr = 1;
    walker.tcrLow = 16 | (25 << 16) | (0b10 << 30);
    walker.tcrHigh = 0b101;
    walker.ttbr0Low = low.ttbr;
    walker.ttbr1Low = high.ttbr;
    walker.mairLow = 0x4400;
    expect(walker.walk(0x402abc, 0, Arm64Access.Write | Arm64WalkFlags.Unprivileged)).toBe(
      0x40302abc,
    );
    expect(walker.walk(0x402abc, 0, Arm64Access.Execute)).toBe(-1);
    expect(walker.walk(0x00012345, 0xffffff80, Arm64Access.Read)).toBe(0x40012345);
    expect(walker.attributes).toBe(0x44);
  });
});
