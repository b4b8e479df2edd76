/**
 * The x86 PVH domain builder's pure part: places a PVH kernel's segments,
 * the command line, the initrd (module 0) and `hvm_start_info` with its
 * memory map in guest RAM, and describes the vCPU state at the PVH entry
 * point. Xen does this in libxenguest (xc_dom_x86.c, bootlate_hvm); the
 * layout rules Linux needs are in xen-abi.md 1.1 and 1.2.
 */
import { HvmMemmapType, HvmStartInfoConst } from "@kumo/abi";
import type { GuestMemory } from "@kumo/mmu";
import { ACPI_TABLES_ADDRESS, ACPI_TABLES_SIZE, type AcpiTables, buildAcpiTables } from "./acpi";
import { type ElfImage, ElfMachine, findPhys32Entry, parseElf } from "./elf";
import { DomainBuildError, KernelImageError } from "./errors";

/**
 * The consumer side of guest memory the builder writes through (the shape
 * of rust-vmm's GuestMemory write side; @kumo/mmu's GuestMemory fits it).
 */
export interface BootMemory {
  /** Bytes of RAM from guest-physical address 0. */
  readonly size: number;
  write(address: number, data: Uint8Array): void;
  fill(address: number, length: number, value: number): void;
}

/** A `BootMemory` over @kumo/mmu's guest memory (x86: RAM from guest-physical 0). */
export function guestBootMemory(memory: GuestMemory): BootMemory {
  if (memory.ram.base !== 0) {
    throw new DomainBuildError(
      `x86 PVH RAM must start at guest-physical 0, not ${hex(memory.ram.base)}`,
    );
  }
  // Through writeBytes, so the p2m's listeners (decoded-code caches) see the writes.
  return {
    size: memory.ram.size,
    write: (address, data) => memory.writeBytes(address, data),
    fill(address, length, value) {
      const chunk = new Uint8Array(Math.min(length, 1 << 16)).fill(value);
      for (let done = 0; done < length; done += chunk.length) {
        memory.writeBytes(address + done, chunk.subarray(0, Math.min(chunk.length, length - done)));
      }
    },
  };
}

/** A `BootMemory` over one RAM buffer that starts at guest-physical 0. */
export function ramBootMemory(ram: Uint8Array): BootMemory {
  return {
    size: ram.length,
    write(address, data) {
      ram.set(data, address);
    },
    fill(address, length, value) {
      ram.fill(value, address, address + length);
    },
  };
}

export interface MemmapEntry {
  readonly address: number;
  readonly size: number;
  /** `HvmMemmapType` (1 RAM, 2 reserved, ...). */
  readonly type: number;
}

/** A flat segment register as the CPU's descriptor cache holds it. */
export interface SegmentCache {
  readonly selector: number;
  readonly base: number;
  readonly limit: number;
  /** Descriptor attribute bits: type (bits 0-3), S, DPL, P, then AVL, L, D/B, G at bits 12-15. */
  readonly attributes: number;
}

/**
 * The vCPU state at the PVH entry point (xen-abi.md 1.1; Xen public
 * hvm/start_info.h "the domain is started in 32-bit protected mode"):
 * paging off, flat 4 GiB code and data segments, EBX = hvm_start_info.
 */
export interface PvhEntryState {
  readonly eip: number;
  readonly ebx: number;
  /** PE | ET: protected mode, paging off (ET is hard-wired to 1 on every CPU since the 486). */
  readonly cr0: number;
  readonly cr4: number;
  readonly efer: number;
  /** Bit 1 is reserved as 1; IF, TF and VM are 0. */
  readonly eflags: number;
  readonly cs: SegmentCache;
  /** DS, ES, SS (and FS, GS, which PVH leaves unspecified) */
  readonly data: SegmentCache;
  readonly tr: SegmentCache;
}

/**
 * The guest pages shared with the hypervisor and backends: eight PFNs
 * 0xFEFF8-0xFEFFF, marked reserved in the memmap so Linux never uses them as
 * RAM (xen-abi.md 1.2; libxl's special pages, xenstore 0xFEFFC, console 0xFEFFF).
 */
export const PvhSpecialPages = {
  firstGfn: 0xfeff8,
  count: 8,
  xenstoreGfn: 0xfeffc,
  consoleGfn: 0xfefff,
} as const;

