/**
 * The sleep control and sleep status registers of a hardware-reduced ACPI
 * platform (ACPI 6.4 sections 4.8.3.7 "Sleep Control and Status
 * Registers" and 5.2.9 FADT SLEEP_CONTROL_REG / SLEEP_STATUS_REG). Each is
 * one byte:
 * - sleep control: bits 4:2 SLP_TYPx (the value the OS read from the
 *   `\_Sx` package of the DSDT), bit 5 SLP_EN (write-only: writing 1 enters
 *   the sleep state SLP_TYP names); other bits reserved.
 * - sleep status: bit 7 WAK_STS, set by the platform when it wakes and
 *   cleared by the OS writing 1 to it; other bits reserved.
 * Linux writes WAK_STS to clear it, then SLP_TYP | SLP_EN, then polls
 * WAK_STS (drivers/acpi/acpica/hwxfsleep.c, hwesleep.c
 * acpi_hw_extended_sleep).
 *
 * Xen-agnostic: the platform's reaction to a sleep request (power off, for
 * the SLP_TYP of `\_S5`) is the `sleep` callback. Offsets follow the layout
 * of a PM1 block so a VMM can map both at one I/O base: status at 0,
 * control at 4 (Xen's ACPI_PM1A_EVT_BLK / ACPI_PM1A_CNT_BLK, public
 * hvm/ioreq.h).
 */

/** Register offsets within the device's window. */
export const AcpiSleepOffset = { STATUS: 0, CONTROL: 4 } as const;

/** Sleep control bits (ACPI 6.4 table 4.19). */
const SLP_TYP_SHIFT = 2;
const SLP_TYP_MASK = 0x1c;
const SLP_EN = 0x20;
/** Sleep status bit 7 WAK_STS (ACPI 6.4 table 4.20). */
const WAK_STS = 0x80;

export interface AcpiSleepOptions {
  /**
   * Called when the guest writes SLP_EN with SLP_TYP `sleepType` (0-7). The
   * platform decides what the value means from the `\_Sx` packages it put in
   * the DSDT (for example 5 for `\_S5`, soft off).
   */
  sleep(sleepType: number): void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface AcpiSleepState {
  readonly kind: "acpi-sleep";
  readonly version: 1;
  /** The SLP_TYP field last written (readable back, SLP_EN is not). */
  readonly sleepType: number;
  readonly wakeStatus: boolean;
  /** Sleep requests (SLP_EN writes) seen. */
  readonly sleepRequests: number;
}

export class AcpiSleepStateError extends Error {
  override name = "AcpiSleepStateError";
}

export class AcpiSleep {
  private readonly onSleep: (sleepType: number) => void;
  private sleepType = 0;
  private wakeStatus = false;
  private requests = 0;
  /** SLP_TYP of the last sleep request, -1 before the first. */
  lastSleepType = -1;

  constructor(options: AcpiSleepOptions) {
    this.onSleep = options.sleep;
  }

  /** How many times the guest wrote SLP_EN. */
  get sleepRequests(): number {
    return this.requests;
  }

  /**
   * Reads `size` bytes at `offset`. The registers are one byte wide: wider
   * reads return the register in the low byte and zeros above (reserved);
   * offsets outside the two registers read as all ones (nothing there).
   */
  read(offset: number, size: 1 | 2 | 4): number {
    switch (offset) {
      case AcpiSleepOffset.STATUS:
        return this.wakeStatus ? WAK_STS : 0;
      case AcpiSleepOffset.CONTROL:
        // SLP_EN is write-only and reads as 0 (ACPI 6.4 table 4.19).
        return this.sleepType << SLP_TYP_SHIFT;
      default:
        return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    }
  }

  /** Writes `size` bytes at `offset` (only the low byte reaches the one-byte registers). */
  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    switch (offset) {
      case AcpiSleepOffset.STATUS:
        // WAK_STS is write-1-to-clear.
        if ((value & WAK_STS) !== 0) this.wakeStatus = false;
        return;
      case AcpiSleepOffset.CONTROL:
        this.sleepType = (value & SLP_TYP_MASK) >>> SLP_TYP_SHIFT;
        if ((value & SLP_EN) !== 0) {
          this.requests++;
          this.lastSleepType = this.sleepType;
          this.onSleep(this.sleepType);
        }
        return;
      default:
        return;
    }
  }

  /**
   * The platform woke from a sleep state: sets WAK_STS, which the OS polls
   * for after a sleep request (ACPI 6.4 section 4.8.3.7).
   */
  wake(): void {
    this.wakeStatus = true;
  }

  state(): AcpiSleepState {
    return {
      kind: "acpi-sleep",
      version: 1,
      sleepType: this.sleepType,
      wakeStatus: this.wakeStatus,
      sleepRequests: this.requests,
    };
  }

  fromState(state: AcpiSleepState): void {
    if (state === null || typeof state !== "object" || state.kind !== "acpi-sleep")
      throw new AcpiSleepStateError('not an ACPI sleep state (kind must be "acpi-sleep")');
    if (state.version !== 1)
      throw new AcpiSleepStateError(
        `ACPI sleep state version ${state.version} is not supported (expected 1)`,
      );
    if (!Number.isInteger(state.sleepType) || state.sleepType < 0 || state.sleepType > 7)
      throw new AcpiSleepStateError("ACPI sleep state field sleepType must be an integer 0-7");
    if (typeof state.wakeStatus !== "boolean")
      throw new AcpiSleepStateError("ACPI sleep state field wakeStatus must be a boolean");
    if (!Number.isInteger(state.sleepRequests) || state.sleepRequests < 0)
      throw new AcpiSleepStateError(
        "ACPI sleep state field sleepRequests must be a non-negative integer",
      );
    this.sleepType = state.sleepType;
    this.wakeStatus = state.wakeStatus;
    this.requests = state.sleepRequests;
  }
}
