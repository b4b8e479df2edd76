/**
 * `kumo disk create|info|convert|check`: disk image tools in the manner of
 * qemu-img(1) (same argument order, `-f` for the image's format, `-O` for
 * convert's output format, `-o` for format options, sizes with k/M/G/T
 * suffixes), over @kumo/blkback's raw, qcow2 and VHD code. `vpc` is accepted
 * for VHD, as qemu-img calls it.
 */

import { resolve } from "node:path";
import type { CheckResult, CreateImageOptions, ImageFormat, ImageInfo } from "@kumo/blkback";
import { DiskImageError } from "@kumo/blkback";
import { checkImage, convertImage, createImage, imageInfo } from "@kumo/blkback/node";
import type { CommandSpec } from "./commands";

export interface DiskIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly cwd: string;
}

/** A wrong argument: the caller turns it into a usage error (exit status 2). */
export class DiskUsageError extends Error {
  override readonly name = "DiskUsageError";
}

/** The image could not be created, read or converted, or check found errors (exit status 1). */
export class DiskCommandError extends Error {
  override readonly name = "DiskCommandError";
}

export const diskCommandSpec: CommandSpec = {
  name: "disk",
  arguments: "create <file> <size> | info <file> | convert <in> <out> | check <file>",
  summary: "create, inspect, convert and check disk images (raw, qcow2, vhd)",
  minArguments: 2,
  maxArguments: 3,
  details:
    "Sizes take a k, M, G or T suffix (powers of 1024). `-f` is the image's format (create: the new " +
    "image's, default raw; otherwise detected when absent); `-O` is convert's output format (default raw). " +
    "Format options with `-o`: qcow2 compat=0.10|1.1, cluster_size=<size>, backing_file=<path>, " +
    "backing_fmt=<fmt>; vhd subformat=dynamic|fixed, block_size=<size>. Convert and check show progress " +
    "on standard error (a bar on a terminal, percent lines otherwise) unless -q. Exit status: 0 ok, 1 the " +
    "command failed or check found errors, 2 bad usage.",
  options: [
    { name: "format", short: "f", type: "string", value: "FMT", help: "image format" },
    {
      name: "output-format",
      short: "O",
      type: "string",
      value: "FMT",
      help: "convert: output format",
    },
    { name: "options", short: "o", type: "string", value: "OPTS", help: "format options" },
    { name: "quiet", short: "q", type: "boolean", help: "no progress display" },
    { name: "json", type: "boolean", help: "info, check: print JSON" },
  ],
};

type Values = Record<string, string | boolean | undefined>;

const SUFFIXES: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/** qemu-img's size syntax: a number with an optional k/M/G/T suffix (binary units). */
export function parseImageSize(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)([bkmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (match === null) {
    throw new DiskUsageError(`"${text}" is not a size (e.g. 512, 64M, 1.5G, 2T)`);
  }
  const bytes = Number(match[1]) * SUFFIXES[match[2].toLowerCase()];
  if (!Number.isSafeInteger(Math.round(bytes)) || bytes <= 0) {
    throw new DiskUsageError(`size "${text}" is out of range`);
  }
  if (bytes % 512 !== 0) {
    throw new DiskUsageError(`size "${text}" is not a multiple of 512 bytes (a sector)`);
  }
  return bytes;
}

function parseFormat(text: string | boolean | undefined, what: string): ImageFormat | undefined {
  if (text === undefined || typeof text === "boolean") return undefined;
  switch (text) {
    case "raw":
    case "qcow2":
    case "vhd":
      return text;
    case "vpc":
      return "vhd";
    default:
      throw new DiskUsageError(`${what} "${text}" is not supported (raw, qcow2 or vhd)`);
  }
}

function parseOptions(
  text: string | boolean | undefined,
  format: ImageFormat,
): Partial<CreateImageOptions> {
  const result: Partial<CreateImageOptions> = {};
  if (typeof text !== "string" || text === "") return result;
  for (const item of text.split(",")) {
    const equals = item.indexOf("=");
    const key = equals < 0 ? item : item.slice(0, equals);
    const value = equals < 0 ? "" : item.slice(equals + 1);
    const wrong = () => new DiskUsageError(`option "${item}" is not valid for ${format}`);
    if (format === "qcow2") {
      if (key === "compat" && (value === "0.10" || value === "1.1")) {
        result.qcow2Version = value === "0.10" ? 2 : 3;
      } else if (key === "cluster_size") {
        result.clusterSize = parseImageSize(value);
      } else if (key === "backing_file" && value !== "") {
        // Stored as given and resolved relative to the image when opened, as qemu-img does.
        result.backingFile = value;
      } else if (key === "backing_fmt") {
        result.backingFormat = parseFormat(value, "backing format");
      } else {
        throw wrong();
      }
    } else if (format === "vhd") {
      if (key === "subformat" && (value === "dynamic" || value === "fixed")) {
        result.vhdSubformat = value;
      } else if (key === "block_size") {
        result.vhdBlockSize = parseImageSize(value);
      } else {
        throw wrong();
      }
    } else {
      throw wrong();
    }
  }
  return result;
}

function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0);
  return `${text} ${units[unit]}`;
}

