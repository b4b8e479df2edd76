import {
  ConsoleIo,
  DomId,
  Errno,
  EvtchnOp,
  EvtchnStatus,
  GntStatus,
  GnttabOp,
  HvmOp,
  HvmParam,
  Hypercall,
  MapSpace,
  MemoryOp,
  SchedOp,
  VcpuOp,
  Virq,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type Domain, Hypervisor } from "../src/index";
import { halt, hypercall, ScriptedVcpu, type ScriptStep } from "../src/test/index";
import { get32, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;

type Program = (
  memory: ArrayBufferGuestMemory,
  domain: Domain,
) => Generator<ScriptStep, void, number>;

/** Runs a one-vCPU program to its end and returns its results. */
function run(
  program: Program,
  options: { longMode?: boolean; vcpus?: number; privilege?: number } = {},
) {
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "t",
    memory: 4 * MiB,
    vcpus: options.vcpus ?? 1,
    guestWidth: options.longMode === false ? 32 : 64,
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({
    program: () => program(memory, domain),
    longMode: options.longMode,
  });
  cpu.privilege = options.privilege ?? 0;
  domain.attachVcpu(0, cpu);
  domain.unpause();
  hypervisor.scheduler.runUntil(() => cpu.finished || domain.state !== "running", 10_000);
  return { hypervisor, domain, memory, cpu };
}

describe("hypercall conventions", () => {
  it("answers -ENOSYS for unknown and PV-only numbers, -EPERM above CPL 0", () => {
    const { cpu } = run(function* () {
      yield hypercall(Hypercall.mmu_update, 0, 0, 0);
      yield hypercall(Hypercall.multicall, ARG, 1);
      yield hypercall(Hypercall.physdev_op, 0, 0);
      yield hypercall(63);
      yield hypercall(0xffffffff);
      yield hypercall(Hypercall.memory_op, 99, ARG);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.expand_array, ARG);
    });
    expect(cpu.results).toEqual(Array(7).fill(-Errno.ENOSYS));
    const user = run(
      function* () {
        yield hypercall(Hypercall.xen_version, 0, 0);
      },
      { privilege: 3 },
    );
    expect(user.cpu.results).toEqual([-Errno.EPERM]);
  });

  it("answers -EFAULT for untranslatable pointers and leaves memory alone", () => {
    const { cpu } = run(function* () {
      yield hypercall(Hypercall.xen_version, 6, 2 ** 40);
      yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, 4 * MiB - 8); // struct crosses the end of RAM
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.send, 0xfffffffc);
    });
    expect(cpu.results).toEqual([-Errno.EFAULT, -Errno.EFAULT, -Errno.EFAULT]);
  });

  it("uses the x86_32 layouts for 32-bit callers", () => {
    const seen: number[] = [];
    const { domain, cpu } = run(
      function* (memory) {
        // x32 xen_add_to_physmap: idx u32 @8, gpfn u32 @12.
        put(memory, ARG, [
          [0, 2, DomId.SELF],
          [4, 4, MapSpace.shared_info],
          [8, 4, 0],
          [12, 4, 0x50],
        ]);
        yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG);
        // x32 memory_map: nr_entries @0, buffer @4.
        put(memory, ARG, [
          [0, 4, 4],
          [4, 4, 0x2000],
        ]);
        yield hypercall(Hypercall.memory_op, MemoryOp.memory_map, ARG);
        seen.push(get32(memory, ARG), get32(memory, 0x2000 + 8), get32(memory, 0x2000 + 16));
        // set_timer_op: EBX low, ECX high.
        yield hypercall(Hypercall.set_timer_op, 1000, 0);
      },
      { longMode: false },
    );
    expect(cpu.results).toEqual([0, 0, 0]);
    expect(domain.sharedInfoGfn).toBe(0x50);
    expect(seen).toEqual([1, 4 * MiB, 1]);
    expect(domain.vcpus[0].singleshotDeadline).toBe(1000); // EBX + ECX * 2^32
  });
});

