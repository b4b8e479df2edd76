#!/usr/bin/env node
// The test command of the README (`pnpm test`): build, typecheck, lint, the
// package-map check, then every vitest project of the tree in one run. It
// ends with one summary line "tests: N passed, N failed, N skipped".
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => resolve(root, "node_modules/.bin", name);

function step(title, command, args) {
  console.log(`\n== ${title}`);
  const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" };
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", env });
  if (result.status !== 0) {
    console.error(`== ${title} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
}

step("build and typecheck", bin("turbo"), [
  "run",
  "build",
  "typecheck",
  "--continue",
  "--output-logs=errors-only",
]);
step("lint", bin("biome"), ["ci", "--colors=off", "."]);
step("package map", process.execPath, [resolve(root, "scripts/check-layout.mjs")]);
step("tests", bin("vitest"), [
  "run",
  "--reporter=default",
  `--reporter=${resolve(root, "scripts/summary-reporter.mjs")}`,
  ...process.argv.slice(2),
]);
