/**
 * Debian's xenstore-utils (libxenstore 4.17) against `kumo-xenstored`. The clients find the
 * daemon through XENSTORED_PATH (libxenstore xs_daemon_socket), so these are the real C
 * binaries speaking the real wire protocol to our executable.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XenstoreClient } from "../src";
import { connectSocket } from "../src/node";

const haveClients = existsSync("/usr/bin/xenstore-read");
const TEST_XENSTORE = "/usr/lib/xen-4.17/bin/test-xenstore";
let dir: string;
let socketPath: string;
let daemon: ChildProcess;
let client: XenstoreClient;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, ...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      `/usr/bin/${command}`,
      args,
      { env: { ...process.env, XENSTORED_PATH: socketPath }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(command: string, ...args: string[]): Promise<string> {
  const result = await run(command, ...args);
  expect(result, `${command} ${args.join(" ")}: ${result.stderr}`).toMatchObject({ code: 0 });
  return result.stdout;
}

describe.skipIf(!haveClients)("Debian xenstore-utils against kumo-xenstored", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kumo-xenstored-"));
    socketPath = join(dir, "socket");
    // The executable as the package builds it (its own esbuild entry point).
    const bin = join(dir, "kumo-xenstored.mjs");
    await build({
      entryPoints: [join(import.meta.dirname, "../src/bin/kumo-xenstored.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile: bin,
      logLevel: "warning",
    });
    daemon = spawn(process.execPath, [bin, "--socket", socketPath, "--verbose"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      daemon.stderr!.on("data", (data: Buffer) => {
        if (data.toString().includes("listening")) resolve();
      });
      daemon.once("exit", (code) => reject(new Error(`kumo-xenstored exited with ${code}`)));
    });
    client = await connectSocket(socketPath);
  });

  afterAll(() => {
    client?.close();
    daemon?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the executable refuses to start without --socket", async () => {
    const result = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [join(dir, "kumo-xenstored.mjs")], { stdio: "ignore" });
      child.on("exit", (code) => resolve(code));
    });
    expect(result).toBe(2);
  });

  it("xenstore-write then xenstore-read round-trips values, several pairs at once", async () => {
    await ok("xenstore-write", "/test/rw/a", "hello", "/test/rw/b", "with spaces and = signs");
    expect(await ok("xenstore-read", "/test/rw/a")).toBe("hello\n");
    expect(await ok("xenstore-read", "/test/rw/a", "/test/rw/b")).toBe(
      "hello\nwith spaces and = signs\n",
    );
    // The typed client sees the same bytes.
    expect(await client.read("/test/rw/b")).toBe("with spaces and = signs");
  });

  it("xenstore-write of a value near the node-size limit", async () => {
    const big = "x".repeat(4000);
    await ok("xenstore-write", "/test/big", big);
    expect((await ok("xenstore-read", "/test/big")).trimEnd()).toBe(big);
  });

  it("xenstore-read of a missing node fails with ENOENT", async () => {
    const result = await run("xenstore-read", "/test/missing");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("couldn't read path /test/missing");
  });

  it("xenstore-exists answers 0 for present, 1 for missing nodes", async () => {
    await ok("xenstore-write", "/test/exists/here", "1");
    expect((await run("xenstore-exists", "/test/exists/here")).code).toBe(0);
    expect((await run("xenstore-exists", "/test/exists/gone")).code).toBe(1);
  });

  it("xenstore-list lists children in creation order", async () => {
    await ok("xenstore-write", "/test/list/one", "1", "/test/list/two", "2");
    await ok("xenstore-write", "/test/list/three", "3");
    expect(await ok("xenstore-list", "/test/list")).toBe("one\ntwo\nthree\n");
  });

  it("xenstore-ls prints the tree and, with -p, permissions", async () => {
    await ok("xenstore-write", "/test/ls/a/b", "B", "/test/ls/c", "C");
    expect(await ok("xenstore-ls", "/test/ls")).toBe('a = ""\n b = "B"\nc = "C"\n');
    const withPerms = await ok("xenstore-ls", "-p", "/test/ls");
    expect(withPerms).toMatch(/^a = ""[ .]*\(n0\)$/m);
  });

  it("xenstore-chmod sets permission lists, recursively with -r", async () => {
    await ok("xenstore-write", "/test/chmod/x/y", "1");
    await ok("xenstore-chmod", "/test/chmod/x", "n0", "r5", "b7");
    expect(await client.getPermissions("/test/chmod/x")).toEqual([
      { domid: 0, access: "n" },
      { domid: 5, access: "r" },
      { domid: 7, access: "b" },
    ]);
    expect(await client.getPermissions("/test/chmod/x/y")).toEqual([{ domid: 0, access: "n" }]);
    await ok("xenstore-chmod", "-r", "/test/chmod", "b3");
    expect(await client.getPermissions("/test/chmod/x/y")).toEqual([{ domid: 3, access: "b" }]);
    expect(await ok("xenstore-ls", "-p", "/test/chmod")).toMatch(/\(b3\)/);
  });

  it("xenstore-rm removes subtrees; removing a missing child of an existing node succeeds", async () => {
    await ok("xenstore-write", "/test/rm/a/b/c", "1", "/test/rm/keep", "2");
    await ok("xenstore-rm", "/test/rm/a");
    expect(await ok("xenstore-list", "/test/rm")).toBe("keep\n");
    expect((await run("xenstore-rm", "/test/rm/never-there")).code).toBe(0);
    expect((await run("xenstore-rm", "/test/nowhere/at/all")).code).not.toBe(0);
  });

  it("xenstore-ls of a directory too big for one reply (XS_DIRECTORY_PART fallback)", async () => {
    const names: string[] = [];
    await client.transaction(async (tx) => {
      for (let index = 0; index < 300; index++) {
        const name = `a-rather-long-child-name-${String(index).padStart(4, "0")}`;
        names.push(name);
        await tx.write(`/test/wide/${name}`, String(index));
      }
    });
    const listed = await ok("xenstore-list", "/test/wide");
    expect(listed.trimEnd().split("\n")).toEqual(names);
    expect(await client.list("/test/wide")).toEqual(names);
  });

  it("xenstore-watch fires at once, then for writes by another client", async () => {
    await ok("xenstore-write", "/test/watch/seed", "0");
    const watcher = spawn("/usr/bin/xenstore-watch", ["-n", "3", "/test/watch"], {
      env: { ...process.env, XENSTORED_PATH: socketPath },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const lines = () => output.split("\n").filter(Boolean);
    const waitFor = async (count: number) => {
      for (let spin = 0; spin < 400 && lines().length < count; spin++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    watcher.stdout.on("data", (data: Buffer) => {
      output += data.toString();
    });
    const exited = new Promise<number | null>((resolve) => watcher.on("exit", resolve));
    await waitFor(1);
    await ok("xenstore-write", "/test/watch/a", "1");
    await waitFor(2);
    await ok("xenstore-rm", "/test/watch/seed");
    expect(await exited).toBe(0);
    expect(lines()).toEqual(["/test/watch", "/test/watch/a", "/test/watch/seed"]);
  });

  // Xen's own xenstore test suite (tools/tests/xenstore/test-xenstore.c, Debian package
  // xen-utils-4.17): reads, writes, directories, removal and transactions including a conflict
  // that must end in EAGAIN while the transaction keeps seeing the value it first read.
  it.skipIf(!existsSync(TEST_XENSTORE))("Xen's test-xenstore suite passes", async () => {
    const result = await new Promise<Result>((resolve) => {
      execFile(
        TEST_XENSTORE,
        ["-i", "5"],
        { env: { ...process.env, XENSTORED_PATH: socketPath }, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
      );
    });
    expect(result.stdout).not.toContain("failed");
    expect(result.stdout.trim().split("\n")).toHaveLength(12);
    expect(result.code).toBe(0);
  });

  it("the typed client's watch sees xenstore-write", async () => {
    const events: string[] = [];
    const handle = await client.watch("/test/typed-watch", (event) => events.push(event.path));
    await ok("xenstore-write", "/test/typed-watch/k", "v");
    for (let spin = 0; spin < 500 && events.length < 2; spin++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(events).toEqual(["/test/typed-watch", "/test/typed-watch/k"]);
    await handle.unwatch();
  });
});
