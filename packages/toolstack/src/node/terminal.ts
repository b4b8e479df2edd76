/**
 * Attaches a terminal to a console backend as `xl console` does: the
 * terminal goes to raw mode, keystrokes go to the guest, the guest's output
 * goes to the screen, and Ctrl-] (0x1d, the escape character of xl console
 * and telnet) detaches and restores the terminal.
 */
import type { ConsoleBackend } from "../console/backend";

/** Ctrl-]: xl console's escape character (tools/console/client/main.c ESCAPE_CHARACTER). */
export const CONSOLE_ESCAPE = 0x1d;

/** The parts of a Node stream that an attach needs (process.stdin / a socket / a PassThrough). */
export interface TerminalInput {
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  off(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  off(event: "end", listener: () => void): unknown;
  resume(): unknown;
  pause(): unknown;
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface TerminalOutput {
  write(chunk: Uint8Array | string): unknown;
}

export type DetachReason = "escape" | "input-ended" | "console-closed";

export interface TerminalAttachment {
  /** Resolves when the terminal is detached or its input ends, with why. */
  readonly done: Promise<DetachReason>;
  /** Detaches from the program's side (the domain ended). */
  detach(reason?: DetachReason): void;
}

/** Connects `input`/`output` to `backend` until Ctrl-], end of input or `detach()`. */
export function attachTerminal(
  backend: Pick<ConsoleBackend, "onOutput" | "write">,
  input: TerminalInput,
  output: TerminalOutput,
): TerminalAttachment {
  const wasRaw = input.isRaw === true;
  if (input.isTTY && input.setRawMode) input.setRawMode(true);
  let finish: (reason: DetachReason) => void = () => {};
  const done = new Promise<DetachReason>((resolve) => {
    finish = resolve;
  });
  let attached = true;
  const unsubscribe = backend.onOutput((bytes) => {
    if (attached) output.write(bytes);
  });
  let reading = true;
  /** Stops taking keystrokes and gives the terminal its mode back. */
  const stopInput = () => {
    if (!reading) return;
    reading = false;
    input.off("data", onData);
    input.off("end", onEnd);
    if (input.isTTY && input.setRawMode) input.setRawMode(wasRaw);
    input.pause();
  };
  const detach = (reason: DetachReason = "console-closed") => {
    stopInput();
    if (!attached) return;
    attached = false;
    unsubscribe();
    finish(reason);
  };
  const onData = (chunk: Buffer | string) => {
    const bytes =
      typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk);
    const escapeAt = bytes.indexOf(CONSOLE_ESCAPE);
    if (escapeAt >= 0) {
      if (escapeAt > 0) backend.write(bytes.subarray(0, escapeAt));
      detach("escape");
      return;
    }
    backend.write(bytes);
  };
  // End of input (a pipe, not a terminal): keep showing the guest's output until detach().
  const onEnd = () => {
    stopInput();
    finish("input-ended");
  };
  input.on("data", onData);
  input.on("end", onEnd);
  input.resume();
  return { done, detach };
}
