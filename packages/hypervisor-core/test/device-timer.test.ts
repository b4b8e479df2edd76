/**
 * Device-model timers on the scheduler (issue 4's 2-3 minute stall: a LAPIC
 * deadline the scheduler did not know about, in virtual-clock mode) and the
 * stall log of long idle sleeps.
 */
import { DomId, EvtchnOp, HvmOp, HvmParam, Hypercall, SchedOp, VcpuOp } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type ClockOptions, type Domain, Hypervisor } from "../src/index";
import { halt, hypercall, ScriptedVcpu, type ScriptProgram, work } from "../src/test/index";
import { put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const CALLBACK = 0xf3;

/** A guest that installs the callback vector and binds an IPI port the host raises later. */
function guest(
  program: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  clock: ClockOptions = { mode: "virtual" },
  stallLogMs?: number,
) {
  const hypervisor = new Hypervisor({ scheduler: { stallLogMs } });
  const logs: string[] = [];
  hypervisor.onLog((line) => logs.push(line));
  const domain = hypervisor.createDomain({ name: "t", memory: 4 * MiB, vcpus: 1, clock });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({
    program: () => program(memory, domain),
    onInterrupt: () => {
      // The guest's upcall handler: clear upcall_pending and the pending bits (x64 shared_info).
      const context = domain.vcpus[0];
      const page = context.vcpuInfoPage as Uint8Array;
      page[context.vcpuInfoOffset] = 0;
      page.fill(0, context.vcpuInfoOffset + 8, context.vcpuInfoOffset + 16);
      domain.sharedInfo.fill(0, 2048, 2560);
    },
  });
  domain.attachVcpu(0, cpu);
  return { hypervisor, domain, memory, cpu, logs };
}

function* setup(memory: ArrayBufferGuestMemory) {
  put(memory, ARG, [
    [0, 2, DomId.SELF],
    [4, 4, HvmParam.CALLBACK_IRQ],
    [8, 4, CALLBACK],
    [12, 4, 0x02000000],
  ]);
  yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
  yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_ipi, put(memory, ARG, [[0, 4, 0]]));
  return memory.read32(ARG + 4);
}

function shutdown(memory: ArrayBufferGuestMemory) {
  put(memory, ARG, [[0, 4, 0]]);
  return hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
}

describe("device-model timers", () => {
  it("wake a halted vCPU in virtual-clock mode at exactly their deadline", () => {
    // Before the scheduler knew device timers, this guest waited forever: nothing runnable, no
    // Xen timer, so the virtual clock never moved and the "waiting" host slept.
    const fired: number[] = [];
    let woke = 0;
    let deadline = 0;
    const { hypervisor, domain, cpu } = guest(function* (memory, domain) {
      const port = yield* setup(memory);
      const timer = domain.createTimer(() => {
        fired.push(domain.clock.now());
        domain.events.send(port); // what a LAPIC's interrupt line does through the VMM
      });
      deadline = domain.clock.now() + 2_000_000;
      timer.set(deadline);
      yield halt();
      woke = domain.clock.now();
      yield shutdown(memory);
    });
    domain.unpause();
    const done = hypervisor.scheduler.runUntil(() => domain.state !== "running", 1000);
    expect(done).toBe(true);
    expect(cpu.interruptsTaken).toEqual([CALLBACK]);
    expect(fired).toEqual([deadline]);
    expect(woke).toBeGreaterThanOrEqual(deadline);
  });

  it("fire before a later Xen timer (no skip past the device deadline) and end a running slice on time", () => {
    const fired: number[] = [];
    let deadlines: number[] = [];
    const { hypervisor, domain } = guest(function* (memory, domain) {
      const port = yield* setup(memory);
      const timer = domain.createTimer(() => {
        fired.push(domain.clock.now());
        domain.events.send(port);
      });
      const start = domain.clock.now();
      deadlines = [start + 1_000_000, start + 1_000_000 + 37];
      // A Xen singleshot timer far beyond the device deadline.
      put(memory, 0x2000, [
        [0, 8, start + 50_000_000],
        [8, 4, 0],
      ]);
      yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, 0x2000);
      timer.set(deadlines[0]);
      yield halt();
      // Running: armed at an exit (a hypercall), the next device deadline ends the slice at
      // its exact instruction.
      timer.set(deadlines[1]);
      yield hypercall(Hypercall.xen_version, 0, 0);
      yield work(1_000_000);
      yield shutdown(memory);
    });
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 10_000);
    expect(fired).toEqual(deadlines);
  });

  it("end the host's idle sleep in wall-clock mode; a destroyed domain's timers stop", async () => {
    const fired: number[] = [];
    const { hypervisor, domain, cpu } = guest(
      function* (memory, domain) {
        const port = yield* setup(memory);
        const timer = domain.createTimer(() => {
          fired.push(domain.clock.now());
          domain.events.send(port);
        });
        timer.set(domain.clock.now() + 30_000_000); // 30 ms
        yield halt();
        yield shutdown(memory);
      },
      { mode: "wall" },
    );
    domain.unpause();
    const started = performance.now();
    await hypervisor.run();
    expect(domain.state).toBe("destroyed");
    expect(cpu.interruptsTaken).toEqual([CALLBACK]);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(30_000_000);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(domain.deviceTimers).toHaveLength(0);
  });
});

describe("the stall log", () => {
  it("reports every vCPU's block reason, timers and event state when the host idles too long", async () => {
    const { hypervisor, domain, logs } = guest(
      function* (memory, domain) {
        yield* setup(memory);
        put(memory, 0x2000, [
          [0, 8, domain.clock.now() + 300_000_000], // 300 ms
          [8, 4, 0],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, 0x2000);
        yield halt();
        yield shutdown(memory);
      },
      { mode: "wall" },
      20,
    );
    // VIRQ_TIMER is not bound: the timer fires without waking the vCPU, which then sleeps with no
    // deadline at all; the host stops it after the report.
    domain.unpause();
    const running = hypervisor.run();
    await new Promise((resolve) => setTimeout(resolve, 500));
    hypervisor.stop();
    await running;
    const report = logs.join("\n");
    expect(report).toMatch(/scheduler: host idle for 20 ms, sleeping for \d+ ms; vCPU state:/);
    expect(report).toMatch(/v0 online blocked=halt upcall_pending=0 upcall_mask=0 vector=243/);
    expect(report).toMatch(/singleshot=\+\d+ns/);
    expect(report).toMatch(/scheduler: idle sleep ended after \d+ ms \(deadline\)/);
    expect(report).toMatch(/sleeping until host I\/O wakes it/);
  });
});
