/**
 * A virtual L2 bridge, the user-space twin of the Linux bridge Xen's vif-bridge script plugs
 * vifs into (named by `bridge=` in xl.cfg's vif spec). It learns which port each source MAC
 * lives behind, forwards known unicast to that port only, and floods broadcast, multicast and
 * unknown unicast to every other port (IEEE 802.1D 7.7, 7.8). Frames never go back out of the
 * port they came in on.
 */
import {
  completeChecksum,
  ETH_HLEN,
  type EthernetFrame,
  FrameError,
  type GsoInfo,
  isGroupMac,
  MAX_FRAME_SIZE,
  macKey,
  segmentTcp,
} from "./frame";

/** What the bridge hands frames to: a vif's rx queue or a host program. */
export interface BridgeSink {
  /** Called synchronously while the bridge forwards; the frame's bytes must not be modified. */
  receive(frame: EthernetFrame): void;
}

export interface BridgeOptions {
  /** Most MAC addresses remembered; beyond it new sources are not learned (flooded). Default 4096. */
  maxAddresses?: number;
  /** Forget an address not seen for this long (802.1D ageing time). Default 300 000 ms. */
  ageingTimeMs?: number;
  /** Clock for ageing; default `Date.now`. */
  now?: () => number;
}

interface LearnedAddress {
  port: BridgePort;
  seen: number;
}

/** One port of a bridge. `send` puts a frame on the bridge as if it arrived on this port. */
export class BridgePort {
  private attached = true;
  /** Frames this port put on the bridge / was handed. */
  readonly counters = { sent: 0, received: 0 };

  constructor(
    readonly bridge: Bridge,
    readonly id: number,
    readonly label: string,
    /** @internal */ readonly sink: BridgeSink,
  ) {}

  get isAttached(): boolean {
    return this.attached;
  }

  send(frame: EthernetFrame): void {
    if (!this.attached) return;
    this.counters.sent++;
    this.bridge.forward(this, frame);
  }

  /** Leaves the bridge; addresses learned on this port are forgotten. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.bridge.remove(this);
  }
}

export class Bridge {
  private readonly ports: BridgePort[] = [];
  private readonly addresses = new Map<number, LearnedAddress>();
  private readonly maxAddresses: number;
  private readonly ageingTimeMs: number;
  private readonly now: () => number;
  private nextPortId = 1;

  constructor(
    readonly name: string,
    options: BridgeOptions = {},
  ) {
    this.maxAddresses = options.maxAddresses ?? 4096;
    this.ageingTimeMs = options.ageingTimeMs ?? 300_000;
    this.now = options.now ?? Date.now;
  }

  /** Plugs `sink` into a new port. */
  attach(sink: BridgeSink, label: string): BridgePort {
    const port = new BridgePort(this, this.nextPortId++, label, sink);
    this.ports.push(port);
    return port;
  }

  /** A port a TypeScript program sends and receives Ethernet frames on (a tap device's twin). */
  openHostPort(options: HostPortOptions = {}): HostPort {
    return new HostPort(this, options);
  }

  /** Number of attached ports. */
  get portCount(): number {
    return this.ports.length;
  }

  /** The port `mac` ("00:16:3e:..." form is parsed by the caller) was last seen on, if any. */
  portOf(mac: Uint8Array): BridgePort | undefined {
    const entry = this.addresses.get(macKey(mac, 0));
    if (entry === undefined || this.now() - entry.seen > this.ageingTimeMs) return undefined;
    return entry.port;
  }

  /** Learned addresses (for tests and tools). */
  get learnedCount(): number {
    return this.addresses.size;
  }

  /** @internal Called by `BridgePort.send`. */
  forward(ingress: BridgePort, frame: EthernetFrame): void {
    const data = frame.data;
    if (data.length < ETH_HLEN) return;
    const now = this.now();
    // Learn the source unless it is a group address (802.1D 7.8: never learned).
    if (!isGroupMac(data, 6)) {
      const source = macKey(data, 6);
      const entry = this.addresses.get(source);
      if (entry !== undefined) {
        entry.port = ingress;
        entry.seen = now;
      } else if (this.addresses.size < this.maxAddresses) {
        this.addresses.set(source, { port: ingress, seen: now });
      } else {
        this.expire(now);
        if (this.addresses.size < this.maxAddresses)
          this.addresses.set(source, { port: ingress, seen: now });
      }
    }
    if (!isGroupMac(data, 0)) {
      const entry = this.addresses.get(macKey(data, 0));
      if (entry !== undefined && now - entry.seen <= this.ageingTimeMs) {
        if (entry.port !== ingress) this.deliver(entry.port, frame);
        return;
      }
    }
    // Flood: copy the list so a sink detaching its port while receiving does not skip others.
    const ports = this.ports.length <= 8 ? this.ports : this.ports.slice();
    for (let i = 0; i < ports.length; i++) {
      const port = ports[i];
      if (port !== ingress && port.isAttached) this.deliver(port, frame);
    }
  }

