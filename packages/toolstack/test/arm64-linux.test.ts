/**
 * How far the arm64 test guest (guests/, built with `node guests/bin/guests.mjs arm64`)
 * gets on Kumo: createArm64Domain with the GICv2, the device tree and the
 * Image loader, run for a bounded number of slices on the virtual clock.
 * A bring-up probe, not yet an acceptance test: it runs only with
 * KUMO_ARM64_LINUX=1 and prints the console and hypervisor log it got.
 */
import { readFileSync } from "node:fs";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { findGuest } from "../../../guests/src/index";
import { createArm64Domain, parseDomainConfig } from "../src/index";

const enabled = process.env.KUMO_ARM64_LINUX === "1";
const guest = enabled ? findGuest("arm64") : undefined;

describe.runIf(guest !== undefined)("the arm64 guest on Kumo (bring-up probe)", () => {
  it("runs the Image from its entry with the device tree in x0", () => {
    const hypervisor = new Hypervisor();
    const log: string[] = [];
    hypervisor.onLog((line) => log.push(line));
    const config = parseDomainConfig(
      [
        'name = "arm64"',
        'type = "pvh"',
        "memory = 128",
        `kernel = "${guest?.kernel}"`,
        `ramdisk = "${guest?.initramfs}"`,
        'cmdline = "console=hvc0 earlycon=xenboot loglevel=8"',
      ].join("\n"),
    );
    const uart: number[] = [];
    const runnable = createArm64Domain(
      hypervisor,
      config,
      {
        kernel: new Uint8Array(readFileSync(guest?.kernel as string)),
        ramdisk: new Uint8Array(readFileSync(guest?.initramfs as string)),
      },
      { uart: true, uartOutput: (byte) => uart.push(byte) },
    );
    const hvc: string[] = [];
    runnable.console.onOutput((bytes) => hvc.push(new TextDecoder().decode(bytes)));
    const slices = Number(process.env.KUMO_ARM64_SLICES ?? 20000);
    // The console ring (2 KiB) is drained between bursts of slices, as xenconsoled would.
    for (let done = 0; done < slices && runnable.domain.state === "running"; done += 500) {
      hypervisor.scheduler.runUntil(() => runnable.domain.state !== "running", 500);
      runnable.console.service();
    }
    const cpu = runnable.domain.vcpus[0]?.vcpu as unknown as {
      pc: bigint;
      instructionsRetired: number;
      pstate: number;
      readSystemRegister(name: string): [number, number];
    };
    const report = [
      `state ${runnable.domain.state}, ${cpu.instructionsRetired} instructions, pc 0x${cpu.pc.toString(16)}, pstate 0x${cpu.pstate.toString(16)}`,
      `ESR_EL1 0x${cpu.readSystemRegister("ESR_EL1")[0].toString(16)} ELR_EL1 0x${cpu
        .readSystemRegister("ELR_EL1")
        .map((h) => h.toString(16))
        .reverse()
        .join(":")} FAR_EL1 0x${cpu
        .readSystemRegister("FAR_EL1")
        .map((h) => h.toString(16))
        .reverse()
        .join(":")}`,
      "--- hypervisor log ---",
      ...log.slice(-80),
      "--- hvc0 ---",
      hvc.join("").slice(-4000),
      "--- uart ---",
      Buffer.from(uart).toString("latin1").slice(-2000),
    ].join("\n");
    console.log(report);
    expect(cpu.instructionsRetired).toBeGreaterThan(0);
  }, 1_200_000);
});
