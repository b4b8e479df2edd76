import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as mmu from "@kumo/mmu";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";

describe("README", () => {
  it("runs the example and prints what its comments say", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const source = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(source).toBeDefined();
    const expected = source!
      .split("\n")
      .filter((line) => line.includes("console.log("))
      .map((line) => /\/\/ (\S+)/.exec(line)?.[1]);
    const body = source!.replace(/import \{([\s\S]*?)\} from "@kumo\/mmu";/, "const {$1} = mmu;");
    const { code } = transformSync(body, { loader: "ts" });
    const printed: string[] = [];
    new Function("mmu", "console", code)(mmu, {
      log: (value: unknown) => printed.push(String(value)),
    });
    expect(printed.length).toBe(expected.length);
    expected.forEach((value, i) => {
      if (value !== undefined) expect(printed[i]).toBe(value);
    });
  });
});
