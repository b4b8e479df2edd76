/**
 * The software TLB must never answer differently from a fresh page walk, as
 * long as software performs the invalidations the architecture requires
 * after changing a paging-structure entry (Intel SDM vol. 3A 4.10.4,
 * Arm ARM chapter D8, TLB maintenance): INVLPG / TLBI VA for every page whose translation used the
 * entry (one address per large page suffices), or a wider flush (MOV CR3 /
 * INVPCID / TLBI ASID when no global translation is involved, a full flush
 * otherwise). Address spaces with other identifiers that cached an affected
 * translation are flushed before they are used again, as Linux does.
 *
 * The model CPU below accesses memory the way a CPU package would: TLB
 * lookup first, walk and insert on a miss. Every access is compared with a
 * walk by a second walker that has no cache.
 */

import {
  Arm64PageWalker,
  Arm64WalkFlags,
  arm64AccessPermission,
  createGuestMemory,
  type GuestMemory,
  SoftTlb,
  TlbPermission,
  X86Control,
  X86PageWalker,
  X86WalkFlags,
  x86AccessPermission,
} from "@kumo/mmu";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

interface Walker {
  walk(vaLow: number, vaHigh: number, flags: number): number;
  readonly physicalPage: number;
  readonly permissions: number;
  readonly pageShift: number;
  readonly walkedEntryCount: number;
  walkedEntryAddress(i: number): number;
  /** The fault description, to compare two faulting walks. */
  fault(): number;
}

interface Architecture {
  name: string;
  /** Page-table pages by level (top first) and the leaf frames a level may point to. */
  tables: number[][];
  /** Bits of a random descriptor for level `level` (0 = top) pointing at `target`. */
  entry(level: number, bits: number, target: number, large: boolean): [number, number];
  largeLevels: number[];
  largeTargets(level: number): number[];
  pageTargets: number[];
  /** Virtual addresses probed: every combination of index 0/1 at each level. */
  probes: [number, number][];
  makeWalker(memory: GuestMemory): Walker;
  permissionBit(flags: number): number;
  /** Random access flags (kind + privilege bits). */
  flags: fc.Arbitrary<number>;
}

const x86: Architecture = (() => {
  const cr0 = (X86Control.Cr0Pg | X86Control.Cr0Wp | 1) >>> 0;
  const cr4 = X86Control.Cr4Pae | X86Control.Cr4Pge | X86Control.Cr4Smep | X86Control.Cr4Smap;
  const efer = X86Control.EferLma | X86Control.EferNxe;
  const probes: [number, number][] = [];
  for (let i = 0; i < 16; i++) {
    const [i4, i3, i2, i1] = [(i >> 3) & 1, (i >> 2) & 1, (i >> 1) & 1, i & 1];
    probes.push([((i3 << 30) | (i2 << 21) | (i1 << 12) | 0x123) >>> 0, i4 << 7]);
  }
  return {
    name: "x86 4-level paging",
    tables: [[0x1000], [0x2000, 0x3000], [0x4000, 0x5000], [0x6000, 0x7000]],
    entry(level, bits, target, large) {
      // bits: P RW US A D G NX, and rarely a reserved bit (bit 51).
      let low = target % 0x100000000;
      const high = Math.floor(target / 0x100000000);
      low |= (bits & 1 ? 1 : 0) | (bits & 2 ? 2 : 0) | (bits & 4 ? 4 : 0);
      low |= (bits & 8 ? 0x20 : 0) | (bits & 16 ? 0x40 : 0) | (bits & 32 ? 0x100 : 0);
      if (large) low |= 0x80;
      let h = high;
      if (bits & 64) h |= 0x80000000;
      if ((bits & 0x780) === 0x780) h |= 1 << 19;
      void level;
      return [low >>> 0, h >>> 0];
    },
    largeLevels: [1, 2],
    largeTargets: (level) =>
      level === 1 ? [0x40000000, 0x1_80000000] : [0x200000, 0x400000, 0x600000],
    pageTargets: [0x100000, 0x101000, 0x102000, 0x103000],
    probes,
    makeWalker(memory) {
      const walker = new X86PageWalker(memory);
      return {
        walk: (vaLow, vaHigh, flags) =>
          walker.walk(cr0, 0x1000, 0, cr4, efer, vaLow, vaHigh, flags),
        get physicalPage() {
          return walker.physicalPage;
        },
        get permissions() {
          return walker.permissions;
        },
        get pageShift() {
          return walker.pageShift;
        },
        get walkedEntryCount() {
          return walker.walkedEntryCount;
        },
        walkedEntryAddress: (i) => walker.walkedEntryAddress(i),
        fault: () => walker.errorCode,
      };
    },
    permissionBit: (flags) =>
      x86AccessPermission(flags & 3, (flags & X86WalkFlags.User) !== 0, true),
    flags: fc
      .tuple(fc.integer({ min: 0, max: 2 }), fc.boolean())
      .map(([kind, user]) => kind | (user ? X86WalkFlags.User : 0)),
  };
})();

