/**
 * The xenbus handshake of a vif backend: Linux drivers/net/xen-netback/xenbus.c (netback_probe,
 * frontend_changed, set_backend_state, connect, connect_data_rings, read_xenbus_vif_flags),
 * against Linux 6.1 xen-netfront (talk_to_netback, xennet_connect). The data path is `Vif`.
 *
 * Everything the frontend writes is untrusted (security checklist rule 14): numbers are parsed
 * strictly, states outside the enum are errors, a failure closes this device only.
 */
import { XenbusState } from "@kumo/abi";
import type { DomainId, HostInterface } from "@kumo/hypervisor-core";
import type { Bridge } from "./bridge";
import { formatMac, parseMac } from "./frame";
import { type QueueRings, Vif, type VifFeatures } from "./vif";

/**
 * The xenstore operations the vif handshake needs. `@kumo/xenstore`'s `XenstoreClient` has
 * exactly this shape (pass one connected as domain 0); netback declares it itself because the
 * package map keeps sibling packages apart. Same shape as `@kumo/blkback`'s `XenbusStore`.
 */
export interface XenbusStore {
  read(path: string): Promise<string>;
  /** Value of `path`, or undefined if it does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
  rm(path: string): Promise<void>;
  /** Fires for the node and its descendants, once right after registration. */
  watch(
    path: string,
    callback: (event: { path: string; token: string }) => void,
  ): Promise<{ unwatch(): Promise<void> }>;
}

/** A user's mistake in the backend's configuration (bad MAC, bad paths). */
export class VifConfigError extends Error {
  override readonly name = "VifConfigError";
}

export interface VifBackendOptions {
  readonly host: HostInterface;
  readonly store: XenbusStore;
  /** The frontend's domain. */
  readonly domid: DomainId;
  /** The vif's device id (`handle`, the N of device/vif/N). */
  readonly devid: number;
  /** The bridge the vif plugs into once connected (null: a vif on no bridge). */
  readonly bridge: Bridge | null;
  /** Default: the backend dir's `frontend` key, else `/local/domain/<domid>/device/vif/<devid>`. */
  readonly frontendPath?: string;
  /** Default `/local/domain/0/backend/vif/<domid>/<devid>`. */
  readonly backendPath?: string;
  /** multi-queue-max-queues offered to the frontend. Default 4 (Linux: number of CPUs, max 8). */
  readonly maxQueues?: number;
  readonly log?: (line: string) => void;
}

/** The backend state machine of Linux set_backend_state, one state per call of `switchTo`. */
export class VifBackend {
  readonly domid: DomainId;
  readonly devid: number;
  frontendPath: string;
  readonly backendPath: string;
  /** The backend's current xenbus state. */
  state: number = XenbusState.Initialising;
  /** The frontend's last seen state. */
  frontendState: number = XenbusState.Unknown;
  /** The data path while Connected (null otherwise). */
  vif: Vif | null = null;
  /** The last fatal error written to xenstore (xenbus_dev_fatal), if any. */
  lastError: string | null = null;
  private readonly host: HostInterface;
  private readonly xenstore: XenbusStore;
  private readonly bridge: Bridge | null;
  private readonly maxQueues: number;
  private readonly log: (line: string) => void;
  private watch: { unwatch(): Promise<void> } | null = null;
  private chain: Promise<void> = Promise.resolve();
  private online = true;
  private stopped = false;
  private readonly listeners = new Set<(state: number) => void>();
  private readonly explicitFrontendPath: string | undefined;
  private closed: (() => void) | null = null;

  /** Publishes the features, switches to InitWait and follows the frontend (netback_probe). */
  static async start(options: VifBackendOptions): Promise<VifBackend> {
    const backend = new VifBackend(options);
    await backend.probe();
    return backend;
  }

