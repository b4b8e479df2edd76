/**
 * The `kumo` command (Node only): argument parsing, help, and the commands.
 * Commands whose machinery does not exist yet fail with a message that says
 * what is missing; none of them pretends.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { cpus, freemem, hostname, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Hypervisor, type ShutdownReasonName } from "@kumo/hypervisor-core";
import { BridgeRegistry } from "@kumo/netback";
import { Xenstored } from "@kumo/xenstore";
import { describeArm64Build } from "../arm64/describe";
import { Arm64SpecialPages, createArm64Domain } from "../arm64/domain";
import { isArm64Image } from "../arm64/image";
import { DeviceAttachError } from "../backends/devices";
import { VdevError } from "../backends/vdev";
import { parseElf } from "../builder/elf";
import { DomainBuildError, KernelImageError } from "../builder/errors";
import { type UnpackedKernel, unpackKernelImage } from "../builder/kernel-image";
import { type BootMemory, buildPvhBoot, type PvhBootLayout } from "../builder/pvh";
import { type DomainConfig, parseDomainConfig } from "../config/domain-config";
import { XlConfigError } from "../config/errors";
import { daemonConsole, daemonRequest } from "../daemon/client";
import type { DaemonRequest, DaemonResponse, DomainListEntry } from "../daemon/protocol";
import { KumoDaemon } from "../daemon/server";
import { consoleLogPath, kumoStateDir, logConsoleToFile } from "../node/console-log";
import { attachConfiguredDevices } from "../node/devices";
import { attachTerminal, type TerminalInput } from "../node/terminal";
import { createPvhDomain } from "../runner/pvh-domain";
import { introduceDomain } from "../runner/xenstore";
import { type CommandSpec, commandHelp, findCommand, generalHelp, usageLine } from "./commands";
import { DiskCommandError, DiskUsageError, runDiskCommand } from "./disk";
import { bootAgain, foregroundExitStatus } from "./foreground";
import { createHvm } from "./hvm-create";

export interface KumoIo {
  readonly stdout: { write(text: string | Uint8Array): unknown };
  readonly stderr: { write(text: string): unknown };
  /** The terminal `create -c` and `console` attach (process.stdin); absent: no input. */
  readonly stdin?: TerminalInput;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** A mistake in the command line: exit status 2 with the usage line. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly command?: CommandSpec,
  ) {
    super(message);
  }
}

/** A command that could not do its job: exit status 1. */
export class CommandError extends Error {
  override readonly name = "CommandError";
}

/**
 * Exit statuses: 2 for usage as most Unix tools; `create -c` ends with 0 for
 * a poweroff and a status per other reason the domain ended.
 */
export const ExitStatus = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  Reboot: 3,
  Crash: 4,
  OtherShutdown: 5,
  Detached: 6,
} as const;

function packageVersion(): string {
  try {
    // Two levels up from both src/cli/main.ts and the bundled dist/bin/kumo.js.
    const manifest = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    );
    return String(manifest.version);
  } catch {
    return "unknown";
  }
}

/** Runs `kumo` with `argv` (without the program name) and returns the exit status. */
export async function runKumo(argv: readonly string[], io: KumoIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`kumo: ${error.message}\n`);
      io.stderr.write(
        error.command
          ? `Usage: ${usageLine(error.command)}\nRun \`kumo help ${error.command.name}\` for more.\n`
          : "Run `kumo help` for the list of commands.\n",
      );
      return ExitStatus.Usage;
    }
    if (
      error instanceof CommandError ||
      error instanceof XlConfigError ||
      error instanceof KernelImageError ||
      error instanceof DomainBuildError ||
      error instanceof DeviceAttachError ||
      error instanceof VdevError
    ) {
      io.stderr.write(`kumo: ${error.message}\n`);
      return ExitStatus.Failure;
    }
    throw error;
  }
}

