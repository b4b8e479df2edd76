import { describe, expect, it } from "vitest";
import { decodeInstruction, Op } from "../src/decoder";
import { DATA } from "./support/machine";
import { describeDifferences, hasOracle, kumoArea, qemuArea } from "./support/oracle";
import { Random } from "./support/random";

/**
 * Differential test against qemu-aarch64 on generated instruction streams:
 * every case loads random operands into x0-x7 and NZCV, runs one
 * instruction of a template (random registers, immediates, shifts,
 * extends, conditions), and stores x0-x7, NZCV and the load/store base
 * into the data area. Both sides then compare the whole area (register
 * dumps and memory written by stores).
 */

const SPECIAL = [
  0n,
  1n,
  0xffffffffffffffffn,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffn,
  0x80000000n,
  0x7fffffffn,
  0x100000000n,
  0xfffffffffffffffen,
];

function operand(random: Random): bigint {
  if (random.below(3) === 0) return random.pick(SPECIAL);
  return (BigInt(random.next()) << 32n) | BigInt(random.next());
}

function load64(register: string, value: bigint): string {
  const parts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const half = Number((value >> BigInt(16 * i)) & 0xffffn);
    parts.push(
      i === 0 ? `movz ${register}, #${half}` : `movk ${register}, #${half}, lsl #${16 * i}`,
    );
  }
  return parts.join("\n");
}

const CONDITIONS = [
  "eq",
  "ne",
  "cs",
  "cc",
  "mi",
  "pl",
  "vs",
  "vc",
  "hi",
  "ls",
  "ge",
  "lt",
  "gt",
  "le",
  "al",
];

type Template = (random: Random) => string;

function reg(random: Random, wide: boolean): string {
  return `${wide ? "x" : "w"}${random.below(8)}`;
}

function three(random: Random, wide: boolean): string {
  return `${reg(random, wide)}, ${reg(random, wide)}, ${reg(random, wide)}`;
}

/** A raw instruction word with random fields, kept only if the decoder accepts it as `op`. */
function raw(random: Random, base: number, randomMask: number, op: number): string {
  const scratch = new Int32Array(8);
  for (;;) {
    let word = (base | (random.next() & randomMask)) >>> 0;
    // Registers x0-x7 only (Rd, Rn, Rm fields).
    word = (word & ~((0x18 << 0) | (0x18 << 5) | (0x18 << 16))) >>> 0;
    if (decodeInstruction(word, scratch, 0) === op) return `.inst 0x${word.toString(16)}`;
  }
}

const TEMPLATES: Record<string, Template> = {};
for (const wide of [true, false]) {
  const suffix = wide ? "x" : "w";
  const bits = wide ? 64 : 32;
  for (const mnemonic of ["add", "adds", "sub", "subs"]) {
    TEMPLATES[`${mnemonic} ${suffix} shifted`] = (r) =>
      `${mnemonic} ${three(r, wide)}, ${r.pick(["lsl", "lsr", "asr"])} #${r.below(bits)}`;
    TEMPLATES[`${mnemonic} ${suffix} immediate`] = (r) =>
      `${mnemonic} ${reg(r, wide)}, ${reg(r, wide)}, #${r.below(4096)}${r.below(2) ? ", lsl #12" : ""}`;
    TEMPLATES[`${mnemonic} ${suffix} extended`] = (r) => {
      const extend = r.pick([
        "uxtb",
        "uxth",
        "uxtw",
        "sxtb",
        "sxth",
        "sxtw",
        ...(wide ? ["uxtx", "sxtx"] : []),
      ]);
      const source = wide && extend.endsWith("x") ? reg(r, true) : reg(r, false);
      return `${mnemonic} ${reg(r, wide)}, ${reg(r, wide)}, ${source}, ${extend} #${r.below(5)}`;
    };
  }
  for (const mnemonic of [
    "adc",
    "adcs",
    "sbc",
    "sbcs",
    "udiv",
    "sdiv",
    "lslv",
    "lsrv",
    "asrv",
    "rorv",
    "mul",
  ]) {
    TEMPLATES[`${mnemonic} ${suffix}`] = (r) => `${mnemonic} ${three(r, wide)}`;
  }
  for (const mnemonic of ["and", "ands", "orr", "eor", "bic", "bics", "orn", "eon"]) {
    TEMPLATES[`${mnemonic} ${suffix} shifted`] = (r) =>
      `${mnemonic} ${three(r, wide)}, ${r.pick(["lsl", "lsr", "asr", "ror"])} #${r.below(bits)}`;
  }
  for (const mnemonic of ["csel", "csinc", "csinv", "csneg"]) {
    TEMPLATES[`${mnemonic} ${suffix}`] = (r) =>
      `${mnemonic} ${three(r, wide)}, ${r.pick(CONDITIONS)}`;
  }
  for (const mnemonic of ["ccmp", "ccmn"]) {
    TEMPLATES[`${mnemonic} ${suffix} register`] = (r) =>
      `${mnemonic} ${reg(r, wide)}, ${reg(r, wide)}, #${r.below(16)}, ${r.pick(CONDITIONS)}`;
    TEMPLATES[`${mnemonic} ${suffix} immediate`] = (r) =>
      `${mnemonic} ${reg(r, wide)}, #${r.below(32)}, #${r.below(16)}, ${r.pick(CONDITIONS)}`;
  }
  for (const mnemonic of ["madd", "msub"]) {
    TEMPLATES[`${mnemonic} ${suffix}`] = (r) => `${mnemonic} ${three(r, wide)}, ${reg(r, wide)}`;
  }
  for (const mnemonic of ["rbit", "rev", "rev16", "clz", "cls"]) {
    TEMPLATES[`${mnemonic} ${suffix}`] = (r) => `${mnemonic} ${reg(r, wide)}, ${reg(r, wide)}`;
  }
  TEMPLATES[`movz ${suffix}`] = (r) =>
    `movz ${reg(r, wide)}, #${r.below(65536)}, lsl #${16 * r.below(bits / 16)}`;
  TEMPLATES[`movn ${suffix}`] = (r) =>
    `movn ${reg(r, wide)}, #${r.below(65536)}, lsl #${16 * r.below(bits / 16)}`;
  TEMPLATES[`movk ${suffix}`] = (r) =>
    `movk ${reg(r, wide)}, #${r.below(65536)}, lsl #${16 * r.below(bits / 16)}`;
  TEMPLATES[`extr ${suffix}`] = (r) => `extr ${three(r, wide)}, #${r.below(bits)}`;
  const sf = wide ? 0x80000000 : 0;
  // Logical immediate: sf opc 100100 N immr imms Rn Rd (Arm ARM C4.1.86.5).
  TEMPLATES[`logical immediate ${suffix}`] = (r) =>
    raw(r, sf | 0x12000000, (wide ? 0x60400000 : 0x60000000) | 0x003fffff, Op.LogicImm);
  // Bitfield: sf opc 100110 N immr imms Rn Rd (C4.1.86.8); N must equal sf.
  TEMPLATES[`bitfield ${suffix}`] = (r) =>
    raw(r, sf | 0x13000000 | (wide ? 0x00400000 : 0), 0x603fffff, Op.Bitfield);
}
for (const mnemonic of ["smulh", "umulh"])
  TEMPLATES[mnemonic] = (r) => `${mnemonic} ${three(r, true)}`;
