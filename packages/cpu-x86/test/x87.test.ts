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
 * see fpu.ts; loads with a 64-bit significand keep it, see the second test). Results go to memory as m64/m32/m32int
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

  it("keeps 64-bit significands exact: constants per rounding mode, FILD m64, FLD m80", () => {
    const control = (rc: number) => `mov word [buf + 60], ${0x37f | (rc << 10)}\nfldcw [buf + 60]`;
    // Each loaded value goes out through every store format and, for m80,
    // through FNSAVE/FRSTOR; FLD ST(0) copies it first (the copy keeps its bits).
    const stores = [
      "fld st0",
      "fstp tword [buf]",
      "fld st0",
      "fstp qword [buf + 16]",
      "fstp dword [buf + 24]",
      "fnstsw ax",
    ];
    const cases: HostCase[] = [];
    const flags = { regs: [0, 0, 0, 0, 0, 0, 0, 0], flags: 0 };
    for (let rc = 0; rc < 4; rc++) {
      for (const constant of ["fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz"]) {
        for (const sign of ["", "\nfchs", "\nfchs\nfabs"]) {
          cases.push({
            code: ["fninit", control(rc), constant + sign, ...stores].join("\n"),
            ...flags,
          });
        }
      }
    }
    for (let i = 0; i < 80; i++) {
      const low = next();
      // Magnitudes from 2^32 to 2^63, either sign.
      const high = (next() >>> (i % 32)) | 0;
      cases.push({
        code: [
          "fninit",
          control(i & 3),
          `mov dword [buf + 32], ${low >>> 0}`,
          `mov dword [buf + 36], ${(i & 4 ? -high : high) >>> 0}`,
          "fild qword [buf + 32]",
          "fld st0",
          "fistp qword [buf + 40]",
          ...stores,
        ].join("\n"),
        ...flags,
      });
    }
    for (let i = 0; i < 80; i++) {
      const exponent = 0x3fff + (next() % 200) - 100;
      cases.push({
        code: [
          "fninit",
          control(i & 3),
          `mov dword [buf + 32], ${next() >>> 0}`,
          `mov dword [buf + 36], ${(next() | 0x80000000) >>> 0}`,
          `mov word [buf + 40], ${exponent | (i & 4 ? 0x8000 : 0)}`,
          "fld tword [buf + 32]",
          "lea esp, [esp - 112]",
          "fnsave [esp]",
          "frstor [esp]",
          "lea esp, [esp + 112]",
          ...stores,
        ].join("\n"),
        ...flags,
      });
    }
    expect(compareWithHost(cases)).toEqual([]);
  });
});
