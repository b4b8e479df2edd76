/**
 * The hypercall fuzzer (issue 4 "Isolation, proven"): a domain issues random
 * hypercalls (random numbers, sub-ops, argument registers and argument
 * bytes, in both x86 ABIs and at random privilege) beside a victim domain
 * whose memory is checksummed. Escapes: a host exception, a change to the
 * victim's memory, or a change to domain 0's port table that the fuzzer
 * could not legitimately make.
 */
import { DomId, GrantFlags, Hypercall } from "@kumo/abi";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { type Domain, Hypervisor } from "../src/index";
import { hypercall, ScriptedVcpu, type ScriptStep } from "../src/test/index";

/** mulberry32: a small, fast, seedable PRNG (fixed seeds make CI runs reproducible). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over 32-bit words of a byte array. */
export function checksum(bytes: Uint8Array): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let hash = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) hash = Math.imul(hash ^ words[i], 0x01000193);
  return hash >>> 0;
}

const IMPLEMENTED = [
  Hypercall.memory_op,
  Hypercall.set_timer_op,
  Hypercall.xen_version,
  Hypercall.console_io,
  Hypercall.grant_table_op,
  Hypercall.vm_assist,
  Hypercall.vcpu_op,
  Hypercall.sched_op,
  Hypercall.event_channel_op,
  Hypercall.physdev_op,
  Hypercall.hvm_op,
];

const RANDOM = -1;
const POINTER = -2;
const VICTIM = 7;
const SELF = DomId.SELF;
const DOMIDS = [SELF, 1, 0, VICTIM, 2, RANDOM];
const PORTS = [0, 1, 2, 3, 4, 5, 4095, 4096, RANDOM];
const REFS = [0, 1, 7, 8, 9, 511, 512, RANDOM];
const GFNS = [0, 1, 5, 0x20, 0xff, 0x100, 0x1000, 0xfeff, RANDOM];
const OFFSETS = [0, 1, 100, 4000, 4095, 4096, RANDOM];

interface Template {
  nr: number;
  cmd: number;
  /** The argument struct (x64 layout): [offset, size, candidate values]. */
  fields: [number, 2 | 4 | 8, number[]][];
  /** vcpu_op: (cmd, vcpuid, pointer). */
  vcpuArg?: boolean;
}

const GRANT_COPY: Template = {
  nr: Hypercall.grant_table_op,
  cmd: 5,
  fields: [
    [0, 8, [...REFS, ...GFNS]],
    [8, 2, DOMIDS],
    [10, 2, OFFSETS],
    [16, 8, [...REFS, ...GFNS]],
    [24, 2, DOMIDS],
    [26, 2, OFFSETS],
    [32, 2, [1, 8, 96, 4096, RANDOM]],
    [34, 2, [0, 1, 2, 3, RANDOM]],
  ],
};

/** Copies aimed at the victim's grants and frames with plausible sides (escapes hide there). */
const GRANT_COPY_AT_VICTIM: Template = {
  nr: Hypercall.grant_table_op,
  cmd: 5,
  fields: [
    [0, 8, [0, 5, 8, 0x20]],
    [8, 2, [SELF, 1, VICTIM]],
    [10, 2, [0, 100]],
    [16, 8, [8, 9, 0, 5]],
    [24, 2, [VICTIM, SELF]],
    [26, 2, [0, 100, 4000]],
    [32, 2, [8, 96]],
    [34, 2, [1, 2, 3]],
  ],
};

const FUZZ_RAM_CONST = 1 << 20;
const HOST_ADDRESSES = [0, 0x5000, 0x20000, 0x80000, 0xff000, 0x100000, 0x200000, RANDOM];

/** Guest-side grant maps into the fuzzer's own physical space, then writes there. */
const GRANT_MAP: Template = {
  nr: Hypercall.grant_table_op,
  cmd: 0,
  fields: [
    [0, 8, HOST_ADDRESSES],
    [8, 4, [2, 6, 0, 1, 3, 16, RANDOM]],
    [12, 4, [8, 8, 9, 0, RANDOM]],
    [16, 2, [VICTIM, VICTIM, SELF, 0, RANDOM]],
  ],
};
const GRANT_UNMAP: Template = {
  nr: Hypercall.grant_table_op,
  cmd: 1,
  fields: [
    [0, 8, HOST_ADDRESSES],
    [16, 4, [0, 1, 2, RANDOM]],
  ],
};

