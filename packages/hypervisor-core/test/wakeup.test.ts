/**
 * Lost-wakeup regressions (issue 4: a Linux PVH guest that made no progress
 * for minutes with its host process idle). Each test puts a wakeup at the
 * moment a vCPU decides to sleep and checks that the vCPU does not sleep
 * through it, as Xen's vcpu_block / do_poll do by asking
 * local_events_need_delivery() after marking the vCPU blocked
 * (xen/common/sched/core.c, xen/arch/x86/hvm/hvm.c hvm_hlt).
 */
import {
  DomId,
  EvtchnOp,
  HvmOp,
  HvmParam,
  Hypercall,
  type InterruptSource,
  SchedOp,
  VcpuOp,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type ClockOptions, type Domain, Hypervisor } from "../src/index";
import { halt, hypercall, ScriptedVcpu, type ScriptProgram, work } from "../src/test/index";
import { put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
/** The callback vector the scripted guests install (HVM_PARAM_CALLBACK_IRQ type 2). */
const CALLBACK = 0xf3;
/** A local-APIC-like vector outside the hypervisor's knowledge. */
const APIC_VECTOR = 0xec;

function setCallbackVector(memory: ArrayBufferGuestMemory) {
  put(memory, ARG, [
    [0, 2, DomId.SELF],
    [4, 4, HvmParam.CALLBACK_IRQ],
    [8, 4, CALLBACK],
    [12, 4, 0x02000000],
  ]);
  return hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
}

function bindIpi(memory: ArrayBufferGuestMemory) {
  return hypercall(Hypercall.event_channel_op, EvtchnOp.bind_ipi, put(memory, ARG, [[0, 4, 0]]));
}

function shutdown(memory: ArrayBufferGuestMemory) {
  put(memory, ARG, [[0, 4, 0]]);
  return hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
}

function guest(
  program: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  clock: ClockOptions = { mode: "virtual" },
  onInterrupt?: (vector: number, cpu: ScriptedVcpu) => void,
) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({ name: "w", memory: 4 * MiB, vcpus: 1, clock });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({ program: () => program(memory, domain), onInterrupt });
  domain.attachVcpu(0, cpu);
  return { hypervisor, domain, memory, cpu };
}

/** Clears evtchn_upcall_pending, the selector and the pending bits (x64 shared_info) like a guest's upcall handler. */
function ackUpcall(domain: Domain) {
  const context = domain.vcpus[0];
  const page = context.vcpuInfoPage as Uint8Array;
  page[context.vcpuInfoOffset] = 0;
  page.fill(0, context.vcpuInfoOffset + 8, context.vcpuInfoOffset + 16);
  domain.sharedInfo.fill(0, 2048, 2560);
}

