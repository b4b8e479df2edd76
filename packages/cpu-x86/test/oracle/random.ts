/** A small seeded generator (xorshift128, Marsaglia 2003) so every run generates the same cases. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = seed | 0 || 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = 0x6a09e667;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c;
    this.c = this.b;
    this.b = s;
    t ^= t << 11;
    t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) | 0;
    return this.a >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** An integer in [low, high]. */
  range(low: number, high: number): number {
    return low + this.below(high - low + 1);
  }

  chance(probability: number): boolean {
    return this.u32() / 0x1_0000_0000 < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** A 32-bit value biased towards the edges where flags change (0, ±1, sign boundaries). */
  interesting(): number {
    switch (this.below(8)) {
      case 0:
        return this.pick([0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff]);
      case 1:
        return this.pick([0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x80000001, 0x00010000]);
      case 2:
        return this.below(0x100);
      default:
        return this.u32();
    }
  }
}
