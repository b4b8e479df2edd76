import { createX86Cpu, Msr } from "@kumo/cpu-x86";
import { LOCAL_APIC_DEFAULT_BASE, LocalApicRegister } from "@kumo/device-models";
import { Hypervisor } from "@kumo/hypervisor-core";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { attachLocalApic } from "../src/index";

const MiB = 1024 * 1024;

function wired() {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "apic",
    memory: 4 * MiB,
    vcpus: 1,
    clock: { mode: "virtual" },
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = createX86Cpu({ memory });
  domain.attachVcpu(0, cpu);
  const wiring = attachLocalApic(domain, 0, cpu, memory);
  return { hypervisor, domain, memory, cpu, wiring };
}

const out = new Uint32Array(4);

describe("local APIC wiring for PVH vCPUs", () => {
  it("maps the APIC page at the reset IA32_APIC_BASE (0xFEE00900: BSP, enabled)", () => {
    const { memory, wiring } = wired();
    expect(wiring.mappedBase).toBe(LOCAL_APIC_DEFAULT_BASE);
    expect(wiring.enabled).toBe(true);
    expect(memory.frameKind(LOCAL_APIC_DEFAULT_BASE / 4096)).toBe("mmio");
    expect(memory.read32(LOCAL_APIC_DEFAULT_BASE + LocalApicRegister.Version)).toBe(0x00050014);
  });

  it("advertises CPUID.1:EDX.APIC and keeps Xen's and the model's other leaves", () => {
    const { cpu } = wired();
    expect(cpu.hooks.cpuid?.(1, 0, out)).toBe(true);
    expect(out[3] & (1 << 9)).not.toBe(0);
    expect(out[1] >>> 24).toBe(0);
    const model = new Uint32Array(4);
    cpu.model.query(1, 0, model);
    expect(out[0]).toBe(model[0]);
    expect(out[3] & ~(1 << 9)).toBe(model[3] & ~(1 << 9));
    expect(cpu.hooks.cpuid?.(0x40000000, 0, out)).toBe(true);
    expect(out[1]).toBe(0x566e6558); // "XenV"
    expect(cpu.hooks.cpuid?.(0, 0, out)).toBe(false);
  });

  it("follows a relocation through WRMSR IA32_APIC_BASE and leaves the value to the CPU", () => {
    const { memory, cpu, wiring } = wired();
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0xfed00900, 0)).toBe(false);
    expect(wiring.mappedBase).toBe(0xfed00000);
    expect(memory.frameKind(0xfee00)).toBe("hole");
    expect(memory.read32(0xfed00000 + LocalApicRegister.Version)).toBe(0x00050014);
  });

  it("raises #GP for reserved bits, x2APIC enable included", () => {
    const { cpu, wiring } = wired();
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0xfee00900 | (1 << 10), 0)).toBe("fault");
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0xfee00901, 0)).toBe("fault");
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0xfee00900, 0x10)).toBe("fault");
    expect(wiring.mappedBase).toBe(LOCAL_APIC_DEFAULT_BASE);
  });

  it("a global disable unmaps the page, clears the CPUID bit and resets the APIC", () => {
    const { memory, cpu, wiring } = wired();
    memory.write32(LOCAL_APIC_DEFAULT_BASE + LocalApicRegister.Tpr, 0x30);
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0xfee00100, 0)).toBe(false);
    expect(wiring.enabled).toBe(false);
    expect(memory.frameKind(0xfee00)).toBe("hole");
    cpu.hooks.cpuid?.(1, 0, out);
    expect(out[3] & (1 << 9)).toBe(0);
    expect(wiring.apic.read(LocalApicRegister.Tpr, 4)).toBe(0);
  });

  it("relocation onto RAM leaves the APIC unmapped and logs, without a host exception", () => {
    const { hypervisor, cpu, wiring } = wired();
    const lines: string[] = [];
    hypervisor.onLog((line) => lines.push(line));
    expect(cpu.hooks.writeMsr?.(Msr.APIC_BASE, 0x00100900, 0)).toBe(false);
    expect(wiring.mappedBase).toBe(-1);
    expect(lines.some((line) => line.includes("local APIC base 0x100000 not mapped"))).toBe(true);
  });

  it("gives the CPU the Xen callback vector first, then the APIC's vectors", () => {
    const { domain, cpu, wiring } = wired();
    const source = cpu.interrupts;
    expect(source?.hasPending()).toBe(false);
    wiring.apic.write(LocalApicRegister.Svr, 4, 0x1ff);
    wiring.apic.acceptInterrupt(0x41);
    expect(source?.hasPending()).toBe(true);
    // An event is pending on the callback vector: it bypasses the APIC (no ISR, no EOI).
    const context = domain.vcpus[0];
    domain.callbackVector = 0xf3;
    context.vcpuInfoPage = new Uint8Array(64);
    context.vcpuInfoPage[0] = 1;
    expect(source?.acknowledge()).toBe(0xf3);
    expect(wiring.apic.read(LocalApicRegister.Isr + 0x70, 4)).toBe(0);
    context.vcpuInfoPage[0] = 0;
    expect(source?.acknowledge()).toBe(0x41);
    expect(source?.hasPending()).toBe(false);
  });

  it("an APIC interrupt wakes a halted vCPU", () => {
    const { domain, wiring } = wired();
    const context = domain.vcpus[0];
    context.blocked = 1; // BlockReason.Halt
    wiring.apic.write(LocalApicRegister.Svr, 4, 0x1ff);
    wiring.apic.acceptInterrupt(0x50);
    expect(context.blocked).toBe(0);
  });
});
