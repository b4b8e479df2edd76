/**
 * MMX/SSE/SSE2 behaviour that the differential oracle's one-instruction
 * cases do not reach: the FXSAVE image, MMX aliasing the x87 registers,
 * the CR0/CR4 rules (which ring 3 on Linux cannot vary), save/restore, the
 * approximate reciprocals and CPUID. Results come from the host CPU where it
 * can run the code (compareWithHost); fault vectors follow the SDM tables
 * cited per test.
 */
import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { Cr0, Cr4, Vector } from "../src/constants";
import type { X86Cpu } from "../src/cpu";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { compareWithHost, type HostCase } from "./support/host";
import { assemble } from "./support/nasm";

const zeros = [0, 0, 0, 0, 0, 0, 0, 0];

/** Stores 512 bytes of FXSAVE on an aligned stack area and copies `dwords` (offsets) into buf. */
function fxsaveInto(offsets: number[]): string {
  return [
    "mov ebp, esp",
    "sub esp, 1024",
    "and esp, -16",
    "fxsave [esp]",
    ...offsets.map((offset, i) => `mov eax, [esp + ${offset}]\nmov [buf + ${4 * i}], eax`),
    "mov esp, ebp",
    "xor eax, eax",
  ].join("\n");
}

describe("MMX, SSE and SSE2 against the host CPU", () => {
  it("FXSAVE stores MXCSR, MXCSR_MASK, the MMX registers and XMM0-7 where the host does", () => {
    const cases: HostCase[] = [
      {
        code: [
          "mov dword [buf], 0x7fc0",
          "ldmxcsr [buf]",
          "mov dword [buf], 0x11223344",
          "mov dword [buf + 4], 0x55667788",
          "mov dword [buf + 8], 0x99aabbcc",
          "mov dword [buf + 12], 0xddeeff00",
          "movups xmm3, [buf]",
          "pshufd xmm7, xmm3, 0x1b",
          "fninit",
          "movq mm2, [buf + 4]",
          // MXCSR, MM2 (ST2's significand and exponent), XMM3, XMM7 (SDM vol. 2A table 3-53).
          // MXCSR_MASK (offset 28) is vendor specific: AMD adds bit 17 (MM); Kumo reports Intel's 0xffff.
          fxsaveInto([24, 64, 68, 72, 208, 212, 216, 220, 272, 284]),
          "emms",
        ].join("\n"),
        regs: zeros,
        flags: 0,
        // EBP and the flags of `and esp` depend on where each machine's stack is.
        ignoreRegs: 1 << 5,
        undefinedFlags: 0x8d5,
      },
      {
        // FXRSTOR brings XMM and MXCSR back from an image FXSAVE wrote.
        code: [
          "mov ebp, esp",
          "sub esp, 1024",
          "and esp, -16",
          "mov dword [buf], 0x12345678",
          "movd xmm5, [buf]",
          "pshufd xmm5, xmm5, 0",
          "mov dword [buf], 0x3f80",
          "ldmxcsr [buf]",
          "fxsave [esp]",
          "pxor xmm5, xmm5",
          "mov dword [buf], 0x1f80",
          "ldmxcsr [buf]",
          "fxrstor [esp]",
          "mov esp, ebp",
          "movups [buf], xmm5",
          "stmxcsr [buf + 16]",
        ].join("\n"),
        regs: zeros,
        flags: 0,
        // EBP and the flags of `and esp` depend on where each machine's stack is.
        ignoreRegs: 1 << 5,
        undefinedFlags: 0x8d5,
      },
    ];
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("rounds results at the underflow threshold like the host (tininess after rounding, every mode)", () => {
    const cases: HostCase[] = [];
    // [a low, a high, b low, b high, operation]: quotients and products just below 2^-1022.
    const doubles: [number, number, number, number, string][] = [
      [0, 0x00100000, 1, 0x3ff00000, "divsd"],
      [0, 0x00100000, 0xffffffff, 0x3fefffff, "mulsd"],
      [1, 0x00100000, 0xffffffff, 0x3fefffff, "mulsd"],
      [0, 0x00100000, 0, 0x3ff00000, "divsd"],
      [0, 0x00200000, 1, 0x40000000, "divsd"],
    ];
    for (const [aLow, aHigh, bLow, bHigh, operation] of doubles) {
      for (let mode = 0; mode < 4; mode++) {
        for (const extra of [0, 0x8000]) {
          // All exceptions masked (an unmasked one would kill the host process), with and without FZ.
          const control = 0x1f80 | (mode << 13) | extra;
          cases.push({
            code: [
              `mov dword [buf], ${control}`,
              "ldmxcsr [buf]",
              `mov dword [buf + 8], ${aLow}\nmov dword [buf + 12], ${aHigh}`,
              `mov dword [buf + 16], ${bLow}\nmov dword [buf + 20], ${bHigh}`,
              "movsd xmm0, [buf + 8]",
              "movsd xmm1, [buf + 16]",
              `${operation} xmm0, xmm1`,
              "movsd [buf + 24], xmm0",
              "stmxcsr [buf + 32]",
              "mov dword [buf], 0x1f80\nldmxcsr [buf]",
            ].join("\n"),
            regs: zeros,
            flags: 0,
          });
        }
      }
    }
    // Single precision at FLT_MIN.
    for (let mode = 0; mode < 4; mode++) {
      cases.push({
        code: [
          `mov dword [buf], ${0x1f80 | (mode << 13)}`,
          "ldmxcsr [buf]",
          "mov dword [buf + 8], 0x00800000\nmov dword [buf + 12], 0x3f800001\nmov dword [buf + 16], 0x3f7fffff",
          "movss xmm0, [buf + 8]\nmovss xmm2, xmm0",
          "divss xmm0, [buf + 12]\nmulss xmm2, [buf + 16]",
          "movss [buf + 24], xmm0\nmovss [buf + 28], xmm2",
          "stmxcsr [buf + 32]",
          "mov dword [buf], 0x1f80\nldmxcsr [buf]",
        ].join("\n"),
        regs: zeros,
        flags: 0,
      });
    }
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("MMX instructions make the x87 stack all valid with TOP 0, EMMS empties it", () => {
    const cases: HostCase[] = [
      {
        // Control, status and tag words of FNSTENV (its pointers are not modelled, see x87.ts).
        code: [
          "fninit\nfld1\nfld1\nmovq mm1, [buf]",
          "fnstenv [esp - 64]\nmov eax, [esp - 60]\nmov [buf + 8], eax\nmov eax, [esp - 56]\nmov [buf + 12], eax",
          "emms",
          "fnstenv [esp - 64]\nmov eax, [esp - 60]\nmov [buf + 16], eax\nmov eax, [esp - 56]\nmov [buf + 20], eax",
          "xor eax, eax",
        ].join("\n"),
        regs: zeros,
        flags: 0,
      },
      {
        // An MMX read of a register x87 code wrote: the 64-bit significand.
        code: "fninit\nfld1\nfild dword [buf]\nfldpi\nfstp st0\nmovq [buf + 8], mm6\nmovq [buf + 16], mm7\nemms",
        regs: zeros,
        flags: 0,
      },
    ];
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("runs a glibc-style SSE2 strlen loop like the host", () => {
    const cases: HostCase[] = [];
    for (let length = 0; length < 40; length += 7) {
      cases.push({
        code: [
          "mov edi, buf",
          "mov ecx, 64",
          "mov al, 0x41",
          "rep stosb",
          `mov byte [buf + ${length}], 0`,
          "mov eax, buf",
          "pxor xmm0, xmm0",
          `strlen${length}:`,
          "movdqu xmm1, [eax]",
          "pcmpeqb xmm1, xmm0",
          "pmovmskb edx, xmm1",
          "add eax, 16",
          "test edx, edx",
          `jz strlen${length}`,
          "bsf edx, edx",
          "lea eax, [eax + edx - 16]\nsub eax, buf\nxor edi, edi",
        ].join("\n"),
        regs: zeros,
        flags: 0,
        undefinedFlags: 0x8d5,
      });
    }
    expect(compareWithHost(cases)).toEqual([]);
  });
});

/** A flat CPU whose every IDT vector leads to a `hlt` at HANDLERS + 16 * vector. */
const HANDLERS = 0x100000;
function faultingCpu(source: string, cr0Set: number, cr4: number): X86Cpu {
  const cpu = createFlatCpu(assemble(`${source}\nhlt`));
  const view = new DataView(cpu.ram.buffer);
  // GDT entries 0x10 (code) and 0x18 (data), flat, as setFlatProtectedMode's selectors expect.
  view.setUint32(0x10, 0x0000ffff, true);
  view.setUint32(0x14, 0x00cf9b00, true);
  view.setUint32(0x18, 0x0000ffff, true);
  view.setUint32(0x1c, 0x00cf9300, true);
  cpu.gdtrBase = 0;
  cpu.gdtrLimit = 0x1f;
  cpu.idtrBase = 0x800;
  cpu.idtrLimit = 0x7ff;
  for (let vector = 0; vector < 256; vector++) {
    const handler = HANDLERS + 16 * vector;
    view.setUint32(0x800 + 8 * vector, (0x10 << 16) | (handler & 0xffff), true);
    view.setUint32(0x804 + 8 * vector, (handler & 0xffff0000) | 0x8e00, true);
    cpu.ram[handler] = 0xf4;
  }
  cpu.cr0 |= cr0Set;
  cpu.writeCr4(cr4);
  return cpu;
}

/** The vector the code ended in (-1: it reached its final hlt). */
function vectorOf(source: string, cr0Set = Cr0.NE, cr4 = Cr4.OSFXSR | Cr4.OSXMMEXCPT): number {
  const cpu = faultingCpu(source, cr0Set, cr4);
  expect(runUntilHalt(cpu, 10_000)).toBe(VcpuExitReason.Halt);
  const at = (cpu.eip >>> 0) - 1;
  return at >= HANDLERS ? (at - HANDLERS) / 16 : -1;
}

describe("SSE and MMX exception rules (SDM vol. 3A 2.5, 13.1, vol. 2 exception tables)", () => {
  const sse = "addps xmm0, xmm1";
  const mmx = "paddb mm0, mm1";

  it("SSE is #UD without CR4.OSFXSR or with CR0.EM, #NM with CR0.TS", () => {
    expect(vectorOf(sse)).toBe(-1);
    expect(vectorOf(sse, Cr0.NE, 0)).toBe(Vector.UD);
    expect(vectorOf(sse, Cr0.EM)).toBe(Vector.UD);
    expect(vectorOf(sse, Cr0.TS)).toBe(Vector.NM);
    expect(vectorOf("ldmxcsr [0x2000]", Cr0.NE, 0)).toBe(Vector.UD);
  });

  it("MMX needs no CR4 bit: #UD with CR0.EM, #NM with CR0.TS, #MF for a pending x87 exception", () => {
    expect(vectorOf(mmx, Cr0.NE, 0)).toBe(-1);
    expect(vectorOf(mmx, Cr0.EM)).toBe(Vector.UD);
    expect(vectorOf(mmx, Cr0.TS)).toBe(Vector.NM);
    // Unmask ZE, divide by zero: the next MMX instruction delivers #MF.
    expect(vectorOf(`fninit\npush 0x37b\nfldcw [esp]\nfld1\nfldz\nfdivp\n${mmx}`)).toBe(Vector.MF);
  });

  it("an unmasked SIMD exception is #XM, or #UD without CR4.OSXMMEXCPT; the destination is kept", () => {
    const divide =
      "mov dword [0x2000], 0x1d00\nldmxcsr [0x2000]\nxorps xmm1, xmm1\nmov dword [0x2010], 0x3f800000\nmovss xmm0, [0x2010]\ndivss xmm0, xmm1";
    expect(vectorOf(divide)).toBe(Vector.XM);
    expect(vectorOf(divide, Cr0.NE, Cr4.OSFXSR)).toBe(Vector.UD);
    const cpu = faultingCpu(divide, Cr0.NE, Cr4.OSFXSR | Cr4.OSXMMEXCPT);
    runUntilHalt(cpu, 10_000);
    expect(cpu.fpu.xmm[0]).toBe(0x3f800000);
    expect(cpu.fpu.mxcsr & 0x3f).toBe(0x04); // ZE
  });

  it("a misaligned 16-byte operand is #GP(0) except for the unaligned moves; LDMXCSR reserved bits #GP(0)", () => {
    expect(vectorOf("movaps xmm0, [0x2004]")).toBe(Vector.GP);
    expect(vectorOf("addps xmm0, [0x2004]")).toBe(Vector.GP);
    expect(vectorOf("movups xmm0, [0x2004]")).toBe(-1);
    expect(vectorOf("movdqu xmm0, [0x2004]")).toBe(-1);
    expect(vectorOf("addss xmm0, [0x2004]")).toBe(-1);
    expect(vectorOf("mov dword [0x2000], 0x10000\nldmxcsr [0x2000]")).toBe(Vector.GP);
  });
});

describe("SSE state", () => {
  it("saveState/restoreState carry XMM, MM and MXCSR", () => {
    const code = [
      "mov dword [0x2000], 0x3fc0",
      "ldmxcsr [0x2000]",
      "mov eax, 0xdeadbeef",
      "movd xmm6, eax",
      "pshufd xmm6, xmm6, 0x4e",
      "movd mm3, eax",
    ].join("\n");
    const cpu = createFlatCpu(assemble(`${code}\nhlt`), { sse: true });
    runUntilHalt(cpu);
    const state = JSON.parse(JSON.stringify(cpu.saveState()));
    const other = createFlatCpu(new Uint8Array([0xf4]));
    other.restoreState(state);
    expect(Array.from(other.fpu.xmm)).toEqual(Array.from(cpu.fpu.xmm));
    expect(other.fpu.xmm[26]).toBe(0xdeadbeef | 0);
    expect(other.fpu.mxcsr).toBe(0x3fc0);
    expect(Array.from(other.fpu.mm)).toEqual(Array.from(cpu.fpu.mm));
    expect(other.fpu.mmValid[3]).toBe(1);
    expect(() => other.restoreState({ ...state, fpu: { ...state.fpu, mxcsr: 0x10000 } })).toThrow(
      /mxcsr/,
    );
  });

  it("FXSAVE reports Intel's MXCSR_MASK 0xffff (all of MXCSR's low word writable, DAZ included; SDM vol. 1 11.6.6)", () => {
    const cpu = createFlatCpu(assemble("fxsave [0x2000]\nhlt"), { sse: true });
    runUntilHalt(cpu);
    expect(new DataView(cpu.ram.buffer).getUint32(0x2000 + 28, true)).toBe(0xffff);
  });

  it("CPUID.1:EDX advertises MMX, FXSR, SSE and SSE2", () => {
    const cpu = createFlatCpu(assemble("mov eax, 1\ncpuid\nhlt"));
    runUntilHalt(cpu);
    expect((cpu.regs[2] >>> 23) & 0xf).toBe(0xf);
  });

  it("RCPPS and RSQRTPS stay within the architectural 1.5 * 2^-12 relative error", () => {
    const values = [1, 3, 0.1, 1e-30, 7e30, 2.5, 123.456, 1e-10];
    const source = values.map(
      (v, i) => `mov dword [0x${(0x2000 + 4 * i).toString(16)}], __float32__(${v.toExponential()})`,
    );
    const cpu = createFlatCpu(
      assemble(
        `${source.join("\n")}\nmovups xmm0, [0x2000]\nmovups xmm1, [0x2010]\nrcpps xmm2, xmm0\nrcpps xmm3, xmm1\nrsqrtps xmm4, xmm0\nrsqrtps xmm5, xmm1\nhlt`,
      ),
      { sse: true },
    );
    runUntilHalt(cpu);
    const lanes = new Float32Array(cpu.fpu.xmm.buffer);
    values.forEach((v, i) => {
      const x = Math.fround(v);
      const rcp = lanes[(i < 4 ? 8 : 12) + (i % 4)];
      const rsqrt = lanes[(i < 4 ? 16 : 20) + (i % 4)];
      expect(Math.abs(rcp * x - 1)).toBeLessThanOrEqual(1.5 * 2 ** -12);
      expect(Math.abs(rsqrt * Math.sqrt(x) - 1)).toBeLessThanOrEqual(1.5 * 2 ** -12);
    });
  });
});
