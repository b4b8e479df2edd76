/** `netif_tx_request.flags`. Xen public io/netif.h `NETTXF_*`. */
export const NetTxFlags = {
  csum_blank: 1,
  data_validated: 2,
  more_data: 4,
  extra_info: 8,
} as const;
export type NetTxFlags = (typeof NetTxFlags)[keyof typeof NetTxFlags];

/** `netif_rx_response.flags`. Xen public io/netif.h `NETRXF_*`. */
export const NetRxFlags = {
  data_validated: 1,
  csum_blank: 2,
  more_data: 4,
  extra_info: 8,
  gso_prefix: 16,
} as const;
export type NetRxFlags = (typeof NetRxFlags)[keyof typeof NetRxFlags];

/** tx/rx response status (rx: > 0 is a byte count). Xen public io/netif.h `NETIF_RSP_*`. */
export const NetifStatus = {
  DROPPED: -2,
  ERROR: -1,
  OKAY: 0,
  NULL: 1,
} as const;
export type NetifStatus = (typeof NetifStatus)[keyof typeof NetifStatus];

/** `netif_extra_info.type`. Xen public io/netif.h `XEN_NETIF_EXTRA_TYPE_*`. */
export const NetifExtraType = {
  NONE: 0,
  GSO: 1,
  MCAST_ADD: 2,
  MCAST_DEL: 3,
  HASH: 4,
} as const;
export type NetifExtraType = (typeof NetifExtraType)[keyof typeof NetifExtraType];

/** `netif_extra_info.flags`. Xen public io/netif.h `XEN_NETIF_EXTRA_FLAG_*`. */
export const NetifExtraFlags = {
  MORE: 1,
} as const;
export type NetifExtraFlags = (typeof NetifExtraFlags)[keyof typeof NetifExtraFlags];

/** `netif_extra_info.u.gso.type`. Xen public io/netif.h `XEN_NETIF_GSO_TYPE_*`. */
export const NetifGsoType = {
  NONE: 0,
  TCPV4: 1,
  TCPV6: 2,
} as const;
export type NetifGsoType = (typeof NetifGsoType)[keyof typeof NetifGsoType];

/** netif limits. Xen public io/netif.h `XEN_NETIF_*`. */
export const Netif = {
  NR_SLOTS_MIN: 18,
  MAX_TX_SIZE: 65535,
} as const;
export type Netif = (typeof Netif)[keyof typeof Netif];
