import { type InterruptSource, VcpuExitReason, VcpuShutdownKind } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { CpuModel } from "../src/cpuid";
import { createFlatCpu, createRealModeCpu, runUntilHalt } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { idtGate } from "./support/idt-gate";
import { assemble } from "./support/nasm";

const IDT_SETUP = `${loadFlatSegments()}${idtGate(0xf3, "irq_handler", "0x8e00")}
  lidt [idt_ptr]
`;
const TABLES = descriptorTables([Descriptor.kernelCode, Descriptor.kernelData]);

/** Assembles `body` as a flat ring-0 kernel whose vector 0xf3 leads to its `irq_handler`. */
function flatIdtKernel(body: string): Uint8Array {
  return assemble(`${IDT_SETUP}${body}\n${TABLES}`);
}

class OneShot implements InterruptSource {
  pending = false;
  constructor(readonly vector: number) {}
  hasPending(): boolean {
    return this.pending;
  }
  acknowledge(): number {
    this.pending = false;
    return this.vector;
  }
}

describe("hypercalls", () => {
  it("exits on vmcall and vmmcall with EBX..EBP as arguments", () => {
    const cpu = createFlatCpu(
      assemble(`
  mov eax, 17
  mov ebx, 1
  mov ecx, 2
  mov edx, 3
  mov esi, 4
  mov edi, 5
  mov ebp, 6
  vmcall
  mov ebx, eax
  mov eax, 29
  vmmcall
  hlt`),
    );
    expect(cpu.run(100)).toBe(VcpuExitReason.Hypercall);
    expect(cpu.exit.hypercall).toBe(17);
    expect(Array.from(cpu.exit.args)).toEqual([1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0]);
    expect(cpu.exit.privilege).toBe(0);
    expect(cpu.exit.longMode).toBe(false);
    cpu.completeHypercall(-38, -1);
    expect(cpu.run(100)).toBe(VcpuExitReason.Hypercall);
    expect(cpu.exit.hypercall).toBe(29);
    expect(cpu.regs[3]).toBe(-38);
    expect(cpu.run(100)).toBe(VcpuExitReason.Halt);
  });
});

describe("external interrupts", () => {
  it("takes the upcall vector when IF=1, honouring the sti shadow, and wakes hlt", () => {
    const source = new OneShot(0xf3);
    const cpu = createFlatCpu(
      flatIdtKernel(`
  xor ebx, ebx
  sti
  hlt                 ; woken by the interrupt
  mov ecx, ebx
  cli
  hlt
irq_handler:
  inc ebx
  iret`),
    );
    cpu.interrupts = source;
    expect(runUntilHalt(cpu)).toBe(VcpuExitReason.Halt);
    expect(cpu.halted).toBe(true);
    // Halted with IF=1: an interrupt wakes it and the handler runs.
    source.pending = true;
    cpu.notifyInterrupt();
    expect(runUntilHalt(cpu)).toBe(VcpuExitReason.Halt);
    expect(cpu.regs[1]).toBe(1);
    expect(cpu.interruptsEnabled()).toBe(false);
  });

  it("does not interrupt between sti and the next instruction", () => {
    const source = new OneShot(0xf3);
    const cpu = createFlatCpu(
      flatIdtKernel(`
  xor ebx, ebx
  mov ecx, 0
  sti
  mov ecx, ebx        ; shadowed: runs before the interrupt
  mov edx, ebx        ; after the interrupt
  hlt
irq_handler:
  inc ebx
  iret`),
    );
    cpu.interrupts = source;
    // Run up to and including sti, then raise the interrupt.
    let steps = 0;
    while (cpu.eip !== 0 && steps < 100) {
      cpu.run(1);
      steps++;
      if (cpu.interruptsEnabled() || (cpu.getEflags() & 0x200) !== 0) break;
    }
    source.pending = true;
    cpu.notifyInterrupt();
    runUntilHalt(cpu);
    expect(cpu.regs[1]).toBe(0);
    expect(cpu.regs[2]).toBe(1);
  });

  it("reports an interrupt window when asked", () => {
    const cpu = createFlatCpu(assemble("cli\nnop\nsti\nnop\nnop\nhlt"));
    cpu.requestInterruptWindow(true);
    expect(cpu.run(100)).toBe(VcpuExitReason.InterruptWindow);
    expect(cpu.interruptsEnabled()).toBe(true);
  });
});

