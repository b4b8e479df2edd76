/**
 * Fuzz test: random bytes executed in real mode and in protected mode at
 * CPL 0 and CPL 3, with paging off and on (4 KiB pages with random
 * user/supervisor, read-only and not-present entries, and 4 MiB PSE pages).
 * Every exception handler skips one byte and returns, so a run keeps
 * executing garbage until it halts, triple-faults or spends its budget.
 *
 * The promise under test is the Vcpu contract (packages/abi/src/vcpu.ts):
 * `run()` never throws for anything the guest does, every exit is one of the
 * contract's reasons, GuestError only for a documented unsupported
 * operation, the retired-instruction counter only grows, and the state stays
 * saveable and restorable.
 *
 * The seed is fixed; KUMO_FUZZ_ITERATIONS (default 40 per mode) and
 * KUMO_FUZZ_SEED select a longer soak (test/oracle/fuzz-soak.sh).
 */
import { VcpuExitReason, type VcpuIo } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { createX86Cpu, ramOnly, X86_WASM_SCRATCH_BYTES, type X86Cpu } from "../src/index";
import { Random } from "./oracle/random";
import { assemble } from "./support/nasm";
import { writeSegmentDescriptor } from "./support/segment-descriptor";

const ITERATIONS = Number(process.env.KUMO_FUZZ_ITERATIONS ?? 40);
const SEED = Number(process.env.KUMO_FUZZ_SEED ?? 0x66757a7a);
const RAM_SIZE = 4 << 20;
const INSTRUCTIONS_PER_RUN = 4000;
const SLICE = 500;

const GDT = 0x1000;
const TSS = 0x1200;
const IDT = 0x2000;
const STUBS = 0x3000;
const PROLOGUE = 0x5000;
const PAGE_DIRECTORY = 0x10000;
const PAGE_TABLE = 0x11000;
const KERNEL_STACK = 0x9000;
/** Random code, data and user stack: user pages. */
const USER = 0x100000;
const USER_SIZE = 0x8000;

const VALID_REASONS = new Set<number>(Object.values(VcpuExitReason));

interface Mode {
  name: string;
  realMode: boolean;
  cpl: 0 | 3;
  paging: "off" | "4k" | "pse";
}

const MODES: Mode[] = [
  { name: "real mode", realMode: true, cpl: 0, paging: "off" },
  { name: "protected mode CPL 0, paging off", realMode: false, cpl: 0, paging: "off" },
  { name: "protected mode CPL 3, paging off", realMode: false, cpl: 3, paging: "off" },
  { name: "protected mode CPL 0, 4 KiB paging", realMode: false, cpl: 0, paging: "4k" },
  { name: "protected mode CPL 3, 4 KiB paging", realMode: false, cpl: 3, paging: "4k" },
  { name: "protected mode CPL 3, 4 MiB PSE paging", realMode: false, cpl: 3, paging: "pse" },
];

/** Ring-0 set-up: tables, optional paging, then ring 0 or ring 3 at USER. */
function prologue(mode: Mode): string {
  const paging =
    mode.paging === "off"
      ? ""
      : `
  ${mode.paging === "pse" ? "mov eax, cr4\n  or eax, 0x10\n  mov cr4, eax" : ""}
  mov eax, ${PAGE_DIRECTORY}
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80010000  ; PG | WP
  mov cr0, eax`;
  const enter =
    mode.cpl === 3
      ? `
  push dword 0x2b
  push dword ${USER + USER_SIZE - 0x100}
  push dword 0x202
  push dword 0x23
  push dword ${USER}
  mov ax, 0x2b
  mov ds, ax
  mov es, ax
  mov fs, ax
  mov gs, ax
  iret`
      : `
  mov esp, ${USER + USER_SIZE - 0x100}
  jmp ${USER}`;
  return `
  lgdt [gdt_pointer]
  lidt [idt_pointer]
  mov ax, 0x18
  mov ss, ax
  mov esp, ${KERNEL_STACK}
  mov ax, 0x40
  ltr ax
  ${paging}
  ${enter}
gdt_pointer:
  dw 0x7f
  dd ${GDT}
idt_pointer:
  dw 0x7ff
  dd ${IDT}
`;
}

const assembled = new Map<string, Uint8Array>();

