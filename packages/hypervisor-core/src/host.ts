/**
 * The host interface: what a dom0 process gets from Xen's `libxenevtchn`,
 * `libxengnttab`, `libxenforeignmemory` and the HVM-param calls of
 * `libxenctrl`, as small typed objects (docs/style.md: one library per
 * hypercall family, not one god object). Backends (xenstore, console,
 * blkback, netback) and the toolstack use only these to reach a guest.
 *
 * Failures are `XenHostError`s carrying the Xen errno the C libraries would
 * leave in `errno` (a user's mistake, never a guest's).
 */

/** A domain id (Xen `domid_t`, 0..0x7FEF for real domains). */
export type DomainId = number;
/** An event-channel port number in one domain's port space. */
export type EventChannelPort = number;
/** A grant reference in the granting domain's table. */
export type GrantRef = number;

/** The error a host call fails with; `errno` is the positive Xen errno (xen/errno.h). */
export class XenHostError extends Error {
  override readonly name = "XenHostError";
  constructor(
    readonly errno: number,
    message: string,
    /** For grant operations: the GNTST_* status Xen reported (0 otherwise). */
    readonly status = 0,
  ) {
    super(message);
  }
}

/** Called on the host event loop when a bound port was notified (coalesced: several sends may give one call). */
export type EventHandler = (localPort: EventChannelPort) => void;

/**
 * libxenevtchn: one handle per backend. Ports are in domain 0's space. Like
 * `xenevtchn_pending`/`unmask`, a notification arriving while the handler
 * has not yet run is coalesced into one call.
 */
export interface HostEventChannel {
  /**
   * `xenevtchn_bind_interdomain`: connects a new dom0 port to `remotePort`,
   * an unbound port of `domid` that accepts domain 0. Returns the local port.
   */
  bindInterdomain(
    domid: DomainId,
    remotePort: EventChannelPort,
    handler: EventHandler,
  ): EventChannelPort;
  /**
   * `xenevtchn_bind_unbound_port`: allocates a dom0 port that `domid` may
   * bind to later (with EVTCHNOP_bind_interdomain). Returns the local port.
   */
  bindUnbound(domid: DomainId, handler: EventHandler): EventChannelPort;
  /** `xenevtchn_notify`: sets the peer's port pending (dropped if unconnected, as Xen does). */
  notify(localPort: EventChannelPort): void;
  /** `xenevtchn_unbind`: closes the port; the guest's end returns to unbound. */
  unbind(localPort: EventChannelPort): void;
  /** The remote end of a local port, or null when unbound/closed. */
  peerOf(localPort: EventChannelPort): { domid: DomainId; port: EventChannelPort } | null;
  /** `xenevtchn_close`: unbinds every port of this handle. */
  close(): void;
}

/** A granted frame mapped into the host (libxengnttab `xengnttab_map_grant_ref`). */
export interface GrantMapping {
  /** 4096 bytes of the granter's frame; a read-only mapping must not be written through. */
  readonly view: Uint8Array;
  /** The grant handle (GNTTABOP_map_grant_ref `handle`). */
  readonly handle: number;
  readonly writable: boolean;
  readonly domid: DomainId;
  readonly ref: GrantRef;
}

/** One side of a grant copy: a grant reference of `domid`, or a frame of domain 0 itself. */
export type GrantCopySide =
  | { readonly ref: GrantRef; readonly domid: DomainId; readonly offset: number }
  | { readonly buffer: Uint8Array; readonly offset: number };

/** A GNTTABOP_copy segment; the result is a GNTST_* status (0 okay). */
export interface GrantCopyOp {
  readonly source: GrantCopySide;
  readonly dest: GrantCopySide;
  readonly length: number;
}

/** libxengnttab: map, unmap and copy grants of other domains. */
export interface HostGrantTable {
  /**
   * `xengnttab_map_grant_ref`: maps `ref` granted by `domid` to domain 0.
   * Throws `XenHostError` whose `errno` is EINVAL and whose `status` holds the GNTST_* code
   * (bad_domain, bad_gntref, permission_denied, ...).
   */
  map(domid: DomainId, ref: GrantRef, writable: boolean): GrantMapping;
  /** `xengnttab_unmap`: releases the mapping (clears GTF_reading/GTF_writing when the last one goes). */
  unmap(mapping: GrantMapping): void;
  /** `xengnttab_grant_copy`: performs each copy with Xen's checks; returns GNTST_* per op. */
  copy(ops: readonly GrantCopyOp[]): Int16Array;
}

/** libxenforeignmemory: privileged mapping of another domain's frames (domain building, xenstore ring). */
export interface HostForeignMemory {
  /** A 4096-byte view of frame `gfn` of `domid` (RAM or a hypervisor page mapped there). */
  mapFrame(domid: DomainId, gfn: number): Uint8Array;
}

/** The HVM-param calls of libxenctrl (`xc_hvm_param_get/set`), as the toolstack uses them. */
export interface HostHvmParams {
  get(domid: DomainId, index: number): number;
  set(domid: DomainId, index: number, value: number): void;
}

/** Everything domain 0 can do to the machine. */
export interface HostInterface {
  /** Opens a new event-channel handle (like `xenevtchn_open`). */
  openEventChannel(): HostEventChannel;
  readonly grants: HostGrantTable;
  readonly foreignMemory: HostForeignMemory;
  readonly hvmParams: HostHvmParams;
}
