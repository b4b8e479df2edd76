/**
 * The code bytes the WebAssembly tier's blocks were generated from, page
 * by page, so that a block never runs code that host code rewrote behind
 * the CPU's back.
 *
 * Between two bumps of the code epoch (`X86Cpu.hostMayWrite`: each `run`,
 * port I/O, MMIO, MSR and CPUID hooks, interrupt acknowledgement) only the
 * CPU writes guest memory, and its writes to a page holding code drop the
 * page's blocks (the code-page map). After a bump, the first entry into a
 * block of a page compares the bytes the page's blocks cover with a copy
 * taken when they were generated; a page that no longer matches loses its
 * blocks and decoded instructions. The check is per page and per epoch:
 * `checked[page]` holds the epoch the page last matched at, which the
 * dispatcher compares before it chains into a block, and JavaScript
 * before it enters one.
 */

/** A page's copy: `words` are its dwords `[lo, hi)`, what its blocks were generated from. */
export interface CodeSnapshot {
  lo: number;
  hi: number;
  words: Int32Array;
}

const EMPTY = new Int32Array(0);

export class CodeSnapshots {
  private readonly pages = new Map<number, CodeSnapshot>();

  /**
   * `ram`: guest RAM from physical 0 as dwords. `checked`: one byte per
   * physical page (WebAssembly scratch, read by the dispatcher). `epoch`:
   * the code epoch now (1 to 255). `codePage`: the CPU's code-page map.
   * `drop(page)`: the CPU's invalidation of a page's code, which calls
   * `forget(page)`.
   */
  constructor(
    private readonly ram: Int32Array,
    readonly checked: Uint8Array,
    private readonly epoch: () => number,
    private readonly codePage: Uint8Array,
    private readonly drop: (page: number) => void,
  ) {}

  /**
   * The snapshot blocks of `page` are generated from now: the page's
   * current one (checked against RAM this epoch), or a new, empty one if
   * there was none or RAM no longer matched it (the page's code is
   * dropped first). Writes to the page drop it from now on.
   */
  current(page: number): CodeSnapshot {
    const existing = this.pages.get(page);
    if (existing !== undefined && (this.checked[page] === this.epoch() || this.verify(page))) {
      return existing;
    }
    const snapshot: CodeSnapshot = { lo: 0, hi: 0, words: EMPTY };
    this.pages.set(page, snapshot);
    this.checked[page] = this.epoch();
    this.codePage[page] = 1;
    return snapshot;
  }

  /**
   * Adds physical bytes `[start, end)` of its page, as RAM holds them now,
   * to `snapshot` (the range it covers grows to include them; RAM still
   * holds the bytes it had, as `current` checked in this epoch).
   */
  extend(snapshot: CodeSnapshot, start: number, end: number): void {
    const base = (start >>> 12) << 10;
    let lo = (start >>> 2) & 1023;
    let hi = Math.min(1024, ((end + 3) >>> 2) - base);
    if (snapshot.hi > snapshot.lo) {
      if (lo >= snapshot.lo && hi <= snapshot.hi) return;
      lo = Math.min(lo, snapshot.lo);
      hi = Math.max(hi, snapshot.hi);
    }
    snapshot.words = this.ram.slice(base + lo, base + hi);
    snapshot.lo = lo;
    snapshot.hi = hi;
  }

  /** Whether `snapshot` is still what the blocks of `page` come from (no write dropped it since). */
  isCurrent(page: number, snapshot: CodeSnapshot): boolean {
    return this.pages.get(page) === snapshot;
  }

  /**
   * Whether `page` still holds the bytes its blocks were generated from;
   * records the epoch if so, else drops the page's code and returns false.
   */
  verify(page: number): boolean {
    const snapshot = this.pages.get(page);
    if (snapshot !== undefined) {
      const { lo, hi, words } = snapshot;
      const ram = this.ram;
      const base = page << 10;
      const from = base + lo;
      const count = hi - lo;
      let i = 0;
      while (i < count && words[i] === ram[from + i]) i++;
      if (i >= count) {
        this.checked[page] = this.epoch();
        return true;
      }
    }
    this.drop(page);
    return false;
  }

  /** The CPU dropped the code of `page`: its snapshot goes too. */
  forget(page: number): void {
    if (this.pages.delete(page)) this.checked[page] = 0;
  }

  /** The epoch wrapped around: every page is checked again at its next entry. */
  resetChecks(): void {
    for (const page of this.pages.keys()) this.checked[page] = 0;
  }

  /** Forgets every page (the CPU dropped all its code: a restored state). */
  clear(): void {
    this.resetChecks();
    this.pages.clear();
  }

  /** Pages with a snapshot (for tests). */
  get size(): number {
    return this.pages.size;
  }
}
