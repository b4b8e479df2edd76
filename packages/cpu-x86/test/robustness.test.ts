import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, createRealModeCpu } from "../src/test/index";
import { assemble } from "./support/nasm";

/** xorshift32: deterministic random bytes so that a failure reproduces. */
function random(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * A kernel whose every IDT vector returns to the faulting code one byte
 * further on (popping the error code where the CPU pushed one), then drops
 * to ring 3 (or stays in ring 0) and jumps into random bytes at 0x100000.
 */
function hostileKernel(ring3: boolean): string {
  const stubs: string[] = [];
  for (let v = 0; v < 256; v++) {
    const hasCode = v === 8 || (v >= 10 && v <= 14) || v === 17;
    stubs.push(`stub${v}:\n${hasCode ? "  add esp, 4\n" : ""}  inc dword [esp]\n  iret`);
  }
  const gates: string[] = [];
  for (let v = 0; v < 256; v++) gates.push(`  dd stub${v}`);
  return `
  lgdt [gdt_ptr]
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, 0x70000
  mov eax, tss
  mov [gdt + 0x28 + 2], ax
  shr eax, 16
  mov [gdt + 0x28 + 4], al
  mov [gdt + 0x28 + 7], ah
  mov dword [tss + 4], 0x70000
  mov dword [tss + 8], 0x10
  mov ax, 0x28
  ltr ax
  xor ecx, ecx
.gate:
  mov eax, [gate_table + ecx*4]
  mov [idt + ecx*8], ax
  mov word [idt + ecx*8 + 2], 0x08
  mov word [idt + ecx*8 + 4], 0xee00
  shr eax, 16
  mov [idt + ecx*8 + 6], ax
  inc ecx
  cmp ecx, 256
  jne .gate
  lidt [idt_ptr]
  ${ring3 ? "push dword 0x23\n  push dword 0x60000\n  push dword 0x3202\n  push dword 0x1b\n  push dword 0x100000\n  iret" : "jmp 0x100000"}
${stubs.join("\n")}
gate_table:
${gates.join("\n")}
align 8
gdt:
  dq 0
  dq 0x00cf9a000000ffff
  dq 0x00cf92000000ffff
  dq 0x00cffa000000ffff
  dq 0x00cff2000000ffff
  dq 0x0000890000000067
gdt_end:
gdt_ptr:
  dw gdt_end - gdt - 1
  dd gdt
idt_ptr:
  dw 256*8 - 1
  dd idt
align 16
tss: times 104 db 0
align 8
idt: times 256*8 db 0
`;
}

describe("hostile instruction streams", () => {
  for (const ring3 of [true, false]) {
    it(`never throw out of run() at CPL ${ring3 ? 3 : 0}`, () => {
      const kernel = assemble(hostileKernel(ring3));
      const counts = new Map<number, number>();
      for (let seed = 1; seed <= 30; seed++) {
        const next = random(seed * 7919);
        const cpu = createFlatCpu(kernel, { ramSize: 4 << 20 });
        for (let i = 0; i < 0x2000; i++) cpu.ram[0x100000 + i] = next() & 0xff;
        let reason: VcpuExitReason = VcpuExitReason.Budget;
        for (let slice = 0; slice < 10 && reason !== VcpuExitReason.Shutdown; slice++) {
          reason = cpu.run(500);
          if (reason === VcpuExitReason.Hypercall) cpu.completeHypercall(-38, -1);
          if (reason === VcpuExitReason.GuestError) break;
        }
        counts.set(reason, (counts.get(reason) ?? 0) + 1);
        if (reason === VcpuExitReason.GuestError) {
          // Only documented unsupported operations may end a run this way.
          expect(cpu.exit.message).toMatch(/^unsupported: /);
        }
      }
      expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(30);
    });
  }

  for (const mode of ["real", "virtual-8086"] as const) {
    it(`never throw out of run() in ${mode} mode`, () => {
      let shutdowns = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const next = random(seed * 104729);
        const code = new Uint8Array(0x1000);
        for (let i = 0; i < code.length; i++) code[i] = next() & 0xff;
        const cpu = createRealModeCpu(code, { loadAddress: 0x10000 });
        cpu.setRealMode(0x1000, 0);
        // A real-mode IVT of random vectors: interrupts land in random bytes too.
        for (let i = 0; i < 0x400; i++) cpu.ram[i] = next() & 0xff;
        if (mode === "virtual-8086") {
          // Protected mode with VM=1 and no IDT: every IOPL-sensitive or
          // faulting instruction escalates to a triple fault.
          cpu.writeCr0(cpu.cr0 | 1);
          cpu.setEflags(0x20202);
          cpu.modeChanged();
        }
        for (let slice = 0; slice < 10; slice++) {
          const reason = cpu.run(500);
          if (reason === VcpuExitReason.Hypercall) cpu.completeHypercall(-38, -1);
          if (reason === VcpuExitReason.GuestError) {
            expect(cpu.exit.message).toMatch(/^unsupported: /);
            break;
          }
          if (reason === VcpuExitReason.Shutdown) {
            shutdowns++;
            break;
          }
        }
      }
      expect(shutdowns).toBeGreaterThanOrEqual(0);
    });
  }
});
