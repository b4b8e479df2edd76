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
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
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
import {
  arrayBuffer,
  BANNER,
  type BootResult,
  between,
  bootQemu,
  bootV86,
  ConsoleWatch,
  compare,
  FIRST_LINE,
  MEMORY_MIB,
  newResult,
  runsOption,
  seconds,
} from "./lib/pc-boot";

const BOOT_TIMEOUT_SECONDS = 240;
/** The console texts each boot is timed to: Linux's first line, then the banner (the end). */
const TEXTS = [FIRST_LINE, BANNER];
const LINE = 0;
const END = 1;

interface GuestImages {
  /** The bzImage (the same file boots on all three machines). */
  kernel: string;
  initramfs: string;
}

/** The i386 guest's bzImage and initramfs, built if missing (src/lib/linux-guest.ts). */
function guestImages(): GuestImages {
  return guestPaths("i386", ["kernel", "initramfs"]);
}

/** Kumo: a PVH domain in this process, as `kumo create -c` builds it. */
async function bootKumo(images: GuestImages, clock: "wall" | "virtual"): Promise<BootResult> {
  const result = newResult(
    clock === "wall" ? "Kumo (PVH, host clock)" : "Kumo (PVH, virtual clock)",
    TEXTS,
  );
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
  const watch = new ConsoleWatch(started, TEXTS, (index) => {
    result.instructions[index] = domain.instructionsRetired();
    if (watch.done) hypervisor.stop();
  });
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
  result.startedAt = (performance.now() - started) / 1000;
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
  const cpu = domain.vcpus[0]?.vcpu as { counters?: Record<string, number> } | null | undefined;
  if (cpu?.counters) result.cpuCounters = { ...cpu.counters };
  result.seconds = [...watch.seen];
  watch.save(result.machine);
  if (watch.done) result.failure = undefined;
  else
    result.failure = `${result.failure ?? "no banner"}; last console output: ${JSON.stringify(watch.last)}`;
  return result;
}

/** QEMU TCG: the bzImage through QEMU's SeaBIOS and its linuxboot option ROM. */
function bootQemuKernel(images: GuestImages): Promise<BootResult> {
  return bootQemu(
    "QEMU TCG (qemu-system-i386, SeaBIOS, bzImage)",
    ["-kernel", images.kernel, "-initrd", images.initramfs, "-append", "console=ttyS0"],
    TEXTS,
    BOOT_TIMEOUT_SECONDS,
  );
}

/** v86: the bzImage and initrd through Debian's SeaBIOS. */
function bootV86Kernel(images: GuestImages): Promise<BootResult> {
  return bootV86(
    "v86 (WebAssembly JIT, SeaBIOS, bzImage)",
    {
      bzimage: { buffer: arrayBuffer(images.kernel) },
      initrd: { buffer: arrayBuffer(images.initramfs) },
      cmdline: "console=ttyS0",
    },
    TEXTS,
    BOOT_TIMEOUT_SECONDS,
  );
}

/**
 * Seconds from Linux's first console line to the banner: the kernel's own
 * boot and /init, without the firmware, the bzImage decompressor (QEMU, v86)
 * or Kumo's PVH domain building, which differ between the machines.
 */
