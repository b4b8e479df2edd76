import { ABIS, type Abi, type CompoundDef } from "./define";
import * as blkif from "./defs/blkif";
import * as events from "./defs/events";
import * as grantTable from "./defs/grant-table";
import * as hvm from "./defs/hvm";
import * as memory from "./defs/memory";
import * as netif from "./defs/netif";
import { ringEntries } from "./defs/ring";
import * as vcpuSched from "./defs/vcpu-sched";
import * as xen from "./defs/xen";
import * as xenstore from "./defs/xenstore";
import { AbiLayoutError, resolveLayout, type StructLayout } from "./resolve";

/** Every struct definition, keyed by its C tag. */
export const STRUCT_DEFINITIONS = {
  ...xen,
  ...vcpuSched,
  ...events,
  ...grantTable,
  ...memory,
  ...hvm,
  ...xenstore,
  ...blkif,
  ...netif,
} as const;

type Definitions = typeof STRUCT_DEFINITIONS;
export type StructName = keyof Definitions;

/** The field paths of the struct `N`. */
export type StructPaths<N extends StructName> = Definitions[N] extends CompoundDef<infer P>
  ? P
  : never;

/** The rings of io/ring.h that Kumo's backends serve. */
export type RingName = "blkif" | "netif_tx" | "netif_rx";

/** Every struct laid out for one ABI, plus the facts that follow from the ABI. */
export type AbiLayouts = {
  readonly [N in StructName]: StructLayout<StructPaths<N>>;
} & {
  readonly abi: Abi;
  /** The frontend `protocol` string of this ABI (Xen public io/protocols.h XEN_IO_PROTO_ABI_*). */
  readonly protocol: string;
  /** Bits per event-channel word: `sizeof(xen_ulong_t) * 8`. */
  readonly eventWordBits: number;
  /** 2-level event channel limit, `EVTCHN_2L_NR_CHANNELS`: eventWordBits squared. */
  readonly nrEventChannels2l: number;
  /** Entries of a shared ring spanning `pages` 4096-byte pages (io/ring.h `__CONST_RING_SIZE`). */
  ringEntries(ring: RingName, pages?: number): number;
};

const PROTOCOLS: { readonly [A in Abi]: string } = {
  x86_32: "x86_32-abi",
  x86_64: "x86_64-abi",
  arm64: "arm-abi",
};

/** The ABI a frontend's `protocol` key names, or undefined for anything else. */
export function abiFromProtocol(protocol: string): Abi | undefined {
  for (const abi of ABIS) if (PROTOCOLS[abi] === protocol) return abi;
  return undefined;
}

const cache = new Map<Abi, AbiLayouts>();

/** The layouts of every struct for `abi` (built once per ABI, then shared). */
export function abiLayouts(abi: Abi): AbiLayouts {
  const cached = cache.get(abi);
  if (cached) return cached;
  if (!ABIS.includes(abi)) {
    throw new AbiLayoutError(`unknown ABI "${abi}": expected one of ${ABIS.join(", ")}`);
  }
  const set: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(STRUCT_DEFINITIONS)) {
    set[name] = resolveLayout(def as CompoundDef, abi);
  }
  const wordBits = abi === "x86_32" ? 32 : 64;
  const layouts = {
    ...set,
    abi,
    protocol: PROTOCOLS[abi],
    eventWordBits: wordBits,
    nrEventChannels2l: wordBits * wordBits,
    ringEntries(ring: RingName, pages = 1) {
      const sring = set[`${ring}_sring`] as StructLayout | undefined;
      if (sring === undefined) throw new AbiLayoutError(`unknown ring "${ring}"`);
      const slot = sring.fields.ring;
      return ringEntries(slot.offset, slot.elementSize, pages * 4096);
    },
  } as unknown as AbiLayouts;
  cache.set(abi, layouts);
  return layouts;
}