/** The x86 memory hole below 4 GiB (Xen's HVM_BELOW_4G_MMIO_START); RAM ends before it. */
export const PVH_MMIO_HOLE_START = 0xf0000000;

/** Linux x86 COMMAND_LINE_SIZE (arch/x86/include/uapi/asm/setup.h). */
const COMMAND_LINE_SIZE = 2048;
const PAGE = 4096;
const START_INFO_SIZE = 56;
const MODULE_ENTRY_SIZE = 32;
const MEMMAP_ENTRY_SIZE = 24;
/** Legacy VGA and BIOS area that Linux always treats as reserved; keep boot data out of it. */
const LEGACY_HOLE_START = 0xa0000;
const LEGACY_HOLE_END = 0x100000;

export interface PvhBuildOptions {
  /** The kernel ELF (bytes or already parsed); see `unpackKernelImage` for bzImages. */
  readonly kernel: Uint8Array | ElfImage;
  readonly ramdisk?: Uint8Array;
  readonly cmdline?: string;
  /**
   * Build ACPI tables (see ./acpi) for this many vCPUs, mark their page ACPI
   * in the memmap and point hvm_start_info.rsdp_paddr at the RSDP, as Xen's
   * toolstack does for PVH. Absent: no tables, rsdp_paddr 0.
   */
  readonly acpiVcpus?: number;
}