describe("memory_op", () => {
  it("moves shared_info and grant frames, refuses bad indices and foreign domains", () => {
    const { domain, memory, cpu } = run(function* (m) {
      const physmap = (domid: number, space: number, idx: number, gpfn: number) => {
        put(m, ARG, [
          [0, 2, domid],
          [4, 4, space],
          [8, 8, idx],
          [16, 8, gpfn],
        ]);
        return hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG);
      };
      yield physmap(DomId.SELF, MapSpace.shared_info, 0, 0x10);
      yield physmap(DomId.SELF, MapSpace.shared_info, 0, 0x11); // moves
      yield physmap(DomId.SELF, MapSpace.shared_info, 1, 0x12);
      yield physmap(5, MapSpace.shared_info, 0, 0x12);
      yield physmap(DomId.SELF, MapSpace.grant_table, 3, 0x100000); // above RAM, grows to 4 frames
      yield physmap(DomId.SELF, MapSpace.grant_table, 64, 0x100001);
      yield physmap(DomId.SELF, MapSpace.grant_table, 0x80000000, 0x100001);
      yield physmap(DomId.SELF, MapSpace.gmfn, 0, 0x13);
      yield physmap(DomId.SELF, MapSpace.shared_info, 0, 2 ** 41);
    });
    expect(cpu.results).toEqual([
      0,
      0,
      -Errno.EINVAL,
      -Errno.ESRCH,
      0,
      -Errno.EINVAL,
      -Errno.EINVAL,
      -Errno.ENOSYS,
      -Errno.EINVAL,
    ]);
    expect(memory.frameKind(0x10)).toBe("ram");
    expect(memory.frame(0x11)).toBe(domain.sharedInfo);
    expect(domain.grants?.nrFrames).toBe(4);
    expect(memory.frame(0x100000)).toBe(domain.grants?.frames[3]);
  });

  it("balloons frames out and back, returning the extents done", () => {
    const { memory, cpu } = run(function* (m) {
      put(m, 0x3000, [
        [0, 8, 0x200],
        [8, 8, 0x201],
        [16, 8, 0x201], // already gone: stops here
      ]);
      const reservation = (extents: number) =>
        put(m, ARG, [
          [0, 8, 0x3000],
          [8, 8, extents],
          [16, 4, 0],
          [20, 4, 0],
          [24, 2, DomId.SELF],
        ]);
      reservation(3);
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation, ARG);
      reservation(2);
      yield hypercall(Hypercall.memory_op, MemoryOp.populate_physmap, ARG);
      put(m, 0x3800, [[0, 2, DomId.SELF]]);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation, 0x3800);
    });
    expect(cpu.results).toEqual([2, 2, 1024]);
    expect(memory.frameKind(0x200)).toBe("ram");
  });
});

