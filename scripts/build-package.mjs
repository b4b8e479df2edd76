#!/usr/bin/env node
// Builds one workspace package: ESM JavaScript in dist/ with esbuild, and
// declarations with tsc. Run from the package's folder (its `build` script).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { build } from "esbuild";

const dir = process.cwd();
const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
const external = [
  ...Object.keys(manifest.dependencies ?? {}),
  ...Object.keys(manifest.peerDependencies ?? {}),
  "node:*",
];

rmSync(join(dir, "dist"), { recursive: true, force: true });

const entryPoints = [join(dir, "src/index.ts")];
for (const extra of manifest.kumo?.entryPoints ?? []) entryPoints.push(join(dir, extra));
if (existsSync(join(dir, "src/test/index.ts"))) entryPoints.push(join(dir, "src/test/index.ts"));

await build({
  entryPoints,
  outdir: join(dir, "dist"),
  outbase: join(dir, "src"),
  bundle: true,
  format: "esm",
  platform: manifest.kumo?.platform ?? "neutral",
  target: "es2022",
  sourcemap: true,
  external,
  logLevel: "warning",
});

const tsc = spawnSync(
  process.execPath,
  [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"],
  { cwd: dir, stdio: "inherit" },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
