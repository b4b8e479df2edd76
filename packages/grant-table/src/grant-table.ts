/**
 * Grant tables v1 (Xen common/grant_table.c, public grant_table.h).
 *
 * A domain's table is `nrFrames` hypervisor-owned pages of 512 eight-byte
 * entries {flags u16, domid u16, frame u32}, which the guest sees through
 * add_to_physmap(XENMAPSPACE_grant_table). Other domains map or copy the
 * frames the guest grants; Kumo keeps Xen's "active entry" per pinned ref
 * (pin counts, the frame and grantee latched at first pin) so that a guest
 * rewriting its entry while mapped cannot move a live mapping.
 *
 * Every operation takes guest-controlled numbers and answers with a GNTST_*
 * status or a negative errno, never an exception.
 */
import { Errno, GntStatus, GrantFlags } from "@kumo/abi";
import type { GuestMemory } from "@kumo/mmu";

/** Entries per grant frame in v1 (4096 / sizeof(grant_entry_v1_t)). */
export const GRANT_ENTRIES_PER_FRAME = 512;
/** Xen's default max_grant_frames (xl.cfg max_grant_frames default 64). */
export const DEFAULT_MAX_GRANT_FRAMES = 64;
/** GNTCOPY/map work is per 4 KiB page. */
const PAGE_SIZE = 4096;

/**
 * The part of a domain's `GuestMemory` (`@kumo/mmu`) that grants need: a
 * live view of one frame, null for holes, MMIO and ballooned-out frames.
 */
export type GrantFrameSource = Pick<GuestMemory, "frame">;

/** Result of {@link GrantTable.mapGrant}: status GNTST_*; `handle`/`view` valid when okay. */
export interface GrantMapResult {
  status: number;
  handle: number;
  view: Uint8Array | null;
}

interface MapTrackEntry {
  granter: GrantTable;
  ref: number;
  writable: boolean;
  view: Uint8Array;
}

/**
 * The grantee side of mappings (Xen's per-domain maptrack table): handles
 * belong to the domain that mapped, and only that domain can unmap them.
 */
export class GrantMapTrack {
  private readonly entries: (MapTrackEntry | undefined)[] = [];
  private readonly freeHandles: number[] = [];

  constructor(
    readonly domid: number,
    /** Maximum simultaneous mappings (Xen max_maptrack_frames x 256 entries). */
    readonly maxMappings = 1024 * 256,
  ) {}

  /** GNTTABOP_map_grant_ref from this domain of `ref` in `granter`'s table. */
  map(granter: GrantTable | undefined, ref: number, writable: boolean): GrantMapResult {
    if (granter === undefined || granter.destroyed)
      return { status: GntStatus.bad_domain, handle: 0, view: null };
    if (this.freeHandles.length === 0 && this.entries.length >= this.maxMappings) {
      return { status: GntStatus.no_device_space, handle: 0, view: null };
    }
    const pinned = granter.pin(ref, this.domid, writable);
    if (typeof pinned === "number") return { status: pinned, handle: 0, view: null };
    const handle = this.freeHandles.pop() ?? this.entries.length;
    this.entries[handle] = { granter, ref, writable, view: pinned };
    return { status: GntStatus.okay, handle, view: pinned };
  }

  /** GNTTABOP_unmap_grant_ref: GNTST_bad_handle unless the handle is live and ours. */
  unmap(handle: number): number {
    if (!Number.isInteger(handle) || handle < 0) return GntStatus.bad_handle;
    const entry = this.entries[handle];
    if (entry === undefined) return GntStatus.bad_handle;
    this.entries[handle] = undefined;
    this.freeHandles.push(handle);
    entry.granter.unpin(entry.ref, entry.writable);
    return GntStatus.okay;
  }

  /** Number of live mappings. */
  count(): number {
    return this.entries.length - this.freeHandles.length;
  }

  /** Unmaps everything (domain destruction of the mapper). */
  unmapAll(): void {
    for (let handle = 0; handle < this.entries.length; handle++) {
      if (this.entries[handle] !== undefined) this.unmap(handle);
    }
  }

