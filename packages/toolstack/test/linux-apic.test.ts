/**
 * Acceptance test of the local APIC wiring (issue 9): the unmodified Linux
 * 6.1 i386 guest (built by guests/, cached in ~/.cache/kumo/guests) boots as
 * a PVH domain with `kumo create -c` on the virtual clock, finds the
 * emulated local APIC, installs the Xen PV timer (which it skips in PIC
 * mode: arch/x86/xen/time.c xen_time_init via setup_percpu_clockev), prints
 * no APIC complaint (Linux's "APIC: Stale IRR" appears when nothing answers
 * at 0xFEE00000), and takes keyboard input through hvc_xen, whose delayed
 * event-channel re-enable needs timer ticks.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { runKumo } from "../src/node/index";

/** The newest built i386 guest (guests/ writes manifest.json last, so a dir with it is complete). */
function findI386Guest(): { vmlinux: string; initramfs: string } | null {
  const base = process.env.KUMO_GUESTS_CACHE ?? join(homedir(), ".cache/kumo/guests");
  if (!existsSync(base)) return null;
  const dirs = readdirSync(base)
    .filter((name) => name.startsWith("i386-"))
    .map((name) => join(base, name))
    .filter((dir) =>
      ["manifest.json", "vmlinux", "initramfs.cpio.gz"].every((f) => existsSync(join(dir, f))),
    )
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return dirs.length > 0
    ? { vmlinux: join(dirs[0], "vmlinux"), initramfs: join(dirs[0], "initramfs.cpio.gz") }
    : null;
}

const guest = findI386Guest();

/** Collects what the guest writes and resolves waits on patterns. */
class Output {
  text = "";
  private waiters: { pattern: RegExp; from: number; done: () => void }[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("latin1");
    for (const waiter of [...this.waiters]) {
      if (waiter.pattern.test(this.text.slice(waiter.from))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.done();
      }
    }
    return true;
  }
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<void> {
    if (pattern.test(this.text.slice(from))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${pattern}:\n${this.text.slice(-3000)}`)),
        timeoutMs,
      );
      this.waiters.push({
        pattern,
        from,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

describe.skipIf(guest === null)("Linux i386 PVH guest with the local APIC", () => {
  it("installs the Xen timer, prints no APIC warning and takes keyboard input", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-apic-"));
    writeFileSync(
      join(dir, "guest.cfg"),
      [
        'name = "apic"',
        'type = "pvh"',
        "memory = 128",
        `kernel = "${guest?.vmlinux}"`,
        `ramdisk = "${guest?.initramfs}"`,
        'cmdline = "console=hvc0"',
        "",
      ].join("\n"),
    );
    const stdin = new PassThrough();
    const output = new Output();
    let stderr = "";
    const status = runKumo(["create", "-c", "guest.cfg"], {
      stdout: output,
      stderr: { write: (text: string) => (stderr += text) },
      stdin,
      env: { KUMO_STATE_DIR: join(dir, "state"), KUMO_CLOCK: "virtual" },
      cwd: dir,
    });
    const ended = status.then((code) => {
      stdin.end();
      return code;
    });
    await Promise.race([
      output.waitFor(/Kumo test guest i386 ready[\s\S]*# /, 300_000),
      ended.then((code) => {
        throw new Error(`kumo exited (${code}) before the prompt: ${stderr}\n${output.text}`);
      }),
    ]);
    expect(output.text).toContain("Found and enabled local APIC!");
    expect(output.text).toContain("installing Xen timer for CPU 0");
    expect(output.text).not.toMatch(/Stale IRR|APIC.*(error|warn|fail)|spurious APIC/i);
    // Timer ticks run: printk time advances through the boot instead of freezing and jumping.
    const freeing = /\[\s*([0-9.]+)\] Freeing unused kernel image/.exec(output.text);
    expect(freeing).not.toBeNull();
    expect(Number(freeing?.[1])).toBeLessThan(5);

    const from = output.text.length;
    stdin.write('echo "@@$((40+2))@@"; uname -m\n');
    await output.waitFor(/@@42@@\s+i686/, 120_000, from);
    stdin.write("poweroff -f\n");
    expect(await ended).toBe(0);
  }, 600_000);
});
