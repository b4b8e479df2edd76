import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Hypervisor } from "@kumo/hypervisor-core";
import { connectLocal, RingLayout, Xenstored } from "@kumo/xenstore";
import { describe, expect, it } from "vitest";
import { createPvhDomain, introduceDomain, parseDomainConfig } from "../src/index";
import { runKumo } from "../src/node/index";
import { buildConsoleGuest } from "./support/oracles";

function configFor(kernelPath: string, extra = "") {
  return parseDomainConfig(`name = "echo"\nmemory = 4\nkernel = "${kernelPath}"\n${extra}`);
}

describe("PVH domain runner", () => {
  it("boots a freestanding PVH guest whose hvc0 output reaches the console backend", async () => {
    const kernel = buildConsoleGuest(0);
    const hypervisor = new Hypervisor();
    const runnable = createPvhDomain(hypervisor, configFor("k"), { kernel });
    const seen: string[] = [];
    runnable.console.onOutput((bytes) => seen.push(new TextDecoder().decode(bytes)));
    let ended: string | undefined;
    hypervisor.onDomainEvent((event) => {
      if (event.kind === "shutdown") {
        ended = event.reason;
        runnable.console.service();
      }
    });
    const running = hypervisor.run();
    await new Promise((resolve) => setTimeout(resolve, 50));
    runnable.console.write("hi");
    await new Promise((resolve) => setTimeout(resolve, 50));
    runnable.console.write("q");
    await running;
    expect(seen.join("")).toBe("kumo test guest\r\n> hi\r\nbye\r\n");
    expect(ended).toBe("poweroff");
    expect(runnable.layout.entry).toBe(0x100000);
  });
});

async function createWithConsole(reason: number, keys: string[], extra = "") {
  const dir = mkdtempSync(join(tmpdir(), "kumo-run-"));
  writeFileSync(join(dir, "guest"), buildConsoleGuest(reason));
  writeFileSync(join(dir, "guest.cfg"), `name = "echo"\nmemory = 4\nkernel = "guest"\n${extra}`);
  const stdin = new PassThrough();
  let stdout = "";
  let stderr = "";
  const status = runKumo(["create", "-c", "--stats", "guest.cfg"], {
    stdout: { write: (text: string | Uint8Array) => (stdout += Buffer.from(text).toString()) },
    stderr: { write: (text: string) => (stderr += text) },
    stdin,
    env: { KUMO_STATE_DIR: dir },
    cwd: dir,
  });
  for (const key of keys) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    stdin.write(key);
  }
  return { status: await status, stdout: () => stdout, stderr: () => stderr, dir };
}

describe("xenstore for a new domain", () => {
  it("writes the domain's nodes and serves its store ring", async () => {
    const hypervisor = new Hypervisor();
    const runnable = createPvhDomain(
      hypervisor,
      configFor("k", "vcpus = 2"),
      { kernel: buildConsoleGuest(0) },
      { paused: true },
    );
    const daemon = new Xenstored();
    const transport = await introduceDomain(daemon, hypervisor.host, {
      domid: runnable.domain.domid,
      name: "echo",
      memoryKiB: 4096,
      vcpus: 2,
      storeGfn: runnable.layout.specialPages.xenstoreGfn,
      storePort: runnable.storePort,
    });
    const client = connectLocal(daemon);
    const home = `/local/domain/${runnable.domain.domid}`;
    expect(await client.read(`${home}/name`)).toBe("echo");
    expect(await client.read(`${home}/store/port`)).toBe(String(runnable.storePort));
    expect(await client.read(`${home}/cpu/1/availability`)).toBe("online");
    expect(transport.domid).toBe(runnable.domain.domid);
    // The daemon serves the page the guest will find at STORE_PFN: it advertises its features there.
    expect(
      new DataView(runnable.storePage.buffer).getUint32(RingLayout.SERVER_FEATURES, true),
    ).not.toBe(0);
    client.close();
    hypervisor.destroyDomain(runnable.domain.domid);
  });
});

describe("kumo create -c", () => {
  it("refuses a disk whose image cannot be opened, with the path and exit status 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-run-"));
    writeFileSync(join(dir, "guest"), buildConsoleGuest(0));
    writeFileSync(
      join(dir, "guest.cfg"),
      'name = "echo"\nmemory = 4\nkernel = "guest"\ndisk = [ "/x.img,,xvda" ]\nvif = [ "" ]\n',
    );
    const stdin = new PassThrough();
    let stderr = "";
    const status = runKumo(["create", "-c", "guest.cfg"], {
      stdout: { write: () => true },
      stderr: { write: (text: string) => (stderr += text) },
      stdin,
      env: { KUMO_STATE_DIR: dir },
      cwd: dir,
    });
    expect(await status).toBe(1);
    expect(stderr).toBe("kumo: disk xvda: /x.img: image file does not exist\n");
  });

  it("attaches the terminal, logs the console and exits 0 on poweroff", async () => {
    const result = await createWithConsole(0, ["o", "k", "q"]);
    expect(result.stdout()).toBe("kumo test guest\r\n> ok\r\nbye\r\n");
    expect(result.status).toBe(0);
    expect(result.stderr()).toMatch(
      /^kumo: stats: first console output [0-9.]+ s \(\d+ guest instructions\)/,
    );
    expect(readFileSync(join(result.dir, "console", "guest-echo.log"), "utf8")).toBe(
      result.stdout(),
    );
  });

  it("restarts a rebooting domain when on_reboot asks for it", async () => {
    const result = await createWithConsole(1, ["q", "\x1d"], 'on_reboot = "restart"\n');
    expect(result.stdout()).toBe("kumo test guest\r\n> \r\nbye\r\nkumo test guest\r\n> ");
    expect(result.stderr()).toMatch(/domain "echo" ended \(reboot\); restarting it/);
    expect(result.status).toBe(6);
  });

  it("ends with status 3 on a reboot when on_reboot is destroy", async () => {
    const result = await createWithConsole(1, ["q"], 'on_reboot = "destroy"\n');
    expect(result.status).toBe(3);
  });

  it("names a crash and exits non-zero", async () => {
    const result = await createWithConsole(3, ["q"]);
    expect(result.status).toBe(4);
    expect(result.stderr()).toMatch(/domain "echo" crashed/);
  });

  it("detaches on Ctrl-] and says the domain could not outlive the command", async () => {
    const result = await createWithConsole(0, ["\x1d"]);
    expect(result.status).toBe(6);
    expect(result.stderr()).toMatch(/detached/);
  });
});
