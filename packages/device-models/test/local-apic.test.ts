import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ApicError,
  DeliveryMode,
  LocalApic,
  type LocalApicIpi,
  type LocalApicState,
  LocalApicStateError,
  LocalApicRegister as R,
} from "../src/index";

/** A hand-driven clock: tests move time and fire the timer as a VMM would. */
class FakeClock {
  time = 0;
  deadline = Number.POSITIVE_INFINITY;
  schedules = 0;
  now(): number {
    return this.time;
  }
  schedule(deadline: number): void {
    this.deadline = deadline;
    this.schedules++;
  }
}

function setup(options: { tscDeadlineHz?: number; apicId?: number } = {}) {
  const clock = new FakeClock();
  const ipis: LocalApicIpi[] = [];
  const eois: number[] = [];
  let notified = 0;
  const apic = new LocalApic({
    clock,
    apicId: options.apicId,
    tscDeadlineHz: options.tscDeadlineHz,
    interrupt: () => {
      notified++;
    },
    eoi: (vector) => eois.push(vector),
    ipi: (ipi) => ipis.push(ipi),
  });
  /** Advances time and delivers the timer callback the way a VMM does. */
  const advance = (ns: number) => {
    clock.time += ns;
    if (clock.time >= clock.deadline) apic.timerExpired();
  };
  return { apic, clock, ipis, eois, notified: () => notified, advance };
}

function enabled(options: { tscDeadlineHz?: number; apicId?: number } = {}) {
  const context = setup(options);
  context.apic.write(R.Svr, 4, 0x1ff);
  return context;
}

const irrBit = (apic: LocalApic, vector: number) =>
  (apic.read(R.Irr + (vector >>> 5) * 16, 4) >>> (vector & 31)) & 1;
const isrBit = (apic: LocalApic, vector: number) =>
  (apic.read(R.Isr + (vector >>> 5) * 16, 4) >>> (vector & 31)) & 1;
const tmrBit = (apic: LocalApic, vector: number) =>
  (apic.read(R.Tmr + (vector >>> 5) * 16, 4) >>> (vector & 31)) & 1;

describe("register layout", () => {
  // Oracle: Linux's own register map (arch/x86/include/asm/apicdef.h), when the guest sources are cached.
  const sources = join(
    process.env.KUMO_GUESTS_CACHE ?? join(homedir(), ".cache/kumo/guests"),
    "src",
  );
  const header =
    (existsSync(sources) ? readdirSync(sources) : [])
      .map((tree) => join(sources, tree, "arch/x86/include/asm/apicdef.h"))
      .find((path) => existsSync(path)) ?? "";
  it.skipIf(header === "")("offsets match Linux apicdef.h", () => {
    const text = readFileSync(header, "utf8");
    const define = (name: string) => {
      const match = new RegExp(`#define\\s+${name}\\s+(0x[0-9A-Fa-f]+)\\b`).exec(text);
      if (!match) throw new Error(`${name} not in apicdef.h`);
      return Number.parseInt(match[1], 16);
    };
    const pairs: [number, string][] = [
      [R.Id, "APIC_ID"],
      [R.Version, "APIC_LVR"],
      [R.Tpr, "APIC_TASKPRI"],
      [R.Apr, "APIC_ARBPRI"],
      [R.Ppr, "APIC_PROCPRI"],
      [R.Eoi, "APIC_EOI"],
      [R.Rrd, "APIC_RRR"],
      [R.Ldr, "APIC_LDR"],
      [R.Dfr, "APIC_DFR"],
      [R.Svr, "APIC_SPIV"],
      [R.Isr, "APIC_ISR"],
      [R.Tmr, "APIC_TMR"],
      [R.Irr, "APIC_IRR"],
      [R.Esr, "APIC_ESR"],
      [R.IcrLow, "APIC_ICR"],
      [R.IcrHigh, "APIC_ICR2"],
      [R.LvtTimer, "APIC_LVTT"],
      [R.LvtThermal, "APIC_LVTTHMR"],
      [R.LvtPerformance, "APIC_LVTPC"],
      [R.LvtLint0, "APIC_LVT0"],
      [R.LvtLint1, "APIC_LVT1"],
      [R.LvtError, "APIC_LVTERR"],
      [R.TimerInitialCount, "APIC_TMICT"],
      [R.TimerCurrentCount, "APIC_TMCCT"],
      [R.TimerDivideConfig, "APIC_TDCR"],
    ];
    for (const [offset, name] of pairs) expect(offset, name).toBe(define(name));
    // GET_APIC_VERSION / GET_APIC_MAXLVT / APIC_INTEGRATED as Linux decodes the version register.
    const { apic } = setup();
    const version = apic.read(R.Version, 4);
    expect(version & 0xff).toBe(0x14);
    expect((version >>> 16) & 0xff).toBe(5);
    expect(version & 0xf0).not.toBe(0); // APIC_INTEGRATED
  });
});

