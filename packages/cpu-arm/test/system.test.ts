import { type InterruptSource, VcpuExitReason } from "@kumo/abi";
import { Arm64PageTableBuilder } from "@kumo/mmu/test";
import { describe, expect, it } from "vitest";
import { ExceptionClass } from "../src/cpu";
import { assemble, hasAssembler } from "./support/assemble";
import { hex, machine, RAM_BASE } from "./support/machine";
import { withVectorTable } from "./support/vectors";

/**
 * Exception entry and return at EL0/EL1 (Arm ARM D1.10, D1.11): each test
 * program installs a vector table whose sixteen entries record their own
 * offset in x20 and the syndrome registers in x21-x24, then stop at wfi.
 */
const program = (body: string) =>
  withVectorTable(body, ["mrs x23, spsr_el1", "mrs x24, far_el1", "mrs x25, CurrentEL"]);

function run(body: string, setup?: (m: ReturnType<typeof machine>) => void) {
  const m = machine(assemble(program(body)));
  setup?.(m);
  const reason = m.cpu.run(10000);
  return { ...m, reason };
}

const esr = (ec: number, iss: number) => hex(BigInt(((ec << 26) | (1 << 25) | iss) >>> 0));

describe.skipIf(!hasAssembler())("exceptions", () => {
  it("svc from EL0 enters the lower-EL vector with EC 0x15 and returns with eret", () => {
    const { cpu, memory, reason } = run(`
      adr x1, user
      msr elr_el1, x1
      msr spsr_el1, xzr
      eret
    user:
      mov x5, #7
      svc #0x42
    `);
    expect(reason).toBe(VcpuExitReason.Halt);
    expect(cpu.getX(20)).toBe(0x400n);
    expect(hex(cpu.getX(21))).toBe(esr(ExceptionClass.Svc64, 0x42));
    // ELR_EL1 is the address after the svc (whose word is 0xd4000001 | imm16 << 5).
    expect(memory.read32(Number(cpu.getX(22)) - 4).toString(16)).toBe(
      ((0xd4000001 | (0x42 << 5)) >>> 0).toString(16),
    );
    expect(cpu.getX(5)).toBe(7n);
    expect(cpu.getX(23)).toBe(0n); // SPSR: EL0t, flags clear, DAIF clear
    expect(cpu.getX(25)).toBe(4n); // CurrentEL = EL1
  });

  it("an undefined instruction at EL1 takes EC 0 at the current-EL SP_EL1 vector, ELR at the instruction", () => {
    const { cpu } = run(`
    bad:
      udf #0
    `);
    expect(cpu.getX(20)).toBe(0x200n);
    expect(hex(cpu.getX(21))).toBe(esr(ExceptionClass.Unknown, 0));
    expect(hex(cpu.getX(23))).toBe(hex(0x3c5n)); // DAIF masked, EL1h
    expect(cpu.readSystemRegister("ELR_EL1")[0]).toBe(Number(cpu.getX(22)));
  });

  it("brk reports EC 0x3c with its immediate; mrs of an EL1 register at EL0 is undefined", () => {
    expect(hex(run("brk #0x99").cpu.getX(21))).toBe(esr(ExceptionClass.Brk64, 0x99));
    const { cpu } = run(`
      adr x1, user
      msr elr_el1, x1
      msr spsr_el1, xzr
      eret
    user:
      mrs x0, sctlr_el1
    `);
    expect(cpu.getX(20)).toBe(0x400n);
    expect(hex(cpu.getX(21))).toBe(esr(ExceptionClass.Unknown, 0));
  });

  it("a translation fault with the MMU on is a data abort with DFSC and FAR", () => {
    const { cpu } = run(
      `
      movz x0, #0x70, lsl #32
      movk x0, #0x1234
      str x1, [x0]
    `,
      ({ cpu, memory }) => {
        const tables = new Arm64PageTableBuilder(memory, 48, {
          start: RAM_BASE + 0x40000,
          end: RAM_BASE + 0x60000,
        });
        tables.map(RAM_BASE, RAM_BASE, 1 << 20);
        cpu.writeSystemRegister("MAIR_EL1", 0xff);
        cpu.writeSystemRegister("TCR_EL1", 16 | (1 << 23), 5);
        cpu.writeSystemRegister("TTBR0_EL1", tables.ttbr);
        const [sctlr] = cpu.readSystemRegister("SCTLR_EL1");
        cpu.writeSystemRegister("SCTLR_EL1", sctlr | 1);
      },
    );
    expect(cpu.getX(20)).toBe(0x200n);
    // Arm ARM ESR_ELx ISS for data aborts: WnR (bit 6), DFSC 0b000101 = translation fault, level 1.
    expect(hex(cpu.getX(21))).toBe(esr(ExceptionClass.DataAbortSame, (1 << 6) | 0x05));
    expect(hex(cpu.getX(24))).toBe("0x7000001234");
  });

  it("tlbi makes a changed translation visible", () => {
    const m = machine(
      assemble(`
      movz x0, #0x20, lsl #32
      ldr x1, [x0]
      hvc #0xea1
      tlbi vmalle1
      dsb sy
      isb
      ldr x3, [x0]
      wfi
    `),
    );
    const tables = new Arm64PageTableBuilder(m.memory, 48, {
      start: RAM_BASE + 0x40000,
      end: RAM_BASE + 0x60000,
    });
    tables.map(RAM_BASE, RAM_BASE, 1 << 20);
    tables.map(0x2000000000n, RAM_BASE + 0x90000, 4096);
    m.memory.write32(RAM_BASE + 0x90000, 0x1111);
    m.memory.write32(RAM_BASE + 0x91000, 0x2222);
    m.cpu.writeSystemRegister("MAIR_EL1", 0xff);
    m.cpu.writeSystemRegister("TCR_EL1", 16 | (1 << 23), 5);
    m.cpu.writeSystemRegister("TTBR0_EL1", tables.ttbr);
    m.cpu.writeSystemRegister("SCTLR_EL1", m.cpu.readSystemRegister("SCTLR_EL1")[0] | 1);
    expect(m.cpu.run(100)).toBe(VcpuExitReason.Hypercall);
    expect(m.cpu.getX(1)).toBe(0x1111n);
    tables.map(0x2000000000n, RAM_BASE + 0x91000, 4096);
    expect(m.cpu.run(100)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(3)).toBe(0x2222n);
  });

  it("takes an IRQ when PSTATE.I is cleared, at the current-EL IRQ vector", () => {
    let pending = true;
    const source: InterruptSource = { hasPending: () => pending, acknowledge: () => 27 };
    const { cpu } = run(
      `
      mov x3, #1
      msr daifclr, #2
      mov x3, #2
    `,
      ({ cpu }) => {
        cpu.interrupts = source;
      },
    );
    pending = false;
    expect(cpu.getX(20)).toBe(0x280n);
    expect(cpu.getX(3)).toBe(1n);
    expect(hex(cpu.getX(23))).toBe(hex(0x345n)); // I was clear when taken
  });

  it("wfi halts only without a pending interrupt", () => {
    const m = machine(assemble("wfi\nmov x0, #1\nwfi"));
    expect(m.cpu.run(100)).toBe(VcpuExitReason.Halt);
    m.cpu.interrupts = { hasPending: () => true, acknowledge: () => -1 };
    expect(m.cpu.run(2)).toBe(VcpuExitReason.Budget);
    expect(m.cpu.getX(0)).toBe(1n);
  });
});

