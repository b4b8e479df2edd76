/**
 * Shared by the benchmarks that boot the Linux test guests from guests/:
 * their images (guestPaths; boot-linux, boot-linux-arm64 too) and, for
 * those under `kumo daemon` (linux-disk, linux-net), a daemon
 * in this process, guests created and driven through `kumo create` and
 * `kumo console` (runKumo, as packages/toolstack/test/linux-net.test.ts
 * does), and a console that waits for patterns and runs shell commands.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { runKumo } from "@kumo/toolstack/node";

/** busybox ash ends its prompt with a cursor position query (ESC [6n) that nothing answers here. */
const PROMPT = /Kumo test guest i386 ready[\s\S]*# (?:[^\w\s]\[6n)?/;

export interface GuestImages {
  vmlinux: string;
  initramfs: string;
}

/**
 * The paths that guests/bin/guests.mjs prints for `labels` (vmlinux, kernel,
 * initramfs) after building the `arch` guest if missing (cached otherwise).
 * Run as a child process: @kumo/guests finds its recipes relative to its own
 * source file, which the bench runner's bundle moves.
 */
export function guestPaths<Label extends string>(
  arch: "i386" | "arm64",
  labels: readonly Label[],
): Record<Label, string> {
  const candidates = [
    process.argv[1] ? resolve(dirname(process.argv[1]), "..") : "",
    process.cwd(),
    resolve(process.cwd(), ".."),
  ];
  const root = candidates.find((dir) => dir && existsSync(join(dir, "guests/bin/guests.mjs")));
  if (!root) throw new Error("cannot find guests/bin/guests.mjs (run from the repository)");
  const build = spawnSync(process.execPath, [join(root, "guests/bin/guests.mjs"), arch], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (build.status !== 0) throw new Error(`building the ${arch} guest failed (see above)`);
  const paths = {} as Record<Label, string>;
  for (const label of labels) {
    const match = new RegExp(`^\\s*${label}\\s+(\\S+)\\s*$`, "m").exec(build.stdout);
    if (!match) throw new Error(`the guest build printed no ${label} path`);
    paths[label] = match[1];
  }
  return paths;
}

/** The i386 guest's vmlinux (booted as PVH) and initramfs, built if missing. */
export function i386Guest(): GuestImages {
  return guestPaths("i386", ["vmlinux", "initramfs"]);
}

/** A guest console: collects output, waits for patterns, runs commands. */
export class GuestConsole {
  output = "";
  readonly stdin = new PassThrough();
  private waiters: { pattern: RegExp; from: number; done: () => void }[] = [];
  private marker = 100;

  write(chunk: string | Uint8Array): boolean {
    this.output += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("latin1");
    if (this.output.length > 1 << 20) {
      // Long runs: keep the tail only (waiters look at what came after their start).
      const cut = this.output.length - (1 << 19);
      this.output = this.output.slice(cut);
      for (const waiter of this.waiters) waiter.from = Math.max(0, waiter.from - cut);
    }
    for (const waiter of [...this.waiters]) {
      if (waiter.pattern.test(this.output.slice(waiter.from))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.done();
      }
    }
    return true;
  }

  waitFor(pattern: RegExp, timeoutMs: number, from = this.output.length): Promise<void> {
    if (pattern.test(this.output.slice(from))) return Promise.resolve();
    return new Promise((done, fail) => {
      const timer = setTimeout(
        () =>
          fail(new Error(`timed out waiting for ${pattern}; console: ${this.output.slice(-1500)}`)),
        timeoutMs,
      );
      this.waiters.push({
        pattern,
        from,
        done: () => {
          clearTimeout(timer);
          done();
        },
      });
    });
  }

  /** Runs a shell command; resolves with its output once a marker computed by the shell appears. */
  async run(command: string, timeoutMs = 600_000): Promise<string> {
    const marker = this.marker++;
    const from = this.output.length;
    this.stdin.write(`${command}; echo "@@$((${marker}+1))@@"\n`);
    await this.waitFor(new RegExp(`@@${marker + 1}@@`), timeoutMs, from);
    return this.output.slice(from);
  }
}

export interface GuestSpec {
  name: string;
  memoryMiB?: number;
  /** xl.cfg lines after the kernel ones (disk = [...], vif = [...]). */
  extra: string[];
}

/**
 * A `kumo daemon` in this process with guests created from `specs`, each
 * at its shell prompt. `stop()` powers them off and ends the daemon.
 */
export async function startGuests(
  dir: string,
  images: GuestImages,
  specs: GuestSpec[],
): Promise<{ consoles: GuestConsole[]; stop(): Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const env = { KUMO_STATE_DIR: dir };
  let daemonOut = "";
  const daemonIo = {
    stdout: { write: (text: string) => (daemonOut += text) },
    stderr: { write: (text: string) => (daemonOut += text) },
    env,
    cwd: dir,
  };
  // `kumo daemon` serves until SIGINT/SIGTERM; stop() emits them to this process's listeners.
  const daemon = runKumo(["daemon"], daemonIo);
  const started = Date.now();
  while (!daemonOut.includes("listening")) {
    if (Date.now() - started > 30_000) throw new Error(`kumo daemon did not start: ${daemonOut}`);
    await new Promise((done) => setTimeout(done, 20));
  }
  const consoles: GuestConsole[] = [];
  const ended: Promise<number>[] = [];
  const stop = async () => {
    for (const console of consoles) console.stdin.write("poweroff\n");
    await Promise.race([Promise.all(ended), new Promise((done) => setTimeout(done, 120_000))]);
    process.emit("SIGTERM");
    process.emit("SIGINT");
    await daemon;
  };
  try {
    for (const spec of specs) {
      writeFileSync(
        join(dir, `${spec.name}.cfg`),
        [
          `name = "${spec.name}"`,
          'type = "pvh"',
          `memory = ${spec.memoryMiB ?? 128}`,
          `kernel = "${images.vmlinux}"`,
          `ramdisk = "${images.initramfs}"`,
          'cmdline = "console=hvc0"',
          ...spec.extra,
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
      const status = await runKumo(["create", `${spec.name}.cfg`], io);
      if (status !== 0) throw new Error(`kumo create ${spec.name} failed (${status}): ${stderr}`);
      const console = new GuestConsole();
      consoles.push(console);
      ended.push(runKumo(["console", spec.name], { ...io, stdout: console, stdin: console.stdin }));
    }
    for (const console of consoles) await console.waitFor(PROMPT, 900_000, 0);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { consoles, stop };
}
