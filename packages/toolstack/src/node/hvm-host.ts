/**
 * The host side of an HVM domain, shared by `kumo create` in the foreground
 * and by `kumo daemon`: the VGA BIOS `vga` asks for, the IDE devices of the
 * hd[a-d] disks, the files behind COM ports and the debug console, then the
 * domain itself (paused) with all of them plugged in. A user's mistake
 * (missing VGA BIOS, unreadable image, unopenable port file) becomes the
 * caller's own error type through `userError`; what was opened before is
 * closed again.
 */
import type { DomainConfig } from "../config/domain-config";
import type { HvmOptions } from "../config/hvm-options";
import {
  createHvmDomain,
  type HvmDomainImages,
  type RunnableHvmDomain,
} from "../runner/hvm-domain";
import { logConsoleToFile } from "./console-log";
import { type IdeDevices, IdeDiskError, openIdeDevices } from "./ide-disk";
import { openPortFiles, PortFileError, type PortFiles } from "./port-files";
import { readConfiguredVgaBios, VgaBiosError } from "./vga";

export type HostedHvmDomain = RunnableHvmDomain & {
  /** The IDE images; close them after the PV backends that may share them. */
  readonly ide: IdeDevices;
  /** The COM and debug-console files; `close` also ends COM1's file log. */
  readonly portFiles: PortFiles;
};

export async function createHostedHvmDomain(
  hypervisor: Parameters<typeof createHvmDomain>[0],
  config: DomainConfig,
  hvm: HvmOptions,
  images: HvmDomainImages,
  options: {
    readonly cwd: string;
    readonly clock: { readonly mode: "wall" | "virtual" };
    readonly userError: (message: string) => Error;
  },
): Promise<HostedHvmDomain> {
  const asUserError = (error: unknown): unknown =>
    error instanceof VgaBiosError || error instanceof IdeDiskError || error instanceof PortFileError
      ? options.userError(error.message)
      : error;
  let vgaBios: Uint8Array | undefined;
  let ide: IdeDevices;
  try {
    vgaBios = readConfiguredVgaBios(hvm);
    ide = await openIdeDevices(config.disks, options.cwd);
  } catch (error) {
    throw asUserError(error);
  }
  let portFiles: PortFiles;
  try {
    portFiles = openPortFiles(hvm, options.cwd);
  } catch (error) {
    await ide.close();
    throw asUserError(error);
  }
  let runnable: RunnableHvmDomain;
  try {
    runnable = createHvmDomain(hypervisor, config, images, {
      paused: true,
      clock: options.clock,
      debugconPort: hvm.debugconPort,
      ...(portFiles.debugconOutput === undefined
        ? {}
        : { debugconOutput: portFiles.debugconOutput }),
      serialPorts: portFiles.serialPorts,
      exitPort: hvm.debugExitPort,
      // Firmware runs on a plain PC; a directly booted kernel finds Xen, as on Xen.
      hideXenCpuid: images.firmware !== undefined,
      xenPlatform: hvm.xenPlatformPci,
      ideDisks: ide.disks,
      bootOrder: hvm.boot,
    });
  } catch (error) {
    portFiles.close();
    await ide.close();
    throw error;
  }
  // COM1 to a file (serial = "file:<path>"): what the console transmits.
  const com1File = portFiles.com1File;
  if (com1File !== undefined) {
    const com1Log = logConsoleToFile(runnable.console, com1File);
    const files = portFiles;
    portFiles = {
      ...files,
      close() {
        com1Log.close();
        files.close();
      },
    };
  }
  if (vgaBios !== undefined) runnable.platform.addVga(vgaBios);
  return Object.assign(runnable, { ide, portFiles });
}
