import { describe, expect, it } from "vitest";
import { runFuzz } from "./fuzz";

describe("hypercall fuzzing beside a checksummed domain", () => {
  it("never throws, never changes the other domain, at worst crashes the fuzzing domain", () => {
    const calls = Number(process.env.KUMO_FUZZ_CALLS ?? 30_000);
    const seed = Number(process.env.KUMO_FUZZ_SEED ?? 0x4b756d6f);
    const result = runFuzz(seed, calls);
    console.log(
      `fuzz: ${result.calls} hypercalls (seed 0x${seed.toString(16)}), ${result.restarts} fuzzer restarts, ${result.escapes.length} escapes`,
    );
    expect(result.escapes).toEqual([]);
    expect(result.calls).toBeGreaterThanOrEqual(calls);
  }, 600_000);
});
