/**
 * A simulated Linux xen-netfront (drivers/net/xen-netfront.c, Linux 6.1) for tests: it plays
 * the guest's side through the guest's own memory, grant table and event channels, exactly
 * what the real driver does with its stores and hypercalls, while the backend under test
 * reaches it only through the hypervisor's host interface.
 *
 * Handshake as talk_to_netback/xennet_connect; tx as xennet_start_xmit (first slot carries the
 * total length, more_data chains, a GSO extra after the first slot); rx as xennet_poll and
 * xennet_get_responses (responses in request slots, extras after the first); ring indices as
 * io/ring.h with RING_PUSH_REQUESTS_AND_CHECK_NOTIFY and RING_FINAL_CHECK_FOR_RESPONSES. It also
 * checks the backend the way netfront does (XSA-392 hardening): response ids must be
 * outstanding, rx offset + status must fit the page, grants must be released before responses.
 */
import {
  abiLayouts,
  GrantFlags,
  NetifExtraFlags,
  NetifExtraType,
  NetifStatus,
  NetRxFlags,
  NetTxFlags,
  XenbusState,
} from "@kumo/abi";
import type { Domain } from "@kumo/hypervisor-core";
import type { GsoInfo } from "../frame";
import type { MemoryXenstore } from "./memory-xenstore";

const PAGE_SIZE = 4096;
const layouts = abiLayouts("x86_64");
const SRING = layouts.netif_tx_sring.offsets;
const TX_ENTRY = layouts.netif_tx_sring_entry.size;
const RX_ENTRY = layouts.netif_rx_sring_entry.size;
const TX_SIZE = layouts.ringEntries("netif_tx");
const RX_SIZE = layouts.ringEntries("netif_rx");

export interface NetfrontFeatures {
  sg?: boolean;
  gsoTcpv4?: boolean;
  gsoTcpv6?: boolean;
  ipv6CsumOffload?: boolean;
  noCsumOffload?: boolean;
  multicastControl?: boolean;
  /**
   * feature-rx-notify (default true). False: the key is not written and
   * posting rx buffers sends no event, as a pre-2.6.x frontend (Linux
   * xen-netback then polls; read_xenbus_vif_flags).
   */
  rxNotify?: boolean;
}

export interface NetfrontOptions {
  readonly domain: Domain;
  readonly xenstore: MemoryXenstore;
  readonly devid?: number;
  /** Queues to ask for (multi-queue-num-queues when > 1). Default 1. */
  readonly queues?: number;
  /** event-channel-tx/-rx instead of one event-channel. Default false. */
  readonly splitEventChannels?: boolean;
  /** What the frontend writes; default all on as Linux 6.1 does (no-csum-offload off). */
  readonly features?: NetfrontFeatures;
  /** Rx buffers kept posted per queue. Default 64 (Linux: NET_RX_RING_SIZE). */
  readonly rxBuffers?: number;
  /** First guest frame the frontend may use for its pages. Default 0x200. */
  readonly firstGfn?: number;
}

export interface ReceivedFrame {
  readonly data: Uint8Array;
  readonly flags: number;
  readonly gso: GsoInfo | null;
  readonly queue: number;
}

export interface SendOptions {
  readonly checksumBlank?: boolean;
  readonly dataValidated?: boolean;
  readonly gso?: GsoInfo;
  /** Offset of the data in its first page (netfront uses the skb's offset). Default 0. */
  readonly offset?: number;
  readonly queue?: number;
}

interface TxPending {
  gref: number;
  gfn: number;
}

class NetfrontQueue {
  txGfn = 0;
  rxGfn = 0;
  txRef = 0;
  rxRef = 0;
  txPort = 0;
  rxPort = 0;
  txRequestProducer = 0;
  txResponseConsumer = 0;
  rxRequestProducer = 0;
  rxResponseConsumer = 0;
  readonly txPending = new Map<number, TxPending>();
  readonly freeIds: number[] = [];
  readonly rxSlotGref = new Int32Array(RX_SIZE).fill(-1);
  readonly rxSlotGfn = new Int32Array(RX_SIZE).fill(-1);
  constructor(readonly index: number) {
    for (let id = TX_SIZE - 1; id >= 0; id--) this.freeIds.push(id);
  }
}

