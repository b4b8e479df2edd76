/**
 * The backend half of a Xen shared ring (Xen public io/ring.h BACK_RING_*), over a granted page
 * mapped through the host interface. Indices are free-running u32; slot = index & (size - 1).
 * The frontend owns req_prod and rsp_event; the backend owns rsp_prod and req_event, plus its
 * private req_cons and rsp_prod_pvt, which never live in shared memory (a guest cannot move them).
 */
import { abiLayouts } from "@kumo/abi";

// The sring header is the same in every ABI (four u32 then padding to 64): take x86_64's.
const SRING = abiLayouts("x86_64").netif_tx_sring.offsets;
const REQ_PROD = SRING.req_prod;
const REQ_EVENT = SRING.req_event;
const RSP_PROD = SRING.rsp_prod;
const RSP_EVENT = SRING.rsp_event;
const ENTRIES = SRING.ring;

export class BackRing {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  /** Next request to consume (private, io/ring.h req_cons). */
  requestConsumer = 0;
  /** Next response slot to fill (private, io/ring.h rsp_prod_pvt). */
  responseProducer = 0;
  private readonly mask: number;

  constructor(
    page: Uint8Array,
    readonly size: number,
    readonly entrySize: number,
  ) {
    this.bytes = page;
    this.view = new DataView(page.buffer, page.byteOffset, page.byteLength);
    this.mask = size - 1;
    // BACK_RING_ATTACH with the frontend's current rsp_prod, as Linux netback does on connect
    // (xenvif_map_frontend_data_rings): a reconnecting frontend may have re-initialised it to 0.
    const rspProd = this.view.getUint32(RSP_PROD, true);
    this.requestConsumer = rspProd;
    this.responseProducer = rspProd;
  }

  /** Byte offset of the entry for ring index `index`. */
  entryOffset(index: number): number {
    return ENTRIES + ((index & this.mask) >>> 0) * this.entrySize;
  }

  /** The frontend's req_prod, read once per batch (security checklist rule 2). */
  requestProducer(): number {
    return this.view.getUint32(REQ_PROD, true);
  }

  /**
   * Requests produced and not yet consumed, bounded by the free response space
   * (io/ring.h RING_UNCONSUMED_REQUESTS), or -1 when req_prod is impossible:
   * more than `size` ahead of the responses (a broken or hostile frontend).
   */
  unconsumed(requestProducer: number): number {
    if ((requestProducer - this.responseProducer) >>> 0 > this.size) return -1;
    const produced = (requestProducer - this.requestConsumer) >>> 0;
    const space = this.size - ((this.requestConsumer - this.responseProducer) >>> 0);
    return produced < space ? produced : space;
  }

  /**
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes the private response index and tells whether
   * the frontend asked to be notified: its rsp_event lies in (old, new].
   */
  pushResponsesAndCheckNotify(): boolean {
    const old = this.view.getUint32(RSP_PROD, true);
    const fresh = this.responseProducer >>> 0;
    // JavaScript runs this page's writes in program order; the guest sees entries before the
    // index (the write barrier of io/ring.h).
    this.view.setUint32(RSP_PROD, fresh, true);
    const event = this.view.getUint32(RSP_EVENT, true);
    return (fresh - event) >>> 0 < (fresh - old) >>> 0;
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: before going idle, ask to be woken at the next request
   * (req_event = req_cons + 1), then look again so a request racing the write is not missed.
   * Returns the unconsumed count (or -1, see `unconsumed`).
   */
  finalCheckForRequests(): number {
    let pending = this.unconsumed(this.requestProducer());
    if (pending !== 0) return pending;
    this.view.setUint32(REQ_EVENT, (this.requestConsumer + 1) >>> 0, true);
    pending = this.unconsumed(this.requestProducer());
    return pending;
  }

  /** Asks to be woken once the frontend has produced up to `index` (rx: req_cons + needed). */
  setRequestEvent(index: number): void {
    this.view.setUint32(REQ_EVENT, index >>> 0, true);
  }
}
