/**
 * An Arm Generic Interrupt Controller, architecture version 2 (Arm IHI 0048B
 * "ARM Generic Interrupt Controller Architecture Specification, version 2.0"):
 * the distributor (GICD, 4 KiB) and one memory-mapped CPU interface (GICC,
 * 8 KiB) per processor, with SGIs (INTID 0-15), PPIs (16-31) and SPIs (32 and
 * up). Version 2 is chosen because its CPU interface is memory-mapped: the
 * guest acknowledges (GICC_IAR) and ends (GICC_EOIR) interrupts with loads
 * and stores, so a CPU needs no GIC system registers (the `InterruptSource`
 * contract of `@kumo/abi`: arm64 CPUs never call `acknowledge`).
 *
 * Bus-agnostic in the vm-superio shape (docs/style.md): the VMM maps
 * `distributor` and `cpuInterface` (`MmioHandler`s of `@kumo/mmu`) at the
 * addresses its device tree gives (Xen's are `ArmGuest.GICD_BASE` and
 * `ArmGuest.GICC_BASE` of `@kumo/abi`), drives SPIs with `setSpi` and PPIs
 * with `setPpi`, and gives CPU `n` the `source(n)` as its interrupt source.
 * The IRQ line of each CPU is reported through `interrupt(cpu, asserted)`.
 *
 * Banked registers (the SGI/PPI halves of the enable, pending, active,
 * priority, target and configuration registers, and every CPU interface
 * register) are those of `currentCpu`: one MMIO region serves every vCPU
 * of a domain, so the VMM sets `currentCpu` before it runs a vCPU (one
 * store).
 *
 * Choices, following Xen's virtual GICv2 (xen/arch/arm/vgic-v2.c), which is
 * what a Xen guest sees:
 * - No Security Extensions (GICD_TYPER.SecurityExtn = 0) and GICD_IGROUPRn
 *   RAZ/WI: every interrupt is Group 0 and signalled as IRQ (GICC_CTLR.FIQEn
 *   is stored but FIQs are not modelled). GICD_CTLR has its enable bit only.
 * - 32 priority levels (the upper five bits, as the GIC-400), so the binary
 *   point register is at least 2 (IHI 0048B 3.3.3 table 3-2).
 * - The SGI/PPI target registers read as the accessing CPU's own bit even
 *   with one CPU interface (the multiprocessor reading of IHI 0048B 4.3.12).
 * - The SGI configuration (GICD_ICFGR0) is read-only edge; PPI and SPI
 *   configurations are writable.
 * - Accesses of the wrong size to word-only registers read 0 and are
 *   ignored (the spec leaves them UNPREDICTABLE; Xen injects a data abort,
 *   which an MMIO handler of `@kumo/mmu` cannot).
 */
import type { MmioHandler } from "@kumo/mmu";

/** Sizes of the two register frames (Xen public arch-arm.h GUEST_GICD_SIZE, GUEST_GICC_SIZE). */
export const GIC_DISTRIBUTOR_SIZE = 0x1000;
export const GIC_CPU_INTERFACE_SIZE = 0x2000;
/** GICC_IAR's answer when nothing can be acknowledged (IHI 0048B 3.2.5). */
export const GIC_SPURIOUS_INTID = 1023;

/** Distributor register offsets (IHI 0048B table 4-1). */
export const GicDistributorRegister = {
  Ctlr: 0x000,
  Typer: 0x004,
  Iidr: 0x008,
  IGroupR: 0x080,
  ISEnableR: 0x100,
  ICEnableR: 0x180,
  ISPendR: 0x200,
  ICPendR: 0x280,
  ISActiveR: 0x300,
  ICActiveR: 0x380,
  IPriorityR: 0x400,
  ITargetsR: 0x800,
  ICfgR: 0xc00,
  Sgir: 0xf00,
  CPendSgiR: 0xf10,
  SPendSgiR: 0xf20,
  /** Peripheral ID2: ArchRev in bits 7:4 (IHI 0048B 4.3.16). */
  PidR2: 0xfe8,
} as const;

/** CPU interface register offsets (IHI 0048B table 4-2). */
export const GicCpuRegister = {
  Ctlr: 0x00,
  Pmr: 0x04,
  Bpr: 0x08,
  Iar: 0x0c,
  Eoir: 0x10,
  Rpr: 0x14,
  Hppir: 0x18,
  Abpr: 0x1c,
  Aiar: 0x20,
  Aeoir: 0x24,
  Ahppir: 0x28,
  Apr0: 0xd0,
  Nsapr0: 0xe0,
  Iidr: 0xfc,
  Dir: 0x1000,
} as const;

