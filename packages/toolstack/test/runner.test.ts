import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { createPvhDomain, parseDomainConfig } from "../src/index";
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

async function createWithConsole(reason: number, keys: string[]) {
  const dir = mkdtempSync(join(tmpdir(), "kumo-run-"));
  writeFileSync(join(dir, "guest"), buildConsoleGuest(reason));
  writeFileSync(join(dir, "guest.cfg"), 'name = "echo"\nmemory = 4\nkernel = "guest"\n');
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

describe("kumo create -c", () => {
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
