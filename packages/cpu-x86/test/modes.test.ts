import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { callSetGate, SET_GATE } from "./support/idt-gate";
import { assemble } from "./support/nasm";
import { loadTss } from "./support/tss";

/**
 * A flat ring-0 kernel with a TSS (no I/O bitmap) and an IDT that
 * `handlerSetup` fills through `set_gate`; `enter` runs the test, `tail`
 * holds its handlers.
 */
const KERNEL = (handlerSetup: string, enter: string, tail: string) => `
RESULTS equ 0x9000
${loadFlatSegments()}
${loadTss("tss", 0x18, { esp0: "0x70000", ioMapBase: "0x68" })}
  lidt [idt_ptr]
${handlerSetup}
${enter}
${tail}
${SET_GATE}
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, Descriptor.tss], ["tss"])}`;

describe("virtual-8086 mode", () => {
  it("runs real-mode code under VM=1 and reflects int n and #GP to the monitor", () => {
    const v86 = assemble(
      `
  mov ax, 0x1234
  mov bx, [0x10]            ; DS = 0x200: linear 0x2010
  mov [0x12], ax
  int 0x30                  ; IOPL 3: through the IDT (DPL 3 gate)
  cli                       ; now IOPL 0: #GP to the monitor
  hlt`,
      16,
      0x0,
    );
    const code = assemble(
      KERNEL(
        `${callSetGate("int30", 0x30, "0xee00")}${callSetGate("gp", 13, "0x8e00")}`,
        `
  push dword 0            ; gs
  push dword 0            ; fs
  push dword 0x200        ; ds
  push dword 0x200        ; es
  push dword 0x300        ; ss
  push dword 0x100        ; esp
  push dword 0x23002      ; eflags: VM, IOPL 3
  push dword 0x500        ; cs
  push dword 0            ; eip -> linear 0x5000
  iret`,
        `
int30:
  mov ax, ds
  mov [ss:RESULTS + 12], eax  ; DS zeroed on entry from virtual-8086 mode
  mov ax, 0x10
  mov ds, ax
  mov eax, [esp + 8]
  mov [RESULTS], eax        ; EFLAGS with VM
  mov eax, [esp + 20]
  mov [RESULTS + 4], eax    ; ES pushed for a v86 interrupt (after SS)
  mov eax, [esp + 24]
  mov [RESULTS + 8], eax    ; DS
  and dword [esp + 8], ~0x3000   ; return with IOPL 0
  iret
gp:
  mov ax, 0x10
  mov ds, ax
  pop eax
  mov [RESULTS + 16], eax   ; error code
  mov eax, [esp]
  mov [RESULTS + 20], eax   ; v86 IP of the cli
  mov byte [RESULTS + 24], 1
  hlt`,
      ),
    );
    const cpu = createFlatCpu(code);
    cpu.ram.set(v86, 0x5000);
    cpu.ram[0x2010] = 0x99;
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    expect(cpu.exit.message).toBe("");
    const view = new DataView(cpu.ram.buffer);
    const r = (o: number) => view.getUint32(0x9000 + o, true);
    expect(r(0) & 0x20000).toBe(0x20000);
    expect(r(4)).toBe(0x200);
    expect(r(8)).toBe(0x200);
    expect(r(12) & 0xffff).toBe(0);
    expect(cpu.ram[0x24]).toBe(0); // not written: DS base is 0x2000
    expect(view.getUint16(0x2012, true)).toBe(0x1234);
    expect(cpu.ram[0x9018]).toBe(1);
    expect(r(16)).toBe(0);
    expect(cpu.ram[0x5000 + r(20)]).toBe(0xfa);
  });
});

describe("single-step", () => {
  it("raises #DB with DR6.BS after each instruction while TF is set", () => {
    const code = assemble(
      KERNEL(
        `${callSetGate("db", 1, "0x8e00")}
  xor esi, esi`,
        `
  pushfd
  or dword [esp], 0x100
  popfd                     ; TF=1: trap after the next instruction
  nop
  nop
  pushfd
  and dword [esp], ~0x100
  popfd
  mov [RESULTS], esi
  mov eax, dr6
  mov [RESULTS + 4], eax
  hlt`,
        `
db:
  inc esi
  iret`,
      ),
    );
    const cpu = createFlatCpu(code);
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    const view = new DataView(cpu.ram.buffer);
    // nop, nop, pushfd, and, popfd (which clears TF, trapping once more).
    expect(view.getUint32(0x9000, true)).toBe(5);
    expect(view.getUint32(0x9004, true) & 0x4000).toBe(0x4000);
  });
});

describe("NMI", () => {
  it("wakes hlt even with IF=0", () => {
    const code = assemble(
      KERNEL(
        `${callSetGate("nmi", 2, "0x8e00")}`,
        `
  cli
  hlt
  mov byte [RESULTS + 1], 1
  hlt`,
        `
nmi:
  mov byte [RESULTS], 1
  iret`,
      ),
    );
    const cpu = createFlatCpu(code);
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    cpu.raiseNmi();
    expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
    expect([cpu.ram[0x9000], cpu.ram[0x9001]]).toEqual([1, 1]);
  });
});
