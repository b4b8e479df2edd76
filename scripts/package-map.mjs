// The package map of docs/architecture.md as data: for each package, the
// `@kumo/*` packages it may import. Arrows point down only; a package never
// imports a sibling at its own level or anything above it. Workspace folders
// that are not published packages (examples, bench, guests) may import any
// package. Change this table together with docs/architecture.md.
export const packageMap = {
  abi: [],
  mmu: ["abi"],
  "event-channel": ["mmu", "abi"],
  "grant-table": ["mmu", "abi"],
  "cpu-x86": ["mmu", "abi"],
  "cpu-arm": ["mmu", "abi"],
  "hypervisor-core": ["event-channel", "grant-table", "mmu", "abi"],
  xenstore: ["hypervisor-core", "event-channel", "grant-table", "mmu", "abi"],
  blkback: ["hypervisor-core", "event-channel", "grant-table", "mmu", "abi"],
  netback: ["hypervisor-core", "event-channel", "grant-table", "mmu", "abi"],
  "device-models": ["mmu"],
  toolstack: [
    "xenstore",
    "blkback",
    "netback",
    "device-models",
    "hypervisor-core",
    "event-channel",
    "grant-table",
    "cpu-x86",
    "cpu-arm",
    "mmu",
    "abi",
  ],
};
