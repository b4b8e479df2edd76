import { type InterruptSource, VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { ARM64_TIMER_PPI, Arm64Timer, ExceptionClass } from "../src/cpu";
import { assemble, hasAssembler } from "./support/assemble";
import { hex, machine } from "./support/machine";
import { withVectorTable } from "./support/vectors";

/**
 * The generic timer at EL1/EL0 (Arm ARM D11.2 "The AArch64 view of the
 * Generic Timer"): CVAL/TVAL/CTL of the EL1 physical and virtual timers
 * against the VMM's counter, ISTATUS, the output reported to the VMM for
 * the GIC, CNTKCTL_EL1's EL0 access controls, and the IRQ/FIQ inputs.
 */
const program = withVectorTable;

const esr = (ec: number, iss: number) => hex(BigInt(((ec << 26) | (1 << 25) | iss) >>> 0));

describe.skipIf(!hasAssembler())("generic timer", () => {
  it("reports ISTATUS and the output as CVAL is reached, and IMASK hides only the output", () => {
    let now = 500;
    const events: [number, boolean][] = [];
    const m = machine(
      assemble(
        program(`
      mov x1, #1000
      msr cntv_cval_el0, x1
      mov x1, #1
      msr cntv_ctl_el0, x1
      mrs x2, cntv_ctl_el0
      mrs x3, cntv_tval_el0
      mrs x4, cntvct_el0
      wfi
      mrs x5, cntv_ctl_el0
      mov x1, #3
      msr cntv_ctl_el0, x1
      mrs x6, cntv_ctl_el0
    `),
      ),
      () => now,
    );
    m.cpu.onTimer = (timer, asserted) => events.push([timer, asserted]);
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(2)).toBe(1n); // enabled, condition not met
    expect(m.cpu.getX(3)).toBe(500n); // TVAL = CVAL - count
    expect(m.cpu.getX(4)).toBe(500n);
    expect(events).toEqual([]);
    expect(m.cpu.timerDeadline(Arm64Timer.Virtual)).toBe(1000);
    expect(m.cpu.nextTimerDeadline()).toBe(1000);
    expect(m.cpu.timerDeadline(Arm64Timer.Physical)).toBe(Number.POSITIVE_INFINITY);
    now = 1000;
    m.cpu.updateTimers();
    expect(events).toEqual([[Arm64Timer.Virtual, true]]);
    expect(m.cpu.timerOutputs).toBe(2);
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(5)).toBe(5n); // ENABLE | ISTATUS
    expect(m.cpu.getX(6)).toBe(7n); // masked: ISTATUS still reads 1
    expect(events).toEqual([
      [Arm64Timer.Virtual, true],
      [Arm64Timer.Virtual, false],
    ]);
    expect(m.cpu.timerDeadline(Arm64Timer.Virtual)).toBe(Number.POSITIVE_INFINITY);
  });

  it("a TVAL write sets CVAL = count + signed TVAL and the physical timer fires at once when past", () => {
    const events: [number, boolean][] = [];
    const m = machine(
      assemble(
        program(`
      mov x1, #-10
      msr cntp_tval_el0, x1
      mrs x2, cntp_cval_el0
      mov x1, #1
      msr cntp_ctl_el0, x1
      mrs x3, cntp_ctl_el0
      mrs x4, cntp_tval_el0
      mov x1, #0x7fffffff
      msr cntp_tval_el0, x1
      mrs x5, cntp_cval_el0
    `),
      ),
      () => 100,
    );
    m.cpu.onTimer = (timer, asserted) => events.push([timer, asserted]);
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(2)).toBe(90n);
    expect(m.cpu.getX(3)).toBe(5n);
    expect(m.cpu.getX(4)).toBe(0xfffffff6n); // -10 in the low 32 bits, upper bits zero
    expect(m.cpu.getX(5)).toBe(100n + 0x7fffffffn);
    expect(events).toEqual([
      [Arm64Timer.Physical, true],
      [Arm64Timer.Physical, false],
    ]);
    expect(ARM64_TIMER_PPI[Arm64Timer.Physical]).toBe(30);
    expect(ARM64_TIMER_PPI[Arm64Timer.Virtual]).toBe(27);
  });

  it("wfi with an expired timer wakes through the GIC line the output drives", () => {
    let line = false;
    const gic: InterruptSource = { hasPending: () => line, acknowledge: () => -1 };
    const m = machine(
      assemble(`
      mov x1, #50
      msr cntv_cval_el0, x1
      mov x1, #1
      msr cntv_ctl_el0, x1
      wfi
      mov x0, #7
      wfi
    `),
      () => 10,
    );
    let now = 10;
    m.cpu.hooks = { readCounter: () => now };
    m.cpu.interrupts = gic;
    m.cpu.onTimer = (_timer, asserted) => {
      line = asserted;
    };
    expect(m.cpu.run(100)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.getX(0)).toBe(0n);
    now = m.cpu.nextTimerDeadline();
    expect(now).toBe(50);
    // The VMM resumes the halted vCPU at its deadline: the wfi completes because the PPI line is up.
    expect(m.cpu.run(2)).toBe(VcpuExitReason.Budget);
    expect(line).toBe(true);
    expect(m.cpu.getX(0)).toBe(7n);
  });

  it("CNTKCTL_EL1 gates EL0 access to each counter and timer separately (EC 0x18 traps)", () => {
    const attempt = (cntkctl: number, instruction: string) => {
      const m = machine(
        assemble(
          program(`
        mov x1, #${cntkctl}
        msr cntkctl_el1, x1
        adr x1, user
        msr elr_el1, x1
        msr spsr_el1, xzr
        eret
      user:
        mov x20, #1
        ${instruction}
        mov x20, #2
        wfi
      `),
        ),
        () => 1234,
      );
      m.cpu.run(1000);
      return { vector: m.cpu.getX(20), esr: hex(m.cpu.getX(21)) };
    };
    // CNTVCT_EL0 is op0=3 op1=3 CRn=14 CRm=0 op2=2; ISS = op0:op2:op1:CRn:Rt:CRm:direction (Arm ARM D17.2.37).
    const vctIss = (3 << 20) | (2 << 17) | (3 << 14) | (14 << 10) | (5 << 5) | 1;
    expect(attempt(0, "mrs x5, cntvct_el0")).toEqual({
      vector: 0x400n,
      esr: esr(ExceptionClass.SysRegTrap, vctIss),
    });
    expect(attempt(2, "mrs x5, cntvct_el0").vector).toBe(2n);
    expect(attempt(2, "mrs x5, cntpct_el0").vector).toBe(0x400n);
    expect(attempt(1, "mrs x5, cntpct_el0").vector).toBe(2n);
    expect(attempt(1, "mrs x5, cntfrq_el0").vector).toBe(2n);
    expect(attempt(3, "mrs x5, cntv_ctl_el0").vector).toBe(0x400n);
    expect(attempt(1 << 8, "mrs x5, cntv_ctl_el0").vector).toBe(2n);
    expect(attempt(1 << 8, "mrs x5, cntp_ctl_el0").vector).toBe(0x400n);
    expect(attempt(1 << 9, "msr cntp_cval_el0, x5").vector).toBe(2n);
  });
});

describe.skipIf(!hasAssembler())("IRQ and FIQ inputs", () => {
  it("takes an FIQ when PSTATE.F is cleared, at vector 0x100 of the current EL, before a pending IRQ", () => {
    const fiq: InterruptSource = { hasPending: () => true, acknowledge: () => -1 };
    const irq: InterruptSource = { hasPending: () => true, acknowledge: () => -1 };
    const m = machine(
      assemble(
        program(`
      mov x3, #1
      msr daifclr, #3
      mov x3, #2
    `),
      ),
    );
    m.cpu.fiq = fiq;
    m.cpu.interrupts = irq;
    m.cpu.run(1000);
    expect(m.cpu.getX(20)).toBe(0x300n);
    expect(m.cpu.getX(3)).toBe(1n);
  });

  it("wfi completes when only the FIQ line is pending", () => {
    const m = machine(assemble("wfi\nmov x0, #1\nwfi"));
    expect(m.cpu.run(100)).toBe(VcpuExitReason.Halt);
    m.cpu.fiq = { hasPending: () => true, acknowledge: () => -1 };
    expect(m.cpu.run(2)).toBe(VcpuExitReason.Budget);
    expect(m.cpu.getX(0)).toBe(1n);
  });
});
