/**
 * Hypercall continuations (Xen hypercall_create_continuation): long
 * grant_table_op batches and memory reservation ops are done in pieces, the
 * vCPU's slice ending between pieces so that other vCPUs run, with the
 * argument registers rewritten as Xen rewrites them.
 */
import { DomId, Errno, GnttabOp, Hypercall, MapSpace, MemoryOp, SchedOp } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import {
  type Domain,
  EXTENTS_PER_PREEMPTION,
  GRANT_OPS_PER_PREEMPTION,
  Hypervisor,
} from "../src/index";
import { hypercall, ScriptedVcpu, type ScriptProgram, work } from "../src/test/index";
import { put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const LIST = 0x10000;
const SOURCE_GFN = 0x30;
const DEST_GFN = 0x40;

/** vCPU 0 runs `program`; vCPU 1 spins and records whether vCPU 0 sat in a preempted call. */
function machine(
  program: (memory: ArrayBufferGuestMemory, domain: Domain) => ReturnType<ScriptProgram>,
  longMode = true,
) {
  const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 1000 } });
  const domain = hypervisor.createDomain({
    name: "batch",
    memory: 4 * MiB,
    vcpus: 2,
    guestWidth: longMode ? 64 : 32,
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const seenPreempted: boolean[] = [];
  const cpu = new ScriptedVcpu({ program: () => program(memory, domain), longMode });
  const spinner = new ScriptedVcpu({
    program: function* () {
      for (;;) {
        seenPreempted.push(domain.vcpus[0].continuation);
        yield work(10);
      }
    },
    longMode,
  });
  domain.attachVcpu(0, cpu);
  domain.attachVcpu(1, spinner);
  domain.startVcpu(1);
  domain.unpause();
  hypervisor.scheduler.runUntil(() => cpu.finished || domain.state !== "running", 100_000);
  return { domain, memory, cpu, seenPreempted };
}

/** GNTTABOP_copy elements copying 4 bytes each from SOURCE_GFN to DEST_GFN within DOMID_SELF. */
function copyBatch(memory: ArrayBufferGuestMemory, count: number, longMode: boolean) {
  const size = longMode ? 40 : 24;
  const side = longMode ? 16 : 8;
  const length = longMode ? 32 : 16;
  for (let i = 0; i < count; i++) {
    const at = LIST + i * size;
    const offset = (i * 4) % 4096;
    put(memory, at, [
      [0, longMode ? 8 : 4, SOURCE_GFN],
      [longMode ? 8 : 4, 2, DomId.SELF],
      [longMode ? 10 : 6, 2, offset],
      [side, longMode ? 8 : 4, DEST_GFN + Math.floor((i * 4) / 4096)],
      [side + (longMode ? 8 : 4), 2, DomId.SELF],
      [side + (longMode ? 10 : 6), 2, offset],
      [length, 2, 4],
      [length + 2, 2, 0],
      [length + 4, 2, 0x7777],
    ]);
  }
  return (i: number) => memory.read16(LIST + i * size + length + 4);
}

describe("grant_table_op continuations", () => {
  for (const longMode of [true, false]) {
    it(`a GNTTABOP_copy batch longer than ${GRANT_OPS_PER_PREEMPTION} is done in pieces (${longMode ? "64" : "32"}-bit)`, () => {
      const count = 2 * GRANT_OPS_PER_PREEMPTION + 88;
      let status: (i: number) => number = () => -1;
      const { memory, cpu, seenPreempted } = machine(function* (memory) {
        for (let i = 0; i < 1024; i++) memory.write32(SOURCE_GFN * 4096 + i * 4, 0xa0000000 + i);
        status = copyBatch(memory, count, longMode);
        yield hypercall(Hypercall.grant_table_op, GnttabOp.copy, LIST, count);
      }, longMode);
      expect(cpu.results).toEqual([0]);
      for (let i = 0; i < count; i++) expect(status(i)).toBe(0);
      expect(memory.read32(DEST_GFN * 4096 + 4 * 7)).toBe(0xa0000007);
      expect(memory.read32(DEST_GFN * 4096 + 4 * (count - 1))).toBe(0xa0000000 + count - 1);
      // The other vCPU ran while vCPU 0 waited between two pieces.
      expect(seenPreempted).toContain(true);
    });
  }

  it("a fault in a later piece answers -EFAULT with the earlier pieces done; opaque cmd bits are -EINVAL", () => {
    const count = GRANT_OPS_PER_PREEMPTION + 50;
    // The list ends at the top of RAM: element `fits` is the first that does not fit.
    const top = 4 * MiB;
    const fits = GRANT_OPS_PER_PREEMPTION + 20;
    const start = top - fits * 12;
    const { memory, cpu } = machine(function* (memory) {
      for (let i = 0; i < fits; i++) {
        put(memory, start + i * 12, [
          [0, 4, 1],
          [4, 4, 2],
          [8, 2, 0x5555],
        ]);
      }
      yield hypercall(Hypercall.grant_table_op, GnttabOp.swap_grant_ref, start, count);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.copy | (1 << 12), LIST, 1);
    });
    expect(cpu.results).toEqual([-Errno.EFAULT, -Errno.EINVAL]);
    // Every element that was readable got its status (refs 1 and 2 are not in use: GNTST_general_error).
    expect(memory.read16(start + 8)).not.toBe(0x5555);
    expect(memory.read16(start + (fits - 1) * 12 + 8)).not.toBe(0x5555);
  });
});

