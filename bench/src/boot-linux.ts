/**
 * Boots the i386 Linux 6.1 test guest from guests/ (the same bzImage and
 * busybox initramfs) on three machines and times it to the banner its /init
 * prints ("Kumo test guest i386 ready", guests/initramfs/init):
 *
 * - Kumo: the bzImage unpacked by @kumo/toolstack and booted as a Xen PVH
 *   domain on @kumo/hypervisor-core with @kumo/cpu-x86 (console=hvc0), in
 *   this process, as `kumo create -c` does (packages/toolstack/src/cli/main.ts
 *   bootOnce), with the guest's retired instructions counted.
 * - QEMU TCG: `qemu-system-i386 -kernel bzImage -initrd ... -append
 *   console=ttyS0 -nographic -no-reboot -m 128` (Debian's qemu-system-x86),
 *   through SeaBIOS and the kernel's own decompressor; the banner is read on
 *   the serial port (stdout), then the process is killed.
 * - v86 (npm `v86`, WebAssembly JIT): the same bzImage and initrd through
 *   Debian's SeaBIOS (/usr/share/seabios, package `seabios`), serial output
 *   through its `serial0-output-byte` event.
 *
 * Kumo boots twice per round: on the host clock (as `kumo create` runs; a
 * halted guest waits for its timers in real time, as on QEMU and v86) and on
 * the virtual clock (guest time follows retired instructions, so the whole
 * wall time is interpretation: Kumo's boot MIPS for issue 3). Besides the
 * seconds to the banner, the table shows the seconds from Linux's first
 * console line to the banner, which leave out what differs between the
 * machines before the kernel runs (firmware and the bzImage decompressor on
 * QEMU and v86, unpacking and domain building on Kumo).
 *
 * Each boot is bounded by BOOT_TIMEOUT_SECONDS and its processes or emulator
 * are ended afterwards. A peer that cannot boot the guest is reported with
 * the reason and left out of the ratios. `--runs=N` (default 1) boots each
 * machine N times in turn (QEMU, v86, Kumo, Kumo on the virtual clock).
 *
 * The times are wall-clock seconds from the start of each machine (process
 * spawn for QEMU, constructor for v86, kernel unpacking for Kumo) on a host
 * that other jobs share: the figures vary with the load (printed below).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import {
  createPvhDomain,
  introduceDomain,
  parseDomainConfig,
  unpackKernelImage,
} from "@kumo/toolstack";
import { Xenstored } from "@kumo/xenstore";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { guestPaths } from "./lib/linux-guest";

const BANNER = "Kumo test guest i386 ready";
/** The first line Linux prints (init/version.c linux_banner), on every console it replays the log to. */
const FIRST_LINE = "Linux version";
const BOOT_TIMEOUT_SECONDS = 240;
const MEMORY_MIB = 128;
const SEABIOS = "/usr/share/seabios/bios.bin";
const VGABIOS = "/usr/share/seabios/vgabios-stdvga.bin";

interface GuestImages {
  /** The bzImage (the same file boots on all three machines). */
  kernel: string;
  initramfs: string;
}

/** The i386 guest's bzImage and initramfs, built if missing (src/lib/linux-guest.ts). */
function guestImages(): GuestImages {
  return guestPaths("i386", ["kernel", "initramfs"]);
}

interface BootResult {
  machine: string;
  /** Seconds to the first kernel console line and to the banner; undefined if never seen. */
  firstLine?: number;
  banner?: number;
  /** Guest instructions at those points, where the machine counts them. */
  firstLineInstructions?: number;
  bannerInstructions?: number;
  /** v86: the share of samples (every 5 ms) in which its CPU sat in `hlt` before the banner. */
  haltedShare?: number;
  /** Why the machine did not reach the banner. */
  failure?: string;
}

/** Watches a console byte stream for the first kernel line and the banner. */
class ConsoleWatch {
  private tail = "";
  private readonly decoder = new TextDecoder();
  firstLine?: number;
  banner?: number;
  /** Whatever the machine printed last, for failure reports. */
  get last(): string {
    return this.tail.slice(-300);
  }
  constructor(
    private readonly started: number,
    private readonly onFirstLine: () => void,
    private readonly onBanner: () => void,
  ) {}
  feed(bytes: Uint8Array | string): void {
    const text = typeof bytes === "string" ? bytes : this.decoder.decode(bytes, { stream: true });
    this.tail = (this.tail + text).slice(-4096);
    if (this.firstLine === undefined && this.tail.includes(FIRST_LINE)) {
      this.firstLine = (performance.now() - this.started) / 1000;
      this.onFirstLine();
    }
    if (this.banner === undefined && this.tail.includes(BANNER)) {
      this.banner = (performance.now() - this.started) / 1000;
      this.onBanner();
    }
  }
}

