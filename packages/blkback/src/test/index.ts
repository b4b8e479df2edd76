/**
 * Test helpers (exported as `@kumo/blkback/test`).
 *
 * `SimulatedBlkfront` drives a blkif ring the way Linux 6.1's
 * drivers/block/xen-blkfront.c does: SHARED_RING_INIT, requests built like
 * blkif_queue_rw_req / blkif_queue_discard_req (INDIRECT above 11 segments
 * when the backend offers it, persistent grants when negotiated), pushed with
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, responses consumed like
 * blkif_interrupt with RING_FINAL_CHECK_FOR_RESPONSES. It works on a real
 * guest domain of @kumo/hypervisor-core (its RAM, grant table and event
 * channel table): nothing here is a mock of the hypervisor.
 *
 * `MemoryXenbusStore` is an in-memory stand-in for a xenstore client
 * (paths, values, watches that fire on a node and its descendants, the
 * first event at registration), used because the package map keeps
 * @kumo/xenstore out of blkback's reach; the toolstack passes a real client.
 */
import { type Abi, abiLayouts, BlkifOp, GrantFlags } from "@kumo/abi";
import type { XenbusStore, XenbusWatchEvent } from "../backend/xenbus-store";

const PAGE_SIZE = 4096;

/** What the simulated frontend needs of its own domain (a hypervisor-core Domain has all of it). */
export interface FrontendDomain {
  readonly domid: number;
  readonly memory: { frame(gfn: number): Uint8Array | null } | null;
  readonly grants: {
    writeEntry(ref: number, granteeDomid: number, gfn: number, flags: number): void;
    entryFlags(ref: number): number;
    readonly nrEntries: number;
    grow(frames: number): boolean;
  } | null;
  readonly events: {
    allocUnbound(remoteDomid: number): number;
    send(port: number): number;
    unmask(port: number): number;
  };
  readonly twoLevel: { isPending(port: number): boolean; clearPending(port: number): void } | null;
}

export interface SimulatedBlkfrontOptions {
  domain: FrontendDomain;
  backendDomid?: number;
  abi?: Abi;
  /** First guest frame of the area the frontend uses (ring page, then data pages). */
  firstGfn?: number;
  /** First grant reference the frontend uses. */
  firstRef?: number;
  /** Data pages in the pool (bounds requests in flight). */
  pages?: number;
  persistent?: boolean;
  /** The backend's feature-max-indirect-segments (0: no INDIRECT); Linux caps at 32 by default. */
  maxIndirectSegments?: number;
  /**
   * ring-page-order: a ring of 2^order pages (blkfront's max_ring_page_order
   * module parameter, capped by the backend's max-ring-page-order), granted
   * as ring-ref0..ring-ref<n-1>. Default 0 (one page, `ring-ref`).
   */
  ringPageOrder?: number;
  /** How long to wait for an event before calling a response lost. */
  timeoutMs?: number;
}

export interface BlkfrontResponse {
  status: number;
  operation: number;
}

interface Page {
  gfn: number;
  ref: number;
}

interface Pending {
  resolve: (response: BlkfrontResponse) => void;
  reject: (error: Error) => void;
  pages: Page[];
}

