#!/usr/bin/env node
/**
 * kumo-xenstored: runs Kumo's xenstore daemon alone, in the foreground, on a Unix socket.
 *   kumo-xenstored --socket <path> [--verbose]
 * Point Debian's xenstore-utils at it with XENSTORED_PATH=<path>.
 */
import { Xenstored } from "../daemon";
import { listenUnixSocket } from "../node";

function usage(message?: string): never {
  if (message) process.stderr.write(`kumo-xenstored: ${message}\n`);
  process.stderr.write("usage: kumo-xenstored --socket <path> [--verbose]\n");
  process.exit(2);
}

const args = process.argv.slice(2);
let socketPath: string | undefined;
let verbose = false;
for (let index = 0; index < args.length; index++) {
  const arg = args[index];
  if (arg === "--socket") socketPath = args[++index] ?? usage("--socket needs a path");
  else if (arg.startsWith("--socket=")) socketPath = arg.slice("--socket=".length);
  else if (arg === "--verbose" || arg === "-v") verbose = true;
  else if (arg === "--help" || arg === "-h") usage();
  else usage(`unknown argument ${arg}`);
}
if (!socketPath) usage("--socket <path> is required");

const log = (message: string) => process.stderr.write(`${message}\n`);
const daemon = new Xenstored({ log: verbose ? log : undefined });
const server = await listenUnixSocket(daemon, socketPath).catch((error: Error) => {
  process.stderr.write(`kumo-xenstored: cannot listen on ${socketPath}: ${error.message}\n`);
  process.exit(1);
});
if (verbose) log(`kumo-xenstored: listening on ${socketPath}`);
const shutdown = () => {
  server.close().then(() => process.exit(0));
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
