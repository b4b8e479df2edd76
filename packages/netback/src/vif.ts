/**
 * The data path of one vif: its netif tx/rx ring pairs (one per queue), served through the host
 * interface only (grant maps for the ring pages, grant copies for packet data, event channels).
 * Follows Linux drivers/net/xen-netback/netback.c (tx) and rx.c (rx); the xenbus handshake that
 * creates it lives in xenbus.ts (control and data paths apart, as Linux splits xenbus.c).
 *
 * Every request is copied out of the shared page once into private typed arrays and checked
 * there (no double fetch, XSA-155). A guest's mistake is answered as Linux netback answers it:
 * NETIF_RSP_ERROR for a bad packet, or the whole vif disabled for the violations Linux calls
 * fatal (xenvif_fatal_tx_err); never a host exception.
 */
import {
  abiLayouts,
  GntStatus,
  NetifExtraFlags,
  NetifExtraType,
  NetifGsoType,
  NetifStatus,
  NetRxFlags,
  NetTxFlags,
} from "@kumo/abi";
import type {
  DomainId,
  EventChannelPort,
  GrantMapping,
  GrantRef,
  HostEventChannel,
  HostInterface,
} from "@kumo/hypervisor-core";
import type { Bridge, BridgePort, BridgeSink } from "./bridge";
import {
  completeChecksum,
  ETH_HLEN,
  type EthernetFrame,
  isGroupMac,
  isTcpGso,
  macKey,
  segmentTcp,
} from "./frame";
import { BackRing } from "./ring";

const PAGE_SIZE = 4096;
const layouts = abiLayouts("x86_64");
const TX_REQUEST = layouts.netif_tx_request.offsets;
const TX_RESPONSE = layouts.netif_tx_response.offsets;
const RX_REQUEST = layouts.netif_rx_request.offsets;
const RX_RESPONSE = layouts.netif_rx_response.offsets;
const EXTRA = layouts.netif_extra_info.offsets;
const TX_ENTRY = layouts.netif_tx_sring_entry.size;
const RX_ENTRY = layouts.netif_rx_sring_entry.size;
const TX_RING_SIZE = layouts.ringEntries("netif_tx");
const RX_RING_SIZE = layouts.ringEntries("netif_rx");

/** Linux netback XEN_NETBK_LEGACY_SLOTS_MAX: packets using more slots are dropped. */
export const LEGACY_SLOTS_MAX = 18;
/** Linux netback FATAL_SKB_SLOTS_DEFAULT: a packet using this many slots disables the vif. */
export const FATAL_SKB_SLOTS = 20;
/** Linux netback XEN_NETBK_MCAST_MAX: multicast addresses a frontend may register. */
export const MCAST_MAX = 64;
/** io/netif.h XEN_NETIF_EXTRA_TYPE_MAX (XDP = 5 is the last type). */
const EXTRA_TYPE_MAX = 6;
/** Packets served per notification before yielding to the event loop (checklist rule 3). */
const TX_BUDGET = 64;
const RX_BUDGET = 64;
/** Frames waiting for rx buffers per queue before new ones are dropped (Linux rx_queue_max). */
const RX_QUEUE_MAX = 256;

/** What the frontend negotiated (Linux read_xenbus_vif_flags). */
export interface VifFeatures {
  /** feature-sg: packets may span several slots. */
  readonly sg: boolean;
  readonly gsoTcpv4: boolean;
  readonly gsoTcpv6: boolean;
  /** Not feature-no-csum-offload: IPv4 frames may arrive with a partial checksum. */
  readonly ipCsum: boolean;
  readonly ipv6Csum: boolean;
  /** request-multicast-control: deliver only registered multicast groups. */
  readonly multicastControl: boolean;
  /**
   * feature-rx-notify (default true): the frontend notifies when it posts rx
   * buffers. Without it the backend looks for buffers itself every
   * RX_POLL_MS while frames wait (Linux xen-netback read_xenbus_vif_flags:
   * drain_timeout of 30 ms, no stall detection).
   */
  readonly rxNotify?: boolean;
}

/** How often a vif without feature-rx-notify is polled for rx buffers (Linux: msecs_to_jiffies(30)). */
const RX_POLL_MS = 30;

