/** How `loadFlatSegments` enters flat protected mode. */
export interface FlatSegmentsOptions {
  /** The label the far jump lands on; `.reload` unless the kernel's own local labels need a global one. */
  readonly label?: string;
  /** The initial ESP, a number or an assembler symbol. */
  readonly stack?: string;
  /** Also load FS and GS with the data selector. */
  readonly fsGs?: boolean;
}

/**
 * Assembly that loads the GDT at `gdt_ptr` (see `descriptorTables`) and makes
 * every segment flat: CS 0x08 by a far jump, which is what reloads the hidden
 * part of CS after `lgdt` (Intel SDM vol. 3A 9.9.1), and the data selector
 * 0x10 in DS, ES, SS (and FS, GS on request), then the stack.
 */
export function loadFlatSegments(options: FlatSegmentsOptions = {}): string {
  const { label = ".reload", stack = "0x70000", fsGs = false } = options;
  const extra = fsGs ? "\n  mov fs, ax\n  mov gs, ax" : "";
  return `
  lgdt [gdt_ptr]
  jmp 0x08:${label}
${label}:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax${extra}
  mov esp, ${stack}`;
}
