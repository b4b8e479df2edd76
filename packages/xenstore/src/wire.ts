import { XenstoreConst, XsType } from "@kumo/abi";

/** Size of `struct xsd_sockmsg` (Xen public io/xs_wire.h): type, req_id, tx_id, len, all u32. */
export const HEADER_SIZE = 16;
/** Largest payload a message may carry (Xen public io/xs_wire.h `XENSTORE_PAYLOAD_MAX`). */
export const PAYLOAD_MAX = XenstoreConst.PAYLOAD_MAX;

export { XsType };

/** One decoded message. `payload` is a view that is only valid during the call that receives it. */
export interface XsMessage {
  type: number;
  requestId: number;
  transactionId: number;
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Xenstore strings are bytes; paths are ASCII (checked elsewhere), values are opaque. */
export function bytesToString(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Frames one message: the 16-byte little-endian header of xs_wire.h, then the payload. */
export function encodeMessage(
  type: number,
  requestId: number,
  transactionId: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, type >>> 0, true);
  view.setUint32(4, requestId >>> 0, true);
  view.setUint32(8, transactionId >>> 0, true);
  view.setUint32(12, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Joins strings as `a\0b\0...`, each terminated by NUL (the argument layout of xs_wire.h). */
export function nulTerminated(...parts: (string | Uint8Array)[]): Uint8Array {
  const encoded = parts.map((part) => (typeof part === "string" ? utf8(part) : part));
  let length = 0;
  for (const part of encoded) length += part.length + 1;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of encoded) {
    out.set(part, offset);
    offset += part.length + 1;
  }
  return out;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Splits a payload into its NUL-terminated strings. Returns undefined unless the payload is
 * exactly `count` strings each ending in NUL (Xen xenstored's `xs_count_strings` check);
 * `count` = -1 accepts any number of terminated strings.
 */
export function splitStrings(payload: Uint8Array, count: number): string[] | undefined {
  const out: string[] = [];
  let start = 0;
  for (let index = 0; index < payload.length; index++) {
    if (payload[index] === 0) {
      out.push(bytesToString(payload.subarray(start, index)));
      start = index + 1;
    }
  }
  if (start !== payload.length) return undefined;
  if (count >= 0 && out.length !== count) return undefined;
  return out;
}

/**
 * Incremental parser of the xenstore byte stream. Rings and sockets deliver messages in
 * arbitrary pieces (Xen public io/xs_wire.h: the ring is a byte stream; a header or payload may
 * wrap and arrive over several notifications), so bytes are accumulated until a whole message is
 * present. A length over `PAYLOAD_MAX` is a protocol error: the caller drops the connection, as
 * Xen's xenstored does (`read_message`: "Client tried to feed us ... bytes").
 */
export class MessageParser {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private readonly headerView = new DataView(this.header.buffer);
  private headerFill = 0;
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  /** Set once the stream is unusable; no more messages are produced. */
  failed = false;

  /**
   * Consumes bytes, calling `onMessage` for every complete message. Returns false (and sets
   * `failed`) on a protocol error.
   */
  push(bytes: Uint8Array, onMessage: (message: XsMessage) => void): boolean {
    return this.pushSome(bytes, onMessage, () => true) >= 0;
  }

  /**
   * Like `push`, but stops after a message once `canContinue` returns false. Returns the bytes
   * consumed (the caller keeps the rest), or -1 on a protocol error.
   */
  pushSome(
    bytes: Uint8Array,
    onMessage: (message: XsMessage) => void,
    canContinue: () => boolean,
  ): number {
    let offset = 0;
    while (offset < bytes.length && !this.failed) {
      if (this.payload === undefined) {
        const take = Math.min(HEADER_SIZE - this.headerFill, bytes.length - offset);
        this.header.set(bytes.subarray(offset, offset + take), this.headerFill);
        this.headerFill += take;
        offset += take;
        if (this.headerFill < HEADER_SIZE) break;
        const length = this.headerView.getUint32(12, true);
        if (length > PAYLOAD_MAX) {
          this.failed = true;
          return -1;
        }
        this.payload = new Uint8Array(length);
        this.payloadFill = 0;
      }
      const take = Math.min(this.payload.length - this.payloadFill, bytes.length - offset);
      this.payload.set(bytes.subarray(offset, offset + take), this.payloadFill);
      this.payloadFill += take;
      offset += take;
      if (this.payloadFill === this.payload.length) {
        const message: XsMessage = {
          type: this.headerView.getUint32(0, true),
          requestId: this.headerView.getUint32(4, true),
          transactionId: this.headerView.getUint32(8, true),
          payload: this.payload,
        };
        this.payload = undefined;
        this.headerFill = 0;
        onMessage(message);
        if (!canContinue()) break;
      }
    }
    return this.failed ? -1 : offset;
  }

  /** True while a message is partly received. */
  get midMessage(): boolean {
    return this.headerFill > 0;
  }
}
