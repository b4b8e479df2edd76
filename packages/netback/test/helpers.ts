import { Hypervisor } from "@kumo/hypervisor-core";
import { BridgeRegistry, VifBackend } from "../src/index";
import {
  addVifDevice,
  MemoryXenstore,
  type NetfrontOptions,
  SimulatedNetfront,
} from "../src/test/index";

export const MiB = 1 << 20;

/** Lets the host event loop run handlers, microtasks and deferred work. */
export async function settle(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(":"), (part) => Number.parseInt(part, 16));
}

/** An Ethernet frame: dst, src, ethertype, payload. */
export function ethernet(
  dst: string,
  src: string,
  etherType: number,
  payload: Uint8Array,
): Uint8Array {
  const frame = new Uint8Array(14 + payload.length);
  frame.set(mac(dst), 0);
  frame.set(mac(src), 6);
  frame[12] = etherType >> 8;
  frame[13] = etherType & 0xff;
  frame.set(payload, 14);
  return frame;
}

export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

export interface Machine {
  hypervisor: Hypervisor;
  store: MemoryXenstore;
  bridges: BridgeRegistry;
  logs: string[];
}

export function machine(): Machine {
  return {
    hypervisor: new Hypervisor(),
    store: new MemoryXenstore(),
    bridges: new BridgeRegistry(),
    logs: [],
  };
}

export interface Guest {
  backend: VifBackend;
  front: SimulatedNetfront;
  mac: string;
}

/** A guest domain with one vif on `bridge`, handshake started (not yet connected). */
export async function guestWithVif(
  m: Machine,
  name: string,
  macText: string,
  options: Partial<NetfrontOptions> & { bridge?: string; maxQueues?: number } = {},
): Promise<Guest> {
  const domain = m.hypervisor.createDomain({ name, memory: 8 * MiB, vcpus: 1 });
  addVifDevice(m.store, { domid: domain.domid, mac: macText, bridge: options.bridge ?? "xenbr0" });
  const backend = await VifBackend.start({
    host: m.hypervisor.host,
    store: m.store,
    domid: domain.domid,
    devid: 0,
    bridge: m.bridges.get(options.bridge ?? "xenbr0"),
    maxQueues: options.maxQueues,
    log: (line) => m.logs.push(line),
  });
  const front = new SimulatedNetfront({ ...options, domain, xenstore: m.store });
  return { backend, front, mac: macText };
}

/** Polls frontends until `done` holds, letting the backends run between polls. */
export async function pump(
  fronts: SimulatedNetfront[],
  done: () => boolean,
  rounds = 200,
): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    await settle(1);
    for (const front of fronts) front.poll();
  }
}
