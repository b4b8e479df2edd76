/**
 * The wire protocol between `kumo` commands and `kumo daemon` on its Unix
 * socket: length-prefixed frames, each [type u8][length u32 big-endian]
 * [payload]. A request and its response are JSON frames; after a successful
 * "console" request the connection carries console bytes both ways, and the
 * daemon ends it with a ConsoleEnd frame saying why the domain stopped.
 */

export const FrameType = {
  /** A JSON request (client to daemon) or response (daemon to client). */
  Json: 1,
  /** Console bytes: guest output (daemon to client) or keystrokes (client to daemon). */
  ConsoleData: 2,
  /** JSON `{ reason }`: the domain ended or the console was closed. */
  ConsoleEnd: 3,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Frames larger than this are a protocol error (a config file or a kernel path is far smaller). */
export const MAX_FRAME = 1 << 20;

export interface Frame {
  readonly type: FrameType;
  readonly payload: Uint8Array;
}

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

export function encodeFrame(type: FrameType, payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  if (bytes.length > MAX_FRAME)
    throw new ProtocolError(`frame of ${bytes.length} bytes exceeds ${MAX_FRAME}`);
  const frame = new Uint8Array(5 + bytes.length);
  frame[0] = type;
  new DataView(frame.buffer).setUint32(1, bytes.length, false);
  frame.set(bytes, 5);
  return frame;
}

export function encodeJson(type: FrameType, value: unknown): Uint8Array {
  return encodeFrame(type, JSON.stringify(value));
}

export function decodeJson<T>(frame: Frame): T {
  try {
    return JSON.parse(new TextDecoder().decode(frame.payload)) as T;
  } catch {
    throw new ProtocolError("malformed JSON frame");
  }
}

/** Reassembles frames from a byte stream that arrives in arbitrary chunks. */
export class FrameDecoder {
  private buffer = new Uint8Array(0);

  /** Adds bytes; returns the complete frames. Throws ProtocolError on a bad header. */
  push(chunk: Uint8Array): Frame[] {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    const frames: Frame[] = [];
    let offset = 0;
    while (joined.length - offset >= 5) {
      const type = joined[offset];
      const length = new DataView(joined.buffer, joined.byteOffset + offset + 1, 4).getUint32(
        0,
        false,
      );
      if (type < FrameType.Json || type > FrameType.ConsoleEnd)
        throw new ProtocolError(`unknown frame type ${type}`);
      if (length > MAX_FRAME)
        throw new ProtocolError(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
      if (joined.length - offset - 5 < length) break;
      frames.push({
        type: type as FrameType,
        payload: joined.slice(offset + 5, offset + 5 + length),
      });
      offset += 5 + length;
    }
    this.buffer = joined.slice(offset);
    return frames;
  }
}

/** Requests the daemon understands. `domain` is a name or a domid. */
export type DaemonRequest =
  | { command: "create"; configText: string; configName: string; cwd: string; paused?: boolean }
  | { command: "list" }
  | { command: "destroy" | "pause" | "unpause" | "shutdown" | "reboot"; domain: string }
  | { command: "console"; domain: string }
  | { command: "dmesg"; clear?: boolean }
  | { command: "xenstore-ls"; path: string }
  | { command: "xenstore-read"; path: string }
  | { command: "xenstore-write"; path: string; value: string };

export interface DomainListEntry {
  readonly domid: number;
  readonly name: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** The hypervisor's domain state, or "blocked" for a running domain whose vCPUs all wait. */
  readonly state: string;
  readonly instructions: number;
}

export type DaemonResponse =
  | { ok: true; result?: unknown; warnings?: string[] }
  | { ok: false; error: string };
