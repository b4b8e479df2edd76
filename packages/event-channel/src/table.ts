/**
 * Per-domain event-channel port tables and the bus that connects them
 * (Xen common/event_channel.c). Every operation takes guest-controlled
 * numbers and answers with a port (>= 0) or a negative Xen errno, never an
 * exception: the hypercall layer passes the result straight back.
 */
import { DomId, Errno, EvtchnStatus, Virq } from "@kumo/abi";
import type { EventSink } from "./sink";

/** Port states; the numbers of `closed`..`ipi` are EVTCHNSTAT_* (Xen public event_channel.h). */
const FREE = EvtchnStatus.closed;
const UNBOUND = EvtchnStatus.unbound;
const INTERDOMAIN = EvtchnStatus.interdomain;
const VIRQ = EvtchnStatus.virq;
const IPI = EvtchnStatus.ipi;
/** Port 0 and ports held by the hypervisor: Xen ECS_RESERVED, reported as closed... never allocated. */
const RESERVED = 0xff;

/** NR_VIRQS (Xen public xen.h). */
export const NR_VIRQS = 24;

/**
 * Per-vCPU VIRQs; every other one is global and bound on vCPU 0 only
 * (Xen common/event_channel.c virq_is_global: TIMER, DEBUG, XENOPROF, XENPMU
 * are per-vCPU; x86 arch VIRQs are global).
 */
export function virqIsGlobal(virq: number): boolean {
  return (
    virq !== Virq.TIMER && virq !== Virq.DEBUG && virq !== Virq.XENOPROF && virq !== Virq.XENPMU
  );
}

/** EVTCHNOP_status result (Xen public event_channel.h struct evtchn_status). */
export interface EventChannelStatus {
  status: number;
  vcpu: number;
  /** unbound: remote domid; interdomain: peer domid; virq: virq number. */
  first: number;
  /** interdomain: peer port. */
  second: number;
}

export interface EventChannelTableOptions {
  /** Number of vCPUs (ports notify vCPUs 0..vcpuCount-1). */
  vcpuCount: number;
  /** Highest port + 1 this domain may use (Xen max_evtchn_port + 1); capped by the ABI's limit. */
  maxPorts: number;
  /** Where raised events go. */
  sink: EventSink;
}

/** All domains' tables, for interdomain binding (Xen's domain list). */
export class EventChannelBus {
  private readonly tables = new Map<number, EventChannelTable>();

  /** Creates the table of `domid`; throws if it exists (a toolstack bug). */
  create(domid: number, options: EventChannelTableOptions): EventChannelTable {
    if (this.tables.has(domid))
      throw new Error(`event-channel table for domain ${domid} exists already`);
    const table = new EventChannelTable(this, domid, options);
    this.tables.set(domid, table);
    return table;
  }

  get(domid: number): EventChannelTable | undefined {
    return this.tables.get(domid);
  }

  /** Closes every port of `domid` (peers return to unbound) and forgets the table (Xen evtchn_destroy). */
  destroy(domid: number): void {
    const table = this.tables.get(domid);
    if (table === undefined) return;
    table.reset();
    this.tables.delete(domid);
  }
}

export class EventChannelTable {
  readonly maxPorts: number;
  /** Ports at or above this are invalid: the ABI's limit (1024 for x86_32's 2-level layout) or maxPorts. */
  portLimit: number;
  vcpuCount: number;
  sink: EventSink;
  private readonly state: Uint8Array;
  private readonly notifyVcpu: Uint16Array;
  /** unbound: the domain allowed to bind; interdomain: the peer. */
  private readonly remoteDomid: Uint16Array;
  private readonly remotePort: Uint32Array;
  private readonly virqOf: Uint8Array;
  /** Port bound to VIRQ v on vCPU c at [c * NR_VIRQS + v], 0 if none. */
  private virqPorts: Uint32Array;
  /** Lowest port that might be free: allocation is lowest-free-first like Xen's get_free_port. */
  private searchFrom = 1;