describe("memory_op reservation continuations", () => {
  /** struct xen_memory_reservation (x64) at ARG. */
  const reservation = (
    memory: ArrayBufferGuestMemory,
    extents: number,
    domid: number = DomId.SELF,
  ) =>
    put(memory, ARG, [
      [0, 8, LIST],
      [8, 8, extents],
      [16, 4, 0],
      [20, 4, 0],
      [24, 2, domid],
    ]);

  it("balloons out and back more extents than one piece, resuming at the start extent in cmd", () => {
    const count = 2 * EXTENTS_PER_PREEMPTION + 100;
    const { memory, cpu, seenPreempted } = machine(function* (memory) {
      for (let i = 0; i < count; i++) memory.write64(LIST + i * 8, 0x100 + i, 0);
      reservation(memory, count);
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation, ARG);
      put(memory, 0x2000, [[0, 2, DomId.SELF]]);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation, 0x2000);
      // A start extent in cmd (as a continuation leaves it): only the last 10 come back; the
      // result counts from 0. Then from 0: it stops at the first frame already back.
      yield hypercall(Hypercall.memory_op, MemoryOp.populate_physmap | ((count - 10) << 6), ARG);
      yield hypercall(Hypercall.memory_op, MemoryOp.populate_physmap, ARG);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation, 0x2000);
    });
    expect(cpu.results).toEqual([count, 1024 - count, count, count - 10, 1024]);
    expect(memory.frameKind(0x100)).toBe("ram");
    expect(memory.frameKind(0x100 + count - 1)).toBe("ram");
    expect(seenPreempted).toContain(true);
  });

  it("answers the start extent for every refusal, as Xen's do_memory_op", () => {
    const { cpu } = machine(function* (memory) {
      memory.write64(LIST, 0x200, 0);
      reservation(memory, 1);
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation | (5 << 6), ARG); // start >= nr
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation | (3 << 6), 2 ** 40); // unreadable
      reservation(memory, 2 ** 26); // more than a continuation can encode
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation, ARG);
      reservation(memory, 1, 0); // another domain
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation, ARG);
      reservation(memory, 1);
      yield hypercall(Hypercall.memory_op, MemoryOp.increase_reservation, ARG); // no GFN-less pages
      yield hypercall(Hypercall.memory_op, MemoryOp.decrease_reservation, ARG);
      put(memory, 0x2000, [[0, 2, DomId.SELF]]);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation | (1 << 6), 0x2000);
      put(memory, 0x2000, [[0, 2, 0]]);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation, 0x2000);
      put(memory, 0x2000, [[0, 2, 999]]);
      yield hypercall(Hypercall.memory_op, MemoryOp.current_reservation, 0x2000);
      put(memory, 0x2000, [
        [0, 2, DomId.SELF],
        [4, 4, MapSpace.shared_info],
        [8, 8, 0],
        [16, 8, 0x300],
      ]);
      yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap | (0x10000 * 64), 0x2000);
      put(memory, ARG, [[0, 4, 0]]);
      yield hypercall(Hypercall.sched_op, SchedOp.yield, ARG);
    });
    expect(cpu.results).toEqual([
      5,
      3,
      0,
      0,
      0,
      1,
      -Errno.EINVAL,
      -Errno.EPERM,
      -Errno.ESRCH,
      -Errno.EDOM,
      0,
    ]);
  });
});
