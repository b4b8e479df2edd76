export {
  AcpiSleep,
  AcpiSleepOffset,
  type AcpiSleepOptions,
  type AcpiSleepState,
  AcpiSleepStateError,
} from "./acpi-sleep";
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
export {
  LineStatus,
  Serial16550,
  type Serial16550Options,
  type Serial16550State,
  Serial16550StateError,
  SerialRegister,
} from "./serial-16550";
