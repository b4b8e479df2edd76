import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { descriptorTables, KERNEL_USER_TSS } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { callSetGate, SET_GATE } from "./support/idt-gate";
import { assemble } from "./support/nasm";
import { loadTss } from "./support/tss";

/**
 * Alignment checking (SDM vol. 3A 6.15 "Interrupt 17—Alignment Check
 * Exception (#AC)"): with CR0.AM and EFLAGS.AC set, a misaligned data access
 * at CPL 3 raises #AC with error code 0 before anything is written; CPL 0 is
 * never checked; clearing EFLAGS.AC (by iret or popf) or CR0.AM turns it off.
 */
const KERNEL = `
RESULTS equ 0x9000
DATA equ 0x8000
KSTACK equ 0x70000
USTACK equ 0x60000

start:
${loadFlatSegments({ label: "reload", stack: "KSTACK" })}
${loadTss("tss", 0x28, { esp0: "KSTACK" })}
${callSetGate("ac_handler", 17, "0x8e00")}
${callSetGate("syscall_handler", 0x80, "0xef00")}
  lidt [idt_ptr]
  mov dword [RESULTS + 48], ac1
  mov dword [RESULTS + 52], ac2
  mov dword [RESULTS + 56], ac3
  ; CR0.AM and EFLAGS.AC at CPL 0: no alignment check.
  mov eax, cr0
  or eax, 0x40000
  mov cr0, eax
  pushfd
  or dword [esp], 0x40000
  popfd
  mov dword [DATA + 0x101], 0x11223344
  mov eax, [DATA + 0x101]
  mov [RESULTS + 0], eax
  ; Ring 3 with EFLAGS.AC set.
  push dword 0x23
  push dword USTACK
  push dword 0x40002
  push dword 0x1b
  push dword user_entry
  iret

${SET_GATE}
ac_handler:
  inc dword [RESULTS + 4]          ; #AC count
  pop eax
  mov [RESULTS + 8], eax           ; error code
  mov ecx, [RESULTS + 4]
  mov eax, [esp]
  mov [RESULTS + 8 + ecx*4], eax   ; faulting EIPs at 12, 16, 20
  mov eax, [esp + 4]
  mov [RESULTS + 28], eax          ; faulting CS
  mov eax, [DATA + 6]
  mov [RESULTS + 24], eax          ; the faulting write did not happen
  cmp ecx, 1
  jne .not_first
  and dword [esp + 8], ~0x40000    ; first: clear the user's EFLAGS.AC, retry
  iret
.not_first:
  cmp ecx, 2
  jne .third
  add dword [esp + 12], 2          ; second: realign the user's ESP, retry
  iret
.third:
  mov eax, cr0                     ; third: clear CR0.AM, retry
  and eax, ~0x40000
  mov cr0, eax
  iret

syscall_handler:
  mov [RESULTS + 44], eax
  hlt

user_entry:
  mov ax, 0x23
  mov ds, ax
  mov es, ax
  mov eax, [DATA]                  ; aligned dword, word and byte accesses: no #AC
  mov [RESULTS + 32], eax
  mov word [DATA + 2], 0x5566
  mov byte [DATA + 3], 0x77
ac1:
  mov dword [DATA + 6], 0xaabbccdd ; misaligned dword write
  mov eax, [DATA + 6]
  mov [RESULTS + 36], eax
  pushfd
  or dword [esp], 0x40000          ; popf sets EFLAGS.AC again
  popfd
  sub esp, 2
ac2:
  push dword 0x12345678            ; misaligned stack
  pop eax
  xor eax, eax
ac3:
  mov ax, [DATA + 0x101]           ; misaligned word read
  mov [RESULTS + 40], eax
  mov eax, 7
  int 0x80

${descriptorTables(KERNEL_USER_TSS, ["tss"])}`;

/** The same kernel with a misaligned quadword (`cmpxchg8b`, 4-byte aligned) as the third #AC. */
const QUADWORD = KERNEL.replace(
  "  mov ax, [DATA + 0x101]           ; misaligned word read",
  "  cmpxchg8b [DATA + 0x104]         ; quadword at a dword boundary",
);

describe("alignment check (#AC)", () => {
  for (const jit of [false, true]) {
    it(`faults misaligned CPL 3 accesses with CR0.AM and EFLAGS.AC (${jit ? "block tier" : "interpreter"})`, () => {
      const code = assemble(KERNEL);
      const cpu = createFlatCpu(code, { jit, jitThreshold: 1 });
      const reason = runUntilHalt(cpu, 100_000);
      expect(cpu.exit.message).toBe("");
      expect(reason).toBe(VcpuExitReason.Halt);
      const view = new DataView(cpu.ram.buffer);
      const r = (offset: number) => view.getUint32(0x9000 + offset, true);
      expect(r(0)).toBe(0x11223344); // CPL 0: not checked
      expect(r(4)).toBe(3); // three #AC
      expect(r(8)).toBe(0); // error code 0
      expect([r(12), r(16), r(20)]).toEqual([r(48), r(52), r(56)]); // faulting EIPs
      expect(r(28)).toBe(0x1b); // from ring 3
      expect(r(24)).toBe(0xaabbccdd); // seen by the last #AC: the retried write landed
      expect(r(36)).toBe(0xaabbccdd);
      expect(r(40) & 0xffff).toBe(0x3344);
      expect(r(44)).toBe(7);
      // The stack push was retried 2 bytes higher: the misaligned attempt wrote nothing.
      expect(view.getUint32(0x60000 - 4, true)).toBe(0x12345678);
      // Three #AC and the int 0x80, as counted by the CPU.
      expect(cpu.counters.events).toBe(4);
    });
  }

  it("checks a quadword operand (cmpxchg8b) for 8-byte alignment", () => {
    const cpu = createFlatCpu(assemble(QUADWORD), { jit: false });
    expect(runUntilHalt(cpu, 100_000)).toBe(VcpuExitReason.Halt);
    const view = new DataView(cpu.ram.buffer);
    const r = (offset: number) => view.getUint32(0x9000 + offset, true);
    expect(r(4)).toBe(3);
    expect(r(20)).toBe(r(56));
    // Retried with CR0.AM clear: EDX:EAX differ from memory, so they are loaded from it.
    expect(r(40)).toBe(0x11);
  });

  it("leaves the faulting write undone", () => {
    // The first #AC handler reads the target of the faulting store before the retry.
    const code = assemble(
      KERNEL.replace(
        "and dword [esp + 8], ~0x40000    ; first",
        "mov eax, [DATA + 6]\n  mov [RESULTS + 60], eax\n  and dword [esp + 8], ~0x40000    ; first",
      ),
    );
    const cpu = createFlatCpu(code, { jit: false });
    expect(runUntilHalt(cpu, 100_000)).toBe(VcpuExitReason.Halt);
    const view = new DataView(cpu.ram.buffer);
    expect(view.getUint32(0x9000 + 60, true)).toBe(0);
  });
});