function kernelSeconds(result: BootResult): number | undefined {
  return between(result, LINE, END);
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
    let kumoBooted = false;
    // Each machine's figures over the rounds (the summary after the last).
    const rounds = new Map<string, { seconds: number[]; mips: number[] }>();
    for (let round = 0; round < runs; round++) {
      // --kumo-only: only Kumo on the virtual clock (profiling the CPU; no ratios).
      const kumoOnly = process.argv.includes("--kumo-only");
      const qemu = kumoOnly ? undefined : await bootQemuKernel(images);
      const v86 = kumoOnly ? undefined : await bootV86Kernel(images);
      const kumo = kumoOnly ? undefined : await bootKumo(images, "wall");
      const kumoVirtual = await bootKumo(images, "virtual");
      const results = [qemu, v86, kumo, kumoVirtual].filter((r) => r !== undefined);
      if (kumoVirtual.seconds[END] !== undefined || kumo?.seconds[END] !== undefined)
        kumoBooted = true;
      const suffix = runs > 1 ? ` (run ${round + 1})` : "";
      console.log(`\n  run ${round + 1}/${runs}, load average ${loadavg()[0].toFixed(1)}`);
      console.log(
        `  ${"machine".padEnd(46)} ${"first line".padStart(10)} ${"banner".padStart(9)} ${"line→banner".padStart(11)}  ${"guest instructions to banner".padStart(28)}`,
      );
      for (const r of results) {
        const instructions =
          r.instructions[END] === undefined || r.seconds[END] === undefined
            ? "not counted"
            : `${(r.instructions[END] / 1e6).toFixed(0)} M, ${(r.instructions[END] / 1e6 / r.seconds[END]).toFixed(1)} MIPS`;
        const busy =
          r.haltedShare === undefined ||
          r.instructions[END] === undefined ||
          r.seconds[END] === undefined
            ? ""
            : ` (halted ${(r.haltedShare * 100).toFixed(0)}% of samples: ${(r.instructions[END] / 1e6 / (r.seconds[END] * (1 - r.haltedShare))).toFixed(1)} MIPS busy)`;
        const running =
          r.startedAt === undefined ||
          r.instructions[END] === undefined ||
          r.seconds[END] === undefined
            ? ""
            : ` (domain built in ${seconds(r.startedAt)}: ${(r.instructions[END] / 1e6 / (r.seconds[END] - r.startedAt)).toFixed(1)} MIPS from its unpause)`;
        console.log(
          `  ${r.machine.padEnd(46)} ${seconds(r.seconds[LINE]).padStart(10)} ${seconds(r.seconds[END]).padStart(9)} ${seconds(kernelSeconds(r)).padStart(11)}  ${(r.seconds[END] === undefined ? "—" : instructions).padStart(28)}${busy}${running}`,
        );
      }
      for (const r of results) {
        if (r.failure) console.log(`  ${r.machine} did not boot: ${r.failure}`);
        const banner = r.seconds[END];
        if (banner === undefined) continue;
        const figures = rounds.get(r.machine) ?? { seconds: [], mips: [] };
        figures.seconds.push(banner);
        const counted = r.instructions[END];
        if (counted !== undefined) figures.mips.push(counted / 1e6 / banner);
        rounds.set(r.machine, figures);
      }
      for (const r of results) {
        if (r.cpuCounters)
          console.log(`  ${r.machine}, CPU counters: ${JSON.stringify(r.cpuCounters)}`);
      }
      if (qemu === undefined || v86 === undefined || kumo === undefined) continue;
      console.log(
        `\n  ${"ratio (seconds to the banner)".padEnd(46)} ${"Kumo/peer".padStart(10)}  ${"".padEnd(24)}  kernel only (line→banner)`,
      );
      for (const k of [kumo, kumoVirtual]) {
        for (const peer of [qemu, v86]) {
          if (k.seconds[END] === undefined || peer.seconds[END] === undefined) continue;
          const kk = kernelSeconds(k);
          const pk = kernelSeconds(peer);
          const kernelOnly =
            kk === undefined || pk === undefined
              ? "—"
              : `${(kk / pk).toFixed(2)}: ${compare(kk, pk)}`;
          console.log(
            `  ${`${k.machine} / ${peer.machine.split(" (")[0]}`.padEnd(46)} ${(k.seconds[END] / peer.seconds[END]).toFixed(2).padStart(10)}  ${compare(k.seconds[END], peer.seconds[END]).padEnd(24)}  ${kernelOnly}`,
          );
        }
      }
      for (const k of [kumo, kumoVirtual]) {
        if (k.seconds[END] === undefined) continue;
        context.report({
          label: `${k.machine}: seconds to the banner${suffix}`,
          value: k.seconds[END],
          unit: "s",
          detail: `first console line at ${seconds(k.seconds[LINE])}, ${k.instructions[LINE]} instructions`,
        });
        if (k.instructions[END] !== undefined) {
          context.report({
            label: `${k.machine}: guest instructions per second to the banner${suffix}`,
            value: k.instructions[END] / k.seconds[END],
            unit: "instr/s",
            detail: `${k.instructions[END]} instructions`,
          });
        }
      }
      for (const peer of [qemu, v86]) {
        const peerBanner = peer.seconds[END];
        if (peerBanner === undefined) continue;
        const name = peer.machine.split(" (")[0];
        const ratios = [kumo, kumoVirtual]
          .filter((k) => k.seconds[END] !== undefined)
          .map(
            (k) =>
              `${k.machine.split(", ")[1].replace(")", "")}: Kumo/${name} = ${((k.seconds[END] ?? 0) / peerBanner).toFixed(2)}`,
          );
        context.report({
          label: `${peer.machine}: seconds to the banner${suffix}`,
          value: peerBanner,
          unit: "s",
          detail: ratios.length > 0 ? ratios.join("; ") : "Kumo did not reach the banner",
        });
      }
      if (v86.instructions[END] !== undefined && v86.seconds[END] !== undefined) {
        context.report({
          label: `v86: guest instructions per second to the banner${suffix}`,
          value: v86.instructions[END] / v86.seconds[END],
          unit: "instr/s",
          detail: `${v86.instructions[END]} instructions by v86's counter (SeaBIOS and the bzImage decompressor included)`,
        });
      }
    }
    if (runs > 1) printRounds(rounds, runs);
    if (!kumoBooted) {
      throw new Error("Kumo did not boot the guest to its banner (see above)");
    }
  },
};

/** Minimum, median and maximum of each machine's seconds and MIPS over the rounds. */
function printRounds(
  rounds: Map<string, { seconds: number[]; mips: number[] }>,
  runs: number,
): void {
  const spread = (values: number[], digits: number): string => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    const median =
      sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    const format = (value: number) => value.toFixed(digits);
    return `${format(sorted[0])} / ${format(median)} / ${format(sorted[sorted.length - 1])}`;
  };
  console.log(
    `\n  over the ${runs} runs (minimum / median / maximum; boots that reached the banner)`,
  );
  for (const [machine, figures] of rounds) {
    const mips = figures.mips.length > 0 ? `, ${spread(figures.mips, 1)} MIPS` : "";
    console.log(
      `  ${machine.padEnd(46)} ${figures.seconds.length} boots: ${spread(figures.seconds, 2)} s${mips}`,
    );
  }
}

export default benchmark;
