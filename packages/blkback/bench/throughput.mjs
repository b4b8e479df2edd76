#!/usr/bin/env node
// Bundles bench/throughput.ts from the workspace sources (esbuild, "source"
// condition) and runs it:  node bench/throughput.mjs [MiB]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const dir = mkdtempSync(join(tmpdir(), "kumo-blkback-bench-"));
const outfile = join(dir, "throughput.mjs");
await build({
  entryPoints: [join(import.meta.dirname, "throughput.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  conditions: ["source"],
  logLevel: "warning",
});
const result = spawnSync(process.execPath, [outfile, ...process.argv.slice(2)], {
  stdio: "inherit",
});
rmSync(dir, { recursive: true, force: true });
process.exit(result.status ?? 1);
