/**
 * Direct kernel boot of a Linux x86 bzImage without firmware, as
 * `qemu -kernel` does: the 32-bit boot protocol of Linux
 * Documentation/arch/x86/boot.rst ("32-bit Boot Protocol"), with the zero
 * page of Documentation/arch/x86/zero-page.rst.
 *
 * The builder copies the setup header into a zeroed `boot_params` (offset
 * 0x1f1 to the end the header's own length byte at 0x201 gives), fills the
 * loader's fields (type_of_loader 0xff, CAN_USE_HEAP, cmd_line_ptr,
 * ramdisk_image/size), writes the e820 map (e820_table at 0x2d0,
 * e820_entries at 0x1e8), loads the protected-mode kernel (from
 * (setup_sects + 1) * 512 in the file) at 0x100000, and describes the entry
 * state: 32-bit protected mode, paging off, flat __BOOT_CS 0x10 / __BOOT_DS
 * 0x18 segments, interrupts off, ESI = boot_params, EIP = code32_start.
 * screen_info stays zero, which Linux reads as "no video" (dummy console).
 */

import { DomainBuildError, KernelImageError } from "./errors";
import type { BootMemory, MemmapEntry } from "./pvh";
import { PvhSpecialPages } from "./pvh";

/** Setup header and zero page offsets (boot.rst, zero-page.rst). */
const Hdr = {
  setupSects: 0x1f1,
  /** One byte: the header ends at 0x202 + this (boot.rst "jump" field: 0x201 holds the offset). */
  jumpOffset: 0x201,
  magic: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  cmdlineSize: 0x238,
  initSize: 0x260,
} as const;
const BOOT_PARAMS_E820_ENTRIES = 0x1e8;
const BOOT_PARAMS_E820_TABLE = 0x2d0;
/** E820_MAX_ENTRIES_ZEROPAGE (arch/x86/include/uapi/asm/bootparam.h). */
const E820_MAX_ENTRIES = 128;
const HDRS = 0x53726448; // "HdrS" little-endian
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;

/** Where the builder puts things (below 1 MiB, away from the BIOS data and EBDA areas). */
export const BzImageLayout = {
  bootParams: 0x10000,
  cmdline: 0x20000,
  kernel: 0x100000,
  /** The EBDA and BIOS areas a PC reserves: [0x9fc00, 0x100000) minus the VGA hole. */
  ebda: 0x9fc00,
  biosRom: 0xf0000,
} as const;

export interface BzImageBootOptions {
  /** The bzImage file. */
  readonly bzImage: Uint8Array;
  readonly ramdisk?: Uint8Array;
  readonly cmdline?: string;
}

export interface BzImageBootLayout {
  /** Boot protocol version as major << 8 | minor. */
  readonly protocol: number;
  readonly entry: number;
  readonly bootParamsAddress: number;
  readonly cmdlineAddress: number;
  readonly kernelStart: number;
  readonly kernelEnd: number;
  readonly ramdisk: { readonly address: number; readonly size: number } | undefined;
  /** The e820 map given to the kernel (also XENMEM_memory_map's answer). */
  readonly e820: readonly MemmapEntry[];
  readonly specialPages: typeof PvhSpecialPages;
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

/** Reads the setup header of `image`; throws KernelImageError for a file that is not a usable bzImage. */
export function readSetupHeader(image: Uint8Array) {
  if (image.length < 0x300)
    throw new KernelImageError(
      `a ${image.length}-byte file is too short for a bzImage setup header`,
    );
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint32(Hdr.magic, true) !== HDRS)
    throw new KernelImageError('not a bzImage: no "HdrS" setup header magic at offset 0x202');
  const protocol = view.getUint16(Hdr.version, true);
  // 2.04 gives the 32-bit entry fields used here; 2.06 cmdline_size; older kernels predate 2.6.
  if (protocol < 0x206)
    throw new KernelImageError(
      `bzImage boot protocol ${protocol >> 8}.${protocol & 0xff} is older than 2.06 (Linux 2.6.22)`,
    );
  const loadflags = image[Hdr.loadflags];
  if (!(loadflags & LOADED_HIGH))
    throw new KernelImageError("a zImage (loaded low) cannot be booted directly; build a bzImage");
  const setupSectors = image[Hdr.setupSects] === 0 ? 4 : image[Hdr.setupSects];
  return {
    protocol,
    setupSectors,
    protectedModeOffset: (setupSectors + 1) * 512,
    code32Start: view.getUint32(Hdr.code32Start, true),
    initrdAddrMax: view.getUint32(Hdr.initrdAddrMax, true),
    cmdlineSize: view.getUint32(Hdr.cmdlineSize, true),
    initSize: protocol >= 0x20a ? view.getUint32(Hdr.initSize, true) : 0,
    headerEnd: 0x202 + image[Hdr.jumpOffset],
  };
}

