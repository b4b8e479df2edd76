/**
 * `kumo create` for `type = "hvm"`: the domain runs in the foreground (`-c`)
 * on an emulated PC with its kernel booted directly (src/runner/
 * hvm-domain.ts), the terminal attached to COM1 (`serial = "pty"`), as
 * `xl create -c` attaches to an HVM guest's first serial port. The daemon
 * does not host HVM domains yet. The command ends when the domain does:
 * 0 after a poweroff, (v << 1) | 1 after the guest wrote v to the exit
 * port, and the PVH statuses otherwise.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Hypervisor, type ShutdownReasonName } from "@kumo/hypervisor-core";
import { Xenstored } from "@kumo/xenstore";
import { buildBzImageBoot } from "../builder/bzimage-boot";
import type { DomainConfig } from "../config/domain-config";
import { parseHvmOptions } from "../config/hvm-options";
import { consoleLogPath, logConsoleToFile } from "../node/console-log";
import { attachTerminal } from "../node/terminal";
import { createHvmDomain } from "../runner/hvm-domain";
import { introduceDomain } from "../runner/xenstore";
import { CommandError, ExitStatus, type KumoIo } from "./main";

type OptionValues = Record<string, string | boolean | undefined>;

function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new CommandError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

export async function createHvm(
  config: DomainConfig,
  configText: string,
  configName: string,
  values: OptionValues,
  io: KumoIo,
  daemonRunning: boolean,
): Promise<number> {
  const hvm = parseHvmOptions(configText, configName);
  const firmwarePath = hvm.firmware === undefined ? undefined : resolve(io.cwd, hvm.firmware);
  const firmware = firmwarePath === undefined ? undefined : readInput(firmwarePath, "firmware");
  const kernelPath = resolve(io.cwd, config.kernel);
  const kernel = firmware !== undefined ? undefined : readInput(kernelPath, "kernel");
  const ramdisk =
    config.ramdisk === undefined
      ? undefined
      : readInput(resolve(io.cwd, config.ramdisk), "ramdisk");
  if (values["dry-run"] && firmware !== undefined) {
    io.stdout.write(
      `${"name".padEnd(16)}${config.name}\n${"type".padEnd(16)}hvm (firmware)\n${"firmware".padEnd(16)}${firmwarePath} (${firmware.length} bytes at ${hex(4294967296 - firmware.length)}, reset vector F000:FFF0)\n`,
    );
    return ExitStatus.Ok;
  }
  if (values["dry-run"] && kernel !== undefined) {
    const ram = config.memoryMiB * 1024 * 1024;
    const layout = buildBzImageBoot(
      { size: ram, write() {}, fill() {} },
      {
        bzImage: kernel,
        ramdisk,
        cmdline: config.cmdline,
      },
    );
    const rows: [string, string][] = [
      ["name", config.name],
      ["type", "hvm (direct kernel boot)"],
      ["memory", `${config.memoryMiB} MiB`],
      [
        "kernel",
        `${kernelPath} (bzImage, boot protocol ${layout.protocol >> 8}.${layout.protocol & 0xff})`,
      ],
      [
        "entry",
        `${hex(layout.entry)} (code32_start, ESI = boot_params at ${hex(layout.bootParamsAddress)})`,
      ],
      [
        "ramdisk",
        layout.ramdisk ? `${hex(layout.ramdisk.address)}+${hex(layout.ramdisk.size)}` : "none",
      ],
      ["cmdline", JSON.stringify(config.cmdline)],
      ["e820", layout.e820.map((e) => `${hex(e.address)}+${hex(e.size)}:${e.type}`).join(" ")],
      ["serial", hvm.serial],
      ["debugcon_port", hvm.debugconPort === null ? "none" : hex(hvm.debugconPort)],
      ["debug_exit_port", hvm.debugExitPort === null ? "none" : hex(hvm.debugExitPort)],
    ];
    io.stdout.write(rows.map(([key, value]) => `${key.padEnd(16)}${value}\n`).join(""));
    return ExitStatus.Ok;
  }
  if (daemonRunning || !values.console)
    throw new CommandError(
      'type "hvm" domains run in the foreground only for now: use `kumo create -c` with no kumo daemon running',
    );

  const hypervisor = new Hypervisor();
  const xenstored = new Xenstored();
  const runnable = createHvmDomain(
    hypervisor,
    config,
    { kernel, ramdisk, firmware },
    {
      paused: true,
      clock: io.env.KUMO_CLOCK === "virtual" ? { mode: "virtual" } : { mode: "wall" },
      debugconPort: hvm.debugconPort,
      exitPort: hvm.debugExitPort,
      hideXenCpuid: firmware !== undefined,
    },
  );
  const { domain, console } = runnable;
  await introduceDomain(xenstored, hypervisor.host, {
    domid: domain.domid,
    name: config.name,
    memoryKiB: config.memoryMiB * 1024,
    vcpus: config.vcpus,
    storeGfn: runnable.layout.specialPages.xenstoreGfn,
    storePort: runnable.storePort,
  });
  const log = logConsoleToFile(console, consoleLogPath(config.name, io.env));
  let reason: ShutdownReasonName | "detached" | undefined;
  const unsubscribe = hypervisor.onDomainEvent((event) => {
    if (event.domid !== domain.domid) return;
    if (event.kind === "shutdown") {
      reason ??= event.reason;
      hypervisor.stop();
    } else if (event.kind === "destroyed") {
      hypervisor.stop();
    }
  });
  const terminal =
    hvm.serial === "pty" && io.stdin ? attachTerminal(console, io.stdin, io.stdout) : undefined;
  if (!values.paused) domain.unpause();
  terminal?.done.then((why) => {
    if (why === "escape") {
      reason ??= "detached";
      hypervisor.stop();
    }
  });
  try {
    await hypervisor.run();
  } finally {
    unsubscribe();
    console.close();
    terminal?.detach();
    log.close();
    runnable.platform.close();
    if (domain.state !== "destroyed") hypervisor.destroyDomain(domain.domid);
    xenstored.releaseDomain(domain.domid);
    runnable.pvConsole.close();
  }
  if (runnable.exitStatus !== undefined) return runnable.exitStatus & 0xff;
  switch (reason) {
    case "poweroff":
      return ExitStatus.Ok;
    case "reboot":
      io.stderr.write(
        `kumo: domain "${config.name}" rebooted (HVM domains are not restarted yet)\n`,
      );
      return ExitStatus.Reboot;
    case "crash":
      io.stderr.write(`kumo: domain "${config.name}" crashed\n`);
      for (const line of hypervisor.dmesg().slice(-10)) io.stderr.write(`  ${line}\n`);
      return ExitStatus.Crash;
    case "detached":
      io.stderr.write(
        `kumo: detached; without a kumo daemon the domain cannot outlive this command, so "${config.name}" was destroyed\n`,
      );
      return ExitStatus.Detached;
    default:
      io.stderr.write(`kumo: domain "${config.name}" ended: ${reason ?? "destroyed"}\n`);
      return ExitStatus.OtherShutdown;
  }
}
