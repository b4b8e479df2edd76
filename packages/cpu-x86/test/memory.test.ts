import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { createX86Cpu, X86_WASM_SCRATCH_BYTES } from "../src/index";
import { runUntilHalt } from "../src/test/index";
import { assemble } from "./support/nasm";

describe("guest memory from @kumo/mmu", () => {
  it("sends accesses outside RAM to MMIO handlers and reads holes as all-ones", () => {
    const memory = createGuestMemory({ ramSize: 1 << 20 });
    const accesses: string[] = [];
    memory.addMmio(0xfee00000, 0x1000, {
      read: (offset, size) => {
        accesses.push(`r${size}@${offset.toString(16)}`);
        return 0x11223344 >>> (8 * (4 - size));
      },
      write: (offset, size, value) => {
        accesses.push(`w${size}@${offset.toString(16)}=${value.toString(16)}`);
      },
    });
    memory.ram.u8.set(
      assemble(`
  mov dword [0xfee000b0], 0
  mov eax, [0xfee00030]
  mov ebx, [0xc0000000]
  mov cx, [0xfee00020]
  hlt`),
      0x1000,
    );
    const cpu = createX86Cpu({ memory });
    cpu.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(cpu);
    expect(accesses).toEqual(["w4@b0=0", "r4@30", "r2@20"]);
    expect(cpu.regs[0] >>> 0).toBe(0x11223344);
    expect(cpu.regs[3]).toBe(-1);
    expect(cpu.regs[1] & 0xffff).toBe(0x1122);
  });

  it("drops decoded code when the hypervisor rewrites a code page", () => {
    const memory = createGuestMemory({ ramSize: 1 << 20 });
    const code = assemble("mov eax, 1\nhlt");
    memory.ram.u8.set(code, 0x1000);
    const cpu = createX86Cpu({ memory });
    cpu.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(cpu);
    expect(cpu.regs[0]).toBe(1);
    memory.ram.u8.set(assemble("mov eax, 2\nhlt"), 0x1000);
    cpu.invalidateCode(0x1000, 16);
    cpu.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(cpu);
    expect(cpu.regs[0]).toBe(2);
  });

  it("re-decodes code the guest itself modified", () => {
    const memory = createGuestMemory({ ramSize: 1 << 20 });
    memory.ram.u8.set(
      assemble(`
  mov ecx, 2
again:
  mov eax, 1          ; patched to mov eax, 7 on the second pass
  mov byte [again + 1], 7
  loop again
  hlt`),
      0x1000,
    );
    const cpu = createX86Cpu({ memory });
    cpu.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(cpu);
    expect(cpu.regs[0]).toBe(7);
  });
});

describe("bulk string operations", () => {
  it("copy and fill across pages like the element-by-element definition", () => {
    const memory = createGuestMemory({ ramSize: 1 << 20 });
    const ram = memory.ram.u8;
    for (let i = 0; i < 0x4000; i++) ram[0x20000 + i] = (i * 7 + 3) & 0xff;
    ram.set(
      assemble(`
  cld
  mov esi, 0x20001
  mov edi, 0x30003
  mov ecx, 0x1003
  rep movsd                 ; 16 KiB, misaligned, over five pages
  mov edi, 0x40ffe
  mov ecx, 5
  mov eax, 0x11223344
  rep stosw                 ; crosses a page in the middle of an element run
  hlt`),
      0x1000,
    );
    const cpu = createX86Cpu({ memory });
    cpu.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(cpu);
    expect(Array.from(ram.subarray(0x30003, 0x30003 + 0x400c))).toEqual(
      Array.from(ram.subarray(0x20001, 0x20001 + 0x400c)),
    );
    expect(Array.from(ram.subarray(0x40ffe, 0x41008))).toEqual([
      0x44, 0x33, 0x44, 0x33, 0x44, 0x33, 0x44, 0x33, 0x44, 0x33,
    ]);
    expect(cpu.regs[1]).toBe(0);
    expect(cpu.regs[6] >>> 0).toBe(0x20001 + 0x400c);
    expect(cpu.regs[7] >>> 0).toBe(0x41008);
  });

  it("keeps its registers and TLB beside RAM in a WebAssembly memory when given scratch", () => {
    const memory = createGuestMemory({ ramSize: 1 << 20, wasmScratch: 2 * X86_WASM_SCRATCH_BYTES });
    const first = createX86Cpu({ memory });
    const second = createX86Cpu({ memory });
    const layout = first.wasmLayout;
    expect(layout).not.toBeNull();
    expect(second.wasmLayout?.regs).toBeGreaterThanOrEqual(
      (layout?.regs ?? 0) + X86_WASM_SCRATCH_BYTES,
    );
    // A third vCPU finds no scratch left and keeps its state on the JS heap.
    expect(createX86Cpu({ memory }).wasmLayout).toBeNull();
    memory.ram.u8.set(assemble("mov eax, 0x1234\nmov [0x2000], eax\nhlt"), 0x1000);
    first.setFlatProtectedMode(0x1000, 0x8000);
    runUntilHalt(first);
    const words = new Int32Array(layout?.memory.buffer as ArrayBuffer);
    expect(words[(layout?.regs ?? 0) >>> 2]).toBe(0x1234);
    expect(words[0x2000 >>> 2]).toBe(0x1234);
    expect(createX86Cpu({ memory: createGuestMemory({ ramSize: 1 << 20 }) }).wasmLayout).toBeNull();
  });
});
