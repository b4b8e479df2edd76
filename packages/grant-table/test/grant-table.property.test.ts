import { GntStatus, GrantFlags } from "@kumo/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GrantFrameSource, GrantMapTrack, GrantTable } from "../src/index";

const FRAMES = 8;
const GRANTEE = 0;

function memory(): GrantFrameSource & { ram: Uint8Array } {
  const ram = new Uint8Array(FRAMES * 4096);
  return {
    ram,
    frame: (gfn) =>
      Number.isInteger(gfn) && gfn >= 0 && gfn < FRAMES
        ? ram.subarray(gfn * 4096, gfn * 4096 + 4096)
        : null,
  };
}

/** What a hostile or buggy granter and a backend can do, interleaved. */
const operation = fc.oneof(
  fc.record({
    kind: fc.constant("write" as const),
    ref: fc.integer({ min: 0, max: 15 }),
    domid: fc.constantFrom(0, 1, 2, 0xffff),
    gfn: fc.integer({ min: 0, max: FRAMES + 2 }),
    flags: fc.integer({ min: 0, max: 0xffff }),
  }),
  fc.record({
    kind: fc.constant("map" as const),
    ref: fc.integer({ min: -1, max: 600 }),
    writable: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("unmap" as const), pick: fc.nat() }),
);

describe("grant table properties", () => {
  it("a mapping only ever exposes a frame that was granted to the mapper with the rights it asked for", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
        const guest = memory();
        const table = new GrantTable(1, { memory: guest });
        const backend = new GrantMapTrack(GRANTEE);
        const live: { handle: number; ref: number; gfn: number; writable: boolean }[] = [];
        for (const op of operations) {
          if (op.kind === "write") {
            // The guest may write anything, including the hypervisor's own bits.
            table.writeEntry(op.ref, op.domid, op.gfn, op.flags);
            continue;
          }
          if (op.kind === "unmap") {
            if (live.length === 0) continue;
            const [mapping] = live.splice(op.pick % live.length, 1);
            expect(backend.unmap(mapping.handle)).toBe(GntStatus.okay);
            expect(backend.unmap(mapping.handle)).toBe(GntStatus.bad_handle);
            continue;
          }
          const view = new DataView(table.frames[0].buffer);
          const inRange = op.ref >= 0 && op.ref < 512;
          const before = inRange
            ? {
                flags: view.getUint16(op.ref * 8, true),
                domid: view.getUint16(op.ref * 8 + 2, true),
                gfn: view.getUint32(op.ref * 8 + 4, true),
              }
            : null;
          const pinned = live.find((mapping) => mapping.ref === op.ref);
          const result = backend.map(table, op.ref, op.writable);
          if (result.status !== GntStatus.okay) {
            expect(result.view).toBeNull();
            continue;
          }
          expect(before).not.toBeNull();
          if (before === null || result.view === null) return;
          // Writable maps need a writable entry now; a first pin needs permit_access to us.
          if (op.writable) expect(before.flags & GrantFlags.readonly).toBe(0);
          const gfn = pinned?.gfn ?? before.gfn;
          if (pinned === undefined) {
            expect(before.flags & GrantFlags.type_mask).toBe(GrantFlags.permit_access);
            expect(before.domid).toBe(GRANTEE);
          }
          expect(result.view.byteOffset).toBe(gfn * 4096);
          expect(table.entryFlags(op.ref) & GrantFlags.reading).toBe(GrantFlags.reading);
          if (op.writable)
            expect(table.entryFlags(op.ref) & GrantFlags.writing).toBe(GrantFlags.writing);
          live.push({ handle: result.handle, ref: op.ref, gfn, writable: op.writable });
        }
        // Unmapping everything leaves no pins; with no writer left GTF_writing is clear.
        for (const mapping of live) backend.unmap(mapping.handle);
        for (let ref = 0; ref < 16; ref++) {
          expect(table.pinCount(ref)).toBe(0);
        }
        expect(backend.count()).toBe(0);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});
