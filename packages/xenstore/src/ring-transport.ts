import { XenstoreConst } from "@kumo/abi";
import type { ConnectionSink, Xenstored, XsConnection } from "./daemon";

/**
 * Offsets in `struct xenstore_domain_interface` (Xen public io/xs_wire.h): the request ring
 * (guest -> daemon), the response ring (daemon -> guest), then free-running u32 indices and the
 * reconnection/error fields.
 */
export const RingLayout = {
  REQ: 0,
  RSP: 1024,
  REQ_CONS: 2048,
  REQ_PROD: 2052,
  RSP_CONS: 2056,
  RSP_PROD: 2060,
  SERVER_FEATURES: 2064,
  CONNECTION: 2068,
  ERROR: 2072,
  /** Bytes of the structure that must be present in the page. */
  SIZE: 2076,
} as const;

const RING_SIZE = XenstoreConst.RING_SIZE;
const MASK = RING_SIZE - 1;
// Indices as u32 slots of the Uint32Array laid over the page from REQ_CONS.
const REQ_CONS = 0;
const REQ_PROD = 1;
const RSP_CONS = 2;
const RSP_PROD = 3;
const SERVER_FEATURES = 4;
const CONNECTION = 5;
const ERROR = 6;

/**
 * What a ring transport needs from the host: the guest's store page and its event channel, the
 * shape of a dom0 xenstored's libxenforeignmemory mapping and libxenevtchn port. The toolstack
 * wires these to `@kumo/hypervisor-core`'s host interface.
 */
export interface RingIo {
  /** The mapped store page (at least `RingLayout.SIZE` bytes, 4-byte aligned). */
  page: Uint8Array;
  /** Sends an event to the guest on the store channel. */
  notify(): void;
  /**
   * Optional: registers the handler to run when the guest notifies the channel, returning an
   * unsubscribe function. Without it the host calls `RingTransport.kick()` itself.
   */
  subscribe?(handler: () => void): () => void;
}

export interface RingTransportOptions {
  /**
   * Input bytes handled per kick before the rest is deferred with `schedule` (bounded work per
   * notification, so one guest cannot stall the event loop). Default 16 KiB.
   */
  budgetBytes?: number;
  /** Defers leftover work; default `setTimeout(callback, 0)`. */
  schedule?(callback: () => void): void;
}

/**
 * Serves one domain's xenstore ring page for the daemon, following the producer/consumer rules
 * of Xen public io/xs_wire.h and Linux drivers/xen/xenbus/xenbus_comms.c: indices are
 * free-running u32 with byte i at `i & 1023`; `prod - cons > 1024` means corrupt indices. The
 * guest notifies after producing only if we had consumed everything, and after consuming only if
 * the response ring was full, so every kick drains all input and output and re-checks.
 */
export class RingTransport {
  readonly connection: XsConnection;
  private readonly indices: Uint32Array;
  private readonly page: Uint8Array;
  private readonly output: Uint8Array[] = [];
  private outputOffset = 0;
  private readonly scratch = new Uint8Array(RING_SIZE);
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private servicing = false;
  private deferred = false;
  private readonly budget: number;
  private readonly schedule: (callback: () => void) => void;

  constructor(
    daemon: Xenstored,
    readonly domid: number,
    private readonly io: RingIo,
    options: RingTransportOptions = {},
  ) {
    if (io.page.length < RingLayout.SIZE || (io.page.byteOffset & 3) !== 0) {
      throw new RangeError(
        `xenstore ring page must be at least ${RingLayout.SIZE} bytes and 4-byte aligned (got ${io.page.length} bytes at offset ${io.page.byteOffset})`,
      );
    }
    this.page = io.page;
    this.indices = new Uint32Array(io.page.buffer, io.page.byteOffset + RingLayout.REQ_CONS, 7);
    this.budget = options.budgetBytes ?? 16 * 1024;
    this.schedule = options.schedule ?? ((callback) => setTimeout(callback, 0));
    const sink: ConnectionSink = {
      send: (message) => {
        this.output.push(message);
        if (!this.servicing) this.kick();
      },
      close: () => this.halt(),
      queuedMessages: () => this.output.length,
    };
    // Xen public io/xs_wire.h: we support the error field; "connection" 0 = connected (Linux
    // waits for it before talking).
    Atomics.store(
      this.indices,
      SERVER_FEATURES,
      Atomics.load(this.indices, SERVER_FEATURES) | XenstoreConst.SERVER_FEATURE_ERROR,
    );
    Atomics.store(this.indices, CONNECTION, XenstoreConst.CONNECTED);
    this.connection = daemon.attachDomain(domid, sink);
    this.unsubscribe = io.subscribe?.(() => this.kick());
    this.kick();
  }