/** One queue's rings and event channels as the frontend published them. */
export interface QueueRings {
  readonly txRingRef: GrantRef;
  readonly rxRingRef: GrantRef;
  /** The frontend's port for tx (or the single shared port). */
  readonly txPort: EventChannelPort;
  /** The frontend's port for rx; equal to `txPort` without split event channels. */
  readonly rxPort: EventChannelPort;
}

export interface VifStatistics {
  txPackets: number;
  txBytes: number;
  /** Packets answered NETIF_RSP_ERROR. */
  txErrors: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames the bridge offered that this vif could not take (queue full, no offload, filter). */
  rxDropped: number;
  /** rx slots whose grant copy failed (answered NETIF_RSP_ERROR). */
  rxErrors: number;
}

export interface VifOptions {
  readonly host: HostInterface;
  /** The frontend's domain. */
  readonly domid: DomainId;
  readonly devid: number;
  readonly bridge: Bridge | null;
  readonly features: VifFeatures;
  /** Diagnostics (Linux netdev_err/netdev_dbg lines). */
  readonly log?: (line: string) => void;
}

/** Most rx slots of one frame: 65535 bytes in 4096-byte pages plus a GSO extra. */
const RX_SLOTS_MAX = Math.ceil(0xffff / PAGE_SIZE) + 1;
const NO_BYTES = new Uint8Array(0);

// Grant-copy descriptors reused from packet to packet (no allocation per slot on the data path).
interface GrantSide {
  ref: number;
  domid: number;
  offset: number;
}
interface BufferSide {
  buffer: Uint8Array;
  offset: number;
}
interface TxCopy {
  readonly source: GrantSide;
  readonly dest: BufferSide;
  length: number;
}
interface RxCopy {
  readonly source: BufferSide;
  readonly dest: GrantSide;
  length: number;
}

const defer: (task: () => void) => void =
  typeof setImmediate === "function" ? (task) => setImmediate(task) : (task) => setTimeout(task, 0);

class VifQueue {
  readonly tx: BackRing;
  readonly rx: BackRing;
  readonly txLocalPort: EventChannelPort;
  readonly rxLocalPort: EventChannelPort;
  private txContinuation = false;
  private rxScheduled = false;
  private rxPoll: ReturnType<typeof setTimeout> | null = null;
  /** Set on disconnect: deferred work must not touch the unmapped ring pages. */
  stopped = false;
  private readonly rxQueue: EthernetFrame[] = [];
  private rxHead = 0;

  // Private copies of the slots of the packet being parsed (no double fetch).
  private readonly slotGref = new Uint32Array(FATAL_SKB_SLOTS + 1);
  private readonly slotOffset = new Uint16Array(FATAL_SKB_SLOTS + 1);
  private readonly slotSize = new Uint16Array(FATAL_SKB_SLOTS + 1);
  private readonly slotId = new Uint16Array(FATAL_SKB_SLOTS + 1);
  private readonly slotFlags = new Uint16Array(FATAL_SKB_SLOTS + 1);
  private readonly extraType = new Uint8Array(EXTRA_TYPE_MAX);
  private readonly gsoFields = new Uint16Array(2);
  /** Addresses of the MCAST_ADD and MCAST_DEL extras (Linux keeps one extra per type). */
  private readonly mcastAdd = new Uint8Array(6);
  private readonly mcastDelete = new Uint8Array(6);
  private readonly txCopyPool: TxCopy[] = [];
  private readonly txCopies: TxCopy[] = [];
  private readonly rxCopyPool: RxCopy[] = [];
  private readonly rxCopies: RxCopy[] = [];
  private readonly rxIds = new Uint16Array(RX_SLOTS_MAX);

