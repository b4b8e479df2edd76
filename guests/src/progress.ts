import type { GuestArch } from "./arches";

/** One step of a guest build, reported as it starts, advances and ends. */
export interface GuestProgress {
  arch: GuestArch;
  /** "kernel" or "initramfs" and the recipe's stage, e.g. "kernel compile". */
  stage: string;
  state: "start" | "progress" | "done" | "cached" | "waiting" | "skipped";
  /** Milliseconds since the stage started. */
  elapsedMs: number;
  /** Compile units done so far (CC/AS/LD lines of make), for "progress". */
  units?: number;
  detail?: string;
}

export type ProgressListener = (event: GuestProgress) => void;

export function formatElapsed(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
}

/**
 * The default display: a line per stage with its elapsed time; the kernel
 * compile updates one line in place on a terminal, or prints a line every
 * `every` units otherwise (CI logs).
 */
export function consoleProgress(
  stream: NodeJS.WriteStream = process.stderr,
  every = 250,
): ProgressListener {
  const tty = stream.isTTY === true;
  let lastPrinted = 0;
  let openLine = false;
  const write = (text: string) => {
    if (openLine) stream.write("\r\x1b[K");
    stream.write(text);
    openLine = false;
  };
  return (event) => {
    const head = `[guests ${event.arch}] ${event.stage}`;
    const time = formatElapsed(event.elapsedMs);
    switch (event.state) {
      case "start":
        lastPrinted = 0;
        write(`${head} ...${event.detail ? ` ${event.detail}` : ""}\n`);
        break;
      case "progress":
        if (tty) {
          write(
            `${head}: ${event.units} compiled, ${time}${event.detail ? ` (${event.detail})` : ""}`,
          );
          openLine = true;
        } else if ((event.units ?? 0) - lastPrinted >= every) {
          lastPrinted = event.units ?? 0;
          write(`${head}: ${event.units} compiled, ${time}\n`);
        }
        break;
      case "done":
        write(`${head}: done in ${time}${event.detail ? ` (${event.detail})` : ""}\n`);
        break;
      case "cached":
        write(`${head}: cached${event.detail ? ` ${event.detail}` : ""}\n`);
        break;
      case "waiting":
        write(`${head}: waiting${event.detail ? ` ${event.detail}` : ""}\n`);
        break;
      case "skipped":
        write(`${head}: skipped${event.detail ? ` (${event.detail})` : ""}\n`);
        break;
    }
  };
}