export class SimulatedNetfront {
  readonly domain: Domain;
  readonly domid: number;
  readonly devid: number;
  readonly path: string;
  readonly queues: NetfrontQueue[] = [];
  /** Protocol violations by the backend seen by this frontend (must stay empty). */
  readonly violations: string[] = [];
  /** tx response statuses seen, by value. */
  readonly txStatuses = new Map<number, number>();
  /** Upcalls (pending bits found set) per guest port. */
  readonly notifications = new Map<number, number>();
  private readonly store: MemoryXenstore;
  private readonly options: NetfrontOptions;
  private nextGfn: number;
  private readonly freeGfns: number[] = [];
  private nextRef = 8;
  private readonly freeRefs: number[] = [];
  private readonly received: ReceivedFrame[] = [];

  constructor(options: NetfrontOptions) {
    this.options = options;
    this.domain = options.domain;
    this.domid = options.domain.domid;
    this.devid = options.devid ?? 0;
    this.store = options.xenstore;
    this.path = `/local/domain/${this.domid}/device/vif/${this.devid}`;
    this.nextGfn = options.firstGfn ?? 0x200;
  }

  get backendPath(): string {
    return this.store.get(`${this.path}/backend`) ?? "";
  }

  private get memory() {
    const memory = this.domain.memory;
    if (memory === null) throw new Error("netfront domain has no memory");
    return memory;
  }

  /** talk_to_netback + xennet_connect: waits for InitWait, publishes rings, goes Connected. */
  async connect(): Promise<void> {
    const backend = this.backendPath;
    await this.store.waitFor(`${backend}/state`, String(XenbusState.InitWait));
    const features = {
      sg: true,
      gsoTcpv4: true,
      gsoTcpv6: true,
      ipv6CsumOffload: true,
      noCsumOffload: false,
      multicastControl: false,
      ...this.options.features,
    };
    const count = this.options.queues ?? 1;
    const split = this.options.splitEventChannels ?? false;
    this.queues.length = 0;
    for (let index = 0; index < count; index++) {
      const queue = new NetfrontQueue(index);
      queue.txGfn = this.allocateGfn();
      queue.rxGfn = this.allocateGfn();
      // SHARED_RING_INIT + FRONT_RING_INIT: prods 0, events 1.
      for (const gfn of [queue.txGfn, queue.rxGfn]) {
        const page = this.page(gfn);
        page.fill(0);
        const view = new DataView(page.buffer, page.byteOffset, PAGE_SIZE);
        view.setUint32(SRING.req_event, 1, true);
        view.setUint32(SRING.rsp_event, 1, true);
      }
      queue.txRef = this.grant(queue.txGfn, false);
      queue.rxRef = this.grant(queue.rxGfn, false);
      queue.txPort = this.domain.events.allocUnbound(0);
      queue.rxPort = split ? this.domain.events.allocUnbound(0) : queue.txPort;
      this.queues.push(queue);
      const base = count === 1 ? this.path : `${this.path}/queue-${index}`;
      this.store.set(`${base}/tx-ring-ref`, String(queue.txRef));
      this.store.set(`${base}/rx-ring-ref`, String(queue.rxRef));
      if (split) {
        this.store.set(`${base}/event-channel-tx`, String(queue.txPort));
        this.store.set(`${base}/event-channel-rx`, String(queue.rxPort));
      } else {
        this.store.set(`${base}/event-channel`, String(queue.txPort));
      }
    }
    if (count > 1) this.store.set(`${this.path}/multi-queue-num-queues`, String(count));
    this.store.set(`${this.path}/request-rx-copy`, "1");
    if (this.options.features?.rxNotify !== false)
      this.store.set(`${this.path}/feature-rx-notify`, "1");
    this.store.set(`${this.path}/feature-sg`, features.sg ? "1" : "0");
    this.store.set(`${this.path}/feature-gso-tcpv4`, features.gsoTcpv4 ? "1" : "0");
    this.store.set(`${this.path}/feature-gso-tcpv6`, features.gsoTcpv6 ? "1" : "0");
    this.store.set(`${this.path}/feature-ipv6-csum-offload`, features.ipv6CsumOffload ? "1" : "0");
    if (features.noCsumOffload) this.store.set(`${this.path}/feature-no-csum-offload`, "1");
    if (features.multicastControl) this.store.set(`${this.path}/request-multicast-control`, "1");
    for (const queue of this.queues) this.postRxBuffers(queue);
    this.store.set(`${this.path}/state`, String(XenbusState.Connected));
    await this.store.waitFor(`${backend}/state`, String(XenbusState.Connected));
  }

