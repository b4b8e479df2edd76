import { describe, expect, it } from "vitest";
import { createFlatCpu, runUntilHalt } from "../src/test/index";
import { type CaseResult, compareWithHost, type HostCase, random, runOnBoth } from "./support/host";
import { assemble } from "./support/nasm";

const next = random(87);
function pick<T>(items: readonly T[]): T {
  return items[next() % items.length];
}

/**
 * x87 against the host FPU. Operands are small integers, divisions are by
 * powers of two and square roots of squares (results exact in double
 * precision; 64-bit rounding is tested in "x87 64-bit results" below).
 * Results go to memory as m64/m32/m32int and the status/control words are
 * stored too.
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

/** nasm lines that write an 80-bit value (sign, biased exponent, 64-bit significand) at [buf + offset]. */
function storeExtended(offset: number, top: number, high: number, low: number): string[] {
  return [
    `mov dword [buf + ${offset}], ${low >>> 0}`,
    `mov dword [buf + ${offset + 4}], ${high >>> 0}`,
    `mov word [buf + ${offset + 8}], ${top & 0xffff}`,
  ];
}

/** A random 80-bit value with |x| in [2^low, 2^high) and a full 64-bit significand. */
function randomExtended(low: number, high: number, negative: boolean): [number, number, number] {
  const exponent = low + (next() % (high - low));
  return [(negative ? 0x8000 : 0) | (exponent + 16383), (next() | 0x80000000) >>> 0, next() >>> 0];
}

/** The m80 at buffer offset as sign, biased exponent, significand. */
function extendedAt(buffer: number[], offset: number): [number, bigint] {
  let significand = 0n;
  for (let i = 7; i >= 0; i--) significand = (significand << 8n) | BigInt(buffer[offset + i]);
  return [buffer[offset + 8] | (buffer[offset + 9] << 8), significand];
}

/** Within one unit in the last place of the 64-bit significand (same sign, adjacent binades allowed). */
function withinOneUnit(host: number[], kumo: number[], offset: number): boolean {
  if (host.slice(offset, offset + 10).every((byte, i) => byte === kumo[offset + i])) return true;
  const [topH, significandH] = extendedAt(host, offset);
  const [topK, significandK] = extendedAt(kumo, offset);
  if ((topH ^ topK) & 0x8000 || Math.abs((topH & 0x7fff) - (topK & 0x7fff)) > 1) return false;
  if ((topH & 0x7fff) === 0x7fff || (topK & 0x7fff) === 0x7fff) return false;
  const low = Math.min(topH & 0x7fff, topK & 0x7fff);
  const h = significandH << BigInt((topH & 0x7fff) - low);
  const k = significandK << BigInt((topK & 0x7fff) - low);
  return (h > k ? h - k : k - h) <= 1n;
}

const control = (rc: number, masks = 0x3f) => [
  `mov word [buf + 60], ${0x340 | masks | (rc << 10)}`,
  "fldcw [buf + 60]",
];

