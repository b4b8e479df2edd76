import { describe, expect, it } from "vitest";
import * as abi from "../src";
import { ABIS, Errno, XsdErrors } from "../src";
import * as numbers from "../src/numbers";
import { evaluate, macroNames, type OracleItem, runHosted, UNDEFINED } from "./support/c-oracle";

/**
 * Every numeric constant is compared with the header macro or enumerator it mirrors, for every
 * ABI. The C name is the group's prefix plus the key (`Hypercall.memory_op` is
 * `__HYPERVISOR_memory_op`).
 */
const GROUPS: Record<string, { prefix: string; enumerators?: boolean }> = {
  Hypercall: { prefix: "__HYPERVISOR_" },
  MemoryOp: { prefix: "XENMEM_" },
  XenVersionOp: { prefix: "XENVER_" },
  HvmOp: { prefix: "HVMOP_" },
  VcpuOp: { prefix: "VCPUOP_" },
  SchedOp: { prefix: "SCHEDOP_" },
  EvtchnOp: { prefix: "EVTCHNOP_" },
  GnttabOp: { prefix: "GNTTABOP_" },
  ConsoleIo: { prefix: "CONSOLEIO_" },
  VmAssistCmd: { prefix: "VMASST_CMD_" },
  MapSpace: { prefix: "XENMAPSPACE_" },
  XenFeature: { prefix: "XENFEAT_" },
  DomId: { prefix: "DOMID_" },
  ShutdownReason: { prefix: "SHUTDOWN_" },
  RunstateState: { prefix: "RUNSTATE_" },
  VmAssistType: { prefix: "VMASST_TYPE_" },
  PvclockFlags: { prefix: "XEN_PVCLOCK_" },
  StartInfoFlags: { prefix: "SIF_" },
  ElfNote: { prefix: "XEN_ELFNOTE_" },
  Virq: { prefix: "VIRQ_" },
  EvtchnStatus: { prefix: "EVTCHNSTAT_" },
  GrantFlags: { prefix: "GTF_" },
  GntMap: { prefix: "GNTMAP_" },
  GntCopy: { prefix: "GNTCOPY_" },
  GntStatus: { prefix: "GNTST_" },
  HvmParam: { prefix: "HVM_PARAM_" },
  HvmCallbackType: { prefix: "HVM_PARAM_CALLBACK_TYPE_" },
  HvmCallbackPpiFlags: { prefix: "HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_" },
  ArmGuest: { prefix: "GUEST_" },
  XenCpuid: { prefix: "XEN_CPUID_" },
  XenHvmCpuid: { prefix: "XEN_HVM_CPUID_" },
  HvmMemmapType: { prefix: "XEN_HVM_MEMMAP_TYPE_" },
  HvmStartInfoConst: { prefix: "XEN_HVM_START_" },
  BlkifOp: { prefix: "BLKIF_OP_" },
  BlkifStatus: { prefix: "BLKIF_RSP_" },
  Blkif: { prefix: "BLKIF_" },
  Vdisk: { prefix: "VDISK_" },
  NetTxFlags: { prefix: "NETTXF_" },
  NetRxFlags: { prefix: "NETRXF_" },
  NetifStatus: { prefix: "NETIF_RSP_" },
  NetifExtraType: { prefix: "XEN_NETIF_EXTRA_TYPE_" },
  NetifExtraFlags: { prefix: "XEN_NETIF_EXTRA_FLAG_" },
  NetifGsoType: { prefix: "XEN_NETIF_GSO_TYPE_" },
  Netif: { prefix: "XEN_NETIF_" },
  XenstoreConst: { prefix: "XENSTORE_" },
  Errno: { prefix: "XEN_", enumerators: true },
  XsType: { prefix: "XS_", enumerators: true },
  XenbusState: { prefix: "XenbusState", enumerators: true },
};

/**
 * Header macros under a mirrored prefix that are deliberately not mirrored: include guards,
 * bit positions behind flag macros (`_GTF_readonly`), and families of sub-sub-ops and tools-only
 * interfaces no Kumo package serves yet.
 */
const OMITTED = new RegExp(
  [
    "^__HYPERVISOR_(arch_\\d|VIRT_)", // arch multiplexers; PV hypervisor address range
    "^XENMEM_(FORK_|RDM_|SHARING_OP_|access_op_|paging_op_|resource_|sharing_op_)",
    "^HVMOP_(altp2m|ALTP2M_)",
    "^XEN_NETIF_CTRL", // the netif control ring (hash/GREF mapping), not offered
    "^GUEST_(VPCI_|RAM_BANK_)", // arm vPCI window; brace-list initialisers
    "^XEN_CPUID_(FEAT1_|MACHINE_ADDRESS_WIDTH_MASK$|NO_SUBLEAF$)", // PV leaf bits; domctl CPUID policy
    // Array bounds and masks that are not values of the group (and the CALLBACK_IRQ type
    // mask needs all 64 bits: the type is value / 2^56).
    "^(DOMID_MASK|XEN_ELFNOTE_MAX|XEN_NETIF_EXTRA_TYPE_MAX|XENFEAT_NR_SUBMAPS)$",
    "^(HVM_PARAM_CALLBACK_IRQ_TYPE_MASK|GNTTABOP_error_msgs)$",
  ].join("|"),
);