describe("reset state (SDM vol. 3A 11.4.7.1)", () => {
  it("has the APIC ID in bits 31:24, DFR all ones, SVR 0xFF and masked LVTs", () => {
    const { apic } = setup({ apicId: 3 });
    expect(apic.read(R.Id, 4)).toBe(0x03000000);
    expect(apic.read(R.Version, 4)).toBe(0x00050014);
    expect(apic.read(R.Dfr, 4)).toBe(0xffffffff);
    expect(apic.read(R.Svr, 4)).toBe(0xff);
    for (let offset = R.LvtTimer; offset <= R.LvtError; offset += 16) {
      expect(apic.read(offset, 4)).toBe(0x10000);
    }
    for (const offset of [R.Tpr, R.Ppr, R.Ldr, R.Esr, R.IcrLow, R.IcrHigh, R.TimerInitialCount])
      expect(apic.read(offset, 4)).toBe(0);
    expect(apic.softwareEnabled).toBe(false);
  });
});

describe("interrupt acceptance and priority (SDM vol. 3A 11.8)", () => {
  it("delivers the highest IRR vector and EOI clears the highest ISR bit", () => {
    const { apic, notified } = enabled();
    apic.acceptInterrupt(0x31);
    apic.acceptInterrupt(0x52);
    expect(notified()).toBeGreaterThan(0);
    expect(irrBit(apic, 0x31)).toBe(1);
    expect(irrBit(apic, 0x52)).toBe(1);
    expect(apic.hasPending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x52);
    expect(isrBit(apic, 0x52)).toBe(1);
    expect(irrBit(apic, 0x52)).toBe(0);
    // 0x31 is in a lower priority class than the in-service 0x52: held.
    expect(apic.read(R.Ppr, 4)).toBe(0x50);
    expect(apic.hasPending()).toBe(false);
    expect(apic.acknowledge()).toBe(-1);
    apic.write(R.Eoi, 4, 0);
    expect(isrBit(apic, 0x52)).toBe(0);
    expect(apic.hasPending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x31);
    apic.write(R.Eoi, 4, 0);
    expect(apic.read(R.Ppr, 4)).toBe(0);
  });

  it("nests a higher class over a lower one in service", () => {
    const { apic } = enabled();
    apic.acceptInterrupt(0x40);
    expect(apic.acknowledge()).toBe(0x40);
    apic.acceptInterrupt(0x4f); // same class: blocked
    expect(apic.hasPending()).toBe(false);
    apic.acceptInterrupt(0x61);
    expect(apic.acknowledge()).toBe(0x61);
    apic.write(R.Eoi, 4, 0); // clears 0x61, the highest in service
    expect(isrBit(apic, 0x61)).toBe(0);
    expect(isrBit(apic, 0x40)).toBe(1);
    apic.write(R.Eoi, 4, 0);
    expect(apic.acknowledge()).toBe(0x4f);
  });

  it("TPR masks vectors of its class and below; PPR follows TPR when it is higher", () => {
    const { apic } = enabled();
    apic.write(R.Tpr, 4, 0x5a);
    expect(apic.read(R.Tpr, 4)).toBe(0x5a);
    expect(apic.read(R.Ppr, 4)).toBe(0x5a);
    apic.acceptInterrupt(0x5f);
    expect(apic.hasPending()).toBe(false);
    apic.acceptInterrupt(0x60);
    expect(apic.acknowledge()).toBe(0x60);
    // ISRV 0x60 > TPR class 0x50: PPR = 0x60.
    expect(apic.read(R.Ppr, 4)).toBe(0x60);
    apic.write(R.Eoi, 4, 0);
    apic.write(R.Tpr, 4, 0);
    expect(apic.acknowledge()).toBe(0x5f);
  });

  it("holds interrupts while software-disabled and delivers them once enabled", () => {
    const { apic } = setup();
    apic.acceptInterrupt(0x80);
    expect(irrBit(apic, 0x80)).toBe(1);
    expect(apic.hasPending()).toBe(false);
    apic.write(R.Svr, 4, 0x1ff);
    expect(apic.hasPending()).toBe(true);
  });

  it("refuses vectors 0-15 and latches receive-illegal-vector in the ESR", () => {
    const { apic } = enabled();
    apic.acceptInterrupt(7);
    expect(apic.hasPending()).toBe(false);
    expect(apic.read(R.Esr, 4)).toBe(0); // not visible until the ESR is written
    apic.write(R.Esr, 4, 0);
    expect(apic.read(R.Esr, 4)).toBe(ApicError.ReceiveIllegalVector);
    apic.write(R.Esr, 4, 0);
    expect(apic.read(R.Esr, 4)).toBe(0);
  });

  it("records level triggering in the TMR and reports the EOI of a level vector", () => {
    const { apic, eois } = enabled();
    apic.acceptInterrupt(0x90, true);
    expect(tmrBit(apic, 0x90)).toBe(1);
    expect(apic.acknowledge()).toBe(0x90);
    apic.write(R.Eoi, 4, 0);
    expect(eois).toEqual([0x90]);
    apic.acceptInterrupt(0x91, false);
    apic.acknowledge();
    apic.write(R.Eoi, 4, 0);
    expect(eois).toEqual([0x90]);
  });

  it("EOI with nothing in service is harmless", () => {
    const { apic } = enabled();
    apic.write(R.Eoi, 4, 0);
    expect(apic.hasPending()).toBe(false);
  });
});

