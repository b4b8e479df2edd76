/**
 * Format-independent operations on byte stores: detect, open, create,
 * describe, convert and check. The Node entry wraps them with file paths
 * (what `kumo disk create|info|convert|check` calls).
 */
import type { ByteStore } from "./byte-store";
import type { DiskImage, ImageFormat } from "./disk-image";
import { DiskImageError } from "./errors";
import type { Inflate } from "./inflate";
import { Qcow2Image } from "./qcow2";
import { RawImage } from "./raw";
import { VhdImage, type VhdSubformat } from "./vhd";

export interface OpenImageOptions {
  /** The format; detected from the contents when absent (raw if nothing else matches). */
  format?: ImageFormat;
  readOnly?: boolean;
  /** Opens a qcow2 backing file by the name stored in the image. */
  openBacking?: (name: string, format: ImageFormat | undefined) => Promise<DiskImage>;
  inflate?: Inflate;
  /** qcow2: L2 tables kept in memory (default 32). */
  l2CacheTables?: number;
}

export interface CreateImageOptions {
  format: ImageFormat;
  /** Virtual size in bytes (a multiple of 512). */
  size: number;
  /** qcow2: 2 or 3 (default 3). */
  qcow2Version?: 2 | 3;
  /** qcow2: cluster size in bytes, a power of two from 512 to 2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** qcow2: backing file name as stored in the image, and its format. */
  backingFile?: string;
  backingFormat?: ImageFormat;
  /** VHD: fixed or dynamic (default dynamic). */
  vhdSubformat?: VhdSubformat;
  /** VHD dynamic: block size in bytes (default 2 MiB). */
  vhdBlockSize?: number;
}

export interface ImageInfo {
  format: ImageFormat;
  virtualSize: number;
  /** Bytes the image file takes (its length; sparse files may use less). */
  fileSize: number;
  /** Bytes the host file system allocated for it (Node: st_blocks * 512), when known. */
  allocatedBytes?: number;
  readOnly: boolean;
  /** qcow2: version, cluster size, backing file; VHD: subformat and block size. */
  qcow2?: Qcow2Image["details"];
  vhd?: VhdImage["details"];
}

export interface CheckResult {
  format: ImageFormat;
  /** Problems that can lose data (qemu-img check "errors"). */
  errors: string[];
  /** Clusters with a refcount but no reference (qemu-img check "leaked clusters"). */
  leaks: number;
  /** True when the image opened and no error was found (leaks are harmless). */
  ok: boolean;
}

export type ProgressCallback = (done: number, total: number) => void;

/** Detects the format from the first bytes and the last sector (VHD keeps its footer there). */
export async function detectFormat(store: ByteStore): Promise<ImageFormat> {
  const size = await store.size();
  const head = new Uint8Array(8);
  await store.read(head, 0);
  if (head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb) return "qcow2";
  const cookie = "conectix";
  const isCookie = (bytes: Uint8Array) => bytes.every((byte, i) => byte === cookie.charCodeAt(i));
  if (isCookie(head)) return "vhd";
  if (size >= 512) {
    const tail = new Uint8Array(8);
    await store.read(tail, Math.floor(size / 512) * 512 - 512);
    if (isCookie(tail)) return "vhd";
  }
  return "raw";
}

export async function openDiskImage(
  store: ByteStore,
  options: OpenImageOptions = {},
): Promise<DiskImage> {
  const format = options.format ?? (await detectFormat(store));
  const readOnly = options.readOnly ?? store.readOnly;
  switch (format) {
    case "raw":
      return RawImage.open(store, readOnly);
    case "qcow2":
      return Qcow2Image.open(store, { ...options, readOnly });
    case "vhd":
      return VhdImage.open(store, { readOnly });
    default:
      throw new DiskImageError(
        "invalid-argument",
        `${store.name}: unknown image format '${format}' (expected raw, qcow2 or vhd)`,
      );
  }
}

