/**
 * @kumo/xenstore: request round trips per second over the Unix-socket
 * transport with 1, 8 and 32 concurrent clients (writes and reads), and watch
 * events delivered per second to 1 and 16 watchers. The daemon runs in this
 * process (so clients and daemon share one event loop: a conservative
 * figure). There is no peer in this run: Xen's C xenstored and oxenstored do
 * not start without a real Xen on this machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Xenstored } from "@kumo/xenstore";
import { connectSocket, listenUnixSocket } from "@kumo/xenstore/node";
import type { Benchmark, BenchmarkContext } from "./lib/harness";

async function roundTrips(
  socketPath: string,
  seconds: number,
  clients: number,
  operation: "write" | "read",
): Promise<number> {
  const connections = await Promise.all(
    Array.from({ length: clients }, () => connectSocket(socketPath)),
  );
  await Promise.all(connections.map((client, index) => client.write(`/bench/c${index}`, "0")));
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    connections.map(async (client, index) => {
      const path = `/bench/c${index}`;
      while (performance.now() < deadline) {
        if (operation === "write") await client.write(path, String(count));
        else await client.read(path);
        count++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  for (const client of connections) client.close();
  return count / elapsed;
}

async function watchEvents(socketPath: string, seconds: number, watchers: number) {
  const writer = await connectSocket(socketPath);
  const connections = await Promise.all(
    Array.from({ length: watchers }, () => connectSocket(socketPath)),
  );
  let delivered = 0;
  await Promise.all(connections.map((client) => client.watch("/watched", () => delivered++)));
  // Let the initial firing of each watch arrive, then count from zero.
  await new Promise((resolve) => setTimeout(resolve, 50));
  delivered = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) await writer.write("/watched/key", String(delivered));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const elapsed = (performance.now() - start) / 1000;
  for (const client of [writer, ...connections]) client.close();
  return delivered / elapsed;
}

const benchmark: Benchmark = {
  name: "xenstore",
  description: "xenstore round trips per second over the Unix socket, watch events delivered",
  async run(context: BenchmarkContext) {
    const dir = mkdtempSync(join(tmpdir(), "kumo-xenstore-bench-"));
    const socketPath = join(dir, "socket");
    const daemon = new Xenstored();
    const server = await listenUnixSocket(daemon, socketPath);
    try {
      for (const clients of [1, 8, 32]) {
        for (const operation of ["write", "read"] as const) {
          const rate = await roundTrips(socketPath, context.seconds, clients, operation);
          context.report({
            label: `${operation}s, ${clients} concurrent client${clients > 1 ? "s" : ""}`,
            value: rate,
            unit: "req/s",
          });
        }
      }
      for (const watchers of [1, 16]) {
        const rate = await watchEvents(socketPath, context.seconds, watchers);
        context.report({
          label: `watch events delivered, ${watchers} watcher${watchers > 1 ? "s" : ""}`,
          value: rate,
          unit: "events/s",
        });
      }
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default benchmark;
