import { createGuestMemory, type GuestMemory } from "@kumo/mmu";

/**
 * Wraps a RAM buffer (guest-physical 0 upwards, no MMIO) as a `GuestMemory`
 * of `@kumo/mmu`: the quickest way to give a CPU memory in tests and tools.
 */
export function ramOnly(buffer: ArrayBuffer | SharedArrayBuffer | Uint8Array): GuestMemory {
  let backing: ArrayBuffer | SharedArrayBuffer;
  if (buffer instanceof Uint8Array) {
    if (buffer.byteOffset !== 0 || buffer.byteLength !== buffer.buffer.byteLength) {
      throw new RangeError("ramOnly needs a Uint8Array that covers its whole buffer");
    }
    backing = buffer.buffer as ArrayBuffer | SharedArrayBuffer;
  } else {
    backing = buffer;
  }
  return createGuestMemory({ ramSize: backing.byteLength, buffer: backing });
}
