import { ArrayBufferGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import {
  FW_CFG_DMA_IO_BASE,
  FW_CFG_IO_BASE,
  FwCfg,
  FwCfgDmaControl,
  FwCfgError,
  FwCfgKey,
  FwCfgStateError,
  PortBus,
} from "../src/index";

const RAM = 1 << 20;

function machine(withDma = true) {
  const memory = new ArrayBufferGuestMemory({ ramSize: RAM });
  const device = new FwCfg(withDma ? { memory } : {});
  const bus = new PortBus();
  bus.register(FW_CFG_IO_BASE, 2, device.ports, "fw_cfg");
  if (device.dmaPorts !== null) bus.register(FW_CFG_DMA_IO_BASE, 8, device.dmaPorts, "fw_cfg DMA");
  /** What SeaBIOS's qemu_cfg_read_entry does without DMA: outw selector, insb. */
  const readEntry = (key: number, length: number) => {
    bus.portWrite(0x510, 2, key);
    return Array.from({ length }, () => bus.portRead(0x511, 1));
  };
  const swap = (value: number) =>
    (((value & 0xff) << 24) |
      ((value & 0xff00) << 8) |
      ((value >>> 8) & 0xff00) |
      (value >>> 24)) >>>
    0;
  /** Writes an FWCfgDmaAccess at `at` and starts it as SeaBIOS does (outl(cpu_to_be32(at), 0x518)). */
  const dma = (at: number, control: number, length: number, address: number, high = 0) => {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, control);
    view.setUint32(4, length);
    view.setUint32(8, high);
    view.setUint32(12, address);
    memory.writeBytes(at, bytes);
    bus.portWrite(0x518, 4, swap(at));
    return memory.read8(at + 3) | (memory.read8(at + 2) << 8);
  };
  return { memory, device, bus, readEntry, dma, swap };
}

const text = (bytes: number[]) => String.fromCharCode(...bytes);

