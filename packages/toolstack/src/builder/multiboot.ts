/**
 * Direct boot of a Multiboot (version 1) kernel, as `qemu -kernel` and GRUB
 * do (the Multiboot Specification 0.6.96: "3.1 OS image format", "3.2
 * Machine state", "3.3 Boot information format").
 *
 * The header (magic 0x1BADB002, flags, checksum) is searched in the first
 * 8192 bytes at 4-byte alignment. With flags bit 16 the image is loaded by
 * the header's address fields (header_addr, load_addr, load_end_addr,
 * bss_end_addr, entry_addr); otherwise it must be an ELF whose PT_LOAD
 * segments are loaded at their physical addresses. Modules are placed
 * page-aligned after the kernel. The boot information holds the memory
 * sizes (mem_lower/mem_upper), the command line, the modules with their
 * strings, the memory map (entries with a leading size field) and the boot
 * loader name. Entry: 32-bit protected mode, paging off, flat segments,
 * EAX = 0x2BADB002, EBX = the boot information. Required features Kumo
 * cannot give (flags bit 2, a video mode, is honoured as "no video") are
 * ignored, as QEMU does; unknown required bits 3-15 are refused.
 */
import { parseElf } from "./elf";
import { DomainBuildError, KernelImageError } from "./errors";
import type { BootMemory, MemmapEntry } from "./pvh";

const HEADER_MAGIC = 0x1badb002;
/** What the kernel finds in EAX (spec 3.2). */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
const SEARCH_LIMIT = 8192;
const FLAG_ADDRESS_FIELDS = 1 << 16;
/** Boot information flags (spec 3.3). */
const INFO_MEMORY = 1 << 0;
const INFO_CMDLINE = 1 << 2;
const INFO_MODULES = 1 << 3;
const INFO_MMAP = 1 << 6;
const INFO_LOADER_NAME = 1 << 9;
/** Where the boot information and its strings go: below the EBDA, away from the kernel. */
const INFO_ADDRESS = 0x10000;
const INFO_AREA_END = 0x90000;

export interface MultibootModule {
  readonly data: Uint8Array;
  /** The module's string (GRUB passes its path and arguments). */
  readonly cmdline: string;
}

export interface MultibootBootOptions {
  readonly kernel: Uint8Array;
  readonly cmdline?: string;
  readonly modules?: readonly MultibootModule[];
  /** The memory map to report (the PC's e820). */
  readonly memoryMap: readonly MemmapEntry[];
}

