import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { Descriptor, descriptorTables, KERNEL_USER_TSS } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { assemble } from "./support/nasm";
import { tssBase, tssRing0Stack } from "./support/tss";

/** GDT, two 32-bit TSSs, an IDT; helpers shared by the task and gate tests. */
const SETUP = `
RESULTS equ 0x9000
${loadFlatSegments()}
  ; TSS descriptors 0x28 (tss_a) and 0x30 (tss_b)
${tssBase("tss_a", 0x28)}
${tssBase("tss_b", 0x30)}
${tssRing0Stack("tss_a", "0x70000")}
  mov ax, 0x28
  ltr ax
  ; tss_b: runs task_b on its own stack
  mov dword [tss_b + 0x20], task_b
  mov dword [tss_b + 0x24], 2
  mov dword [tss_b + 0x38], 0x68000
  mov dword [tss_b + 0x4c], 0x08
  mov dword [tss_b + 0x50], 0x10
  mov dword [tss_b + 0x48], 0x10
  mov dword [tss_b + 0x54], 0x10
  mov eax, cr3
  mov [tss_b + 0x1c], eax
  lidt [idt_ptr]
`;
/** Selectors 0x08/0x10 kernel, 0x18/0x20 user, 0x28 tss_a, 0x30 tss_b, 0x38 a call gate the test fills in. */
const TABLES = descriptorTables(
  [...KERNEL_USER_TSS, Descriptor.tss, Descriptor.empty],
  ["tss_a", "tss_b"],
);

describe("hardware task switches", () => {
  it("calls a task, returns with iret (NT, back-link, busy bits)", () => {
    const cpu = createFlatCpu(
      assemble(`${SETUP}
  mov ebx, 0x1111
  call 0x30:0
  mov [RESULTS + 0], ebx     ; back in task A
  mov [RESULTS + 4], ecx     ; task B's ECX is not task A's
  str ax
  mov [RESULTS + 8], eax
  mov al, [gdt + 0x30 + 5]
  mov [RESULTS + 12], eax    ; tss_b no longer busy
  hlt
task_b:
  mov ecx, 0x2222
  mov [RESULTS + 16], ecx
  pushfd
  pop eax
  mov [RESULTS + 20], eax    ; NT set
  movzx eax, word [tss_b]
  mov [RESULTS + 24], eax    ; back-link = 0x28
  str ax
  mov [RESULTS + 28], eax
  iret
${TABLES}`),
    );
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    expect(cpu.exit.message).toBe("");
    const view = new DataView(cpu.ram.buffer);
    const r = (o: number) => view.getUint32(0x9000 + o, true);
    expect(r(0)).toBe(0x1111);
    expect(r(4)).not.toBe(0x2222);
    expect(r(8) & 0xffff).toBe(0x28);
    expect(r(12) & 0xff).toBe(0x89);
    expect(r(16)).toBe(0x2222);
    expect(r(20) & 0x4000).toBe(0x4000);
    expect(r(24)).toBe(0x28);
    expect(r(28) & 0xffff).toBe(0x30);
    expect(cpu.cr0 & 8).toBe(8); // CR0.TS
  });

  it("delivers a double fault through a task gate, as Linux i386 does", () => {
    const cpu = createFlatCpu(
      assemble(`${SETUP}
  ; IDT[8] = task gate to 0x30; IDT[13] not present, so #GP -> #NP -> #DF
  mov word [idt + 8*8 + 2], 0x30
  mov word [idt + 8*8 + 4], 0x8500
  mov word [idt + 13*8 + 4], 0x0e00
  mov word [idt + 11*8 + 4], 0x0e00
  mov ax, 0x55
  mov ds, ax                 ; #GP(0x54): selector beyond the GDT
  hlt
task_b:
  pop eax                    ; error code of #DF
  mov [RESULTS], eax
  mov eax, [tss_a + 0x20]
  mov [RESULTS + 4], eax     ; EIP saved in the old TSS: the faulting mov
  mov byte [RESULTS + 8], 1
  hlt
${TABLES}`),
    );
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    expect(cpu.exit.message).toBe("");
    const view = new DataView(cpu.ram.buffer);
    expect(view.getUint32(0x9000, true)).toBe(0);
    expect(cpu.ram[0x9008]).toBe(1);
    const eip = view.getUint32(0x9004, true);
    expect([cpu.ram[eip], cpu.ram[eip + 1]]).toEqual([0x8e, 0xd8]); // mov ds, ax
  });
});

describe("call gates", () => {
  it("calls ring 0 from ring 3 with a copied parameter, and returns", () => {
    const cpu = createFlatCpu(
      assemble(`${SETUP}
  ; call gate 0x38: DPL 3, 1 parameter, to 0x08:gate_target
  mov eax, gate_target
  mov [gdt + 0x38], ax
  mov word [gdt + 0x38 + 2], 0x08
  mov word [gdt + 0x38 + 4], 0xec01
  shr eax, 16
  mov [gdt + 0x38 + 6], ax
  push dword 0x23
  push dword 0x60000
  push dword 2
  push dword 0x1b
  push dword user
  iret
user:
  mov ax, 0x23
  mov ds, ax
  push dword 0xabcd
  call 0x3b:0
  mov [RESULTS + 8], esp     ; parameter released by ret 4
  mov ax, cs
  mov [RESULTS + 12], eax
  mov eax, 0xfeed
  int3                        ; no handler: ends the test with a #GP/#DF chain
gate_target:
  mov ax, 0x10                ; ring 0 finds DS nulled by the iret to ring 3
  mov ds, ax
  mov eax, [esp + 8]
  mov [RESULTS], eax          ; the parameter on the ring-0 stack
  mov ax, cs
  mov [RESULTS + 4], eax
  mov ax, 0x23
  mov ds, ax
  retf 4
task_b:
  hlt
${TABLES}`),
    );
    cpu.run(10_000);
    expect(cpu.exit.message).toBe("");
    const view = new DataView(cpu.ram.buffer);
    const r = (o: number) => view.getUint32(0x9000 + o, true);
    expect(r(0)).toBe(0xabcd);
    expect(r(4) & 0xffff).toBe(0x08);
    expect(r(8)).toBe(0x60000);
    expect(r(12) & 0xffff).toBe(0x1b);
  });
});
