/**
 * The blkif data path: one shared ring (Xen public io/blkif.h, io/ring.h)
 * served from a DiskImage. The handshake (xenbus-backend.ts) maps the ring,
 * binds the event channel and hands both in; this file knows nothing of
 * xenstore (Linux keeps the same split: blkback.c vs xenbus.c).
 *
 * Guest input is hostile. Every request is copied out of the shared ring
 * once (`takeRequest`) and all checks run on that private copy, so the
 * frontend cannot change a request after it was validated (no double
 * fetch, XSA-155). Bad segments, ranges past the end of the disk, grant
 * failures and writes to a read-only disk answer BLKIF_RSP_ERROR, unknown
 * operations BLKIF_RSP_EOPNOTSUPP, as Linux's xen-blkback does; a bogus
 * req_prod stops the ring (Linux: "Frontend provided bogus ring requests").
 */
import { type Abi, abiLayouts, Blkif, BlkifOp, BlkifStatus } from "@kumo/abi";
import type { DomainId, GrantMapping, HostGrantTable } from "@kumo/hypervisor-core";
import type { DiskImage } from "../image/disk-image";

const PAGE_SIZE = 4096;
const SECTOR_SHIFT = 9;
const SECTORS_PER_PAGE = PAGE_SIZE >> SECTOR_SHIFT;
/** `struct blkif_request_segment` is 8 bytes: 512 per indirect page (blkif.h BLKIF_SEGS_PER_INDIRECT_FRAME). */
const SEGMENT_SIZE = 8;
const SEGMENTS_PER_INDIRECT_PAGE = PAGE_SIZE / SEGMENT_SIZE;
/** Linux xen-blkback's default `max_persistent_grants` (xen_blkif_max_pgrants). */
export const DEFAULT_MAX_PERSISTENT_GRANTS = 1056;
/** Linux xen-blkback's default `max_indirect_segments` (MAX_INDIRECT_SEGMENTS). */
export const DEFAULT_MAX_INDIRECT_SEGMENTS = 256;

export interface RingWorkerOptions {
  /** Grant operations of domain 0 (hypervisor-core's host interface). */
  grants: HostGrantTable;
  /** The frontend's domain. */
  domid: DomainId;
  /**
   * The mapped, writable ring: one 4096-byte page, or the pages of a
   * multi-page ring in `ring-ref<i>` order (`ring-page-order`, io/blkif.h).
   * The pages need not be contiguous in host memory: a slot that straddles
   * two of them is copied piecewise.
   */
  ring: Uint8Array | readonly Uint8Array[];
  /** The frontend's ABI, from its `protocol` key (x86_64 when absent). */
  abi: Abi;
  image: DiskImage;
  /** Refuse writes and discards even if the image is writable (`mode = "r"`). */
  readOnly: boolean;
  /** Notifies the frontend's event channel. */
  notify: () => void;
  /** Both ends wrote feature-persistent = 1: keep grant mappings across requests. */
  persistentGrants?: boolean;
  maxPersistentGrants?: number;
  /** What the backend advertised as feature-max-indirect-segments (0: INDIRECT refused). */
  maxIndirectSegments?: number;
  /** feature-discard was advertised. */
  discard?: boolean;
  /** Secure discard (discard-secure) was advertised. */
  discardSecure?: boolean;
  /** feature-flush-cache was advertised. */
  flush?: boolean;
  /** Messages about frontend misbehaviour (rate-limited by the caller if it wants). */
  log?: (message: string) => void;
}

/** Counters, for tests and `kumo` status output. */
export interface RingWorkerStats {
  requests: number;
  errors: number;
  notifications: number;
  persistentGrants: number;
  bytesRead: number;
  bytesWritten: number;
}

/**
 * A request after decoding: the private copy everything below works on.
 * Records are pooled, one per ring slot (at most `size` requests are in
 * flight: io/ring.h keeps req_cons - rsp_prod_pvt <= RING_SIZE), so the hot
 * path allocates no records, segment arrays, buffers or mapping lists.
 */
