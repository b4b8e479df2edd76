/** The `kumo` commands' side of the daemon socket (protocol.ts). */
import { createConnection, type Socket } from "node:net";
import { CONSOLE_ESCAPE, type TerminalInput, type TerminalOutput } from "../node/terminal";
import {
  type DaemonRequest,
  type DaemonResponse,
  decodeJson,
  encodeFrame,
  encodeJson,
  FrameDecoder,
  FrameType,
} from "./protocol";

function connect(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    socket.once("connect", () => resolve(socket));
    socket.once("error", (error) =>
      reject(new Error(`cannot reach the kumo daemon at ${socketPath}: ${error.message}`)),
    );
  });
}

/** Sends one request and returns the daemon's response. */
export async function daemonRequest(
  socketPath: string,
  request: DaemonRequest,
): Promise<DaemonResponse> {
  const socket = await connect(socketPath);
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(new Uint8Array(chunk))) {
        if (frame.type === FrameType.Json) {
          socket.end();
          resolve(decodeJson<DaemonResponse>(frame));
        }
      }
    });
    socket.once("close", () =>
      reject(new Error("the kumo daemon closed the connection without an answer")),
    );
    socket.write(encodeJson(FrameType.Json, request));
  });
}

/**
 * Attaches a terminal to a domain's console in the daemon. Resolves with the
 * reason the domain ended ("poweroff", "crash", ...), "detached" after
 * Ctrl-], or "console-closed" if the daemon went away.
 */
export async function daemonConsole(
  socketPath: string,
  domain: string,
  input: TerminalInput | undefined,
  output: TerminalOutput,
  /** Called once the console is attached (create -c unpauses the domain then, so no output is missed). */
  onAttached?: () => void,
): Promise<string> {
  const socket = await connect(socketPath);
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    let attached = false;
    let finished = false;
    const wasRaw = input?.isRaw === true;
    const onKeys = (chunk: Buffer | string) => {
      const bytes =
        typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk);
      const escapeAt = bytes.indexOf(CONSOLE_ESCAPE);
      const keys = escapeAt >= 0 ? bytes.subarray(0, escapeAt) : bytes;
      if (keys.length > 0) socket.write(encodeFrame(FrameType.ConsoleData, keys));
      if (escapeAt >= 0) finish("detached");
    };
    const onEnd = () => {
      input?.off("data", onKeys);
    };
    const finish = (reason: string, error?: Error) => {
      if (finished) return;
      finished = true;
      if (input) {
        input.off("data", onKeys);
        input.off("end", onEnd);
        if (input.isTTY && input.setRawMode) input.setRawMode(wasRaw);
        input.pause();
      }
      socket.end();
      if (error) reject(error);
      else resolve(reason);
    };
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(new Uint8Array(chunk))) {
        if (frame.type === FrameType.Json && !attached) {
          const response = decodeJson<DaemonResponse>(frame);
          if (!response.ok) {
            finish("error", new Error(response.error));
            return;
          }
          attached = true;
          onAttached?.();
          if (input) {
            if (input.isTTY && input.setRawMode) input.setRawMode(true);
            input.on("data", onKeys);
            input.on("end", onEnd);
            input.resume();
          }
        } else if (frame.type === FrameType.ConsoleData) {
          output.write(frame.payload);
        } else if (frame.type === FrameType.ConsoleEnd) {
          finish(decodeJson<{ reason: string }>(frame).reason);
        }
      }
    });
    socket.once("close", () => finish("console-closed"));
    socket.write(
      encodeJson(FrameType.Json, { command: "console", domain } satisfies DaemonRequest),
    );
  });
}
