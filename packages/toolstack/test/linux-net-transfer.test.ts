/**
 * Acceptance test of issue 7 (network, bulk): two unmodified Linux 6.1 i386
 * guests under one `kumo daemon` on one bridge (as linux-net.test.ts), and a
 * 64 MiB TCP transfer from guest a to guest b with busybox `nc`.
 *
 * The data: guest a fills a 1 MiB block from /dev/urandom and sends it
 * TRANSFER_MIB times, so the sender hashes only 1 MiB; guest b cuts the
 * stream it receives into 1 MiB pieces (`dd bs=1M count=1 iflag=fullblock`)
 * and hashes each with `md5sum`. Every piece must have the block's hash (a
 * lost, duplicated or reordered TCP segment shifts or changes a piece), there
 * must be exactly TRANSFER_MIB of them and nothing after: the stream is byte
 * for byte the sender's. A whole-stream hash on the sender as well would add
 * minutes: both guests run on one thread of the interpreter (~10 MIPS).
 *
 * Where the time goes (a --cpu-prof of the transfer phase): 93 % in the
 * guests' emulated CPU (@kumo/cpu-x86 and @kumo/mmu), 0.2 % in
 * @kumo/netback, 0.5 % in @kumo/hypervisor-core; netback alone moves
 * 13 to 36 MB/s (test/throughput.test.ts in netback), the guests about
 * 0.15 to 0.3 MB/s. So 64 MiB takes several minutes.
 *
 * A second case boots both guests with `xen_netfront.max_queues=2`
 * (drivers/net/xen-netfront.c: num_queues = min(the backend's
 * multi-queue-max-queues, that)), checks the multi-queue keys netfront wrote
 * (multi-queue-num-queues, queue-<i>/tx-ring-ref ...) and the guest's two tx
 * queues, and moves 4 MiB the same way over the two-queue vifs.
 *
 * KUMO_NET_TRANSFER_MIB changes the size of the first case (default 64).
 * Slow (two emulated Linux boots on one thread): skipped without the guest.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { bridgedPair, findI386Guest } from "./support/linux-guest";

const guest = findI386Guest();
const TRANSFER_MIB = Number(process.env.KUMO_NET_TRANSFER_MIB ?? 64);

async function transfer(mib: number, queues: number): Promise<void> {
  const TRANSFER_MIB = mib;
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  const dir = mkdtempSync(join(tmpdir(), "kumo-net-transfer-"));
  const env = { KUMO_STATE_DIR: dir };
  const daemon = new KumoDaemon({ env });
  await daemon.listen(join(dir, "kumo.sock"));
  try {
    const { consoles, ended } = await bridgedPair(
      dir,
      env,
      `console=hvc0${queues > 1 ? ` xen_netfront.max_queues=${queues}` : ""}`,
    );
    const log: string[] = [`both prompts, eth0 up at ${seconds()} s`];
    const [a, b] = consoles;
    if (queues > 1) {
      // The keys Linux's talk_to_netback wrote for each queue, read through `kumo xenstore`.
      let out = "";
      const io = {
        stdout: { write: (text: string) => (out += text) },
        stderr: { write: () => true },
        env,
        cwd: dir,
      };
      expect(await runKumo(["list"], io)).toBe(0);
      for (const name of ["a", "b"]) {
        const domid = new RegExp(`^${name}\\s+(\\d+)\\s`, "m").exec(out)?.[1];
        expect(domid, out).toBeDefined();
        const front = `/local/domain/${domid}/device/vif/0`;
        const read = async (key: string) => {
          const before = out.length;
          const status = await runKumo(["xenstore", "read", `${front}/${key}`], io);
          return status === 0 ? out.slice(before).trim() : undefined;
        };
        expect(await read("multi-queue-num-queues")).toBe(String(queues));
        for (let q = 0; q < queues; q++) {
          expect(await read(`queue-${q}/tx-ring-ref`)).toMatch(/^[0-9]+$/);
          expect(await read(`queue-${q}/rx-ring-ref`)).toMatch(/^[0-9]+$/);
        }
        expect(await read("tx-ring-ref")).toBeUndefined();
      }
      const sysfs = await a.run("ls /sys/class/net/eth0/queues", 19);
      expect(sysfs).toMatch(/tx-1/);
    }
    // One ping first, so that ARP is done and both links are up before nc connects.
    expect(await a.run("ping -c 1 -W 5 10.0.0.2", 20)).toMatch(/1 packets received/);

    const blockOut = await a.run(
      "dd if=/dev/urandom of=/tmp/block bs=1024 count=1024 2>/dev/null && md5sum /tmp/block",
      30,
    );
    const blockSum = /([0-9a-f]{32})\s+\/tmp\/block/.exec(blockOut)?.[1];
    expect(blockSum, blockOut).toBeDefined();
    log.push(`1 MiB block ready at ${seconds()} s`);

    // Receiver: one md5 per MiB, then the byte count of whatever follows (must be 0).
    b.stdin.write(
      `nc -l -p 5000 | (i=0; while [ $i -lt ${TRANSFER_MIB} ]; do dd bs=1048576 count=1 iflag=fullblock 2>/dev/null | md5sum; i=$((i+1)); done; echo "tail $(wc -c) bytes") >/tmp/sums 2>&1 &\n`,
    );
    // Give nc time to listen (the shell echoes the job number when it started it).
    await b.run("sleep 2", 40);
    const sendStart = performance.now();
    await a.run(
      `i=0; while [ $i -lt ${TRANSFER_MIB} ]; do cat /tmp/block; i=$((i+1)); done | nc 10.0.0.2 5000`,
      50,
      3_000_000,
    );
    const received = await b.run("wait; cat /tmp/sums", 60, 3_000_000);
    const transferSeconds = (performance.now() - sendStart) / 1000;
    const sums = [...received.matchAll(/^([0-9a-f]{32})\s+-/gm)].map((m) => m[1]);
    expect(sums.length, received).toBe(TRANSFER_MIB);
    expect(new Set(sums)).toEqual(new Set([blockSum]));
    expect(received).toMatch(/tail 0 bytes/);
    log.push(
      `${TRANSFER_MIB} MiB sent and hashed in ${transferSeconds.toFixed(1)} s (${((TRANSFER_MIB * 1048576 * 8) / 1e6 / transferSeconds).toFixed(2)} Mbit/s)`,
    );

    for (const console of consoles) console.stdin.write("poweroff\n");
    expect(await Promise.all(ended)).toEqual([0, 0]);
    log.push(`whole test ${seconds()} s`);
    process.stderr.write(`linux-net-transfer (${queues} queue(s)): ${log.join(", ")}\n`);
  } finally {
    await daemon.close();
  }
}

describe.skipIf(guest === null)(
  "two Linux i386 guests on one bridge: bulk TCP with busybox nc",
  () => {
    it(`${TRANSFER_MIB} MiB from a to b arrive intact`, () => transfer(TRANSFER_MIB, 1), 3_600_000);
    it("4 MiB over two-queue vifs (xen_netfront.max_queues=2)", () => transfer(4, 2), 1_800_000);
  },
);
