/** The typed client over the Unix socket and in-process. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectLocal, Xenstored, XenstoreError, XenstoreUsageError } from "../src";
import { connectSocket, listenUnixSocket, type SocketServer } from "../src/node";

let dir: string;
let server: SocketServer;
let daemon: Xenstored;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kumo-xenstore-client-"));
  daemon = new Xenstored();
  server = await listenUnixSocket(daemon, join(dir, "socket"));
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("XenstoreClient", () => {
  it("reads, writes, lists, removes and reports typed errors", async () => {
    const client = await connectSocket(server.path);
    await client.write("/c/one", "1");
    await client.write("/c/bytes", new Uint8Array([0, 1, 2, 255]));
    await client.mkdir("/c/dir");
    expect(await client.list("/c")).toEqual(["one", "bytes", "dir"]);
    expect(await client.readBytes("/c/bytes")).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(await client.exists("/c/dir")).toBe(true);
    expect(await client.tryRead("/c/none")).toBeUndefined();
    await client.rm("/c/one");
    const error = await client.read("/c/one").catch((caught) => caught);
    expect(error).toBeInstanceOf(XenstoreError);
    expect(error).toMatchObject({ code: "ENOENT", errno: 2 });
    client.close();
  });

  it("watches as an async iterator; leaving the loop unwatches", async () => {
    const client = await connectSocket(server.path);
    const writer = connectLocal(daemon);
    const events = client.watchEvents("/iter");
    // The first event is the immediate firing: the watch is in place from here on.
    const seen: string[] = [(await events.next()).value.path];
    const writes = (async () => {
      for (let index = 0; index < 3; index++) await writer.write(`/iter/k${index}`, "v");
    })();
    for await (const event of events) {
      seen.push(event.path);
      if (seen.length === 4) break;
    }
    await writes;
    expect(seen).toEqual(["/iter", "/iter/k0", "/iter/k1", "/iter/k2"]);
    await writer.write("/iter/after", "v"); // no longer watched: nothing queued, nothing thrown
    client.close();
  });

  it("aborts the transaction when the body throws", async () => {
    const client = connectLocal(daemon);
    await expect(
      client.transaction(async (tx) => {
        await tx.write("/aborted/x", "1");
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await client.exists("/aborted/x")).toBe(false);
  });

  it("gives up after the configured attempts when every commit conflicts", async () => {
    const client = connectLocal(daemon);
    await client.write("/hot", "0");
    let attempts = 0;
    const outcome = client.transaction(
      async (tx) => {
        attempts++;
        await tx.read("/hot");
        await client.write("/hot", String(attempts));
        await tx.write("/hot-copy", "x");
      },
      { attempts: 3 },
    );
    await expect(outcome).rejects.toMatchObject({ code: "EAGAIN" });
    expect(attempts).toBe(3);
  });

  it("rejects bad permission strings before sending", async () => {
    const client = connectLocal(daemon);
    await expect(client.setPermissions("/x", ["q5"])).rejects.toBeInstanceOf(XenstoreUsageError);
    await expect(client.setPermissions("/x", [])).rejects.toBeInstanceOf(XenstoreUsageError);
  });

  it("rejects pending and later requests once closed", async () => {
    const client = await connectSocket(server.path);
    client.close();
    await expect(client.read("/c")).rejects.toBeInstanceOf(XenstoreUsageError);
  });

  it("introduces and releases domains over the socket", async () => {
    const introduced: number[] = [];
    const local = new Xenstored({
      onIntroduce: (domid, gfn, port) => {
        introduced.push(domid, gfn, port);
      },
    });
    const client = connectLocal(local);
    await client.introduce(3, 0xfeffc, 1);
    expect(introduced).toEqual([3, 0xfeffc, 1]);
    expect(await client.isDomainIntroduced(3)).toBe(true);
    await client.release(3);
    expect(await client.isDomainIntroduced(3)).toBe(false);
    await expect(client.release(3)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
