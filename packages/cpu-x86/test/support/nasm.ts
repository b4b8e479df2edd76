import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Assembles `source` with nasm (flat binary) at test time; `bits` 16 or 32, `org` the load address. */
export function assemble(source: string, bits: 16 | 32 = 32, org = 0x1000): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "kumo-nasm-"));
  try {
    const input = join(dir, "code.asm");
    const output = join(dir, "code.bin");
    writeFileSync(input, `bits ${bits}\norg 0x${org.toString(16)}\n${source}\n`);
    execFileSync("nasm", ["-f", "bin", "-o", output, input], { stdio: "pipe" });
    return new Uint8Array(readFileSync(output));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
