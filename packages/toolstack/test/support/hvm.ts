/**
 * Helpers for the tests that run a small program (a nasm boot sector or MBR,
 * a Multiboot kernel, SeaBIOS) on an HVM domain until it shuts down through
 * the isa-debug-exit port, collecting what it printed on the 0xE9 debug
 * console and on COM1; and for the tests that run the same program under
 * qemu-system-i386 as the oracle and compare the lines.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, sep } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { type DomainConfig, parseDomainConfig } from "../../src/config/domain-config";
import { parseHvmOptions, SEABIOS_PATH } from "../../src/config/hvm-options";
import { openIdeDevices } from "../../src/node/ide-disk";
import {
  createHvmDomain,
  type HvmDomainImages,
  type HvmDomainOptions,
  type RunnableHvmDomain,
} from "../../src/runner/hvm-domain";
import { hasTool } from "./linux-guest";

/** Whether Debian's SeaBIOS and every one of `tools` (Debian packages' commands) are installed. */
export function hasSeabiosAnd(...tools: string[]): boolean {
  return existsSync(SEABIOS_PATH) && tools.every(hasTool);
}

/** guests/freestanding: the nasm test programs. */
const FREESTANDING = join(import.meta.dirname, "../../../../guests/freestanding");

/** The path of the test program `name` (e.g. "ata-identify.asm") in guests/freestanding. */
export function freestanding(name: string): string {
  return join(FREESTANDING, name);
}

/**
 * Assembles `source` with `nasm -f bin` into `dir` (default a new temporary one) and returns the
 * binary. The programs' shared routines (guests/freestanding/lib/*.inc) are found through `-i`,
 * whatever the working directory (nasm wants the trailing separator).
 */
export function assemble(
  source: string,
  dir = mkdtempSync(join(tmpdir(), "kumo-nasm-")),
): Uint8Array {
  const output = join(dir, `${basename(source, ".asm")}.bin`);
  execFileSync("nasm", ["-f", "bin", "-i", join(FREESTANDING, "lib") + sep, "-o", output, source]);
  return new Uint8Array(readFileSync(output));
}

/** A 4 MiB raw disk whose MBR is `source` (nasm), written to `dir`/disk.img and returned. */
export function mbrDiskImage(source: string, dir: string): Uint8Array {
  const image = new Uint8Array(4 << 20);
  image.set(assemble(source, dir));
  writeFileSync(join(dir, "disk.img"), image);
  return image;
}

export interface HvmRun {
  readonly runnable: RunnableHvmDomain;
  /** The bytes written to the debug console port, as latin1. */
  readonly debugcon: string;
  /** COM1's output, as latin1. */
  readonly serial: string;
}

/** What a test does to the domain around the run of runHvmUntilShutdown. */
export interface HvmRunHooks {
  /** After the domain is built, before it runs (e.g. add a device to the platform). */
  readonly beforeRun?: (runnable: RunnableHvmDomain) => void;
  /** After it stopped, before its console and devices close (e.g. read the screen). */
  readonly beforeClose?: (runnable: RunnableHvmDomain) => void;
}

/**
 * Builds the domain paused (its debug console and COM1 collected), runs the
 * hypervisor until the domain shuts down or `timeoutMs` passes, and closes
 * the console and the platform's devices. The exit status is then
 * `runnable.exitStatus`.
 */
export async function runHvmUntilShutdown(
  hypervisor: Hypervisor,
  config: DomainConfig,
  images: HvmDomainImages,
  options: Omit<HvmDomainOptions, "paused" | "debugconOutput">,
  timeoutMs: number,
  hooks: HvmRunHooks = {},
): Promise<HvmRun> {
  let debugcon = "";
  let serial = "";
  const runnable = createHvmDomain(hypervisor, config, images, {
    ...options,
    paused: true,
    debugconOutput: (byte) => {
      debugcon += String.fromCharCode(byte);
    },
  });
  runnable.console.onOutput((bytes) => {
    serial += Buffer.from(bytes).toString("latin1");
  });
  const ended = new Promise<void>((resolve) => {
    hypervisor.onDomainEvent((event) => {
      if (event.kind === "shutdown") {
        hypervisor.stop();
        resolve();
      }
    });
  });
  hooks.beforeRun?.(runnable);
  runnable.domain.unpause();
  const running = hypervisor.run();
  const timeout = setTimeout(() => hypervisor.stop(), timeoutMs);
  await Promise.race([ended, running]);
  clearTimeout(timeout);
  await running;
  hooks.beforeClose?.(runnable);
  runnable.console.close();
  runnable.platform.close();
  return { runnable, debugcon, serial };
}

