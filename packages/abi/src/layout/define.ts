/**
 * Struct definitions as data. A definition lists C fields by name and type, in declaration
 * order, exactly as the Xen public headers declare them; offsets and sizes are derived per ABI by
 * the C layout rules in `resolve.ts` and checked against the compilers in the tests.
 */

/** The guest ABIs Kumo serves. Names follow Xen's `protocol` strings (io/protocols.h). */
export type Abi = "x86_32" | "x86_64" | "arm64";
export const ABIS: readonly Abi[] = ["x86_32", "x86_64", "arm64"];

/**
 * Scalar C types.
 * - `u64`/`i64`: `uint64_t`/`int64_t`, 8 bytes, aligned to 4 on x86_32 (i386 System V ABI) and
 *   to 8 elsewhere.
 * - `ulong`: `unsigned long` and `xen_ulong_t` (4 bytes on x86_32, 8 on x86_64; `uint64_t` on
 *   arm64, Xen public arch-arm.h).
 * - `pfn`: `xen_pfn_t` (same sizes as `ulong`).
 * - `handle`: `XEN_GUEST_HANDLE(...)`: a pointer on x86 (4 or 8 bytes), a `uint64_aligned_t`
 *   union on arm64 (arch-arm.h `___DEFINE_XEN_GUEST_HANDLE`).
 * - `char`: a byte of a character array.
 */
export type ScalarType =
  | "u8"
  | "i8"
  | "char"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "u64"
  | "i64"
  | "ulong"
  | "pfn"
  | "handle";

/** A count that may differ per ABI (`evtchn_pending[sizeof(xen_ulong_t) * 8]`). */
export type PerAbi<T> = T | { readonly [A in Abi]: T };

export interface FieldOptions {
  /** Array length (C `type name[count]`); absent for a plain member. */
  readonly count?: PerAbi<number>;
  /** The ABIs whose headers declare this member (default: all). */
  readonly abis?: readonly Abi[];
}

/** `[name, type]` or `[name, type, options]`. */
export type FieldSpec =
  | readonly [string, ScalarType | CompoundDef]
  | readonly [string, ScalarType | CompoundDef, FieldOptions];

/** A struct or union definition. `Names` is the union of its field paths (nested with dots). */
export interface CompoundDef<Names extends string = string> {
  readonly kind: "struct" | "union";
  /** The C tag (`shared_info` for `struct shared_info`); empty for an anonymous member type. */
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  /** The ABIs whose headers declare this type (default: all). */
  readonly abis?: readonly Abi[];
  /** Phantom: carries the field paths for typed accessors. */
  readonly __names?: Names;
}

/** Field paths of one field spec: its name, plus `name.sub` for non-array nested compounds. */
type PathsOf<F> = F extends readonly [infer N extends string, infer T, ...infer Rest]
  ? T extends CompoundDef<infer Sub>
    ? Rest extends [{ readonly count: PerAbi<number> }]
      ? N
      : N | `${N}.${Sub}`
    : N
  : never;

export type FieldPaths<Fs extends readonly FieldSpec[]> = PathsOf<Fs[number]>;

/** Defines `struct <name>` from its fields. */
export function struct<const Fs extends readonly FieldSpec[]>(
  name: string,
  fields: Fs,
  options?: { readonly abis?: readonly Abi[] },
): CompoundDef<FieldPaths<Fs>> {
  return { kind: "struct", name, fields, abis: options?.abis };
}

/** Defines `union <name>` (or an anonymous union when `name` is empty). */
export function union<const Fs extends readonly FieldSpec[]>(
  name: string,
  fields: Fs,
): CompoundDef<FieldPaths<Fs>> {
  return { kind: "union", name, fields };
}
