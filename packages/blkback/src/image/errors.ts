/**
 * Typed errors for disk images. A corrupt or truncated image, an unsupported
 * feature or a misuse of the API is a user's mistake (docs/style.md: a typed
 * error that says what was wrong, where, and what was expected), never a
 * bare `Error` or a `RangeError` out of a `DataView`.
 */

export type DiskImageErrorCode =
  /** A structure in the image is inconsistent (bad magic, checksum, pointer). */
  | "corrupt"
  /** The image ends before a structure it references. */
  | "truncated"
  /** A valid image uses a feature Kumo does not implement. */
  | "unsupported"
  /** A write, discard or resize to an image opened read-only. */
  | "read-only"
  /** A request outside the virtual disk. */
  | "out-of-range"
  /** A request whose offset or length is not a multiple of 512. */
  | "unaligned"
  /** A bad option passed by the caller (size, cluster size, ...). */
  | "invalid-argument";

export class DiskImageError extends Error {
  override readonly name = "DiskImageError";
  constructor(
    readonly code: DiskImageErrorCode,
    message: string,
    /** The byte offset in the image file the problem was found at, when there is one. */
    readonly fileOffset?: number,
  ) {
    super(message);
  }
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
