/**
 * Finds the ELF kernel inside whatever file the user named: an ELF image
 * (`vmlinux`), a gzip- or xz-compressed ELF, or an x86 `bzImage`, whose
 * setup header (Linux Documentation/arch/x86/boot.rst, boot protocol >= 2.08)
 * gives the compressed payload's place: `payload_offset` (0x248) and
 * `payload_length` (0x24c), relative to the protected-mode code that starts
 * at (setup_sects + 1) * 512. Linux's payload is the stripped vmlinux ELF.
 */

import { isElf } from "./elf";
import { KernelImageError } from "./errors";
import { decompressXz, isXz } from "./xz";

/** What an image turned out to be. */
export type KernelImageKind = "elf" | "gzip" | "xz" | "bzImage+gzip" | "bzImage+xz";

export interface UnpackedKernel {
  readonly kind: KernelImageKind;
  /** The ELF image. */
  readonly elf: Uint8Array;
}

/** x86 boot protocol setup header fields (boot.rst "The Real-Mode Kernel Header"). */
const SETUP_SECTS = 0x1f1;
const HEADER_MAGIC = 0x202; // "HdrS"
const PROTOCOL_VERSION = 0x206;
const PAYLOAD_OFFSET = 0x248;
const PAYLOAD_LENGTH = 0x24c;

function isGzip(bytes: Uint8Array, offset = 0): boolean {
  return bytes[offset] === 0x1f && bytes[offset + 1] === 0x8b;
}

/** Compression formats Linux can use for a bzImage (CONFIG_KERNEL_*), by magic. */
function compressionName(bytes: Uint8Array): string {
  const b = bytes;
  if (b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return "bzip2 (CONFIG_KERNEL_BZIP2)";
  if (b[0] === 0x5d && b[1] === 0x00 && b[2] === 0x00) return "lzma (CONFIG_KERNEL_LZMA)";
  if (b[0] === 0x89 && b[1] === 0x4c && b[2] === 0x5a && b[3] === 0x4f)
    return "lzo (CONFIG_KERNEL_LZO)";
  if (b[0] === 0x02 && b[1] === 0x21 && b[2] === 0x4c && b[3] === 0x18)
    return "lz4 (CONFIG_KERNEL_LZ4)";
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd)
    return "zstd (CONFIG_KERNEL_ZSTD)";
  return "an unknown format";
}

/** True when `bytes` is an x86 bzImage (setup header magic "HdrS"). */
export function isBzImage(bytes: Uint8Array): boolean {
  return (
    bytes.length > PAYLOAD_LENGTH + 4 &&
    bytes[HEADER_MAGIC] === 0x48 &&
    bytes[HEADER_MAGIC + 1] === 0x64 &&
    bytes[HEADER_MAGIC + 2] === 0x72 &&
    bytes[HEADER_MAGIC + 3] === 0x53
  );
}

/** The part of Node's zlib the builder uses. */
interface Zlib {
  gunzipSync(bytes: Uint8Array): Uint8Array;
}

/**
 * Node's zlib where the host has it (`process.getBuiltinModule`, Node
 * 20.16 and later), found at run time so that this module stays
 * browser-safe; else null.
 */
function hostZlib(): Zlib | null {
  const host = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
  const zlib = host.process?.getBuiltinModule?.("node:zlib") as Zlib | undefined;
  return zlib ?? null;
}

/**
 * Inflates gzip: with Node's zlib in one call where there is one (a
 * bzImage's kernel in 15 ms instead of 45: the stream below hands the data
 * over in many small chunks), else with the platform's DecompressionStream
 * (Node >= 18, every current browser).
 */
async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const zlib = hostZlib();
  if (zlib !== null) {
    try {
      const out = zlib.gunzipSync(bytes);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (error) {
      throw new KernelImageError(`corrupt gzip data: ${(error as Error).message}`);
    }
  }
  return gunzipStream(bytes);
}

async function gunzipStream(bytes: Uint8Array): Promise<Uint8Array> {
  // The gzip member ends where its deflate data ends; Linux's payload ends with it
  // (the ISIZE trailer is gzip's own), so the stream sees exactly one member.
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new DecompressionStream("gzip"));
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw new KernelImageError(`corrupt gzip data: ${(error as Error).message}`);
  }
}

function expectElf(bytes: Uint8Array, what: string): Uint8Array {
  if (!isElf(bytes)) throw new KernelImageError(`${what} does not contain an ELF kernel`);
  return bytes;
}

/**
 * Returns the ELF kernel in `image`. Throws `KernelImageError` naming what
 * the file was and what Kumo expected.
 */
export async function unpackKernelImage(image: Uint8Array): Promise<UnpackedKernel> {
  if (isElf(image)) return { kind: "elf", elf: image };
  if (isGzip(image)) return { kind: "gzip", elf: expectElf(await gunzip(image), "the gzip file") };
  if (isXz(image)) return { kind: "xz", elf: expectElf(decompressXz(image), "the xz file") };
  if (!isBzImage(image)) {
    throw new KernelImageError(
      "not a kernel image Kumo can boot: expected an ELF vmlinux (or one compressed with gzip or xz) or an x86 bzImage",
    );
  }
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const version = view.getUint16(PROTOCOL_VERSION, true);
  if (version < 0x208) {
    throw new KernelImageError(
      `bzImage boot protocol ${version >> 8}.${version & 0xff} is older than 2.08 and has no payload fields`,
    );
  }
  const setupSectors = image[SETUP_SECTS] === 0 ? 4 : image[SETUP_SECTS];
  const protectedModeStart = (setupSectors + 1) * 512;
  const payloadStart = protectedModeStart + view.getUint32(PAYLOAD_OFFSET, true);
  const payloadLength = view.getUint32(PAYLOAD_LENGTH, true);
  if (payloadLength === 0 || payloadStart + payloadLength > image.length) {
    throw new KernelImageError(
      `corrupt bzImage: payload (offset ${payloadStart}, length ${payloadLength}) lies outside the ${image.length}-byte file`,
    );
  }
  const payload = image.subarray(payloadStart, payloadStart + payloadLength);
  if (isGzip(payload)) {
    return {
      kind: "bzImage+gzip",
      elf: expectElf(await gunzip(payload), "the bzImage's gzip payload"),
    };
  }
  if (isXz(payload)) {
    // Linux appends the uncompressed size as 4 bytes (scripts/Makefile.lib size_append).
    // It only presizes the output, which grows as needed: cap it so a corrupt value cannot allocate gigabytes.
    const sizeHint = Math.min(view.getUint32(payloadStart + payloadLength - 4, true), 256 << 20);
    return {
      kind: "bzImage+xz",
      elf: expectElf(decompressXz(payload, sizeHint + 4096), "the bzImage's xz payload"),
    };
  }
  throw new KernelImageError(
    `the bzImage's payload is compressed with ${compressionName(payload)}; Kumo reads gzip and xz (CONFIG_KERNEL_GZIP or CONFIG_KERNEL_XZ), or boot the vmlinux ELF`,
  );
}
