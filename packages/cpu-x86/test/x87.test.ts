import { describe, expect, it } from "vitest";
import { compareWithHost, type HostCase, random } from "./support/host";

const next = random(87);
function pick<T>(items: readonly T[]): T {
  return items[next() % items.length];
}

/**
 * x87 against the host FPU. Operands are small integers, divisions are by
 * powers of two and square roots of squares, so that results are exact in
 * double precision (Kumo keeps registers as doubles, a documented deviation:
 * see fpu.ts; constants like fldpi lose their low 11 mantissa bits). Results go to memory as m64/m32/m32int
 * and the status/control words are stored too.
 */
describe("x87 against the host CPU", () => {
  it("probes, arithmetic, comparisons, conversions, stack", () => {
    const loads = [
      "fild dword [buf]",
      "fild word [buf + 4]",
      "fld1",
      "fldz",
      "fild dword [buf + 8]",
    ];
    const ops = [
      "faddp",
      "fsubp",
      "fsubrp",
      "fmulp",
      "fld1\nfadd st0, st0\nfdivp st2, st0\nfaddp",
      "fadd st0, st1\nfstp st1",
      "fxch\nfsubp",
      "fcompp\nfnstsw ax",
      "fucompp\nfnstsw ax",
      "fcomip st0, st1\nfstp st0",
      "fucomip st0, st1\nfstp st0",
      "fabs\nfaddp",
      "fchs\nfmulp",
      "fmul st0, st0\nfsqrt\nfaddp",
      "frndint\nfaddp",
      "fxam\nfnstsw ax\nfstp st0",
      "ftst\nfnstsw ax\nfstp st0",
    ];
    const cases: HostCase[] = [];
    for (let i = 0; i < 300; i++) {
      const a = (next() % 2001) - 1000;
      const b = (next() % 200) - 100 || 3;
      const code = [
        "fninit",
        `mov dword [buf], ${a}`,
        `mov word [buf + 4], ${b}`,
        `mov dword [buf + 8], ${(next() % 64) * 16}`,
        pick(loads),
        pick(loads),
        pick(ops),
        "fst qword [buf + 16]",
        "fst dword [buf + 24]",
        "fistp dword [buf + 28]",
        "fnstsw [buf + 32]",
        "fnstcw [buf + 34]",
        "and eax, 0x4700",
      ].join("\n");
      cases.push({ code, regs: [0, 0, 0, 0, 0, 0, 0, 0], flags: 0, undefinedFlags: 0x8d5 & ~0x45 });
    }
    cases.push({
      code: "fninit\nfnstsw ax\nfnstcw [buf]\nfnsave [buf + 4]\nmov eax, [buf + 4]\nmov ebx, [buf + 8]\nmov ecx, [buf + 12]",
      regs: [0, 0, 0, 0, 0, 0, 0, 0],
      flags: 0,
      ignoreRegs: 0,
    });
    cases.push({
      code: "fninit\nfld1\nfild dword [buf]\nfldz\nfnsave [buf + 4]\nfrstor [buf + 4]\nfstp qword [buf + 8]\nfstp qword [buf + 16]\nfstp qword [buf + 24]\nfnstsw ax",
      regs: [0, 0, 0, 0, 0, 0, 0, 0],
      flags: 0,
    });
    const problems = compareWithHost(cases);
    expect(problems).toEqual([]);
  });
});
