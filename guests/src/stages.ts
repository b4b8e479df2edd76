/**
 * The steps every cached build shares: a temporary folder next to its final
 * place, a snapshot of the recipe it runs, and the recipe run with its
 * "::stage" lines reported as progress.
 */
import { spawn } from "node:child_process";
import { copyFileSync, createWriteStream, linkSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import type { GuestArch } from "./arches";
import { GuestBuildError } from "./errors";
import { guestsDir } from "./inputs";
import { isAlive } from "./lock";
import type { ProgressListener } from "./progress";

/**
 * Creates `<path>.tmp-<pid>` afresh, after removing the temporaries of
 * builds that died (their pid is gone) next to it.
 */
export function freshTemporary(path: string): string {
  const parent = dirname(path);
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const match = /\.tmp-(\d+)$/.exec(name);
    if (match && !isAlive(Number(match[1])))
      rmSync(join(parent, name), { recursive: true, force: true });
  }
  const temporary = `${path}.tmp-${process.pid}`;
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary, { recursive: true });
  return temporary;
}

/**
 * Runs a copy of the recipe: bash reads a script as it goes, so editing
 * recipes/ during a long build would otherwise change the running build.
 */
export function snapshot(recipe: string, temporary: string): string {
  const copy = join(temporary, recipe);
  copyFileSync(join(guestsDir, "recipes", recipe), copy);
  return copy;
}

/** Hard link when the cache is on one file system, else copy. */
export function place(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

const unitLine = /^\s+(CC|AS|LD|AR|HOSTCC)\s/;

/**
 * Runs one recipe with its output in `logFile`, reporting each "::stage"
 * line it prints as a stage and counting make's compile lines.
 */
export function runStages(
  arch: GuestArch,
  prefix: string,
  progress: ProgressListener,
  logFile: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env, LC_ALL: "C" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tail: string[] = [];
    let stage = prefix;
    let started = Date.now();
    let units = 0;
    let lastReport = 0;
    // A recipe that announces its stages gets no line for its silent preamble.
    let announced = false;
    const announce = () => {
      if (!announced) progress({ arch, stage, state: "start", elapsedMs: Date.now() - started });
      announced = true;
    };
    // Only the bash recipes print "::stage" lines; other tools are one stage.
    if (command !== "bash") announce();
    const onLine = (line: string) => {
      log.write(`${line}\n`);
      const marker = /^::stage (.+)$/.exec(line);
      if (marker) {
        const now = Date.now();
        if (announced) {
          progress({ arch, stage, state: "done", elapsedMs: now - started, ...unitsOf(units) });
        }
        stage = `${prefix} ${marker[1]}`;
        started = now;
        units = 0;
        announced = false;
        announce();
        return;
      }
      announce();
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (unitLine.test(line)) {
        units++;
        const now = Date.now();
        if (now - lastReport >= 250) {
          lastReport = now;
          progress({ arch, stage, state: "progress", elapsedMs: now - started, units });
        }
      }
    };
    createInterface({ input: child.stdout }).on("line", onLine);
    createInterface({ input: child.stderr }).on("line", onLine);
    child.on("error", (error) => {
      log.end();
      reject(new GuestBuildError(arch, `cannot run ${command}: ${error.message}`, logFile));
    });
    child.on("close", (code, signal) => {
      log.end();
      if (code === 0) {
        announce();
        progress({
          arch,
          stage,
          state: "done",
          elapsedMs: Date.now() - started,
          ...unitsOf(units),
        });
        resolvePromise();
        return;
      }
      reject(
        new GuestBuildError(
          arch,
          `${stage} failed (${signal ?? `exit ${code}`}); log: ${logFile}\n${tail.join("\n")}`,
          logFile,
        ),
      );
    });
  });
}

function unitsOf(units: number): { units?: number; detail?: string } {
  return units > 0 ? { units, detail: `${units} compiled` } : {};
}
