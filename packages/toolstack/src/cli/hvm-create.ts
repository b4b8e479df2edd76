/**
 * `kumo create` for `type = "hvm"`: with a kumo daemon running, the daemon
 * hosts the domain and `-c` attaches to its COM1 (`serial = "pty"`), as
 * `xl create -c` attaches to an HVM guest's first serial port; without one,
 * `-c` runs the domain in this process (src/runner/hvm-domain.ts) with the
 * terminal on COM1. The foreground command ends when the domain does: 0
 * after a poweroff, (v << 1) | 1 (low 8 bits) after the guest wrote v to the
 * exit port, and the PVH statuses otherwise. Through the daemon the exit
 * port's status is not passed on (the console reports a poweroff).
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { FW_CFG_DMA_IO_BASE, FW_CFG_IO_BASE } from "@kumo/device-models";
import { Hypervisor, type ShutdownReasonName } from "@kumo/hypervisor-core";
import { BridgeRegistry } from "@kumo/netback";
import { Xenstored } from "@kumo/xenstore";
import {
  ACPI_LOADER_FILE,
  ACPI_PM_PORT_BASE,
  ACPI_SCI_IRQ,
  ACPI_TABLES_ADDRESS,
} from "../builder/acpi";
import { buildBzImageBoot } from "../builder/bzimage-boot";
import { isBzImage } from "../builder/kernel-image";
import { findMultibootHeader } from "../builder/multiboot";
import type { DomainConfig } from "../config/domain-config";
import { type HvmOptions, parseHvmOptions } from "../config/hvm-options";
import { daemonConsole, daemonRequest } from "../daemon/client";
import { consoleLogPath, kumoStateDir, logConsoleToFile } from "../node/console-log";
import { attachConfiguredDevices } from "../node/devices";
import { createHostedHvmDomain } from "../node/hvm-host";
import { pvDisksOf, sharedImageOpener } from "../node/ide-disk";
import { attachTerminal } from "../node/terminal";
import type { HvmDomainImages } from "../runner/hvm-domain";
import { COM_IRQS, COM_PORTS } from "../runner/pc-platform";
import { introduceDomain } from "../runner/xenstore";
import { bootAgain, foregroundExitStatus } from "./foreground";
import { CommandError, ExitStatus, type KumoIo } from "./main";

type OptionValues = Record<string, string | boolean | undefined>;

function daemonSocket(io: KumoIo): string {
  return join(kumoStateDir(io.env), "kumo.sock");
}

/** `kumo create [-c]` through a running daemon, which hosts the domain; -c attaches to its COM1. */
async function createInDaemon(
  config: DomainConfig,
  configText: string,
  configName: string,
  values: OptionValues,
  io: KumoIo,
): Promise<number> {
  const socket = daemonSocket(io);
  const response = await daemonRequest(socket, {
    command: "create",
    configText,
    configName,
    cwd: io.cwd,
    // With -c the domain starts once the console is attached, so that no output is missed.
    paused: Boolean(values.paused) || Boolean(values.console),
  }).catch((error: Error) => {
    throw new CommandError(`create: ${error.message}`);
  });
  if (!response.ok) throw new CommandError(response.error);
  const { domid } = response.result as { domid: number };
  if (!values.console) {
    io.stderr.write(`kumo: created domain "${config.name}" (id ${domid})\n`);
    return ExitStatus.Ok;
  }
  const reason = await daemonConsole(socket, String(domid), io.stdin, io.stdout, () => {
    if (!values.paused) void daemonRequest(socket, { command: "unpause", domain: String(domid) });
  });
  return exitStatusOf(reason, config.name, io);
}

