import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createGuestMemory } from "@kumo/mmu";
import { expect, it } from "vitest";
import { createArm64Cpu } from "../src/index";

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
