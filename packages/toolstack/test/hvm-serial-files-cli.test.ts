/**
 * The files behind COM2 and the debug console (xl.cfg `serial = [ "pty",
 * "file:com2.log" ]`, `debugcon = "file:debugcon.log"`) through the
 * command line, in the foreground (`kumo create -c`) and in `kumo daemon`.
 * The guest is a 64 KiB test ROM booted as the domain's firmware
 * (guests/freestanding/com-files-rom.asm, assembled with nasm): a line on
 * each of COM1, COM2 and the debug console, then isa-debug-exit.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { runKumo } from "../src/node/index";
import { assemble, freestanding } from "./support/hvm";
import { Console, hasTool } from "./support/linux-guest";

function setUp(): string {
  const dir = mkdtempSync(join(tmpdir(), "kumo-com-files-"));
  writeFileSync(join(dir, "rom.bin"), assemble(freestanding("com-files-rom.asm"), dir));
  writeFileSync(
    join(dir, "rom.cfg"),
    'name = "rom"\ntype = "hvm"\nmemory = 16\nfirmware = "rom.bin"\nserial = [ "pty", "file:com2.log", "null" ]\ndebugcon = "file:debugcon.log"\n',
  );
  return dir;
}

function kumo(dir: string, args: string[]) {
  const stdin = new PassThrough();
  const output = new Console(stdin);
  let stderr = "";
  const status = runKumo(args, {
    stdout: output,
    stderr: { write: (text: string) => (stderr += text) },
    stdin,
    env: { KUMO_STATE_DIR: join(dir, "state"), KUMO_CLOCK: "virtual" },
    cwd: dir,
  });
  return { status, output, stderr: () => stderr };
}

describe.skipIf(!hasTool("nasm"))(
  "COM2 and the debug console to files from the command line",
  () => {
    it("kumo create -c (foreground)", async () => {
      const dir = setUp();
      const run = kumo(dir, ["create", "-c", "rom.cfg"]);
      // isa-debug-exit 0x21: the exit status (0x21 << 1) | 1.
      expect(await run.status).toBe(0x43);
      expect(run.output.output).toContain("ROM on COM1\r\n");
      expect(run.output.output).not.toContain("COM2");
      expect(readFileSync(join(dir, "com2.log"), "latin1")).toBe("ROM on COM2\r\n");
      expect(readFileSync(join(dir, "debugcon.log"), "latin1")).toBe("ROM on debugcon\n");
    }, 60_000);

    it("kumo create -c through kumo daemon", async () => {
      const dir = setUp();
      mkdirSync(join(dir, "state"));
      const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: join(dir, "state") } });
      await daemon.listen(join(dir, "state", "kumo.sock"));
      try {
        const run = kumo(dir, ["create", "-c", "rom.cfg"]);
        await run.output.waitFor(/ROM on COM1\r\n/, 30_000, 0);
        await run.status;
        // The files are closed with the domain; wait until the daemon forgot it.
        for (let i = 0; i < 100 && !readFileSync(join(dir, "debugcon.log"), "latin1"); i++)
          await new Promise((resolve) => setTimeout(resolve, 50));
        expect(readFileSync(join(dir, "com2.log"), "latin1")).toBe("ROM on COM2\r\n");
        expect(readFileSync(join(dir, "debugcon.log"), "latin1")).toBe("ROM on debugcon\n");
      } finally {
        await daemon.close();
      }
    }, 60_000);

    it("a file that cannot be opened is the user's error, before the domain exists", async () => {
      const dir = setUp();
      writeFileSync(
        join(dir, "bad.cfg"),
        'name = "bad"\ntype = "hvm"\nmemory = 16\nfirmware = "rom.bin"\nserial = [ "pty", "file:no/such/dir/com2.log" ]\n',
      );
      const run = kumo(dir, ["create", "-c", "bad.cfg"]);
      expect(await run.status).not.toBe(0);
      expect(run.stderr()).toContain(`cannot open COM2 file ${join(dir, "no/such/dir/com2.log")}`);
    });
  },
);
