/**
 * The host interface's implementation over domain 0 (see host.ts). Each call
 * is the dom0 side of a hypercall: EVTCHNOP_* on dom0's port table,
 * GNTTABOP_map/unmap/copy with dom0 as grantee, foreign mapping of frames.
 */
import { Errno, GntStatus, HvmParam } from "@kumo/abi";
import type { GrantTable } from "@kumo/grant-table";
import type { Domain } from "./domain";
import {
  type DomainId,
  type EventChannelPort,
  type EventHandler,
  type GrantCopyOp,
  type GrantCopySide,
  type GrantMapping,
  type GrantRef,
  type HostEventChannel,
  type HostInterface,
  XenHostError,
} from "./host";
import { setCallbackIrq } from "./hypercalls";
import type { Hypervisor } from "./hypervisor";
import { HVM_NR_PARAMS } from "./layouts";

const PAGE_SIZE = 4096;

function fail(errno: number, message: string, status = 0): never {
  throw new XenHostError(errno, message, status);
}

class HostEventChannelHandle implements HostEventChannel {
  private readonly ports = new Set<number>();

  constructor(private readonly hypervisor: Hypervisor) {}

  private get dom0(): Domain {
    return this.hypervisor.dom0;
  }

  bindInterdomain(
    domid: DomainId,
    remotePort: EventChannelPort,
    handler: EventHandler,
  ): EventChannelPort {
    const port = this.dom0.events.bindInterdomain(domid, remotePort);
    if (port < 0)
      fail(-port, `bind_interdomain to d${domid} port ${remotePort} failed (errno ${-port})`);
    return this.adopt(port, handler);
  }

  bindUnbound(domid: DomainId, handler: EventHandler): EventChannelPort {
    if (this.hypervisor.domain(domid) === undefined) fail(Errno.ESRCH, `no domain ${domid}`);
    const port = this.dom0.events.allocUnbound(domid);
    if (port < 0) fail(-port, `alloc_unbound for d${domid} failed (errno ${-port})`);
    return this.adopt(port, handler);
  }

  notify(localPort: EventChannelPort): void {
    this.own(localPort);
    const result = this.dom0.events.send(localPort);
    if (result < 0) fail(-result, `notify on port ${localPort} failed (errno ${-result})`);
  }

  unbind(localPort: EventChannelPort): void {
    this.own(localPort);
    this.ports.delete(localPort);
    this.dom0.hostEvents?.setHandler(localPort, undefined);
    this.dom0.events.close(localPort);
  }

  peerOf(localPort: EventChannelPort): { domid: DomainId; port: EventChannelPort } | null {
    this.own(localPort);
    return this.dom0.events.peerOf(localPort);
  }

  close(): void {
    for (const port of [...this.ports]) this.unbind(port);
  }

  private adopt(port: number, handler: EventHandler): number {
    this.ports.add(port);
    this.dom0.hostEvents?.setHandler(port, handler);
    return port;
  }

  private own(port: number): void {
    if (!this.ports.has(port))
      fail(Errno.EINVAL, `port ${port} is not bound by this event-channel handle`);
  }
}

class HostGrantMapping implements GrantMapping {
  constructor(
    readonly view: Uint8Array,
    readonly handle: number,
    readonly writable: boolean,
    readonly domid: DomainId,
    readonly ref: GrantRef,
  ) {}
}

