/**
 * The arm64 test guest (guests/, built with `node guests/bin/guests.mjs arm64`,
 * which `pnpm test` runs through turbo) on Kumo, in three boots: as a Xen
 * guest with 2 vCPUs through createArm64Domain (GICv2, device tree, Image
 * loader, @kumo/cpu-arm) and a xenstore daemon; through `kumo create -c` and
 * a kumo daemon; and on the plain arm64 machine (`xen_aware = 0`, no
 * /hypervisor, console=ttyAMA0 on the SBSA UART) through a foreground
 * `kumo create -c`. Each runs on the virtual clock. They run whenever the
 * guest is built (found in the cache); with `CI` set a missing guest fails
 * the file instead, as the i386 tests do (support/linux-guest.ts): a skip
 * there would hide a broken guest build.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { Hypervisor } from "@kumo/hypervisor-core";
import { Xenstored } from "@kumo/xenstore";
import { describe, expect, it } from "vitest";
import { findGuest } from "../../../guests/src/index";
import { KumoDaemon } from "../src/daemon/server";
import {
  Arm64SpecialPages,
  createArm64Domain,
  introduceDomain,
  parseDomainConfig,
} from "../src/index";
import { runKumo } from "../src/node/index";
import { Console, createAttached } from "./support/linux-guest";

function builtArm64Guest() {
  let guest: ReturnType<typeof findGuest>;
  let why = "it is not in the cache ($KUMO_GUESTS_CACHE or ~/.cache/kumo/guests)";
  try {
    guest = findGuest("arm64");
  } catch (error) {
    // guestInputs throws where clang-14/lld-14 or linux-source-6.1 are missing.
    why = (error as Error).message;
  }
  if (guest === undefined && process.env.CI)
    throw new Error(
      `CI is set but no arm64 guest is built (${why}): \`node guests/bin/guests.mjs arm64\` must run before these tests (pnpm test does it)`,
    );
  return guest;
}
const guest = builtArm64Guest();
const seconds = Number(process.env.KUMO_ARM64_SECONDS ?? 600);
/** vCPUs of the first test's guest (KUMO_ARM64_VCPUS, default 2: secondary CPUs come up by PSCI CPU_ON). */
const vcpus = Number(process.env.KUMO_ARM64_VCPUS ?? 2);

describe.runIf(guest !== undefined)("the arm64 Linux guest on Kumo", () => {
  it("finds Xen in the device tree, reaches the prompt on hvc0, answers uname -m and powers off", async () => {
    const hypervisor = new Hypervisor();
    const log: string[] = [];
    hypervisor.onLog((line) => log.push(line));
    const config = parseDomainConfig(
      [
        'name = "arm64"',
        'type = "pvh"',
        "memory = 128",
        `vcpus = ${vcpus}`,
        `kernel = "${guest?.kernel}"`,
        `ramdisk = "${guest?.initramfs}"`,
        'cmdline = "console=hvc0 earlycon=xenboot"',
      ].join("\n"),
    );
    const runnable = createArm64Domain(
      hypervisor,
      config,
      {
        kernel: new Uint8Array(readFileSync(guest?.kernel as string)),
        ramdisk: new Uint8Array(readFileSync(guest?.initramfs as string)),
      },
      { paused: true, clock: { mode: "virtual" } },
    );
    const { domain } = runnable;
    const xenstored = new Xenstored();
    await introduceDomain(xenstored, hypervisor.host, {
      domid: domain.domid,
      name: config.name,
      memoryKiB: config.memoryMiB * 1024,
      vcpus: config.vcpus,
      storeGfn: Arm64SpecialPages.xenstoreGfn,
      storePort: runnable.storePort,
    });
    let hvc = "";
    const waiters: [string, () => void][] = [];
    runnable.console.onOutput((bytes) => {
      hvc += Buffer.from(bytes).toString("latin1");
      for (const waiter of [...waiters])
        if (hvc.includes(waiter[0])) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter[1]();
        }
    });
    const seen = (text: string) =>
      new Promise<void>((resolve) => {
        if (hvc.includes(text)) resolve();
        else waiters.push([text, resolve]);
      });
    let ended = "";
    hypervisor.onDomainEvent((event) => {
      if (event.kind === "shutdown") {
        ended = event.reason;
        runnable.console.service();
        hypervisor.stop();
      }
    });
    const started = performance.now();
    domain.unpause();
    const running = hypervisor.run();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));
    let prompt = -1;
    await Promise.race([
      (async () => {
        await seen("~ # ");
        prompt = performance.now() - started;
        runnable.console.write("uname -m; echo $((6*7))\n");
        await seen("42\r\n");
        runnable.console.write("poweroff\n");
        await seen("reboot: Power down");
        // The last vCPU's PSCI SYSTEM_OFF comes after the message; the shutdown event stops the run.
        await running;
      })(),
      deadline,
      running,
    ]);
    hypervisor.stop();
    await running;
    const cpu = domain.vcpus[0]?.vcpu as unknown as { pc: bigint; instructionsRetired: number };
    console.log(
      [
        `ended: ${ended || domain.state}; prompt after ${prompt < 0 ? "-" : `${(prompt / 1000).toFixed(1)} s`}; ${cpu.instructionsRetired} instructions; pc 0x${cpu.pc.toString(16)}`,
        "--- hypervisor log (not the guest's console_io) ---",
        ...log.slice(0, 30),
        "...",
        ...log.filter((line) => !line.startsWith("(d")).slice(-40),
        "--- hvc0 ---",
        hvc.slice(-6000),
      ].join("\n"),
    );
    // Linux found Xen through /hypervisor (arch/arm/xen/enlighten.c xen_early_init), early
    // output went through console_io (earlycon=xenboot), then hvc0 took over.
    expect(log.join("\n")).toContain("Xen 4.17 support found");
    expect(hvc).toContain("xen:grant_table: Grant tables using version 1 layout");
    expect(hvc).toContain("Kumo test guest arm64 ready");
    expect(hvc).toMatch(/aarch64\r\n42\r\n/);
    expect(hvc).toContain("reboot: Power down");
    expect(hvc).toContain(`smp: Brought up 1 node, ${vcpus} CPU`);
    expect(ended).toBe("poweroff");
    expect(`${log.join("\n")}\n${hvc}`).not.toMatch(/WARNING|Oops|BUG:|xen.*(error|fail)/i);
  }, 1_200_000);
});

