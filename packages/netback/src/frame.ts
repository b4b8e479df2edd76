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

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Software GSO for a TCP super-frame (what Linux tcp_gso_segment does for a device without
 * TSO): cuts the payload into `gso.size`-byte segments, each with a copy of the Ethernet, IP and
 * TCP headers, the IPv4 total length/id/header checksum or IPv6 payload length, the sequence
 * number advanced, FIN/PSH kept on the last segment and CWR on the first only, and the TCP
 * checksum computed in full. Returns null (frame unusable) when it is not TCP over IPv4/IPv6
 * without IP options beyond the header length or extension headers.
 */
export function segmentTcp(data: Uint8Array, mss: number): Uint8Array[] | null {
  if (!(mss > 0) || data.length < ETH_HLEN + 20) return null;
  let at = 12;
  let etherType = (data[at] << 8) | data[at + 1];
  at += 2;
  if (etherType === ETHERTYPE_VLAN) {
    etherType = (data[at + 2] << 8) | data[at + 3];
    at += 4;
  }
  const ipStart = at;
  let ipHeader: number;
  let ipEnd: number;
  if (etherType === ETHERTYPE_IPV4) {
    if (data.length < ipStart + 20 || data[ipStart + 9] !== PROTO_TCP) return null;
    ipHeader = (data[ipStart] & 0xf) * 4;
    ipEnd = ipStart + ((data[ipStart + 2] << 8) | data[ipStart + 3]);
  } else if (etherType === ETHERTYPE_IPV6) {
    if (data.length < ipStart + 40 || data[ipStart + 6] !== PROTO_TCP) return null;
    ipHeader = 40;
    ipEnd = ipStart + 40 + ((data[ipStart + 4] << 8) | data[ipStart + 5]);
  } else {
    return null;
  }
  const tcpStart = ipStart + ipHeader;
  if (ipHeader < 20 || ipEnd > data.length || tcpStart + 20 > ipEnd) return null;
  const tcpHeader = (data[tcpStart + 12] >> 4) * 4;
  const payloadStart = tcpStart + tcpHeader;
  if (tcpHeader < 20 || payloadStart > ipEnd) return null;
  const payload = ipEnd - payloadStart;
  const count = Math.max(1, Math.ceil(payload / mss));
  const seq0 =
    ((data[tcpStart + 4] << 24) |
      (data[tcpStart + 5] << 16) |
      (data[tcpStart + 6] << 8) |
      data[tcpStart + 7]) >>>
    0;
  const id0 = (data[ipStart + 4] << 8) | data[ipStart + 5];
  const flags0 = data[tcpStart + 13];
  const segments: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * mss;
    const chunk = Math.min(mss, payload - offset);
    const segment = new Uint8Array(payloadStart + chunk);
    segment.set(data.subarray(0, payloadStart), 0);
    segment.set(data.subarray(payloadStart + offset, payloadStart + offset + chunk), payloadStart);
    const l4Length = tcpHeader + chunk;
    if (etherType === ETHERTYPE_IPV4) {
      const total = ipHeader + l4Length;
      segment[ipStart + 2] = total >> 8;
      segment[ipStart + 3] = total & 0xff;
      const id = (id0 + i) & 0xffff;
      segment[ipStart + 4] = id >> 8;
      segment[ipStart + 5] = id & 0xff;
      segment[ipStart + 10] = 0;
      segment[ipStart + 11] = 0;
      const check = ~foldSum(sumWords(segment, ipStart, ipStart + ipHeader)) & 0xffff;
      segment[ipStart + 10] = check >> 8;
      segment[ipStart + 11] = check & 0xff;
    } else {
      segment[ipStart + 4] = l4Length >> 8;
      segment[ipStart + 5] = l4Length & 0xff;
    }
    const seq = (seq0 + offset) >>> 0;
    segment[tcpStart + 4] = seq >>> 24;
    segment[tcpStart + 5] = (seq >>> 16) & 0xff;
    segment[tcpStart + 6] = (seq >>> 8) & 0xff;
    segment[tcpStart + 7] = seq & 0xff;
    let flags = flags0;
    if (i < count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) flags &= ~TCP_CWR;
    segment[tcpStart + 13] = flags;
    segment[tcpStart + 16] = 0;
    segment[tcpStart + 17] = 0;
    const pseudo =
      etherType === ETHERTYPE_IPV4
        ? sumWords(segment, ipStart + 12, ipStart + 20)
        : sumWords(segment, ipStart + 8, ipStart + 40);
    const check =
      ~foldSum(pseudo + PROTO_TCP + l4Length + sumWords(segment, tcpStart, segment.length)) &
      0xffff;
    segment[tcpStart + 16] = check >> 8;
    segment[tcpStart + 17] = check & 0xff;
    segments.push(segment);
  }
  return segments;
}

function sumWords(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

function foldSum(sum: number): number {
  let value = sum;
  while (value > 0xffff) value = (value & 0xffff) + Math.floor(value / 0x10000);
  return value;
}
