import { describe, expect, it } from "vitest";
import {
  GicCpuRegister as C,
  GicDistributorRegister as D,
  GIC_SPURIOUS_INTID,
  GicV2,
  GicV2Error,
  type GicV2State,
} from "../src/index";

// Behaviour from Arm IHI 0048B (GIC architecture version 2.0); section numbers in the names.

function setup(cpus = 1) {
  const lines: [number, boolean][] = [];
  const gic = new GicV2({ cpus, interrupt: (cpu, asserted) => lines.push([cpu, asserted]) });
  const dist = (offset: number, value?: number, size: 1 | 2 | 4 = 4): number => {
    if (value === undefined) return gic.distributor.read(offset, size);
    gic.distributor.write(offset, size, value);
    return 0;
  };
  const cpu = (offset: number, value?: number): number => {
    if (value === undefined) return gic.cpuInterface.read(offset, 4);
    gic.cpuInterface.write(offset, 4, value);
    return 0;
  };
  return { gic, lines, dist, cpu };
}

/** What Linux's irq-gic.c gic_dist_init / gic_cpu_init do, reduced: enable both, PMR 0xF0. */
function enable(ctx: ReturnType<typeof setup>) {
  ctx.dist(D.Ctlr, 1);
  ctx.cpu(C.Pmr, 0xf0);
  ctx.cpu(C.Ctlr, 1);
}

