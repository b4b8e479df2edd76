/**
 * A domain: memory, vCPUs, clock, shared_info, event channels, grant table
 * and HVM params (Xen struct domain). Created through `Hypervisor.createDomain`.
 */
import { PvclockFlags, type Vcpu } from "@kumo/abi";
import {
  CallbackEvents,
  type EventChannelTable,
  TWO_LEVEL_LAYOUTS,
  TwoLevelEvents,
} from "@kumo/event-channel";
import { GrantMapTrack, GrantTable } from "@kumo/grant-table";
import { type ArrayBufferGuestMemory, createGuestMemory } from "@kumo/mmu";
import { EVENT_CHANNEL_PPI, type EventChannelInterruptController } from "./arm-events";
import { type ClockOptions, DomainClock } from "./clock";
import { DeviceTimer } from "./device-timer";
import { GuestAccess } from "./guest-access";
import type { Hypervisor } from "./hypervisor";
import {
  type GuestAbi,
  HVM_NR_PARAMS,
  SHARED_INFO_LAYOUTS,
  type SharedInfoLayout,
  VcpuTimeInfo,
} from "./layouts";
import { VcpuContext } from "./vcpu-context";
import { installX86Hooks } from "./x86-hooks";

export type DomainType = "pvh" | "hvm";
export type Architecture = "x86" | "arm64";
export type DomainState = "paused" | "running" | "shutdown" | "destroyed";
/** What happens after a shutdown with a given reason (xl.cfg on_poweroff/on_reboot/...). */
export type ShutdownAction = "destroy" | "restart" | "preserve";
export type ShutdownReasonName =
  | "poweroff"
  | "reboot"
  | "suspend"
  | "crash"
  | "watchdog"
  | "soft_reset";

/** SHUTDOWN_* numbers to names (Xen public sched.h). */
export const SHUTDOWN_REASON_NAMES: readonly ShutdownReasonName[] = [
  "poweroff",
  "reboot",
  "suspend",
  "crash",
  "watchdog",
  "soft_reset",
];

/** A user's mistake in a domain configuration. */
export class DomainConfigError extends Error {
  override readonly name = "DomainConfigError";
}

export interface DomainConfig {
  /** Domain id (1..0x7FEF); default: the lowest free one. */
  domid?: number;
  name: string;
  /** RAM in bytes (a multiple of 4096), or a memory the caller built. */
  memory: number | ArrayBufferGuestMemory;
  /** Number of vCPUs (1..128). */
  vcpus: number;
  type?: DomainType;
  architecture?: Architecture;
  /** x86: the kernel's ELF class selects the initial shared_info layout (xen-abi.md 3.1); default 64. */
  guestWidth?: 32 | 64;
  /** Default: virtual clock (reproducible). */
  clock?: ClockOptions;
  /** Grant frames the guest may use (query_size max_nr_frames); default 64. */
  maxGrantFrames?: number;
  /** Event-channel ports (xl max_event_channels + 1); default 1024. */
  maxEventChannels?: number;
  /** Per-reason action; defaults as xl: poweroff destroy, reboot restart, crash destroy, others destroy. */
  onShutdown?: Partial<Record<ShutdownReasonName, ShutdownAction>>;
  /** CPUID vendor the CPU reports: selects vmcall or vmmcall in the hypercall page. */
  cpuVendor?: "intel" | "amd";
  /**
   * console_io rate limit, a token bucket on the domain's clock (Xen rate-limits guest
   * console output too): `consoleLimit` bytes of burst (default 64 KiB), refilled at
   * `consoleBytesPerSecond` (default 16 KiB/s). Output beyond it is dropped.
   */
  consoleLimit?: number;
  consoleBytesPerSecond?: number;
  /** Domain 0 is privileged; a guest may be made privileged for tests of dom0 paths. */
  privileged?: boolean;
}

