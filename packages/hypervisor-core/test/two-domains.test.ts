import {
  DomId,
  EvtchnOp,
  GntCopy,
  GntStatus,
  GnttabOp,
  GrantFlags,
  HvmOp,
  HvmParam,
  Hypercall,
  MapSpace,
  MemoryOp,
  SchedOp,
} from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { type Domain, Hypervisor, PsciFunction, PsciReturn, vcpuAffinity } from "../src/index";
import {
  hypercall,
  platformCall,
  ScriptedVcpu,
  type ScriptProgram,
  type ScriptStep,
} from "../src/test/index";
import { get32, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const SHARED_GFN = 0x20;
const GRANT_GFN = 0x100;
const DATA_GFN = 0x30;
const MESSAGE = "hello over a granted page";

function guest(
  hypervisor: Hypervisor,
  name: string,
  program: (domain: Domain, memory: ArrayBufferGuestMemory) => ScriptProgram,
) {
  const domain = hypervisor.createDomain({ name, memory: 4 * MiB, vcpus: 1 });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const upcalls: number[] = [];
  const cpu = new ScriptedVcpu({
    program: program(domain, memory),
    onInterrupt: (vector) => {
      upcalls.push(vector);
      const info = domain.vcpus[0];
      const page = info.vcpuInfoPage;
      if (page !== null) {
        page[info.vcpuInfoOffset] = 0;
        page.fill(0, info.vcpuInfoOffset + 8, info.vcpuInfoOffset + 16);
      }
    },
  });
  domain.attachVcpu(0, cpu);
  return { domain, memory, cpu, upcalls };
}

/** Maps shared_info and grant frame 0, and sets the callback vector: what Linux does at boot. */
function* setup(memory: ArrayBufferGuestMemory): Generator<ScriptStep, void, number> {
  put(memory, ARG, [
    [0, 2, DomId.SELF],
    [4, 4, MapSpace.shared_info],
    [8, 8, 0],
    [16, 8, SHARED_GFN],
  ]);
  expect(yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG)).toBe(0);
  put(memory, ARG, [
    [0, 2, DomId.SELF],
    [4, 4, MapSpace.grant_table],
    [8, 8, 0],
    [16, 8, GRANT_GFN],
  ]);
  expect(yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG)).toBe(0);
  put(memory, ARG, [
    [0, 2, DomId.SELF],
    [4, 4, HvmParam.CALLBACK_IRQ],
    [8, 4, 0xf3],
    [12, 4, 0x02000000],
  ]);
  expect(yield hypercall(Hypercall.hvm_op, HvmOp.set_param, ARG)).toBe(0);
}

