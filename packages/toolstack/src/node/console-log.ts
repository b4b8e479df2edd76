/**
 * Per-domain console log files, as xenconsoled writes
 * /var/log/xen/console/guest-<name>.log when logging is on. Kumo keeps them
 * under $KUMO_STATE_DIR (default $XDG_STATE_HOME/kumo, else ~/.local/state/kumo).
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ConsoleBackend } from "../console/backend";

/** Where Kumo keeps its runtime state: logs, the daemon socket. */
export function kumoStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUMO_STATE_DIR) return env.KUMO_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "kumo");
}

/** The console log file of domain `name`. */
export function consoleLogPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(kumoStateDir(env), "console", `guest-${name}.log`);
}

export interface ConsoleLog {
  readonly path: string;
  close(): void;
}

/**
 * Appends everything the guest writes on `backend` to `path` (created with
 * its folder). Writes are synchronous so the log is complete even if the
 * process dies right after a guest panic message.
 */
export function logConsoleToFile(
  backend: Pick<ConsoleBackend, "onOutput">,
  path: string,
): ConsoleLog {
  mkdirSync(join(path, ".."), { recursive: true });
  const fd = openSync(path, "a");
  let open = true;
  const unsubscribe = backend.onOutput((bytes) => {
    if (open) writeSync(fd, bytes);
  });
  return {
    path,
    close() {
      if (!open) return;
      open = false;
      unsubscribe();
      closeSync(fd);
    },
  };
}
