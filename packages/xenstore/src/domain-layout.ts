import type { XenstoreClient } from "./client";
import { domainPath } from "./path";
import type { Permission } from "./permissions";

export interface DomainLayout {
  domid: number;
  name: string;
  /** Domain UUID; its toolstack data lives under /vm/<uuid>. */
  uuid: string;
  /** Static maximum and balloon target, KiB. */
  memoryKiB: number;
  vcpus: number;
  /** Guest port of the store event channel and the store page GFN. */
  storePort?: number;
  storeRingRef?: number;
}

/**
 * Writes the nodes of a new domain the way libxl does (libxl_create.c libxl__domain_make,
 * docs/misc/xenstore-paths.pandoc): the home directory owned by dom0 and readable by the domain,
 * and the subdirectories the guest may write owned by the guest itself (`n<domid>`).
 */
export async function writeDomainLayout(
  client: XenstoreClient,
  layout: DomainLayout,
): Promise<void> {
  const { domid } = layout;
  const home = domainPath(domid);
  const readOnly: Permission[] = [
    { domid: 0, access: "n" },
    { domid, access: "r" },
  ];
  const writable: Permission[] = [{ domid, access: "n" }];
  const vm = `/vm/${layout.uuid}`;
  await client.transaction(async (tx) => {
    await tx.rm(home);
    await tx.mkdir(home);
    await tx.setPermissions(home, readOnly);
    await tx.mkdir(vm);
    await tx.setPermissions(vm, readOnly);
    await tx.write(`${vm}/name`, layout.name);
    await tx.write(`${vm}/uuid`, layout.uuid);
    await tx.write(`${home}/vm`, vm);
    await tx.write(`${home}/name`, layout.name);
    await tx.write(`${home}/domid`, String(domid));
    await tx.write(`${home}/memory/static-max`, String(layout.memoryKiB));
    await tx.write(`${home}/memory/target`, String(layout.memoryKiB));
    for (let vcpu = 0; vcpu < layout.vcpus; vcpu++) {
      await tx.write(`${home}/cpu/${vcpu}/availability`, "online");
    }
    if (layout.storePort !== undefined)
      await tx.write(`${home}/store/port`, String(layout.storePort));
    if (layout.storeRingRef !== undefined) {
      await tx.write(`${home}/store/ring-ref`, String(layout.storeRingRef));
    }
    await tx.mkdir(`${home}/device`);
    await tx.mkdir(`${home}/control`);
    for (const name of ["data", "drivers", "feature", "attr", "error"]) {
      await tx.mkdir(`${home}/${name}`);
      await tx.setPermissions(`${home}/${name}`, writable);
    }
    for (const name of [
      "shutdown",
      "sysrq",
      "feature-poweroff",
      "feature-reboot",
      "feature-suspend",
    ]) {
      await tx.write(`${home}/control/${name}`, "");
      await tx.setPermissions(`${home}/control/${name}`, writable);
    }
    await tx.write(`${home}/control/platform-feature-xs_reset_watches`, "1");
  });
}