  /** @internal Called by `BridgePort.detach`. */
  remove(port: BridgePort): void {
    const index = this.ports.indexOf(port);
    if (index >= 0) this.ports.splice(index, 1);
    for (const [mac, entry] of this.addresses) if (entry.port === port) this.addresses.delete(mac);
  }

  private deliver(port: BridgePort, frame: EthernetFrame): void {
    port.counters.received++;
    port.sink.receive(frame);
  }

  private expire(now: number): void {
    for (const [mac, entry] of this.addresses)
      if (now - entry.seen > this.ageingTimeMs) this.addresses.delete(mac);
  }
}

/** Bridges by name, created on first use: what `bridge=xenbr0` in a vif spec refers to. */
export class BridgeRegistry {
  private readonly bridges = new Map<string, Bridge>();

  constructor(private readonly options: BridgeOptions = {}) {}

  get(name: string): Bridge {
    let bridge = this.bridges.get(name);
    if (bridge === undefined) {
      bridge = new Bridge(name, this.options);
      this.bridges.set(name, bridge);
    }
    return bridge;
  }

  names(): string[] {
    return [...this.bridges.keys()];
  }
}

export interface HostPortOptions {
  /**
   * Deliver frames with their offload metadata as the sender gave it (partial checksums left
   * for the receiver, GSO super-frames), like a tap device with IFF_VNET_HDR. Default false:
   * partial checksums are completed and TCP super-frames cut into segments (`segmentTcp`)
   * before the handler sees them.
   */
  offloads?: boolean;
  /** Name for logs. Default "host". */
  label?: string;
}

export type FrameHandler = (frame: EthernetFrame) => void;

/** A host program's port on a bridge: `send` Ethernet frames, receive them with `onFrame`. */
export class HostPort implements BridgeSink {
  private readonly port: BridgePort;
  private readonly handlers = new Set<FrameHandler>();
  private readonly offloads: boolean;

  constructor(bridge: Bridge, options: HostPortOptions) {
    this.offloads = options.offloads ?? false;
    this.port = bridge.attach(this, options.label ?? "host");
  }

  /**
   * Puts a frame on the bridge. `data` starts at the destination MAC, without FCS,
   * 14..65535 bytes. The bytes are copied: the caller may reuse its buffer.
   */
  send(
    data: Uint8Array,
    options: { checksumPartial?: boolean; dataValidated?: boolean; gso?: GsoInfo } = {},
  ): void {
    if (!(data instanceof Uint8Array))
      throw new FrameError("HostPort.send expects the frame as a Uint8Array");
    if (data.length < ETH_HLEN || data.length > MAX_FRAME_SIZE) {
      throw new FrameError(
        `Ethernet frame of ${data.length} bytes: expected ${ETH_HLEN}..${MAX_FRAME_SIZE} (header included, no FCS)`,
      );
    }
    if (options.gso !== undefined && options.gso.size <= 0)
      throw new FrameError(`GSO segment size must be positive, got ${options.gso.size}`);
    this.port.send({
      data: data.slice(),
      checksumPartial: options.checksumPartial ?? false,
      dataValidated: options.dataValidated ?? false,
      gso: options.gso ?? null,
    });
  }

  /** Registers a handler for frames the bridge forwards to this port; returns its remover. */
  onFrame(handler: FrameHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Leaves the bridge. */
  close(): void {
    this.port.detach();
    this.handlers.clear();
  }

  /** @internal BridgeSink */
  receive(frame: EthernetFrame): void {
    let delivered = frame;
    if (!this.offloads && frame.gso !== null) {
      // Plain frames only: cut the super-frame into MSS-sized segments with full checksums.
      const segments = segmentTcp(frame.data, frame.gso.size);
      if (segments === null) return;
      for (const data of segments)
        this.receive({ data, checksumPartial: false, dataValidated: true, gso: null });
      return;
    }
    if (!this.offloads && frame.checksumPartial) {
      const data = frame.data.slice();
      completeChecksum(data);
      delivered = { data, checksumPartial: false, dataValidated: true, gso: frame.gso };
    }
    for (const handler of this.handlers) handler(delivered);
  }
}
