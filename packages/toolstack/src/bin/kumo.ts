#!/usr/bin/env node
// The `kumo` executable: see ../cli/main.ts. It runs in a Node process
// whose V8 thread pool leaves the vCPUs a core (../node/v8-pool.ts): when
// this one was started without a pool size, kumo starts again in one that
// has it and passes its exit status on.
import { fileURLToPath } from "node:url";
import { runKumo } from "../cli/main";
import { relaunchWithV8Pool } from "../node/v8-pool";

const args = process.argv.slice(2);

async function main(): Promise<number> {
  const relaunched = await relaunchWithV8Pool(fileURLToPath(import.meta.url), args);
  if (relaunched !== null) return relaunched;
  return runKumo(args, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
  });
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    // Only a bug in Kumo gets here: every user mistake is reported by runKumo.
    console.error("kumo: internal error:", error);
    process.exitCode = 70;
  },
);
