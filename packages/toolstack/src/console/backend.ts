/**
 * The PV console backend: what xenconsoled does for each guest's hvc0.
 * It serves the `xencons_interface` ring page (Xen public io/console.h;
 * xen-abi.md 6.3): the guest writes to out[] and advances out_prod, the
 * backend consumes and advances out_cons; keyboard input goes the other way
 * through in[]. Each side notifies the other over an event channel.
 *
 * The backend never touches guest memory by itself: it gets the ring page
 * and the event channel through a `ConsoleChannel`, which the toolstack
 * builds from hypervisor-core's host interface (a mapped frame and an
 * interdomain port), as a dom0 daemon would.
 *
 * Guest-written indices are read once per pass and checked: a producer
 * more than a ring's size ahead of the consumer is a broken or hostile
 * guest, and the backend stops serving it (xenconsoled's
 * "domain_handle_broken_console"), as Linux's frontend itself BUGs on it.
 */

/** `struct xencons_interface` layout (Xen public io/console.h). */
export const XenconsLayout = {
  in: 0,
  inSize: 1024,
  out: 1024,
  outSize: 2048,
  inCons: 3072,
  inProd: 3076,
  outCons: 3080,
  outProd: 3084,
  size: 3088,
} as const;

/** The ring page and event channel of one console, as the host interface provides them. */
export interface ConsoleChannel {
  /** The console page (at least `XenconsLayout.size` bytes), mapped writable. */
  readonly page: Uint8Array;
  /** Notifies the guest's end of the event channel. */
  notify(): void;
  /** Sets the function called when the guest notifies (coalesced, on the host event loop). */
  onNotify(handler: () => void): void;
  /** Releases the mapping and the port. */
  close?(): void;
}

export type ConsoleOutputListener = (bytes: Uint8Array) => void;

/** Saved state of a console backend (named and versioned, docs/style.md). */
export interface ConsoleBackendState {
  readonly kind: "kumo.console-backend";
  readonly version: 1;
  /** Input accepted but not yet in the guest's ring. */
  readonly pendingInput: number[];
  readonly broken: boolean;
}

export class ConsoleBackend {
  private readonly view: DataView;
  private readonly listeners = new Set<ConsoleOutputListener>();
  private pending: number[] = [];
  private brokenReason: string | undefined;
  private closed = false;
  /** Bytes the guest wrote, in total (a statistic for `kumo info`). */
  outputBytes = 0;

  constructor(private readonly channel: ConsoleChannel) {
    if (channel.page.length < XenconsLayout.size) {
      throw new RangeError(
        `console page of ${channel.page.length} bytes is smaller than xencons_interface`,
      );
    }
    this.view = new DataView(channel.page.buffer, channel.page.byteOffset, channel.page.byteLength);
    channel.onNotify(() => this.service());
  }

  /** Why the backend stopped serving the guest, if it did. */
  get broken(): string | undefined {
    return this.brokenReason;
  }

  /** Subscribes to what the guest writes; returns the unsubscribe function. */
  onOutput(listener: ConsoleOutputListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Queues keyboard input for the guest and pushes what fits into in[]. */
  write(input: Uint8Array | string): void {
    if (this.closed || this.brokenReason !== undefined) return;
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    for (const byte of bytes) this.pending.push(byte);
    this.pushInput();
  }

  /**
   * Serves the ring: consumes the guest's output, then moves pending input.
   * Called on every notification; safe to call at any time.
   */
  service(): void {
    if (this.closed || this.brokenReason !== undefined) return;
    this.pullOutput();
    this.pushInput();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.channel.close?.();
  }

  state(): ConsoleBackendState {
    return {
      kind: "kumo.console-backend",
      version: 1,
      pendingInput: [...this.pending],
      broken: this.brokenReason !== undefined,
    };
  }

  restoreState(state: ConsoleBackendState): void {
    if (state.kind !== "kumo.console-backend" || state.version !== 1) {
      throw new TypeError(`cannot restore console state ${state.kind} version ${state.version}`);
    }
    this.pending = [...state.pendingInput];
    this.brokenReason = state.broken ? "restored as broken" : undefined;
  }

  private markBroken(reason: string): void {
    this.brokenReason = reason;
  }

  private pullOutput(): void {
    const view = this.view;
    const page = this.channel.page;
    // Read each guest-written index once (the guest may change it at any time).
    const consumer = view.getUint32(XenconsLayout.outCons, true);
    const producer = view.getUint32(XenconsLayout.outProd, true);
    const available = (producer - consumer) >>> 0;
    if (available === 0) return;
    if (available > XenconsLayout.outSize) {
      this.markBroken(
        `guest console ring overflow: out_prod ${producer} is ${available} bytes ahead of out_cons ${consumer} (ring of ${XenconsLayout.outSize})`,
      );
      return;
    }
    const bytes = new Uint8Array(available);
    for (let i = 0; i < available; i++) {
      bytes[i] = page[XenconsLayout.out + ((consumer + i) & (XenconsLayout.outSize - 1))];
    }
    // The data is copied before out_cons moves, so the guest cannot overwrite it under us.
    view.setUint32(XenconsLayout.outCons, producer, true);
    this.channel.notify();
    this.outputBytes += available;
    for (const listener of this.listeners) listener(bytes);
  }

  private pushInput(): void {
    if (this.pending.length === 0) return;
    const view = this.view;
    const page = this.channel.page;
    const consumer = view.getUint32(XenconsLayout.inCons, true);
    let producer = view.getUint32(XenconsLayout.inProd, true);
    const used = (producer - consumer) >>> 0;
    if (used > XenconsLayout.inSize) {
      this.markBroken(
        `guest console ring corrupt: in_prod ${producer} and in_cons ${consumer} are ${used} apart`,
      );
      return;
    }
    const room = XenconsLayout.inSize - used;
    const count = Math.min(room, this.pending.length);
    if (count === 0) return;
    for (let i = 0; i < count; i++) {
      page[XenconsLayout.in + (producer & (XenconsLayout.inSize - 1))] = this.pending[i];
      producer = (producer + 1) >>> 0;
    }
    this.pending.splice(0, count);
    // Data before index (Xen public io/console.h: the producer publishes with a write barrier).
    view.setUint32(XenconsLayout.inProd, producer, true);
    this.channel.notify();
  }
}