async function dispatch(argv: readonly string[], io: KumoIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help") {
    io.stdout.write(generalHelp());
    return name === undefined ? ExitStatus.Usage : ExitStatus.Ok;
  }
  if (name === "--version" || name === "-V") {
    io.stdout.write(`kumo ${packageVersion()}\n`);
    return ExitStatus.Ok;
  }
  const command = findCommand(name);
  if (command === undefined) {
    throw new UsageError(
      name.startsWith("-") ? `unknown option "${name}"` : `unknown command "${name}"`,
    );
  }
  if (rest.includes("-h") || rest.includes("--help")) {
    io.stdout.write(commandHelp(command));
    return ExitStatus.Ok;
  }
  const { values, positionals } = parseCommandLine(command, rest);
  switch (command.name) {
    case "help":
      return help(positionals, io);
    case "create":
      return create(values, positionals, io);
    case "info":
      return info(io);
    case "disk":
      return disk(command, values, positionals, io);
    case "daemon":
      return runDaemon(io);
    case "xenstore":
      checkXenstoreArguments(command, positionals);
      return withDaemon(command, io, (socket) => xenstore(socket, positionals, io));
    case "list":
      return withDaemon(command, io, (socket) => list(socket, positionals, io));
    case "console":
      return withDaemon(command, io, async (socket) =>
        exitStatusFor(
          await daemonConsole(socket, positionals[0], io.stdin, io.stdout),
          positionals[0],
          io,
        ),
      );
    case "dmesg":
      return withDaemon(command, io, async (socket) => {
        const lines = expectOk(
          await daemonRequest(socket, { command: "dmesg", clear: Boolean(values.clear) }),
        ) as string[];
        for (const line of lines) io.stdout.write(`${line}\n`);
        return ExitStatus.Ok;
      });
    default:
      return withDaemon(command, io, async (socket) => {
        const name = command.name as "destroy" | "pause" | "unpause" | "shutdown" | "reboot";
        expectOk(await daemonRequest(socket, { command: name, domain: positionals[0] }));
        return ExitStatus.Ok;
      });
  }
}

function socketPath(env: NodeJS.ProcessEnv): string {
  return join(kumoStateDir(env), "kumo.sock");
}

function expectOk(response: DaemonResponse): unknown {
  if (!response.ok) throw new CommandError(response.error);
  return response.result;
}

/** Runs `action` against the daemon's socket, or explains that no daemon is running. */
async function withDaemon(
  command: CommandSpec,
  io: KumoIo,
  action: (socket: string) => Promise<number>,
): Promise<number> {
  const socket = socketPath(io.env);
  if (!existsSync(socket)) {
    throw new CommandError(
      `${command.name}: no kumo daemon is running (no socket at ${socket}); start one with \`kumo daemon\``,
    );
  }
  try {
    return await action(socket);
  } catch (error) {
    if (error instanceof CommandError || error instanceof UsageError) throw error;
    throw new CommandError(`${command.name}: ${(error as Error).message}`);
  }
}

/** xl list's state column: r running, b blocked, p paused, s shutdown, c crashed, d dying. */
function stateFlags(state: string): string {
  const flags = ["-", "-", "-", "-", "-", "-"];
  if (state === "running") flags[0] = "r";
  else if (state === "blocked") flags[1] = "b";
  else if (state === "paused") flags[2] = "p";
  else if (state === "shutdown") flags[3] = "s";
  else if (state === "destroyed") flags[5] = "d";
  return flags.join("");
}

async function list(socket: string, names: string[], io: KumoIo): Promise<number> {
  let domains = expectOk(await daemonRequest(socket, { command: "list" })) as DomainListEntry[];
  if (names.length > 0) {
    domains = domains.filter(
      (domain) => names.includes(domain.name) || names.includes(String(domain.domid)),
    );
    if (domains.length === 0)
      throw new CommandError(`list: no domain ${names.map((n) => `"${n}"`).join(", ")}`);
  }
  const rows = [
    ["Name", "ID", "Mem", "VCPUs", "State", "Instructions"],
    ...domains.map((d) => [
      d.name,
      String(d.domid),
      String(d.memoryMiB),
      String(d.vcpus),
      stateFlags(d.state),
      String(d.instructions),
    ]),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) {
    io.stdout.write(
      `${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ")}\n`,
    );
  }
  return ExitStatus.Ok;
}

