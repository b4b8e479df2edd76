import {
  DomId,
  Errno,
  EvtchnOp,
  GnttabOp,
  HvmOp,
  HvmParam,
  Hypercall,
  MapSpace,
  MemoryOp,
  SchedOp,
  VcpuOp,
  Virq,
  XenVersionOp,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { Hypervisor, XEN_CPUID_BASE, XEN_HYPERCALL_MSR } from "../src/index";
import { halt, hypercall, ScriptedVcpu, type ScriptProgram } from "../src/test/index";
import { get32, get64, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000; // argument structs
const SHARED_GFN = 0x20;
const VCPU_INFO_GFN = 0x21;

function boot(program: ScriptProgram, options: { longMode?: boolean } = {}) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "ladder",
    memory: 16 * MiB,
    vcpus: 1,
    clock: { mode: "virtual", wallclockEpochMs: 1_700_000_000_123 },
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({
    program,
    longMode: options.longMode,
    onInterrupt: () => {
      // Like Linux's xen_evtchn_do_upcall: clear evtchn_upcall_pending, take the
      // selector, then clear the pending bits it consumes (2-level, x64).
      const info = domain.vcpus[0];
      const page = info.vcpuInfoPage;
      if (page === null) return;
      page[info.vcpuInfoOffset] = 0;
      page.fill(0, info.vcpuInfoOffset + 8, info.vcpuInfoOffset + 16);
      domain.sharedInfo.fill(0, 2048, 2560);
    },
  });
  domain.attachVcpu(0, cpu);
  domain.unpause();
  return { hypervisor, domain, memory, cpu };
}

describe("the PVH bring-up ladder through a scripted vCPU", () => {
  it("answers Xen's CPUID leaves and fills a hypercall page on the MSR write", () => {
    const { domain, memory, cpu } = boot(function* () {});
    const out = new Uint32Array(4);
    expect(cpu.hooks.cpuid?.(XEN_CPUID_BASE, 0, out)).toBe(true);
    const signature = new TextDecoder().decode(new Uint8Array(out.slice(1).buffer));
    expect(signature).toBe("XenVMMXenVMM");
    expect(out[0]).toBe(0x40000005);
    cpu.hooks.cpuid?.(XEN_CPUID_BASE + 1, 0, out);
    expect(out[0]).toBe(0x00040011);
    cpu.hooks.cpuid?.(XEN_CPUID_BASE + 2, 0, out);
    expect([out[0], out[1]]).toEqual([1, XEN_HYPERCALL_MSR]);
    cpu.hooks.cpuid?.(XEN_CPUID_BASE + 4, 0, out);
    expect(out[0] & (1 << 3)).not.toBe(0);
    expect(out[1]).toBe(0);
    expect(out[2]).toBe(domain.domid);
    expect(cpu.hooks.cpuid?.(0, 0, out)).toBe(false);
    expect(cpu.hooks.writeMsr?.(XEN_HYPERCALL_MSR, 0x5001, 0)).toBe("fault");
    expect(cpu.hooks.writeMsr?.(XEN_HYPERCALL_MSR, 0x5000, 0)).toBe(true);
    // Stub 17 (xen_version): mov eax, 17; vmcall; ret.
    expect(Array.from(memory.ram.u8.subarray(0x5000 + 17 * 32, 0x5000 + 17 * 32 + 10))).toEqual([
      0xb8, 17, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xc3, 0xcc,
    ]);
    expect(memory.ram.u8[0x5000 + 23 * 32]).toBe(0x0f);
    expect(memory.ram.u8[0x5000 + 23 * 32 + 1]).toBe(0x0b);
    expect(cpu.hooks.writeMsr?.(XEN_HYPERCALL_MSR, 0, 0x100)).toBe("fault");
    expect(cpu.hooks.writeMsr?.(0x10, 0, 0)).toBe(false);
  });

  it("runs version, features, shared_info, vcpu_info, callback vector, timer VIRQ and shutdown", () => {
    let memoryRef: ArrayBufferGuestMemory | null = null;
    const seen: Record<string, number> = {};
    const { hypervisor, domain, memory, cpu } = boot(function* () {
      const m = memoryRef as unknown as ArrayBufferGuestMemory;
      seen.version = yield hypercall(Hypercall.xen_version, XenVersionOp.version, 0);
      put(m, ARG, [[0, 4, 0]]);
      seen.features = yield hypercall(Hypercall.xen_version, XenVersionOp.get_features, ARG);
      seen.submap = get32(m, ARG + 4);
      put(m, ARG, [[0, 4, 1]]);
      seen.badSubmap = yield hypercall(Hypercall.xen_version, XenVersionOp.get_features, ARG);
      put(m, ARG, [
        [0, 2, DomId.SELF],
        [2, 2, 0],
        [4, 4, MapSpace.shared_info],
        [8, 8, 0],
        [16, 8, SHARED_GFN],
      ]);
      seen.physmap = yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG);
      seen.dying = yield hypercall(Hypercall.hvm_op, HvmOp.pagetable_dying, ARG);
      put(m, ARG, [
        [0, 8, VCPU_INFO_GFN],
        [8, 4, 0x40],
      ]);
      seen.register = yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 0, ARG);
      seen.registerAgain = yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 0, ARG);
      seen.fifo = yield hypercall(Hypercall.event_channel_op, EvtchnOp.init_control, ARG);
      put(m, ARG, [
        [0, 2, DomId.SELF],
        [4, 4, HvmParam.CALLBACK_IRQ],
        [8, 4, 0xf3],
        [12, 4, 0x02000000],
      ]);
      seen.callback = yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
      seen.stopPeriodic = yield hypercall(Hypercall.vcpu_op, VcpuOp.stop_periodic_timer, 0, 0);
      put(m, ARG, [
        [0, 4, Virq.TIMER],
        [4, 4, 0],
      ]);
      seen.bindVirq = yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_virq, ARG);
      seen.timerPort = get32(m, ARG + 8);
      put(m, ARG, [[0, 4, seen.timerPort]]);
      seen.unmask = yield hypercall(Hypercall.event_channel_op, EvtchnOp.unmask, ARG);
      put(m, ARG, [
        [0, 8, 5_000_000],
        [8, 4, 0],
      ]);
      seen.singleshot = yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG);
      put(m, ARG, [[0, 2, DomId.SELF]]);
      seen.querySize = yield hypercall(Hypercall.grant_table_op, GnttabOp.query_size, ARG, 1);
      seen.maxFrames = get32(m, ARG + 8);
      yield halt();
      seen.afterHalt = 1;
      put(m, ARG, [[0, 4, 0]]);
      yield hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
    });
    memoryRef = memory;
    const events: string[] = [];
    hypervisor.onDomainEvent((event) =>
      events.push(event.kind === "shutdown" ? `shutdown:${event.reason}` : event.kind),
    );
    hypervisor.scheduler.runUntil(() => domain.state === "destroyed", 10_000);
    expect(seen.version).toBe(0x40011);
    expect(seen.features).toBe(0);
    expect(seen.submap).toBe((1 << 0) | (1 << 2) | (1 << 8) | (1 << 9) | (1 << 16));
    expect(seen.badSubmap).toBe(-Errno.EINVAL);
    expect(seen.physmap).toBe(0);
    expect(seen.dying).toBe(-Errno.ENOSYS);
    expect(seen.register).toBe(0);
    expect(seen.registerAgain).toBe(-Errno.EINVAL);
    expect(seen.fifo).toBe(-Errno.ENOSYS);
    expect(seen.callback).toBe(0);
    expect(seen.stopPeriodic).toBe(0);
    expect(seen.bindVirq).toBe(0);
    expect(seen.timerPort).toBeGreaterThan(0);
    expect(seen.unmask).toBe(0);
    expect(seen.singleshot).toBe(0);
    expect(seen.querySize).toBe(0);
    expect(seen.maxFrames).toBe(64);
    expect(seen.afterHalt).toBe(1);
    expect(cpu.interruptsTaken).toContain(0xf3);
    expect(events).toEqual(["shutdown:poweroff", "destroyed"]);
    // The timer fired at its deadline in virtual time: the clock jumped while the vCPU was halted.
    expect(domain.clock.now()).toBeGreaterThanOrEqual(5_000_000);
  });

  it("keeps pvclock valid in shared_info as soon as it is mapped, and the wallclock", () => {
    let memoryRef: ArrayBufferGuestMemory | null = null;
    const { hypervisor, memory, cpu } = boot(function* () {
      const m = memoryRef as unknown as ArrayBufferGuestMemory;
      put(m, ARG, [
        [0, 2, DomId.SELF],
        [4, 4, MapSpace.shared_info],
        [8, 8, 0],
        [16, 8, SHARED_GFN],
      ]);
      yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG);
    });
    memoryRef = memory;
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([0]);
    const base = SHARED_GFN * 4096;
    const time = 32; // vcpu_info[0].time
    expect(get32(memory, base + time) % 2).toBe(0);
    expect(get32(memory, base + time + 24)).toBe(0x80000000); // tsc_to_system_mul for 1 GHz
    expect(memory.read8(base + time + 28)).toBe(1); // tsc_shift
    expect(get32(memory, base + 3072) % 2).toBe(0); // wc_version even
    expect(get32(memory, base + 3076)).toBe(1_700_000_000); // wc_sec
    expect(get32(memory, base + 3080)).toBe(123_000_000); // wc_nsec
    expect(get64(memory, base + time + 8)).toBe(get64(memory, base + time + 16)); // TSC == ns at 1 GHz
  });
});
