import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VcpuExitReason } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { Arm64Cpu } from "../src/cpu";

/**
 * EL1 behaviour that qemu-aarch64 (user mode) cannot show, checked against
 * Debian's qemu-system-aarch64 (`-M virt -cpu cortex-a57`, which starts an
 * ELF kernel at EL1 with no EL2/EL3): the CPACR_EL1.FPEN traps (ESR, ELR)
 * at EL1 and EL0, CNTKCTL_EL1's EL0 counter/timer traps, and the EL1
 * timers' CTL/ISTATUS and TVAL, the writable FPCR/FPSR bits. The same program runs on both: it records
 * (ESR, ELR offset) for every exception and (tag, value) pairs into RAM;
 * under qemu it prints them on the PL011 and powers off with PSCI, Kumo
 * stops at the PSCI call (a PlatformCall exit) and the records are read
 * from memory. Timer values that depend on the clock are recorded as
 * booleans (sign, ISTATUS) so that both sides are deterministic.
 */
const LINK = 0x40080000;
const RESULTS = 0x40100000;
const SKIP_PRINT = 0x400ffff8;

const SOURCE = `
.macro record tag, register
  mov x9, #\\tag
  stp x9, \\register, [x28], #16
.endm
.macro to_el0 label, back
  adr x27, \\back
  adr x1, \\label
  msr elr_el1, x1
  msr spsr_el1, xzr
  eret
.endm
.text
.globl _start
_start:
  b start
.balign 0x800
vectors:
.org vectors + 0x200
  b el1_sync
.org vectors + 0x400
  b el0_sync
.org vectors + 0x800
el1_sync:
  mrs x9, esr_el1
  mrs x10, elr_el1
  adr x11, _start
  sub x10, x10, x11
  stp x9, x10, [x28], #16
  mrs x10, elr_el1
  add x10, x10, #4
  msr elr_el1, x10
  eret
el0_sync:
  mrs x9, esr_el1
  lsr x10, x9, #26
  cmp x10, #0x15
  b.eq el0_svc
  mrs x10, elr_el1
  adr x11, _start
  sub x10, x10, x11
  stp x9, x10, [x28], #16
  mrs x10, elr_el1
  add x10, x10, #4
  msr elr_el1, x10
  eret
el0_svc:
  mov x10, #0x3c5
  msr spsr_el1, x10
  msr elr_el1, x27
  eret
start:
  adr x0, vectors
  msr vbar_el1, x0
  ldr x28, =${RESULTS}
  ldr x1, =0x40200000
  mov sp, x1
  msr sp_el0, x1
  isb
  // FPEN 0b00: FP/SIMD instructions and FPCR/FPSR trap at EL1.
  msr cpacr_el1, xzr
  isb
  fmov d0, x1
  mrs x1, fpcr
  msr fpsr, xzr
  ld1 {v0.16b}, [sp]
  // FPEN 0b01: EL1 runs them, EL0 traps.
  mov x1, #(1 << 20)
  msr cpacr_el1, x1
  isb
  fmov d0, x1
  mrs x2, fpcr
  record 0x10, x2
  to_el0 user_fp, back_fp
user_fp:
  ldr q0, [sp]
  mrs x1, fpsr
  svc #0
back_fp:
  // FPEN 0b11: EL0 runs them.
  mov x1, #(3 << 20)
  msr cpacr_el1, x1
  isb
  to_el0 user_fp_ok, back_fp_ok
user_fp_ok:
  ldr q0, [sp]
  fadd d1, d0, d0
  svc #0
back_fp_ok:
  record 0x11, xzr
  // EL0 counter and timer access by CNTKCTL_EL1.
  msr cntkctl_el1, xzr
  isb
  to_el0 user_timer, back_timer_0
back_timer_0:
  mov x1, #2
  msr cntkctl_el1, x1
  isb
  to_el0 user_timer, back_timer_1
back_timer_1:
  mov x1, #1
  msr cntkctl_el1, x1
  isb
  to_el0 user_timer, back_timer_2
back_timer_2:
  mov x1, #0x300
  msr cntkctl_el1, x1
  isb
  to_el0 user_timer, back_timer_3
user_timer:
  mrs x1, cntvct_el0
  mrs x2, cntpct_el0
  mrs x3, cntfrq_el0
  mrs x4, cntv_ctl_el0
  msr cntv_ctl_el0, xzr
  mrs x5, cntp_ctl_el0
  msr cntp_cval_el0, x5
  mrs x6, cntp_tval_el0
  svc #0
back_timer_3:
  record 0x20, x3
  // EL1 timers: CVAL in the past, enabled, then masked.
  msr cntv_cval_el0, xzr
  mov x1, #1
  msr cntv_ctl_el0, x1
  isb
  mrs x2, cntv_ctl_el0
  record 0x30, x2
  mov x1, #3
  msr cntv_ctl_el0, x1
  isb
  mrs x2, cntv_ctl_el0
  record 0x31, x2
  mov x1, #-100
  msr cntv_tval_el0, x1
  isb
  mrs x2, cntv_tval_el0
  lsr x3, x2, #32
  record 0x32, x3
  ubfx x3, x2, #31, #1
  record 0x33, x3
  mrs x2, cntv_ctl_el0
  record 0x34, x2
  ldr x1, =0x7fffffff
  msr cntp_tval_el0, x1
  mov x1, #1
  msr cntp_ctl_el0, x1
  isb
  mrs x2, cntp_ctl_el0
  record 0x35, x2
  mrs x2, cntp_tval_el0
  ubfx x3, x2, #31, #1
  record 0x36, x3
  msr cntp_cval_el0, xzr
  isb
  mrs x2, cntp_ctl_el0
  record 0x37, x2
  mov x1, #-1
  msr cntp_cval_el0, x1
  isb
  mrs x2, cntp_ctl_el0
  record 0x38, x2
  mrs x2, cntfrq_el0
  record 0x39, x2
  // FPCR and FPSR: which bits are writable. Cortex-A57 also has AArch32, so it keeps FPCR.Len/Stride
  // and FPSR.NZCV, which are RES0 on an AArch64-only CPU (Arm ARM D19.2 FPCR, FPSR): masked out.
  mov x1, #-1
  msr fpcr, x1
  mrs x2, fpcr
  ldr x3, =0x00370000
  bic x2, x2, x3
  record 0x40, x2
  msr fpsr, x1
  mrs x2, fpsr
  ldr x3, =0xf0000000
  bic x2, x2, x3
  record 0x41, x2
  msr fpcr, xzr
  msr fpsr, xzr
  // Done: print the records (qemu), then PSCI SYSTEM_OFF.
  ldr x1, =${SKIP_PRINT}
  ldr x1, [x1]
  cbnz x1, off
  ldr x20, =${RESULTS}
  ldr x21, =0x09000000
print:
  cmp x20, x28
  b.hs off
  ldr x22, [x20], #8
  mov x23, #60
digit:
  lsr x24, x22, x23
  and x24, x24, #15
  cmp x24, #10
  add x25, x24, #48
  add x26, x24, #87
  csel x24, x25, x26, lo
  strb w24, [x21]
  subs x23, x23, #4
  b.pl digit
  mov w24, #10
  strb w24, [x21]
  b print
off:
  ldr x0, =0x84000008
  hvc #0
  b off
`;

