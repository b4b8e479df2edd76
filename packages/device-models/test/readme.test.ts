import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as mmu from "@kumo/mmu";
import { describe, expect, it, vi } from "vitest";
import * as deviceModels from "../src/index";

describe("README", () => {
  it("the example runs and prints what its comments say", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    // The example is plain JavaScript apart from its imports; bind those to the real modules.
    const body = (block ?? "").replace(/^import .*$/gm, "");
    const log = vi.fn();
    const scope = { ...mmu, ...deviceModels, console: { log } };
    new Function(...Object.keys(scope), body)(...Object.values(scope));
    expect(log.mock.calls).toEqual([["wake the CPU"], [true, "ec"], [true]]);
  });

  it("the ACPI sleep example runs and prints what its comments say", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)][1]?.[1];
    expect(block).toBeDefined();
    const body = (block ?? "").replace(/^import .*$/gm, "");
    const log = vi.fn();
    const scope = { ...deviceModels, console: { log } };
    new Function(...Object.keys(scope), body)(...Object.values(scope));
    expect(log.mock.calls).toEqual([["enter SLP_TYP", 5], [1]]);
  });

  it("the PC port bus example runs and prints what its comments say", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].find((match) =>
      match[1].includes("new PortBus()"),
    )?.[1];
    expect(block).toBeDefined();
    const body = (block ?? "").replace(/^import .*$/gm, "");
    const log = vi.fn();
    const scope = { ...deviceModels, console: { log } };
    new Function(...Object.keys(scope), body)(...Object.values(scope));
    expect(log.mock.calls).toEqual([[true, "28"], ["c0"], [255]]);
  });
});
