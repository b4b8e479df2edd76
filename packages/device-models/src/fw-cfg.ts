/**
 * QEMU's firmware configuration device (fw_cfg) on its x86 I/O ports, the
 * channel through which a VMM hands its firmware (SeaBIOS, OVMF) named
 * blobs: ACPI tables and their linker/loader script, the e820 map, the boot
 * order. Facts from QEMU's docs/specs/fw_cfg.rst and hw/nvram/fw_cfg.c,
 * and from what SeaBIOS src/fw/paravirt.c reads.
 *
 *   port 0x510 (16-bit write)  selector: the item to read, offset reset to 0
 *   port 0x510/0x511 (8-bit)   data: the selected item's next byte; 0 past
 *                              its end or for an item that does not exist
 *   ports 0x514-0x51B          DMA address (64-bit, big-endian): writing its
 *                              low half (port 0x518) starts the transfer
 *                              described at that address; reads give the
 *                              signature "QEMU CFG"
 *
 * As on QEMU's x86 machines the 8-bit data port overlaps the selector's
 * high byte: an 8-bit read at 0x510 or 0x511 reads data; 8-bit writes
 * (the data write of QEMU before 2.4) do nothing; other widths are invalid
 * (reads give 0, writes are dropped).
 *
 * DMA (fw_cfg.rst "FW_CFG_DMA_CTL"): the guest writes the guest-physical
 * address of a 16-byte big-endian `FWCfgDmaAccess { u32 control; u32
 * length; u64 address }`. Control bits: error 0, read 1, skip 2, select 3
 * (the item key in bits 31:16), write 4. The device selects, then reads
 * (copies the item to guest memory, zeros past its end), skips or writes
 * (a writable file only, never past its end), and writes the control word
 * back: 0 when done, the error bit when the access or a guest address was
 * bad. Every guest-given address and length is checked against guest RAM
 * before any byte moves, so a transfer into a hole or MMIO ends with the
 * error bit, and the work is bounded by the RAM the range covers.
 *
 * Items: the well-known numbered ones (`FwCfgKey`; little-endian numbers as
 * QEMU's fw_cfg_add_i16/i32/i64 store them) and named files. Files are
 * listed in item 0x19 (`FILE_DIR`: a big-endian count, then per file a
 * big-endian u32 size, u16 selector, u16 reserved and a 56-byte
 * NUL-terminated name), sorted by name as on QEMU's current machines, with
 * selectors from 0x20 in that order.
 *
 * The items are configuration the VMM adds before the guest runs (QEMU does
 * not migrate them either); the saved state is the cursor: selected key,
 * offset, the DMA address's high half and writable files' contents.
 */
import type { GuestMemory } from "@kumo/mmu";
import type { PortWindow } from "./pic-8259";

/** The selector/data ports and the DMA address ports on x86 (QEMU FW_CFG_IO_BASE, + 4). */
export const FW_CFG_IO_BASE = 0x510;
export const FW_CFG_IO_SIZE = 2;
export const FW_CFG_DMA_IO_BASE = 0x514;
export const FW_CFG_DMA_IO_SIZE = 8;

/** Well-known item keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h, hw/i386/fw_cfg.h). */
export const FwCfgKey = {
  SIGNATURE: 0x00,
  ID: 0x01,
  UUID: 0x02,
  RAM_SIZE: 0x03,
  NOGRAPHIC: 0x04,
  NB_CPUS: 0x05,
  MACHINE_ID: 0x06,
  NUMA: 0x0d,
  BOOT_MENU: 0x0e,
  MAX_CPUS: 0x0f,
  FILE_DIR: 0x19,
  FILE_FIRST: 0x20,
  /** Bit 15: the architecture's own items. */
  ARCH_LOCAL: 0x8000,
  ACPI_TABLES: 0x8000,
  SMBIOS_ENTRIES: 0x8001,
  IRQ0_OVERRIDE: 0x8002,
  E820_TABLE: 0x8003,
  HPET: 0x8004,
} as const;