  constructor(
    private readonly vif: Vif,
    readonly index: number,
    txPage: GrantMapping,
    rxPage: GrantMapping,
    txLocalPort: EventChannelPort,
    rxLocalPort: EventChannelPort,
  ) {
    this.tx = new BackRing(txPage.view, TX_RING_SIZE, TX_ENTRY);
    this.rx = new BackRing(rxPage.view, RX_RING_SIZE, RX_ENTRY);
    this.txLocalPort = txLocalPort;
    this.rxLocalPort = rxLocalPort;
    const domid = vif.domid;
    for (let i = 0; i <= FATAL_SKB_SLOTS; i++) {
      this.txCopyPool.push({
        source: { ref: 0, domid, offset: 0 },
        dest: { buffer: NO_BYTES, offset: 0 },
        length: 0,
      });
    }
    for (let i = 0; i < RX_SLOTS_MAX; i++) {
      this.rxCopyPool.push({
        source: { buffer: NO_BYTES, offset: 0 },
        dest: { ref: 0, domid, offset: 0 },
        length: 0,
      });
    }
  }

  // ---- transmit (guest -> bridge), Linux netback.c xenvif_tx_build_gops ----

  /** Serves tx requests; called on a tx notification and to continue a long batch. */
  serveTx(): void {
    this.txContinuation = false;
    if (this.stopped) return;
    const vif = this.vif;
    let notify = false;
    for (let packets = 0; packets < TX_BUDGET; packets++) {
      if (vif.disabled) return;
      let work = this.tx.unconsumed(this.tx.requestProducer());
      if (work === 0) work = this.tx.finalCheckForRequests();
      if (work < 0) {
        vif.fatal(`tx: impossible number of requests (req_prod ${this.tx.requestProducer()})`);
        return;
      }
      if (work === 0) break;
      this.transmitOne(work);
      if (this.tx.pushResponsesAndCheckNotify()) notify = true;
      if (packets === TX_BUDGET - 1 && !vif.disabled) {
        // Budget spent with requests left: continue after other event-loop work.
        this.txContinuation = true;
        defer(() => this.serveTx());
      }
    }
    if (notify && !vif.disabled) vif.notify(this.txLocalPort);
  }