  /** Drops the mappings of a destroyed granter without touching its table. */
  forgetGranter(granter: GrantTable): void {
    for (let handle = 0; handle < this.entries.length; handle++) {
      if (this.entries[handle]?.granter === granter) {
        this.entries[handle] = undefined;
        this.freeHandles.push(handle);
      }
    }
  }
}

export interface GrantTableOptions {
  /** The granting domain's memory. */
  memory: GrantFrameSource;
  /** Maximum frames (query_size max_nr_frames); default 64. */
  maxFrames?: number;
  /** Frames present at creation (Xen starts with 1). */
  initialFrames?: number;
  /** Allocates a zeroed hypervisor page (a SharedArrayBuffer-backed one when vCPUs move to Workers). */
  allocatePage?: () => Uint8Array;
}

/** One side of a grant copy as the hypercall gives it. */
export interface GrantCopySideSpec {
  /** GNTCOPY_*_gref: `refOrGfn` is a grant ref of `table`; else a frame of `memory`. */
  isRef: boolean;
  refOrGfn: number;
  offset: number;
  /** The granting table (when isRef) or undefined if the domain does not exist. */
  table: GrantTable | undefined;
  /** The copying domain's own memory (when !isRef); with `directOffset`, destinations must be own RAM. */
  memory: (GrantFrameSource & Partial<Pick<GuestMemory, "directOffset">>) | undefined;
}

export class GrantTable {
  readonly maxFrames: number;
  readonly frames: Uint8Array[] = [];
  private readonly views: DataView[] = [];
  private readonly memory: GrantFrameSource;
  private readonly allocatePage: () => Uint8Array;
  /** Per-ref pin counts (Xen act->pin split into readers and writers). */
  private readPins: Uint32Array;
  private writePins: Uint32Array;
  /** Per-ref latched grantee domid and frame while pinned (Xen act->domid, act->mfn). */
  private activeDomid: Int32Array;
  private activeView: (Uint8Array | undefined)[] = [];
  version = 1;
  destroyed = false;

  constructor(
    readonly domid: number,
    options: GrantTableOptions,
  ) {
    this.maxFrames = options.maxFrames ?? DEFAULT_MAX_GRANT_FRAMES;
    if (!Number.isInteger(this.maxFrames) || this.maxFrames < 1 || this.maxFrames > 1024) {
      throw new RangeError(`maxFrames must be an integer in 1..1024, got ${options.maxFrames}`);
    }
    this.memory = options.memory;
    this.allocatePage = options.allocatePage ?? (() => new Uint8Array(PAGE_SIZE));
    const entries = this.maxFrames * GRANT_ENTRIES_PER_FRAME;
    this.readPins = new Uint32Array(entries);
    this.writePins = new Uint32Array(entries);
    this.activeDomid = new Int32Array(entries).fill(-1);
    this.grow(options.initialFrames ?? 1);
  }

  get nrFrames(): number {
    return this.frames.length;
  }

  /** Number of valid refs (nr_frames x 512). */
  get nrEntries(): number {
    return this.frames.length * GRANT_ENTRIES_PER_FRAME;
  }

  /** Grows the table to `frames` frames (Xen gnttab_grow_table); false beyond max. */
  grow(frames: number): boolean {
    if (!Number.isInteger(frames) || frames > this.maxFrames) return false;
    while (this.frames.length < frames) {
      const page = this.allocatePage();
      this.frames.push(page);
      this.views.push(new DataView(page.buffer, page.byteOffset, PAGE_SIZE));
    }
    return true;
  }

