import { describe, expect, it } from "vitest";
import {
  ABIS,
  type Abi,
  abiLayouts,
  type CompoundDef,
  STRUCT_DEFINITIONS,
  type StructLayout,
} from "../src";
import { compilerFor, evaluate } from "./support/c-oracle";

/**
 * Every struct size, member offset, member size and array element size of every layout is
 * compared with what the compiler computes from the Xen public headers for that ABI. The C
 * program is generated from the TypeScript definitions, so a member added in TypeScript is
 * checked automatically, and a member the headers do not have fails to compile.
 */

const SIGNED = new Set(["i8", "i16", "i32", "i64"]);

interface Check {
  readonly label: string;
  readonly expr: string;
  readonly expected: number;
}

function checksFor(abi: Abi): { checks: Check[]; structs: number; fields: number } {
  const layouts = abiLayouts(abi);
  const checks: Check[] = [];
  let structs = 0;
  let fields = 0;
  for (const name of Object.keys(STRUCT_DEFINITIONS) as (keyof typeof STRUCT_DEFINITIONS)[]) {
    const def = STRUCT_DEFINITIONS[name] as CompoundDef;
    const layout = layouts[name] as StructLayout;
    const cType = `${def.kind} ${def.name}`;
    // x86-only types (hvm_op.h declares some only for __i386__/__x86_64__).
    if (def.abis && !def.abis.includes(abi)) continue;
    structs++;
    checks.push({ label: `sizeof(${cType})`, expr: `sizeof(${cType})`, expected: layout.size });
    checks.push({
      label: `_Alignof(${cType})`,
      expr: `_Alignof(${cType})`,
      expected: layout.align,
    });
    for (const path of layout.paths) {
      const field = layout.fields[path];
      const member = `((${cType} *)0)->${path}`;
      fields++;
      checks.push({
        label: `offsetof(${cType}, ${path})`,
        expr: `offsetof(${cType}, ${path})`,
        expected: field.offset,
      });
      checks.push({
        label: `sizeof(${cType}.${path})`,
        expr: `sizeof(${member})`,
        expected: field.size,
      });
      const element = field.isArray ? `${member}[0]` : member;
      if (field.isArray) {
        checks.push({
          label: `sizeof(${cType}.${path}[0])`,
          expr: `sizeof(${element})`,
          expected: field.elementSize,
        });
      }
      // Signedness decides how a reader widens the value (`int16_t status` is negative on
      // errors). `char` signedness is the target's (unsigned on arm64); handles are pointers.
      if (field.compound === undefined && field.type !== "char" && field.type !== "handle") {
        checks.push({
          label: `signedness of ${cType}.${path}`,
          expr: `(__typeof__(${element}))-1 < 0`,
          expected: SIGNED.has(field.type) ? 1 : 0,
        });
      }
    }
  }
  // Facts derived from the ABI rather than declared as members.
  for (const ring of ["blkif", "netif_tx", "netif_rx"] as const) {
    checks.push({
      label: `__CONST_RING_SIZE(${ring}, 4096)`,
      expr: `__CONST_RING_SIZE(${ring}, 4096)`,
      expected: layouts.ringEntries(ring),
    });
  }
  checks.push({
    label: "EVTCHN_2L_NR_CHANNELS",
    expr: "EVTCHN_2L_NR_CHANNELS",
    expected: layouts.nrEventChannels2l,
  });
  checks.push({
    label: "sizeof(xen_ulong_t) * 8",
    expr: "sizeof(xen_ulong_t) * 8",
    expected: layouts.eventWordBits,
  });
  // The protocol string, one character per value (the string literal is a constant array).
  for (let i = 0; i <= layouts.protocol.length; i++) {
    checks.push({
      label: `XEN_IO_PROTO_ABI_NATIVE[${i}]`,
      expr: `XEN_IO_PROTO_ABI_NATIVE[${i}]`,
      expected: i < layouts.protocol.length ? layouts.protocol.charCodeAt(i) : 0,
    });
  }
  return { checks, structs, fields };
}

describe.each(ABIS)("struct layouts for %s match the Xen public headers", (abi) => {
  const compiler = compilerFor(abi);
  it("has a compiler for the ABI", () => {
    expect(compiler, `compiler for ${abi}`).not.toHaveProperty("missing");
  });

  it("every size, alignment, member offset and member size equals the compiler's", () => {
    const { checks, structs, fields } = checksFor(abi);
    const values = evaluate(
      abi,
      checks.map((c) => c.expr),
    );
    const mismatches: string[] = [];
    checks.forEach((check, i) => {
      if (values[i] !== BigInt(check.expected)) {
        mismatches.push(`${check.label}: TypeScript ${check.expected}, C ${values[i]}`);
      }
    });
    console.log(
      `[abi] ${abi}: ${structs} structs, ${fields} members, ${checks.length} values compared with the C headers`,
    );
    expect(mismatches).toEqual([]);
  });
});
