/**
 * The local APIC of one x86 processor in xAPIC mode (Intel SDM vol. 3A
 * ch. 11 "Advanced Programmable Interrupt Controller", ch. 10 in older
 * editions): the memory-mapped register page, interrupt acceptance and
 * priority (IRR/ISR/TMR, TPR/PPR, EOI), the timer, the LVT and the ICR.
 *
 * Bus-agnostic in the vm-superio shape (docs/style.md): the VMM maps
 * `read`/`write` at the APIC base (an `MmioHandler` of `@kumo/mmu`), gives
 * the CPU the APIC as its interrupt source (`hasPending`/`acknowledge`,
 * structurally the `InterruptSource` of `@kumo/abi`), and supplies time
 * through an injected clock so that the same model runs on a virtual
 * (instruction-counted) or a wall clock. Nothing here throws for anything a
 * guest does: unknown registers read 0 and ignore writes (and latch
 * "illegal register address" in the ESR), as the chip does.
 *
 * Not modelled: x2APIC (MSR access), the CMCI LVT (max LVT is 5, so the
 * register at 0x2F0 is absent, as on a Pentium 4), lowest-priority
 * arbitration between several APICs, and ExtINT delivery through LINT0
 * (needs an 8259 to acknowledge; recorded for the PIC model).
 */
import type { MmioHandler } from "@kumo/mmu";

/** The architectural default physical base of the xAPIC page (SDM vol. 3A 11.4.1). */
export const LOCAL_APIC_DEFAULT_BASE = 0xfee00000;
/** The register page is 4 KiB. */
export const LOCAL_APIC_SIZE = 0x1000;

/** Register offsets in the xAPIC page (SDM vol. 3A table 11-1). */
export const LocalApicRegister = {
  Id: 0x020,
  Version: 0x030,
  Tpr: 0x080,
  Apr: 0x090,
  Ppr: 0x0a0,
  Eoi: 0x0b0,
  Rrd: 0x0c0,
  Ldr: 0x0d0,
  Dfr: 0x0e0,
  Svr: 0x0f0,
  Isr: 0x100,
  Tmr: 0x180,
  Irr: 0x200,
  Esr: 0x280,
  IcrLow: 0x300,
  IcrHigh: 0x310,
  LvtTimer: 0x320,
  LvtThermal: 0x330,
  LvtPerformance: 0x340,
  LvtLint0: 0x350,
  LvtLint1: 0x360,
  LvtError: 0x370,
  TimerInitialCount: 0x380,
  TimerCurrentCount: 0x390,
  TimerDivideConfig: 0x3e0,
} as const;

/** Index of each LVT entry in `LocalApicState.lvt`. */
export const LvtIndex = {
  Timer: 0,
  Thermal: 1,
  Performance: 2,
  Lint0: 3,
  Lint1: 4,
  Error: 5,
} as const;

/** ICR / LVT delivery modes, bits 10:8 (SDM vol. 3A 11.6.1). */
export const DeliveryMode = {
  Fixed: 0,
  LowestPriority: 1,
  Smi: 2,
  Nmi: 4,
  Init: 5,
  StartUp: 6,
  ExtInt: 7,
} as const;

/** ESR bits (SDM vol. 3A 11.5.3). */
export const ApicError = {
  SendIllegalVector: 1 << 5,
  ReceiveIllegalVector: 1 << 6,
  IllegalRegisterAddress: 1 << 7,
} as const;

/** Version register: version 0x14 (integrated xAPIC), max LVT entry 5 (six LVTs), like Xen's vlapic. */
const VERSION = 0x00050014;
const LVT_MASKED = 1 << 16;
const LVT_DELIVERY_STATUS = 1 << 12;
const LVT_REMOTE_IRR = 1 << 14;
const SVR_ENABLE = 1 << 8;
const SVR_FOCUS_DISABLE = 1 << 9;
/** Timer modes, LVT timer bits 18:17 (SDM vol. 3A 11.5.4.1); 0 is one-shot. */
const TIMER_PERIODIC = 1;
const TIMER_TSC_DEADLINE = 2;