/** Cross-domain paths weigh more: they are where an escape would be. */
const TEMPLATES: Template[] = [
  GRANT_MAP,
  GRANT_MAP,
  GRANT_UNMAP,
  GRANT_COPY_AT_VICTIM,
  GRANT_COPY_AT_VICTIM,
  GRANT_COPY,
  GRANT_COPY,
  GRANT_COPY,
  GRANT_COPY,
  { nr: Hypercall.grant_table_op, cmd: 6, fields: [[0, 2, DOMIDS]] },
  {
    nr: Hypercall.grant_table_op,
    cmd: 2,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, [0, 1, 4, 64, 65, 1024, RANDOM]],
      [16, 8, [...HOST_ADDRESSES, POINTER]],
    ],
  },
  { nr: Hypercall.grant_table_op, cmd: 8, fields: [[0, 4, [0, 1, 2, 3, RANDOM]]] },
  {
    nr: Hypercall.grant_table_op,
    cmd: 11,
    fields: [
      [0, 4, REFS],
      [4, 4, REFS],
    ],
  },
  {
    nr: Hypercall.memory_op,
    cmd: 7,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, [0, 1, 2, 3, 4, 5, RANDOM]],
      [8, 8, [0, 1, 3, 63, 64, 0x80000000, RANDOM]],
      [16, 8, GFNS],
    ],
  },
  {
    nr: Hypercall.memory_op,
    cmd: 15,
    fields: [
      [0, 2, DOMIDS],
      [8, 8, GFNS],
    ],
  },
  {
    nr: Hypercall.memory_op,
    cmd: 1,
    fields: [
      [0, 8, [POINTER, RANDOM]],
      [8, 8, [0, 1, 6, 1000, RANDOM]],
      [16, 4, [0, 1, 9]],
      [24, 2, DOMIDS],
    ],
  },
  {
    nr: Hypercall.memory_op,
    cmd: 6,
    fields: [
      [0, 8, [POINTER, RANDOM]],
      [8, 8, [0, 1, 6, RANDOM]],
      [16, 4, [0, 1]],
      [24, 2, DOMIDS],
    ],
  },
  {
    nr: Hypercall.memory_op,
    cmd: 9,
    fields: [
      [0, 4, [0, 1, 5, RANDOM]],
      [8, 8, [POINTER, RANDOM]],
    ],
  },
  {
    nr: Hypercall.event_channel_op,
    cmd: 0,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, PORTS],
    ],
  },
  {
    nr: Hypercall.event_channel_op,
    cmd: 1,
    fields: [
      [0, 4, [0, 1, 2, 23, 24, RANDOM]],
      [4, 4, [0, 1, 2, RANDOM]],
    ],
  },
  { nr: Hypercall.event_channel_op, cmd: 3, fields: [[0, 4, PORTS]] },
  { nr: Hypercall.event_channel_op, cmd: 4, fields: [[0, 4, PORTS]] },
  {
    nr: Hypercall.event_channel_op,
    cmd: 5,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, PORTS],
    ],
  },
  {
    nr: Hypercall.event_channel_op,
    cmd: 6,
    fields: [
      [0, 2, DOMIDS],
      [2, 2, DOMIDS],
    ],
  },
  { nr: Hypercall.event_channel_op, cmd: 7, fields: [[0, 4, [0, 1, 2, RANDOM]]] },
  {
    nr: Hypercall.event_channel_op,
    cmd: 8,
    fields: [
      [0, 4, PORTS],
      [4, 4, [0, 1, 2, RANDOM]],
    ],
  },
  { nr: Hypercall.event_channel_op, cmd: 9, fields: [[0, 4, PORTS]] },
  { nr: Hypercall.event_channel_op, cmd: 10, fields: [[0, 2, DOMIDS]] },
  {
    nr: Hypercall.hvm_op,
    cmd: 0,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, [0, 1, 2, 17, 18, 38, 39, RANDOM]],
      [8, 8, [0, 1, 0xf3, RANDOM]],
    ],
  },
  {
    nr: Hypercall.hvm_op,
    cmd: 1,
    fields: [
      [0, 2, DOMIDS],
      [4, 4, [0, 1, 2, 17, 18, 38, 39, RANDOM]],
    ],
  },
  {
    nr: Hypercall.vcpu_op,
    cmd: 10,
    fields: [
      [0, 8, GFNS],
      [8, 4, OFFSETS],
    ],
    vcpuArg: true,
  },
  {
    nr: Hypercall.vcpu_op,
    cmd: 8,
    fields: [
      [0, 8, [0, 1000, 1e6, RANDOM]],
      [8, 4, [0, 1, RANDOM]],
    ],
    vcpuArg: true,
  },
  { nr: Hypercall.vcpu_op, cmd: 6, fields: [[0, 8, [0, 1e6, 1e7, RANDOM]]], vcpuArg: true },
  // Runstate areas anywhere (own RAM, its end, grant-mapped frames, holes): written at every switch.
  {
    nr: Hypercall.vcpu_op,
    cmd: 5,
    fields: [[0, 8, [0, 0x5000, FUZZ_RAM_CONST - 20, ...HOST_ADDRESSES, 2 ** 40, RANDOM]]],
    vcpuArg: true,
  },
  // Secondary vcpu_time_info copies anywhere (as the runstate area): written at registration
  // and at every time refresh (register_vcpu_info).
  {
    nr: Hypercall.vcpu_op,
    cmd: 13,
    fields: [[0, 8, [0, 0x5000, FUZZ_RAM_CONST - 20, ...HOST_ADDRESSES, 2 ** 40, RANDOM]]],
    vcpuArg: true,
  },
  { nr: Hypercall.vcpu_op, cmd: 4, fields: [], vcpuArg: true },
  { nr: Hypercall.vm_assist, cmd: 0, fields: [] },
  {
    nr: Hypercall.sched_op,
    cmd: 3,
    fields: [
      [0, 8, [POINTER, RANDOM]],
      [8, 4, [0, 1, 4, 128, 129, RANDOM]],
      [16, 8, [0, 1, 1e6]],
    ],
  },
  { nr: Hypercall.console_io, cmd: 0, fields: [[0, 8, [RANDOM]]] },
];