  private constructor(options: VifBackendOptions) {
    if (!Number.isInteger(options.domid) || options.domid <= 0 || options.domid >= 0x7ff0)
      throw new VifConfigError(`frontend domid must be 1..32751, got ${options.domid}`);
    if (!Number.isInteger(options.devid) || options.devid < 0)
      throw new VifConfigError(`vif devid must be a non-negative integer, got ${options.devid}`);
    const maxQueues = options.maxQueues ?? 4;
    if (!Number.isInteger(maxQueues) || maxQueues < 1 || maxQueues > 64)
      throw new VifConfigError(`maxQueues must be 1..64, got ${maxQueues}`);
    this.host = options.host;
    this.xenstore = options.store;
    this.domid = options.domid;
    this.devid = options.devid;
    this.bridge = options.bridge;
    this.maxQueues = maxQueues;
    this.frontendPath =
      options.frontendPath ?? `/local/domain/${options.domid}/device/vif/${options.devid}`;
    this.backendPath =
      options.backendPath ?? `/local/domain/0/backend/vif/${options.domid}/${options.devid}`;
    this.log = options.log ?? (() => {});
    this.explicitFrontendPath = options.frontendPath;
  }

  /**
   * netback_probe: publishes the features, goes to InitWait and watches the frontend's state.
   * The toolstack must have written the backend dir (`frontend`, `frontend-id`, `mac`, `handle`,
   * `bridge`, `online`, state 1) and the frontend dir first.
   */
  private async probe(): Promise<void> {
    const base = this.backendPath;
    if (this.explicitFrontendPath === undefined) {
      const recorded = await this.xenstore.tryRead(`${base}/frontend`);
      if (recorded?.startsWith("/")) this.frontendPath = recorded;
    }
    const features: [string, string][] = [
      ["feature-sg", "1"],
      ["feature-gso-tcpv4", "1"],
      ["feature-gso-tcpv6", "1"],
      ["feature-ipv6-csum-offload", "1"],
      ["feature-rx-copy", "1"],
      ["feature-rx-flip", "0"],
      ["feature-multicast-control", "1"],
      ["feature-dynamic-multicast-control", "1"],
      ["feature-split-event-channels", "1"],
      ["multi-queue-max-queues", String(this.maxQueues)],
      // No hotplug script runs: the bridge port is ours, so report it ready (vif-bridge's key).
      ["hotplug-status", "connected"],
    ];
    for (const [key, value] of features) await this.xenstore.write(`${base}/${key}`, value);
    await this.switchTo(XenbusState.InitWait);
    this.watch = await this.xenstore.watch(`${this.frontendPath}/state`, () => {
      this.chain = this.chain
        .then(() => this.frontendChanged())
        .catch((error) => {
          this.log(`${this.name}: ${(error as Error).message}`);
        });
    });
  }

  /**
   * Toolstack-initiated close (libxl sets `online` to 0 and the backend to Closing): the
   * frontend answers Closed, then the backend goes Closed and stops watching.
   */
  close(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.online = false;
    const done = new Promise<void>((resolve) => {
      this.closed = resolve;
    });
    void this.enqueue(async () => {
      await this.setBackendState(XenbusState.Closing);
      // The frontend may already be Closed (or gone): then nothing else will wake us.
      await this.frontendChanged();
    });
    return done;
  }

  /** Stops at once: disconnects the data path, unwatches, writes Closed (domain destroyed). */
  async destroy(): Promise<void> {
    this.online = false;
    this.stopped = true;
    await this.chain;
    this.disconnect();
    await this.watch?.unwatch().catch(() => {});
    this.watch = null;
    await this.switchTo(XenbusState.Closed).catch(() => {});
  }

