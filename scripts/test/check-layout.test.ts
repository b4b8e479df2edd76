import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript module without declarations
import { checkLayout } from "../check-layout.mjs";

const trees: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "kumo-layout-"));
  trees.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function manifest(name: string, dependencies: Record<string, string> = {}): string {
  return JSON.stringify({ name, dependencies });
}

afterEach(() => {
  for (const root of trees.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe("layout check", () => {
  it("accepts the repository as it is", () => {
    expect(checkLayout(resolve(import.meta.dirname, "../.."))).toEqual([]);
  });

  it("accepts a downward import that is declared", () => {
    const root = tree({
      "packages/abi/package.json": manifest("@kumo/abi"),
      "packages/abi/src/index.ts": "export const x = 1;\n",
      "packages/mmu/package.json": manifest("@kumo/mmu", { "@kumo/abi": "workspace:*" }),
      "packages/mmu/src/index.ts": 'import { x } from "@kumo/abi";\nexport const y = x;\n',
    });
    expect(checkLayout(root)).toEqual([]);
  });

  it("rejects a planted upward import", () => {
    const root = tree({
      "packages/abi/package.json": manifest("@kumo/abi", { "@kumo/mmu": "workspace:*" }),
      "packages/abi/src/index.ts": 'import { y } from "@kumo/mmu";\nexport const x = y;\n',
      "packages/mmu/package.json": manifest("@kumo/mmu"),
      "packages/mmu/src/index.ts": "export const y = 1;\n",
    });
    const problems = checkLayout(root);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/not allowed by the package map/);
  });

  it("rejects the hypervisor core importing a CPU package", () => {
    const root = tree({
      "packages/hypervisor-core/package.json": manifest("@kumo/hypervisor-core", {
        "@kumo/cpu-x86": "workspace:*",
      }),
      "packages/hypervisor-core/src/index.ts": 'export * from "@kumo/cpu-x86";\n',
      "packages/cpu-x86/package.json": manifest("@kumo/cpu-x86"),
      "packages/cpu-x86/src/index.ts": "export const cpu = 1;\n",
    });
    expect(checkLayout(root).join("\n")).toMatch(/may import event-channel, grant-table, mmu, abi/);
  });

  it("rejects an undeclared dependency and an unused declared one", () => {
    const root = tree({
      "packages/abi/package.json": manifest("@kumo/abi"),
      "packages/abi/src/index.ts": "export const x = 1;\n",
      "packages/mmu/package.json": manifest("@kumo/mmu"),
      "packages/mmu/src/index.ts": 'import { x } from "@kumo/abi";\nexport const y = x;\n',
      "packages/cpu-x86/package.json": manifest("@kumo/cpu-x86", { "@kumo/abi": "workspace:*" }),
      "packages/cpu-x86/src/index.ts": "export const z = 1;\n",
    });
    const problems = checkLayout(root).join("\n");
    expect(problems).toMatch(/@kumo\/abi is not declared in packages\/mmu/);
    expect(problems).toMatch(
      /packages\/cpu-x86\/package.json declares @kumo\/abi but src\/ never imports it/,
    );
  });

  it("rejects reaching into another package's src by path or subpath", () => {
    const root = tree({
      "packages/abi/package.json": manifest("@kumo/abi"),
      "packages/abi/src/index.ts": "export const x = 1;\n",
      "packages/abi/src/internal.ts": "export const secret = 1;\n",
      "packages/mmu/package.json": manifest("@kumo/mmu", { "@kumo/abi": "workspace:*" }),
      "packages/mmu/src/index.ts":
        'import { secret } from "../../abi/src/internal";\nimport { x } from "@kumo/abi/src/internal";\nexport const y = secret + x;\n',
    });
    const problems = checkLayout(root).join("\n");
    expect(problems).toMatch(/reaches into another package by path/);
    expect(problems).toMatch(/reaches into @kumo\/abi internals/);
  });
});
