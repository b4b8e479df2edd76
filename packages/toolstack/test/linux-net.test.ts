/**
 * Acceptance test of issue 7 (network) through the toolstack: two unmodified
 * Linux 6.1 i386 guests under one `kumo daemon`, each with
 * `vif = [ "bridge=xenbr0,mac=..." ]`; their own xen-netfront connects to
 * @kumo/netback and both vifs plug into one bridge. The guests configure
 * eth0 inside busybox (10.0.0.1 and 10.0.0.2 exist only inside the emulated
 * guests) and `ping -c 20` must answer every packet. The consoles are
 * driven with `kumo console` through runKumo.
 *
 * Slow (two emulated Linux boots on one thread): skipped without the guest.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { bridgedPair, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();

describe.skipIf(guest === null)(
  "two Linux i386 guests on one bridge (xen-netfront against netback)",
  () => {
    it("ping -c 20 between them loses nothing", async () => {
      const started = performance.now();
      const dir = mkdtempSync(join(tmpdir(), "kumo-net-"));
      const env = { KUMO_STATE_DIR: dir };
      const daemon = new KumoDaemon({ env });
      await daemon.listen(join(dir, "kumo.sock"));
      try {
        const { consoles, ended } = await bridgedPair(dir, env);
        const bootSeconds = (performance.now() - started) / 1000;
        const ping = await consoles[0].run("ping -c 20 10.0.0.2", 30);
        expect(ping).toMatch(/20 packets transmitted, 20 packets received, 0% packet loss/);
        for (const console of consoles) console.stdin.write("poweroff\n");
        expect(await Promise.all(ended)).toEqual([0, 0]);
        process.stderr.write(
          `linux-net: both prompts, eth0 up after ${bootSeconds.toFixed(1)} s, whole test ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
        );
      } finally {
        await daemon.close();
      }
    }, 1_800_000);
  },
);
