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

/** Flat binary of `source` assembled and linked at `address` (`.text` only; relocations such as ADRP's are resolved). */
export function assemble(source: string, address = 0x40010000): Uint8Array {
  const text = `.text\n.globl _start\n_start:\n${source}\n// linked at 0x${address.toString(16)}\n`;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 24);
  mkdirSync(cacheDirectory, { recursive: true });
  const binary = join(cacheDirectory, `${hash}.bin`);
  if (!existsSync(binary)) {
    const sourceFile = join(cacheDirectory, `${hash}.s`);
    const objectFile = join(cacheDirectory, `${hash}.o`);
    writeFileSync(sourceFile, text);
    execFileSync("aarch64-linux-gnu-as", ["-o", objectFile, sourceFile]);
    const linked = join(cacheDirectory, `${hash}.elf`);
    execFileSync("aarch64-linux-gnu-ld", [
      "-static",
      `-Ttext=0x${address.toString(16)}`,
      "-e",
      "_start",
      "-o",
      linked,
      objectFile,
    ]);
    execFileSync("aarch64-linux-gnu-objcopy", [
      "-O",
      "binary",
      "-j",
      ".text",
      linked,
      `${binary}.tmp`,
    ]);
    writeFileSync(binary, readFileSync(`${binary}.tmp`));
  }
  return new Uint8Array(readFileSync(binary));
}
