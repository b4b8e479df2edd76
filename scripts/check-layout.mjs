#!/usr/bin/env node
// Enforces the package map (docs/architecture.md): every `@kumo/*` import in
// a package's sources must be allowed by scripts/package-map.mjs and declared
// in its package.json; every declared `@kumo/*` dependency must be used; no
// file may reach into another package's `src/` (or `dist/`) by path.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { packageMap as defaultMap } from "./package-map.mjs";

/** Private workspace folders that package tests (not sources) may import. */
const TEST_WORKSPACES = new Set(["guests"]);
const SOURCE_EXTENSIONS = [".ts", ".mts", ".js", ".mjs", ".tsx"];
const IMPORT_PATTERN =
  /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|import\s+["']([^"']+)["']|require\(\s*["']([^"']+)["']\s*\)/g;

function listFiles(dir) {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else if (SOURCE_EXTENSIONS.some((ext) => name.endsWith(ext))) out.push(path);
  }
  return out;
}

function importsOf(text) {
  const specifiers = [];
  for (const match of text.matchAll(IMPORT_PATTERN)) {
    specifiers.push(match[1] ?? match[2] ?? match[3] ?? match[4]);
  }
  return specifiers;
}

/** Workspace folders: published packages under packages/, free users elsewhere. */
function workspaceFolders(root) {
  const folders = [];
  for (const group of ["packages", "examples"]) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const dir = join(base, name);
      if (existsSync(join(dir, "package.json"))) folders.push({ dir, group, name });
    }
  }
  for (const name of ["bench", "guests"]) {
    const dir = join(root, name);
    if (existsSync(join(dir, "package.json"))) folders.push({ dir, group: name, name });
  }
  return folders;
}

/**
 * Checks the tree at `root` and returns a list of violations (empty when the
 * layout is right).
 */
export function checkLayout(root, packageMap = defaultMap) {
  const problems = [];
  const folders = workspaceFolders(root);
  const packagesRoot = resolve(root, "packages");
  for (const { dir, group, name } of folders) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const where = relative(root, dir);
    const isPackage = group === "packages";
    if (isPackage && manifest.name !== `@kumo/${name}`) {
      problems.push(`${where}: package.json name must be @kumo/${name}, found ${manifest.name}`);
    }
    if (isPackage && !(name in packageMap)) {
      problems.push(`${where}: @kumo/${name} is not in the package map (scripts/package-map.mjs)`);
    }
    const allowed = isPackage ? new Set(packageMap[name] ?? []) : null;
    const declared = new Set(
      [
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {}),
      ].filter((dep) => dep.startsWith("@kumo/")),
    );
    const declaredAny = new Set(
      [...declared, ...Object.keys(manifest.devDependencies ?? {})].filter((dep) =>
        dep.startsWith("@kumo/"),
      ),
    );
    const used = new Set();
    const sourceFiles = listFiles(join(dir, "src"));
    const allFiles = [...sourceFiles, ...listFiles(join(dir, "test"))];
    for (const file of allFiles) {
      const inSource = sourceFiles.includes(file);
      const text = readFileSync(file, "utf8");
      for (const specifier of importsOf(text)) {
        const at = `${relative(root, file)}: import "${specifier}"`;
        if (specifier.startsWith(".")) {
          const target = resolve(dirname(file), specifier);
          if (target.startsWith(packagesRoot + sep) && !target.startsWith(dir + sep)) {
            problems.push(`${at} reaches into another package by path; import its public entry`);
          }
          continue;
        }
        const kumo = /^@kumo\/([a-z0-9-]+)(\/.*)?$/.exec(specifier);
        if (!kumo) continue;
        const target = kumo[1];
        const subpath = kumo[2];
        if (subpath && subpath !== "/test" && subpath !== "/node") {
          problems.push(
            `${at} reaches into @kumo/${target} internals; only ".", "./node" and "./test" are public`,
          );
        }
        if (subpath === "/test" && inSource && !file.includes(`${sep}src${sep}test${sep}`)) {
          problems.push(`${at} uses test helpers from library code`);
        }
        if (target === name && isPackage) continue;
        if (inSource) used.add(`@kumo/${target}`);
        // Tests may use the private test-guest builder (guests/), never a sibling package.
        const testOnly = !inSource && TEST_WORKSPACES.has(target);
        if (allowed && !allowed.has(target) && !testOnly) {
          problems.push(
            `${at} is not allowed by the package map: @kumo/${name} may import ${[...allowed].join(", ") || "nothing"}`,
          );
        }
        const declaredHere = inSource ? declared : declaredAny;
        if (!declaredHere.has(`@kumo/${target}`)) {
          problems.push(`${at}: @kumo/${target} is not declared in ${where}/package.json`);
        }
      }
    }
    for (const dep of declared) {
      if (!used.has(dep))
        problems.push(`${where}/package.json declares ${dep} but src/ never imports it`);
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const problems = checkLayout(root);
  if (problems.length > 0) {
    console.error(`layout check: ${problems.length} problem(s)`);
    for (const problem of problems) console.error(`  ${problem}`);
    process.exit(1);
  }
  console.log(
    `layout check: ${workspaceFolders(root).length} workspace folders follow the package map`,
  );
}
