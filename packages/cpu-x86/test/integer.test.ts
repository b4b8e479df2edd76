import { describe, expect, it } from "vitest";
import { compareWithHost, type HostCase, random } from "./support/host";

const CF = 1;
const PF = 4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;
const ALL = CF | PF | AF | ZF | SF | OF;

const next = random(20261127);
/** Interesting operands: edges and random values. */
function operand(): number {
  const edges = [
    0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
  ];
  const pick = next() % 4;
  if (pick === 0) return edges[next() % edges.length];
  if (pick === 1) return next() & 0xff;
  return next();
}
function regs(): number[] {
  return Array.from({ length: 8 }, () => operand());
}
function flags(): number {
  return next() & (ALL | 0x400);
}
function cases(
  count: number,
  make: () => Omit<HostCase, "regs" | "flags"> & Partial<HostCase>,
): HostCase[] {
  return Array.from({ length: count }, () => ({
    regs: regs(),
    flags: flags() & ~0x400,
    ...make(),
  }));
}
function pick<T>(items: readonly T[]): T {
  return items[next() % items.length];
}

describe("integer instructions against the host CPU", () => {
  it("ALU: add or adc sbb and sub xor cmp, all sizes and forms", () => {
    const ops = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp", "test"];
    const forms = [
      "eax, ebx",
      "ax, bx",
      "al, bl",
      "ah, bh",
      "ecx, 0x12345678",
      "dx, 0x8001",
      "cl, 0x80",
      "esi, -3",
      "si, 5",
      "dword [buf + 4], edi",
      "word [buf + 6], di",
      "byte [buf + 7], dl",
      "edi, [buf + 8]",
      "dword [buf], 0x7fffffff",
      "word [buf + 2], -1",
      "byte [buf + 1], 0x81",
    ];
    const list = cases(600, () => {
      const op = pick(ops);
      const form = pick(forms);
      // Logic ops leave AF undefined (SDM vol. 2 AND/OR/XOR/TEST).
      const logic = op === "and" || op === "or" || op === "xor" || op === "test";
      return {
        code: `${op} ${op === "test" ? form.replace(/, -?\d+$/, ", 5") : form}`,
        undefinedFlags: logic ? AF : 0,
      };
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("inc dec neg not and cbw cwde cwd cdq", () => {
    const list = cases(300, () => ({
      code: pick([
        "inc eax",
        "inc bx",
        "inc cl",
        "dec edx",
        "dec si",
        "dec dh",
        "neg eax",
        "neg bx",
        "neg cl",
        "not edx",
        "not word [buf]",
        "inc dword [buf + 4]",
        "dec byte [buf + 3]",
        "neg dword [buf + 8]",
        "cbw",
        "cwde",
        "cwd",
        "cdq",
      ]),
    }));
    expect(compareWithHost(list)).toEqual([]);
  });

  it("shifts and rotates by 0..33 (OF undefined for counts > 1, AF for shifts)", () => {
    const list = cases(700, () => {
      const op = pick(["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"]);
      const target = pick(["eax", "bx", "dl", "dword [buf + 4]", "word [buf]", "byte [buf + 9]"]);
      const count = next() % 34;
      const byCl = next() & 1;
      const code = byCl ? `mov cl, ${count}\n${op} ${target}, cl` : `${op} ${target}, ${count}`;
      const masked = count & 31;
      let undefinedFlags = masked > 1 ? OF : 0;
      if (op.startsWith("s")) undefinedFlags |= masked ? AF : 0;
      // Rotating by a count that is a multiple of the size: OF undefined.
      return { code, undefinedFlags };
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("mul imul div idiv (#DE-free operands); SF ZF AF PF undefined", () => {
    const list = cases(400, () => {
      const kind = next() % 6;
      switch (kind) {
        case 0:
          return {
            code: pick(["mul ebx", "mul bx", "mul bl", "imul ecx", "imul cx", "imul cl"]),
            undefinedFlags: SF | ZF | AF | PF,
          };
        case 1:
          return {
            code: pick([
              "imul eax, ebx",
              "imul dx, si",
              "imul ecx, [buf], 1000",
              "imul edi, esi, -7",
              "imul bx, cx, 300",
            ]),
            undefinedFlags: SF | ZF | AF | PF,
          };
        case 2:
          return { code: "mov edx, 0\nor ebx, 1\ndiv ebx", undefinedFlags: ALL };
        case 3:
          return { code: "cdq\nor ebx, 1\nidiv ebx", undefinedFlags: ALL };
        case 4:
          return { code: "xor dx, dx\nor bx, 1\ndiv bx", undefinedFlags: ALL };
        default:
          return { code: "mov ah, 0\nor bl, 0x81\ndiv bl", undefinedFlags: ALL };
      }
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("bt bts btr btc, bsf bsr, shld shrd, bswap, xadd, cmpxchg, cmpxchg8b", () => {
    const list = cases(600, () => {
      const kind = next() % 7;
      switch (kind) {
        case 0:
          return {
            code: pick([
              "bt eax, ebx",
              "bts cx, dx",
              "btr esi, 37",
              "btc di, 5",
              "bt dword [buf], 35",
              "bts word [buf + 2], 3",
            ]),
            undefinedFlags: ALL & ~CF,
          };
        case 1:
          return {
            code: pick([
              "and ebx, 255\nbt [buf + 16], ebx",
              "and ecx, 127\nbtc [buf + 16], ecx",
              "and edx, 0x3f\nneg edx\nbtr [buf + 32], edx",
              "and bx, 0x3f\nbts [buf + 16], bx",
            ]),
            undefinedFlags: ALL & ~CF,
          };
        case 2:
          return {
            code: pick(["bsf eax, ebx", "bsr ecx, edx", "bsf si, di", "bsr ax, word [buf]"]),
            undefinedFlags: ALL & ~ZF,
          };
        case 3: {
          const count = next() % 32;
          const op = pick([
            "shld eax, ebx",
            "shrd ecx, edx",
            "shld esi, edi",
            "shrd dword [buf], eax",
          ]);
          return { code: `${op}, ${count}`, undefinedFlags: (count > 1 ? OF : 0) | AF };
        }
        case 4:
          return {
            code: pick([
              "bswap eax",
              "bswap edi",
              "xadd eax, ebx",
              "xadd cl, dl",
              "xadd [buf], esi",
              "xadd word [buf + 4], di",
            ]),
          };
        case 5:
          return {
            code: pick([
              "cmpxchg ebx, ecx",
              "cmpxchg [buf], edx",
              "cmpxchg dl, bl",
              "mov eax, [buf]\ncmpxchg [buf], esi",
              "cmpxchg si, di",
            ]),
          };
        default:
          return {
            code: pick([
              "cmpxchg8b [buf + 8]",
              "mov eax, [buf + 8]\nmov edx, [buf + 12]\ncmpxchg8b [buf + 8]",
            ]),
          };
      }
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("setcc cmovcc jcc loop, BCD adjust, flags moves", () => {
    const conditions = [
      "o",
      "no",
      "b",
      "ae",
      "e",
      "ne",
      "be",
      "a",
      "s",
      "ns",
      "p",
      "np",
      "l",
      "ge",
      "le",
      "g",
    ];
    const list = cases(600, () => {
      const kind = next() % 5;
      const cc = pick(conditions);
      switch (kind) {
        case 0:
          return { code: `cmp eax, ebx\nset${cc} cl\nset${cc} byte [buf]` };
        case 1:
          return { code: `sub ecx, edx\ncmov${cc} esi, edi\ncmov${cc} ax, [buf + 2]` };
        case 2:
          return {
            code: `add ebx, esi\nmov edx, 1\nj${cc} .t${next()}\nmov edx, 2\n.t${next() - 1}:`.replace(
              /\.t(\d+)\nmov edx, 2\n\.t(\d+):/,
              (_m, a) => `.t${a}\nmov edx, 2\n.t${a}:`,
            ),
          };
        case 3:
          return {
            code: pick(["daa", "das", "aaa", "aas", "aam", "aad", "aam 7", "aad 9"]),
            undefinedFlags: OF | AF | CF | SF | ZF | PF,
            ignoreRegs: 0,
          };
        default:
          return {
            code: pick([
              "sahf",
              "lahf",
              "cmc",
              "clc\nadc eax, ebx",
              "stc\nsbb ecx, edx",
              "pushfd\npop ebx",
              "std\npushfd\npop esi\ncld",
            ]),
          };
      }
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("daa das aaa aas with their defined flags", () => {
    const list = cases(300, () => {
      const op = pick(["daa", "das", "aaa", "aas"]);
      // DAA/DAS define CF AF SF ZF PF; AAA/AAS define AF CF only.
      return { code: op, undefinedFlags: op.startsWith("d") ? OF : OF | SF | ZF | PF };
    });
    expect(compareWithHost(list)).toEqual([]);
  });

  it("string instructions with rep prefixes, both directions", () => {
    const list = cases(300, () => {
      const down = next() & 1;
      const count = next() % 9;
      const body = pick([
        "rep movsb",
        "rep movsd",
        "rep stosb",
        "rep stosw",
        "repe cmpsb",
        "repne scasb",
        "repe scasd",
        "lodsw",
        "movsb",
        "stosd",
        "cmpsw",
      ]);
      const setup = down
        ? "std\nmov esi, buf + 40\nmov edi, buf + 60"
        : "cld\nmov esi, buf + 4\nmov edi, buf + 20";
      return { code: `${setup}\nmov ecx, ${count}\n${body}\ncld\nsub esi, buf\nsub edi, buf` };
    });
    // Overlapping forward copies replicate (element by element), longer runs use the bulk path.
    for (const body of [
      "mov esi, buf\nmov edi, buf + 1\nmov ecx, 40\nrep movsb",
      "mov esi, buf + 1\nmov edi, buf\nmov ecx, 40\nrep movsb",
      "mov esi, buf\nmov edi, buf + 4\nmov ecx, 12\nrep movsd",
      "mov esi, buf + 8\nmov edi, buf\nmov ecx, 14\nrep movsd",
      "mov esi, buf\nmov edi, buf + 3\nmov ecx, 15\nmov eax, 0x12345678\nrep stosd",
      "mov esi, buf\nmov edi, buf + 1\nmov ecx, 30\nmov eax, 0xabcd\nrep stosw",
      "mov esi, buf\nmov edi, buf\nmov ecx, 64\nxor eax, eax\nrep stosb",
    ]) {
      list.push({ code: `cld\n${body}\nsub esi, buf\nsub edi, buf`, regs: regs(), flags: 0 });
    }
    expect(compareWithHost(list)).toEqual([]);
  });

  it("stack and frames: push pop pusha popa enter leave xchg lea movzx movsx", () => {
    const list = cases(300, () => ({
      code: pick([
        "push eax\npush bx\npop cx\npop edx",
        "pushad\nmov eax, 1\nmov ebx, 2\npopad",
        "enter 16, 0\nmov [ebp - 4], eax\nleave",
        "mov ebp, stack_top - 64\nenter 8, 3\nmov [ebp - 8], eax\nmov ebx, [ebp - 12]\nsub ebx, stack_top\nleave\nsub ebp, stack_top",
        "xchg eax, ebx\nxchg cl, dh\nxchg [buf], esi",
        "lea eax, [ebx + esi*4 + 0x10]\nlea cx, [bp + di - 3]",
        "movzx eax, bl\nmovsx ecx, dx\nmovsx si, byte [buf]\nmovzx edi, word [buf + 2]",
        "push dword [buf]\npop dword [buf + 8]",
      ]),
    }));
    expect(compareWithHost(list)).toEqual([]);
  });
});