async function xenstore(socket: string, positionals: string[], io: KumoIo): Promise<number> {
  const [operation, path = "/", value = ""] = positionals;
  if (operation === "ls") {
    const rows = expectOk(await daemonRequest(socket, { command: "xenstore-ls", path })) as [
      number,
      string,
      string,
    ][];
    // xenstore-ls format: one space of indent per level, name = "value".
    for (const [depth, name, nodeValue] of rows)
      io.stdout.write(`${" ".repeat(depth)}${name} = ${JSON.stringify(nodeValue)}\n`);
  } else if (operation === "read") {
    io.stdout.write(
      `${expectOk(await daemonRequest(socket, { command: "xenstore-read", path })) as string}\n`,
    );
  } else {
    expectOk(await daemonRequest(socket, { command: "xenstore-write", path, value }));
  }
  return ExitStatus.Ok;
}

/** `kumo daemon`: serves until SIGINT or SIGTERM. */
async function runDaemon(io: KumoIo): Promise<number> {
  const socket = socketPath(io.env);
  mkdirSync(dirname(socket), { recursive: true });
  const daemon = new KumoDaemon({ env: io.env });
  const hypervisorLog = hypervisorLogFile(io.env);
  daemon.hypervisor.onLog((line) => hypervisorLog.write(line));
  try {
    await daemon.listen(socket);
  } catch (error) {
    hypervisorLog.close();
    throw new CommandError(`daemon: ${(error as Error).message}`);
  }
  io.stdout.write(`kumo daemon: listening on ${socket}\n`);
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await daemon.close();
  hypervisorLog.close();
  return ExitStatus.Ok;
}

/** The exit status of `create -c` and `console` for why the console ended. */
function exitStatusFor(reason: string, name: string, io: KumoIo): number {
  switch (reason) {
    case "poweroff":
      return ExitStatus.Ok;
    case "reboot":
      // A restarted domain keeps the console (the daemon moves it); this is a reboot that on_reboot ends.
      io.stderr.write(
        `kumo: domain "${name}" rebooted (its on_reboot action does not restart it)\n`,
      );
      return ExitStatus.Reboot;
    case "crash":
      io.stderr.write(`kumo: domain "${name}" crashed\n`);
      return ExitStatus.Crash;
    case "detached":
      return ExitStatus.Ok;
    default:
      io.stderr.write(`kumo: domain "${name}" ended: ${reason}\n`);
      return ExitStatus.OtherShutdown;
  }
}

type OptionValues = Record<string, string | boolean | undefined>;

function parseCommandLine(
  command: CommandSpec,
  args: readonly string[],
): { values: OptionValues; positionals: string[] } {
  const options: Record<string, { type: "boolean" | "string"; short?: string }> = {};
  for (const option of command.options) {
    options[option.name] = option.short
      ? { type: option.type, short: option.short }
      : { type: option.type };
  }
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true }) as {
      values: OptionValues;
      positionals: string[];
    };
  } catch (error) {
    // node:util parseArgs reports unknown options and missing values as TypeErrors with a code.
    const message = (error as Error).message
      .split("\n")[0]
      .replace(/\. To specify a positional.*$/, "");
    throw new UsageError(message, command);
  }
  const count = parsed.positionals.length;
  if (count < command.minArguments) {
    throw new UsageError(
      `${command.name}: missing ${command.arguments.split(" ")[count] ?? "argument"}`,
      command,
    );
  }
  if (count > command.maxArguments) {
    throw new UsageError(
      `${command.name}: unexpected argument "${parsed.positionals[command.maxArguments]}"`,
      command,
    );
  }
  return parsed;
}

function help(positionals: string[], io: KumoIo): number {
  if (positionals.length === 0) {
    io.stdout.write(generalHelp());
    return ExitStatus.Ok;
  }
  const command = findCommand(positionals[0]);
  if (command === undefined) throw new UsageError(`unknown command "${positionals[0]}"`);
  io.stdout.write(commandHelp(command));
  return ExitStatus.Ok;
}

function readUserFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory"
          : (error as Error).message;
    throw new CommandError(`cannot read the ${what} ${path}: ${reason}`);
  }
}

/** A BootMemory that checks placement without holding the guest's RAM (for dry runs). */
function measuringMemory(size: number): BootMemory {
  return { size, write() {}, fill() {} };
}

