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
