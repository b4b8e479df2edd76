import { NetifExtraType, NetifStatus, NetTxFlags } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import type { EthernetFrame } from "../src/index";
import {
  ethernet,
  type Guest,
  guestWithVif,
  type Machine,
  machine,
  pattern,
  pump,
  settle,
} from "./helpers";

const A = "00:16:3e:00:00:0a";
const B = "00:16:3e:00:00:0b";
const HOST = "02:00:00:00:00:01";

function txSlot(gref: number, offset: number, flags: number, id: number, size: number): Uint8Array {
  const slot = new Uint8Array(12);
  const view = new DataView(slot.buffer);
  view.setUint32(0, gref, true);
  view.setUint16(4, offset, true);
  view.setUint16(6, flags, true);
  view.setUint16(8, id, true);
  view.setUint16(10, size, true);
  return slot;
}

function extraSlot(type: number, flags: number, size = 0, gsoType = 0): Uint8Array {
  const slot = new Uint8Array(12);
  const view = new DataView(slot.buffer);
  view.setUint8(0, type);
  view.setUint8(1, flags);
  view.setUint16(2, size, true);
  view.setUint8(4, gsoType);
  return slot;
}

interface Setup {
  m: Machine;
  a: Guest;
  b: Guest;
  atHost: EthernetFrame[];
  host: ReturnType<ReturnType<Machine["bridges"]["get"]>["openHostPort"]>;
}

async function setup(): Promise<Setup> {
  const m = machine();
  const a = await guestWithVif(m, "a", A);
  const b = await guestWithVif(m, "b", B);
  await a.front.connect();
  await b.front.connect();
  const host = m.bridges.get("xenbr0").openHostPort();
  const atHost: EthernetFrame[] = [];
  host.onFrame((frame) => atHost.push(frame));
  return { m, a, b, atHost, host };
}

/** b and the host still exchange frames both ways: the other vif is unharmed. */
async function otherVifWorks(s: Setup, seed: number): Promise<void> {
  const toHost = ethernet(HOST, B, 0x88b5, pattern(500, seed));
  const before = s.atHost.length;
  s.b.front.send(toHost);
  await pump([s.b.front], () => s.atHost.length > before);
  expect(s.atHost[s.atHost.length - 1].data).toEqual(toHost);
  const toB = ethernet(B, HOST, 0x88b5, pattern(700, seed + 1));
  s.host.send(toB);
  const got: Uint8Array[] = [];
  for (let i = 0; i < 100 && got.length === 0; i++) {
    await settle(1);
    got.push(...s.b.front.poll().map((frame) => frame.data));
  }
  expect(got[0]).toEqual(toB);
  expect(s.b.front.violations).toEqual([]);
}

/** Raw requests then a wait for the backend to handle them. */
async function sendRaw(s: Setup, slots: Uint8Array[]): Promise<void> {
  s.a.front.sendRawSlots(slots);
  await settle(6);
  s.a.front.poll();
}

const statusesOf = (s: Setup) => Object.fromEntries(s.a.front.txStatuses);

