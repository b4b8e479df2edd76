/**
 * HVM domains under `kumo daemon` with their console on COM1 (`serial =
 * "pty"`): `kumo create -c` and `kumo console` attach to the first serial
 * port, as `xl console` does for HVM guests. The guest is a 64 KiB test ROM
 * (guests/freestanding/serial-echo-rom.asm, assembled
 * with nasm) booted as the domain's firmware: it echoes COM1 input in upper
 * case and leaves through the isa-debug-exit port on 'q'. (Named linux-hvm*
 * for this work's test-file pattern; no Linux is involved.)
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { assemble, freestanding } from "./support/hvm";
import { Console, hasTool } from "./support/linux-guest";

let dir: string;
let daemon: KumoDaemon;

function kumo(args: string[], stdin?: PassThrough) {
  const output = new Console(stdin ?? new PassThrough());
  let stderr = "";
  const status = runKumo(args, {
    stdout: output,
    stderr: { write: (text: string) => (stderr += text) },
    stdin,
    env: { KUMO_STATE_DIR: dir },
    cwd: dir,
  });
  return { status, output, stderr: () => stderr };
}

describe.skipIf(!hasTool("nasm"))("HVM domains in the kumo daemon", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kumo-hvm-daemon-"));
    writeFileSync(join(dir, "echo.rom"), assemble(freestanding("serial-echo-rom.asm"), dir));
    writeFileSync(
      join(dir, "echo.cfg"),
      'name = "echo"\ntype = "hvm"\nmemory = 16\nfirmware = "echo.rom"\nserial = "pty"\n',
    );
    daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir } });
    await daemon.listen(join(dir, "kumo.sock"));
  });

  afterAll(async () => {
    await daemon?.close();
  });

  it("kumo create -c attaches to COM1 from the first byte", async () => {
    const stdin = new PassThrough();
    const run = kumo(["create", "-c", "echo.cfg"], stdin);
    await run.output.waitFor(/Kumo echo ROM ready\r\n/, 30_000, 0);
    stdin.write("hello");
    await run.output.waitFor(/HELLO/, 30_000);
    stdin.write("q");
    // The guest powered off through the exit port; the console ends with the domain.
    expect(await run.status).toBe(0);
    expect(run.output.output).toContain("bye");
  }, 60_000);

  it("kumo console attaches to a running HVM domain's COM1", async () => {
    const created = kumo(["create", "echo.cfg"]);
    expect(await created.status).toBe(0);
    expect(created.stderr()).toMatch(/created domain "echo"/);
    const stdin = new PassThrough();
    const attached = kumo(["console", "echo"], stdin);
    // Input typed now reaches the guest, whose echo comes back on this console.
    await new Promise((resolve) => setTimeout(resolve, 200));
    stdin.write("kumo");
    await attached.output.waitFor(/KUMO/, 30_000);
    stdin.write("q");
    expect(await attached.status).toBe(0);
  }, 60_000);
});
