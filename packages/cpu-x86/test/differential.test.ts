/**
 * Differential test of the interpreter against the machine it emulates: every
 * i686 integer instruction form (test/oracle/table.ts) in 32- and 16-bit code,
 * with random operands, run in ring 3 on the host processor (or qemu-i386) and
 * on Kumo, comparing the exception that ends the case, EIP, EFLAGS, all
 * registers, segment selectors and the data region (test/oracle/README.md).
 *
 * KUMO_DIFF_CASES sets the cases per form (default 6), KUMO_DIFF_SEED the seed.
 */
import { describe, expect, it } from "vitest";
import { compareSuite, type Report } from "./oracle/compare";
import { type GeneratedCase, generateSuite } from "./oracle/generator";
import { runOnHost } from "./oracle/host-oracle";
import { KumoMachine } from "./oracle/kumo-machine";
import { Mode, type TestResult } from "./oracle/layout";

const SEED = Number(process.env.KUMO_DIFF_SEED ?? 0x4b756d6f);
const PER_FORM = Number(process.env.KUMO_DIFF_CASES ?? 6);

function runKumo(pristine: Uint8Array, cases: readonly GeneratedCase[]): TestResult[] {
  const machine = new KumoMachine();
  return cases.map((c) => machine.run(pristine, c));
}

function summary(label: string, report: Report): string {
  const lines = [
    `differential (${label}): ${report.forms} instruction forms, ${report.cases} cases, ${report.disagreements.size} disagreements`,
  ];
  for (const [form, details] of report.disagreements) {
    lines.push(`  ${form}`, ...details.map((d) => `    ${d}`));
  }
  return lines.join("\n");
}

describe("differential oracle: Kumo against the host CPU", () => {
  const suite = generateSuite(SEED, PER_FORM);
  const host = runOnHost(suite.pristine, suite.cases);
  const kumo = runKumo(suite.pristine, suite.cases);

  const pick = (filter: (c: GeneratedCase) => boolean) => {
    const indices = suite.cases.flatMap((c, i) => (filter(c) ? [i] : []));
    return compareSuite(
      indices.map((i) => suite.cases[i]),
      indices.map((i) => host.results[i]),
      indices.map((i) => kumo[i]),
    );
  };

  const groups: [string, (c: GeneratedCase) => boolean][] = [
    ["32-bit code", (c) => c.mode === Mode.Bits32 && !c.form.startsWith("addressing")],
    ["16-bit code", (c) => c.mode === Mode.Bits16 && !c.form.startsWith("addressing")],
    ["addressing forms", (c) => c.form.startsWith("addressing")],
  ];
  for (const [label, filter] of groups) {
    it(`agrees on every ${label} instruction form (oracle: ${host.kind})`, () => {
      const report = pick(filter);
      console.log(summary(label, report));
      expect([...report.disagreements.keys()]).toEqual([]);
    });
  }
});
