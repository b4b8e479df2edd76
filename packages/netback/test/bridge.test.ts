import { NetRxFlags, XenbusState } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { type EthernetFrame, FrameError } from "../src/index";
import type { ReceivedFrame } from "../src/test/index";
import { ethernet, guestWithVif, machine, pattern, pump, settle } from "./helpers";

const A = "00:16:3e:00:00:0a";
const B = "00:16:3e:00:00:0b";
const HOST = "02:00:00:00:00:01";
const BROADCAST = "ff:ff:ff:ff:ff:ff";

async function receiveAll(
  front: { poll(): ReceivedFrame[] },
  count: number,
): Promise<ReceivedFrame[]> {
  const frames: ReceivedFrame[] = [];
  for (let i = 0; i < 200 && frames.length < count; i++) {
    await settle(1);
    frames.push(...front.poll());
  }
  return frames;
}

describe("vif handshake", () => {
  it("publishes netback's features, connects when netfront goes Connected, and reads its keys", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const base = a.backend.backendPath;
    expect(m.store.get(`${base}/state`)).toBe(String(XenbusState.InitWait));
    for (const key of [
      "feature-sg",
      "feature-gso-tcpv4",
      "feature-rx-copy",
      "feature-multicast-control",
    ])
      expect(m.store.get(`${base}/${key}`)).toBe("1");
    expect(m.store.get(`${base}/feature-rx-flip`)).toBe("0");
    expect(m.store.get(`${base}/multi-queue-max-queues`)).toBe("4");
    await a.front.connect();
    expect(a.backend.state).toBe(XenbusState.Connected);
    expect(a.backend.vif?.features).toEqual({
      sg: true,
      gsoTcpv4: true,
      gsoTcpv6: true,
      ipCsum: true,
      ipv6Csum: true,
      multicastControl: false,
      rxNotify: true,
    });
  });

  it("closes with the frontend (5, 6) and reconnects when it probes again", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B);
    await a.front.connect();
    await b.front.connect();
    await a.front.close();
    expect(a.backend.state).toBe(XenbusState.Closed);
    expect(a.backend.vif).toBeNull();
    expect(m.hypervisor.dom0.maptrack.count()).toBe(2); // only b's two rings stay mapped
    await a.front.reconnect();
    expect(a.backend.state).toBe(XenbusState.Connected);
    a.front.send(ethernet(B, A, 0x88b5, pattern(100, 1)));
    const got = await receiveAll(b.front, 1);
    expect(got).toHaveLength(1);
    expect(a.front.violations).toEqual([]);
  });

  it("closes from the backend side: Closing, then Closed once the frontend is Closed", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    await a.front.connect();
    const closed = a.backend.close();
    await m.store.waitFor(`${a.backend.backendPath}/state`, String(XenbusState.Closing));
    expect(m.hypervisor.dom0.maptrack.count()).toBe(0);
    m.store.set(`${a.front.path}/state`, String(XenbusState.Closed));
    await closed;
    expect(a.backend.state).toBe(XenbusState.Closed);
    // A frontend re-probing a closed device is not served again.
    m.store.set(`${a.front.path}/state`, String(XenbusState.Initialising));
    await settle();
    expect(a.backend.state).toBe(XenbusState.Closed);
  });

  it("destroy releases the rings at once (the frontend's domain is gone)", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    await a.front.connect();
    expect(m.hypervisor.dom0.maptrack.count()).toBe(2);
    await a.backend.destroy();
    expect(m.hypervisor.dom0.maptrack.count()).toBe(0);
    expect(m.store.get(`${a.backend.backendPath}/state`)).toBe(String(XenbusState.Closed));
  });

  it("serves split event channels and several queues", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A, { queues: 3, splitEventChannels: true });
    const b = await guestWithVif(m, "b", B, { queues: 2 });
    await a.front.connect();
    await b.front.connect();
    expect(a.backend.vif?.queueCount).toBe(3);
    for (let q = 0; q < 3; q++)
      a.front.send(ethernet(B, A, 0x88b5, pattern(60 + q, q)), { queue: q });
    const got = await receiveAll(b.front, 3);
    expect(got.map((frame) => frame.data.length).sort()).toEqual([74, 75, 76]);
    await pump(
      [a.front],
      () => a.front.txOutstanding(0) + a.front.txOutstanding(1) + a.front.txOutstanding(2) === 0,
    );
    expect(a.front.txStatuses.get(0)).toBe(3);
  });

  it("refuses a frontend asking for more queues than offered, closing only that vif", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A, { queues: 2, maxQueues: 1 });
    void a.front.connect().catch(() => {});
    await m.store.waitFor(`${a.backend.backendPath}/state`, String(XenbusState.Closing));
    expect(a.backend.lastError).toMatch(/requested 2 queues/);
    expect(m.store.get("/local/domain/0/error/backend/vif/1/0/error")).toMatch(/requested 2/);
  });

  it("answers bad ring grant refs and ports with a xenbus error, not a host exception", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const front = a.front.path;
    const port = a.front.domain.events.allocUnbound(0);
    m.store.set(`${front}/tx-ring-ref`, "4000");
    m.store.set(`${front}/rx-ring-ref`, "4001");
    m.store.set(`${front}/event-channel`, String(port));
    m.store.set(`${front}/request-rx-copy`, "1");
    m.store.set(`${front}/state`, "4");
    await m.store.waitFor(`${a.backend.backendPath}/state`, String(XenbusState.Closing));
    expect(a.backend.lastError).toMatch(/mapping shared-frames 4000\/4001/);
    expect(m.hypervisor.dom0.maptrack.count()).toBe(0);
    // Garbage in the state key is an error too (checklist rule 14), not a crash.
    m.store.set(`${front}/state`, "4x");
    await settle();
    expect(a.backend.lastError).toMatch(/saw state "4x"/);
  });

  it("refuses a frontend that does not ask for rx-copy", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const front = a.front.path;
    m.store.set(`${front}/tx-ring-ref`, "8");
    m.store.set(`${front}/rx-ring-ref`, "9");
    m.store.set(`${front}/event-channel`, "1");
    m.store.set(`${front}/state`, "4");
    await m.store.waitFor(`${a.backend.backendPath}/state`, String(XenbusState.Closing));
    expect(a.backend.lastError).toMatch(/request-rx-copy/);
  });
});

