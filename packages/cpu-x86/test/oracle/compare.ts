/**
 * Compares what Kumo did with what the host did, ignoring only what the
 * case's mask says is documented as undefined, and RF in the EFLAGS image of
 * a fault (SDM vol. 3A 17.3.1.1: the processor sets it when it delivers a
 * fault; Linux passes the image through).
 */
import type { GeneratedCase } from "./generator";
import { RF } from "./generator";
import type { TestResult } from "./layout";

const NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const SEGMENTS = ["cs", "ss", "ds", "es", "fs", "gs"];
/** Vectors that push an error code (SDM vol. 3A table 6-1). */
const ERROR_CODE_VECTORS = new Set([8, 10, 11, 12, 13, 14, 17]);

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/** Returns the differences as text lines; empty when Kumo agrees. */
export function compareResults(
  c: GeneratedCase,
  host: TestResult,
  kumo: TestResult,
  pristine: Uint8Array,
  segments = true,
): string[] {
  const out: string[] = [];
  if (kumo.anomaly) return [`kumo: ${kumo.anomaly}`];
  if (host.signal !== kumo.signal) out.push(`signal host ${host.signal} kumo ${kumo.signal}`);
  if (host.vector >= 0 && host.vector !== kumo.vector) {
    out.push(`vector host ${host.vector} kumo ${kumo.vector}`);
  } else if (host.vector >= 0 && ERROR_CODE_VECTORS.has(host.vector) && host.error !== kumo.error) {
    out.push(`error code host ${hex(host.error)} kumo ${hex(kumo.error)}`);
  }
  const slack = c.mask.eipSlack ?? 0;
  if (host.eip !== kumo.eip && !(slack && kumo.eip - host.eip === slack))
    out.push(`eip host ${hex(host.eip)} kumo ${hex(kumo.eip)}`);
  const flagMask = ~(c.mask.flags | RF);
  if (((host.eflags ^ kumo.eflags) & flagMask) !== 0) {
    out.push(
      `eflags host ${hex(host.eflags)} kumo ${hex(kumo.eflags)} (differ ${hex((host.eflags ^ kumo.eflags) & flagMask)})`,
    );
  }
  for (let r = 0; r < 8; r++) {
    const mask = ~c.mask.regs[r];
    if (((host.regs[r] ^ kumo.regs[r]) & mask) !== 0) {
      // A 64-bit kernel returns to a 16-bit stack through ESPFIX, which does
      // not preserve ESP[31:16] (Linux arch/x86/kernel/espfix_64.c); only SP is
      // architecturally meaningful there.
      if (r === 4 && c.mode === 1 && ((host.regs[r] ^ kumo.regs[r]) & 0xffff) === 0) continue;
      out.push(`${NAMES[r]} host ${hex(host.regs[r])} kumo ${hex(kumo.regs[r])}`);
    }
  }
  for (let s = 0; s < 6 && segments; s++) {
    if (host.segments[s] !== kumo.segments[s]) {
      out.push(`${SEGMENTS[s]} host ${hex(host.segments[s])} kumo ${hex(kumo.segments[s])}`);
    }
  }
  const ignored = new Set(c.mask.memory);
  // Bytes with some undefined bits: compare the defined bits of the final values.
  for (const [offset, bits] of c.mask.memoryBits ?? []) {
    ignored.add(offset);
    const p = offset - c.patchOffset;
    const initial = p >= 0 && p < c.patch.length ? c.patch[p] : pristine[offset];
    const final = (r: TestResult) => {
      const d = r.diffs.find((e) => e >>> 8 === offset);
      return d === undefined ? initial : d & 0xff;
    };
    const h = final(host);
    const k = final(kumo);
    if ((h ^ k) & ~bits & 0xff)
      out.push(`memory ${offset.toString(16)} host ${h.toString(16)} kumo ${k.toString(16)}`);
  }
  const hostDiffs = host.diffs.filter((d) => !ignored.has(d >>> 8));
  const kumoDiffs = kumo.diffs.filter((d) => !ignored.has(d >>> 8));
  const hostCount = host.diffCount - (host.diffs.length - hostDiffs.length);
  const kumoCount = kumo.diffCount - (kumo.diffs.length - kumoDiffs.length);
  if (hostCount !== kumoCount || hostDiffs.some((d, i) => d !== kumoDiffs[i])) {
    // Show only the offsets where the two differ.
    const hostMap = new Map(hostDiffs.map((d) => [d >>> 8, d & 0xff]));
    const kumoMap = new Map(kumoDiffs.map((d) => [d >>> 8, d & 0xff]));
    const offsets = [...new Set([...hostMap.keys(), ...kumoMap.keys()])]
      .filter((o) => hostMap.get(o) !== kumoMap.get(o))
      .sort((a, b) => a - b)
      .slice(0, 12);
    const show = (map: Map<number, number>) =>
      offsets
        .map((o) => `${o.toString(16)}=${map.has(o) ? map.get(o)!.toString(16) : "-"}`)
        .join(" ");
    out.push(
      `memory (${hostCount} vs ${kumoCount} changed) host [${show(hostMap)}] kumo [${show(kumoMap)}]`,
    );
  }
  return out;
}

/** One line describing the case's input, for reports. */
export function describeCase(c: GeneratedCase): string {
  const code = Array.from(c.code, (b) => b.toString(16).padStart(2, "0")).join(" ");
  const regs = Array.from(c.regs, (v, i) => `${NAMES[i]}=${hex(v)}`).join(" ");
  const patch = c.patch.length ? ` patch@${hex(c.patchOffset)}` : "";
  return `${c.form} [${c.text}] code ${code} ${regs} eflags=${hex(c.eflags)}${patch}`;
}

export interface Report {
  forms: number;
  cases: number;
  /** Forms with at least one disagreeing case, with the first case's differences. */
  disagreements: Map<string, string[]>;
}

/** Compares a whole suite; every form counts once. */
export function compareSuite(
  cases: readonly GeneratedCase[],
  host: readonly TestResult[],
  kumo: readonly TestResult[],
  pristine: Uint8Array,
  segments = true,
): Report {
  const forms = new Set<string>();
  const disagreements = new Map<string, string[]>();
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    forms.add(c.form);
    if (disagreements.has(c.form)) continue;
    const differences = compareResults(c, host[i], kumo[i], pristine, segments);
    if (differences.length) disagreements.set(c.form, [describeCase(c), ...differences]);
  }
  return { forms: forms.size, cases: cases.length, disagreements };
}
