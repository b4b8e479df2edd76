import { struct, union } from "../define";
import { defineRing } from "./ring";

// Xen public io/netif.h. Only 16- and 32-bit members: identical in every ABI.

export const netif_tx_request = struct("netif_tx_request", [
  ["gref", "u32"],
  ["offset", "u16"],
  ["flags", "u16"],
  ["id", "u16"],
  ["size", "u16"],
]);

export const netif_tx_response = struct("netif_tx_response", [
  ["id", "u16"],
  ["status", "i16"],
]);

export const netif_rx_request = struct("netif_rx_request", [
  ["id", "u16"],
  ["pad", "u16"],
  ["gref", "u32"],
]);

export const netif_rx_response = struct("netif_rx_response", [
  ["id", "u16"],
  ["offset", "u16"],
  ["flags", "u16"],
  ["status", "i16"],
]);

/** Extra-info slots (NETTXF_extra_info / NETRXF_extra_info), in request or response slots. */
export const netif_extra_info = struct("netif_extra_info", [
  ["type", "u8"],
  ["flags", "u8"],
  [
    "u",
    union("", [
      [
        "gso",
        struct("", [
          ["size", "u16"],
          ["type", "u8"],
          ["pad", "u8"],
          ["features", "u16"],
        ]),
      ],
      ["mcast", struct("", [["addr", "u8", { count: 6 }]])],
      [
        "hash",
        struct("", [
          ["type", "u8"],
          ["algorithm", "u8"],
          ["value", "u8", { count: 4 }],
        ]),
      ],
      ["pad", "u16", { count: 3 }],
    ]),
  ],
]);

const txRing = defineRing("netif_tx", netif_tx_request, netif_tx_response);
export const netif_tx_sring_entry = txRing.entry;
export const netif_tx_sring = txRing.sring;
const rxRing = defineRing("netif_rx", netif_rx_request, netif_rx_response);
export const netif_rx_sring_entry = rxRing.entry;
export const netif_rx_sring = rxRing.sring;
