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
