// One vitest configuration for the whole tree: every workspace folder with a
// `test/` directory is a project named after its folder. `@kumo/*` imports
// resolve to the packages' sources, so tests need no build.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { defineConfig } from "vitest/config";

const root = import.meta.dirname;

function workspaceDirs(): string[] {
  const dirs: string[] = [];
  for (const group of ["packages", "examples"]) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) dirs.push(join(group, name));
  }
  dirs.push("bench", "guests", "scripts");
  return dirs.filter((dir) => existsSync(join(root, dir, "test")));
}

/**
 * `@kumo/<name>` and its subpaths (`/node`, `/test`) resolved through the
 * "source" condition of each package's exports map, so tests run on the
 * sources without a build.
 */
function sourceAliases(): { find: string; replacement: string }[] {
  const aliases: { find: string; replacement: string }[] = [];
  const folders = ["guests"];
  const base = join(root, "packages");
  if (existsSync(base)) for (const name of readdirSync(base)) folders.push(join("packages", name));
  for (const folder of folders) {
    const manifestPath = join(root, folder, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
      const source = (target as { source?: string }).source;
      if (!source) continue;
      aliases.push({
        find: `${manifest.name}${subpath.slice(1)}`,
        replacement: resolve(root, folder, source),
      });
    }
  }
  // Longest first, so that "@kumo/x/node" wins over "@kumo/x".
  return aliases.sort((a, b) => b.find.length - a.find.length);
}

export default defineConfig({
  resolve: {
    alias: sourceAliases().map(({ find, replacement }) => ({
      find: new RegExp(`^${find.replace(/[/]/g, "\\/")}$`),
      replacement,
    })),
  },
  test: {
    projects: workspaceDirs().map((dir) => ({
      extends: true,
      test: {
        name: dir.split("/").pop(),
        root: join(root, dir),
        include: ["test/**/*.test.ts", "test/**/*.test.mjs"],
        testTimeout: 60_000,
        hookTimeout: 600_000,
      },
    })),
  },
});
