/**
 * Permission and attribute bits of a TLB entry, shared by the x86 and arm64
 * walkers. Every guest access kind maps to exactly one bit, so a hit answers
 * the permission check with one AND. "User" is x86 CPL 3 / arm64 EL0;
 * "Supervisor" is CPL 0-2 / EL1. The `...Smap` bits are what a supervisor
 * data access may do while SMAP (x86, CR4.SMAP with EFLAGS.AC=0 or an
 * implicit supervisor access) or PAN (arm64 PSTATE.PAN) is in force: the same
 * rights minus every user-accessible page.
 */
export const TlbPermission = {
  ReadUser: 1 << 0,
  WriteUser: 1 << 1,
  ExecuteUser: 1 << 2,
  ReadSupervisor: 1 << 3,
  WriteSupervisor: 1 << 4,
  ExecuteSupervisor: 1 << 5,
  ReadSupervisorSmap: 1 << 6,
  WriteSupervisorSmap: 1 << 7,
  /** Matches every address-space identifier (x86 G with CR4.PGE, arm64 nG=0). */
  Global: 1 << 8,
  /** The entry comes from a page larger than 4 KiB (found by `flushPage` of any address in it). */
  LargePage: 1 << 9,
} as const;

/** All six access bits plus both SMAP bits. */
export const TLB_ACCESS_MASK = 0xff;

const GLOBAL = TlbPermission.Global;
const LARGE = TlbPermission.LargePage;

/**
 * A software TLB for both CPUs: direct-mapped, keyed by virtual page number
 * (4 KiB; larger pages are cached one 4 KiB slice at a time) and tagged with
 * the address-space identifier (x86 PCID, arm64 ASID).
 *
 * Hot path: `lookup` is a masked index, two integer tag compares, one AND for
 * permissions and one stamp compare, over typed arrays, with no allocation.
 * Invalidation by identifier is O(1): each identifier owns a "stamp" and an
 * entry is valid only while its stamp is the current one for its identifier
 * (or the global stamp, for global entries). Flushing an identifier or all
 * non-global entries just hands out fresh stamps.
 *
 * What a CPU must do (the architectural invalidation points):
 * - x86 MOV CR3 with CR4.PCIDE=0: `flushNonGlobal()` (SDM vol. 3A 4.10.4.1).
 *   With CR4.PCIDE=1: `setAsid(pcid)`, then `flushAsid(pcid)` unless bit 63
 *   of the source operand is set.
 * - x86 INVLPG / arm64 TLBI VA*: `flushPage(va)`; INVPCID / TLBI ASIDE1: `flushAsid`.
 * - x86 changes of CR0.PG/WP, CR4.PGE/PAE/PSE/SMEP/SMAP/PCIDE, EFER.NXE, and
 *   arm64 changes of SCTLR_EL1.M/WXN, TCR_EL1, TLBI VMALLE1: `flushAll()`.
 *   The cached permission bits are computed under those controls, so the
 *   software TLB must forget them even where hardware need not.
 * - A p2m change (`GuestMemory.addP2mListener`): `flushAll()`.
 */
export class SoftTlb {
  /** Number of entries (a power of two). */
  readonly size: number;
  /** Virtual page number bits 31:0 (VA bits 43:12). */
  readonly tagLow: Int32Array;
  /** Virtual page number bits 51:32 (VA bits 63:44). */
  readonly tagHigh: Int32Array;
  /** `TlbPermission` bits; 0 for an empty entry. */
  readonly permissions: Int32Array;
  /** Guest-physical address of the 4 KiB page. */
  readonly physicalPage: Float64Array;
  /**
   * Offset of the page in `GuestRam.u8` when the page is directly
   * accessible RAM, else -1 (MMIO, mapped frames, holes: use `GuestMemory`).
   */
  readonly hostOffset: Int32Array;
  /** Memory attributes (arm64: the MAIR byte; x86: PAT/PCD/PWT bits), passed through. */
  readonly attributes: Int32Array;
  private readonly stamp: Int32Array;
  /** log2 of the size of the page each entry came from. */
  private readonly pageShifts: Uint8Array;
  private readonly mask: number;
  /** Stamp of each identifier (4096 PCIDs, 65536 ASIDs). */
  private readonly asidStamp: Int32Array;
  private nextStamp = 1;
  /** Stamps below this are stale for every identifier (flushNonGlobal). */
  private minimumStamp = 1;
  private globalStamp: number;
  private currentStamp: number;
  private currentAsid = 0;
  private largeEntries = 0;

  constructor(size = 4096) {
    if (!Number.isInteger(size) || size < 16 || (size & (size - 1)) !== 0) {
      throw new RangeError(`TLB size must be a power of two >= 16, got ${size}`);
    }
    this.size = size;
    this.mask = size - 1;
    this.tagLow = new Int32Array(size);
    this.tagHigh = new Int32Array(size);
    this.permissions = new Int32Array(size);
    this.physicalPage = new Float64Array(size);
    this.hostOffset = new Int32Array(size).fill(-1);
    this.attributes = new Int32Array(size);
    this.stamp = new Int32Array(size);
    this.pageShifts = new Uint8Array(size);
    this.asidStamp = new Int32Array(65536);
    this.globalStamp = this.nextStamp++;
    this.currentStamp = this.nextStamp++;
    this.asidStamp[0] = this.currentStamp;
  }

  /** The identifier whose non-global entries match (x86 PCID, arm64 ASID). */
  get asid(): number {
    return this.currentAsid;
  }

