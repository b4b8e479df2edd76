// The arm64 boot path: device tree writer, Xen guest device tree, Image loader.
export {
  type Arm64DeviceTreeOptions,
  type Arm64MemoryBank,
  buildArm64DeviceTree,
} from "./device-tree";
export {
  type Arm64DomainImages,
  type Arm64DomainOptions,
  Arm64SpecialPages,
  type Arm64UartConsole,
  createArm64Domain,
  type RunnableArm64Domain,
} from "./domain";
export {
  cells,
  cells64,
  DeviceTreeError,
  empty,
  FdtWriter,
  type MemoryReservation,
  type PropertyValue,
  strings,
} from "./fdt";
export {
  ARM64_ENTRY_PSTATE,
  ARM64_IMAGE_MAGIC,
  type Arm64BootCpu,
  type Arm64BootLayout,
  type Arm64BootMemory,
  type Arm64BootOptions,
  type Arm64EntryState,
  type Arm64ImageHeader,
  applyArm64EntryState,
  arm64BootMemory,
  buildArm64Boot,
  isArm64Image,
  parseArm64ImageHeader,
} from "./image";
