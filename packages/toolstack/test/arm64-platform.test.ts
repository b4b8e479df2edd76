/**
 * The arm64 platform keys of xl.cfg: `vuart = "sbsa_uart"` (xl.cfg(5), Xen
 * on Arm) and Kumo's `xen_aware = 0` (a plain arm64 machine for kernels that
 * are not Xen-aware), the domains they build and the UART as a console.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArmGuest } from "@kumo/abi";
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { KumoDaemon } from "../src/daemon/server";
import { createArm64Domain, parseDomainConfig, XlConfigError } from "../src/index";
import { runKumo } from "../src/node/index";

const base = ['name = "a"', 'type = "pvh"', 'kernel = "Image"', "memory = 64"];

/** A header-only arm64 Image (booting.rst): magic, image_size 64 KiB, text_offset 0. */
function tinyImage(): Uint8Array {
  const image = new Uint8Array(64);
  const view = new DataView(image.buffer);
  view.setUint32(16, 0x10000, true);
  view.setUint32(56, 0x644d5241, true);
  return image;
}

/** dtc's decompiled text of a DTB (Debian's device-tree-compiler), or null without dtc. */
function decompile(dtb: Uint8Array): string | null {
  if (spawnSync("sh", ["-c", "command -v dtc"]).status !== 0) return null;
  const file = join(mkdtempSync(join(tmpdir(), "kumo-dtb-")), "guest.dtb");
  writeFileSync(file, dtb);
  const run = spawnSync("dtc", ["-I", "dtb", "-O", "dts", "-q", file], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`dtc failed: ${run.stderr}`);
  return run.stdout;
}

describe("xl.cfg vuart and xen_aware", () => {
  it('reads vuart = "sbsa_uart" and xen_aware, and leaves both unset by default', () => {
    const plain = parseDomainConfig(base.join("\n"));
    expect(plain.vuart).toBeUndefined();
    expect(plain.xenAware).toBeUndefined();
    const config = parseDomainConfig([...base, 'vuart = "sbsa_uart"', "xen_aware = 0"].join("\n"));
    expect(config.vuart).toBe("sbsa_uart");
    expect(config.xenAware).toBe(false);
    expect(config.warnings).toEqual([]);
    expect(parseDomainConfig([...base, "xen_aware = 1"].join("\n")).xenAware).toBe(true);
  });

  it("names the only vuart there is when another is asked for", () => {
    for (const value of ['"pl011"', '"sbsa"', "1", '["sbsa_uart"]']) {
      const text = [...base, `vuart = ${value}`].join("\n");
      expect(() => parseDomainConfig(text, "g.cfg")).toThrow(XlConfigError);
      if (value !== '["sbsa_uart"]')
        expect(() => parseDomainConfig(text, "g.cfg")).toThrow(
          /g\.cfg:5:\d+: expected vuart = "sbsa_uart"/,
        );
    }
    expect(() => parseDomainConfig([...base, "xen_aware = 2"].join("\n"))).toThrow(
      /expected an integer \(0 or 1\) from 0 to 1 for "xen_aware"/,
    );
  });
});

