/**
 * The arm64 boot path for an `Image` (Linux Documentation/arm64/booting.rst,
 * "Call the kernel image"): the 64-byte header, placement `text_offset`
 * bytes above a 2 MiB aligned base in RAM with `image_size` bytes free, the
 * device tree on an 8-byte boundary in its own 2 MiB region (at most 2 MiB),
 * the initrd anywhere else in RAM, and the entry state: x0 = the device
 * tree's physical address, x1-x3 = 0, MMU off, EL1h, DAIF masked, PC = the
 * first byte of the image. Xen's domain builder does the same for a domU
 * (xen/arch/arm/kernel.c kernel_zimage64_probe, libxl's xc_dom_arm.c).
 */
import { ArmGuest } from "@kumo/abi";
import type { GuestMemory } from "@kumo/mmu";
import { DomainBuildError, KernelImageError } from "../builder/errors";
import { type Arm64DeviceTreeOptions, buildArm64DeviceTree } from "./device-tree";

/** "ARM\x64" at offset 56, little-endian (booting.rst). */
export const ARM64_IMAGE_MAGIC = 0x644d5241;
const HEADER_SIZE = 64;
const TWO_MIB = 0x200000;
/** Before Linux 3.17 image_size was 0 and text_offset had to be assumed (booting.rst). */
const LEGACY_TEXT_OFFSET = 0x80000;

export interface Arm64ImageHeader {
  /** Bytes between the 2 MiB aligned base and the image (0 since Linux 5.8). */
  readonly textOffset: number;
  /** Bytes the kernel needs from its start, BSS included (the file is shorter). */
  readonly imageSize: number;
  /** Kernel page size in KiB from flags bits 1-2 (0: unspecified). */
  readonly pageSizeKiB: 0 | 4 | 16 | 64;
  /** Flags bit 3: the image may sit anywhere in RAM, not only near its base. */
  readonly placeAnywhere: boolean;
}

/** True when `bytes` starts with an arm64 Image header. */
export function isArm64Image(bytes: Uint8Array): boolean {
  return (
    bytes.length >= HEADER_SIZE &&
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(56, true) ===
      ARM64_IMAGE_MAGIC
  );
}

function readU64(view: DataView, offset: number, what: string): number {
  const low = view.getUint32(offset, true);
  const high = view.getUint32(offset + 4, true);
  if (high >= 0x200000)
    throw new KernelImageError(
      `arm64 Image ${what} 0x${high.toString(16)}${low.toString(16).padStart(8, "0")} is too large`,
    );
  return high * 0x100000000 + low;
}