export interface AttachVcpuOptions {
  /**
   * arm64: the interrupt controller (a GIC model) on which the event-channel
   * PPI (INTID 31) of this vCPU is asserted whenever evtchn_upcall_pending
   * goes 0 -> 1, and again at each slice start while it stays set. The line
   * is a level: the controller re-samples `domain.eventLineLevel(id)` on
   * EOI/deactivation (xen-abi.md 3.3; see `EventChannelInterruptController`).
   */
  interruptController?: EventChannelInterruptController;
  /**
   * arm64, the same as a function: `eventLine(id)` is called where
   * `interruptController.assertPpi(id, 31)` would be. Ignored when
   * `interruptController` is given.
   */
  eventLine?: (vcpuId: number) => void;
  /**
   * arm64 PSCI CPU_ON issued by this vCPU: set vCPU `vcpuId`'s PC to `entry` and x0 to
   * `context` (EL1h, MMU off; Arm DEN0022 6.4.3) and return true; the hypervisor then
   * brings it online. Without it CPU_ON answers INTERNAL_FAILURE.
   */
  cpuOn?: (vcpuId: number, entry: number, context: number) => boolean;
}

/** The e820 map XENMEM_memory_map returns. */
export interface MemoryMapEntry {
  address: number;
  size: number;
  /** 1 RAM, 2 reserved, ... (E820 types). */
  type: number;
}

export interface DomainInfo {
  domid: number;
  name: string;
  state: DomainState;
  shutdownReason: ShutdownReasonName | null;
  vcpus: number;
  onlineVcpus: number;
  instructionsRetired: number;
  /** System time of the domain's clock, ns. */
  systemTimeNs: number;
  memoryBytes: number;
  eventChannelsInUse: number;
  grantFrames: number;
}

export class Domain {
  readonly domid: number;
  readonly name: string;
  readonly type: DomainType;
  readonly architecture: Architecture;
  readonly privileged: boolean;
  readonly isHost: boolean;
  readonly cpuVendor: "intel" | "amd";
  state: DomainState = "paused";
  shutdownReason = -1;
  readonly memory: ArrayBufferGuestMemory | null;
  readonly vcpus: VcpuContext[] = [];
  readonly clock: DomainClock;
  readonly events: EventChannelTable;
  readonly twoLevel: TwoLevelEvents | null;
  readonly hostEvents: CallbackEvents | null;
  readonly grants: GrantTable | null;
  readonly maptrack: GrantMapTrack;
  readonly sharedInfo = new Uint8Array(4096);
  /** Staging copy of a vcpu_time_info (updateTime; no allocation per update). */
  private readonly timeBytes = new Uint8Array(VcpuTimeInfo.size);
  private readonly timeView = new DataView(this.timeBytes.buffer);
  sharedInfoGfn = -1;
  /** Grants this domain mapped into its own physical space: gfn -> handle and handle -> gfn. */
  readonly grantMapsByGfn = new Map<number, number>();
  readonly grantMapGfns = new Map<number, number>();
  /** GFN where each grant frame is mapped, -1 if not. */
  readonly grantFrameGfns: number[] = [];
  /** Timers of the device models a VMM wired in (`createTimer`). */
  readonly deviceTimers: DeviceTimer[] = [];
  /** VM assists the guest enabled (bit per VMASST_TYPE_*; Xen struct domain vm_assist). */
  vmAssist = 0;
  abi: GuestAbi;
  layout: SharedInfoLayout;
  /** HVM params as 32-bit halves (values are 64-bit; STORE_PFN may be ~0). */
  readonly hvmParams = new Uint32Array(HVM_NR_PARAMS * 2);
  /** HVM_PARAM_CALLBACK_IRQ vector (type 2), 0 = no vector delivery. */
  callbackVector = 0;
  memoryMap: MemoryMapEntry[];
  readonly shutdownActions: Record<ShutdownReasonName, ShutdownAction>;
  private pauseCount = 1;
  readonly consoleLimit: number;
  readonly consoleBytesPerSecond: number;
  private consoleTokens: number;
  private consoleRefilledAt = 0;
  private consoleDropping = false;
  private consoleLine = "";