  /**
   * The grant frame for add_to_physmap(grant_table, idx): grows the table to
   * idx + 1 frames as Xen does; null (-EINVAL) beyond the maximum or for v2
   * status frames (bit 31), which v1 has none of.
   */
  frameForPhysmap(idx: number): Uint8Array | null {
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.maxFrames) return null;
    if (idx >= this.frames.length && !this.grow(idx + 1)) return null;
    return this.frames[idx];
  }

  /** Flags of entry `ref` (for tests and tools). */
  entryFlags(ref: number): number {
    return this.views[ref >>> 9].getUint16((ref & 511) * 8, true);
  }

  /** Writes an entry as a granting guest would: domid and frame, then flags (Linux gnttab_update_entry_v1). */
  writeEntry(ref: number, granteeDomid: number, gfn: number, flags: number): void {
    if (ref < 0 || ref >= this.nrEntries)
      throw new RangeError(`grant ref ${ref} outside ${this.nrEntries} entries`);
    const view = this.views[ref >>> 9];
    const at = (ref & 511) * 8;
    view.setUint16(at + 2, granteeDomid, true);
    view.setUint32(at + 4, gfn, true);
    view.setUint16(at, flags, true);
  }

  /** Whether `ref` is pinned by a mapping (readers + writers). */
  pinCount(ref: number): number {
    return ref >= 0 && ref < this.readPins.length ? this.readPins[ref] + this.writePins[ref] : 0;
  }

  /** True when any ref is mapped: the domain's frames must stay alive. */
  hasPins(): boolean {
    for (let ref = 0; ref < this.nrEntries; ref++)
      if (this.readPins[ref] + this.writePins[ref] > 0) return true;
    return false;
  }

  /**
   * Pins `ref` for `granteeDomid` (Xen map_grant_ref + _set_status_v1): the
   * entry is read once, checked (type permit_access, grantee, read-only),
   * then GTF_reading/GTF_writing are set. Returns the frame view or GNTST_*.
   */
  pin(ref: number, granteeDomid: number, writable: boolean): Uint8Array | number {
    if (!Number.isInteger(ref) || ref < 0 || ref >= this.nrEntries) return GntStatus.bad_gntref;
    const view = this.views[ref >>> 9];
    const at = (ref & 511) * 8;
    const flags = view.getUint16(at, true);
    const domid = view.getUint16(at + 2, true);
    const gfn = view.getUint32(at + 4, true);
    const active = this.readPins[ref] + this.writePins[ref] > 0;
    let page: Uint8Array | undefined;
    if (active) {
      // Xen: an active entry keeps its latched grantee and frame; only the
      // writability is re-checked against the shared entry.
      if (this.activeDomid[ref] !== granteeDomid) return GntStatus.general_error;
      page = this.activeView[ref];
    } else {
      if ((flags & GrantFlags.type_mask) !== GrantFlags.permit_access || domid !== granteeDomid) {
        return GntStatus.general_error;
      }
      const frame = this.memory.frame(gfn);
      if (frame === null) return GntStatus.bad_page;
      page = frame;
    }
    if (writable && flags & GrantFlags.readonly) return GntStatus.general_error;
    if (page === undefined) return GntStatus.general_error;
    let newFlags = flags | GrantFlags.reading;
    if (writable) newFlags |= GrantFlags.writing;
    view.setUint16(at, newFlags, true);
    if (writable) this.writePins[ref]++;
    else this.readPins[ref]++;
    this.activeDomid[ref] = granteeDomid;
    this.activeView[ref] = page;
    return page;
  }

  /** Drops one pin; clears GTF_writing with the last writer and GTF_reading with the last pin (Xen unmap_common_complete). */
  unpin(ref: number, writable: boolean): void {
    if (writable) this.writePins[ref]--;
    else this.readPins[ref]--;
    if (this.destroyed || ref >= this.nrEntries) return;
    const view = this.views[ref >>> 9];
    const at = (ref & 511) * 8;
    let flags = view.getUint16(at, true);
    if (this.writePins[ref] === 0) flags &= ~GrantFlags.writing;
    if (this.writePins[ref] + this.readPins[ref] === 0) {
      flags &= ~GrantFlags.reading;
      this.activeDomid[ref] = -1;
      this.activeView[ref] = undefined;
    }
    view.setUint16(at, flags, true);
  }

  /**
   * Checks `ref` for a copy by `granteeDomid` (Xen acquire_grant_for_copy)
   * and returns the frame, or a GNTST_* status. The copy is synchronous, so
   * the GTF_reading/GTF_writing bits Xen holds during it are never observable
   * and are not written.
   */
  frameForCopy(ref: number, granteeDomid: number, write: boolean): Uint8Array | number {
    if (!Number.isInteger(ref) || ref < 0 || ref >= this.nrEntries) return GntStatus.bad_gntref;
    if (this.readPins[ref] + this.writePins[ref] > 0 && this.activeDomid[ref] === granteeDomid) {
      const flags = this.views[ref >>> 9].getUint16((ref & 511) * 8, true);
      if (write && flags & GrantFlags.readonly) return GntStatus.general_error;
      return this.activeView[ref] ?? GntStatus.general_error;
    }
    const view = this.views[ref >>> 9];
    const at = (ref & 511) * 8;
    const flags = view.getUint16(at, true);
    const domid = view.getUint16(at + 2, true);
    const gfn = view.getUint32(at + 4, true);
    if ((flags & GrantFlags.type_mask) !== GrantFlags.permit_access || domid !== granteeDomid) {
      return GntStatus.general_error;
    }
    if (write && flags & GrantFlags.readonly) return GntStatus.general_error;
    return this.memory.frame(gfn) ?? GntStatus.bad_page;
  }

  /** GNTTABOP_set_version: 1 is accepted; 2 answers -ENOSYS (v2 not offered); others -EINVAL. */
  setVersion(version: number): number {
    if (version !== 1 && version !== 2) return -Errno.EINVAL;
    if (version === 2) return -Errno.ENOSYS;
    return 0;
  }

  /**
   * GNTTABOP_swap_grant_ref: swaps two entries unless either is in use
   * (Xen gnttab_swap_grant_ref); returns GNTST_*.
   */
  swap(refA: number, refB: number): number {
    const limit = this.nrEntries;
    if (
      !Number.isInteger(refA) ||
      !Number.isInteger(refB) ||
      refA < 0 ||
      refB < 0 ||
      refA >= limit ||
      refB >= limit
    ) {
      return GntStatus.bad_gntref;
    }
    if (this.pinCount(refA) > 0 || this.pinCount(refB) > 0) return GntStatus.eagain;
    if (refA === refB) return GntStatus.okay;
    const a = this.frames[refA >>> 9];
    const b = this.frames[refB >>> 9];
    const atA = (refA & 511) * 8;
    const atB = (refB & 511) * 8;
    const saved = a.slice(atA, atA + 8);
    a.set(b.subarray(atB, atB + 8), atA);
    b.set(saved, atB);
    return GntStatus.okay;
  }

  /** Marks the table dead (domain destroyed): maps fail with bad_domain; live mappings keep their frames. */
  destroy(): void {
    this.destroyed = true;
  }
}