describe.skipIf(!hasAssembler())("code and state", () => {
  it("drops decoded code when the guest overwrites it", () => {
    const m = machine(
      assemble(`
      mov x2, #0
    again:
      mov x0, #1
      add x2, x2, #1
      cmp x2, #2
      b.eq done
      adr x3, again
      ldr w4, replacement
      str w4, [x3]
      b again
    replacement:
      mov x0, #5
    done:
      wfi
    `),
    );
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(0)).toBe(5n);
  });

  it("saves and restores a running CPU through JSON with the same result", () => {
    const code = assemble(`
      mov x0, #0
      mov x1, #1
    loop:
      add x2, x0, x1
      mov x0, x1
      mov x1, x2
      msr tpidr_el0, x2
      cmp x2, #1000
      b.lo loop
      wfi
    `);
    const straight = machine(code);
    expect(straight.cpu.run(10000)).toBe(VcpuExitReason.Halt);
    const first = machine(code);
    expect(first.cpu.run(17)).toBe(VcpuExitReason.Budget);
    const state = JSON.parse(JSON.stringify(first.cpu.saveState()));
    expect(state.kind).toBe("arm64-cpu");
    const second = machine(code);
    second.cpu.restoreState(state);
    expect(second.cpu.run(10000)).toBe(VcpuExitReason.Halt);
    for (let i = 0; i < 3; i++) expect(second.cpu.getX(i)).toBe(straight.cpu.getX(i));
    expect(second.cpu.readSystemRegister("TPIDR_EL0")).toEqual(
      straight.cpu.readSystemRegister("TPIDR_EL0"),
    );
    expect(second.cpu.instructionsRetired).toBe(straight.cpu.instructionsRetired);
    expect(() => second.cpu.restoreState({ kind: "x86-cpu", version: 1 })).toThrow(/arm64-cpu/);
  });
});