const cacheDirectory = join(tmpdir(), "kumo-cpu-arm-el1");

function hasSystemQemu(): boolean {
  try {
    execFileSync("qemu-system-aarch64", ["--version"], { stdio: "ignore" });
    execFileSync("aarch64-linux-gnu-ld", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function build(): { elf: string; binary: Uint8Array } {
  const hash = createHash("sha256").update(SOURCE).digest("hex").slice(0, 24);
  mkdirSync(cacheDirectory, { recursive: true });
  const source = join(cacheDirectory, `${hash}.s`);
  const object = join(cacheDirectory, `${hash}.o`);
  const elf = join(cacheDirectory, `${hash}.elf`);
  const binary = join(cacheDirectory, `${hash}.bin`);
  if (!existsSync(binary)) {
    writeFileSync(source, SOURCE);
    execFileSync("aarch64-linux-gnu-as", ["-o", object, source]);
    execFileSync("aarch64-linux-gnu-ld", [
      "-static",
      `-Ttext=0x${LINK.toString(16)}`,
      "-e",
      "_start",
      "-o",
      elf,
      object,
    ]);
    execFileSync("aarch64-linux-gnu-objcopy", ["-O", "binary", elf, binary]);
  }
  return { elf, binary: new Uint8Array(readFileSync(binary)) };
}

function qemuRecords(elf: string): bigint[] {
  const output = execFileSync(
    "qemu-system-aarch64",
    [
      "-M",
      "virt",
      "-cpu",
      "cortex-a57",
      "-m",
      "128",
      "-nographic",
      "-monitor",
      "none",
      "-serial",
      "stdio",
      "-kernel",
      elf,
    ],
    { timeout: 60_000, encoding: "utf8" },
  );
  return output
    .split(/\r?\n/)
    .filter((line) => /^[0-9a-f]{16}$/.test(line))
    .map((line) => BigInt(`0x${line}`));
}

function kumoRecords(binary: Uint8Array): bigint[] {
  const memory = createGuestMemory({ ramSize: 4 << 20, ramBase: 0x40000000 });
  memory.writeBytes(LINK, binary);
  memory.write32(SKIP_PRINT, 1);
  let clock = 1_000_000;
  const cpu = new Arm64Cpu({ memory, hooks: { readCounter: () => clock++ } });
  cpu.pc = LINK;
  const reason = cpu.run(100_000);
  expect(reason).toBe(VcpuExitReason.PlatformCall);
  expect(cpu.exit.hypercall).toBe(0x84000008);
  const records: bigint[] = [];
  const end = Number(cpu.getX(28));
  for (let address = RESULTS; address < end; address += 8) {
    records.push(
      (BigInt(memory.read32(address + 4) >>> 0) << 32n) | BigInt(memory.read32(address) >>> 0),
    );
  }
  return records;
}

describe.skipIf(!hasSystemQemu())("EL1 behaviour against qemu-system-aarch64", () => {
  it(
    "FPEN traps, CNTKCTL EL0 traps and the EL1 timers record the same ESR/ELR and values",
    { timeout: 120_000 },
    () => {
      const { elf, binary } = build();
      const expected = qemuRecords(elf);
      const actual = kumoRecords(binary);
      const show = (values: bigint[]) => {
        const lines: string[] = [];
        for (let i = 0; i + 1 < values.length; i += 2)
          lines.push(`${values[i].toString(16)} ${values[i + 1].toString(16)}`);
        return lines;
      };
      console.log(`EL1 oracle: ${expected.length / 2} records from qemu-system-aarch64`);
      expect(expected.length).toBeGreaterThan(20);
      expect(show(actual)).toEqual(show(expected));
    },
  );
});