/** Builds the machine of one iteration in `ram`. */
function buildProtectedMode(ram: Uint8Array, mode: Mode, random: Random, code: Uint8Array): void {
  const view = new DataView(ram.buffer);
  ram.fill(0, 0, PAGE_TABLE + 0x1000);
  writeSegmentDescriptor(view, GDT + 0x08, 0, 0xfffff, 0x9b, 0xc);
  writeSegmentDescriptor(view, GDT + 0x18, 0, 0xfffff, 0x93, 0xc);
  writeSegmentDescriptor(view, GDT + 0x20, 0, 0xfffff, 0xfb, 0xc);
  writeSegmentDescriptor(view, GDT + 0x28, 0, 0xfffff, 0xf3, 0xc);
  writeSegmentDescriptor(view, GDT + 0x30, 0, 0xffff, 0xfb, 0x0); // 16-bit user code, for far transfers
  writeSegmentDescriptor(view, GDT + 0x40, TSS, 0x67, 0x89, 0);
  view.setUint32(TSS + 4, KERNEL_STACK, true);
  view.setUint32(TSS + 8, 0x18, true);
  view.setUint16(TSS + 0x66, 0x68, true);
  // Every vector: drop the error code if any, skip one byte, return
  // (SDM vol. 3A table 6-1 for which vectors push an error code).
  for (let vector = 0; vector < 256; vector++) {
    const stub = STUBS + vector * 8;
    const hasErrorCode = vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
    const bytes = hasErrorCode
      ? [0x83, 0xc4, 0x04, 0xff, 0x04, 0x24, 0xcf]
      : [0xff, 0x04, 0x24, 0xcf];
    ram.set(bytes, stub);
    view.setUint32(IDT + vector * 8, ((stub & 0xffff) | (0x08 << 16)) >>> 0, true);
    view.setUint32(IDT + vector * 8 + 4, ((stub & 0xffff0000) | 0xee00) >>> 0, true);
  }
  // Identity paging of the first 4 MiB. Kernel pages supervisor-only; user
  // pages user, with a few read-only or not present.
  view.setUint32(PAGE_DIRECTORY, mode.paging === "pse" ? 0x87 : PAGE_TABLE | 0x07, true);
  for (let page = 0; page < 1024; page++) {
    const address = page << 12;
    let flags = address >= USER && address < USER + USER_SIZE ? 0x07 : 0x03;
    if (address >= USER + 0x1000 && address < USER + USER_SIZE) {
      const roll = random.below(16);
      if (roll === 0) flags = 0;
      else if (roll === 1) flags = 0x05;
    }
    view.setUint32(PAGE_TABLE + page * 4, (address | flags) >>> 0, true);
  }
  let bytes = assembled.get(mode.name);
  if (!bytes) {
    bytes = assemble(prologue(mode), 32, PROLOGUE);
    assembled.set(mode.name, bytes);
  }
  ram.set(bytes, PROLOGUE);
  ram.set(code, USER);
}

/** Real mode: every vector of the IVT skips one byte of the interrupted code. */
function buildRealMode(ram: Uint8Array, code: Uint8Array): void {
  ram.fill(0, 0, 0x20000);
  const view = new DataView(ram.buffer);
  for (let vector = 0; vector < 256; vector++) {
    const handler = 0x500 + vector * 8;
    // push bp; mov bp, sp; inc word [bp+2]; pop bp; iret
    ram.set([0x55, 0x89, 0xe5, 0xff, 0x46, 0x02, 0x5d, 0xcf], handler);
    view.setUint16(vector * 4, handler, true);
    view.setUint16(vector * 4 + 2, 0, true);
  }
  ram.set(code, 0x10000);
}

function randomIo(random: Random): VcpuIo {
  return {
    portRead: (_port, size) =>
      size === 4 ? random.u32() : random.u32() & (size === 2 ? 0xffff : 0xff),
    portWrite: () => {},
  };
}

function randomCode(random: Random): Uint8Array {
  const code = new Uint8Array(USER_SIZE);
  for (let i = 0; i < code.length; i++) {
    // Mostly uniform bytes, with runs of prefixes and 0x0f escapes to reach deeper decoder paths.
    const roll = random.below(16);
    code[i] =
      roll === 0
        ? random.pick([0x0f, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x64])
        : random.below(256);
  }
  return code;
}