  /** Called with each new backend state (tests, the toolstack's progress output). */
  onStateChange(listener: (state: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every queued state change has been handled. */
  settled(): Promise<void> {
    return this.chain;
  }

  private get name(): string {
    return `vif${this.domid}.${this.devid}`;
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(task).catch((error) => {
      this.log(`${this.name}: ${(error as Error).message}`);
    });
    return this.chain;
  }

  /** frontend_changed */
  private async frontendChanged(): Promise<void> {
    if (this.stopped) return;
    const text = await this.xenstore.tryRead(`${this.frontendPath}/state`);
    const state = text === undefined ? XenbusState.Unknown : parseState(text);
    if (state === null) {
      await this.fatal(`saw state "${text}" at frontend`);
      return;
    }
    this.frontendState = state;
    // Closed by the toolstack (online = 0): never connect again, only follow the frontend down.
    if (!this.online && (state === XenbusState.Initialising || state === XenbusState.Connected))
      return;
    switch (state) {
      case XenbusState.Initialising:
        await this.setBackendState(XenbusState.InitWait);
        break;
      case XenbusState.Initialised:
        break;
      case XenbusState.Connected:
        await this.setBackendState(XenbusState.Connected);
        break;
      case XenbusState.Closing:
        await this.setBackendState(XenbusState.Closing);
        break;
      case XenbusState.Closed:
        await this.setBackendState(XenbusState.Closed);
        if (!this.online) await this.stop();
        break;
      case XenbusState.Unknown:
        await this.setBackendState(XenbusState.Closed);
        await this.stop();
        break;
      case XenbusState.Reconfiguring:
        // Only XDP headroom is reconfigured (read_xenbus_frontend_xdp); Kumo keeps none.
        await this.switchTo(XenbusState.Reconfigured);
        break;
      default:
        await this.fatal(`saw state ${state} at frontend`);
    }
  }

  /** set_backend_state: walks the shortest path of allowed transitions to `target`. */
  private async setBackendState(target: number): Promise<void> {
    for (let steps = 0; this.state !== target && steps < 8; steps++) {
      switch (this.state) {
        case XenbusState.Initialising:
          await this.switchTo(
            target === XenbusState.Closed ? XenbusState.Closed : XenbusState.InitWait,
          );
          break;
        case XenbusState.Closed:
          await this.switchTo(
            target === XenbusState.Closing ? XenbusState.Closing : XenbusState.InitWait,
          );
          break;
        case XenbusState.InitWait:
          if (target === XenbusState.Connected) {
            if (!(await this.connect())) return;
            await this.switchTo(XenbusState.Connected);
          } else {
            await this.switchTo(XenbusState.Closing);
          }
          break;
        case XenbusState.Connected:
          this.disconnect();
          await this.switchTo(XenbusState.Closing);
          break;
        case XenbusState.Closing:
          await this.switchTo(XenbusState.Closed);
          break;
        default:
          // Reconfigured: back to Connected semantics for any later request.
          await this.switchTo(XenbusState.Connected);
      }
    }
  }

  private async switchTo(state: number): Promise<void> {
    this.state = state;
    await this.xenstore.write(`${this.backendPath}/state`, String(state));
    for (const listener of this.listeners) listener(state);
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    this.closed?.();
    this.closed = null;
    this.disconnect();
    const watch = this.watch;
    this.watch = null;
    await watch?.unwatch().catch(() => {});
  }

  /** connect + connect_data_rings; false (after xenbus_dev_fatal) when the frontend's keys are bad. */
  private async connect(): Promise<boolean> {
    const front = this.frontendPath;
    const read = (path: string) => this.xenstore.tryRead(path);
    const requested = await readUnsigned(read, `${front}/multi-queue-num-queues`, 1);
    if (requested === null || requested === 0 || requested > this.maxQueues) {
      await this.fatal(
        `guest requested ${requested ?? "an unreadable number of"} queues, but valid range is 1 - ${this.maxQueues}`,
      );
      return false;
    }
    const macText = await read(`${this.backendPath}/mac`);
    if (macText === undefined || parseMac(macText) === null) {
      await this.fatal(`parsing ${this.backendPath}/mac: "${macText ?? ""}"`);
      return false;
    }
    // read_xenbus_vif_flags
    const rxCopy = await readUnsigned(read, `${front}/request-rx-copy`, 0);
    if (rxCopy !== 1) {
      // Kumo never flips pages (feature-rx-flip = 0), as Linux netback since 3.x.
      await this.fatal(`${front}/request-rx-copy must be 1 (page flipping is not supported)`);
      return false;
    }
    const flag = async (key: string) =>
      ((await readUnsigned(read, `${front}/${key}`, 0)) ?? 0) !== 0;
    const features: VifFeatures = {
      sg: await flag("feature-sg"),
      gsoTcpv4: await flag("feature-gso-tcpv4"),
      gsoTcpv6: await flag("feature-gso-tcpv6"),
      ipCsum: !(await flag("feature-no-csum-offload")),
      ipv6Csum: await flag("feature-ipv6-csum-offload"),
      multicastControl: await flag("request-multicast-control"),
      rxNotify: await flag("feature-rx-notify"),
    };
    const rings: QueueRings[] = [];
    for (let queue = 0; queue < requested; queue++) {
      const path = requested === 1 ? front : `${front}/queue-${queue}`;
      const txRingRef = await readUnsigned(read, `${path}/tx-ring-ref`, undefined);
      const rxRingRef = await readUnsigned(read, `${path}/rx-ring-ref`, undefined);
      if (txRingRef === null || rxRingRef === null) {
        await this.fatal(`reading ${path}/ring-ref`);
        return false;
      }
      // Split event channels first, then a single one (connect_data_rings).
      let txPort = await readUnsigned(read, `${path}/event-channel-tx`, undefined);
      let rxPort = await readUnsigned(read, `${path}/event-channel-rx`, undefined);
      if (txPort === null || rxPort === null) {
        const single = await readUnsigned(read, `${path}/event-channel`, undefined);
        if (single === null) {
          await this.fatal(`reading ${path}/event-channel(-tx/rx)`);
          return false;
        }
        txPort = single;
        rxPort = single;
      }
      rings.push({ txRingRef, rxRingRef, txPort, rxPort });
    }
    const vif = new Vif({
      host: this.host,
      domid: this.domid,
      devid: this.devid,
      bridge: this.bridge,
      features,
      log: this.log,
    });
    try {
      vif.connect(rings);
    } catch (error) {
      await this.fatal(
        `mapping shared-frames ${rings.map((r) => `${r.txRingRef}/${r.rxRingRef}`).join(",")}: ${(error as Error).message}`,
      );
      return false;
    }
    this.vif = vif;
    this.log(
      `${this.name}: connected, ${requested} queue(s), mac ${formatMac(parseMac(macText) as Uint8Array)}`,
    );
    return true;
  }

  private disconnect(): void {
    this.vif?.disconnect();
    this.vif = null;
  }

  /**
   * xenbus_dev_fatal: records the error under `error/<backend nodename>/error` of the backend's
   * domain (as Linux xenbus_va_dev_error does) and moves the backend to Closing.
   */
  private async fatal(message: string): Promise<void> {
    this.lastError = message;
    this.log(`${this.name}: ${message}`);
    const relative = this.backendPath.replace(/^\/local\/domain\/0\//, "");
    await this.xenstore.write(`/local/domain/0/error/${relative}/error`, message).catch(() => {});
    this.disconnect();
    await this.setBackendState(XenbusState.Closing);
  }
}

/** A xenbus state: decimal 0..8 only (checklist rule 14); null for anything else. */
function parseState(text: string): number | null {
  if (!/^[0-9]$/.test(text)) return null;
  const state = Number(text);
  return state <= XenbusState.Reconfigured ? state : null;
}

/**
 * A strictly decimal u32 key (xenbus_scanf "%u" without the leniency): `fallback` when missing
 * (null if no fallback), null when malformed.
 */
async function readUnsigned(
  read: (path: string) => Promise<string | undefined>,
  path: string,
  fallback: number | undefined,
): Promise<number | null> {
  const text = await read(path);
  if (text === undefined) return fallback ?? null;
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const value = Number(text);
  return value <= 0xffffffff ? value : null;
}
