/**
 * Starts a domain's split-driver backends for its `disk=` and `vif=`
 * entries, as libxl's device-add code does before unpausing: write the
 * frontend directory (/local/domain/<domid>/device/<kind>/<devid>) and the
 * backend directory (/local/domain/0/backend/<kind>/<domid>/<devid>) at
 * XenbusState Initialising (xen-abi.md 6, 6.1, 6.2), then start the backend,
 * which publishes its features and goes to InitWait. Linux waits up to 270 s
 * for every device it probed to connect, so a device is only published once
 * its backend can run.
 *
 * Browser-safe: disk images come from the caller's `openImage`.
 */
import { type DiskImage, VbdBackend } from "@kumo/blkback";
import type { HostInterface } from "@kumo/hypervisor-core";
import { type BridgeRegistry, VifBackend } from "@kumo/netback";
import type { XenstoreClient } from "@kumo/xenstore";
import type { DiskSpec } from "../config/disk";
import type { VifSpec } from "../config/vif";
import { parseVdev } from "./vdev";

export interface DomainDevicesOptions {
  /** A xenstore client connected as domain 0. */
  readonly store: XenstoreClient;
  readonly host: HostInterface;
  readonly domid: number;
  readonly disks: readonly DiskSpec[];
  readonly vifs: readonly VifSpec[];
  /** Opens a disk=`s target (Node: `openImage` of `@kumo/blkback/node`). */
  readonly openImage: (disk: DiskSpec) => Promise<DiskImage>;
  /** Where vifs plug in; required when `vifs` is not empty. */
  readonly bridges?: BridgeRegistry;
  readonly log?: (line: string) => void;
}

/** A user's mistake in a device entry that only shows when it is attached. */
export class DeviceAttachError extends Error {
  override readonly name = "DeviceAttachError";
}

/** The running backends of one domain. */
export interface DomainDevices {
  readonly disks: readonly {
    readonly vdev: string;
    readonly devid: number;
    readonly backend: VbdBackend;
  }[];
  readonly vifs: readonly {
    readonly devid: number;
    readonly mac: string;
    readonly backend: VifBackend;
  }[];
  /**
   * Tears everything down after the domain is gone: stops the backends,
   * closes the images (flushing them) and removes the xenstore directories.
   */
  destroy(): Promise<void>;
}

/** Xen's OUI with random low bits, as libxl picks a MAC for a vif without one. */
function randomMac(): string {
  const bytes = new Uint8Array(3);
  crypto.getRandomValues(bytes);
  bytes[0] &= 0x7f;
  return `00:16:3e:${[...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(":")}`;
}

async function writeDirectory(
  store: XenstoreClient,
  path: string,
  keys: Record<string, string>,
  permissions: string[],
): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.mkdir(path);
    await tx.setPermissions(path, permissions);
    for (const [key, value] of Object.entries(keys)) await tx.write(`${path}/${key}`, value);
  });
}

