import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hasV8PoolSize, relaunchWithV8Pool, v8PoolSize } from "../src/node/index";

describe("V8 pool size for a process that runs guests", () => {
  it("leaves one core to the main thread, at least 1 and at most Node's 4", () => {
    expect([1, 2, 3, 4, 5, 16].map((cores) => v8PoolSize(cores))).toEqual([1, 1, 2, 3, 4, 4]);
  });

  it("sees a pool chosen on the command line or in NODE_OPTIONS", () => {
    expect(hasV8PoolSize([], "")).toBe(false);
    expect(hasV8PoolSize(["--inspect"], "--max-old-space-size=512")).toBe(false);
    expect(hasV8PoolSize(["--v8-pool-size=2"], "")).toBe(true);
    expect(hasV8PoolSize([], "--max-old-space-size=512 --v8-pool-size=3")).toBe(true);
  });
});

describe("relaunchWithV8Pool", () => {
  let dir: string;
  let nodeOptions: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kumo-v8-pool-"));
    nodeOptions = process.env.NODE_OPTIONS;
    delete process.env.NODE_OPTIONS;
  });
  afterEach(() => {
    if (nodeOptions !== undefined) process.env.NODE_OPTIONS = nodeOptions;
  });

  const script = (body: string) => {
    const path = join(dir, "child.mjs");
    writeFileSync(path, body);
    return path;
  };

  it("runs the script again with the pool size and its arguments, and returns its exit status", async () => {
    const out = join(dir, "out.json");
    const path = script(
      `import { writeFileSync } from "node:fs";
       writeFileSync(${JSON.stringify(out)}, JSON.stringify({ flags: process.execArgv, args: process.argv.slice(2) }));
       process.exit(3);`,
    );
    const status = await relaunchWithV8Pool(path, ["create", "-c", "guest.cfg"]);
    expect(status).toBe(3);
    const seen = JSON.parse(readFileSync(out, "utf8"));
    expect(seen.flags).toContain(`--v8-pool-size=${v8PoolSize()}`);
    expect(seen.args).toEqual(["create", "-c", "guest.cfg"]);
  });

  it("reports a child killed by a signal as 128 + its number", async () => {
    const path = script(`process.kill(process.pid, "SIGTERM");`);
    expect(await relaunchWithV8Pool(path, [])).toBe(128 + 15);
  });

  it("does not relaunch a process that chose a pool size", async () => {
    process.env.NODE_OPTIONS = "--v8-pool-size=2";
    expect(await relaunchWithV8Pool(script("process.exit(5);"), [])).toBeNull();
  });
});
