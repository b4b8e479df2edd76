/**
 * Linux's 8250 driver on the HVM PC's extra serial ports (issue 9): the
 * i386 guest from guests/ boots by direct kernel boot through `kumo create
 * -c` with `serial = [ "pty", "file:com2.log", "null", "null" ]` and
 * `debugcon = "file:..."`, finds ttyS1-ttyS3 through the DSDT's PNP0501
 * devices at QEMU isa-serial's ports and IRQs, and what the shell writes
 * to /dev/ttyS1 (transmitted on THR-empty interrupts of IRQ 3, shared with
 * COM4) lands in com2.log.
 *
 * Slow (tens of seconds of emulated Linux): skipped without the guest images.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createAttached, findI386BzImage, hvmDirectBootConfig } from "./support/linux-guest";

const bzImage = findI386BzImage();

describe.skipIf(bzImage === null)("Linux i386 HVM guest with COM1-COM4", () => {
  it("finds ttyS1-ttyS3 and writes ttyS1 to the file behind COM2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-com-"));
    const {
      console: output,
      stdin,
      ended,
      waitFor,
    } = createAttached(
      dir,
      hvmDirectBootConfig("hvmcom", [
        'serial = [ "pty", "file:com2.log", "null", "null" ]',
        'debugcon = "file:debugcon.log"',
      ]),
    );
    await waitFor(/Kumo test guest i386 ready[\s\S]*# /, 400_000);
    expect(output.output).toMatch(/ttyS0 at I\/O 0x3f8 \(irq = 4/);
    expect(output.output).toMatch(/ttyS1 at I\/O 0x2f8 \(irq = 3/);
    expect(output.output).toMatch(/ttyS2 at I\/O 0x3e8 \(irq = 4/);
    expect(output.output).toMatch(/ttyS3 at I\/O 0x2e8 \(irq = 3/);
    const from = output.output.length;
    stdin.write("echo hello-com2 > /dev/ttyS1; echo sent-$((6*7))\n");
    await output.waitFor(/sent-42\s/, 120_000, from);
    stdin.write("poweroff -f\n");
    expect(await ended).toBe(0);
    // The tty layer turns "\n" into "\r\n" (ONLCR).
    expect(readFileSync(join(dir, "com2.log"), "latin1")).toContain("hello-com2\r\n");
    expect(existsSync(join(dir, "debugcon.log"))).toBe(true);
  }, 600_000);
});