async function create(values: OptionValues, positionals: string[], io: KumoIo): Promise<number> {
  const [configArgument, ...overrides] = positionals;
  const configPath = resolve(io.cwd, configArgument);
  let text = new TextDecoder().decode(readUserFile(configPath, "configuration file"));
  for (const override of overrides) {
    // xl create appends "key=value" arguments to the configuration.
    if (!/^[a-z][_0-9a-z]*\s*\+?=/.test(override)) {
      throw new UsageError(
        `create: "${override}" is not a key=value setting`,
        findCommand("create"),
      );
    }
    text += `\n${override}`;
  }
  const config = parseDomainConfig(text, configArgument);
  if (!values.quiet) {
    for (const warning of config.warnings) {
      io.stderr.write(
        `kumo: warning: ${configArgument}:${warning.line}:${warning.column}: ${warning.message}\n`,
      );
    }
  }
  if (config.type === "hvm") {
    return createHvm(config, text, configArgument, values, io, existsSync(socketPath(io.env)));
  }
  const kernelPath = resolve(io.cwd, config.kernel);
  const kernelBytes = readUserFile(kernelPath, "kernel");
  const ramdisk =
    config.ramdisk === undefined
      ? undefined
      : readUserFile(resolve(io.cwd, config.ramdisk), "ramdisk");
  // The CPU follows the kernel: an arm64 Image (booting.rst header) runs on @kumo/cpu-arm.
  if (isArm64Image(kernelBytes)) {
    if (values["dry-run"]) {
      io.stdout.write(describeArm64Build(config, kernelPath, kernelBytes, ramdisk));
      return ExitStatus.Ok;
    }
    // A daemon creates it itself (and picks the CPU the same way); else it runs here.
    if (existsSync(socketPath(io.env))) {
      if (config.vuart !== undefined || config.xenAware === false) throw arm64UartInDaemonError();
      return createInDaemon(config, text, configArgument, values, io);
    }
    if (!values.console) throw noDaemonError(io);
    return runInForeground(
      config,
      { kind: "arm64-image", image: kernelBytes },
      ramdisk,
      values,
      io,
    );
  }
  const kernel = await unpackKernelImage(kernelBytes);
  const memoryBytes = config.memoryMiB * 1024 * 1024;
  const layout = buildPvhBoot(measuringMemory(memoryBytes), {
    kernel: parseElf(kernel.elf),
    ramdisk,
    cmdline: config.cmdline,
    // The same default as the domain builder (createPvhDomain): ACPI unless `acpi = 0`.
    acpiVcpus: (config.acpi ?? true) ? config.vcpus : undefined,
  });
  if (values["dry-run"]) {
    io.stdout.write(describeBuild(config, kernelPath, kernel, layout));
    return ExitStatus.Ok;
  }
  if (existsSync(socketPath(io.env)))
    return createInDaemon(config, text, configArgument, values, io);
  if (!values.console) throw noDaemonError(io);
  return runInForeground(config, kernel, ramdisk, values, io);
}

/** The daemon's consoles are PV consoles only; the SBSA UART is served by a foreground run. */
function arm64UartInDaemonError(): CommandError {
  return new CommandError(
    'vuart = "sbsa_uart" and xen_aware = 0 run only in the foreground for now: stop the kumo daemon and use `kumo create -c`, which attaches to the UART when the guest is not Xen-aware',
  );
}

function noDaemonError(io: KumoIo): CommandError {
  return new CommandError(
    `no kumo daemon is running (no socket at ${socketPath(io.env)}): start one with \`kumo daemon\`, or use \`kumo create -c\` to run the domain in the foreground`,
  );
}

/** `create` through a running kumo daemon, which builds the domain itself. */
async function createInDaemon(
  config: DomainConfig,
  text: string,
  configArgument: string,
  values: OptionValues,
  io: KumoIo,
): Promise<number> {
  const socket = socketPath(io.env);
  const request: DaemonRequest = {
    command: "create",
    configText: text,
    configName: configArgument,
    cwd: io.cwd,
    // With -c the domain starts once the console is attached, so that no output is missed.
    paused: Boolean(values.paused) || Boolean(values.console),
  };
  let response: DaemonResponse;
  try {
    response = await daemonRequest(socket, request);
  } catch (error) {
    throw new CommandError(`create: ${(error as Error).message}`);
  }
  const { domid } = expectOk(response) as { domid: number };
  if (!values.console) {
    io.stderr.write(`kumo: created domain "${config.name}" (id ${domid})\n`);
    return ExitStatus.Ok;
  }
  const unpause = () => {
    if (!values.paused) void daemonRequest(socket, { command: "unpause", domain: String(domid) });
  };
  return exitStatusFor(
    await daemonConsole(socket, String(domid), io.stdin, io.stdout, unpause),
    config.name,
    io,
  );
}

