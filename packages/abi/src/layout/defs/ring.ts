import { type CompoundDef, type FieldPaths, struct, union } from "../define";

/**
 * The generic shared ring of Xen public io/ring.h, as DEFINE_RING_TYPES(name, req, rsp) declares
 * it: `union <name>_sring_entry { req; rsp; }` and `struct <name>_sring`, a 64-byte header
 * followed by the entries (declared `ring[1]`, really as many as fit: see `ringEntries`).
 */
export function defineRing<const Req extends string, const Rsp extends string>(
  name: string,
  request: CompoundDef<Req>,
  response: CompoundDef<Rsp>,
) {
  const entryFields = [
    ["req", request],
    ["rsp", response],
  ] as const;
  const entry = union(`${name}_sring_entry`, entryFields) as CompoundDef<
    FieldPaths<typeof entryFields>
  >;
  const sring = struct(`${name}_sring`, [
    ["req_prod", "u32"],
    ["req_event", "u32"],
    ["rsp_prod", "u32"],
    ["rsp_event", "u32"],
    [
      "pvt",
      union("", [
        ["netif", struct("", [["smartpoll_active", "u8"]])],
        ["tapif_user", struct("", [["msg", "u8"]])],
        ["pvt_pad", "u8", { count: 4 }],
      ]),
    ],
    ["__pad", "u8", { count: 44 }],
    ["ring", entry, { count: 1 }],
  ]);
  return { entry, sring };
}

/**
 * Entries in a ring of `bytes` bytes (one page: 4096): the largest power of two that fits after
 * the header, as io/ring.h `__CONST_RING_SIZE` computes it.
 */
export function ringEntries(headerSize: number, entrySize: number, bytes: number): number {
  const fit = Math.floor((bytes - headerSize) / entrySize);
  if (fit < 1) return 0;
  return 2 ** Math.floor(Math.log2(fit));
}
