// The size of V8's background thread pool for a process that runs guests.
//
// V8 compiles (JavaScript and WebAssembly tier-up) and collects garbage on
// a pool of worker threads; Node makes it 4 threads whatever the host. The
// guest's vCPUs run on the main thread. On a host with 2 cores, 4 busy
// workers take turns on the vCPUs' core: the i386 Linux boot measured 81
// MIPS with the default pool and 93 with one worker (`pnpm bench
// boot-linux`, where v86 gained as much). A pool of the cores less one,
// at most Node's 4, leaves the main thread its core.

import { spawn } from "node:child_process";
import { availableParallelism, constants } from "node:os";

/** The pool size for a host with `cores` cores: one core stays with the main thread. */
export function v8PoolSize(cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(4, cores - 1));
}

/** Whether the process (its flags or NODE_OPTIONS) already chose a pool size. */
export function hasV8PoolSize(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? "",
): boolean {
  const chosen = (arg: string) => arg === "--v8-pool-size" || arg.startsWith("--v8-pool-size=");
  return execArgv.some(chosen) || nodeOptions.split(/\s+/).some(chosen);
}

/**
 * Runs `script` with `args` in a new Node process whose V8 pool is
 * `v8PoolSize()`, unless this process chose one already (then resolves
 * null at once and the caller goes on in-process). Else resolves the
 * child's exit status, after it ended: the terminal and stdio pass
 * through, SIGINT and SIGHUP reach the child from the terminal as they
 * reach this process (which waits for the child), and SIGTERM sent to
 * this process is passed on. A child killed by a signal gives 128 + its
 * number, as a shell reports it.
 */
export function relaunchWithV8Pool(
  script: string,
  args: readonly string[],
): Promise<number | null> {
  if (hasV8PoolSize()) return Promise.resolve(null);
  const child = spawn(
    process.execPath,
    [`--v8-pool-size=${v8PoolSize()}`, ...process.execArgv, script, ...args],
    { stdio: "inherit" },
  );
  const wait = () => {};
  const forward = () => child.kill("SIGTERM");
  process.on("SIGINT", wait);
  process.on("SIGHUP", wait);
  process.on("SIGTERM", forward);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", wait);
      process.off("SIGHUP", wait);
      process.off("SIGTERM", forward);
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
}
