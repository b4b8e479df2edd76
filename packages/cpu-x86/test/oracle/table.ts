/**
 * The i686 integer instructions the differential oracle generates, as data
 * (Intel SDM vol. 2D appendix A, opcode map; operand notation of A.2:
 * E = ModRM r/m, G = ModRM reg, I = immediate, J = relative offset,
 * O = moffs, A = far pointer immediate, M = memory only, S = segment
 * register in ModRM reg, Z = register in the low opcode bits; sizes
 * b = 8, w = 16, d = 32, v = 16/32, z = 16/32 immediate, p = far pointer,
 * a = BOUND pair, q = 64, s = 6-byte pseudo-descriptor).
 *
 * Left out, because a ring-3 Linux process cannot compare them with a
 * bare machine: int 0x80, syscall/sysenter/sysexit (they enter the host
 * kernel or differ between legacy and long mode), cpuid, rdtsc, rdpmc
 * (host-specific values), sgdt/sidt/sldt/str/smsw (Linux emulates them
 * under UMIP with fake values), and the ModRM register forms of 0x62, 0xc4
 * and 0xc5 (EVEX/VEX prefixes on AVX hosts).
 */

export interface Entry {
  /** Assembler name, for reports. */
  name: string;
  /** Opcode bytes (after prefixes, before ModRM). */
  opcode: number[];
  /** ModRM.reg opcode extension (/digit), or -1. */
  ext: number;
  /** Operand tokens in SDM appendix A notation. */
  operands: string[];
  tags: Set<string>;
}

/** Tags: how an entry varies and which constraints its operands need. */
export type Tag =
  | "lock" // the memory form accepts LOCK
  | "nomem" // ModRM must be a register
  | "noreg" // ModRM must be memory
  | "osz" // operand size matters even without v/z operands
  | "asz" // address size matters without a memory operand (string, loop, xlat)
  | "branch" // near control transfer: no 16-bit operand size in 32-bit code
  | "far"; // far control transfer

export const TABLE: Entry[] = [];

function add(name: string, opcode: string, operands = "", tags = ""): void {
  const [bytes, ext] = opcode.split("/");
  TABLE.push({
    name,
    opcode: bytes.split(" ").map((b) => Number.parseInt(b, 16)),
    ext: ext === undefined ? -1 : Number(ext),
    operands: operands ? operands.split(",") : [],
    tags: new Set(tags ? tags.split(" ") : []),
  });
}

