/**
 * The boot-sector test program of issue 9 (guests/freestanding/
 * pc-interrupts.asm, assembled with nasm) on an HVM domain's
 * emulated PC: in real mode, without firmware, it takes PIT, RTC and UART
 * interrupts through the 8259A pair, prints one line per device on COM1 and
 * the 0xE9 debug console, and ends the domain through the isa-debug-exit
 * port. (In the linux-hvm* file family only because that is this work's
 * test-name pattern; no Linux is involved.)
 */
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { assemble, freestanding, runHvmUntilShutdown } from "./support/hvm";
import { hasTool } from "./support/linux-guest";

const source = freestanding("pc-interrupts.asm");

describe.skipIf(!hasTool("nasm"))("real-mode boot sector on the HVM PC", () => {
  // On both clocks: the PIT and RTC timers are the domain's device timers, so a virtual-clock
  // run halted between interrupts skips to their deadlines (and is the same run every time).
  it.each(["wall", "virtual"] as const)(
    "takes PIT, RTC and UART interrupts and exits through port 0xf4 (%s clock)",
    async (mode) => {
      const program = assemble(source);
      expect(program.length).toBe(512);
      expect(program[510] | (program[511] << 8)).toBe(0xaa55);
      const config = parseDomainConfig(
        'name = "bootsector"\ntype = "hvm"\nmemory = 16\nkernel = "-"\n',
      );
      const { runnable, debugcon, serial } = await runHvmUntilShutdown(
        new Hypervisor(),
        config,
        { bootSector: program },
        { clock: { mode } },
        60_000,
      );
      const lines = [
        "PC IRQ test\r\n",
        "PIT: 10 IRQ 0\r\n",
        "RTC: 16 IRQ 8\r\n",
        "\r\nUART: 2 IRQ 4\r\n",
      ];
      expect(debugcon).toBe(lines.join(""));
      // COM1 also carries the byte that made the second THRE interrupt.
      expect(serial).toBe(`${lines.slice(0, 3).join("")}*${lines[3]}`);
      expect(runnable.exitStatus).toBe((0x10 << 1) | 1);
      expect(runnable.domain.shutdownReason).toBe(0); // SHUTDOWN_poweroff
    },
    120_000,
  );
});