class Request {
  operation = 0;
  /** READ or WRITE for INDIRECT. */
  dataOperation = 0;
  idLow = 0;
  idHigh = 0;
  sector = 0;
  /** DISCARD: sectors. */
  discardSectors = 0;
  discardFlag = 0;
  segmentCount = 0;
  /** gref, first_sect, last_sect per segment. */
  readonly segments: Uint32Array;
  readonly indirectRefs = new Uint32Array(Blkif.MAX_INDIRECT_PAGES_PER_REQUEST);
  indirectPages = 0;
  readonly mappings: (GrantMapping | null)[];
  /** Data buffer: 11 pages, grown once for INDIRECT requests. */
  buffer = new Uint8Array(Blkif.MAX_SEGMENTS_PER_REQUEST * PAGE_SIZE);

  constructor(maxSegments: number) {
    this.segments = new Uint32Array(maxSegments * 3);
    this.mappings = new Array(maxSegments).fill(null);
  }
}

export class BlkifRingWorker {
  readonly stats: RingWorkerStats = {
    requests: 0,
    errors: 0,
    notifications: 0,
    persistentGrants: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };
  /** Set when the frontend broke the ring protocol; the ring is then ignored. */
  broken: string | null = null;
  /** Page 0 of the ring: the io/ring.h indexes (req_prod, req_event, rsp_prod, rsp_event). */
  private readonly view: DataView;
  private readonly pages: readonly Uint8Array[];
  private readonly size: number;
  private readonly slotBase: number;
  private readonly slotSize: number;
  private readonly requestOffsets: ReturnType<typeof abiLayouts>["blkif_request"]["offsets"];
  private readonly indirectOffsets: ReturnType<
    typeof abiLayouts
  >["blkif_request_indirect"]["offsets"];
  private readonly discardOffsets: ReturnType<
    typeof abiLayouts
  >["blkif_request_discard"]["offsets"];
  private readonly responseOffsets: ReturnType<typeof abiLayouts>["blkif_response"]["offsets"];
  private readonly sringOffsets: ReturnType<typeof abiLayouts>["blkif_sring"]["offsets"];
  /** One slot's bytes, copied out of the shared page before anything is read (no double fetch). */
  private readonly slotCopy: Uint8Array;
  private readonly slotView: DataView;
  /** One response, built here and then copied into its slot (which may straddle pages). */
  private readonly responseCopy: Uint8Array;
  private readonly responseView: DataView;
  private requestConsumer: number;
  private responseProducerPrivate: number;
  private inFlight = 0;
  private stopped = false;
  private scheduled = false;
  private deferred = false;
  private idleWaiters: (() => void)[] = [];
  private readonly persistent = new Map<number, GrantMapping>();
  private readonly maxIndirectSegments: number;
  private readonly freeRecords: Request[] = [];

  constructor(private readonly options: RingWorkerOptions) {
    const layouts = abiLayouts(options.abi);
    this.pages = options.ring instanceof Uint8Array ? [options.ring] : options.ring;
    const first = this.pages[0];
    this.view = new DataView(first.buffer, first.byteOffset, PAGE_SIZE);
    this.size = layouts.ringEntries("blkif", this.pages.length);
    this.sringOffsets = layouts.blkif_sring.offsets;
    this.slotBase = this.sringOffsets.ring;
    this.slotSize = layouts.blkif_sring_entry.size;
    this.requestOffsets = layouts.blkif_request.offsets;
    this.indirectOffsets = layouts.blkif_request_indirect.offsets;
    this.discardOffsets = layouts.blkif_request_discard.offsets;
    this.responseOffsets = layouts.blkif_response.offsets;
    this.slotCopy = new Uint8Array(this.slotSize);
    this.slotView = new DataView(this.slotCopy.buffer);
    this.responseCopy = new Uint8Array(layouts.blkif_response.size);
    this.responseView = new DataView(this.responseCopy.buffer);
    this.maxIndirectSegments = options.maxIndirectSegments ?? 0;
    const maxSegments = Math.max(Blkif.MAX_SEGMENTS_PER_REQUEST, this.maxIndirectSegments);
    for (let i = 0; i < this.size; i++) this.freeRecords.push(new Request(maxSegments));
    // A fresh ring (blkfront: SHARED_RING_INIT + FRONT_RING_INIT) starts at zero; take what the
    // shared page says so that a reconnect continues where the frontend is.
    this.requestConsumer = this.view.getUint32(this.sringOffsets.rsp_prod, true);
    this.responseProducerPrivate = this.requestConsumer;
  }