describe("hostile tx requests (Linux xen-netback semantics)", () => {
  it("answers a first slot shorter than an Ethernet header with NETIF_RSP_ERROR", async () => {
    const s = await setup();
    const gref = s.a.front.grantData(pattern(10, 1));
    await sendRaw(s, [txSlot(gref, 0, 0, 1, 10)]);
    expect(statusesOf(s)).toEqual({ [NetifStatus.ERROR]: 1 });
    expect(s.a.backend.vif?.disabled).toBe(false);
  });

  it("answers an ungranted data ref with NETIF_RSP_ERROR and keeps the vif", async () => {
    const s = await setup();
    await sendRaw(s, [txSlot(3000, 0, 0, 1, 100), txSlot(5, 0, 0, 2, 100)]);
    expect(statusesOf(s)).toEqual({ [NetifStatus.ERROR]: 2 });
    expect(s.a.backend.vif?.disabled).toBe(false);
    expect(s.atHost).toHaveLength(0);
    // The vif still works afterwards.
    s.a.front.send(ethernet(HOST, A, 0x88b5, pattern(80, 2)));
    await pump([s.a.front], () => s.atHost.length === 1);
    expect(s.atHost).toHaveLength(1);
  });

  // Linux xenvif_count_requests counts the slots after the first: up to 18 of them
  // (XEN_NETBK_LEGACY_SLOTS_MAX) are served, a 19th drops the packet, a 21st is fatal.
  const chain = (gref: number, total: number, size = 100) => {
    const slots = [txSlot(gref, 0, NetTxFlags.more_data, 0, total * size)];
    for (let i = 1; i < total; i++)
      slots.push(txSlot(gref, 0, i < total - 1 ? NetTxFlags.more_data : 0, i, size));
    return slots;
  };

  it("serves a packet of 19 slots (first + 18) as one frame", async () => {
    const s = await setup();
    const frame = ethernet(HOST, A, 0x88b5, pattern(86, 3));
    const gref = s.a.front.grantData(frame);
    await sendRaw(s, chain(gref, 19));
    expect(statusesOf(s)).toEqual({ [NetifStatus.OKAY]: 19 });
    expect(s.atHost).toHaveLength(1);
    expect(s.atHost[0].data).toHaveLength(1900);
  });

  it("drops a packet of 20 slots (over XEN_NETBK_LEGACY_SLOTS_MAX) with one error per slot", async () => {
    const s = await setup();
    const gref = s.a.front.grantData(pattern(4096, 3));
    await sendRaw(s, chain(gref, 20));
    expect(statusesOf(s)).toEqual({ [NetifStatus.ERROR]: 20 });
    expect(s.a.backend.vif?.disabled).toBe(false);
  });

  it("drops (not fatal) a later slot larger than the remaining size", async () => {
    const s = await setup();
    const gref = s.a.front.grantData(pattern(4096, 4));
    await sendRaw(s, [txSlot(gref, 0, NetTxFlags.more_data, 0, 100), txSlot(gref, 0, 0, 1, 200)]);
    expect(statusesOf(s)).toEqual({ [NetifStatus.ERROR]: 2 });
    expect(s.a.backend.vif?.disabled).toBe(false);
  });

  const fatalCases: [string, (gref: number) => Uint8Array[], RegExp][] = [
    [
      "a packet of 22 slots (fatal_skb_slots = 20 after the first)",
      (gref) => chain(gref, 22, 50),
      /malicious frontend using 20 slots/,
    ],
    [
      "a later slot crossing its page",
      (gref) => [txSlot(gref, 0, NetTxFlags.more_data, 0, 200), txSlot(gref, 4000, 0, 1, 100)],
      /cross page boundary/,
    ],
    [
      "a first slot crossing its page",
      (gref) => [txSlot(gref, 4000, 0, 0, 200)],
      /cross page boundary/,
    ],
    [
      "a more_data chain running past the posted requests",
      (gref) => [
        txSlot(gref, 0, NetTxFlags.more_data, 0, 200),
        txSlot(gref, 0, NetTxFlags.more_data, 1, 100),
      ],
      /only 1 requests are posted/,
    ],
    [
      "a missing extra slot",
      (gref) => [txSlot(gref, 0, NetTxFlags.extra_info, 0, 100)],
      /missing extra info/,
    ],
    [
      "an extra of type 0",
      (gref) => [txSlot(gref, 0, NetTxFlags.extra_info, 0, 100), extraSlot(0, 0)],
      /invalid extra type 0/,
    ],
    [
      "an extra of type 6",
      (gref) => [txSlot(gref, 0, NetTxFlags.extra_info, 0, 100), extraSlot(6, 0)],
      /invalid extra type 6/,
    ],
    [
      "a GSO extra with size 0",
      (gref) => [
        txSlot(gref, 0, NetTxFlags.extra_info, 0, 100),
        extraSlot(NetifExtraType.GSO, 0, 0, 1),
      ],
      /GSO size must not be zero/,
    ],
    [
      "a GSO extra of an unknown type",
      (gref) => [
        txSlot(gref, 0, NetTxFlags.extra_info, 0, 100),
        extraSlot(NetifExtraType.GSO, 0, 1400, 9),
      ],
      /bad GSO type 9/,
    ],
  ];
  for (const [name, build, reason] of fatalCases) {
    it(`disables only that vif for ${name}`, async () => {
      const s = await setup();
      const gref = s.a.front.grantData(pattern(4096, 5));
      await sendRaw(s, build(gref));
      expect(s.a.backend.vif?.disabled).toBe(true);
      expect(s.a.backend.vif?.fatalReason).toMatch(reason);
      await otherVifWorks(s, 6);
      // A disabled vif sends and receives nothing more.
      s.a.front.send(ethernet(HOST, A, 0x88b5, pattern(80, 7)));
      await settle(6);
      expect(s.atHost.every((frame) => frame.data[11] !== 0x0a)).toBe(true);
    });
  }

  it("disables the vif when req_prod runs more than a ring ahead (tx and rx)", async () => {
    for (const ring of ["tx", "rx"] as const) {
      const s = await setup();
      const page = s.a.front.ringPages()[ring];
      new DataView(page.buffer, page.byteOffset).setUint32(0, 100_000, true);
      if (ring === "tx") s.a.front.notifyTx();
      else s.host.send(ethernet(A, HOST, 0x88b5, pattern(60, 8)));
      await settle(6);
      expect(s.a.backend.vif?.disabled).toBe(true);
      expect(s.a.backend.vif?.fatalReason).toMatch(/impossible number of requests/);
      await otherVifWorks(s, 9);
    }
  });
});

