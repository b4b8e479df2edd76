/**
 * The Node side of device attach: disk images are files (opened with
 * `@kumo/blkback/node`, targets relative to the directory `kumo` ran in, as
 * xl passes them to its backends unchanged), and the toolstack's xenstore
 * client is domain 0's in-process connection.
 */
import { resolve } from "node:path";
import type { DiskImage, ImageFormat } from "@kumo/blkback";
import { openImage } from "@kumo/blkback/node";
import type { HostInterface } from "@kumo/hypervisor-core";
import type { BridgeRegistry } from "@kumo/netback";
import { connectLocal, type Xenstored } from "@kumo/xenstore";
import { attachDomainDevices, DeviceAttachError, type DomainDevices } from "../backends/devices";
import type { DiskSpec } from "../config/disk";
import type { DomainConfig } from "../config/domain-config";

const imageFormats: Readonly<Record<string, ImageFormat | undefined>> = {
  raw: "raw",
  qcow2: "qcow2",
  vhd: "vhd",
};

/** Opens a `disk=` entry's image file. */
export async function openDiskTarget(disk: DiskSpec, cwd: string): Promise<DiskImage> {
  const format = imageFormats[disk.format];
  if (format === undefined) {
    throw new DeviceAttachError(
      `disk ${disk.vdev}: format "${disk.format}" is not supported (raw, qcow2 or vhd)`,
    );
  }
  const path = resolve(cwd, disk.target);
  try {
    return await openImage(path, { format, readOnly: disk.access === "ro" });
  } catch (error) {
    // blkback's DiskImageError names the file and what is wrong with it (corrupt, truncated, ...).
    const message = (error as Error).message;
    throw new DeviceAttachError(
      `disk ${disk.vdev}: ${message.includes(path) ? message : `cannot open ${path}: ${message}`}`,
    );
  }
}

/** Starts the backends of a domain's disks and vifs; `destroy()` them after the domain is gone. */
export async function attachConfiguredDevices(
  xenstored: Xenstored,
  host: HostInterface,
  domid: number,
  config: DomainConfig,
  options: {
    cwd: string;
    bridges: BridgeRegistry;
    log?: (line: string) => void;
    /** Opens a disk's image instead of `openDiskTarget` (an HVM domain shares its IDE images). */
    openImage?: (
      disk: DiskSpec,
      open: (disk: DiskSpec) => Promise<DiskImage>,
    ) => Promise<DiskImage>;
  },
): Promise<DomainDevices> {
  if (config.disks.length === 0 && config.vifs.length === 0) {
    return { disks: [], vifs: [], destroy: async () => {} };
  }
  const store = connectLocal(xenstored);
  try {
    const devices = await attachDomainDevices({
      store,
      host,
      domid,
      disks: config.disks,
      vifs: config.vifs,
      openImage: (disk) => {
        const open = (target: DiskSpec) => openDiskTarget(target, options.cwd);
        return options.openImage ? options.openImage(disk, open) : open(disk);
      },
      bridges: options.bridges,
      log: options.log,
    });
    return {
      ...devices,
      async destroy() {
        await devices.destroy();
        store.close();
      },
    };
  } catch (error) {
    store.close();
    throw error;
  }
}
