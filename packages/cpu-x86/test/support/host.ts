import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFlatCpu, runUntilHalt } from "../../src/test/index";

/**
 * Runs the same instruction snippets on the host processor (a 32-bit Linux
 * ELF built with nasm + ld, executed natively) and on Kumo's CPU, and
 * returns both results, so that unit tests compare against the real machine
 * instead of hand-copied values.
 */
export interface HostCase {
  /** nasm source; may use the 64-byte buffer `buf` and the stack. */
  code: string;
  /** EAX ECX EDX EBX (ESP ignored) EBP ESI EDI. */
  regs: number[];
  /** Arithmetic flags and DF to start with (IF is forced on, TF/AC off). */
  flags: number;
  /** Flags whose value the SDM leaves undefined for this case: not compared. */
  undefinedFlags?: number;
  /** Registers not compared (bit i = register i). */
  ignoreRegs?: number;
}

export interface CaseResult {
  regs: number[];
  flags: number;
  buffer: number[];
}

const RESULT_WORDS = 9 + 16;
const BUFFER_INIT = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);

function program(cases: HostCase[], host: boolean): string {
  const lines: string[] = [];
  if (host) lines.push("section .text", "global _start", "_start:");
  cases.forEach((c, i) => {
    const regs = c.regs.map((v) => `0x${(v >>> 0).toString(16)}`);
    lines.push(
      `  mov esp, stack_top`,
      `  push dword 0x${((c.flags & 0xcd5) | 0x202).toString(16)}`,
      "  popfd",
      `  mov eax, ${regs[0]}`,
      `  mov ecx, ${regs[1]}`,
      `  mov edx, ${regs[2]}`,
      `  mov ebx, ${regs[3]}`,
      `  mov ebp, ${regs[5]}`,
      `  mov esi, ${regs[6]}`,
      `  mov edi, ${regs[7]}`,
      c.code,
      `  mov [out + ${i * RESULT_WORDS * 4}], eax`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 4}], ecx`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 8}], edx`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 12}], ebx`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 16}], esp`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 20}], ebp`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 24}], esi`,
      `  mov [out + ${i * RESULT_WORDS * 4 + 28}], edi`,
      "  pushfd",
      `  pop dword [out + ${i * RESULT_WORDS * 4 + 32}]`,
      "  cld",
      "  mov esi, buf",
      `  mov edi, out + ${i * RESULT_WORDS * 4 + 36}`,
      "  mov ecx, 16",
      "  rep movsd",
      "  mov esi, buf_init",
      "  mov edi, buf",
      "  mov ecx, 16",
      "  rep movsd",
    );
  });
  if (host) {
    lines.push(
      "  mov eax, 4",
      "  mov ebx, 1",
      "  mov ecx, out",
      `  mov edx, ${cases.length * RESULT_WORDS * 4}`,
      "  int 0x80",
      "  mov eax, 1",
      "  xor ebx, ebx",
      "  int 0x80",
    );
  } else {
    lines.push("  hlt");
  }
  lines.push(
    "section .data",
    "align 16",
    `buf: db ${BUFFER_INIT.join(",")}`,
    `buf_init: db ${BUFFER_INIT.join(",")}`,
    "align 16",
    "stack: times 1024 db 0",
    "stack_top: times 64 db 0",
    `out: times ${cases.length * RESULT_WORDS * 4} db 0`,
  );
  return `bits 32\n${host ? "" : "org 0x1000\n"}${lines.join("\n")}\n`;
}

function parse(bytes: Uint8Array, count: number): CaseResult[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const results: CaseResult[] = [];
  for (let i = 0; i < count; i++) {
    const base = i * RESULT_WORDS * 4;
    const regs = Array.from({ length: 8 }, (_, r) => view.getUint32(base + r * 4, true));
    const flags = view.getUint32(base + 32, true);
    const buffer = Array.from({ length: 64 }, (_, b) => bytes[base + 36 + b]);
    results.push({ regs, flags, buffer });
  }
  return results;
}

/** Runs `cases` on the host CPU and on Kumo; returns [host, kumo] results. */
export function runOnBoth(cases: HostCase[]): [CaseResult[], CaseResult[]] {
  const dir = mkdtempSync(join(tmpdir(), "kumo-host-"));
  try {
    writeFileSync(join(dir, "host.asm"), program(cases, true));
    execFileSync("nasm", ["-f", "elf32", "-o", join(dir, "host.o"), join(dir, "host.asm")]);
    execFileSync("ld", ["-m", "elf_i386", "-o", join(dir, "host"), join(dir, "host.o")]);
    const hostOut = execFileSync(join(dir, "host"), { maxBuffer: 64 << 20 });
    writeFileSync(join(dir, "kumo.asm"), program(cases, false));
    execFileSync("nasm", ["-f", "bin", "-o", join(dir, "kumo.bin"), join(dir, "kumo.asm")]);
    const code = new Uint8Array(readFileSync(join(dir, "kumo.bin")));
    // Linux runs user code with CR4.OSFXSR and OSXMMEXCPT set.
    const cpu = createFlatCpu(code, { ramSize: 4 << 20, sse: true });
    runUntilHalt(cpu, 50_000_000);
    if (cpu.exit.message) throw new Error(cpu.exit.message);
    const outOffset = code.length - cases.length * RESULT_WORDS * 4;
    const kumo = cpu.ram.slice(0x1000 + outOffset, 0x1000 + code.length);
    return [parse(new Uint8Array(hostOut), cases.length), parse(kumo, cases.length)];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Differences between host and Kumo for each case, as readable strings (empty when equal). */
export function compareWithHost(cases: HostCase[]): string[] {
  const [host, kumo] = runOnBoth(cases);
  const problems: string[] = [];
  cases.forEach((c, i) => {
    const h = host[i];
    const k = kumo[i];
    const mask = (0x8d5 | 0x400) & ~(c.undefinedFlags ?? 0);
    const differences: string[] = [];
    for (let r = 0; r < 8; r++) {
      if ((c.ignoreRegs ?? 0) & (1 << r) || r === 4) continue;
      if (h.regs[r] !== k.regs[r]) {
        differences.push(`reg${r} host=${h.regs[r].toString(16)} kumo=${k.regs[r].toString(16)}`);
      }
    }
    if ((h.flags & mask) !== (k.flags & mask)) {
      differences.push(
        `flags host=${(h.flags & mask).toString(16)} kumo=${(k.flags & mask).toString(16)}`,
      );
    }
    const firstDifference = h.buffer.findIndex((byte, b) => byte !== k.buffer[b]);
    if (firstDifference >= 0) {
      const window = (bytes: number[]) =>
        bytes
          .slice(firstDifference & ~3, (firstDifference & ~3) + 8)
          .map((x) => x.toString(16).padStart(2, "0"))
          .join("");
      differences.push(
        `buf[${firstDifference & ~3}..] host=${window(h.buffer)} kumo=${window(k.buffer)}`,
      );
    }
    if (differences.length) {
      problems.push(
        `${c.code.replace(/\n/g, "; ")} [${c.regs.map((v) => (v >>> 0).toString(16))} f=${c.flags.toString(16)}]: ${differences.join(", ")}`,
      );
    }
  });
  return problems;
}

/** xorshift32 for reproducible operands. */
export function random(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}
