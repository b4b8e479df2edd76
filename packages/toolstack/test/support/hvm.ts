/**
 * Helpers for the tests that run a small program (a nasm boot sector or MBR,
 * a Multiboot kernel, SeaBIOS) on an HVM domain until it shuts down through
 * the isa-debug-exit port, collecting what it printed on the 0xE9 debug
 * console and on COM1.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Hypervisor } from "@kumo/hypervisor-core";
import type { DomainConfig } from "../../src/config/domain-config";
import {
  createHvmDomain,
  type HvmDomainImages,
  type HvmDomainOptions,
  type RunnableHvmDomain,
} from "../../src/runner/hvm-domain";

/** Assembles `source` with `nasm -f bin` into `dir` (default a new temporary one) and returns the binary. */
export function assemble(
  source: string,
  dir = mkdtempSync(join(tmpdir(), "kumo-nasm-")),
): Uint8Array {
  const output = join(dir, `${basename(source, ".asm")}.bin`);
  execFileSync("nasm", ["-f", "bin", "-o", output, source]);
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
  runnable.domain.unpause();
  const running = hypervisor.run();
  const timeout = setTimeout(() => hypervisor.stop(), timeoutMs);
  await Promise.race([ended, running]);
  clearTimeout(timeout);
  await running;
  runnable.console.close();
  runnable.platform.close();
  return { runnable, debugcon, serial };
}
