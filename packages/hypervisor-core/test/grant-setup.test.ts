/**
 * GNTTABOP_setup_table from an HVM/PVH guest (Xen gnttab_setup_table, served
 * to translated guests by hvm_grant_table_op): the table grows, each frame's
 * GFN is listed where add_to_physmap put it and INVALID_GFN elsewhere.
 */
import { DomId, Errno, GntStatus, GnttabOp, Hypercall, MapSpace, MemoryOp } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { Hypervisor } from "../src/index";
import { hypercall, ScriptedVcpu, type ScriptStep } from "../src/test/index";
import { get64, put } from "./helpers";

const MiB = 1 << 20;
const ARG = 0x1000;
const LIST = 0x2000;

function run(
  longMode: boolean,
  program: (memory: ArrayBufferGuestMemory) => Generator<ScriptStep, void, number>,
) {
  const hypervisor = new Hypervisor();
  hypervisor.createDomain({ name: "other", memory: MiB, vcpus: 1, domid: 5 });
  const domain = hypervisor.createDomain({
    name: "setup",
    memory: 4 * MiB,
    vcpus: 1,
    guestWidth: longMode ? 64 : 32,
    maxGrantFrames: 8,
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const cpu = new ScriptedVcpu({ program: () => program(memory), longMode });
  domain.attachVcpu(0, cpu);
  domain.unpause();
  hypervisor.scheduler.runUntil(() => cpu.finished, 100);
  return { domain, memory, cpu };
}

describe("GNTTABOP_setup_table", () => {
  it("grows the table and lists mapped GFNs, INVALID_GFN for the rest (64-bit)", () => {
    const statuses: number[] = [];
    const { domain, memory, cpu } = run(true, function* (memory) {
      put(memory, ARG, [
        [0, 2, DomId.SELF],
        [4, 4, MapSpace.grant_table],
        [8, 8, 1],
        [16, 8, 0x300],
      ]);
      yield hypercall(Hypercall.memory_op, MemoryOp.add_to_physmap, ARG);
      const setup = (dom: number, frames: number, list: number) => {
        put(memory, ARG, [
          [0, 2, dom],
          [4, 4, frames],
          [8, 2, 0x7777],
          [16, 8, list],
        ]);
        return hypercall(Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 1);
      };
      yield setup(DomId.SELF, 3, LIST);
      statuses.push((memory.read16(ARG + 8) << 16) >> 16);
      yield setup(DomId.SELF, 9, LIST); // above max_grant_frames
      statuses.push((memory.read16(ARG + 8) << 16) >> 16);
      yield setup(5, 1, LIST); // another domain
      statuses.push((memory.read16(ARG + 8) << 16) >> 16);
      yield setup(77, 1, LIST); // no such domain
      statuses.push((memory.read16(ARG + 8) << 16) >> 16);
      yield setup(DomId.SELF, 2, 2 ** 40); // the list cannot be written
      statuses.push((memory.read16(ARG + 8) << 16) >> 16);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 2);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.setup_table, 2 ** 40, 1);
    });
    expect(cpu.results).toEqual([0, 0, 0, 0, 0, 0, -Errno.EINVAL, -Errno.EFAULT]);
    expect(statuses).toEqual([
      GntStatus.okay,
      GntStatus.general_error,
      GntStatus.permission_denied,
      GntStatus.bad_domain,
      GntStatus.bad_virt_addr,
    ]);
    expect(domain.grants?.nrFrames).toBe(3);
    expect(get64(memory, LIST)).toBe(2 ** 64);
    expect(memory.read32(LIST + 8)).toBe(0x300);
    expect(memory.read32(LIST + 12)).toBe(0);
    expect([memory.read32(LIST + 16), memory.read32(LIST + 20)]).toEqual([0xffffffff, 0xffffffff]);
  });

  it("writes 4-byte xen_pfn_t entries for a 32-bit guest", () => {
    const { memory, cpu } = run(false, function* (memory) {
      put(memory, ARG, [
        [0, 2, DomId.SELF],
        [4, 4, 2],
        [8, 2, 0x7777],
        [12, 4, LIST],
      ]);
      memory.write32(LIST + 8, 0x12345678);
      yield hypercall(Hypercall.grant_table_op, GnttabOp.setup_table, ARG, 1);
    });
    expect(cpu.results).toEqual([0]);
    expect(memory.read16(ARG + 8)).toBe(0);
    expect([memory.read32(LIST), memory.read32(LIST + 4)]).toEqual([0xffffffff, 0xffffffff]);
    expect(memory.read32(LIST + 8)).toBe(0x12345678);
  });
});