  constructor(
    readonly hypervisor: Hypervisor,
    domid: number,
    config: DomainConfig | null,
  ) {
    this.domid = domid;
    this.isHost = config === null;
    this.name = config?.name ?? "Domain-0";
    this.type = config?.type ?? "pvh";
    this.architecture = config?.architecture ?? "x86";
    this.privileged = config === null || config.privileged === true;
    this.cpuVendor = config?.cpuVendor ?? "intel";
    this.consoleLimit = config?.consoleLimit ?? 64 * 1024;
    this.consoleBytesPerSecond = config?.consoleBytesPerSecond ?? 16 * 1024;
    this.consoleTokens = this.consoleLimit;
    this.abi = this.architecture === "arm64" ? "a64" : config?.guestWidth === 32 ? "x32" : "x64";
    this.layout = SHARED_INFO_LAYOUTS[this.abi];
    this.shutdownActions = {
      poweroff: "destroy",
      reboot: "restart",
      suspend: "preserve",
      crash: "destroy",
      watchdog: "destroy",
      soft_reset: "restart",
      ...config?.onShutdown,
    };
    const vcpuCount = config?.vcpus ?? 0;
    if (config !== null) {
      if (!Number.isInteger(vcpuCount) || vcpuCount < 1 || vcpuCount > 128) {
        throw new DomainConfigError(
          `domain "${config.name}": vcpus must be an integer in 1..128, got ${config.vcpus}`,
        );
      }
      if (typeof config.memory === "number") {
        const ramBase = this.architecture === "arm64" ? 0x40000000 : 0;
        if (
          !Number.isSafeInteger(config.memory) ||
          config.memory <= 0 ||
          config.memory % 4096 !== 0
        ) {
          throw new DomainConfigError(
            `domain "${config.name}": memory must be a positive multiple of 4096 bytes, got ${config.memory}`,
          );
        }
        this.memory = createGuestMemory({ ramSize: config.memory, ramBase });
      } else {
        this.memory = config.memory;
      }
    } else {
      this.memory = null;
    }
    this.memoryMap =
      this.memory === null
        ? []
        : [{ address: this.memory.ram.base, size: this.memory.ram.size, type: 1 }];
    this.clock = new DomainClock(config?.clock ?? { mode: "virtual" }, () =>
      this.instructionsRetired(),
    );
    const maxPorts = Math.max(2, config?.maxEventChannels ?? 1024);
    if (this.isHost) {
      this.hostEvents = new CallbackEvents(maxPorts);
      this.twoLevel = null;
      this.events = hypervisor.eventBus.create(domid, {
        vcpuCount: 0,
        maxPorts,
        sink: this.hostEvents,
      });
    } else {
      this.hostEvents = null;
      this.twoLevel = new TwoLevelEvents(
        this.sharedInfo,
        TWO_LEVEL_LAYOUTS[this.abi],
        vcpuCount,
        (vcpu) => this.vcpus[vcpu]?.kick(),
        (port) => this.pollWake(port),
      );
      this.events = hypervisor.eventBus.create(domid, {
        vcpuCount,
        maxPorts: Math.min(maxPorts, SHARED_INFO_LAYOUTS.x64.portLimit),
        sink: this.twoLevel,
      });
      this.events.setPortLimit(this.layout.portLimit);
    }
    const memory = this.memory;
    this.grants =
      memory === null
        ? null
        : new GrantTable(domid, { memory, maxFrames: config?.maxGrantFrames ?? 64 });
    this.maptrack = new GrantMapTrack(domid);
    for (let id = 0; id < vcpuCount; id++) {
      const context = new VcpuContext(this, id);
      this.vcpus.push(context);
      this.pointVcpuInfoAtSharedInfo(context);
    }
    this.writeWallclock();
    for (const context of this.vcpus) this.updateTime(context);
    // Xen on arm presets CALLBACK_IRQ to the event PPI: type 2, INTID 31, level, active-low (xen-abi.md 2.4).
    if (this.architecture === "arm64") this.setParamHalves(0, 0x21f, 0x02000000);
  }

  /** Total instructions retired by the domain's vCPUs. */
  instructionsRetired(): number {
    let total = 0;
    for (const context of this.vcpus) total += context.instructionsRetired();
    return total;
  }