describe("FwCfg: the traditional interface", () => {
  it("answers the signature after reset and the ID with or without DMA", () => {
    const { bus, readEntry } = machine();
    // Selected at reset (QEMU fw_cfg_reset): the data port reads "QEMU" straight away.
    expect(text(Array.from({ length: 4 }, () => bus.portRead(0x511, 1)))).toBe("QEMU");
    expect(readEntry(FwCfgKey.ID, 4)).toEqual([3, 0, 0, 0]);
    expect(machine(false).readEntry(FwCfgKey.ID, 4)).toEqual([1, 0, 0, 0]);
  });

  it("reads data on both 0x510 and 0x511 by bytes; other widths read 0 and move nothing", () => {
    const { bus } = machine();
    bus.portWrite(0x510, 2, FwCfgKey.SIGNATURE);
    expect(bus.portRead(0x510, 1)).toBe(0x51);
    expect(bus.portRead(0x510, 2)).toBe(0);
    expect(bus.portRead(0x510, 4)).toBe(0);
    expect(bus.portRead(0x511, 1)).toBe(0x45);
    expect(bus.portRead(0x510, 1)).toBe(0x4d);
  });

  it("ignores 8-bit and 32-bit writes (no data write since QEMU 2.4) and selects only with 16 bits at 0x510", () => {
    const { bus, readEntry } = machine();
    readEntry(FwCfgKey.ID, 1);
    bus.portWrite(0x510, 1, 0);
    bus.portWrite(0x511, 1, 0);
    bus.portWrite(0x510, 4, 0);
    expect(bus.portRead(0x511, 1)).toBe(0);
    bus.portWrite(0x510, 2, FwCfgKey.SIGNATURE);
    expect(bus.portRead(0x511, 1)).toBe(0x51);
  });

  it("reads 0 past an item's end and for keys that hold nothing", () => {
    const { device, readEntry } = machine();
    device.setNumber(FwCfgKey.NB_CPUS, 2, 2);
    expect(readEntry(FwCfgKey.NB_CPUS, 4)).toEqual([2, 0, 0, 0]);
    expect(readEntry(FwCfgKey.NUMA, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(readEntry(0x7fff, 2)).toEqual([0, 0]);
    expect(readEntry(0xffff, 2)).toEqual([0, 0]);
  });

  it("ignores bit 14 of the key (the obsolete write channel)", () => {
    const { readEntry } = machine();
    expect(text(readEntry(0x4000 | FwCfgKey.SIGNATURE, 4))).toBe("QEMU");
  });

  it("keeps numbers little-endian and arch-local items apart from generic ones", () => {
    const { device, readEntry } = machine();
    device.setNumber(FwCfgKey.RAM_SIZE, 0x1_2345_6789, 8);
    device.setNumber(FwCfgKey.IRQ0_OVERRIDE, 1, 4);
    expect(readEntry(FwCfgKey.RAM_SIZE, 8)).toEqual([0x89, 0x67, 0x45, 0x23, 1, 0, 0, 0]);
    expect(readEntry(FwCfgKey.IRQ0_OVERRIDE, 4)).toEqual([1, 0, 0, 0]);
    expect(readEntry(FwCfgKey.IRQ0_OVERRIDE & 0xff, 4)).toEqual([0, 0, 0, 0]);
  });

  it("lists files sorted by name with big-endian sizes and selectors from 0x20", () => {
    const { device, readEntry } = machine();
    device.addFile("etc/table-loader", new Uint8Array(256));
    device.addFile("bootorder", new TextEncoder().encode("/pci@i0cf8/ide@1,1/drive@0/disk@0\n"));
    device.addFile("etc/acpi/tables", Uint8Array.from([1, 2, 3]));
    expect(device.fileNames()).toEqual(["bootorder", "etc/acpi/tables", "etc/table-loader"]);
    const directory = readEntry(FwCfgKey.FILE_DIR, 4 + 3 * 64);
    expect(directory.slice(0, 4)).toEqual([0, 0, 0, 3]);
    const entry = (index: number) => {
      const bytes = directory.slice(4 + 64 * index, 4 + 64 * (index + 1));
      const name = bytes.slice(8);
      return {
        size: (bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3],
        select: (bytes[4] << 8) | bytes[5],
        reserved: bytes[6] | bytes[7],
        name: text(name.slice(0, name.indexOf(0))),
        padding: name.slice(name.indexOf(0)).every((byte) => byte === 0),
      };
    };
    expect(entry(0)).toEqual({
      size: 34,
      select: 0x20,
      reserved: 0,
      name: "bootorder",
      padding: true,
    });
    expect(entry(1)).toEqual({
      size: 3,
      select: 0x21,
      reserved: 0,
      name: "etc/acpi/tables",
      padding: true,
    });
    expect(entry(2).select).toBe(0x22);
    expect(readEntry(0x21, 4)).toEqual([1, 2, 3, 0]);
    expect(device.fileSelector("etc/table-loader")).toBe(0x22);
  });

  it("refuses bad keys, names and duplicates with a typed error", () => {
    const { device } = machine();
    expect(() => device.setItem(FwCfgKey.FILE_DIR, new Uint8Array(1))).toThrow(FwCfgError);
    expect(() => device.setItem(0x20, new Uint8Array(1))).toThrow(FwCfgError);
    expect(() => device.setItem(0x4001, new Uint8Array(1))).toThrow(FwCfgError);
    expect(() => device.addFile("x".repeat(56), new Uint8Array(1))).toThrow(FwCfgError);
    expect(() => device.addFile("", new Uint8Array(1))).toThrow(FwCfgError);
    device.addFile("etc/e820", new Uint8Array(20));
    expect(() => device.addFile("etc/e820", new Uint8Array(20))).toThrow(/already there/);
    expect(() => device.setNumber(FwCfgKey.NB_CPUS, 0x10000, 2)).toThrow(FwCfgError);
  });
});

describe("FwCfg: the DMA interface", () => {
  it('reads the signature "QEMU CFG" on the DMA ports, big-endian', () => {
    const { bus } = machine();
    const bytes = Array.from({ length: 8 }, (_, i) => bus.portRead(0x514 + i, 1));
    expect(text(bytes)).toBe("QEMU CFG");
    // A 32-bit IN of a big-endian register: the first byte in the low lane.
    expect(bus.portRead(0x514, 4)).toBe(0x554d4551);
    expect(bus.portRead(0x518, 4)).toBe(0x47464320);
    expect(machine(false).bus.portRead(0x514, 1)).toBe(0xff);
  });

  it("selects and reads an item into guest memory, then clears the control word", () => {
    const { device, dma, memory } = machine();
    device.addFile("etc/boot-fail-wait", Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
    const key = device.fileSelector("etc/boot-fail-wait");
    memory.writeBytes(0x2000, new Uint8Array(8).fill(0xaa));
    const control = dma(
      0x1000,
      (key << 16) | FwCfgDmaControl.SELECT | FwCfgDmaControl.READ,
      6,
      0x2000,
    );
    expect(control).toBe(0);
    expect(memory.read32(0x1000)).toBe(0);
    const out = new Uint8Array(8);
    memory.readBytes(0x2000, out);
    // Past the end a read fills zeros (QEMU dma_memory_set).
    expect(Array.from(out)).toEqual([0xff, 0xff, 0xff, 0xff, 0, 0, 0xaa, 0xaa]);
  });

  it("skips, then reads on from the offset, mixing DMA and the data port", () => {
    const { device, dma, memory, bus } = machine();
    device.setItem(
      FwCfgKey.UUID,
      Uint8Array.from({ length: 16 }, (_, i) => i),
    );
    expect(
      dma(0x1000, (FwCfgKey.UUID << 16) | FwCfgDmaControl.SELECT | FwCfgDmaControl.SKIP, 5, 0),
    ).toBe(0);
    expect(bus.portRead(0x511, 1)).toBe(5);
    expect(dma(0x1000, FwCfgDmaControl.READ, 2, 0x3000)).toBe(0);
    expect([memory.read8(0x3000), memory.read8(0x3001)]).toEqual([6, 7]);
  });

  it("takes the high half of the address from 0x514 and forgets it after a transfer", () => {
    const { dma, bus, memory, swap } = machine();
    // High half 1: the access at 4 GiB + 0x1000 is not RAM, nothing happens at 0x1000.
    memory.write32(0x1000, 0x12345678);
    bus.portWrite(0x514, 4, swap(1));
    bus.portWrite(0x518, 4, swap(0x1000));
    expect(memory.read32(0x1000)).toBe(0x12345678);
    // The next transfer, low half only, is at 0x1000 again.
    expect(
      dma(
        0x1000,
        (FwCfgKey.SIGNATURE << 16) | FwCfgDmaControl.SELECT | FwCfgDmaControl.READ,
        4,
        0x2000,
      ),
    ).toBe(0);
    expect(memory.read32(0x2000)).toBe(0x554d4551);
  });

  it("sets the error bit for a buffer outside RAM, a write to a read-only item and a write past the end", () => {
    const { device, dma, memory } = machine();
    const select = (key: number) => (key << 16) | FwCfgDmaControl.SELECT;
    expect(dma(0x1000, select(FwCfgKey.SIGNATURE) | FwCfgDmaControl.READ, 4, RAM - 2)).toBe(
      FwCfgDmaControl.ERROR,
    );
    expect(dma(0x1000, select(FwCfgKey.SIGNATURE) | FwCfgDmaControl.READ, 16, 0xfec00000)).toBe(
      FwCfgDmaControl.ERROR,
    );
    expect(dma(0x1000, select(FwCfgKey.SIGNATURE) | FwCfgDmaControl.WRITE, 4, 0x2000)).toBe(
      FwCfgDmaControl.ERROR,
    );
    const written: number[][] = [];
    device.addFile("etc/vmgenid_addr", new Uint8Array(8), {
      writable: true,
      onWrite: (offset, length) => written.push([offset, length]),
    });
    const key = device.fileSelector("etc/vmgenid_addr");
    memory.writeBytes(0x2000, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(dma(0x1000, select(key) | FwCfgDmaControl.WRITE, 9, 0x2000)).toBe(FwCfgDmaControl.ERROR);
    expect(dma(0x1000, select(key) | FwCfgDmaControl.WRITE, 8, 0x2000)).toBe(0);
    expect(Array.from(device.file("etc/vmgenid_addr") ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(written).toEqual([[0, 8]]);
    // A huge read past the end is bounded by RAM: zeros to its end, then the error bit.
    expect(dma(0x1000, select(0x7000) | FwCfgDmaControl.READ, 0xffffffff, 0x80000)).toBe(
      FwCfgDmaControl.ERROR,
    );
    // A control word without read, write or skip only selects.
    expect(dma(0x1000, select(FwCfgKey.ID), 4, 0x2000)).toBe(0);
    expect(memory.read8(0x2000)).toBe(1);
  });

  it("drops an access structure that is not in RAM", () => {
    const { dma, memory } = machine();
    expect(() => dma(RAM - 8, FwCfgDmaControl.READ, 4, 0x2000)).not.toThrow();
    expect(memory.read8(0x2000)).toBe(0);
  });
});

describe("FwCfg: state", () => {
  it("saves and restores the cursor, the DMA high half and writable files", () => {
    const { device, bus, swap } = machine();
    device.addFile("etc/w", new Uint8Array(2), { writable: true });
    device.file("etc/w")?.set([7, 8]);
    bus.portWrite(0x510, 2, FwCfgKey.SIGNATURE);
    bus.portRead(0x511, 1);
    bus.portWrite(0x514, 4, swap(0x1234));
    const saved = JSON.parse(JSON.stringify(device.state()));
    const other = machine();
    other.device.addFile("etc/w", new Uint8Array(2), { writable: true });
    other.device.fromState(saved);
    expect(other.device.state()).toEqual(saved);
    expect(other.bus.portRead(0x511, 1)).toBe(0x45);
    expect(Array.from(other.device.file("etc/w") ?? [])).toEqual([7, 8]);
    expect(() => other.device.fromState({ ...saved, kind: "pit" })).toThrow(FwCfgStateError);
    expect(() => other.device.fromState({ ...saved, version: 2 })).toThrow(FwCfgStateError);
    expect(() => other.device.fromState({ ...saved, selector: 0x10000 })).toThrow(FwCfgStateError);
    expect(() => machine().device.fromState(saved)).toThrow(/writable file "etc\/w"/);
  });
});

describe("FwCfg: guest accesses (fuzz, seeded)", () => {
  it("never throws, keeps RAM outside DMA targets intact and always answers the signature after a select", () => {
    const { device, bus, memory } = machine();
    device.addFile(
      "etc/acpi/tables",
      Uint8Array.from({ length: 300 }, (_, i) => i),
    );
    device.addFile("etc/w", new Uint8Array(16), { writable: true });
    device.setNumber(FwCfgKey.NB_CPUS, 1, 2);
    let seed = 0x9e3779b9;
    const random = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const sizes = [1, 2, 4] as const;
    // Guard page: DMA buffers and access structures stay in the first 64 KiB.
    const guard = new Uint8Array(4096).fill(0x5a);
    memory.writeBytes(0x20000, guard);
    for (let i = 0; i < 20000; i++) {
      const port = 0x50e + (random() % 16);
      const size = sizes[random() % 3];
      if (random() & 1) {
        bus.portRead(port, size);
        continue;
      }
      let value = random();
      if (port >= 0x514 && (random() & 3) === 0) {
        // A plausible access structure in low RAM.
        const at = random() % 0x10000;
        const bytes = new Uint8Array(16);
        const view = new DataView(bytes.buffer);
        view.setUint32(0, (random() & 0xffff001f) >>> 0);
        view.setUint32(4, random() & 3 ? random() % 512 : random() % 0x10000);
        view.setUint32(8, random() & 7 ? 0 : random());
        view.setUint32(12, random() & 7 ? random() % 0xf000 : random());
        if (at + 16 <= 0x10000) memory.writeBytes(at, bytes);
        value = ((at & 0xff) << 24) | ((at & 0xff00) << 8) | ((at >>> 8) & 0xff00);
      }
      bus.portWrite(port, size, value);
    }
    const after = new Uint8Array(4096);
    memory.readBytes(0x20000, after);
    // No transfer reaches past 0xF000 + 0xFFFF: the guard page is untouched.
    expect(after).toEqual(guard);
    bus.portWrite(0x510, 2, FwCfgKey.SIGNATURE);
    expect(text(Array.from({ length: 4 }, () => bus.portRead(0x511, 1)))).toBe("QEMU");
    expect(device.state().offset).toBe(4);
  });
});