/** GICC_CTLR bits (IHI 0048B 4.4.1, no Security Extensions). */
export const GicCpuControl = {
  EnableGrp0: 1 << 0,
  EnableGrp1: 1 << 1,
  /** Split priority drop (EOIR) and deactivation (DIR). */
  EoiMode: 1 << 9,
} as const;

export interface GicV2Options {
  /** CPU interfaces, 1 to 8 (GICv2 targets CPUs by an 8-bit mask). */
  cpus?: number;
  /** Shared peripheral interrupts, a multiple of 32 up to 988; default 32 (INTID 32-63). */
  spis?: number;
  /** The IRQ line of a CPU changed level. */
  interrupt?: (cpu: number, asserted: boolean) => void;
  /**
   * The level of a PPI raised with `assertPpi`, asked when that PPI is
   * deactivated: true makes it pending again (a level re-sampled on EOI, as
   * Xen's vGIC does for the event-channel PPI; `Domain.eventLineLevel` of
   * `@kumo/hypervisor-core` answers it).
   */
  resamplePpi?: (cpu: number, intid: number) => boolean;
}

/** The saved state: named, versioned, plain (JSON-safe). Per-CPU arrays hold INTIDs 0-31 of each CPU in turn. */
export interface GicV2State {
  readonly kind: "gic-v2";
  readonly version: 1;
  readonly cpus: number;
  readonly spis: number;
  readonly distributorEnabled: boolean;
  /** Per INTID: SPIs at their INTID, SGIs/PPIs of CPU c at 1024 * (c + 1) + INTID. Sparse: [index, value] pairs. */
  readonly enabled: readonly number[];
  readonly pendingLatch: readonly number[];
  readonly level: readonly number[];
  readonly active: readonly number[];
  readonly priority: readonly number[];
  readonly edge: readonly number[];
  readonly targets: readonly number[];
  /** Per CPU and SGI: the source CPU mask of pending SGIs (16 per CPU). */
  readonly sgiSources: readonly number[];
  readonly cpuControl: readonly number[];
  readonly priorityMask: readonly number[];
  readonly binaryPoint: readonly number[];
  readonly activePriorities: readonly number[];
}

/** A user's mistake in the options or a saved state. */
export class GicV2Error extends Error {
  override name = "GicV2Error";
}

/** GIC-400 identification (Arm DDI 0471B, GICD_IIDR / GICC_IIDR / GICD_PIDR2): implementer 0x43B (Arm). */
const DISTRIBUTOR_IIDR = 0x0200143b;
const CPU_INTERFACE_IIDR = 0x0202143b;
const PIDR2_GICV2 = 0x2b;
/** Five priority bits (32 levels): what the GIC-400 implements. */
const PRIORITY_MASK = 0xf8;
const MINIMUM_BINARY_POINT = 2;
const IDLE_PRIORITY = 0xff;
const PRIVATE = 32;

/**
 * State layout: private interrupts (INTID 0-31) of CPU c live at index
 * c * 32 + INTID of the `private*` arrays, SPIs at their INTID in the
 * shared arrays (whose first 32 entries are unused). Typed arrays so that
 * the scan that decides the IRQ line allocates nothing.
 */
export class GicV2 {
  readonly cpus: number;
  readonly spis: number;
  /** The CPU whose banked registers MMIO accesses reach; the VMM sets it before running a vCPU. */
  currentCpu = 0;
  /** The distributor frame (GICD), an `MmioHandler`. */
  readonly distributor: MmioHandler;
  /** The CPU interface frame (GICC) of `currentCpu`, an `MmioHandler`. */
  readonly cpuInterface: MmioHandler;

  private readonly line: ((cpu: number, asserted: boolean) => void) | undefined;
  private readonly resample: ((cpu: number, intid: number) => boolean) | undefined;
  private readonly interruptCount: number;
  private distributorEnabled = false;
  // Indexed by INTID (shared) or cpu * 32 + INTID (private).
  private readonly enabled: Uint8Array;
  private readonly pendingLatch: Uint8Array;
  private readonly level: Uint8Array;
  private readonly active: Uint8Array;
  private readonly priority: Uint8Array;
  private readonly edge: Uint8Array;
  private readonly targets: Uint8Array;
  private readonly privateEnabled: Uint8Array;
  private readonly privatePendingLatch: Uint8Array;
  private readonly privateLevel: Uint8Array;
  private readonly privateActive: Uint8Array;
  private readonly privatePriority: Uint8Array;
  private readonly privateEdge: Uint8Array;
  /** cpu * 16 + sgi: mask of the CPUs that sent a pending SGI (IHI 0048B 3.2.3: pending per source). */
  private readonly sgiSources: Uint8Array;
  /** Per CPU: GICC_CTLR. */
  private readonly cpuControl: Uint32Array;
  private readonly priorityMask: Uint8Array;
  private readonly binaryPoint: Uint8Array;
  /** Bit n: an active interrupt of group priority n * 8 (GICC_APR0's layout for 5 bits). */
  private readonly activePriorities: Uint32Array;
  private readonly asserted: Uint8Array;
  /** Result of the last `highestPending` scan: INTID, its source CPU for SGIs. */
  private foundSource = 0;
  private readonly sources: { hasPending(): boolean; acknowledge(): number }[] = [];