describe("registers", () => {
  it("LDR keeps bits 31:24, DFR bits 31:28 with the rest ones", () => {
    const { apic } = enabled();
    apic.write(R.Ldr, 4, 0x01ffffff);
    expect(apic.read(R.Ldr, 4)).toBe(0x01000000);
    apic.write(R.Dfr, 4, 0x0);
    expect(apic.read(R.Dfr, 4)).toBe(0x0fffffff);
  });

  it("read-only registers ignore writes", () => {
    const { apic } = enabled();
    apic.acceptInterrupt(0x33);
    for (const offset of [R.Version, R.Ppr, R.Irr + 16, R.Isr, R.Tmr, R.TimerCurrentCount])
      apic.write(offset, 4, 0xffffffff);
    expect(apic.read(R.Version, 4)).toBe(0x00050014);
    expect(irrBit(apic, 0x33)).toBe(1);
    expect(apic.read(R.Isr, 4)).toBe(0);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(0);
  });

  it("software disable masks every LVT and keeps them masked", () => {
    const { apic } = enabled();
    apic.write(R.LvtLint0, 4, 0x700);
    expect(apic.read(R.LvtLint0, 4)).toBe(0x700);
    apic.write(R.Svr, 4, 0xff);
    expect(apic.read(R.LvtLint0, 4)).toBe(0x10700);
    apic.write(R.LvtLint0, 4, 0x700);
    expect(apic.read(R.LvtLint0, 4)).toBe(0x10700);
  });

  it("LVT entries keep only their defined bits", () => {
    const { apic } = enabled();
    apic.write(R.LvtError, 4, 0xffffffff);
    expect(apic.read(R.LvtError, 4)).toBe(0x100ff);
    apic.write(R.LvtLint1, 4, 0xffffffff);
    expect(apic.read(R.LvtLint1, 4)).toBe(0x1a7ff);
    // Without TSC deadline, timer mode bit 18 is reserved.
    apic.write(R.LvtTimer, 4, 0xffffffff);
    expect(apic.read(R.LvtTimer, 4)).toBe(0x300ff);
  });

  it("narrow reads return the addressed bytes, narrow writes merge", () => {
    const { apic } = enabled();
    apic.write(R.Ldr, 4, 0xab000000);
    expect(apic.read(R.Ldr + 3, 1)).toBe(0xab);
    expect(apic.read(R.Ldr + 2, 2)).toBe(0xab00);
    expect(apic.read(R.Version + 2, 1)).toBe(5);
    apic.write(R.Tpr, 1, 0x20);
    expect(apic.read(R.Tpr, 4)).toBe(0x20);
    apic.write(R.Ldr + 3, 1, 0x12);
    expect(apic.read(R.Ldr, 4)).toBe(0x12000000);
  });

  it("bytes 4-15 of a register slot read 0 and drop writes; accesses crossing a dword read 0", () => {
    const { apic } = enabled();
    expect(apic.read(R.Version + 4, 4)).toBe(0);
    expect(apic.read(R.Version + 3, 2)).toBe(0);
    apic.write(R.Tpr + 8, 4, 0xff);
    expect(apic.read(R.Tpr, 4)).toBe(0);
  });

  it("unimplemented registers read 0, ignore writes and latch illegal register address", () => {
    const { apic } = enabled();
    expect(apic.read(0x000, 4)).toBe(0);
    expect(apic.read(0x2f0, 4)).toBe(0); // CMCI LVT: absent with max LVT 5
    apic.write(0x3f0, 4, 0x1234);
    expect(apic.read(0x3f0, 4)).toBe(0);
    apic.write(R.Esr, 4, 0);
    expect(apic.read(R.Esr, 4)).toBe(ApicError.IllegalRegisterAddress);
  });

  it("an error with an unmasked error LVT raises its vector", () => {
    const { apic } = enabled();
    apic.write(R.LvtError, 4, 0xfe);
    apic.acceptInterrupt(3);
    expect(apic.acknowledge()).toBe(0xfe);
  });

  it("never throws for any offset and size", () => {
    const { apic } = enabled({ tscDeadlineHz: 1e9 });
    for (let offset = 0; offset < 0x1000; offset++) {
      for (const size of [1, 2, 4] as const) {
        apic.read(offset, size);
        apic.write(offset, size, (offset * 2654435761) | 0);
      }
    }
    expect(typeof apic.hasPending()).toBe("boolean");
  });
});

