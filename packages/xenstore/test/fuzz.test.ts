/**
 * Hostile input over both transports: random bytes, mutated messages, corrupt ring indices.
 * The daemon must never throw, must answer with errors or drop only the offending connection,
 * and afterwards other domains and a real client (Debian's xenstore-read) still get correct
 * answers.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XsType } from "@kumo/abi";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectLocal, RingLayout, type XenstoreClient, Xenstored } from "../src";
import { listenUnixSocket, type SocketServer } from "../src/node";
import { createRingPair, type RingPair } from "../src/test";
import { encodeMessage, nulTerminated } from "../src/wire";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const paths = [
  "",
  "name",
  "data/x",
  "/local/domain/5/data/y",
  "/",
  "//",
  "@releaseDomain",
  "a/b/c",
];
const types = [...Array.from({ length: 24 }, (_, type) => type), 0xffff, 0x7fffffff];

/** A plausible request, then zero or more mutations of its bytes. */
const hostileMessage = fc
  .record({
    type: fc.constantFrom(...types),
    requestId: fc.nat(),
    transactionId: fc.oneof(fc.constant(0), fc.nat(), fc.constant(0xffffffff)),
    strings: fc.array(fc.oneof(fc.constantFrom(...paths), fc.string({ maxLength: 40 })), {
      maxLength: 4,
    }),
    trailing: fc.uint8Array({ maxLength: 64 }),
    mutations: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    length: fc.option(fc.oneof(fc.nat(), fc.integer({ min: 4090, max: 4200 })), { nil: undefined }),
  })
  .map((spec) => {
    const body = nulTerminated(...spec.strings);
    const payload = new Uint8Array(body.length + spec.trailing.length);
    payload.set(body);
    payload.set(spec.trailing, body.length);
    const message = encodeMessage(spec.type, spec.requestId, spec.transactionId, payload);
    if (spec.length !== undefined) new DataView(message.buffer).setUint32(12, spec.length, true);
    for (const [position, value] of spec.mutations) {
      message[position % message.length] = value;
    }
    return message;
  });

const hostileRingAction = fc.oneof(
  hostileMessage.map((bytes) => ({ kind: "message" as const, bytes })),
  fc
    .record({ bytes: fc.uint8Array({ maxLength: 1100 }), advance: fc.nat() })
    .map((spec) => ({ kind: "raw" as const, ...spec })),
  fc
    .record({
      index: fc.constantFrom(
        RingLayout.REQ_CONS,
        RingLayout.REQ_PROD,
        RingLayout.RSP_CONS,
        RingLayout.RSP_PROD,
      ),
      value: fc.oneof(fc.nat(), fc.integer({ min: 0, max: 0xffffffff })),
    })
    .map((spec) => ({ kind: "index" as const, ...spec })),
);

let daemon: Xenstored;
let dom0: XenstoreClient;
let good: RingPair;
let dir: string;
let server: SocketServer;
let socketPath: string;

beforeAll(async () => {
  daemon = new Xenstored();
  dom0 = connectLocal(daemon);
  for (const domid of [5, 9]) {
    await dom0.mkdir(`/local/domain/${domid}`);
    await dom0.setPermissions(`/local/domain/${domid}`, ["n0", `r${domid}`]);
    await dom0.write(`/local/domain/${domid}/name`, `guest${domid}`);
    await dom0.mkdir(`/local/domain/${domid}/data`);
    await dom0.setPermissions(`/local/domain/${domid}/data`, [`n${domid}`]);
  }
  await dom0.write("/canary", "alive");
  good = createRingPair(daemon, 5, { writeChunk: 9 });
  dir = mkdtempSync(join(tmpdir(), "kumo-xenstore-fuzz-"));
  socketPath = join(dir, "socket");
  server = await listenUnixSocket(daemon, socketPath);
});

afterAll(async () => {
  dom0?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function goodDomainStillWorks(round: number): Promise<void> {
  await good.frontend.write("data/probe", `round-${round}`);
  expect(await good.frontend.read("data/probe")).toBe(`round-${round}`);
  expect(await good.frontend.read("name")).toBe("guest5");
  expect(await dom0.read("/canary")).toBe("alive");
}

describe("fuzz", () => {
  it("garbage on a guest ring never breaks the daemon or other domains", async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(hostileRingAction, { minLength: 1, maxLength: 12 }),
        async (actions) => {
          round++;
          // A fresh ring for the hostile domain each round (re-introduction replaces the old).
          const hostile = createRingPair(daemon, 9);
          const view = new DataView(hostile.page.buffer);
          for (const action of actions) {
            if (action.kind === "message") {
              hostile.frontend.sendRaw(action.bytes);
            } else if (action.kind === "raw") {
              const prod = view.getUint32(RingLayout.REQ_PROD, true);
              for (let index = 0; index < action.bytes.length; index++) {
                hostile.page[(prod + index) & 1023] = action.bytes[index];
              }
              view.setUint32(RingLayout.REQ_PROD, (prod + action.advance) >>> 0, true);
            } else {
              view.setUint32(action.index, action.value >>> 0, true);
            }
            hostile.transport.kick();
            await settle();
          }
          await goodDomainStillWorks(round);
        },
      ),
      { numRuns: 150 },
    );
    // The hostile domain is still known, and can be served again on a clean ring.
    const again = createRingPair(daemon, 9);
    expect(await again.frontend.read("name")).toBe("guest9");
  });

  it("garbage on the Unix socket drops that client only", async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(hostileMessage, fc.uint8Array({ minLength: 1, maxLength: 200 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (chunks) => {
          round++;
          const socket = createConnection(socketPath);
          socket.on("error", () => {});
          socket.on("data", () => {});
          await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
          for (const chunk of chunks) socket.write(chunk);
          await new Promise((resolve) => setTimeout(resolve, 2));
          socket.destroy();
          await goodDomainStillWorks(1000 + round);
        },
      ),
      { numRuns: 100 },
    );
  });

  it.skipIf(!existsSync("/usr/bin/xenstore-read"))(
    "afterwards the tree still answers a real client correctly",
    async () => {
      const read = (path: string) =>
        new Promise<string>((resolve, reject) =>
          execFile(
            "/usr/bin/xenstore-read",
            [path],
            { env: { ...process.env, XENSTORED_PATH: socketPath } },
            (error, stdout) => (error ? reject(error) : resolve(stdout)),
          ),
        );
      expect(await read("/canary")).toBe("alive\n");
      expect(await read("/local/domain/5/name")).toBe("guest5\n");
      expect(await dom0.list("/local/domain/5/data")).toContain("probe");
    },
  );

  it("a request with a transaction id the client does not own gets ENOENT, not a crash", async () => {
    const hostile = createRingPair(daemon, 9);
    const reply = await hostile.frontend.request(XsType.WRITE, nulTerminated("data/x", "1"), 77);
    expect(reply.type).toBe(XsType.ERROR);
    expect(new TextDecoder().decode(reply.payload)).toBe("ENOENT\0");
  });
});