const hex = (n: number) => n.toString(16).padStart(2, "0");
const CONDITIONS = [
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
const ALU = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
const SHIFTS = ["rol", "ror", "rcl", "rcr", "shl", "shr", "", "sar"];
const REGISTERS = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

// One-byte opcode map (SDM vol. 2D table A-2).
ALU.forEach((name, i) => {
  const base = i * 8;
  const lock = name === "cmp" ? "" : "lock";
  add(name, hex(base), "Eb,Gb", lock);
  add(name, hex(base + 1), "Ev,Gv", lock);
  add(name, hex(base + 2), "Gb,Eb");
  add(name, hex(base + 3), "Gv,Ev");
  add(name, hex(base + 4), "AL,Ib");
  add(name, hex(base + 5), "eAX,Iz");
});
add("push es", "06", "", "osz");
add("pop es", "07", "", "osz");
add("push cs", "0e", "", "osz");
add("push ss", "16", "", "osz");
add("pop ss", "17", "", "osz");
add("push ds", "1e", "", "osz");
add("pop ds", "1f", "", "osz");
add("daa", "27");
add("das", "2f");
add("aaa", "37");
add("aas", "3f");
for (let r = 0; r < 8; r++) add(`inc ${REGISTERS[r]}`, hex(0x40 + r), "Zv");
for (let r = 0; r < 8; r++) add(`dec ${REGISTERS[r]}`, hex(0x48 + r), "Zv");
for (let r = 0; r < 8; r++) add(`push ${REGISTERS[r]}`, hex(0x50 + r), "Zv");
for (let r = 0; r < 8; r++) add(`pop ${REGISTERS[r]}`, hex(0x58 + r), "Zv");
add("pusha", "60", "", "osz");
add("popa", "61", "", "osz");
add("bound", "62", "Gv,Ma", "noreg");
add("arpl", "63", "Ew,Gw");
add("push", "68", "Iz");
add("imul", "69", "Gv,Ev,Iz");
add("push", "6a", "Ibs", "osz");
add("imul", "6b", "Gv,Ev,Ibs");
add("insb", "6c", "", "asz");
add("insd", "6d", "", "asz osz");
add("outsb", "6e", "", "asz");
add("outsd", "6f", "", "asz osz");
CONDITIONS.forEach((cc, i) => {
  add(`j${cc}`, hex(0x70 + i), "Jb", "branch");
});
for (let e = 0; e < 8; e++) {
  const lock = e === 7 ? "" : "lock";
  add(ALU[e], `80/${e}`, "Eb,Ib", lock);
  add(ALU[e], `81/${e}`, "Ev,Iz", lock);
  add(ALU[e], `82/${e}`, "Eb,Ib", lock);
  add(ALU[e], `83/${e}`, "Ev,Ibs", lock);
}
add("test", "84", "Eb,Gb");
add("test", "85", "Ev,Gv");
add("xchg", "86", "Eb,Gb", "lock");
add("xchg", "87", "Ev,Gv", "lock");
add("mov", "88", "Eb,Gb");
add("mov", "89", "Ev,Gv");
add("mov", "8a", "Gb,Eb");
add("mov", "8b", "Gv,Ev");
for (let s = 0; s < 6; s++) add("mov", `8c/${s}`, "Ev,Sw");
add("lea", "8d", "Gv,M", "noreg");
for (const s of [0, 2, 3, 4, 5]) add("mov", `8e/${s}`, "Sw,Ew");
add("mov", "8e/1", "Sw,Ew"); // mov cs: #UD (SDM vol. 2B MOV)
add("pop", "8f/0", "Ev");
add("nop", "90");
for (let r = 1; r < 8; r++) add(`xchg ${REGISTERS[r]}`, hex(0x90 + r), "Zv");
add("cbw", "98", "", "osz");
add("cwd", "99", "", "osz");
add("call far", "9a", "Ap", "far");
add("fwait", "9b");
add("pushf", "9c", "", "osz");
add("popf", "9d", "", "osz");
add("sahf", "9e");
add("lahf", "9f");
add("mov", "a0", "AL,Ob");
add("mov", "a1", "eAX,Ov");
add("mov", "a2", "Ob,AL");
add("mov", "a3", "Ov,eAX");
add("movsb", "a4", "", "asz");
add("movsd", "a5", "", "asz osz");
add("cmpsb", "a6", "", "asz");
add("cmpsd", "a7", "", "asz osz");
add("test", "a8", "AL,Ib");
add("test", "a9", "eAX,Iz");
add("stosb", "aa", "", "asz");
add("stosd", "ab", "", "asz osz");
add("lodsb", "ac", "", "asz");
add("lodsd", "ad", "", "asz osz");
add("scasb", "ae", "", "asz");
add("scasd", "af", "", "asz osz");
for (let r = 0; r < 8; r++) add("mov", hex(0xb0 + r), "Zb,Ib");
for (let r = 0; r < 8; r++) add("mov", hex(0xb8 + r), "Zv,Iv");
for (const e of [0, 1, 2, 3, 4, 5, 7]) {
  add(SHIFTS[e], `c0/${e}`, "Eb,Ib");
  add(SHIFTS[e], `c1/${e}`, "Ev,Ib");
  add(SHIFTS[e], `d0/${e}`, "Eb,1");
  add(SHIFTS[e], `d1/${e}`, "Ev,1");
  add(SHIFTS[e], `d2/${e}`, "Eb,CL");
  add(SHIFTS[e], `d3/${e}`, "Ev,CL");
}
add("ret", "c2", "Iw", "branch osz");
add("ret", "c3", "", "branch osz");
add("les", "c4", "Gv,Mp", "noreg");
add("lds", "c5", "Gv,Mp", "noreg");
add("mov", "c6/0", "Eb,Ib");
add("mov", "c7/0", "Ev,Iz");
add("enter", "c8", "Iw,Ib", "osz");
add("leave", "c9", "", "osz");
add("retf", "ca", "Iw", "far osz");
add("retf", "cb", "", "far osz");
add("int3", "cc");
add("int", "cd", "Ib");
add("into", "ce");
add("iret", "cf", "", "far osz");
add("aam", "d4", "Ib");
add("aad", "d5", "Ib");
add("xlat", "d7", "", "asz");
add("loopne", "e0", "Jb", "branch asz");
add("loope", "e1", "Jb", "branch asz");
add("loop", "e2", "Jb", "branch asz");
add("jecxz", "e3", "Jb", "branch asz");
add("in", "e4", "AL,Ib");
add("in", "e5", "eAX,Ib");
add("out", "e6", "Ib,AL");
add("out", "e7", "Ib,eAX");
add("call", "e8", "Jz", "branch");
add("jmp", "e9", "Jz", "branch");
add("jmp far", "ea", "Ap", "far");
add("jmp", "eb", "Jb", "branch");
add("in", "ec", "AL,DX");
add("in", "ed", "eAX,DX");
add("out", "ee", "DX,AL");
add("out", "ef", "DX,eAX");
add("icebp", "f1");
add("hlt", "f4");
add("cmc", "f5");
add("test", "f6/0", "Eb,Ib");
add("test", "f7/0", "Ev,Iz");
["", "", "not", "neg", "mul", "imul", "div", "idiv"].forEach((name, e) => {
  if (!name) return;
  const lock = e < 4 ? "lock" : "";
  add(name, `f6/${e}`, "Eb", lock);
  add(name, `f7/${e}`, "Ev", lock);
});
add("clc", "f8");
add("stc", "f9");
add("cli", "fa");
add("sti", "fb");
add("cld", "fc");
add("std", "fd");
add("inc", "fe/0", "Eb", "lock");
add("dec", "fe/1", "Eb", "lock");
add("inc", "ff/0", "Ev", "lock");
add("dec", "ff/1", "Ev", "lock");
add("call", "ff/2", "Ev", "branch");
add("call far", "ff/3", "Mp", "far noreg");
add("jmp", "ff/4", "Ev", "branch");
add("jmp far", "ff/5", "Mp", "far noreg");
add("push", "ff/6", "Ev");

// Two-byte opcode map (SDM vol. 2D table A-3).
add("lldt", "0f 00/2", "Ew");
add("ltr", "0f 00/3", "Ew");
add("verr", "0f 00/4", "Ew");
add("verw", "0f 00/5", "Ew");
add("lgdt", "0f 01/2", "Ms", "noreg");
add("lidt", "0f 01/3", "Ms", "noreg");
add("lmsw", "0f 01/6", "Ew");
add("invlpg", "0f 01/7", "M", "noreg");
add("lar", "0f 02", "Gv,Ew");
add("lsl", "0f 03", "Gv,Ew");
add("clts", "0f 06");
add("invd", "0f 08");
add("wbinvd", "0f 09");
add("ud2", "0f 0b");
add("nop", "0f 1f/0", "Ev");
for (const c of [0, 2, 3, 4]) add("mov r,cr", `0f 20/${c}`, "Rd", "nomem");
for (const c of [0, 2, 3, 4]) add("mov cr,r", `0f 22/${c}`, "Rd", "nomem");
for (const d of [0, 7]) add("mov r,dr", `0f 21/${d}`, "Rd", "nomem");
for (const d of [0, 7]) add("mov dr,r", `0f 23/${d}`, "Rd", "nomem");
add("wrmsr", "0f 30");
add("rdmsr", "0f 32");
add("rsm", "0f aa");
CONDITIONS.forEach((cc, i) => {
  add(`cmov${cc}`, `0f ${hex(0x40 + i)}`, "Gv,Ev");
});
CONDITIONS.forEach((cc, i) => {
  add(`j${cc}`, `0f ${hex(0x80 + i)}`, "Jz", "branch");
});
CONDITIONS.forEach((cc, i) => {
  add(`set${cc}`, `0f ${hex(0x90 + i)}/0`, "Eb");
});
add("push fs", "0f a0", "", "osz");
add("pop fs", "0f a1", "", "osz");
add("bt", "0f a3", "Ev,Gv");
add("shld", "0f a4", "Ev,Gv,Ib");
add("shld", "0f a5", "Ev,Gv,CL");
add("push gs", "0f a8", "", "osz");
add("pop gs", "0f a9", "", "osz");
add("bts", "0f ab", "Ev,Gv", "lock");
add("shrd", "0f ac", "Ev,Gv,Ib");
add("shrd", "0f ad", "Ev,Gv,CL");
add("imul", "0f af", "Gv,Ev");
add("cmpxchg", "0f b0", "Eb,Gb", "lock");
add("cmpxchg", "0f b1", "Ev,Gv", "lock");
add("lss", "0f b2", "Gv,Mp", "noreg");
add("btr", "0f b3", "Ev,Gv", "lock");
add("lfs", "0f b4", "Gv,Mp", "noreg");
add("lgs", "0f b5", "Gv,Mp", "noreg");
add("movzx", "0f b6", "Gv,Eb");
add("movzx", "0f b7", "Gv,Ew");
add("bt", "0f ba/4", "Ev,Ib");
add("bts", "0f ba/5", "Ev,Ib", "lock");
add("btr", "0f ba/6", "Ev,Ib", "lock");
add("btc", "0f ba/7", "Ev,Ib", "lock");
add("btc", "0f bb", "Ev,Gv", "lock");
add("bsf", "0f bc", "Gv,Ev");
add("bsr", "0f bd", "Gv,Ev");
add("movsx", "0f be", "Gv,Eb");
add("movsx", "0f bf", "Gv,Ew");
add("xadd", "0f c0", "Eb,Gb", "lock");
add("xadd", "0f c1", "Ev,Gv", "lock");
add("cmpxchg8b", "0f c7/1", "Mq", "noreg lock");
for (let r = 0; r < 8; r++) add(`bswap ${REGISTERS[r]}`, `0f ${hex(0xc8 + r)}`, "Zv");

/** True when the operand size prefix changes what the entry does. */
export function hasOperandSize(entry: Entry): boolean {
  if (entry.tags.has("osz")) return true;
  return entry.operands.some((o) => /^(E|G|Z|I|O)[vz]$|^eAX$|^[AM][pa]$|^Jz$|^Sw$/.test(o));
}

/** The ModRM r/m operand token, if any. */
export function modrmOperand(entry: Entry): string | undefined {
  return entry.operands.find((o) => o[0] === "E" || o[0] === "M" || o === "Rd");
}

/** True when the entry has a ModRM byte. */
export function hasModrm(entry: Entry): boolean {
  return entry.ext >= 0 || entry.operands.some((o) => /^[EGMS]/.test(o) || o === "Rd");
}

/** True when the address size prefix changes what the entry does. */
export function hasAddressSize(entry: Entry): boolean {
  return entry.tags.has("asz") || entry.operands.some((o) => o[0] === "O");
}
