/**
 * The parts of an ELF32/ELF64 executable a PVH domain builder reads: the
 * program headers (System V gABI "Program Header"; PT_LOAD segments are
 * placed at p_paddr, xen-abi.md 1.1) and the Xen ELF notes (Xen public
 * elfnote.h), found in PT_NOTE segments or, failing that, SHT_NOTE sections
 * (Xen's libelf looks in both).
 */
import { ElfNote as XenElfNote } from "@kumo/abi";
import { KernelImageError } from "./errors";

/** e_machine values (System V gABI / ELF ABI supplements). */
export const ElfMachine = { X86: 3, X86_64: 62, AARCH64: 183 } as const;

const PT_LOAD = 1;
const PT_NOTE = 4;
const SHT_NOTE = 7;

export interface ElfSegment {
  /** Physical load address (p_paddr). */
  readonly physicalAddress: number;
  readonly virtualAddress: number;
  /** Offset of the segment's bytes in the file. */
  readonly fileOffset: number;
  readonly fileSize: number;
  /** Size in memory; bytes past fileSize are zero (bss). */
  readonly memorySize: number;
}

export interface ElfNote {
  readonly name: string;
  readonly type: number;
  readonly descriptor: Uint8Array;
}

export interface ElfImage {
  /** 32 or 64 (EI_CLASS). */
  readonly bits: 32 | 64;
  /** e_machine. */
  readonly machine: number;
  /** e_entry (a virtual address; PVH ignores it in favour of PHYS32_ENTRY). */
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
  readonly notes: readonly ElfNote[];
  /** The file the offsets refer to. */
  readonly bytes: Uint8Array;
}

class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  check(offset: number, length: number, what: string): void {
    if (offset < 0 || length < 0 || offset + length > this.bytes.length) {
      throw new KernelImageError(
        `corrupt ELF image: ${what} (bytes ${offset}..${offset + length}) lies outside the ${this.bytes.length}-byte file`,
      );
    }
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  /** A 64-bit field as a double; values above 2^53 cannot be guest addresses here. */
  u64(offset: number, what: string): number {
    const high = this.view.getUint32(offset + 4, true);
    if (high >= 0x200000) throw new KernelImageError(`corrupt ELF image: ${what} exceeds 2^53`);
    return high * 0x100000000 + this.view.getUint32(offset, true);
  }
}

/** True when `bytes` starts with the ELF magic "\x7fELF". */
export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0x7f &&
    bytes[1] === 0x45 &&
    bytes[2] === 0x4c &&
    bytes[3] === 0x46
  );
}

