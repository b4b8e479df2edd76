import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const runner = join(import.meta.dirname, "..", "run.mjs");

describe("bench runner", () => {
  it("lists one benchmark per file in src/", () => {
    const result = spawnSync(process.execPath, [runner, "--list"], { encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(result.stdout.split("\n")).toContain("mmu");
  });

  it("runs the mmu benchmark and reports TLB hits and page walks per second", () => {
    const result = spawnSync(process.execPath, [runner, "mmu", "--time=0.02", "--json"], {
      encoding: "utf8",
    });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as {
      results: { benchmark: string; label: string; value: number; unit: string }[];
    };
    const labels = report.results.map((entry) => entry.label);
    expect(labels.some((label) => label.startsWith("TLB-hit translations"))).toBe(true);
    expect(labels.some((label) => label.startsWith("x86 4-level page walks"))).toBe(true);
    expect(labels.some((label) => label.startsWith("arm64 4-level stage-1 walks"))).toBe(true);
    for (const entry of report.results) expect(entry.value).toBeGreaterThan(0);
  });

  it("runs cpu-arm: Kumo and qemu-aarch64 on the same A64 workloads, with matching checksums", () => {
    // Needs clang-14, binutils-aarch64-linux-gnu and qemu-user (scripts/setup.sh); a checksum mismatch fails the run.
    const result = spawnSync(process.execPath, [runner, "cpu-arm", "--time=0.02", "--json"], {
      encoding: "utf8",
    });
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      results: { label: string; value: number; unit: string }[];
    };
    const labels = report.results.map((entry) => entry.label);
    for (const workload of ["(a)", "(b)", "(c)"]) {
      for (const machine of ["Kumo", "qemu-aarch64", "Kumo/QEMU"]) {
        expect(
          labels.some((label) => label.startsWith(workload) && label.endsWith(`: ${machine}`)),
        ).toBe(true);
      }
    }
    for (const entry of report.results) expect(entry.value).toBeGreaterThan(0);
  }, 120_000);

  it("rejects an unknown benchmark name", () => {
    const result = spawnSync(process.execPath, [runner, "nope"], { encoding: "utf8" });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown benchmark");
  });
});