describe("rings and event suppression", () => {
  it("notifies the frontend once per batch and re-arms req_event before idling", async () => {
    const s = await setup();
    for (let i = 0; i < 10; i++) s.a.front.send(ethernet(HOST, A, 0x88b5, pattern(100, i)));
    await settle(6);
    expect(s.atHost).toHaveLength(10);
    const tx = s.a.front.ringPages().tx;
    const view = new DataView(tx.buffer, tx.byteOffset);
    // All 10 responses published; the frontend's rsp_event was 1: one notification.
    expect(view.getUint32(8, true)).toBe(10);
    s.a.front.poll();
    const port = s.a.front.queues[0].txPort;
    expect(s.a.front.notifications.get(port)).toBe(1);
    // RING_FINAL_CHECK_FOR_REQUESTS left req_event at req_cons + 1.
    expect(view.getUint32(4, true)).toBe(11);
  });

  it("filters multicast with request-multicast-control until MCAST_ADD, and after MCAST_DEL", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A, { features: { multicastControl: true } });
    await a.front.connect();
    const host = m.bridges.get("xenbr0").openHostPort();
    const group = "01:00:5e:00:00:fb";
    const groupBytes = Uint8Array.from([1, 0, 0x5e, 0, 0, 0xfb]);
    const received = async () => {
      await settle(6);
      return a.front.poll().length;
    };
    host.send(ethernet(group, HOST, 0x0800, pattern(60, 1)));
    expect(await received()).toBe(0);
    a.front.multicast("add", groupBytes);
    await settle(6);
    expect(a.backend.vif?.multicastCount).toBe(1);
    host.send(ethernet(group, HOST, 0x0800, pattern(60, 2)));
    expect(await received()).toBe(1);
    a.front.multicast("del", groupBytes);
    await settle(6);
    host.send(ethernet(group, HOST, 0x0800, pattern(60, 3)));
    host.send(ethernet("ff:ff:ff:ff:ff:ff", HOST, 0x0806, pattern(28, 4)));
    expect(await received()).toBe(1);
    // MCAST_ADD/DEL are answered with the request's own response plus NULL for the extra.
    expect(Object.fromEntries(a.front.txStatuses)).toEqual({
      [NetifStatus.OKAY]: 2,
      [NetifStatus.NULL]: 2,
    });
  });
});

describe("isolation regressions", () => {
  it("stops touching the ring pages once disconnected, even with a batch half served", async () => {
    const s = await setup();
    for (let i = 0; i < 150; i++) s.a.front.send(ethernet(HOST, A, 0x88b5, pattern(60, i)));
    s.m.store.set(`${s.a.front.path}/state`, "5");
    await s.m.store.waitFor(`${s.a.backend.backendPath}/state`, "5");
    const tx = s.a.front.ringPages().tx;
    const snapshot = tx.slice();
    const delivered = s.atHost.length;
    await settle(10);
    expect(tx).toEqual(snapshot);
    expect(delivered).toBeLessThan(150);
    expect(s.atHost.length).toBe(delivered);
  });
});
