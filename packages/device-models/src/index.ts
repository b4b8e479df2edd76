export {
  ACPI_PM_WINDOW_SIZE,
  AcpiPm,
  type AcpiPmClock,
  AcpiPmOffset,
  type AcpiPmOptions,
  type AcpiPmState,
  AcpiPmStateError,
  PM_TIMER_FREQUENCY,
  Pm1Control,
  Pm1Event,
} from "./acpi-pm";
export {
  AcpiSleep,
  AcpiSleepOffset,
  type AcpiSleepOptions,
  type AcpiSleepState,
  AcpiSleepStateError,
} from "./acpi-sleep";
export {
  AdditionalSense,
  AtapiCommand,
  CD_SECTOR_SIZE,
  SenseKey,
} from "./atapi";
export {
  CmosRegister,
  CmosRtc,
  type CmosRtcOptions,
  type CmosRtcState,
  CmosRtcStateError,
  type RtcClock,
} from "./cmos-rtc";
export {
  DebugConsole,
  type DebugConsoleOptions,
  DebugExit,
  type DebugExitOptions,
} from "./debug-ports";
export {
  FW_CFG_DMA_IO_BASE,
  FW_CFG_DMA_IO_SIZE,
  FW_CFG_IO_BASE,
  FW_CFG_IO_SIZE,
  FW_CFG_MAX_FILE_PATH,
  FwCfg,
  FwCfgDmaControl,
  FwCfgError,
  type FwCfgFileOptions,
  FwCfgKey,
  type FwCfgOptions,
  type FwCfgState,
  FwCfgStateError,
  FwCfgVersion,
  fwCfgLittleEndian,
} from "./fw-cfg";
export * from "./gic-v2";
export { I8042, type I8042Options, type I8042State, I8042StateError } from "./i8042";
export {
  AtaCommand,
  AtaError,
  AtaStatus,
  IDE_MAX_MULTIPLE,
  IdeCdrom,
  IdeChannel,
  type IdeChannelState,
  IdeController,
  type IdeControllerOptions,
  type IdeControllerState,
  type IdeDevice,
  type IdeDisk,
  IdeStateError,
  MemoryDisk,
  SECTOR_SIZE,
} from "./ide";
export {
  IO_APIC_DEFAULT_BASE,
  IO_APIC_PINS,
  IO_APIC_SIZE,
  IoApic,
  type IoApicMessage,
  type IoApicOptions,
  type IoApicState,
  IoApicStateError,
} from "./io-apic";
export {
  ApicError,
  DeliveryMode,
  LOCAL_APIC_DEFAULT_BASE,
  LOCAL_APIC_SIZE,
  LocalApic,
  type LocalApicClock,
  type LocalApicIpi,
  type LocalApicOptions,
  LocalApicRegister,
  type LocalApicState,
  LocalApicStateError,
  LvtIndex,
} from "./local-apic";
export {
  PciFunction,
  PciHost,
  type PciHostOptions,
  type PciHostState,
  PciHostStateError,
} from "./pci-host";
export {
  PicPair,
  type PicPairOptions,
  type PicPairState,
  PicPairStateError,
  type PortWindow,
} from "./pic-8259";
export {
  PIT_FREQUENCY,
  Pit8254,
  type Pit8254Options,
  type Pit8254State,
  Pit8254StateError,
  type PitClock,
} from "./pit-8254";
export * from "./pl011";
export { PortBus, PortBusError } from "./port-bus";
export {
  ResetControl,
  type ResetControlOptions,
  type ResetPortState,
  ResetPortStateError,
  SystemControlPortA,
  type SystemControlPortAOptions,
} from "./reset-ports";
export {
  LineStatus,
  Serial16550,
  type Serial16550Options,
  type Serial16550State,
  Serial16550StateError,
  SerialRegister,
} from "./serial-16550";
export * from "./vga";
export {
  XEN_PLATFORM_IO_BASE,
  XEN_PLATFORM_MAGIC,
  XenPlatformDevice,
  type XenPlatformOptions,
  type XenPlatformState,
  XenPlatformStateError,
} from "./xen-platform";