describe("ICR (SDM vol. 3A 11.6)", () => {
  it("a fixed self-IPI lands in the IRR; the delivery status reads idle", () => {
    const { apic, ipis } = enabled();
    apic.write(R.IcrLow, 4, 0x00040000 | 0xf3); // self shorthand
    expect(apic.read(R.IcrLow, 4)).toBe(0x000400f3);
    expect(apic.acknowledge()).toBe(0xf3);
    expect(ipis).toEqual([]);
  });

  it("a fixed IPI to its own physical or logical ID is taken locally", () => {
    const { apic, ipis } = enabled({ apicId: 2 });
    apic.write(R.IcrHigh, 4, 0x02000000);
    apic.write(R.IcrLow, 4, 0x41);
    expect(apic.acknowledge()).toBe(0x41);
    apic.write(R.Eoi, 4, 0);
    apic.write(R.Ldr, 4, 0x04000000);
    apic.write(R.IcrHigh, 4, 0x0c000000);
    apic.write(R.IcrLow, 4, 0x800 | 0x42);
    expect(apic.acknowledge()).toBe(0x42);
    expect(ipis).toEqual([]);
  });

  it("IPIs to others, all-including-self and INIT/SIPI go to the VMM", () => {
    const { apic, ipis } = enabled();
    apic.write(R.IcrHigh, 4, 0x01000000);
    apic.write(R.IcrLow, 4, 0x50);
    expect(apic.hasPending()).toBe(false);
    apic.write(R.IcrLow, 4, 0x00080000 | 0x51); // all including self
    expect(apic.acknowledge()).toBe(0x51);
    apic.write(R.IcrLow, 4, 0x0000c500); // INIT level assert
    apic.write(R.IcrLow, 4, 0x00000608); // SIPI vector 8
    expect(
      ipis.map((ipi) => [ipi.deliveryMode, ipi.vector, ipi.shorthand, ipi.destination]),
    ).toEqual([
      [DeliveryMode.Fixed, 0x50, 0, 1],
      [DeliveryMode.Fixed, 0x51, 2, 1],
      [DeliveryMode.Init, 0, 0, 1],
      [DeliveryMode.StartUp, 8, 0, 1],
    ]);
    expect(ipis[2].level && ipis[2].assert).toBe(true);
  });

  it("sending a fixed illegal vector latches send-illegal-vector", () => {
    const { apic } = enabled();
    apic.write(R.IcrLow, 4, 0x00040005);
    expect(apic.hasPending()).toBe(false);
    apic.write(R.Esr, 4, 0);
    expect(apic.read(R.Esr, 4)).toBe(ApicError.SendIllegalVector);
  });
});

