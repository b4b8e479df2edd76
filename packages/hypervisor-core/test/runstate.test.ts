/**
 * The runstate area (Xen public vcpu.h, common/sched/core.c
 * vcpu_runstate_change, update_runstate_area at context switch), vm_assist
 * and physdev_op as Xen answers a PVH/arm64 domU.
 */
import { abiLayouts, Errno, Hypercall, RunstateState, SchedOp, VcpuOp } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type Domain, Hypervisor } from "../src/index";
import { hypercall, ScriptedVcpu, type ScriptProgram, work } from "../src/test/index";
import { get64, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const AREA0 = 0x5000;
const AREA1 = 0x5100;

/** Reads a guest runstate struct with the offsets of the C header for `abi`. */
function readRunstate(memory: ArrayBufferGuestMemory, address: number, abi: "x86_64" | "x86_32") {
  const layout = abiLayouts(abi).vcpu_runstate_info;
  const offsets = layout.offsets as Record<string, number>;
  const time = [0, 1, 2, 3].map((i) => get64(memory, address + offsets.time + i * 8));
  return {
    state: memory.read32(address + offsets.state) | 0,
    entry: get64(memory, address + offsets.state_entry_time),
    time,
    total: time.reduce((sum, value) => sum + value, 0),
  };
}

function registerRunstate(
  memory: ArrayBufferGuestMemory,
  vcpu: number,
  address: number,
  longMode = true,
) {
  // The union's high half holds garbage for a 32-bit caller (Linux does not clear it).
  put(memory, ARG, [
    [0, 4, address],
    [4, 4, longMode ? 0 : 0xdeadbeef],
  ]);
  return hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, vcpu, ARG);
}

function twoVcpus(
  first: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  second: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  longMode = true,
) {
  const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 1000 } });
  const domain = hypervisor.createDomain({
    name: "runstate",
    memory: 4 * MiB,
    vcpus: 2,
    guestWidth: longMode ? 64 : 32,
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpus = [first, second].map(
    (program) => new ScriptedVcpu({ program: () => program(memory, domain), longMode }),
  );
  cpus.forEach((cpu, id) => {
    domain.attachVcpu(id, cpu);
  });
  return { hypervisor, domain, memory, cpus };
}

describe("the runstate area", () => {
  for (const longMode of [true, false]) {
    const abi = longMode ? "x86_64" : "x86_32";
    it(`is written at every switch with time per state adding up (${abi})`, () => {
      const seen: ReturnType<typeof readRunstate>[] = [];
      let secondUp = false;
      const { hypervisor, domain, cpus } = twoVcpus(
        function* (memory) {
          yield registerRunstate(memory, 0, AREA0, longMode);
          // Right after registration the caller sees itself running.
          seen.push(readRunstate(memory, AREA0, abi));
          yield registerRunstate(memory, 1, AREA1, longMode);
          yield hypercall(Hypercall.vcpu_op, VcpuOp.up, 1, 0);
          // vCPU 1 now shares the CPU: vCPU 0 spends slices runnable (steal time).
          while (!secondUp) yield work(500);
          yield work(200_000);
          seen.push(readRunstate(memory, AREA0, abi));
          seen.push(readRunstate(memory, AREA1, abi));
          put(memory, ARG, [[0, 4, 0]]);
          yield hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
        },
        function* (memory) {
          secondUp = true;
          yield work(5000);
          // SCHEDOP_poll on no port with a timeout 100 us ahead: blocked time accumulates.
          put(memory, 0x2000, [
            [0, longMode ? 8 : 4, 0],
            [longMode ? 8 : 4, 4, 0],
            [longMode ? 16 : 8, 8, domain.clock.now() + 100_000],
          ]);
          yield hypercall(Hypercall.sched_op, SchedOp.poll, 0x2000);
          for (;;) yield work(1000);
        },
        longMode,
      );
      domain.unpause();
      hypervisor.scheduler.runUntil(() => domain.state !== "running", 10_000);
      expect(cpus[0].results.slice(0, 3)).toEqual([0, 0, 0]);
      const [registered, own, other] = seen;
      expect(registered.state).toBe(RunstateState.running);
      // Every ns since creation is charged to exactly one state (all started offline at 0).
      for (const runstate of seen) expect(runstate.total).toBe(runstate.entry);
      expect(own.state).toBe(RunstateState.running);
      expect(own.time[RunstateState.runnable]).toBeGreaterThan(0);
      expect(own.time[RunstateState.running]).toBeGreaterThan(100_000);
      // vCPU 1 was last switched out runnable (vCPU 0 runs now) and blocked for the timer.
      expect(other.state).toBe(RunstateState.runnable);
      expect(other.time[RunstateState.blocked]).toBeGreaterThanOrEqual(90_000);
      expect(other.time[RunstateState.offline]).toBeGreaterThan(0);
    });
  }

  it("a null handle unregisters; get_runstate_info reports up to now; bad pointers are -EFAULT", () => {
    let before = 0;
    const { hypervisor, domain, memory, cpus } = twoVcpus(
      function* (memory, domain) {
        yield registerRunstate(memory, 0, AREA0);
        put(memory, ARG, [[0, 8, 0]]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, 0, ARG);
        memory.write32(AREA0, 0x77);
        yield work(5000);
        before = domain.clock.now();
        yield hypercall(Hypercall.vcpu_op, VcpuOp.get_runstate_info, 1, 0x3000);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.get_runstate_info, 0, 0x3000 + 0x100);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.get_runstate_info, 0, 2 ** 40);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, 0, 2 ** 40);
        // An unmapped area is accepted and its copies fail silently (Xen ignores them).
        put(memory, ARG, [[0, 8, 2 ** 40]]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_runstate_memory_area, 0, ARG);
        yield work(5000);
        put(memory, ARG, [[0, 4, 0]]);
        yield hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
      },
      function* () {},
    );
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 10_000);
    expect(cpus[0].results).toEqual([0, 0, 0, 0, -Errno.EFAULT, -Errno.EFAULT, 0]);
    expect(memory.read32(AREA0)).toBe(0x77);
    const offline = readRunstate(memory, 0x3000, "x86_64");
    expect(offline.state).toBe(RunstateState.offline);
    expect(offline.entry).toBe(0);
    expect(offline.time[RunstateState.offline]).toBeGreaterThanOrEqual(before);
    const running = readRunstate(memory, 0x3100, "x86_64");
    expect(running.state).toBe(RunstateState.running);
    expect(running.total).toBeGreaterThanOrEqual(before);
  });
});

