/**
 * The hypervisor: the domain list with domain 0 as the host side, the event
 * bus, the scheduler, the hypervisor log (what `xl dmesg` shows) and the
 * dom0 host interface. A custom VMM creates one, creates domains, attaches
 * CPUs through the `Vcpu` interface, unpauses and runs.
 */
import { EventChannelBus } from "@kumo/event-channel";
import {
  Domain,
  type DomainConfig,
  DomainConfigError,
  type ShutdownAction,
  type ShutdownReasonName,
} from "./domain";
import type { HostInterface } from "./host";
import { createHostInterface } from "./host-impl";
import { Scheduler, type SchedulerOptions } from "./scheduler";

/** Highest ordinary domain id (DOMID_FIRST_RESERVED - 1; Xen public xen.h). */
export const MAX_DOMID = 0x7fef;

export type DomainEvent =
  | { kind: "created"; domid: number }
  | { kind: "shutdown"; domid: number; reason: ShutdownReasonName; action: ShutdownAction }
  | { kind: "destroyed"; domid: number };

export interface HypervisorOptions {
  scheduler?: SchedulerOptions;
  /** Lines kept in the hypervisor log ring; default 10 000. */
  logLines?: number;
}

export class Hypervisor {
  readonly eventBus = new EventChannelBus();
  readonly scheduler: Scheduler;
  /** Domain 0: the host side (toolstack, xenstore, backends), privileged, without a CPU. */
  readonly dom0: Domain;
  /** dom0's libxenevtchn / libxengnttab / libxenforeignmemory equivalents. */
  readonly host: HostInterface;
  private readonly domains = new Map<number, Domain>();
  private guests: Domain[] = [];
  private readonly listeners: ((event: DomainEvent) => void)[] = [];
  private readonly logListeners: ((line: string) => void)[] = [];
  private readonly logRing: string[] = [];
  private readonly logLimit: number;

  constructor(options: HypervisorOptions = {}) {
    this.scheduler = new Scheduler(this, options.scheduler);
    this.logLimit = options.logLines ?? 10_000;
    this.dom0 = new Domain(this, 0, null);
    this.domains.set(0, this.dom0);
    this.host = createHostInterface(this);
  }

  /** Creates a paused domain (Xen XEN_DOMCTL_createdomain + max_vcpus + memory). */
  createDomain(config: DomainConfig): Domain {
    let domid = config.domid;
    if (domid === undefined) {
      domid = 1;
      while (this.domains.has(domid)) domid++;
    }
    if (!Number.isInteger(domid) || domid < 1 || domid > MAX_DOMID) {
      throw new DomainConfigError(
        `domain "${config.name}": domid must be an integer in 1..${MAX_DOMID}, got ${domid}`,
      );
    }
    if (this.domains.has(domid))
      throw new DomainConfigError(`domain "${config.name}": domid ${domid} is in use`);
    const domain = new Domain(this, domid, config);
    this.domains.set(domid, domain);
    this.refreshGuests();
    this.log(
      `created d${domid} "${domain.name}" (${domain.type}, ${domain.architecture}, ${domain.vcpus.length} vcpus)`,
    );
    this.emit({ kind: "created", domid });
    return domain;
  }

  domain(domid: number): Domain | undefined {
    return this.domains.get(domid);
  }

  /** Guest domains (not domain 0), by domid. */
  guestDomains(): readonly Domain[] {
    return this.guests;
  }

  /** Destroys a domain: releases ports (peers go unbound), grants and mappings, then tells listeners. */
  destroyDomain(domid: number): void {
    const domain = this.domains.get(domid);
    if (domain === undefined || domid === 0 || domain.state === "destroyed") return;
    // Other domains' mappings of this domain's grants stay valid until they unmap them (Xen keeps
    // the granted pages referenced by the mapper's maptrack), and their handles are not reused before.
    domain.releaseResources();
    this.domains.delete(domid);
    this.refreshGuests();
    this.log(`destroyed d${domid}`);
    this.emit({ kind: "destroyed", domid });
    this.scheduler.wake();
  }

  /** Runs the scheduler until `stop()` or until no guest is left. */
  run(): Promise<void> {
    return this.scheduler.run();
  }

  stop(): void {
    this.scheduler.stop();
  }

  /** Subscribes to domain lifecycle events; returns the unsubscribe function. */
  onDomainEvent(listener: (event: DomainEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /** Subscribes to hypervisor log lines (guest console_io output included). */
  onLog(listener: (line: string) => void): () => void {
    this.logListeners.push(listener);
    return () => {
      const index = this.logListeners.indexOf(listener);
      if (index >= 0) this.logListeners.splice(index, 1);
    };
  }

  /** The hypervisor log (`xl dmesg`). */
  dmesg(): readonly string[] {
    return this.logRing;
  }

  log(line: string): void {
    this.logRing.push(line);
    if (this.logRing.length > this.logLimit)
      this.logRing.splice(0, this.logRing.length - this.logLimit);
    for (const listener of this.logListeners) listener(line);
  }

  emit(event: DomainEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  private refreshGuests(): void {
    this.guests = [...this.domains.values()]
      .filter((domain) => domain.domid !== 0)
      .sort((a, b) => a.domid - b.domid);
  }
}
