import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { assemble } from "./support/nasm";
import { tssBase } from "./support/tss";

/**
 * Hardware task switches through the 80286 16-bit TSS (SDM vol. 3A 7.6,
 * figure 7-11): back-link at 0, SP0/SS0..SP2/SS2 at 2-0x0c, IP 0x0e,
 * FLAGS 0x10, AX CX DX BX SP BP SI DI 0x12-0x20, ES CS SS DS 0x22-0x28,
 * LDT 0x2a; 44 bytes, descriptor limit 0x2b, type 1 (available) / 3 (busy).
 * The same scenarios as the 32-bit tests in tasks.test.ts.
 */
const TSS16 = "0x000081000000002b";
/** 16-bit stack segment (B = 0), flat 64 KiB: task B's pushes use SP only, whatever the upper half of ESP. */
const DATA16 = "0x000092000000ffff";

/** Task B's 16-bit TSS `tss_b`: runs task_b with CX 0x2222, BX 0x3333, on SS 0x40 SP 0x8000. */
const TASK_B = `
  mov word [tss_b + 0x0e], task_b
  mov word [tss_b + 0x10], 2
  mov word [tss_b + 0x14], 0x2222
  mov word [tss_b + 0x18], 0x3333
  mov word [tss_b + 0x1a], 0x8000
  mov word [tss_b + 0x22], 0x10
  mov word [tss_b + 0x24], 0x08
  mov word [tss_b + 0x26], 0x40
  mov word [tss_b + 0x28], 0x10
`;

/**
 * GDT: 0x08/0x10 flat code/data, 0x18/0x20 user, 0x28 tss_a (32-bit, or
 * 16-bit when `a16`), 0x30 tss_b (16-bit), 0x38 free, 0x40 16-bit stack.
 */
function setup(): string {
  return `
RESULTS equ 0x9000
${loadFlatSegments()}
${tssBase("tss_a", 0x28)}
${tssBase("tss_b", 0x30)}
  mov ax, 0x28
  ltr ax
${TASK_B}
  lidt [idt_ptr]
`;
}

function tables(a16: boolean): string {
  return descriptorTables(
    [
      Descriptor.kernelCode,
      Descriptor.kernelData,
      Descriptor.userCode,
      Descriptor.userData,
      a16 ? TSS16 : Descriptor.tss,
      TSS16,
      Descriptor.empty,
      DATA16,
    ],
    ["tss_a", "tss_b"],
  );
}

function run(source: string) {
  const cpu = createFlatCpu(assemble(source));
  const reason = runUntilHalt(cpu, 10_000);
  expect(cpu.exit.message).toBe("");
  expect(reason).toBe(VcpuExitReason.Halt);
  const view = new DataView(cpu.ram.buffer);
  return { cpu, r: (o: number) => view.getUint32(0x9000 + o, true) };
}

