/**
 * Helpers for the tests that boot the real Linux i386 guest from guests/
 * (cached in ~/.cache/kumo/guests): find its images, drive its console.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { PassThrough } from "node:stream";

/**
 * The newest built i386 guest (guests/ writes manifest.json last, so a dir
 * with it is complete), or null: the Linux tests then skip. In CI
 * (`process.env.CI` set) a missing guest throws instead, failing the test
 * file: `pnpm test` builds the guest first (turbo), so a skip there would
 * hide a broken guest build.
 */
export function findI386Guest(): { vmlinux: string; initramfs: string } | null {
  const guest = newestI386Guest();
  if (guest === null && process.env.CI) {
    throw new Error(
      "CI is set but no i386 guest is built (looked in $KUMO_GUESTS_CACHE or ~/.cache/kumo/guests): " +
        "`node guests/bin/guests.mjs i386` must run before these tests (pnpm test does it)",
    );
  }
  return guest;
}

function newestI386Guest(): { vmlinux: string; initramfs: string } | null {
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

export function hasTool(name: string): boolean {
  return ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].some((dir) => existsSync(join(dir, name)));
}

/** A guest console driven from the test: collect output, wait for patterns, type lines. */
export class Console {
  output = "";
  private waiters: { pattern: RegExp; from: number; done: (match: RegExpExecArray) => void }[] = [];
  constructor(readonly stdin: PassThrough) {}

  write(chunk: string | Uint8Array): boolean {
    this.output += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("latin1");
    for (const waiter of [...this.waiters]) {
      const match = waiter.pattern.exec(this.output.slice(waiter.from));
      if (match) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.done(match);
      }
    }
    return true;
  }

  /** Resolves when `pattern` shows up in what the guest writes from now on. */
  waitFor(pattern: RegExp, timeoutMs: number, from = this.output.length): Promise<RegExpExecArray> {
    const already = pattern.exec(this.output.slice(from));
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `timed out waiting for ${pattern}; console so far:\n${this.output.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push({
        pattern,
        from,
        done: (match) => {
          clearTimeout(timer);
          resolve(match);
        },
      });
    });
  }

  /**
   * Types a command that ends by echoing a marker computed by the shell (so the
   * typed text itself never matches) and returns what the command printed.
   */
  async run(command: string, marker: number, timeoutMs = 400_000): Promise<string> {
    const from = this.output.length;
    this.stdin.write(`${command}; echo "@@$((${marker}+1))@@"\n`);
    await this.waitFor(new RegExp(`@@${marker + 1}@@`), timeoutMs, from);
    return this.output.slice(from);
  }
}