  private transmitOne(available: number): void {
    const vif = this.vif;
    const ring = this.tx;
    const view = ring.view;
    let work = available;
    // RING_COPY_REQUEST of the first slot.
    let at = ring.entryOffset(ring.requestConsumer);
    const slotGref = this.slotGref;
    const slotOffset = this.slotOffset;
    const slotSize = this.slotSize;
    const slotId = this.slotId;
    slotGref[0] = view.getUint32(at + TX_REQUEST.gref, true);
    slotOffset[0] = view.getUint16(at + TX_REQUEST.offset, true);
    const firstFlags = view.getUint16(at + TX_REQUEST.flags, true);
    slotId[0] = view.getUint16(at + TX_REQUEST.id, true);
    const total = view.getUint16(at + TX_REQUEST.size, true);
    ring.requestConsumer = (ring.requestConsumer + 1) >>> 0;
    work--;

    // Extra-info slots (xenvif_get_extras): a missing or unknown one is fatal.
    const extraType = this.extraType;
    extraType.fill(0);
    let extraCount = 0;
    if (firstFlags & NetTxFlags.extra_info) {
      let more: number;
      do {
        if (work-- <= 0) {
          vif.fatal("tx: missing extra info");
          return;
        }
        at = ring.entryOffset(ring.requestConsumer);
        const type = view.getUint8(at + EXTRA.type);
        more = view.getUint8(at + EXTRA.flags) & NetifExtraFlags.MORE;
        ring.requestConsumer = (ring.requestConsumer + 1) >>> 0;
        extraCount++;
        if (type === 0 || type >= EXTRA_TYPE_MAX) {
          vif.fatal(`tx: invalid extra type ${type}`);
          return;
        }
        extraType[type] = 1;
        if (type === NetifExtraType.GSO) {
          this.gsoFields[0] = view.getUint16(at + EXTRA["u.gso.size"], true);
          this.gsoFields[1] = view.getUint8(at + EXTRA["u.gso.type"]);
        } else if (type === NetifExtraType.MCAST_ADD || type === NetifExtraType.MCAST_DEL) {
          const target = type === NetifExtraType.MCAST_ADD ? this.mcastAdd : this.mcastDelete;
          for (let i = 0; i < 6; i++) target[i] = view.getUint8(at + EXTRA["u.mcast.addr"] + i);
        }
      } while (more);
    }
    if (extraType[NetifExtraType.MCAST_ADD]) {
      // Linux answers the request right away and does not look for data slots.
      const ok = vif.multicastAdd(this.mcastAdd);
      this.respond(slotId[0], ok ? NetifStatus.OKAY : NetifStatus.ERROR, extraCount);
      return;
    }
    if (extraType[NetifExtraType.MCAST_DEL]) {
      vif.multicastDelete(this.mcastDelete);
      this.respond(slotId[0], NetifStatus.OKAY, extraCount);
      return;
    }

    // xenvif_count_requests: walk the more_data chain, copying each slot once.
    let firstSize = total;
    let slots = 0;
    let dropReason = "";
    if (firstFlags & NetTxFlags.more_data) {
      let more: number;
      do {
        if (slots >= work) {
          vif.fatal(`tx: asked for ${slots} slots but only ${work} requests are posted`);
          return;
        }
        if (slots >= FATAL_SKB_SLOTS) {
          vif.fatal(`tx: malicious frontend using ${slots} slots, threshold ${FATAL_SKB_SLOTS}`);
          return;
        }
        if (dropReason === "" && slots >= LEGACY_SLOTS_MAX)
          dropReason = `too many slots (${slots}) exceeding limit (${LEGACY_SLOTS_MAX})`;
        at = ring.entryOffset(ring.requestConsumer + slots);
        const index = slots + 1;
        slotGref[index] = view.getUint32(at + TX_REQUEST.gref, true);
        slotOffset[index] = view.getUint16(at + TX_REQUEST.offset, true);
        this.slotFlags[index] = view.getUint16(at + TX_REQUEST.flags, true);
        slotId[index] = view.getUint16(at + TX_REQUEST.id, true);
        slotSize[index] = view.getUint16(at + TX_REQUEST.size, true);
        // A frame >= 64 KiB overflowed the u16 total: not fatal (buggy frontends), dropped.
        if (dropReason === "" && slotSize[index] > firstSize)
          dropReason = `slot size ${slotSize[index]} > remaining size ${firstSize}`;
        firstSize = (firstSize - slotSize[index]) & 0xffff;
        slots++;
        if (slotOffset[index] + slotSize[index] > PAGE_SIZE) {
          vif.fatal(
            `tx: cross page boundary, offset ${slotOffset[index]}, size ${slotSize[index]}`,
          );
          return;
        }
        more = this.slotFlags[index] & NetTxFlags.more_data;
      } while (more);
    }
    slotSize[0] = firstSize;
    const end = (ring.requestConsumer + slots) >>> 0;
    if (dropReason !== "") {
      vif.debug(`tx: dropping packet: ${dropReason}`);
      this.failPacket(extraCount, slots, end);
      return;
    }
    if (firstSize < ETH_HLEN) {
      vif.debug(`tx: bad packet size ${firstSize}`);
      this.failPacket(extraCount, slots, end);
      return;
    }
    if (slotOffset[0] + firstSize > PAGE_SIZE) {
      vif.fatal(`tx: cross page boundary, offset ${slotOffset[0]}, size ${firstSize}`);
      return;
    }
    let gso = null;
    if (extraType[NetifExtraType.GSO]) {
      // xenvif_set_skb_gso: a zero size or an unknown type is fatal.
      if (this.gsoFields[0] === 0) {
        vif.fatal("tx: GSO size must not be zero");
        return;
      }
      if (!isTcpGso(this.gsoFields[1])) {
        vif.fatal(`tx: bad GSO type ${this.gsoFields[1]}`);
        return;
      }
      gso = { type: this.gsoFields[1], size: this.gsoFields[0] };
    }
    ring.requestConsumer = end;

    // Copy the data out of the frontend's pages (Linux uses GNTTABOP_copy for the header and
    // maps the rest; one copy per slot is the simple equivalent).
    const data = new Uint8Array(total);
    const copies = this.txCopies;
    copies.length = 0;
    let position = 0;
    for (let i = 0; i <= slots; i++) {
      // Every slot's grant is checked, empty ones too (Linux maps each frag).
      const copy = this.txCopyPool[i];
      copy.source.ref = slotGref[i];
      copy.source.offset = slotOffset[i];
      copy.dest.buffer = data;
      copy.dest.offset = position;
      copy.length = slotSize[i];
      copies.push(copy);
      position += slotSize[i];
    }
    const statuses = vif.host.grants.copy(copies);
    for (let i = 0; i <= slots; i++) this.txCopyPool[i].dest.buffer = NO_BYTES;
    let copied = true;
    for (let i = 0; i < statuses.length; i++) if (statuses[i] !== GntStatus.okay) copied = false;
    // xenvif_tx_check_gop: a failed copy answers every slot of the packet with an error.
    const status = copied ? NetifStatus.OKAY : NetifStatus.ERROR;
    this.respond(slotId[0], status, extraCount);
    for (let i = 1; i <= slots; i++) this.respond(slotId[i], status, 0);
    if (!copied) {
      vif.stats.txErrors++;
      vif.debug("tx: grant copy failed");
      return;
    }
    vif.stats.txPackets++;
    vif.stats.txBytes += total;
    vif.transmit({
      data,
      checksumPartial: (firstFlags & NetTxFlags.csum_blank) !== 0,
      dataValidated: (firstFlags & NetTxFlags.data_validated) !== 0,
      gso,
    });
  }