/** Kumo: a PVH domain in this process, as `kumo create -c` builds it. */
async function bootKumo(images: GuestImages, clock: "wall" | "virtual"): Promise<BootResult> {
  const result: BootResult = {
    machine: clock === "wall" ? "Kumo (PVH, host clock)" : "Kumo (PVH, virtual clock)",
  };
  const started = performance.now();
  const kernel = await unpackKernelImage(new Uint8Array(readFileSync(images.kernel)));
  const ramdisk = new Uint8Array(readFileSync(images.initramfs));
  const config = parseDomainConfig(
    `name = "bench-linux-i386"
     type = "pvh"
     memory = ${MEMORY_MIB}
     vcpus = 1
     kernel = "${images.kernel}"
     extra = "console=hvc0"
     on_poweroff = "destroy"
     on_reboot = "destroy"
     on_crash = "destroy"`,
    "boot-linux.cfg",
  );
  const hypervisor = new Hypervisor();
  const xenstored = new Xenstored();
  const runnable = createPvhDomain(
    hypervisor,
    config,
    { kernel: kernel.elf, ramdisk },
    // "wall": the host's clock, as interactive `kumo create` runs, so the guest's timers follow
    // real time and an idle (halted) guest waits for them as on QEMU and v86. "virtual": guest
    // time advances with retired instructions (1 ns each) and a halt skips to the next timer,
    // so the wall time is all interpretation: the interpreter's MIPS on this boot.
    { paused: true, clock: { mode: clock } },
  );
  const { domain, console: backend } = runnable;
  await introduceDomain(xenstored, hypervisor.host, {
    domid: domain.domid,
    name: config.name,
    memoryKiB: config.memoryMiB * 1024,
    vcpus: config.vcpus,
    storeGfn: runnable.layout.specialPages.xenstoreGfn,
    storePort: runnable.storePort,
  });
  const watch = new ConsoleWatch(
    started,
    () => {
      result.firstLineInstructions = domain.instructionsRetired();
    },
    () => {
      result.bannerInstructions = domain.instructionsRetired();
      hypervisor.stop();
    },
  );
  backend.onOutput((bytes) => watch.feed(bytes));
  const unsubscribe = hypervisor.onDomainEvent((event) => {
    if (event.domid !== domain.domid) return;
    if (event.kind === "shutdown" || event.kind === "destroyed") {
      backend.service();
      result.failure ??= `the domain ended (${event.kind}${"reason" in event ? `: ${event.reason}` : ""}) before the banner`;
      hypervisor.stop();
    }
  });
  const timeout = setTimeout(() => {
    result.failure ??= `no banner within ${BOOT_TIMEOUT_SECONDS} s`;
    hypervisor.stop();
  }, BOOT_TIMEOUT_SECONDS * 1000);
  domain.unpause();
  try {
    await hypervisor.run();
  } catch (error) {
    result.failure ??= `the hypervisor threw: ${String(error)}`;
  } finally {
    clearTimeout(timeout);
    unsubscribe();
    if (domain.state !== "destroyed") hypervisor.destroyDomain(domain.domid);
    xenstored.releaseDomain(domain.domid);
    backend.close();
  }
  result.firstLine = watch.firstLine;
  result.banner = watch.banner;
  if (result.banner !== undefined) result.failure = undefined;
  else
    result.failure = `${result.failure ?? "no banner"}; last console output: ${JSON.stringify(watch.last)}`;
  return result;
}