describe("bridge", () => {
  it("carries frames between two vifs and the host port, learning MACs", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B);
    await a.front.connect();
    await b.front.connect();
    const bridge = m.bridges.get("xenbr0");
    const host = bridge.openHostPort();
    const atHost: EthernetFrame[] = [];
    host.onFrame((frame) => atHost.push(frame));

    // Unknown destination: flooded to b and the host.
    const first = ethernet(B, A, 0x88b5, pattern(1000, 7));
    a.front.send(first);
    const atB = await receiveAll(b.front, 1);
    expect(atB[0].data).toEqual(first);
    expect(atHost).toHaveLength(1);
    expect(bridge.portOf(Uint8Array.from([0, 0x16, 0x3e, 0, 0, 0x0a]))).toBeDefined();

    // b answers: A is learned, so only a gets it.
    const reply = ethernet(A, B, 0x88b5, pattern(200, 8));
    b.front.send(reply);
    const atA = await receiveAll(a.front, 1);
    expect(atA[0].data).toEqual(reply);
    expect(atHost).toHaveLength(1);

    // The host sends to a (known), then broadcasts (both vifs).
    host.send(ethernet(A, HOST, 0x88b5, pattern(64, 9)));
    host.send(ethernet(BROADCAST, HOST, 0x0806, pattern(28, 10)));
    const a2 = await receiveAll(a.front, 2);
    const b2 = await receiveAll(b.front, 1);
    expect(a2).toHaveLength(2);
    expect(b2).toHaveLength(1);
    expect(b2[0].data[0]).toBe(0xff);
    // a to the host's learned MAC reaches only the host.
    a.front.send(ethernet(HOST, A, 0x88b5, pattern(300, 11)));
    await receiveAll(b.front, 0);
    await settle(8);
    expect(atHost).toHaveLength(2);
    expect(b.front.poll()).toHaveLength(0);
    expect(bridge.learnedCount).toBe(3);
    expect(a.front.violations).toEqual([]);
    expect(b.front.violations).toEqual([]);
  });

  it("moves multi-slot packets (NETTXF_more_data) and GSO super-frames with their extra slot", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B);
    await a.front.connect();
    await b.front.connect();
    const big = ethernet(B, A, 0x0800, pattern(60_000, 3));
    expect(
      a.front.send(big, { offset: 3000, gso: { type: 1, size: 1448 }, checksumBlank: true }),
    ).toBe(true);
    const got = await receiveAll(b.front, 1);
    expect(got).toHaveLength(1);
    expect(got[0].data).toEqual(big);
    expect(got[0].gso).toEqual({ type: 1, size: 1448 });
    expect(got[0].flags & NetRxFlags.csum_blank).toBe(NetRxFlags.csum_blank);
    await pump([a.front], () => a.front.txOutstanding() === 0);
    expect(a.front.txStatuses.get(0)).toBe(16);
    // One response per slot: 16 data slots OKAY, one NULL for the extra.
    expect(a.front.txStatuses.get(1)).toBe(1);
    expect(a.front.txOutstanding()).toBe(0);
    expect(b.front.violations).toEqual([]);
  });

  it("queues frames until the frontend posts rx buffers (req_event), then delivers them in order", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B, { rxBuffers: 4 });
    await a.front.connect();
    await b.front.connect();
    for (let i = 0; i < 20; i++) a.front.send(ethernet(B, A, 0x88b5, pattern(100 + i, i)));
    const got = await receiveAll(b.front, 20);
    expect(got.map((frame) => frame.data.length)).toEqual(
      Array.from({ length: 20 }, (_, i) => 114 + i),
    );
  });

  it("polls a frontend without feature-rx-notify for rx buffers (no event when it posts them)", async () => {
    const m = machine();
    const a = await guestWithVif(m, "a", A);
    const b = await guestWithVif(m, "b", B, { rxBuffers: 4, features: { rxNotify: false } });
    await a.front.connect();
    await b.front.connect();
    expect(m.store.get(`${b.front.path}/feature-rx-notify`)).toBeUndefined();
    for (let i = 0; i < 20; i++) a.front.send(ethernet(B, A, 0x88b5, pattern(100 + i, i)));
    // Buffers reposted by b raise no event: only netback's 30 ms poll (Linux drain_timeout)
    // finds them, so waiting on the event loop alone would stall after the first 4 frames.
    const frames: ReceivedFrame[] = [];
    const deadline = Date.now() + 3000;
    while (frames.length < 20 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      frames.push(...b.front.poll());
    }
    expect(frames.map((frame) => frame.data.length)).toEqual(
      Array.from({ length: 20 }, (_, i) => 114 + i),
    );
  });

  it("rejects frames a host program gets wrong with a typed error", () => {
    const m = machine();
    const host = m.bridges.get("xenbr0").openHostPort();
    expect(() => host.send(new Uint8Array(10))).toThrow(FrameError);
    expect(() => host.send(new Uint8Array(70_000))).toThrow(FrameError);
  });
});
