import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as mmu from "@kumo/mmu";
import { describe, expect, it, vi } from "vitest";
import * as deviceModels from "../src/index";

const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

/**
 * Runs the README's example (its index, or the first one that contains
 * `marker`) with its imports bound to the real modules, and returns what it
 * printed with console.log: the examples are plain JavaScript apart from
 * their imports.
 */
function run(marker: string | number): unknown[][] {
  const code =
    typeof marker === "number" ? examples[marker] : examples.find((text) => text.includes(marker));
  expect(code, `README example ${marker}`).toBeDefined();
  const body = (code ?? "").replace(/^import .*$/gm, "");
  const log = vi.fn();
  const scope = { ...mmu, ...deviceModels, console: { log } };
  new Function(...Object.keys(scope), body)(...Object.values(scope));
  return log.mock.calls;
}

describe("README", () => {
  it("the example runs and prints what its comments say", () => {
    expect(run(0)).toEqual([["wake the CPU"], [true, "ec"], [true]]);
  });

  it("the ACPI sleep example runs and prints what its comments say", () => {
    expect(run(1)).toEqual([["enter SLP_TYP", 5], [1]]);
  });

  it("the PC port bus example runs and prints what its comments say", () => {
    expect(run("new PortBus()")).toEqual([[true, "28"], ["c0"], [255]]);
  });

  it("the IDE example runs and prints what its comments say", () => {
    expect(run("new IdeController(")).toEqual([
      [
        "58",
        [
          [14, true],
          [14, false],
        ],
      ],
      ["aa55", "50"],
    ]);
  });

  it("the fw_cfg example runs and prints what its comments say", () => {
    expect(run("new FwCfg(")).toEqual([["QEMU"], [1, 32], [0, "ffffffff"]]);
  });

  it("the CD-ROM example runs and prints what its comments say", () => {
    expect(run("new IdeCdrom(")).toEqual([
      [2048, "CD001"],
      ["50", 3],
    ]);
  });

  it("the VGA example runs and prints what its comments say", () => {
    expect(run("new Vga(")).toEqual([[80, 25], ["Hi"], [72, 7]]);
  });

  it("the ACPI PM example runs and prints what its comments say", () => {
    expect(run("new AcpiPm(")).toEqual([
      [true],
      ["SCI", true],
      ["SCI", false],
      ["enter SLP_TYP", 0],
    ]);
  });

  it("the arm virt example (GICv2 + PL011) runs and prints what its comments say", () => {
    expect(run("new GicV2")).toEqual([
      ["IRQ line", 0, true],
      ["IRQ line", 0, false],
      [32, "k"],
    ]);
  });
});
