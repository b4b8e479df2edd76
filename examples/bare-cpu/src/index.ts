/**
 * A machine without a hypervisor: one @kumo/cpu-x86 CPU in real mode, 1 MiB of
 * @kumo/mmu guest memory and @kumo/device-models' 16550 UART on the PC's COM1
 * ports (0x3F8-0x3FF). The CPU calls back into `VcpuIo` for `in`/`out`; the
 * UART knows nothing of ports, so the VMM adapts offsets, as rust-vmm's
 * vm-superio users do. Browser-safe.
 */
import { VcpuExitReason } from "@kumo/abi";
import { createX86Cpu } from "@kumo/cpu-x86";
import { Serial16550 } from "@kumo/device-models";
import { createGuestMemory } from "@kumo/mmu";

const COM1 = 0x3f8;
/** Where a PC BIOS loads a boot sector (and where hello.asm is assembled for). */
export const LOAD_ADDRESS = 0x7c00;

export interface BareRun {
  /** What the program wrote to COM1. */
  readonly output: Uint8Array;
  /** Why the CPU stopped: `VcpuExitReason.Halt` for a program that ended with `hlt`. */
  readonly reason: VcpuExitReason;
  readonly instructions: number;
}

/** Runs a flat real-mode binary loaded at 0000:7C00 until it halts or `budget` instructions ran. */
export function runRealModeProgram(program: Uint8Array, budget = 1_000_000): BareRun {
  const memory = createGuestMemory({ ramSize: 1 << 20 });
  memory.writeBytes(LOAD_ADDRESS, program);
  const output: number[] = [];
  const serial = new Serial16550({ output: (byte) => output.push(byte) });
  const cpu = createX86Cpu({
    memory,
    io: {
      portRead: (port, size) =>
        // Nothing answers elsewhere: the ISA bus floats high (all ones).
        port >= COM1 && port < COM1 + 8 ? serial.read(port - COM1, size) : 2 ** (8 * size) - 1,
      portWrite: (port, size, value) => {
        if (port >= COM1 && port < COM1 + 8) serial.write(port - COM1, size, value);
      },
    },
  });
  cpu.setRealMode(0, LOAD_ADDRESS);
  let reason: VcpuExitReason = VcpuExitReason.Budget;
  // Slices of 10 000 instructions: `run` returns at a slice end, a hlt or an I/O the CPU cannot finish.
  while (cpu.instructionsRetired < budget) {
    reason = cpu.run(10_000);
    if (reason !== VcpuExitReason.Budget) break;
  }
  return { output: Uint8Array.from(output), reason, instructions: cpu.instructionsRetired };
}