  /**
   * Wires a CPU into vCPU `id` (the toolstack's job): installs the
   * hypervisor's CPUID/MSR/counter hooks and the upcall interrupt source.
   * vCPU 0 comes online at unpause; others with VCPUOP_up or `startVcpu`.
   */
  attachVcpu(id: number, vcpu: Vcpu, options: AttachVcpuOptions = {}): void {
    const context = this.vcpus[id];
    if (context === undefined)
      throw new DomainConfigError(`domain ${this.domid} has no vCPU ${id}`);
    if (vcpu.architecture !== this.architecture) {
      throw new DomainConfigError(
        `domain ${this.domid} is ${this.architecture} but the CPU given for vCPU ${id} is ${vcpu.architecture}`,
      );
    }
    const memory = this.memory;
    if (memory === null) throw new DomainConfigError("domain 0 has no CPU");
    context.vcpu = vcpu;
    context.access = new GuestAccess(vcpu, memory);
    const controller = options.interruptController;
    context.eventLine =
      controller !== undefined
        ? (vcpuId) => controller.assertPpi(vcpuId, EVENT_CHANNEL_PPI)
        : (options.eventLine ?? null);
    context.cpuOn = options.cpuOn ?? null;
    if (this.architecture === "x86") {
      // x86: the HVM callback vector is injected directly, bypassing the LAPIC (xen-abi.md 3.3).
      vcpu.interrupts = context;
      installX86Hooks(this, context, vcpu);
    } else {
      // arm64: the GIC is the CPU's interrupt source; the event PPI is raised through eventLine.
      vcpu.hooks = { readCounter: () => this.clock.tsc() };
    }
    if (id === 0 && this.state === "running") context.online = true;
  }

  /**
   * A timer for a device model of this domain (a LAPIC or PIT timer), run by
   * the scheduler on the domain's clock: `timer.set(deadlineNs)` arms it in
   * system-time ns (`domain.clock.now()`), `fire` runs from the scheduler
   * once that time is reached. Virtual-clock domains skip to its deadline
   * when every vCPU is blocked, as they do for Xen's own timers.
   */
  createTimer(fire: () => void): DeviceTimer {
    const timer = new DeviceTimer(this, fire);
    this.deviceTimers.push(timer);
    return timer;
  }

  /**
   * arm64: the level of vCPU `vcpuId`'s event-channel PPI (its
   * evtchn_upcall_pending), for a GIC model that re-samples the line on
   * EOI or deactivation. False for an unknown vCPU.
   */
  eventLineLevel(vcpuId: number): boolean {
    return this.vcpus[vcpuId]?.upcallPending() ?? false;
  }

  /** Brings a vCPU online (VCPUOP_up, or the toolstack after an INIT/SIPI or PSCI CPU_ON). */
  startVcpu(id: number): boolean {
    const context = this.vcpus[id];
    if (context === undefined || context.vcpu === null) return false;
    context.online = true;
    context.settleRunstate();
    this.hypervisor.scheduler.wake();
    return true;
  }

  pause(): void {
    if (this.state === "destroyed") return;
    this.pauseCount++;
    if (this.state === "running") this.state = "paused";
  }

  /** Undoes one pause; at zero the domain runs (vCPU 0 comes online the first time). */
  unpause(): void {
    if (this.state !== "paused" || this.pauseCount === 0) return;
    this.pauseCount--;
    if (this.pauseCount > 0) return;
    this.state = "running";
    const first = this.vcpus[0];
    if (first !== undefined && first.vcpu !== null && !first.everOnline) {
      first.everOnline = true;
      first.online = true;
      first.settleRunstate();
    }
    this.hypervisor.scheduler.wake();
  }

  /** Shuts the domain down (Xen domain_shutdown) and applies the configured action. */
  shutdown(reason: number): void {
    if (this.state === "shutdown" || this.state === "destroyed" || this.isHost) return;
    const name = SHUTDOWN_REASON_NAMES[reason] ?? "crash";
    this.shutdownReason = SHUTDOWN_REASON_NAMES[reason] === undefined ? 3 : reason;
    this.state = "shutdown";
    for (const context of this.vcpus) {
      context.online = false;
      context.wake();
      context.settleRunstate();
    }
    const action = this.shutdownActions[name];
    this.flushConsole();
    this.hypervisor.log(`(d${this.domid}) shutdown: ${name}, action ${action}`);
    this.hypervisor.emit({ kind: "shutdown", domid: this.domid, reason: name, action });
    if (action === "destroy" || action === "restart") this.hypervisor.destroyDomain(this.domid);
  }

  /** Releases everything (Xen domain_kill): ports, grants, mappings. */
  releaseResources(): void {
    this.state = "destroyed";
    for (const context of this.vcpus) {
      context.online = false;
      context.blocked = 0;
      if (context.vcpu !== null) context.vcpu.interrupts = null;
    }
    for (const timer of this.deviceTimers) timer.cancel();
    this.deviceTimers.length = 0;
    this.maptrack.unmapAll();
    this.grants?.destroy();
    this.hypervisor.eventBus.destroy(this.domid);
    this.flushConsole();
  }