/** Reads the header. Throws `KernelImageError` saying what is wrong with the file. */
export function parseArm64ImageHeader(bytes: Uint8Array): Arm64ImageHeader {
  if (!isArm64Image(bytes))
    throw new KernelImageError(
      `not an arm64 Image: no "ARM\\x64" magic at offset 56 (Linux Documentation/arm64/booting.rst)`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let textOffset = readU64(view, 8, "text_offset");
  let imageSize = readU64(view, 16, "image_size");
  const flags = readU64(view, 24, "flags");
  if (imageSize === 0) {
    textOffset = LEGACY_TEXT_OFFSET;
    imageSize = bytes.length;
  }
  if (flags & 1)
    throw new KernelImageError(
      "the arm64 Image is big-endian (flags bit 0); Kumo runs little-endian guests",
    );
  const pageSizeKiB = ([0, 4, 16, 64] as const)[(flags >>> 1) & 3];
  if (pageSizeKiB !== 0 && pageSizeKiB !== 4)
    throw new KernelImageError(
      `the arm64 Image uses ${pageSizeKiB} KiB pages (flags bits 1-2); Kumo's CPU has the 4 KiB granule only`,
    );
  if (imageSize < bytes.length)
    throw new KernelImageError(
      `the arm64 Image's image_size ${imageSize} is below its file size ${bytes.length}`,
    );
  return { textOffset, imageSize, pageSizeKiB, placeAnywhere: (flags & 8) !== 0 };
}

/** Where guest memory gets the boot files (guest-physical addresses). */
export interface Arm64BootMemory {
  readonly base: number;
  readonly size: number;
  write(address: number, data: Uint8Array): void;
}

/** An `Arm64BootMemory` over `@kumo/mmu`'s guest memory (writes go through the p2m's listeners). */
export function arm64BootMemory(memory: GuestMemory): Arm64BootMemory {
  return {
    base: memory.ram.base,
    size: memory.ram.size,
    write: (address, data) => memory.writeBytes(address, data),
  };
}

export interface Arm64BootOptions
  extends Omit<Arm64DeviceTreeOptions, "memory" | "initrd" | "bootargs"> {
  readonly kernel: Uint8Array;
  readonly initrd?: Uint8Array;
  readonly cmdline?: string;
}

/** What the builder placed, and the vCPU state at the kernel's entry. */
export interface Arm64BootLayout {
  readonly header: Arm64ImageHeader;
  readonly kernelAddress: number;
  readonly deviceTreeAddress: number;
  readonly deviceTree: Uint8Array;
  readonly initrd?: { readonly start: number; readonly end: number };
  readonly entry: Arm64EntryState;
}

/** booting.rst: PC at the image, x0 = DTB, x1-x3 = 0; EL1h (M = 0b0101) with D, A, I, F masked. */
export interface Arm64EntryState {
  readonly pc: number;
  readonly x0: number;
  /** SPSR-format PSTATE: 0x3C5. */
  readonly pstate: number;
}

export const ARM64_ENTRY_PSTATE = 0x3c5;

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/**
 * Places the kernel, device tree and initrd in RAM and returns the layout.
 * RAM must be one bank (Xen's bank 0 holds up to 3 GiB from 0x40000000).
 */
export function buildArm64Boot(
  memory: Arm64BootMemory,
  options: Arm64BootOptions,
): Arm64BootLayout {
  const header = parseArm64ImageHeader(options.kernel);
  if (memory.size > ArmGuest.RAM0_SIZE)
    throw new DomainBuildError(
      `arm64 guests get one RAM bank of at most ${ArmGuest.RAM0_SIZE / 2 ** 20} MiB here, not ${memory.size / 2 ** 20} MiB`,
    );
  const ramEnd = memory.base + memory.size;
  // As close to the start of RAM as possible (booting.rst: required unless flags bit 3).
  const kernelAddress = alignUp(memory.base, TWO_MIB) + header.textOffset;
  const kernelEnd = kernelAddress + header.imageSize;
  const deviceTreeAddress = alignUp(kernelEnd, TWO_MIB);
  const initrdStart = deviceTreeAddress + TWO_MIB;
  const initrdEnd = initrdStart + (options.initrd?.length ?? 0);
  const needed = options.initrd ? initrdEnd : deviceTreeAddress + TWO_MIB;
  if (needed > ramEnd)
    throw new DomainBuildError(
      `the kernel (${header.imageSize} bytes), device tree and initrd (${options.initrd?.length ?? 0} bytes) need RAM up to 0x${needed.toString(16)}; the guest's ends at 0x${ramEnd.toString(16)}`,
    );
  const initrd = options.initrd ? { start: initrdStart, end: initrdEnd } : undefined;
  const { kernel: _kernel, initrd: _initrd, cmdline, ...platform } = options;
  const deviceTree = buildArm64DeviceTree({
    ...platform,
    memory: [{ base: memory.base, size: memory.size }],
    ...(cmdline !== undefined ? { bootargs: cmdline } : {}),
    ...(initrd ? { initrd } : {}),
  });
  if (deviceTree.length > TWO_MIB)
    throw new DomainBuildError(
      `the device tree is ${deviceTree.length} bytes; booting.rst allows 2 MiB`,
    );
  memory.write(kernelAddress, options.kernel);
  memory.write(deviceTreeAddress, deviceTree);
  if (options.initrd) memory.write(initrdStart, options.initrd);
  return {
    header,
    kernelAddress,
    deviceTreeAddress,
    deviceTree,
    ...(initrd ? { initrd } : {}),
    entry: { pc: kernelAddress, x0: deviceTreeAddress, pstate: ARM64_ENTRY_PSTATE },
  };
}

/** The part of an arm64 vCPU the entry state touches (`@kumo/cpu-arm`'s Arm64Cpu fits it). */
export interface Arm64BootCpu {
  setX(index: number, value: number): void;
  pc: bigint | number;
  /** SPSR-format PSTATE (M, DAIF, NZCV). */
  readonly pstate: number;
}

/**
 * Puts a vCPU at the kernel's entry: x0-x3 and PC. The CPU must be as
 * reset leaves it (EL1h, DAIF masked, MMU and caches off), which is the
 * entry state booting.rst asks for; anything else is a VMM bug.
 */
export function applyArm64EntryState(cpu: Arm64BootCpu, entry: Arm64EntryState): void {
  if ((cpu.pstate & 0x3cf) !== entry.pstate)
    throw new DomainBuildError(
      `the vCPU is not at reset (PSTATE 0x${cpu.pstate.toString(16)}, the entry needs EL1h with DAIF masked)`,
    );
  cpu.setX(0, entry.x0);
  for (let index = 1; index <= 3; index++) cpu.setX(index, 0);
  cpu.pc = entry.pc;
}
