/**
 * A vCPU's runstate (Xen public vcpu.h `struct vcpu_runstate_info`, Xen
 * common/sched/core.c vcpu_runstate_change): the state it is in, when it
 * entered it, and the system time spent in each state. Linux reads the
 * guest copy (VCPUOP_register_runstate_memory_area) for its steal clock:
 * time runnable + offline is time the vCPU wanted the CPU and did not get it
 * (Linux drivers/xen/time.c xen_steal_clock).
 *
 * Xen writes the guest copy when the vCPU is switched in and out
 * (update_runstate_area in context_switch), translating the registered
 * guest-virtual address with that vCPU's own page tables; failures are
 * ignored. Kumo does the same at the start and end of each slice.
 */
import { abiLayouts, RunstateState } from "@kumo/abi";
import type { GuestAbi } from "./layouts";

const ABI_NAMES = { x64: "x86_64", x32: "x86_32", a64: "arm64" } as const;

interface RunstateLayout {
  readonly size: number;
  readonly state: number;
  readonly stateEntryTime: number;
  readonly time: number;
}

function runstateLayout(abi: GuestAbi): RunstateLayout {
  const layout = abiLayouts(ABI_NAMES[abi]).vcpu_runstate_info;
  const offsets = layout.offsets as Record<string, number>;
  return {
    size: layout.size,
    state: offsets.state,
    stateEntryTime: offsets.state_entry_time,
    time: offsets.time,
  };
}

/** Per guest ABI: x86_32 packs the uint64_t fields at 4-byte alignment (44 bytes), x64/a64 48. */
export const RUNSTATE_LAYOUTS: Record<GuestAbi, RunstateLayout> = {
  x64: runstateLayout("x64"),
  x32: runstateLayout("x32"),
  a64: runstateLayout("a64"),
};

const TWO_POW_32 = 4294967296;

export class Runstate {
  /** RUNSTATE_*; a new vCPU is offline (Xen vcpu_create). */
  state: number = RunstateState.offline;
  /** System time (ns) when `state` was entered. */
  entryTime = 0;
  /** ns spent in each state before `entryTime`. */
  readonly time = new Float64Array(4);
  /** The registered guest-virtual address as halves; `registered` false when none (a null handle). */
  areaLow = 0;
  areaHigh = 0;
  registered = false;
  /** Staging buffer of the guest struct (no allocation per update). */
  readonly bytes = new Uint8Array(48);
  private readonly view = new DataView(this.bytes.buffer);

  /** Xen vcpu_runstate_change: charges the time since `entryTime` to the old state. */
  change(state: number, now: number): void {
    if (state === this.state) return;
    const delta = now - this.entryTime;
    if (delta > 0) this.time[this.state] += delta;
    this.entryTime = now;
    this.state = state;
  }

  /**
   * Fills `bytes` with the guest struct for `abi`; with `upToNow` the current
   * state's time runs to `now` (Xen vcpu_runstate_get, for copies made of a
   * vCPU that is not switching). Returns the struct size.
   */
  encode(abi: GuestAbi, now: number, upToNow: boolean): number {
    const layout = RUNSTATE_LAYOUTS[abi];
    const view = this.view;
    this.bytes.fill(0);
    view.setInt32(layout.state, this.state, true);
    setU64(view, layout.stateEntryTime, this.entryTime);
    for (let i = 0; i < 4; i++) {
      let value = this.time[i];
      if (upToNow && i === this.state && now > this.entryTime) value += now - this.entryTime;
      setU64(view, layout.time + i * 8, value);
    }
    return layout.size;
  }
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32) >>> 0, true);
}