  constructor(
    private readonly bus: EventChannelBus,
    readonly domid: number,
    options: EventChannelTableOptions,
  ) {
    if (!Number.isInteger(options.maxPorts) || options.maxPorts < 2) {
      throw new RangeError(`maxPorts must be an integer >= 2, got ${options.maxPorts}`);
    }
    this.maxPorts = options.maxPorts;
    this.portLimit = options.maxPorts;
    this.vcpuCount = options.vcpuCount;
    this.sink = options.sink;
    this.state = new Uint8Array(this.maxPorts);
    this.state[0] = RESERVED;
    this.notifyVcpu = new Uint16Array(this.maxPorts);
    this.remoteDomid = new Uint16Array(this.maxPorts);
    this.remotePort = new Uint32Array(this.maxPorts);
    this.virqOf = new Uint8Array(this.maxPorts);
    this.virqPorts = new Uint32Array(Math.max(1, this.vcpuCount) * NR_VIRQS);
  }

  /** True if `port` names an allocated, non-reserved port. */
  isBound(port: number): boolean {
    return this.validPort(port) && this.state[port] !== FREE && this.state[port] !== RESERVED;
  }

  /** Port state (EVTCHNSTAT_*), closed for invalid or free ports. */
  stateOf(port: number): number {
    if (!this.validPort(port) || this.state[port] === RESERVED) return FREE;
    return this.state[port];
  }

  /** Notify vCPU of an allocated port, or -1. */
  notifyVcpuOf(port: number): number {
    return this.isBound(port) ? this.notifyVcpu[port] : -1;
  }

  /** Peer of an interdomain port, or null. */
  peerOf(port: number): { domid: number; port: number } | null {
    if (!this.validPort(port) || this.state[port] !== INTERDOMAIN) return null;
    return { domid: this.remoteDomid[port], port: this.remotePort[port] };
  }

  /** The port bound to `virq` on `vcpu`, or 0. */
  virqPort(virq: number, vcpu: number): number {
    if (virq < 0 || virq >= NR_VIRQS || vcpu < 0 || vcpu >= this.vcpuCount) return 0;
    return this.virqPorts[vcpu * NR_VIRQS + virq];
  }

  /** Raises `virq` on `vcpu` if a port is bound to it (Xen send_guest_vcpu_virq / send_guest_global_virq). */
  sendVirq(virq: number, vcpu: number): void {
    const global = virqIsGlobal(virq);
    const port = this.virqPort(virq, global ? 0 : vcpu);
    if (port === 0) return;
    this.sink.raise(port, this.notifyVcpu[port]);
  }

  /** Grows the vCPU count (vCPUs are added before the domain runs). */
  setVcpuCount(count: number): void {
    if (count <= this.vcpuCount) return;
    const grown = new Uint32Array(count * NR_VIRQS);
    grown.set(this.virqPorts.subarray(0, this.vcpuCount * NR_VIRQS));
    this.virqPorts = grown;
    this.vcpuCount = count;
  }

  /**
   * Lowers or raises the usable port range within maxPorts (the guest ABI
   * changed, e.g. to x86_32 whose 2-level arrays name 1024 ports). Ports
   * already bound above the new limit are closed.
   */
  setPortLimit(limit: number): void {
    const bounded = Math.max(2, Math.min(limit, this.maxPorts));
    for (let port = bounded; port < this.portLimit; port++) {
      const state = this.state[port];
      if (state !== FREE && state !== RESERVED) this.close(port);
    }
    this.portLimit = bounded;
    if (this.searchFrom > bounded) this.searchFrom = bounded;
  }

  /** Marks `port` as held by the hypervisor so that guests cannot allocate it. */
  reserve(port: number): void {
    if (this.validPort(port) && this.state[port] === FREE) this.state[port] = RESERVED;
  }

  // ---- Operations (EVTCHNOP_*) -------------------------------------------------------------

