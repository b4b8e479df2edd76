/**
 * The HVM PC's interrupt wiring (src/runner/pc-platform.ts, hvm-domain.ts),
 * driven from the host side: ISA IRQs reach the 8259A and the I/O APIC (IRQ
 * 0 on pin 2, the PC's interrupt source override), I/O APIC messages reach
 * the local APIC, and the local APIC's EOI of a level-triggered vector clears
 * the I/O APIC's remote IRR (Intel 82093AA 3.2.4, SDM vol. 3A 11.8.5).
 * (Named linux-hvm* for this work's test-file pattern; no Linux involved.)
 */
import {
  IO_APIC_DEFAULT_BASE,
  LOCAL_APIC_DEFAULT_BASE,
  LocalApicRegister,
} from "@kumo/device-models";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { createHvmDomain } from "../src/runner/hvm-domain";

function pc() {
  const hypervisor = new Hypervisor();
  const config = parseDomainConfig('name = "pc"\ntype = "hvm"\nmemory = 16\nkernel = "-"\n');
  const runnable = createHvmDomain(
    hypervisor,
    config,
    { bootSector: new Uint8Array([0xf4]) },
    { paused: true },
  );
  const memory = runnable.domain.memory;
  if (memory === null) throw new Error("no memory");
  const ioapic = (register: number, value?: number) => {
    memory.write32(IO_APIC_DEFAULT_BASE, register);
    if (value !== undefined) memory.write32(IO_APIC_DEFAULT_BASE + 0x10, value);
    return memory.read32(IO_APIC_DEFAULT_BASE + 0x10) >>> 0;
  };
  const apic = runnable.localApics[0].apic;
  memory.write32(LOCAL_APIC_DEFAULT_BASE + LocalApicRegister.Svr, 0x1ff);
  return { runnable, memory, ioapic, apic, hypervisor };
}

describe("HVM PC interrupt wiring", () => {
  it("a level ISA IRQ goes through the I/O APIC to the local APIC; EOI re-arms it", () => {
    const { runnable, memory, ioapic, apic } = pc();
    ioapic(0x10 + 2 * 9, 0x0000a049); // pin 9: vector 0x49, level, active low, physical
    ioapic(0x11 + 2 * 9, 0x00000000); // APIC ID 0
    runnable.platform.setIsaIrq(9, true);
    expect(apic.hasPending()).toBe(true);
    expect(apic.acknowledge()).toBe(0x49);
    expect(ioapic(0x10 + 2 * 9) & 0x4000).toBe(0x4000); // remote IRR
    memory.write32(LOCAL_APIC_DEFAULT_BASE + LocalApicRegister.Eoi, 0);
    // Still asserted: the I/O APIC sends it again after the EOI.
    expect(apic.acknowledge()).toBe(0x49);
    runnable.platform.setIsaIrq(9, false);
    memory.write32(LOCAL_APIC_DEFAULT_BASE + LocalApicRegister.Eoi, 0);
    expect(ioapic(0x10 + 2 * 9) & 0x4000).toBe(0);
    expect(apic.hasPending()).toBe(false);
  });

  it("ISA IRQ 0 reaches I/O APIC pin 2 and the 8259A's IR0", () => {
    const { runnable, ioapic, apic } = pc();
    ioapic(0x10 + 2 * 2, 0x00000030);
    runnable.platform.setIsaIrq(0, true);
    expect(apic.acknowledge()).toBe(0x30);
    const pic = runnable.platform.pic;
    pic.master.write(0, 1, 0x0a); // OCW3: read IRR
    expect(pic.master.read(0, 1) & 1).toBe(1);
  });

  it("the port bus answers all ones where nothing is and routes the PC's ports", () => {
    const { runnable } = pc();
    const bus = runnable.platform.bus;
    expect(bus.portRead(0x2f8, 1)).toBe(0xff); // no COM2
    expect(bus.portRead(0xe9, 1)).toBe(0xe9); // debug console readback
    bus.portWrite(0xcf8, 4, 0x80000000);
    expect(bus.portRead(0xcfc, 4)).toBe(0x12378086); // i440FX at 00.0
    bus.portWrite(0x70, 1, 0x0d);
    expect(bus.portRead(0x71, 1)).toBe(0x80); // RTC register D: valid RAM
  });
});
