import { EvtchnStatus } from "@kumo/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventChannelBus, TWO_LEVEL_LAYOUTS, TwoLevelEvents } from "../src/index";

const DOMAINS = [1, 2, 3];
const value = fc.oneof(
  fc.integer({ min: -2, max: 12 }),
  fc.constantFrom(0x7ff0, 4095, 4096, 2 ** 31, 1.5),
);
const operation = fc.record({
  domain: fc.constantFrom(...DOMAINS),
  op: fc.constantFrom("alloc", "bind", "virq", "ipi", "send", "close", "vcpu", "unmask", "reset"),
  a: value,
  b: value,
});

describe("event-channel properties", () => {
  it("random operations never throw, keep interdomain pairs symmetric and stay within the port limit", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 120 }), (operations) => {
        const bus = new EventChannelBus();
        const tables = new Map(
          DOMAINS.map((domid) => {
            const shared = new Uint8Array(4096);
            const sink = new TwoLevelEvents(shared, TWO_LEVEL_LAYOUTS.x32, 2, () => {});
            sink.setVcpuInfo(0, shared, 0);
            sink.setVcpuInfo(1, shared, 64);
            const table = bus.create(domid, { vcpuCount: 2, maxPorts: 4096, sink });
            table.setPortLimit(16);
            return [domid, table] as const;
          }),
        );
        for (const { domain, op, a, b } of operations) {
          const table = tables.get(domain);
          if (table === undefined) continue;
          let result = 0;
          switch (op) {
            case "alloc":
              result = table.allocUnbound(a);
              break;
            case "bind":
              result = table.bindInterdomain(a, b);
              break;
            case "virq":
              result = table.bindVirq(a, b);
              break;
            case "ipi":
              result = table.bindIpi(a);
              break;
            case "send":
              result = table.send(a);
              break;
            case "close":
              result = table.close(a);
              break;
            case "vcpu":
              result = table.bindVcpu(a, b);
              break;
            case "unmask":
              result = table.unmask(a);
              break;
            case "reset":
              result = table.reset();
              break;
          }
          expect(Number.isInteger(result)).toBe(true);
          expect(result).toBeLessThan(16);
        }
        for (const [domid, table] of tables) {
          for (let port = 1; port < 16; port++) {
            if (table.stateOf(port) !== EvtchnStatus.interdomain) continue;
            const peer = table.peerOf(port);
            expect(peer).not.toBeNull();
            if (peer === null) continue;
            expect(bus.get(peer.domid)?.peerOf(peer.port)).toEqual({ domid, port });
          }
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
