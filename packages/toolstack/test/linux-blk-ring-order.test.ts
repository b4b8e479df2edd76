/**
 * Issue 7 (blkback multi-page rings) with the real frontend: the Linux 6.1
 * i386 guest boots with `xen_blkfront.max_ring_page_order=2` on its command
 * line (drivers/block/xen-blkfront.c: the ring then spans
 * min(that, the backend's max-ring-page-order) = 2, i.e. 4 pages, written as
 * ring-page-order and ring-ref0..ring-ref3) and a raw disk. The test checks
 * the keys blkfront wrote in xenstore (through `kumo xenstore read`), then
 * has the guest write 4 MiB of random data to /dev/xvda with O_DIRECT and
 * read it back (md5 equal in the guest), and compares the guest's md5 with
 * the host's md5 of the same bytes in the image file.
 *
 * Slow (an emulated Linux boot): skipped without the guest.
 */
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { Console, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();
const MiB = 1 << 20;

describe.skipIf(guest === null)("Linux blkfront on a multi-page ring (ring-page-order 2)", () => {
  it("negotiates 4 ring pages and moves 4 MiB through them intact", async () => {
    const started = performance.now();
    const dir = mkdtempSync(join(tmpdir(), "kumo-blk-order-"));
    const env = { KUMO_STATE_DIR: dir };
    const daemon = new KumoDaemon({ env });
    await daemon.listen(join(dir, "kumo.sock"));
    const image = join(dir, "disk.raw");
    writeFileSync(image, new Uint8Array(0));
    truncateSync(image, 16 * MiB);
    try {
      writeFileSync(
        join(dir, "g.cfg"),
        [
          'name = "g"',
          'type = "pvh"',
          "memory = 128",
          `kernel = "${guest!.vmlinux}"`,
          `ramdisk = "${guest!.initramfs}"`,
          'cmdline = "console=hvc0 xen_blkfront.max_ring_page_order=2"',
          `disk = [ "format=raw,vdev=xvda,access=rw,target=${image}" ]`,
          "",
        ].join("\n"),
      );
      let out = "";
      let stderr = "";
      const io = {
        stdout: { write: (text: string) => (out += text) },
        stderr: { write: (text: string) => (stderr += text) },
        env,
        cwd: dir,
      };
      expect(await runKumo(["create", "g.cfg"], io), stderr).toBe(0);
      const stdin = new PassThrough();
      const console = new Console(stdin);
      const ended = runKumo(["console", "g"], { ...io, stdout: console, stdin });
      await console.waitFor(/Kumo test guest i386 ready[\s\S]*# (?:[^\w\s]\[6n)?/, 900_000, 0);
      expect(console.output).not.toMatch(/blkfront.*(failed|error)|xenbus_probe.*fail/i);

      // What Linux's talk_to_blkback wrote: the order and four numbered refs, no plain ring-ref.
      out = "";
      expect(await runKumo(["list"], io)).toBe(0);
      const domid = /^g\s+(\d+)\s/m.exec(out)?.[1];
      expect(domid, out).toBeDefined();
      const front = `/local/domain/${domid}/device/vbd/51712`;
      const read = async (key: string) => {
        out = "";
        const status = await runKumo(["xenstore", "read", `${front}/${key}`], io);
        return status === 0 ? out.trim() : undefined;
      };
      expect(await read("ring-page-order")).toBe("2");
      for (let i = 0; i < 4; i++) expect(await read(`ring-ref${i}`)).toMatch(/^[0-9]+$/);
      expect(await read("ring-ref")).toBeUndefined();
      expect(await read("state")).toBe("4");

      const written = await console.run(
        "dd if=/dev/urandom of=/tmp/data bs=4096 count=1024 2>/dev/null && " +
          "dd if=/tmp/data of=/dev/xvda bs=65536 oflag=direct 2>/dev/null && md5sum /tmp/data && " +
          "dd if=/dev/xvda bs=65536 count=64 iflag=direct 2>/dev/null | md5sum",
        10,
      );
      const sums = [...written.matchAll(/^([0-9a-f]{32})\s/gm)].map((m) => m[1]);
      expect(sums, written).toHaveLength(2);
      expect(sums[1]).toBe(sums[0]);
      stdin.write("poweroff\n");
      expect(await ended).toBe(0);

      // The host reads the same 4 MiB from the image file.
      const bytes = new Uint8Array(4 * MiB);
      const fd = openSync(image, "r");
      try {
        readSync(fd, bytes, 0, bytes.length, 0);
      } finally {
        closeSync(fd);
      }
      expect(createHash("md5").update(bytes).digest("hex")).toBe(sums[0]);
      process.stderr.write(
        `linux-blk-ring-order: whole test ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await daemon.close();
    }
  }, 1_800_000);
});
