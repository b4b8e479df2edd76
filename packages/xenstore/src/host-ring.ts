import type { HostInterface } from "@kumo/hypervisor-core";
import type { Xenstored } from "./daemon";
import { RingTransport, type RingTransportOptions } from "./ring-transport";

/**
 * Connects a guest's store ring the way Xen's xenstored does on XS_INTRODUCE
 * (tools/xenstore/xenstored_domain.c introduce_domain): map the store frame with
 * libxenforeignmemory, bind the guest's unbound store port with libxenevtchn, and serve the ring.
 * `gfn` and `port` are HVM_PARAM_STORE_PFN and HVM_PARAM_STORE_EVTCHN of `domid`. The event
 * channel is closed when the ring stops being served (release, hostile guest, shutdown).
 * Throws the host's `XenHostError` if the frame or port is not there (a toolstack mistake).
 */
export function connectGuestRing(
  daemon: Xenstored,
  host: HostInterface,
  domid: number,
  gfn: number,
  port: number,
  options?: RingTransportOptions,
): RingTransport {
  const page = host.foreignMemory.mapFrame(domid, gfn);
  const events = host.openEventChannel();
  let onGuestNotify: (() => void) | undefined;
  let localPort: number;
  try {
    localPort = events.bindInterdomain(domid, port, () => onGuestNotify?.());
  } catch (error) {
    events.close();
    throw error;
  }
  return new RingTransport(
    daemon,
    domid,
    {
      page,
      notify: () => {
        if (events.peerOf(localPort)) events.notify(localPort);
      },
      subscribe: (handler) => {
        onGuestNotify = handler;
        return () => {
          onGuestNotify = undefined;
          events.close();
        };
      },
    },
    options,
  );
}

/**
 * The `onIntroduce` option for a daemon running beside Kumo's hypervisor: XS_INTRODUCE from the
 * toolstack maps and serves the domain's ring. Use as
 * `const daemon = new Xenstored({ onIntroduce: introduceThrough(host, () => daemon) })`.
 */
export function introduceThrough(
  host: HostInterface,
  daemon: () => Xenstored,
  options?: RingTransportOptions,
): (domid: number, gfn: number, port: number) => void {
  return (domid, gfn, port) => {
    connectGuestRing(daemon(), host, domid, gfn, port, options);
  };
}