  info(): DomainInfo {
    return {
      domid: this.domid,
      name: this.name,
      state: this.state,
      shutdownReason:
        this.shutdownReason < 0 ? null : (SHUTDOWN_REASON_NAMES[this.shutdownReason] ?? "crash"),
      vcpus: this.vcpus.length,
      onlineVcpus: this.vcpus.filter((context) => context.online).length,
      instructionsRetired: this.instructionsRetired(),
      systemTimeNs: this.clock.now(),
      memoryBytes: this.memory?.ram.size ?? 0,
      eventChannelsInUse: this.events.portsInUse(),
      grantFrames: this.grants?.nrFrames ?? 0,
    };
  }

  // ---- HVM params --------------------------------------------------------------------------

  /** HVM param as a double (exact below 2^53; ~0 reads as 2^64). */
  getParam(index: number): number {
    return this.hvmParams[index * 2 + 1] * 4294967296 + this.hvmParams[index * 2];
  }

  setParamHalves(index: number, low: number, high: number): void {
    this.hvmParams[index * 2] = low;
    this.hvmParams[index * 2 + 1] = high;
  }

  // ---- shared_info, vcpu_info, time -------------------------------------------------------

  /** Re-latches the x86 shared_info layout (CALLBACK_IRQ set or hypercall MSR written; xen-abi.md 3.1). */
  latchAbi(longMode: boolean): void {
    if (this.architecture !== "x86") return;
    const abi: GuestAbi = longMode ? "x64" : "x32";
    if (abi === this.abi) return;
    this.abi = abi;
    this.layout = SHARED_INFO_LAYOUTS[abi];
    if (this.twoLevel !== null) this.twoLevel.layout = TWO_LEVEL_LAYOUTS[abi];
    this.events.setPortLimit(this.layout.portLimit);
    this.writeWallclock();
  }

  private pointVcpuInfoAtSharedInfo(context: VcpuContext): void {
    if (context.id < this.layout.vcpuSlots) {
      this.setVcpuInfo(context, this.sharedInfo, context.id * this.layout.vcpuInfoSize);
    } else {
      this.setVcpuInfo(context, null, 0);
    }
  }

  setVcpuInfo(context: VcpuContext, page: Uint8Array | null, offset: number): void {
    context.vcpuInfoPage = page;
    context.vcpuInfoOffset = offset;
    this.twoLevel?.setVcpuInfo(context.id, page, offset);
  }

  /**
   * Writes vcpu_time_info for `context` under the version odd/even protocol
   * (xen-abi.md 3.5). The TSC is exactly linear in system time, so one
   * update stays valid until the clock is re-based.
   *
   * A registered secondary copy (VCPUOP_register_vcpu_time_memory_area) is
   * written after it as Xen's update_secondary_system_time does
   * (arch/x86/time.c): the version (odd) first, then the whole struct, then
   * the version made even, through the guest-virtual address with `access`
   * (the caller's at registration, else the vCPU's own translation, as Xen
   * copies through current's); a failed copy is ignored, and a failed
   * version write skips the rest.
   */
  updateTime(context: VcpuContext, access: GuestAccess | null = context.access): void {
    const bytes = this.timeBytes;
    const view = this.timeView;
    const now = this.clock.now();
    setU64(view, VcpuTimeInfo.tscTimestamp, this.clock.tscAt(now));
    setU64(view, VcpuTimeInfo.systemTime, now);
    view.setUint32(VcpuTimeInfo.tscToSystemMul, this.clock.scale.mul, true);
    view.setInt8(VcpuTimeInfo.tscShift, this.clock.scale.shift);
    // PVCLOCK_TSC_STABLE_BIT (Xen public xen.h XEN_PVCLOCK_TSC_STABLE_BIT, bit 0): one clock
    // source for every vCPU of the domain, an invariant TSC. Linux's vDSO reads the secondary
    // copy only with it set (arch/x86/xen/time.c xen_setup_vsyscall_time_info).
    view.setUint8(VcpuTimeInfo.flags, PvclockFlags.TSC_STABLE_BIT);
    const page = context.vcpuInfoPage;
    let odd: number;
    if (page !== null) {
      const base = context.vcpuInfoOffset + this.layout.timeOffset;
      const primary = new DataView(page.buffer, page.byteOffset + base, VcpuTimeInfo.size);
      odd = (primary.getUint32(VcpuTimeInfo.version, true) | 1) >>> 0;
      primary.setUint32(VcpuTimeInfo.version, odd, true);
      view.setUint32(VcpuTimeInfo.version, odd, true);
      // Bytes 4..31 (pad, fields, pad) in one copy; the version stays odd meanwhile.
      page.set(bytes.subarray(4), base + 4);
      primary.setUint32(VcpuTimeInfo.version, (odd + 1) >>> 0, true);
    } else {
      odd = (context.timeVersion | 1) >>> 0;
    }
    context.timeVersion = (odd + 1) >>> 0;
    if (!context.timeAreaRegistered || access === null) return;
    view.setUint32(VcpuTimeInfo.version, odd, true);
    const longMode = access.longMode;
    // The handle is 64-bit in the x64 ABI; a 32-bit guest's is the low half (held at registration).
    access.longMode = this.abi !== "x32";
    const low = context.timeAreaLow;
    const high = context.timeAreaHigh;
    if (access.writeVirtual(low, high, bytes, 0, 4)) {
      access.writeVirtual(low, high, bytes, 0, VcpuTimeInfo.size);
      view.setUint32(VcpuTimeInfo.version, (odd + 1) >>> 0, true);
      access.writeVirtual(low, high, bytes, 0, 4);
    }
    access.longMode = longMode;
  }