  /** Frontend close (xennet_remove / netback_changed Closing): 5 then 6, waits for backend 6. */
  async close(): Promise<void> {
    this.store.set(`${this.path}/state`, String(XenbusState.Closing));
    await this.store.waitFor(`${this.backendPath}/state`, String(XenbusState.Closing));
    this.store.set(`${this.path}/state`, String(XenbusState.Closed));
    await this.store.waitFor(`${this.backendPath}/state`, String(XenbusState.Closed));
    this.releaseAll();
  }

  /** Re-probe after close (a reloaded driver): state 1, then `connect`. */
  async reconnect(): Promise<void> {
    this.store.set(`${this.path}/state`, String(XenbusState.Initialising));
    await this.connect();
  }

  /**
   * xennet_start_xmit: copies `data` into fresh granted pages, one slot per page piece, and
   * pushes the requests. Returns false (sending nothing) when the ring lacks room.
   */
  send(data: Uint8Array, options: SendOptions = {}): boolean {
    const queue = this.queues[options.queue ?? 0];
    const offset = options.offset ?? 0;
    const pieces: [number, number][] = [];
    let position = 0;
    let pageOffset = offset;
    while (position < data.length || pieces.length === 0) {
      const chunk = Math.min(PAGE_SIZE - pageOffset, data.length - position);
      pieces.push([pageOffset, chunk]);
      position += chunk;
      pageOffset = 0;
    }
    const slots = pieces.length + (options.gso ? 1 : 0);
    const inFlight = queue.txRequestProducer - queue.txResponseConsumer;
    if (inFlight + slots > TX_SIZE || queue.freeIds.length < pieces.length) return false;
    const view = this.ringView(queue.txGfn);
    position = 0;
    for (let i = 0; i < pieces.length; i++) {
      const [at, chunk] = pieces[i];
      const gfn = this.allocateGfn();
      this.memory.writeBytes(gfn * PAGE_SIZE + at, data.subarray(position, position + chunk));
      position += chunk;
      const gref = this.grant(gfn, true);
      const id = queue.freeIds.pop() as number;
      queue.txPending.set(id, { gref, gfn });
      let flags = i + 1 < pieces.length ? NetTxFlags.more_data : 0;
      if (i === 0) {
        if (options.checksumBlank) flags |= NetTxFlags.csum_blank | NetTxFlags.data_validated;
        else if (options.dataValidated) flags |= NetTxFlags.data_validated;
        if (options.gso) flags |= NetTxFlags.extra_info;
      }
      this.writeTxRequest(view, queue.txRequestProducer++, {
        gref,
        offset: at,
        flags,
        id,
        size: i === 0 ? data.length : chunk,
      });
      if (i === 0 && options.gso) {
        const entry = entryOffset(queue.txRequestProducer++, TX_SIZE, TX_ENTRY);
        new Uint8Array(view.buffer, view.byteOffset + entry, TX_ENTRY).fill(0);
        view.setUint8(entry, NetifExtraType.GSO);
        view.setUint8(entry + 1, 0);
        view.setUint16(entry + 2, options.gso.size, true);
        view.setUint8(entry + 4, options.gso.type);
      }
    }
    this.pushTx(queue);
    return true;
  }

  /** Writes raw tx slots (hostile tests): each entry's 12 bytes as given, then pushes. */
  sendRawSlots(slots: Uint8Array[], queueIndex = 0, push = true): void {
    const queue = this.queues[queueIndex];
    const view = this.ringView(queue.txGfn);
    for (const slot of slots) {
      const at = entryOffset(queue.txRequestProducer++, TX_SIZE, TX_ENTRY);
      new Uint8Array(view.buffer, view.byteOffset + at, TX_ENTRY).set(slot.subarray(0, TX_ENTRY));
    }
    if (push) this.pushTx(queue);
  }

  /** Copies `data` into a fresh page at `offset` and grants it read-only (for raw slots). */
  grantData(data: Uint8Array, offset = 0): number {
    const gfn = this.allocateGfn();
    this.memory.writeBytes(gfn * PAGE_SIZE + offset, data);
    return this.grant(gfn, true);
  }