/**
 * GNTTABOP_copy of one segment (Xen gnttab_copy_one) done by domain
 * `callerDomid`: offsets and length within a page, grant rights (read on the
 * source, write on a non-readonly dest), frames present. Returns GNTST_*.
 */
export function grantCopy(
  callerDomid: number,
  source: GrantCopySideSpec,
  dest: GrantCopySideSpec,
  length: number,
): number {
  if (
    !Number.isInteger(length) ||
    length < 0 ||
    source.offset < 0 ||
    dest.offset < 0 ||
    source.offset + length > PAGE_SIZE ||
    dest.offset + length > PAGE_SIZE
  ) {
    return GntStatus.bad_copy_arg;
  }
  const from = resolveCopySide(callerDomid, source, false);
  if (typeof from === "number") return from;
  const to = resolveCopySide(callerDomid, dest, true);
  if (typeof to === "number") return to;
  to.set(from.subarray(source.offset, source.offset + length), dest.offset);
  return GntStatus.okay;
}

function resolveCopySide(
  callerDomid: number,
  side: GrantCopySideSpec,
  write: boolean,
): Uint8Array | number {
  if (side.isRef) {
    if (side.table === undefined || side.table.destroyed) return GntStatus.bad_domain;
    return side.table.frameForCopy(side.refOrGfn, callerDomid, write);
  }
  if (side.memory === undefined) return GntStatus.bad_domain;
  const frame = side.memory.frame(side.refOrGfn);
  if (frame === null) return GntStatus.bad_page;
  // A frame-number destination must be the copier's own RAM: not a page mapped there from
  // elsewhere (a read-only grant mapping, a hypervisor page), which Xen's p2m types refuse too.
  const directOffset = side.memory.directOffset;
  if (
    write &&
    directOffset !== undefined &&
    directOffset.call(side.memory, side.refOrGfn * 4096) < 0
  ) {
    return GntStatus.bad_page;
  }
  return frame;
}
