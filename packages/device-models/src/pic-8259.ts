/**
 * The PC's cascaded pair of 8259A programmable interrupt controllers
 * (Intel 8259A datasheet, order 231468; master at ports 0x20-0x21 with the
 * slave on its IR2, slave at 0xA0-0xA1), with the PIIX/ICH edge/level
 * control registers (ELCR, ports 0x4D0-0x4D1).
 *
 * Modelled: the ICW1-ICW4 initialization sequence, OCW1 (mask), OCW2
 * (non-specific, specific and rotating EOI, set priority, rotate in
 * automatic EOI), OCW3 (read IRR/ISR, poll, special mask mode), automatic
 * EOI, fully nested priority with rotation, edge and level triggering (from
 * the ELCR; ICW1.LTIM is ignored, as on PIIX), and the spurious IR7/IR15
 * answer when a request vanishes before the acknowledge. Not modelled:
 * special fully nested mode (stored, ignored), buffered mode, the 8080/85
 * call format.
 *
 * Bus-agnostic (docs/style.md): `master`, `slave` and `elcr` are two-byte
 * register windows the VMM maps at its ports; interrupt lines come in
 * through `setIrq`; the INTR output goes out through `interrupt(asserted)`
 * and the CPU (directly or through a local APIC's ExtINT LINT0) takes the
 * vector with `acknowledge()`.
 */

/** One 8259A: the state of the datasheet's registers. */
interface Chip {
  irr: number;
  isr: number;
  imr: number;
  /** Line levels seen last, for edge detection. */
  lines: number;
  elcr: number;
  /** The IR with the highest priority is `priorityBase` (rotation moves it). */
  priorityBase: number;
  vectorBase: number;
  /** Next initialization word expected: 0 none, 2 ICW2, 3 ICW3, 4 ICW4. */
  initStep: number;
  icw4Needed: boolean;
  single: boolean;
  autoEoi: boolean;
  rotateOnAutoEoi: boolean;
  specialMask: boolean;
  specialFullyNested: boolean;
  readIsr: boolean;
  poll: boolean;
}

function newChip(): Chip {
  return {
    irr: 0,
    isr: 0,
    imr: 0,
    lines: 0,
    elcr: 0,
    priorityBase: 0,
    vectorBase: 0,
    initStep: 0,
    icw4Needed: false,
    single: false,
    autoEoi: false,
    rotateOnAutoEoi: false,
    specialMask: false,
    specialFullyNested: false,
    readIsr: false,
    poll: false,
  };
}

/** ELCR bits that exist: IRQ 0, 1, 2, 8 and 13 are always edge (Intel PIIX3 datasheet 4.1.13). */
const ELCR_WRITABLE = [0xf8, 0xde] as const;

/** Priority rank (0 = highest) of the highest-priority bit in `mask`, 8 when empty. */
function highestPriority(chip: Chip, mask: number): number {
  if (mask === 0) return 8;
  let rank = 0;
  while (!(mask & (1 << ((rank + chip.priorityBase) & 7)))) rank++;
  return rank;
}

/** The IR the chip would signal now, or -1 (fully nested mode: only above what is in service). */
function pendingIr(chip: Chip): number {
  const request = highestPriority(chip, chip.irr & ~chip.imr);
  if (request === 8) return -1;
  // Special mask mode lets masked in-service levels stop blocking lower ones (8259A OCW3).
  const inService = highestPriority(chip, chip.specialMask ? chip.isr & ~chip.imr : chip.isr);
  return request < inService ? (request + chip.priorityBase) & 7 : -1;
}

function setLine(chip: Chip, ir: number, level: boolean): void {
  const bit = 1 << ir;
  if (chip.elcr & bit) {
    // Level: the request follows the line.
    if (level) chip.irr |= bit;
    else chip.irr &= ~bit;
  } else if (level && !(chip.lines & bit)) {
    // Edge: a rising edge latches the request.
    chip.irr |= bit;
  }
  if (level) chip.lines |= bit;
  else chip.lines &= ~bit;
}

/** INTA: the IR moves from IRR to ISR (or is ended at once in automatic EOI). */
function acknowledgeIr(chip: Chip, ir: number): void {
  const bit = 1 << ir;
  // An edge request is consumed; a level request stays while its line is high.
  if (!(chip.elcr & bit)) chip.irr &= ~bit;
  if (chip.autoEoi) {
    if (chip.rotateOnAutoEoi) chip.priorityBase = (ir + 1) & 7;
  } else {
    chip.isr |= bit;
  }
}

