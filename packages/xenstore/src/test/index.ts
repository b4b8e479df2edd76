/**
 * Test helpers for packages that talk to xenstore through a ring page: a guest-side frontend
 * that drives `struct xenstore_domain_interface` with the index arithmetic and notification
 * rules of Linux drivers/xen/xenbus/xenbus_comms.c (xb_write, xb_read, check_indexes,
 * get_output_chunk, get_input_chunk), reimplemented here in TypeScript.
 */
import { XsType } from "@kumo/abi";
import type { Xenstored } from "../daemon";
import { errorCode, XenstoreError } from "../errors";
import { RingLayout, RingTransport } from "../ring-transport";
import type { XsMessage } from "../wire";
import { bytesToString, encodeMessage, MessageParser, nulTerminated, splitStrings } from "../wire";

const RING_SIZE = 1024;
const MASK = RING_SIZE - 1;
const REQ_CONS = 0;
const REQ_PROD = 1;
const RSP_CONS = 2;
const RSP_PROD = 3;

export interface XenbusFrontendOptions {
  /**
   * Largest number of bytes one xb_write call copies (default: no limit). Small values make
   * messages arrive at the daemon in pieces, across notifications and the ring wrap.
   */
  writeChunk?: number;
  /** Largest number of bytes one xb_read call copies (default: no limit). */
  readChunk?: number;
}

/** Counters of what the frontend did, for assertions about the notification protocol. */
export interface XenbusFrontendStats {
  notificationsSent: number;
  eventsReceived: number;
  bytesWritten: number;
  bytesRead: number;
}

/**
 * A guest's xenbus on one ring page. `notifyBackend` is the event channel send
 * (notify_remote_via_evtchn); the host calls `onEvent` when the daemon notifies the guest.
 */
export class XenbusFrontend {
  readonly stats: XenbusFrontendStats = {
    notificationsSent: 0,
    eventsReceived: 0,
    bytesWritten: 0,
    bytesRead: 0,
  };
  /** Watch events received, in order. */
  readonly watchEvents: { path: string; token: string }[] = [];
  /** Set when the frontend saw corrupt indices (Linux resets the ring and fails with -EIO). */
  ioError = false;
  private readonly indices: Uint32Array;
  private readonly outgoing: Uint8Array[] = [];
  private outgoingOffset = 0;
  private readonly parser = new MessageParser();
  private readonly pending = new Map<number, (message: XsMessage) => void>();
  private nextRequestId = 1;
  private readonly scratch = new Uint8Array(RING_SIZE);

  constructor(
    readonly page: Uint8Array,
    private readonly notifyBackend: () => void,
    private readonly options: XenbusFrontendOptions = {},
  ) {
    this.indices = new Uint32Array(page.buffer, page.byteOffset + RingLayout.REQ_CONS, 4);
  }

  /** Queues raw bytes for the request ring (tests use it to send garbage). */
  sendRaw(bytes: Uint8Array): void {
    this.outgoing.push(bytes);
    this.pumpWrites();
  }

