/**
 * Test helpers of @kumo/toolstack (exported as "@kumo/toolstack/test"): a
 * console page shared by a backend and a simulated frontend, and that
 * frontend, written the way Linux's drivers/tty/hvc/hvc_xen.c drives the
 * ring (__write_console, domU_read_console).
 */
import { type ConsoleChannel, XenconsLayout } from "../console/backend";

/**
 * A console page and event channel between a backend and a frontend in the
 * same process. Notifications are delivered as microtasks and coalesced, as
 * the host event loop delivers event-channel upcalls.
 */
export interface LoopbackConsole {
  readonly page: Uint8Array;
  /** The backend's end. */
  readonly backend: ConsoleChannel;
  /** The frontend's end: notify the backend; be told when the backend notifies. */
  notifyBackend(): void;
  onBackendNotify(handler: () => void): void;
  /** How many notifications each side sent. */
  readonly counts: { toBackend: number; toFrontend: number };
  /** Resolves once every notification queued so far has been delivered. */
  settle(): Promise<void>;
}

export function createLoopbackConsole(): LoopbackConsole {
  const page = new Uint8Array(4096);
  let backendHandler: () => void = () => {};
  let frontendHandler: () => void = () => {};
  let backendQueued = false;
  let frontendQueued = false;
  const counts = { toBackend: 0, toFrontend: 0 };
  return {
    page,
    counts,
    backend: {
      page,
      notify() {
        counts.toFrontend++;
        if (frontendQueued) return;
        frontendQueued = true;
        queueMicrotask(() => {
          frontendQueued = false;
          frontendHandler();
        });
      },
      onNotify(handler) {
        backendHandler = handler;
      },
    },
    notifyBackend() {
      counts.toBackend++;
      if (backendQueued) return;
      backendQueued = true;
      queueMicrotask(() => {
        backendQueued = false;
        backendHandler();
      });
    },
    onBackendNotify(handler) {
      frontendHandler = handler;
    },
    async settle() {
      for (let i = 0; i < 8; i++) await Promise.resolve();
    },
  };
}

/**
 * The guest side of hvc0 as Linux 6.1's hvc_xen.c implements it. Indices
 * are free-running u32s, masked by the ring size (MASK_XENCONS_IDX).
 */
export class SimulatedHvcFrontend {
  private readonly view: DataView;
  /** Input the frontend has read (what the tty layer would get). */
  readonly received: number[] = [];
  /** SCHEDOP_yield calls made while out[] was full. */
  yields = 0;

  constructor(
    private readonly loopback: LoopbackConsole,
    private readonly yieldToBackend: () => Promise<void> = () => loopback.settle(),
  ) {
    this.view = new DataView(
      loopback.page.buffer,
      loopback.page.byteOffset,
      loopback.page.byteLength,
    );
    // hvc_xen's interrupt handler: the hvc core polls domU_read_console.
    loopback.onBackendNotify(() => this.readConsole());
  }

  /** __write_console: copies what fits into out[], publishes out_prod, notifies. Returns bytes sent. */
  writeOnce(data: Uint8Array): number {
    const page = this.loopback.page;
    const consumer = this.view.getUint32(XenconsLayout.outCons, true);
    let producer = this.view.getUint32(XenconsLayout.outProd, true);
    if ((producer - consumer) >>> 0 > XenconsLayout.outSize)
      throw new Error("BUG_ON: console ring overrun");
    let sent = 0;
    while (sent < data.length && (producer - consumer) >>> 0 < XenconsLayout.outSize) {
      page[XenconsLayout.out + (producer & (XenconsLayout.outSize - 1))] = data[sent++];
      producer = (producer + 1) >>> 0;
    }
    this.view.setUint32(XenconsLayout.outProd, producer, true);
    if (sent > 0) this.loopback.notifyBackend();
    return sent;
  }

  /** domU_write_console: loops, yielding while the ring is full. */
  async write(data: Uint8Array | string): Promise<void> {
    let bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    while (bytes.length > 0) {
      const sent = this.writeOnce(bytes);
      bytes = bytes.subarray(sent);
      if (bytes.length > 0) {
        this.yields++;
        await this.yieldToBackend();
      }
    }
  }

  /** domU_read_console: takes what is in in[], publishes in_cons, notifies the backend. */
  readConsole(): number {
    const page = this.loopback.page;
    let consumer = this.view.getUint32(XenconsLayout.inCons, true);
    const producer = this.view.getUint32(XenconsLayout.inProd, true);
    if ((producer - consumer) >>> 0 > XenconsLayout.inSize)
      throw new Error("BUG_ON: console ring overrun");
    let count = 0;
    while (consumer !== producer) {
      this.received.push(page[XenconsLayout.in + (consumer & (XenconsLayout.inSize - 1))]);
      consumer = (consumer + 1) >>> 0;
      count++;
    }
    this.view.setUint32(XenconsLayout.inCons, consumer, true);
    if (count > 0) this.loopback.notifyBackend();
    return count;
  }

  /** Sets both rings' indices, as a guest that starts from arbitrary values (or a hostile one) may. */
  setIndices(indices: {
    inCons?: number;
    inProd?: number;
    outCons?: number;
    outProd?: number;
  }): void {
    for (const [key, value] of Object.entries(indices)) {
      const offset = XenconsLayout[key as "inCons" | "inProd" | "outCons" | "outProd"];
      this.view.setUint32(offset, value >>> 0, true);
    }
  }
}