  constructor(options: GicV2Options = {}) {
    const cpus = options.cpus ?? 1;
    const spis = options.spis ?? 32;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8)
      throw new GicV2Error(`a GICv2 has 1 to 8 CPU interfaces, not ${cpus}`);
    if (!Number.isInteger(spis) || spis < 0 || spis % 32 !== 0 || spis > 988)
      throw new GicV2Error(`the SPI count must be a multiple of 32 up to 988, not ${spis}`);
    this.cpus = cpus;
    this.spis = spis;
    this.line = options.interrupt;
    this.resample = options.resamplePpi;
    this.interruptCount = PRIVATE + spis;
    const n = this.interruptCount;
    this.enabled = new Uint8Array(n);
    this.pendingLatch = new Uint8Array(n);
    this.level = new Uint8Array(n);
    this.active = new Uint8Array(n);
    this.priority = new Uint8Array(n);
    this.edge = new Uint8Array(n);
    this.targets = new Uint8Array(n);
    this.privateEnabled = new Uint8Array(cpus * PRIVATE);
    this.privatePendingLatch = new Uint8Array(cpus * PRIVATE);
    this.privateLevel = new Uint8Array(cpus * PRIVATE);
    this.privateActive = new Uint8Array(cpus * PRIVATE);
    this.privatePriority = new Uint8Array(cpus * PRIVATE);
    this.privateEdge = new Uint8Array(cpus * PRIVATE);
    this.sgiSources = new Uint8Array(cpus * 16);
    this.cpuControl = new Uint32Array(cpus);
    this.priorityMask = new Uint8Array(cpus);
    this.binaryPoint = new Uint8Array(cpus).fill(MINIMUM_BINARY_POINT);
    this.activePriorities = new Uint32Array(cpus);
    this.asserted = new Uint8Array(cpus);
    // SGIs are edge-triggered (GICD_ICFGR0 reads 0xAAAAAAAA, IHI 0048B 4.3.13).
    for (let cpu = 0; cpu < cpus; cpu++)
      for (let sgi = 0; sgi < 16; sgi++) this.privateEdge[cpu * PRIVATE + sgi] = 1;
    this.distributor = {
      read: (offset, size) => this.readDistributor(offset, size),
      write: (offset, size, value) => this.writeDistributor(offset, size, value),
    };
    this.cpuInterface = {
      read: (offset, size) => (size === 4 ? this.readCpu(this.currentCpu, offset) : 0),
      write: (offset, size, value) => {
        if (size === 4) this.writeCpu(this.currentCpu, offset, value >>> 0);
      },
    };
    for (let cpu = 0; cpu < cpus; cpu++) {
      this.sources.push({
        hasPending: () => this.asserted[cpu] === 1,
        // Not called by arm64 CPUs (the guest reads GICC_IAR); offered for other VMMs.
        acknowledge: () => {
          const intid = this.acknowledgeInterrupt(cpu) & 0x3ff;
          return intid === GIC_SPURIOUS_INTID ? -1 : intid;
        },
      });
    }
  }

  /**
   * CPU `cpu`'s IRQ line as an interrupt source (structurally the
   * `InterruptSource` of `@kumo/abi`): `hasPending()` is one load.
   */
  source(cpu: number): { hasPending(): boolean; acknowledge(): number } {
    const source = this.sources[cpu];
    if (!source) throw new GicV2Error(`no CPU interface ${cpu} (the GIC has ${this.cpus})`);
    return source;
  }

  /** True while CPU `cpu`'s IRQ line is asserted. */
  irqAsserted(cpu: number): boolean {
    return this.asserted[cpu] === 1;
  }

  /**
   * Drives the line of SPI `intid` (32 and up). Level-sensitive SPIs are
   * pending while the line is high; edge-triggered ones latch a rising edge.
   */
  setSpi(intid: number, high: boolean): void {
    if (intid < PRIVATE || intid >= this.interruptCount)
      throw new GicV2Error(`SPI ${intid} is outside 32-${this.interruptCount - 1}`);
    const value = high ? 1 : 0;
    if (this.level[intid] === value) return;
    this.level[intid] = value;
    if (value && this.edge[intid]) this.pendingLatch[intid] = 1;
    this.update();
  }

  /** Drives the line of PPI `intid` (16-31) of CPU `cpu` (the generic timer, Xen's event channel PPI). */
  setPpi(cpu: number, intid: number, high: boolean): void {
    if (intid < 16 || intid >= PRIVATE) throw new GicV2Error(`PPI ${intid} is outside 16-31`);
    if (!(cpu >= 0 && cpu < this.cpus))
      throw new GicV2Error(`no CPU interface ${cpu} (the GIC has ${this.cpus})`);
    const index = cpu * PRIVATE + intid;
    const value = high ? 1 : 0;
    if (this.privateLevel[index] === value) return;
    this.privateLevel[index] = value;
    if (value && this.privateEdge[index]) this.privatePendingLatch[index] = 1;
    this.update();
  }

  /**
   * Makes PPI `intid` of CPU `cpu` pending, as a write of its bit to that
   * CPU's GICD_ISPENDR0 would (harmless when already pending): the
   * `EventChannelInterruptController` of `@kumo/hypervisor-core`. On
   * deactivation `resamplePpi` decides whether it is pending again.
   */
  assertPpi(cpu: number, intid: number): void {
    if (intid < 16 || intid >= PRIVATE) throw new GicV2Error(`PPI ${intid} is outside 16-31`);
    if (!(cpu >= 0 && cpu < this.cpus))
      throw new GicV2Error(`no CPU interface ${cpu} (the GIC has ${this.cpus})`);
    this.privatePendingLatch[cpu * PRIVATE + intid] = 1;
    this.update();
  }

  /** Makes SGI `intid` (0-15) pending on `target` as if `sourceCpu` had written GICD_SGIR. */
  sendSgi(sourceCpu: number, target: number, intid: number): void {
    if (intid < 0 || intid > 15) throw new GicV2Error(`SGI ${intid} is outside 0-15`);
    if (!(target >= 0 && target < this.cpus) || !(sourceCpu >= 0 && sourceCpu < this.cpus))
      throw new GicV2Error(`no CPU interface ${target} or ${sourceCpu} (the GIC has ${this.cpus})`);
    this.sgiSources[target * 16 + intid] |= 1 << sourceCpu;
    this.update();
  }

  // ---- Distributor ----

  private readDistributor(offset: number, size: 1 | 2 | 4): number {
    const R = GicDistributorRegister;
    const cpu = this.currentCpu;
    // IPRIORITYR and ITARGETSR are byte-accessible; the rest are word registers (IHI 0048B 4.1.4).
    if (offset >= R.IPriorityR && offset < R.ICfgR) {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readDistributorByte(cpu, offset + i) << (8 * i);
      return value >>> 0;
    }
    if (offset >= R.CPendSgiR && offset < R.SPendSgiR + 16) {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readSgiPendingByte(cpu, offset + i) << (8 * i);
      return value >>> 0;
    }
    if (size !== 4 || offset & 3) return 0;
    if (offset === R.Ctlr) return this.distributorEnabled ? 1 : 0;
    if (offset === R.Typer) return ((this.cpus - 1) << 5) | (this.interruptCount / 32 - 1);
    if (offset === R.Iidr) return DISTRIBUTOR_IIDR;
    if (offset === R.PidR2) return PIDR2_GICV2;
    if (offset >= R.IGroupR && offset < R.ISEnableR) return 0;
    if (offset >= R.ISEnableR && offset < R.ISPendR)
      return this.readBits(cpu, (offset & 0x7f) >>> 2, this.enabled, this.privateEnabled);
    if (offset >= R.ISPendR && offset < R.ISActiveR)
      return this.readPendingBits(cpu, (offset & 0x7f) >>> 2);
    if (offset >= R.ISActiveR && offset < R.IPriorityR)
      return this.readBits(cpu, (offset & 0x7f) >>> 2, this.active, this.privateActive);
    if (offset >= R.ICfgR && offset < R.ICfgR + 0x100)
      return this.readConfig(cpu, (offset - R.ICfgR) >>> 2);
    return 0;
  }

  private writeDistributor(offset: number, size: 1 | 2 | 4, value: number): void {
    const R = GicDistributorRegister;
    const cpu = this.currentCpu;
    if (offset >= R.IPriorityR && offset < R.ICfgR) {
      for (let i = 0; i < size; i++)
        this.writeDistributorByte(cpu, offset + i, (value >>> (8 * i)) & 0xff);
      this.update();
      return;
    }
    if (offset >= R.CPendSgiR && offset < R.SPendSgiR + 16) {
      for (let i = 0; i < size; i++)
        this.writeSgiPendingByte(cpu, offset + i, (value >>> (8 * i)) & 0xff);
      this.update();
      return;
    }
    if (size !== 4 || offset & 3) return;
    value >>>= 0;
    const word = (offset & 0x7f) >>> 2;
    if (offset === R.Ctlr) this.distributorEnabled = (value & 1) !== 0;
    else if (offset >= R.ISEnableR && offset < R.ICEnableR)
      this.setBits(cpu, word, value, this.enabled, this.privateEnabled, 1);
    else if (offset >= R.ICEnableR && offset < R.ISPendR)
      this.setBits(cpu, word, value, this.enabled, this.privateEnabled, 0);
    else if (offset >= R.ISPendR && offset < R.ICPendR)
      // SGI bits of GICD_ISPENDR0 are read-only: SGIs are made pending through GICD_SPENDSGIRn (4.3.7).
      this.setBits(
        cpu,
        word,
        word === 0 ? value & 0xffff0000 : value,
        this.pendingLatch,
        this.privatePendingLatch,
        1,
      );
    else if (offset >= R.ICPendR && offset < R.ISActiveR)
      // Clearing the latch leaves a level-sensitive interrupt pending while its line is high (4.3.8).
      this.setBits(
        cpu,
        word,
        word === 0 ? value & 0xffff0000 : value,
        this.pendingLatch,
        this.privatePendingLatch,
        0,
      );
    else if (offset >= R.ISActiveR && offset < R.ICActiveR)
      this.setBits(cpu, word, value, this.active, this.privateActive, 1);
    else if (offset >= R.ICActiveR && offset < R.IPriorityR)
      this.setBits(cpu, word, value, this.active, this.privateActive, 0);
    else if (offset >= R.ICfgR + 4 && offset < R.ICfgR + 0x100)
      this.writeConfig(cpu, (offset - R.ICfgR) >>> 2, value);
    else if (offset === R.Sgir) this.writeSgir(cpu, value);
    // Everything else (IGROUPR, TYPER, IIDR, ICFGR0, reserved) is read-only or RAZ/WI.
    this.update();
  }

  /** One bit per INTID, word `word` of a set/clear register pair. */
  private readBits(cpu: number, word: number, shared: Uint8Array, banked: Uint8Array): number {
    let value = 0;
    const first = word * 32;
    if (first >= this.interruptCount) return 0;
    for (let bit = 0; bit < 32; bit++) {
      const set = word === 0 ? banked[cpu * PRIVATE + bit] : shared[first + bit];
      value |= set << bit;
    }
    return value >>> 0;
  }

  private setBits(
    cpu: number,
    word: number,
    value: number,
    shared: Uint8Array,
    banked: Uint8Array,
    to: 0 | 1,
  ): void {
    const first = word * 32;
    if (first >= this.interruptCount) return;
    for (let bit = 0; bit < 32; bit++) {
      if (!((value >>> bit) & 1)) continue;
      if (word === 0) banked[cpu * PRIVATE + bit] = to;
      else shared[first + bit] = to;
    }
  }

  private readPendingBits(cpu: number, word: number): number {
    const first = word * 32;
    if (first >= this.interruptCount) return 0;
    let value = 0;
    for (let bit = 0; bit < 32; bit++) if (this.isPending(cpu, first + bit)) value |= 1 << bit;
    return value >>> 0;
  }

  private readDistributorByte(cpu: number, offset: number): number {
    const R = GicDistributorRegister;
    if (offset < R.ITargetsR) {
      const intid = offset - R.IPriorityR;
      if (intid < PRIVATE) return this.privatePriority[cpu * PRIVATE + intid];
      return intid < this.interruptCount ? this.priority[intid] : 0;
    }
    const intid = offset - R.ITargetsR;
    // The SGI/PPI target bytes name the reading CPU (IHI 0048B 4.3.12).
    if (intid < PRIVATE) return 1 << cpu;
    return intid < this.interruptCount ? this.targets[intid] : 0;
  }

  private writeDistributorByte(cpu: number, offset: number, value: number): void {
    const R = GicDistributorRegister;
    if (offset < R.ITargetsR) {
      const intid = offset - R.IPriorityR;
      if (intid < PRIVATE) this.privatePriority[cpu * PRIVATE + intid] = value & PRIORITY_MASK;
      else if (intid < this.interruptCount) this.priority[intid] = value & PRIORITY_MASK;
      return;
    }
    const intid = offset - R.ITargetsR;
    if (intid >= PRIVATE && intid < this.interruptCount)
      this.targets[intid] = value & ((1 << this.cpus) - 1);
  }

  /** GICD_CPENDSGIRn / GICD_SPENDSGIRn: byte n of register r is SGI 4r + (byte), one bit per source CPU (4.3.14-15). */
  private readSgiPendingByte(cpu: number, offset: number): number {
    const sgi = (offset - GicDistributorRegister.CPendSgiR) & 0xf;
    return this.sgiSources[cpu * 16 + sgi];
  }

  private writeSgiPendingByte(cpu: number, offset: number, value: number): void {
    const set = offset >= GicDistributorRegister.SPendSgiR;
    const sgi = (offset - GicDistributorRegister.CPendSgiR) & 0xf;
    const mask = value & ((1 << this.cpus) - 1);
    if (set) this.sgiSources[cpu * 16 + sgi] |= mask;
    else this.sgiSources[cpu * 16 + sgi] &= ~mask;
  }

  /** GICD_ICFGRn: two bits per INTID, bit 2F+1 set = edge-triggered (4.3.13). */
  private readConfig(cpu: number, register: number): number {
    let value = 0;
    for (let field = 0; field < 16; field++) {
      const intid = register * 16 + field;
      if (intid >= this.interruptCount) break;
      const edge = intid < PRIVATE ? this.privateEdge[cpu * PRIVATE + intid] : this.edge[intid];
      value |= edge << (2 * field + 1);
    }
    return value >>> 0;
  }

  private writeConfig(cpu: number, register: number, value: number): void {
    for (let field = 0; field < 16; field++) {
      const intid = register * 16 + field;
      if (intid >= this.interruptCount) break;
      const edge = (value >>> (2 * field + 1)) & 1;
      if (intid < PRIVATE) this.privateEdge[cpu * PRIVATE + intid] = edge;
      else this.edge[intid] = edge;
    }
  }

  /** GICD_SGIR (4.3.15): TargetListFilter 25:24, CPUTargetList 23:16, SGIINTID 3:0. */
  private writeSgir(cpu: number, value: number): void {
    const filter = (value >>> 24) & 3;
    const sgi = value & 0xf;
    let targets: number;
    if (filter === 0) targets = (value >>> 16) & 0xff;
    else if (filter === 1) targets = 0xff & ~(1 << cpu);
    else if (filter === 2) targets = 1 << cpu;
    else return; // Reserved filter.
    targets &= (1 << this.cpus) - 1;
    for (let target = 0; target < this.cpus; target++)
      if ((targets >>> target) & 1) this.sgiSources[target * 16 + sgi] |= 1 << cpu;
  }

  // ---- Interrupt state ----

  private isPending(cpu: number, intid: number): boolean {
    if (intid < 16) return this.sgiSources[cpu * 16 + intid] !== 0;
    if (intid < PRIVATE) {
      const index = cpu * PRIVATE + intid;
      return (
        this.privatePendingLatch[index] === 1 ||
        (this.privateLevel[index] === 1 && this.privateEdge[index] === 0)
      );
    }
    return this.pendingLatch[intid] === 1 || (this.level[intid] === 1 && this.edge[intid] === 0);
  }

  /**
   * The highest-priority interrupt that is pending, enabled, not active and
   * targets `cpu` (lowest INTID on a tie, IHI 0048B 3.2.4), or -1. For an
   * SGI, `foundSource` is the lowest source CPU.
   */
  private highestPending(cpu: number): number {
    let best = -1;
    let bestPriority = 0x100;
    const base = cpu * PRIVATE;
    for (let intid = 0; intid < PRIVATE; intid++) {
      const index = base + intid;
      if (!this.privateEnabled[index] || this.privateActive[index]) continue;
      if (this.privatePriority[index] >= bestPriority) continue;
      if (!this.isPending(cpu, intid)) continue;
      best = intid;
      bestPriority = this.privatePriority[index];
    }
    const bit = 1 << cpu;
    for (let intid = PRIVATE; intid < this.interruptCount; intid++) {
      if (!this.enabled[intid] || this.active[intid] || !(this.targets[intid] & bit)) continue;
      if (this.priority[intid] >= bestPriority) continue;
      if (!this.isPending(cpu, intid)) continue;
      best = intid;
      bestPriority = this.priority[intid];
    }
    if (best >= 0 && best < 16) {
      const sources = this.sgiSources[cpu * 16 + best];
      this.foundSource = 31 - Math.clz32(sources & -sources);
    }
    return best;
  }

  private priorityOf(cpu: number, intid: number): number {
    return intid < PRIVATE ? this.privatePriority[cpu * PRIVATE + intid] : this.priority[intid];
  }

  private runningPriority(cpu: number): number {
    const bits = this.activePriorities[cpu];
    if (bits === 0) return IDLE_PRIORITY;
    return (31 - Math.clz32(bits & -bits)) << 3;
  }

  /** The group priority: the bits above the binary point (IHI 0048B 3.3.3). */
  private groupPriority(cpu: number, priority: number): number {
    return priority & ((0xff << (this.binaryPoint[cpu] + 1)) & 0xff);
  }

  /** Whether `intid` (found pending) may be signalled to `cpu` now: PMR and preemption (3.3). */
  private canSignal(cpu: number, intid: number): boolean {
    if (intid < 0) return false;
    const priority = this.priorityOf(cpu, intid);
    return (
      priority < this.priorityMask[cpu] &&
      this.groupPriority(cpu, priority) < this.runningPriority(cpu)
    );
  }

  private update(): void {
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      const on =
        this.distributorEnabled &&
        (this.cpuControl[cpu] & GicCpuControl.EnableGrp0) !== 0 &&
        this.canSignal(cpu, this.highestPending(cpu))
          ? 1
          : 0;
      if (on === this.asserted[cpu]) continue;
      this.asserted[cpu] = on;
      this.line?.(cpu, on === 1);
    }
  }

  // ---- CPU interface ----

  private readCpu(cpu: number, offset: number): number {
    const R = GicCpuRegister;
    switch (offset) {
      case R.Ctlr:
        return this.cpuControl[cpu];
      case R.Pmr:
        return this.priorityMask[cpu];
      case R.Bpr:
        return this.binaryPoint[cpu];
      case R.Iar:
        return this.acknowledgeInterrupt(cpu);
      case R.Rpr:
        return this.runningPriority(cpu);
      case R.Hppir: {
        const intid = this.highestPending(cpu);
        if (intid < 0) return GIC_SPURIOUS_INTID;
        return intid < 16 ? intid | (this.foundSource << 10) : intid;
      }
      case R.Apr0:
        return this.activePriorities[cpu];
      case R.Iidr:
        return CPU_INTERFACE_IIDR;
      default:
        // ABPR, AIAR, AHPPIR, NSAPR0: the Group 1 aliases; no Group 1 here (IGROUPR RAZ/WI).
        return offset === R.Aiar || offset === R.Ahppir ? GIC_SPURIOUS_INTID : 0;
    }
  }

  private writeCpu(cpu: number, offset: number, value: number): void {
    const R = GicCpuRegister;
    switch (offset) {
      case R.Ctlr:
        this.cpuControl[cpu] = value & 0x3ff;
        break;
      case R.Pmr:
        this.priorityMask[cpu] = value & PRIORITY_MASK;
        break;
      case R.Bpr:
        this.binaryPoint[cpu] = Math.max(value & 7, MINIMUM_BINARY_POINT);
        break;
      case R.Eoir:
        this.endOfInterrupt(cpu, value);
        break;
      case R.Dir:
        this.deactivate(cpu, value & 0x3ff);
        break;
      case R.Apr0:
        this.activePriorities[cpu] = value;
        break;
      default:
        return;
    }
    this.update();
  }

  /** GICC_IAR read (IHI 0048B 3.2.4, 4.4.4): the INTID (and SGI source) of the interrupt now active. */
  private acknowledgeInterrupt(cpu: number): number {
    const intid = this.highestPending(cpu);
    if (
      !this.distributorEnabled ||
      !(this.cpuControl[cpu] & GicCpuControl.EnableGrp0) ||
      !this.canSignal(cpu, intid)
    )
      return GIC_SPURIOUS_INTID;
    const priority = this.priorityOf(cpu, intid);
    let value = intid;
    if (intid < 16) {
      const source = this.foundSource;
      this.sgiSources[cpu * 16 + intid] &= ~(1 << source);
      this.privateActive[cpu * PRIVATE + intid] = 1;
      value |= source << 10;
    } else if (intid < PRIVATE) {
      // Pending -> active (edge) or active-and-pending while a level line stays high (3.2.4).
      this.privatePendingLatch[cpu * PRIVATE + intid] = 0;
      this.privateActive[cpu * PRIVATE + intid] = 1;
    } else {
      this.pendingLatch[intid] = 0;
      this.active[intid] = 1;
    }
    this.activePriorities[cpu] |= 1 << (this.groupPriority(cpu, priority) >>> 3);
    this.update();
    return value;
  }

  /** GICC_EOIR write (4.4.5): drop the running priority; with EOImode 0 also deactivate. */
  private endOfInterrupt(cpu: number, value: number): void {
    const intid = value & 0x3ff;
    if (intid >= 1020) return; // Special INTIDs: ignored.
    const bits = this.activePriorities[cpu];
    // The highest active priority is the interrupt's, for a guest that nests correctly (3.2.6).
    this.activePriorities[cpu] = bits & (bits - 1);
    if (!(this.cpuControl[cpu] & GicCpuControl.EoiMode)) this.deactivate(cpu, intid);
  }

  private deactivate(cpu: number, intid: number): void {
    if (intid < PRIVATE) {
      const index = cpu * PRIVATE + intid;
      this.privateActive[index] = 0;
      if (intid >= 16 && this.resample?.(cpu, intid)) this.privatePendingLatch[index] = 1;
    } else if (intid < this.interruptCount) this.active[intid] = 0;
  }

  // ---- State ----

  state(): GicV2State {
    const pairs = (shared: Uint8Array | null, banked: Uint8Array | null): number[] => {
      const out: number[] = [];
      if (shared)
        for (let intid = PRIVATE; intid < this.interruptCount; intid++)
          if (shared[intid]) out.push(intid, shared[intid]);
      if (banked)
        for (let index = 0; index < banked.length; index++)
          if (banked[index])
            out.push(1024 + 1024 * Math.floor(index / PRIVATE) + (index % PRIVATE), banked[index]);
      return out;
    };
    return {
      kind: "gic-v2",
      version: 1,
      cpus: this.cpus,
      spis: this.spis,
      distributorEnabled: this.distributorEnabled,
      enabled: pairs(this.enabled, this.privateEnabled),
      pendingLatch: pairs(this.pendingLatch, this.privatePendingLatch),
      level: pairs(this.level, this.privateLevel),
      active: pairs(this.active, this.privateActive),
      priority: pairs(this.priority, this.privatePriority),
      edge: pairs(this.edge, this.privateEdge),
      targets: pairs(this.targets, null),
      sgiSources: Array.from(this.sgiSources),
      cpuControl: Array.from(this.cpuControl),
      priorityMask: Array.from(this.priorityMask),
      binaryPoint: Array.from(this.binaryPoint),
      activePriorities: Array.from(this.activePriorities),
    };
  }

  fromState(state: GicV2State): void {
    if (state === null || typeof state !== "object" || state.kind !== "gic-v2")
      throw new GicV2Error('not a GICv2 state (kind must be "gic-v2")');
    if (state.version !== 1)
      throw new GicV2Error(`GICv2 state version ${state.version} is not supported (expected 1)`);
    if (state.cpus !== this.cpus || state.spis !== this.spis)
      throw new GicV2Error(
        `GICv2 state is for ${state.cpus} CPUs and ${state.spis} SPIs; this GIC has ${this.cpus} and ${this.spis}`,
      );
    const perCpu = (name: keyof GicV2State, length: number): readonly number[] => {
      const value = state[name];
      if (!Array.isArray(value) || value.length !== length)
        throw new GicV2Error(`GICv2 state field ${name} must be ${length} numbers`);
      return value;
    };
    const load = (name: keyof GicV2State, shared: Uint8Array, banked: Uint8Array | null) => {
      const value = state[name];
      if (!Array.isArray(value) || value.length % 2 !== 0)
        throw new GicV2Error(`GICv2 state field ${name} must be [index, value] pairs`);
      shared.fill(0);
      banked?.fill(0);
      for (let i = 0; i < value.length; i += 2) {
        const index = value[i];
        const content = value[i + 1] & 0xff;
        if (index >= PRIVATE && index < this.interruptCount) shared[index] = content;
        else if (
          banked &&
          index >= 1024 &&
          index < 1024 * (this.cpus + 1) &&
          index % 1024 < PRIVATE
        )
          banked[(Math.floor(index / 1024) - 1) * PRIVATE + (index % 1024)] = content;
        else
          throw new GicV2Error(
            `GICv2 state field ${name} names index ${index}, which does not exist`,
          );
      }
    };
    const sgiSources = perCpu("sgiSources", this.cpus * 16);
    const cpuControl = perCpu("cpuControl", this.cpus);
    const priorityMask = perCpu("priorityMask", this.cpus);
    const binaryPoint = perCpu("binaryPoint", this.cpus);
    const activePriorities = perCpu("activePriorities", this.cpus);
    load("enabled", this.enabled, this.privateEnabled);
    load("pendingLatch", this.pendingLatch, this.privatePendingLatch);
    load("level", this.level, this.privateLevel);
    load("active", this.active, this.privateActive);
    load("priority", this.priority, this.privatePriority);
    load("edge", this.edge, this.privateEdge);
    load("targets", this.targets, null);
    this.distributorEnabled = state.distributorEnabled === true;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      this.cpuControl[cpu] = cpuControl[cpu] & 0x3ff;
      this.priorityMask[cpu] = priorityMask[cpu] & PRIORITY_MASK;
      this.binaryPoint[cpu] = Math.max(binaryPoint[cpu] & 7, MINIMUM_BINARY_POINT);
      this.activePriorities[cpu] = activePriorities[cpu] >>> 0;
      for (let sgi = 0; sgi < 16; sgi++) {
        this.sgiSources[cpu * 16 + sgi] = sgiSources[cpu * 16 + sgi] & 0xff;
        this.privateEdge[cpu * PRIVATE + sgi] = 1;
      }
    }
    this.update();
  }
}