/** FW_CFG_ID bits: the traditional interface, the DMA interface. */
export const FwCfgVersion = { TRADITIONAL: 1, DMA: 2 } as const;

/** FWCfgDmaAccess control bits (fw_cfg.rst). */
export const FwCfgDmaControl = {
  ERROR: 0x01,
  READ: 0x02,
  SKIP: 0x04,
  SELECT: 0x08,
  WRITE: 0x10,
} as const;

/** The DMA port window's reads: "QEMU CFG" (QEMU FW_CFG_DMA_SIGNATURE). */
const DMA_SIGNATURE = "QEMU CFG";
/** Bit 14 (FW_CFG_WRITE_CHANNEL, obsolete) is ignored when an item is looked up (QEMU FW_CFG_ENTRY_MASK). */
const KEY_MASK = 0xbfff;
/** A file name's room in the directory, NUL included (QEMU FW_CFG_MAX_FILE_PATH). */
export const FW_CFG_MAX_FILE_PATH = 56;
const FILE_ENTRY_SIZE = 64;
/** The last selector a file may get (0x3FFF: the entry mask). */
const MAX_FILES = 0x3fff - FwCfgKey.FILE_FIRST + 1;
const PAGE_SIZE = 4096;
const TWO_32 = 4294967296;

/** A mistake of the VMM configuring the device (bad key, name, duplicate file). */
export class FwCfgError extends Error {
  override name = "FwCfgError";
}

export class FwCfgStateError extends Error {
  override name = "FwCfgStateError";
}

export interface FwCfgOptions {
  /**
   * Guest memory for the DMA interface: with it the ID item says DMA and
   * `dmaPorts` answers; without it only the traditional interface exists.
   */
  readonly memory?: Pick<GuestMemory, "frame" | "readBytes" | "writeBytes">;
}

export interface FwCfgFileOptions {
  /** The guest may write the file through DMA (QEMU fw_cfg_add_file_callback, read_only false). */
  readonly writable?: boolean;
  /** Called after a DMA write changed bytes [offset, offset + length) of the file. */
  readonly onWrite?: (offset: number, length: number) => void;
}

/** The saved state: named, versioned, plain (JSON-safe). */
export interface FwCfgState {
  readonly kind: "fw-cfg";
  readonly version: 1;
  /** The selected key as written (16 bits), or -1 for none. */
  readonly selector: number;
  readonly offset: number;
  /** The DMA address's high half written so far (QEMU keeps it until the low half starts a transfer). */
  readonly dmaAddressHigh: number;
  /** The contents of writable files, by name. */
  readonly writableFiles: Readonly<Record<string, readonly number[]>>;
}

interface Item {
  data: Uint8Array;
  writable: boolean;
  onWrite?: (offset: number, length: number) => void;
}

interface FileEntry {
  readonly name: string;
  readonly item: Item;
}

/** Little-endian bytes of `value` (`size` 2, 4 or 8), as QEMU's fw_cfg_add_i16/i32/i64 store numbers. */
export function fwCfgLittleEndian(value: number, size: 2 | 4 | 8): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0 || (size < 8 && value >= 2 ** (8 * size)))
    throw new FwCfgError(`${value} is not a ${8 * size}-bit unsigned integer`);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  if (size === 2) view.setUint16(0, value, true);
  else if (size === 4) view.setUint32(0, value, true);
  else {
    view.setUint32(0, value % TWO_32, true);
    view.setUint32(4, Math.floor(value / TWO_32), true);
  }
  return bytes;
}

export class FwCfg {
  /** Ports 0x510-0x511: selector (16-bit write) and data (8-bit read). */
  readonly ports: PortWindow;
  /** Ports 0x514-0x51B, the DMA address; null without `memory`. */
  readonly dmaPorts: PortWindow | null;
  private readonly memory: FwCfgOptions["memory"] | null;
  private readonly items = new Map<number, Item>();
  private files: FileEntry[] = [];
  /** The selected key masked with KEY_MASK, or -1. */
  private selected = -1;
  private rawSelector = -1;
  private current: Item | undefined = undefined;
  private offset = 0;
  private dmaAddressHigh = 0;
  private readonly access = new Uint8Array(16);
  private readonly accessView = new DataView(this.access.buffer);