  /** Sends an MCAST_ADD or MCAST_DEL request (a dummy tx slot plus the extra). */
  multicast(kind: "add" | "del", mac: Uint8Array, queueIndex = 0): void {
    const queue = this.queues[queueIndex];
    const view = this.ringView(queue.txGfn);
    const id = queue.freeIds.pop() as number;
    queue.txPending.set(id, { gref: -1, gfn: -1 });
    this.writeTxRequest(view, queue.txRequestProducer++, {
      gref: 0,
      offset: 0,
      flags: NetTxFlags.extra_info,
      id,
      size: 0,
    });
    const entry = entryOffset(queue.txRequestProducer++, TX_SIZE, TX_ENTRY);
    new Uint8Array(view.buffer, view.byteOffset + entry, TX_ENTRY).fill(0);
    view.setUint8(entry, kind === "add" ? NetifExtraType.MCAST_ADD : NetifExtraType.MCAST_DEL);
    for (let i = 0; i < 6; i++) view.setUint8(entry + 2 + i, mac[i]);
    this.pushTx(queue);
  }

  /** The shared ring pages (hostile tests write them directly). */
  ringPages(queueIndex = 0): { tx: Uint8Array; rx: Uint8Array } {
    const queue = this.queues[queueIndex];
    return { tx: this.page(queue.txGfn), rx: this.page(queue.rxGfn) };
  }

  /** Sends on the tx (or shared) port, as notify_remote_via_irq. */
  notifyTx(queueIndex = 0): void {
    this.domain.events.send(this.queues[queueIndex].txPort);
  }

  /**
   * The interrupt handler and NAPI poll: counts pending upcalls, reaps tx responses
   * (xennet_tx_buf_gc), takes rx responses (xennet_poll) and reposts buffers. Returns the
   * frames received since the last call.
   */
  poll(): ReceivedFrame[] {
    const events = this.domain.twoLevel;
    for (const queue of this.queues) {
      for (const port of new Set([queue.txPort, queue.rxPort])) {
        if (events?.isPending(port)) {
          this.notifications.set(port, (this.notifications.get(port) ?? 0) + 1);
          events.clearPending(port);
        }
      }
      this.reapTx(queue);
      this.takeRx(queue);
      this.postRxBuffers(queue);
    }
    return this.received.splice(0);
  }

  /** Tx slots whose responses have not arrived. */
  txOutstanding(queueIndex = 0): number {
    const queue = this.queues[queueIndex];
    return queue.txRequestProducer - queue.txResponseConsumer;
  }

  private reapTx(queue: NetfrontQueue): void {
    const view = this.ringView(queue.txGfn);
    for (;;) {
      const producer = view.getUint32(SRING.rsp_prod, true);
      if ((producer - queue.txResponseConsumer) >>> 0 > TX_SIZE) {
        this.violations.push(`tx rsp_prod ${producer} beyond the ring`);
        return;
      }
      if (
        (producer - queue.txResponseConsumer) >>> 0 >
        (queue.txRequestProducer - queue.txResponseConsumer) >>> 0
      ) {
        this.violations.push("more tx responses than requests");
        return;
      }
      while (queue.txResponseConsumer !== producer) {
        const at = entryOffset(queue.txResponseConsumer, TX_SIZE, TX_ENTRY);
        queue.txResponseConsumer = (queue.txResponseConsumer + 1) >>> 0;
        const status = view.getInt16(at + 2, true);
        this.txStatuses.set(status, (this.txStatuses.get(status) ?? 0) + 1);
        if (status === NetifStatus.NULL) continue;
        const id = view.getUint16(at, true);
        const pending = queue.txPending.get(id);
        if (pending === undefined) {
          // Hostile tests write their own ids; only a response to an unknown id from a
          // well-behaved exchange is a backend bug, so record it.
          this.violations.push(`tx response for id ${id} not outstanding`);
          continue;
        }
        queue.txPending.delete(id);
        queue.freeIds.push(id);
        if (pending.gref >= 0) this.revoke(pending.gref);
        if (pending.gfn >= 0) this.freeGfns.push(pending.gfn);
      }
      // RING_FINAL_CHECK_FOR_RESPONSES
      view.setUint32(SRING.rsp_event, (queue.txResponseConsumer + 1) >>> 0, true);
      if (view.getUint32(SRING.rsp_prod, true) === queue.txResponseConsumer) return;
    }
  }

