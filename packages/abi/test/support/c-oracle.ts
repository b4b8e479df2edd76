/**
 * Asks the C compilers what the Xen public headers say: generates a C file, compiles it for one
 * ABI without linking (`-ffreestanding -c`, so no target libc is needed) and reads back the
 * values the program stored in its own ELF section. This works for every target: the arm64
 * object is never run.
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Abi } from "../../src";

const repoRoot = resolve(import.meta.dirname, "../../../..");

function which(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The compiler command line for an ABI, or a message naming the Debian package that is missing. */
export function compilerFor(abi: Abi): { command: string; args: string[] } | { missing: string } {
  switch (abi) {
    case "x86_64":
      return which("gcc") ? { command: "gcc", args: ["-m64"] } : { missing: "gcc" };
    case "x86_32":
      // -m32 -c needs only gcc's own headers, but gcc-multilib provides the 32-bit stdint.h path.
      return which("gcc") ? { command: "gcc", args: ["-m32"] } : { missing: "gcc-multilib" };
    case "arm64":
      // Debian's aarch64 cross gcc conflicts with gcc-multilib; clang cross-compiles without it.
      if (which("clang-14")) {
        return { command: "clang-14", args: ["--target=aarch64-linux-gnu"] };
      }
      if (which("aarch64-linux-gnu-gcc-12"))
        return { command: "aarch64-linux-gnu-gcc-12", args: [] };
      return { missing: "clang-14 (or gcc-12-aarch64-linux-gnu)" };
  }
}

/**
 * `hvm/start_info.h` is not in Debian's libxen-dev; Linux carries the same public header
 * (include/xen/interface/hvm/start_info.h). Extract it once from linux-source-6.1 into .cache/.
 */
export function startInfoHeader(): string {
  const dir = join(repoRoot, ".cache", "abi");
  const header = join(dir, "hvm-start-info.h");
  if (existsSync(header)) return header;
  const tarball = "/usr/src/linux-source-6.1.tar.xz";
  if (!existsSync(tarball)) {
    throw new Error(`${tarball} is missing: install the Debian package linux-source-6.1`);
  }
  mkdirSync(dir, { recursive: true });
  const member = "linux-source-6.1/include/xen/interface/hvm/start_info.h";
  const text = execFileSync("tar", ["-xJOf", tarball, member], { maxBuffer: 1 << 20 });
  // Test files run in parallel workers: publish the file atomically.
  const partial = `${header}.${process.pid}`;
  writeFileSync(partial, text);
  renameSync(partial, header);
  return header;
}

/** The newest guest interface version the installed headers know (xen-compat.h). */
export function latestInterfaceVersion(): string {
  const text = readFileSync("/usr/include/xen/xen-compat.h", "utf8");
  const match = /#define __XEN_LATEST_INTERFACE_VERSION__\s+(0x[0-9a-fA-F]+)/.exec(text);
  if (!match) throw new Error("no __XEN_LATEST_INTERFACE_VERSION__ in xen/xen-compat.h");
  return match[1];
}

export const XEN_INCLUDES = [
  "stdint.h",
  "stddef.h",
  "xen/xen.h",
  "xen/event_channel.h",
  "xen/grant_table.h",
  "xen/memory.h",
  "xen/vcpu.h",
  "xen/sched.h",
  "xen/version.h",
  "xen/features.h",
  "xen/elfnote.h",
  "xen/errno.h",
  "xen/hvm/hvm_op.h",
  "xen/hvm/params.h",
  "xen/io/protocols.h",
  "xen/io/xs_wire.h",
  "xen/io/console.h",
  "xen/io/ring.h",
  "xen/io/blkif.h",
  "xen/io/netif.h",
  "xen/io/xenbus.h",
];

export function preamble(): string {
  return [
    // Kumo is guest-facing Xen and its own toolstack, so it mirrors the newest interface
    // including the tools-only constants (xen-compat.h, the `__XEN_TOOLS__` blocks).
    "#define __XEN_TOOLS__ 1",
    `#define __XEN_INTERFACE_VERSION__ ${latestInterfaceVersion()}`,
    ...XEN_INCLUDES.map((h) => `#include <${h}>`),
    `#include "${startInfoHeader()}"`,
    "#if defined(__i386__) || defined(__x86_64__)",
    "#include <xen/arch-x86/cpuid.h>",
    "#endif",
    "",
  ].join("\n");
}

