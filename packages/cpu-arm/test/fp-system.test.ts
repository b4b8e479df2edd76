import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { ExceptionClass } from "../src/cpu";
import { ID_AA64PFR0_EL1 } from "../src/system-registers";
import { assemble, hasAssembler } from "./support/assemble";
import { hex, machine } from "./support/machine";
import { withVectorTable } from "./support/vectors";

/**
 * The system side of FP/Advanced SIMD: CPACR_EL1.FPEN traps (Arm ARM
 * D19.2 CPACR_EL1; the trap Linux's do_fpsimd_acc answers when it
 * enables FP lazily), ID_AA64PFR0_EL1, and the V registers in saved state.
 */
const program = withVectorTable;

/** ESR_EL1 of a trapped FP/SIMD access: EC 0x07, IL, ISS CV = 1 with COND = 0b1110 (AArch64). */
const FP_TRAP_ESR = hex(BigInt(((ExceptionClass.FpAccess << 26) | (1 << 25) | 0x1e00000) >>> 0));

describe.skipIf(!hasAssembler())("FP/SIMD enable traps", () => {
  const cases: [string, number, boolean, string, boolean][] = [
    // [name, FPEN, at EL0, instruction, traps]
    ["FPEN 0b00 traps EL1", 0, false, "fadd d0, d1, d2", true],
    ["FPEN 0b10 traps EL1", 2, false, "mov v0.16b, v1.16b", true],
    ["FPEN 0b01 allows EL1", 1, false, "fadd d0, d1, d2", false],
    ["FPEN 0b01 traps EL0", 1, true, "ldr q0, [sp]", true],
    ["FPEN 0b01 traps EL0 MRS FPCR", 1, true, "mrs x5, fpcr", true],
    ["FPEN 0b11 allows EL0", 3, true, "str d0, [sp, #-16]!", false],
    ["FPEN 0b00 traps EL1 MSR FPSR", 0, false, "msr fpsr, xzr", true],
    ["FPEN 0b00 traps EL1 LD1", 0, false, "ld1 {v0.16b}, [sp]", true],
    ["FPEN 0b00 traps EL1 FMOV from general", 0, false, "fmov d0, x1", true],
    ["FPEN 0b00 traps EL1 LDR (literal)", 0, false, "ldr q0, .", true],
    ["FPEN 0b01 traps EL0 LDP (Q)", 1, true, "ldp q0, q1, [sp]", true],
    ["FPEN 0b01 traps EL0 LD1R", 1, true, "ld1r {v0.4s}, [sp]", true],
  ];
  for (const [name, fpen, el0, instruction, traps] of cases) {
    it(`${name}: ${instruction}`, () => {
      const m = machine(
        assemble(
          program(`
        mov x1, #${fpen << 20}
        msr cpacr_el1, x1
        ${
          el0
            ? `adr x1, user
        msr elr_el1, x1
        mov x1, sp
        msr sp_el0, x1
        msr spsr_el1, xzr
        eret
      user:`
            : ""
        }
        mov x20, #1
      target:
        ${instruction}
        mov x20, #2
        wfi
      `),
        ),
      );
      expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
      if (traps) {
        // Synchronous exception to EL1: lower-EL vector 0x400 from EL0, current-EL SP_EL1 vector 0x200 from EL1.
        expect(m.cpu.getX(20)).toBe(el0 ? 0x400n : 0x200n);
        expect(hex(m.cpu.getX(21))).toBe(FP_TRAP_ESR);
        const elr = m.cpu.getX(22);
        expect(m.memory.read32(Number(elr)) >>> 0).toBe(
          assemble(instruction).reduce((word, byte, i) => word + byte * 256 ** i, 0),
        );
      } else {
        expect(m.cpu.getX(20)).toBe(2n);
      }
    });
  }

  it("an unallocated encoding in the FP/SIMD space is UNDEFINED (EC 0) when FP is enabled", () => {
    const m = machine(
      assemble(
        program(`
        mov x1, #${3 << 20}
        msr cpacr_el1, x1
        .inst 0x1e604000 | (3 << 15) | (2 << 22)
      `),
      ),
    );
    m.cpu.run(1000);
    expect(m.cpu.getX(20)).toBe(0x200n);
    expect(m.cpu.getX(21) >> 26n).toBe(0n);
  });

  it("ID_AA64PFR0_EL1 advertises FP and AdvSIMD (fields 0b0000) and AArch64-only EL0/EL1", () => {
    expect((ID_AA64PFR0_EL1 >>> 16) & 0xf).toBe(0);
    expect((ID_AA64PFR0_EL1 >>> 20) & 0xf).toBe(0);
    const m = machine(assemble(program("mrs x5, id_aa64pfr0_el1")));
    m.cpu.run(1000);
    expect(m.cpu.getX(5)).toBe(BigInt(ID_AA64PFR0_EL1));
  });
});

describe.skipIf(!hasAssembler())("FP/SIMD state", () => {
  it("the VMM reads and writes FPCR/FPSR whatever CPACR_EL1.FPEN says", () => {
    const m = machine(assemble("wfi"));
    m.cpu.writeSystemRegister("FPCR", 0x00c00000);
    m.cpu.writeSystemRegister("FPSR", 0x10);
    expect(m.cpu.readSystemRegister("FPCR")).toEqual([0xc00000, 0]);
    expect(m.cpu.readSystemRegister("FPSR")).toEqual([0x10, 0]);
    expect(m.cpu.readSystemRegister("ESR_EL1")).toEqual([0, 0]);
    expect(m.cpu.run(10)).toBe(VcpuExitReason.Halt);
  });

  it("saves and restores V registers, FPCR and FPSR through JSON", () => {
    const code = assemble(`
      mov x1, #${3 << 20}
      msr cpacr_el1, x1
      mov x1, #0x00c00000
      msr fpcr, x1
      movi v3.16b, #0x5a
      mov x2, #0x1234
      dup v31.8h, w2
      fmov d7, #1.0
      fmov d8, #3.0
      fdiv d9, d7, d8
      wfi
      mrs x4, fpsr
      mrs x5, fpcr
      wfi
    `);
    const first = machine(code);
    expect(first.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    const state = JSON.parse(JSON.stringify(first.cpu.saveState()));
    expect(state.version).toBe(2);
    const second = machine(code);
    second.cpu.restoreState(state);
    expect(second.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(second.cpu.getX(4)).toBe(0x10n); // IXC from 1.0 / 3.0 (rounded toward zero)
    expect(second.cpu.getX(5)).toBe(0xc00000n);
    expect(Array.from(second.cpu.v32.subarray(0, 128))).toEqual(
      Array.from(first.cpu.v32.subarray(0, 128)),
    );
    expect(second.cpu.v8[3 * 16 + 15]).toBe(0x5a);
    expect(second.cpu.v16[31 * 8 + 7]).toBe(0x1234);
    // A version 1 state (before FP/SIMD) restores with zeroed V registers.
    const old = { ...state, version: 1 };
    delete old.v;
    second.cpu.restoreState(old);
    expect(second.cpu.v8[3 * 16 + 15]).toBe(0);
    expect(() => second.cpu.restoreState({ ...state, v: [1, 2] })).toThrow(/128 words/);
  });
});
