/**
 * Differential test of the x86 walker against a real implementation of the
 * architecture: QEMU's x86 system emulator (TCG, `-cpu max`). A bare-metal
 * probe (oracle/x86-paging.asm) runs thousands of random 32-bit and PAE
 * paging scenarios (random entries, large pages, reserved bits, U/S, R/W,
 * NX, CR0.WP, SMEP, SMAP with and without EFLAGS.AC, ring 0 and ring 3,
 * reads, writes and fetches) and reports what the CPU did; each scenario is
 * replayed through `X86PageWalker` and must give the same physical page, the
 * same #PF error code and the same accessed/dirty flags. A second probe
 * (oracle/x86-64-paging.asm, qemu-system-x86_64) does the same for 4-level
 * paging in long mode, with 1 GiB and 2 MiB pages, both halves of the
 * canonical address space and reserved bits up to bit 51.
 *
 * Where QEMU departs from the Intel SDM the comparison says so ("known QEMU
 * deviation") and follows the SDM; every such case is counted.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createGuestMemory,
  PageFaultErrorCode,
  X86Access,
  X86Control,
  X86PageWalker,
  X86WalkFlags,
} from "@kumo/mmu";
import { afterAll, describe, expect, it } from "vitest";

const SCENARIOS = 3000;
const ARENA = 0x400000;
const DATA_FRAMES = 0x600000;
const RAM_END = 0x2000000;

interface Scenario {
  mode: 0 | 1;
  cr0Extra: number;
  cr4: number;
  efer: number;
  cr3: number;
  va: number;
  access: number;
  user: boolean;
  ac: boolean;
  writes: [number, number, number][];
}

/** xorshift32: a reproducible stream of random numbers. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  return {
    below: (n: number) => next() % n,
    chance: (p: number) => next() / 2 ** 32 < p,
  };
}

function generate(count: number, seed: number): Scenario[] {
  const r = random(seed);
  const scenarios: Scenario[] = [];
  for (let i = 0; i < count; i++) {
    const mode = r.below(2) as 0 | 1;
    const access = r.below(3);
    const user = r.chance(0.5);
    const scenario: Scenario = {
      mode,
      cr0Extra: r.chance(0.5) ? X86Control.Cr0Wp : 0,
      cr4:
        (mode === 1 ? X86Control.Cr4Pae : r.chance(0.6) ? X86Control.Cr4Pse : 0) |
        (r.chance(0.3) ? X86Control.Cr4Pge : 0) |
        (r.chance(0.4) ? X86Control.Cr4Smep : 0) |
        (r.chance(0.4) ? X86Control.Cr4Smap : 0),
      efer: mode === 1 && r.chance(0.7) ? X86Control.EferNxe : 0,
      cr3: 0,
      va: 0,
      access,
      user,
      ac: !user && r.chance(0.5),
      writes: [],
    };
    // Distinct arena pages for the tables of this scenario.
    const pages = [0, 1, 2].map((k) => ARENA + (r.below(80) * 3 + k) * 0x1000);
    const offset = access === X86Access.Read ? 1 : access === X86Access.Write ? 8 : 0;
    const flags = (leaf: boolean) => {
      let bits = r.chance(0.9) ? 1 : 0; // P
      if (r.chance(0.75)) bits |= 2; // R/W
      if (r.chance(0.7)) bits |= 4; // U/S
      if (r.chance(0.2)) bits |= 8; // PWT
      if (r.chance(0.2)) bits |= 0x10; // PCD
      if (r.chance(0.5)) bits |= 0x20; // A
      if (leaf && r.chance(0.5)) bits |= 0x40; // D
      if (leaf && r.chance(0.3)) bits |= 0x100; // G
      return bits;
    };
    const frame = () => DATA_FRAMES + r.below((RAM_END - DATA_FRAMES) / 0x1000) * 0x1000;
    if (mode === 0) {
      const pdIndex = 1 + r.below(1023);
      const ptIndex = r.below(1024);
      scenario.cr3 = pages[0];
      scenario.va = ((pdIndex << 22) | (ptIndex << 12) | offset) >>> 0;
      if (r.chance(0.35)) {
        // A 4 MiB page (a table pointer when CR4.PSE is off), sometimes with reserved bit 21.
        const target = 0x800000 + r.below(6) * 0x400000;
        const reserved = r.chance(0.1) ? 1 << 21 : 0;
        const pat = r.chance(0.2) ? 1 << 12 : 0;
        scenario.writes.push([
          pages[0] + pdIndex * 4,
          target | reserved | pat | flags(true) | 0x80,
          0,
        ]);
      } else {
        scenario.writes.push([pages[0] + pdIndex * 4, pages[1] | flags(false), 0]);
        const pat = r.chance(0.2) ? 0x80 : 0;
        scenario.writes.push([pages[1] + ptIndex * 4, frame() | pat | flags(true), 0]);
      }
    } else {
      const pdptIndex = 1 + r.below(3);
      const pdIndex = r.below(512);
      const ptIndex = r.below(512);
      scenario.cr3 = pages[0] + r.below(4) * 0x20;
      scenario.va = ((pdptIndex << 30) | (pdIndex << 21) | (ptIndex << 12) | offset) >>> 0;
      const nx = () => (r.chance(0.3) ? 0x80000000 : 0);
      // PDPTE: present, PWT/PCD, rarely a reserved bit (2:1, 8:5, 63).
      let pdpte = pages[1] | (r.chance(0.92) ? 1 : 0) | (r.chance(0.2) ? 0x18 : 0);
      let pdpteHigh = 0;
      if (r.chance(0.06)) {
        const bit = [1, 2, 5, 6, 7, 8, 63][r.below(7)];
        if (bit === 63) pdpteHigh = 0x80000000;
        else pdpte |= 1 << bit;
      }
      scenario.writes.push([scenario.cr3 + pdptIndex * 8, pdpte >>> 0, pdpteHigh]);
      if (r.chance(0.35)) {
        const target = 0x800000 + r.below(12) * 0x200000;
        const reserved = r.chance(0.08) ? 1 << (13 + r.below(8)) : 0;
        const pat = r.chance(0.2) ? 1 << 12 : 0;
        scenario.writes.push([
          pages[1] + pdIndex * 8,
          (target | reserved | pat | flags(true) | 0x80) >>> 0,
          nx(),
        ]);
      } else {
        scenario.writes.push([pages[1] + pdIndex * 8, pages[2] | flags(false), nx()]);
        const pat = r.chance(0.2) ? 0x80 : 0;
        scenario.writes.push([pages[2] + ptIndex * 8, frame() | pat | flags(true), nx()]);
      }
    }
    scenarios.push(scenario);
  }
  return scenarios;
}

function encode(scenarios: Scenario[]): Uint8Array {
  const words: number[] = [];
  for (const s of scenarios) {
    words.push(s.mode, s.cr0Extra, s.cr4, s.efer, s.cr3, s.va, s.access);
    words.push((s.user ? 1 : 0) | (s.ac ? 2 : 0), s.writes.length);
    for (const [address, low, high] of s.writes) words.push(address, low, high);
  }
  return new Uint8Array(Uint32Array.from(words, (w) => w >>> 0).buffer);
}

interface Outcome {
  status: number;
  value: number;
  cr2: number;
  writtenFrame: number;
  entries: number[];
}

function decode(bytes: Buffer): Outcome[] {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
  const outcomes: Outcome[] = [];
  let at = 0;
  while (at + 6 <= words.length) {
    const count = words[at + 5];
    outcomes.push({
      status: words[at + 1],
      value: words[at + 2],
      cr2: words[at + 3],
      writtenFrame: words[at + 4],
      entries: [...words.subarray(at + 6, at + 6 + count)],
    });
    at += 6 + count;
  }
  return outcomes;
}

interface LongScenario {
  cr0Extra: number;
  cr4: number;
  efer: number;
  cr3: number;
  vaLow: number;
  vaHigh: number;
  access: number;
  user: boolean;
  ac: boolean;
  writes: [number, number, number][];
}

/** 4-level scenarios for x86-64-paging.asm: PML4 slot 0 belongs to the probe. */
function generateLong(count: number, seed: number): LongScenario[] {
  const r = random(seed);
  const scenarios: LongScenario[] = [];
  for (let i = 0; i < count; i++) {
    const access = r.below(3);
    const user = r.chance(0.5);
    const pages = [0, 1, 2, 3].map((k) => ARENA + (r.below(60) * 4 + k) * 0x1000);
    const indices = [1 + r.below(511), r.below(512), r.below(512), r.below(512)];
    const writes: [number, number, number][] = [];
    const flags = (leaf: boolean) => {
      let bits = r.chance(0.92) ? 1 : 0;
      if (r.chance(0.75)) bits |= 2;
      if (r.chance(0.75)) bits |= 4;
      if (r.chance(0.2)) bits |= 0x18;
      if (r.chance(0.5)) bits |= 0x20;
      if (leaf && r.chance(0.5)) bits |= 0x40;
      if (leaf && r.chance(0.3)) bits |= 0x100;
      return bits;
    };
    // High dword: NX now and then, rarely an address bit at or above MAXPHYADDR (40).
    const high = () =>
      (r.chance(0.2) ? 0x80000000 : 0) | (r.chance(0.03) ? 1 << (8 + r.below(12)) : 0);
    // PML4E (PS is reserved here).
    writes.push([
      pages[0] + indices[0] * 8,
      pages[1] | flags(false) | (r.chance(0.03) ? 0x80 : 0),
      high(),
    ]);
    const leafLevel = r.chance(0.2) ? 3 : r.chance(0.35) ? 2 : 1;
    if (leafLevel === 3) {
      // A 1 GiB page at 0: the VA bits below select a marked frame.
      indices[2] = 3 + r.below(13);
      const reserved = r.chance(0.1) ? 1 << (13 + r.below(17)) : 0;
      writes.push([pages[1] + indices[1] * 8, (reserved | flags(true) | 0x80) >>> 0, high()]);
    } else {
      writes.push([pages[1] + indices[1] * 8, pages[2] | flags(false), high()]);
      if (leafLevel === 2) {
        const target = 0x800000 + r.below(12) * 0x200000;
        const reserved = r.chance(0.1) ? 1 << (13 + r.below(8)) : 0;
        writes.push([
          pages[2] + indices[2] * 8,
          (target | reserved | flags(true) | 0x80) >>> 0,
          high(),
        ]);
      } else {
        writes.push([pages[2] + indices[2] * 8, pages[3] | flags(false), high()]);
        const frame = DATA_FRAMES + r.below((RAM_END - DATA_FRAMES) / 0x1000) * 0x1000;
        writes.push([
          pages[3] + indices[3] * 8,
          frame | flags(true) | (r.chance(0.2) ? 0x80 : 0),
          high(),
        ]);
      }
    }
    const offset = access === X86Access.Read ? 1 : access === X86Access.Write ? 8 : 0;
    const vaLow = ((indices[1] << 30) | (indices[2] << 21) | (indices[3] << 12) | offset) >>> 0;
    let vaHigh = (indices[0] << 7) | (indices[1] >>> 2);
    if (indices[0] >= 256) vaHigh = (vaHigh | 0xffff0000) >>> 0;
    scenarios.push({
      cr0Extra: r.chance(0.5) ? X86Control.Cr0Wp : 0,
      cr4:
        X86Control.Cr4Pae |
        (r.chance(0.3) ? X86Control.Cr4Pge : 0) |
        (r.chance(0.4) ? X86Control.Cr4Smep : 0) |
        (r.chance(0.4) ? X86Control.Cr4Smap : 0),
      efer: r.chance(0.7) ? X86Control.EferNxe : 0,
      cr3: pages[0],
      vaLow,
      vaHigh,
      access,
      user,
      ac: !user && r.chance(0.5),
      writes,
    });
  }
  return scenarios;
}

