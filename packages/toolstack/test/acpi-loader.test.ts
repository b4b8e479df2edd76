/**
 * The fw_cfg form of the PC's ACPI tables (src/builder/acpi.ts
 * buildPcAcpiLoader): the "etc/table-loader" commands in the layout of
 * SeaBIOS src/fw/romfile_loader.h (128-byte entries) run here as SeaBIOS's
 * romfile_loader_execute runs them (allocate, add the allocated address to
 * each pointer, subtract each range's sum from its checksum byte), at two
 * different placements: the result must be the direct-boot tables of
 * buildPcAcpiTables, table for table, but for their addresses. SeaBIOS
 * itself running the script is the oracle of linux-hvm-seabios.test.ts;
 * the boot order file is checked here against SeaBIOS's path format.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IdeCdrom, MemoryDisk } from "@kumo/device-models";
import { describe, expect, it } from "vitest";
import {
  ACPI_LOADER_FILE,
  ACPI_RSDP_FILE,
  ACPI_TABLES_FILE,
  buildPcAcpiLoader,
  buildPcAcpiTables,
  LOADER_ENTRY_SIZE,
  LoaderCommand,
  LoaderZone,
} from "../src/builder/acpi";
import { runKumo } from "../src/node/index";
import { bootOrderFile } from "../src/runner/pc-platform";

const options = { vcpus: 2, ioApicId: 2, ioApicAddress: 0xfec00000, ramBelow4G: 128 << 20 };
const sum = (bytes: Uint8Array) => bytes.reduce((total, byte) => (total + byte) & 0xff, 0);
const name = (bytes: Uint8Array) => {
  const end = bytes.indexOf(0);
  return String.fromCharCode(...bytes.subarray(0, end < 0 ? bytes.length : end));
};

/** SeaBIOS romfile_loader_execute over `files`, placing each at `placement[file]`; returns the memory. */
function execute(
  loader: Uint8Array,
  files: Record<string, Uint8Array>,
  placement: Record<string, number>,
) {
  const placed: Record<string, { address: number; data: Uint8Array }> = {};
  const allocations: { file: string; align: number; zone: number }[] = [];
  expect(loader.length % LOADER_ENTRY_SIZE).toBe(0);
  for (let at = 0; at < loader.length; at += LOADER_ENTRY_SIZE) {
    const entry = loader.subarray(at, at + LOADER_ENTRY_SIZE);
    const view = new DataView(entry.buffer, entry.byteOffset, LOADER_ENTRY_SIZE);
    const command = view.getUint32(0, true);
    if (command === LoaderCommand.ALLOCATE) {
      const file = name(entry.subarray(4, 60));
      const align = view.getUint32(60, true);
      allocations.push({ file, align, zone: entry[64] });
      expect(placement[file] % align).toBe(0);
      placed[file] = { address: placement[file], data: files[file].slice() };
    } else if (command === LoaderCommand.ADD_POINTER) {
      const dest = placed[name(entry.subarray(4, 60))];
      const source = placed[name(entry.subarray(60, 116))];
      const offset = view.getUint32(116, true);
      const size = entry[120];
      expect([1, 2, 4, 8]).toContain(size);
      expect(offset + size).toBeLessThanOrEqual(dest.data.length);
      const target = new DataView(dest.data.buffer);
      if (size === 4)
        target.setUint32(offset, target.getUint32(offset, true) + source.address, true);
      else {
        const value = target.getUint32(offset, true) + target.getUint32(offset + 4, true) * 2 ** 32;
        target.setUint32(offset, (value + source.address) % 2 ** 32, true);
        target.setUint32(offset + 4, Math.floor((value + source.address) / 2 ** 32), true);
      }
    } else if (command === LoaderCommand.ADD_CHECKSUM) {
      const file = placed[name(entry.subarray(4, 60))];
      const offset = view.getUint32(60, true);
      const start = view.getUint32(64, true);
      const length = view.getUint32(68, true);
      expect(file.data[offset]).toBe(0);
      expect(start + length).toBeLessThanOrEqual(file.data.length);
      file.data[offset] =
        (file.data[offset] - sum(file.data.subarray(start, start + length))) & 0xff;
    } else throw new Error(`unknown loader command ${command}`);
  }
  const read = (address: number, length: number) => {
    for (const { address: base, data } of Object.values(placed))
      if (address >= base && address + length <= base + data.length)
        return data.slice(address - base, address - base + length);
    throw new Error(`nothing placed at 0x${address.toString(16)}`);
  };
  return { allocations, read };
}