describe("the arm64 domain with a UART and on the plain machine", () => {
  it("vuart: the SBSA UART at GUEST_PL011_BASE on SPI 32, in the tree beside /hypervisor", () => {
    const hypervisor = new Hypervisor();
    const config = parseDomainConfig([...base, 'vuart = "sbsa_uart"'].join("\n"));
    const runnable = createArm64Domain(
      hypervisor,
      config,
      { kernel: tinyImage() },
      { paused: true, uart: config.vuart === "sbsa_uart" },
    );
    expect(runnable.xen).toBe(true);
    expect(runnable.uart).not.toBeNull();
    const dts = decompile(runnable.layout.deviceTree);
    if (dts !== null) {
      expect(dts).toContain(`sbsa-uart@${ArmGuest.PL011_BASE.toString(16)} {`);
      expect(dts).toContain('compatible = "arm,sbsa-uart";');
      expect(dts).toContain(`stdout-path = "/sbsa-uart@${ArmGuest.PL011_BASE.toString(16)}";`);
      expect(dts).toMatch(/hypervisor \{\s*compatible = "xen,xen-4\.17\\0xen,xen";/);
    }
  });

  it("xen: false builds a tree without /hypervisor, with the UART as the console", () => {
    const hypervisor = new Hypervisor();
    const runnable = createArm64Domain(
      hypervisor,
      parseDomainConfig([...base, 'cmdline = "console=ttyAMA0"'].join("\n")),
      { kernel: tinyImage() },
      { paused: true, xen: false },
    );
    expect(runnable.xen).toBe(false);
    expect(runnable.uart).not.toBeNull();
    const dts = decompile(runnable.layout.deviceTree);
    if (dts !== null) {
      expect(dts).not.toContain("hypervisor");
      expect(dts).not.toContain("xen");
      expect(dts).toContain('compatible = "arm,sbsa-uart";');
      expect(dts).toContain('bootargs = "console=ttyAMA0";');
      expect(dts).toContain('method = "hvc";');
      expect(dts).toContain('compatible = "arm,armv8-timer";');
    }
  });

  it("the UART console carries the guest's bytes out and typed bytes in, past a full FIFO", () => {
    const hypervisor = new Hypervisor();
    const runnable = createArm64Domain(
      hypervisor,
      parseDomainConfig(base.join("\n")),
      { kernel: tinyImage() },
      { paused: true, xen: false },
    );
    const uart = runnable.uart!;
    const uartConsole = runnable.uartConsole!;
    const out: number[] = [];
    const stop = uartConsole.onOutput((bytes) => out.push(...bytes));
    // UARTCR = UARTEN | TXE | RXE, UARTLCR_H.FEN (PL011 TRM 3.3.8, 3.3.7): what Linux's driver sets.
    uart.write(0x2c, 4, 1 << 4);
    uart.write(0x30, 4, 0x301);
    uart.write(0x00, 4, 0x4b);
    expect(out).toEqual([0x4b]);
    stop();
    uart.write(0x00, 4, 0x4c);
    expect(out).toEqual([0x4b]);
    // 40 bytes: the 32-entry FIFO takes 32, the rest waits for room.
    const typed = Array.from({ length: 40 }, (_, i) => 0x30 + i);
    uartConsole.write(Uint8Array.from(typed));
    const received: number[] = [];
    const flagEmpty = 1 << 4; // UARTFR.RXFE
    while ((uart.read(0x18, 4) & flagEmpty) === 0) received.push(uart.read(0x00, 4) & 0xff);
    expect(received).toEqual(typed.slice(0, 32));
  });
});

describe("the UART keys and a kumo daemon", () => {
  it("create refuses them with a message while a daemon runs (its consoles are PV consoles)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-arm64-uart-daemon-"));
    writeFileSync(join(dir, "Image"), tinyImage());
    writeFileSync(join(dir, "guest.cfg"), [...base, "xen_aware = 0", ""].join("\n"));
    const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir }, clock: "virtual" });
    await daemon.listen(join(dir, "kumo.sock"));
    try {
      let stderr = "";
      const status = await runKumo(["create", "guest.cfg"], {
        stdout: { write: () => true },
        stderr: { write: (text: string) => (stderr += text) },
        env: { KUMO_STATE_DIR: dir },
        cwd: dir,
      });
      expect(status).not.toBe(0);
      expect(stderr).toMatch(/xen_aware = 0 run only in the foreground/);
    } finally {
      await daemon.close();
    }
  });
});

describe("kumo create -n on the arm64 platform keys", () => {
  it("shows the UART and the plain machine in the layout", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-arm64-dry-"));
    writeFileSync(join(dir, "Image"), tinyImage());
    const dryRun = async (extra: string[]) => {
      writeFileSync(join(dir, "guest.cfg"), [...base, ...extra, ""].join("\n"));
      let stdout = "";
      const status = await runKumo(["create", "-n", "guest.cfg"], {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: () => true },
        env: { KUMO_STATE_DIR: join(dir, "state") },
        cwd: dir,
      });
      expect(status).toBe(0);
      return stdout;
    };
    expect(await dryRun([])).toMatch(/GICv2, PSCI, \/hypervisor xen,xen-4\.17\)/);
    expect(await dryRun(['vuart = "sbsa_uart"'])).toMatch(
      /SBSA UART at 0x22000000 SPI 32, \/hypervisor xen,xen-4\.17\)/,
    );
    expect(await dryRun(["xen_aware = 0"])).toMatch(
      /SBSA UART at 0x22000000 SPI 32, no \/hypervisor/,
    );
  });
});
