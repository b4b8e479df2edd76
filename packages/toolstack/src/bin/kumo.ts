#!/usr/bin/env node
// The `kumo` executable: see ../cli/main.ts.
import { runKumo } from "../cli/main";

runKumo(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
}).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    // Only a bug in Kumo gets here: every user mistake is reported by runKumo.
    console.error("kumo: internal error:", error);
    process.exitCode = 70;
  },
);