  /** xenvif_tx_err: NETIF_RSP_ERROR for the first slot (extras NULL) and every later one. */
  private failPacket(extraCount: number, slots: number, end: number): void {
    this.respond(this.slotId[0], NetifStatus.ERROR, extraCount);
    for (let i = 1; i <= slots; i++) this.respond(this.slotId[i], NetifStatus.ERROR, 0);
    this.tx.requestConsumer = end;
    this.vif.stats.txErrors++;
  }

  /** _make_tx_response: the response, then NETIF_RSP_NULL for each extra slot. */
  private respond(id: number, status: number, extraCount: number): void {
    const ring = this.tx;
    const view = ring.view;
    let at = ring.entryOffset(ring.responseProducer);
    view.setUint16(at + TX_RESPONSE.id, id, true);
    view.setInt16(at + TX_RESPONSE.status, status, true);
    ring.responseProducer = (ring.responseProducer + 1) >>> 0;
    for (let i = 0; i < extraCount; i++) {
      at = ring.entryOffset(ring.responseProducer);
      view.setUint16(at + TX_RESPONSE.id, 0, true);
      view.setInt16(at + TX_RESPONSE.status, NetifStatus.NULL, true);
      ring.responseProducer = (ring.responseProducer + 1) >>> 0;
    }
  }

  // ---- receive (bridge -> guest), Linux rx.c xenvif_rx_action ----

  /** Queues a frame for the guest; false when the queue is full (the frame is dropped). */
  enqueue(frame: EthernetFrame): boolean {
    if (this.rxQueue.length - this.rxHead >= RX_QUEUE_MAX) return false;
    this.rxQueue.push(frame);
    if (!this.rxScheduled) {
      this.rxScheduled = true;
      queueMicrotask(() => this.serveRx());
    }
    return true;
  }

  /** Moves queued frames into posted rx buffers; called when frames arrive or buffers are posted. */
  serveRx(): void {
    this.rxScheduled = false;
    const vif = this.vif;
    if (vif.disabled || this.stopped) return;
    let notify = false;
    let served = 0;
    while (this.rxHead < this.rxQueue.length) {
      if (served === RX_BUDGET) {
        this.rxScheduled = true;
        defer(() => this.serveRx());
        break;
      }
      const frame = this.rxQueue[this.rxHead];
      const needed = slotsFor(frame);
      let available = this.rx.unconsumed(this.rx.requestProducer());
      if (available >= 0 && available < needed) {
        // Not enough buffers: ask to be woken when there are (xenvif_rx_ring_slots_available),
        // and look once more in case the frontend posted them meanwhile.
        this.rx.setRequestEvent(this.rx.requestConsumer + needed);
        available = this.rx.unconsumed(this.rx.requestProducer());
      }
      if (available < 0) {
        vif.fatal(`rx: impossible number of requests (req_prod ${this.rx.requestProducer()})`);
        return;
      }
      if (available < needed) {
        // A frontend without feature-rx-notify never sends an event for new buffers.
        if (vif.features.rxNotify === false && this.rxPoll === null) {
          this.rxPoll = setTimeout(() => {
            this.rxPoll = null;
            if (!this.rxScheduled) this.serveRx();
          }, RX_POLL_MS);
        }
        break;
      }
      this.rxHead++;
      this.receiveOne(frame);
      served++;
      if (this.rx.pushResponsesAndCheckNotify()) notify = true;
    }
    if (this.rxHead === this.rxQueue.length) {
      this.rxQueue.length = 0;
      this.rxHead = 0;
    } else if (this.rxHead > 64) {
      this.rxQueue.splice(0, this.rxHead);
      this.rxHead = 0;
    }
    if (notify) vif.notify(this.rxLocalPort);
  }