export interface MultibootBootLayout {
  readonly entry: number;
  readonly infoAddress: number;
  readonly kernelStart: number;
  readonly kernelEnd: number;
  readonly modules: readonly { readonly address: number; readonly size: number }[];
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

/** The offset of a valid Multiboot header in `image`, or -1. */
export function findMultibootHeader(image: Uint8Array): number {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(SEARCH_LIMIT, image.length) - 12;
  for (let offset = 0; offset <= limit; offset += 4) {
    if (view.getUint32(offset, true) !== HEADER_MAGIC) continue;
    const flags = view.getUint32(offset + 4, true);
    const checksum = view.getUint32(offset + 8, true);
    if ((HEADER_MAGIC + flags + checksum) >>> 0 === 0) return offset;
  }
  return -1;
}

export function buildMultibootBoot(
  memory: BootMemory,
  options: MultibootBootOptions,
): MultibootBootLayout {
  const image = options.kernel;
  const headerOffset = findMultibootHeader(image);
  if (headerOffset < 0)
    throw new KernelImageError(
      "not a Multiboot kernel: no header (0x1badb002 with a valid checksum) in the first 8 KiB",
    );
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const flags = view.getUint32(headerOffset + 4, true);
  // Bits 0-2 (page-aligned modules, memory information, video mode) are known; 3-15 would be
  // required features of a later specification.
  const unknownRequired = flags & 0xfff8;
  if (unknownRequired)
    throw new KernelImageError(
      `the Multiboot header requires features ${hex(unknownRequired)} that no loader knows`,
    );

  let entry: number;
  let kernelStart: number;
  let kernelEnd: number;
  if (flags & FLAG_ADDRESS_FIELDS) {
    if (headerOffset + 32 > image.length)
      throw new KernelImageError("the Multiboot header's address fields are cut off");
    const headerAddress = view.getUint32(headerOffset + 12, true);
    const loadAddress = view.getUint32(headerOffset + 16, true);
    const loadEnd = view.getUint32(headerOffset + 20, true);
    const bssEnd = view.getUint32(headerOffset + 24, true);
    entry = view.getUint32(headerOffset + 28, true);
    const fileStart = headerOffset - (headerAddress - loadAddress);
    const length = loadEnd === 0 ? image.length - fileStart : loadEnd - loadAddress;
    if (
      headerAddress < loadAddress ||
      fileStart < 0 ||
      length < 0 ||
      fileStart + length > image.length
    )
      throw new KernelImageError(
        `the Multiboot address fields (header ${hex(headerAddress)}, load ${hex(loadAddress)}-${hex(loadEnd)}) do not fit the ${image.length}-byte file`,
      );
    kernelStart = loadAddress;
    kernelEnd = Math.max(loadAddress + length, bssEnd);
    if (kernelStart < 0x100000 || kernelEnd > memory.size)
      throw new DomainBuildError(
        `the kernel's range ${hex(kernelStart)}-${hex(kernelEnd)} is outside RAM above 1 MiB`,
      );
    memory.write(loadAddress, image.subarray(fileStart, fileStart + length));
    if (bssEnd > loadAddress + length)
      memory.fill(loadAddress + length, bssEnd - loadAddress - length, 0);
  } else {
    const elf = parseElf(image);
    if (elf.bits !== 32)
      throw new KernelImageError(
        "a Multiboot ELF kernel must be ELF32 (or use the address fields)",
      );
    entry = elf.entry;
    kernelStart = Number.POSITIVE_INFINITY;
    kernelEnd = 0;
    for (const segment of elf.segments) {
      const start = segment.physicalAddress;
      const end = start + segment.memorySize;
      if (start < 0x100000 || end > memory.size)
        throw new DomainBuildError(
          `an ELF segment at ${hex(start)}-${hex(end)} is outside RAM above 1 MiB`,
        );
      memory.write(
        start,
        image.subarray(segment.fileOffset, segment.fileOffset + segment.fileSize),
      );
      if (segment.memorySize > segment.fileSize)
        memory.fill(start + segment.fileSize, segment.memorySize - segment.fileSize, 0);
      kernelStart = Math.min(kernelStart, start);
      kernelEnd = Math.max(kernelEnd, end);
    }
  }

  // Modules after the kernel, page-aligned (always, which also satisfies flags bit 0).
  const modules: { address: number; size: number }[] = [];
  let next = Math.ceil(kernelEnd / 4096) * 4096;
  for (const module of options.modules ?? []) {
    if (next + module.data.length > memory.size)
      throw new DomainBuildError(
        `the ${module.data.length}-byte module does not fit above ${hex(next)}`,
      );
    memory.write(next, module.data);
    modules.push({ address: next, size: module.data.length });
    next = Math.ceil((next + module.data.length) / 4096) * 4096;
  }

  // The boot information, then the module list, memory map and strings after it.
  const area = new Uint8Array(INFO_AREA_END - INFO_ADDRESS);
  const info = new DataView(area.buffer);
  let cursor = 88;
  const put = (bytes: Uint8Array) => {
    const at = cursor;
    if (cursor + bytes.length > area.length)
      throw new DomainBuildError("the Multiboot boot information is too large");
    area.set(bytes, at);
    cursor = (cursor + bytes.length + 3) & ~3;
    return INFO_ADDRESS + at;
  };
  const string = (text: string) => {
    const encoded = new TextEncoder().encode(text);
    const bytes = new Uint8Array(encoded.length + 1);
    bytes.set(encoded);
    return put(bytes);
  };
  const lowerKiB = Math.floor(
    (options.memoryMap.find((e) => e.type === 1 && e.address === 0)?.size ?? 0) / 1024,
  );
  const upper = options.memoryMap.find((e) => e.type === 1 && e.address === 0x100000);
  info.setUint32(4, lowerKiB, true);
  info.setUint32(8, Math.floor((upper?.size ?? 0) / 1024), true);
  info.setUint32(16, string(options.cmdline ?? ""), true);
  const moduleList = new Uint8Array(16 * modules.length);
  const moduleView = new DataView(moduleList.buffer);
  modules.forEach((module, i) => {
    moduleView.setUint32(16 * i, module.address, true);
    moduleView.setUint32(16 * i + 4, module.address + module.size, true);
    moduleView.setUint32(16 * i + 8, string(options.modules?.[i].cmdline ?? ""), true);
  });
  info.setUint32(20, modules.length, true);
  info.setUint32(24, modules.length > 0 ? put(moduleList) : 0, true);
  // Memory map entries: size (20, not counting itself), base_addr, length, type.
  const map = new Uint8Array(24 * options.memoryMap.length);
  const mapView = new DataView(map.buffer);
  options.memoryMap.forEach((entry, i) => {
    mapView.setUint32(24 * i, 20, true);
    mapView.setUint32(24 * i + 4, entry.address % 4294967296, true);
    mapView.setUint32(24 * i + 8, Math.floor(entry.address / 4294967296), true);
    mapView.setUint32(24 * i + 12, entry.size % 4294967296, true);
    mapView.setUint32(24 * i + 16, Math.floor(entry.size / 4294967296), true);
    mapView.setUint32(24 * i + 20, entry.type, true);
  });
  info.setUint32(44, map.length, true);
  info.setUint32(48, put(map), true);
  info.setUint32(64, string("Kumo"), true);
  info.setUint32(0, INFO_MEMORY | INFO_CMDLINE | INFO_MODULES | INFO_MMAP | INFO_LOADER_NAME, true);
  memory.write(INFO_ADDRESS, area.subarray(0, cursor));
  return { entry, infoAddress: INFO_ADDRESS, kernelStart, kernelEnd, modules };
}
