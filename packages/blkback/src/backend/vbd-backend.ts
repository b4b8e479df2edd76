/**
 * The vbd xenbus handshake (Linux 6.1 drivers/block/xen-blkback/xenbus.c,
 * docs/xen-abi.md 6 and 6.1): publish features, InitWait; when the frontend
 * is Initialised map its ring(s) and bind its event channel(s), publish the
 * disk's properties, Connected; follow the frontend through Closing/Closed
 * and back to Initialising (reconnect); close from the backend side.
 * The data path is BlkifRingWorker (ring-worker.ts), one per queue.
 */
import { type Abi, abiFromProtocol, Vdisk, XenbusState } from "@kumo/abi";
import type {
  DomainId,
  GrantMapping,
  HostEventChannel,
  HostInterface,
} from "@kumo/hypervisor-core";
import { type DiskImage, Mutex } from "../image/disk-image";
import { BlkifRingWorker, DEFAULT_MAX_INDIRECT_SEGMENTS } from "./ring-worker";
import type { XenbusStore } from "./xenbus-store";

export interface VbdBackendOptions {
  store: XenbusStore;
  host: HostInterface;
  /** The frontend's domain. */
  domid: DomainId;
  /** The backend directory, `/local/domain/0/backend/vbd/<domid>/<devid>` (the toolstack creates it). */
  backendPath: string;
  /** The frontend directory; read from `<backendPath>/frontend` when absent. */
  frontendPath?: string;
  image: DiskImage;
  /** `access=ro` in the disk spec: the guest sees a read-only disk. */
  readOnly?: boolean;
  /** multi-queue-max-queues (1 disables multi-queue). Default 4. */
  maxQueues?: number;
  /** feature-max-indirect-segments (0 disables INDIRECT). Default 256, as Linux's blkback. */
  maxIndirectSegments?: number;
  /**
   * max-ring-page-order: rings of up to 2^order pages (`ring-page-order`,
   * `ring-ref<i>`). Default 4, Linux blkback's xen_blkif_max_ring_order
   * (XENBUS_MAX_RING_GRANT_ORDER); 0 offers single-page rings only.
   */
  maxRingPageOrder?: number;
  /** feature-persistent. Default true. */
  persistentGrants?: boolean;
  log?: (message: string) => void;
}

/** XENBUS_MAX_RING_GRANT_ORDER (Linux include/xen/xenbus.h): 16 pages per ring at most. */
export const MAX_RING_PAGE_ORDER = 4;

interface Queue {
  worker: BlkifRingWorker;
  mappings: GrantMapping[];
  events: HostEventChannel;
}

export class VbdBackend {
  private stateValue: number = XenbusState.Initialising;
  private queues: Queue[] = [];
  private readonly mutex = new Mutex();
  private watch: { unwatch(): Promise<void> } | null = null;
  private frontendPath = "";
  private closing: (() => void) | null = null;
  private readonly stateListeners = new Set<(state: number) => void>();

  private constructor(private readonly options: VbdBackendOptions) {}

  /** Publishes the features, switches to InitWait and follows the frontend. */
  static async start(options: VbdBackendOptions): Promise<VbdBackend> {
    const backend = new VbdBackend(options);
    await backend.probe();
    return backend;
  }

  get state(): number {
    return this.stateValue;
  }

  /** The ring workers of the connected queues (empty unless Connected). */
  get workers(): readonly BlkifRingWorker[] {
    return this.queues.map((queue) => queue.worker);
  }

