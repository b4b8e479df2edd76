import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createGuestMemory } from "@kumo/mmu";
import { expect, it } from "vitest";
import { ARM64_TIMER_PPI, createArm64Cpu } from "../src/index";

/** Runs the README example (same code) and checks the printed values. */
it("README example", () => {
  const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
  expect(readme).toContain("const code = [0xd28003b0, 0xd2800020, 0xd401d422, 0xd503207f];");
  const memory = createGuestMemory({ ramSize: 1 << 20, ramBase: 0x40000000 });
  const code = [0xd28003b0, 0xd2800020, 0xd401d422, 0xd503207f];
  for (const [i, word] of code.entries()) memory.write32(0x40000000 + 4 * i, word);
  const cpu = createArm64Cpu({ memory, hooks: { readCounter: () => 0 } });
  cpu.pc = 0x40000000;
  expect(cpu.run(1000)).toBe(2);
  expect([cpu.exit.hypercall, cpu.exit.args[0]]).toEqual([29, 1]);
  cpu.completeHypercall(0, 0);
  expect(cpu.run(1000)).toBe(1);
  expect(cpu.instructionsRetired).toBe(4);
});

it("README timer example", () => {
  const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
  expect(readme).toContain(
    "const timerCode = [0xd2800c81, 0xd51be341, 0xd2800021, 0xd51be321, 0xd503207f];",
  );
  const memory = createGuestMemory({ ramSize: 1 << 20, ramBase: 0x40000000 });
  const timerCode = [0xd2800c81, 0xd51be341, 0xd2800021, 0xd51be321, 0xd503207f];
  for (const [i, word] of timerCode.entries()) memory.write32(0x40000000 + 4 * i, word);
  let now = 0;
  const pending = new Set<number>();
  const cpu = createArm64Cpu({ memory, hooks: { readCounter: () => now } });
  cpu.interrupts = { hasPending: () => pending.size > 0, acknowledge: () => -1 };
  cpu.onTimer = (timer, asserted) => {
    if (asserted) pending.add(ARM64_TIMER_PPI[timer]);
    else pending.delete(ARM64_TIMER_PPI[timer]);
  };
  cpu.pc = 0x40000000;
  expect(cpu.run(1000)).toBe(1);
  now = cpu.nextTimerDeadline();
  expect(now).toBe(100);
  cpu.updateTimers();
  expect([...pending]).toEqual([27]);
});