describe("two domains", () => {
  it("pass a message over an interdomain event channel and a granted page", () => {
    const hypervisor = new Hypervisor();
    const shared = { port: 0, ref: 8, reply: "" };
    let done = false;
    const front = guest(
      hypervisor,
      "front",
      (domain, memory) =>
        function* () {
          yield* setup(memory);
          put(memory, ARG, [
            [0, 2, DomId.SELF],
            [2, 2, 2],
          ]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.alloc_unbound, ARG)).toBe(0);
          const port = get32(memory, ARG + 4);
          put(memory, ARG, [[0, 4, port]]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.unmask, ARG)).toBe(0);
          // Grant DATA_GFN to domain 2, writable, through the grant frame mapped in guest memory.
          memory.writeBytes(DATA_GFN * 4096, new TextEncoder().encode(MESSAGE));
          put(memory, GRANT_GFN * 4096 + shared.ref * 8, [
            [2, 2, 2],
            [4, 4, DATA_GFN],
          ]);
          memory.write16(GRANT_GFN * 4096 + shared.ref * 8, GrantFlags.permit_access);
          shared.port = port;
          // Wait for the peer's notification (the upcall), yielding like an idle loop.
          while (front.upcalls.length === 0) yield hypercall(Hypercall.sched_op, SchedOp.yield, 0);
          const reply = new Uint8Array(5);
          memory.readBytes(DATA_GFN * 4096 + 1024, reply);
          shared.reply = new TextDecoder().decode(reply);
          void domain;
          done = true;
        },
    );
    const back = guest(
      hypervisor,
      "back",
      (_domain, memory) =>
        function* () {
          yield* setup(memory);
          while (shared.port === 0) yield hypercall(Hypercall.sched_op, SchedOp.yield, 0);
          put(memory, ARG, [
            [0, 2, 1],
            [4, 4, shared.port],
          ]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_interdomain, ARG)).toBe(
            0,
          );
          const local = get32(memory, ARG + 8);
          // GNTTABOP_copy: source = front's grant, dest = own frame 0x40.
          put(memory, ARG, [
            [0, 4, shared.ref],
            [8, 2, 1],
            [10, 2, 0],
            [16, 8, 0x40],
            [24, 2, DomId.SELF],
            [26, 2, 0],
            [32, 2, MESSAGE.length],
            [34, 2, GntCopy.source_gref],
          ]);
          expect(yield hypercall(Hypercall.grant_table_op, GnttabOp.copy, ARG, 1)).toBe(0);
          expect(memory.read16(ARG + 36)).toBe(GntStatus.okay);
          const received = new Uint8Array(MESSAGE.length);
          memory.readBytes(0x40 * 4096, received);
          expect(new TextDecoder().decode(received)).toBe(MESSAGE);
          // Reply into the granted page (dest_gref), then notify.
          memory.writeBytes(0x41 * 4096, new TextEncoder().encode("reply"));
          put(memory, ARG, [
            [0, 8, 0x41],
            [8, 2, DomId.SELF],
            [10, 2, 0],
            [16, 4, shared.ref],
            [20, 4, 0],
            [24, 2, 1],
            [26, 2, 1024],
            [32, 2, 5],
            [34, 2, GntCopy.dest_gref],
          ]);
          expect(yield hypercall(Hypercall.grant_table_op, GnttabOp.copy, ARG, 1)).toBe(0);
          expect(memory.read16(ARG + 36)).toBe(GntStatus.okay);
          put(memory, ARG, [[0, 4, local]]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.send, ARG)).toBe(0);
        },
    );
    front.domain.unpause();
    back.domain.unpause();
    hypervisor.scheduler.runUntil(() => done, 10_000);
    expect(shared.reply).toBe("reply");
    expect(front.upcalls).toContain(0xf3);
    expect(back.cpu.results.every((result) => result === 0)).toBe(true);
  });

  it("a dom0 backend maps a guest's grant, binds its port and exchanges notifications through the host interface", async () => {
    const hypervisor = new Hypervisor();
    const state = { port: 0, notified: 0 };
    const front = guest(
      hypervisor,
      "front",
      (_domain, memory) =>
        function* () {
          yield* setup(memory);
          put(memory, ARG, [
            [0, 2, DomId.SELF],
            [2, 2, 0],
          ]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.alloc_unbound, ARG)).toBe(0);
          state.port = get32(memory, ARG + 4);
          memory.writeBytes(DATA_GFN * 4096, new TextEncoder().encode("ring data"));
          put(memory, GRANT_GFN * 4096 + 8 * 8, [
            [2, 2, 0],
            [4, 4, DATA_GFN],
            [0, 2, GrantFlags.permit_access | GrantFlags.readonly],
          ]);
          put(memory, ARG, [[0, 4, state.port]]);
          expect(yield hypercall(Hypercall.event_channel_op, EvtchnOp.send, ARG)).toBe(0);
          while (front.upcalls.length === 0) yield hypercall(Hypercall.sched_op, SchedOp.block, 0);
          state.notified = front.upcalls.length;
        },
    );
    front.domain.unpause();
    hypervisor.scheduler.runUntil(() => state.port !== 0, 1000);
    const events = hypervisor.host.openEventChannel();
    const seen: number[] = [];
    const local = events.bindInterdomain(front.domain.domid, state.port, (port) => seen.push(port));
    expect(events.peerOf(local)).toEqual({ domid: front.domain.domid, port: state.port });
    expect(() => hypervisor.host.grants.map(front.domain.domid, 8, true)).toThrow(/GNTST -1/);
    const mapping = hypervisor.host.grants.map(front.domain.domid, 8, false);
    expect(new TextDecoder().decode(mapping.view.subarray(0, 9))).toBe("ring data");
    expect(front.domain.grants?.entryFlags(8)).toBe(
      GrantFlags.permit_access | GrantFlags.readonly | GrantFlags.reading,
    );
    hypervisor.scheduler.runUntil(() => front.cpu.results.length >= 6, 1000);
    await Promise.resolve();
    expect(seen).toContain(local);
    events.notify(local);
    hypervisor.scheduler.runUntil(() => state.notified > 0, 1000);
    expect(state.notified).toBeGreaterThan(0);
    hypervisor.host.grants.unmap(mapping);
    expect(front.domain.grants?.entryFlags(8)).toBe(GrantFlags.permit_access | GrantFlags.readonly);
    expect(() => hypervisor.host.grants.unmap(mapping)).toThrow();
    // Destroying the guest returns dom0's port to unbound and tells listeners.
    const destroyed: number[] = [];
    hypervisor.onDomainEvent((event) => event.kind === "destroyed" && destroyed.push(event.domid));
    hypervisor.destroyDomain(front.domain.domid);
    expect(destroyed).toEqual([front.domain.domid]);
    expect(events.peerOf(local)).toBeNull();
    events.close();
  });
});