/** QEMU TCG: a child process, serial on stdout, killed once the banner is seen. */
function bootQemu(images: GuestImages): Promise<BootResult> {
  const result: BootResult = { machine: "QEMU TCG (qemu-system-i386, SeaBIOS, bzImage)" };
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const child = spawn(
      "qemu-system-i386",
      [
        "-kernel",
        images.kernel,
        "-initrd",
        images.initramfs,
        "-append",
        "console=ttyS0",
        "-nographic",
        "-no-reboot",
        "-m",
        String(MEMORY_MIB),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      result.firstLine = watch.firstLine;
      result.banner = watch.banner;
      if (failure) result.failure = `${failure}; last output: ${JSON.stringify(watch.last)}`;
      // The benchmark ends the VM: SIGKILL, so no monitor or guest shutdown is waited for.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      resolve(result);
    };
    const watch = new ConsoleWatch(
      started,
      () => {},
      () => finish(),
    );
    const timeout = setTimeout(
      () => finish(`no banner within ${BOOT_TIMEOUT_SECONDS} s`),
      BOOT_TIMEOUT_SECONDS * 1000,
    );
    child.stdout.on("data", (chunk: Buffer) => watch.feed(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-1000);
    });
    child.on("error", (error) => finish(`cannot start qemu-system-i386: ${error.message}`));
    child.on("exit", (code, signal) =>
      finish(
        `qemu-system-i386 exited (${signal ?? `status ${code}`}) before the banner${stderr ? `: ${stderr.trim()}` : ""}`,
      ),
    );
  });
}

