/**
 * The arm64 event-channel PPI through the interrupt-controller interface a
 * GIC model plugs into (`EventChannelInterruptController`), driven by a
 * scripted arm64 vCPU issuing `hvc #0xEA1` hypercalls (x16 = number, x0..x4
 * arguments, result in x0: the ScriptedVcpu fills the exit record as the
 * arm64 CPU does).
 */
import {
  DomId,
  Errno,
  EvtchnOp,
  Hypercall,
  type InterruptSource,
  MapSpace,
  MemoryOp,
  SchedOp,
  VcpuOp,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { EVENT_CHANNEL_PPI, type EventChannelInterruptController, Hypervisor } from "../src/index";
import { halt, hypercall, ScriptedVcpu, work } from "../src/test/index";
import { put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;

/** A minimal GIC: banked PPI pending bits per vCPU, a level re-sampled on EOI. */
class FakeGic implements EventChannelInterruptController {
  readonly asserted: [number, number][] = [];
  readonly pending = new Set<string>();
  /** Another interrupt (a timer PPI) pending for vCPU 0, whatever the event line does. */
  otherPending = false;
  assertPpi(vcpuId: number, intid: number): void {
    this.asserted.push([vcpuId, intid]);
    this.pending.add(`${vcpuId}:${intid}`);
  }
  /** The CPU interface of vCPU `vcpuId`, as the VMM would hand it to the CPU. */
  cpuInterface(vcpuId: number): InterruptSource {
    return {
      hasPending: () => this.otherPending || this.pending.has(`${vcpuId}:${EVENT_CHANNEL_PPI}`),
      // ICC_IAR1_EL1 read by the guest (the ScriptedVcpu calls it when it takes the interrupt).
      acknowledge: () => {
        if (!this.pending.delete(`${vcpuId}:${EVENT_CHANNEL_PPI}`)) return -1;
        return EVENT_CHANNEL_PPI;
      },
    };
  }
}

describe("arm64 event-channel PPI through an interrupt controller", () => {
  it("is asserted on 0 -> 1, re-asserted at entry while upcall_pending stays set, and read as a level", () => {
    const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 100 } });
    const domain = hypervisor.createDomain({
      name: "arm",
      memory: 4 * MiB,
      vcpus: 1,
      architecture: "arm64",
    });
    const memory = domain.memory as ArrayBufferGuestMemory;
    const base = memory.ram.base;
    const gic = new FakeGic();
    const levels: boolean[] = [];
    let port = 0;
    let assertedBeforeClear = 0;
    const cpu = new ScriptedVcpu({
      architecture: "arm64",
      addressLimit: 2 ** 40,
      program: function* () {
        put(memory, base + ARG, [
          [0, 2, DomId.SELF],
          [4, 4, MapSpace.shared_info],
          [8, 8, 0],
          [16, 8, (base >> 12) + 0x20],
        ]);
        yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, base + ARG);
        put(memory, base + ARG, [[0, 4, 0]]);
        yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_ipi, base + ARG);
        port = memory.read32(base + ARG + 4);
        // Interrupts masked (PSTATE.I): the PPI stays pending in the GIC while the guest works.
        cpu.interruptFlag = false;
        put(memory, base + ARG, [[0, 4, port]]);
        yield hypercall(Hypercall.event_channel_op, EvtchnOp.send, base + ARG);
        yield work(450); // several slices of 100
        cpu.interruptFlag = true;
        yield work(10);
        // The upcall handler ran (onInterrupt) and cleared upcall_pending: no more asserts.
        yield work(450);
        // wfi with another interrupt pending in the GIC does not sleep (Xen arm
        // local_events_need_delivery_nomask asks the vGIC first).
        gic.otherPending = true;
        cpu.interruptFlag = false;
        yield halt();
        put(memory, base + ARG, [[0, 4, 0]]);
        yield hypercall(Hypercall.sched_op, SchedOp.shutdown, base + ARG);
      },
      onInterrupt: (vector) => {
        levels.push(domain.eventLineLevel(0));
        expect(vector).toBe(EVENT_CHANNEL_PPI);
        // The guest's handler: clear evtchn_upcall_pending (a64 vcpu_info at offset 0).
        const context = domain.vcpus[0];
        (context.vcpuInfoPage as Uint8Array)[context.vcpuInfoOffset] = 0;
        levels.push(domain.eventLineLevel(0));
        assertedBeforeClear = gic.asserted.length;
      },
    });
    domain.attachVcpu(0, cpu, { interruptController: gic });
    cpu.interrupts = gic.cpuInterface(0);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 1000);
    expect(domain.state).toBe("destroyed");
    // Every assert names vCPU 0 and INTID 31; the first from the send, more at slice entries.
    expect(gic.asserted.every(([vcpu, intid]) => vcpu === 0 && intid === 31)).toBe(true);
    expect(assertedBeforeClear).toBeGreaterThanOrEqual(4);
    expect(gic.asserted.length).toBe(assertedBeforeClear);
    expect(cpu.interruptsTaken).toEqual([EVENT_CHANNEL_PPI]);
    expect(levels).toEqual([true, false]);
    expect(domain.eventLineLevel(5)).toBe(false);
  });
});

describe("arm64 vcpu_op", () => {
  it("offers register_vcpu_info and register_runstate_memory_area only (Xen do_arm_vcpu_op)", () => {
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
        yield hypercall(Hypercall.vcpu_op, VcpuOp.is_up, 0, 0);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, base + ARG);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.up, 7, 0);
        put(memory, base + ARG, [[0, 8, base + 0x2000]]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, 0, base + ARG);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, 7, base + ARG);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([-Errno.EINVAL, -Errno.EINVAL, -Errno.EINVAL, 0, -Errno.ENOENT]);
  });
});
