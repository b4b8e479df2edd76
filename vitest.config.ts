// One vitest configuration for the whole tree: every workspace folder with a
// `test/` directory is a project named after its folder. `@kumo/*` imports
// resolve to the packages' sources, so tests need no build.
import { existsSync, readdirSync } from "node:fs";
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

export default defineConfig({
  resolve: {
    alias: [
      {
        find: /^@kumo\/([a-z0-9-]+)\/test$/,
        replacement: resolve(root, "packages/$1/src/test/index.ts"),
      },
      { find: /^@kumo\/([a-z0-9-]+)$/, replacement: resolve(root, "packages/$1/src/index.ts") },
    ],
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