  private takeRx(queue: NetfrontQueue): void {
    const view = this.ringView(queue.rxGfn);
    for (;;) {
      const producer = view.getUint32(SRING.rsp_prod, true);
      if ((producer - queue.rxResponseConsumer) >>> 0 > RX_SIZE) {
        this.violations.push(`rx rsp_prod ${producer} beyond the ring`);
        return;
      }
      while (queue.rxResponseConsumer !== producer) {
        const frame = this.takeRxPacket(queue, view, producer);
        if (frame === "incomplete") break;
        if (frame !== null) this.received.push(frame);
      }
      view.setUint32(SRING.rsp_event, (queue.rxResponseConsumer + 1) >>> 0, true);
      if (view.getUint32(SRING.rsp_prod, true) === queue.rxResponseConsumer) return;
    }
  }

  /** xennet_get_responses for one packet. */
  private takeRxPacket(
    queue: NetfrontQueue,
    view: DataView,
    producer: number,
  ): ReceivedFrame | null | "incomplete" {
    let index = queue.rxResponseConsumer;
    const chunks: Uint8Array[] = [];
    let flags = 0;
    let gso: GsoInfo | null = null;
    let first = true;
    let ok = true;
    for (let slots = 0; ; slots++) {
      if (index === producer) return "incomplete";
      if (slots > 19) {
        this.violations.push("rx packet of more than 19 slots");
        ok = false;
      }
      const slot = index & (RX_SIZE - 1);
      const at = entryOffset(index, RX_SIZE, RX_ENTRY);
      index = (index + 1) >>> 0;
      this.releaseRxSlot(queue, slot);
      const responseFlags = view.getUint16(at + 4, true);
      const status = view.getInt16(at + 6, true);
      const offset = view.getUint16(at + 2, true);
      const gfn = queue.rxSlotGfn[slot];
      if (status < 0 || offset + status > PAGE_SIZE) {
        if (status >= 0) this.violations.push(`rx offset ${offset} + status ${status} > 4096`);
        ok = false;
      } else if (gfn >= 0) {
        chunks.push(this.page(gfn).slice(offset, offset + status));
      }
      if (first) {
        flags = responseFlags;
        first = false;
        if (responseFlags & NetRxFlags.extra_info) {
          // Extras follow the first response, chained by XEN_NETIF_EXTRA_FLAG_MORE.
          let more = 1;
          while (more) {
            if (index === producer) return "incomplete";
            const extraSlot = index & (RX_SIZE - 1);
            const extra = entryOffset(index, RX_SIZE, RX_ENTRY);
            index = (index + 1) >>> 0;
            this.releaseRxSlot(queue, extraSlot);
            const type = view.getUint8(extra);
            more = view.getUint8(extra + 1) & NetifExtraFlags.MORE;
            if (type === NetifExtraType.GSO)
              gso = { size: view.getUint16(extra + 2, true), type: view.getUint8(extra + 4) };
            else this.violations.push(`rx extra of type ${type}`);
          }
        }
      }
      if (!(responseFlags & NetRxFlags.more_data)) break;
    }
    queue.rxResponseConsumer = index;
    if (!ok) return null;
    const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const data = new Uint8Array(length);
    let position = 0;
    for (const chunk of chunks) {
      data.set(chunk, position);
      position += chunk.length;
    }
    return { data, flags, gso, queue: queue.index };
  }

  private releaseRxSlot(queue: NetfrontQueue, slot: number): void {
    const gref = queue.rxSlotGref[slot];
    if (gref >= 0) this.revoke(gref);
    queue.rxSlotGref[slot] = -1;
  }

