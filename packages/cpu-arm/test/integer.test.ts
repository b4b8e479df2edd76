import { VcpuExitReason } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { assemble, hasAssembler } from "./support/assemble";
import { hex, machine } from "./support/machine";
import { describeDifferences, hasOracle, kumoArea, qemuArea } from "./support/oracle";

/**
 * Hand-written instruction sequences, each compared with qemu-aarch64 on
 * every register, NZCV and the 64 KiB data area (no hand-copied expected
 * values: the oracle answers).
 */
const SEQUENCES: Record<string, string> = {
  "adds sets C and V at the 64-bit boundaries": `
      mov x0, #-1
      adds x1, x0, #1
      mrs x10, nzcv
      mov x2, #0x7fffffffffffffff
      adds x3, x2, #1
      mrs x11, nzcv
      mov x4, #0x8000000000000000
      subs x5, x4, #1
      mrs x12, nzcv
      mov x6, #0
      subs x6, x6, #1
      mrs x13, nzcv
      subs x7, x0, x0
      mrs x14, nzcv
    `,
  "32-bit operations zero the upper half and set flags on bit 31": `
      mov x0, #-1
      adds w1, w0, #1
      mrs x10, nzcv
      mov w2, #0x7fffffff
      add w3, w2, #1
      orr x4, x0, x0
      mov w4, w4
    `,
  "movz/movk/movn, logical immediates and bitfields": `
      movz x0, #0x1234, lsl #48
      movk x0, #0x5678, lsl #16
      movn x1, #0
      movn w2, #1
      and x3, x1, #0x00ff00ff00ff00ff
      eor x4, x1, #0x5555555555555555
      ubfx x5, x0, #16, #16
      sbfx x6, x1, #3, #5
      bfi x7, x0, #8, #8
      lsl x8, x0, #4
      asr x9, x0, #60
      extr x10, x0, x1, #12
    `,
  "multiplies and divides on 64-bit halves": `
      mov x0, #-3
      mov x1, #0x7fffffffffffffff
      mul x2, x0, x1
      smulh x3, x0, x1
      umulh x4, x0, x1
      mov x5, #100
      udiv x6, x0, x5
      sdiv x7, x0, x5
      sdiv x8, x5, x0
      mov x9, #0x8000000000000000
      mov x10, #-1
      sdiv x11, x9, x10
      udiv x12, x5, xzr
      smaddl x13, w0, w5, x5
      umaddl x14, w0, w5, xzr
      msub x15, x5, x5, x1
    `,
  "loads and stores in every addressing form": `
      movz x0, #0x0300
      movk x0, #0x4008, lsl #16
      ldr x20, [x0, #-256]
      ldp x21, x22, [x0, #-504]
      ldrsh x23, [x0, #-200]
      ldrsb w24, [x0, #-101]
      ldr x27, [x0, #3064]
      add x0, x0, #0x1000
      mov x1, #0x8877
      movk x1, #0x6655, lsl #16
      movk x1, #0x4433, lsl #32
      movk x1, #0x2211, lsl #48
      str x1, [x0]
      str w1, [x0, #8]!
      strh w1, [x0], #4
      ldrsb x2, [x0, #-12]
      ldrsh w3, [x0, #-12]
      ldr w4, [x0, #-8]
      ldrsw x5, [x0, #-12]
      mov x6, #3
      ldrb w7, [x0, x6]
      ldr x8, [x0, w6, uxtw #0]
      stp x1, x2, [x0, #16]
      ldp w9, w10, [x0, #16]
      ldpsw x11, x12, [x0, #16]
      ldr x13, lit
      b 1f
      lit: .quad 0x0123456789abcdef
      1:
      ldur x14, [x0, #-11]
      ldr x15, [x0, #-13]
      sub x16, x0, #2048
      and x16, x16, #0xfffffffffffffff0
      ldr w17, [x16, #8]!
      ldrh w18, [x16], #-24
      ldtr x19, [x16]
      sttrb w1, [x16, #1]
      ldxr x25, [x16]
      stxr w26, x1, [x16]
      ldaxr w2, [x16]
      stlxr w3, w0, [x16]
      stxr w4, w0, [x16]
      stlr x1, [x16]
      ldar x5, [x16]
      `,
  "branches: b.cond, cbz, tbz, bl/ret, br": `
      mov x0, #0
      mov x1, #5
    1: add x0, x0, #2
      subs x1, x1, #1
      b.ne 1b
      cbz x1, 2f
      mov x0, #999
    2: tbnz x0, #3, 3f
      mov x0, #998
    3: bl 4f
      b 5f
    4: add x0, x0, #1
      ret
    5: adr x2, 6f
      br x2
      mov x0, #997
    6: nop
    `,
  "conditional select and compare": `
      mov x0, #1
      mov x1, #2
      cmp x0, x1
      csel x2, x0, x1, lt
      csinc x3, x0, x1, ge
      csinv x4, x0, x1, ge
      csneg x5, x0, x1, ge
      cset x6, lt
      ccmp x0, #1, #0, lt
      cset x7, eq
      ccmn x0, #5, #0b1111, gt
      mrs x8, nzcv
    `,
  "bit manipulation: rbit, rev, clz, cls and variable shifts": `
      mov x0, #0x00ff
      movk x0, #0x8000, lsl #48
      rbit x1, x0
      rev x2, x0
      rev16 x3, x0
      rev32 x4, x0
      clz x5, x1
      cls x6, x0
      mov x7, #68
      lsl x8, x0, x7
      asrv x9, x0, x7
      rorv x10, x0, x7
      clz w11, wzr
    `,
};

describe.skipIf(!hasOracle())("A64 integer instructions against qemu-aarch64", () => {
  for (const [name, body] of Object.entries(SEQUENCES)) {
    it(name, () => {
      expect(describeDifferences(qemuArea(body), kumoArea(body).area)).toEqual([]);
    });
  }
});

describe.skipIf(!hasAssembler())("hypervisor exits", () => {
  it("exits: hvc #0xEA1 is a hypercall with x16 and x0-x5, hvc #0 a platform call, wfe a yield", () => {
    const m = machine(
      assemble("mov x16, #29\nmov x0, #-2\nmov x5, #7\nhvc #0xea1\nmov x1, x0\nhvc #0\nwfe\nwfi"),
    );
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Hypercall);
    expect(m.cpu.exit.hypercall).toBe(29);
    expect([...m.cpu.exit.args.slice(0, 2)]).toEqual([0xfffffffe, 0xffffffff]);
    expect(m.cpu.exit.args[10]).toBe(7);
    m.cpu.completeHypercall(-22, -1);
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.PlatformCall);
    expect(hex(m.cpu.getX(1))).toBe("0xffffffffffffffea");
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Yield);
    expect(m.cpu.run(1000)).toBe(VcpuExitReason.Halt);
    expect(m.cpu.instructionsRetired).toBe(8);
  });
});
