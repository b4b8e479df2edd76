import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, createRealModeCpu } from "../src/test/index";
import { descriptorTables, KERNEL_USER_TSS } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { random } from "./support/host";
import { idtGate } from "./support/idt-gate";
import { assemble } from "./support/nasm";
import { loadTss } from "./support/tss";

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
  return `${loadFlatSegments()}
${loadTss("tss", 0x28, { esp0: "0x70000" })}
  xor ecx, ecx
.gate:${idtGate("ecx", "[gate_table + ecx*4]", "0xee00")}
  inc ecx
  cmp ecx, 256
  jne .gate
  lidt [idt_ptr]
  ${ring3 ? "push dword 0x23\n  push dword 0x60000\n  push dword 0x3202\n  push dword 0x1b\n  push dword 0x100000\n  iret" : "jmp 0x100000"}
${stubs.join("\n")}
gate_table:
${gates.join("\n")}
${descriptorTables(KERNEL_USER_TSS, ["tss"])}`;
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
