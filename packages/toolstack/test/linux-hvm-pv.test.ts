/**
 * Acceptance test of PVHVM disks (issue 9): the i386 Linux guest from
 * guests/ boots as an HVM domain under `kumo daemon` with the Xen platform
 * PCI device (`xen_platform_pci = 1`) and a `disk`; Linux unplugs the
 * emulated disks through the platform device's ports, sets up its grant
 * table in the device's memory BAR, and xen-blkfront attaches /dev/xvda,
 * served by @kumo/blkback. A write from the guest lands in the host's image.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { Console, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();
const bzImage = guest === null ? null : join(dirname(guest.vmlinux), "bzImage");

describe.skipIf(bzImage === null || !existsSync(bzImage))(
  "Linux i386 HVM guest with PV disks",
  () => {
    it("uses xen-blkfront through the Xen platform PCI device", async () => {
      const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-pv-"));
      writeFileSync(join(dir, "disk.img"), new Uint8Array(8 << 20));
      writeFileSync(
        join(dir, "guest.cfg"),
        [
          'name = "pvhvm"',
          'type = "hvm"',
          "memory = 128",
          `kernel = "${bzImage}"`,
          `ramdisk = "${guest?.initramfs}"`,
          'cmdline = "console=ttyS0"',
          "xen_platform_pci = 1",
          'disk = [ "disk.img,raw,xvda,rw" ]',
          "",
        ].join("\n"),
      );
      const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir }, clock: "virtual" });
      await daemon.listen(join(dir, "kumo.sock"));
      const stdin = new PassThrough();
      const output = new Console(stdin);
      let stderr = "";
      const status = runKumo(["create", "-c", "guest.cfg"], {
        stdout: output,
        stderr: { write: (text: string) => (stderr += text) },
        stdin,
        env: { KUMO_STATE_DIR: dir },
        cwd: dir,
      });
      try {
        await Promise.race([
          output.waitFor(/Kumo test guest i386 ready[\s\S]*# /, 400_000, 0),
          status.then((code) => {
            throw new Error(`kumo exited (${code}) before the prompt: ${stderr}\n${output.output}`);
          }),
        ]);
        expect(output.output).toContain("unplug emulated disks");
        expect(output.output).toContain("Grant table initialized");
        expect(output.output).not.toContain("can't find IRQ for PCI INT A");
        const from = output.output.length;
        stdin.write(
          "grep xvda /proc/partitions; echo kumo-hvm-pv > /dev/xvda; sync; echo @@DONE@@\n",
        );
        await output.waitFor(/202\s+0\s+8192 xvda[\s\S]*@@DONE@@\s/, 120_000, from);
        expect(new TextDecoder().decode(readFileSync(join(dir, "disk.img")).subarray(0, 12))).toBe(
          "kumo-hvm-pv\n",
        );
        stdin.write("poweroff -f\n");
        expect(await status).toBe(0);
      } finally {
        await daemon.close();
      }
    }, 600_000);
  },
);