/** Splits debug-console output into its non-empty lines. */
export function debugconLines(output: string): string[] {
  return output.split("\n").filter((line) => line.length > 0);
}

/**
 * The xl.cfg lines of a 32 MiB SeaBIOS HVM domain with `disks` (xl disk specifications, see
 * xl-disk-configuration(5)) and, if given, the `boot` order.
 */
export function seabiosConfig(name: string, disks: readonly string[], boot?: string): string[] {
  return [
    `name = "${name}"`,
    'type = "hvm"',
    "memory = 32",
    'firmware = "seabios"',
    ...(boot === undefined ? [] : [`boot = "${boot}"`]),
    `disk = [ ${disks.map((disk) => `'${disk}'`).join(", ")} ]`,
  ];
}

/**
 * Runs the xl.cfg `lines` on Kumo with Debian's SeaBIOS as the firmware (wall clock, Xen's CPUID
 * leaves hidden as on QEMU), its IDE disks opened relative to `dir`, until it shuts down.
 */
export async function runSeabiosConfig(lines: readonly string[], dir: string, timeoutMs = 60_000) {
  const text = [...lines, ""].join("\n");
  const config = parseDomainConfig(text);
  const ide = await openIdeDevices(config.disks, dir);
  try {
    return await runHvmUntilShutdown(
      new Hypervisor(),
      config,
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      {
        clock: { mode: "wall" },
        hideXenCpuid: true,
        ideDisks: ide.disks,
        bootOrder: parseHvmOptions(text).boot,
      },
      timeoutMs,
    );
  } finally {
    await ide.close();
  }
}

/** A raw image in the test's directory on an IDE slot (hda/hdb primary, hdc/hdd secondary). */
export interface IdeImage {
  readonly vdev: "hda" | "hdb" | "hdc" | "hdd";
  /** The file's name in the test's directory. */
  readonly file: string;
  readonly cdrom?: boolean;
}

export interface OracleRuns {
  /** qemu-system-i386's exit status: (value << 1) | 1 after isa-debug-exit. */
  readonly qemuStatus: number | null;
  /** The debug-console lines under QEMU. */
  readonly qemu: string[];
  /** The Kumo domain's exit status. */
  readonly kumoStatus: number | undefined;
  /** The debug-console lines on Kumo. */
  readonly kumo: string[];
}

/**
 * Boots the same IDE images with SeaBIOS under qemu-system-i386 (`-M pc`: PIIX3 IDE, its own
 * SeaBIOS; no NIC, so no option ROM in the boot order) and on Kumo's HVM PC (Debian's SeaBIOS),
 * each until the program leaves through isa-debug-exit at 0xF4, and returns both sets of 0xE9
 * debug-console lines. QEMU gets copies of the hard disks (`qemu-<file>`), so a program that
 * writes to its disk starts from the same bytes on both.
 */
export async function runUnderQemuAndKumo(
  dir: string,
  images: readonly IdeImage[],
  boot: "c" | "d",
  timeoutMs = 60_000,
): Promise<OracleRuns> {
  const drives = images.flatMap((image) => {
    let file = join(dir, image.file);
    if (!image.cdrom) {
      file = join(dir, `qemu-${image.file}`);
      copyFileSync(join(dir, image.file), file);
    }
    const index = image.vdev.charCodeAt(2) - "a".charCodeAt(0);
    const media = image.cdrom ? ",media=cdrom" : "";
    return ["-drive", `file=${file},format=raw,if=ide,index=${index}${media}`];
  });
  const qemu = spawnSync(
    "qemu-system-i386",
    [
      ...["-M", "pc", "-display", "none", "-no-reboot", "-serial", "null", "-monitor", "none"],
      ...["-nic", "none", ...drives, "-boot", boot],
      ...["-debugcon", `file:${join(dir, "qemu.out")}`],
      ...["-device", "isa-debug-exit,iobase=0xf4"],
    ],
    { timeout: timeoutMs, stdio: "ignore" },
  );
  const config = seabiosConfig(
    "oracle",
    images.map(
      (image) =>
        `format=raw, vdev=${image.vdev}, ${image.cdrom ? "devtype=cdrom, " : ""}target=${image.file}`,
    ),
    boot,
  );
  const { runnable, debugcon } = await runSeabiosConfig(config, dir, timeoutMs);
  const qemuOut = join(dir, "qemu.out");
  return {
    qemuStatus: qemu.status,
    qemu: existsSync(qemuOut) ? debugconLines(readFileSync(qemuOut, "latin1")) : [],
    kumoStatus: runnable.exitStatus,
    kumo: debugconLines(debugcon),
  };
}