export class SimulatedBlkfront {
  readonly port: number;
  /** The first ring page's grant (`ring-ref`, or `ring-ref0` of a multi-page ring). */
  readonly ringRef: number;
  readonly ringPageOrder: number;
  readonly ringGfn: number;
  /** Notifications the frontend sent / events it received. */
  notificationsSent = 0;
  eventsReceived = 0;
  /** Grants the backend still held when the frontend revoked them (Linux: "grant still in use"). */
  readonly grantLeaks: number[] = [];
  /** All the ring pages, guest-contiguous (one view spanning 2^order pages). */
  readonly ringPage: Uint8Array;
  private readonly view: DataView;
  private readonly layouts: ReturnType<typeof abiLayouts>;
  private readonly size: number;
  private requestProducerPrivate = 0;
  private responseConsumer = 0;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly freePages: Page[] = [];
  private pageWaiters: (() => void)[] = [];
  private polling = false;
  private readonly backendDomid: number;
  private readonly persistent: boolean;
  private readonly maxIndirect: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: SimulatedBlkfrontOptions) {
    const { domain } = options;
    if (!domain.memory || !domain.grants || !domain.twoLevel)
      throw new Error("the frontend domain needs RAM, a grant table and 2-level events");
    this.backendDomid = options.backendDomid ?? 0;
    this.persistent = options.persistent ?? true;
    this.maxIndirect = options.maxIndirectSegments ?? 0;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.layouts = abiLayouts(options.abi ?? "x86_64");
    this.ringPageOrder = options.ringPageOrder ?? 0;
    const ringPages = 1 << this.ringPageOrder;
    this.size = this.layouts.ringEntries("blkif", ringPages);
    const firstGfn = options.firstGfn ?? 0x200;
    const firstRef = options.firstRef ?? 8;
    const pages = options.pages ?? 256;
    while (domain.grants.nrEntries < firstRef + pages + ringPages) {
      if (!domain.grants.grow(Math.ceil((firstRef + pages + ringPages) / 512)))
        throw new Error("grant table too small");
    }
    this.ringGfn = firstGfn;
    this.ringRef = firstRef;
    const ring = domain.memory.frame(firstGfn);
    if (!ring) throw new Error(`no RAM at gfn ${firstGfn}`);
    // Linux allocates the ring with alloc_pages_exact (virtually contiguous); here consecutive
    // guest frames that are also contiguous in the domain's RAM buffer give one view. The
    // backend still maps each page on its own and must not rely on that.
    for (let i = 1; i < ringPages; i++) {
      const next = domain.memory.frame(firstGfn + i);
      if (
        !next ||
        next.buffer !== ring.buffer ||
        next.byteOffset !== ring.byteOffset + i * PAGE_SIZE
      )
        throw new Error(`ring frames ${firstGfn}..${firstGfn + ringPages - 1} are not contiguous`);
    }
    this.ringPage = new Uint8Array(ring.buffer, ring.byteOffset, ringPages * PAGE_SIZE);
    this.view = new DataView(ring.buffer, ring.byteOffset, ringPages * PAGE_SIZE);
    // SHARED_RING_INIT: indices 0, events 1.
    this.ringPage.fill(0);
    this.view.setUint32(this.layouts.blkif_sring.offsets.req_event, 1, true);
    this.view.setUint32(this.layouts.blkif_sring.offsets.rsp_event, 1, true);
    for (let i = 0; i < ringPages; i++)
      domain.grants.writeEntry(
        this.ringRef + i,
        this.backendDomid,
        firstGfn + i,
        GrantFlags.permit_access,
      );
    for (let i = 0; i < pages; i++) {
      const page = { gfn: firstGfn + ringPages + i, ref: firstRef + ringPages + i };
      // Persistent grants: granted read-write once and kept (blkfront get_free_grants).
      if (this.persistent)
        domain.grants.writeEntry(page.ref, this.backendDomid, page.gfn, GrantFlags.permit_access);
      this.freePages.push(page);
    }
    this.port = domain.events.allocUnbound(this.backendDomid);
    domain.events.unmask(this.port);
  }

  /** The keys blkfront's talk_to_blkback writes (single queue). */
  frontendKeys(): Record<string, string> {
    return {
      ...this.ringKeys(),
      "event-channel": String(this.port),
      protocol: this.layouts.protocol,
      "feature-persistent": this.persistent ? "1" : "0",
    };
  }

  /**
   * The ring's keys as blkfront's write_per_ring_nodes writes them, plus
   * ring-page-order for a multi-page ring (talk_to_blkback).
   */
  ringKeys(): Record<string, string> {
    if (this.ringPageOrder === 0) return { "ring-ref": String(this.ringRef) };
    const keys: Record<string, string> = { "ring-page-order": String(this.ringPageOrder) };
    for (let i = 0; i < 1 << this.ringPageOrder; i++)
      keys[`ring-ref${i}`] = String(this.ringRef + i);
    return keys;
  }

  /** The number of requests the ring holds (io/ring.h __CONST_RING_SIZE). */
  get ringSize(): number {
    return this.size;
  }

  /** The bytes of a data page (to fill before a write or check after a read). */
  page(gfn: number): Uint8Array {
    return this.options.domain.memory!.frame(gfn)!;
  }

  async read(sector: number, sectors: number): Promise<{ status: number; data: Uint8Array }> {
    const pages = await this.takePages(Math.ceil(sectors / 8));
    const data = new Uint8Array(sectors * 512);
    const response = await this.submitData(
      BlkifOp.READ,
      sector,
      sectors,
      pages,
      (page, at, length) => {
        data.set(this.page(page.gfn).subarray(0, length), at);
      },
    );
    return { status: response.status, data };
  }

  /** A write; with `flush`, sent as FLUSH_DISKCACHE with data, as blkfront sends REQ_FUA writes. */
  async write(sector: number, data: Uint8Array, flush = false): Promise<BlkfrontResponse> {
    const sectors = data.length / 512;
    const pages = await this.takePages(Math.ceil(sectors / 8));
    for (let i = 0; i < pages.length; i++) {
      this.page(pages[i].gfn).set(
        data.subarray(i * PAGE_SIZE, Math.min(data.length, (i + 1) * PAGE_SIZE)),
      );
    }
    return this.submitData(
      flush ? BlkifOp.FLUSH_DISKCACHE : BlkifOp.WRITE,
      sector,
      sectors,
      pages,
      () => undefined,
    );
  }

  flush(): Promise<BlkfrontResponse> {
    return this.push((slot) => {
      const o = this.layouts.blkif_request.offsets;
      this.view.setUint8(slot + o.operation, BlkifOp.FLUSH_DISKCACHE);
      this.view.setUint8(slot + o.nr_segments, 0);
    }, []);
  }

  discard(sector: number, sectors: number, secure = false): Promise<BlkfrontResponse> {
    return this.push((slot) => {
      const o = this.layouts.blkif_request_discard.offsets;
      this.view.setUint8(slot + o.operation, BlkifOp.DISCARD);
      this.view.setUint8(slot + o.flag, secure ? 1 : 0);
      setU64(this.view, slot + o.sector_number, sector);
      setU64(this.view, slot + o.nr_sectors, sectors);
    }, []);
  }

  /** Puts raw bytes in the next slot (keeping a generated id), for hostile-frontend tests. */
  raw(bytes: Uint8Array): Promise<BlkfrontResponse> {
    return this.push((slot) => {
      const idAt = this.layouts.blkif_request.offsets.id;
      const keep = this.ringPage.slice(slot + idAt, slot + idAt + 8);
      this.ringPage.set(bytes.subarray(0, this.layouts.blkif_sring_entry.size), slot);
      this.ringPage.set(keep, slot + idAt);
    }, []);
  }

  /** Sets req_prod directly (hostile-frontend tests), then notifies. */
  corruptProducer(value: number): void {
    this.view.setUint32(this.layouts.blkif_sring.offsets.req_prod, value >>> 0, true);
    this.notificationsSent++;
    this.options.domain.events.send(this.port);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private async takePages(count: number): Promise<Page[]> {
    while (this.freePages.length < count)
      await new Promise<void>((resolve) => this.pageWaiters.push(resolve));
    return this.freePages.splice(0, count);
  }

  private releasePages(pages: Page[]): void {
    const grants = this.options.domain.grants!;
    for (const page of pages) {
      if (!this.persistent) {
        // gnttab_end_foreign_access: the backend must have unmapped by now.
        if (grants.entryFlags(page.ref) & (GrantFlags.reading | GrantFlags.writing))
          this.grantLeaks.push(page.ref);
        grants.writeEntry(page.ref, 0, 0, 0);
      }
    }
    // Most recently used first, as blkfront's grant list hands them out again.
    this.freePages.unshift(...pages);
    const waiters = this.pageWaiters;
    this.pageWaiters = [];
    for (const wake of waiters) wake();
  }

  /** blkif_queue_rw_req: direct segments up to 11, INDIRECT beyond when offered. */
  private submitData(
    operation: number,
    sector: number,
    sectors: number,
    pages: Page[],
    afterRead: (page: Page, at: number, length: number) => void,
  ): Promise<BlkfrontResponse> {
    const grants = this.options.domain.grants!;
    if (!this.persistent) {
      const readonly = operation !== BlkifOp.READ ? GrantFlags.readonly : 0;
      for (const page of pages)
        grants.writeEntry(
          page.ref,
          this.backendDomid,
          page.gfn,
          GrantFlags.permit_access | readonly,
        );
    }
    const segments = pages.map((page, i) => {
      const last = Math.min(8, sectors - i * 8) - 1;
      return { ref: page.ref, first: 0, last };
    });
    const indirect = segments.length > 11;
    if (indirect && segments.length > this.maxIndirect)
      throw new Error(`${segments.length} segments need INDIRECT with at least that many`);
    const indirectPages: Page[] = [];
    const build = (slot: number) => {
      if (!indirect) {
        const o = this.layouts.blkif_request.offsets;
        this.view.setUint8(slot + o.operation, operation);
        this.view.setUint8(slot + o.nr_segments, segments.length);
        this.view.setUint16(slot + o.handle, 0, true);
        setU64(this.view, slot + o.sector_number, sector);
        segments.forEach((segment, i) => {
          const at = slot + o.seg + i * 8;
          this.view.setUint32(at, segment.ref, true);
          this.view.setUint8(at + 4, segment.first);
          this.view.setUint8(at + 5, segment.last);
        });
        return;
      }
      const o = this.layouts.blkif_request_indirect.offsets;
      this.view.setUint8(slot + o.operation, BlkifOp.INDIRECT);
      this.view.setUint8(slot + o.indirect_op, operation);
      this.view.setUint16(slot + o.nr_segments, segments.length, true);
      setU64(this.view, slot + o.sector_number, sector);
      this.view.setUint16(slot + o.handle, 0, true);
      indirectPages.forEach((page, i) => {
        this.view.setUint32(slot + o.indirect_grefs + i * 4, page.ref, true);
      });
    };
    const run = async () => {
      if (indirect) {
        indirectPages.push(...(await this.takePages(Math.ceil(segments.length / 512))));
        for (let p = 0; p < indirectPages.length; p++) {
          const bytes = this.page(indirectPages[p].gfn);
          const view = new DataView(bytes.buffer, bytes.byteOffset, PAGE_SIZE);
          if (!this.persistent)
            grants.writeEntry(
              indirectPages[p].ref,
              this.backendDomid,
              indirectPages[p].gfn,
              GrantFlags.permit_access | GrantFlags.readonly,
            );
          for (let i = p * 512; i < Math.min(segments.length, (p + 1) * 512); i++) {
            const at = (i - p * 512) * 8;
            view.setUint32(at, segments[i].ref, true);
            view.setUint8(at + 4, segments[i].first);
            view.setUint8(at + 5, segments[i].last);
          }
        }
      }
      const response = await this.push(build, [...pages, ...indirectPages], (response) => {
        if (operation === BlkifOp.READ && response.status === 0) {
          for (const [i, page] of pages.entries())
            afterRead(page, i * PAGE_SIZE, (segments[i].last + 1) * 512);
        }
      });
      return response;
    };
    return run();
  }

  /** Fills the next slot, pushes it (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY) and waits for its response. */
  private push(
    build: (slot: number) => void,
    pages: Page[],
    beforeRelease?: (response: BlkfrontResponse) => void,
  ): Promise<BlkfrontResponse> {
    // RING_FULL: Linux stops the queue; here the caller waits.
    if ((this.requestProducerPrivate - this.responseConsumer) >>> 0 >= this.size) {
      return new Promise<void>((resolve) => setTimeout(resolve, 1)).then(() =>
        this.push(build, pages, beforeRelease),
      );
    }
    const entry = this.layouts.blkif_sring_entry.size;
    const slot =
      this.layouts.blkif_sring.offsets.ring +
      (this.requestProducerPrivate & (this.size - 1)) * entry;
    this.ringPage.fill(0, slot, slot + entry);
    build(slot);
    // 64-bit ids with the top bits set: the backend must return them unchanged.
    const id = this.nextId++;
    const idAt = this.layouts.blkif_request.offsets.id;
    this.view.setUint32(slot + idAt, id, true);
    this.view.setUint32(slot + idAt + 4, 0xb1c00000, true);
    this.requestProducerPrivate = (this.requestProducerPrivate + 1) >>> 0;
    const promise = new Promise<BlkfrontResponse>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (response) => {
          beforeRelease?.(response);
          this.releasePages(pages);
          resolve(response);
        },
        reject,
        pages,
      });
    });
    const o = this.layouts.blkif_sring.offsets;
    const old = this.view.getUint32(o.req_prod, true);
    const next = this.requestProducerPrivate;
    this.view.setUint32(o.req_prod, next, true);
    const event = this.view.getUint32(o.req_event, true);
    if ((next - event) >>> 0 < (next - old) >>> 0) {
      this.notificationsSent++;
      this.options.domain.events.send(this.port);
    }
    this.startPolling();
    return promise;
  }

  /** Waits for the event channel like a guest's upcall, then runs blkif_interrupt. */
  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    const started = Date.now();
    let lastProgress = started;
    const tick = () => {
      const events = this.options.domain.twoLevel!;
      if (events.isPending(this.port)) {
        events.clearPending(this.port);
        this.eventsReceived++;
        this.interrupt();
        lastProgress = Date.now();
      }
      if (this.pending.size === 0) {
        this.polling = false;
        return;
      }
      if (Date.now() - lastProgress > this.timeoutMs) {
        this.polling = false;
        const error = new Error(
          `no event from the backend for ${this.timeoutMs} ms with ${this.pending.size} request(s) outstanding`,
        );
        for (const entry of this.pending.values()) entry.reject(error);
        this.pending.clear();
        return;
      }
      setImmediate(tick);
    };
    setImmediate(tick);
  }

  /** blkif_interrupt / blkif_completion with RING_FINAL_CHECK_FOR_RESPONSES. */
  private interrupt(): void {
    const o = this.layouts.blkif_sring.offsets;
    const r = this.layouts.blkif_response.offsets;
    const entry = this.layouts.blkif_sring_entry.size;
    for (;;) {
      const producer = this.view.getUint32(o.rsp_prod, true);
      while (this.responseConsumer !== producer) {
        const slot = o.ring + (this.responseConsumer & (this.size - 1)) * entry;
        const id = this.view.getUint32(slot + r.id, true);
        const high = this.view.getUint32(slot + r.id + 4, true);
        const response = {
          operation: this.view.getUint8(slot + r.operation),
          status: this.view.getInt16(slot + r.status, true),
        };
        this.responseConsumer = (this.responseConsumer + 1) >>> 0;
        const waiter = this.pending.get(id);
        if (high !== 0xb1c00000 || !waiter)
          throw new Error(`response with unknown id ${high.toString(16)}:${id}`);
        this.pending.delete(id);
        waiter.resolve(response);
      }
      if (this.responseConsumer !== this.requestProducerPrivate) {
        this.view.setUint32(o.rsp_event, (this.responseConsumer + 1) >>> 0, true);
        if (this.view.getUint32(o.rsp_prod, true) !== this.responseConsumer) continue;
      } else {
        this.view.setUint32(o.rsp_event, (this.responseConsumer + 1) >>> 0, true);
      }
      break;
    }
  }
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 4294967296) >>> 0, true);
}

