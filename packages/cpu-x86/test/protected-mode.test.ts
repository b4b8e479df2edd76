import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { descriptorTables, KERNEL_USER_TSS } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { callSetGate, SET_GATE } from "./support/idt-gate";
import { assemble } from "./support/nasm";
import { loadTss } from "./support/tss";

/**
 * A small freestanding kernel: its own GDT/IDT/TSS, a trip to ring 3 by
 * iret, int 0x80 through a DPL-3 trap gate, a #GP from a privileged
 * instruction in ring 3, sysenter/sysexit, and results written to RESULTS.
 */
const KERNEL = `
RESULTS equ 0x9000
KSTACK equ 0x70000
USTACK equ 0x60000

start:
${loadFlatSegments({ label: "reload", stack: "KSTACK", fsGs: true })}
${loadTss("tss", 0x28, { esp0: "KSTACK" })}
  ; IDT: 0x80 trap gate DPL 3, 13 interrupt gate DPL 0
${callSetGate("syscall_handler", 0x80, "0xef00")}
${callSetGate("gp_handler", 13, "0x8e00")}
  lidt [idt_ptr]
  ; enter ring 3
  push dword 0x23
  push dword USTACK
  push dword 0x202 & ~0x200
  push dword 0x1b
  push dword user_entry
  iret

${SET_GATE}
syscall_handler:
  mov [RESULTS + 0], eax     ; eax from user
  mov ax, cs
  mov [RESULTS + 4], eax     ; CS in handler
  mov [RESULTS + 8], esp     ; ESP in handler
  mov eax, [esp + 4]
  mov [RESULTS + 12], eax    ; saved CS
  mov eax, [esp + 16]
  mov [RESULTS + 16], eax    ; saved SS
  mov eax, 0x1234
  iret

gp_handler:
  pop eax
  mov [RESULTS + 20], eax    ; error code
  mov eax, [esp]
  mov [RESULTS + 24], eax    ; faulting EIP
  mov eax, [esp + 4]
  mov [RESULTS + 28], eax    ; faulting CS
  ; abandon the user frame: set up sysenter and leave through sysexit
  mov esp, KSTACK
  mov ecx, 0x174
  xor edx, edx
  mov eax, 0x08
  wrmsr
  mov ecx, 0x175
  mov eax, KSTACK - 0x100
  wrmsr
  mov ecx, 0x176
  mov eax, sysenter_entry
  wrmsr
  mov ecx, USTACK - 0x40
  mov edx, user_after_sysexit
  sysexit

sysenter_entry:
  mov [RESULTS + 32], esp
  mov ax, cs
  mov [RESULTS + 36], eax
  mov ax, ss
  mov [RESULTS + 40], eax
  mov [RESULTS + 44], ebx
  hlt

user_entry:
  mov ax, 0x23
  mov ds, ax
  mov es, ax
  mov eax, 41
  int 0x80
  mov [RESULTS + 48], eax    ; return value
  mov ax, cs
  mov [RESULTS + 52], eax
user_hlt:
  hlt                          ; #GP(0) at CPL 3

user_after_sysexit:
  mov ax, cs
  mov [RESULTS + 56], eax
  mov [RESULTS + 60], esp
  mov ebx, 0xfeed
  sysenter

${descriptorTables(KERNEL_USER_TSS, ["tss"])}`;

describe("protected-mode kernel", () => {
  it("crosses privilege levels through iret, int 0x80, #GP and sysenter/sysexit", () => {
    const code = assemble(KERNEL);
    const cpu = createFlatCpu(code);
    const reason = runUntilHalt(cpu, 100_000);
    expect(cpu.exit.message).toBe("");
    expect(reason).toBe(VcpuExitReason.Halt);
    const view = new DataView(cpu.ram.buffer);
    const r = (offset: number) => view.getUint32(0x9000 + offset, true);
    expect(r(0)).toBe(41);
    expect(r(4) & 0xffff).toBe(0x08);
    // Ring 3 -> 0: SS, ESP, EFLAGS, CS, EIP pushed on the TSS stack.
    expect(r(8)).toBe(0x70000 - 20);
    expect(r(12)).toBe(0x1b);
    expect(r(16)).toBe(0x23);
    expect(r(20)).toBe(0); // #GP(0)
    expect(r(28)).toBe(0x1b);
    expect(r(48)).toBe(0x1234);
    expect(r(52) & 0xffff).toBe(0x1b);
    expect(r(56) & 0xffff).toBe(0x1b); // sysexit: SYSENTER_CS + 16 | 3
    expect(r(60)).toBe(0x60000 - 0x40);
    expect(r(32)).toBe(0x70000 - 0x100);
    expect(r(36) & 0xffff).toBe(0x08);
    expect(r(40) & 0xffff).toBe(0x10);
    expect(r(44)).toBe(0xfeed);
    expect(cpu.cpl).toBe(0);
    // The faulting EIP is the user hlt.
    const userHlt = r(24);
    expect(cpu.ram[userHlt]).toBe(0xf4);
  });
});
