import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VcpuExitReason } from "@kumo/abi";
import { expect, test } from "vitest";
import { runRealModeProgram } from "../src/index";

/** Assembles src/<name>.asm with nasm (a flat binary) into a temporary file. */
function assemble(name: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "kumo-bare-cpu-"));
  try {
    const output = join(dir, `${name}.bin`);
    execFileSync("nasm", [
      "-f",
      "bin",
      "-o",
      output,
      join(import.meta.dirname, `../src/${name}.asm`),
    ]);
    return new Uint8Array(readFileSync(output));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a real-mode program prints through the 16550 UART and halts", () => {
  const run = runRealModeProgram(assemble("hello"));
  expect(new TextDecoder().decode(run.output)).toBe(
    "Hello from real mode, through a 16550 UART\r\n",
  );
  expect(run.reason).toBe(VcpuExitReason.Halt);
});
