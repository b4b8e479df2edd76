// Node-only parts of @kumo/toolstack (files, terminals), exported as
// "@kumo/toolstack/node" so that "@kumo/toolstack" stays browser-safe.

export { CommandError, ExitStatus, type KumoIo, runKumo, UsageError } from "../cli/main";
export { type ConsoleLog, consoleLogPath, kumoStateDir, logConsoleToFile } from "./console-log";
export {
  type IdeDevices,
  IdeDiskError,
  ImageDisk,
  ideSlotOf,
  openIdeDevices,
  openIdeDisks,
  pvDisksOf,
  RawFileDisk,
  sharedImageOpener,
} from "./ide-disk";
export { openPortFiles, PortFileError, type PortFiles } from "./port-files";
export {
  attachTerminal,
  CONSOLE_ESCAPE,
  type DetachReason,
  type TerminalAttachment,
  type TerminalInput,
  type TerminalOutput,
} from "./terminal";
export { hasV8PoolSize, relaunchWithV8Pool, v8PoolSize } from "./v8-pool";