for (const mnemonic of ["smaddl", "smsubl", "umaddl", "umsubl"]) {
  TEMPLATES[mnemonic] = (r) =>
    `${mnemonic} ${reg(r, true)}, ${reg(r, false)}, ${reg(r, false)}, ${reg(r, true)}`;
}
TEMPLATES.rev32 = (r) => `rev32 ${reg(r, true)}, ${reg(r, true)}`;
TEMPLATES.adr = (r) => `adr ${reg(r, true)}, .+${4 * (r.below(2000) - 1000)}`;
TEMPLATES.adrp = (r) => `adrp ${reg(r, true)}, .+${4096 * (r.below(2000) - 1000)}`;
TEMPLATES["b.cond"] = (r) => `b.${r.pick(CONDITIONS)} 1f\nmov x0, #1\n1:`;
TEMPLATES["cbz/cbnz"] = (r) =>
  `${r.pick(["cbz", "cbnz"])} ${reg(r, r.below(2) === 0)}, 1f\nmov x0, #1\n1:`;
TEMPLATES["tbz/tbnz"] = (r) =>
  `${r.pick(["tbz", "tbnz"])} x${r.below(8)}, #${r.below(64)}, 1f\nmov x0, #1\n1:`;
// Loads and stores relative to x27 = DATA + 0x800 (inside the pattern); the index register is masked small.
const LOADS = [
  "ldr x",
  "ldr w",
  "ldrb w",
  "ldrh w",
  "ldrsb x",
  "ldrsb w",
  "ldrsh x",
  "ldrsh w",
  "ldrsw x",
];
const STORES = ["str x", "str w", "strb w", "strh w"];
for (const form of [...LOADS, ...STORES]) {
  const [mnemonic, kind] = form.split(" ");
  const size = mnemonic.endsWith("b")
    ? 1
    : mnemonic.endsWith("h")
      ? 2
      : mnemonic === "ldrsw" || kind === "w"
        ? 4
        : 8;
  const target = (r: Random) => `${kind}${r.below(8)}`;
  TEMPLATES[`${form} unsigned offset`] = (r) =>
    `${mnemonic} ${target(r)}, [x27, #${size * r.below(64)}]`;
  TEMPLATES[`${form} unscaled`] = (r) =>
    `${mnemonic.replace("ldr", "ldur").replace("str", "stur")} ${target(r)}, [x27, #${r.below(512) - 256}]`;
  TEMPLATES[`${form} pre-index`] = (r) =>
    `${mnemonic} ${target(r)}, [x27, #${r.below(512) - 256}]!`;
  TEMPLATES[`${form} post-index`] = (r) =>
    `${mnemonic} ${target(r)}, [x27], #${r.below(512) - 256}`;
  TEMPLATES[`${form} register`] = (r) => {
    const extend = r.pick(["lsl", "uxtw", "sxtw", "sxtx"]);
    const index = extend === "uxtw" || extend === "sxtw" ? "w6" : "x6";
    const amount = r.below(2) ? ` #${Math.log2(size)}` : extend === "lsl" ? "" : "";
    return `and x6, x6, #0xff\n${mnemonic} ${target(r)}, [x27, ${index}${extend === "lsl" && amount === "" ? "" : `, ${extend}${amount}`}]`;
  };
}
for (const [mnemonic, kind, size] of [
  ["ldp", "x", 8],
  ["ldp", "w", 4],
  ["ldpsw", "x", 4],
  ["stp", "x", 8],
  ["stp", "w", 4],
] as const) {
  for (const [mode, format] of [
    ["offset", (o: number) => `[x27, #${o}]`],
    ["pre-index", (o: number) => `[x27, #${o}]!`],
    ["post-index", (o: number) => `[x27], #${o}`],
  ] as const) {
    TEMPLATES[`${mnemonic} ${kind} ${mode}`] = (r) => {
      const first = r.below(8);
      const second = (first + 1 + r.below(7)) % 8;
      return `${mnemonic} ${kind}${first}, ${kind}${second}, ${format(size * (r.below(64) - 32))}`;
    };
  }
}