  /** xennet_alloc_rx_buffers: fills free rx slots with granted pages, pushes, notifies. */
  private postRxBuffers(queue: NetfrontQueue): void {
    const target = Math.min(this.options.rxBuffers ?? 64, RX_SIZE);
    const view = this.ringView(queue.rxGfn);
    let posted = false;
    while ((queue.rxRequestProducer - queue.rxResponseConsumer) >>> 0 < target) {
      const slot = queue.rxRequestProducer & (RX_SIZE - 1);
      if (queue.rxSlotGfn[slot] < 0) queue.rxSlotGfn[slot] = this.allocateGfn();
      const gref = this.grant(queue.rxSlotGfn[slot], false);
      queue.rxSlotGref[slot] = gref;
      const at = entryOffset(queue.rxRequestProducer, RX_SIZE, RX_ENTRY);
      view.setUint16(at, slot, true);
      view.setUint16(at + 2, 0, true);
      view.setUint32(at + 4, gref, true);
      queue.rxRequestProducer = (queue.rxRequestProducer + 1) >>> 0;
      posted = true;
    }
    if (!posted) return;
    const old = view.getUint32(SRING.req_prod, true);
    view.setUint32(SRING.req_prod, queue.rxRequestProducer, true);
    const event = view.getUint32(SRING.req_event, true);
    const fresh = queue.rxRequestProducer;
    if (this.options.features?.rxNotify === false) return;
    if ((fresh - event) >>> 0 < (fresh - old) >>> 0) this.domain.events.send(queue.rxPort);
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY on the tx ring. */
  private pushTx(queue: NetfrontQueue): void {
    const view = this.ringView(queue.txGfn);
    const old = view.getUint32(SRING.req_prod, true);
    const fresh = queue.txRequestProducer >>> 0;
    view.setUint32(SRING.req_prod, fresh, true);
    const event = view.getUint32(SRING.req_event, true);
    if ((fresh - event) >>> 0 < (fresh - old) >>> 0) this.domain.events.send(queue.txPort);
  }

  private writeTxRequest(
    view: DataView,
    index: number,
    request: { gref: number; offset: number; flags: number; id: number; size: number },
  ): void {
    const at = entryOffset(index, TX_SIZE, TX_ENTRY);
    view.setUint32(at, request.gref, true);
    view.setUint16(at + 4, request.offset, true);
    view.setUint16(at + 6, request.flags, true);
    view.setUint16(at + 8, request.id, true);
    view.setUint16(at + 10, request.size, true);
  }

  /** gnttab_grant_foreign_access to domain 0. */
  private grant(gfn: number, readonly: boolean): number {
    const grants = this.domain.grants;
    if (grants === null) throw new Error("netfront domain has no grant table");
    let ref = this.freeRefs.pop();
    if (ref === undefined) {
      ref = this.nextRef++;
      // add_to_physmap(grant_table, idx) grows the table, as gnttab_expand does.
      if (ref >= grants.nrEntries) grants.frameForPhysmap(ref >>> 9);
    }
    grants.writeEntry(ref, 0, gfn, GrantFlags.permit_access | (readonly ? GrantFlags.readonly : 0));
    return ref;
  }

  /**
   * gnttab_end_foreign_access_ref: fails while the backend still has the grant mapped or is
   * copying (GTF_reading/GTF_writing); netfront then declares the device broken.
   */
  private revoke(ref: number): void {
    const grants = this.domain.grants;
    if (grants === null) return;
    const flags = grants.entryFlags(ref);
    if (flags & (GrantFlags.reading | GrantFlags.writing)) {
      this.violations.push(`grant ${ref} still in use by the backend after its response`);
      return;
    }
    grants.writeEntry(ref, 0, 0, 0);
    this.freeRefs.push(ref);
  }

  private releaseAll(): void {
    for (const queue of this.queues) {
      for (const ref of [queue.txRef, queue.rxRef]) this.revoke(ref);
      for (const port of new Set([queue.txPort, queue.rxPort])) this.domain.events.close(port);
    }
    this.queues.length = 0;
  }

  private allocateGfn(): number {
    return this.freeGfns.pop() ?? this.nextGfn++;
  }

  private page(gfn: number): Uint8Array {
    const frame = this.memory.frame(gfn);
    if (frame === null) throw new Error(`netfront: guest has no frame 0x${gfn.toString(16)}`);
    return frame;
  }

  private ringView(gfn: number): DataView {
    const page = this.page(gfn);
    return new DataView(page.buffer, page.byteOffset, PAGE_SIZE);
  }
}

function entryOffset(index: number, size: number, entrySize: number): number {
  return SRING.ring + (index & (size - 1)) * entrySize;
}
