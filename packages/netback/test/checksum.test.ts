import { NetRxFlags } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { completeChecksum, type EthernetFrame, segmentTcp } from "../src/index";
import { guestWithVif, mac, machine, pattern, pump, settle } from "./helpers";

const A = "00:16:3e:00:00:0a";
const B = "00:16:3e:00:00:0b";
const C = "00:16:3e:00:00:0c";

/** One's complement sum of 16-bit big-endian words (RFC 1071), unfolded. */
function sum16(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  return sum;
}
function fold(sum: number): number {
  let value = sum;
  while (value > 0xffff) value = (value & 0xffff) + Math.floor(value / 0x10000);
  return value;
}

/**
 * IPv4 (or IPv6) + UDP (or TCP) frame whose L4 checksum holds only the pseudo-header sum, as
 * Linux leaves a CHECKSUM_PARTIAL packet (udp4_hwcsum / tcp_v4_send_check: ~csum_tcpudp_magic).
 */
function partialFrame(
  dst: string,
  src: string,
  ipv6: boolean,
  protocol: 6 | 17,
  payload: Uint8Array,
): Uint8Array {
  const l4Header = protocol === 6 ? 20 : 8;
  const l4Length = l4Header + payload.length;
  const ipHeader = ipv6 ? 40 : 20;
  const frame = new Uint8Array(14 + ipHeader + l4Length);
  frame.set(mac(dst), 0);
  frame.set(mac(src), 6);
  frame[12] = ipv6 ? 0x86 : 0x08;
  frame[13] = ipv6 ? 0xdd : 0x00;
  const ip = 14;
  let pseudo: number;
  if (ipv6) {
    frame[ip] = 0x60;
    frame[ip + 4] = l4Length >> 8;
    frame[ip + 5] = l4Length & 0xff;
    frame[ip + 6] = protocol;
    frame[ip + 7] = 64;
    frame.set(pattern(32, 5), ip + 8);
    pseudo = sum16(frame, ip + 8, ip + 40) + l4Length + protocol;
  } else {
    frame[ip] = 0x45;
    const total = ipHeader + l4Length;
    frame[ip + 2] = total >> 8;
    frame[ip + 3] = total & 0xff;
    frame[ip + 8] = 64;
    frame[ip + 9] = protocol;
    frame.set([10, 0, 0, 1, 10, 0, 0, 2], ip + 12);
    pseudo = sum16(frame, ip + 12, ip + 20) + l4Length + protocol;
  }
  const l4 = ip + ipHeader;
  frame.set([0x30, 0x39, 0x00, 0x50], l4); // ports 12345 -> 80
  if (protocol === 17) {
    frame[l4 + 4] = l4Length >> 8;
    frame[l4 + 5] = l4Length & 0xff;
  } else {
    frame[l4 + 12] = 0x50;
  }
  frame.set(payload, l4 + l4Header);
  const field = l4 + (protocol === 6 ? 16 : 6);
  const partial = fold(pseudo);
  frame[field] = partial >> 8;
  frame[field + 1] = partial & 0xff;
  return frame;
}

/** RFC 1071 verification: pseudo-header plus the whole segment (checksum included) sums to 0xffff. */
function checksumValid(frame: Uint8Array): boolean {
  const ipv6 = frame[12] === 0x86;
  const ip = 14;
  const protocol = ipv6 ? frame[ip + 6] : frame[ip + 9];
  const l4 = ip + (ipv6 ? 40 : 20);
  const l4Length = frame.length - l4;
  const pseudo = ipv6
    ? sum16(frame, ip + 8, ip + 40) + l4Length + protocol
    : sum16(frame, ip + 12, ip + 20) + l4Length + protocol;
  return fold(pseudo + sum16(frame, l4, frame.length)) === 0xffff;
}

