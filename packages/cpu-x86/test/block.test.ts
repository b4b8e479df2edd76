import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import type { X86Cpu } from "../src/cpu";
import { createFlatCpu } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { random } from "./support/host";
import { idtGate } from "./support/idt-gate";
import { assemble } from "./support/nasm";

/**
 * The block tier against the interpreter, in lockstep: the same program on
 * a CPU compiling every block on its first execution and on one with the
 * tier off, run in slices of random budgets; after every slice the saved
 * state (registers, EIP, EFLAGS, retired count) and RAM must be identical.
 * The program takes page faults and #DE in the middle of blocks, rewrites
 * its own code, and mixes the forms the tier inlines (ALU with memory,
 * push/pop, call/ret, Jcc on every condition) with ones it runs through
 * the interpreter; a loop block (one that branches back to its start and
 * keeps the registers in locals) takes a #PF in the middle of a pass.
 */
const PROGRAM = `
DATA equ 0x9000
PDPT equ 0x20000
PD equ 0x21000
PT0 equ 0x22000
PT1 equ 0x23000
${loadFlatSegments({ label: "reload" })}
  mov dword [PDPT], PD | 1
  mov dword [PDPT + 4], 0
  mov dword [PD], PT0 | 7
  mov dword [PD + 8], PT1 | 7
  xor ecx, ecx
fill:
  mov eax, ecx
  shl eax, 12
  or eax, 3
  mov [PT0 + ecx*8], eax
  mov dword [PT0 + ecx*8 + 4], 0
  inc ecx
  cmp ecx, 512
  jne fill
  mov dword [PT1 + 8], 0x201000 | 1   ; read-only page
${idtGate(14, "pf_handler", "0x8e00")}
${idtGate(0, "de_handler", "0x8e00")}
  lidt [idt_ptr]
  mov eax, cr4
  or eax, 1 << 5
  mov cr4, eax
  mov eax, PDPT
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80010000
  mov cr0, eax
  mov ecx, 400
again:
  mov eax, ecx
  imul eax, eax, 0x9e3779b1
  add [DATA], eax
  xor ebx, eax
  sub ebx, [DATA]
  push ebx
  call mix
  pop edx
  cmp edx, ebx
  jb .below
  adc eax, edx
.below:
  cmp eax, ebx
  jl .less
  sbb ebx, 3
.less:
  test ecx, 7
  jnz .nofault
  mov dword [DATA + 8], .after_pf
  inc dword [DATA + 12]
  mov edi, [0x200000]         ; not present: #PF mid-block
  mov dword [0x201000], 1     ; never reached
.after_pf:
  mov dword [DATA + 8], .after_wp
  add dword [0x201000], 5     ; read-only: #PF on the write of a read-modify-write
.after_wp:
  mov dword [DATA + 8], .after_wp2
  shr dword [0x201000], cl    ; read-only: #PF on the write back, also with a count of 0
.after_wp2:
.nofault:
  test ecx, 15
  jnz .nodiv
  mov dword [DATA + 8], .nodiv
  xor edx, edx
  xor ebp, ebp
  inc esi
  div ebp                     ; #DE mid-block
.nodiv:
  cmp ecx, 380
  jb .nosmc
  mov [.smc + 1], ecx          ; rewrites the next instruction's immediate
.smc:
  mov esi, 0x12345678
.nosmc:
  add [DATA + 4], esi
  movzx edi, byte [DATA + 5]
  mov [DATA + 16 + edi], dl
  or eax, [DATA + 4]
  jle .le
  jg .g
.le:
  inc dword [DATA + 20]
.g:
  js .s
  jns .ns
.s:
  dec dword [DATA + 24]
.ns:
  jbe .be
  ja .a
.be:
  add dword [DATA + 28], 3
.a:
  ; a loop block (registers in locals) with an interpreter step and, one
  ; pass in 32, a #PF on its load in the middle of a pass
  mov dword [DATA + 8], .inner_done
  mov eax, ecx
  and eax, 31
  setz al
  movzx eax, al
  shl eax, 1
  mov ebp, 5
.inner:
  add esi, ebp
  xor ebx, esi
  push ebx
  pop edx
  mov edi, ebp
  and edi, eax
  shl edi, 10
  mov edi, [0x1ff800 + edi]   ; not present in the third pass when eax = 2
  adc edx, ebp
  add edi, edx
  dec ebp
  jnz .inner
.inner_done:
  dec ecx
  jnz again
  hlt

mix:
  mov eax, [esp + 4]
  rol eax, 5
  lea eax, [eax + eax*4 + 7]
  xor [DATA + 32], eax
  ret

pf_handler:
  add esp, 4                  ; error code
de_handler:
  push eax
  mov eax, [DATA + 8]
  mov [esp + 4], eax
  pop eax
  iret
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData])}`;

function snapshot(cpu: X86Cpu): string {
  const state = cpu.saveState() as unknown as Record<string, unknown>;
  let hash = 0;
  for (let i = 0; i < 0x30000; i++) hash = (Math.imul(hash, 31) + cpu.ram[i]) | 0;
  return JSON.stringify({ ...state, fpu: undefined, hash });
}

describe.each([
  { tier: "JavaScript", wasm: false },
  { tier: "WebAssembly", wasm: true },
])("block tier ($tier)", ({ tier, wasm }) => {
  it("matches the interpreter slice by slice (faults mid-block, self-modifying code, budgets)", () => {
    const code = assemble(PROGRAM);
    const compiled = createFlatCpu(code, { jit: true, jitThreshold: 1, wasm });
    expect(compiled.wasmTier !== null).toBe(wasm);
    const interpreted = createFlatCpu(code, { jit: false });
    const next = random(12);
    let slices = 0;
    for (;;) {
      const budget = 1 + (next() % 60);
      const a = compiled.run(budget);
      const b = interpreted.run(budget);
      slices++;
      expect(a).toBe(b);
      expect(snapshot(compiled)).toBe(snapshot(interpreted));
      if (a !== VcpuExitReason.Budget) break;
    }
    expect(compiled.exit.message).toBe("");
    expect(compiled.run(10)).toBe(VcpuExitReason.Halt);
    const view = new DataView(compiled.ram.buffer);
    expect(view.getUint32(0x9000 + 12, true)).toBe(50); // #PF taken 2 x 50 times, resumed
    expect(compiled.blocks?.compiled ?? 0).toBeGreaterThan(10);
    console.log(
      `${tier} block tier lockstep: ${slices} slices, ${compiled.instructionsRetired} instructions, ${compiled.blocks?.compiled} blocks compiled`,
    );
  });

  it("runs with the tier off (jit: false) and compiles a loop once it is hot", () => {
    const code = assemble("mov ecx, 1000\nl: dec ecx\njnz l\nhlt");
    const off = createFlatCpu(code, { jit: false });
    expect(off.blocks).toBeNull();
    const on = createFlatCpu(code, { jitThreshold: 100, wasm });
    expect(on.run(100_000)).toBe(VcpuExitReason.Halt);
    expect(on.instructionsRetired).toBe(2002);
    // The WebAssembly tier queues hot blocks and compiles them by the module.
    expect((on.blocks?.compiled ?? 0) + (on.wasmTier?.queued ?? 0)).toBeGreaterThan(0);
  });
});
