/**
 * The `kumo` commands as one table: the argument parser, `kumo help` and
 * the per-command usage lines are all derived from it. Names, options and
 * meanings follow xl(1) wherever Kumo has the same command.
 */

export interface OptionSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: "boolean" | "string";
  /** Placeholder for a string option's value in help (`-f FILE`). */
  readonly value?: string;
  readonly help: string;
}

export interface CommandSpec {
  readonly name: string;
  /** Positional arguments as shown in help, e.g. `<domain>`. */
  readonly arguments: string;
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  /** Fewest and most positional arguments (Infinity: any). */
  readonly minArguments: number;
  readonly maxArguments: number;
  /** Longer help text, one paragraph. */
  readonly details?: string;
}

import { diskCommandSpec } from "./disk";

const domain = { arguments: "<domain>", minArguments: 1, maxArguments: 1 } as const;

export const commands: readonly CommandSpec[] = [
  {
    name: "create",
    arguments: "<config-file> [key=value ...]",
    summary: "create a domain from an xl.cfg file",
    minArguments: 1,
    maxArguments: Number.POSITIVE_INFINITY,
    options: [
      {
        name: "console",
        short: "c",
        type: "boolean",
        help: "attach to the domain's console (hvc0) after creating it",
      },
      {
        name: "paused",
        short: "p",
        type: "boolean",
        help: "leave the domain paused after creating it",
      },
      {
        name: "dry-run",
        short: "n",
        type: "boolean",
        help: "parse the configuration and build the boot image, print them, and stop",
      },
      {
        name: "stats",
        type: "boolean",
        help: "print boot statistics (time and guest instructions to the first line and to the prompt)",
      },
      {
        name: "quiet",
        short: "q",
        type: "boolean",
        help: "print no warnings about the configuration",
      },
    ],
    details:
      "Extra key=value arguments are appended to the configuration, as with xl create. " +
      "With -c, kumo exits when the domain ends: status 0 for a poweroff, non-zero naming the reason otherwise.",
  },
  {
    name: "list",
    arguments: "[domain ...]",
    summary: "list domains and their states",
    minArguments: 0,
    maxArguments: Number.POSITIVE_INFINITY,
    options: [],
  },
  {
    name: "console",
    ...domain,
    summary: "attach to a domain's console (Ctrl-] detaches)",
    options: [],
  },
  {
    name: "shutdown",
    ...domain,
    summary: "ask a domain to shut down (control/shutdown = poweroff)",
    options: [],
  },
  {
    name: "reboot",
    ...domain,
    summary: "ask a domain to reboot (control/shutdown = reboot)",
    options: [],
  },
  { name: "destroy", ...domain, summary: "terminate a domain immediately", options: [] },
  { name: "pause", ...domain, summary: "pause a domain's vCPUs", options: [] },
  { name: "unpause", ...domain, summary: "unpause a paused domain", options: [] },
  {
    name: "info",
    arguments: "",
    summary: "print information about the host and Kumo",
    minArguments: 0,
    maxArguments: 0,
    options: [],
  },
  {
    name: "dmesg",
    arguments: "",
    summary: "print the hypervisor's log (including guests' console_io output)",
    minArguments: 0,
    maxArguments: 0,
    options: [
      { name: "clear", short: "c", type: "boolean", help: "clear the log after printing it" },
    ],
  },
  {
    name: "xenstore",
    arguments: "ls [path] | read <path> | write <path> <value>",
    summary: "list, read or write xenstore nodes",
    minArguments: 1,
    maxArguments: 3,
    options: [],
  },
  diskCommandSpec,
  {
    name: "daemon",
    arguments: "",
    summary: "host domains in the background; other commands talk to it over a Unix socket",
    minArguments: 0,
    maxArguments: 0,
    options: [{ name: "foreground", short: "F", type: "boolean", help: "stay in the foreground" }],
  },
  {
    name: "help",
    arguments: "[command]",
    summary: "show help for kumo or one command",
    minArguments: 0,
    maxArguments: 1,
    options: [],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((command) => command.name === name);
}

export function usageLine(command: CommandSpec): string {
  const options = command.options.length > 0 ? " [options]" : "";
  return `kumo ${command.name}${options}${command.arguments ? ` ${command.arguments}` : ""}`;
}

export function commandHelp(command: CommandSpec): string {
  const lines = [
    `Usage: ${usageLine(command)}`,
    "",
    `${command.summary[0].toUpperCase()}${command.summary.slice(1)}.`,
  ];
  if (command.details) lines.push("", command.details);
  if (command.options.length > 0) {
    lines.push("", "Options:");
    for (const option of command.options) {
      const flag = `${option.short ? `-${option.short}, ` : "    "}--${option.name}${option.value ? ` ${option.value}` : ""}`;
      lines.push(`  ${flag.padEnd(20)} ${option.help}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function generalHelp(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    "Usage: kumo <command> [options] [arguments]",
    "",
    "Kumo runs unmodified Xen guests on a hypervisor written in TypeScript.",
    "",
    "Commands:",
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    "",
    "Run `kumo help <command>` for a command's options. Global options: -h/--help, --version.",
    "",
  ].join("\n");
}