// Exclusive pairs on the 16-byte aligned x27: load, modify, store-exclusive (status 0), then a store without the monitor (status 1).
for (const kind of ["x", "w"]) {
  for (const [load, store] of [
    ["ldxp", "stxp"],
    ["ldaxp", "stlxp"],
  ]) {
    TEMPLATES[`${load}/${store} ${kind}`] = (r) => {
      const order = [0, 1, 2, 3, 4, 5, 6, 7].sort(() => (r.below(2) ? 1 : -1));
      const [a, b, c, d, status] = order;
      return [
        `${load} ${kind}${a}, ${kind}${b}, [x27]`,
        `add ${kind}${c}, ${kind}${a}, ${kind}${b}`,
        `${store} w${status}, ${kind}${c}, ${kind}${d}, [x27]`,
        `mov x9, x${status}`,
        `${store} w${status}, ${kind}${d}, ${kind}${c}, [x27]`,
        `add x${status}, x${status}, x9, lsl #4`,
      ].join("\n");
    };
  }
}

function caseText(random: Random, template: Template): string {
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) lines.push(load64(`x${i}`, operand(random)));
  lines.push(`movz x9, #${random.below(16) << 12}, lsl #16`, "msr nzcv, x9");
  lines.push(
    `movz x27, #${(DATA + 0x800) & 0xffff}`,
    `movk x27, #${(DATA + 0x800) >>> 16}, lsl #16`,
  );
  lines.push(template(random));
  lines.push(
    "stp x0, x1, [x28], #16",
    "stp x2, x3, [x28], #16",
    "stp x4, x5, [x28], #16",
    "stp x6, x7, [x28], #16",
    "mrs x9, nzcv",
    "stp x9, x27, [x28], #16",
  );
  return lines.join("\n");
}

const CASES_PER_TEMPLATE = 12;
const CASES_PER_PROGRAM = 600;

describe.skipIf(!hasOracle())("differential against qemu-aarch64", () => {
  const names = Object.keys(TEMPLATES);
  const random = new Random(0x5eed);
  const cases: { name: string; text: string }[] = [];
  for (const name of names) {
    for (let i = 0; i < CASES_PER_TEMPLATE; i++)
      cases.push({ name, text: caseText(random, TEMPLATES[name]) });
  }
  const programs: (typeof cases)[] = [];
  for (let i = 0; i < cases.length; i += CASES_PER_PROGRAM)
    programs.push(cases.slice(i, i + CASES_PER_PROGRAM));

  it(`has ${names.length} instruction forms, ${cases.length} cases`, () => {
    expect(names.length).toBeGreaterThan(150);
  });

  programs.forEach((program, index) => {
    it(
      `program ${index + 1}/${programs.length} agrees on registers, NZCV and memory`,
      { timeout: 120_000 },
      () => {
        const body = `movz x28, #${(DATA + 0x1000) & 0xffff}\nmovk x28, #${(DATA + 0x1000) >>> 16}, lsl #16\n${program.map((c) => c.text).join("\n")}`;
        const expected = qemuArea(body);
        const actual = kumoArea(body).area;
        const differences = describeDifferences(expected, actual, 12).map((line) => {
          const match = /^memory \+0x([0-9a-f]+)/.exec(line);
          if (!match) return line;
          const offset = Number.parseInt(match[1], 16) - 0x1000;
          return offset >= 0 && offset < program.length * 80
            ? `${program[Math.floor(offset / 80)].name} (slot ${(offset % 80) / 8}): ${line}`
            : line;
        });
        expect(differences).toEqual([]);
      },
    );
  });
});
