import { VcpuAccess, VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { idtGate } from "./support/idt-gate";
import { assemble } from "./support/nasm";

/**
 * PAE paging with NX (SDM vol. 3A 4.4): identity-maps the first 2 MiB with
 * 4 KiB pages, leaves 0x200000 unmapped, maps 0x201000 read-only and
 * 0x202000 no-execute. A #PF handler records CR2 and the error code and
 * resumes at the address in `resume`.
 */
const PAE = `
RESULTS equ 0x9000
PDPT equ 0x20000
PD equ 0x21000
PT0 equ 0x22000
PT1 equ 0x23000
${loadFlatSegments({ label: "reload" })}
  ; PDPT[0] -> PD
  mov dword [PDPT], PD | 1
  mov dword [PDPT + 4], 0
  ; PD[0] -> PT0 (0-2 MiB), PD[1] -> PT1 (2-4 MiB)
  mov dword [PD], PT0 | 7
  mov dword [PD + 8], PT1 | 7
  ; PT0: identity, writable, user
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
  ; PT1[1] = 0x201000 read-only; PT1[2] = 0x202000 writable, NX
  mov dword [PT1 + 8], 0x201000 | 1
  mov dword [PT1 + 16], 0x202000 | 3
  mov dword [PT1 + 20], 0x80000000
  ; IDT entry 14
${idtGate(14, "pf_handler", "0x8e00")}
  lidt [idt_ptr]
  ; EFER.NXE
  mov ecx, 0xc0000080
  rdmsr
  or eax, 1 << 11
  wrmsr
  mov eax, cr4
  or eax, 1 << 5
  mov cr4, eax
  mov eax, PDPT
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80010000          ; PG | WP
  mov cr0, eax
  xor esi, esi                ; fault counter
  mov dword [resume], .r1
  mov eax, [0x200000]         ; not present: code 0
.r1:
  mov dword [resume], .r2
  mov dword [0x201000], 1     ; read-only: code 3
.r2:
  mov dword [resume], .r3
  mov ebx, 0x202000
  mov byte [ebx], 0xc3        ; writable NX page gets a ret
  call ebx                    ; fetch from NX page: code 0x11
.r3:
  mov eax, [0x201000]         ; readable: no fault
  mov [RESULTS + 40], esi
  hlt

pf_handler:
  pop eax
  mov [RESULTS + esi*8 + 4], eax
  mov eax, cr2
  mov [RESULTS + esi*8], eax
  inc esi
  mov eax, [resume]
  mov [esp], eax
  iret

resume: dd 0
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData])}`;

describe("PAE paging", () => {
  it("raises #PF with the SDM error codes and sets CR2", () => {
    const cpu = createFlatCpu(assemble(PAE));
    const reason = runUntilHalt(cpu, 100_000);
    expect(cpu.exit.message).toBe("");
    expect(reason).toBe(VcpuExitReason.Halt);
    const view = new DataView(cpu.ram.buffer);
    const r = (offset: number) => view.getUint32(0x9000 + offset, true);
    expect(r(40)).toBe(3);
    expect([r(0), r(4)]).toEqual([0x200000, 0]);
    expect([r(8), r(12)]).toEqual([0x201000, 3]); // present, write
    expect([r(16), r(20)]).toEqual([0x202000, 0x11]); // present, instruction fetch
    // The stack page (0x6f000..) was written: A and D set in its PTE.
    expect(view.getUint32(0x22000 + 8 * 0x6f, true) & 0x60).toBe(0x60);
    // Code page 0x1000 read only: accessed.
    expect(view.getUint32(0x22000 + 8, true) & 0x20).toBe(0x20);
  });

  it("translates for the hypervisor without faulting", () => {
    const cpu = createFlatCpu(assemble(PAE));
    runUntilHalt(cpu, 100_000);
    expect(cpu.translate(0x1234, 0, VcpuAccess.Read)).toBe(0x1234);
    expect(cpu.translate(0x200010, 0, VcpuAccess.Read)).toBe(-1);
    expect(cpu.translate(0x201010, 0, VcpuAccess.Read)).toBe(0x201010);
    expect(cpu.translate(0x201010, 0, VcpuAccess.Write)).toBe(-1);
  });
});

describe("two-level paging", () => {
  it("maps 4 MiB PSE pages and 4 KiB pages", () => {
    const cpu = createFlatCpu(
      assemble(`
  mov dword [0x20000], 0x00000083   ; PDE 0: 4 MiB page at 0, writable
  mov dword [0x20004], 0x00021003   ; PDE 1: page table at 0x21000
  mov dword [0x21000], 0x00005003   ; 0x400000 -> 0x5000
  mov eax, cr4
  or eax, 1 << 4
  mov cr4, eax
  mov eax, 0x20000
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax
  mov dword [0x400010], 0xabcd
  mov eax, [0x5010]
  hlt`),
    );
    runUntilHalt(cpu, 1000);
    expect(cpu.exit.message).toBe("");
    expect(cpu.regs[0]).toBe(0xabcd);
  });
});
