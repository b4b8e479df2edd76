#!/usr/bin/env node
// `pnpm kumo ...` from the repository root: brings the toolstack's build up
// to date (turbo; a cache hit takes under a second), then runs the kumo
// executable in this process so that the terminal (raw mode for
// `kumo console`) and the exit status pass straight through. Build output
// is shown only when the build fails.
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(packageDir, "../..");
const turbo = resolve(root, "node_modules/.bin/turbo");
const result = spawnSync(
  turbo,
  ["run", "build", "--filter=@kumo/toolstack", "--output-logs=errors-only"],
  {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
  },
);
if (result.status !== 0) {
  process.stderr.write(result.stdout ?? "");
  process.stderr.write(result.stderr ?? "");
  process.stderr.write(
    `kumo: building @kumo/toolstack failed (${result.error?.message ?? `exit ${result.status}`})\n`,
  );
  process.exit(1);
}
await import(pathToFileURL(resolve(packageDir, "dist/bin/kumo.js")).href);