describe("x87 64-bit results against the host CPU", () => {
  it("transcendentals: exact or within 1 ulp of the 64-bit result (SDM vol. 1 8.3.10); out-of-range FSIN/FCOS/FSINCOS/FPTAN exact", () => {
    // [instruction, ST(0) exponent range, ST(1) exponent range, ST(0) may be negative]
    const forms: [string, number, number, number, number, boolean][] = [
      ["fsin", -30, 63, 0, 1, true],
      ["fcos", -30, 63, 0, 1, true],
      ["fsincos", -30, 63, 0, 1, true],
      ["fptan", -30, 63, 0, 1, true],
      ["fpatan", -40, 40, -40, 40, true],
      ["f2xm1", -40, 0, 0, 1, true],
      ["fyl2x", -60, 60, -8, 8, false],
      ["fyl2xp1", -60, -2, -8, 8, true],
    ];
    const cases: HostCase[] = [];
    const outOfRange: boolean[] = [];
    for (const [op, low, high, yLow, yHigh, signed] of forms) {
      for (let i = 0; i < 48; i++) {
        // FSIN and friends beyond 2^63: C2 = 1, ST(0) unchanged (SDM vol. 2A FSIN).
        const far = signed && high === 63 && (i % 8 === 7 || i % 16 === 3);
        // Out of range up to 2^70, and far beyond the double range (a wide register).
        const x = far
          ? i % 16 === 3
            ? randomExtended(1100, 16000, i % 2 === 0)
            : randomExtended(63, 70, i % 2 === 0)
          : randomExtended(low, high, signed && i % 2 === 0);
        if (op === "f2xm1" && !far) x[0] = (x[0] & 0x8000) | Math.min(x[0] & 0x7fff, 16382);
        const y = randomExtended(yLow, yHigh, i % 3 === 0);
        outOfRange.push(far);
        cases.push({
          code: [
            "fninit",
            ...control(i & 3),
            ...storeExtended(0, ...y),
            ...storeExtended(10, ...x),
            "fld tword [buf]",
            "fld tword [buf + 10]",
            op,
            "fnstsw [buf + 40]",
            "fstp tword [buf + 20]",
            "fstp tword [buf + 30]",
          ].join("\n"),
          regs: [0, 0, 0, 0, 0, 0, 0, 0],
          flags: 0,
        });
      }
    }
    const [host, kumo] = runOnBoth(cases);
    let exact = 0;
    let bound = 0;
    const problems: string[] = [];
    cases.forEach((c, i) => {
      const h = host[i].buffer;
      const k = kumo[i].buffer;
      if (h.every((byte, b) => byte === k[b])) {
        exact++;
        return;
      }
      // Everything but the two results and C1 (bit 1 of the status word's high byte) must agree.
      const others = h.every(
        (byte, b) => (b >= 20 && b < 40) || (b === 41 ? (byte ^ k[b]) & ~2 : byte ^ k[b]) === 0,
      );
      if (!outOfRange[i] && others && withinOneUnit(h, k, 20) && withinOneUnit(h, k, 30)) {
        bound++;
        return;
      }
      problems.push(
        `${c.code.replace(/\n/g, "; ")}: host ${hexBytes(host[i])} kumo ${hexBytes(kumo[i])}`,
      );
    });
    console.log(
      `x87 transcendentals against the host: ${cases.length} cases (${outOfRange.filter(Boolean).length} out of range), ${exact} exact, ${bound} within 1 ulp, ${problems.length} outside`,
    );
    expect(problems).toEqual([]);
  });

  it("FPREM/FPREM1 partial remainders, FSCALE at the ends of the range, FLD m80 of every encoding class, stores of values beyond the double range: exact", () => {
    const cases: HostCase[] = [];
    const flags = { regs: [0, 0, 0, 0, 0, 0, 0, 0], flags: 0 };
    for (let i = 0; i < 64; i++) {
      // Exponents 64 to 300 apart: the partial remainder (C2 = 1).
      const a = randomExtended(40, 300, i % 2 === 0);
      const b = randomExtended(-20, 20, i % 3 === 0);
      cases.push({
        code: [
          "fninit",
          ...control(i & 3),
          ...storeExtended(0, ...b),
          ...storeExtended(10, ...a),
          "fld tword [buf]",
          "fld tword [buf + 10]",
          i & 4 ? "fprem1" : "fprem",
          "fnstsw [buf + 40]",
          "fstp tword [buf + 20]",
          "fstp tword [buf + 30]",
        ].join("\n"),
        ...flags,
      });
    }
    const scales = [
      -1e300, -100000, -40960, -32768, -16445, -16400, -1100, 1100, 16300, 16400, 32768, 41000,
      1e300,
    ];
    for (let i = 0; i < 96; i++) {
      const x = randomExtended(-20, 20, i % 2 === 0);
      // All masked, or underflow / overflow unmasked (the exponent-wrapped result).
      const masks = [0x3f, 0x2f, 0x37][i % 3];
      cases.push({
        code: [
          "fninit",
          ...control((i >> 2) & 3, masks),
          ...storeDouble(0, scales[i % scales.length]),
          "fld qword [buf]",
          ...storeExtended(10, ...x),
          "fld tword [buf + 10]",
          "fscale",
          "fnstsw [buf + 40]",
          "fnclex",
          // The stores below with every exception masked.
          "or word [buf + 60], 0x3f",
          "fldcw [buf + 60]",
          "fld st0",
          "fstp tword [buf + 20]",
          "fst qword [buf + 30]",
          "fstp dword [buf + 44]",
          "fnstsw [buf + 48]",
        ].join("\n"),
        ...flags,
      });
    }
    // FLD m80 of each encoding class (SDM vol. 1 8.2.2, table 8-3), then out as m80, m64 and m32.
    const encodings: [number, number, number][] = [
      [0x7fff, 0x00000000, 0x00000001], // pseudo-NaN: integer bit clear
      [0x7fff, 0x00000000, 0x00000000], // pseudo-infinity
      [0x1234, 0x7fffffff, 0x12345678], // unnormal
      [0x0000, 0x80000000, 0x00000001], // pseudo-denormal
      [0x0000, 0x00001234, 0x56789abc], // denormal
      [0x7fff, 0x80000000, 0x00000001], // signalling NaN
      [0xffff, 0xc0000000, 0x00000000], // real indefinite
      [0x7000, 0xf4f4f4f4, 0xf4f4f4f4], // beyond the double range, large
      [0x8100, 0x87654321, 0x0fedcba9], // beyond the double range, tiny
      [0x3c01, 0x87654321, 0x0fedcba9], // the double denormal range
      [0x43fe, 0xffffffff, 0xffffffff], // just below 2^1024
    ];
    for (const encoding of encodings) {
      for (let rc = 0; rc < 4; rc++) {
        cases.push({
          code: [
            "fninit",
            ...control(rc),
            ...storeExtended(10, ...encoding),
            "fld tword [buf + 10]",
            "fnstsw [buf + 40]",
            "fld st0",
            "fld st0",
            "lea esp, [esp - 112]",
            "fnsave [esp]",
            "frstor [esp]",
            "lea esp, [esp + 112]",
            "fxam",
            "fnstsw [buf + 42]",
            "fstp tword [buf + 20]",
            "fstp qword [buf + 30]",
            "fstp dword [buf + 44]",
            "fnstsw [buf + 48]",
            // The tag word (tag of each class) through the 16-bit environment (14 bytes).
            "o16 fnstenv [buf + 50]",
            // The instruction and data pointers are compared in their own test.
            "mov dword [buf + 56], 0",
            "mov dword [buf + 60], 0",
          ].join("\n"),
          ...flags,
        });
      }
    }
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("FIP/FCS/FOP/FDP/FDS in FNSTENV (32- and 16-bit formats), FNSAVE/FRSTOR and FXSAVE", () => {
    // Pointers are stored relative to the marked instruction and to `buf`,
    // selectors minus CS/DS: the host's load addresses and selectors differ
    // from the flat test CPU's, the differences must not.
    const normalize = [
      "mov eax, [buf + 12]",
      "sub eax, mark",
      "mov [buf + 12], eax",
      "mov ax, cs",
      "sub [buf + 16], ax",
      "mov eax, [buf + 20]",
      "sub eax, buf",
      "mov [buf + 20], eax",
      "mov ax, ds",
      "sub [buf + 24], ax",
      "mov eax, mark",
      "sub [buf + 38], ax",
      "mov ax, cs",
      "sub [buf + 40], ax",
      "mov eax, buf",
      "sub [buf + 42], ax",
      "mov ax, ds",
      "sub [buf + 44], ax",
    ];
    const instructions = [
      "fld qword [buf + 48]",
      "fadd dword [buf + 52]",
      "fimul word [buf + 56]",
      "fst qword [buf + 48]",
      "fistp dword [es:buf + 52]",
      "fcom qword [ss:buf + 48]",
      "fild word [buf + 56]",
      "fldz",
      "fadd st0, st1",
      "fmulp st2, st0",
      "fxch st1",
      "fsqrt",
      "fincstp",
      "fdecstp",
      "ffree st3",
      "fnop",
      "fucomip st0, st1",
      "fcmovne st0, st1",
    ];
    // After the marked instruction: control instructions that keep the pointers.
    const trailers = ["", "fnstcw [buf + 60]\nfldcw [buf + 60]", "fnstsw ax\nfnclex\nfwait"];
    const cases: HostCase[] = [];
    const flags = { regs: [0, 0, 0, 0, 0, 0, 0, 0], flags: 0, ignoreRegs: 1 };
    instructions.forEach((instruction, i) => {
      for (const [t, trailer] of trailers.entries()) {
        const restore =
          t === 2
            ? ["lea esp, [esp - 112]", "fnsave [esp]", "frstor [esp]", "lea esp, [esp + 112]"]
            : [];
        cases.push({
          code: [
            "fninit",
            "fld qword [buf + 48]",
            "fld1",
            "fld qword [buf + 48]",
            `mark${i}_${t}:`,
            instruction,
            trailer,
            ...restore,
            "fnstenv [buf]",
            "o16 fnstenv [buf + 32]",
            ...normalize.map((line) => line.replace("mark", `mark${i}_${t}`)),
          ].join("\n"),
          ...flags,
        });
      }
    });
    // A hot loop (run by the block tier once compiled): the pointers are the last iteration's.
    cases.push({
      code: [
        "fninit",
        "mov ecx, 3000",
        "fld1",
        "hot:",
        "fld qword [buf + 48]",
        "markh:",
        "fmul qword [buf + 48]",
        "fstp st0",
        "dec ecx",
        "jnz hot",
        "fnstenv [buf]",
        "o16 fnstenv [buf + 32]",
        ...normalize.map((line) => line.replace("mark", "markh")),
      ].join("\n"),
      ...flags,
    });
    // FXSAVE with an exception pending (ES = 1: AMD stores the pointers only
    // then, Intel always; Kumo stores them always, as Intel).
    cases.push({
      code: [
        "fninit",
        "mov word [buf + 60], 0x37b",
        "fldcw [buf + 60]",
        "fld qword [buf + 48]",
        "fldz",
        "fld1",
        "markx:",
        "fdiv st0, st1",
        "mov ebp, esp",
        "sub esp, 600",
        "and esp, -16",
        "fxsave [esp]",
        "mov eax, [esp + 8]",
        "sub eax, markx",
        "mov [buf], eax",
        "mov ax, [esp + 6]",
        "mov [buf + 4], ax",
        "mov ax, [esp + 12]",
        "mov bx, cs",
        "sub ax, bx",
        "mov [buf + 6], ax",
        "mov eax, [esp + 16]",
        "sub eax, buf",
        "mov [buf + 8], eax",
        "mov ax, [esp + 20]",
        "mov bx, ds",
        "sub ax, bx",
        "mov [buf + 12], ax",
        "mov esp, ebp",
        "fnclex",
        "xor ebx, ebx",
        "xor ebp, ebp",
      ].join("\n"),
      ...flags,
    });
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("add, subtract, multiply, divide and square root round once at precision control extended and single, every rounding mode (SDM vol. 1 8.1.5.2, 4.8.4); comparisons, FIST and FRNDINT of 64-bit values; FDIVR by zero of a denormal", () => {
    // Operands: random doubles (Kumo's error-free fast path), 64-bit values
    // (FLD m80), sums built to land on, between and beside 64-bit rounding
    // boundaries (ties), and chains that keep 64-bit intermediates on the
    // stack. Results leave as m80 with the status word right after the operation.
    const doubleOf = (exponent: number): number => {
      const view = new DataView(new ArrayBuffer(8));
      view.setUint32(0, (next() & 0x800fffff) | ((exponent + 1023) << 20));
      view.setUint32(4, next() >>> 0);
      return view.getFloat64(0);
    };
    const ops = [
      "faddp",
      "fsubp",
      "fsubrp",
      "fmulp",
      "fdivp",
      "fdivrp",
      "fsqrt",
      "fabs\nfsqrt\nfxch\nfabs\nfsqrt\nfxch",
      "fadd qword [buf + 48]",
      "fsubr qword [buf + 48]",
      "fmul qword [buf + 48]",
      "fdiv qword [buf + 48]",
      "fdivr qword [buf + 48]",
      "fimul dword [buf + 56]",
      "fidiv dword [buf + 56]",
      "fmul st0, st1\nfdiv st1, st0\nfadd st0, st1\nfsqrt",
    ];
    const cases: HostCase[] = [];
    for (let i = 0; i < 640; i++) {
      const pc = i % 8 < 6 ? 3 : 0;
      const rc = i & 3;
      const kind = (i >> 3) % 4;
      const loads: string[] = [];
      let op = pick(ops);
      if (kind === 1) {
        loads.push(...storeExtended(24, ...randomExtended(-80, 80, (next() & 1) === 1)));
        loads.push(...storeExtended(36, ...randomExtended(-80, 80, (next() & 1) === 1)));
        loads.push("fld tword [buf + 24]", "fld tword [buf + 36]");
      } else {
        const exponent = (next() % 120) - 60;
        const a = doubleOf(exponent);
        // Kind 2: b a few units of 2^(exponent - 66) (ties and near-ties of a 64-bit sum).
        const b =
          kind === 2
            ? (next() & 1 ? -1 : 1) * ((next() % 32) + 1) * 2 ** (exponent - 66 + (next() % 4))
            : doubleOf((next() % 120) - 60);
        if (kind === 2) op = pick(["faddp", "fsubp", "fsubrp", "fadd qword [buf + 48]"]);
        loads.push(...storeDouble(24, a), ...storeDouble(36, b));
        loads.push("fld qword [buf + 24]", "fld qword [buf + 36]");
        if (kind === 3) loads.push("fld st1", "fdiv st0, st1", "fmul st2, st0", "fstp st0");
      }
      cases.push({
        code: [
          "fninit",
          ...loads,
          ...storeDouble(48, kind === 2 ? 2 ** ((next() % 8) - 70) : doubleOf((next() % 40) - 20)),
          `mov dword [buf + 56], ${next() | 1}`,
          `mov word [buf + 60], ${(0x37f & ~0x300) | (pc << 8) | (rc << 10)}`,
          "fldcw [buf + 60]",
          "fnclex",
          op,
          "fnstsw ax",
          "fstp tword [buf]",
          "fstp tword [buf + 10]",
          "and eax, 0xffff & ~0x4500",
        ].join("\n"),
        regs: [0, 0, 0, 0, 0, 0, 0, 0],
        flags: 0,
      });
    }
    // Comparisons of a 64-bit quotient with its nearest double (equal st,
    // the residual decides), in both orders and through memory.
    const compares = [
      "fcom st1",
      "fxch\nfcom st1",
      "fucom st1",
      "fcomi st0, st1",
      "fxch\nfucomi st0, st1",
      "fxch\nfcom qword [buf + 48]",
      "fstp st0\nftst",
    ];
    for (let i = 0; i < 140; i++) {
      cases.push({
        code: [
          "fninit",
          `mov word [buf + 60], ${0x37f | ((i & 3) << 10)}`,
          "fldcw [buf + 60]",
          ...storeDouble(24, doubleOf((next() % 40) - 20)),
          ...storeDouble(36, doubleOf((next() % 40) - 20)),
          "fld qword [buf + 24]",
          "fdiv qword [buf + 36]",
          i % 5 === 0 ? "fsub qword [buf + 24]" : "",
          "fst qword [buf + 48]",
          "fld qword [buf + 48]",
          compares[i % compares.length],
          "fnstsw ax",
          "fninit",
        ].join("\n"),
        regs: [0, 0, 0, 0, 0, 0, 0, 0],
        flags: 0,
      });
    }
    // FIST/FISTP/FRNDINT of 64-bit values just off an integer or a half
    // (st an integer or a tie, the residual decides), every rounding mode.
    const integers = [
      "fist dword [buf]",
      "fistp qword [buf]",
      "fist word [buf]",
      "frndint\nfstp tword [buf]",
    ];
    for (let i = 0; i < 256; i++) {
      const magnitude = 2 ** (next() % 20);
      const k = Math.floor(magnitude + (next() % 1024)) + ((i >> 2) & 1 ? 0.5 : 0);
      const exponent = Math.floor(Math.log2(k));
      cases.push({
        code: [
          "fninit",
          ...storeDouble(24, (i >> 3) & 1 ? -k : k),
          ...storeDouble(36, (next() & 1 ? -1 : 1) * ((next() % 7) + 1) * 2 ** (exponent - 62)),
          "fld qword [buf + 24]",
          "fadd qword [buf + 36]",
          `mov word [buf + 60], ${0x37f | ((i & 3) << 10)}`,
          "fldcw [buf + 60]",
          "fnclex",
          integers[(i >> 4) % integers.length],
          "fnstsw ax",
          "and eax, 0xffff & ~0x4500",
          "fninit",
        ].join("\n"),
        regs: [0, 0, 0, 0, 0, 0, 0, 0],
        flags: 0,
      });
    }
    // A denormal memory operand with a zero ST(0): FDIVR reports ZE alone
    // (no DE, masked or not), the others DE. FNINIT instead of a store:
    // an unmasked exception is left pending.
    for (const control of [0x37f, 0x37d, 0x27d]) {
      for (const st0 of ["fldz", "fldz\nfchs", "fld1"]) {
        for (const op of ["fdivr", "fdiv", "fmul", "fadd", "fcom"]) {
          for (const operand of ["dword [buf + 56]", "qword [buf + 48]"]) {
            cases.push({
              code: [
                "fninit",
                "mov dword [buf + 56], 1",
                "mov dword [buf + 48], 1",
                "mov dword [buf + 52], 0",
                `mov word [buf + 60], ${control}`,
                "fldcw [buf + 60]",
                st0,
                `${op} ${operand}`,
                "fnstsw ax",
                "fninit",
              ].join("\n"),
              regs: [0, 0, 0, 0, 0, 0, 0, 0],
              flags: 0,
            });
          }
        }
      }
    }
    expect(compareWithHost(cases)).toEqual([]);
  });

  it("saveState/restoreState keep a register beyond the double range exactly", () => {
    const cpu = createFlatCpu(
      assemble(
        [
          "mov dword [0x2000], 0xf4f4f4f4",
          "mov dword [0x2004], 0xf4f4f4f4",
          "mov word [0x2008], 0x7000",
          "fld tword [0x2000]",
          "hlt",
        ].join("\n"),
      ),
    );
    runUntilHalt(cpu);
    const state = JSON.parse(JSON.stringify(cpu.saveState()));
    const other = createFlatCpu(assemble("fstp tword [0x2010]\nhlt"));
    other.restoreState({ ...other.saveState(), fpu: state.fpu });
    runUntilHalt(other);
    expect(Array.from(other.ram.slice(0x2010, 0x201a))).toEqual([
      0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0x00, 0x70,
    ]);
  });
});

/** nasm lines that write a double at [buf + offset]. */
function storeDouble(offset: number, value: number): string[] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  return [
    `mov dword [buf + ${offset}], ${view.getUint32(0, true)}`,
    `mov dword [buf + ${offset + 4}], ${view.getUint32(4, true)}`,
  ];
}

function hexBytes(result: CaseResult): string {
  return result.buffer
    .slice(20, 42)
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
