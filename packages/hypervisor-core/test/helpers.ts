import type { ArrayBufferGuestMemory } from "@kumo/mmu";

/** Little-endian struct writer for test guests. */
export function put(
  memory: ArrayBufferGuestMemory,
  address: number,
  fields: [offset: number, size: 1 | 2 | 4 | 8, value: number][],
): number {
  for (const [offset, size, value] of fields) {
    if (size === 1) memory.write8(address + offset, value);
    else if (size === 2) memory.write16(address + offset, value);
    else if (size === 4) memory.write32(address + offset, value >>> 0);
    else memory.write64(address + offset, value >>> 0, Math.floor(value / 4294967296) >>> 0);
  }
  return address;
}

export function get32(memory: ArrayBufferGuestMemory, address: number): number {
  return memory.read32(address);
}

export function get64(memory: ArrayBufferGuestMemory, address: number): number {
  return memory.read32(address + 4) * 4294967296 + memory.read32(address);
}