function exitStatusOf(reason: string | undefined, name: string, io: KumoIo): number {
  switch (reason) {
    case "poweroff":
    case "detached":
      return ExitStatus.Ok;
    case "reboot":
      io.stderr.write(`kumo: domain "${name}" rebooted (HVM domains are not restarted yet)\n`);
      return ExitStatus.Reboot;
    case "crash":
      io.stderr.write(`kumo: domain "${name}" crashed\n`);
      return ExitStatus.Crash;
    default:
      io.stderr.write(`kumo: domain "${name}" ended: ${reason ?? "destroyed"}\n`);
      return ExitStatus.OtherShutdown;
  }
}

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
      `${"name".padEnd(16)}${config.name}\n${"type".padEnd(16)}hvm (firmware)\n${"firmware".padEnd(16)}${firmwarePath} (${firmware.length} bytes at ${hex(4294967296 - firmware.length)}, reset vector F000:FFF0)\n` +
        `${"fw_cfg".padEnd(16)}I/O ${hex(FW_CFG_IO_BASE)}-${hex(FW_CFG_IO_BASE + 1)}, DMA ${hex(FW_CFG_DMA_IO_BASE)}\n` +
        // The same default as createHvmDomain: ACPI unless `acpi = 0`.
        `${"acpi".padEnd(16)}${
          (config.acpi ?? true)
            ? `fw_cfg ${ACPI_LOADER_FILE} (the firmware places the tables), PM block at I/O ${hex(ACPI_PM_PORT_BASE)}-${hex(ACPI_PM_PORT_BASE + 11)}, SCI IRQ ${ACPI_SCI_IRQ}`
            : "off (the firmware's MP table only)"
        }\n${formatRows(portRows(hvm, io.cwd))}`,
    );
    return ExitStatus.Ok;
  }
  if (
    values["dry-run"] &&
    kernel !== undefined &&
    !isBzImage(kernel) &&
    findMultibootHeader(kernel) >= 0
  ) {
    io.stdout.write(
      `${"name".padEnd(16)}${config.name}\n${"type".padEnd(16)}hvm (Multiboot kernel)\n${"kernel".padEnd(16)}${kernelPath} (Multiboot header at offset ${hex(findMultibootHeader(kernel))})\n${"cmdline".padEnd(16)}${JSON.stringify(config.cmdline)}\n${formatRows(portRows(hvm, io.cwd))}`,
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
      [
        "acpi",
        // The same default as createHvmDomain: ACPI unless `acpi = 0`.
        (config.acpi ?? true)
          ? `RSDP at ${hex(ACPI_TABLES_ADDRESS)}, PM block at I/O ${hex(ACPI_PM_PORT_BASE)}-${hex(ACPI_PM_PORT_BASE + 11)}, SCI IRQ ${ACPI_SCI_IRQ}`
          : "off (MP table only)",
      ],
      ...portRows(hvm, io.cwd),
      ["debug_exit_port", hvm.debugExitPort === null ? "none" : hex(hvm.debugExitPort)],
    ];
    io.stdout.write(formatRows(rows));
    return ExitStatus.Ok;
  }
  if (daemonRunning) return createInDaemon(config, configText, configName, values, io);
  if (!values.console)
    throw new CommandError(
      `no kumo daemon is running (no socket at ${daemonSocket(io)}): start one with \`kumo daemon\`, or use \`kumo create -c\` to run the domain in the foreground`,
    );

  const hypervisor = new Hypervisor();
  // The hypervisor's log (debug console lines included) goes to <state>/hypervisor.log, as for PVH.
  const logPath = join(kumoStateDir(io.env), "hypervisor.log");
  mkdirSync(dirname(logPath), { recursive: true });
  const stopLogging = hypervisor.onLog((line) => appendFileSync(logPath, `${line}\n`));
  const xenstored = new Xenstored();
  let reason: ShutdownReasonName | "detached" | undefined;
  let exitStatus: number | undefined;
  try {
    for (let boot = 0; ; boot++) {
      ({ reason, exitStatus } = await bootOnce(
        hypervisor,
        xenstored,
        config,
        hvm,
        { kernel, ramdisk, firmware },
        values,
        io,
      ));
      if (exitStatus !== undefined || !bootAgain(config, reason, boot, io)) break;
    }
  } finally {
    stopLogging();
  }
  if (exitStatus !== undefined) return exitStatus & 0xff;
  const status = foregroundExitStatus(config, reason, hypervisor, io);
  if (status !== undefined) return status;
  io.stderr.write(`kumo: domain "${config.name}" ended: ${reason ?? "destroyed"}\n`);
  return ExitStatus.OtherShutdown;
}