function encodeLong(scenarios: LongScenario[]): Uint8Array {
  const words: number[] = [];
  for (const s of scenarios) {
    words.push(2, s.cr0Extra, s.cr4, s.efer, s.cr3, s.vaLow, s.vaHigh, s.access);
    words.push((s.user ? 1 : 0) | (s.ac ? 2 : 0), s.writes.length);
    for (const [address, low, high] of s.writes) words.push(address, low, high);
  }
  return new Uint8Array(Uint32Array.from(words, (w) => w >>> 0).buffer);
}

function decodeLong(bytes: Buffer): (Outcome & { cr2High: number })[] {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
  const outcomes: (Outcome & { cr2High: number })[] = [];
  let at = 0;
  while (at + 7 <= words.length) {
    const count = words[at + 6];
    outcomes.push({
      status: words[at + 1],
      value: words[at + 2],
      cr2: words[at + 3],
      cr2High: words[at + 4],
      writtenFrame: words[at + 5],
      entries: [...words.subarray(at + 7, at + 7 + count)],
    });
    at += 7 + count;
  }
  return outcomes;
}

const hasTool = (command: string) => spawnSync(command, ["--version"]).status === 0;
const work = mkdtempSync(join(tmpdir(), "kumo-mmu-oracle-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("X86PageWalker against QEMU (qemu-system-i386 / qemu-system-x86_64 -cpu max)", () => {
  it("needs nasm and qemu-system-x86 (Debian packages)", () => {
    expect(hasTool("nasm"), "nasm is not installed").toBe(true);
    expect(hasTool("qemu-system-i386"), "qemu-system-x86 is not installed").toBe(true);
  });

  it(`agrees on ${SCENARIOS} random 32-bit and PAE scenarios`, () => {
    const kernel = join(work, "x86-paging.bin");
    const assembled = spawnSync(
      "nasm",
      ["-f", "bin", "-o", kernel, join(import.meta.dirname, "oracle", "x86-paging.asm")],
      { encoding: "utf8" },
    );
    expect(assembled.stderr).toBe("");
    const scenarios = generate(SCENARIOS, 0x6b756d6f);
    writeFileSync(join(work, "scenarios.bin"), encode(scenarios));
    const output = join(work, "debugcon.bin");
    const qemu = spawnSync(
      "qemu-system-i386",
      [
        ...["-cpu", "max", "-m", "32", "-kernel", kernel, "-initrd", join(work, "scenarios.bin")],
        ...["-display", "none", "-serial", "none", "-monitor", "none", "-no-reboot"],
        ...["-debugcon", `file:${output}`, "-device", "isa-debug-exit,iobase=0xf4,iosize=4"],
      ],
      { encoding: "utf8", timeout: 240_000 },
    );
    // isa-debug-exit turns the probe's final `out 0xf4, 0` into exit status 1.
    expect(qemu.status, qemu.stderr).toBe(1);
    const outcomes = decode(readFileSync(output));
    expect(outcomes.length).toBe(scenarios.length);

    const memory = createGuestMemory({ ramSize: RAM_END });
    const walker = new X86PageWalker(memory);
    const mismatches: string[] = [];
    const tally = { done: 0, pageFault: 0, reservedBit: 0, reservedPdpte: 0, otherException: 0 };
    scenarios.forEach((s, i) => {
      const outcome = outcomes[i];
      for (const [address, low, high] of s.writes) {
        if (s.mode === 0) memory.write32(address, low);
        else memory.write64(address, low, high);
      }
      const flags =
        s.access | (s.user ? X86WalkFlags.User : 0) | (s.ac ? X86WalkFlags.AlignmentCheck : 0);
      const describe = () =>
        `#${i} ${JSON.stringify({ ...s, va: s.va.toString(16), writes: s.writes.map((w) => w.map((x) => x.toString(16))) })}`;
      // Accessed and dirty flags as the CPU left them, after success or fault.
      const compareEntries = () =>
        s.writes.forEach(([address, written], k) => {
          let theirs = outcome.entries[k];
          // Known QEMU deviation 3: QEMU sets bit 5 of PAE PDPTEs as if it
          // were an accessed flag; in a PAE PDPTE it is reserved (SDM vol. 3A
          // table 4-8) and the CPU never writes PDPTEs.
          if (s.mode === 1 && k === 0) theirs = (theirs & ~0x20) | (written & 0x20);
          const ours = memory.read32(address);
          if (ours !== theirs) {
            mismatches.push(
              `${describe()}: entry ${address.toString(16)} is ${outcome.entries[k].toString(16)} after QEMU, ${ours.toString(16)} after Kumo`,
            );
          }
        });
      const pdptesValid = s.mode === 0 || walker.paePdptesValid(s.cr3);
      if (outcome.status === 2) {
        tally.otherException++;
        mismatches.push(`${describe()}: QEMU raised vector ${outcome.value}`);
      } else if (!pdptesValid) {
        // Known QEMU deviation 1: a present PAE PDPTE with a reserved bit set
        // makes MOV to CR3 raise #GP (SDM vol. 3A 4.4.1, the PDPTE registers);
        // QEMU does not model the PDPTE registers and ignores those bits.
        // Kumo reports it through paePdptesValid (checked just above).
        tally.reservedPdpte++;
      } else {
        const physical = walker.walk(
          (0x80000001 | s.cr0Extra) >>> 0,
          s.cr3,
          0,
          s.cr4,
          s.efer,
          s.va,
          0,
          flags,
        );
        if (outcome.status === 1) {
          tally.pageFault++;
          // Known QEMU deviation 2: QEMU 7.2 reports reserved-bit faults with
          // P=0. SDM vol. 3A 4.7: "bit 3 of the error code can be set only if
          // bit 0 is also set" (reserved bits are checked only in present entries).
          let expected = outcome.value;
          if (expected & PageFaultErrorCode.ReservedBit) {
            tally.reservedBit++;
            expected |= PageFaultErrorCode.Present;
          }
          compareEntries();
          if (physical !== -1 || walker.errorCode !== expected || outcome.cr2 !== s.va) {
            mismatches.push(
              `${describe()}: QEMU #PF error ${outcome.value.toString(16)}, Kumo ${physical === -1 ? `#PF error ${walker.errorCode.toString(16)}` : `translated to ${physical.toString(16)}`}`,
            );
          }
        } else {
          tally.done++;
          const page = s.access === X86Access.Write ? outcome.writtenFrame : outcome.value;
          if (physical < 0 || walker.physicalPage !== page) {
            mismatches.push(
              `${describe()}: QEMU reached page ${page.toString(16)}, Kumo ${physical === -1 ? `#PF error ${walker.errorCode.toString(16)}` : walker.physicalPage.toString(16)}`,
            );
          }
          compareEntries();
        }
      }
      for (const [address] of s.writes) memory.write64(address, 0, 0);
    });
    // ORACLE_DUMP=<file> keeps every mismatch for study, not just the first ten.
    if (process.env.ORACLE_DUMP) writeFileSync(process.env.ORACLE_DUMP, mismatches.join("\n"));
    expect(mismatches.slice(0, 10)).toEqual([]);
    // Every outcome must be well represented for the comparison to mean something.
    expect(tally.done).toBeGreaterThan(SCENARIOS / 10);
    expect(tally.pageFault).toBeGreaterThan(SCENARIOS / 10);
    expect(tally.reservedBit).toBeGreaterThan(SCENARIOS / 50);
    console.log(`x86 oracle: ${JSON.stringify(tally)}`);
  }, 300_000);
  it(`agrees on ${SCENARIOS} random 4-level (long mode) scenarios`, () => {
    const kernel = join(work, "x86-64-paging.bin");
    const assembled = spawnSync(
      "nasm",
      ["-f", "bin", "-o", kernel, join(import.meta.dirname, "oracle", "x86-64-paging.asm")],
      { encoding: "utf8" },
    );
    expect(assembled.stderr).toBe("");
    const scenarios = generateLong(SCENARIOS, 0x34766c6b);
    writeFileSync(join(work, "long.bin"), encodeLong(scenarios));
    const output = join(work, "long-debugcon.bin");
    const qemu = spawnSync(
      "qemu-system-x86_64",
      [
        ...["-cpu", "max", "-m", "32", "-kernel", kernel, "-initrd", join(work, "long.bin")],
        ...["-display", "none", "-serial", "none", "-monitor", "none", "-no-reboot"],
        ...["-debugcon", `file:${output}`, "-device", "isa-debug-exit,iobase=0xf4,iosize=4"],
      ],
      { encoding: "utf8", timeout: 240_000 },
    );
    expect(qemu.status, qemu.stderr).toBe(1);
    const outcomes = decodeLong(readFileSync(output));
    expect(outcomes.length).toBe(scenarios.length);

    const memory = createGuestMemory({ ramSize: RAM_END });
    const walker = new X86PageWalker(memory);
    const mismatches: string[] = [];
    const tally = {
      done: 0,
      pageFault: 0,
      reservedBit: 0,
      otherException: 0,
      accessedLargeLeaf: 0,
    };
    scenarios.forEach((s, i) => {
      const outcome = outcomes[i];
      for (const [address, low, high] of s.writes) memory.write64(address, low, high);
      const flags =
        s.access | (s.user ? X86WalkFlags.User : 0) | (s.ac ? X86WalkFlags.AlignmentCheck : 0);
      const describe = () =>
        `#${i} ${JSON.stringify({ ...s, va: `${s.vaHigh.toString(16)}:${s.vaLow.toString(16)}`, writes: s.writes.map((w) => w.map((x) => x.toString(16))) })}`;
      const physical = walker.walk(
        (0x80000001 | s.cr0Extra) >>> 0,
        s.cr3,
        0,
        s.cr4,
        s.efer | X86Control.EferLma,
        s.vaLow,
        s.vaHigh,
        flags,
      );
      const ours =
        physical === -1
          ? `#PF error ${walker.errorCode.toString(16)}`
          : `page ${walker.physicalPage.toString(16)}`;
      if (outcome.status === 2) {
        tally.otherException++;
        mismatches.push(`${describe()}: QEMU raised vector ${outcome.value}, Kumo ${ours}`);
      } else if (outcome.status === 1) {
        tally.pageFault++;
        let expected = outcome.value;
        // Known QEMU deviation 2 (see the 32-bit test): RSVD without P.
        if (expected & PageFaultErrorCode.ReservedBit) {
          tally.reservedBit++;
          expected |= PageFaultErrorCode.Present;
        }
        if (
          physical !== -1 ||
          walker.errorCode !== expected ||
          outcome.cr2 !== s.vaLow ||
          outcome.cr2High !== s.vaHigh
        ) {
          mismatches.push(
            `${describe()}: QEMU #PF error ${outcome.value.toString(16)}, Kumo ${ours}`,
          );
        }
      } else {
        tally.done++;
        const page = s.access === X86Access.Write ? outcome.writtenFrame : outcome.value;
        if (physical < 0 || walker.physicalPage !== page) {
          mismatches.push(`${describe()}: QEMU reached page ${page.toString(16)}, Kumo ${ours}`);
        }
      }
      s.writes.forEach(([address, written], k) => {
        const ours = memory.read32(address);
        let theirs = outcome.entries[k];
        // Known QEMU deviation 4: for a 1 GiB page QEMU sets the accessed flag
        // of the PDPTE before it checks the entry's reserved bits and the
        // access rights, so a faulting access leaves it set; for 2 MiB and
        // 4 KiB pages it sets the leaf's flag only once the access is allowed.
        // Kumo treats every leaf the latter way.
        if (outcome.status === 1 && k === 1 && (written & 0x80) !== 0) {
          theirs = (theirs & ~0x20) | (ours & 0x20);
          if (theirs !== outcome.entries[k]) tally.accessedLargeLeaf++;
        }
        if (ours !== theirs) {
          mismatches.push(
            `${describe()}: entry ${address.toString(16)} is ${outcome.entries[k].toString(16)} after QEMU, ${ours.toString(16)} after Kumo`,
          );
        }
      });
      for (const [address] of s.writes) memory.write64(address, 0, 0);
    });
    if (process.env.ORACLE_DUMP)
      writeFileSync(`${process.env.ORACLE_DUMP}.long`, mismatches.join("\n"));
    console.log(`x86 4-level oracle: ${JSON.stringify(tally)}`);
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(tally.done).toBeGreaterThan(SCENARIOS / 10);
    expect(tally.pageFault).toBeGreaterThan(SCENARIOS / 10);
    expect(tally.reservedBit).toBeGreaterThan(SCENARIOS / 50);
  }, 300_000);
});
