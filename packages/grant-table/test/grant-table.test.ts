import { Errno, GntStatus, GrantFlags } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { type GrantFrameSource, GrantMapTrack, GrantTable, grantCopy } from "../src/index";

/** A tiny guest memory: frames 0..15 present. */
function memory(frames = 16): GrantFrameSource & { ram: Uint8Array } {
  const ram = new Uint8Array(frames * 4096);
  return {
    ram,
    frame: (gfn) =>
      Number.isInteger(gfn) && gfn >= 0 && gfn < frames
        ? ram.subarray(gfn * 4096, gfn * 4096 + 4096)
        : null,
  };
}

describe("grant table v1", () => {
  it("maps a permitted ref, sets reading/writing while mapped and clears them on unmap", () => {
    const guestMemory = memory();
    const table = new GrantTable(1, { memory: guestMemory });
    const backend = new GrantMapTrack(0);
    table.writeEntry(8, 0, 3, GrantFlags.permit_access);
    const mapped = backend.map(table, 8, true);
    expect(mapped.status).toBe(GntStatus.okay);
    mapped.view?.set([1, 2, 3]);
    expect(Array.from(guestMemory.ram.subarray(3 * 4096, 3 * 4096 + 3))).toEqual([1, 2, 3]);
    expect(table.entryFlags(8)).toBe(
      GrantFlags.permit_access | GrantFlags.reading | GrantFlags.writing,
    );
    const again = backend.map(table, 8, false);
    expect(backend.unmap(mapped.handle)).toBe(GntStatus.okay);
    expect(table.entryFlags(8)).toBe(GrantFlags.permit_access | GrantFlags.reading);
    expect(backend.unmap(again.handle)).toBe(GntStatus.okay);
    expect(table.entryFlags(8)).toBe(GrantFlags.permit_access);
    expect(backend.unmap(again.handle)).toBe(GntStatus.bad_handle);
    expect(backend.unmap(-1)).toBe(GntStatus.bad_handle);
  });

  it("refuses wrong grantee, wrong type, read-only writes, bad refs and absent frames", () => {
    const table = new GrantTable(1, { memory: memory() });
    const backend = new GrantMapTrack(0);
    table.writeEntry(8, 2, 3, GrantFlags.permit_access);
    expect(backend.map(table, 8, false).status).toBe(GntStatus.general_error);
    table.writeEntry(9, 0, 3, GrantFlags.accept_transfer);
    expect(backend.map(table, 9, false).status).toBe(GntStatus.general_error);
    table.writeEntry(10, 0, 3, GrantFlags.permit_access | GrantFlags.readonly);
    expect(backend.map(table, 10, true).status).toBe(GntStatus.general_error);
    expect(backend.map(table, 10, false).status).toBe(GntStatus.okay);
    expect(backend.map(table, 512, false).status).toBe(GntStatus.bad_gntref);
    expect(backend.map(table, -1, false).status).toBe(GntStatus.bad_gntref);
    table.writeEntry(11, 0, 99, GrantFlags.permit_access);
    expect(backend.map(table, 11, false).status).toBe(GntStatus.bad_page);
    expect(backend.map(undefined, 11, false).status).toBe(GntStatus.bad_domain);
  });

  it("keeps the latched frame while mapped even if the guest rewrites the entry (revocation while mapped)", () => {
    const guestMemory = memory();
    const table = new GrantTable(1, { memory: guestMemory });
    const backend = new GrantMapTrack(0);
    table.writeEntry(8, 0, 3, GrantFlags.permit_access);
    const first = backend.map(table, 8, false);
    // A hostile guest clears the entry with a plain write and points it elsewhere.
    table.writeEntry(8, 0, 4, 0);
    const second = backend.map(table, 8, false);
    expect(second.status).toBe(GntStatus.okay);
    expect(second.view?.byteOffset).toBe(first.view?.byteOffset);
    backend.unmap(first.handle);
    backend.unmap(second.handle);
    expect(backend.map(table, 8, false).status).toBe(GntStatus.general_error);
  });

  it("grows through add_to_physmap up to the maximum only", () => {
    const table = new GrantTable(1, { memory: memory(), maxFrames: 4 });
    expect(table.nrFrames).toBe(1);
    expect(table.frameForPhysmap(3)).not.toBeNull();
    expect(table.nrFrames).toBe(4);
    expect(table.frameForPhysmap(4)).toBeNull();
    expect(table.frameForPhysmap(0x80000000)).toBeNull();
    expect(table.setVersion(1)).toBe(0);
    expect(table.setVersion(2)).toBe(-Errno.ENOSYS);
    expect(table.setVersion(3)).toBe(-Errno.EINVAL);
  });

  it("copies with Xen's checks: bounds, rights and read-only destinations", () => {
    const granterMemory = memory();
    const copierMemory = memory();
    const table = new GrantTable(1, { memory: granterMemory });
    table.writeEntry(8, 2, 5, GrantFlags.permit_access);
    table.writeEntry(9, 2, 6, GrantFlags.permit_access | GrantFlags.readonly);
    granterMemory.ram.set([9, 8, 7], 5 * 4096 + 100);
    const own = (gfn: number, offset: number) => ({
      isRef: false,
      refOrGfn: gfn,
      offset,
      table: undefined,
      memory: copierMemory,
    });
    const ref = (r: number, offset: number) => ({
      isRef: true,
      refOrGfn: r,
      offset,
      table,
      memory: undefined,
    });
    expect(grantCopy(2, ref(8, 100), own(1, 0), 3)).toBe(GntStatus.okay);
    expect(Array.from(copierMemory.ram.subarray(4096, 4099))).toEqual([9, 8, 7]);
    expect(grantCopy(2, own(1, 0), ref(9, 0), 3)).toBe(GntStatus.general_error);
    expect(grantCopy(2, own(1, 0), ref(8, 4095), 2)).toBe(GntStatus.bad_copy_arg);
    expect(grantCopy(2, own(1, 4000), ref(8, 0), 100)).toBe(GntStatus.bad_copy_arg);
    expect(grantCopy(3, ref(8, 0), own(1, 0), 1)).toBe(GntStatus.general_error);
    expect(grantCopy(2, ref(4096, 0), own(1, 0), 1)).toBe(GntStatus.bad_gntref);
    expect(grantCopy(2, ref(8, 0), own(99, 0), 1)).toBe(GntStatus.bad_page);
    expect(table.entryFlags(8)).toBe(GrantFlags.permit_access);
  });

  it("swaps unused entries and refuses pinned ones", () => {
    const table = new GrantTable(1, { memory: memory() });
    table.writeEntry(8, 0, 3, GrantFlags.permit_access);
    table.writeEntry(9, 0, 4, GrantFlags.permit_access | GrantFlags.readonly);
    expect(table.swap(8, 9)).toBe(GntStatus.okay);
    expect(table.entryFlags(8)).toBe(GrantFlags.permit_access | GrantFlags.readonly);
    const backend = new GrantMapTrack(0);
    backend.map(table, 8, false);
    expect(table.swap(8, 9)).toBe(GntStatus.eagain);
    expect(table.swap(8, 100000)).toBe(GntStatus.bad_gntref);
  });
});