/** `kumo create -n` rows: a key in 16 columns, its value. */
function formatRows(rows: readonly (readonly [string, string])[]): string {
  return rows.map(([key, value]) => `${key.padEnd(16)}${value}\n`).join("");
}

/** `kumo create -n` rows of the serial ports and the debug console (xl.cfg serial, debugcon, debugcon_port). */
function portRows(hvm: HvmOptions, cwd: string): [string, string][] {
  return [
    ["serial", hvm.serial],
    ...hvm.serialPorts.map((backend, index): [string, string] => [
      `COM${index + 1}`,
      `${hex(COM_PORTS[index] as number)} IRQ ${COM_IRQS[index]}: ${
        backend.kind === "file"
          ? `file ${resolve(cwd, backend.path)}`
          : backend.kind === "pty"
            ? "domain console"
            : "null"
      }`,
    ]),
    ["debugcon_port", hvm.debugconPort === null ? "none" : hex(hvm.debugconPort)],
    ["debugcon", hvm.debugcon.kind === "file" ? `file ${resolve(cwd, hvm.debugcon.path)}` : "log"],
  ];
}

/** One boot of a foreground HVM domain, from creation to its end. */
async function bootOnce(
  hypervisor: Hypervisor,
  xenstored: Xenstored,
  config: DomainConfig,
  hvm: HvmOptions,
  images: HvmDomainImages,
  values: OptionValues,
  io: KumoIo,
): Promise<{
  reason: ShutdownReasonName | "detached" | undefined;
  exitStatus: number | undefined;
}> {
  const runnable = await createHostedHvmDomain(hypervisor, config, hvm, images, {
    cwd: io.cwd,
    clock: io.env.KUMO_CLOCK === "virtual" ? { mode: "virtual" } : { mode: "wall" },
    userError: (message) => new CommandError(message),
  });
  const { ide, portFiles: files } = runnable;
  const { domain, console } = runnable;
  await introduceDomain(xenstored, hypervisor.host, {
    domid: domain.domid,
    name: config.name,
    memoryKiB: config.memoryMiB * 1024,
    vcpus: config.vcpus,
    storeGfn: runnable.layout.specialPages.xenstoreGfn,
    storePort: runnable.storePort,
  });
  // Disks and vifs (used by a guest's PV frontends through the Xen platform device), as for PVH.
  let devices: Awaited<ReturnType<typeof attachConfiguredDevices>>;
  try {
    // CD-ROMs stay emulated; an image the IDE controller opened is shared with the PV backend.
    const pvConfig = { ...config, disks: pvDisksOf(config.disks) };
    devices = await attachConfiguredDevices(xenstored, hypervisor.host, domain.domid, pvConfig, {
      cwd: io.cwd,
      bridges: new BridgeRegistry(),
      log: (line) => hypervisor.log(line),
      openImage: sharedImageOpener(ide),
    });
  } catch (error) {
    runnable.platform.close();
    files.close();
    await ide.close();
    hypervisor.destroyDomain(domain.domid);
    xenstored.releaseDomain(domain.domid);
    throw error;
  }
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
    files.close();
    runnable.platform.close();
    if (domain.state !== "destroyed") hypervisor.destroyDomain(domain.domid);
    await devices.destroy();
    await ide.close();
    xenstored.releaseDomain(domain.domid);
    runnable.pvConsole.close();
  }
  return { reason, exitStatus: runnable.exitStatus };
}
