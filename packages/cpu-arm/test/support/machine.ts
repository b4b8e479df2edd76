import { createGuestMemory, type GuestMemory } from "@kumo/mmu";
import { Arm64Cpu } from "../../src/cpu";
import { assemble } from "./assemble";

/** RAM at 0x40000000 as on Xen's and QEMU's arm virt machines. */
export const RAM_BASE = 0x40000000;
export const CODE = RAM_BASE + 0x10000;
export const DATA = RAM_BASE + 0x80000;

export interface Machine {
  cpu: Arm64Cpu;
  memory: GuestMemory;
}

/** A CPU at EL1h, MMU off, with `code` at CODE and SP at the top of a 1 MiB RAM. */
export function machine(code: Uint8Array, counter = () => 0): Machine {
  const memory = createGuestMemory({ ramSize: 1 << 20, ramBase: RAM_BASE });
  memory.writeBytes(CODE, code);
  const cpu = new Arm64Cpu({ memory, hooks: { readCounter: counter } });
  cpu.pc = CODE;
  cpu.sp = RAM_BASE + 0xff000;
  return { cpu, memory };
}

/** Assembles `source`, appends `wfi`, runs it to the Halt exit and returns the CPU. */
export function runAsm(source: string, setup?: (m: Machine) => void): Machine {
  const m = machine(assemble(`${source}\nwfi`));
  setup?.(m);
  const reason = m.cpu.run(100000);
  if (reason !== 1)
    throw new Error(
      `expected the wfi Halt exit, got ${reason}: ${m.cpu.exit.message} pc=${m.cpu.pc.toString(16)}`,
    );
  return m;
}

export function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}
