import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import * as deviceModels from "../src/index";

describe("README", () => {
  it("the arm virt example (GICv2 + PL011) runs and prints what its comments say", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
      .map((match) => match[1])
      .find((code) => code.includes("new GicV2"));
    expect(block).toBeDefined();
    const body = (block ?? "").replace(/^import .*$/gm, "");
    const log = vi.fn();
    const scope = { ...deviceModels, console: { log } };
    new Function(...Object.keys(scope), body)(...Object.values(scope));
    expect(log.mock.calls).toEqual([
      ["IRQ line", 0, true],
      ["IRQ line", 0, false],
      [32, "k"],
    ]);
  });
});
