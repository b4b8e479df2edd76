import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { buildTestKernel, cacheDir } from "./support/oracles";

const readme = readFileSync(resolve(import.meta.dirname, "../README.md"), "utf8");
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

describe("README examples", () => {
  it("has examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(2);
  });
  examples.forEach((code, index) => {
    it(`example ${index + 1} runs`, async () => {
      buildTestKernel(64);
      const dir = mkdtempSync(join(tmpdir(), "kumo-readme-"));
      copyFileSync(join(cacheDir, "kernel64"), join(dir, "vmlinux"));
      const file = join(dir, `example-${index}.ts`);
      writeFileSync(file, code);
      const cwd = process.cwd();
      const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      let printed = 0;
      process.chdir(dir);
      try {
        await import(/* @vite-ignore */ file);
        printed = write.mock.calls.length + log.mock.calls.length;
      } finally {
        process.chdir(cwd);
        write.mockRestore();
        log.mockRestore();
      }
      expect(printed).toBeGreaterThan(0);
    });
  });
});
