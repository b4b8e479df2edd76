/**
 * Boots the arm64 Linux 6.1 test guest from guests/ (the same Image and
 * busybox initramfs) on two machines and times it to the shell prompt its
 * /init leaves ("~ # " after "Kumo test guest arm64 ready",
 * guests/initramfs/init):
 *
 * - Kumo: the Image as a Xen guest (createArm64Domain of @kumo/toolstack:
 *   GICv2, device tree with /hypervisor, an @kumo/cpu-arm vCPU) with a
 *   xenstore daemon, console on hvc0, in this process, as
 *   packages/toolstack/test/arm64-linux.test.ts runs it. On the virtual
 *   clock (guest time follows retired instructions and a halt skips to the
 *   next timer), so the whole wall time is interpretation: the MIPS figure
 *   is the interpreter's over this boot.
 * - QEMU TCG: `qemu-system-aarch64 -M virt -cpu cortex-a57 -m 128 -nographic
 *   -no-reboot -kernel Image -initrd ... -append console=ttyAMA0` (Debian's
 *   qemu-system-arm; the command of guests/test/all-arches.test.ts), PL011
 *   on stdout; the process is killed at the prompt.
 *
 * One vCPU and 128 MiB on both. Times are wall-clock seconds from the start
 * of each machine (process spawn for QEMU, reading the images for Kumo) on a
 * host that other jobs share (the load average is printed). Each boot is
 * bounded by BOOT_TIMEOUT_SECONDS; a machine that does not reach the prompt
 * is reported with the reason and left out of the ratio.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { Hypervisor } from "@kumo/hypervisor-core";
import {
  Arm64SpecialPages,
  createArm64Domain,
  introduceDomain,
  parseDomainConfig,
} from "@kumo/toolstack";
import { Xenstored } from "@kumo/xenstore";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { guestPaths } from "./lib/linux-guest";

const BANNER = "Kumo test guest arm64 ready";
const PROMPT = "~ # ";
const BOOT_TIMEOUT_SECONDS = 900;
const MEMORY_MIB = 128;

interface GuestImages {
  /** The arm64 Image (the same file boots on both machines). */
  kernel: string;
  initramfs: string;
}

/** The arm64 guest's Image and initramfs, built if missing (src/lib/linux-guest.ts). */
function guestImages(): GuestImages {
  return guestPaths("arm64", ["kernel", "initramfs"]);
}

interface BootResult {
  machine: string;
  /** Seconds to the banner and to the prompt after it; undefined if never seen. */
  banner?: number;
  prompt?: number;
  /** Guest instructions at the prompt (Kumo). */
  promptInstructions?: number;
  /** Why the machine did not reach the prompt. */
  failure?: string;
}

/** Watches a console byte stream for the banner and then the prompt. */
class ConsoleWatch {
  private tail = "";
  private readonly decoder = new TextDecoder();
  banner?: number;
  prompt?: number;
  get last(): string {
    return this.tail.slice(-300);
  }
  constructor(
    private readonly started: number,
    private readonly onPrompt: () => void,
  ) {}
  feed(bytes: Uint8Array | string): void {
    const text = typeof bytes === "string" ? bytes : this.decoder.decode(bytes, { stream: true });
    this.tail = (this.tail + text).slice(-4096);
    if (this.banner === undefined) {
      const at = this.tail.indexOf(BANNER);
      if (at < 0) return;
      this.banner = (performance.now() - this.started) / 1000;
      this.tail = this.tail.slice(at);
    }
    if (this.prompt === undefined && this.tail.includes(PROMPT)) {
      this.prompt = (performance.now() - this.started) / 1000;
      this.onPrompt();
    }
  }
}