describe("faults", () => {
  it("turns a fault with no IDT into a triple-fault shutdown exit", () => {
    const cpu = createFlatCpu(assemble("lidt [idt]\nud2\nidt: dw 0\ndd 0"));
    expect(cpu.run(100)).toBe(VcpuExitReason.Shutdown);
    expect(cpu.exit.code).toBe(VcpuShutdownKind.TripleFault);
  });

  it("raises #DE on division by zero and on quotient overflow", () => {
    const cpu = createFlatCpu(
      flatIdtKernel(`
${idtGate(0, "de_handler", "0x8e00")}
  xor esi, esi
  mov eax, 1
  xor edx, edx
  xor ecx, ecx
  div ecx
  mov edx, 5
  mov ecx, 2
  div ecx
  hlt
de_handler:
  inc esi
  add dword [esp], 2
  iret
irq_handler:
  iret`),
    );
    runUntilHalt(cpu);
    expect(cpu.regs[6]).toBe(2);
  });
});

describe("cpuid, msr, tsc", () => {
  it("answers the model, lets hooks override leaves, and reads the clock", () => {
    const cpu = createFlatCpu(
      assemble(`
  xor eax, eax
  cpuid
  mov [0x9000], ebx
  mov [0x9004], edx
  mov [0x9008], ecx
  mov eax, 1
  cpuid
  mov [0x900c], ecx
  mov [0x9010], edx
  mov eax, 0x40000000
  cpuid
  mov [0x9014], ebx
  rdtsc
  mov [0x9018], eax
  mov [0x901c], edx
  mov ecx, 0x277
  rdmsr
  mov [0x9020], eax
  hlt`),
      {
        hooks: {
          readCounter: () => 2 ** 33 + 5,
          cpuid: (leaf, _subleaf, out) => {
            if (leaf !== 0x40000000) return false;
            out.set([0x40000005, 0x566e6558, 0x65584d4d, 0x4d4d566e]);
            return true;
          },
        },
      },
    );
    runUntilHalt(cpu);
    const view = new DataView(cpu.ram.buffer);
    const text = new TextDecoder().decode(cpu.ram.slice(0x9000, 0x900c));
    expect(text).toBe("GenuineIntel");
    expect(view.getUint32(0x900c, true) >>> 31).toBe(1);
    const edx = view.getUint32(0x9010, true);
    expect(edx & (1 << 6)).not.toBe(0); // PAE
    expect(edx & (1 << 8)).not.toBe(0); // CX8
    // MMX, FXSR, SSE, SSE2: advertised since they agree with the host (differential.test.ts).
    expect((edx >>> 23) & 0xf).toBe(0xf);
    expect(view.getUint32(0x9014, true)).toBe(0x566e6558);
    expect(view.getUint32(0x9018, true)).toBe(5);
    expect(view.getUint32(0x901c, true)).toBe(2);
    expect(view.getUint32(0x9020, true)).toBe(0x00070406);
  });

  it("advertises a base frequency in leaf 0x16 only when the model has one", () => {
    const program = assemble(`
  xor eax, eax
  cpuid
  mov [0x9000], eax
  mov eax, 0x16
  cpuid
  mov [0x9004], eax
  mov [0x9008], ebx
  mov [0x900c], ecx
  mov [0x9010], edx
  mov eax, 4
  xor ecx, ecx
  cpuid
  or eax, ebx
  or eax, ecx
  or eax, edx
  mov [0x9014], eax
  hlt`);
    const words = (model?: CpuModel) => {
      const cpu = createFlatCpu(program, { model });
      runUntilHalt(cpu);
      const view = new DataView(cpu.ram.buffer);
      return [0, 4, 8, 12, 16, 20].map((at) => view.getUint32(0x9000 + at, true));
    };
    // Maximum basic leaf 0x16; base and maximum 2500 MHz, bus 100 MHz; leaf 4 (below it) all zeros.
    expect(words(new CpuModel({ frequencyMhz: 2500 }))).toEqual([0x16, 2500, 2500, 100, 0, 0]);
    // Without a frequency the maximum basic leaf stays 1 and leaf 0x16 answers zeros.
    expect(words()).toEqual([1, 0, 0, 0, 0, 0]);
    for (const bad of [-1, 1.5, 0x10000, Number.NaN]) {
      expect(() => new CpuModel({ frequencyMhz: bad })).toThrow(/whole number of MHz/);
    }
  });

  it("raises #GP on an unknown MSR and lets hooks own MSRs", () => {
    const writes: number[][] = [];
    const cpu = createFlatCpu(
      flatIdtKernel(`
${idtGate(13, "gp_handler", "0x8e00")}
  xor esi, esi
  mov ecx, 0x12345678
  rdmsr
  mov ecx, 0x40000000
  mov eax, 0x5000
  xor edx, edx
  wrmsr
  hlt
gp_handler:
  inc esi
  add dword [esp + 4], 2
  add esp, 4
  iret
irq_handler:
  iret`),
      {
        hooks: {
          readCounter: () => 0,
          writeMsr: (index, low, high) => {
            if (index !== 0x40000000) return false;
            writes.push([index, low, high]);
            return true;
          },
        },
      },
    );
    runUntilHalt(cpu);
    expect(cpu.regs[6]).toBe(1);
    expect(writes).toEqual([[0x40000000, 0x5000, 0]]);
  });
});