  /** The guest notified the store channel (or the host wants the ring rechecked). */
  kick(): void {
    if (this.stopped || this.servicing) return;
    this.servicing = true;
    let notify = false;
    try {
      let budget = this.budget;
      for (;;) {
        let progress = false;
        if (this.flushOutput()) progress = notify = true;
        if (this.stopped) break;
        if (budget <= 0) {
          this.defer();
          break;
        }
        if (this.connection.holdsInput) {
          if (this.connection.resume()) progress = true;
        } else if (this.connection.accepting) {
          const taken = this.readInput();
          if (taken > 0) {
            progress = notify = true;
            budget -= taken;
          }
        }
        if (this.stopped || !progress) break;
      }
    } finally {
      this.servicing = false;
    }
    // Notify after producing replies and after consuming requests (Xen xenstored domain.c
    // notifies on both; spurious events are harmless to Linux's xenbus).
    if (notify && !this.stopped) this.io.notify();
  }

  private defer(): void {
    if (this.deferred) return;
    this.deferred = true;
    this.schedule(() => {
      this.deferred = false;
      this.kick();
    });
  }

  /** Messages waiting for room in the response ring. */
  get queuedMessages(): number {
    return this.output.length;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Stops serving the ring from the host side; the daemon drops the connection. */
  stop(): void {
    if (this.stopped) return;
    this.halt();
    if (!this.connection.closed) this.connection.close();
  }

  private halt(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.output.length = 0;
  }

  private corrupt(code: number): void {
    // Xen public io/xs_wire.h: the server reports why it stopped in `error` and stops
    // processing the ring; other domains are unaffected.
    Atomics.store(this.indices, ERROR, code);
    this.stop();
  }

  /** Copies available request bytes into the connection; returns how many were taken. */
  private readInput(): number {
    const cons = Atomics.load(this.indices, REQ_CONS);
    const prod = Atomics.load(this.indices, REQ_PROD);
    const available = (prod - cons) >>> 0;
    if (available === 0) return 0;
    if (available > RING_SIZE) {
      this.corrupt(XenstoreConst.ERROR_RINGIDX);
      return 0;
    }
    const start = cons & MASK;
    const first = Math.min(available, RING_SIZE - start);
    this.scratch.set(this.page.subarray(RingLayout.REQ + start, RingLayout.REQ + start + first));
    if (first < available) {
      this.scratch.set(
        this.page.subarray(RingLayout.REQ, RingLayout.REQ + available - first),
        first,
      );
    }
    // Atomics.store is a full barrier: the bytes are copied before the guest sees them consumed.
    Atomics.store(this.indices, REQ_CONS, (cons + available) >>> 0);
    this.connection.receive(this.scratch.subarray(0, available));
    if (this.connection.protocolError)
      Atomics.store(this.indices, ERROR, XenstoreConst.ERROR_PROTO);
    return available;
  }

  /** Writes queued output into the response ring; returns true if anything was written. */
  private flushOutput(): boolean {
    if (this.output.length === 0) return false;
    const cons = Atomics.load(this.indices, RSP_CONS);
    let prod = Atomics.load(this.indices, RSP_PROD);
    const used = (prod - cons) >>> 0;
    if (used > RING_SIZE) {
      this.corrupt(XenstoreConst.ERROR_RINGIDX);
      return false;
    }
    let space = RING_SIZE - used;
    const startProd = prod;
    while (space > 0 && this.output.length > 0) {
      const message = this.output[0];
      const take = Math.min(space, message.length - this.outputOffset);
      for (let index = 0; index < take; index++) {
        this.page[RingLayout.RSP + ((prod + index) & MASK)] = message[this.outputOffset + index];
      }
      prod = (prod + take) >>> 0;
      space -= take;
      this.outputOffset += take;
      if (this.outputOffset === message.length) {
        this.output.shift();
        this.outputOffset = 0;
      }
    }
    if (prod === startProd) return false;
    // Data before index (Linux xb_read reads rsp_prod, then the bytes after a read barrier).
    Atomics.store(this.indices, RSP_PROD, prod);
    return true;
  }
}