describe("arm64 domains", () => {
  it("use hvc's convention, the a64 layouts and raise the event PPI line", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({
      name: "arm",
      memory: 4 * MiB,
      vcpus: 1,
      architecture: "arm64",
    });
    const memory = domain.memory as ArrayBufferGuestMemory;
    const base = memory.ram.base;
    const lines: number[] = [];
    const cpu = new ScriptedVcpu({
      architecture: "arm64",
      program: function* () {
        put(memory, base + ARG, [
          [0, 2, DomId.SELF],
          [4, 4, MapSpace.shared_info],
          [8, 8, 0],
          [16, 8, (base >> 12) + 0x20],
        ]);
        expect(yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, base + ARG)).toBe(0);
        put(memory, base + ARG, [
          [0, 2, DomId.SELF],
          [4, 4, HvmParam.CALLBACK_IRQ],
        ]);
        expect(yield hypercall(Hypercall.hvm_op, HvmOp.get_param, base + ARG)).toBe(0);
        expect([memory.read32(base + ARG + 8), memory.read32(base + ARG + 12)]).toEqual([
          0x21f, 0x02000000,
        ]);
        put(memory, base + ARG, [[0, 4, 1]]);
        yield hypercall(
          Hypercall.event_channel_op,
          EvtchnOp.bind_ipi,
          put(memory, base + ARG, [[0, 4, 0]]),
        );
        const port = memory.read32(base + ARG + 4);
        yield hypercall(
          Hypercall.event_channel_op,
          EvtchnOp.send,
          put(memory, base + ARG, [[0, 4, port]]),
        );
      },
      addressLimit: 2 ** 40,
    });
    domain.attachVcpu(0, cpu, { eventLine: (vcpu) => lines.push(vcpu) });
    domain.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(lines).toEqual([0]);
    expect(domain.vcpus[0].upcallPending()).toBe(true);
    // a64 shared_info: evtchn_pending at 48; port 1 pending.
    expect(domain.sharedInfo[48] & 2).toBe(2);
    expect(cpu.interrupts).toBeNull();
  });
});

describe("grant mappings across a granter's destruction", () => {
  it("keep the mapped frame until dom0 unmaps, and never reuse its handle meanwhile", () => {
    const hypervisor = new Hypervisor();
    const make = (name: string) => {
      const domain = hypervisor.createDomain({ name, memory: MiB, vcpus: 1 });
      domain.grants?.writeEntry(8, 0, 3, GrantFlags.permit_access);
      (domain.memory as ArrayBufferGuestMemory).write8(3 * 4096, name.charCodeAt(0));
      return domain;
    };
    const first = make("a");
    const mapping = hypervisor.host.grants.map(first.domid, 8, true);
    hypervisor.destroyDomain(first.domid);
    expect(mapping.view[0]).toBe("a".charCodeAt(0));
    const second = make("b");
    const other = hypervisor.host.grants.map(second.domid, 8, true);
    expect(other.handle).not.toBe(mapping.handle);
    hypervisor.host.grants.unmap(mapping);
    expect(second.grants?.entryFlags(8)).toBe(
      GrantFlags.permit_access | GrantFlags.reading | GrantFlags.writing,
    );
    hypervisor.host.grants.unmap(other);
    expect(second.grants?.entryFlags(8)).toBe(GrantFlags.permit_access);
    expect(() => hypervisor.host.grants.map(77, 8, false)).toThrow(/GNTST -2/);
  });
});

