// A hostile frontend fills the shared ring with random and mutated requests
// and random indices. The backend must answer or stop the ring, never throw,
// never touch memory it was not granted (a bystander domain stays
// byte-identical) and release every grant mapping when stopped.
import { createHash } from "node:crypto";
import { GrantFlags } from "@kumo/abi";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { BlkifRingWorker, createDiskImage, MemoryByteStore, openDiskImage } from "../src/index";
import { pattern, random } from "./helpers";

const MiB = 1024 * 1024;
const RING_GFN = 0x100;
const DATA_GFN = 0x110;
/** The second page of a two-page ring (ring-ref1). */
const SECOND_RING_REF = 200;
const FIRST_REF = 8;
const GRANTED = 48;

function hash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

describe("hostile frontend", () => {
  for (const [persistent, pages] of [
    [true, 1],
    [false, 1],
    [true, 2],
  ] as const) {
    it(`random and mutated requests (${persistent ? "persistent" : "per-request"} grants, ${pages}-page ring)`, async () => {
      const next = random((persistent ? 41 : 42) + pages * 100);
      // io/ring.h: 32 slots of 112 bytes on one page, 64 on two (some straddle the pages).
      const entries = pages === 1 ? 32 : 64;
      const hypervisor = new Hypervisor();
      const guest = hypervisor.createDomain({ name: "hostile", memory: 4 * MiB, vcpus: 1 });
      const bystander = hypervisor.createDomain({ name: "bystander", memory: 2 * MiB, vcpus: 1 });
      const bystanderRam = new Uint8Array(2 * MiB);
      for (let gfn = 0; gfn < 512; gfn++) bystander.memory!.frame(gfn)!.set(pattern(4096, gfn));
      for (let gfn = 0; gfn < 512; gfn++)
        bystanderRam.set(bystander.memory!.frame(gfn)!, gfn * 4096);
      const before = hash(bystanderRam);
      const grants = guest.grants!;
      grants.grow(1);
      grants.writeEntry(FIRST_REF, 0, RING_GFN, GrantFlags.permit_access);
      if (pages === 2)
        grants.writeEntry(SECOND_RING_REF, 0, RING_GFN + 1, GrantFlags.permit_access);
      for (let i = 0; i < GRANTED; i++) {
        const readonly = next() < 0.2 ? GrantFlags.readonly : 0;
        grants.writeEntry(FIRST_REF + 1 + i, 0, DATA_GFN + i, GrantFlags.permit_access | readonly);
      }
      // Bystander grants to someone else: the backend must not be able to use them.
      bystander.grants!.writeEntry(FIRST_REF + 1, 5, 0x10, GrantFlags.permit_access);
      const port = guest.events.allocUnbound(0);
      const disk = new MemoryByteStore();
      await createDiskImage(disk, { format: "qcow2", size: MiB, clusterSize: 4096 });
      const image = await openDiskImage(disk);
      const host = hypervisor.host;
      const ringMappings = [FIRST_REF, SECOND_RING_REF]
        .slice(0, pages)
        .map((ringRef) => host.grants.map(guest.domid, ringRef, true));
      const events = host.openEventChannel();
      let worker: BlkifRingWorker | null = null;
      const local = events.bindInterdomain(guest.domid, port, () => worker?.kick());
      worker = new BlkifRingWorker({
        grants: host.grants,
        domid: guest.domid,
        ring: ringMappings.map((mapping) => mapping.view),
        abi: "x86_64",
        image,
        readOnly: false,
        notify: () => events.notify(local),
        persistentGrants: persistent,
        maxPersistentGrants: 16,
        maxIndirectSegments: 64,
        discard: true,
        flush: true,
      });
      // The guest's view of its ring: consecutive frames, contiguous in the domain's RAM.
      const first = guest.memory!.frame(RING_GFN)!;
      expect(guest.memory!.frame(RING_GFN + 1)!.byteOffset).toBe(first.byteOffset + 4096);
      const ring = new Uint8Array(first.buffer, first.byteOffset, pages * 4096);
      const view = new DataView(first.buffer, first.byteOffset, pages * 4096);
      const ref = () =>
        next() < 0.85 ? FIRST_REF + 1 + Math.floor(next() * GRANTED) : Math.floor(next() * 70000);
      // Indirect pages hold random segments too.
      for (let i = 0; i < 4; i++) {
        const page = new DataView(
          guest.memory!.frame(DATA_GFN + i)!.buffer,
          guest.memory!.frame(DATA_GFN + i)!.byteOffset,
          4096,
        );
        for (let s = 0; s < 512; s++) {
          page.setUint32(s * 8, ref(), true);
          page.setUint8(s * 8 + 4, Math.floor(next() * 9));
          page.setUint8(s * 8 + 5, Math.floor(next() * 10));
        }
      }
      let producer = 0;
      let answered = 0;
      for (let round = 0; round < 300 && worker.broken === null; round++) {
        const batch = 1 + Math.floor(next() * 8);
        for (let b = 0; b < batch; b++) {
          const slot = 64 + ((producer + b) & (entries - 1)) * 112;
          const kind = next();
          if (kind < 0.2) {
            ring.set(pattern(112, round * 100 + b), slot);
          } else {
            ring.fill(0, slot, slot + 112);
            const operation = kind < 0.9 ? Math.floor(next() * 7) : Math.floor(next() * 256);
            view.setUint8(slot, operation);
            view.setUint8(
              slot + 1,
              next() < 0.9 ? 1 + Math.floor(next() * 11) : Math.floor(next() * 256),
            );
            view.setUint32(slot + 8, round * 8 + b, true);
            const sector = next() < 0.8 ? Math.floor(next() * 2048) : Math.floor(next() * 2 ** 32);
            view.setUint32(slot + 16, sector, true);
            if (next() < 0.05) view.setUint32(slot + 20, Math.floor(next() * 2 ** 32), true);
            if (operation === 6) {
              view.setUint8(slot + 1, Math.floor(next() * 3));
              view.setUint16(slot + 2, Math.floor(next() * 80), true);
              for (let i = 0; i < 8; i++)
                view.setUint32(slot + 28 + i * 4, next() < 0.8 ? FIRST_REF + 1 + i : ref(), true);
            } else {
              for (let s = 0; s < 11; s++) {
                view.setUint32(slot + 24 + s * 8, ref(), true);
                view.setUint8(slot + 28 + s * 8, Math.floor(next() * 9));
                view.setUint8(slot + 29 + s * 8, Math.floor(next() * 10));
              }
            }
          }
        }
        producer = (producer + batch) >>> 0;
        // Late in the run, a wild req_prod (which stops the ring); a wild rsp_event any time.
        const wild = next();
        if (round >= 280 && wild < 0.2) view.setUint32(0, Math.floor(next() * 2 ** 32), true);
        else view.setUint32(0, producer, true);
        if (wild > 0.95) view.setUint32(12, Math.floor(next() * 2 ** 32), true);
        guest.events.send(port);
        await new Promise((resolve) => setImmediate(resolve));
        await worker.idle();
        // Mutate slots already consumed: the backend works on its copies.
        ring.set(pattern(112, round), 64 + (producer & (entries - 1)) * 112);
        if (worker.broken === null) {
          answered = view.getUint32(8, true);
          expect(answered).toBe(producer);
        }
      }
      expect(worker.stats.requests).toBeGreaterThan(800);
      expect(worker.stats.errors).toBeGreaterThan(0);
      expect(worker.stats.requests - worker.stats.errors).toBeGreaterThan(0);
      await worker.stop();
      // Every data grant is released.
      for (let i = 0; i <= GRANTED; i++) {
        if (i === 0) continue;
        expect(grants.entryFlags(FIRST_REF + i) & (GrantFlags.reading | GrantFlags.writing)).toBe(
          0,
        );
      }
      const after = new Uint8Array(2 * MiB);
      for (let gfn = 0; gfn < 512; gfn++) after.set(bystander.memory!.frame(gfn)!, gfn * 4096);
      expect(hash(after)).toBe(before);
      for (const mapping of ringMappings) host.grants.unmap(mapping);
      // The image is still a consistent qcow2.
      const check = await (
        image as unknown as { checkRefcounts(): Promise<{ errors: string[] }> }
      ).checkRefcounts();
      expect(check.errors).toEqual([]);
    });
  }
});
