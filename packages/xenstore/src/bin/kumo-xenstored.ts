#!/usr/bin/env node
/**
 * kumo-xenstored: runs Kumo's xenstore daemon alone, in the foreground, on a Unix socket.
 *   kumo-xenstored --socket <path> [--verbose] [--entry-nb N] [--entry-size N] [--watch-nb N]
 *                  [--transaction N] [--perm-nb N]
 * Point Debian's xenstore-utils at it with XENSTORED_PATH=<path>.
 */
import { Xenstored, type XenstoredQuotas } from "../daemon";
import { listenUnixSocket } from "../node";

function usage(message?: string): never {
  if (message) process.stderr.write(`kumo-xenstored: ${message}\n`);
  process.stderr.write(
    "usage: kumo-xenstored --socket <path> [--verbose] [--entry-nb N] [--entry-size N]\n" +
      "                      [--watch-nb N] [--transaction N] [--perm-nb N]\n",
  );
  process.exit(2);
}

// Xen xenstored(8) option names for the per-domain quotas.
const QUOTA_FLAGS: Record<string, keyof XenstoredQuotas> = {
  "--entry-nb": "maxNodesPerDomain",
  "--entry-size": "maxEntrySize",
  "--watch-nb": "maxWatchesPerDomain",
  "--transaction": "maxTransactionsPerDomain",
  "--perm-nb": "maxPermissionsPerNode",
};

function count(flag: string, text: string | undefined): number {
  if (text === undefined || !/^[0-9]+$/.test(text)) usage(`${flag} needs a non-negative integer`);
  return Number(text);
}

const quotas: Partial<XenstoredQuotas> = {};
const args = process.argv.slice(2);
let socketPath: string | undefined;
let verbose = false;
for (let index = 0; index < args.length; index++) {
  const arg = args[index];
  if (arg === "--socket") socketPath = args[++index] ?? usage("--socket needs a path");
  else if (arg.startsWith("--socket=")) socketPath = arg.slice("--socket=".length);
  else if (arg === "--verbose" || arg === "-v") verbose = true;
  else if (Object.hasOwn(QUOTA_FLAGS, arg)) quotas[QUOTA_FLAGS[arg]] = count(arg, args[++index]);
  else if (arg === "--help" || arg === "-h") usage();
  else usage(`unknown argument ${arg}`);
}
if (!socketPath) usage("--socket <path> is required");

const log = (message: string) => process.stderr.write(`${message}\n`);
const daemon = new Xenstored({ quotas, log: verbose ? log : undefined });
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