describe("lost wakeups", () => {
  it("hlt does not block while another interrupt source (a LAPIC) has an interrupt pending", () => {
    // The toolstack's LAPIC kicks once when its timer fires. If that happens while the guest runs
    // with IF=0 and the guest then does `sti; hlt`, the interrupt is pending in the APIC but not
    // in the upcall: blocking then waits for an event that was already delivered.
    let apicPending = false;
    const { hypervisor, domain, cpu } = guest(function* (memory, domain) {
      yield setCallbackVector(memory);
      cpu.interruptFlag = false; // cli
      yield work(100);
      apicPending = true; // the APIC timer fires now (host event loop) ...
      domain.vcpus[0].kick(); // ... and kicks a running vCPU: nothing to wake
      cpu.interruptFlag = true; // sti; hlt with the interrupt already waiting
      yield halt();
      yield shutdown(memory);
    });
    const context = domain.vcpus[0];
    const source: InterruptSource = {
      hasPending: () => context.hasPending() || apicPending,
      acknowledge: () => {
        if (context.hasPending()) return context.acknowledge();
        if (!apicPending) return -1;
        apicPending = false;
        return APIC_VECTOR;
      },
    };
    cpu.interrupts = source;
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 100);
    expect(cpu.interruptsTaken).toEqual([APIC_VECTOR]);
    expect(domain.state).toBe("destroyed");
  });

  it("SCHEDOP_poll returns at once when an event is already deliverable (Xen do_poll)", () => {
    // The guest polls port A while an upcall for port B is pending and deliverable. The send on B
    // already happened (upcall_pending 0 -> 1 kicked a running vCPU), and later sends on B do not
    // kick again: sleeping here loses the wakeup for good (timeout 0 = none).
    let portB = 0;
    const { hypervisor, domain, cpu } = guest(function* (memory, domain) {
      yield setCallbackVector(memory);
      yield bindIpi(memory);
      const portA = memory.read32(ARG + 4);
      yield bindIpi(memory);
      portB = memory.read32(ARG + 4);
      cpu.interruptFlag = false;
      domain.events.send(portB);
      put(memory, 0x2000, [[0, 4, portA]]);
      put(memory, 0x3000, [
        [0, 8, 0x2000],
        [8, 4, 1],
        [16, 8, 0],
      ]);
      cpu.interruptFlag = true; // the poll is made with the upcall pending and IF=1
      yield hypercall(Hypercall.sched_op, SchedOp.poll, 0x3000);
      yield shutdown(memory);
    });
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 100);
    expect(domain.vcpus[0].blocked).toBe(0);
    expect(cpu.results.slice(3)).toEqual([0]);
    expect(domain.state).toBe("destroyed");
  });

  it("SCHEDOP_block clears evtchn_upcall_mask (local_event_delivery_enable) and returns at once with an event pending", () => {
    const { hypervisor, domain, cpu } = guest(function* (memory, domain) {
      yield setCallbackVector(memory);
      yield bindIpi(memory);
      const port = memory.read32(ARG + 4);
      const context = domain.vcpus[0];
      (context.vcpuInfoPage as Uint8Array)[context.vcpuInfoOffset + 1] = 1; // upcall mask
      cpu.interruptFlag = false;
      domain.events.send(port);
      yield hypercall(Hypercall.sched_op, SchedOp.block, 0);
      yield shutdown(memory);
    });
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 100);
    expect(cpu.results).toEqual([0, 0, 0]);
    const context = domain.vcpus[0];
    expect(context.vcpuInfoPage?.[context.vcpuInfoOffset + 1]).toBe(0);
    expect(domain.state).toBe("destroyed");
  });

  it("a host-side send queued as the vCPU halts ends the scheduler's idle sleep (wall clock)", async () => {
    // The backend's notify runs on the host event loop after the slice, i.e. after the scheduler
    // decided to sleep until the far timer (10 s): the wake must cancel that sleep at once.
    const farNs = 10_000_000_000;
    let port = 0;
    let wokenAt = 0;
    const { hypervisor, domain, cpu } = guest(
      function* (memory, domain) {
        yield setCallbackVector(memory);
        yield bindIpi(memory);
        port = memory.read32(ARG + 4);
        for (let round = 0; round < 3; round++) {
          put(memory, ARG, [
            [0, 8, domain.clock.now() + farNs],
            [8, 4, 0],
          ]);
          yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG);
          // Round 0: a microtask (runs when the scheduler awaits its sleep); round 1: a host
          // timer while it sleeps; round 2: a macrotask queued before the sleep.
          if (round === 0) queueMicrotask(() => domain.events.send(port));
          else if (round === 1) setTimeout(() => domain.events.send(port), 20);
          else setImmediate(() => domain.events.send(port));
          yield halt();
        }
        wokenAt = performance.now();
        yield shutdown(memory);
      },
      { mode: "wall" },
      (_vector, _cpu) => ackUpcall(domain),
    );
    domain.unpause();
    const started = performance.now();
    await hypervisor.run();
    expect(domain.state).toBe("destroyed");
    expect(cpu.interruptsTaken).toEqual([CALLBACK, CALLBACK, CALLBACK]);
    // Far below the 10 s timer: each wake ended the sleep (generous for a loaded host).
    expect(wokenAt - started).toBeLessThan(3000);
  });
});
