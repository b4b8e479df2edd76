/**
 * Assembles A64 source with Debian's binutils (`aarch64-linux-gnu-as`,
 * package binutils-aarch64-linux-gnu) so that instruction tests use
 * encodings nobody here wrote. Outputs are cached by content hash.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cacheDirectory = join(tmpdir(), "kumo-cpu-arm-asm");

export function hasAssembler(): boolean {
  try {
    execFileSync("aarch64-linux-gnu-as", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Flat binary of `source` assembled at offset 0 (`.text` only). */
export function assemble(source: string): Uint8Array {
  const text = `.text\n.globl _start\n_start:\n${source}\n`;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 24);
  mkdirSync(cacheDirectory, { recursive: true });
  const binary = join(cacheDirectory, `${hash}.bin`);
  if (!existsSync(binary)) {
    const sourceFile = join(cacheDirectory, `${hash}.s`);
    const objectFile = join(cacheDirectory, `${hash}.o`);
    writeFileSync(sourceFile, text);
    execFileSync("aarch64-linux-gnu-as", ["-o", objectFile, sourceFile]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", "-j", ".text", objectFile, `${binary}.tmp`]);
    writeFileSync(binary, readFileSync(`${binary}.tmp`));
  }
  return new Uint8Array(readFileSync(binary));
}