const arm64: Architecture = (() => {
  const probes: [number, number][] = [];
  for (let i = 0; i < 16; i++) {
    const [i0, i1, i2, i3] = [(i >> 3) & 1, (i >> 2) & 1, (i >> 1) & 1, i & 1];
    probes.push([((i1 << 30) | (i2 << 21) | (i3 << 12) | 0x456) >>> 0, i0 << 7]);
  }
  return {
    name: "arm64 stage 1, 48-bit, 4 KiB granule",
    tables: [[0x1000], [0x2000, 0x3000], [0x4000, 0x5000], [0x6000, 0x7000]],
    entry(level, bits, target, large) {
      let low = target % 0x100000000;
      let high = Math.floor(target / 0x100000000);
      if (bits & 1) low |= large ? 1 : 3; // valid; table or page (level 3) / block
      if (level === 3 && bits & 1 && (bits & 0x780) === 0x780) low &= ~2; // reserved encoding
      low |= (bits & 2 ? 1 << 6 : 0) | (bits & 4 ? 1 << 7 : 0) | (bits & 8 ? 1 << 10 : 0);
      low |= bits & 16 ? 1 << 11 : 0; // nG
      if (level < 3 && !large) {
        high |= (bits & 32 ? 1 << 27 : 0) | (bits & 64 ? 1 << 28 : 0);
        high |= (bits & 128 ? 1 << 29 : 0) | (bits & 256 ? 1 << 30 : 0);
      } else {
        high |= (bits & 32 ? 1 << 21 : 0) | (bits & 64 ? 1 << 22 : 0);
      }
      return [low >>> 0, high >>> 0];
    },
    largeLevels: [1, 2],
    largeTargets: (level) =>
      level === 1 ? [0x40000000, 0x1_80000000] : [0x200000, 0x400000, 0x600000],
    pageTargets: [0x100000, 0x101000, 0x102000, 0x103000],
    probes,
    makeWalker(memory) {
      const walker = new Arm64PageWalker(memory);
      walker.sctlr = 1;
      walker.tcrLow = 16 | (16 << 16) | (0b10 << 30);
      walker.tcrHigh = 0b101;
      walker.ttbr0Low = 0x1000;
      return {
        walk: (vaLow, vaHigh, flags) => walker.walk(vaLow, vaHigh, flags),
        get physicalPage() {
          return walker.physicalPage;
        },
        get permissions() {
          return walker.permissions;
        },
        get pageShift() {
          return walker.pageShift;
        },
        get walkedEntryCount() {
          return walker.walkedEntryCount;
        },
        walkedEntryAddress: (i) => walker.walkedEntryAddress(i),
        fault: () => walker.faultStatus,
      };
    },
    permissionBit: (flags) => arm64AccessPermission(flags & 3, flags),
    flags: fc
      .tuple(fc.integer({ min: 0, max: 2 }), fc.boolean(), fc.boolean())
      .map(
        ([kind, el0, pan]) =>
          kind |
          (el0 ? Arm64WalkFlags.Unprivileged : 0) |
          (pan ? Arm64WalkFlags.PrivilegedAccessNever : 0),
      ),
  };
})();