describe("GICv2 distributor and CPU interface (IHI 0048B)", () => {
  it("GICD_TYPER reports the lines and CPUs; IIDR/PIDR2 say GICv2 (4.3.2, 4.3.16)", () => {
    const gic = new GicV2({ cpus: 4, spis: 64 });
    expect(gic.distributor.read(D.Typer, 4)).toBe((3 << 5) | 2);
    expect(gic.distributor.read(D.PidR2, 4) >>> 4).toBe(2);
    expect(gic.distributor.read(D.Iidr, 4) & 0xfff).toBe(0x43b);
  });

  it("rejects impossible configurations with a typed error", () => {
    expect(() => new GicV2({ cpus: 9 })).toThrow(GicV2Error);
    expect(() => new GicV2({ spis: 33 })).toThrow(GicV2Error);
    expect(() => new GicV2().setSpi(64, true)).toThrow(GicV2Error);
  });

  it("a level SPI is acknowledged, stays active-and-pending while high, and ends with EOI (3.2.4)", () => {
    const ctx = setup();
    const { gic, dist, cpu, lines } = ctx;
    enable(ctx);
    dist(D.ITargetsR + 40, 1, 1);
    dist(D.IPriorityR + 40, 0xa0, 1);
    dist(D.ISEnableR + 4, 1 << 8);
    gic.setSpi(40, true);
    expect(lines).toEqual([[0, true]]);
    expect(gic.source(0).hasPending()).toBe(true);
    expect(cpu(C.Hppir)).toBe(40);
    expect(cpu(C.Iar)).toBe(40);
    expect(lines.at(-1)).toEqual([0, false]);
    expect(cpu(C.Rpr)).toBe(0xa0);
    expect(dist(D.ISActiveR + 4)).toBe(1 << 8);
    expect(dist(D.ISPendR + 4)).toBe(1 << 8); // still pending: the line is high
    expect(cpu(C.Iar)).toBe(GIC_SPURIOUS_INTID); // active: not signalled again
    gic.setSpi(40, false);
    cpu(C.Eoir, 40);
    expect(cpu(C.Rpr)).toBe(0xff);
    expect(dist(D.ISActiveR + 4)).toBe(0);
    expect(dist(D.ISPendR + 4)).toBe(0);
    expect(gic.irqAsserted(0)).toBe(false);
  });

  it("a level interrupt still asserted after EOI is signalled again", () => {
    const ctx = setup();
    enable(ctx);
    ctx.dist(D.ITargetsR + 33, 1, 1);
    ctx.dist(D.ISEnableR + 4, 1 << 1);
    ctx.gic.setSpi(33, true);
    expect(ctx.cpu(C.Iar)).toBe(33);
    ctx.cpu(C.Eoir, 33);
    expect(ctx.gic.irqAsserted(0)).toBe(true);
    expect(ctx.cpu(C.Iar)).toBe(33);
  });

  it("an edge SPI latches one rising edge; ICPENDR clears the latch (4.3.8, 4.3.13)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    enable(ctx);
    dist(D.ICfgR + 8, 2 << (2 * 2)); // INTID 34 edge-triggered
    expect(dist(D.ICfgR + 8)).toBe(2 << 4);
    dist(D.ITargetsR + 34, 1, 1);
    dist(D.ISEnableR + 4, 1 << 2);
    gic.setSpi(34, true);
    gic.setSpi(34, false);
    expect(dist(D.ISPendR + 4)).toBe(1 << 2);
    dist(D.ICPendR + 4, 1 << 2);
    expect(gic.irqAsserted(0)).toBe(false);
    gic.setSpi(34, true);
    expect(cpu(C.Iar)).toBe(34);
    expect(dist(D.ISPendR + 4)).toBe(0); // edge: acknowledge consumed the latch
  });

  it("nothing is signalled with the distributor or the CPU interface disabled, or at PMR (3.3.2)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    dist(D.ITargetsR + 32, 1, 1);
    dist(D.ISEnableR + 4, 1);
    dist(D.IPriorityR + 32, 0xf0, 1);
    gic.setSpi(32, true);
    expect(gic.irqAsserted(0)).toBe(false);
    dist(D.Ctlr, 1);
    expect(gic.irqAsserted(0)).toBe(false);
    cpu(C.Ctlr, 1);
    expect(gic.irqAsserted(0)).toBe(false); // PMR 0 masks everything
    cpu(C.Pmr, 0xf0);
    expect(gic.irqAsserted(0)).toBe(false); // priority 0xF0 is not below the mask 0xF0
    cpu(C.Pmr, 0xf8);
    expect(gic.irqAsserted(0)).toBe(true);
    expect(cpu(C.Iar)).toBe(32);
  });

  it("a higher priority preempts the running one; equal group priority does not (3.3.3)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    enable(ctx);
    for (const [intid, priority] of [
      [32, 0xa0],
      [33, 0x80],
      [34, 0xa0],
    ]) {
      dist(D.ITargetsR + intid, 1, 1);
      dist(D.IPriorityR + intid, priority, 1);
    }
    dist(D.ISEnableR + 4, 0b111);
    gic.setSpi(32, true);
    expect(cpu(C.Iar)).toBe(32);
    gic.setSpi(34, true);
    expect(gic.irqAsserted(0)).toBe(false);
    gic.setSpi(33, true);
    expect(gic.irqAsserted(0)).toBe(true);
    expect(cpu(C.Iar)).toBe(33);
    expect(cpu(C.Rpr)).toBe(0x80);
    expect(cpu(C.Apr0)).toBe((1 << (0xa0 >> 3)) | (1 << (0x80 >> 3)));
    gic.setSpi(33, false);
    cpu(C.Eoir, 33);
    expect(cpu(C.Rpr)).toBe(0xa0);
    gic.setSpi(32, false);
    cpu(C.Eoir, 32);
    expect(cpu(C.Iar)).toBe(34);
  });

  it("the binary point groups priorities: with BPR 5, 0x88 does not preempt 0xA0 (3.3.3)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    enable(ctx);
    cpu(C.Bpr, 0);
    expect(cpu(C.Bpr)).toBe(2); // five priority bits: the minimum binary point is 2
    cpu(C.Bpr, 5); // group priority bits [7:6]
    dist(D.ITargetsR + 32, 1, 1);
    dist(D.ITargetsR + 33, 1, 1);
    dist(D.IPriorityR + 32, 0xa0, 1);
    dist(D.IPriorityR + 33, 0x88, 1);
    dist(D.ISEnableR + 4, 0b11);
    gic.setSpi(32, true);
    expect(cpu(C.Iar)).toBe(32);
    gic.setSpi(33, true);
    expect(gic.irqAsserted(0)).toBe(false); // 0x88 and 0xA0 share group priority 0x80
  });

  it("ties go to the lowest INTID; priorities keep five bits (3.2.4, 3.3)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    enable(ctx);
    dist(D.IPriorityR + 32, 0xffffffff); // word write covers INTIDs 32-35
    expect(dist(D.IPriorityR + 32)).toBe(0xf8f8f8f8);
    dist(D.IPriorityR + 32, 0x50505050);
    dist(D.ITargetsR + 32, 0x01010101);
    dist(D.ISEnableR + 4, 0b1100);
    gic.setSpi(35, true);
    gic.setSpi(34, true);
    expect(cpu(C.Hppir)).toBe(34);
  });

  it("SGIs: GICD_SGIR filters, source CPU in IAR, per-source pending (4.3.15, 4.4.4)", () => {
    const ctx = setup(2);
    const { gic, dist, cpu } = ctx;
    dist(D.Ctlr, 1);
    for (const n of [0, 1]) {
      gic.currentCpu = n;
      cpu(C.Pmr, 0xf0);
      cpu(C.Ctlr, 1);
      dist(D.ISEnableR, 0xffff);
    }
    gic.currentCpu = 1;
    dist(D.Sgir, (0 << 24) | (0b01 << 16) | 3); // CPU 1 sends SGI 3 to CPU 0
    gic.currentCpu = 0;
    dist(D.Sgir, (2 << 24) | 3); // CPU 0 sends SGI 3 to itself
    expect(dist(D.SPendSgiR)).toBe(0b11 << 24); // SGI 3's byte: sources 0 and 1
    expect(dist(D.ISPendR) & 0xffff).toBe(1 << 3);
    expect(cpu(C.Iar)).toBe(3 | (0 << 10));
    cpu(C.Eoir, 3);
    expect(cpu(C.Iar)).toBe(3 | (1 << 10));
    cpu(C.Eoir, 3 | (1 << 10));
    expect(gic.irqAsserted(0)).toBe(false);
    dist(D.Sgir, (1 << 24) | 5); // all but self
    gic.currentCpu = 1;
    expect(cpu(C.Iar)).toBe(5);
    expect(dist(D.ICfgR)).toBe(0xaaaaaaaa); // SGIs are edge-triggered, read-only
    dist(D.ICfgR, 0);
    expect(dist(D.ICfgR)).toBe(0xaaaaaaaa);
  });

  it("PPIs and the SGI/PPI registers are banked per CPU; target bytes name the reader (4.3.12)", () => {
    const ctx = setup(2);
    const { gic, dist, cpu } = ctx;
    dist(D.Ctlr, 1);
    gic.currentCpu = 1;
    cpu(C.Pmr, 0xf0);
    cpu(C.Ctlr, 1);
    dist(D.ISEnableR, 1 << 27);
    expect(dist(D.ITargetsR + 24)).toBe(0x02020202);
    gic.currentCpu = 0;
    expect(dist(D.ISEnableR)).toBe(0);
    expect(dist(D.ITargetsR + 24)).toBe(0x01010101);
    gic.setPpi(0, 27, true);
    expect(gic.irqAsserted(0)).toBe(false);
    gic.setPpi(1, 27, true);
    expect(ctx.lines).toEqual([[1, true]]);
    gic.currentCpu = 1;
    expect(cpu(C.Iar)).toBe(27);
  });

  it("assertPpi latches a PPI; resamplePpi makes it pending again at EOI while the level holds", () => {
    let level = true;
    const gic = new GicV2({ resamplePpi: (_cpu, intid) => intid === 31 && level });
    gic.distributor.write(D.Ctlr, 4, 1);
    gic.cpuInterface.write(C.Pmr, 4, 0xf0);
    gic.cpuInterface.write(C.Ctlr, 4, 1);
    gic.distributor.write(D.ISEnableR, 4, 1 << 31);
    gic.assertPpi(0, 31);
    gic.assertPpi(0, 31); // already pending: harmless
    expect(gic.cpuInterface.read(C.Iar, 4)).toBe(31);
    gic.cpuInterface.write(C.Eoir, 4, 31);
    expect(gic.cpuInterface.read(C.Iar, 4)).toBe(31); // the line was still high
    level = false;
    gic.cpuInterface.write(C.Eoir, 4, 31);
    expect(gic.irqAsserted(0)).toBe(false);
    expect(() => gic.assertPpi(0, 32)).toThrow(GicV2Error);
  });

  it("EOImode splits priority drop and deactivation (GICC_DIR, 4.4.15)", () => {
    const ctx = setup();
    const { gic, dist, cpu } = ctx;
    enable(ctx);
    cpu(C.Ctlr, 1 | (1 << 9));
    dist(D.ITargetsR + 32, 1, 1);
    dist(D.ISEnableR + 4, 1);
    gic.setSpi(32, true);
    expect(cpu(C.Iar)).toBe(32);
    gic.setSpi(32, false);
    cpu(C.Eoir, 32);
    expect(cpu(C.Rpr)).toBe(0xff);
    expect(dist(D.ISActiveR + 4)).toBe(1);
    cpu(C.Dir, 32);
    expect(dist(D.ISActiveR + 4)).toBe(0);
  });

  it("IGROUPR is RAZ/WI and wrong-size accesses to word registers do nothing (as Xen's vgic-v2)", () => {
    const { dist } = setup();
    dist(D.IGroupR, 0xffffffff);
    expect(dist(D.IGroupR)).toBe(0);
    dist(D.ISEnableR + 4, 0xff, 1);
    expect(dist(D.ISEnableR + 4)).toBe(0);
  });

  it("state() survives JSON and fromState restores the line and the running priority", () => {
    const ctx = setup(2);
    enable(ctx);
    ctx.dist(D.ITargetsR + 32, 1, 1);
    ctx.dist(D.IPriorityR + 32, 0x40, 1);
    ctx.dist(D.ISEnableR + 4, 1);
    ctx.dist(D.ISEnableR, 1 << 31);
    ctx.gic.setSpi(32, true);
    expect(ctx.cpu(C.Iar)).toBe(32);
    ctx.gic.setPpi(0, 31, true);
    const saved = JSON.parse(JSON.stringify(ctx.gic.state())) as GicV2State;
    const copy = new GicV2({ cpus: 2 });
    copy.fromState(saved);
    expect(copy.state()).toEqual(ctx.gic.state());
    expect(copy.cpuInterface.read(C.Rpr, 4)).toBe(0x40);
    expect(copy.irqAsserted(0)).toBe(true); // PPI 31 at priority 0 preempts the running 0x40
    expect(() => copy.fromState({ ...saved, kind: "x" } as unknown as GicV2State)).toThrow(
      GicV2Error,
    );
    expect(() => new GicV2().fromState(saved)).toThrow(/2 CPUs/);
  });
});
