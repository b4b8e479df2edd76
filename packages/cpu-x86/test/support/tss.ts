/**
 * Assembly that writes the address of the TSS at `label` into the base of
 * the GDT descriptor at `selector` (base bits 15:0 at byte 2, 23:16 at
 * byte 4, 31:24 at byte 7; Intel SDM vol. 3A 7.2.2, figure 7-3).
 */
export function tssBase(label: string, selector: number): string {
  const at = `gdt + 0x${selector.toString(16)}`;
  return `
  mov eax, ${label}
  mov [${at} + 2], ax
  shr eax, 16
  mov [${at} + 4], al
  mov [${at} + 7], ah`;
}

/** Assembly that sets the ring-0 stack of the TSS at `label`: ESP0 at offset 4, SS0 (0x10) at 8 (SDM vol. 3A 7.2.1). */
export function tssRing0Stack(label: string, esp0: string): string {
  return `
  mov dword [${label} + 4], ${esp0}
  mov dword [${label} + 8], 0x10`;
}

/** How `loadTss` prepares the task. */
export interface LoadTssOptions {
  /** Ring-0 stack pointer for privilege changes. */
  readonly esp0: string;
  /** The I/O permission bitmap base (offset 0x66); 0x68, past the TSS limit 0x67, means no bitmap (SDM vol. 1 19.5.2). */
  readonly ioMapBase?: string;
}

/**
 * Assembly that makes the TSS at `label` the current task: patches its
 * descriptor's base, sets its ring-0 stack and loads TR with `ltr`.
 */
export function loadTss(label: string, selector: number, options: LoadTssOptions): string {
  const ioMap =
    options.ioMapBase === undefined ? "" : `\n  mov word [${label} + 0x66], ${options.ioMapBase}`;
  return `${tssBase(label, selector)}${tssRing0Stack(label, options.esp0)}${ioMap}
  mov ax, 0x${selector.toString(16)}
  ltr ax`;
}