  /**
   * Switches to another address-space identifier (x86 PCID on MOV CR3 with
   * CR4.PCIDE, arm64 ASID on a TTBR write). Entries of the old one are kept.
   */
  setAsid(asid: number): void {
    asid &= 0xffff;
    this.currentAsid = asid;
    if (this.asidStamp[asid] < this.minimumStamp) this.asidStamp[asid] = this.newStamp();
    this.currentStamp = this.asidStamp[asid];
  }

  /**
   * The entry that translates `va` for an access needing `access` (one
   * `TlbPermission` bit), or -1 on a miss or missing right (then walk: the
   * walk refills or reports the fault). Read the result from `hostOffset`,
   * `physicalPage`, `attributes` at the returned index.
   */
  lookup(vaLow: number, vaHigh: number, access: number): number {
    const index = (vaLow >>> 12) & this.mask;
    if (
      this.tagLow[index] !== ((vaLow >>> 12) | (vaHigh << 20)) ||
      this.tagHigh[index] !== vaHigh >>> 12
    ) {
      return -1;
    }
    const permissions = this.permissions[index];
    if ((permissions & access) === 0) return -1;
    const expected = (permissions & GLOBAL) !== 0 ? this.globalStamp : this.currentStamp;
    return this.stamp[index] === expected ? index : -1;
  }

  /** The guest-physical address of `va` on a hit, else -1. */
  translate(vaLow: number, vaHigh: number, access: number): number {
    const index = this.lookup(vaLow, vaHigh, access);
    return index < 0 ? -1 : this.physicalPage[index] + (vaLow & 0xfff);
  }

  /**
   * Caches one 4 KiB slice of a translation for the current identifier.
   * `physicalPage` is the guest-physical address of the 4 KiB page that holds
   * `va`; `pageShift` the size of the page it came from (12, 21, 22 or 30).
   * Returns the entry index.
   */
  insert(
    vaLow: number,
    vaHigh: number,
    physicalPage: number,
    permissions: number,
    pageShift: number,
    hostOffset: number,
    attributes: number,
  ): number {
    const index = (vaLow >>> 12) & this.mask;
    if ((this.permissions[index] & LARGE) !== 0) this.largeEntries--;
    if (pageShift > 12) {
      permissions |= LARGE;
      this.largeEntries++;
    } else {
      permissions &= ~LARGE;
    }
    this.tagLow[index] = (vaLow >>> 12) | (vaHigh << 20);
    this.tagHigh[index] = vaHigh >>> 12;
    this.permissions[index] = permissions;
    this.physicalPage[index] = physicalPage;
    this.hostOffset[index] = hostOffset;
    this.attributes[index] = attributes;
    this.pageShifts[index] = pageShift;
    this.stamp[index] = (permissions & GLOBAL) !== 0 ? this.globalStamp : this.currentStamp;
    return index;
  }

  /** Forgets every entry, global ones too. */
  flushAll(): void {
    this.permissions.fill(0);
    this.largeEntries = 0;
    this.globalStamp = this.newStamp();
    this.flushNonGlobal();
  }

  /** Forgets the non-global entries of every identifier (x86 MOV CR3 without PCIDs). */
  flushNonGlobal(): void {
    this.minimumStamp = this.nextStamp;
    this.asidStamp[this.currentAsid] = this.newStamp();
    this.currentStamp = this.asidStamp[this.currentAsid];
  }

  /** Forgets the non-global entries of one identifier (INVPCID single-context, TLBI ASIDE1). */
  flushAsid(asid: number): void {
    asid &= 0xffff;
    this.asidStamp[asid] = this.newStamp();
    if (asid === this.currentAsid) this.currentStamp = this.asidStamp[asid];
  }

  /**
   * Forgets every entry for the page that holds `va`, whatever its size and
   * identifier (INVLPG, TLBI VAAE1; invalidating more than asked is allowed,
   * SDM vol. 3A 4.10.4.1 and Arm ARM chapter D8, TLB maintenance).
   */
  flushPage(vaLow: number, vaHigh: number): void {
    const index = (vaLow >>> 12) & this.mask;
    const tagLow = (vaLow >>> 12) | (vaHigh << 20);
    const tagHigh = vaHigh >>> 12;
    if (this.tagLow[index] === tagLow && this.tagHigh[index] === tagHigh) this.drop(index);
    if (this.largeEntries === 0) return;
    // Slices of a large page sit at other indices: find those that cover va.
    for (let i = 0; i < this.size; i++) {
      const permissions = this.permissions[i];
      if ((permissions & LARGE) === 0 || this.tagHigh[i] !== tagHigh) continue;
      const spanMask = ~((1 << (this.pageShifts[i] - 12)) - 1);
      if ((this.tagLow[i] & spanMask) === (tagLow & spanMask)) this.drop(i);
    }
  }

  private drop(index: number): void {
    if ((this.permissions[index] & LARGE) !== 0) this.largeEntries--;
    this.permissions[index] = 0;
    this.stamp[index] = 0;
  }

  private newStamp(): number {
    if (this.nextStamp === 0x7fffffff) {
      // Stamps ran out after 2^31 flushes: start again from a clean table.
      this.stamp.fill(0);
      this.permissions.fill(0);
      this.asidStamp.fill(0);
      this.largeEntries = 0;
      this.nextStamp = 1;
      this.minimumStamp = 1;
      this.globalStamp = this.nextStamp++;
      this.asidStamp[this.currentAsid] = this.nextStamp++;
      this.currentStamp = this.asidStamp[this.currentAsid];
    }
    return this.nextStamp++;
  }
}