describe.runIf(guest !== undefined)("the arm64 guest on the plain machine (xen_aware = 0)", () => {
  it("kumo create -c boots it with console=ttyAMA0 on the SBSA UART to the prompt, without Xen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-arm64-plain-"));
    const started = performance.now();
    const {
      console: output,
      stdin,
      ended,
      waitFor,
    } = createAttached(dir, [
      'name = "arm64plain"',
      'type = "pvh"',
      "memory = 128",
      "vcpus = 1",
      `kernel = "${guest?.kernel}"`,
      `ramdisk = "${guest?.initramfs}"`,
      'cmdline = "console=ttyAMA0"',
      'vuart = "sbsa_uart"',
      "xen_aware = 0",
    ]);
    await waitFor(/Kumo test guest arm64 ready[\s\S]*# /, seconds * 1000);
    const prompt = performance.now() - started;
    const from = output.output.length;
    stdin.write('echo "@@$((40+2))@@"; uname -m\n');
    await output.waitFor(/@@42@@\s+aarch64/, 120_000, from);
    stdin.write("poweroff\n");
    expect(await ended).toBe(0);
    console.log(
      `plain machine: prompt after ${(prompt / 1000).toFixed(1)} s\n${output.output.slice(0, 3000)}`,
    );
    // The kernel's own messages come through the UART (drivers/tty/serial/amba-pl011.c
    // sbsa_uart_probe), and nothing of Xen: the tree has no /hypervisor node.
    expect(output.output).toMatch(/sbsa-uart: ttyAMA0 at MMIO 0x22000000/);
    expect(output.output).toContain("reboot: Power down");
    expect(output.output).not.toMatch(/Xen [0-9.]+ support found|xen:grant_table|hvc0/);
    expect(output.output).not.toMatch(/WARNING|Oops|BUG:/);
  }, 1_200_000);
});

describe.runIf(guest !== undefined)("kumo daemon with an arm64 Image", () => {
  it("creates the arm64 domain and `create -c` through the daemon reaches the prompt", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-arm64-daemon-"));
    writeFileSync(
      join(dir, "guest.cfg"),
      [
        'name = "arm64d"',
        'type = "pvh"',
        "memory = 128",
        `kernel = "${guest?.kernel}"`,
        `ramdisk = "${guest?.initramfs}"`,
        'cmdline = "console=hvc0"',
        "",
      ].join("\n"),
    );
    const daemon = new KumoDaemon({ env: { KUMO_STATE_DIR: dir }, clock: "virtual" });
    await daemon.listen(join(dir, "kumo.sock"));
    try {
      const stdin = new PassThrough();
      const output = new Console(stdin);
      const status = runKumo(["create", "-c", "guest.cfg"], {
        stdout: output,
        stderr: { write: () => true },
        stdin,
        env: { KUMO_STATE_DIR: dir },
        cwd: dir,
      });
      await output.waitFor(/Kumo test guest arm64 ready[\s\S]*# /, seconds * 1000, 0);
      const from = output.output.length;
      stdin.write("uname -m; poweroff\n");
      await output.waitFor(/aarch64/, 120_000, from);
      expect(await status).toBe(0);
    } finally {
      await daemon.close();
    }
  }, 1_200_000);
});
