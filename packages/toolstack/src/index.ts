// The public API of @kumo/toolstack. Everything exported here is importable in
// a browser: Node-only parts (files, terminals, the CLI) live under src/node
// and src/bin and are exported from "@kumo/toolstack/node".

export * from "./arm64/index";
export {
  attachDomainDevices,
  DeviceAttachError,
  type DomainDevices,
  type DomainDevicesOptions,
} from "./backends/devices";
export { parseVdev, VdevError, type VirtualDevice } from "./backends/vdev";
export {
  ACPI_PC_S5_SLEEP_TYPE,
  ACPI_PC_TABLES_SIZE,
  ACPI_PM_PORT_BASE,
  ACPI_S5_SLEEP_TYPE,
  ACPI_SCI_IRQ,
  ACPI_SLEEP_CONTROL_PORT,
  ACPI_SLEEP_PORT_BASE,
  ACPI_SLEEP_STATUS_PORT,
  ACPI_TABLES_ADDRESS,
  type AcpiTables,
  buildAcpiTables,
  buildPcAcpiTables,
  type PcAcpiOptions,
} from "./builder/acpi";
export { crc32, crc64 } from "./builder/crc";
export {
  type ElfImage,
  ElfMachine,
  type ElfNote,
  type ElfSegment,
  findPhys32Entry,
  isElf,
  parseElf,
} from "./builder/elf";
export { DomainBuildError, KernelImageError } from "./builder/errors";
export {
  isBzImage,
  type KernelImageKind,
  type UnpackedKernel,
  unpackKernelImage,
} from "./builder/kernel-image";
export {
  applyPvhEntryState,
  type BootMemory,
  buildPvhBoot,
  guestBootMemory,
  type MemmapEntry,
  PVH_MMIO_HOLE_START,
  type PvhBootLayout,
  type PvhBuildOptions,
  type PvhCapableCpu,
  type PvhEntryState,
  PvhSpecialPages,
  pvhEntryState,
  ramBootMemory,
  type SegmentCache,
} from "./builder/pvh";
export { decompressXz, isXz } from "./builder/xz";
export {
  type DiskAccess,
  type DiskBackendType,
  type DiskFormat,
  type DiskSpec,
  DiskSpecError,
  parseDiskSpec,
} from "./config/disk";
export {
  type DomainAction,
  type DomainConfig,
  domainConfigFromFile,
  parseDomainConfig,
  readXlBoolean,
  type XlConfigWarning,
} from "./config/domain-config";
export { type SourcePosition, XlConfigError } from "./config/errors";
export {
  parseCNumber,
  parseXlConfigText,
  type XlConfigFile,
  type XlList,
  type XlNumber,
  type XlSetting,
  type XlString,
  type XlValue,
} from "./config/syntax";
export { parseVifSpec, type VifSpec, VifSpecError } from "./config/vif";
export {
  ConsoleBackend,
  type ConsoleBackendState,
  type ConsoleChannel,
  type ConsoleOutputListener,
  XenconsLayout,
} from "./console/backend";
export { hostConsoleChannel } from "./console/host-channel";
export { attachLocalApic, type LocalApicWiring } from "./runner/local-apic";
export {
  createPvhDomain,
  type PvhDomainImages,
  type PvhDomainOptions,
  type RunnablePvhDomain,
} from "./runner/pvh-domain";
export { introduceDomain, type XenstoreDomain } from "./runner/xenstore";
