import { createGuestMemory } from "@kumo/mmu";
import { expect, it } from "vitest";
import { Arm64Cpu } from "../src/cpu";

/**
 * Random instruction words, at EL1 and EL0, MMU off and RAM full of noise:
 * whatever the guest does, `run` returns an exit and never throws (a guest's
 * mistake becomes an exception or an exit, never a host error).
 */
it("run() never throws on random instruction streams", () => {
  let seed = 0x9e3779b9;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const base = 0x40000000;
  let retired = 0;
  for (let round = 0; round < 20; round++) {
    const memory = createGuestMemory({ ramSize: 1 << 16, ramBase: base });
    for (let offset = 0; offset < 1 << 16; offset += 4) memory.write32(base + offset, next());
    memory.addMmio(0x09000000, 0x1000, { read: () => 0, write: () => {} });
    const cpu = new Arm64Cpu({ memory, hooks: { readCounter: () => retired } });
    cpu.pc = base + (next() & 0xfffc);
    cpu.writeSystemRegister("VBAR_EL1", base + (next() & 0xf800));
    for (let i = 0; i < 31; i++) cpu.setX(i, next() % 4 === 0 ? base + (next() & 0xffff) : next());
    cpu.sp = base + 0x8000;
    if (round % 2 === 1) {
      cpu.restoreState({ ...cpu.saveState(), pstate: 0 });
    }
    cpu.interrupts = { hasPending: () => next() % 64 === 0, acknowledge: () => 27 };
    for (let slice = 0; slice < 20; slice++) {
      expect(() => cpu.run(500)).not.toThrow();
      if (cpu.exit.reason === 2 || cpu.exit.reason === 6) cpu.completeHypercall(-38, -1);
    }
    retired += cpu.instructionsRetired;
  }
  expect(retired).toBeGreaterThan(0);
});

/**
 * The FP/SIMD space with FP enabled (CPACR_EL1.FPEN = 0b11): random words
 * of the data-processing (op0 x111) and load/store (V = 1) groups, random
 * V registers and FPCR, at EL1 and EL0, and timers armed at random: `run`
 * never throws, and every word either executes or takes an exception.
 */
it("run() never throws on random FP/SIMD instruction streams", () => {
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const base = 0x40000000;
  let retired = 0;
  for (let round = 0; round < 20; round++) {
    const memory = createGuestMemory({ ramSize: 1 << 16, ramBase: base });
    for (let offset = 0; offset < 1 << 16; offset += 4) {
      const word = next();
      // Half data processing (bits 27:25 = 111), half loads/stores with V = 1 (bits 27, 26 set, 25 clear).
      const simd =
        next() & 1 ? (word | 0x0e000000) >>> 0 : ((word | 0x0c000000) & ~0x02000000) >>> 0;
      memory.write32(base + offset, next() % 8 === 0 ? word : simd);
    }
    let clock = retired;
    const cpu = new Arm64Cpu({ memory, hooks: { readCounter: () => clock++ } });
    cpu.pc = base + (next() & 0xfffc);
    cpu.writeSystemRegister("VBAR_EL1", base + (next() & 0xf800));
    cpu.writeSystemRegister("CPACR_EL1", 3 << 20);
    cpu.writeSystemRegister("FPCR", next() & 0x07c00000);
    cpu.writeSystemRegister("CNTV_CVAL_EL0", next() & 0xfff);
    cpu.writeSystemRegister("CNTV_CTL_EL0", next() & 3);
    for (let i = 0; i < 128; i++) cpu.v32[i] = next();
    for (let i = 0; i < 31; i++) cpu.setX(i, next() % 2 === 0 ? base + (next() & 0xffff) : next());
    cpu.sp = base + 0x8000;
    if (round % 2 === 1) cpu.restoreState({ ...cpu.saveState(), pstate: 0 });
    cpu.onTimer = () => {};
    for (let slice = 0; slice < 20; slice++) {
      expect(() => cpu.run(500)).not.toThrow();
      if (cpu.exit.reason === 2 || cpu.exit.reason === 6) cpu.completeHypercall(-38, -1);
    }
    retired += cpu.instructionsRetired;
  }
  expect(retired).toBeGreaterThan(0);
});
