/**
 * Runs test cases on the real processor: builds harness.c with
 * `gcc -m32 -nostdlib -static` and executes it natively (x86 hosts) or under
 * Debian's qemu-i386 (`KUMO_ORACLE=qemu`, or automatically elsewhere).
 * Both the binary and the results are cached under
 * node_modules/.cache/kumo-oracle, keyed by a hash of everything they
 * depend on, so reruns skip the host entirely.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import * as layout from "./layout";

const HERE = import.meta.dirname;
const CACHE = resolve(HERE, "../../node_modules/.cache/kumo-oracle");
const GCC_FLAGS = [
  "-m32",
  "-nostdlib",
  "-static",
  "-O2",
  "-ffreestanding",
  "-fno-builtin",
  "-fno-pic",
  "-no-pie",
  "-fno-stack-protector",
  "-fno-tree-loop-distribute-patterns",
  "-Wall",
  "-Werror",
];

export type OracleKind = "native" | "qemu";

/** The oracle this host uses: `KUMO_ORACLE`, else native on x86 Linux, else qemu-i386. */
export function defaultOracle(): OracleKind {
  const chosen = process.env.KUMO_ORACLE;
  if (chosen === "native" || chosen === "qemu") return chosen;
  if (chosen) throw new Error(`KUMO_ORACLE must be "native" or "qemu", not "${chosen}"`);
  return process.platform === "linux" && (process.arch === "x64" || process.arch === "ia32")
    ? "native"
    : "qemu";
}

function hash(...parts: (string | Uint8Array)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 32);
}

/** Checks that harness.c and layout.ts agree on every shared number. */
function checkLayout(source: string): void {
  const expected: Record<string, number> = {
    DATA_BASE: layout.DATA_BASE,
    DATA_SIZE: layout.DATA_SIZE,
    CODE_BASE: layout.CODE_BASE,
    CODE_OFFSET: layout.CODE_OFFSET,
    CODE_MAX: layout.CODE_MAX,
    PATCH_MAX: layout.PATCH_MAX,
    SEL_CODE16: layout.SEL_CODE16,
    SEL_DATA16: layout.SEL_DATA16,
    SEL_CODE32: layout.SEL_CODE32,
    SEL_DATA32: layout.SEL_DATA32,
    MAGIC: layout.MAGIC,
    CASE_SIZE: layout.CASE_SIZE,
    RESULT_SIZE: layout.RESULT_SIZE,
    MAX_DIFFS: layout.MAX_DIFFS,
  };
  for (const [name, value] of Object.entries(expected)) {
    const match = new RegExp(`#define ${name} (0x[0-9a-f]+|\\d+)u`).exec(source);
    if (!match || Number(match[1]) !== value) {
      throw new Error(`harness.c and layout.ts disagree on ${name}`);
    }
  }
}

/** Builds (or finds in the cache) the harness binary; returns its path. */
export function buildHarness(): string {
  const sourcePath = join(HERE, "harness.c");
  const source = readFileSync(sourcePath, "utf8");
  checkLayout(source);
  const key = hash(source, GCC_FLAGS.join(" "));
  const binary = join(CACHE, `harness-${key}`);
  if (existsSync(binary)) return binary;
  mkdirSync(CACHE, { recursive: true });
  const temporary = `${binary}.${process.pid}`;
  execFileSync("gcc", [...GCC_FLAGS, "-o", temporary, sourcePath], { stdio: "pipe" });
  renameSync(temporary, binary);
  return binary;
}

export interface OracleRun {
  results: layout.TestResult[];
  kind: OracleKind;
  /** True when the results came from the cache. */
  cached: boolean;
}

/** Runs the cases on the host (or qemu-i386) and decodes the results. */
export function runOnHost(
  pristine: Uint8Array,
  cases: readonly layout.TestCase[],
  kind: OracleKind = defaultOracle(),
): OracleRun {
  const binary = buildHarness();
  const input = layout.encodeCases(pristine, cases);
  const machine = kind === "native" ? (cpus()[0]?.model ?? "") : qemuVersion();
  const key = hash(input, binary, kind, machine);
  const cachePath = join(CACHE, `results-${key}`);
  const trapnoKnown = kind === "native";
  if (existsSync(cachePath)) {
    const bytes = new Uint8Array(readFileSync(cachePath));
    return { results: layout.decodeResults(bytes, cases.length, trapnoKnown), kind, cached: true };
  }
  const command = kind === "native" ? binary : "qemu-i386";
  const args = kind === "native" ? [] : [binary];
  const run = spawnSync(command, args, { input, maxBuffer: 1 << 30 });
  if (run.error) throw run.error;
  if (run.status !== 0) {
    throw new Error(`${command} exited with ${run.status}: ${run.stderr.toString()}`);
  }
  const bytes = new Uint8Array(run.stdout);
  const results = layout.decodeResults(bytes, cases.length, trapnoKnown);
  mkdirSync(CACHE, { recursive: true });
  const temporary = `${cachePath}.${process.pid}`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, cachePath);
  return { results, kind, cached: false };
}

function qemuVersion(): string {
  return execFileSync("qemu-i386", ["--version"], { encoding: "utf8" }).split("\n")[0];
}