interface BootStats {
  firstOutput: number;
  firstOutputInstructions: number;
  prompt: number;
  promptInstructions: number;
  /** When the domain ended (shutdown or destroy), ms after this boot started; -1 if it did not. */
  end: number;
  instructions: number;
}

/**
 * `kumo create -c` without a daemon: the domain runs in this process with
 * the terminal attached; the command ends when the domain does (after any
 * restarts its xl.cfg actions ask for).
 */
/** What a foreground domain boots: an x86 PVH ELF or an arm64 Image. */
type BootKernel = UnpackedKernel | { readonly kind: "arm64-image"; readonly image: Uint8Array };

async function runInForeground(
  config: DomainConfig,
  kernel: BootKernel,
  ramdisk: Uint8Array | undefined,
  values: OptionValues,
  io: KumoIo,
): Promise<number> {
  const hypervisor = new Hypervisor();
  // The hypervisor's log (what `xl dmesg` shows, guests' console_io output included) goes to a file.
  const hypervisorLog = hypervisorLogFile(io.env);
  const stopLogging = hypervisor.onLog((line) => hypervisorLog.write(line));
  const xenstored = new Xenstored();
  let outcome: { reason: ShutdownReasonName | "detached" | undefined; stats: BootStats };
  try {
    for (let boot = 0; ; boot++) {
      outcome = await bootOnce(hypervisor, xenstored, config, kernel, ramdisk, values, io);
      if (!bootAgain(config, outcome.reason, boot, io)) break;
    }
  } finally {
    stopLogging();
    hypervisorLog.close();
  }
  const { reason, stats } = outcome;
  if (values.stats) {
    const seconds = (ms: number) => (ms < 0 ? "never" : `${(ms / 1000).toFixed(3)} s`);
    io.stderr.write(
      `kumo: stats: first console output ${seconds(stats.firstOutput)} (${stats.firstOutputInstructions} guest instructions), ` +
        `shell prompt ${seconds(stats.prompt)} (${stats.promptInstructions} guest instructions), ` +
        `end (${reason ?? "destroyed"}) ${seconds(stats.end)} (${stats.instructions} guest instructions)\n`,
    );
  }
  const status = foregroundExitStatus(config, reason, hypervisor, io);
  if (status !== undefined) return status;
  switch (reason) {
    case undefined:
      io.stderr.write(`kumo: domain "${config.name}" was destroyed\n`);
      return ExitStatus.OtherShutdown;
    default:
      io.stderr.write(`kumo: domain "${config.name}" shut down: ${reason}\n`);
      return ExitStatus.OtherShutdown;
  }
}