describe("real mode", () => {
  it("runs 16-bit code with segments and the IVT", () => {
    const cpu = createRealModeCpu(
      assemble(
        `
  xor ax, ax
  mov ds, ax
  mov word [0x21*4], handler
  mov word [0x21*4 + 2], 0
  mov ax, 0x1000
  mov es, ax
  mov word [es:0x10], 0x1234   ; physical 0x10010
  mov bx, 0x10
  mov cx, [es:bx]
  mov ah, 0x4c
  int 0x21
  mov dx, ax
  hlt
handler:
  mov al, 0x99
  iret`,
        16,
        0x7c00,
      ),
    );
    runUntilHalt(cpu);
    expect(cpu.exit.message).toBe("");
    expect(cpu.regs[1] & 0xffff).toBe(0x1234);
    expect(cpu.regs[2] & 0xffff).toBe(0x4c99);
    expect(cpu.ram[0x10010]).toBe(0x34);
  });

  it("switches from real mode to protected mode", () => {
    const cpu = createRealModeCpu(
      assemble(
        `
  cli
  lgdt [gdt_ptr]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  jmp 0x08:pm
bits 32
pm:
  mov ax, 0x10
  mov ds, ax
  mov ss, ax
  mov esp, 0x9000
  mov eax, 0x12345678
  push eax
  pop ebx
  hlt
align 8
gdt:
  dq 0
  dq 0x00cf9a000000ffff
  dq 0x00cf92000000ffff
gdt_ptr:
  dw 23
  dd gdt`,
        16,
        0x7c00,
      ),
    );
    runUntilHalt(cpu);
    expect(cpu.exit.message).toBe("");
    expect(cpu.regs[3]).toBe(0x12345678);
    expect(cpu.saveState().cs.selector).toBe(0x08);
  });
});

describe("state", () => {
  it("saves and restores a plain object that resumes identically", () => {
    const code = assemble(`
  mov ecx, 1000
  xor eax, eax
l:
  add eax, ecx
  adc ebx, 0
  loop l
  hlt`);
    const a = createFlatCpu(code);
    a.run(500);
    const state = JSON.parse(JSON.stringify(a.saveState()));
    const b = createFlatCpu(code);
    b.restoreState(state);
    runUntilHalt(a);
    runUntilHalt(b);
    expect(b.saveState()).toEqual(a.saveState());
    expect(a.regs[0]).toBe(500500);
  });
});
