import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import type { X86Cpu } from "../src/cpu";
import { createRealModeCpu, runUntilHalt } from "../src/test/index";
import { assemble } from "./support/nasm";

/**
 * Firmware switches between real and protected mode for every BIOS call
 * made from 32-bit code (SeaBIOS call16/call32, SYSLINUX), so a switch
 * must keep the decoded-instruction and block caches, while code decoded
 * in one mode must never run in another. These tests run the same
 * physical bytes in real mode, 32-bit protected mode and 16-bit protected
 * mode, round after round.
 */

const SHARED = 0x8000;
const RESULTS = 0x9000;
const ROUNDS = 24;
/** Port the driver writes at the end of each round (the test snapshots the counters there). */
const ROUND_PORT = 0xe9;

/**
 * The routine every mode calls (SDM vol. 2 2.2.1 and MOV/AND: operand and
 * address size come from CS.D). 32-bit code: `mov eax, 0x11223344; ret`.
 * 16-bit code: `mov ax, 0x3344; and dl, [bx+di]; ret`.
 */
const SHARED_CODE = new Uint8Array([0xb8, 0x44, 0x33, 0x22, 0x11, 0xc3]);

/**
 * Real mode at 0x7c00: each round calls SHARED in real mode, then in
 * 32-bit protected mode (CS 0x08), then in 16-bit protected mode (CS 0x18,
 * D = 0, base 0), then drops back to real mode. Before each call EAX holds
 * round << 16 and EDX all ones; after it EAX and EDX are stored at
 * RESULTS + 24 * round + 8 * mode.
 */
const DRIVER = `
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  mov byte [0], 0x5a        ; what the 16-bit form's and dl, [bx+di] reads
  lgdt [gdt_ptr]
  xor ebp, ebp
  mov esi, ${RESULTS}
real_round:
  mov eax, ebp
  shl eax, 16
  mov edx, -1
  xor bx, bx
  xor di, di
  call ${SHARED}
  mov [si], eax
  mov [si + 4], edx
  add si, 8
  mov eax, cr0
  or al, 1
  mov cr0, eax
  jmp 0x08:pm32
bits 32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov ss, ax
  mov esp, 0x7000
  mov eax, ebp
  shl eax, 16
  mov edx, -1
  xor ebx, ebx
  xor edi, edi
  call ${SHARED}
  mov [esi], eax
  mov [esi + 4], edx
  add esi, 8
  jmp 0x18:pm16
bits 16
pm16:
  mov ax, 0x20
  mov ds, ax
  mov ss, ax
  mov eax, ebp
  shl eax, 16
  mov edx, -1
  xor bx, bx
  xor di, di
  call ${SHARED}
  mov [si], eax
  mov [si + 4], edx
  add si, 8
  mov eax, cr0
  and al, 0xfe
  mov cr0, eax
  jmp 0:real_next
real_next:
  xor ax, ax
  mov ds, ax
  mov ss, ax
  out ${ROUND_PORT}, al
  inc ebp
  cmp ebp, ${ROUNDS}
  jb real_round
  hlt
align 8
gdt:
  dq 0
  ; Accessed bits set: no descriptor write into the driver's code page.
  dq 0x00cf9b000000ffff     ; 0x08 flat 32-bit code
  dq 0x00cf93000000ffff     ; 0x10 flat 32-bit data
  dq 0x00009b000000ffff     ; 0x18 16-bit code, base 0, limit 0xffff
  dq 0x000093000000ffff     ; 0x20 16-bit data, base 0, limit 0xffff
gdt_end:
gdt_ptr:
  dw gdt_end - gdt - 1
  dd gdt`;

interface RoundCounters {
  decodes: number;
  tlbFlushes: number;
  compiled: number;
}

function run(jit: boolean): { cpu: X86Cpu; rounds: RoundCounters[] } {
  const rounds: RoundCounters[] = [];
  let cpu: X86Cpu | undefined;
  cpu = createRealModeCpu(assemble(DRIVER, 16, 0x7c00), {
    ...(jit ? { jit: true, jitThreshold: 1 } : { jit: false }),
    io: {
      portRead: () => 0xff,
      portWrite: (port) => {
        if (port !== ROUND_PORT || cpu === undefined) return;
        rounds.push({
          decodes: cpu.counters.decodes,
          tlbFlushes: cpu.counters.tlbFlushes,
          compiled: cpu.blocks?.compiled ?? 0,
        });
      },
    },
  });
  cpu.ram.set(SHARED_CODE, SHARED);
  expect(runUntilHalt(cpu)).toBe(VcpuExitReason.Halt);
  return { cpu, rounds };
}

function results(cpu: X86Cpu): number[][] {
  const view = new DataView(cpu.ram.buffer, cpu.ram.byteOffset);
  const out: number[][] = [];
  for (let i = 0; i < ROUNDS * 3; i++) {
    out.push([view.getUint32(RESULTS + 8 * i, true), view.getUint32(RESULTS + 8 * i + 4, true)]);
  }
  return out;
}

/** What each mode's decoding of SHARED_CODE leaves in EAX and EDX in round `round`. */
function expected(): number[][] {
  const out: number[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // 16-bit: AX replaced, EAX's upper half kept; DL = 0xff & [0].
    const sixteen = [((round << 16) | 0x3344) >>> 0, 0xffffff5a];
    out.push(sixteen, [0x11223344, 0xffffffff], sixteen);
  }
  return out;
}

