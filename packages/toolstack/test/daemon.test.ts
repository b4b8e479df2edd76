import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder, FrameType, ProtocolError } from "../src/daemon/protocol";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { buildConsoleGuest } from "./support/oracles";

let dir: string;
let daemon: KumoDaemon;

async function kumo(args: string[], stdin?: PassThrough) {
  let stdout = "";
  let stderr = "";
  const status = await runKumo(args, {
    stdout: { write: (text: string | Uint8Array) => (stdout += Buffer.from(text).toString()) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin,
    env: { KUMO_STATE_DIR: dir },
    cwd: dir,
  });
  return { status, stdout, stderr };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kumo-daemon-"));
  writeFileSync(join(dir, "guest0"), buildConsoleGuest(0));
  writeFileSync(join(dir, "guest3"), buildConsoleGuest(3));
  writeFileSync(join(dir, "a.cfg"), 'name = "alpha"\nmemory = 4\nkernel = "guest0"\n');
  writeFileSync(join(dir, "b.cfg"), 'name = "beta"\nmemory = 4\nkernel = "guest3"\n');
  writeFileSync(join(dir, "guest1"), buildConsoleGuest(1));
  writeFileSync(
    join(dir, "c.cfg"),
    'name = "gamma"\nmemory = 4\nkernel = "guest1"\non_reboot = "restart"\n',
  );
  daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir } });
  await daemon.listen(join(dir, "kumo.sock"));
});

afterAll(async () => {
  await daemon.close();
});

describe("daemon protocol frames", () => {
  it("reassembles frames split anywhere", () => {
    const bytes = new Uint8Array([
      ...encodeFrame(FrameType.Json, '{"command":"list"}'),
      ...encodeFrame(FrameType.ConsoleData, new Uint8Array([1, 2, 3])),
    ]);
    for (let split = 0; split <= bytes.length; split++) {
      const decoder = new FrameDecoder();
      const frames = [
        ...decoder.push(bytes.subarray(0, split)),
        ...decoder.push(bytes.subarray(split)),
      ];
      expect(frames.map((frame) => frame.type)).toEqual([FrameType.Json, FrameType.ConsoleData]);
      expect([...frames[1].payload]).toEqual([1, 2, 3]);
    }
  });
  it("rejects unknown frame types and oversized frames", () => {
    expect(() => new FrameDecoder().push(new Uint8Array([9, 0, 0, 0, 0]))).toThrow(ProtocolError);
    expect(() => new FrameDecoder().push(new Uint8Array([1, 0xff, 0, 0, 0]))).toThrow(
      ProtocolError,
    );
  });
});