  private receiveOne(frame: EthernetFrame): void {
    const vif = this.vif;
    const ring = this.rx;
    const view = ring.view;
    const data = frame.data;
    const length = data.length;
    const dataSlots = length === 0 ? 1 : Math.ceil(length / PAGE_SIZE);
    const hasGso = frame.gso !== null;
    // Copy each request (id, gref) once, then copy the data into the grants.
    const first = ring.requestConsumer;
    const copies = this.rxCopies;
    copies.length = 0;
    const ids = this.rxIds;
    const slots = dataSlots + (hasGso ? 1 : 0);
    let position = 0;
    for (let slot = 0; slot < slots; slot++) {
      const at = ring.entryOffset(ring.requestConsumer);
      ids[slot] = view.getUint16(at + RX_REQUEST.id, true);
      const gref = view.getUint32(at + RX_REQUEST.gref, true);
      ring.requestConsumer = (ring.requestConsumer + 1) >>> 0;
      if (hasGso && slot === 1) continue; // the GSO extra slot carries no data
      const copy = this.rxCopyPool[copies.length];
      copy.source.buffer = data;
      copy.source.offset = position;
      copy.dest.ref = gref;
      copy.length = Math.min(PAGE_SIZE, length - position);
      copies.push(copy);
      position += copy.length;
    }
    const statuses = vif.host.grants.copy(copies);
    for (let i = 0; i < copies.length; i++) copies[i].source.buffer = NO_BYTES;
    let flags = 0;
    if (frame.checksumPartial) flags = NetRxFlags.csum_blank | NetRxFlags.data_validated;
    else if (frame.dataValidated) flags = NetRxFlags.data_validated;
    // Responses go in the slots of the requests they answer (netfront ignores rx ids).
    let op = 0;
    let failed = false;
    for (let slot = 0; slot < slots; slot++) {
      const index = (first + slot) >>> 0;
      const at = ring.entryOffset(index);
      if (hasGso && slot === 1) {
        // XEN_NETIF_EXTRA_TYPE_GSO after the first data slot (rx.c xenvif_rx_extra_slot).
        view.setUint8(at + EXTRA.type, NetifExtraType.GSO);
        view.setUint8(at + EXTRA.flags, 0);
        view.setUint16(at + EXTRA["u.gso.size"], frame.gso?.size ?? 0, true);
        view.setUint8(at + EXTRA["u.gso.type"], frame.gso?.type ?? 0);
        view.setUint8(at + EXTRA["u.gso.pad"], 0);
        view.setUint16(at + EXTRA["u.gso.features"], 0, true);
        continue;
      }
      const chunk = copies[op].length;
      const ok = statuses[op] === GntStatus.okay;
      op++;
      if (!ok) failed = true;
      let slotFlags = op < copies.length ? NetRxFlags.more_data : 0;
      if (slot === 0) {
        slotFlags |= flags;
        if (hasGso) slotFlags |= NetRxFlags.extra_info;
      }
      view.setUint16(at + RX_RESPONSE.id, ids[slot], true);
      view.setUint16(at + RX_RESPONSE.offset, 0, true);
      view.setUint16(at + RX_RESPONSE.flags, slotFlags, true);
      view.setInt16(at + RX_RESPONSE.status, ok ? chunk : NetifStatus.ERROR, true);
    }
    ring.responseProducer = ring.requestConsumer;
    if (failed) {
      vif.stats.rxErrors++;
      return;
    }
    vif.stats.rxPackets++;
    vif.stats.rxBytes += length;
  }