function fuzz(mode: Mode, iterations: number, seed: number): Map<string, number> {
  const random = new Random(seed);
  // KUMO_FUZZ_MEMORY=wasm: RAM in a WebAssembly.Memory with scratch for the
  // CPU, so that its WebAssembly block tier runs (fuzz-wasm.test.ts).
  const memory =
    process.env.KUMO_FUZZ_MEMORY === "wasm"
      ? createGuestMemory({ ramSize: RAM_SIZE, wasmScratch: X86_WASM_SCRATCH_BYTES })
      : ramOnly(new Uint8Array(RAM_SIZE));
  const ram = memory.ram.u8;
  const exits = new Map<string, number>();
  // One vCPU per mode, reset by setRealMode/setFlatProtectedMode each run
  // (a fresh one costs megabytes of TLB arrays).
  const cpu: X86Cpu = createX86Cpu({ memory, io: randomIo(random) });
  if (process.env.KUMO_FUZZ_MEMORY === "wasm" && cpu.wasmTier === null) {
    throw new Error("the WebAssembly block tier is not active");
  }
  const copy = createX86Cpu({ memory: ramOnly(new Uint8Array(RAM_SIZE)) });
  for (let iteration = 0; iteration < iterations; iteration++) {
    const code = randomCode(random);
    cpu.invalidateCode(0, RAM_SIZE);
    if (mode.realMode) {
      buildRealMode(ram, code);
      cpu.setRealMode(0x1000, 0);
      cpu.regs[4] = 0xfffe;
    } else {
      buildProtectedMode(ram, mode, random, code);
      cpu.setFlatProtectedMode(PROLOGUE, KERNEL_STACK);
    }
    for (let r = 0; r < 8; r++) if (r !== 4) cpu.regs[r] = random.u32();
    const start = cpu.instructionsRetired;
    let retired = start;
    let last: number = VcpuExitReason.Budget;
    const where = () => `${mode.name}, seed ${seed}, iteration ${iteration}`;
    while (cpu.instructionsRetired - start < INSTRUCTIONS_PER_RUN) {
      let reason: number;
      try {
        reason = cpu.run(SLICE);
      } catch (error) {
        throw new Error(`run() threw (${where()}): ${(error as Error).stack}`);
      }
      if (!VALID_REASONS.has(reason) || cpu.exit.reason !== reason) {
        throw new Error(`run() returned ${reason}, exit.reason ${cpu.exit.reason} (${where()})`);
      }
      if (cpu.instructionsRetired < retired)
        throw new Error(`instructionsRetired went back (${where()})`);
      if (reason === VcpuExitReason.Budget && cpu.instructionsRetired === retired) {
        throw new Error(`a Budget exit retired nothing (${where()})`);
      }
      retired = cpu.instructionsRetired;
      last = reason;
      if (reason === VcpuExitReason.Hypercall) {
        cpu.completeHypercall(-38, -1);
        continue;
      }
      if (reason === VcpuExitReason.GuestError) {
        if (!/^unsupported: /.test(cpu.exit.message)) {
          throw new Error(
            `GuestError "${cpu.exit.message}" is not a documented unsupported operation (${where()})`,
          );
        }
        break;
      }
      if (reason !== VcpuExitReason.Budget && reason !== VcpuExitReason.Yield) break;
    }
    const key =
      Object.entries(VcpuExitReason).find(([, value]) => value === last)?.[0] ?? String(last);
    exits.set(key, (exits.get(key) ?? 0) + 1);
    // The state stays a plain, restorable object whatever the guest did.
    const state = JSON.parse(JSON.stringify(cpu.saveState()));
    copy.restoreState(state);
    expect(copy.saveState()).toEqual(cpu.saveState());
  }
  return exits;
}

describe("fuzz: random bytes never escape run()", () => {
  MODES.forEach((mode, index) => {
    it(`${mode.name}`, () => {
      const exits = fuzz(mode, ITERATIONS, (SEED + index * 0x9e3779b9) | 0);
      const total = [...exits.values()].reduce((a, b) => a + b, 0);
      console.log(
        `fuzz (${mode.name}): ${total} runs, last exits ${JSON.stringify(Object.fromEntries(exits))}`,
      );
      expect(total).toBe(ITERATIONS);
    });
  });
});
