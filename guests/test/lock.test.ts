import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { withLock } from "../src/lock";

const quiet = () => {};
const dirs: string[] = [];
function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "kumo-guests-lock-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("the build lock", () => {
  it("takes over a lock left by a process that died", async () => {
    const dir = cacheDir();
    const dead = spawnSync("true").pid;
    mkdirSync(join(dir, "locks", "guest-i386.lock"), { recursive: true });
    writeFileSync(join(dir, "locks", "guest-i386.lock", "pid"), String(dead));
    const started = Date.now();
    expect(await withLock(dir, "guest-i386", quiet, "i386", async () => "built")).toBe("built");
    expect(Date.now() - started).toBeLessThan(900);
  });

  it("lets one holder at a time in and reports the wait", async () => {
    const dir = cacheDir();
    const order: string[] = [];
    const events: string[] = [];
    const first = withLock(dir, "guest-i386", quiet, "i386", async () => {
      order.push("first in");
      await new Promise((resolve) => setTimeout(resolve, 300));
      order.push("first out");
    });
    const second = withLock(
      dir,
      "guest-i386",
      (event) => events.push(event.state),
      "i386",
      async () => {
        order.push("second in");
      },
    );
    await Promise.all([first, second]);
    expect(order).toEqual(["first in", "first out", "second in"]);
    expect(events).toEqual(["waiting"]);
  });
});