/** One boot of a foreground domain, from creation to its end. */
async function bootOnce(
  hypervisor: Hypervisor,
  xenstored: Xenstored,
  config: DomainConfig,
  kernel: BootKernel,
  ramdisk: Uint8Array | undefined,
  values: OptionValues,
  io: KumoIo,
): Promise<{ reason: ShutdownReasonName | "detached" | undefined; stats: BootStats }> {
  const started = performance.now();
  const options = {
    paused: true,
    // Interactive use runs on the host's clock; tests may ask for the reproducible virtual one.
    clock:
      io.env.KUMO_CLOCK === "virtual" ? { mode: "virtual" as const } : { mode: "wall" as const },
  };
  const runnable =
    kernel.kind === "arm64-image"
      ? createArm64Domain(
          hypervisor,
          config,
          { kernel: kernel.image, ramdisk },
          { ...options, uart: config.vuart === "sbsa_uart", xen: config.xenAware ?? true },
        )
      : createPvhDomain(hypervisor, config, { kernel: kernel.elf, ramdisk }, options);
  const { domain, console: backend } = runnable;
  // The terminal takes the PV console, as `xl create -c` does, unless the guest's console is
  // the SBSA UART (what `xl console -t vuart` attaches to): a guest that is not Xen-aware has
  // no PV console, and Linux makes the last console= of its command line /dev/console
  // (Documentation/admin-guide/serial-console.rst), ttyAMA0 being the PL011 driver's name.
  const consoles = [...config.cmdline.matchAll(/(?:^|\s)console=([^\s,]+)/g)].map((m) => m[1]);
  const terminalConsole =
    "uartConsole" in runnable &&
    runnable.uartConsole !== null &&
    (!runnable.xen || consoles.at(-1)?.startsWith("ttyAMA"))
      ? runnable.uartConsole
      : backend;
  await introduceDomain(xenstored, hypervisor.host, {
    domid: domain.domid,
    name: config.name,
    memoryKiB: config.memoryMiB * 1024,
    vcpus: config.vcpus,
    storeGfn:
      "gic" in runnable ? Arm64SpecialPages.xenstoreGfn : runnable.layout.specialPages.xenstoreGfn,
    storePort: runnable.storePort,
  });
  let devices: Awaited<ReturnType<typeof attachConfiguredDevices>>;
  try {
    devices = await attachConfiguredDevices(xenstored, hypervisor.host, domain.domid, config, {
      cwd: io.cwd,
      bridges: new BridgeRegistry(),
      log: (line) => hypervisor.log(line),
    });
  } catch (error) {
    hypervisor.destroyDomain(domain.domid);
    xenstored.releaseDomain(domain.domid);
    backend.close();
    throw error;
  }
  const log = logConsoleToFile(backend, consoleLogPath(config.name, io.env));
  const stats: BootStats = {
    firstOutput: -1,
    firstOutputInstructions: 0,
    prompt: -1,
    promptInstructions: 0,
    end: -1,
    instructions: 0,
  };
  let tail = "";
  terminalConsole.onOutput((bytes) => {
    if (stats.firstOutput < 0) {
      stats.firstOutput = performance.now() - started;
      stats.firstOutputInstructions = domain.instructionsRetired();
    }
    if (stats.prompt < 0) {
      tail = (tail + new TextDecoder().decode(bytes)).slice(-64);
      // A shell prompt: "# " or "$ " at the end of what the guest wrote so far, possibly
      // followed by the cursor-position query busybox ash's line editor sends once the
      // console takes input (ESC [6n, "Device Status Report" of ECMA-48).
      const end = tail.endsWith("\u001b[6n") ? tail.slice(0, -4) : tail;
      if (/[#$] $/.test(end)) {
        stats.prompt = performance.now() - started;
        stats.promptInstructions = domain.instructionsRetired();
      }
    }
  });
  let reason: ShutdownReasonName | "detached" | undefined;
  const unsubscribe = hypervisor.onDomainEvent((event) => {
    if (event.domid !== domain.domid) return;
    if (event.kind === "shutdown") {
      // Drain what the guest wrote just before it went down (xenconsoled does too).
      backend.service();
      reason ??= event.reason;
      if (stats.end < 0) stats.end = performance.now() - started;
      hypervisor.stop();
    } else if (event.kind === "destroyed") {
      backend.service();
      if (stats.end < 0) stats.end = performance.now() - started;
      hypervisor.stop();
    }
  });
  const terminal = io.stdin ? attachTerminal(terminalConsole, io.stdin, io.stdout) : undefined;
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
    terminal?.detach();
    log.close();
    stats.instructions = domain.instructionsRetired();
    if (domain.state !== "destroyed") hypervisor.destroyDomain(domain.domid);
    await devices.destroy();
    xenstored.releaseDomain(domain.domid);
    backend.close();
  }
  return { reason, stats };
}

