/**
 * Opt-in measurement (KUMO_NETBACK_BENCH=1): guest-to-guest throughput through two vifs and the
 * bridge, with simulated netfronts on both ends (no guest CPU emulation in the loop), for
 * 1514-byte frames and 64 KiB GSO super-frames. Prints MB/s; asserts only delivery.
 */
import { describe, expect, it } from "vitest";
import { ethernet, guestWithVif, machine, pattern, settle } from "./helpers";

const A = "00:16:3e:00:00:0a";
const B = "00:16:3e:00:00:0b";

describe.skipIf(!process.env.KUMO_NETBACK_BENCH)("throughput", () => {
  for (const [label, size, gso] of [
    ["1514-byte frames", 1500, false],
    ["64 KiB GSO frames", 65_000, true],
  ] as const) {
    it(`moves ${label} from guest a to guest b`, async () => {
      const m = machine();
      const a = await guestWithVif(m, "a", A);
      const b = await guestWithVif(m, "b", B, { rxBuffers: 256 });
      await a.front.connect();
      await b.front.connect();
      const frame = ethernet(B, A, 0x0800, pattern(size, 1));
      const target = 64 * 1024 * 1024;
      let sent = 0;
      let received = 0;
      const start = performance.now();
      while (received < target) {
        while (sent - received < 512 * 1024 && sent < target) {
          if (!a.front.send(frame, gso ? { gso: { type: 1, size: 1448 } } : {})) break;
          sent += frame.length;
        }
        await settle(1);
        a.front.poll();
        for (const got of b.front.poll()) received += got.data.length;
      }
      const seconds = (performance.now() - start) / 1000;
      console.log(
        `${label}: ${(received / 1e6 / seconds).toFixed(1)} MB/s (${(received / 1048576).toFixed(0)} MiB in ${seconds.toFixed(2)} s)`,
      );
      expect(received).toBeGreaterThanOrEqual(target);
      expect(b.front.violations).toEqual([]);
    }, 120_000);
  }
});