function writeCommand(chip: Chip, value: number): void {
  if (value & 0x10) {
    // ICW1: starts initialization; clears IMR and ISR, IR7 lowest, special mask off, read IRR.
    chip.icw4Needed = (value & 0x01) !== 0;
    chip.single = (value & 0x02) !== 0;
    chip.imr = 0;
    chip.isr = 0;
    chip.irr = 0;
    chip.lines = 0;
    chip.priorityBase = 0;
    chip.specialMask = false;
    chip.readIsr = false;
    chip.poll = false;
    chip.autoEoi = false;
    chip.rotateOnAutoEoi = false;
    chip.initStep = 2;
    return;
  }
  if (value & 0x08) {
    // OCW3.
    if (value & 0x04) chip.poll = true;
    if (value & 0x02) chip.readIsr = (value & 0x01) !== 0;
    if (value & 0x40) chip.specialMask = (value & 0x20) !== 0;
    return;
  }
  // OCW2: R, SL, EOI in bits 7:5, level in 2:0.
  const command = value >>> 5;
  switch (command) {
    case 0: // rotate in automatic EOI mode (clear)
    case 4: // rotate in automatic EOI mode (set)
      chip.rotateOnAutoEoi = command === 4;
      return;
    case 1: // non-specific EOI
    case 5: {
      // rotate on non-specific EOI
      const rank = highestPriority(chip, chip.isr);
      if (rank === 8) return;
      const ir = (rank + chip.priorityBase) & 7;
      chip.isr &= ~(1 << ir);
      if (command === 5) chip.priorityBase = (ir + 1) & 7;
      return;
    }
    case 3: // specific EOI
    case 7: {
      // rotate on specific EOI
      const ir = value & 7;
      chip.isr &= ~(1 << ir);
      if (command === 7) chip.priorityBase = (ir + 1) & 7;
      return;
    }
    case 6: // set priority: the given level becomes the lowest
      chip.priorityBase = ((value & 7) + 1) & 7;
      return;
    default: // 2: no operation
      return;
  }
}

function writeData(chip: Chip, value: number): void {
  switch (chip.initStep) {
    case 2:
      // ICW2: vector base (T7-T3) for x86.
      chip.vectorBase = value & 0xf8;
      chip.initStep = chip.single ? (chip.icw4Needed ? 4 : 0) : 3;
      return;
    case 3:
      // ICW3: cascade wiring; the PC's is fixed (slave on IR2), so it is only consumed.
      chip.initStep = chip.icw4Needed ? 4 : 0;
      return;
    case 4:
      // ICW4: bit 1 automatic EOI, bit 4 special fully nested (bit 0 must be 1 for x86 mode).
      chip.autoEoi = (value & 0x02) !== 0;
      chip.specialFullyNested = (value & 0x10) !== 0;
      chip.initStep = 0;
      return;
    default:
      // OCW1: the interrupt mask.
      chip.imr = value & 0xff;
  }
}

/** A two-byte register window (offset 0 or 1); wider accesses cover the next port. */
export interface PortWindow {
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

export interface PicPairOptions {
  /** The INTR output to the CPU changed level. */
  interrupt?: (asserted: boolean) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface PicPairState {
  readonly kind: "pic-8259-pair";
  readonly version: 1;
  readonly chips: readonly Readonly<Chip>[];
}

export class PicPairStateError extends Error {
  override name = "PicPairStateError";
}

export class PicPair {
  private chips: [Chip, Chip] = [newChip(), newChip()];
  private readonly notify: ((asserted: boolean) => void) | undefined;
  private output = false;
  /** Ports 0x20-0x21. */
  readonly master: PortWindow;
  /** Ports 0xA0-0xA1. */
  readonly slave: PortWindow;
  /** Ports 0x4D0-0x4D1 (ELCR1 for IRQ 0-7, ELCR2 for IRQ 8-15). */
  readonly elcr: PortWindow;