/** Appends hypervisor log lines to <state>/hypervisor.log, synchronously (a crash report must not be lost). */
function hypervisorLogFile(env: NodeJS.ProcessEnv): { write(line: string): void; close(): void } {
  const path = join(kumoStateDir(env), "hypervisor.log");
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a");
  let open = true;
  return {
    write(line) {
      if (open) writeSync(fd, `${line}\n`);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function describeBuild(
  config: DomainConfig,
  kernelPath: string,
  kernel: UnpackedKernel,
  layout: PvhBootLayout,
): string {
  const rows: [string, string][] = [
    ["name", config.name],
    ["type", config.type],
    ["memory", `${config.memoryMiB} MiB (maxmem ${config.maxMemoryMiB} MiB)`],
    ["vcpus", `${config.vcpus} (max ${config.maxVcpus})`],
    ["kernel", `${kernelPath} (${kernel.kind}, ELF${layout.bits})`],
    ["kernel_range", `${hex(layout.kernelStart)}-${hex(layout.kernelEnd)}`],
    ["entry", `${hex(layout.entry)} (XEN_ELFNOTE_PHYS32_ENTRY)`],
    ["start_info", hex(layout.startInfoAddress)],
    ["cmdline", JSON.stringify(config.cmdline)],
    [
      "ramdisk",
      layout.ramdisk
        ? `${config.ramdisk} at ${hex(layout.ramdisk.address)} (${layout.ramdisk.size} bytes)`
        : "none",
    ],
    [
      "memmap",
      layout.memmap
        .map((entry) => `${hex(entry.address)}+${hex(entry.size)}:${entry.type}`)
        .join(" "),
    ],
    [
      "acpi",
      layout.acpi
        ? `RSDP at ${hex(layout.acpi.rsdpAddress)}, S5 sleep registers at I/O 0xb000-0xb007`
        : "off",
    ],
    ["on_poweroff", config.onPoweroff],
    ["on_reboot", config.onReboot],
    ["on_crash", config.onCrash],
  ];
  for (const disk of config.disks) {
    rows.push([
      "disk",
      `${disk.vdev} ${disk.access} ${disk.format} ${disk.devtype} ${disk.target}`,
    ]);
  }
  for (const vif of config.vifs) {
    rows.push(["vif", `mac=${vif.mac ?? "(generated)"} bridge=${vif.bridge ?? "(default)"}`]);
  }
  const width = Math.max(...rows.map(([key]) => key.length));
  return `${rows.map(([key, value]) => `${key.padEnd(width)} : ${value}`).join("\n")}\n`;
}

async function disk(
  command: CommandSpec,
  values: OptionValues,
  positionals: string[],
  io: KumoIo,
): Promise<number> {
  try {
    return await runDiskCommand(values, positionals, {
      stdout: io.stdout,
      stderr: io.stderr as KumoIo["stderr"] & { isTTY?: boolean },
      cwd: io.cwd,
    });
  } catch (error) {
    if (error instanceof DiskUsageError) throw new UsageError(`disk: ${error.message}`, command);
    if (error instanceof DiskCommandError) throw new CommandError(error.message);
    throw error;
  }
}

function info(io: KumoIo): number {
  const socket = join(kumoStateDir(io.env), "kumo.sock");
  const rows: [string, string][] = [
    ["host", hostname()],
    ["kumo_version", packageVersion()],
    ["node_version", process.versions.node],
    ["nr_cpus", String(cpus().length)],
    ["total_memory", `${Math.floor(totalmem() / (1 << 20))} MiB`],
    ["free_memory", `${Math.floor(freemem() / (1 << 20))} MiB`],
    ["daemon", existsSync(socket) ? `socket at ${socket}` : "not running"],
  ];
  const width = Math.max(...rows.map(([key]) => key.length));
  io.stdout.write(`${rows.map(([key, value]) => `${key.padEnd(width)} : ${value}`).join("\n")}\n`);
  return ExitStatus.Ok;
}

function checkXenstoreArguments(command: CommandSpec, positionals: string[]): void {
  const [operation, path] = positionals;
  const counts: Record<string, [number, number]> = { ls: [1, 2], read: [2, 2], write: [3, 3] };
  const range = counts[operation];
  if (range === undefined)
    throw new UsageError(`xenstore: unknown operation "${operation}" (ls, read or write)`, command);
  if (positionals.length < range[0] || positionals.length > range[1]) {
    throw new UsageError(`xenstore ${operation}: wrong number of arguments`, command);
  }
  if (path !== undefined && !path.startsWith("/") && !/^[A-Za-z0-9_@-]/.test(path)) {
    throw new UsageError(`xenstore: "${path}" is not a xenstore path`, command);
  }
}
