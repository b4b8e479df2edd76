/**
 * Builds a `ConsoleChannel` from hypervisor-core's host interface, the way
 * xenconsoled connects to a guest: map the console ring frame (the GFN in
 * HVM_PARAM_CONSOLE_PFN) with foreign memory, and bind an interdomain port
 * to the guest's unbound port (HVM_PARAM_CONSOLE_EVTCHN) (Xen
 * tools/console/daemon/io.c domain_create_ring).
 */
import type { DomainId, EventChannelPort, HostInterface } from "@kumo/hypervisor-core";
import type { ConsoleChannel } from "./backend";

export function hostConsoleChannel(
  host: HostInterface,
  domid: DomainId,
  ringGfn: number,
  remotePort: EventChannelPort,
): ConsoleChannel {
  const page = host.foreignMemory.mapFrame(domid, ringGfn);
  const events = host.openEventChannel();
  let handler: () => void = () => {};
  const localPort = events.bindInterdomain(domid, remotePort, () => handler());
  return {
    page,
    notify: () => events.notify(localPort),
    onNotify: (next) => {
      handler = next;
    },
    close: () => events.close(),
  };
}