export interface FuzzResult {
  calls: number;
  restarts: number;
  escapes: string[];
  seed: number;
}

const FUZZ_RAM = FUZZ_RAM_CONST;
const VICTIM_RAM = 1 << 20;

export function runFuzz(seed: number, totalCalls: number): FuzzResult {
  const random = prng(seed);
  const int = (limit: number) => Math.floor(random() * limit);
  const hypervisor = new Hypervisor({ scheduler: { sliceInstructions: 10_000, maxIdleSkips: 16 } });
  const escapes: string[] = [];

  // The victim: random memory, a read-only grant and an unbound port offered to the fuzzer.
  const victim = hypervisor.createDomain({
    name: "victim",
    memory: VICTIM_RAM,
    vcpus: 1,
    domid: 7,
  });
  const victimMemory = victim.memory as ArrayBufferGuestMemory;
  for (let i = 0; i < victimMemory.ram.u8.length; i += 4)
    victimMemory.write32(i, (random() * 4294967296) >>> 0);
  victim.grants?.writeEntry(8, 1, 5, GrantFlags.permit_access | GrantFlags.readonly);
  victim.events.allocUnbound(1);
  victim.attachVcpu(0, new ScriptedVcpu({ program: function* () {} }));
  victim.unpause();
  const victimSum = checksum(victimMemory.ram.u8);
  // Domain 0 offers a port to the fuzzer too, like a backend would.
  const dom0Events = hypervisor.host.openEventChannel();
  dom0Events.bindUnbound(victim.domid, () => {});

  let calls = 0;
  let restarts = 0;
  let fuzzer: Domain | null = null;

  const program = (memory: ArrayBufferGuestMemory, cpu: () => ScriptedVcpu) =>
    function* (): Generator<ScriptStep, void, number> {
      while (calls < totalCalls) {
        const self = cpu();
        self.longMode = random() < 0.7;
        self.privilege = random() < 0.03 ? 3 : 0;
        // Fill a few argument areas with bytes biased towards interesting values.
        const pointers: number[] = [];
        for (let p = 0; p < 3; p++) {
          const base = int(FUZZ_RAM + 8192) & ~3;
          pointers.push(base);
          for (let offset = 0; offset < 48; offset += 2) {
            const choice = random();
            const value =
              choice < 0.3
                ? int(16)
                : choice < 0.4
                  ? DomId.SELF
                  : choice < 0.5
                    ? victim.domid
                    : choice < 0.55
                      ? 0
                      : choice < 0.6
                        ? int(FUZZ_RAM >>> 12)
                        : int(65536);
            memory.write16(base + offset, value);
          }
        }
        let nr =
          random() < 0.85
            ? IMPLEMENTED[int(IMPLEMENTED.length)]
            : random() < 0.5
              ? int(64)
              : int(4294967296);
        const args: number[] = [random() < 0.85 ? int(24) : int(4294967296)];
        for (let a = 1; a < 6; a++) {
          const choice = random();
          args.push(
            choice < 0.6
              ? pointers[int(3)]
              : choice < 0.8
                ? int(8)
                : choice < 0.95
                  ? int(4294967296)
                  : int(4294967296) * 65536 + int(65536),
          );
        }
        if (random() < 0.5) {
          // A well-formed call with hostile field values, so the deep paths are reached.
          const template = TEMPLATES[int(TEMPLATES.length)];
          nr = template.nr;
          args[0] = template.cmd;
          const at = pointers[0];
          for (const [offset, size, values] of template.fields) {
            const value = values[int(values.length)];
            const chosen =
              value === RANDOM ? int(4294967296) : value === POINTER ? pointers[1] : value;
            if (size === 2) memory.write16(at + offset, chosen);
            else if (size === 4) memory.write32(at + offset, chosen >>> 0);
            else memory.write64(at + offset, chosen >>> 0, Math.floor(chosen / 4294967296) >>> 0);
          }
          // Extent lists, port lists: small numbers in the second area.
          for (let offset = 0; offset < 48; offset += 8)
            memory.write64(pointers[1] + offset, int(300), 0);
          if (template.vcpuArg) {
            args[1] = int(3);
            args[2] = at;
          } else {
            args[1] = at;
            args[2] = 1 + int(3);
          }
        }
        // Keep shutdowns rare so each incarnation issues many calls.
        if (nr === Hypercall.sched_op && args[0] === 2 && random() < 0.9) args[0] = 0;
        calls++;
        yield hypercall(nr, ...args);
      }
    };

  const spawn = () => {
    const domain = hypervisor.createDomain({
      name: `fuzzer-${restarts}`,
      memory: FUZZ_RAM,
      vcpus: 2,
      domid: 1,
      consoleLimit: 4096,
    });
    const memory = domain.memory as ArrayBufferGuestMemory;
    let cpu0: ScriptedVcpu | null = null;
    cpu0 = new ScriptedVcpu({ program: program(memory, () => cpu0 as ScriptedVcpu) });
    domain.attachVcpu(0, cpu0);
    let cpu1: ScriptedVcpu | null = null;
    cpu1 = new ScriptedVcpu({ program: program(memory, () => cpu1 as ScriptedVcpu) });
    domain.attachVcpu(1, cpu1);
    domain.unpause();
    return domain;
  };

  fuzzer = spawn();
  let steps = 0;
  while (calls < totalCalls) {
    let result: string;
    try {
      result = hypervisor.scheduler.step();
    } catch (error) {
      escapes.push(`host exception after ${calls} calls: ${(error as Error).stack ?? error}`);
      break;
    }
    steps++;
    const alive = fuzzer !== null && hypervisor.domain(fuzzer.domid) === fuzzer;
    if (!alive || result === "waiting") {
      // Crashed, shut down, or blocked for good: that is the worst a guest may do to itself.
      if (alive && fuzzer !== null) hypervisor.destroyDomain(fuzzer.domid);
      restarts++;
      fuzzer = spawn();
    }
    if (steps % 1000 === 0 && checksum(victimMemory.ram.u8) !== victimSum) {
      escapes.push(`victim memory changed after ${calls} calls`);
      break;
    }
  }
  if (checksum(victimMemory.ram.u8) !== victimSum)
    escapes.push(`victim memory changed after ${calls} calls`);
  if (hypervisor.domain(victim.domid) !== victim || victim.state !== "running") {
    escapes.push(`victim domain is ${victim.state}`);
  }
  return { calls, restarts, escapes, seed };
}