/** Kumo: the arm64 Xen guest in this process, as the toolstack's arm64 Linux test runs it. */
async function bootKumo(images: GuestImages): Promise<BootResult> {
  const result: BootResult = { machine: "Kumo (Xen arm64 guest, cpu-arm, virtual clock)" };
  const started = performance.now();
  const config = parseDomainConfig(
    [
      'name = "bench-linux-arm64"',
      'type = "pvh"',
      `memory = ${MEMORY_MIB}`,
      "vcpus = 1",
      `kernel = "${images.kernel}"`,
      `ramdisk = "${images.initramfs}"`,
      'cmdline = "console=hvc0"',
    ].join("\n"),
    "boot-linux-arm64.cfg",
  );
  const hypervisor = new Hypervisor();
  const runnable = createArm64Domain(
    hypervisor,
    config,
    {
      kernel: new Uint8Array(readFileSync(images.kernel)),
      ramdisk: new Uint8Array(readFileSync(images.initramfs)),
    },
    { paused: true, clock: { mode: "virtual" } },
  );
  const { domain, console: backend } = runnable;
  const xenstored = new Xenstored();
  await introduceDomain(xenstored, hypervisor.host, {
    domid: domain.domid,
    name: config.name,
    memoryKiB: config.memoryMiB * 1024,
    vcpus: config.vcpus,
    storeGfn: Arm64SpecialPages.xenstoreGfn,
    storePort: runnable.storePort,
  });
  const watch = new ConsoleWatch(started, () => {
    result.promptInstructions = domain.instructionsRetired();
    hypervisor.stop();
  });
  backend.onOutput((bytes) => watch.feed(bytes));
  const unsubscribe = hypervisor.onDomainEvent((event) => {
    if (event.domid !== domain.domid) return;
    if (event.kind === "shutdown" || event.kind === "destroyed") {
      backend.service();
      result.failure ??= `the domain ended (${event.kind}) before the prompt`;
      hypervisor.stop();
    }
  });
  const timeout = setTimeout(() => {
    result.failure ??= `no prompt within ${BOOT_TIMEOUT_SECONDS} s`;
    hypervisor.stop();
  }, BOOT_TIMEOUT_SECONDS * 1000);
  // A progress line every 30 s, for a loaded host where the boot takes minutes.
  const progress = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    console.error(
      `  ... Kumo ${seconds.toFixed(0)} s, ${(domain.instructionsRetired() / 1e6).toFixed(0)}M guest instructions`,
    );
  }, 30_000);
  domain.unpause();
  try {
    await hypervisor.run();
  } catch (error) {
    result.failure ??= `the hypervisor threw: ${String(error)}`;
  } finally {
    clearTimeout(timeout);
    clearInterval(progress);
    unsubscribe();
    if (domain.state !== "destroyed") hypervisor.destroyDomain(domain.domid);
    xenstored.releaseDomain(domain.domid);
    backend.close();
  }
  result.banner = watch.banner;
  result.prompt = watch.prompt;
  if (result.prompt !== undefined) result.failure = undefined;
  else
    result.failure = `${result.failure ?? "no prompt"}; last console output: ${JSON.stringify(watch.last)}`;
  return result;
}

/** QEMU TCG: a child process, PL011 on stdout, killed at the prompt. */
function bootQemu(images: GuestImages): Promise<BootResult> {
  const result: BootResult = { machine: "QEMU TCG (qemu-system-aarch64 -M virt -cpu cortex-a57)" };
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const child = spawn(
      "qemu-system-aarch64",
      [
        ...["-M", "virt", "-cpu", "cortex-a57", "-m", String(MEMORY_MIB)],
        ...["-nographic", "-no-reboot"],
        ...["-kernel", images.kernel, "-initrd", images.initramfs, "-append", "console=ttyAMA0"],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      result.banner = watch.banner;
      result.prompt = watch.prompt;
      if (failure) result.failure = `${failure}; last output: ${JSON.stringify(watch.last)}`;
      // The benchmark ends the VM: SIGKILL, so no guest shutdown is waited for.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      resolve(result);
    };
    const watch = new ConsoleWatch(started, () => finish());
    const timeout = setTimeout(
      () => finish(`no prompt within ${BOOT_TIMEOUT_SECONDS} s`),
      BOOT_TIMEOUT_SECONDS * 1000,
    );
    child.stdout.on("data", (chunk: Buffer) => watch.feed(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-1000);
    });
    child.on("error", (error) => finish(`cannot start qemu-system-aarch64: ${error.message}`));
    child.on("exit", (code, signal) =>
      finish(
        `qemu-system-aarch64 exited (${signal ?? `status ${code}`}) before the prompt${stderr ? `: ${stderr.trim()}` : ""}`,
      ),
    );
  });
}

const benchmark: Benchmark = {
  name: "boot-linux-arm64",
  description:
    "seconds to the busybox prompt of the arm64 Linux 6.1 guest: Kumo (Xen guest on cpu-arm) vs qemu-system-aarch64 (TCG)",
  async run(context: BenchmarkContext) {
    const images = guestImages();
    console.error(`  guest: ${images.kernel}; load average ${loadavg()[0].toFixed(2)}`);
    console.error("  booting on QEMU ...");
    const qemu = await bootQemu(images);
    console.error("  booting on Kumo ...");
    const kumo = await bootKumo(images);
    for (const boot of [qemu, kumo]) {
      if (boot.prompt === undefined) {
        console.error(`  ${boot.machine}: did not reach the prompt: ${boot.failure}`);
        continue;
      }
      const detail =
        boot.promptInstructions !== undefined
          ? `banner at ${boot.banner?.toFixed(1)} s; ${(boot.promptInstructions / 1e6).toFixed(0)}M guest instructions, ${(boot.promptInstructions / boot.prompt / 1e6).toFixed(1)} MIPS`
          : `banner at ${boot.banner?.toFixed(1)} s`;
      context.report({
        label: `${boot.machine}: to the prompt`,
        value: boot.prompt,
        unit: "s",
        detail,
      });
    }
    if (kumo.prompt !== undefined && qemu.prompt !== undefined) {
      context.report({
        label: "Kumo/QEMU boot time (higher: Kumo slower)",
        value: kumo.prompt / qemu.prompt,
        unit: "x",
      });
    }
    console.error(`  load average after: ${loadavg()[0].toFixed(2)}`);
  },
};

export default benchmark;