/** Writable bits of each LVT entry (SDM vol. 3A figure 11-8), TSC-deadline mode bit added when advertised. */
const LVT_WRITABLE = [
  0x000700ff, // timer: vector, mask, mode bits 18:17 (bit 18 cleared below without TSC deadline)
  0x000107ff, // thermal: vector, delivery mode, mask
  0x000107ff, // performance counters
  0x0001a7ff, // LINT0: vector, delivery mode, polarity, trigger, mask
  0x0001a7ff, // LINT1
  0x000100ff, // error: vector, mask
] as const;

/** An IPI the APIC could not deliver to itself: for a VMM with more processors, or INIT/SIPI/NMI. */
export interface LocalApicIpi {
  /** `DeliveryMode` (ICR bits 10:8). */
  deliveryMode: number;
  vector: number;
  /** ICR destination shorthand, bits 19:18: 0 none, 1 self, 2 all including self, 3 all excluding self. */
  shorthand: number;
  /** ICR high bits 31:24 (physical APIC ID or logical mask). */
  destination: number;
  /** ICR bit 11: logical destination mode. */
  logical: boolean;
  /** ICR bit 15: level-triggered. */
  level: boolean;
  /** ICR bit 14: assert (1) or de-assert (0), meaningful for INIT level de-assert. */
  assert: boolean;
}

/** Time for the APIC timer, from the VMM's clock (virtual or wall). */
export interface LocalApicClock {
  /** Current time in nanoseconds (monotonic, same timebase as `schedule`). */
  now(): number;
  /**
   * Asks the VMM to call `LocalApic.timerExpired()` once `now()` reaches
   * `deadline` (ns). `Infinity` cancels. Each call replaces the previous one.
   */
  schedule(deadline: number): void;
}

export interface LocalApicOptions {
  clock: LocalApicClock;
  /** The APIC ID (bits 31:24 of the ID register); default 0. */
  apicId?: number;
  /**
   * Called whenever `hasPending()` may have become true, so that the VMM
   * wakes the processor (for example `vcpu.notifyInterrupt()`).
   */
  interrupt?: () => void;
  /** EOI of a level-triggered vector (TMR set): the VMM forwards it to the I/O APIC. */
  eoi?: (vector: number) => void;
  /** An IPI that is not a fixed IPI to this APIC itself (INIT, SIPI, NMI, other destinations). */
  ipi?: (ipi: LocalApicIpi) => void;
  /**
   * Nanoseconds per timer tick before the divider; default 1 (a 1 GHz bus,
   * as Xen's vlapic APIC_BUS_CYCLE_NS).
   */
  nsPerTick?: number;
  /**
   * Enables the TSC-deadline timer mode (SDM vol. 3A 11.5.4.1) with a TSC
   * of this frequency in Hz, counted in the clock's timebase (TSC = now() *
   * tscHz / 1e9). The VMM must advertise CPUID.1:ECX[24] and route MSR
   * IA32_TSC_DEADLINE (0x6E0) to `readTscDeadline`/`writeTscDeadline`.
   */
  tscDeadlineHz?: number;
}

/** The saved state: named, versioned, plain (structured-cloneable, JSON-safe). */
export interface LocalApicState {
  readonly kind: "local-apic";
  readonly version: 1;
  readonly id: number;
  readonly tpr: number;
  readonly ldr: number;
  readonly dfr: number;
  readonly svr: number;
  readonly isr: readonly number[];
  readonly tmr: readonly number[];
  readonly irr: readonly number[];
  /** ESR as the guest reads it, and errors accumulated since the last ESR write. */
  readonly esr: number;
  readonly esrPending: number;
  readonly icrLow: number;
  readonly icrHigh: number;
  readonly lvt: readonly number[];
  readonly timerInitialCount: number;
  readonly timerDivideConfig: number;
  /** Clock time (ns) the current count period started, and the next expiry; -1 when stopped (JSON has no Infinity). */
  readonly timerStart: number;
  readonly timerDeadline: number;
  /** IA32_TSC_DEADLINE in TSC ticks (0 = disarmed). */
  readonly tscDeadline: number;
}

/** A saved state that `fromState` cannot use: a host-side mistake, reported with what was wrong. */
export class LocalApicStateError extends Error {
  override name = "LocalApicStateError";
}