type Command =
  | {
      kind: "edit";
      level: number;
      table: number;
      index: number;
      bits: number;
      pick: number;
      large: boolean;
      flush: number;
    }
  | { kind: "access"; probe: number; flags: number }
  | { kind: "asid"; asid: number };

function commands(arch: Architecture): fc.Arbitrary<Command[]> {
  const edit = fc.record({
    kind: fc.constant("edit" as const),
    level: fc.integer({ min: 0, max: 3 }),
    table: fc.integer({ min: 0, max: 1 }),
    index: fc.integer({ min: 0, max: 1 }),
    // Mostly valid entries so that walks get deep.
    bits: fc.integer({ min: 0, max: 0x7ff }).map((bits) => (bits % 8 === 0 ? bits : bits | 1)),
    pick: fc.nat(),
    large: fc.boolean(),
    flush: fc.integer({ min: 0, max: 3 }),
  });
  const access = fc.record({
    kind: fc.constant("access" as const),
    probe: fc.integer({ min: 0, max: arch.probes.length - 1 }),
    flags: arch.flags,
  });
  const asid = fc.record({
    kind: fc.constant("asid" as const),
    asid: fc.integer({ min: 0, max: 2 }),
  });
  return fc.array(
    fc.oneof(
      { arbitrary: edit, weight: 2 },
      { arbitrary: access, weight: 5 },
      { arbitrary: asid, weight: 1 },
    ),
    {
      minLength: 10,
      maxLength: 120,
    },
  );
}

function run(arch: Architecture, script: Command[]): void {
  const memory = createGuestMemory({ ramSize: 8 << 20 });
  const tlb = new SoftTlb(16); // small, so that probes collide and evict
  const cpuWalker = arch.makeWalker(memory);
  const freshWalker = arch.makeWalker(memory);
  // Start from a fully valid tree: every table's entries 0 and 1 point one level down.
  for (let level = 0; level < 4; level++) {
    for (const table of arch.tables[level]) {
      for (let index = 0; index < 2; index++) {
        // The second table of levels 1 and 2 maps large pages, so that large
        // pages are in play from the start.
        const large =
          (level === 1 || level === 2) &&
          table === arch.tables[level][1] &&
          (level === 2 || index === 1);
        const target = large
          ? arch.largeTargets(level)[index]
          : level < 3
            ? arch.tables[level + 1][index]
            : arch.pageTargets[index];
        const [low, high] = arch.entry(level, 0x1f & ~16, target, large);
        memory.write64(table + index * 8, low, high);
      }
    }
  }
  // What each identifier has cached: page key -> entry addresses used and whether global.
  const cached = new Map<
    number,
    Map<string, { path: number[]; global: boolean; leaf: string; va: [number, number] }>
  >();
  const stale = new Set<number>();
  let asid = 0;
  const key = (va: [number, number]) => `${va[1]}:${va[0] >>> 12}`;

  for (const command of script) {
    if (command.kind === "asid") {
      asid = command.asid;
      tlb.setAsid(asid);
      if (stale.has(asid)) {
        // The OS reloads CR3 with a flush / issues TLBI ASIDE1 before using a stale ASID.
        tlb.flushAsid(asid);
        cached.get(asid)?.clear();
        stale.delete(asid);
      }
      continue;
    }
    if (command.kind === "edit") {
      const tables = arch.tables[command.level];
      const table = tables[command.table % tables.length];
      const address = table + command.index * 8;
      const large = command.large && arch.largeLevels.includes(command.level);
      const targets =
        command.level === 3
          ? arch.pageTargets
          : large
            ? arch.largeTargets(command.level)
            : arch.tables[command.level + 1];
      const [low, high] = arch.entry(
        command.level,
        command.bits,
        targets[command.pick % targets.length],
        large,
      );
      memory.write64(address, low, high);
      // The architecturally required invalidation of every cached translation that used it.
      for (const [owner, pages] of cached) {
        const affected = [...pages.entries()].filter(([, page]) => page.path.includes(address));
        if (affected.length === 0) continue;
        const anyGlobal = affected.some(([, page]) => page.global);
        if (owner !== asid && !anyGlobal && command.flush !== 0) {
          stale.add(owner);
          continue;
        }
        if (command.flush === 3) {
          tlb.flushAll();
          for (const other of cached.values()) other.clear();
          continue;
        }
        if (!anyGlobal && command.flush === 2 && owner === asid) {
          tlb.flushAsid(asid);
          pages.clear();
          continue;
        }
        // One INVLPG per page: for a large page it drops every 4 KiB slice.
        const done = new Set<string>();
        for (const [name, page] of affected) {
          if (!done.has(page.leaf)) tlb.flushPage(page.va[0], page.va[1]);
          done.add(page.leaf);
          pages.delete(name);
        }
        // Slices of the same large page cached by other identifiers went too.
        for (const other of cached.values()) {
          for (const [name, page] of other) if (done.has(page.leaf)) other.delete(name);
        }
      }
      continue;
    }
    const va = arch.probes[command.probe];
    const bit = arch.permissionBit(command.flags);
    const index = tlb.lookup(va[0], va[1], bit);
    let physical: number;
    if (index >= 0) {
      physical = tlb.physicalPage[index] + (va[0] & 0xfff);
    } else {
      physical = cpuWalker.walk(va[0], va[1], command.flags);
      if (physical >= 0) {
        tlb.insert(
          va[0],
          va[1],
          cpuWalker.physicalPage,
          cpuWalker.permissions,
          cpuWalker.pageShift,
          -1,
          0,
        );
        const path: number[] = [];
        for (let i = 0; i < cpuWalker.walkedEntryCount; i++)
          path.push(cpuWalker.walkedEntryAddress(i));
        let pages = cached.get(asid);
        if (!pages) cached.set(asid, (pages = new Map()));
        const global = (cpuWalker.permissions & TlbPermission.Global) !== 0;
        // The page: its leaf entry (page tables may be shared by several VAs) and its base.
        const leaf = `${path[path.length - 1]}:${va[1]}:${Math.floor(va[0] / 2 ** cpuWalker.pageShift)}`;
        pages.set(key(va), { path, global, leaf, va });
        if (global) {
          // A global entry answers for every identifier.
          for (const [owner, other] of cached)
            if (owner !== asid) other.set(key(va), { path, global, leaf, va });
        }
      }
    }
    const fresh = freshWalker.walk(va[0], va[1], command.flags);
    if (fresh !== physical) {
      throw new Error(
        `${arch.name}: ${index >= 0 ? "TLB hit" : "walk"} gave ${physical} for ${va[1].toString(16)}:${va[0].toString(16)} flags ${command.flags}, a fresh walk ${fresh} (fault ${freshWalker.fault()})`,
      );
    }
  }
}