describe("hvm_op", () => {
  it("lets the guest set only CALLBACK_IRQ and read the toolstack's params", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({ name: "p", memory: 4 * MiB, vcpus: 1 });
    hypervisor.host.hvmParams.set(domain.domid, HvmParam.STORE_PFN, 0xfeffc);
    hypervisor.host.hvmParams.set(domain.domid, HvmParam.STORE_EVTCHN, 1);
    expect(() => hypervisor.host.hvmParams.set(99, 1, 1)).toThrow(/no domain/);
    expect(() => hypervisor.host.hvmParams.get(domain.domid, 39)).toThrow(/no HVM param/);
    const memory = domain.memory as ArrayBufferGuestMemory;
    let storePfn = 0;
    const cpu = new ScriptedVcpu({
      program: function* () {
        put(memory, ARG, [
          [0, 2, DomId.SELF],
          [4, 4, HvmParam.STORE_PFN],
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.get_param, ARG);
        storePfn = memory.read32(ARG + 8);
        put(memory, ARG, [
          [0, 2, DomId.SELF],
          [4, 4, HvmParam.STORE_PFN],
          [8, 8, 5],
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
        put(memory, ARG, [
          [0, 2, DomId.SELF],
          [4, 4, 39],
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.get_param, ARG);
        put(memory, ARG, [
          [0, 2, 0],
          [4, 4, 1],
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.get_param, ARG);
        put(memory, ARG, [
          [0, 2, DomId.SELF],
          [4, 4, HvmParam.CALLBACK_IRQ],
          [8, 8, 1], // GSI 1: Linux's per-vCPU-vector mode; no delivery
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG);
        put(memory, 0x2000, [
          [0, 4, 0],
          [4, 1, 0x0f],
        ]);
        yield hypercall(Hypercall.hvm_op, HvmOp.set_evtchn_upcall_vector, 0x2000);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([0, -Errno.EPERM, -Errno.EINVAL, -Errno.ESRCH, 0, -Errno.EINVAL]);
    expect(storePfn).toBe(0xfeffc);
    expect(domain.callbackVector).toBe(0);
  });
});

describe("vcpu_op and sched_op", () => {
  it("checks vCPU ids, the caller for singleshot timers, the future flag and registration rules", () => {
    const { cpu, domain } = run(
      function* (memory) {
        yield hypercall(Hypercall.vcpu_op, VcpuOp.is_up, 0, 0);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.is_up, 1, 0);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.is_up, 2, 0);
        put(memory, ARG, [
          [0, 8, 1],
          [8, 4, 1],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 1, ARG);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.set_singleshot_timer, 0, ARG); // in the past with FUTURE
        put(memory, ARG, [
          [0, 8, 0x30],
          [8, 4, 4096 - 32],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 1, ARG); // crosses the page
        put(memory, ARG, [
          [0, 8, 0x100000],
          [8, 4, 0],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 1, ARG); // not RAM
        put(memory, ARG, [
          [0, 8, 0x30],
          [8, 4, 64],
        ]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.register_vcpu_info, 1, ARG);
        put(memory, ARG, [[0, 8, 100_000]]);
        yield hypercall(Hypercall.vcpu_op, VcpuOp.set_periodic_timer, 0, ARG); // below 1 ms
        yield hypercall(Hypercall.vcpu_op, VcpuOp.up, 1, 0); // no CPU attached
        // Not offered (no NMI entry in the Vcpu contract).
        yield hypercall(Hypercall.vcpu_op, VcpuOp.send_nmi, 0, ARG);
      },
      { vcpus: 2 },
    );
    expect(cpu.results).toEqual([
      1,
      0,
      -Errno.ENOENT,
      -Errno.EINVAL,
      -Errno.ETIME,
      -Errno.EINVAL,
      -Errno.EINVAL,
      0,
      -Errno.EINVAL,
      -Errno.EINVAL,
      -Errno.ENOSYS,
    ]);
    expect(domain.vcpus[1].vcpuInfoOffset).toBe(64);
    // The registered area was set up for a rescan: upcall_pending and every selector bit.
    const page = domain.vcpus[1].vcpuInfoPage as Uint8Array;
    expect(page[64]).toBe(1);
    expect(page[64 + 8]).toBe(0xff);
  });

  it("SCHEDOP_poll returns at once for a pending (even masked) port and wakes on a raise", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({ name: "poll", memory: 4 * MiB, vcpus: 1 });
    const memory = domain.memory as ArrayBufferGuestMemory;
    let port = 0;
    const cpu = new ScriptedVcpu({
      program: function* () {
        yield hypercall(
          Hypercall.event_channel_op,
          EvtchnOp.bind_ipi,
          put(memory, ARG, [[0, 4, 0]]),
        );
        port = memory.read32(ARG + 4);
        domain.sharedInfo[2560 + (port >> 3)] |= 1 << (port & 7); // masked
        put(memory, 0x2000, [[0, 4, port]]);
        put(memory, 0x3000, [
          [0, 8, 0x2000],
          [8, 4, 1],
          [16, 8, 0],
        ]);
        yield hypercall(Hypercall.sched_op, SchedOp.poll, 0x3000); // blocks
        yield hypercall(Hypercall.sched_op, SchedOp.poll, 0x3000); // pending now: returns at once
        put(memory, 0x3000, [[8, 4, 129]]);
        yield hypercall(Hypercall.sched_op, SchedOp.poll, 0x3000);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.results.length === 2, 100);
    expect(domain.vcpus[0].blocked).toBe(3);
    expect(hypervisor.scheduler.step()).toBe("waiting");
    domain.events.send(port);
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([0, 0, 0, -Errno.EINVAL]);
  });

  it("a halted vCPU with interrupts off powers the domain off; SCHEDOP_shutdown reasons map to actions", () => {
    const events: string[] = [];
    const off = run(function* (_memory, domain) {
      domain.hypervisor.onDomainEvent(
        (event) => event.kind === "shutdown" && events.push(`${event.reason}:${event.action}`),
      );
      (domain.vcpus[0].vcpu as ScriptedVcpu).interruptFlag = false;
      yield halt();
    });
    expect(off.domain.state).toBe("destroyed");
    expect(events).toEqual(["poweroff:destroy"]);
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({
      name: "c",
      memory: MiB,
      vcpus: 1,
      onShutdown: { crash: "preserve" },
    });
    const memory = domain.memory as ArrayBufferGuestMemory;
    const cpu = new ScriptedVcpu({
      program: function* () {
        yield hypercall(Hypercall.sched_op, SchedOp.shutdown, put(memory, ARG, [[0, 4, 3]]));
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state !== "running", 100);
    expect(domain.state).toBe("shutdown");
    expect(domain.info().shutdownReason).toBe("crash");
  });
});

describe("event_channel_op and grant_table_op from a guest", () => {
  it("reports status, refuses foreign domains, and sizes the grant table", () => {
    const statusSeen: number[] = [];
    const { cpu, memory } = run(function* (m) {
      put(m, ARG, [
        [0, 4, Virq.DEBUG],
        [4, 4, 0],
      ]);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_virq, ARG);
      const port = m.read32(ARG + 8);
      put(m, 0x2000, [
        [0, 2, DomId.SELF],
        [4, 4, port],
      ]);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.status, 0x2000);
      statusSeen.push(m.read32(0x2000 + 8), m.read32(0x2000 + 12), m.read32(0x2000 + 16));
      put(m, 0x2000, [[0, 2, 0]]);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.status, 0x2000);
      put(m, 0x2100, [
        [0, 2, 0],
        [2, 2, 0],
      ]);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.alloc_unbound, 0x2100);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.init_control, 0x2100);
      put(m, 0x2200, [[0, 4, 2]]);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.set_version, 0x2200, 1);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.set_version, 0x2200, 1); // written back as 1
      yield hypercall(Hypercall.grant_table_op, GnttabOp.set_version, 0x2200, 2); // count must be 1
      yield hypercall(Hypercall.grant_table_op, GnttabOp.dump_table, 0x2200, 1);
      put(m, 0x2300, [[0, 2, 3]]);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.query_size, 0x2300, 1);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.copy, 0x2300, 0x80000000);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.map_grant_ref, 0x2400, 1);
    });
    expect(cpu.results).toEqual([
      0,
      0,
      -Errno.EPERM,
      -Errno.EPERM,
      -Errno.ENOSYS,
      -Errno.ENOSYS,
      0,
      -Errno.EINVAL,
      -Errno.ENOSYS,
      0,
      -Errno.EINVAL,
      0,
    ]);
    expect(statusSeen).toEqual([EvtchnStatus.virq, 0, Virq.DEBUG]);
    expect(memory.read16(0x2300 + 12)).toBe(GntStatus.bad_domain & 0xffff);
    expect(memory.read16(0x2400 + 18)).toBe(GntStatus.general_error & 0xffff);
  });
});

describe("console_io", () => {
  it("writes lines to the hypervisor log and caps a domain's output", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({ name: "c", memory: MiB, vcpus: 1, consoleLimit: 32 });
    const memory = domain.memory as ArrayBufferGuestMemory;
    const text = new TextEncoder().encode("hello from the guest\nsecond line that is long\n");
    memory.writeBytes(0x2000, text);
    const cpu = new ScriptedVcpu({
      program: function* () {
        yield hypercall(Hypercall.console_io, ConsoleIo.write, text.length, 0x2000);
        yield hypercall(Hypercall.console_io, ConsoleIo.write, 0xffffffff, 0x2000);
        yield hypercall(Hypercall.console_io, ConsoleIo.read, 10, 0x2000);
      },
    });
    domain.attachVcpu(0, cpu);
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(cpu.results).toEqual([0, 0, 0]);
    expect(hypervisor.dmesg()).toContain(`(d${domain.domid}) hello from the guest`);
    expect(hypervisor.dmesg().some((line) => line.includes("rate limit reached"))).toBe(true);
  });
});