/** Index of the highest set bit of a 256-bit register held as 8 x 32, or -1. */
function highestBit(register: Uint32Array): number {
  for (let i = 7; i >= 0; i--) {
    const word = register[i];
    if (word !== 0) return i * 32 + 31 - Math.clz32(word);
  }
  return -1;
}

export class LocalApic implements MmioHandler {
  private readonly clock: LocalApicClock;
  private readonly notify: (() => void) | undefined;
  private readonly onEoi: ((vector: number) => void) | undefined;
  private readonly onIpi: ((ipi: LocalApicIpi) => void) | undefined;
  private readonly nsPerTick: number;
  private readonly tscDeadlineHz: number;

  private id = 0;
  private tpr = 0;
  private ldr = 0;
  private dfr = 0xffffffff;
  private svr = 0xff;
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  private readonly irr = new Uint32Array(8);
  private esr = 0;
  private esrPending = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(6);
  private timerInitialCount = 0;
  private timerDivideConfig = 0;
  private timerStart = Number.POSITIVE_INFINITY;
  private timerDeadline = Number.POSITIVE_INFINITY;
  private tscDeadline = 0;
  /** Highest vector the CPU would take now, or -1: kept current so `hasPending` is one compare. */
  private pendingVector = -1;

  constructor(options: LocalApicOptions) {
    this.clock = options.clock;
    this.notify = options.interrupt;
    this.onEoi = options.eoi;
    this.onIpi = options.ipi;
    this.nsPerTick = options.nsPerTick ?? 1;
    this.tscDeadlineHz = options.tscDeadlineHz ?? 0;
    if (!(this.nsPerTick > 0))
      throw new RangeError(`nsPerTick must be positive, got ${this.nsPerTick}`);
    this.reset(options.apicId ?? 0);
  }

  /**
   * Power-up / RESET state (SDM vol. 3A 11.4.7.1): IRR/ISR/TMR, ICR, LDR,
   * TPR, timer registers and divide configuration zero, DFR all ones, LVTs
   * masked, SVR 0xFF (software disabled). The APIC ID survives INIT.
   */
  reset(apicId = this.id >>> 24): void {
    this.id = (apicId & 0xff) << 24;
    this.tpr = 0;
    this.ldr = 0;
    this.dfr = 0xffffffff;
    this.svr = 0xff;
    this.isr.fill(0);
    this.tmr.fill(0);
    this.irr.fill(0);
    this.esr = 0;
    this.esrPending = 0;
    this.icrLow = 0;
    this.icrHigh = 0;
    this.lvt.fill(LVT_MASKED);
    this.timerInitialCount = 0;
    this.timerDivideConfig = 0;
    this.tscDeadline = 0;
    this.stopTimer();
    this.pendingVector = -1;
  }

  /** The APIC ID (ID register bits 31:24). */
  get apicId(): number {
    return this.id >>> 24;
  }

  /** SVR bit 8: the guest enabled the APIC in software. */
  get softwareEnabled(): boolean {
    return (this.svr & SVR_ENABLE) !== 0;
  }

  // ---------------------------------------------------------------------
  // Interrupt source for the CPU (hot: no allocation).

  /** True when an accepted vector outranks the processor priority (SDM vol. 3A 11.8.3.1). */
  hasPending(): boolean {
    return this.pendingVector >= 0;
  }

  /**
   * The CPU takes the interrupt: the highest deliverable IRR vector moves to
   * the ISR (SDM vol. 3A 11.8.4). Returns -1 if nothing is deliverable.
   */
  acknowledge(): number {
    const vector = this.pendingVector;
    if (vector < 0) return -1;
    const word = vector >>> 5;
    const bit = 1 << (vector & 31);
    this.irr[word] &= ~bit;
    this.isr[word] |= bit;
    this.update();
    return vector;
  }

  /**
   * An interrupt message arrives for this APIC (fixed delivery from an I/O
   * APIC, an MSI or an IPI). Vectors 0-15 are illegal: the APIC refuses
   * them and latches "receive illegal vector" (SDM vol. 3A 11.5.3).
   */
  acceptInterrupt(vector: number, level = false): void {
    vector &= 0xff;
    if (vector < 16) {
      this.signalError(ApicError.ReceiveIllegalVector);
      return;
    }
    const word = vector >>> 5;
    const bit = 1 << (vector & 31);
    this.irr[word] |= bit;
    // TMR records the trigger mode when the vector is accepted (SDM vol. 3A 11.8.4).
    if (level) this.tmr[word] |= bit;
    else this.tmr[word] &= ~bit;
    this.update();
  }