  /** Sends one request and resolves with the reply message (XS_ERROR included). */
  request(type: number, payload: Uint8Array, transactionId = 0): Promise<XsMessage> {
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      this.pending.set(requestId, resolve);
      this.sendRaw(encodeMessage(type, requestId, transactionId, payload));
    });
  }

  /** Like `request`, but returns the reply's strings and rejects on XS_ERROR. */
  async call(type: number, transactionId: number, ...args: (string | Uint8Array)[]) {
    const reply = await this.request(type, nulTerminated(...args), transactionId);
    if (reply.type === XsType.ERROR) {
      throw new XenstoreError(errorCode(bytesToString(reply.payload).replace(/\0$/, "")));
    }
    return reply;
  }

  /** XS_READ as Linux's xenbus_read: the value has no terminating NUL. */
  async read(path: string, transactionId = 0): Promise<string> {
    return bytesToString((await this.call(XsType.READ, transactionId, path)).payload);
  }

  /** XS_WRITE as Linux's xenbus_write: path with NUL, then the value without one. */
  async write(path: string, value: string, transactionId = 0): Promise<void> {
    const body = new TextEncoder().encode(value);
    const head = nulTerminated(path);
    const payload = new Uint8Array(head.length + body.length);
    payload.set(head);
    payload.set(body, head.length);
    const reply = await this.request(XsType.WRITE, payload, transactionId);
    if (reply.type === XsType.ERROR) {
      throw new XenstoreError(errorCode(bytesToString(reply.payload).replace(/\0$/, "")));
    }
  }

  async directory(path: string, transactionId = 0): Promise<string[]> {
    return splitStrings((await this.call(XsType.DIRECTORY, transactionId, path)).payload, -1) ?? [];
  }

  /** The event channel fired: read replies, then continue writing (xenbus_thread / wake_waiting). */
  onEvent(): void {
    this.stats.eventsReceived++;
    this.pumpReads();
    this.pumpWrites();
  }

  /** Bytes still waiting for room in the request ring. */
  get backlog(): number {
    let total = 0;
    for (const chunk of this.outgoing) total += chunk.length;
    return total - this.outgoingOffset;
  }

  private pumpWrites(): void {
    while (this.outgoing.length > 0 && !this.ioError) {
      const head = this.outgoing[0];
      const written = this.xbWrite(head.subarray(this.outgoingOffset));
      if (written <= 0) return;
      this.outgoingOffset += written;
      if (this.outgoingOffset === head.length) {
        this.outgoing.shift();
        this.outgoingOffset = 0;
      }
    }
  }

  private pumpReads(): void {
    for (;;) {
      const read = this.xbRead(this.scratch);
      if (read <= 0) return;
      this.parser.push(this.scratch.subarray(0, read), (message) => this.deliver(message));
    }
  }

  private deliver(message: XsMessage): void {
    if (message.type === XsType.WATCH_EVENT) {
      const [path, token] = splitStrings(message.payload, -1) ?? [];
      this.watchEvents.push({ path, token });
      return;
    }
    const resolve = this.pending.get(message.requestId);
    this.pending.delete(message.requestId);
    resolve?.({ ...message, payload: message.payload.slice() });
  }

  /** Linux xenbus_comms.c check_indexes. */
  private static validIndexes(cons: number, prod: number): boolean {
    return (prod - cons) >>> 0 <= RING_SIZE;
  }

  /** Linux xb_write: copy what fits, publish req_prod, notify if the daemon had caught up. */
  private xbWrite(data: Uint8Array): number {
    let bytes = 0;
    let length = Math.min(data.length, this.options.writeChunk ?? data.length);
    while (length > 0) {
      const cons = Atomics.load(this.indices, REQ_CONS);
      const prod = Atomics.load(this.indices, REQ_PROD);
      if (!XenbusFrontend.validIndexes(cons, prod)) {
        Atomics.store(this.indices, REQ_CONS, 0);
        Atomics.store(this.indices, REQ_PROD, 0);
        this.ioError = true;
        return -1;
      }
      // get_output_chunk: up to the end of the ring, and no more than the free space.
      let available = RING_SIZE - (prod & MASK);
      const free = RING_SIZE - ((prod - cons) >>> 0);
      if (free < available) available = free;
      if (available === 0) return bytes; // ring full: wait for the daemon's event
      if (available > length) available = length;
      this.page.set(data.subarray(bytes, bytes + available), RingLayout.REQ + (prod & MASK));
      bytes += available;
      length -= available;
      this.stats.bytesWritten += available;
      Atomics.store(this.indices, REQ_PROD, (prod + available) >>> 0);
      // "Implies mb(): other side will see the updated producer." Linux compares with <=.
      if (prod <= Atomics.load(this.indices, REQ_CONS)) {
        this.stats.notificationsSent++;
        this.notifyBackend();
      }
    }
    return bytes;
  }

  /** Linux xb_read: copy what is there, publish rsp_cons, notify if the ring had been full. */
  private xbRead(into: Uint8Array): number {
    let bytes = 0;
    let length = Math.min(into.length, this.options.readChunk ?? into.length);
    while (length > 0) {
      const cons = Atomics.load(this.indices, RSP_CONS);
      const prod = Atomics.load(this.indices, RSP_PROD);
      if (cons === prod) return bytes;
      if (!XenbusFrontend.validIndexes(cons, prod)) {
        Atomics.store(this.indices, RSP_CONS, 0);
        Atomics.store(this.indices, RSP_PROD, 0);
        this.ioError = true;
        return -1;
      }
      // get_input_chunk: up to the end of the ring, and no more than is available.
      let available = RING_SIZE - (cons & MASK);
      if ((prod - cons) >>> 0 < available) available = (prod - cons) >>> 0;
      if (available > length) available = length;
      const start = RingLayout.RSP + (cons & MASK);
      into.set(this.page.subarray(start, start + available), bytes);
      bytes += available;
      length -= available;
      this.stats.bytesRead += available;
      Atomics.store(this.indices, RSP_CONS, (cons + available) >>> 0);
      if ((Atomics.load(this.indices, RSP_PROD) - cons) >>> 0 >= RING_SIZE) {
        this.stats.notificationsSent++;
        this.notifyBackend();
      }
    }
    return bytes;
  }
}

export interface RingPair {
  page: Uint8Array;
  frontend: XenbusFrontend;
  transport: RingTransport;
  /** Notifications the daemon sent to the guest. */
  guestEvents: () => number;
}

/**
 * Connects a simulated guest of `domid` to `daemon` through a fresh ring page. Event-channel
 * notifications are delivered asynchronously (microtasks), as an interrupt would be.
 */
export function createRingPair(
  daemon: Xenstored,
  domid: number,
  options: XenbusFrontendOptions = {},
  page = new Uint8Array(4096),
): RingPair {
  let transport: RingTransport | undefined;
  let events = 0;
  let frontend: XenbusFrontend | undefined;
  frontend = new XenbusFrontend(page, () => queueMicrotask(() => transport?.kick()), options);
  transport = new RingTransport(daemon, domid, {
    page,
    notify: () => {
      events++;
      queueMicrotask(() => frontend?.onEvent());
    },
  });
  return { page, frontend, transport, guestEvents: () => events };
}
