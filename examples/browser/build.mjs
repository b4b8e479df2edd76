// Bundles the page script with esbuild (the "source" condition takes the
// @kumo packages' TypeScript directly, so no package build is needed first)
// copies xterm.js's stylesheet next to it, and bundles the Node server.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const here = import.meta.dirname;
mkdirSync(join(here, "dist"), { recursive: true });
await build({
  entryPoints: [join(here, "src/page.ts")],
  outfile: join(here, "dist/page.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  conditions: ["source"],
  sourcemap: true,
  minify: process.env.KUMO_MINIFY !== "0",
  logLevel: "warning",
});
// The server for `pnpm start` (Node; the test imports src/serve.ts directly).
await build({
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(here, "dist/server.js"),
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  // @kumo/guests finds its recipes from import.meta.url: keep it pointing into guests/src.
  define: {
    "import.meta.url": JSON.stringify(pathToFileURL(join(here, "../../guests/src/inputs.ts")).href),
  },
  logLevel: "warning",
});
const xterm = dirname(createRequire(import.meta.url).resolve("@xterm/xterm/package.json"));
copyFileSync(join(xterm, "css/xterm.css"), join(here, "dist/xterm.css"));