  /** shared_info wallclock: UNIX time at system time 0, odd/even on wc_version. */
  writeWallclock(): void {
    const view = new DataView(this.sharedInfo.buffer);
    const layout = this.layout;
    const version = view.getUint32(layout.wcVersion, true);
    view.setUint32(layout.wcVersion, (version | 1) >>> 0, true);
    const epochMs = this.clock.wallclockEpochMs;
    const seconds = Math.floor(epochMs / 1000);
    const nanoseconds = Math.floor((epochMs - seconds * 1000) * 1e6);
    view.setUint32(layout.wcSec, seconds >>> 0, true);
    view.setUint32(layout.wcNsec, nanoseconds, true);
    if (layout.wcSecHi >= 0) view.setUint32(layout.wcSecHi, Math.floor(seconds / 4294967296), true);
    view.setUint32(layout.wcVersion, ((version | 1) + 1) >>> 0, true);
  }

  /** SCHEDOP_poll waiters on `port` wake (masked or not; Xen evtchn_port_set_pending). */
  private pollWake(port: number): void {
    for (const context of this.vcpus) {
      if (context.blocked !== 3) continue;
      for (let i = 0; i < context.pollCount; i++) {
        if (context.pollPorts[i] === port) {
          context.wake();
          break;
        }
      }
    }
  }

  // ---- console_io --------------------------------------------------------------------------

  /** Bytes console_io may write now (refills the token bucket from the domain's clock). */
  consoleAllowance(): number {
    const now = this.clock.now();
    const refill = Math.floor(((now - this.consoleRefilledAt) * this.consoleBytesPerSecond) / 1e9);
    if (refill > 0) {
      this.consoleTokens = Math.min(this.consoleLimit, this.consoleTokens + refill);
      this.consoleRefilledAt = now;
    }
    return this.consoleTokens;
  }

  /** Guest debug output (CONSOLEIO_write): line-buffered into the hypervisor log, rate-limited. */
  consoleWrite(bytes: Uint8Array): void {
    const room = this.consoleAllowance();
    const accepted = bytes.length > room ? bytes.subarray(0, room) : bytes;
    this.consoleTokens -= accepted.length;
    let text = this.consoleLine;
    for (const byte of accepted) {
      if (byte === 10) {
        this.hypervisor.log(`(d${this.domid}) ${text}`);
        text = "";
      } else if (byte >= 32 && byte < 127) text += String.fromCharCode(byte);
      else if (byte === 9) text += "\t";
    }
    this.consoleLine = text.length > 4096 ? text.slice(0, 4096) : text;
    if (accepted.length < bytes.length) {
      if (!this.consoleDropping) {
        this.hypervisor.log(`(d${this.domid}) console_io rate limit reached; output dropped`);
      }
      this.consoleDropping = true;
    } else {
      this.consoleDropping = false;
    }
  }

  private flushConsole(): void {
    if (this.consoleLine.length > 0) this.hypervisor.log(`(d${this.domid}) ${this.consoleLine}`);
    this.consoleLine = "";
  }
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 4294967296) >>> 0, true);
}
