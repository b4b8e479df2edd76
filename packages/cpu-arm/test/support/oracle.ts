/**
 * Differential oracle: the same A64 code runs under Debian's `qemu-aarch64`
 * (user mode, package qemu-user) and under Kumo, both linked at the same
 * addresses, and both dump their registers (x0-x30, NZCV) into a data area
 * that is then compared byte for byte with the rest of that area (memory
 * written by the code). Only the tail differs: qemu writes the area to
 * stdout and exits, Kumo stops at `wfi`.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGuestMemory } from "@kumo/mmu";
import { Arm64Cpu } from "../../src/cpu";
import { assemble } from "./assemble";
import { CODE, DATA, RAM_BASE } from "./machine";

/** The data area both sides dump: 64 KiB at DATA; SP starts at its end and the dump sits just below. */
export const AREA_SIZE = 0x10000;
const cacheDirectory = join(tmpdir(), "kumo-cpu-arm-oracle");

/** Bytes at the start of the area: a fixed pattern that code may load from. */
export const PATTERN_SIZE = 0x1000;

export function pattern(): Uint8Array {
  const bytes = new Uint8Array(PATTERN_SIZE);
  let seed = 0x1234567;
  for (let i = 0; i < bytes.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0;
    bytes[i] = seed >>> 24;
  }
  return bytes;
}

function movImmediate(register: string, value: number): string {
  const lines = [`movz ${register}, #${value & 0xffff}`];
  lines.push(`movk ${register}, #${(value >>> 16) & 0xffff}, lsl #16`);
  return lines.join("\n");
}

const prologue = `${movImmediate("x9", DATA + AREA_SIZE)}\nmov sp, x9\nmov x9, #0\nmsr nzcv, xzr\n`;

const dump = [
  "sub sp, sp, #256",
  ...Array.from({ length: 15 }, (_, i) => `stp x${2 * i}, x${2 * i + 1}, [sp, #${16 * i}]`),
  "str x30, [sp, #240]",
  "mrs x0, nzcv",
  "str x0, [sp, #248]",
].join("\n");

function patternData(): string {
  const bytes = pattern();
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16)
    lines.push(`.byte ${Array.from(bytes.slice(i, i + 16)).join(",")}`);
  return lines.join("\n");
}

export function hasOracle(): boolean {
  try {
    execFileSync("qemu-aarch64", ["--version"], { stdio: "ignore" });
    execFileSync("aarch64-linux-gnu-ld", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The 64 KiB area after running `body` under qemu-aarch64. */
export function qemuArea(body: string): Uint8Array {
  const text = `.text\n.globl _start\n_start:\n${prologue}${body}\n${dump}\n${movImmediate("x1", DATA)}\nmov x0, #1\nmov x2, #${AREA_SIZE}\nmov x8, #64\nsvc #0\nmov x0, #0\nmov x8, #93\nsvc #0\n.data\n${patternData()}\n.skip ${AREA_SIZE - PATTERN_SIZE}\n`;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 24);
  mkdirSync(cacheDirectory, { recursive: true });
  const output = join(cacheDirectory, `${hash}.out`);
  if (!existsSync(output)) {
    const source = join(cacheDirectory, `${hash}.s`);
    const object = join(cacheDirectory, `${hash}.o`);
    const elf = join(cacheDirectory, `${hash}.elf`);
    writeFileSync(source, text);
    execFileSync("aarch64-linux-gnu-as", ["-o", object, source]);
    execFileSync("aarch64-linux-gnu-ld", [
      "-static",
      `-Ttext=0x${CODE.toString(16)}`,
      `-Tdata=0x${DATA.toString(16)}`,
      "-o",
      elf,
      object,
    ]);
    const result = execFileSync("qemu-aarch64", [elf], { maxBuffer: 1 << 24 });
    writeFileSync(`${output}.tmp`, result);
    writeFileSync(output, readFileSync(`${output}.tmp`));
  }
  return new Uint8Array(readFileSync(output));
}

/** The 64 KiB area after running `body` on Kumo. */
export function kumoArea(body: string): { area: Uint8Array; cpu: Arm64Cpu } {
  const code = assemble(`${prologue}${body}\n${dump}\nwfi`);
  const memory = createGuestMemory({ ramSize: 1 << 20, ramBase: RAM_BASE });
  memory.writeBytes(CODE, code);
  memory.writeBytes(DATA, pattern());
  const cpu = new Arm64Cpu({ memory });
  cpu.pc = CODE;
  // VBAR_EL1 points at a wfi: an unexpected exception stops at once instead of running through unmapped vectors.
  memory.write32(DATA + AREA_SIZE + 0x200, 0xd503207f);
  cpu.writeSystemRegister("VBAR_EL1", DATA + AREA_SIZE);
  // FP/SIMD enabled at EL0 and EL1 (CPACR_EL1.FPEN = 0b11), as Linux leaves it for a user task that uses FP.
  cpu.writeSystemRegister("CPACR_EL1", 3 << 20);
  const reason = cpu.run(2_000_000);
  const [elr] = cpu.readSystemRegister("ELR_EL1");
  if (reason !== 1 || cpu.pc !== BigInt(CODE + code.length)) {
    throw new Error(
      `Kumo did not reach the final wfi: exit ${reason}, pc 0x${cpu.pc.toString(16)}, ESR 0x${cpu.readSystemRegister("ESR_EL1")[0].toString(16)}, ELR 0x${elr.toString(16)} (word 0x${memory.read32(elr).toString(16)})`,
    );
  }
  const area = new Uint8Array(AREA_SIZE);
  for (let i = 0; i < AREA_SIZE; i++) area[i] = memory.read8(DATA + i);
  return { area, cpu };
}

/** Describes the first differences between two areas (register names for the dump slots). */
export function describeDifferences(expected: Uint8Array, actual: Uint8Array, limit = 8): string[] {
  const differences: string[] = [];
  const dumpStart = AREA_SIZE - 256;
  const view = (bytes: Uint8Array, offset: number) =>
    new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(offset, true).toString(16);
  for (let offset = 0; offset < AREA_SIZE && differences.length < limit; offset += 8) {
    let same = true;
    for (let i = 0; i < 8; i++) if (expected[offset + i] !== actual[offset + i]) same = false;
    if (same) continue;
    const slot = (offset - dumpStart) / 8;
    const name =
      offset >= dumpStart
        ? slot === 31
          ? "nzcv"
          : `x${slot}`
        : `memory +0x${offset.toString(16)}`;
    differences.push(`${name}: qemu 0x${view(expected, offset)} kumo 0x${view(actual, offset)}`);
  }
  return differences;
}