/** Writes a new empty image of `options.format` to an empty store. */
export async function createDiskImage(
  store: ByteStore,
  options: CreateImageOptions,
): Promise<void> {
  const { size } = options;
  if (!Number.isSafeInteger(size) || size < 0 || size % 512 !== 0) {
    throw new DiskImageError(
      "invalid-argument",
      `${store.name}: disk size ${size} is not a multiple of 512 bytes`,
    );
  }
  switch (options.format) {
    case "raw":
      return RawImage.create(store, size);
    case "qcow2": {
      const clusterSize = options.clusterSize ?? 65536;
      const clusterBits = Math.log2(clusterSize);
      if (!Number.isInteger(clusterBits)) {
        throw new DiskImageError(
          "invalid-argument",
          `${store.name}: cluster size ${clusterSize} is not a power of two`,
        );
      }
      return Qcow2Image.create(store, {
        size,
        version: options.qcow2Version,
        clusterBits,
        backingFile: options.backingFile,
        backingFormat: options.backingFormat,
      });
    }
    case "vhd":
      return VhdImage.create(store, {
        size,
        subformat: options.vhdSubformat,
        blockSize: options.vhdBlockSize,
      });
    default:
      throw new DiskImageError(
        "invalid-argument",
        `${store.name}: unknown image format '${options.format}' (expected raw, qcow2 or vhd)`,
      );
  }
}

export async function describeDiskImage(image: DiskImage, store: ByteStore): Promise<ImageInfo> {
  const info: ImageInfo = {
    format: image.format,
    virtualSize: image.size,
    fileSize: await store.size(),
    readOnly: image.readOnly,
  };
  if (image instanceof Qcow2Image) info.qcow2 = image.details;
  if (image instanceof VhdImage) info.vhd = image.details;
  return info;
}

/**
 * Copies every sector of `source` to `target` (same virtual size or larger),
 * skipping all-zero chunks so a fresh target stays sparse, and reports
 * progress after each chunk. Flushes the target at the end.
 */
export async function convertDiskImage(
  source: DiskImage,
  target: DiskImage,
  options: { onProgress?: ProgressCallback; chunkSize?: number } = {},
): Promise<void> {
  const chunkSize = options.chunkSize ?? 1024 * 1024;
  if (chunkSize <= 0 || chunkSize % 512 !== 0) {
    throw new DiskImageError(
      "invalid-argument",
      `conversion chunk size ${chunkSize} is not a positive multiple of 512`,
    );
  }
  const total = Math.ceil(source.size / 512) * 512;
  if (target.size < source.size) {
    throw new DiskImageError(
      "invalid-argument",
      `target disk of ${target.size} bytes is smaller than the ${source.size}-byte source`,
    );
  }
  const buffer = new Uint8Array(chunkSize);
  options.onProgress?.(0, total);
  for (let offset = 0; offset < total; offset += chunkSize) {
    const chunk = buffer.subarray(0, Math.min(chunkSize, total - offset));
    await source.read(chunk, offset);
    if (!isZero(chunk)) await target.write(chunk, offset);
    options.onProgress?.(offset + chunk.length, total);
  }
  await target.flush();
}

function isZero(bytes: Uint8Array): boolean {
  const words =
    bytes.length % 4 === 0 && bytes.byteOffset % 4 === 0
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
      : bytes;
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}

/**
 * Checks an image: it must open (headers, checksums, tables in the file);
 * qcow2 refcounts are rebuilt and compared; VHD BAT entries must point
 * inside the file. A corrupt image gives `ok: false` with the reason, not a throw.
 * Closes the store.
 */
export async function checkDiskImage(
  store: ByteStore,
  options: OpenImageOptions & { onProgress?: ProgressCallback } = {},
): Promise<CheckResult> {
  const format = options.format ?? (await detectFormat(store));
  let image: DiskImage;
  try {
    image = await openDiskImage(store, { ...options, format, readOnly: true });
  } catch (error) {
    await store.close();
    if (error instanceof DiskImageError)
      return { format, errors: [error.message], leaks: 0, ok: false };
    throw error;
  }
  const errors: string[] = [];
  let leaks = 0;
  if (image instanceof Qcow2Image) {
    const result = await image.checkRefcounts(options.onProgress);
    errors.push(...result.errors);
    leaks = result.leaks;
  } else if (image instanceof VhdImage) {
    const probe = new Uint8Array(512);
    const blockSize = image.details.blockSize;
    if (blockSize !== null) {
      for (let offset = 0; offset < image.size; offset += blockSize) {
        options.onProgress?.(offset, image.size);
        try {
          await image.read(probe, offset);
        } catch (error) {
          if (!(error instanceof DiskImageError)) throw error;
          errors.push(error.message);
        }
      }
    }
  }
  await image.close();
  return { format, errors, leaks, ok: errors.length === 0 };
}
