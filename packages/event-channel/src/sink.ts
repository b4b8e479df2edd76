import { abiLayouts } from "@kumo/abi";

/**
 * Where a domain's events land. A guest domain uses the 2-level ABI in its
 * shared_info and vcpu_info pages ({@link TwoLevelEvents}); domain 0's host
 * side calls handlers on the host event loop ({@link CallbackEvents}).
 */
export interface EventSink {
  /** Sets `port` pending and notifies `vcpu` if the port is unmasked (Xen evtchn_port_set_pending). */
  raise(port: number, vcpu: number): void;
  /** EVTCHNOP_unmask (Xen evtchn_port_unmask); `vcpu` is the port's notify vCPU. */
  unmask(port: number, vcpu: number): void;
  /** Clears the pending bit, as Xen does when a port is freed (evtchn_free). */
  clearPending(port: number): void;
  isPending(port: number): boolean;
  isMasked(port: number): boolean;
}

/** Word size and offsets of the 2-level arrays for one guest ABI (Xen public xen.h struct shared_info). */
export interface TwoLevelLayout {
  /** Bits per evtchn_pending word: 64 on x86_64 and arm64, 32 on x86_32. */
  readonly wordBits: 32 | 64;
  /** Offset of evtchn_pending[] in shared_info. */
  readonly pendingOffset: number;
  /** Offset of evtchn_mask[] in shared_info. */
  readonly maskOffset: number;
  /** Offset of evtchn_pending_sel in vcpu_info. */
  readonly selectorOffset: number;
}

function twoLevelLayout(abi: "x86_64" | "x86_32" | "arm64"): TwoLevelLayout {
  const layouts = abiLayouts(abi);
  const shared = layouts.shared_info.offsets as Record<string, number>;
  const vcpuInfo = layouts.vcpu_info.offsets as Record<string, number>;
  return {
    wordBits: layouts.eventWordBits as 32 | 64,
    pendingOffset: shared.evtchn_pending,
    maskOffset: shared.evtchn_mask,
    selectorOffset: vcpuInfo.evtchn_pending_sel,
  };
}

/** The 2-level layouts per guest ABI, from `@kumo/abi`'s header-checked struct layouts (xen-abi.md 3.1). */
export const TWO_LEVEL_LAYOUTS = {
  x64: twoLevelLayout("x86_64"),
  x32: twoLevelLayout("x86_32"),
  a64: twoLevelLayout("arm64"),
} as const;

/** Ports the 2-level ABI can name: wordBits squared (Xen event_2l.c EVTCHN_2L_NR_CHANNELS). */
export function twoLevelPortLimit(layout: TwoLevelLayout): number {
  return layout.wordBits * layout.wordBits;
}

/** The byte offset of `evtchn_upcall_pending` in vcpu_info (Xen public xen.h). */
export const UPCALL_PENDING_OFFSET = 0;

/**
 * The 2-level event ABI over a shared_info page and per-vCPU vcpu_info
 * areas. Bitmaps are arrays of little-endian words, so bit p always lives in
 * byte p >> 3 whatever the word size; only the selector index depends on it.
 * Single-threaded today: the read-modify-writes below are atomic with respect
 * to a guest vCPU because vCPUs do not run during a hypercall or host task.
 */
export class TwoLevelEvents implements EventSink {
  /** vcpu_info area of each vCPU: the page holding it and the offset in that page. */
  readonly vcpuInfoPage: (Uint8Array | null)[];
  readonly vcpuInfoOffset: Int32Array;

  constructor(
    public sharedInfo: Uint8Array,
    public layout: TwoLevelLayout,
    vcpuCount: number,
    /** Called when a vCPU's evtchn_upcall_pending went from 0 to 1 (inject the upcall, wake it). */
    private readonly kick: (vcpu: number) => void,
    /** Called for every raised port, masked or not, to wake SCHEDOP_poll waiters (Xen evtchn_port_set_pending). */
    private readonly pollWake: (port: number) => void = () => {},
  ) {
    this.vcpuInfoPage = new Array(vcpuCount).fill(null);
    this.vcpuInfoOffset = new Int32Array(vcpuCount);
  }

  /** Points vCPU `vcpu`'s vcpu_info at `page[offset]` (shared_info slot or a registered area). */
  setVcpuInfo(vcpu: number, page: Uint8Array | null, offset: number): void {
    this.vcpuInfoPage[vcpu] = page;
    this.vcpuInfoOffset[vcpu] = offset;
  }

  raise(port: number, vcpu: number): void {
    const shared = this.sharedInfo;
    const byte = port >>> 3;
    const bit = 1 << (port & 7);
    const pendingAt = this.layout.pendingOffset + byte;
    // Xen event_2l.c evtchn_2l_set_pending: test_and_set pending, stop if it was set.
    if (shared[pendingAt] & bit) return;
    shared[pendingAt] |= bit;
    if (!(shared[this.layout.maskOffset + byte] & bit)) this.markSelector(port, vcpu);
    this.pollWake(port);
  }

