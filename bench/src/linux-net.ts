/**
 * Guest-to-guest TCP throughput through @kumo/netback (issue 7, Speed).
 *
 * Two i386 Linux test guests (guests/) under one `kumo daemon`, each with
 * `vif = [ "bridge=xenbr0,mac=..." ]`: their own xen-netfront talks to
 * netback and both vifs plug into one @kumo/netback bridge. Guest a pipes
 * NET_MIB MiB of zeros (`dd if=/dev/zero bs=64k`) into busybox `nc`, guest
 * b's `nc -l` writes them to /dev/null. The time is wall clock on the host
 * from typing a's command to the moment b's `wait` returns (all bytes
 * received and the connection closed), minus an empty command's round trip.
 *
 * Peers measured in the same run: the same pipeline inside guest a alone
 * (`dd ... | cat > /dev/null`: what moving the bytes through a pipe costs the
 * emulated CPU, an upper bound for anything the guest does with them), and
 * the host's own TCP over loopback (a Node socket pair sending the same
 * bytes). Both guests run on one host thread, so the figures include both
 * kernels' TCP stacks and the interpreter.
 * `--net-mib=N` changes the size (default 8).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { i386Guest, startGuests } from "./lib/linux-guest";

const MiB = 1 << 20;

function sizeOption(): number {
  const option = process.argv.find((arg) => arg.startsWith("--net-mib="));
  const value = option ? Number(option.slice("--net-mib=".length)) : 8;
  if (!Number.isInteger(value) || value < 1 || value > 1024)
    throw new Error(`--net-mib must be an integer from 1 to 1024, got ${option}`);
  return value;
}

/** Bytes per second of the host's TCP over loopback: `bytes` through a Node socket pair. */
async function hostLoopback(bytes: number): Promise<number> {
  const chunk = new Uint8Array(64 * 1024);
  return new Promise((resolve, reject) => {
    let received = 0;
    let started = 0;
    const server = createServer((socket) => {
      socket.on("data", (data: Buffer) => {
        received += data.length;
      });
      socket.on("end", () => {
        const seconds = (performance.now() - started) / 1000;
        server.close();
        if (received !== bytes) reject(new Error(`loopback got ${received} of ${bytes} bytes`));
        else resolve(bytes / seconds);
      });
    });
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      const client = createConnection(address.port, "127.0.0.1", () => {
        started = performance.now();
        let sent = 0;
        const pump = () => {
          while (sent < bytes) {
            sent += chunk.length;
            if (!client.write(chunk)) return void client.once("drain", pump);
          }
          client.end();
        };
        pump();
      });
      client.on("error", reject);
    });
  });
}

const benchmark: Benchmark = {
  name: "linux-net",
  description:
    "TCP between two Linux guests on one netback bridge (busybox nc) vs the same bytes through a pipe in one guest and host loopback TCP",
  async run(context: BenchmarkContext) {
    const mib = sizeOption();
    const bytes = mib * MiB;
    const images = i386Guest();
    let host = 0;
    for (let round = 0; round < 3; round++) host = Math.max(host, await hostLoopback(bytes));
    const dir = mkdtempSync(join(tmpdir(), "kumo-bench-net-"));
    try {
      console.log(
        `  load average before the guests: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")}`,
      );
      const bootStarted = performance.now();
      const { consoles, stop } = await startGuests(join(dir, "state"), images, [
        { name: "bench-a", extra: ['vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:0a" ]'] },
        { name: "bench-b", extra: ['vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:0b" ]'] },
      ]);
      const [a, b] = consoles;
      try {
        console.log(
          `  both guests at their prompts after ${((performance.now() - bootStarted) / 1000).toFixed(1)} s`,
        );
        for (const [index, guest] of consoles.entries()) {
          await guest.run(`ip link set eth0 up && ip addr add 10.0.0.${index + 1}/24 dev eth0`);
        }
        const ping = await a.run("ping -c 1 -W 5 10.0.0.2");
        if (!/1 packets received/.test(ping))
          throw new Error(`no ping answer: ${ping.slice(-500)}`);
        let empty = Number.POSITIVE_INFINITY;
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await a.run("true");
          empty = Math.min(empty, (performance.now() - started) / 1000);
        }
        // The pipe alone, in one guest (the other one idle).
        let started = performance.now();
        await a.run(`dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | cat >/dev/null`);
        const pipe = Math.max(1e-3, (performance.now() - started) / 1000 - empty);
        // Guest to guest.
        b.stdin.write("nc -l -p 5000 >/dev/null &\n");
        await b.run("sleep 1");
        started = performance.now();
        await a.run(`dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | nc 10.0.0.2 5000`);
        await b.run("wait");
        const network = Math.max(1e-3, (performance.now() - started) / 1000 - 2 * empty);
        const rate = bytes / network;
        const pipeRate = bytes / pipe;
        context.report({
          label: `guest a -> guest b, TCP with busybox nc (${mib} MiB)`,
          value: rate * 8,
          unit: "bit/s",
          detail: `${network.toFixed(1)} s, ${(rate / 1e6).toFixed(3)} MB/s; guest/pipe-in-guest = ${(rate / pipeRate).toFixed(3)}; guest/host-loopback = ${(rate / host).toExponential(2)}`,
        });
        context.report({
          label: `the same bytes through a pipe inside guest a (dd | cat, ${mib} MiB)`,
          value: pipeRate * 8,
          unit: "bit/s",
          detail: `${pipe.toFixed(1)} s`,
        });
        context.report({
          label: `host TCP over loopback (Node sockets, ${mib} MiB)`,
          value: host * 8,
          unit: "bit/s",
        });
        console.log(`  load average after: ${loadavg()[0].toFixed(1)}`);
      } finally {
        await stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default benchmark;
