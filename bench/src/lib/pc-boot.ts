/**
 * Shared by the benchmarks that boot the i386 Linux guest on a PC and time
 * it to lines of its serial console (boot-linux, boot-hvm): a console watch
 * that stamps the first sight of each of a list of texts, and the two peers,
 * QEMU TCG (`qemu-system-i386`, its own SeaBIOS) and v86 (npm `v86`,
 * WebAssembly JIT, with Debian's SeaBIOS), each started, watched until the
 * last text and ended.
 *
 * Times are wall-clock seconds from the start of each machine (process spawn
 * for QEMU, the constructor for v86) on a host that other jobs share: the
 * benchmarks print the load average beside them.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export const MEMORY_MIB = 128;
/** Debian's SeaBIOS and its VGA BIOS (package seabios), which v86 runs (QEMU has its own copy). */
export const SEABIOS = "/usr/share/seabios/bios.bin";
export const VGABIOS = "/usr/share/seabios/vgabios-stdvga.bin";
/** What the guest's /init prints (guests/initramfs/init): the end of every boot timed here. */
export const BANNER = "Kumo test guest i386 ready";
/** The first line Linux prints (init/version.c linux_banner), on every console it replays the log to. */
export const FIRST_LINE = "Linux version";

/** One boot of one machine: when each watched text showed up. */
export interface BootResult {
  machine: string;
  /** Seconds from the machine's start to the first sight of each text; undefined if never seen. */
  seconds: (number | undefined)[];
  /** The machine's guest instruction count at each text, where it counts them. */
  instructions: (number | undefined)[];
  /** v86: the share of samples (every 5 ms) in which its CPU sat in `hlt` before the last text. */
  haltedShare?: number;
  /** Why the machine did not reach the last text. */
  failure?: string;
  /** Kumo: seconds from the start to the domain's unpause (kernel unpacking and domain building before it). */
  startedAt?: number;
  /** Kumo: the x86 CPU's profiling counters (`X86Cpu.counters`) at the end of the boot. */
  cpuCounters?: Record<string, number>;
}

export function newResult(machine: string, texts: readonly string[]): BootResult {
  return {
    machine,
    seconds: texts.map(() => undefined),
    instructions: texts.map(() => undefined),
  };
}

/**
 * Watches a console byte stream for `texts` (in any order) and calls
 * `onSeen(index)` the first time each shows up, after stamping its time.
 */
export class ConsoleWatch {
  private tail = "";
  /** Everything seen, with each watched text's time, when `--console-dir` asks for it. */
  private record: string[] | undefined = consoleDirectory() === undefined ? undefined : [];
  private readonly decoder = new TextDecoder();
  readonly seen: (number | undefined)[];
  /** Whatever the machine printed last, for failure reports. */
  get last(): string {
    return this.tail.slice(-300);
  }
  constructor(
    private readonly started: number,
    private readonly texts: readonly string[],
    private readonly onSeen: (index: number) => void,
  ) {
    this.seen = texts.map(() => undefined);
  }
  feed(bytes: Uint8Array | string): void {
    const text = typeof bytes === "string" ? bytes : this.decoder.decode(bytes, { stream: true });
    this.tail = (this.tail + text).slice(-4096);
    this.record?.push(text);
    for (let index = 0; index < this.texts.length; index++) {
      if (this.seen[index] !== undefined || !this.tail.includes(this.texts[index])) continue;
      this.seen[index] = (performance.now() - this.started) / 1000;
      this.record?.push(`\n[bench: "${this.texts[index]}" at ${seconds(this.seen[index])}]\n`);
      this.onSeen(index);
    }
  }
  /** With `--console-dir=DIR`: writes what the machine printed to DIR/<name>.txt. */
  save(machine: string): void {
    const dir = consoleDirectory();
    if (dir === undefined || this.record === undefined) return;
    mkdirSync(dir, { recursive: true });
    const name = machine.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");
    writeFileSync(join(dir, `${name}.txt`), this.record.join(""));
  }
  /** True once the last text (the end of the boot) has been seen. */
  get done(): boolean {
    return this.seen[this.seen.length - 1] !== undefined;
  }
}

/**
 * QEMU TCG: `qemu-system-i386 <args> -nographic -no-reboot -m 128`, serial
 * on stdout, watched for `texts` and killed once the last one is seen (or
 * after `timeoutSeconds`).
 */
export function bootQemu(
  machine: string,
  args: readonly string[],
  texts: readonly string[],
  timeoutSeconds: number,
): Promise<BootResult> {
  const result = newResult(machine, texts);
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const child = spawn(
      "qemu-system-i386",
      [...args, "-nographic", "-no-reboot", "-m", String(MEMORY_MIB)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      result.seconds = [...watch.seen];
      watch.save(machine);
      if (failure) result.failure = `${failure}; last output: ${JSON.stringify(watch.last)}`;
      // The benchmark ends the VM: SIGKILL, so no monitor or guest shutdown is waited for.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      resolve(result);
    };
    const watch = new ConsoleWatch(started, texts, () => {
      if (watch.done) finish();
    });
    const timeout = setTimeout(
      () => finish(`no "${texts[texts.length - 1]}" within ${timeoutSeconds} s`),
      timeoutSeconds * 1000,
    );
    child.stdout.on("data", (chunk: Buffer) => watch.feed(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-1000);
    });
    child.on("error", (error) => finish(`cannot start qemu-system-i386: ${error.message}`));
    child.on("exit", (code, signal) =>
      finish(
        `qemu-system-i386 exited (${signal ?? `status ${code}`}) before the end${stderr ? `: ${stderr.trim()}` : ""}`,
      ),
    );
  });
}