describe("a driver domain maps a grant into its own physical space", () => {
  it("map_grant_ref with GNTMAP_host_map, read-only honoured, unmap by handle and address", () => {
    const hypervisor = new Hypervisor();
    const front = hypervisor.createDomain({ name: "front", memory: MiB, vcpus: 1 });
    const frontMemory = front.memory as ArrayBufferGuestMemory;
    frontMemory.writeBytes(5 * 4096, new TextEncoder().encode("granted"));
    front.grants?.writeEntry(8, 2, 5, GrantFlags.permit_access | GrantFlags.readonly);
    const back = hypervisor.createDomain({ name: "back", memory: MiB, vcpus: 1, domid: 2 });
    const memory = back.memory as ArrayBufferGuestMemory;
    const MAP_AT = 0x200; // a GFN above the back domain's RAM
    const seen: string[] = [];
    const cpu = new ScriptedVcpu({
      program: function* () {
        const map = (flags: number) =>
          put(memory, ARG, [
            [0, 8, MAP_AT * 4096],
            [8, 4, flags],
            [12, 4, 8],
            [16, 2, front.domid],
          ]);
        map(2); // writable: refused, the grant is read-only
        yield hypercall(Hypercall.grant_table_op, GnttabOp.map_grant_ref, ARG, 1);
        seen.push(`rw:${(memory.read16(ARG + 18) << 16) >> 16}`);
        map(2 | 4);
        yield hypercall(Hypercall.grant_table_op, GnttabOp.map_grant_ref, ARG, 1);
        const handle = memory.read32(ARG + 20);
        seen.push(`ro:${memory.read16(ARG + 18)}`);
        const bytes = new Uint8Array(7);
        memory.readBytes(MAP_AT * 4096, bytes);
        seen.push(new TextDecoder().decode(bytes));
        memory.write8(MAP_AT * 4096, 0x58); // dropped: read-only mapping
        put(memory, 0x2000, [
          [0, 8, (MAP_AT + 1) * 4096],
          [16, 4, handle],
        ]);
        yield hypercall(Hypercall.grant_table_op, GnttabOp.unmap_grant_ref, 0x2000, 1);
        seen.push(`wrong-address:${(memory.read16(0x2000 + 20) << 16) >> 16}`);
        put(memory, 0x2000, [[0, 8, MAP_AT * 4096]]);
        yield hypercall(Hypercall.grant_table_op, GnttabOp.unmap_grant_ref, 0x2000, 1);
        seen.push(`unmap:${memory.read16(0x2000 + 20)}`);
      },
    });
    back.attachVcpu(0, cpu);
    back.unpause();
    hypervisor.scheduler.runUntil(() => cpu.finished, 100);
    expect(seen).toEqual(["rw:-1", "ro:0", "granted", "wrong-address:-1", "unmap:0"]);
    expect(frontMemory.read8(5 * 4096)).toBe("g".charCodeAt(0));
    expect(front.grants?.entryFlags(8)).toBe(GrantFlags.permit_access | GrantFlags.readonly);
    expect(memory.frameKind(MAP_AT)).toBe("hole");
  });
});

describe("arm64 PSCI through hvc #0", () => {
  it("reports versions and features, starts a vCPU with CPU_ON, answers AFFINITY_INFO and powers off", () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({
      name: "psci",
      memory: MiB,
      vcpus: 2,
      architecture: "arm64",
    });
    const started: number[][] = [];
    const cpu0 = new ScriptedVcpu({
      architecture: "arm64",
      program: function* () {
        yield platformCall(PsciFunction.VERSION);
        yield platformCall(PsciFunction.FEATURES, PsciFunction.CPU_ON_64);
        yield platformCall(PsciFunction.FEATURES, 0x84000099);
        yield platformCall(PsciFunction.AFFINITY_INFO_64, vcpuAffinity(1), 0);
        yield platformCall(PsciFunction.CPU_ON_64, vcpuAffinity(1), 0x40080000, 0x1234);
        yield platformCall(PsciFunction.CPU_ON_64, vcpuAffinity(1), 0x40080000, 0x1234);
        yield platformCall(PsciFunction.CPU_ON_64, vcpuAffinity(7), 0x40080000, 0);
        yield platformCall(PsciFunction.AFFINITY_INFO_64, vcpuAffinity(1), 0);
        yield platformCall(0xc2000000);
        yield platformCall(PsciFunction.SYSTEM_OFF);
      },
    });
    const cpu1 = new ScriptedVcpu({ architecture: "arm64", program: function* () {} });
    domain.attachVcpu(0, cpu0, {
      cpuOn: (vcpu, entry, context) => {
        started.push([vcpu, entry, context]);
        return true;
      },
    });
    domain.attachVcpu(1, cpu1);
    const events: string[] = [];
    hypervisor.onDomainEvent((event) => event.kind === "shutdown" && events.push(event.reason));
    domain.unpause();
    hypervisor.scheduler.runUntil(() => domain.state === "destroyed", 100);
    expect(cpu0.results).toEqual([
      0x10001,
      PsciReturn.SUCCESS,
      PsciReturn.NOT_SUPPORTED,
      1,
      PsciReturn.SUCCESS,
      PsciReturn.ALREADY_ON,
      PsciReturn.INVALID_PARAMETERS,
      0,
      PsciReturn.NOT_SUPPORTED,
      // SYSTEM_OFF does not return: the domain is gone.
    ]);
    expect(started).toEqual([[1, 0x40080000, 0x1234]]);
    expect(events).toEqual(["poweroff"]);
  });
});
