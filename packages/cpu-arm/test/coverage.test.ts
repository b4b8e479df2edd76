import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { Arm64Cpu, ExceptionClass } from "../src/cpu";
import { decodeInstruction, Op } from "../src/decoder";

/**
 * Coverage against real programs: every distinct instruction word that
 * binutils disassembles in Debian's static arm64 busybox (glibc included)
 * and in the arm64 guest kernel built by `guests/` is executed once; none
 * may be UNDEFINED (EC 0) except the features the ID registers do not
 * advertise, which Linux and glibc only use behind a feature check (HWCAPs,
 * alternatives, static keys).
 */
const cache = join(homedir(), ".cache", "kumo", "guests");

function busybox(): string | undefined {
  const root = join(cache, "busybox");
  if (!existsSync(root)) return undefined;
  for (const entry of readdirSync(root))
    if (entry.startsWith("arm64-") && existsSync(join(root, entry, "bin", "busybox")))
      return join(root, entry, "bin", "busybox");
  return undefined;
}

function vmlinux(): string | undefined {
  const path = join(cache, "build", "arm64", "vmlinux");
  return existsSync(path) ? path : undefined;
}

function hasObjdump(): boolean {
  try {
    execFileSync("aarch64-linux-gnu-objdump", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Features not advertised (ID_AA64PFR0/ISAR0/ISAR1/MMFR1 fields 0): UNDEFINED is the right answer. */
function unadvertised(text: string): string | undefined {
  const [mnemonic] = text.split(/\s/);
  if (/\bz\d+\.|\bp\d+[./ ,]|\bp\d+$/.test(text) || /^(cnt[bhwd]|ptrue|whilel[ot])/.test(mnemonic))
    return "SVE";
  if (/^(stz?2?g|ldg|gmi|irg|subp|addg|subg)$/.test(mnemonic) || /gzva|gva/.test(text))
    return "MTE";
  if (/^(cpyf?[pme]|set[pme])/.test(mnemonic)) return "MOPS";
  if (
    /^(casp?|swp|ld(add|clr|eor|set|smax|smin|umax|umin)|st(add|clr|eor|set|smax|smin|umax|umin))/.test(
      mnemonic,
    )
  )
    return "LSE atomics";
  if (/^crc32/.test(mnemonic)) return "CRC32";
  if (/icc_/.test(text)) return "GICv3 system registers (the platform's GIC is v2)";
  if (mnemonic === "sb") return "SB";
  if (/cvadp/.test(text)) return "DC CVADP";
  if (mnemonic === "smc") return "SMC (no EL3)";
  if (/^wf[ie]t$/.test(mnemonic)) return "WFxT";
  if (/_el2\b|_el12\b|\bsp_el1\b/.test(text))
    return "EL2 registers (VHE/KVM paths, taken only when entered at EL2)";
  if (/ssbs/.test(text)) return "SSBS";
  if (/\bpm[a-z0-9]*_el[0-2]\b|\bam[a-z0-9]*_el0\b|amuserenr/.test(text)) return "PMU/AMU/SPE";
  if (/lorc_el1/.test(text)) return "LOR";
  if (/cntvctss|cntpctss/.test(text)) return "ECV";
  if (/gmid_el1/.test(text)) return "MTE";
  if (/rndr/.test(text)) return "RNG";
  if (/smidr|svcr|tpidr2/.test(text)) return "SME";
  if (/trbidr|trb[a-z]*_el1|pmb[a-z]*_el1/.test(text)) return "TRBE/SPE";
  if (/^ld[a]?xr[bh]?$/.test(mnemonic))
    return "exclusive load with Rs/Rt2 not ones (data words in .text)";
  return undefined;
}

interface ScanResult {
  words: number;
  undefinedWords: string[];
  features: Map<string, number>;
  /** FP/SIMD words checked to trap with FPEN = 0 (EC 0x07, nothing changed). */
  fpTrapped: number;
  fpNotTrapped: string[];
}

function scan(path: string): ScanResult {
  const listing = execFileSync("aarch64-linux-gnu-objdump", ["-d", path], {
    maxBuffer: 1 << 30,
    encoding: "utf8",
  });
  const seen = new Map<number, string>();
  for (const line of listing.split("\n")) {
    const parts = line.split("\t");
    if (parts.length < 3 || !/^[0-9a-f]{8} $/.test(parts[1])) continue;
    const text = parts.slice(2).join(" ").trim();
    if (text.startsWith(".") || text.startsWith("udf")) continue;
    const word = Number.parseInt(parts[1], 16);
    if (!seen.has(word)) seen.set(word, text);
  }
  const memory = createGuestMemory({ ramSize: 1 << 20, ramBase: 0x40000000 });
  const cpu = new Arm64Cpu({ memory });
  const undefinedWords: string[] = [];
  const features = new Map<string, number>();
  const fpNotTrapped: string[] = [];
  let fpTrapped = 0;
  const slots = new Int32Array(8);
  const start = (fpen: number, word: number) => {
    cpu.reset();
    cpu.writeSystemRegister("CPACR_EL1", fpen << 20);
    cpu.writeSystemRegister("VBAR_EL1", 0x40080000);
    memory.write32(0x40010000, word);
    cpu.invalidateCode(0x40010000, 4);
    cpu.pc = 0x40010000;
    for (let i = 0; i < 31; i++) cpu.setX(i, 0x40040000);
    cpu.sp = 0x40040000;
    for (let i = 0; i < 128; i++) cpu.v32[i] = i * 0x01010101;
    cpu.run(1);
  };
  for (const [word, text] of seen) {
    start(3, word);
    const tookException = cpu.pc === 0x40080200n;
    const ec = tookException ? cpu.readSystemRegister("ESR_EL1")[0] >>> 26 : -1;
    const op = decodeInstruction(word, slots, 0);
    const fpRegister = /\bfp(cr|sr)\b/.test(text) && /^m(rs|sr)/.test(text);
    if ((op === Op.Simd || op === Op.SimdMemory || fpRegister) && ec !== ExceptionClass.Unknown) {
      // The same word with FP disabled at EL1 must trap before changing anything (Arm ARM D19.2 CPACR_EL1).
      start(0, word);
      const esr = cpu.readSystemRegister("ESR_EL1")[0];
      let unchanged = true;
      for (let i = 0; i < 128; i++) if (cpu.v32[i] !== i * 0x01010101) unchanged = false;
      for (let i = 0; i < 31; i++) if (cpu.getX(i) !== 0x40040000n) unchanged = false;
      if (cpu.pc === 0x40080200n && esr >>> 26 === ExceptionClass.FpAccess && unchanged)
        fpTrapped++;
      else fpNotTrapped.push(`${word.toString(16).padStart(8, "0")} ${text}`);
    }
    if (ec !== ExceptionClass.Unknown) continue;
    const feature = unadvertised(text);
    if (feature) features.set(feature, (features.get(feature) ?? 0) + 1);
    else undefinedWords.push(`${word.toString(16).padStart(8, "0")} ${text}`);
  }
  return { words: seen.size, undefinedWords, features, fpTrapped, fpNotTrapped };
}

describe.skipIf(!hasObjdump())("instruction coverage of real arm64 programs", () => {
  const programs: [string, string | undefined][] = [
    ["Debian's static busybox", busybox()],
    ["the arm64 guest kernel", vmlinux()],
  ];
  for (const [name, path] of programs) {
    it.skipIf(path === undefined)(
      `every instruction of ${name} executes (UNDEFINED only for unadvertised features)`,
      { timeout: 300_000 },
      () => {
        const result = scan(path as string);
        console.log(
          `${name}: ${result.words} distinct instruction words, ${result.fpTrapped} FP/SIMD ones trap with FPEN = 0; UNDEFINED as unadvertised: ${[...result.features].map(([feature, count]) => `${feature} ${count}`).join(", ") || "none"}`,
        );
        const kinds = new Map<string, string>();
        for (const line of result.undefinedWords)
          kinds.set(line.slice(9).replace(/\b[xw]\d+\b/g, "r"), line);
        expect([...kinds.values()]).toEqual([]);
        expect(result.fpNotTrapped.slice(0, 20)).toEqual([]);
      },
    );
  }
});
