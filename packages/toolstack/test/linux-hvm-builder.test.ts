/**
 * The HVM direct-boot builder (src/builder/bzimage-boot.ts) against Linux's
 * boot protocol (Documentation/arch/x86/boot.rst, zero-page.rst), on a
 * synthetic bzImage, and the `kumo create -n` dry run of an HVM config.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BzImageLayout, buildBzImageBoot, readSetupHeader } from "../src/builder/bzimage-boot";
import { KernelImageError } from "../src/builder/errors";
import { buildMpTable, MP_TABLE_ADDRESS } from "../src/builder/mp-table";
import { ramBootMemory } from "../src/builder/pvh";
import { XlConfigError } from "../src/config/errors";
import { parseHvmOptions } from "../src/config/hvm-options";
import { runKumo } from "../src/node/index";
import { hasTool } from "./support/linux-guest";
import { runC } from "./support/oracles";

/** boot.rst loadflags bits: the kernel's and the loader's. */
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;

/** A bzImage shaped like Linux 6.1's: 4 setup sectors, protocol 2.15, code32_start 0x100000. */
function fakeBzImage(payload = 0x3000): Uint8Array {
  const image = new Uint8Array(5 * 512 + payload);
  const view = new DataView(image.buffer);
  image[0x1f1] = 4;
  image[0x201] = 0x6a; // header ends at 0x26c (jump offset byte)
  view.setUint32(0x202, 0x53726448, true);
  view.setUint16(0x206, 0x020f, true);
  image[0x211] = 0x01; // LOADED_HIGH
  view.setUint32(0x214, 0x100000, true);
  view.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  view.setUint32(0x238, 2047, true); // cmdline_size
  view.setUint32(0x260, 0x10000, true); // init_size
  for (let i = 0; i < payload; i++) image[5 * 512 + i] = (i * 7) & 0xff;
  return image;
}

