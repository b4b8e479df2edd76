import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ArmGuest } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { findGuest } from "../../../guests/src/index";
import {
  ARM64_ENTRY_PSTATE,
  applyArm64EntryState,
  arm64BootMemory,
  buildArm64Boot,
  buildArm64DeviceTree,
  cells,
  DeviceTreeError,
  FdtWriter,
  KernelImageError,
  parseArm64ImageHeader,
  strings,
} from "../src/index";
import { runKumo } from "../src/node/index";

// Oracles: Debian's dtc (device-tree-compiler) decompiles and re-encodes
// the DTB; the guest kernel's own symbols (_text, _end, via llvm-nm) give
// the Image's size; Linux Documentation/arm64/booting.rst gives the rules.

const hasDtc = spawnSync("sh", ["-c", "command -v dtc"]).status === 0;

/** dtc's decompiled source and its warnings (dtc checks the tree as it reads it). */
function decompile(dtb: Uint8Array): { source: string; warnings: string } {
  const dir = mkdtempSync(join(tmpdir(), "kumo-dtb-"));
  try {
    const file = join(dir, "guest.dtb");
    writeFileSync(file, dtb);
    const run = spawnSync("dtc", ["-I", "dtb", "-O", "dts", file], { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`dtc failed: ${run.stderr}`);
    const again = execFileSync("dtc", ["-I", "dtb", "-O", "dtb", "-q", file]);
    expect(new Uint8Array(again)).toEqual(dtb); // dtc writes the same bytes back
    return { source: run.stdout, warnings: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The body of node `name` in dtc's output (up to its closing brace). */
function node(source: string, name: string): string {
  const start = source.indexOf(`\t${name} {`);
  if (start < 0) throw new Error(`no node ${name} in\n${source}`);
  return source.slice(start, source.indexOf("\n\t};", start));
}

const xenGuest = {
  memory: [{ base: ArmGuest.RAM0_BASE, size: 256 << 20 }],
  vcpus: 2,
  bootargs: "console=hvc0 earlycon",
  initrd: { start: 0x44000000, end: 0x44100000 },
};

describe.skipIf(!hasDtc)("the arm64 guest device tree, read back by dtc", () => {
  it("describes Xen: /hypervisor with xen,xen-4.17 first, the grant window and PPI 31 (xen-abi.md 1.5)", () => {
    const { source } = decompile(buildArm64DeviceTree(xenGuest));
    const hypervisor = node(source, "hypervisor");
    expect(hypervisor).toContain('compatible = "xen,xen-4.17\\0xen,xen";');
    expect(hypervisor).toContain("reg = <0x00 0x38000000 0x00 0x1000000>;");
    // GIC_PPI, INTID 31 - 16, CPU mask of two vCPUs, level-low (8).
    expect(hypervisor).toContain("interrupts = <0x01 0x0f 0x308>;");
    expect(source).toContain('compatible = "xen,xenvm-4.17\\0xen,xenvm";');
  });

  it("has memory, cpus with PSCI, the GICv2 frames, the timer PPIs and /chosen", () => {
    const { source } = decompile(buildArm64DeviceTree(xenGuest));
    expect(source).toMatch(/#address-cells = <0x02>;\s+#size-cells = <0x02>;/);
    expect(node(source, "memory@40000000")).toContain("reg = <0x00 0x40000000 0x00 0x10000000>;");
    expect(node(source, "memory@40000000")).toContain('device_type = "memory";');
    const cpus = node(source, "cpus");
    expect(cpus.match(/enable-method = "psci";/g)).toHaveLength(2);
    expect(cpus).toContain("cpu@1 {");
    expect(node(source, "psci")).toContain('method = "hvc";');
    const gic = node(source, "interrupt-controller@3001000");
    expect(gic).toContain("reg = <0x00 0x3001000 0x00 0x1000 0x00 0x3002000 0x00 0x2000>;");
    expect(gic).toContain("interrupt-controller;");
    expect(gic).toContain("#interrupt-cells = <0x03>;");
    const phandle = /phandle = <(0x[0-9a-f]+)>;/.exec(gic)?.[1];
    expect(source).toContain(`interrupt-parent = <${phandle}>;`);
    // Secure, non-secure physical and virtual timer PPIs 29, 30, 27 (arch-arm.h).
    expect(node(source, "timer")).toContain(
      "interrupts = <0x01 0x0d 0x308 0x01 0x0e 0x308 0x01 0x0b 0x308>;",
    );
    const chosen = node(source, "chosen");
    expect(chosen).toContain('bootargs = "console=hvc0 earlycon";');
    expect(chosen).toContain("linux,initrd-start = <0x00 0x44000000>;");
    expect(chosen).toContain("linux,initrd-end = <0x00 0x44100000>;");
  });

  it("dtc finds nothing to warn about but the unit-less /hypervisor Linux requires", () => {
    const { warnings } = decompile(
      buildArm64DeviceTree({
        ...xenGuest,
        uart: { base: ArmGuest.PL011_BASE, spi: ArmGuest.VPL011_SPI },
      }),
    );
    const lines = warnings.split("\n").filter((line) => line.includes("Warning"));
    // Linux's fdt_find_hyper_node matches the exact name "hypervisor" (arch/arm/xen/enlighten.c).
    for (const line of lines)
      expect(line).toMatch(/\/hypervisor: node has a reg or ranges property, but no unit name/);
  });

  it("a plain machine: no /hypervisor, an SBSA UART on SPI 32 as stdout-path", () => {
    const { source } = decompile(
      buildArm64DeviceTree({
        memory: xenGuest.memory,
        vcpus: 1,
        xen: false,
        uart: { base: ArmGuest.PL011_BASE, spi: ArmGuest.VPL011_SPI },
      }),
    );
    expect(source).not.toContain("hypervisor");
    const uart = node(source, "sbsa-uart@22000000");
    expect(uart).toContain('compatible = "arm,sbsa-uart";');
    expect(uart).toContain("interrupts = <0x00 0x00 0x04>;");
    expect(node(source, "chosen")).toContain('stdout-path = "/sbsa-uart@22000000";');
  });

  it("the writer stores each property name once and takes memory reservations", () => {
    const fdt = new FdtWriter();
    fdt.beginNode("").property("compatible", strings("a")).beginNode("n@1");
    fdt.property("compatible", strings("b")).property("reg", cells(1)).endNode().endNode();
    const dtb = fdt.finish([{ address: 0x48000000, size: 0x1000 }]);
    const { source } = decompile(dtb);
    expect(source).toMatch(/\/memreserve\/\s+0x0*48000000 0x0*1000;/);
    const stringsSize = new DataView(dtb.buffer).getUint32(32);
    expect(stringsSize).toBe("compatible\0reg\0".length);
  });
});

describe("device tree and Image mistakes are typed errors", () => {
  it("rejects bad trees", () => {
    expect(() => new FdtWriter().beginNode("x")).toThrow(DeviceTreeError);
    expect(() => new FdtWriter().beginNode("").beginNode("bad name")).toThrow(DeviceTreeError);
    expect(() => new FdtWriter().beginNode("").finish()).toThrow(/still open/);
    expect(() => buildArm64DeviceTree({ ...xenGuest, vcpus: 9 })).toThrow(DeviceTreeError);
    expect(() => cells(2 ** 32)).toThrow(DeviceTreeError);
  });

  it("rejects what is not a little-endian 4 KiB arm64 Image (booting.rst header)", () => {
    const header = new Uint8Array(64);
    const view = new DataView(header.buffer);
    expect(() => parseArm64ImageHeader(header)).toThrow(KernelImageError);
    view.setUint32(56, 0x644d5241, true);
    view.setUint32(16, 0x10000, true); // image_size
    expect(parseArm64ImageHeader(header)).toEqual({
      textOffset: 0,
      imageSize: 0x10000,
      pageSizeKiB: 0,
      placeAnywhere: false,
    });
    view.setUint32(24, 1, true);
    expect(() => parseArm64ImageHeader(header)).toThrow(/big-endian/);
    view.setUint32(24, 3 << 1, true);
    expect(() => parseArm64ImageHeader(header)).toThrow(/64 KiB pages/);
    view.setUint32(24, (1 << 1) | 8, true);
    expect(parseArm64ImageHeader(header).placeAnywhere).toBe(true);
    view.setUint32(16, 0, true); // image_size 0: a pre-3.17 kernel, text_offset 0x80000
    expect(parseArm64ImageHeader(header).textOffset).toBe(0x80000);
  });
});

/** The built arm64 guest, or undefined (also where clang-14/lld-14 are missing: guestInputs says so by throwing). */
function builtArm64Guest() {
  try {
    return findGuest("arm64");
  } catch {
    return undefined;
  }
}
const guest = builtArm64Guest();
const hasNm = spawnSync("sh", ["-c", "command -v llvm-nm-14"]).status === 0;

describe.runIf(guest !== undefined && hasNm)("the arm64 test guest's Image", () => {
  it("image_size is _end - _text and text_offset is 0, as the kernel's symbols say", () => {
    const image = readFileSync(guest?.kernel as string);
    const header = parseArm64ImageHeader(image);
    const symbols = execFileSync("llvm-nm-14", [guest?.vmlinux as string], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    const address = (name: string) =>
      Number.parseInt(
        symbols
          .split("\n")
          .find((line) => line.endsWith(` ${name}`))
          ?.split(" ")[0] ?? "",
        16,
      );
    expect(header.imageSize).toBe(address("_end") - address("_text"));
    expect(header.textOffset).toBe(0);
    expect(header.pageSizeKiB).toBe(4);
  });

  it("is placed at the start of RAM, the DTB in its own 2 MiB region, then the initrd", () => {
    const memory = createGuestMemory({ ramSize: 128 << 20, ramBase: ArmGuest.RAM0_BASE });
    const kernel = new Uint8Array(readFileSync(guest?.kernel as string));
    const initrd = new Uint8Array(readFileSync(guest?.initramfs as string));
    const layout = buildArm64Boot(arm64BootMemory(memory), {
      kernel,
      initrd,
      cmdline: "console=hvc0",
      vcpus: 1,
    });
    expect(layout.kernelAddress).toBe(ArmGuest.RAM0_BASE);
    expect(layout.deviceTreeAddress % 0x200000).toBe(0);
    expect(layout.deviceTreeAddress).toBeGreaterThanOrEqual(
      layout.kernelAddress + layout.header.imageSize,
    );
    expect(layout.initrd?.start).toBe(layout.deviceTreeAddress + 0x200000);
    expect(memory.read32(layout.kernelAddress + 56)).toBe(0x644d5241);
    expect(memory.read32(layout.deviceTreeAddress)).toBe(0xedfe0dd0); // 0xd00dfeed, big-endian
    expect(memory.read8(layout.initrd?.start as number)).toBe(0x1f); // gzip
    expect(layout.entry).toEqual({
      pc: ArmGuest.RAM0_BASE,
      x0: layout.deviceTreeAddress,
      pstate: ARM64_ENTRY_PSTATE,
    });
    const registers = new Map<number, number>();
    const cpu = {
      pc: 0 as bigint | number,
      pstate: 0x3c5,
      setX: (i: number, v: number) => registers.set(i, v),
    };
    applyArm64EntryState(cpu, layout.entry);
    expect(cpu.pc).toBe(ArmGuest.RAM0_BASE);
    expect([...registers]).toEqual([
      [0, layout.deviceTreeAddress],
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    expect(() =>
      buildArm64Boot(
        arm64BootMemory(createGuestMemory({ ramSize: 8 << 20, ramBase: ArmGuest.RAM0_BASE })),
        { kernel, initrd, vcpus: 1 },
      ),
    ).toThrow(/need RAM up to/);
  });

  it("kumo create -n shows the arm64 layout: the CPU follows the image", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-arm64-dry-"));
    try {
      writeFileSync(
        join(dir, "guest.cfg"),
        `name = "a"\ntype = "pvh"\nmemory = 64\nkernel = "${guest?.kernel}"\ncmdline = "console=hvc0"\n`,
      );
      let stdout = "";
      const status = await runKumo(["create", "-n", "guest.cfg"], {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: () => true },
        env: { KUMO_STATE_DIR: join(dir, "state") },
        cwd: dir,
      });
      expect(status).toBe(0);
      expect(stdout).toMatch(/type\s+: pvh \(arm64\)/);
      expect(stdout).toMatch(/entry\s+: 0x40000000 x0=0x40[02468ace]00000 EL1h/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
