import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GuestArch } from "./arches";
import type { ProgressListener } from "./progress";

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Runs `body` holding a lock directory under <cacheDir>/locks (mkdir is
 * atomic), so that parallel test workers build a guest once. A lock left by
 * a process that died is taken over.
 */
export async function withLock<T>(
  cacheDir: string,
  name: string,
  progress: ProgressListener,
  arch: GuestArch,
  body: () => Promise<T>,
): Promise<T> {
  const locks = join(cacheDir, "locks");
  mkdirSync(locks, { recursive: true });
  const lock = join(locks, `${name}.lock`);
  const waitStarted = Date.now();
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(join(lock, "pid"), "utf8"));
    } catch {
      // The owner has made the directory but not yet written its pid.
    }
    if (Number.isInteger(owner) && !isAlive(owner)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (!announced) {
      announced = true;
      progress({
        arch,
        stage: name,
        state: "waiting",
        elapsedMs: Date.now() - waitStarted,
        detail: `for the build in process ${owner}`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  try {
    return await body();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
