import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { archRecipes, type GuestArch } from "./arches";
import { GuestBuildError } from "./errors";

/** The guests/ folder: configs/, recipes/ and initramfs/ live there. */
export const guestsDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Debian's kernel source package, the input of every kernel build. */
export const linuxSourcePackage = "linux-source-6.1";
export const linuxSourceTarball = "/usr/src/linux-source-6.1.tar.xz";

export interface GuestOptions {
  /** Cache root; default $KUMO_GUESTS_CACHE, else $XDG_CACHE_HOME/kumo/guests, else ~/.cache/kumo/guests. */
  cacheDir?: string;
  /** Kernel config fragment to use instead of configs/<arch>.config (tests use this). */
  configFragment?: string;
}

/** Everything a guest build depends on, and the cache keys derived from it. */
export interface GuestInputs {
  arch: GuestArch;
  cacheDir: string;
  configFragment: string;
  linuxVersion: string;
  busyboxVersion: string;
  compiler: string;
  /** Hash of what the kernel depends on. */
  kernelKey: string;
  /** Hash of what the initramfs depends on. */
  initramfsKey: string;
  /** Hash of both: names the guest's folder <cacheDir>/<arch>-<key>. */
  key: string;
}

export function defaultCacheDir(): string {
  if (process.env.KUMO_GUESTS_CACHE) return resolve(process.env.KUMO_GUESTS_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "kumo", "guests");
}

function run(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

/** Version of an installed Debian package, from dpkg's database. */
export function installedVersion(name: string): string | undefined {
  // dpkg-query's own ${field} syntax, not a template literal.
  const format = ["-f=$", "{Status}|$", "{Version}"].join("");
  const out = run("dpkg-query", ["-W", format, name]);
  if (!out?.startsWith("install ok installed|")) return undefined;
  return out.slice(out.indexOf("|") + 1).trim();
}

/**
 * The busybox-static version a build would use: the installed package for
 * the host architecture, apt's candidate for a foreign one (downloaded, not
 * installed: see build.ts).
 */
export function busyboxVersion(debianArch: string, cacheDir: string): string | undefined {
  if (debianArch === hostDebianArch()) return installedVersion("busybox-static");
  return aptCandidate(`busybox-static:${debianArch}`, cacheDir);
}

const aptLists = "/var/lib/apt/lists";
const candidates = new Map<string, string>();

/**
 * apt's candidate version of a package. `apt-cache` takes seconds where apt
 * keeps no binary cache (Debian's docker images), which would make every
 * cached build slow to find; so the answer is remembered in the cache, valid
 * until `apt-get update` rewrites the package lists (their folder's mtime).
 */
function aptCandidate(name: string, cacheDir: string): string | undefined {
  let stamp = 0;
  try {
    stamp = statSync(aptLists).mtimeMs;
  } catch {
    // No apt lists: ask apt-cache, which will say there is no such package.
  }
  const memoKey = `${stamp}|${name}`;
  const known = candidates.get(memoKey);
  if (known) return known;
  const file = join(cacheDir, "apt-candidates.json");
  let saved: { stamp: number; versions: Record<string, string> } = { stamp, versions: {} };
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8"));
    if (parsed.stamp === stamp) saved = parsed;
  } catch {
    // Missing or unreadable: start afresh.
  }
  let version: string | undefined = saved.versions[name];
  if (!version) {
    const out = run("apt-cache", ["show", "--no-all-versions", name]);
    version = out ? /^Version: (.+)$/m.exec(out)?.[1]?.trim() : undefined;
    if (!version) return undefined;
    saved.versions[name] = version;
    mkdirSync(cacheDir, { recursive: true });
    const temporary = `${file}.tmp-${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify(saved)}\n`);
    renameSync(temporary, file);
  }
  candidates.set(memoKey, version);
  return version;
}

let hostArchCache: string | undefined;
export function hostDebianArch(): string {
  hostArchCache ??= run("dpkg", ["--print-architecture"])?.trim() ?? "amd64";
  return hostArchCache;
}

export function sha256(parts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(`${part.length}:${part}`);
  return hash.digest("hex").slice(0, 16);
}

function file(relative: string): string {
  return readFileSync(join(guestsDir, relative), "utf8");
}

/** Reads the inputs of one guest and hashes them; fails with a typed error if one is missing. */
export function guestInputs(arch: GuestArch, options: GuestOptions = {}): GuestInputs {
  const recipe = archRecipes[arch];
  const cacheDir = options.cacheDir ? resolve(options.cacheDir) : defaultCacheDir();
  const configFragment = resolve(
    options.configFragment ?? join(guestsDir, "configs", `${arch}.config`),
  );
  if (!existsSync(configFragment)) {
    throw new GuestBuildError(arch, `no kernel config fragment at ${configFragment}`);
  }
  const linuxVersion = installedVersion(linuxSourcePackage);
  if (!linuxVersion || !existsSync(linuxSourceTarball)) {
    throw new GuestBuildError(
      arch,
      `${linuxSourcePackage} is not installed (want ${linuxSourceTarball}); run scripts/setup.sh or apt-get install ${linuxSourcePackage}`,
    );
  }
  const busybox = busyboxVersion(recipe.debianArch, cacheDir);
  if (!busybox) {
    throw new GuestBuildError(
      arch,
      recipe.debianArch === hostDebianArch()
        ? "busybox-static is not installed; apt-get install busybox-static"
        : `apt knows no busybox-static:${recipe.debianArch}; run dpkg --add-architecture ${recipe.debianArch} && apt-get update`,
    );
  }
  const cc = recipe.llvm ? recipe.compiler : `${recipe.crossCompile}${recipe.compiler}`;
  const compiler = run(cc, ["--version"])?.split("\n")[0]?.trim();
  if (!compiler || (recipe.llvm && !run(`ld.lld${recipe.llvm}`, ["--version"]))) {
    throw new GuestBuildError(
      arch,
      `no ${cc}${recipe.llvm ? ` or ld.lld${recipe.llvm}` : ""} on PATH; apt-get install ${recipe.compilerPackage}`,
    );
  }
  const kernelKey = sha256([
    arch,
    linuxVersion,
    compiler,
    readFileSync(configFragment, "utf8"),
    file("recipes/kernel.sh"),
  ]);
  const initramfsKey = sha256([
    arch,
    busybox,
    linuxVersion,
    file("recipes/initramfs.sh"),
    file("initramfs/init"),
    file("initramfs/inittab"),
    file("initramfs/profile"),
    file("initramfs/passwd"),
    file("initramfs/group"),
  ]);
  return {
    arch,
    cacheDir,
    configFragment,
    linuxVersion,
    busyboxVersion: busybox,
    compiler,
    kernelKey,
    initramfsKey,
    key: sha256([kernelKey, initramfsKey]),
  };
}
