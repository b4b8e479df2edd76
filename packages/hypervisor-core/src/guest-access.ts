/**
 * Copy-in and copy-out of hypercall arguments (Xen copy_from_guest /
 * copy_to_guest). Pointers are guest-virtual addresses in the caller's
 * current address space (xen-abi.md 1.4): each page is translated with
 * `Vcpu.translate` with the access the copy needs, and any failure (walk
 * fault, hole, MMIO, ballooned frame) makes the whole copy fail so that the
 * handler answers -EFAULT. Nothing here throws for a guest value.
 *
 * Arguments are copied once into a private scratch buffer and only the copy
 * is checked and used (xen-abi.md 8.1, XSA-155).
 */
import { type Vcpu, VcpuAccess } from "@kumo/abi";
import type { GuestMemory } from "@kumo/mmu";

const PAGE_SIZE = 4096;
const TWO_POW_32 = 4294967296;

/** A guest-virtual address as two 32-bit halves (64-bit guests). */
export interface GuestPointer {
  low: number;
  high: number;
}

/**
 * The caller of a hypercall: its vCPU, memory and ABI, with scratch space
 * for one argument struct. One per vCPU, reused by every call.
 */
export class GuestAccess {
  /** Scratch for the argument struct being handled (largest struct Kumo copies is 40 bytes; extra room for arrays). */
  readonly scratch = new Uint8Array(256);
  readonly view = new DataView(this.scratch.buffer);
  /** True when the caller is in a 64-bit mode (x64/a64 layouts). */
  longMode = true;

  constructor(
    public vcpu: Vcpu,
    public memory: GuestMemory,
  ) {}

  /**
   * Copies `length` bytes at guest-virtual (low, high) into `target` at
   * `targetOffset`. False on any translation or memory failure.
   */
  readVirtual(
    low: number,
    high: number,
    length: number,
    target: Uint8Array,
    targetOffset = 0,
  ): boolean {
    if (!this.longMode) high = 0;
    let lo = low >>> 0;
    let hi = high >>> 0;
    let done = 0;
    while (done < length) {
      const inPage = PAGE_SIZE - (lo & 0xfff);
      const chunk = Math.min(length - done, inPage);
      const physical = this.vcpu.translate(lo, hi, VcpuAccess.Read);
      if (physical < 0) return false;
      const frame = this.memory.frame(Math.floor(physical / PAGE_SIZE));
      if (frame === null) return false;
      const start = physical % PAGE_SIZE;
      target.set(frame.subarray(start, start + chunk), targetOffset + done);
      done += chunk;
      const next = lo + chunk;
      if (next >= TWO_POW_32) {
        if (!this.longMode) return done >= length; // 32-bit linear addresses wrap: refuse
        hi = (hi + 1) >>> 0;
      }
      lo = next >>> 0;
    }
    return true;
  }

  /** Copies `length` bytes of `source` from `sourceOffset` to guest-virtual (low, high). False on failure. */
  writeVirtual(
    low: number,
    high: number,
    source: Uint8Array,
    sourceOffset: number,
    length: number,
  ): boolean {
    if (!this.longMode) high = 0;
    let lo = low >>> 0;
    let hi = high >>> 0;
    let done = 0;
    while (done < length) {
      const inPage = PAGE_SIZE - (lo & 0xfff);
      const chunk = Math.min(length - done, inPage);
      const physical = this.vcpu.translate(lo, hi, VcpuAccess.Write);
      if (physical < 0) return false;
      // Holes, MMIO and ballooned frames fail the copy (Xen: HVMTRANS_bad_gfn_to_mfn -> -EFAULT);
      // the write itself goes through GuestMemory so that read-only mappings drop it.
      if (this.memory.frame(Math.floor(physical / PAGE_SIZE)) === null) return false;
      this.memory.writeBytes(
        physical,
        source.subarray(sourceOffset + done, sourceOffset + done + chunk),
      );
      done += chunk;
      const next = lo + chunk;
      if (next >= TWO_POW_32) {
        if (!this.longMode) return done >= length;
        hi = (hi + 1) >>> 0;
      }
      lo = next >>> 0;
    }
    return true;
  }

  /** Copies an argument struct of `size` bytes into `scratch`. */
  readStruct(low: number, high: number, size: number): boolean {
    return this.readVirtual(low, high, size, this.scratch, 0);
  }

  /** Writes `scratch[offset, offset + length)` back to the struct at (low, high) + offset. */
  writeStructField(low: number, high: number, offset: number, length: number): boolean {
    const address = (low >>> 0) + offset;
    return this.writeVirtual(
      address >>> 0,
      (high + (address >= TWO_POW_32 ? 1 : 0)) >>> 0,
      this.scratch,
      offset,
      length,
    );
  }

  /** Reads a guest handle (pointer) field: 8 bytes in 64-bit layouts, 4 in x86_32. */
  handleAt(offset: number, out: GuestPointer): void {
    out.low = this.view.getUint32(offset, true);
    out.high = this.longMode ? this.view.getUint32(offset + 4, true) : 0;
  }

  /** Reads a 64-bit field as a double (exact below 2^53; larger values saturate to >= 2^53). */
  u64At(offset: number): number {
    return this.view.getUint32(offset + 4, true) * TWO_POW_32 + this.view.getUint32(offset, true);
  }

  /** Writes a non-negative integer below 2^53 as a 64-bit field. */
  setU64At(offset: number, value: number): void {
    this.view.setUint32(offset, value >>> 0, true);
    this.view.setUint32(offset + 4, Math.floor(value / TWO_POW_32) >>> 0, true);
  }
}

/** Adds `offset` to a guest pointer (with carry into the high half on 64-bit). */
export function advancePointer(pointer: GuestPointer, offset: number, out: GuestPointer): void {
  const sum = (pointer.low >>> 0) + offset;
  out.low = sum >>> 0;
  out.high = (pointer.high + Math.floor(sum / TWO_POW_32)) >>> 0;
}
