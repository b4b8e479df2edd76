/**
 * Segment descriptors the test kernels put in their GDT, as `dq` operands
 * (Intel SDM vol. 3A 3.4.5): flat 4 GiB, 32-bit, granularity 4 KiB.
 */
export const Descriptor = {
  /** Ring-0 code, execute/read (type 0xa, DPL 0). */
  kernelCode: "0x00cf9a000000ffff",
  /** Ring-0 data, read/write (type 0x2, DPL 0). */
  kernelData: "0x00cf92000000ffff",
  /** Ring-3 code, execute/read (DPL 3). */
  userCode: "0x00cffa000000ffff",
  /** Ring-3 data, read/write (DPL 3). */
  userData: "0x00cff2000000ffff",
  /** An available 32-bit TSS of 104 bytes (SDM vol. 3A 7.2.2); `tssBase` patches its base at run time. */
  tss: "0x0000890000000067",
  /** An empty slot the kernel fills in (a call gate, for instance). */
  empty: "0",
} as const;

/**
 * The GDT of a kernel with a user mode: 0x08 kernel code, 0x10 kernel
 * data, 0x18 user code, 0x20 user data (selectors 0x1b and 0x23 at RPL 3),
 * 0x28 a TSS.
 */
export const KERNEL_USER_TSS: readonly string[] = [
  Descriptor.kernelCode,
  Descriptor.kernelData,
  Descriptor.userCode,
  Descriptor.userData,
  Descriptor.tss,
];

/**
 * The tables a test kernel ends with: `gdt` (a null descriptor, then
 * `descriptors` from selector 0x08 on), `gdt_ptr` and `idt_ptr` for
 * `lgdt`/`lidt`, one zeroed 104-byte TSS per name in `tss`, and a zeroed
 * 256-vector IDT at `idt` for the kernel to fill in.
 */
export function descriptorTables(
  descriptors: readonly string[],
  tss: readonly string[] = [],
): string {
  const gdt = descriptors.map(
    (d, i) => `  dq ${d}   ; 0x${((i + 1) * 8).toString(16).padStart(2, "0")}`,
  );
  const tssBlock = tss.length
    ? `align 16\n${tss.map((name) => `${name}: times 104 db 0`).join("\n")}\n`
    : "";
  return `
align 8
gdt:
  dq 0
${gdt.join("\n")}
gdt_end:
gdt_ptr:
  dw gdt_end - gdt - 1
  dd gdt
idt_ptr:
  dw 256*8 - 1
  dd idt
${tssBlock}align 8
idt: times 256*8 db 0
`;
}
