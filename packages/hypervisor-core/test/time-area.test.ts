/**
 * VCPUOP_register_vcpu_time_memory_area (Xen public vcpu.h; Xen arch/x86/domain.c
 * arch_do_vcpu_op and arch/x86/time.c update_secondary_system_time): the
 * second vcpu_time_info Linux 6.1 maps into its vDSO (arch/x86/xen/time.c
 * xen_setup_vsyscall_time_info), which it uses only with
 * PVCLOCK_TSC_STABLE_BIT set.
 */
import { abiLayouts, Errno, Hypercall, PvclockFlags, VcpuOp } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type Domain, Hypervisor } from "../src/index";
import { hypercall, ScriptedVcpu, type ScriptProgram, work } from "../src/test/index";
import { get64, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const AREA = 0x5010;
const VCPU_INFO_GFN = 0x6;
const time = abiLayouts("x86_64").vcpu_time_info;
const offsets = time.offsets as Record<string, number>;

function setup(
  program: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  longMode = true,
) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "pvclock",
    memory: 4 * MiB,
    vcpus: 1,
    guestWidth: longMode ? 64 : 32,
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({ program: () => program(memory, domain), longMode });
  domain.attachVcpu(0, cpu);
  return { hypervisor, domain, memory, cpu };
}

/** The vCPU's primary vcpu_time_info bytes (in its vcpu_info). */
function primary(domain: Domain): Uint8Array {
  const context = domain.vcpus[0];
  const page = context.vcpuInfoPage as Uint8Array;
  const at = context.vcpuInfoOffset + domain.layout.timeOffset;
  return page.slice(at, at + time.size);
}

function bytesAt(memory: ArrayBufferGuestMemory, address: number): Uint8Array {
  const bytes = new Uint8Array(time.size);
  memory.readBytes(address, bytes);
  return bytes;
}

function registerTimeArea(memory: ArrayBufferGuestMemory, address: number, longMode = true) {
  // The union's high half holds garbage for a 32-bit caller (as for the runstate area).
  put(memory, ARG, [
    [0, 4, address],
    [4, 4, longMode ? Math.floor(address / 2 ** 32) : 0xdeadbeef],
  ]);
  return hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_time_memory_area, 0, ARG);
}

describe("VCPUOP_register_vcpu_time_memory_area", () => {
  for (const longMode of [true, false]) {
    it(`writes a copy of vcpu_time_info with TSC_STABLE under the odd/even protocol (${longMode ? "x64" : "x32"})`, () => {
      const writes: { length: number; version: number }[] = [];
      let copy: Uint8Array | null = null;
      let primaryAtRegistration: Uint8Array | null = null;
      let copyAfterMove: Uint8Array | null = null;
      const { hypervisor, domain, memory, cpu } = setup(
        (memory, domain) =>
          (function* () {
            yield registerTimeArea(memory, AREA, longMode);
            copy = bytesAt(memory, AREA);
            primaryAtRegistration = primary(domain);
            yield work(10_000);
            // register_vcpu_info refreshes time (Xen force_update_vcpu_system_time): the copy follows.
            put(memory, ARG, [
              [0, 8, VCPU_INFO_GFN],
              [8, 4, 0x40],
            ]);
            yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 0, ARG);
            copyAfterMove = bytesAt(memory, AREA);
          })(),
        longMode,
      );
      // Record every guest write that touches the area with the version it leaves there.
      const writeBytes = memory.writeBytes.bind(memory);
      memory.writeBytes = (address, source) => {
        writeBytes(address, source);
        if (address <= AREA && address + source.length > AREA)
          writes.push({ length: source.length, version: memory.read32(AREA) });
      };
      domain.unpause();
      hypervisor.scheduler.runUntil(() => cpu.finished, 100);
      expect(cpu.results[0]).toBe(0);
      expect(cpu.results[1]).toBe(0);
      const first = copy as unknown as Uint8Array;
      // The same bytes as the primary (version included), with TSC_STABLE set.
      expect(first).toEqual(primaryAtRegistration);
      expect(first[offsets.flags] & PvclockFlags.TSC_STABLE_BIT).toBe(PvclockFlags.TSC_STABLE_BIT);
      const version = new DataView(first.buffer).getUint32(offsets.version, true);
      expect(version % 2).toBe(0);
      expect(version).toBeGreaterThan(0);
      // Xen's order: version (odd), whole struct (odd), version (even); twice (registration, move).
      expect(writes).toEqual([
        { length: 4, version: version - 1 },
        { length: time.size, version: version - 1 },
        { length: 4, version },
        { length: 4, version: version + 1 },
        { length: time.size, version: version + 1 },
        { length: 4, version: version + 2 },
      ]);
      const moved = copyAfterMove as unknown as Uint8Array;
      expect(moved).toEqual(primary(domain));
      // The refreshed copy carries the later system time.
      expect(get64(memory, AREA + offsets.system_time)).toBeGreaterThan(
        new DataView(first.buffer).getUint32(offsets.system_time, true),
      );
    });
  }

  it("a null handle unregisters; an unmapped area is accepted and ignored; a bad argument is -EFAULT", () => {
    const { hypervisor, domain, memory, cpu } = setup((memory) =>
      (function* () {
        yield registerTimeArea(memory, AREA);
        yield registerTimeArea(memory, 0);
        memory.write32(AREA, 0x77);
        put(memory, ARG, [
          [0, 8, VCPU_INFO_GFN],
          [8, 4, 0],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 0, ARG);
        // Beyond the vCPU's translation: accepted, copies fail silently (Xen ignores them).
        yield registerTimeArea(memory, 2 ** 40);
        // The argument itself unreadable.
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_time_memory_area, 0, 2 ** 40);
        // No such vCPU.
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_time_memory_area, 5, ARG);
      })(),
    );
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([0, 0, 0, 0, -Errno.EFAULT, -Errno.ENOENT]);
    expect(memory.read32(AREA)).toBe(0x77);
    expect(domain.state).toBe("running");
  });

  it("is -EINVAL on arm64 (Xen do_arm_vcpu_op offers only register_vcpu_info and the runstate area)", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({
      name: "arm",
      memory: 4 * MiB,
      vcpus: 1,
      architecture: "arm64",
    });
    const memory = domain.memory as ArrayBufferGuestMemory;
    const base = memory.ram.base;
    const cpu = new ScriptedVcpu({
      architecture: "arm64",
      addressLimit: 2 ** 40,
      program: function* () {
        put(memory, base + ARG, [[0, 8, base + AREA]]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_time_memory_area, 0, base + ARG);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([-Errno.EINVAL]);
    expect(memory.read32(base + AREA)).toBe(0);
  });
});