  constructor(options: PicPairOptions = {}) {
    this.notify = options.interrupt;
    this.master = this.window(
      (offset) => this.readChip(0, offset),
      (offset, value) => this.writeChip(0, offset, value),
    );
    this.slave = this.window(
      (offset) => this.readChip(1, offset),
      (offset, value) => this.writeChip(1, offset, value),
    );
    this.elcr = this.window(
      (offset) => (offset < 2 ? this.chips[offset].elcr : 0xff),
      (offset, value) => {
        if (offset > 1) return;
        const chip = this.chips[offset];
        chip.elcr = value & ELCR_WRITABLE[offset];
        this.update();
      },
    );
  }

  private window(
    read: (offset: number) => number,
    write: (offset: number, value: number) => void,
  ): PortWindow {
    return {
      read: (offset, size) => {
        let value = 0;
        for (let i = 0; i < size; i++)
          value |= (offset + i < 2 ? read(offset + i) : 0xff) << (8 * i);
        return value >>> 0;
      },
      write: (offset, size, value) => {
        for (let i = 0; i < size; i++)
          if (offset + i < 2) write(offset + i, (value >>> (8 * i)) & 0xff);
      },
    };
  }

  /** Drives ISA interrupt line `irq` (0-15; 2 is the cascade and ignored). */
  setIrq(irq: number, level: boolean): void {
    if (irq < 0 || irq > 15 || irq === 2) return;
    setLine(this.chips[irq >>> 3], irq & 7, level);
    this.update();
  }

  /** The INTR output: a request the CPU would be interrupted for. */
  hasPending(): boolean {
    return this.output;
  }

  /**
   * INTA cycle: returns the vector and puts the request in service. A
   * request that vanished answers the spurious IR7 vector (IR15 for the
   * slave) without setting ISR, as the 8259A does.
   */
  acknowledge(): number {
    const [master, slave] = this.chips;
    const ir = pendingIr(master);
    let vector: number;
    if (ir < 0) {
      vector = master.vectorBase | 7;
    } else {
      acknowledgeIr(master, ir);
      if (ir === 2) {
        const slaveIr = pendingIr(slave);
        if (slaveIr < 0) vector = slave.vectorBase | 7;
        else {
          acknowledgeIr(slave, slaveIr);
          vector = slave.vectorBase | slaveIr;
        }
      } else {
        vector = master.vectorBase | ir;
      }
    }
    this.update();
    return vector;
  }

  private readChip(index: 0 | 1, offset: number): number {
    const chip = this.chips[index];
    if (chip.poll) {
      // Poll command: the next read is an acknowledge returning 0x80 | level (8259A OCW3 "poll").
      chip.poll = false;
      const ir = pendingIr(chip);
      if (ir < 0) return 0;
      acknowledgeIr(chip, ir);
      this.update();
      return 0x80 | ir;
    }
    if (offset === 0) return chip.readIsr ? chip.isr : chip.irr;
    return chip.imr;
  }

  private writeChip(index: 0 | 1, offset: number, value: number): void {
    const chip = this.chips[index];
    if (offset === 0) writeCommand(chip, value);
    else writeData(chip, value);
    this.update();
  }

  /** Propagates the slave's output to master IR2 and the master's to INTR. */
  private update(): void {
    const [master, slave] = this.chips;
    setLine(master, 2, pendingIr(slave) >= 0);
    const output = pendingIr(master) >= 0;
    if (output === this.output) return;
    this.output = output;
    this.notify?.(output);
  }

  state(): PicPairState {
    return { kind: "pic-8259-pair", version: 1, chips: this.chips.map((chip) => ({ ...chip })) };
  }

  fromState(state: PicPairState): void {
    if (state === null || typeof state !== "object" || state.kind !== "pic-8259-pair")
      throw new PicPairStateError('not an 8259 pair state (kind must be "pic-8259-pair")');
    if (state.version !== 1)
      throw new PicPairStateError(
        `8259 pair state version ${state.version} is not supported (expected 1)`,
      );
    if (!Array.isArray(state.chips) || state.chips.length !== 2)
      throw new PicPairStateError("8259 pair state field chips must hold two chips");
    for (let i = 0; i < 2; i++) {
      const saved = state.chips[i];
      const chip = newChip();
      for (const key of Object.keys(chip) as (keyof Chip)[]) {
        if (typeof saved[key] !== typeof chip[key])
          throw new PicPairStateError(
            `8259 pair state chips[${i}].${key} must be a ${typeof chip[key]}`,
          );
        (chip as unknown as Record<string, unknown>)[key] = saved[key];
      }
      this.chips[i] = chip;
    }
    this.output = pendingIr(this.chips[0]) >= 0;
  }
}