describe("TLB-cached translation equals a fresh walk after the required invalidations", () => {
  for (const arch of [x86, arm64]) {
    it(arch.name, () => {
      fc.assert(
        fc.property(commands(arch), (script) => {
          run(arch, script);
        }),
        { numRuns: 300 },
      );
    });
  }

  it("catches a missing invalidation (the test can fail)", () => {
    // Same machinery, but the edit is not followed by any flush: a stale hit must be seen.
    const memory = createGuestMemory({ ramSize: 8 << 20 });
    const tlb = new SoftTlb(16);
    const walker = x86.makeWalker(memory);
    memory.write64(0x1000, 0x2000 | 3, 0);
    memory.write64(0x2000, 0x4000 | 3, 0);
    memory.write64(0x4000, 0x6000 | 3, 0);
    memory.write64(0x6000, 0x100000 | 3, 0);
    const bit = x86.permissionBit(0);
    expect(walker.walk(0x123, 0, 0)).toBe(0x100123);
    tlb.insert(0x123, 0, walker.physicalPage, walker.permissions, walker.pageShift, -1, 0);
    memory.write64(0x6000, 0x101000 | 3, 0);
    expect(tlb.translate(0x123, 0, bit)).toBe(0x100123);
    expect(walker.walk(0x123, 0, 0)).toBe(0x101123);
    tlb.flushPage(0x123, 0);
    expect(tlb.translate(0x123, 0, bit)).toBe(-1);
  });
});