/** Where the v86 package is: next to this benchmark's package.json. */
export function v86Directory(): string {
  const candidates = [
    process.argv[1] ? dirname(process.argv[1]) : "",
    process.cwd(),
    join(process.cwd(), "bench"),
  ];
  for (const base of candidates) {
    try {
      const require = createRequire(join(base, "package.json"));
      return dirname(require.resolve("v86/package.json"));
    } catch {}
  }
  throw new Error("the v86 package is not installed (pnpm install in bench/)");
}

export function arrayBuffer(path: string): ArrayBuffer {
  const bytes = readFileSync(path);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/**
 * v86 in this process through Debian's SeaBIOS, 128 MiB, serial output from
 * its `serial0-output-byte` event, with `boot` (its `bzimage`/`initrd`/
 * `cmdline` or `hda` options) as what it boots; ended once the last text is seen.
 */
export async function bootV86(
  machine: string,
  boot: Record<string, unknown>,
  texts: readonly string[],
  timeoutSeconds: number,
): Promise<BootResult> {
  const result = newResult(machine, texts);
  for (const file of [SEABIOS, VGABIOS]) {
    if (!existsSync(file)) {
      result.failure = `${file} is missing (Debian package seabios)`;
      return result;
    }
  }
  const directory = v86Directory();
  const { V86 } = await import(join(directory, "build/libv86.mjs"));
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    // biome-ignore lint/suspicious/noExplicitAny: v86 ships no types
    let emulator: any;
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      clearInterval(sampler);
      if (samples > 0) result.haltedShare = halted / samples;
      result.seconds = [...watch.seen];
      watch.save(machine);
      if (failure) result.failure = `${failure}; last output: ${JSON.stringify(watch.last)}`;
      const done = () => resolve(result);
      Promise.resolve(emulator?.destroy()).then(done, done);
    };
    const watch = new ConsoleWatch(started, texts, (index) => {
      result.instructions[index] = emulator.get_instruction_counter();
      if (watch.done) finish();
    });
    const timeout = setTimeout(
      () => finish(`no "${texts[texts.length - 1]}" within ${timeoutSeconds} s`),
      timeoutSeconds * 1000,
    );
    // How long v86 idles in hlt (its main loop yields to the event loop between slices and
    // while halted, so this timer sees both states): its MIPS while busy, next to Kumo's
    // virtual-clock figure. cpu.in_hlt is v86's internal state (src/cpu.js), read only.
    let samples = 0;
    let halted = 0;
    const sampler = setInterval(() => {
      const inHlt = emulator?.v86?.cpu?.in_hlt;
      if (!inHlt) return;
      samples++;
      if (inHlt[0]) halted++;
    }, 5);
    try {
      emulator = new V86({
        wasm_path: join(directory, "build/v86.wasm"),
        bios: { buffer: arrayBuffer(SEABIOS) },
        vga_bios: { buffer: arrayBuffer(VGABIOS) },
        ...boot,
        memory_size: MEMORY_MIB << 20,
        autostart: true,
        disable_keyboard: true,
        disable_mouse: true,
        disable_speaker: true,
      });
      emulator.add_listener("serial0-output-byte", (byte: number) => {
        watch.feed(String.fromCharCode(byte));
      });
    } catch (error) {
      finish(`v86 did not start: ${String(error)}`);
    }
  });
}

/** `--console-dir=DIR`: where each boot's console output is saved (none by default). */
function consoleDirectory(): string | undefined {
  const option = process.argv.find((arg) => arg.startsWith("--console-dir="));
  return option?.slice("--console-dir=".length);
}

export function seconds(value: number | undefined): string {
  return value === undefined ? "—" : `${value.toFixed(2)} s`;
}

/** Seconds from text `from` to text `to` of one boot, if both were seen. */
export function between(result: BootResult, from: number, to: number): number | undefined {
  const start = result.seconds[from];
  const end = result.seconds[to];
  return start === undefined || end === undefined ? undefined : end - start;
}

export function compare(kumo: number, peer: number): string {
  return kumo >= peer
    ? `Kumo ${(kumo / peer).toFixed(2)}x slower`
    : `Kumo ${(peer / kumo).toFixed(2)}x faster`;
}

/** `--runs=N` (default 1): how many rounds of boots. */
export function runsOption(): number {
  const option = process.argv.find((arg) => arg.startsWith("--runs="));
  const runs = option ? Number(option.slice("--runs=".length)) : 1;
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`--runs must be a positive integer, got ${option}`);
  }
  return runs;
}