/** The e820 map of a PC with `ramSize` bytes of RAM from 0 and the Xen special pages. */
export function pcE820(ramSize: number): MemmapEntry[] {
  return [
    { address: 0, size: BzImageLayout.ebda, type: 1 },
    { address: BzImageLayout.ebda, size: 0xa0000 - BzImageLayout.ebda, type: 2 },
    { address: BzImageLayout.biosRom, size: 0x100000 - BzImageLayout.biosRom, type: 2 },
    { address: 0x100000, size: ramSize - 0x100000, type: 1 },
    // Xen's special pages (console, xenstore) sit outside RAM, reserved (xen-abi.md 1.2).
    { address: PvhSpecialPages.firstGfn * 4096, size: PvhSpecialPages.count * 4096, type: 2 },
  ];
}

export function buildBzImageBoot(
  memory: BootMemory,
  options: BzImageBootOptions,
): BzImageBootLayout {
  const image = options.bzImage;
  const header = readSetupHeader(image);
  const ramSize = memory.size;
  const kernel = image.subarray(header.protectedModeOffset);
  const kernelEnd = BzImageLayout.kernel + Math.max(kernel.length, header.initSize);
  if (kernelEnd > ramSize)
    throw new DomainBuildError(
      `the kernel needs memory up to ${hex(kernelEnd)} (init_size) but the domain has ${ramSize >> 20} MiB`,
    );
  const cmdline = new TextEncoder().encode(options.cmdline ?? "");
  // cmdline_size excludes the terminating NUL (boot.rst).
  if (cmdline.length > header.cmdlineSize)
    throw new DomainBuildError(
      `the command line is ${cmdline.length} bytes; this kernel takes at most ${header.cmdlineSize}`,
    );

  // Zero page: the header as the file has it, then the loader's fields.
  const params = new Uint8Array(4096);
  const view = new DataView(params.buffer);
  params.set(image.subarray(Hdr.setupSects, header.headerEnd), Hdr.setupSects);
  params[Hdr.typeOfLoader] = 0xff; // "undefined" boot loader (boot.rst type_of_loader)
  params[Hdr.loadflags] |= CAN_USE_HEAP;
  view.setUint16(Hdr.heapEndPtr, 0xfe00, true);
  view.setUint32(Hdr.cmdLinePtr, BzImageLayout.cmdline, true);

  let ramdisk: BzImageBootLayout["ramdisk"];
  if (options.ramdisk !== undefined && options.ramdisk.length > 0) {
    // At the top of RAM below initrd_addr_max, page-aligned, as boot loaders do (boot.rst).
    const limit = Math.min(ramSize, header.initrdAddrMax + 1);
    const address = Math.floor((limit - options.ramdisk.length) / 4096) * 4096;
    if (address < kernelEnd)
      throw new DomainBuildError(
        `the ${options.ramdisk.length}-byte ramdisk does not fit between the kernel (ends ${hex(kernelEnd)}) and ${hex(limit)}`,
      );
    memory.write(address, options.ramdisk);
    view.setUint32(Hdr.ramdiskImage, address, true);
    view.setUint32(Hdr.ramdiskSize, options.ramdisk.length, true);
    ramdisk = { address, size: options.ramdisk.length };
  }

  const e820 = pcE820(ramSize);
  if (e820.length > E820_MAX_ENTRIES) throw new DomainBuildError("too many e820 entries");
  params[BOOT_PARAMS_E820_ENTRIES] = e820.length;
  e820.forEach((entry, i) => {
    // struct boot_e820_entry { u64 addr; u64 size; u32 type; } __packed (20 bytes).
    const at = BOOT_PARAMS_E820_TABLE + i * 20;
    view.setUint32(at, entry.address % 4294967296, true);
    view.setUint32(at + 4, Math.floor(entry.address / 4294967296), true);
    view.setUint32(at + 8, entry.size % 4294967296, true);
    view.setUint32(at + 12, Math.floor(entry.size / 4294967296), true);
    view.setUint32(at + 16, entry.type, true);
  });

  memory.fill(0, 0x100000, 0);
  memory.write(BzImageLayout.bootParams, params);
  const cmdlineBytes = new Uint8Array(cmdline.length + 1);
  cmdlineBytes.set(cmdline);
  memory.write(BzImageLayout.cmdline, cmdlineBytes);
  memory.write(BzImageLayout.kernel, kernel);
  return {
    protocol: header.protocol,
    // A loader that puts the kernel at 0x100000 enters at code32_start (0x100000 by default).
    entry: header.code32Start || BzImageLayout.kernel,
    bootParamsAddress: BzImageLayout.bootParams,
    cmdlineAddress: BzImageLayout.cmdline,
    kernelStart: BzImageLayout.kernel,
    kernelEnd,
    ramdisk,
    e820,
    specialPages: PvhSpecialPages,
  };
}
