import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs Debian's qemu-img (package qemu-utils), the independent reader and writer of every format. */
export function qemuImg(...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync("qemu-img", args, { encoding: "utf8" });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export function qemuIo(...args: string[]): void {
  const result = spawnSync("qemu-io", args, { encoding: "utf8" });
  if (result.error) throw result.error;
  if (result.status !== 0 || /error|failed/i.test(result.stdout + result.stderr)) {
    throw new Error(`qemu-io ${args.join(" ")} failed: ${result.stdout}${result.stderr}`);
  }
}

export function temporaryDirectory(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "kumo-blkback-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A small deterministic PRNG (mulberry32), so failures replay. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pattern(length: number, seed: number): Uint8Array {
  const next = random(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const word = (next() * 4294967296) >>> 0;
    bytes[i] = word;
    bytes[i + 1] = word >>> 8;
    bytes[i + 2] = word >>> 16;
    bytes[i + 3] = word >>> 24;
  }
  return bytes;
}