describe("bzImage direct boot", () => {
  it("writes the zero page, command line, kernel and ramdisk as boot.rst asks", () => {
    const ram = new Uint8Array(32 << 20);
    const image = fakeBzImage();
    const ramdisk = new Uint8Array(10000).fill(0x5a);
    const layout = buildBzImageBoot(ramBootMemory(ram), {
      bzImage: image,
      ramdisk,
      cmdline: "console=ttyS0",
    });
    const params = new DataView(ram.buffer, BzImageLayout.bootParams, 4096);
    expect(layout.entry).toBe(0x100000);
    expect(layout.protocol).toBe(0x20f);
    // The setup header copied, then the loader's fields.
    expect(params.getUint32(0x202, true)).toBe(0x53726448);
    expect(params.getUint8(0x210)).toBe(0xff); // type_of_loader
    expect(params.getUint8(0x211)).toBe(0x81); // LOADED_HIGH | CAN_USE_HEAP
    expect(params.getUint32(0x228, true)).toBe(layout.cmdlineAddress);
    expect(
      new TextDecoder().decode(ram.subarray(layout.cmdlineAddress, layout.cmdlineAddress + 14)),
    ).toBe("console=ttyS0\0");
    // Ramdisk at the top of RAM, page-aligned.
    expect(params.getUint32(0x218, true)).toBe(layout.ramdisk?.address);
    expect(params.getUint32(0x21c, true)).toBe(10000);
    expect((layout.ramdisk?.address ?? 1) % 4096).toBe(0);
    expect(ram[(layout.ramdisk?.address ?? 0) + 9999]).toBe(0x5a);
    // The protected-mode kernel from (setup_sects + 1) * 512 at 0x100000.
    expect(Array.from(ram.subarray(0x100000, 0x100004))).toEqual([0, 7, 14, 21]);
    // e820: count at 0x1e8, 20-byte entries at 0x2d0.
    expect(params.getUint8(0x1e8)).toBe(layout.e820.length);
    const entry = (i: number) => [
      params.getUint32(0x2d0 + 20 * i, true),
      params.getUint32(0x2d0 + 20 * i + 8, true),
      params.getUint32(0x2d0 + 20 * i + 16, true),
    ];
    expect(entry(0)).toEqual([0, 0x9fc00, 1]);
    expect(entry(3)).toEqual([0x100000, (32 << 20) - 0x100000, 1]);
    expect(entry(4)).toEqual([0xfeff8000, 0x8000, 2]);
  });

  it.skipIf(!hasTool("gcc") || !existsSync("/usr/include/asm/bootparam.h"))(
    "Linux's struct boot_params (linux-libc-dev asm/bootparam.h) reads back what the builder wrote",
    () => {
      const ram = new Uint8Array(32 << 20);
      const layout = buildBzImageBoot(ramBootMemory(ram), {
        bzImage: fakeBzImage(),
        ramdisk: new Uint8Array(5000),
        cmdline: "console=ttyS0 quiet",
      });
      const dir = mkdtempSync(join(tmpdir(), "kumo-bootparams-"));
      const dump = join(dir, "ram.bin");
      writeFileSync(dump, ram.subarray(0, 0x100000));
      const printed = runC(
        "boot-params-oracle",
        `#include <stdio.h>
#include <asm/bootparam.h>
int main(int argc, char **argv) {
  static unsigned char ram[1 << 20];
  FILE *f = fopen(argv[1], "rb");
  if (!f || fread(ram, 1, sizeof ram, f) != sizeof ram) return 1;
  struct boot_params *bp = (void *)(ram + ${BzImageLayout.bootParams});
  struct setup_header *h = &bp->hdr;
  printf("header %#x version %#x loader %#x loadflags %#x code32 %#x\\n", h->header, h->version, h->type_of_loader, h->loadflags, h->code32_start);
  printf("cmdline %s\\n", (char *)ram + h->cmd_line_ptr);
  printf("ramdisk %#x %u\\n", h->ramdisk_image, h->ramdisk_size);
  for (int i = 0; i < bp->e820_entries; i++)
    printf("e820 %#llx %#llx %u\\n", bp->e820_table[i].addr, bp->e820_table[i].size, bp->e820_table[i].type);
  return 0;
}
`,
        [dump],
      );
      const hex = (value: number) => `0x${value.toString(16)}`;
      expect(printed.split("\n").filter(Boolean)).toEqual([
        `header 0x53726448 version 0x20f loader 0xff loadflags ${hex(LOADED_HIGH | CAN_USE_HEAP)} code32 0x100000`,
        "cmdline console=ttyS0 quiet",
        `ramdisk ${hex(layout.ramdisk?.address ?? 0)} 5000`,
        ...layout.e820.map(
          (e) => `e820 ${e.address === 0 ? "0" : hex(e.address)} ${hex(e.size)} ${e.type}`,
        ),
      ]);
    },
  );

  it("rejects what is not a bootable bzImage, or a command line too long", () => {
    const ram = ramBootMemory(new Uint8Array(16 << 20));
    expect(() => readSetupHeader(new Uint8Array(4096))).toThrow(/HdrS/);
    const old = fakeBzImage();
    old[0x206] = 0x02;
    expect(() => readSetupHeader(old)).toThrow(KernelImageError);
    const low = fakeBzImage();
    low[0x211] = 0;
    expect(() => readSetupHeader(low)).toThrow(/zImage/);
    expect(() =>
      buildBzImageBoot(ram, { bzImage: fakeBzImage(), cmdline: "x".repeat(2048) }),
    ).toThrow(/2047/);
  });

  it("reads the HVM xl.cfg keys", () => {
    expect(parseHvmOptions('serial = "pty"')).toEqual({
      serial: "pty",
      serialPorts: [{ kind: "pty" }],
      debugcon: { kind: "log" },
      firmware: undefined,
      debugconPort: 0xe9,
      debugExitPort: 0xf4,
      xenPlatformPci: false,
    });
    expect(
      parseHvmOptions('serial = [ "none" ]\ndebugcon_port = 0x402\ndebug_exit_port = "none"'),
    ).toEqual({
      serial: "none",
      serialPorts: [{ kind: "null" }],
      debugcon: { kind: "log" },
      firmware: undefined,
      debugconPort: 0x402,
      debugExitPort: null,
      xenPlatformPci: false,
    });
    // serial = "file:<path>" is a backend now (test/hvm-serial-ports.test.ts); a TCP one is not.
    expect(() => parseHvmOptions('serial = "tcp::4555"', "g.cfg")).toThrow(XlConfigError);
    expect(() => parseHvmOptions("debugcon_port = 0x10000", "g.cfg")).toThrow(/g.cfg:1:17/);
  });

  it("kumo create -n describes the HVM boot", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-hvm-dry-"));
    writeFileSync(join(dir, "bzImage"), fakeBzImage());
    writeFileSync(
      join(dir, "guest.cfg"),
      'name = "d"\ntype = "hvm"\nmemory = 32\nkernel = "bzImage"\ncmdline = "console=ttyS0"\nserial = "pty"\n',
    );
    let stdout = "";
    let stderr = "";
    const status = await runKumo(["create", "-n", "guest.cfg"], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      env: { KUMO_STATE_DIR: join(dir, "state") },
      cwd: dir,
    });
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(stdout).toMatch(/entry\s+0x100000 \(code32_start, ESI = boot_params at 0x10000\)/);
    expect(stdout).toMatch(/serial\s+pty/);
    expect(stdout).toMatch(/acpi\s+RSDP at 0xe0000, PM block at I\/O 0xb000-0xb00b, SCI IRQ 9/);
  });

  it("MP spec 1.4 tables: checksums, pointer, and the PC's interrupt wiring", () => {
    const bytes = buildMpTable({
      vcpus: 2,
      ioApicId: 2,
      ioApicAddress: 0xfec00000,
      localApicAddress: 0xfee00000,
      cpuSignature: 0x6fb,
      cpuFeatures: 0x200,
      pciDevices: [2],
    });
    const sum = (part: Uint8Array) => part.reduce((total, byte) => (total + byte) & 0xff, 0);
    const view = new DataView(bytes.buffer);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe("_MP_");
    expect(sum(bytes.subarray(0, 16))).toBe(0);
    expect(view.getUint32(4, true)).toBe(MP_TABLE_ADDRESS + 16);
    const table = bytes.subarray(16);
    expect(String.fromCharCode(...table.subarray(0, 4))).toBe("PCMP");
    expect(view.getUint16(16 + 4, true)).toBe(table.length);
    expect(sum(table)).toBe(0);
    // 2 processors, 2 buses, I/O APIC, 15 ISA IRQs, 1 PCI INTA#, 2 local interrupts.
    expect(view.getUint16(16 + 34, true)).toBe(2 + 2 + 1 + 15 + 1 + 2);
    // The first I/O interrupt: ISA (bus 1) IRQ 0 on pin 2.
    const irq0 = 16 + 44 + 2 * 20 + 8 + 8 + 8;
    expect(Array.from(bytes.subarray(irq0, irq0 + 8))).toEqual([3, 0, 0, 0, 1, 0, 2, 2]);
    // PCI device 2 INTA#: level, active low, on pin 18.
    const pci = irq0 + 15 * 8;
    expect(Array.from(bytes.subarray(pci, pci + 8))).toEqual([3, 0, 0x0f, 0, 0, 8, 2, 18]);
    expect(bytes.length).toBeLessThanOrEqual(0x400);
  });
});
