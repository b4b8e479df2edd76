#!/usr/bin/env node
// Runs Kumo's benchmarks: every `src/<name>.ts` whose default export is a
// Benchmark (src/lib/harness.ts). Each is bundled by esbuild with the
// packages' sources (the "source" export condition), so nothing needs to be
// built first, then imported and run in this process, one after another.
//
//   pnpm bench                      all benchmarks, about 1 s per figure
//   pnpm bench mmu cpu-x86          only these
//   pnpm bench --time=0.2 --json    shorter, machine-readable
//   pnpm bench --list
//
// The benchmarks run in a Node process whose V8 thread pool (compilers,
// garbage collector) is the host's cores less one, at most Node's default
// 4, as the kumo executable runs guests (@kumo/toolstack's
// src/node/v8-pool.ts): on 2 cores the default pool takes turns on the
// measured machine's core. Kumo and v86 run in this one process, so they
// share the setting; a pool chosen with --v8-pool-size (on the command
// line or in NODE_OPTIONS) is kept. KUMO_BENCH_KEEP=1 keeps the bundles
// (for profiles: their line numbers).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const poolFlag = (arg) => arg.startsWith("--v8-pool-size");
if (
  !process.execArgv.some(poolFlag) &&
  !(process.env.NODE_OPTIONS ?? "").split(/\s+/).some(poolFlag)
) {
  const pool = Math.max(1, Math.min(4, availableParallelism() - 1));
  const child = spawnSync(
    process.execPath,
    [
      `--v8-pool-size=${pool}`,
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: "inherit" },
  );
  process.exit(child.status ?? 1);
}
const pool = (process.execArgv.find(poolFlag) ?? "").split("=")[1] ?? "from NODE_OPTIONS";

const here = import.meta.dirname;
const args = process.argv.slice(2);
const option = (name) => args.find((arg) => arg.startsWith(`--${name}`));
const seconds = Number((option("time") ?? "--time=1").split("=")[1]);
const json = Boolean(option("json"));
const names = args.filter((arg) => !arg.startsWith("--"));

const available = readdirSync(join(here, "src"))
  .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
  .map((file) => file.slice(0, -3))
  .sort();
if (option("list")) {
  for (const name of available) console.log(name);
  process.exit(0);
}
const unknown = names.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${available.join(", ")}`);
  process.exit(2);
}
if (!(seconds > 0)) {
  console.error(`--time must be a positive number of seconds, got ${option("time")}`);
  process.exit(2);
}
const selected = names.length > 0 ? names : available;

const outdir = mkdtempSync(join(tmpdir(), "kumo-bench-"));
const results = [];
let failed = 0;
try {
  if (!json) {
    console.log(
      `Kumo benchmarks — node ${process.version} (V8 pool ${pool}), ${cpus()[0]?.model ?? "unknown CPU"}`,
    );
    console.log(`about ${seconds} s per figure; best round reported\n`);
  }
  // One build per benchmark, so that a benchmark whose package does not
  // compile right now does not stop the others.
  for (const name of selected) {
    try {
      await build({
        entryPoints: [join(here, "src", `${name}.ts`)],
        outdir,
        bundle: true,
        format: "esm",
        platform: "node",
        target: "node20",
        conditions: ["source"],
        outExtension: { ".js": ".mjs" },
        logLevel: "silent",
      });
      const module = await import(pathToFileURL(resolve(outdir, `${name}.mjs`)).href);
      const benchmark = module.default;
      if (!benchmark || typeof benchmark.run !== "function") {
        throw new Error(
          `bench/src/${name}.ts must default-export a Benchmark (src/lib/harness.ts)`,
        );
      }
      if (!json) console.log(`${benchmark.name}: ${benchmark.description}`);
      await benchmark.run({
        seconds,
        report(result) {
          results.push({ benchmark: benchmark.name, ...result });
          if (!json) {
            const detail = result.detail ? `  (${result.detail})` : "";
            console.log(
              `  ${result.label.padEnd(72)} ${format(result.value, result.unit)}${detail}`,
            );
          }
        },
      });
      if (!json) console.log("");
    } catch (error) {
      failed++;
      const message = error?.errors?.length
        ? error.errors
            .map((e) => `${e.location?.file ?? ""}:${e.location?.line ?? ""}: ${e.text}`)
            .join("; ")
        : String(error?.stack ?? error);
      console.error(`${name}: failed: ${message}\n`);
    }
  }
  if (json) console.log(JSON.stringify({ node: process.version, seconds, results }, null, 2));
} finally {
  if (!process.env.KUMO_BENCH_KEEP) rmSync(outdir, { recursive: true, force: true });
}
if (failed > 0) process.exitCode = 1;

function format(value, unit) {
  const prefixes = ["", "k", "M", "G"];
  let index = 0;
  while (value >= 1000 && index < prefixes.length - 1) {
    value /= 1000;
    index++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1).padStart(7)} ${prefixes[index]}${unit}`;
}