/** Parses an ELF executable's headers and notes. Throws `KernelImageError`. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (!isElf(bytes)) throw new KernelImageError("not an ELF image (no \\x7fELF magic)");
  const reader = new Reader(bytes);
  reader.check(0, 52, "the ELF header");
  const elfClass = bytes[4];
  if (elfClass !== 1 && elfClass !== 2) {
    throw new KernelImageError(
      `corrupt ELF image: EI_CLASS ${elfClass} is neither 1 (32-bit) nor 2 (64-bit)`,
    );
  }
  if (bytes[5] !== 1) {
    throw new KernelImageError("unsupported ELF image: not little-endian (EI_DATA must be 1)");
  }
  const bits = elfClass === 1 ? 32 : 64;
  if (bits === 64) reader.check(0, 64, "the ELF64 header");
  const type = reader.u16(16);
  if (type !== 2) {
    throw new KernelImageError(
      `unsupported ELF image: e_type ${type} is not ET_EXEC (2); a kernel is an executable`,
    );
  }
  const machine = reader.u16(18);
  const entry = bits === 32 ? reader.u32(24) : reader.u64(24, "e_entry");
  const programOffset = bits === 32 ? reader.u32(28) : reader.u64(32, "e_phoff");
  const sectionOffset = bits === 32 ? reader.u32(32) : reader.u64(40, "e_shoff");
  const programEntrySize = reader.u16(bits === 32 ? 42 : 54);
  const programCount = reader.u16(bits === 32 ? 44 : 56);
  const sectionEntrySize = reader.u16(bits === 32 ? 46 : 58);
  const sectionCount = reader.u16(bits === 32 ? 48 : 60);
  const minimumProgramEntry = bits === 32 ? 32 : 56;
  if (programCount > 0 && programEntrySize < minimumProgramEntry) {
    throw new KernelImageError(
      `corrupt ELF image: e_phentsize ${programEntrySize} < ${minimumProgramEntry}`,
    );
  }
  reader.check(programOffset, programCount * programEntrySize, "the program header table");

  const segments: ElfSegment[] = [];
  const notes: ElfNote[] = [];
  for (let i = 0; i < programCount; i++) {
    const at = programOffset + i * programEntrySize;
    const type = reader.u32(at);
    let offset: number;
    let virtualAddress: number;
    let physicalAddress: number;
    let fileSize: number;
    let memorySize: number;
    let align: number;
    if (bits === 32) {
      offset = reader.u32(at + 4);
      virtualAddress = reader.u32(at + 8);
      physicalAddress = reader.u32(at + 12);
      fileSize = reader.u32(at + 16);
      memorySize = reader.u32(at + 20);
      align = reader.u32(at + 28);
    } else {
      offset = reader.u64(at + 8, "p_offset");
      virtualAddress = reader.u64(at + 16, "p_vaddr");
      physicalAddress = reader.u64(at + 24, "p_paddr");
      fileSize = reader.u64(at + 32, "p_filesz");
      memorySize = reader.u64(at + 40, "p_memsz");
      align = reader.u64(at + 48, "p_align");
    }
    if (type === PT_LOAD) {
      if (fileSize > memorySize) {
        throw new KernelImageError(
          `corrupt ELF image: segment ${i} has p_filesz ${fileSize} > p_memsz ${memorySize}`,
        );
      }
      reader.check(offset, fileSize, `segment ${i}`);
      segments.push({ physicalAddress, virtualAddress, fileOffset: offset, fileSize, memorySize });
    } else if (type === PT_NOTE) {
      reader.check(offset, fileSize, `note segment ${i}`);
      readNotes(reader, offset, fileSize, align === 8 ? 8 : 4, notes);
    }
  }
  if (notes.length === 0 && sectionCount > 0 && sectionOffset !== 0) {
    const minimumSectionEntry = bits === 32 ? 40 : 64;
    if (sectionEntrySize >= minimumSectionEntry) {
      reader.check(sectionOffset, sectionCount * sectionEntrySize, "the section header table");
      for (let i = 0; i < sectionCount; i++) {
        const at = sectionOffset + i * sectionEntrySize;
        if (reader.u32(at + 4) !== SHT_NOTE) continue;
        const offset = bits === 32 ? reader.u32(at + 16) : reader.u64(at + 24, "sh_offset");
        const size = bits === 32 ? reader.u32(at + 20) : reader.u64(at + 32, "sh_size");
        const align = bits === 32 ? reader.u32(at + 32) : reader.u64(at + 48, "sh_addralign");
        reader.check(offset, size, `note section ${i}`);
        readNotes(reader, offset, size, align === 8 ? 8 : 4, notes);
      }
    }
  }
  return { bits, machine, entry, segments, notes, bytes };
}

/** Elf{32,64}_Nhdr: namesz, descsz, type (each 4 bytes), then name and descriptor, each padded. */
function readNotes(
  reader: Reader,
  offset: number,
  size: number,
  align: number,
  out: ElfNote[],
): void {
  const end = offset + size;
  const pad = (n: number) => (n + align - 1) & ~(align - 1);
  while (offset + 12 <= end) {
    const nameSize = reader.u32(offset);
    const descriptorSize = reader.u32(offset + 4);
    const type = reader.u32(offset + 8);
    const nameStart = offset + 12;
    const descriptorStart = nameStart + pad(nameSize);
    const next = descriptorStart + pad(descriptorSize);
    if (nameSize > size || descriptorSize > size || descriptorStart + descriptorSize > end) {
      throw new KernelImageError(
        `corrupt ELF image: a note at file offset ${offset} runs past its segment`,
      );
    }
    // The name is NUL-terminated and namesz counts the NUL ("Xen\0" has namesz 4).
    let name = "";
    for (let i = 0; i < nameSize; i++) {
      const c = reader.bytes[nameStart + i];
      if (c === 0) break;
      name += String.fromCharCode(c);
    }
    out.push({
      name,
      type,
      descriptor: reader.bytes.subarray(descriptorStart, descriptorStart + descriptorSize),
    });
    offset = next;
  }
}

/**
 * The PVH entry point: the Xen note XEN_ELFNOTE_PHYS32_ENTRY, a pointer-sized
 * descriptor (4 bytes in a 32-bit kernel, 8 in a 64-bit one) holding a 32-bit
 * physical address (xen-abi.md 1.1; Linux arch/x86/platform/pvh/head.S).
 */
export function findPhys32Entry(image: ElfImage): number {
  const note = image.notes.find(
    (note) => note.name === "Xen" && note.type === XenElfNote.PHYS32_ENTRY,
  );
  if (note === undefined) {
    throw new KernelImageError(
      "no XEN_ELFNOTE_PHYS32_ENTRY note: this kernel was built without CONFIG_XEN_PVH (Kumo boots PVH kernels)",
    );
  }
  const descriptor = new DataView(
    note.descriptor.buffer,
    note.descriptor.byteOffset,
    note.descriptor.byteLength,
  );
  if (note.descriptor.length === 4) return descriptor.getUint32(0, true);
  if (note.descriptor.length === 8) {
    if (descriptor.getUint32(4, true) !== 0) {
      throw new KernelImageError(
        "XEN_ELFNOTE_PHYS32_ENTRY points above 4 GiB; a 32-bit entry is required",
      );
    }
    return descriptor.getUint32(0, true);
  }
  throw new KernelImageError(
    `corrupt XEN_ELFNOTE_PHYS32_ENTRY note: descriptor of ${note.descriptor.length} bytes (expected 4 or 8)`,
  );
}