/** The exported `as const` tables of numbers. */
function numberTables(): [string, Record<string, number>][] {
  return (Object.entries(numbers) as [string, unknown][]).filter(
    (entry): entry is [string, Record<string, number>] =>
      typeof entry[1] === "object" &&
      !Array.isArray(entry[1]) &&
      Object.values(entry[1] as object).every((v) => typeof v === "number"),
  );
}

/** `Group.key (C)` labels grouped as `Group (n)`. */
function summarize(labels: string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) {
    const group = label.slice(0, label.indexOf("."));
    counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  return [...counts].map(([group, n]) => `${group} (${n})`).join(", ");
}

/** Constants found in the headers of at least one ABI (filled by the per-ABI tests). */
const definedFor = new Set<string>();
const allLabels = new Set<string>();

describe("numeric constants match the Xen public headers", () => {
  it("every exported table of numbers has an oracle", () => {
    const unchecked = numberTables()
      .map(([name]) => name)
      .filter((name) => !(name in GROUPS));
    expect(unchecked).toEqual([]);
    // The package root re-exports the same objects.
    for (const [name, table] of numberTables()) {
      expect((abi as Record<string, unknown>)[name]).toBe(table);
    }
  });

  it.each(ABIS)("every value equals its macro or enumerator for %s", (target) => {
    const items: { label: string; item: OracleItem; expected: number; macro: boolean }[] = [];
    for (const [name, table] of numberTables()) {
      const group = GROUPS[name];
      for (const [key, expected] of Object.entries(table)) {
        const cName = `${group.prefix}${key}`;
        allLabels.add(`${name}.${key} (${cName})`);
        items.push({
          label: `${name}.${key} (${cName})`,
          item: group.enumerators ? cName : { expr: cName, ifdef: cName },
          expected,
          macro: !group.enumerators,
        });
      }
    }
    const values = evaluate(
      target,
      items.map((i) => i.item),
    );
    const mismatches: string[] = [];
    let compared = 0;
    const absent: string[] = [];
    items.forEach((entry, i) => {
      if (values[i] === UNDEFINED) {
        // Arch-specific macros (x86 upcall vector, arm guest map) exist for some ABIs only;
        // the last test requires each constant to exist for at least one.
        absent.push(entry.label);
        return;
      }
      definedFor.add(entry.label);
      compared++;
      if (values[i] !== BigInt(entry.expected)) {
        mismatches.push(`${entry.label}: TypeScript ${entry.expected}, C ${values[i]}`);
      }
    });
    console.log(
      `[abi] ${target}: ${compared} constants compared with the C headers` +
        (absent.length
          ? `; ${absent.length} arch-specific ones not defined here: ${summarize(absent)}`
          : ""),
    );
    expect(mismatches).toEqual([]);
  });

  it("every constant is defined by the headers of at least one ABI", () => {
    expect([...allLabels].filter((label) => !definedFor.has(label))).toEqual([]);
  });

  it("every macro under a mirrored prefix is mirrored or deliberately left out", () => {
    const covered = new Set<string>();
    for (const [name, table] of numberTables()) {
      for (const key of Object.keys(table)) covered.add(`${GROUPS[name].prefix}${key}`);
    }
    const missing = new Set<string>();
    for (const target of ABIS) {
      for (const macro of macroNames(target)) {
        if (covered.has(macro) || OMITTED.test(macro)) continue;
        for (const [name, group] of Object.entries(GROUPS)) {
          if (!group.enumerators && macro.startsWith(group.prefix))
            missing.add(`${name}: ${macro}`);
        }
      }
    }
    expect([...missing].sort()).toEqual([]);
  });

  it("XsdErrors lists xs_wire.h xsd_errors[] in order, with Xen's errno numbers", () => {
    const output = runHosted(
      'for (unsigned i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)\n  printf("%d %s\\n", xsd_errors[i].errnum, xsd_errors[i].errstring);',
    );
    const rows = output
      .trim()
      .split("\n")
      .map((line) => line.split(" "));
    expect(rows.map((r) => r[1])).toEqual([...XsdErrors]);
    // The header uses the host's <errno.h>; Linux numbers are Xen's (xen/errno.h).
    for (const [number, name] of rows)
      expect(Errno[name as keyof typeof Errno]).toBe(Number(number));
  });
});