  /**
   * A level change on LINT0/LINT1 (`pin` 0 or 1). Fixed mode delivers the
   * LVT vector on assertion (edge) or while asserted (level, until EOI
   * clears remote IRR); NMI goes out through the `ipi` callback as an NMI
   * to self. ExtINT needs an 8259 and is not modelled yet.
   */
  setLint(pin: 0 | 1, asserted: boolean): void {
    const index = pin === 0 ? LvtIndex.Lint0 : LvtIndex.Lint1;
    const entry = this.lvt[index];
    if (!asserted || entry & LVT_MASKED) return;
    const mode = (entry >>> 8) & 7;
    const level = (entry & (1 << 15)) !== 0;
    if (mode === DeliveryMode.Fixed) {
      if (level) {
        if (entry & LVT_REMOTE_IRR) return;
        this.lvt[index] = entry | LVT_REMOTE_IRR;
      }
      this.acceptInterrupt(entry & 0xff, level);
    } else if (mode === DeliveryMode.Nmi) {
      this.sendIpi(DeliveryMode.Nmi, 0, 1, this.apicId, false, false, true);
    }
  }

  // ---------------------------------------------------------------------
  // MMIO

  /**
   * Reads `size` bytes at `offset` in the register page. Registers sit on
   * 16-byte boundaries and are 32 bits wide (SDM vol. 3A 11.4.1); narrower
   * reads return the addressed bytes of the register, as Xen's vlapic does,
   * and bytes 4-15 of each slot read 0.
   */
  read(offset: number, size: 1 | 2 | 4): number {
    offset &= LOCAL_APIC_SIZE - 1;
    const shift = (offset & 3) * 8;
    if ((offset & 0xf) + size > 4) return 0;
    const value = this.readRegister(offset & 0xff0) >>> shift;
    return size === 4 ? value >>> 0 : value & (size === 1 ? 0xff : 0xffff);
  }