  unmask(port: number, vcpu: number): void {
    const shared = this.sharedInfo;
    const byte = port >>> 3;
    const bit = 1 << (port & 7);
    const maskAt = this.layout.maskOffset + byte;
    // Xen event_2l.c evtchn_2l_unmask: test_and_clear mask, then rescan if pending.
    if (!(shared[maskAt] & bit)) return;
    shared[maskAt] &= ~bit;
    if (shared[this.layout.pendingOffset + byte] & bit) this.markSelector(port, vcpu);
  }

  clearPending(port: number): void {
    this.sharedInfo[this.layout.pendingOffset + (port >>> 3)] &= ~(1 << (port & 7));
  }

  isPending(port: number): boolean {
    return (this.sharedInfo[this.layout.pendingOffset + (port >>> 3)] & (1 << (port & 7))) !== 0;
  }

  isMasked(port: number): boolean {
    return (this.sharedInfo[this.layout.maskOffset + (port >>> 3)] & (1 << (port & 7))) !== 0;
  }

  /** Sets the selector bit for the port's word; on 0 -> 1 sets evtchn_upcall_pending and kicks on its 0 -> 1. */
  private markSelector(port: number, vcpu: number): void {
    const page = this.vcpuInfoPage[vcpu];
    if (page === null || page === undefined) return;
    const base = this.vcpuInfoOffset[vcpu];
    const word = Math.floor(port / this.layout.wordBits);
    const selectorAt = base + this.layout.selectorOffset + (word >>> 3);
    const selectorBit = 1 << (word & 7);
    if (page[selectorAt] & selectorBit) return;
    page[selectorAt] |= selectorBit;
    const upcallAt = base + UPCALL_PENDING_OFFSET;
    if (page[upcallAt] === 0) {
      page[upcallAt] = 1;
      this.kick(vcpu);
    }
  }

  /** Forces a full rescan on `vcpu` (Xen register_vcpu_info: every selector bit and upcall_pending set). */
  forceRescan(vcpu: number): void {
    const page = this.vcpuInfoPage[vcpu];
    if (page === null || page === undefined) return;
    const base = this.vcpuInfoOffset[vcpu];
    const selectorBytes = this.layout.wordBits >>> 3;
    page.fill(
      0xff,
      base + this.layout.selectorOffset,
      base + this.layout.selectorOffset + selectorBytes,
    );
    page[base + UPCALL_PENDING_OFFSET] = 1;
    this.kick(vcpu);
  }
}

/**
 * Host-side delivery for domain 0: pending and mask bits in private arrays
 * and one handler per port, called on the host event loop (never inside the
 * guest's hypercall), like a dom0 process reading /dev/xen/evtchn.
 */
export class CallbackEvents implements EventSink {
  private pending: Uint8Array;
  private masked: Uint8Array;
  private readonly handlers: (((port: number) => void) | undefined)[] = [];
  private readonly queue: number[] = [];
  private scheduled = false;

  constructor(
    maxPorts: number,
    /**
     * Runs a task later on the host event loop; default `queueMicrotask`,
     * wrapped: browsers reject it called as a method of another object.
     */
    private readonly defer: (task: () => void) => void = (task) => queueMicrotask(task),
  ) {
    this.pending = new Uint8Array(maxPorts);
    this.masked = new Uint8Array(maxPorts);
  }

  setHandler(port: number, handler: ((port: number) => void) | undefined): void {
    this.handlers[port] = handler;
  }

  raise(port: number, _vcpu: number): void {
    if (this.pending[port]) return;
    this.pending[port] = 1;
    if (this.masked[port]) return;
    this.enqueue(port);
  }

  unmask(port: number, _vcpu: number): void {
    if (!this.masked[port]) return;
    this.masked[port] = 0;
    if (this.pending[port]) this.enqueue(port);
  }

  mask(port: number): void {
    this.masked[port] = 1;
  }

  clearPending(port: number): void {
    this.pending[port] = 0;
  }

  isPending(port: number): boolean {
    return this.pending[port] === 1;
  }

  isMasked(port: number): boolean {
    return this.masked[port] === 1;
  }

  private enqueue(port: number): void {
    this.queue.push(port);
    if (this.scheduled) return;
    this.scheduled = true;
    this.defer(() => this.flush());
  }

  /** Delivers queued notifications: clears pending before the call so a send from inside re-queues. */
  flush(): void {
    this.scheduled = false;
    const ports = this.queue.splice(0, this.queue.length);
    for (const port of ports) {
      if (!this.pending[port] || this.masked[port]) continue;
      this.pending[port] = 0;
      this.handlers[port]?.(port);
    }
  }
}
