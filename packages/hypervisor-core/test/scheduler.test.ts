import {
  DomId,
  EvtchnOp,
  HvmOp,
  HvmParam,
  Hypercall,
  SchedOp,
  VcpuExitReason,
  VcpuOp,
  Virq,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type ClockOptions, type Domain, Hypervisor } from "../src/index";
import { halt, hypercall, ScriptedVcpu, type ScriptStep, work } from "../src/test/index";
import { put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;

/** A guest that sets up the timer VIRQ and the callback vector, then sleeps `sleepNs` per round in hlt. */
function sleeper(domain: Domain, memory: ArrayBufferGuestMemory, rounds: number, sleepNs: number) {
  return function* (): Generator<ScriptStep, void, number> {
    put(memory, ARG, [
      [0, 2, DomId.SELF],
      [4, 4, HvmParam.CALLBACK_IRQ],
      [8, 4, 0xf3],
      [12, 4, 0x02000000],
    ]);
    yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
    put(memory, ARG, [
      [0, 4, Virq.TIMER],
      [4, 4, 0],
    ]);
    yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_virq, ARG);
    for (let round = 0; round < rounds; round++) {
      yield work(1000 + round * 37);
      put(memory, ARG, [
        [0, 8, domain.clock.now() + sleepNs],
        [8, 4, 0],
      ]);
      yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG);
      yield halt();
    }
    put(memory, ARG, [[0, 4, 0]]);
    yield hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
  };
}

function guest(hypervisor: Hypervisor, clock: ClockOptions, rounds: number, sleepNs: number) {
  const domain = hypervisor.createDomain({ name: "sleeper", memory: MiB, vcpus: 1, clock });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({
    program: sleeper(domain, memory, rounds, sleepNs),
    onInterrupt: () => {
      const info = domain.vcpus[0];
      const page = info.vcpuInfoPage as Uint8Array;
      page[info.vcpuInfoOffset] = 0;
      page.fill(0, info.vcpuInfoOffset + 8, info.vcpuInfoOffset + 16);
      domain.sharedInfo.fill(0, 2048, 2560);
    },
  });
  domain.attachVcpu(0, cpu);
  return { domain, cpu };
}

describe("scheduler", () => {
  it("is bit-for-bit reproducible with a virtual clock", async () => {
    const trace = async () => {
      const hypervisor = new Hypervisor();
      const a = guest(hypervisor, { mode: "virtual", wallclockEpochMs: 0 }, 20, 2_000_000);
      const b = guest(hypervisor, { mode: "virtual", wallclockEpochMs: 0 }, 13, 3_500_000);
      const log: string[] = [];
      hypervisor.onDomainEvent((event) =>
        log.push(`${event.kind}:${event.domid}@${a.domain.clock.now()}/${b.domain.clock.now()}`),
      );
      a.domain.unpause();
      b.domain.unpause();
      await hypervisor.run();
      return {
        log,
        slices: hypervisor.scheduler.slices,
        interrupts: [a.cpu.interruptsTaken.length, b.cpu.interruptsTaken.length],
      };
    };
    const first = await trace();
    const second = await trace();
    expect(second).toEqual(first);
    expect(first.interrupts).toEqual([20, 13]);
  });

  it("counts exits by reason and virtual-clock idle skips (for profiling)", async () => {
    const hypervisor = new Hypervisor();
    const rounds = 5;
    const { domain } = guest(
      hypervisor,
      { mode: "virtual", wallclockEpochMs: 0 },
      rounds,
      2_000_000,
    );
    domain.unpause();
    await hypervisor.run();
    const { exits, idleSkips } = hypervisor.scheduler;
    // Two set-up hypercalls, one timer hypercall per round, the shutdown.
    expect(exits[VcpuExitReason.Hypercall]).toBe(2 + rounds + 1);
    expect(exits[VcpuExitReason.Halt]).toBe(rounds);
    expect(idleSkips).toBe(rounds);
  });

  it("sleeps on a real timer when every vCPU is blocked (wall clock): an idle guest costs ~no host CPU", async () => {
    const hypervisor = new Hypervisor();
    const sleepNs = 60_000_000;
    const rounds = 3;
    const { cpu } = guest(hypervisor, { mode: "wall" }, rounds, sleepNs);
    hypervisor.dmesg();
    const startWall = performance.now();
    const startCpu = process.cpuUsage();
    (hypervisor.domain(1) as Domain).unpause();
    await hypervisor.run();
    const wallMs = performance.now() - startWall;
    const used = process.cpuUsage(startCpu);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(
      `idle test: ${wallMs.toFixed(0)} ms wall, ${cpuMs.toFixed(1)} ms host CPU (${((100 * cpuMs) / wallMs).toFixed(1)}%)`,
    );
    expect(cpu.interruptsTaken.length).toBe(rounds);
    expect(wallMs).toBeGreaterThanOrEqual((rounds * sleepNs) / 1e6 - 5);
    expect(cpuMs).toBeLessThan(wallMs * 0.25);
  });

  it("round-robins between domains in slices of retired instructions", () => {
    const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 1000 } });
    const cpus = [1, 2].map((n) => {
      const domain = hypervisor.createDomain({ name: `busy${n}`, memory: MiB, vcpus: 1 });
      const cpu = new ScriptedVcpu({
        program: function* () {
          yield work(1_000_000);
        },
      });
      domain.attachVcpu(0, cpu);
      domain.unpause();
      return cpu;
    });
    for (let i = 0; i < 10; i++) hypervisor.scheduler.step();
    expect(cpus.map((cpu) => cpu.instructionsRetired)).toEqual([5000, 5000]);
  });

  it("stops on request and leaves paused domains alone", async () => {
    const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 1000 } });
    const domain = hypervisor.createDomain({ name: "paused", memory: MiB, vcpus: 1 });
    const cpu = new ScriptedVcpu({
      program: function* () {
        yield work(1e12);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    domain.pause();
    expect(hypervisor.scheduler.step()).toBe("waiting");
    expect(cpu.instructionsRetired).toBe(0);
    domain.unpause();
    const running = hypervisor.run();
    setTimeout(() => hypervisor.stop(), 20);
    await running;
    expect(cpu.instructionsRetired).toBeGreaterThan(0);
    expect(domain.info().instructionsRetired).toBe(cpu.instructionsRetired);
  });
});