export function createHostInterface(hypervisor: Hypervisor): HostInterface {
  const guest = (domid: DomainId): Domain => {
    const domain = hypervisor.domain(domid);
    if (domain === undefined || domain.state === "destroyed")
      fail(Errno.ESRCH, `no domain ${domid}`);
    return domain;
  };
  const liveMappings = new Set<HostGrantMapping>();

  return {
    openEventChannel: () => new HostEventChannelHandle(hypervisor),

    grants: {
      map(domid, ref, writable) {
        const granter = hypervisor.domain(domid)?.grants ?? undefined;
        const result = hypervisor.dom0.maptrack.map(granter, ref, writable);
        if (result.status !== GntStatus.okay || result.view === null) {
          fail(
            Errno.EINVAL,
            `map of grant ${ref} of d${domid} failed (GNTST ${result.status})`,
            result.status,
          );
        }
        const mapping = new HostGrantMapping(result.view, result.handle, writable, domid, ref);
        liveMappings.add(mapping);
        return mapping;
      },
      unmap(mapping) {
        if (!(mapping instanceof HostGrantMapping) || !liveMappings.has(mapping)) {
          fail(Errno.EINVAL, "not a live grant mapping of this host", GntStatus.bad_handle);
        }
        liveMappings.delete(mapping);
        // A destroyed granter already dropped its handles: nothing left to clear.
        hypervisor.dom0.maptrack.unmap(mapping.handle);
      },
      copy(ops: readonly GrantCopyOp[]) {
        const statuses = new Int16Array(ops.length);
        for (let i = 0; i < ops.length; i++) statuses[i] = hostCopy(hypervisor, ops[i]);
        return statuses;
      },
    },

    foreignMemory: {
      mapFrame(domid, gfn) {
        const memory = guest(domid).memory;
        if (memory === null) fail(Errno.EINVAL, `d${domid} has no memory`);
        const frame = Number.isSafeInteger(gfn) && gfn >= 0 ? memory.frame(gfn) : null;
        if (frame === null)
          fail(Errno.EFAULT, `d${domid} has no frame at gfn 0x${gfn.toString(16)}`);
        return frame;
      },
    },

    hvmParams: {
      get(domid, index) {
        const domain = guest(domid);
        if (!Number.isInteger(index) || index < 0 || index >= HVM_NR_PARAMS)
          fail(Errno.EINVAL, `no HVM param ${index}`);
        return domain.getParam(index);
      },
      set(domid, index, value) {
        const domain = guest(domid);
        if (!Number.isInteger(index) || index < 0 || index >= HVM_NR_PARAMS)
          fail(Errno.EINVAL, `no HVM param ${index}`);
        if (!Number.isSafeInteger(value) || value < 0)
          fail(Errno.EINVAL, `HVM param value must be a non-negative safe integer, got ${value}`);
        const low = value >>> 0;
        const high = Math.floor(value / 4294967296) >>> 0;
        if (index === HvmParam.CALLBACK_IRQ)
          setCallbackIrq(domain, low, high, domain.abi !== "x32");
        else domain.setParamHalves(index, low, high);
      },
    },
  };
}

/** GNTTABOP_copy with domain 0 as the copying domain; a buffer side is dom0's own memory. */
function hostCopy(hypervisor: Hypervisor, op: GrantCopyOp): number {
  const length = op.length;
  if (!Number.isInteger(length) || length < 0) return GntStatus.bad_copy_arg;
  const source = resolveSide(hypervisor, op.source, length, false);
  if (typeof source === "number") return source;
  const dest = resolveSide(hypervisor, op.dest, length, true);
  if (typeof dest === "number") return dest;
  dest.bytes.set(source.bytes.subarray(source.offset, source.offset + length), dest.offset);
  return GntStatus.okay;
}

function resolveSide(
  hypervisor: Hypervisor,
  side: GrantCopySide,
  length: number,
  write: boolean,
): { bytes: Uint8Array; offset: number } | number {
  const offset = side.offset;
  if ("buffer" in side) {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > side.buffer.length)
      return GntStatus.bad_copy_arg;
    return { bytes: side.buffer, offset };
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + length > PAGE_SIZE)
    return GntStatus.bad_copy_arg;
  const table: GrantTable | null | undefined = hypervisor.domain(side.domid)?.grants;
  if (table === null || table === undefined || table.destroyed) return GntStatus.bad_domain;
  const frame = table.frameForCopy(side.ref, 0, write);
  if (typeof frame === "number") return frame;
  return { bytes: frame, offset };
}