  constructor(options: FwCfgOptions = {}) {
    this.memory = options.memory ?? null;
    this.setItem(FwCfgKey.SIGNATURE, new TextEncoder().encode("QEMU"));
    this.setItem(
      FwCfgKey.ID,
      fwCfgLittleEndian(
        FwCfgVersion.TRADITIONAL | (this.memory === null ? 0 : FwCfgVersion.DMA),
        4,
      ),
    );
    this.items.set(FwCfgKey.FILE_DIR, { data: new Uint8Array(4), writable: false });
    this.rebuildDirectory();
    this.reset();
    this.ports = {
      read: (offset, size) => (size === 1 && offset < 2 ? this.readData() : 0),
      write: (offset, size, value) => {
        if (size === 2 && offset === 0) this.select(value & 0xffff);
      },
    };
    this.dmaPorts =
      this.memory === null
        ? null
        : {
            read: (offset, size) => {
              // A big-endian register: byte k of the window is the signature's byte k.
              if ((offset & (size - 1)) !== 0) return 0;
              let value = 0;
              for (let i = size - 1; i >= 0; i--)
                value =
                  value * 256 +
                  (offset + i < FW_CFG_DMA_IO_SIZE ? DMA_SIGNATURE.charCodeAt(offset + i) : 0);
              return value;
            },
            write: (offset, size, value) => {
              // QEMU fw_cfg_dma_mem_write: 32-bit halves, big-endian; the low half starts the transfer.
              if (size !== 4) return;
              const address = byteSwap32(value);
              if (offset === 0) this.dmaAddressHigh = address;
              else if (offset === 4) {
                const high = this.dmaAddressHigh;
                this.dmaAddressHigh = 0;
                this.transfer(high, address);
              }
            },
          };
  }

  /** Power-on state: the signature selected (QEMU fw_cfg_reset). */
  reset(): void {
    this.select(FwCfgKey.SIGNATURE);
    this.dmaAddressHigh = 0;
  }

  /**
   * Sets numbered item `key` (below FILE_FIRST, or an ARCH_LOCAL key) to
   * `data`; the device keeps the array, not a copy.
   */
  setItem(key: number, data: Uint8Array): void {
    const index = key & 0x3fff;
    if (
      !Number.isInteger(key) ||
      key < 0 ||
      key > 0xffff ||
      (key & 0x4000) !== 0 ||
      index === FwCfgKey.FILE_DIR ||
      (index >= FwCfgKey.FILE_FIRST && (key & FwCfgKey.ARCH_LOCAL) === 0)
    )
      throw new FwCfgError(
        `fw_cfg key 0x${key.toString(16)} is not a numbered item (below 0x20 other than the file directory 0x19, or 0x8000-0xbfff)`,
      );
    const item: Item = { data, writable: false };
    this.items.set(key, item);
    if (this.selected === key) this.current = item;
  }

  /** Sets a numbered item to a little-endian number (QEMU fw_cfg_add_i16/i32/i64). */
  setNumber(key: number, value: number, size: 2 | 4 | 8): void {
    this.setItem(key, fwCfgLittleEndian(value, size));
  }

  /**
   * Adds the file `name` (at most 55 bytes of ASCII) and returns its
   * selector. Files are sorted by name, so adding one moves the selectors
   * of those after it: add them all before the guest runs.
   */
  addFile(name: string, data: Uint8Array, options: FwCfgFileOptions = {}): number {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a NUL would end the name early.
    if (name.length === 0 || name.length >= FW_CFG_MAX_FILE_PATH || /[^\x01-\x7e]/.test(name))
      throw new FwCfgError(
        `fw_cfg file name "${name}" must be 1 to ${FW_CFG_MAX_FILE_PATH - 1} ASCII characters`,
      );
    if (this.files.some((file) => file.name === name))
      throw new FwCfgError(`fw_cfg file "${name}" is already there`);
    if (this.files.length >= MAX_FILES)
      throw new FwCfgError(`fw_cfg has room for ${MAX_FILES} files`);
    this.files.push({
      name,
      item: { data, writable: options.writable === true, onWrite: options.onWrite },
    });
    // strcmp order (QEMU fw_cfg_add_file_callback): names are ASCII, so code units compare as bytes.
    this.files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.rebuildDirectory();
    this.current = this.lookup(this.selected);
    return this.fileSelector(name);
  }