describe("mode switches and the code caches", () => {
  it("runs the same bytes as 16-bit code in real mode and 16-bit protected mode and as 32-bit code in between (interpreter)", () => {
    const { cpu } = run(false);
    expect(results(cpu)).toEqual(expected());
  });

  it("runs them alternately with every block compiled on its first execution (jitThreshold: 1)", () => {
    const { cpu } = run(true);
    expect(cpu.blocks).not.toBeNull();
    expect(cpu.counters.blockRuns).toBeGreaterThan(0);
    expect(results(cpu)).toEqual(expected());
  });

  it("keeps the decoded instructions of each mode's code and the TLB across the switches", () => {
    const { rounds } = run(false);
    expect(rounds).toHaveLength(ROUNDS);
    expect(rounds[0].decodes).toBeGreaterThan(40);
    // From the third round on (the second still decodes the first round's
    // tail after the port write) only the shared routine is decoded again:
    // its 16-bit and 32-bit forms of `mov` and `ret` share cache slots (the
    // cache is direct-mapped by physical address), so the 32-bit call and
    // the 16-bit protected-mode call after it re-decode both; the real-mode
    // call then hits the 16-bit entries. The driver's own code (over 40
    // instructions per round) stays decoded.
    for (let i = 2; i < ROUNDS; i++) {
      expect(rounds[i].decodes - rounds[i - 1].decodes).toBe(4);
    }
    // With paging off a PE toggle leaves every TLB entry valid.
    expect(rounds[ROUNDS - 1].tlbFlushes).toBe(rounds[0].tlbFlushes);
  });

  it("keeps the compiled blocks across the switches", () => {
    const { rounds } = run(true);
    expect(rounds[0].compiled).toBeGreaterThan(0);
    // The 32-bit code compiled in the first round is entered again in the
    // later ones, never recompiled.
    expect(rounds[ROUNDS - 1].compiled).toBe(rounds[0].compiled);
  });
});

/**
 * Real mode at 0x7c00: the bytes at `phys` run first through a code
 * segment where they lie well inside the limit (when `prime`: decoded and
 * cached), then through CS `cs` at IP `ip`, where the instruction or the
 * one after it ends past the 0xffff limit: #GP(0) (SDM vol. 3A 5.3,
 * through the IVT in real mode). The handler stores the CS:IP it was
 * given and halts.
 */
function csLimitProgram(prime: boolean, primeTarget: string, target: string): string {
  return `
  cli
  xor ax, ax
  mov ds, ax
  mov ss, ax
  mov sp, 0x7000
  mov word [13 * 4], gp_handler
  mov word [13 * 4 + 2], 0
${prime ? `  call ${primeTarget}` : ""}
  mov byte [0x604], 2
  call ${target}
  hlt
gp_handler:
  pop ax
  mov [0x600], ax           ; IP
  pop ax
  mov [0x602], ax           ; CS
  mov byte [0x604], 1
  hlt`;
}

function runCsLimit(
  prime: boolean,
  primeTarget: string,
  target: string,
  bytes: number[],
  at: number,
) {
  const cpu = createRealModeCpu(assemble(csLimitProgram(prime, primeTarget, target), 16, 0x7c00), {
    jit: false,
  });
  cpu.ram.set(bytes, at);
  expect(runUntilHalt(cpu)).toBe(VcpuExitReason.Halt);
  const view = new DataView(cpu.ram.buffer, cpu.ram.byteOffset);
  return {
    ip: view.getUint16(0x600, true),
    cs: view.getUint16(0x602, true),
    fault: cpu.ram[0x604],
  };
}

describe("the CS limit on a cached instruction", () => {
  it("faults on an instruction that ends past the limit, also when it was decoded through another CS", () => {
    // mov ax, 0x1234 ; retf at 0x2007e: CS 0x2000 IP 0x7e, then CS 0x1008 IP 0xfffe (ends at 0x10000).
    const bytes = [0xb8, 0x34, 0x12, 0xcb];
    const fresh = runCsLimit(false, "", "0x1008:0xfffe", bytes, 0x2007e);
    const cached = runCsLimit(true, "0x2000:0x007e", "0x1008:0xfffe", bytes, 0x2007e);
    expect(fresh).toEqual({ ip: 0xfffe, cs: 0x1008, fault: 1 });
    expect(cached).toEqual(fresh);
  });

  it("faults when straight-line execution passes the limit onto a cached instruction", () => {
    // nop at 0x2107f, then mov ax, 0x1234 ; retf: CS 0x2100 IP 0x7f, then CS 0x1108 IP 0xffff.
    const bytes = [0x90, 0xb8, 0x34, 0x12, 0xcb];
    const fresh = runCsLimit(false, "", "0x1108:0xffff", bytes, 0x2107f);
    const cached = runCsLimit(true, "0x2100:0x007f", "0x1108:0xffff", bytes, 0x2107f);
    expect(fresh.fault).toBe(1);
    expect(fresh.cs).toBe(0x1108);
    expect(cached).toEqual(fresh);
  });
});