/** A progress display on stderr: a redrawn bar on a TTY, a line per 10 % otherwise. */
function progress(io: DiskIo, label: string, quiet: boolean) {
  let lastShown = -1;
  const tty = io.stderr.isTTY === true;
  return {
    update(done: number, total: number) {
      if (quiet) return;
      const percent = total > 0 ? Math.floor((done * 100) / total) : 100;
      if (tty) {
        if (percent === lastShown) return;
        lastShown = percent;
        const width = 40;
        const filled = Math.round((percent * width) / 100);
        io.stderr.write(
          `\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${String(percent).padStart(3)}%`,
        );
      } else {
        const step = Math.floor(percent / 10) * 10;
        if (step <= lastShown) return;
        lastShown = step;
        io.stderr.write(`${label}: ${step}%\n`);
      }
    },
    end() {
      if (!quiet && tty && lastShown >= 0) io.stderr.write("\n");
    },
  };
}

function describeInfo(path: string, info: ImageInfo): string {
  const rows: [string, string][] = [
    ["image", path],
    ["file format", info.format],
    ["virtual size", `${formatSize(info.virtualSize)} (${info.virtualSize} bytes)`],
    ["file size", `${formatSize(info.fileSize)} (${info.fileSize} bytes)`],
  ];
  if (info.allocatedBytes !== undefined) rows.push(["disk size", formatSize(info.allocatedBytes)]);
  if (info.qcow2) {
    const q = info.qcow2;
    rows.push(["cluster_size", String(q.clusterSize)]);
    rows.push(["compat", q.version === 2 ? "0.10" : "1.1"]);
    rows.push(["refcount bits", String(q.refcountBits)]);
    if (q.backingFile !== null) {
      rows.push(["backing file", q.backingFile]);
      if (q.backingFormat !== null) rows.push(["backing file format", q.backingFormat]);
    }
    if (q.snapshots > 0) rows.push(["snapshots", String(q.snapshots)]);
    if (q.dirty) rows.push(["dirty", "yes (not closed cleanly)"]);
    if (q.corruptFlag) rows.push(["corrupt", "yes"]);
  }
  if (info.vhd) {
    const v = info.vhd;
    rows.push(["subformat", v.subformat]);
    if (v.blockSize !== null) rows.push(["block size", String(v.blockSize)]);
    rows.push(["creator", v.creatorApp.trim()]);
    rows.push([
      "geometry",
      `${v.geometry.cylinders}/${v.geometry.heads}/${v.geometry.sectorsPerTrack} (CHS)`,
    ]);
  }
  return `${rows.map(([key, value]) => `${key}: ${value}`).join("\n")}\n`;
}

function describeCheck(path: string, result: CheckResult): string {
  const lines = result.errors.map((error) => `ERROR ${error}`);
  if (result.errors.length === 0) lines.push(`No errors were found on the image ${path}.`);
  else lines.push(`${result.errors.length} errors were found on the image ${path}.`);
  if (result.leaks > 0) {
    lines.push(
      `${result.leaks} leaked clusters were found on the image.`,
      "This means waste of disk space, but no harm to data.",
    );
  }
  return `${lines.join("\n")}\n`;
}

const argumentCounts: Readonly<Record<string, number>> = {
  create: 3,
  info: 2,
  convert: 3,
  check: 2,
};

/** Runs one `kumo disk` operation; returns the exit status. */
export async function runDiskCommand(
  values: Values,
  positionals: readonly string[],
  io: DiskIo,
): Promise<number> {
  const [operation, ...args] = positionals;
  const expected = argumentCounts[operation];
  if (expected === undefined) {
    throw new DiskUsageError(`unknown operation "${operation}" (create, info, convert or check)`);
  }
  if (positionals.length !== expected) {
    throw new DiskUsageError(
      `${operation} takes ${expected - 1} argument${expected === 2 ? "" : "s"}: ${diskCommandSpec.arguments.split(" | ").find((usage) => usage.startsWith(operation))}`,
    );
  }
  const quiet = values.quiet === true;
  const path = (name: string) => resolve(io.cwd, name);
  try {
    switch (operation) {
      case "create": {
        const format = parseFormat(values.format, "format") ?? "raw";
        const size = parseImageSize(args[1]);
        const options = parseOptions(values.options, format);
        await createImage(path(args[0]), { ...options, format, size });
        if (!quiet) {
          io.stdout.write(`Formatting '${args[0]}', fmt=${format} size=${size}\n`);
        }
        return 0;
      }
      case "info": {
        const info = await imageInfo(path(args[0]), {
          format: parseFormat(values.format, "format"),
        });
        io.stdout.write(
          values.json ? `${JSON.stringify(info, null, 2)}\n` : describeInfo(args[0], info),
        );
        return 0;
      }
      case "convert": {
        const format = parseFormat(values["output-format"], "output format") ?? "raw";
        const bar = progress(io, "convert", quiet);
        try {
          await convertImage(path(args[0]), path(args[1]), {
            ...parseOptions(values.options, format),
            format,
            sourceFormat: parseFormat(values.format, "format"),
            onProgress: (done, total) => bar.update(done, total),
          });
        } finally {
          bar.end();
        }
        return 0;
      }
      default: {
        const bar = progress(io, "check", quiet);
        let result: CheckResult;
        try {
          result = await checkImage(path(args[0]), {
            format: parseFormat(values.format, "format"),
            onProgress: (done, total) => bar.update(done, total),
          });
        } finally {
          bar.end();
        }
        io.stdout.write(
          values.json ? `${JSON.stringify(result, null, 2)}\n` : describeCheck(args[0], result),
        );
        return result.ok ? 0 : 1;
      }
    }
  } catch (error) {
    if (error instanceof DiskUsageError) throw error;
    if (error instanceof DiskImageError) {
      throw new DiskCommandError(`disk ${operation}: ${error.message}`);
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new DiskCommandError(`disk ${operation}: the output file exists already`);
    }
    if (code !== undefined) {
      throw new DiskCommandError(`disk ${operation}: ${(error as Error).message}`);
    }
    throw error;
  }
}