describe("LINT pins", () => {
  it("fixed edge LINT0 delivers its vector; masked does nothing; level waits for EOI", () => {
    const { apic } = enabled();
    apic.setLint(0, true);
    expect(apic.hasPending()).toBe(false);
    apic.write(R.LvtLint0, 4, 0x61);
    apic.setLint(0, true);
    expect(apic.acknowledge()).toBe(0x61);
    apic.write(R.Eoi, 4, 0);
    apic.write(R.LvtLint1, 4, 0x8000 | 0x62);
    apic.setLint(1, true);
    expect(apic.read(R.LvtLint1, 4) & (1 << 14)).not.toBe(0);
    expect(apic.acknowledge()).toBe(0x62);
    apic.setLint(1, true); // remote IRR set: not again
    expect(apic.hasPending()).toBe(false);
    apic.write(R.Eoi, 4, 0);
    expect(apic.read(R.LvtLint1, 4) & (1 << 14)).toBe(0);
  });
});

describe("timer (SDM vol. 3A 11.5.4)", () => {
  it("one-shot counts down at bus/divider, fires once and stays 0", () => {
    const { apic, clock, advance } = enabled();
    apic.write(R.TimerDivideConfig, 4, 0x3); // divide by 16
    apic.write(R.LvtTimer, 4, 0xef);
    apic.write(R.TimerInitialCount, 4, 1000);
    expect(clock.deadline).toBe(16000);
    advance(1600);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(900);
    advance(14399);
    expect(apic.hasPending()).toBe(false);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(1);
    advance(1);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(0);
    expect(apic.acknowledge()).toBe(0xef);
    apic.write(R.Eoi, 4, 0);
    advance(100000);
    apic.timerExpired();
    expect(apic.hasPending()).toBe(false);
    expect(apic.read(R.TimerInitialCount, 4)).toBe(1000);
  });

  it("decodes every divide configuration", () => {
    const expected = [2, 4, 8, 16, 32, 64, 128, 1];
    for (let value = 0; value < 8; value++) {
      const { apic, clock } = enabled();
      const dcr = (value & 3) | ((value & 4) << 1);
      apic.write(R.TimerDivideConfig, 4, dcr);
      expect(apic.read(R.TimerDivideConfig, 4)).toBe(dcr);
      apic.write(R.TimerInitialCount, 4, 10);
      expect(clock.deadline).toBe(10 * expected[value]);
    }
  });

  it("periodic reloads, re-arms and collapses missed periods into one interrupt", () => {
    const { apic, clock, advance } = enabled();
    apic.write(R.TimerDivideConfig, 4, 0xb); // divide by 1
    apic.write(R.LvtTimer, 4, 0x20000 | 0xec);
    apic.write(R.TimerInitialCount, 4, 100);
    advance(150);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(50);
    expect(apic.acknowledge()).toBe(0xec);
    apic.write(R.Eoi, 4, 0);
    expect(clock.deadline).toBe(200);
    advance(1000); // t = 1150: ten periods missed
    expect(apic.acknowledge()).toBe(0xec);
    expect(apic.acknowledge()).toBe(-1);
    expect(clock.deadline).toBe(1200);
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(50);
  });

  it("a masked timer still counts but raises nothing", () => {
    const { apic, clock, advance } = enabled();
    apic.write(R.LvtTimer, 4, 0x10000 | 0xec);
    apic.write(R.TimerInitialCount, 4, 10);
    advance(20);
    expect(apic.hasPending()).toBe(false);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
  });

  it("initial count 0 and a timer-mode change stop the timer", () => {
    const { apic, clock } = enabled();
    apic.write(R.LvtTimer, 4, 0xec);
    apic.write(R.TimerInitialCount, 4, 10);
    apic.write(R.TimerInitialCount, 4, 0);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
    apic.write(R.TimerInitialCount, 4, 10);
    apic.write(R.LvtTimer, 4, 0x20000 | 0xec);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
    expect(apic.read(R.TimerInitialCount, 4)).toBe(0);
  });

  it("a divide change while running keeps the current count", () => {
    const { apic, clock, advance } = enabled();
    apic.write(R.TimerDivideConfig, 4, 0xb);
    apic.write(R.LvtTimer, 4, 0xec);
    apic.write(R.TimerInitialCount, 4, 100);
    advance(40);
    apic.write(R.TimerDivideConfig, 4, 0x0); // divide by 2
    expect(apic.read(R.TimerCurrentCount, 4)).toBe(60);
    expect(clock.deadline).toBe(40 + 120);
  });

  it("TSC-deadline mode arms from the MSR and fires once", () => {
    const { apic, clock, advance } = enabled({ tscDeadlineHz: 2e9 });
    apic.write(R.LvtTimer, 4, 0x40000 | 0xe0);
    expect(apic.read(R.LvtTimer, 4)).toBe(0x400e0);
    apic.write(R.TimerInitialCount, 4, 5); // ignored in this mode
    expect(apic.read(R.TimerInitialCount, 4)).toBe(0);
    apic.writeTscDeadline(4000);
    expect(apic.readTscDeadline()).toBe(4000);
    expect(clock.deadline).toBe(2000);
    advance(2000);
    expect(apic.acknowledge()).toBe(0xe0);
    expect(apic.readTscDeadline()).toBe(0);
  });

  it("TSC-deadline writes are ignored when not advertised", () => {
    const { apic, clock } = enabled();
    apic.write(R.LvtTimer, 4, 0x40000 | 0xe0);
    apic.writeTscDeadline(100);
    expect(apic.readTscDeadline()).toBe(0);
    expect(clock.deadline).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("state", () => {
  it("round-trips through JSON, timer included", () => {
    const first = enabled({ apicId: 1 });
    const { apic, advance } = first;
    apic.write(R.Tpr, 4, 0x20);
    apic.write(R.Ldr, 4, 0x02000000);
    apic.acceptInterrupt(0x44, true);
    apic.acknowledge();
    apic.acceptInterrupt(0x99);
    apic.write(R.LvtTimer, 4, 0x20000 | 0xec);
    apic.write(R.TimerInitialCount, 4, 100);
    advance(30);
    const saved = JSON.parse(JSON.stringify(apic.state())) as LocalApicState;
    expect(saved.kind).toBe("local-apic");
    expect(saved.version).toBe(1);

    const second = setup();
    second.clock.time = first.clock.time;
    second.apic.fromState(saved);
    expect(second.apic.state()).toEqual(apic.state());
    expect(second.clock.deadline).toBe(first.clock.deadline);
    for (let offset = 0; offset < 0x400; offset += 16) {
      if (offset === 0x280) continue;
      expect(second.apic.read(offset, 4), offset.toString(16)).toBe(apic.read(offset, 4));
    }
    expect(second.apic.acknowledge()).toBe(0x99);
  });

  it("a stopped timer saves as -1, not Infinity", () => {
    const { apic } = setup();
    expect(apic.state().timerDeadline).toBe(-1);
  });

  it("rejects a foreign kind or an unknown version with a typed error", () => {
    const { apic } = setup();
    const state = apic.state();
    expect(() => apic.fromState({ ...state, kind: "pic" } as unknown as LocalApicState)).toThrow(
      LocalApicStateError,
    );
    expect(() => apic.fromState({ ...state, version: 2 } as unknown as LocalApicState)).toThrow(
      /version 2/,
    );
    expect(() => apic.fromState({ ...state, irr: [1] } as unknown as LocalApicState)).toThrow(
      /irr/,
    );
  });
});
