/**
 * Ethernet frames as they cross the bridge, with the offload metadata netif carries
 * (Xen public io/netif.h: NETTXF_csum_blank / NETTXF_data_validated and the GSO extra slot).
 */
import { NetifGsoType } from "@kumo/abi";

/** Smallest frame a vif may send: an Ethernet header (Linux netback checks `size < ETH_HLEN`). */
export const ETH_HLEN = 14;
/** Largest frame: netif's first tx slot carries the total length in a u16 (io/netif.h). */
export const MAX_FRAME_SIZE = 0xffff;

/** Segmentation offload: the frame is a TCP super-frame to be cut in `size`-byte segments. */
export interface GsoInfo {
  /** NetifGsoType.TCPV4 or NetifGsoType.TCPV6. */
  readonly type: number;
  /** MSS of each segment (never 0). */
  readonly size: number;
}

export interface EthernetFrame {
  /** The frame from the destination MAC on, without FCS. */
  readonly data: Uint8Array;
  /**
   * The L4 checksum holds only the pseudo-header sum (netif csum_blank, Linux CHECKSUM_PARTIAL):
   * the receiver must complete it (`completeChecksum`) or be told so (NETRXF_csum_blank).
   */
  readonly checksumPartial: boolean;
  /** The sender vouches for the checksums (netif data_validated, Linux CHECKSUM_UNNECESSARY). */
  readonly dataValidated: boolean;
  readonly gso: GsoInfo | null;
}

/** A user's mistake with a frame handed to the bridge (too short, too long). */
export class FrameError extends Error {
  override readonly name = "FrameError";
}

/** 48-bit MAC address at `offset` as a number (exact: < 2^53), for hashing without allocation. */
export function macKey(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] * 0x10000 + ((bytes[offset + 1] << 8) | bytes[offset + 2])) * 0x1000000 +
    ((bytes[offset + 3] << 16) | (bytes[offset + 4] << 8) | bytes[offset + 5])
  );
}

/** Whether the MAC at `offset` is a group (multicast or broadcast) address: I/G bit set. */
export function isGroupMac(bytes: Uint8Array, offset: number): boolean {
  return (bytes[offset] & 1) === 1;
}

/** "00:16:3e:00:00:01" to 6 bytes, or null when malformed (Linux netback xen_net_read_mac). */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.split(":");
  if (parts.length !== 6) return null;
  const mac = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    if (!/^[0-9a-fA-F]{2}$/.test(parts[i])) return null;
    mac[i] = Number.parseInt(parts[i], 16);
  }
  return mac;
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (byte) => byte.toString(16).padStart(2, "0")).join(":");
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const PROTO_UDP = 17;

/**
 * Completes a partial L4 checksum in place, as Linux skb_checksum_help does for a
 * CHECKSUM_PARTIAL skb: the checksum field already holds the pseudo-header sum, so the one's
 * complement sum over the whole L4 segment, inverted, is the final checksum (RFC 1071).
 * Handles IPv4 and IPv6 (no extension headers) carrying TCP or UDP, behind at most one 802.1Q
 * tag. Returns false, leaving the frame untouched, for anything else.
 */
export function completeChecksum(data: Uint8Array): boolean {
  let at = 12;
  if (data.length < at + 2) return false;
  let etherType = (data[at] << 8) | data[at + 1];
  at += 2;
  if (etherType === ETHERTYPE_VLAN) {
    if (data.length < at + 4) return false;
    etherType = (data[at + 2] << 8) | data[at + 3];
    at += 4;
  }
  let protocol: number;
  let l4Start: number;
  let l4End: number;
  if (etherType === ETHERTYPE_IPV4) {
    if (data.length < at + 20) return false;
    const headerLength = (data[at] & 0xf) * 4;
    const totalLength = (data[at + 2] << 8) | data[at + 3];
    protocol = data[at + 9];
    l4Start = at + headerLength;
    l4End = at + totalLength;
  } else if (etherType === ETHERTYPE_IPV6) {
    if (data.length < at + 40) return false;
    protocol = data[at + 6];
    l4Start = at + 40;
    l4End = l4Start + ((data[at + 4] << 8) | data[at + 5]);
  } else {
    return false;
  }
  const field = protocol === PROTO_TCP ? 16 : protocol === PROTO_UDP ? 6 : -1;
  if (field < 0 || l4End > data.length || l4Start + field + 2 > l4End) return false;
  let sum = 0;
  let i = l4Start;
  for (; i + 1 < l4End; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < l4End) sum += data[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  let checksum = ~sum & 0xffff;
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "none").
  if (protocol === PROTO_UDP && checksum === 0) checksum = 0xffff;
  data[l4Start + field] = checksum >> 8;
  data[l4Start + field + 1] = checksum & 0xff;
  return true;
}

/** Whether `type` is a GSO type netif defines for TCP (Linux netback xenvif_set_skb_gso). */
export function isTcpGso(type: number): boolean {
  return type === NetifGsoType.TCPV4 || type === NetifGsoType.TCPV6;
}