  /**
   * Writes `size` bytes at `offset`. A narrower write is merged into the
   * register's current value (Xen vlapic_mmio_write does the same for the
   * OSes that do byte writes); writes to bytes 4-15 of a slot are dropped.
   */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    offset &= LOCAL_APIC_SIZE - 1;
    if ((offset & 0xf) + size > 4) return;
    const register = offset & 0xff0;
    if (size !== 4) {
      const shift = (offset & 3) * 8;
      const mask = (size === 1 ? 0xff : 0xffff) << shift;
      // EOI and ESR have side effects on write whatever the value; others merge.
      const current = register === LocalApicRegister.Eoi ? 0 : this.readRegister(register);
      value = (current & ~mask) | ((value << shift) & mask);
    }
    this.writeRegister(register, value | 0);
  }

  private readRegister(register: number): number {
    switch (register) {
      case LocalApicRegister.Id:
        return this.id;
      case LocalApicRegister.Version:
        return VERSION;
      case LocalApicRegister.Tpr:
        return this.tpr;
      case LocalApicRegister.Apr:
        // Arbitration priority: only meaningful on the P6 bus; read as 0 (Xen does the same for lowest-priority-free setups).
        return 0;
      case LocalApicRegister.Ppr:
        return this.processorPriority();
      case LocalApicRegister.Eoi:
        return 0;
      case LocalApicRegister.Rrd:
        return 0;
      case LocalApicRegister.Ldr:
        return this.ldr;
      case LocalApicRegister.Dfr:
        return this.dfr;
      case LocalApicRegister.Svr:
        return this.svr;
      case LocalApicRegister.Esr:
        return this.esr;
      case LocalApicRegister.IcrLow:
        // Delivery status (bit 12) is always idle: IPIs are delivered synchronously.
        return this.icrLow;
      case LocalApicRegister.IcrHigh:
        return this.icrHigh;
      case LocalApicRegister.LvtTimer:
      case LocalApicRegister.LvtThermal:
      case LocalApicRegister.LvtPerformance:
      case LocalApicRegister.LvtLint0:
      case LocalApicRegister.LvtLint1:
      case LocalApicRegister.LvtError:
        return this.lvt[(register - LocalApicRegister.LvtTimer) >>> 4];
      case LocalApicRegister.TimerInitialCount:
        return this.timerInitialCount;
      case LocalApicRegister.TimerCurrentCount:
        return this.currentCount();
      case LocalApicRegister.TimerDivideConfig:
        return this.timerDivideConfig;
      default:
        if (register >= LocalApicRegister.Isr && register < LocalApicRegister.Esr) {
          const index = (register - LocalApicRegister.Isr) >>> 4;
          const bank = index >>> 3;
          const register32 = bank === 0 ? this.isr : bank === 1 ? this.tmr : this.irr;
          return register32[index & 7];
        }
        this.signalError(ApicError.IllegalRegisterAddress);
        return 0;
    }
  }

  private writeRegister(register: number, value: number): void {
    switch (register) {
      case LocalApicRegister.Id:
        // Writable in xAPIC mode on P6/Pentium 4 (SDM vol. 3A 11.4.6); Linux never writes it.
        this.id = value & 0xff000000;
        return;
      case LocalApicRegister.Tpr:
        this.tpr = value & 0xff;
        this.update();
        return;
      case LocalApicRegister.Eoi:
        this.endOfInterrupt();
        return;
      case LocalApicRegister.Ldr:
        this.ldr = value & 0xff000000;
        return;
      case LocalApicRegister.Dfr:
        // Model in bits 31:28 (flat 1111b, cluster 0000b); bits 27:0 read as ones.
        this.dfr = (value | 0x0fffffff) >>> 0;
        return;
      case LocalApicRegister.Svr:
        this.writeSvr(value);
        return;
      case LocalApicRegister.Esr:
        // A write latches the errors seen since the last write into the readable ESR (SDM vol. 3A 11.5.3).
        this.esr = this.esrPending;
        this.esrPending = 0;
        return;
      case LocalApicRegister.IcrLow:
        this.icrLow = value & 0x000ccfff;
        this.sendIcr();
        return;
      case LocalApicRegister.IcrHigh:
        this.icrHigh = value & 0xff000000;
        return;
      case LocalApicRegister.LvtTimer:
      case LocalApicRegister.LvtThermal:
      case LocalApicRegister.LvtPerformance:
      case LocalApicRegister.LvtLint0:
      case LocalApicRegister.LvtLint1:
      case LocalApicRegister.LvtError:
        this.writeLvt((register - LocalApicRegister.LvtTimer) >>> 4, value);
        return;
      case LocalApicRegister.TimerInitialCount:
        this.writeInitialCount(value >>> 0);
        return;
      case LocalApicRegister.TimerDivideConfig:
        this.writeDivideConfig(value & 0xb);
        return;
      case LocalApicRegister.Version:
      case LocalApicRegister.Apr:
      case LocalApicRegister.Ppr:
      case LocalApicRegister.Rrd:
      case LocalApicRegister.TimerCurrentCount:
        // Read-only: writes are ignored.
        return;
      default:
        if (register >= LocalApicRegister.Isr && register < LocalApicRegister.Esr) return;
        this.signalError(ApicError.IllegalRegisterAddress);
        return;
    }
  }

  // ---------------------------------------------------------------------
  // Priority and EOI (SDM vol. 3A 11.8.3)

  /** PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] << 4 (SDM vol. 3A 11.8.3.1). */
  private processorPriority(): number {
    const isrv = highestBit(this.isr);
    const inService = isrv < 0 ? 0 : isrv & 0xf0;
    return (this.tpr & 0xf0) >= inService ? this.tpr : inService;
  }

  /** Recomputes the deliverable vector; tells the VMM when one appears. */
  private update(): void {
    const before = this.pendingVector;
    let vector = -1;
    if (this.svr & SVR_ENABLE) {
      const highest = highestBit(this.irr);
      if (highest >= 0 && (highest & 0xf0) > (this.processorPriority() & 0xf0)) vector = highest;
    }
    this.pendingVector = vector;
    if (vector >= 0 && vector !== before) this.notify?.();
  }

  /** EOI: clears the highest ISR bit; a level-triggered vector is broadcast to the I/O APICs (SDM vol. 3A 11.8.5). */
  private endOfInterrupt(): void {
    const vector = highestBit(this.isr);
    if (vector < 0) return;
    const word = vector >>> 5;
    const bit = 1 << (vector & 31);
    this.isr[word] &= ~bit;
    if (this.tmr[word] & bit) {
      this.tmr[word] &= ~bit;
      // A level LINT input delivered in fixed mode keeps remote IRR until its EOI.
      for (let index: number = LvtIndex.Lint0; index <= LvtIndex.Lint1; index++) {
        const entry = this.lvt[index];
        if ((entry & 0xff) === vector && entry & LVT_REMOTE_IRR)
          this.lvt[index] = entry & ~LVT_REMOTE_IRR;
      }
      this.onEoi?.(vector);
    }
    this.update();
  }

  private writeSvr(value: number): void {
    // Bits 0-7 vector, 8 APIC software enable, 9 focus processor checking (SDM vol. 3A figure 11-23).
    // Bit 12 (EOI-broadcast suppression) stays 0: the version register does not advertise it.
    this.svr = value & (0xff | SVR_ENABLE | SVR_FOCUS_DISABLE);
    if (!(this.svr & SVR_ENABLE)) {
      // Software disable masks every LVT and keeps them masked (SDM vol. 3A 11.4.7.2).
      for (let i = 0; i < 6; i++) this.lvt[i] |= LVT_MASKED;
    }
    this.update();
  }

  private writeLvt(index: number, value: number): void {
    let writable: number = LVT_WRITABLE[index];
    if (index === LvtIndex.Timer && this.tscDeadlineHz === 0) writable &= ~(1 << 18);
    // Delivery status and remote IRR are read-only; keep remote IRR across writes.
    let entry = (value & writable) | (this.lvt[index] & (LVT_REMOTE_IRR | LVT_DELIVERY_STATUS));
    if (!(this.svr & SVR_ENABLE)) entry |= LVT_MASKED;
    if (index === LvtIndex.Timer) {
      const oldMode = (this.lvt[index] >>> 17) & 3;
      const newMode = (entry >>> 17) & 3;
      this.lvt[index] = entry;
      // A write that changes the timer mode disarms the timer (SDM vol. 3A 11.5.4.1).
      if (oldMode !== newMode) {
        this.timerInitialCount = 0;
        this.tscDeadline = 0;
        this.stopTimer();
      }
      return;
    }
    this.lvt[index] = entry;
  }

  private signalError(bits: number): void {
    const before = this.esrPending;
    this.esrPending |= bits;
    if (before === this.esrPending) return;
    const entry = this.lvt[LvtIndex.Error];
    if (!(entry & LVT_MASKED)) this.acceptInterrupt(entry & 0xff, false);
  }

  // ---------------------------------------------------------------------
  // ICR (SDM vol. 3A 11.6.1)

  private sendIcr(): void {
    const low = this.icrLow;
    this.sendIpi(
      (low >>> 8) & 7,
      low & 0xff,
      (low >>> 18) & 3,
      this.icrHigh >>> 24,
      (low & (1 << 11)) !== 0,
      (low & (1 << 15)) !== 0,
      (low & (1 << 14)) !== 0,
    );
  }

  private sendIpi(
    deliveryMode: number,
    vector: number,
    shorthand: number,
    destination: number,
    logical: boolean,
    level: boolean,
    assert: boolean,
  ): void {
    const fixed =
      deliveryMode === DeliveryMode.Fixed || deliveryMode === DeliveryMode.LowestPriority;
    if (fixed && vector < 16) {
      // Sending an illegal vector is refused at the source (SDM vol. 3A 11.5.3).
      this.signalError(ApicError.SendIllegalVector);
      return;
    }
    const self =
      shorthand === 1 ||
      shorthand === 2 ||
      (shorthand === 0 && this.matchesDestination(destination, logical));
    if (fixed && self) this.acceptInterrupt(vector, false);
    // Anything else (other processors, INIT/SIPI/NMI/SMI) is for the VMM.
    const othersToo =
      shorthand === 2 || shorthand === 3 || (shorthand === 0 && destination === 0xff);
    if (!fixed || !self || othersToo) {
      this.onIpi?.({ deliveryMode, vector, shorthand, destination, logical, level, assert });
    }
  }

  /** Physical: APIC ID or broadcast 0xFF. Logical: flat model ANDs the LDR; cluster compares cluster and ANDs members (SDM vol. 3A 11.6.2). */
  private matchesDestination(destination: number, logical: boolean): boolean {
    if (!logical) return destination === 0xff || destination === this.id >>> 24;
    const ldr = this.ldr >>> 24;
    if (this.dfr >>> 28 === 0xf) return (ldr & destination) !== 0;
    if (destination === 0xff) return true;
    return ldr >>> 4 === destination >>> 4 && (ldr & destination & 0xf) !== 0;
  }

  // ---------------------------------------------------------------------
  // Timer (SDM vol. 3A 11.5.4)

  private timerMode(): number {
    return (this.lvt[LvtIndex.Timer] >>> 17) & 3;
  }

  /** Divide configuration bits 0, 1, 3: 0b111 is divide by 1, else 2 << value (SDM vol. 3A figure 11-10). */
  private divisor(): number {
    const value = (this.timerDivideConfig & 3) | ((this.timerDivideConfig >>> 1) & 4);
    return value === 7 ? 1 : 2 << value;
  }

  private tickNs(): number {
    return this.divisor() * this.nsPerTick;
  }

  private stopTimer(): void {
    this.timerStart = Number.POSITIVE_INFINITY;
    if (this.timerDeadline !== Number.POSITIVE_INFINITY) {
      this.timerDeadline = Number.POSITIVE_INFINITY;
      this.clock.schedule(Number.POSITIVE_INFINITY);
    }
  }

  private writeInitialCount(count: number): void {
    // In TSC-deadline mode the initial count is ignored (SDM vol. 3A 11.5.4.1).
    if (this.timerMode() === TIMER_TSC_DEADLINE) return;
    this.timerInitialCount = count;
    if (count === 0) {
      this.stopTimer();
      return;
    }
    const now = this.clock.now();
    this.timerStart = now;
    this.armAt(now + count * this.tickNs());
  }

  private writeDivideConfig(value: number): void {
    if (value === this.timerDivideConfig) return;
    const running =
      this.timerStart !== Number.POSITIVE_INFINITY && this.timerMode() !== TIMER_TSC_DEADLINE;
    const remaining = running ? this.currentCount() : 0;
    this.timerDivideConfig = value;
    if (!running) return;
    // Keep counting down from the current count at the new rate (as Xen's vlapic does on a DCR write).
    const now = this.clock.now();
    const tick = this.tickNs();
    this.timerStart = now - (this.timerInitialCount - remaining) * tick;
    this.armAt(now + remaining * tick);
  }

  private armAt(deadline: number): void {
    this.timerDeadline = deadline;
    this.clock.schedule(deadline);
  }

  /** Current count: counts down from the initial count, reloads in periodic mode, stays 0 after a one-shot. */
  private currentCount(): number {
    if (this.timerStart === Number.POSITIVE_INFINITY || this.timerMode() === TIMER_TSC_DEADLINE)
      return 0;
    const initial = this.timerInitialCount;
    let ticks = Math.floor((this.clock.now() - this.timerStart) / this.tickNs());
    if (ticks < 0) ticks = 0;
    if (this.timerMode() === TIMER_PERIODIC) ticks %= initial;
    else if (ticks >= initial) return 0;
    return initial - ticks;
  }

  /**
   * The VMM calls this when the time asked through `clock.schedule` has
   * come (calling it early or twice is harmless). Fires the timer LVT
   * (unless masked: the count still runs down, SDM vol. 3A 11.5.4) and
   * re-arms a periodic timer; missed periods collapse into one interrupt,
   * as a real APIC's IRR can hold only one.
   */
  timerExpired(): void {
    const deadline = this.timerDeadline;
    if (deadline === Number.POSITIVE_INFINITY) return;
    const now = this.clock.now();
    if (now < deadline) {
      this.clock.schedule(deadline);
      return;
    }
    const entry = this.lvt[LvtIndex.Timer];
    const mode = (entry >>> 17) & 3;
    if (mode === TIMER_PERIODIC && this.timerInitialCount !== 0) {
      const period = this.timerInitialCount * this.tickNs();
      const periods = Math.floor((now - this.timerStart) / period);
      this.timerStart += periods * period;
      this.armAt(this.timerStart + period);
    } else {
      if (mode === TIMER_TSC_DEADLINE) this.tscDeadline = 0;
      this.stopTimer();
    }
    if (!(entry & LVT_MASKED)) this.acceptInterrupt(entry & 0xff, false);
  }

  /** IA32_TSC_DEADLINE (MSR 0x6E0) as the VMM's RDMSR sees it: 0 outside TSC-deadline mode (SDM vol. 3A 11.5.4.1). */
  readTscDeadline(): number {
    return this.timerMode() === TIMER_TSC_DEADLINE ? this.tscDeadline : 0;
  }

  /** WRMSR IA32_TSC_DEADLINE: arms (or with 0 disarms) the timer; ignored outside TSC-deadline mode. */
  writeTscDeadline(tsc: number): void {
    if (this.tscDeadlineHz === 0 || this.timerMode() !== TIMER_TSC_DEADLINE) return;
    this.tscDeadline = tsc;
    if (tsc === 0) {
      this.stopTimer();
      return;
    }
    // A deadline in the past fires at once (the next timerExpired call sees now >= deadline).
    this.timerStart = this.clock.now();
    this.armAt((tsc * 1e9) / this.tscDeadlineHz);
  }

  // ---------------------------------------------------------------------
  // Save and restore

  state(): LocalApicState {
    return {
      kind: "local-apic",
      version: 1,
      id: this.id >>> 0,
      tpr: this.tpr,
      ldr: this.ldr >>> 0,
      dfr: this.dfr >>> 0,
      svr: this.svr,
      isr: Array.from(this.isr),
      tmr: Array.from(this.tmr),
      irr: Array.from(this.irr),
      esr: this.esr,
      esrPending: this.esrPending,
      icrLow: this.icrLow,
      icrHigh: this.icrHigh >>> 0,
      lvt: Array.from(this.lvt),
      timerInitialCount: this.timerInitialCount,
      timerDivideConfig: this.timerDivideConfig,
      timerStart: Number.isFinite(this.timerStart) ? this.timerStart : -1,
      timerDeadline: Number.isFinite(this.timerDeadline) ? this.timerDeadline : -1,
      tscDeadline: this.tscDeadline,
    };
  }

  /** Restores a saved state (same clock timebase) and re-asks the clock for a pending timer. */
  fromState(state: LocalApicState): void {
    if (state === null || typeof state !== "object" || state.kind !== "local-apic") {
      throw new LocalApicStateError('not a local APIC state (kind must be "local-apic")');
    }
    if (state.version !== 1) {
      throw new LocalApicStateError(
        `local APIC state version ${state.version} is not supported (expected 1)`,
      );
    }
    for (const name of ["isr", "tmr", "irr"] as const) {
      if (!Array.isArray(state[name]) || state[name].length !== 8)
        throw new LocalApicStateError(`local APIC state field ${name} must be 8 numbers`);
    }
    if (!Array.isArray(state.lvt) || state.lvt.length !== 6)
      throw new LocalApicStateError("local APIC state field lvt must be 6 numbers");
    this.id = state.id & 0xff000000;
    this.tpr = state.tpr & 0xff;
    this.ldr = state.ldr & 0xff000000;
    this.dfr = (state.dfr | 0x0fffffff) >>> 0;
    this.svr = state.svr & (0xff | SVR_ENABLE | SVR_FOCUS_DISABLE);
    this.isr.set(state.isr);
    this.tmr.set(state.tmr);
    this.irr.set(state.irr);
    this.esr = state.esr & 0xff;
    this.esrPending = state.esrPending & 0xff;
    this.icrLow = state.icrLow & 0x000ccfff;
    this.icrHigh = state.icrHigh & 0xff000000;
    this.lvt.set(state.lvt);
    this.timerInitialCount = state.timerInitialCount >>> 0;
    this.timerDivideConfig = state.timerDivideConfig & 0xb;
    this.timerStart = state.timerStart < 0 ? Number.POSITIVE_INFINITY : state.timerStart;
    this.timerDeadline = state.timerDeadline < 0 ? Number.POSITIVE_INFINITY : state.timerDeadline;
    this.tscDeadline = state.tscDeadline;
    this.clock.schedule(this.timerDeadline);
    this.pendingVector = -1;
    this.update();
  }
}