describe("checksum offload across the bridge", () => {
  it("completeChecksum finishes IPv4/IPv6 TCP/UDP partial checksums so they verify", () => {
    for (const ipv6 of [false, true]) {
      for (const protocol of [6, 17] as const) {
        for (const length of [0, 1, 17, 1000, 1459]) {
          const frame = partialFrame(B, A, ipv6, protocol, pattern(length, length + 1));
          expect(checksumValid(frame)).toBe(false);
          expect(completeChecksum(frame)).toBe(true);
          expect(checksumValid(frame)).toBe(true);
        }
      }
    }
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(completeChecksum(arp)).toBe(false);
  });

  it("passes csum_blank on to a vif that accepts it, completes it for the host and for no-csum-offload vifs", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B);
    const c = await guestWithVif(m, "c", C, {
      features: { noCsumOffload: true, ipv6CsumOffload: false },
    });
    await a.front.connect();
    await b.front.connect();
    await c.front.connect();
    const bridge = m.bridges.get("xenbr0");
    const plain: EthernetFrame[] = [];
    const raw: EthernetFrame[] = [];
    bridge.openHostPort().onFrame((frame) => plain.push(frame));
    bridge.openHostPort({ offloads: true }).onFrame((frame) => raw.push(frame));

    const frame = partialFrame("ff:ff:ff:ff:ff:ff", A, false, 17, pattern(700, 3));
    a.front.send(frame, { checksumBlank: true });
    await settle(6);
    const atB = b.front.poll();
    const atC = c.front.poll();
    await pump([a.front], () => a.front.txOutstanding() === 0);

    expect(atB[0].data).toEqual(frame);
    expect(atB[0].flags & (NetRxFlags.csum_blank | NetRxFlags.data_validated)).toBe(
      NetRxFlags.csum_blank | NetRxFlags.data_validated,
    );
    expect(checksumValid(atC[0].data)).toBe(true);
    expect(atC[0].flags & NetRxFlags.csum_blank).toBe(0);
    expect(atC[0].flags & NetRxFlags.data_validated).toBe(NetRxFlags.data_validated);
    expect(checksumValid(plain[0].data)).toBe(true);
    expect(raw[0].checksumPartial).toBe(true);
    expect(raw[0].data).toEqual(frame);
    // The sender's own bytes were never modified by completing copies.
    expect(checksumValid(frame)).toBe(false);
  });
});

describe("software GSO (segmentTcp)", () => {
  function superFrame(ipv6: boolean, payload: number): Uint8Array {
    const frame = partialFrame(B, A, ipv6, 6, pattern(payload, payload));
    const l4 = 14 + (ipv6 ? 40 : 20);
    frame.set([0xfe, 0xdc, 0xba, 0x98], l4 + 4); // sequence number near wrap-around
    frame[l4 + 13] = 0x80 | 0x10 | 0x08 | 0x01; // CWR ACK PSH FIN
    if (!ipv6) frame.set([0xff, 0xfe], 14 + 4); // IP id about to wrap
    return frame;
  }

  it("cuts IPv4 and IPv6 TCP super-frames into valid MSS-sized segments", () => {
    for (const ipv6 of [false, true]) {
      const mss = 1448;
      const payload = 10_000;
      const frame = superFrame(ipv6, payload);
      const segments = segmentTcp(frame, mss);
      if (segments === null) throw new Error("not segmented");
      expect(segments).toHaveLength(Math.ceil(payload / mss));
      const ip = 14;
      const l4 = ip + (ipv6 ? 40 : 20);
      const joined: number[] = [];
      segments.forEach((segment, i) => {
        expect(checksumValid(segment)).toBe(true);
        if (!ipv6) {
          expect(fold(sum16(segment, ip, ip + 20))).toBe(0xffff);
          expect((segment[ip + 2] << 8) | segment[ip + 3]).toBe(segment.length - 14);
          expect((segment[ip + 4] << 8) | segment[ip + 5]).toBe((0xfffe + i) & 0xffff);
        } else {
          expect((segment[ip + 4] << 8) | segment[ip + 5]).toBe(segment.length - l4);
        }
        const seq =
          ((segment[l4 + 4] << 24) |
            (segment[l4 + 5] << 16) |
            (segment[l4 + 6] << 8) |
            segment[l4 + 7]) >>>
          0;
        expect(seq).toBe((0xfedcba98 + i * mss) >>> 0);
        const flags = segment[l4 + 13];
        expect(flags & 0x80).toBe(i === 0 ? 0x80 : 0);
        expect(flags & 0x09).toBe(i === segments.length - 1 ? 0x09 : 0);
        expect(flags & 0x10).toBe(0x10);
        joined.push(...segment.subarray(l4 + 20));
      });
      expect(Uint8Array.from(joined)).toEqual(frame.subarray(l4 + 20));
    }
    expect(segmentTcp(partialFrame(B, A, false, 17, pattern(3000, 1)), 1448)).toBeNull();
  });

  it("segments a GSO frame for a vif without GSO and for a plain host port", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const c = await guestWithVif(m, "c", C, { features: { gsoTcpv4: false, gsoTcpv6: false } });
    await a.front.connect();
    await c.front.connect();
    const plain: EthernetFrame[] = [];
    m.bridges
      .get("xenbr0")
      .openHostPort()
      .onFrame((frame) => plain.push(frame));
    const frame = superFrame(false, 20_000);
    frame.set(mac("ff:ff:ff:ff:ff:ff"), 0);
    a.front.send(frame, { gso: { type: 1, size: 1448 }, checksumBlank: true });
    const atC = [];
    for (let i = 0; i < 50 && atC.length < 14; i++) {
      await settle(1);
      atC.push(...c.front.poll());
    }
    expect(atC).toHaveLength(14);
    expect(plain).toHaveLength(14);
    for (const got of [...atC.map((r) => r.data), ...plain.map((f) => f.data)]) {
      expect(checksumValid(got)).toBe(true);
      expect(got.length).toBeLessThanOrEqual(14 + 20 + 20 + 1448);
    }
    expect(atC.every((r) => r.gso === null)).toBe(true);
  });
});
