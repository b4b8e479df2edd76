/**
 * Node.js side of @kumo/blkback: disk images in files (fs file handles, fsync
 * for flush, sparse creation) and the path-level operations the toolstack's
 * `kumo disk create|info|convert|check` calls.
 */
import { constants, type FileHandle, open, stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { inflateRawSync, constants as zlibConstants } from "node:zlib";
import type { ByteStore } from "./image/byte-store";
import type { DiskImage, ImageFormat } from "./image/disk-image";
import { DiskImageError } from "./image/errors";
import {
  type CheckResult,
  type CreateImageOptions,
  checkDiskImage,
  convertDiskImage,
  createDiskImage,
  describeDiskImage,
  type ImageInfo,
  type OpenImageOptions,
  openDiskImage,
  type ProgressCallback,
} from "./image/images";
import type { Inflate } from "./image/inflate";

/** A file as a ByteStore; `flush` is fdatasync(2). */
export class NodeFileStore implements ByteStore {
  private constructor(
    private readonly handle: FileHandle,
    readonly name: string,
    readonly readOnly: boolean,
  ) {}

  static async open(
    path: string,
    options: { readOnly?: boolean; create?: boolean } = {},
  ): Promise<NodeFileStore> {
    const readOnly = options.readOnly ?? false;
    const flags = readOnly
      ? constants.O_RDONLY
      : constants.O_RDWR | (options.create ? constants.O_CREAT | constants.O_EXCL : 0);
    let handle: FileHandle;
    try {
      handle = await open(path, flags, 0o644);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === "ENOENT"
          ? "does not exist"
          : code === "EEXIST"
            ? "exists already"
            : code === "EACCES"
              ? "is not accessible"
              : `cannot be opened (${code})`;
      throw new DiskImageError("invalid-argument", `${path}: image file ${why}`);
    }
    return new NodeFileStore(handle, path, readOnly);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async read(buffer: Uint8Array, offset: number): Promise<number> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesRead } = await this.handle.read(
        buffer,
        done,
        buffer.length - done,
        offset + done,
      );
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    buffer.fill(0, done);
    return done;
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(
        data,
        done,
        data.length - done,
        offset + done,
      );
      done += bytesWritten;
    }
  }

  async truncate(size: number): Promise<void> {
    await this.handle.truncate(size);
  }

  async flush(): Promise<void> {
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** zlib's raw inflate, tolerant of the sector padding after a qcow2 compressed cluster. */
export const zlibInflate: Inflate = async (input, outputSize) => {
  try {
    const output = inflateRawSync(input, {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      windowBits: 15,
    });
    return output.length >= outputSize
      ? new Uint8Array(output.buffer, output.byteOffset, outputSize)
      : null;
  } catch {
    return null;
  }
};

export interface OpenImageFileOptions {
  format?: ImageFormat;
  readOnly?: boolean;
  l2CacheTables?: number;
}

/**
 * Opens an image file. A qcow2 backing file is opened read-only, its name
 * taken relative to the image's folder (as qemu does), recursively.
 */
export async function openImage(
  path: string,
  options: OpenImageFileOptions = {},
): Promise<DiskImage> {
  return openWithChain(path, options, 0);
}

async function openWithChain(
  path: string,
  options: OpenImageFileOptions,
  depth: number,
): Promise<DiskImage> {
  if (depth > 16)
    throw new DiskImageError("corrupt", `${path}: backing chain deeper than 16 images (a loop?)`);
  const store = await NodeFileStore.open(path, { readOnly: options.readOnly ?? false });
  try {
    return await openDiskImage(store, imageOptions(path, options, depth));
  } catch (error) {
    await store.close();
    throw error;
  }
}

function imageOptions(
  path: string,
  options: OpenImageFileOptions,
  depth: number,
): OpenImageOptions {
  return {
    format: options.format,
    readOnly: options.readOnly,
    l2CacheTables: options.l2CacheTables,
    inflate: zlibInflate,
    openBacking: (name, format) =>
      openWithChain(
        isAbsolute(name) ? name : resolve(dirname(path), name),
        { format, readOnly: true },
        depth + 1,
      ),
  };
}

/** `kumo disk create`: a new image file (which must not exist yet). */
export async function createImage(path: string, options: CreateImageOptions): Promise<void> {
  const store = await NodeFileStore.open(path, { create: true });
  try {
    await createDiskImage(store, options);
  } finally {
    await store.close();
  }
}

/** `kumo disk info`: format, sizes and format details of an image file. */
export async function imageInfo(
  path: string,
  options: { format?: ImageFormat } = {},
): Promise<ImageInfo> {
  const image = await openImage(path, { format: options.format, readOnly: true });
  try {
    const store = await NodeFileStore.open(path, { readOnly: true });
    try {
      const info = await describeDiskImage(image, store);
      const stats = await stat(path);
      info.fileSize = stats.size;
      info.allocatedBytes = stats.blocks * 512;
      return info;
    } finally {
      await store.close();
    }
  } finally {
    await image.close();
  }
}

export interface ConvertImageOptions extends Omit<CreateImageOptions, "size" | "format"> {
  /** Target format. */
  format: ImageFormat;
  /** Source format (detected when absent). */
  sourceFormat?: ImageFormat;
  onProgress?: ProgressCallback;
}

/** `kumo disk convert`: copies a disk into a new image file of another (or the same) format. */
export async function convertImage(
  source: string,
  target: string,
  options: ConvertImageOptions,
): Promise<void> {
  const input = await openImage(source, { format: options.sourceFormat, readOnly: true });
  try {
    const size = Math.ceil(input.size / 512) * 512;
    const { onProgress, sourceFormat: _, ...create } = options;
    await createImage(target, { ...create, size });
    const output = await openImage(target, { format: options.format });
    try {
      await convertDiskImage(input, output, { onProgress });
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** `kumo disk check`: a corrupt image gives `ok: false` and the reasons. */
export async function checkImage(
  path: string,
  options: { format?: ImageFormat; onProgress?: ProgressCallback } = {},
): Promise<CheckResult> {
  const store = await NodeFileStore.open(path, { readOnly: true });
  return checkDiskImage(store, {
    ...imageOptions(path, { format: options.format, readOnly: true }, 0),
    onProgress: options.onProgress,
  });
}
