/**
 * @kumo/netback: the Xen network backend. A `VifBackend` runs the xenbus handshake with a
 * frontend (Linux xen-netfront) and serves its netif rings as a `Vif`; vifs and host programs
 * meet on named L2 `Bridge`s.
 */
export {
  Bridge,
  type BridgeOptions,
  BridgePort,
  BridgeRegistry,
  type BridgeSink,
  type FrameHandler,
  HostPort,
  type HostPortOptions,
} from "./bridge";
export {
  completeChecksum,
  ETH_HLEN,
  type EthernetFrame,
  FrameError,
  formatMac,
  type GsoInfo,
  MAX_FRAME_SIZE,
  parseMac,
  segmentTcp,
} from "./frame";
export {
  FATAL_SKB_SLOTS,
  LEGACY_SLOTS_MAX,
  MCAST_MAX,
  type QueueRings,
  Vif,
  type VifFeatures,
  type VifOptions,
  type VifStatistics,
} from "./vif";
export { VifBackend, type VifBackendOptions, VifConfigError, type XenbusStore } from "./xenbus";