/** Reads the bytes of the section `name` from a 32- or 64-bit little-endian ELF object. */
export function elfSection(object: Uint8Array, name: string): Uint8Array {
  const view = new DataView(object.buffer, object.byteOffset, object.byteLength);
  const is64 = object[4] === 2;
  const shoff = is64 ? Number(view.getBigUint64(0x28, true)) : view.getUint32(0x20, true);
  const shentsize = view.getUint16(is64 ? 0x3a : 0x2e, true);
  const shnum = view.getUint16(is64 ? 0x3c : 0x30, true);
  const shstrndx = view.getUint16(is64 ? 0x3e : 0x32, true);
  const header = (i: number) => {
    const base = shoff + i * shentsize;
    return {
      name: view.getUint32(base, true),
      offset: is64
        ? Number(view.getBigUint64(base + 0x18, true))
        : view.getUint32(base + 0x10, true),
      size: is64 ? Number(view.getBigUint64(base + 0x20, true)) : view.getUint32(base + 0x14, true),
    };
  };
  const strtab = header(shstrndx);
  const decoder = new TextDecoder();
  for (let i = 0; i < shnum; i++) {
    const section = header(i);
    let end = strtab.offset + section.name;
    while (object[end] !== 0) end++;
    if (decoder.decode(object.subarray(strtab.offset + section.name, end)) === name) {
      return object.subarray(section.offset, section.offset + section.size);
    }
  }
  throw new Error(`no section ${name} in the object file`);
}

/**
 * Compiles `expressions` (C integer constant expressions) for `abi` and returns their values,
 * in order. Each is stored as a 64-bit integer in section `.kumo`.
 */
/** Stored for a macro that this ABI's headers do not define (see `OracleItem.ifdef`). */
export const UNDEFINED = -0x7eadbeefcafe0001n;

/** A C constant expression, optionally only evaluated `#ifdef` a macro (else `UNDEFINED`). */
export type OracleItem = string | { readonly expr: string; readonly ifdef: string };

export function evaluate(abi: Abi, expressions: readonly OracleItem[], extra = ""): bigint[] {
  const compiler = compilerFor(abi);
  if ("missing" in compiler) throw new Error(`no compiler for ${abi}: install ${compiler.missing}`);
  const dir = mkdtempSync(join(tmpdir(), `kumo-abi-${abi}-`));
  try {
    const source = join(dir, "oracle.c");
    const object = join(dir, "oracle.o");
    const body = expressions
      .map((e) =>
        typeof e === "string"
          ? `  (long long)(${e}),`
          : `#ifdef ${e.ifdef}\n  (long long)(${e.expr}),\n#else\n  ${UNDEFINED}LL,\n#endif`,
      )
      .join("\n");
    writeFileSync(
      source,
      `${preamble()}${extra}\n__attribute__((section(".kumo"), used))\nconst long long kumo_values[] = {\n${body}\n};\n`,
    );
    execFileSync(
      compiler.command,
      [...compiler.args, "-ffreestanding", "-w", "-c", source, "-o", object],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const bytes = elfSection(new Uint8Array(readFileSync(object)), ".kumo");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const values: bigint[] = [];
    for (let i = 0; i < expressions.length; i++) values.push(view.getBigInt64(i * 8, true));
    return values;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compiles and runs a hosted x86_64 program (for strings, which a value section cannot hold). */
export function runHosted(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "kumo-abi-host-"));
  try {
    const source = join(dir, "host.c");
    const binary = join(dir, "host");
    // xs_wire.h declares xsd_errors[] only when <errno.h> came first.
    writeFileSync(
      source,
      `#include <errno.h>\n${preamble()}#include <stdio.h>\nint main(void) {\n${body}\nreturn 0;\n}\n`,
    );
    execFileSync("gcc", ["-w", source, "-o", binary], { stdio: ["ignore", "ignore", "pipe"] });
    return execFileSync(binary, { encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Names of the object-like macros the headers define for `abi` (function-like ones left out). */
export function macroNames(abi: Abi): Set<string> {
  const compiler = compilerFor(abi);
  if ("missing" in compiler) throw new Error(`no compiler for ${abi}: install ${compiler.missing}`);
  const dir = mkdtempSync(join(tmpdir(), `kumo-abi-macros-${abi}-`));
  try {
    const source = join(dir, "macros.c");
    writeFileSync(source, preamble());
    const output = execFileSync(
      compiler.command,
      [...compiler.args, "-ffreestanding", "-E", "-dM", source],
      { encoding: "utf8", maxBuffer: 64 << 20 },
    );
    const names = new Set<string>();
    for (const match of output.matchAll(/^#define ([A-Za-z_][A-Za-z0-9_]*)(\(?)/gm)) {
      if (match[2] === "") names.add(match[1]);
    }
    return names;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