/** Attaches every disk and vif. On failure nothing stays attached. */
export async function attachDomainDevices(options: DomainDevicesOptions): Promise<DomainDevices> {
  const { store, host, domid } = options;
  const disks: { vdev: string; devid: number; backend: VbdBackend; image: DiskImage }[] = [];
  const vifs: { devid: number; mac: string; backend: VifBackend }[] = [];
  const paths: string[] = [];
  const log = options.log ?? (() => {});
  // libxl: the frontend dir belongs to the guest and dom0 may read it; the backend dir the other way round.
  const frontendPerms = [`n${domid}`, "r0"];
  const backendPerms = ["n0", `r${domid}`];

  const destroy = async () => {
    for (const disk of disks.splice(0)) {
      await disk.backend
        .destroy()
        .catch((error: Error) => log(`vbd ${disk.vdev}: ${error.message}`));
      await disk.image.close().catch((error: Error) => log(`vbd ${disk.vdev}: ${error.message}`));
    }
    for (const vif of vifs.splice(0)) {
      await vif.backend
        .destroy()
        .catch((error: Error) => log(`vif ${vif.devid}: ${error.message}`));
    }
    for (const path of paths.splice(0)) await store.rm(path).catch(() => {});
  };

  try {
    const seen = new Set<number>();
    for (const disk of options.disks) {
      if (disk.devtype === "cdrom") {
        throw new DeviceAttachError(`disk ${disk.vdev}: CD-ROM drives are not supported yet`);
      }
      const devid = parseVdev(disk.vdev).number;
      if (seen.has(devid)) throw new DeviceAttachError(`disk ${disk.vdev}: vdev used twice`);
      seen.add(devid);
      const image = await options.openImage(disk);
      const frontendPath = `/local/domain/${domid}/device/vbd/${devid}`;
      const backendPath = `/local/domain/0/backend/vbd/${domid}/${devid}`;
      try {
        // Keys as libxl__device_disk_add / libxl__device_generic_add write them (xen-abi.md 6.1).
        await writeDirectory(
          store,
          backendPath,
          {
            frontend: frontendPath,
            "frontend-id": String(domid),
            online: "1",
            removable: "0",
            bootable: "1",
            state: "1",
            dev: disk.vdev,
            type: disk.backendType ?? "qdisk",
            mode: disk.access === "ro" ? "r" : "w",
            "device-type": disk.devtype,
            params: disk.target,
            "discard-enable": disk.discard === false ? "0" : "1",
          },
          backendPerms,
        );
        paths.push(backendPath);
        await writeDirectory(
          store,
          frontendPath,
          {
            backend: backendPath,
            "backend-id": "0",
            state: "1",
            "virtual-device": String(devid),
            "device-type": disk.devtype,
          },
          frontendPerms,
        );
        paths.push(frontendPath);
        const backend = await VbdBackend.start({
          store,
          host,
          domid,
          backendPath,
          frontendPath,
          image,
          readOnly: disk.access === "ro",
          log,
        });
        disks.push({ vdev: disk.vdev, devid, backend, image });
      } catch (error) {
        await image.close().catch(() => {});
        throw error;
      }
    }

    for (const [index, vif] of options.vifs.entries()) {
      const bridges = options.bridges;
      if (bridges === undefined) throw new DeviceAttachError("vifs need a bridge registry");
      const devid = vif.devid ?? index;
      const mac = vif.mac ?? randomMac();
      const bridgeName = vif.bridge ?? "xenbr0";
      const frontendPath = `/local/domain/${domid}/device/vif/${devid}`;
      const backendPath = `/local/domain/0/backend/vif/${domid}/${devid}`;
      // libxl__device_nic_add (xen-abi.md 6.2).
      await writeDirectory(
        store,
        backendPath,
        {
          frontend: frontendPath,
          "frontend-id": String(domid),
          online: "1",
          state: "1",
          mac,
          bridge: bridgeName,
          handle: String(devid),
          type: "vif",
          ...(vif.mtu === undefined ? {} : { mtu: String(vif.mtu) }),
        },
        backendPerms,
      );
      paths.push(backendPath);
      await writeDirectory(
        store,
        frontendPath,
        {
          backend: backendPath,
          "backend-id": "0",
          state: "1",
          handle: String(devid),
          mac,
          ...(vif.mtu === undefined ? {} : { mtu: String(vif.mtu) }),
        },
        frontendPerms,
      );
      paths.push(frontendPath);
      const backend = await VifBackend.start({
        host,
        store,
        domid,
        devid,
        bridge: bridges.get(bridgeName),
        frontendPath,
        backendPath,
        log,
      });
      vifs.push({ devid, mac, backend });
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    disks: disks.map(({ vdev, devid, backend }) => ({ vdev, devid, backend })),
    vifs: [...vifs],
    destroy,
  };
}