  /** The selector of file `name`, or -1. */
  fileSelector(name: string): number {
    const index = this.files.findIndex((file) => file.name === name);
    return index < 0 ? -1 : FwCfgKey.FILE_FIRST + index;
  }

  /** The file's bytes (the array the device serves), or undefined. */
  file(name: string): Uint8Array | undefined {
    return this.files.find((file) => file.name === name)?.item.data;
  }

  /** The files' names in directory order. */
  fileNames(): string[] {
    return this.files.map((file) => file.name);
  }

  private rebuildDirectory(): void {
    const bytes = new Uint8Array(4 + FILE_ENTRY_SIZE * this.files.length);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, this.files.length);
    this.files.forEach((file, index) => {
      const at = 4 + FILE_ENTRY_SIZE * index;
      view.setUint32(at, file.item.data.length);
      view.setUint16(at + 4, FwCfgKey.FILE_FIRST + index);
      for (let i = 0; i < file.name.length; i++) bytes[at + 8 + i] = file.name.charCodeAt(i);
    });
    const directory = this.items.get(FwCfgKey.FILE_DIR) as Item;
    directory.data = bytes;
  }

  private lookup(key: number): Item | undefined {
    if (key < 0) return undefined;
    const index = key & 0x3fff;
    if ((key & FwCfgKey.ARCH_LOCAL) === 0 && index >= FwCfgKey.FILE_FIRST)
      return this.files[index - FwCfgKey.FILE_FIRST]?.item;
    return this.items.get(key);
  }

  private select(key: number): void {
    this.rawSelector = key;
    this.selected = key & KEY_MASK;
    this.current = this.lookup(this.selected);
    this.offset = 0;
  }

  /** One byte of the selected item, or 0 past its end (QEMU fw_cfg_data_read). */
  private readData(): number {
    const item = this.current;
    if (item === undefined || this.offset >= item.data.length) return 0;
    return item.data[this.offset++];
  }

  /** Whether every byte of [address, address + length) is guest RAM (or ROM), so a DMA may touch it. */
  private isRam(address: number, length: number): boolean {
    const memory = this.memory as NonNullable<FwCfgOptions["memory"]>;
    if (length === 0) return true;
    if (address + length > 2 ** 52) return false;
    const last = Math.floor((address + length - 1) / PAGE_SIZE);
    for (let gfn = Math.floor(address / PAGE_SIZE); gfn <= last; gfn++)
      if (memory.frame(gfn) === null) return false;
    return true;
  }

  /** Runs the FWCfgDmaAccess at `high`:`low` (QEMU fw_cfg_dma_transfer). */
  private transfer(high: number, low: number): void {
    const memory = this.memory as NonNullable<FwCfgOptions["memory"]>;
    const at = high * TWO_32 + low;
    const view = this.accessView;
    if (!this.isRam(at, 16)) {
      // QEMU writes the error bit where it could not read; a hole takes nothing.
      if (this.isRam(at, 4)) this.writeControl(at, FwCfgDmaControl.ERROR);
      return;
    }
    memory.readBytes(at, this.access);
    let control = view.getUint32(0);
    let length = view.getUint32(4);
    let address = view.getUint32(8) * TWO_32 + view.getUint32(12);
    if ((control & FwCfgDmaControl.SELECT) !== 0) this.select(control >>> 16);
    const read = (control & FwCfgDmaControl.READ) !== 0;
    const write = !read && (control & FwCfgDmaControl.WRITE) !== 0;
    if (!read && !write && (control & FwCfgDmaControl.SKIP) === 0) length = 0;
    control = 0;
    const item = this.current;
    while (length > 0 && control === 0) {
      let take: number;
      if (item === undefined || this.offset >= item.data.length) {
        // Past the end: a read fills zeros, a write fails, a skip moves on.
        take = length;
        if (read) {
          if (this.isRam(address, take)) zeroFill(memory, address, take);
          else control |= FwCfgDmaControl.ERROR;
        }
        if (write) control |= FwCfgDmaControl.ERROR;
      } else {
        take = Math.min(length, item.data.length - this.offset);
        const part = item.data.subarray(this.offset, this.offset + take);
        if (read) {
          if (this.isRam(address, take)) memory.writeBytes(address, part);
          else control |= FwCfgDmaControl.ERROR;
        }
        if (write) {
          if (!item.writable || take !== length || !this.isRam(address, take))
            control |= FwCfgDmaControl.ERROR;
          else {
            memory.readBytes(address, part);
            item.onWrite?.(this.offset, take);
          }
        }
        this.offset += take;
      }
      address += take;
      length -= take;
    }
    this.writeControl(at, control);
  }

  private writeControl(at: number, control: number): void {
    const memory = this.memory as NonNullable<FwCfgOptions["memory"]>;
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, control);
    memory.writeBytes(at, bytes);
  }

  state(): FwCfgState {
    const writableFiles: Record<string, number[]> = {};
    for (const file of this.files)
      if (file.item.writable) writableFiles[file.name] = Array.from(file.item.data);
    return {
      kind: "fw-cfg",
      version: 1,
      selector: this.rawSelector,
      offset: this.offset,
      dmaAddressHigh: this.dmaAddressHigh,
      writableFiles,
    };
  }

  /** Restores the cursor and writable files' contents; the items themselves are the VMM's configuration. */
  fromState(state: FwCfgState): void {
    if (state === null || typeof state !== "object" || state.kind !== "fw-cfg")
      throw new FwCfgStateError('not a fw_cfg state (kind must be "fw-cfg")');
    if (state.version !== 1)
      throw new FwCfgStateError(
        `fw_cfg state version ${state.version} is not supported (expected 1)`,
      );
    const selector = state.selector;
    if (!Number.isInteger(selector) || selector < -1 || selector > 0xffff)
      throw new FwCfgStateError(`fw_cfg selector ${selector} is not -1 or a 16-bit key`);
    if (!Number.isInteger(state.offset) || state.offset < 0 || state.offset >= TWO_32)
      throw new FwCfgStateError(`fw_cfg offset ${state.offset} is not a 32-bit offset`);
    for (const [name, bytes] of Object.entries(state.writableFiles ?? {})) {
      const file = this.files.find((entry) => entry.name === name);
      if (file === undefined || !file.item.writable || file.item.data.length !== bytes.length)
        throw new FwCfgStateError(
          `fw_cfg state has writable file "${name}" of ${bytes.length} bytes, which this device does not have`,
        );
      file.item.data.set(bytes);
    }
    if (selector < 0) {
      this.rawSelector = -1;
      this.selected = -1;
      this.current = undefined;
    } else this.select(selector);
    this.offset = state.offset;
    this.dmaAddressHigh = state.dmaAddressHigh >>> 0;
  }
}

function byteSwap32(value: number): number {
  return (
    (((value & 0xff) << 24) |
      ((value & 0xff00) << 8) |
      ((value >>> 8) & 0xff00) |
      ((value >>> 24) & 0xff)) >>>
    0
  );
}

const ZEROS = new Uint8Array(PAGE_SIZE);

function zeroFill(memory: Pick<GuestMemory, "writeBytes">, address: number, length: number): void {
  for (let done = 0; done < length; ) {
    const take = Math.min(length - done, PAGE_SIZE - ((address + done) % PAGE_SIZE));
    memory.writeBytes(address + done, ZEROS.subarray(0, take));
    done += take;
  }
}
