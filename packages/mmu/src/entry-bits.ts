import type { GuestMemory } from "./guest-memory";

/**
 * Sets `bits` in the 32-bit paging entry at `address` with an atomic OR when
 * the entry is in directly accessible RAM, so that a concurrent update by
 * another vCPU (in a Worker, on a SharedArrayBuffer) or by the guest is not
 * lost; the processor's own A/D updates are locked operations too (Intel SDM
 * vol. 3A 4.8, Arm ARM chapter D8, hardware management of the Access flag).
 */
export function setEntryBits(memory: GuestMemory, address: number, bits: number): void {
  const offset = memory.directOffset(address);
  if (offset >= 0 && (offset & 3) === 0) Atomics.or(memory.ram.i32, offset >>> 2, bits);
  else memory.write32(address, memory.read32(address) | bits);
}