  /** EVTCHNOP_alloc_unbound: a port that `remoteDomid` may bind. Returns the port or -errno. */
  allocUnbound(remoteDomid: number): number {
    const remote = remoteDomid === DomId.SELF ? this.domid : remoteDomid;
    const port = this.allocate();
    if (port < 0) return port;
    this.state[port] = UNBOUND;
    this.remoteDomid[port] = remote;
    this.notifyVcpu[port] = 0;
    return port;
  }

  /**
   * EVTCHNOP_bind_interdomain: connects a new local port to `remotePort` of
   * `remoteDomid`, which must be unbound and accept this domain. The new
   * port is set pending (Xen does, so the binder sees the peer's prior sends).
   */
  bindInterdomain(remoteDomid: number, remotePort: number): number {
    const remoteId = remoteDomid === DomId.SELF ? this.domid : remoteDomid;
    const remote = this.bus.get(remoteId);
    if (remote === undefined) return -Errno.ESRCH;
    if (!remote.validPort(remotePort)) return -Errno.EINVAL;
    if (remote.state[remotePort] !== UNBOUND || remote.remoteDomid[remotePort] !== this.domid) {
      return -Errno.EINVAL;
    }
    const port = this.allocate();
    if (port < 0) return port;
    this.state[port] = INTERDOMAIN;
    this.remoteDomid[port] = remoteId;
    this.remotePort[port] = remotePort;
    this.notifyVcpu[port] = 0;
    remote.state[remotePort] = INTERDOMAIN;
    remote.remoteDomid[remotePort] = this.domid;
    remote.remotePort[remotePort] = port;
    this.sink.raise(port, 0);
    return port;
  }