  /** The event channel fired: look at the ring (coalesced; runs on the next microtask). */
  kick(): void {
    if (this.scheduled || this.deferred || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.processRing();
    });
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && !this.scheduled && !this.deferred) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking requests, waits for those in flight, releases persistent grants. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    for (const mapping of this.persistent.values()) this.unmap(mapping);
    this.persistent.clear();
    this.stats.persistentGrants = 0;
  }

  /** io/ring.h RING_HAS_UNCONSUMED_REQUESTS for the back end. */
  private unconsumed(): number {
    const requests =
      (this.view.getUint32(this.sringOffsets.req_prod, true) - this.requestConsumer) >>> 0;
    const space = this.size - ((this.requestConsumer - this.responseProducerPrivate) >>> 0);
    return Math.min(requests, space);
  }

  private processRing(): void {
    if (this.stopped || this.broken !== null) return;
    const o = this.sringOffsets;
    // A frontend that keeps producing (a vCPU in another thread, later) must not hold the
    // host event loop: after a few rings' worth, continue on a later task (Linux: cond_resched).
    let budget = 4 * this.size;
    for (;;) {
      const producer = this.view.getUint32(o.req_prod, true);
      // io/ring.h RING_REQUEST_PROD_OVERFLOW: more requests than slots is a broken frontend.
      if ((producer - this.responseProducerPrivate) >>> 0 > this.size) {
        this.broken = `req_prod ${producer} is more than ${this.size} ahead of rsp_prod ${this.responseProducerPrivate}`;
        this.options.log?.(`d${this.options.domid}: blkif ring stopped: ${this.broken}`);
        this.settle();
        return;
      }
      while (this.requestConsumer !== producer) {
        // RING_REQUEST_CONS_OVERFLOW: no response slot left until responses go out.
        if ((this.requestConsumer - this.responseProducerPrivate) >>> 0 >= this.size) break;
        const slot = this.slotBase + (this.requestConsumer & (this.size - 1)) * this.slotSize;
        this.copyOut(slot, this.slotCopy);
        this.requestConsumer = (this.requestConsumer + 1) >>> 0;
        this.stats.requests++;
        this.inFlight++;
        void this.serve();
        if (--budget === 0) {
          this.deferred = true;
          setTimeout(() => {
            this.deferred = false;
            this.kick();
            this.settle();
          }, 0);
          return;
        }
      }
      // RING_FINAL_CHECK_FOR_REQUESTS: ask for an event at the next request, then look again
      // so that a request published in between is not missed.
      if (this.unconsumed() > 0) continue;
      this.view.setUint32(o.req_event, (this.requestConsumer + 1) >>> 0, true);
      if (this.unconsumed() > 0) continue;
      break;
    }
    this.settle();
  }

  /** Decodes the copied slot, then runs the request to its response. */
  private async serve(): Promise<void> {
    // Never empty: in-flight requests are bounded by the ring size (see Request).
    const request = this.freeRecords.pop()!;
    const decoded = this.decode(request);
    let status: number;
    if (decoded !== BlkifStatus.OKAY) {
      // Undecodable: answer with what the slot says its id and operation are.
      this.respond(request.idLow, request.idHigh, request.operation, decoded);
      this.freeRecords.push(request);
      this.finish();
      return;
    }
    try {
      status = await this.execute(request);
    } catch (error) {
      // Not a guest's mistake we anticipated: still answered as a failed I/O.
      this.options.log?.(
        `d${this.options.domid}: blkif request failed: ${(error as Error).message}`,
      );
      status = BlkifStatus.ERROR;
    }
    this.respond(
      request.idLow,
      request.idHigh,
      request.operation === BlkifOp.INDIRECT ? request.dataOperation : request.operation,
      status,
    );
    this.freeRecords.push(request);
    this.finish();
  }

  /**
   * Reads the private slot copy into `request`; BLKIF_RSP_OKAY when it is
   * well-formed, else the status to answer (id and operation are always set).
   */
  private decode(request: Request): number {
    const v = this.slotView;
    const r = this.requestOffsets;
    const operation = v.getUint8(r.operation);
    request.operation = operation;
    request.dataOperation = operation;
    request.idLow = v.getUint32(r.id, true);
    request.idHigh = v.getUint32(r.id + 4, true);
    request.sector = 0;
    request.discardSectors = 0;
    request.discardFlag = 0;
    request.segmentCount = 0;
    request.indirectPages = 0;
    switch (operation) {
      case BlkifOp.READ:
      case BlkifOp.WRITE:
      case BlkifOp.FLUSH_DISKCACHE: {
        if (operation === BlkifOp.FLUSH_DISKCACHE && !this.options.flush)
          return BlkifStatus.EOPNOTSUPP;
        const count = v.getUint8(r.nr_segments);
        // Linux dispatch_rw_block_io: 1..11 segments (0 only for a flush).
        if (
          (count === 0 && operation !== BlkifOp.FLUSH_DISKCACHE) ||
          count > Blkif.MAX_SEGMENTS_PER_REQUEST
        ) {
          return this.reject(`${count} segments`);
        }
        request.sector = readSector(v, r.sector_number);
        request.segmentCount = count;
        for (let i = 0; i < count; i++) {
          const at = r.seg + i * SEGMENT_SIZE;
          request.segments[i * 3] = v.getUint32(at, true);
          request.segments[i * 3 + 1] = v.getUint8(at + 4);
          request.segments[i * 3 + 2] = v.getUint8(at + 5);
        }
        return BlkifStatus.OKAY;
      }
      case BlkifOp.DISCARD: {
        if (!this.options.discard) return BlkifStatus.EOPNOTSUPP;
        const d = this.discardOffsets;
        request.sector = readSector(v, d.sector_number);
        request.discardSectors = readSector(v, d.nr_sectors);
        request.discardFlag = v.getUint8(d.flag);
        return BlkifStatus.OKAY;
      }
      case BlkifOp.INDIRECT: {
        const n = this.indirectOffsets;
        const dataOperation = v.getUint8(n.indirect_op);
        const count = v.getUint16(n.nr_segments, true);
        if (this.maxIndirectSegments === 0) return BlkifStatus.EOPNOTSUPP;
        // Linux dispatch_rw_block_io / xen_blkbk_parse_indirect.
        if (dataOperation !== BlkifOp.READ && dataOperation !== BlkifOp.WRITE)
          return this.reject(`indirect op ${dataOperation}`);
        if (count === 0 || count > this.maxIndirectSegments)
          return this.reject(`${count} indirect segments`);
        request.dataOperation = dataOperation;
        request.sector = readSector(v, n.sector_number);
        request.segmentCount = count;
        request.indirectPages = Math.ceil(count / SEGMENTS_PER_INDIRECT_PAGE);
        for (let i = 0; i < request.indirectPages; i++) {
          request.indirectRefs[i] = v.getUint32(n.indirect_grefs + i * 4, true);
        }
        return BlkifStatus.OKAY;
      }
      default:
        // Linux: unknown operations (and WRITE_BARRIER, never advertised) get EOPNOTSUPP.
        return BlkifStatus.EOPNOTSUPP;
    }
  }

  private reject(why: string): number {
    this.options.log?.(`d${this.options.domid}: bad blkif request: ${why}`);
    return BlkifStatus.ERROR;
  }

  private async execute(request: Request): Promise<number> {
    const image = this.options.image;
    const diskSectors = Math.floor(image.size / 512);
    if (request.operation === BlkifOp.DISCARD) {
      if (this.options.readOnly || image.readOnly)
        return this.reject("discard on a read-only disk");
      if (request.discardFlag & Blkif.DISCARD_SECURE && !this.options.discardSecure)
        return BlkifStatus.EOPNOTSUPP;
      const end = request.sector + request.discardSectors;
      if (end > diskSectors)
        return this.reject(
          `discard of sectors [${request.sector}, ${end}) past the end (${diskSectors})`,
        );
      if (request.discardSectors > 0)
        await image.discard(request.sector * 512, request.discardSectors * 512);
      return BlkifStatus.OKAY;
    }
    if (request.operation === BlkifOp.INDIRECT) {
      const loaded = this.loadIndirectSegments(request);
      if (loaded !== BlkifStatus.OKAY) return loaded;
    }
    const write = request.dataOperation !== BlkifOp.READ;
    if (write && (this.options.readOnly || image.readOnly))
      return this.reject("write to a read-only disk");
    const count = request.segmentCount;
    if (count === 0) {
      // FLUSH_DISKCACHE without data: make every acknowledged write durable.
      await image.flush();
      return BlkifStatus.OKAY;
    }
    const segments = request.segments;
    let sectors = 0;
    for (let i = 0; i < count; i++) {
      const first = segments[i * 3 + 1];
      const last = segments[i * 3 + 2];
      // Linux xen_blkbk_parse / dispatch_rw_block_io: last_sect < 8, first <= last.
      if (last >= SECTORS_PER_PAGE || last < first)
        return this.reject(`segment ${i} sectors ${first}..${last}`);
      sectors += last - first + 1;
    }
    const end = request.sector + sectors;
    if (end > diskSectors)
      return this.reject(`sectors [${request.sector}, ${end}) past the end (${diskSectors})`);
    const mappings = request.mappings;
    let mapped = 0;
    try {
      for (; mapped < count; mapped++) {
        const mapping = this.mapSegment(segments[mapped * 3], !write);
        if (mapping === null)
          return this.reject(`grant ${segments[mapped * 3]} of segment ${mapped} does not map`);
        mappings[mapped] = mapping;
      }
      if (request.buffer.length < sectors * 512) request.buffer = new Uint8Array(count * PAGE_SIZE);
      const buffer = request.buffer.subarray(0, sectors * 512);
      if (write) {
        let at = 0;
        for (let i = 0; i < count; i++) {
          const first = segments[i * 3 + 1] * 512;
          const length = (segments[i * 3 + 2] + 1) * 512 - first;
          buffer.set(mappings[i]!.view.subarray(first, first + length), at);
          at += length;
        }
        await image.write(buffer, request.sector * 512);
        this.stats.bytesWritten += buffer.length;
        // blkfront sends REQ_FUA/REQ_PREFLUSH writes as FLUSH_DISKCACHE with data: durable on answer.
        if (request.operation === BlkifOp.FLUSH_DISKCACHE) await image.flush();
      } else {
        await image.read(buffer, request.sector * 512);
        this.stats.bytesRead += buffer.length;
        let at = 0;
        for (let i = 0; i < count; i++) {
          const first = segments[i * 3 + 1] * 512;
          const length = (segments[i * 3 + 2] + 1) * 512 - first;
          mappings[i]!.view.set(buffer.subarray(at, at + length), first);
          at += length;
        }
      }
      return BlkifStatus.OKAY;
    } finally {
      for (let i = 0; i < mapped; i++) {
        const mapping = mappings[i]!;
        mappings[i] = null;
        if (this.persistent.get(mapping.ref) !== mapping) this.unmap(mapping);
      }
    }
  }

  /** Copies the segments of an INDIRECT request out of its (read-only mapped) indirect pages. */
  private loadIndirectSegments(request: Request): number {
    const count = request.segmentCount;
    for (let page = 0; page < request.indirectPages; page++) {
      let mapping: GrantMapping;
      try {
        mapping = this.options.grants.map(this.options.domid, request.indirectRefs[page], false);
      } catch {
        return this.reject(`indirect page grant ${request.indirectRefs[page]} does not map`);
      }
      try {
        const view = new DataView(mapping.view.buffer, mapping.view.byteOffset, PAGE_SIZE);
        const from = page * SEGMENTS_PER_INDIRECT_PAGE;
        const to = Math.min(count, from + SEGMENTS_PER_INDIRECT_PAGE);
        for (let i = from; i < to; i++) {
          const at = (i - from) * SEGMENT_SIZE;
          request.segments[i * 3] = view.getUint32(at, true);
          request.segments[i * 3 + 1] = view.getUint8(at + 4);
          request.segments[i * 3 + 2] = view.getUint8(at + 5);
        }
      } finally {
        this.unmap(mapping);
      }
    }
    return BlkifStatus.OKAY;
  }

  /**
   * Maps a data page. With persistent grants the frontend grants every page
   * read-write and reuses it, so the mapping is kept (Linux: up to
   * max_persistent_grants, then mapped per request like without the feature).
   */
  private mapSegment(ref: number, writable: boolean): GrantMapping | null {
    const persistentOn = this.options.persistentGrants === true;
    if (persistentOn) {
      const kept = this.persistent.get(ref);
      if (kept) return kept;
    }
    try {
      const mapping = this.options.grants.map(this.options.domid, ref, persistentOn || writable);
      if (
        persistentOn &&
        this.persistent.size < (this.options.maxPersistentGrants ?? DEFAULT_MAX_PERSISTENT_GRANTS)
      ) {
        this.persistent.set(ref, mapping);
        this.stats.persistentGrants = this.persistent.size;
      }
      return mapping;
    } catch {
      return null;
    }
  }

  private unmap(mapping: GrantMapping): void {
    try {
      this.options.grants.unmap(mapping);
    } catch (error) {
      this.options.log?.(
        `d${this.options.domid}: unmap of grant ${mapping.ref} failed: ${(error as Error).message}`,
      );
    }
  }

  /** Writes one response at rsp_prod_pvt (io/ring.h RING_GET_RESPONSE). */
  private respond(idLow: number, idHigh: number, operation: number, status: number): void {
    if (status !== BlkifStatus.OKAY) this.stats.errors++;
    const slot = this.slotBase + (this.responseProducerPrivate & (this.size - 1)) * this.slotSize;
    const o = this.responseOffsets;
    const v = this.responseView;
    this.responseCopy.fill(0);
    v.setUint32(o.id, idLow, true);
    v.setUint32(o.id + 4, idHigh, true);
    v.setUint8(o.operation, operation);
    v.setInt16(o.status, status, true);
    this.copyIn(this.responseCopy, slot);
    this.responseProducerPrivate = (this.responseProducerPrivate + 1) >>> 0;
    this.pushResponses();
  }

  /** Copies `into.length` ring bytes from byte `offset` of the (possibly multi-page) ring. */
  private copyOut(offset: number, into: Uint8Array): void {
    let done = 0;
    while (done < into.length) {
      const page = this.pages[(offset + done) >>> 12];
      const within = (offset + done) & (PAGE_SIZE - 1);
      const length = Math.min(into.length - done, PAGE_SIZE - within);
      into.set(page.subarray(within, within + length), done);
      done += length;
    }
  }

  /** Copies `from` into the ring at byte `offset`, across a page boundary if need be. */
  private copyIn(from: Uint8Array, offset: number): void {
    let done = 0;
    while (done < from.length) {
      const page = this.pages[(offset + done) >>> 12];
      const within = (offset + done) & (PAGE_SIZE - 1);
      const length = Math.min(from.length - done, PAGE_SIZE - within);
      page.set(from.subarray(done, done + length), within);
      done += length;
    }
  }

  /** io/ring.h RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: notify only if rsp_event lies in the new batch. */
  private pushResponses(): void {
    const o = this.sringOffsets;
    const old = this.view.getUint32(o.rsp_prod, true);
    const next = this.responseProducerPrivate;
    this.view.setUint32(o.rsp_prod, next, true);
    const event = this.view.getUint32(o.rsp_event, true);
    if ((next - event) >>> 0 < (next - old) >>> 0) {
      this.stats.notifications++;
      this.options.notify();
    }
  }

  private finish(): void {
    this.inFlight--;
    // A full ring may have stopped consumption; requests may also have arrived without an event.
    this.kick();
    this.settle();
  }

  private settle(): void {
    if (this.inFlight !== 0 || this.scheduled || this.deferred) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** A 64-bit sector number; values of 2^53 and above cannot be a valid sector of any disk. */
function readSector(view: DataView, offset: number): number {
  const high = view.getUint32(offset + 4, true);
  if (high >= 0x200000) return Number.MAX_SAFE_INTEGER;
  return high * 4294967296 + view.getUint32(offset, true);
}