describe("hardware task switches to a 16-bit TSS", () => {
  it("calls a 16-bit task from a 32-bit one, returns with iret (NT, back-link, busy bits, FS/GS null)", () => {
    const { cpu, r } = run(`${setup()}
  mov ebx, 0x1111
  mov ax, 0x10
  mov fs, ax
  call 0x30:0
  mov [RESULTS + 0], ebx     ; back in task A (32-bit TSS: all of EBX)
  mov ax, fs
  mov [RESULTS + 4], eax     ; task A's FS restored from its 32-bit TSS
  str ax
  mov [RESULTS + 8], eax
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 12], eax    ; tss_b no longer busy (type 1)
  pushfd
  pop eax
  mov [RESULTS + 40], eax    ; NT clear again
  hlt
task_b:
  mov [RESULTS + 16], ecx    ; CX from the 16-bit TSS
  pushfd
  pop eax
  mov [RESULTS + 20], eax    ; NT set
  movzx eax, word [tss_b]
  mov [RESULTS + 24], eax    ; back-link = 0x28
  str ax
  mov [RESULTS + 28], eax
  mov ax, fs
  mov [RESULTS + 32], eax    ; FS null: a 16-bit TSS has no FS/GS
  mov ax, ss
  mov [RESULTS + 36], eax
  mov [RESULTS + 44], ebx
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 48], eax    ; tss_b busy (type 3)
  iret
${tables(false)}`);
    expect(r(0)).toBe(0x1111);
    expect(r(4) & 0xffff).toBe(0x10);
    expect(r(8) & 0xffff).toBe(0x28);
    expect(r(12) & 0xff).toBe(0x81);
    expect(r(40) & 0x4000).toBe(0);
    expect(r(16) & 0xffff).toBe(0x2222);
    expect(r(20) & 0x4000).toBe(0x4000);
    expect(r(24)).toBe(0x28);
    expect(r(28) & 0xffff).toBe(0x30);
    expect(r(32) & 0xffff).toBe(0);
    expect(r(36) & 0xffff).toBe(0x40);
    expect(r(44) & 0xffff).toBe(0x3333);
    expect(r(48) & 0xff).toBe(0x83);
    expect(cpu.cr0 & 8).toBe(8); // CR0.TS
  });

  it("saves a 16-bit task in its own format and resumes it from there", () => {
    const { r } = run(`${setup()}
  mov ebx, 0x12345678
  mov esi, 0xabcd
  mov ax, 0x10
  mov fs, ax
  call 0x30:0
after_call:
  mov [RESULTS + 0], ebx
  mov ax, fs
  mov [RESULTS + 4], eax     ; null: FS is not in a 16-bit TSS
  str ax
  mov [RESULTS + 8], eax
  mov al, [gdt + 0x28 + 5]
  mov [RESULTS + 12], eax    ; tss_a busy again (type 3), tss_b available
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 16], eax
  hlt
task_b:
  movzx eax, word [tss_a + 0x0e]
  mov [RESULTS + 20], eax    ; IP of task A: after the call
  movzx eax, word [tss_a + 0x18]
  mov [RESULTS + 24], eax    ; BX: the low half of EBX
  movzx eax, word [tss_a + 0x1e]
  mov [RESULTS + 28], eax    ; SI
  movzx eax, word [tss_a + 0x22]
  mov [RESULTS + 32], eax    ; ES
  movzx eax, word [tss_a + 0x24]
  mov [RESULTS + 36], eax    ; CS
  movzx eax, word [tss_a + 0x26]
  mov [RESULTS + 40], eax    ; SS
  movzx eax, word [tss_a + 0x28]
  mov [RESULTS + 44], eax    ; DS
  movzx eax, word [tss_a + 0x2a]
  mov [RESULTS + 48], eax    ; LDT field: not written by the switch
  mov word [tss_a + 0x18], 0x9999
  mov eax, after_call
  mov [RESULTS + 52], eax
  iret
${tables(true)}`);
    expect(r(20)).toBe(r(52));
    expect(r(24)).toBe(0x5678);
    expect(r(28)).toBe(0xabcd);
    expect(r(32)).toBe(0x10);
    expect(r(36)).toBe(0x08);
    expect(r(40)).toBe(0x10);
    expect(r(44)).toBe(0x10);
    expect(r(48)).toBe(0);
    expect(r(0) & 0xffff).toBe(0x9999); // resumed from the 16-bit TSS
    expect(r(4) & 0xffff).toBe(0);
    expect(r(8) & 0xffff).toBe(0x28);
    expect(r(12) & 0xff).toBe(0x83);
    expect(r(16) & 0xff).toBe(0x81);
  });

  it("jumps to a 16-bit task: no back-link, NT clear, the old TSS no longer busy", () => {
    const { r } = run(`${setup()}
  jmp 0x30:0
  hlt
task_b:
  pushfd
  pop eax
  mov [RESULTS + 0], eax
  movzx eax, word [tss_b]
  mov [RESULTS + 4], eax
  mov al, [gdt + 0x28 + 5]
  mov [RESULTS + 8], eax
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 12], eax
  str ax
  mov [RESULTS + 16], eax
  hlt
${tables(false)}`);
    expect(r(0) & 0x4000).toBe(0);
    expect(r(4)).toBe(0);
    expect(r(8) & 0xff).toBe(0x89);
    expect(r(12) & 0xff).toBe(0x83);
    expect(r(16) & 0xffff).toBe(0x30);
  });

  it("delivers a double fault through a task gate to a 16-bit TSS, with a 16-bit error code", () => {
    const { cpu, r } = run(`${setup()}
  ; IDT[8] = task gate to 0x30; IDT[13] and IDT[11] not present, so #GP -> #NP -> #DF
  mov word [idt + 8*8 + 2], 0x30
  mov word [idt + 8*8 + 4], 0x8500
  mov word [idt + 13*8 + 4], 0x0e00
  mov word [idt + 11*8 + 4], 0x0e00
  mov ax, 0x55
  mov ds, ax                 ; #GP(0x54): selector beyond the GDT
  hlt
task_b:
  mov [RESULTS], esp         ; SP 0x8000 - 2: a word pushed
  movzx esp, sp              ; the upper half of ESP is undefined after the switch (SDM 7.6)
  movzx eax, word [esp]
  mov [RESULTS + 4], eax     ; error code of #DF
  mov eax, [tss_a + 0x20]
  mov [RESULTS + 8], eax     ; EIP saved in the old (32-bit) TSS: the faulting mov
  mov byte [RESULTS + 12], 1
  hlt
${tables(false)}`);
    expect(r(0) & 0xffff).toBe(0x7ffe);
    expect(r(4)).toBe(0);
    expect(r(12) & 0xff).toBe(1);
    const eip = r(8);
    expect([cpu.ram[eip], cpu.ram[eip + 1]]).toEqual([0x8e, 0xd8]); // mov ds, ax
  });

  it("switches on int n through a task gate and back with iret", () => {
    const { r } = run(`${setup()}
  mov word [idt + 0x40*8 + 2], 0x30
  mov word [idt + 0x40*8 + 4], 0x8500
  mov edi, 0x7777
  int 0x40
  mov [RESULTS + 0], edi
  mov byte [RESULTS + 4], 1
  hlt
task_b:
  movzx eax, word [tss_b]
  mov [RESULTS + 8], eax     ; back-link
  mov [RESULTS + 12], esp    ; no error code pushed
  iret
${tables(false)}`);
    expect(r(0)).toBe(0x7777);
    expect(r(4) & 0xff).toBe(1);
    expect(r(8)).toBe(0x28);
    expect(r(12) & 0xffff).toBe(0x8000);
  });

  it("raises #TS(selector) for a 16-bit TSS whose limit is below 0x2b, before any state changes", () => {
    const { r } = run(`${setup()}
  mov byte [gdt + 0x30], 0x2a  ; limit 0x2a: one byte short
  mov eax, ts_handler
  mov [idt + 10*8], ax
  mov word [idt + 10*8 + 2], 0x08
  mov word [idt + 10*8 + 4], 0x8e00
  shr eax, 16
  mov [idt + 10*8 + 6], ax
  call 0x30:0
  hlt
ts_handler:
  pop eax
  mov [RESULTS + 0], eax     ; error code: the TSS selector
  str ax
  mov [RESULTS + 4], eax
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 8], eax     ; not marked busy
  mov byte [RESULTS + 12], 1
  hlt
task_b:
  hlt
${tables(false)}`);
    expect(r(0)).toBe(0x30);
    expect(r(4) & 0xffff).toBe(0x28);
    expect(r(8) & 0xff).toBe(0x81);
    expect(r(12) & 0xff).toBe(1);
  });
});
