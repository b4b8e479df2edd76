/**
 * The console and xenstore rings every domain built here gets, as libxl sets
 * them up (xen-abi.md 1.2 and 6.3): two zeroed special pages outside RAM
 * owned by the toolstack, a guest event channel for each waiting for domain 0
 * (libxl: xc_evtchn_alloc_unbound(domid, backend 0)), their frame and port in
 * HVM_PARAM_{CONSOLE,STORE}_{PFN,EVTCHN}, and xenconsoled's backend on the
 * console ring. Shared by the PVH, HVM and arm64 domain builders, which differ
 * only in where the pages go.
 */
import { HvmParam } from "@kumo/abi";
import type { Domain, Hypervisor } from "@kumo/hypervisor-core";
import { DomainBuildError } from "../builder/errors";
import { ConsoleBackend } from "../console/backend";
import { hostConsoleChannel } from "../console/host-channel";

export interface XenRings {
  /** The guest's ports for its console and xenstore rings (HVM_PARAM_*_EVTCHN). */
  readonly consolePort: number;
  readonly storePort: number;
  /** The xenstore ring page, for a xenstore daemon to serve (HVM_PARAM_STORE_PFN). */
  readonly storePage: Uint8Array;
  /** The hvc0 backend (xenconsoled's part) on the console ring. */
  readonly console: ConsoleBackend;
}

export function attachXenRings(
  hypervisor: Hypervisor,
  domain: Domain,
  memory: NonNullable<Domain["memory"]>,
  pages: { readonly consoleGfn: number; readonly xenstoreGfn: number },
): XenRings {
  const consolePage = new Uint8Array(4096);
  const storePage = new Uint8Array(4096);
  memory.mapFrame(pages.consoleGfn, consolePage, true);
  memory.mapFrame(pages.xenstoreGfn, storePage, true);
  const consolePort = domain.events.allocUnbound(0);
  const storePort = domain.events.allocUnbound(0);
  if (consolePort <= 0 || storePort <= 0)
    throw new DomainBuildError(
      `cannot allocate the console and xenstore event channels (${consolePort}, ${storePort})`,
    );
  const params = hypervisor.host.hvmParams;
  params.set(domain.domid, HvmParam.CONSOLE_PFN, pages.consoleGfn);
  params.set(domain.domid, HvmParam.CONSOLE_EVTCHN, consolePort);
  params.set(domain.domid, HvmParam.STORE_PFN, pages.xenstoreGfn);
  params.set(domain.domid, HvmParam.STORE_EVTCHN, storePort);
  const console = new ConsoleBackend(
    hostConsoleChannel(hypervisor.host, domain.domid, pages.consoleGfn, consolePort),
  );
  return { consolePort, storePort, storePage, console };
}