describe("buildPcAcpiLoader", () => {
  const files = buildPcAcpiLoader(options);
  const input = {
    [ACPI_TABLES_FILE]: files.tables,
    [ACPI_RSDP_FILE]: files.rsdp,
  };

  it("allocates the tables in high memory (64-byte aligned) and the RSDP in the F segment", () => {
    const { allocations } = execute(files.loader, input, {
      [ACPI_TABLES_FILE]: 0x7fff000,
      [ACPI_RSDP_FILE]: 0xf6a10,
    });
    expect(allocations).toEqual([
      { file: ACPI_TABLES_FILE, align: 64, zone: LoaderZone.HIGH },
      { file: ACPI_RSDP_FILE, align: 16, zone: LoaderZone.FSEG },
    ]);
    expect(files.rsdp.length).toBe(36);
    expect(ACPI_LOADER_FILE).toBe("etc/table-loader");
  });

  for (const [tablesAt, rsdpAt] of [
    [0x7fff000, 0xf6a10],
    [0x3fe0040, 0xfe000],
  ]) {
    it(`links and checksums to the direct-boot tables with the tables at 0x${tablesAt.toString(16)}`, () => {
      const { read } = execute(files.loader, input, {
        [ACPI_TABLES_FILE]: tablesAt,
        [ACPI_RSDP_FILE]: rsdpAt,
      });
      const rsdp = read(rsdpAt, 36);
      expect(String.fromCharCode(...rsdp.subarray(0, 8))).toBe("RSD PTR ");
      expect([sum(rsdp.subarray(0, 20)), sum(rsdp)]).toEqual([0, 0]);
      const rsdpView = new DataView(rsdp.buffer);
      const table = (address: number) =>
        read(address, new DataView(read(address, 8).buffer).getUint32(4, true));
      const direct = buildPcAcpiTables(options);
      const directView = new DataView(direct.bytes.buffer);
      const directTable = (signature: keyof typeof direct.tables) => {
        const at = (direct.tables[signature] as number) - direct.address;
        return direct.bytes.slice(at, at + directView.getUint32(at + 4, true));
      };
      const rsdt = table(rsdpView.getUint32(16, true));
      const xsdt = table(Number(rsdpView.getBigUint64(24, true)));
      expect(sum(rsdt)).toBe(0);
      expect(sum(xsdt)).toBe(0);
      const entries = [0, 1].map((i) => new DataView(rsdt.buffer).getUint32(36 + 4 * i, true));
      expect(
        [0, 1].map((i) => Number(new DataView(xsdt.buffer).getBigUint64(36 + 8 * i, true))),
      ).toEqual(entries);
      const fadt = table(entries[0]);
      const madt = table(entries[1]);
      const fadtView = new DataView(fadt.buffer);
      const dsdt = table(fadtView.getUint32(40, true));
      const facs = read(fadtView.getUint32(36, true), 64);
      expect(fadtView.getUint32(36, true) % 64).toBe(0);
      expect(Number(fadtView.getBigUint64(140, true))).toBe(fadtView.getUint32(40, true));
      for (const bytes of [fadt, madt, dsdt]) expect(sum(bytes)).toBe(0);
      expect(madt).toEqual(directTable("APIC"));
      expect(dsdt).toEqual(directTable("DSDT"));
      expect(facs).toEqual(directTable("FACS").subarray(0, 64));
      const withoutAddresses = (bytes: Uint8Array) => {
        const copy = bytes.slice();
        for (const [at, length] of [
          [9, 1],
          [36, 8],
          [140, 8],
        ])
          copy.fill(0, at, at + length);
        return copy;
      };
      expect(withoutAddresses(fadt)).toEqual(withoutAddresses(directTable("FACP")));
    });
  }
});

describe("bootOrderFile (fw_cfg bootorder)", () => {
  const disk = new MemoryDisk(new Uint8Array(512 * 8));
  const cdrom = new IdeCdrom(null);

  it("lists the IDE devices by the boot letters, in SeaBIOS's ATA path format, NUL-terminated", () => {
    const devices = [disk, null, cdrom, disk];
    expect(bootOrderFile("cd", devices)).toBe(
      "/pci@i0cf8/ide@1,1/drive@0/disk@0\n/pci@i0cf8/ide@1,1/drive@1/disk@1\n/pci@i0cf8/ide@1,1/drive@1/disk@0\0",
    );
    expect(bootOrderFile("dc", devices).split("\n")[0]).toBe("/pci@i0cf8/ide@1,1/drive@1/disk@0");
  });

  it("is empty (as QEMU's with no bootindex) when no letter names a present device", () => {
    expect(bootOrderFile("n", [disk])).toBe("");
    expect(bootOrderFile("d", [disk])).toBe("");
    expect(bootOrderFile("cd", [])).toBe("");
  });
});

describe("kumo create -n (firmware boot)", () => {
  it("shows fw_cfg and whether the firmware gets the ACPI tables", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-fw-dry-"));
    writeFileSync(join(dir, "bios.bin"), new Uint8Array(65536));
    writeFileSync(
      join(dir, "guest.cfg"),
      'name = "fw"\ntype = "hvm"\nmemory = 32\nfirmware = "bios.bin"\n',
    );
    const dryRun = async (...extra: string[]) => {
      let stdout = "";
      const status = await runKumo(["create", "-n", "guest.cfg", ...extra], {
        stdout: { write: (text: string | Uint8Array) => (stdout += text.toString()) },
        stderr: { write: () => true },
        env: { KUMO_STATE_DIR: join(dir, "state") },
        cwd: dir,
      });
      return { status, stdout };
    };
    const on = await dryRun();
    expect(on.status).toBe(0);
    expect(on.stdout).toMatch(/^fw_cfg +I\/O 0x510-0x511, DMA 0x514$/m);
    expect(on.stdout).toMatch(
      /^acpi +fw_cfg etc\/table-loader .*PM block at I\/O 0xb000-0xb00b, SCI IRQ 9$/m,
    );
    const off = await dryRun("acpi=0");
    expect(off.stdout).toMatch(/^acpi +off/m);
  });
});
