/**
 * Gives a new domain its xenstore, as libxl and xenstored do together:
 * the toolstack writes the domain's nodes (libxl__domain_make, through
 * @kumo/xenstore's writeDomainLayout), then the daemon maps the store page
 * and binds the guest's store port (xenstored introduce_domain) and serves
 * the ring. The mapping goes through hypervisor-core's host interface.
 */
import type { HostInterface } from "@kumo/hypervisor-core";
import { connectLocal, RingTransport, writeDomainLayout, type Xenstored } from "@kumo/xenstore";

export interface XenstoreDomain {
  readonly domid: number;
  readonly name: string;
  readonly memoryKiB: number;
  readonly vcpus: number;
  /** HVM_PARAM_STORE_PFN and HVM_PARAM_STORE_EVTCHN. */
  readonly storeGfn: number;
  readonly storePort: number;
}

/** A version-4 UUID from the platform's random source (libxl_uuid_generate). */
function randomUuid(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Writes the domain's nodes and starts serving its store ring. Returns the ring's transport. */
export async function introduceDomain(
  daemon: Xenstored,
  host: HostInterface,
  domain: XenstoreDomain,
): Promise<RingTransport> {
  const client = connectLocal(daemon);
  try {
    await writeDomainLayout(client, {
      domid: domain.domid,
      name: domain.name,
      uuid: randomUuid(),
      memoryKiB: domain.memoryKiB,
      vcpus: domain.vcpus,
      storePort: domain.storePort,
      storeRingRef: domain.storeGfn,
    });
  } finally {
    client.close();
  }
  const page = host.foreignMemory.mapFrame(domain.domid, domain.storeGfn);
  const events = host.openEventChannel();
  let onGuestNotify: (() => void) | undefined;
  const localPort = events.bindInterdomain(domain.domid, domain.storePort, () => onGuestNotify?.());
  return new RingTransport(daemon, domain.domid, {
    page,
    notify: () => {
      // After the guest closes its end the port is unbound; Xen drops such sends.
      if (events.peerOf(localPort)) events.notify(localPort);
    },
    subscribe: (handler) => {
      onGuestNotify = handler;
      return () => {
        onGuestNotify = undefined;
        events.close();
      };
    },
  });
}