describe("vm_assist and physdev_op", () => {
  it("vm_assist accepts only runstate_update_flag, as Xen for HVM/PVH and arm", () => {
    const { hypervisor, domain, cpus } = twoVcpus(
      function* () {
        yield hypercall(Hypercall.vm_assist, 0, 5); // enable runstate_update_flag
        yield hypercall(Hypercall.vm_assist, 1, 5); // disable
        yield hypercall(Hypercall.vm_assist, 0, 2); // writable_pagetables: PV only
        yield hypercall(Hypercall.vm_assist, 0, 64); // beyond BITS_PER_LONG
        yield hypercall(Hypercall.vm_assist, 2, 5); // unknown command
        yield hypercall(Hypercall.vm_assist, 0, 5);
        put(domain.memory as ArrayBufferGuestMemory, ARG, [[0, 4, 0]]);
        yield hypercall(Hypercall.sched_op, SchedOp.shutdown, ARG);
      },
      function* () {},
    );
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 1000);
    expect(cpus[0].results).toEqual([0, 0, -Errno.EINVAL, -Errno.EINVAL, -Errno.ENOSYS, 0]);
    expect(domain.vmAssist).toBe(1 << 5);
  });

  it("physdev_op answers -ENOSYS for every sub-op (no PIRQs in a PVH domU)", () => {
    const { hypervisor, domain, cpus } = twoVcpus(
      function* () {
        // eoi, irq_status_query, map_pirq, get_free_pirq, pirq_eoi_gmfn_v2 (Xen public physdev.h).
        for (const cmd of [12, 5, 13, 23, 28]) yield hypercall(Hypercall.physdev_op, cmd, ARG);
      },
      function* () {},
    );
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpus[0].finished, 1000);
    expect(cpus[0].results).toEqual(Array(5).fill(-Errno.ENOSYS));
  });
});
