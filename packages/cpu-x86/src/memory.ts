/**
 * The physical address space as the CPU sees it. `@kumo/mmu` was not yet
 * published when this package was written, so the CPU takes this small
 * consumer-side interface (the shape of rust-vmm's vm-memory): RAM as bytes
 * it may touch directly on its hot path, and a callback for everything else
 * (MMIO, holes). An adapter from `@kumo/mmu`'s `GuestMemory` fits in a few lines.
 */
export interface PhysicalMemory {
  /**
   * Guest RAM starting at guest-physical address 0. Its length must be a
   * multiple of 4096. Backed by an ArrayBuffer or a SharedArrayBuffer.
   */
  readonly ram: Uint8Array;
  /**
   * Reads `size` bytes at a guest-physical address outside `ram`
   * (MMIO or a hole). Unclaimed addresses read as all-ones.
   */
  readPhysical?(address: number, size: 1 | 2 | 4): number;
  /** Writes outside `ram`; unclaimed writes are dropped. */
  writePhysical?(address: number, size: 1 | 2 | 4, value: number): void;
}

/** Wraps a RAM buffer (ArrayBuffer, SharedArrayBuffer or Uint8Array) with no MMIO. */
export function ramOnly(buffer: ArrayBufferLike | Uint8Array): PhysicalMemory {
  const ram = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (ram.byteLength % 4096 !== 0) {
    throw new RangeError(`guest RAM must be a multiple of 4096 bytes, got ${ram.byteLength}`);
  }
  return { ram };
}