describe("kumo daemon", () => {
  it("runs two domains at once, lists them, and destroying one leaves the other", async () => {
    expect(await kumo(["create", "a.cfg"])).toMatchObject({
      status: 0,
      stderr: 'kumo: created domain "alpha" (id 1)\n',
    });
    expect(await kumo(["create", "b.cfg"])).toMatchObject({ status: 0 });
    expect((await kumo(["create", "a.cfg"])).stderr).toMatch(
      /a domain named "alpha" exists already/,
    );
    await sleep(100);
    const listed = await kumo(["list"]);
    expect(listed.status).toBe(0);
    const lines = listed.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^Name +ID +Mem +VCPUs +State +Instructions$/);
    expect(lines[1]).toMatch(/^alpha +1 +4 +1 +r----- +\d+$/);
    expect(lines[2]).toMatch(/^beta +2 +4 +1 +r----- +\d+$/);

    expect((await kumo(["pause", "beta"])).status).toBe(0);
    expect((await kumo(["list", "beta"])).stdout).toMatch(/beta +2 +4 +1 +--p---/);
    expect((await kumo(["unpause", "2"])).status).toBe(0);

    expect((await kumo(["destroy", "alpha"])).status).toBe(0);
    const after = await kumo(["list"]);
    expect(after.stdout).not.toMatch(/alpha/);
    expect(after.stdout).toMatch(/^beta +2 .*r-----/m);
    expect((await kumo(["destroy", "alpha"])).stderr).toMatch(/no domain "alpha"/);
  });

  it("attaches a console from another command and reports how the domain ended", async () => {
    const stdin = new PassThrough();
    const attached = kumo(["console", "beta"], stdin);
    await sleep(100);
    stdin.write("hey");
    await sleep(100);
    stdin.write("q");
    const result = await attached;
    // The banner may or may not have been printed before the console attached.
    expect(result.stdout).toMatch(/hey\r\nbye\r\n$/);
    expect(result.status).toBe(4);
    expect(result.stderr).toMatch(/domain "beta" crashed/);
  });

  it("creates with -c through the daemon and exits 0 on poweroff", async () => {
    const stdin = new PassThrough();
    const running = kumo(["create", "-c", "a.cfg"], stdin);
    await sleep(150);
    stdin.write("q");
    const result = await running;
    expect(result.stdout).toBe("kumo test guest\r\n> \r\nbye\r\n");
    expect(result.status).toBe(0);
  });

  it("detaches with Ctrl-] and leaves the domain running", async () => {
    expect((await kumo(["create", "a.cfg"])).status).toBe(0);
    const stdin = new PassThrough();
    const attached = kumo(["console", "alpha"], stdin);
    await sleep(100);
    stdin.write("\x1d");
    expect((await attached).status).toBe(0);
    expect((await kumo(["list", "alpha"])).stdout).toMatch(/alpha .*r-----/);
  });

  it("reads and writes xenstore and shows the hypervisor log", async () => {
    const id = /alpha +(\d+)/.exec((await kumo(["list", "alpha"])).stdout)![1];
    expect((await kumo(["xenstore", "read", `/local/domain/${id}/name`])).stdout).toBe("alpha\n");
    expect((await kumo(["xenstore", "write", "/tool/kumo-test", "42"])).status).toBe(0);
    expect((await kumo(["xenstore", "read", "/tool/kumo-test"])).stdout).toBe("42\n");
    const tree = await kumo(["xenstore", "ls", `/local/domain/${id}`]);
    expect(tree.stdout).toMatch(/^name = "alpha"$/m);
    expect(tree.stdout).toMatch(/^store = ""\n port = "\d+"$/m);
    const dmesg = await kumo(["dmesg"]);
    expect(dmesg.stdout).toMatch(/created d1 "alpha"/);
    expect(dmesg.stdout).toMatch(/destroyed d1/);
  });

  it("restarts a domain whose on_reboot is restart, and the console follows it", async () => {
    expect((await kumo(["create", "c.cfg"])).status).toBe(0);
    const stdin = new PassThrough();
    const attached = kumo(["console", "gamma"], stdin);
    await sleep(100);
    stdin.write("q");
    await sleep(300);
    expect((await kumo(["dmesg"])).stdout).toMatch(/restarting "gamma" after reboot/);
    expect((await kumo(["list", "gamma"])).stdout).toMatch(/gamma .*r-----/);
    // As xl's console autoconnect: the same console now talks to the new boot.
    stdin.write("hi");
    await sleep(100);
    expect((await kumo(["destroy", "gamma"])).status).toBe(0);
    const result = await attached;
    expect(result.stdout).toMatch(/bye\r\nkumo test guest\r\n> hi$/);
    expect(result.status).toBe(5);
    expect(result.stderr).toMatch(/domain "gamma" ended: destroyed/);
  });

  it("asks a domain to shut down through control/shutdown", async () => {
    const id = /alpha +(\d+)/.exec((await kumo(["list", "alpha"])).stdout)![1];
    expect((await kumo(["shutdown", "alpha"])).status).toBe(0);
    expect((await kumo(["xenstore", "read", `/local/domain/${id}/control/shutdown`])).stdout).toBe(
      "poweroff\n",
    );
  });
});
