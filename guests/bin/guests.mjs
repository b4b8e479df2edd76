#!/usr/bin/env node
// Entry of `pnpm --filter @kumo/guests build`: bundles src/cli.ts with
// esbuild (Node 20 runs no TypeScript) into dist/, then runs it.
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, "dist", "cli.js");
await build({
  entryPoints: [join(root, "src", "cli.ts")],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  // import.meta.url in the bundle points into dist/; guestsDir is one up either way.
});
const { main } = await import(pathToFileURL(outfile).href);
process.exitCode = await main(process.argv.slice(2));
