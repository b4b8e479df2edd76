/**
 * COM1-COM4 and the debug console file of the HVM PC (issue 9): xl.cfg
 * `serial` as a list of backends (one per port, as xl hands them to QEMU's
 * -serial) and `debugcon = "file:<path>"`; the ports at QEMU isa-serial's
 * addresses and IRQs, two UARTs on one ISA IRQ wired-ORed; the DSDT's
 * PNP0501 devices; `kumo create -n`. The guest side is
 * guests/freestanding/com-ports.asm, a real-mode boot sector.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { buildPcAcpiTables } from "../src/builder/acpi";
import { parseDomainConfig } from "../src/config/domain-config";
import { XlConfigError } from "../src/config/errors";
import { parseHvmOptions, SEABIOS_PATH } from "../src/config/hvm-options";
import { runKumo } from "../src/node";
import { openPortFiles } from "../src/node/port-files";
import { createHvmDomain } from "../src/runner/hvm-domain";
import { assemble, freestanding } from "./support/hvm";
import { hasTool } from "./support/linux-guest";

const base = 'name = "com"\ntype = "hvm"\nmemory = 16\nkernel = "-"\n';

describe("xl.cfg serial and debugcon", () => {
  it("reads one backend per port, COM1 first", () => {
    expect(parseHvmOptions(base).serialPorts).toEqual([{ kind: "pty" }]);
    expect(parseHvmOptions(base).debugcon).toEqual({ kind: "log" });
    const hvm = parseHvmOptions(
      `${base}serial = [ "pty", "file:/tmp/com2.log", "null", "none" ]\ndebugcon = "file:dbg.log"\n`,
    );
    expect(hvm.serial).toBe("pty");
    expect(hvm.serialPorts).toEqual([
      { kind: "pty" },
      { kind: "file", path: "/tmp/com2.log" },
      { kind: "null" },
      { kind: "null" },
    ]);
    expect(hvm.debugcon).toEqual({ kind: "file", path: "dbg.log" });
    expect(parseHvmOptions(`${base}serial = "none"\n`).serial).toBe("none");
    expect(parseHvmOptions(`${base}serial = [ "file:c1" ]\n`)).toMatchObject({
      serial: "none",
      serialPorts: [{ kind: "file", path: "c1" }],
    });
    expect(parseHvmOptions(`${base}debugcon = "log"\n`).debugcon).toEqual({ kind: "log" });
  });

  it.each([
    ['serial = [ "pty", "pty" ]', /"pty" for COM2/],
    [
      'serial = [ "pty", "tcp:localhost:4555" ]',
      /unsupported serial backend "tcp:localhost:4555" for COM2/,
    ],
    ['serial = "file:"', /unsupported serial backend "file:"/],
    ['serial = [ "pty", "null", "null", "null", "null" ]', /5 serial ports/],
    ["serial = [ ]", /empty serial list/],
    ['serial = [ "pty", 1 ]', /COM2 is not a string/],
    ['debugcon = "pipe:x"', /expected debugcon = "file:<path>" or "log"/],
    ["debugcon = 1", /expected debugcon/],
  ])("refuses %s with an XlConfigError", (line, message) => {
    const parse = () => parseHvmOptions(`${base}${line}\n`, "com.cfg");
    expect(parse).toThrow(XlConfigError);
    expect(parse).toThrow(message);
    expect(parse).toThrow(/com\.cfg:5:/);
  });

  it("accepts the keys in a domain config", () => {
    expect(() =>
      parseDomainConfig(`${base}serial = [ "pty", "null" ]\ndebugcon = "file:x"\n`),
    ).not.toThrow();
  });
});

describe("COM2-COM4 on the PC platform", () => {
  const domainWith = (extra: number) =>
    createHvmDomain(
      new Hypervisor(),
      parseDomainConfig(base),
      { bootSector: new Uint8Array(512) },
      { paused: true, serialPorts: new Array(extra).fill(undefined) },
    );

  it("places the ports at QEMU isa-serial's addresses, only those asked for", () => {
    const { platform } = domainWith(2);
    expect(platform.com.length).toBe(3);
    // The scratch register (base + 7) reads back what was written on a port that exists.
    for (const port of [0x3f8, 0x2f8, 0x3e8]) {
      platform.bus.portWrite(port + 7, 1, 0x5a);
      expect(platform.bus.portRead(port + 7, 1)).toBe(0x5a);
    }
    expect(platform.bus.claims(0x2e8)).toBe(false);
    expect(domainWith(0).platform.bus.claims(0x2f8)).toBe(false);
    platform.close();
  });

  it("wire-ORs two UARTs on one ISA IRQ (the line stays up while either asserts)", () => {
    const { platform } = domainWith(3);
    const { bus } = platform;
    // IRQ 3 level-triggered in the ELCR, so the PIC's IRR follows the line (8259A, PIIX3 4.1.13).
    bus.portWrite(0x4d0, 1, 0x08);
    const irr = () => {
      bus.portWrite(0x20, 1, 0x0a); // OCW3: read IRR
      return bus.portRead(0x20, 1);
    };
    for (const port of [0x2f8, 0x2e8]) {
      bus.portWrite(port + 4, 1, 0x08); // OUT2
      bus.portWrite(port + 1, 1, 0x02); // ETBEI: THR is empty, THRE asserts at once
    }
    expect(irr() & 0x08).toBe(0x08);
    bus.portWrite(0x2f8 + 1, 1, 0); // COM2 lets go; COM4 still asserts
    expect(irr() & 0x08).toBe(0x08);
    bus.portWrite(0x2e8 + 1, 1, 0);
    expect(irr() & 0x08).toBe(0);
    // COM1 and COM3 share IRQ 4 the same way.
    bus.portWrite(0x4d0, 1, 0x18);
    for (const port of [0x3f8, 0x3e8]) {
      bus.portWrite(port + 4, 1, 0x08);
      bus.portWrite(port + 1, 1, 0x02);
    }
    bus.portWrite(0x3e8 + 1, 1, 0);
    expect(irr() & 0x10).toBe(0x10);
    bus.portWrite(0x3f8 + 1, 1, 0);
    expect(irr() & 0x10).toBe(0);
    platform.close();
  });

  it("lists the ports present in the DSDT (PNP0501, _UID 1-4)", () => {
    const dsdt = (serialPorts?: number) => {
      const tables = buildPcAcpiTables({
        vcpus: 1,
        ioApicId: 1,
        ioApicAddress: 0xfec00000,
        ramBelow4G: 16 << 20,
        serialPorts,
      });
      return Buffer.from(tables.bytes).toString("latin1");
    };
    expect(dsdt()).toContain("COM1");
    expect(dsdt()).not.toContain("COM2");
    const four = dsdt(4);
    for (const name of ["COM1", "COM2", "COM3", "COM4"]) expect(four).toContain(name);
  });
});

describe.skipIf(!hasTool("nasm"))("COM2, COM4 and the debug console file from a guest", () => {
  it("writes COM2's output and the debug console to files; COM2 and COM4 both interrupt on IRQ 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-com-"));
    writeFileSync(join(dir, "com2.log"), "before\n");
    const hvm = parseHvmOptions(
      `${base}serial = [ "pty", "file:com2.log", "null", "null" ]\ndebugcon = "file:debugcon.log"\n`,
    );
    const files = openPortFiles(hvm, dir);
    const hypervisor = new Hypervisor();
    const runnable = createHvmDomain(
      hypervisor,
      parseDomainConfig(base),
      { bootSector: assemble(freestanding("com-ports.asm"), dir) },
      {
        paused: true,
        clock: { mode: "virtual" },
        serialPorts: files.serialPorts,
        debugconOutput: files.debugconOutput,
      },
    );
    const ended = new Promise<void>((resolve) =>
      hypervisor.onDomainEvent((event) => {
        if (event.kind === "shutdown") {
          hypervisor.stop();
          resolve();
        }
      }),
    );
    runnable.domain.unpause();
    const running = hypervisor.run();
    const timeout = setTimeout(() => hypervisor.stop(), 30_000);
    await Promise.race([ended, running]);
    clearTimeout(timeout);
    await running;
    runnable.console.close();
    runnable.platform.close();
    files.close();
    expect(runnable.exitStatus).toBe((0x10 << 1) | 1);
    expect(readFileSync(join(dir, "com2.log"), "latin1")).toBe("before\nhello from COM2\r\n");
    expect(readFileSync(join(dir, "debugcon.log"), "latin1")).toBe("COM2=1 COM4=1\n");
  }, 60_000);
});

describe("kumo create -n", () => {
  it("shows the serial ports and the debug console", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-com-dry-"));
    writeFileSync(join(dir, "bios.bin"), new Uint8Array(65536));
    writeFileSync(
      join(dir, "guest.cfg"),
      'name = "com"\ntype = "hvm"\nmemory = 32\nfirmware = "bios.bin"\nserial = [ "pty", "file:com2.log", "null" ]\ndebugcon = "file:dbg.log"\n',
    );
    let stdout = "";
    const status = await runKumo(["create", "-n", "guest.cfg"], {
      stdout: { write: (text: string | Uint8Array) => (stdout += text.toString()) },
      stderr: { write: () => true },
      env: { KUMO_STATE_DIR: join(dir, "state") },
      cwd: dir,
    });
    expect(status).toBe(0);
    expect(stdout).toMatch(/^COM1 +0x3f8 IRQ 4: domain console$/m);
    expect(stdout).toMatch(new RegExp(`^COM2 +0x2f8 IRQ 3: file ${join(dir, "com2.log")}$`, "m"));
    expect(stdout).toMatch(/^COM3 +0x3e8 IRQ 4: null$/m);
    expect(stdout).not.toMatch(/^COM4/m);
    expect(stdout).toMatch(new RegExp(`^debugcon +file ${join(dir, "dbg.log")}$`, "m"));
  });
});

describe.skipIf(!existsSync(SEABIOS_PATH))("SeaBIOS on a PC with COM1-COM3", () => {
  it('finds the ports itself: "Found 3 serial ports"', async () => {
    const hypervisor = new Hypervisor();
    let debug = "";
    let done: () => void = () => {};
    const found = new Promise<void>((resolve) => {
      done = resolve;
    });
    const runnable = createHvmDomain(
      hypervisor,
      parseDomainConfig('name = "bios"\ntype = "hvm"\nmemory = 32\nfirmware = "seabios"\n'),
      { firmware: new Uint8Array(readFileSync(SEABIOS_PATH)) },
      {
        clock: { mode: "wall" },
        hideXenCpuid: true,
        serialPorts: [undefined, undefined],
        debugconPort: 0x402,
        debugconOutput: (byte) => {
          debug += String.fromCharCode(byte);
          if (debug.endsWith("\n") && /Found \d+ serial ports/.test(debug)) done();
        },
      },
    );
    const running = hypervisor.run();
    const timer = setTimeout(done, 60_000);
    await found;
    clearTimeout(timer);
    hypervisor.destroyDomain(runnable.domain.domid);
    hypervisor.stop();
    await running;
    runnable.platform.close();
    expect(debug).toContain("Found 3 serial ports");
  }, 90_000);
});