/** An in-memory xenstore (paths, values, watches) with the client shape blkback takes. */
export class MemoryXenbusStore implements XenbusStore {
  readonly nodes = new Map<string, string>();
  private readonly watches = new Set<{
    path: string;
    callback: (event: XenbusWatchEvent) => void;
    token: string;
  }>();
  private nextToken = 0;

  async read(path: string): Promise<string> {
    const value = this.nodes.get(path);
    if (value === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: "ENOENT" });
    return value;
  }

  async tryRead(path: string): Promise<string | undefined> {
    return this.nodes.get(path);
  }

  async write(path: string, value: string): Promise<void> {
    this.nodes.set(path, value);
    this.fire(path);
  }

  async rm(path: string): Promise<void> {
    for (const key of [...this.nodes.keys()])
      if (key === path || key.startsWith(`${path}/`)) this.nodes.delete(key);
    this.fire(path);
  }

  async watch(
    path: string,
    callback: (event: XenbusWatchEvent) => void,
  ): Promise<{ unwatch(): Promise<void> }> {
    const watch = { path, callback, token: `t${this.nextToken++}` };
    this.watches.add(watch);
    queueMicrotask(() => callback({ path, token: watch.token }));
    return {
      unwatch: async () => {
        this.watches.delete(watch);
      },
    };
  }

  /** Writes several keys at once, as a transaction would publish them. */
  async writeAll(directory: string, values: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(values)) this.nodes.set(`${directory}/${key}`, value);
    for (const key of Object.keys(values)) this.fire(`${directory}/${key}`);
  }

  private fire(path: string): void {
    for (const watch of this.watches) {
      if (
        path === watch.path ||
        path.startsWith(`${watch.path}/`) ||
        watch.path.startsWith(`${path}/`)
      ) {
        queueMicrotask(() => watch.callback({ path, token: watch.token }));
      }
    }
  }
}
