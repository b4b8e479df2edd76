#!/usr/bin/env node
// Creates the skeleton of a new workspace package under packages/<name>:
//   node scripts/new-package.mjs <name> "<one-line description>" [dep ...]
// Only create a package when an issue gives it content.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [name, description, ...deps] = process.argv.slice(2);
if (!name || !description) {
  console.error('usage: node scripts/new-package.mjs <name> "<description>" [@kumo/dep ...]');
  process.exit(2);
}
const dir = join(import.meta.dirname, "..", "packages", name);
if (existsSync(dir)) {
  console.error(`packages/${name} exists already`);
  process.exit(1);
}
mkdirSync(join(dir, "src"), { recursive: true });
mkdirSync(join(dir, "test"), { recursive: true });
const manifest = {
  name: `@kumo/${name}`,
  version: "0.1.0",
  description,
  license: "MIT",
  type: "module",
  sideEffects: false,
  exports: {
    ".": { source: "./src/index.ts", types: "./dist/index.d.ts", import: "./dist/index.js" },
  },
  types: "./dist/index.d.ts",
  files: ["dist", "src", "README.md"],
  scripts: {
    build: "node ../../scripts/build-package.mjs",
    typecheck: "tsc -p tsconfig.json --noEmit",
    test: `vitest run --config ../../vitest.config.ts --project ${name}`,
  },
  dependencies: Object.fromEntries(deps.map((dep) => [dep, "workspace:*"])),
};
const json = (value) => `${JSON.stringify(value, null, 2)}\n`;
writeFileSync(join(dir, "package.json"), json(manifest));
writeFileSync(
  join(dir, "tsconfig.json"),
  json({
    extends: "../../tsconfig.base.json",
    compilerOptions: { noEmit: true },
    include: ["src", "test"],
  }),
);
writeFileSync(
  join(dir, "tsconfig.build.json"),
  json({
    extends: "../../tsconfig.base.json",
    compilerOptions: {
      rootDir: "src",
      outDir: "dist",
      emitDeclarationOnly: true,
      sourceMap: false,
    },
    include: ["src"],
  }),
);
writeFileSync(join(dir, "src/index.ts"), "export {};\n");
writeFileSync(join(dir, "README.md"), `# @kumo/${name}\n\n${description}\n`);
console.log(`created packages/${name}`);