  /** Frames still waiting for rx buffers. */
  get pendingRx(): number {
    return this.rxQueue.length - this.rxHead;
  }

  dropRx(): void {
    this.rxQueue.length = 0;
    this.rxHead = 0;
    if (this.rxPoll !== null) clearTimeout(this.rxPoll);
    this.rxPoll = null;
  }

  get busy(): boolean {
    return this.txContinuation || this.rxScheduled;
  }
}

function slotsFor(frame: EthernetFrame): number {
  const length = frame.data.length;
  return (length === 0 ? 1 : Math.ceil(length / PAGE_SIZE)) + (frame.gso !== null ? 1 : 0);
}

/** The data path of one connected vif: its queues, its bridge port, its counters. */
export class Vif implements BridgeSink {
  readonly host: HostInterface;
  readonly domid: DomainId;
  readonly devid: number;
  readonly features: VifFeatures;
  readonly stats: VifStatistics = {
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxErrors: 0,
  };
  /** Set by a fatal frontend error (Linux vif->disabled): the vif serves nothing more. */
  disabled = false;
  /** Why the vif was disabled. */
  fatalReason: string | null = null;
  private readonly queues: VifQueue[] = [];
  private readonly mappings: GrantMapping[] = [];
  private events: HostEventChannel | null = null;
  private port: BridgePort | null = null;
  private readonly multicast = new Set<number>();
  private readonly log: (line: string) => void;
  private readonly bridge: Bridge | null;

  constructor(options: VifOptions) {
    this.host = options.host;
    this.domid = options.domid;
    this.devid = options.devid;
    this.features = options.features;
    this.bridge = options.bridge;
    this.log = options.log ?? (() => {});
  }

  /**
   * Maps every queue's rings and binds its event channels (Linux xenvif_connect_data). Throws
   * the host's `XenHostError` when a grant or port is bad; the vif is then left disconnected.
   */
  connect(rings: readonly QueueRings[]): void {
    if (this.events !== null) throw new Error("vif already connected");
    const events = this.host.openEventChannel();
    this.events = events;
    try {
      for (let index = 0; index < rings.length; index++) {
        const queueRings = rings[index];
        const txPage = this.host.grants.map(this.domid, queueRings.txRingRef, true);
        this.mappings.push(txPage);
        const rxPage = this.host.grants.map(this.domid, queueRings.rxRingRef, true);
        this.mappings.push(rxPage);
        let queue: VifQueue | null = null;
        const txLocal = events.bindInterdomain(this.domid, queueRings.txPort, () => {
          queue?.serveTx();
          if (queueRings.rxPort === queueRings.txPort) queue?.serveRx();
        });
        const rxLocal =
          queueRings.rxPort === queueRings.txPort
            ? txLocal
            : events.bindInterdomain(this.domid, queueRings.rxPort, () => queue?.serveRx());
        queue = new VifQueue(this, index, txPage, rxPage, txLocal, rxLocal);
        this.queues.push(queue);
      }
    } catch (error) {
      this.disconnect();
      throw error;
    }
    if (this.bridge !== null)
      this.port = this.bridge.attach(this, `vif${this.domid}.${this.devid}`);
    // Requests may already be waiting (a reconnecting frontend): serve them now.
    for (const queue of this.queues) queueMicrotask(() => queue.serveTx());
  }

  /** Unbinds the channels, unmaps the rings, leaves the bridge (Linux xenvif_disconnect_data). */
  disconnect(): void {
    this.port?.detach();
    this.port = null;
    for (const queue of this.queues) {
      queue.stopped = true;
      queue.dropRx();
    }
    this.queues.length = 0;
    this.events?.close();
    this.events = null;
    for (const mapping of this.mappings) {
      try {
        this.host.grants.unmap(mapping);
      } catch {
        // The frontend's domain is gone: Xen already dropped the mapping with it.
      }
    }
    this.mappings.length = 0;
    this.multicast.clear();
  }

  get connected(): boolean {
    return this.events !== null;
  }

