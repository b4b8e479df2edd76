import { describe, expect, it } from "vitest";
import { Bridge, type EthernetFrame } from "../src/index";
import { ethernet, mac } from "./helpers";

function recorder(bridge: Bridge, label: string) {
  const frames: EthernetFrame[] = [];
  const port = bridge.attach({ receive: (frame) => frames.push(frame) }, label);
  return { port, frames };
}

const frame = (dst: string, src: string) => ({
  data: ethernet(dst, src, 0x88b5, new Uint8Array(46)),
  checksumPartial: false,
  dataValidated: false,
  gso: null,
});

const X = "02:00:00:00:00:01";
const Y = "02:00:00:00:00:02";
const Z = "02:00:00:00:00:03";

describe("MAC learning (IEEE 802.1D 7.8)", () => {
  it("floods unknown unicast, then forwards only to the learned port", () => {
    const bridge = new Bridge("br");
    const p1 = recorder(bridge, "p1");
    const p2 = recorder(bridge, "p2");
    const p3 = recorder(bridge, "p3");
    p1.port.send(frame(Y, X));
    expect([p1.frames.length, p2.frames.length, p3.frames.length]).toEqual([0, 1, 1]);
    p2.port.send(frame(X, Y));
    expect([p1.frames.length, p2.frames.length, p3.frames.length]).toEqual([1, 1, 1]);
    p1.port.send(frame(Y, X));
    expect([p1.frames.length, p2.frames.length, p3.frames.length]).toEqual([1, 2, 1]);
  });

  it("never learns group source addresses and never sends a frame back where it came from", () => {
    const bridge = new Bridge("br");
    const p1 = recorder(bridge, "p1");
    const p2 = recorder(bridge, "p2");
    p1.port.send(frame(Y, "03:00:00:00:00:01"));
    expect(bridge.learnedCount).toBe(0);
    p1.port.send(frame(Z, X));
    p1.port.send(frame(X, Z)); // destination learned on the ingress port: dropped
    expect(p1.frames).toHaveLength(0);
    expect(p2.frames).toHaveLength(2);
  });

  it("moves an address that appears on another port, and forgets a detached port's addresses", () => {
    const bridge = new Bridge("br");
    const p1 = recorder(bridge, "p1");
    const p2 = recorder(bridge, "p2");
    const p3 = recorder(bridge, "p3");
    p1.port.send(frame(Y, X));
    p3.port.send(frame(Y, X)); // X moved to p3
    expect(bridge.portOf(mac(X))).toBe(p3.port);
    p2.port.send(frame(X, Y));
    expect(p3.frames.at(-1)?.data[5]).toBe(0x01);
    expect(p1.frames).toHaveLength(1); // only the first flood
    p3.port.detach();
    expect(bridge.portOf(mac(X))).toBeUndefined();
    expect(bridge.portCount).toBe(2);
    p2.port.send(frame(X, Y)); // unknown again: flooded to p1
    expect(p1.frames).toHaveLength(2);
  });

  it("ages entries out and bounds the table", () => {
    let now = 0;
    const bridge = new Bridge("br", { ageingTimeMs: 1000, maxAddresses: 2, now: () => now });
    const p1 = recorder(bridge, "p1");
    const p2 = recorder(bridge, "p2");
    const p3 = recorder(bridge, "p3");
    p1.port.send(frame(Z, X));
    p1.port.send(frame(Z, Y));
    p2.port.send(frame(Z, Z)); // table full: Z not learned
    expect(bridge.learnedCount).toBe(2);
    expect(bridge.portOf(mac(Z))).toBeUndefined();
    now = 1500; // X and Y aged out: frames to them flood again, Z can be learned
    p3.port.send(frame(X, Z));
    expect(p2.frames.at(-1)?.data[5]).toBe(0x01);
    expect(bridge.portOf(mac(Z))).toBe(p3.port);
  });
});
