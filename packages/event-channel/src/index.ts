export {
  CallbackEvents,
  type EventSink,
  TWO_LEVEL_LAYOUTS,
  TwoLevelEvents,
  type TwoLevelLayout,
  twoLevelPortLimit,
  UPCALL_PENDING_OFFSET,
} from "./sink";
export {
  EventChannelBus,
  type EventChannelStatus,
  EventChannelTable,
  type EventChannelTableOptions,
  NR_VIRQS,
  virqIsGlobal,
} from "./table";
