/**
 * Helpers for the tests that boot the real Linux i386 guest from guests/
 * (cached in ~/.cache/kumo/guests): find its images, drive its console.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { findGuest } from "../../../../guests/src/index";
import { runKumo } from "../../src/node/index";

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

/**
 * The i386 guest's SeaBIOS boot disk (guests/: MBR, FAT16 with SYSLINUX,
 * bzImage and initramfs), or undefined: the tests then skip; in CI a
 * missing disk throws instead, as for the guest itself.
 */
export function findBootDisk(): string | undefined {
  let disk: string | undefined;
  let why = "it is not in the cache ($KUMO_GUESTS_CACHE or ~/.cache/kumo/guests)";
  try {
    disk = findGuest("i386")?.bootDisk;
  } catch (error) {
    // guestInputs throws where linux-source-6.1 or the compiler are missing.
    why = (error as Error).message;
  }
  if (disk === undefined && process.env.CI)
    throw new Error(
      `CI is set but the i386 guest's boot disk is not built (${why}): \`node guests/bin/guests.mjs i386\` must run before these tests (pnpm test does it; it needs syslinux, mtools and dosfstools)`,
    );
  return disk;
}

/**
 * The i386 guest's bzImage (built beside its vmlinux), or null when the
 * guest or its bzImage is missing: the HVM direct-boot tests then skip.
 */
export function findI386BzImage(): string | null {
  const guest = findI386Guest();
  if (guest === null) return null;
  const bzImage = join(dirname(guest.vmlinux), "bzImage");
  return existsSync(bzImage) ? bzImage : null;
}

/**
 * xl.cfg lines of the i386 guest as an HVM domain booted directly from its
 * bzImage, 128 MiB, console on COM1 (`serial = "pty"`), then `extra`.
 */
export function hvmDirectBootConfig(name: string, extra: readonly string[] = []): string[] {
  const guest = findI386Guest();
  const bzImage = findI386BzImage();
  if (guest === null || bzImage === null) throw new Error("the i386 guest's bzImage is not built");
  return [
    `name = "${name}"`,
    'type = "hvm"',
    "memory = 128",
    `kernel = "${bzImage}"`,
    `ramdisk = "${guest.initramfs}"`,
    'cmdline = "console=ttyS0"',
    'serial = "pty"',
    ...extra,
  ];
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

/** `kumo create -c` running in this process, its console driven by the test. */
export interface AttachedGuest {
  readonly console: Console;
  readonly stdin: PassThrough;
  /** kumo's exit status; stdin is closed when it comes. */
  readonly ended: Promise<number>;
  /** What kumo wrote on stderr so far. */
  stderr(): string;
  /**
   * Resolves when `pattern` shows up in the console output from `from` on
   * (the whole output by default); fails at once, with the console and
   * stderr, if kumo exits before.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
}

/**
 * Writes `config` (xl.cfg lines) to `dir`/guest.cfg and runs `kumo create
 * -c` on it with `dir` as the working directory. The environment defaults
 * to a state folder in `dir` and the virtual clock, which makes the run the
 * same every time.
 */
export function createAttached(
  dir: string,
  config: readonly string[],
  options: { args?: readonly string[]; env?: Record<string, string> } = {},
): AttachedGuest {
  writeFileSync(join(dir, "guest.cfg"), [...config, ""].join("\n"));
  const stdin = new PassThrough();
  const console = new Console(stdin);
  let stderr = "";
  const status = runKumo(["create", "-c", ...(options.args ?? []), "guest.cfg"], {
    stdout: console,
    stderr: { write: (text: string) => (stderr += text) },
    stdin,
    env: options.env ?? { KUMO_STATE_DIR: join(dir, "state"), KUMO_CLOCK: "virtual" },
    cwd: dir,
  });
  const ended = status.then((code) => {
    stdin.end();
    return code;
  });
  return {
    console,
    stdin,
    ended,
    stderr: () => stderr,
    waitFor: (pattern, timeoutMs, from = 0) =>
      Promise.race([
        console.waitFor(pattern, timeoutMs, from),
        ended.then((code): never => {
          throw new Error(`kumo exited (${code}) before ${pattern}: ${stderr}\n${console.output}`);
        }),
      ]),
  };
}

/**
 * Two i386 guests, "a" (10.0.0.1) and "b" (10.0.0.2), each with one vif on
 * bridge xenbr0, created through the kumo daemon that serves `dir` and
 * attached with `kumo console`. Resolves once both have eth0 up with their
 * address; `ended` holds the two consoles' exit statuses.
 */
export async function bridgedPair(
  dir: string,
  env: Record<string, string>,
  cmdline = "console=hvc0",
): Promise<{ consoles: Console[]; ended: Promise<number>[] }> {
  const guest = findI386Guest();
  if (guest === null)
    throw new Error("the i386 guest is not built (pnpm --filter @kumo/guests build)");
  const consoles: Console[] = [];
  const ended: Promise<number>[] = [];
  for (const [index, name] of ["a", "b"].entries()) {
    writeFileSync(
      join(dir, `${name}.cfg`),
      [
        `name = "${name}"`,
        'type = "pvh"',
        "memory = 128",
        `kernel = "${guest.vmlinux}"`,
        `ramdisk = "${guest.initramfs}"`,
        `cmdline = "${cmdline}"`,
        `vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:0${index + 1}" ]`,
        "",
      ].join("\n"),
    );
    let stderr = "";
    const io = {
      stdout: { write: () => true },
      stderr: { write: (text: string) => (stderr += text) },
      env,
      cwd: dir,
    };
    const created = await runKumo(["create", `${name}.cfg`], io);
    if (created !== 0) throw new Error(`kumo create ${name}.cfg exited ${created}: ${stderr}`);
    const stdin = new PassThrough();
    const console = new Console(stdin);
    consoles.push(console);
    ended.push(runKumo(["console", name], { ...io, stdout: console, stdin }));
  }
  for (const console of consoles) {
    // From the start of the output: the other guest may have printed its banner meanwhile.
    await console.waitFor(/Kumo test guest i386 ready[\s\S]*# (?:[^\w\s]\[6n)?/, 900_000, 0);
  }
  for (const [index, console] of consoles.entries()) {
    await console.run(
      `ip link set eth0 up && ip addr add 10.0.0.${index + 1}/24 dev eth0`,
      10 + index,
    );
  }
  return { consoles, ended };
}
