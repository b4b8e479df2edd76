/**
 * Hostile-frontend fuzz (security checklist rules 1-8): guest "a" fills its rings with random
 * and mutated requests, wild ring indices and notification storms, interleaved with valid
 * traffic. After every round: no host exception escaped, the other vif and the host port still
 * exchange frames, no grant of "a" is left mapped or marked in use beyond its two ring pages,
 * and tearing "a" down releases everything. KUMO_NETBACK_FUZZ_ROUNDS / _SEED change the run.
 */
import { GrantFlags, NetifExtraType, NetTxFlags } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import type { EthernetFrame } from "../src/index";
import { ethernet, guestWithVif, machine, pattern, settle } from "./helpers";

const A = "00:16:3e:00:00:0a";
const B = "00:16:3e:00:00:0b";
const HOST = "02:00:00:00:00:01";
const ROUNDS = Number(process.env.KUMO_NETBACK_FUZZ_ROUNDS ?? 30);
const SEED = Number(process.env.KUMO_NETBACK_FUZZ_SEED ?? 0x6b756d6f);
const OPS_PER_ROUND = 40;

class Random {
  constructor(private state: number) {}
  next(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  below(n: number): number {
    return this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

function slot(gref: number, offset: number, flags: number, id: number, size: number): Uint8Array {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, gref >>> 0, true);
  view.setUint16(4, offset & 0xffff, true);
  view.setUint16(6, flags & 0xffff, true);
  view.setUint16(8, id & 0xffff, true);
  view.setUint16(10, size & 0xffff, true);
  return bytes;
}

const EDGE_U16 = [0, 1, 13, 14, 4095, 4096, 4097, 0x7fff, 0x8000, 0xffff];
const EDGE_U32 = [0, 1, 7, 8, 0x1ff, 0x200, 0xffff, 0x7fffffff, 0xffffffff];

describe("hostile frontend fuzz", () => {
  it(`leaves the host and the other vif unharmed (${ROUNDS} rounds x ${OPS_PER_ROUND} ops)`, async () => {
    const random = new Random(SEED);
    let fatalCount = 0;
    let errorsAnswered = 0;
    const fatalReasons = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      const m = machine();
      const a = await guestWithVif(m, "a", A);
      const b = await guestWithVif(m, "b", B);
      await a.front.connect();
      await b.front.connect();
      const host = m.bridges.get("xenbr0").openHostPort();
      const atHost: EthernetFrame[] = [];
      host.onFrame((frame) => atHost.push(frame));
      const granted: number[] = [];
      for (let i = 0; i < 4; i++) granted.push(a.front.grantData(random.bytes(4096)));
      const anyRef = () =>
        random.below(4) === 0
          ? random.pick(EDGE_U32)
          : random.below(3) === 0
            ? random.next()
            : random.pick(granted);

      for (let op = 0; op < OPS_PER_ROUND; op++) {
        const choice = random.below(9);
        if (choice === 0) {
          // Valid traffic, sometimes large, offset, offloaded.
          const length = 14 + random.below(random.below(4) === 0 ? 20_000 : 1500);
          a.front.send(
            ethernet(
              random.pick([B, HOST, "ff:ff:ff:ff:ff:ff"]),
              A,
              0x0800,
              random.bytes(length - 14),
            ),
            {
              offset: random.below(4096),
              checksumBlank: random.below(2) === 0,
              gso:
                random.below(4) === 0
                  ? { type: 1 + random.below(2), size: 1 + random.below(9000) }
                  : undefined,
            },
          );
        } else if (choice === 1) {
          // Fully random slots.
          const count = 1 + random.below(30);
          a.front.sendRawSlots(Array.from({ length: count }, () => random.bytes(12)));
        } else if (choice === 2 || choice === 3) {
          // A plausible chain with one mutated field.
          const count = 1 + random.below(24);
          const slots: Uint8Array[] = [];
          let total = 0;
          const sizes = Array.from({ length: count }, () => 1 + random.below(4096));
          for (const size of sizes) total += size;
          for (let i = 0; i < count; i++) {
            const flags = i < count - 1 ? NetTxFlags.more_data : 0;
            slots.push(slot(random.pick(granted), 0, flags, i, i === 0 ? total : sizes[i]));
            if (i === 0 && random.below(3) === 0) {
              const view = new DataView(slots[0].buffer);
              view.setUint16(6, view.getUint16(6, true) | NetTxFlags.extra_info, true);
              const extra = new Uint8Array(12);
              extra[0] = random.below(3) === 0 ? random.below(8) : NetifExtraType.GSO;
              extra[1] = random.below(4) === 0 ? 1 : 0;
              new DataView(extra.buffer).setUint16(2, random.pick(EDGE_U16), true);
              extra[4] = random.below(4);
              slots.push(extra);
            }
          }
          const target = slots[random.below(slots.length)];
          const view = new DataView(target.buffer);
          switch (random.below(5)) {
            case 0:
              view.setUint32(0, anyRef(), true);
              break;
            case 1:
              view.setUint16(4, random.pick(EDGE_U16), true);
              break;
            case 2:
              view.setUint16(6, random.below(16), true);
              break;
            case 3:
              view.setUint16(10, random.pick(EDGE_U16), true);
              break;
            default:
              target[random.below(12)] ^= 1 << random.below(8);
          }
          a.front.sendRawSlots(slots);
        } else if (choice === 4) {
          // Wild ring indices and event thresholds on either ring.
          const pages = a.front.ringPages();
          const page = random.below(2) === 0 ? pages.tx : pages.rx;
          const view = new DataView(page.buffer, page.byteOffset);
          const field = random.pick([0, 4, 12]);
          const current = view.getUint32(field, true);
          view.setUint32(
            field,
            random.below(2) === 0 ? random.next() : (current + random.below(600) - 300) >>> 0,
            true,
          );
          a.front.notifyTx();
        } else if (choice === 5) {
          // Garbage over posted rx requests, then traffic for a.
          const page = a.front.ringPages().rx;
          for (let i = 0; i < 4; i++) page.set(random.bytes(8), 64 + random.below(256) * 8);
          host.send(ethernet(A, HOST, 0x88b5, random.bytes(46 + random.below(9000))));
        } else if (choice === 6) {
          // Notification storm.
          for (let i = 0; i < 50; i++) a.front.notifyTx();
        } else if (choice === 7) {
          host.send(ethernet(A, HOST, 0x88b5, random.bytes(46 + random.below(1500))), {
            checksumPartial: random.below(2) === 0,
          });
        } else {
          // Garbage over a pending tx slot area (the next slots the frontend will publish).
          const page = a.front.ringPages().tx;
          page.set(random.bytes(12), 64 + random.below(256) * 12);
          a.front.notifyTx();
        }
        await settle(2);
        a.front.poll();
        b.front.poll();
        if (a.backend.vif?.disabled) {
          // Like a guest reloading its driver: close and connect again, then keep going.
          fatalReasons.add(String(a.backend.vif.fatalReason).replace(/[0-9]+/g, "N"));
          errorsAnswered += a.backend.vif.stats.txErrors;
          fatalCount++;
          await a.front.close();
          await a.front.reconnect();
        }
      }
      await settle(6);
      a.front.poll();

      // The other vif and the host port still talk both ways.
      const before = atHost.length;
      const toHost = ethernet(HOST, B, 0x88b5, pattern(400, round));
      b.front.send(toHost);
      for (let i = 0; i < 100 && atHost.length === before; i++) {
        await settle(1);
        b.front.poll();
      }
      expect(atHost.at(-1)?.data).toEqual(toHost);
      const toB = ethernet(B, HOST, 0x88b5, pattern(600, round + 1));
      host.send(toB);
      const got: Uint8Array[] = [];
      for (let i = 0; i < 100 && got.length === 0; i++) {
        await settle(1);
        got.push(...b.front.poll().map((frame) => frame.data));
      }
      expect(got).toEqual([toB]);
      expect(b.front.violations).toEqual([]);
      expect(b.backend.vif?.disabled).toBe(false);

      // Only the four ring pages are mapped; no grant of a is left marked in use.
      expect(m.hypervisor.dom0.maptrack.count()).toBe(4);
      const grants = a.front.domain.grants;
      if (grants === null) throw new Error("no grant table");
      const ringRefs = new Set([a.front.queues[0].txRef, a.front.queues[0].rxRef]);
      for (let ref = 0; ref < grants.nrEntries; ref++) {
        if (ringRefs.has(ref)) continue;
        expect(grants.entryFlags(ref) & (GrantFlags.reading | GrantFlags.writing)).toBe(0);
      }
      errorsAnswered += a.backend.vif?.stats.txErrors ?? 0;

      // Teardown after whatever happened releases a's rings.
      m.store.set(`${a.front.path}/state`, "5");
      await m.store.waitFor(`${a.backend.backendPath}/state`, "5");
      m.store.set(`${a.front.path}/state`, "6");
      await m.store.waitFor(`${a.backend.backendPath}/state`, "6");
      expect(m.hypervisor.dom0.maptrack.count()).toBe(2);
      host.close();
    }
    if (process.env.KUMO_NETBACK_FUZZ_VERBOSE)
      console.log({ fatalCount, errorsAnswered, fatalReasons: [...fatalReasons] });
    // The run must have exercised both outcomes: fatal violations and answered errors.
    expect(fatalCount).toBeGreaterThan(ROUNDS);
    expect(errorsAnswered).toBeGreaterThan(0);
  }, 120_000);
});