/** Where the v86 package is: next to this benchmark's package.json (as in cpu-x86.ts). */
function v86Directory(): string {
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

function arrayBuffer(path: string): ArrayBuffer {
  const bytes = readFileSync(path);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/** v86: in this process, through SeaBIOS, serial output from its event bus. */
async function bootV86(images: GuestImages): Promise<BootResult> {
  const result: BootResult = { machine: "v86 (WebAssembly JIT, SeaBIOS, bzImage)" };
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
      result.firstLine = watch.firstLine;
      result.banner = watch.banner;
      if (failure) result.failure = `${failure}; last output: ${JSON.stringify(watch.last)}`;
      const done = () => resolve(result);
      Promise.resolve(emulator?.destroy()).then(done, done);
    };
    const watch = new ConsoleWatch(
      started,
      () => {
        result.firstLineInstructions = emulator.get_instruction_counter();
      },
      () => {
        result.bannerInstructions = emulator.get_instruction_counter();
        finish();
      },
    );
    const timeout = setTimeout(
      () => finish(`no banner within ${BOOT_TIMEOUT_SECONDS} s`),
      BOOT_TIMEOUT_SECONDS * 1000,
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
        bzimage: { buffer: arrayBuffer(images.kernel) },
        initrd: { buffer: arrayBuffer(images.initramfs) },
        cmdline: "console=ttyS0",
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

function seconds(value: number | undefined): string {
  return value === undefined ? "—" : `${value.toFixed(2)} s`;
}

/**
 * Seconds from Linux's first console line to the banner: the kernel's own
 * boot and /init, without the firmware, the bzImage decompressor (QEMU, v86)
 * or Kumo's PVH domain building, which differ between the machines.
 */
function kernelSeconds(result: BootResult): number | undefined {
  return result.firstLine === undefined || result.banner === undefined
    ? undefined
    : result.banner - result.firstLine;
}

function compare(kumo: number, peer: number): string {
  return kumo >= peer
    ? `Kumo ${(kumo / peer).toFixed(2)}x slower`
    : `Kumo ${(peer / kumo).toFixed(2)}x faster`;
}

function runsOption(): number {
  const option = process.argv.find((arg) => arg.startsWith("--runs="));
  const runs = option ? Number(option.slice("--runs=".length)) : 1;
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`--runs must be a positive integer, got ${option}`);
  }
  return runs;
}

const benchmark: Benchmark = {
  name: "boot-linux",
  description:
    'i386 Linux 6.1 + busybox initramfs to "Kumo test guest i386 ready": Kumo (PVH) vs QEMU TCG vs v86 (bzImage via SeaBIOS)',
  async run(context: BenchmarkContext) {
    const runs = runsOption();
    const images = guestImages();
    console.log(`  guest: ${images.kernel}, ${images.initramfs}`);
    console.log(
      `  load average before: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
    );
    const all: BootResult[][] = [];
    for (let round = 0; round < runs; round++) {
      const qemu = await bootQemu(images);
      const v86 = await bootV86(images);
      const kumo = await bootKumo(images, "wall");
      const kumoVirtual = await bootKumo(images, "virtual");
      const results = [qemu, v86, kumo, kumoVirtual];
      all.push(results);
      const suffix = runs > 1 ? ` (run ${round + 1})` : "";
      console.log(`\n  run ${round + 1}/${runs}, load average ${loadavg()[0].toFixed(1)}`);
      console.log(
        `  ${"machine".padEnd(46)} ${"first line".padStart(10)} ${"banner".padStart(9)} ${"line→banner".padStart(11)}  ${"guest instructions to banner".padStart(28)}`,
      );
      for (const r of results) {
        const instructions =
          r.bannerInstructions === undefined || r.banner === undefined
            ? "not counted"
            : `${(r.bannerInstructions / 1e6).toFixed(0)} M, ${(r.bannerInstructions / 1e6 / r.banner).toFixed(1)} MIPS`;
        const busy =
          r.haltedShare === undefined ||
          r.bannerInstructions === undefined ||
          r.banner === undefined
            ? ""
            : ` (halted ${(r.haltedShare * 100).toFixed(0)}% of samples: ${(r.bannerInstructions / 1e6 / (r.banner * (1 - r.haltedShare))).toFixed(1)} MIPS busy)`;
        console.log(
          `  ${r.machine.padEnd(46)} ${seconds(r.firstLine).padStart(10)} ${seconds(r.banner).padStart(9)} ${seconds(kernelSeconds(r)).padStart(11)}  ${(r.banner === undefined ? "—" : instructions).padStart(28)}${busy}`,
        );
      }
      for (const r of results) {
        if (r.failure) console.log(`  ${r.machine} did not boot: ${r.failure}`);
      }
      console.log(
        `\n  ${"ratio (seconds to the banner)".padEnd(46)} ${"Kumo/peer".padStart(10)}  ${"".padEnd(24)}  kernel only (line→banner)`,
      );
      for (const k of [kumo, kumoVirtual]) {
        for (const peer of [qemu, v86]) {
          if (k.banner === undefined || peer.banner === undefined) continue;
          const kk = kernelSeconds(k);
          const pk = kernelSeconds(peer);
          const kernelOnly =
            kk === undefined || pk === undefined
              ? "—"
              : `${(kk / pk).toFixed(2)}: ${compare(kk, pk)}`;
          console.log(
            `  ${`${k.machine} / ${peer.machine.split(" (")[0]}`.padEnd(46)} ${(k.banner / peer.banner).toFixed(2).padStart(10)}  ${compare(k.banner, peer.banner).padEnd(24)}  ${kernelOnly}`,
          );
        }
      }
      for (const k of [kumo, kumoVirtual]) {
        if (k.banner === undefined) continue;
        context.report({
          label: `${k.machine}: seconds to the banner${suffix}`,
          value: k.banner,
          unit: "s",
          detail: `first console line at ${seconds(k.firstLine)}, ${k.firstLineInstructions} instructions`,
        });
        if (k.bannerInstructions !== undefined) {
          context.report({
            label: `${k.machine}: guest instructions per second to the banner${suffix}`,
            value: k.bannerInstructions / k.banner,
            unit: "instr/s",
            detail: `${k.bannerInstructions} instructions`,
          });
        }
      }
      for (const peer of [qemu, v86]) {
        const peerBanner = peer.banner;
        if (peerBanner === undefined) continue;
        const name = peer.machine.split(" (")[0];
        const ratios = [kumo, kumoVirtual]
          .filter((k) => k.banner !== undefined)
          .map(
            (k) =>
              `${k.machine.split(", ")[1].replace(")", "")}: Kumo/${name} = ${((k.banner ?? 0) / peerBanner).toFixed(2)}`,
          );
        context.report({
          label: `${peer.machine}: seconds to the banner${suffix}`,
          value: peerBanner,
          unit: "s",
          detail: ratios.length > 0 ? ratios.join("; ") : "Kumo did not reach the banner",
        });
      }
      if (v86.bannerInstructions !== undefined && v86.banner !== undefined) {
        context.report({
          label: `v86: guest instructions per second to the banner${suffix}`,
          value: v86.bannerInstructions / v86.banner,
          unit: "instr/s",
          detail: `${v86.bannerInstructions} instructions by v86's counter (SeaBIOS and the bzImage decompressor included)`,
        });
      }
    }
    if (
      all.every(
        ([, , kumo, kumoVirtual]) => kumo.banner === undefined && kumoVirtual.banner === undefined,
      )
    ) {
      throw new Error("Kumo did not boot the guest to its banner (see above)");
    }
  },
};

export default benchmark;