  /** EVTCHNOP_bind_virq. Returns the port or -errno. */
  bindVirq(virq: number, vcpu: number): number {
    if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) return -Errno.EINVAL;
    if (virqIsGlobal(virq) && vcpu !== 0) return -Errno.EINVAL;
    if (!this.validVcpu(vcpu)) return -Errno.ENOENT;
    const slot = vcpu * NR_VIRQS + virq;
    if (this.virqPorts[slot] !== 0) return -Errno.EEXIST;
    const port = this.allocate();
    if (port < 0) return port;
    this.state[port] = VIRQ;
    this.virqOf[port] = virq;
    this.notifyVcpu[port] = vcpu;
    this.virqPorts[slot] = port;
    return port;
  }

  /** EVTCHNOP_bind_ipi. Returns the port or -errno. */
  bindIpi(vcpu: number): number {
    if (!this.validVcpu(vcpu)) return -Errno.ENOENT;
    const port = this.allocate();
    if (port < 0) return port;
    this.state[port] = IPI;
    this.notifyVcpu[port] = vcpu;
    return port;
  }

  /** EVTCHNOP_send. Unbound ports drop the event and succeed, as in Xen. */
  send(port: number): number {
    if (!this.validPort(port)) return -Errno.EINVAL;
    switch (this.state[port]) {
      case INTERDOMAIN: {
        const remote = this.bus.get(this.remoteDomid[port]);
        if (remote === undefined) return 0;
        const remotePort = this.remotePort[port];
        remote.sink.raise(remotePort, remote.notifyVcpu[remotePort]);
        return 0;
      }
      case IPI:
        this.sink.raise(port, this.notifyVcpu[port]);
        return 0;
      case UNBOUND:
        return 0;
      default:
        return -Errno.EINVAL;
    }
  }

  /** EVTCHNOP_close. An interdomain peer returns to unbound, still accepting this domain. */
  close(port: number): number {
    if (!this.validPort(port)) return -Errno.EINVAL;
    switch (this.state[port]) {
      case FREE:
      case RESERVED:
        return -Errno.EINVAL;
      case VIRQ: {
        const virq = this.virqOf[port];
        const slot = this.notifyVcpuSlot(port, virq);
        if (slot >= 0 && this.virqPorts[slot] === port) this.virqPorts[slot] = 0;
        break;
      }
      case INTERDOMAIN: {
        const remote = this.bus.get(this.remoteDomid[port]);
        const remotePort = this.remotePort[port];
        if (
          remote !== undefined &&
          remote.state[remotePort] === INTERDOMAIN &&
          remote.remotePort[remotePort] === port
        ) {
          remote.state[remotePort] = UNBOUND;
          remote.remoteDomid[remotePort] = this.domid;
          remote.remotePort[remotePort] = 0;
        }
        break;
      }
      default:
        break;
    }
    this.free(port);
    return 0;
  }

  /** EVTCHNOP_status for a port of this domain; `out.status` is closed for invalid ports. Returns 0 or -errno. */
  status(port: number, out: EventChannelStatus): number {
    if (!this.validPort(port)) return -Errno.EINVAL;
    const state = this.state[port];
    out.status = state === RESERVED ? FREE : state;
    out.vcpu = this.notifyVcpu[port];
    out.first = 0;
    out.second = 0;
    if (state === UNBOUND) out.first = this.remoteDomid[port];
    else if (state === INTERDOMAIN) {
      out.first = this.remoteDomid[port];
      out.second = this.remotePort[port];
    } else if (state === VIRQ) out.first = this.virqOf[port];
    return 0;
  }

  /** EVTCHNOP_bind_vcpu: retargets interdomain, unbound and global-VIRQ ports. */
  bindVcpu(port: number, vcpu: number): number {
    if (!this.validVcpu(vcpu)) return -Errno.ENOENT;
    if (!this.validPort(port)) return -Errno.EINVAL;
    switch (this.state[port]) {
      case VIRQ: {
        const virq = this.virqOf[port];
        if (!virqIsGlobal(virq)) return -Errno.EINVAL;
        this.notifyVcpu[port] = vcpu;
        return 0;
      }
      case UNBOUND:
      case INTERDOMAIN:
        this.notifyVcpu[port] = vcpu;
        return 0;
      default:
        return -Errno.EINVAL;
    }
  }

  /** EVTCHNOP_unmask. */
  unmask(port: number): number {
    if (!this.validPort(port)) return -Errno.EINVAL;
    this.sink.unmask(port, this.notifyVcpu[port]);
    return 0;
  }

  /** EVTCHNOP_reset: closes every port. */
  reset(): number {
    for (let port = 1; port < this.maxPorts; port++) {
      const state = this.state[port];
      if (state !== FREE && state !== RESERVED) this.close(port);
    }
    return 0;
  }

  /** The number of ports in use (for info and quotas). */
  portsInUse(): number {
    let count = 0;
    for (let port = 1; port < this.maxPorts; port++) {
      const state = this.state[port];
      if (state !== FREE && state !== RESERVED) count++;
    }
    return count;
  }

  // ---- Internals ---------------------------------------------------------------------------

  private validPort(port: number): boolean {
    return Number.isInteger(port) && port >= 0 && port < this.portLimit;
  }

  private validVcpu(vcpu: number): boolean {
    return Number.isInteger(vcpu) && vcpu >= 0 && vcpu < this.vcpuCount;
  }

  private notifyVcpuSlot(port: number, virq: number): number {
    const vcpu = virqIsGlobal(virq) ? 0 : this.notifyVcpu[port];
    return vcpu * NR_VIRQS + virq;
  }

  /** Lowest free port >= 1, or -ENOSPC (Xen get_free_port). */
  private allocate(): number {
    for (let port = this.searchFrom; port < this.portLimit; port++) {
      if (this.state[port] === FREE) {
        this.searchFrom = port + 1;
        return port;
      }
    }
    return -Errno.ENOSPC;
  }

  private free(port: number): void {
    this.state[port] = FREE;
    this.notifyVcpu[port] = 0;
    this.remoteDomid[port] = 0;
    this.remotePort[port] = 0;
    this.virqOf[port] = 0;
    this.sink.clearPending(port);
    if (port < this.searchFrom) this.searchFrom = port;
  }
}
