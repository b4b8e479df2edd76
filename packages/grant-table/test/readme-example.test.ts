import { GrantFlags } from "@kumo/abi";
import { GrantMapTrack, GrantTable, grantCopy } from "@kumo/grant-table";
import { createGuestMemory } from "@kumo/mmu";
import { expect, it } from "vitest";

// The README example, verbatim, so that it keeps running.
it("runs the README example", async () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.join(" ")) };

  const guestMemory = createGuestMemory({ ramSize: 1 << 20 });
  const table = new GrantTable(1, { memory: guestMemory });
  // The guest grants its frame 5 to domain 0, read-only (normally it writes the mapped grant frame).
  table.writeEntry(8, 0, 5, GrantFlags.permit_access | GrantFlags.readonly);

  const backend = new GrantMapTrack(0);
  const mapped = backend.map(table, 8, false); // { status: 0, handle, view: 4096 bytes of frame 5 }
  console.log(mapped.status, table.entryFlags(8) & GrantFlags.reading); // 0 8
  backend.unmap(mapped.handle); // GTF_reading cleared

  const buffer = createGuestMemory({ ramSize: 1 << 16 });
  const status = grantCopy(
    0,
    { isRef: true, refOrGfn: 8, offset: 0, table, memory: undefined },
    { isRef: false, refOrGfn: 0, offset: 0, table: undefined, memory: buffer },
    64,
  );
  console.log(status); // 0 (GNTST_okay)

  await Promise.resolve();
  expect(printed).toEqual(["0 8", "0"]);
});