  /** Calls `listener` on every backend state change. */
  onStateChange(listener: (state: number) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private get key() {
    return (name: string) => `${this.options.backendPath}/${name}`;
  }

  private get discardSupported(): boolean {
    // Only qcow2 gives space back; raw and VHD would accept and ignore it.
    return !this.readOnly && this.options.image.format === "qcow2";
  }

  private get maxRingPageOrder(): number {
    const order = this.options.maxRingPageOrder ?? MAX_RING_PAGE_ORDER;
    if (!Number.isInteger(order) || order < 0 || order > MAX_RING_PAGE_ORDER) {
      throw new RangeError(
        `maxRingPageOrder must be an integer from 0 to ${MAX_RING_PAGE_ORDER}, got ${order}`,
      );
    }
    return order;
  }

  private get readOnly(): boolean {
    return this.options.readOnly === true || this.options.image.readOnly;
  }

  private async probe(): Promise<void> {
    const { store } = this.options;
    const key = this.key;
    this.frontendPath = this.options.frontendPath ?? (await store.read(key("frontend")));
    // Linux xen_blkbk_probe / xen_blkbk_discard / xen_blkbk_flush_diskcache: features before InitWait.
    await store.write(key("feature-flush-cache"), "1");
    await store.write(
      key("feature-persistent"),
      this.options.persistentGrants === false ? "0" : "1",
    );
    const indirect = this.options.maxIndirectSegments ?? DEFAULT_MAX_INDIRECT_SEGMENTS;
    if (indirect > 0) await store.write(key("feature-max-indirect-segments"), String(indirect));
    const order = this.maxRingPageOrder;
    if (order > 0) await store.write(key("max-ring-page-order"), String(order));
    const queues = this.options.maxQueues ?? 4;
    if (queues > 1) await store.write(key("multi-queue-max-queues"), String(queues));
    if (this.discardSupported) {
      const image = this.options.image as DiskImage & { clusterSize?: number };
      await store.write(key("feature-discard"), "1");
      await store.write(key("discard-granularity"), String(image.clusterSize ?? 512));
      await store.write(key("discard-alignment"), "0");
      await store.write(key("discard-secure"), "0");
    }
    await this.switchState(XenbusState.InitWait);
    this.watch = await store.watch(`${this.frontendPath}/state`, () => {
      // A failing xenstore call (the frontend directory removed mid-handshake) must not
      // become an unhandled rejection of the host process.
      this.mutex
        .run(() => this.frontendChanged())
        .catch((error: Error) => {
          this.options.log?.(`vbd ${this.options.backendPath}: ${error.message}`);
        });
    });
  }

  private async switchState(state: number): Promise<void> {
    this.stateValue = state;
    await this.options.store.write(this.key("state"), String(state));
    for (const listener of this.stateListeners) listener(state);
    if (state === XenbusState.Closed && this.closing) {
      this.closing();
      this.closing = null;
    }
  }

  /** Linux frontend_changed(). */
  private async frontendChanged(): Promise<void> {
    const raw = await this.options.store.tryRead(`${this.frontendPath}/state`);
    const frontend = raw === undefined ? XenbusState.Unknown : Number.parseInt(raw, 10);
    switch (frontend) {
      case XenbusState.Initialising:
        // A frontend coming back after Closed: offer the device again (reconnect).
        if (this.stateValue === XenbusState.Closed) await this.switchState(XenbusState.InitWait);
        break;
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (this.stateValue === XenbusState.Connected || this.stateValue === XenbusState.Closing)
          break;
        if (this.stateValue !== XenbusState.InitWait) break;
        await this.connect();
        break;
      case XenbusState.Closing:
        await this.disconnect();
        await this.switchState(XenbusState.Closing);
        break;
      case XenbusState.Closed:
        await this.disconnect();
        await this.switchState(XenbusState.Closed);
        break;
      case XenbusState.Unknown:
        // The frontend directory went away (domain destroyed).
        await this.disconnect();
        if (this.stateValue !== XenbusState.Closed) await this.switchState(XenbusState.Closed);
        break;
      default:
        this.options.log?.(`vbd ${this.options.backendPath}: frontend state '${raw}' ignored`);
    }
  }

  /** Linux connect_ring() + connect(): map, bind, publish the disk, Connected. */
  private async connect(): Promise<void> {
    const { store, host, domid, image } = this.options;
    const front = (name: string) => `${this.frontendPath}/${name}`;
    const fail = async (message: string) => {
      // Linux xenbus_dev_fatal: report and close.
      this.options.log?.(`vbd ${this.options.backendPath}: ${message}`);
      await store.write(this.key("hotplug-error"), message).catch(() => undefined);
      await this.disconnect();
      await this.switchState(XenbusState.Closing);
    };
    const protocol = await store.tryRead(front("protocol"));
    let abi: Abi = "x86_64";
    if (protocol !== undefined) {
      const named = abiFromProtocol(protocol);
      if (named === undefined) return fail(`unknown protocol '${protocol}'`);
      abi = named;
    }
    // Linux connect_ring(): a ring-page-order key (even "0") means ring-ref0..ring-ref<n-1>.
    const orderText = await store.tryRead(front("ring-page-order"));
    const order = orderText === undefined ? 0 : parseNumber(orderText);
    if (order === null || order > this.maxRingPageOrder)
      return fail(`requested ring page order '${orderText}' exceeds max:${this.maxRingPageOrder}`);
    const pages = 1 << order;
    const multiRef = orderText !== undefined;
    const queueText = await store.tryRead(front("multi-queue-num-queues"));
    const maxQueues = this.options.maxQueues ?? 4;
    const queueCount = queueText === undefined ? 1 : parseNumber(queueText);
    if (queueCount === null || queueCount < 1 || queueCount > maxQueues) {
      return fail(`multi-queue-num-queues '${queueText}' (1 to ${maxQueues})`);
    }
    const persistent =
      this.options.persistentGrants !== false &&
      (await store.tryRead(front("feature-persistent"))) === "1";
    for (let i = 0; i < queueCount; i++) {
      const dir = queueCount === 1 ? this.frontendPath : `${this.frontendPath}/queue-${i}`;
      const port = parseNumber((await store.tryRead(`${dir}/event-channel`)) ?? "");
      if (port === null) return fail(`${dir}: event-channel missing or not a number`);
      const refs: number[] = [];
      for (let page = 0; page < pages; page++) {
        const name = multiRef ? `ring-ref${page}` : "ring-ref";
        const ref = parseNumber((await store.tryRead(`${dir}/${name}`)) ?? "");
        if (ref === null) return fail(`${dir}/${name} missing or not a number`);
        refs.push(ref);
      }
      const mappings: GrantMapping[] = [];
      for (const ref of refs) {
        try {
          mappings.push(host.grants.map(domid, ref, true));
        } catch (error) {
          for (const mapping of mappings) host.grants.unmap(mapping);
          return fail(`${dir}: mapping ring-ref ${ref} failed: ${(error as Error).message}`);
        }
      }
      const events = host.openEventChannel();
      let worker: BlkifRingWorker | null = null;
      let localPort: number;
      try {
        localPort = events.bindInterdomain(domid, port, () => worker?.kick());
      } catch (error) {
        for (const mapping of mappings) host.grants.unmap(mapping);
        events.close();
        return fail(`${dir}: binding event-channel ${port} failed: ${(error as Error).message}`);
      }
      worker = new BlkifRingWorker({
        grants: host.grants,
        domid,
        ring: mappings.map((mapping) => mapping.view),
        abi,
        image,
        readOnly: this.readOnly,
        notify: () => events.notify(localPort),
        persistentGrants: persistent,
        maxIndirectSegments: this.options.maxIndirectSegments ?? DEFAULT_MAX_INDIRECT_SEGMENTS,
        discard: this.discardSupported,
        flush: true,
        log: this.options.log,
      });
      this.queues.push({ worker, mappings, events });
      // Requests published before the bind would otherwise wait for the next event.
      worker.kick();
    }
    // Linux connect(): the three keys blkfront reads together, then Connected.
    await store.write(this.key("sectors"), String(Math.floor(image.size / 512)));
    await store.write(this.key("info"), String(this.readOnly ? Vdisk.READONLY : 0));
    await store.write(this.key("sector-size"), "512");
    await store.write(this.key("physical-sector-size"), "512");
    await store.write(this.key("mode"), this.readOnly ? "r" : "w");
    await this.switchState(XenbusState.Connected);
  }

  /** Linux xen_blkif_disconnect: drain, unmap, unbind. */
  private async disconnect(): Promise<void> {
    const queues = this.queues;
    this.queues = [];
    for (const queue of queues) {
      await queue.worker.stop();
      queue.events.close();
      for (const mapping of queue.mappings) {
        try {
          this.options.host.grants.unmap(mapping);
        } catch (error) {
          this.options.log?.(
            `vbd ${this.options.backendPath}: ring unmap failed: ${(error as Error).message}`,
          );
        }
      }
    }
  }

  /**
   * Backend-initiated close (xl block-detach, domain destroy): Closing, then
   * Closed once the frontend has closed. Resolves when Closed.
   */
  close(): Promise<void> {
    if (this.stateValue === XenbusState.Closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      this.closing = resolve;
    });
    this.mutex
      .run(async () => {
        await this.disconnect();
        await this.switchState(XenbusState.Closing);
        await this.frontendChanged();
      })
      .catch((error: Error) =>
        this.options.log?.(`vbd ${this.options.backendPath}: ${error.message}`),
      );
    return done;
  }

  /** Stops watching and releases everything at once (the frontend domain is gone). */
  async destroy(): Promise<void> {
    await this.watch?.unwatch();
    this.watch = null;
    await this.mutex.run(() => this.disconnect());
  }
}

function parseNumber(text: string): number | null {
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const value = Number(text);
  return value <= 0xffffffff ? value : null;
}
