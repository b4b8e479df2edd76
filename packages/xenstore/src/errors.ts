import { Errno, type XsdError, XsdErrors } from "@kumo/abi";

export type { XsdError };

// `@kumo/xenstore` and `@kumo/xenstore/node` are bundled separately, so each carries its own
// copy of these classes; a registered symbol brands instances so `instanceof` works across both.
const XENSTORE_ERROR = Symbol.for("@kumo/xenstore.XenstoreError");
const USAGE_ERROR = Symbol.for("@kumo/xenstore.XenstoreUsageError");

function branded(value: unknown, brand: symbol): boolean {
  return typeof value === "object" && value !== null && brand in value;
}

/**
 * A request that xenstored refused. `code` is one of the error names of Xen public
 * io/xs_wire.h `xsd_errors[]`, which is what travels in an XS_ERROR reply.
 */
export class XenstoreError extends Error {
  readonly code: XsdError;
  readonly errno: number;
  constructor(code: XsdError, message?: string) {
    super(message ?? code);
    this.name = "XenstoreError";
    this.code = code;
    this.errno = Errno[code];
    Object.defineProperty(this, XENSTORE_ERROR, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, XENSTORE_ERROR);
  }
}

/** Maps a reply's error string to a known name; like Linux xenbus_xs.c, unknown names are EINVAL. */
export function errorCode(name: string): XsdError {
  return (XsdErrors as readonly string[]).includes(name) ? (name as XsdError) : "EINVAL";
}

/** A user of the API got something wrong (bad argument, closed client). */
export class XenstoreUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XenstoreUsageError";
    Object.defineProperty(this, USAGE_ERROR, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(value, USAGE_ERROR);
  }
}