export interface PvhBootLayout {
  /** 32 or 64: the kernel's ELF class (latches the initial shared_info layout, xen-abi.md 3.1). */
  readonly bits: 32 | 64;
  readonly entry: number;
  readonly startInfoAddress: number;
  readonly cmdlineAddress: number;
  readonly modlistAddress: number;
  readonly memmapAddress: number;
  readonly memmap: readonly MemmapEntry[];
  /** [start, end) of the kernel's loaded segments. */
  readonly kernelStart: number;
  readonly kernelEnd: number;
  readonly ramdisk: { readonly address: number; readonly size: number } | undefined;
  readonly specialPages: typeof PvhSpecialPages;
  readonly vcpu: PvhEntryState;
  /** The ACPI tables written (with `acpiVcpus`), else undefined. */
  readonly acpi: AcpiTables | undefined;
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function mib(bytes: number): string {
  return `${Math.ceil(bytes / (1 << 20))} MiB`;
}

function overlaps(start: number, end: number, ranges: readonly [number, number][]): boolean {
  return ranges.some(([rangeStart, rangeEnd]) => start < rangeEnd && rangeStart < end);
}

/**
 * Loads a PVH kernel (and initrd and command line) into `memory` and returns
 * where everything went and the entry vCPU state. Throws `KernelImageError`
 * for an unusable kernel and `DomainBuildError` when memory is too small.
 */
export function buildPvhBoot(memory: BootMemory, options: PvhBuildOptions): PvhBootLayout {
  const elf = options.kernel instanceof Uint8Array ? parseElf(options.kernel) : options.kernel;
  if (elf.machine !== ElfMachine.X86 && elf.machine !== ElfMachine.X86_64) {
    throw new KernelImageError(
      `the kernel is for ELF machine ${elf.machine}, not x86 (3) or x86-64 (62); PVH is an x86 boot protocol`,
    );
  }
  const entry = findPhys32Entry(elf);
  if (elf.segments.length === 0) throw new KernelImageError("the kernel has no PT_LOAD segments");

  const ramSize = memory.size;
  if (ramSize % PAGE !== 0)
    throw new DomainBuildError(`guest RAM of ${ramSize} bytes is not whole pages`);
  if (ramSize > PVH_MMIO_HOLE_START) {
    throw new DomainBuildError(
      `guest RAM of ${mib(ramSize)} reaches the MMIO hole at ${hex(PVH_MMIO_HOLE_START)}; RAM above 4 GiB is not supported yet`,
    );
  }

  // Kernel segments at p_paddr: the 6.1 PVH entry is not relocatable (xen-abi.md 1.1).
  const occupied: [number, number][] = [];
  let kernelStart = Number.POSITIVE_INFINITY;
  let kernelEnd = 0;
  for (const segment of elf.segments) {
    if (segment.memorySize === 0) continue;
    const start = segment.physicalAddress;
    const end = start + segment.memorySize;
    if (end > ramSize) {
      throw new DomainBuildError(
        `the kernel loads at ${hex(start)}-${hex(end)} but the domain has only ${mib(ramSize)} of RAM; give it at least ${mib(end)} (memory = ...)`,
      );
    }
    occupied.push([start, end]);
    kernelStart = Math.min(kernelStart, start);
    kernelEnd = Math.max(kernelEnd, end);
  }
  if (!(entry >= kernelStart && entry < kernelEnd)) {
    throw new KernelImageError(
      `XEN_ELFNOTE_PHYS32_ENTRY ${hex(entry)} is outside the kernel's loaded range ${hex(kernelStart)}-${hex(kernelEnd)}`,
    );
  }

  const cmdlineBytes = new TextEncoder().encode(options.cmdline ?? "");
  if (cmdlineBytes.length + 1 > COMMAND_LINE_SIZE) {
    throw new DomainBuildError(
      `the kernel command line is ${cmdlineBytes.length} bytes; Linux takes at most ${COMMAND_LINE_SIZE - 1}`,
    );
  }
  const ramdisk = options.ramdisk;
  const moduleCount = ramdisk !== undefined ? 1 : 0;

  const acpi = options.acpiVcpus !== undefined ? buildAcpiTables(options.acpiVcpus) : undefined;
  const acpiEnd = ACPI_TABLES_ADDRESS + ACPI_TABLES_SIZE;
  if (acpi !== undefined && ramSize < acpiEnd)
    throw new DomainBuildError(`guest RAM of ${mib(ramSize)} cannot hold the ACPI tables`);
  const memmap: MemmapEntry[] = [
    ...(acpi === undefined
      ? [{ address: 0, size: ramSize, type: HvmMemmapType.RAM }]
      : [
          // The tables' page is ACPI data (type 3) between two RAM ranges.
          { address: 0, size: ACPI_TABLES_ADDRESS, type: HvmMemmapType.RAM },
          { address: ACPI_TABLES_ADDRESS, size: ACPI_TABLES_SIZE, type: HvmMemmapType.ACPI },
          { address: acpiEnd, size: ramSize - acpiEnd, type: HvmMemmapType.RAM },
        ]),
    {
      address: PvhSpecialPages.firstGfn * PAGE,
      size: PvhSpecialPages.count * PAGE,
      type: HvmMemmapType.RESERVED,
    },
  ];

  // Boot data in low RAM outside every PT_LOAD (Linux reads it through early
  // mappings of low memory and reserves the first 1 MiB): start_info, module
  // list, memmap, then the command line.
  const modlistOffset = START_INFO_SIZE + 8; // 64: keeps the 8-byte fields aligned
  const memmapOffset = modlistOffset + moduleCount * MODULE_ENTRY_SIZE;
  const cmdlineOffset = memmapOffset + memmap.length * MEMMAP_ENTRY_SIZE;
  const bootDataSize = cmdlineOffset + cmdlineBytes.length + 1;
  const reserved: [number, number][] = [...occupied, [LEGACY_HOLE_START, LEGACY_HOLE_END]];
  let base = -1;
  // Page 0 is skipped: address 0 means "absent" in hvm_start_info.
  for (let candidate = PAGE; candidate + bootDataSize <= ramSize; candidate += PAGE) {
    if (!overlaps(candidate, candidate + bootDataSize, reserved)) {
      base = candidate;
      break;
    }
  }
  if (base < 0)
    throw new DomainBuildError("no free guest RAM outside the kernel for hvm_start_info");
  const bootDataEnd = base + bootDataSize;

  let ramdiskLayout: { address: number; size: number } | undefined;
  if (ramdisk !== undefined) {
    // Top of RAM, page aligned, as boot loaders do; Linux reserves it (xen-abi.md 1.2).
    const address = Math.floor((ramSize - ramdisk.length) / PAGE) * PAGE;
    const floor = Math.max(kernelEnd, bootDataEnd);
    if (ramdisk.length > ramSize || address < floor) {
      throw new DomainBuildError(
        `the ramdisk (${mib(ramdisk.length)}) does not fit above the kernel in ${mib(ramSize)} of RAM; give the domain at least ${mib(floor + ramdisk.length + PAGE)}`,
      );
    }
    memory.write(address, ramdisk);
    ramdiskLayout = { address, size: ramdisk.length };
  }

  for (const segment of elf.segments) {
    const bytes = elf.bytes.subarray(segment.fileOffset, segment.fileOffset + segment.fileSize);
    memory.write(segment.physicalAddress, bytes);
    if (segment.memorySize > segment.fileSize) {
      memory.fill(
        segment.physicalAddress + segment.fileSize,
        segment.memorySize - segment.fileSize,
        0,
      );
    }
  }

  const startInfoAddress = base;
  const modlistAddress = moduleCount > 0 ? base + modlistOffset : 0;
  const memmapAddress = base + memmapOffset;
  const cmdlineAddress = base + cmdlineOffset;
  const data = new Uint8Array(bootDataSize);
  const view = new DataView(data.buffer);
  const u64 = (offset: number, value: number) => {
    view.setUint32(offset, value >>> 0, true);
    view.setUint32(offset + 4, Math.floor(value / 0x100000000), true);
  };
  // struct hvm_start_info (Xen public hvm/start_info.h, version 1; xen-abi.md 1.2).
  view.setUint32(0, HvmStartInfoConst.MAGIC_VALUE, true);
  view.setUint32(4, 1, true);
  view.setUint32(8, 0, true); // flags: 0 for a domU (no SIF_PRIVILEGED / SIF_INITDOMAIN)
  view.setUint32(12, moduleCount, true);
  u64(16, modlistAddress);
  u64(24, cmdlineAddress);
  // rsdp_paddr; without tables Linux scans the BIOS areas, finds nothing and uses defaults.
  u64(32, acpi?.rsdpAddress ?? 0);
  u64(40, memmapAddress);
  view.setUint32(48, memmap.length, true);
  view.setUint32(52, 0, true);
  if (ramdiskLayout !== undefined) {
    // struct hvm_modlist_entry: paddr, size, cmdline_paddr (0: none), reserved.
    u64(modlistOffset, ramdiskLayout.address);
    u64(modlistOffset + 8, ramdiskLayout.size);
  }
  memmap.forEach((entry, i) => {
    // struct hvm_memmap_table_entry: addr, size, type, reserved.
    const at = memmapOffset + i * MEMMAP_ENTRY_SIZE;
    u64(at, entry.address);
    u64(at + 8, entry.size);
    view.setUint32(at + 16, entry.type, true);
  });
  data.set(cmdlineBytes, cmdlineOffset);
  memory.write(base, data);
  if (acpi !== undefined) {
    memory.fill(ACPI_TABLES_ADDRESS, ACPI_TABLES_SIZE, 0);
    memory.write(acpi.address, acpi.bytes);
  }

  return {
    bits: elf.bits,
    entry,
    startInfoAddress,
    cmdlineAddress,
    modlistAddress,
    memmapAddress,
    memmap,
    kernelStart,
    kernelEnd,
    ramdisk: ramdiskLayout,
    specialPages: PvhSpecialPages,
    vcpu: pvhEntryState(entry, startInfoAddress),
    acpi,
  };
}

/** The PVH entry state for `entry` with EBX = `startInfoAddress` (xen-abi.md 1.1). */
export function pvhEntryState(entry: number, startInfoAddress: number): PvhEntryState {
  return {
    eip: entry,
    ebx: startInfoAddress,
    cr0: 0x11,
    cr4: 0,
    efer: 0,
    eflags: 0x2,
    // Selectors as Xen's hvm_vcpu_reset_state uses for PVH (0x10 code, 0x18 data);
    // the protocol leaves their values unspecified. Attributes: G, D/B, P, S, type.
    cs: { selector: 0x10, base: 0, limit: 0xffffffff, attributes: 0xc09b },
    data: { selector: 0x18, base: 0, limit: 0xffffffff, attributes: 0xc093 },
    tr: { selector: 0, base: 0, limit: 0x67, attributes: 0x8b },
  };
}

/** What `applyPvhEntryState` needs of a CPU (`@kumo/cpu-x86`'s X86Cpu has it). */
export interface PvhCapableCpu {
  /** Loads the flat 32-bit protected-mode state with EIP = entry. */
  setFlatProtectedMode(entry: number): void;
  /** General registers in the SDM's encoding order (EAX 0, ECX 1, EDX 2, EBX 3, ...). */
  readonly regs: Int32Array;
}

/** Puts a CPU in the PVH entry state. */
export function applyPvhEntryState(cpu: PvhCapableCpu, state: PvhEntryState): void {
  cpu.setFlatProtectedMode(state.eip);
  // EBX is register 3 in the SDM's encoding (vol. 2A, table 2-1).
  cpu.regs[3] = state.ebx | 0;
}