  get queueCount(): number {
    return this.queues.length;
  }

  /** BridgeSink: a frame for this guest. */
  receive(frame: EthernetFrame): void {
    if (this.disabled || this.queues.length === 0) return;
    let delivered = frame;
    const data = frame.data;
    if (frame.gso !== null) {
      const ok =
        this.features.sg &&
        (frame.gso.type === NetifGsoType.TCPV4 ? this.features.gsoTcpv4 : this.features.gsoTcpv6);
      if (!ok) {
        // The frontend cannot take this super-frame: segment it in software, as Linux's stack
        // does for a device without that GSO feature (skb_gso_segment).
        const segments = segmentTcp(data, frame.gso.size);
        if (segments === null) {
          this.stats.rxDropped++;
          return;
        }
        for (const segment of segments)
          this.receive({ data: segment, checksumPartial: false, dataValidated: true, gso: null });
        return;
      }
    } else if (data.length > PAGE_SIZE && !this.features.sg) {
      this.stats.rxDropped++;
      return;
    }
    if (
      this.features.multicastControl &&
      isGroupMac(data, 0) &&
      macKey(data, 0) !== 0xffffffffffff &&
      !this.multicast.has(macKey(data, 0))
    ) {
      this.stats.rxDropped++;
      return;
    }
    if (frame.checksumPartial && !(this.features.ipCsum && this.features.ipv6Csum)) {
      // The frontend cannot take a partial checksum of this family: complete it here.
      const isIpv6 = data.length > 13 && data[12] === 0x86 && data[13] === 0xdd;
      if (isIpv6 ? !this.features.ipv6Csum : !this.features.ipCsum) {
        const copy = data.slice();
        completeChecksum(copy);
        delivered = { data: copy, checksumPartial: false, dataValidated: true, gso: frame.gso };
      }
    }
    const queue = this.queues[this.queues.length === 1 ? 0 : flowHash(data) % this.queues.length];
    if (!queue.enqueue(delivered)) this.stats.rxDropped++;
  }

  /** @internal Hands a frame the guest sent to the bridge. */
  transmit(frame: EthernetFrame): void {
    this.port?.send(frame);
  }

  /** @internal */
  notify(localPort: EventChannelPort): void {
    try {
      this.events?.notify(localPort);
    } catch (error) {
      // The frontend closed its end: Xen drops the notification, so do we.
      this.debug(`notify failed: ${(error as Error).message}`);
    }
  }

  /**
   * @internal xenvif_fatal_tx_err: the frontend broke the protocol; stop serving this vif
   * (its rings stay mapped until the frontend or toolstack disconnects it).
   */
  fatal(reason: string): void {
    if (this.disabled) return;
    this.disabled = true;
    this.fatalReason = reason;
    this.log(`vif${this.domid}.${this.devid}: ${reason}; fatal error, disabling device`);
    this.port?.detach();
    this.port = null;
    for (const queue of this.queues) queue.dropRx();
  }

  /** @internal */
  debug(line: string): void {
    this.log(`vif${this.domid}.${this.devid}: ${line}`);
  }

  /** @internal xenvif_mcast_add */
  multicastAdd(address: Uint8Array): boolean {
    if (this.multicast.size >= MCAST_MAX) return false;
    this.multicast.add(macKey(address, 0));
    return true;
  }

  /** @internal xenvif_mcast_del */
  multicastDelete(address: Uint8Array): void {
    this.multicast.delete(macKey(address, 0));
  }

  /** Registered multicast groups (request-multicast-control). */
  get multicastCount(): number {
    return this.multicast.size;
  }

  /** Frames waiting for rx buffers, over all queues. */
  get pendingRx(): number {
    let pending = 0;
    for (const queue of this.queues) pending += queue.pendingRx;
    return pending;
  }
}

/** Spreads flows over rx queues: FNV-1a over the IPv4 addresses and L4 ports when present. */
function flowHash(data: Uint8Array): number {
  let hash = 0x811c9dc5;
  const end = Math.min(data.length, 38);
  for (let i = 26; i < end; i++) hash = Math.imul(hash ^ data[i], 0x01000193);
  return hash >>> 0;
}
