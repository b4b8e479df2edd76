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
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { Console, findI386Guest } from "./support/linux-guest";

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
      const consoles: Console[] = [];
      const ended: Promise<number>[] = [];
      try {
        for (const [name, host] of [
          ["a", 1],
          ["b", 2],
        ] as const) {
          writeFileSync(
            join(dir, `${name}.cfg`),
            [
              `name = "${name}"`,
              'type = "pvh"',
              "memory = 128",
              `kernel = "${guest!.vmlinux}"`,
              `ramdisk = "${guest!.initramfs}"`,
              'cmdline = "console=hvc0"',
              `vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:0${host}" ]`,
              "",
            ].join("\n"),
          );
          let stderr = "";
          const io = {
            stdout: { write: () => true },
            stderr: { write: (text: string) => (stderr += text) },
            env,
            cwd: dir,
          };
          expect(await runKumo(["create", `${name}.cfg`], io), stderr).toBe(0);
          const stdin = new PassThrough();
          const console = new Console(stdin);
          consoles.push(console);
          ended.push(runKumo(["console", name], { ...io, stdout: console, stdin }));
        }
        for (const console of consoles) {
          // From the start of the output: the other guest may have printed its banner meanwhile.
          await console.waitFor(/Kumo test guest i386 ready[\s\S]*# (?:[^\w\s]\[6n)?/, 900_000, 0);
        }
        const bootSeconds = (performance.now() - started) / 1000;
        for (const [index, console] of consoles.entries()) {
          await console.run(
            `ip link set eth0 up && ip addr add 10.0.0.${index + 1}/24 dev eth0`,
            10 + index,
          );
        }
        const ping = await consoles[0].run("ping -c 20 10.0.0.2", 30);
        expect(ping).toMatch(/20 packets transmitted, 20 packets received, 0% packet loss/);
        for (const console of consoles) console.stdin.write("poweroff\n");
        expect(await Promise.all(ended)).toEqual([0, 0]);
        process.stderr.write(
          `linux-net: both prompts after ${bootSeconds.toFixed(1)} s, whole test ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
        );
      } finally {
        await daemon.close();
      }
    }, 1_800_000);
  },
);
