#!/usr/bin/env node
// Request round trips per second over kumo-xenstored's Unix socket with many concurrent
// clients: writes, reads, and watch events delivered. The daemon runs as its own process (the
// built `kumo-xenstored`), the clients in this one. Run after `pnpm build`:
//   node bench/socket-round-trips.mjs [seconds-per-scenario]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectSocket } from "../dist/node.js";

const seconds = Number(process.argv[2] ?? 2);
const dir = mkdtempSync(join(tmpdir(), "kumo-xenstore-bench-"));
const socketPath = join(dir, "socket");
const daemon = spawn(
  process.execPath,
  [join(import.meta.dirname, "../dist/bin/kumo-xenstored.js"), "--socket", socketPath, "--verbose"],
  { stdio: ["ignore", "ignore", "pipe"] },
);
await new Promise((resolve, reject) => {
  daemon.stderr.on("data", (data) => data.toString().includes("listening") && resolve());
  daemon.once("exit", (code) => reject(new Error(`kumo-xenstored exited with ${code}`)));
});

async function roundTrips(clients, operation) {
  const connections = await Promise.all(
    Array.from({ length: clients }, () => connectSocket(socketPath)),
  );
  await Promise.all(connections.map((client, index) => client.write(`/bench/c${index}`, "0")));
  let count = 0;
  const deadline = performance.now() + seconds * 1000;
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
  for (const client of connections) client.close();
  return count / seconds;
}

async function watchEvents(watchers) {
  const writer = await connectSocket(socketPath);
  const connections = await Promise.all(
    Array.from({ length: watchers }, () => connectSocket(socketPath)),
  );
  let delivered = 0;
  await Promise.all(connections.map((client) => client.watch("/watched", () => delivered++)));
  delivered = 0;
  const deadline = performance.now() + seconds * 1000;
  let writes = 0;
  while (performance.now() < deadline) {
    await writer.write("/watched/key", String(writes++));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const client of [writer, ...connections]) client.close();
  return { writes: writes / seconds, events: delivered / seconds };
}

const format = (value) => Math.round(value).toLocaleString("en-US");
console.log(
  `kumo-xenstored over a Unix socket, ${seconds} s per scenario, node ${process.version}`,
);
for (const clients of [1, 8, 32]) {
  const writes = await roundTrips(clients, "write");
  const reads = await roundTrips(clients, "read");
  console.log(
    `${String(clients).padStart(3)} clients: ${format(writes)} writes/s, ${format(reads)} reads/s`,
  );
}
for (const watchers of [1, 16]) {
  const result = await watchEvents(watchers);
  console.log(
    `${String(watchers).padStart(3)} watchers: ${format(result.writes)} writes/s, ${format(result.events)} watch events delivered/s`,
  );
}
daemon.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });
