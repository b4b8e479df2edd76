/**
 * Oracles the builder and console tests compare against: binaries built by
 * the host toolchain (gcc, ld, readelf), compressors (xz, gzip) and Linux's
 * own Xen interface headers from Debian's linux-source-6.1.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const cacheDir = join(tmpdir(), "kumo-toolstack-test");
mkdirSync(cacheDir, { recursive: true });

export function run(command: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync(command, args, { input, maxBuffer: 1 << 30 });
}

const linuxTarball = "/usr/src/linux-source-6.1.tar.xz";

/** A header of Linux 6.1 (include/xen/interface/...), extracted once from Debian's source tarball. */
export function linuxXenHeaderDir(): string {
  const dir = join(cacheDir, "linux-headers");
  const marker = join(dir, "done");
  if (!existsSync(marker)) {
    if (!existsSync(linuxTarball))
      throw new Error(`${linuxTarball} is missing: apt-get install linux-source-6.1`);
    mkdirSync(dir, { recursive: true });
    run("tar", [
      "-xJf",
      linuxTarball,
      "-C",
      dir,
      "--strip-components=1",
      "--wildcards",
      "*/include/xen/interface/hvm/start_info.h",
      "*/include/xen/interface/io/console.h",
    ]);
    writeFileSync(marker, "");
  }
  return join(dir, "include/xen/interface");
}

/** Compiles and runs a C program (hosted x86_64 gcc) with `args`; returns its stdout. */
export function runC(name: string, source: string, args: string[] = []): string {
  const file = join(cacheDir, `${name}.c`);
  const binary = join(cacheDir, name);
  writeFileSync(file, source);
  run("gcc", ["-O0", "-w", "-o", binary, file]);
  return run(binary, args).toString();
}

/**
 * Builds a tiny PVH "kernel": a hlt loop with data, bss and a Xen
 * PHYS32_ENTRY note, linked high (virtual 0xC0100000) but loaded at
 * physical 0x100000, as Linux's i386 vmlinux is.
 */
export function buildTestKernel(bits: 32 | 64, options: { note?: boolean } = {}): Uint8Array {
  const name = `kernel${bits}${options.note === false ? "-nonote" : ""}`;
  const out = join(cacheDir, name);
  const assembly = `
    .section .text, "ax"
    .globl _start
_start:
    hlt
    jmp _start
    .section .data, "aw"
    .long 0x12345678, 0x9abcdef0
    .section .bss, "aw", @nobits
    .space 12288
${
  options.note === false
    ? ""
    : `    .section .note.Xen, "a", @note
    .balign 4
    .long 4, ${bits / 8}, 18
    .asciz "Xen"
    .balign 4
    ${bits === 32 ? ".long" : ".quad"} _start - 0xC0000000
`
}`;
  const script = `
ENTRY(_start)
PHDRS { text PT_LOAD; data PT_LOAD; note PT_NOTE; }
SECTIONS {
  . = 0xC0100000;
  .text : AT(0x100000) { *(.text) } :text
  .note : AT(ADDR(.note) - 0xC0000000) { *(.note.Xen) } :text :note
  . = ALIGN(4096);
  .data : AT(ADDR(.data) - 0xC0000000) { *(.data) } :data
  .bss : AT(ADDR(.bss) - 0xC0000000) { *(.bss) } :data
  /DISCARD/ : { *(.note.gnu.property) *(.comment) }
}`;
  writeFileSync(`${out}.S`, assembly);
  writeFileSync(`${out}.ld`, script);
  run("gcc", [bits === 32 ? "-m32" : "-m64", "-c", "-o", `${out}.o`, `${out}.S`]);
  run("ld", [
    "-m",
    bits === 32 ? "elf_i386" : "elf_x86_64",
    "-T",
    `${out}.ld`,
    "-o",
    out,
    `${out}.o`,
  ]);
  return new Uint8Array(readFileSync(out));
}

export interface ReadelfSegment {
  type: string;
  offset: number;
  virtualAddress: number;
  physicalAddress: number;
  fileSize: number;
  memorySize: number;
}

/** Program headers as binutils' readelf prints them. */
export function readelfSegments(path: string): ReadelfSegment[] {
  const text = run("readelf", ["-lW", path]).toString();
  const segments: ReadelfSegment[] = [];
  for (const line of text.split("\n")) {
    const match =
      /^\s+(LOAD|NOTE)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)/.exec(
        line,
      );
    if (!match) continue;
    segments.push({
      type: match[1],
      offset: Number(match[2]),
      virtualAddress: Number(match[3]),
      physicalAddress: Number(match[4]),
      fileSize: Number(match[5]),
      memorySize: Number(match[6]),
    });
  }
  return segments;
}

/**
 * A freestanding PVH guest (32-bit, paging off, as the PVH entry leaves it)
 * that finds its console with HVMOP_get_param, prints a banner on hvc0,
 * echoes keyboard input until it reads "q", then calls SCHEDOP_shutdown with
 * `reason` (0 poweroff, 1 reboot, 3 crash). Hypercalls use VMCALL with the
 * 32-bit register convention (xen-abi.md 1.4).
 */
export function buildConsoleGuest(reason: number, banner = "kumo test guest\\r\\n> "): Uint8Array {
  const out = join(cacheDir, `console-guest-${reason}`);
  const assembly = `
    .code32
    .section .text, "ax"
    .globl _start
_start:
    mov $stack_top, %esp
    movl $17, param_index          # HVM_PARAM_CONSOLE_PFN
    call get_param
    shl $12, %eax
    mov %eax, %esi                 # ESI = the xencons_interface page
    movl $18, param_index          # HVM_PARAM_CONSOLE_EVTCHN
    call get_param
    mov %eax, port
    mov $banner, %ebp
    call puts
echo:
    mov 3072(%esi), %ecx           # in_cons
    cmp 3076(%esi), %ecx           # in_prod
    je echo                        # busy-wait for input
    mov %ecx, %edx
    and $1023, %edx
    movzbl (%esi,%edx), %eax
    inc %ecx
    mov %ecx, 3072(%esi)
    cmp $'q', %al
    je done
    call putc
    call notify
    jmp echo
done:
    mov $bye, %ebp
    call puts
    mov $29, %eax                  # sched_op
    mov $2, %ebx                   # SCHEDOP_shutdown
    mov $reason, %ecx
    vmcall
1:  hlt
    jmp 1b

get_param:                         # EAX = value of param_index
    mov $34, %eax                  # hvm_op
    mov $1, %ebx                   # HVMOP_get_param
    mov $param, %ecx
    vmcall
    test %eax, %eax
    jnz 1b
    mov param_value, %eax
    ret

putc:                              # AL -> out[]
    mov 3084(%esi), %edx           # out_prod
    mov %edx, %ecx
    and $2047, %ecx
    mov %al, 1024(%esi,%ecx)
    inc %edx
    mov %edx, 3084(%esi)
    ret

puts:                              # EBP = NUL-terminated string
    movzbl (%ebp), %eax
    test %al, %al
    jz notify
    call putc
    inc %ebp
    jmp puts

notify:                            # EVTCHNOP_send on the console port
    mov $32, %eax
    mov $4, %ebx
    mov $port, %ecx
    vmcall
    ret

    .section .data, "aw"
param:
    .short 0x7ff0                  # DOMID_SELF
    .short 0
param_index:
    .long 0
param_value:
    .quad 0
port:
    .long 0
reason:
    .long ${reason}
banner:
    .asciz "${banner}"
bye:
    .asciz "\\r\\nbye\\r\\n"
    .section .bss, "aw", @nobits
    .space 4096
stack_top:
    .section .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18
    .asciz "Xen"
    .balign 4
    .long _start
`;
  const script = `
ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { *(.text) }
  .note : { *(.note.Xen) }
  .data : { *(.data) }
  .bss : { *(.bss) }
  /DISCARD/ : { *(.note.gnu.property) *(.comment) }
}`;
  writeFileSync(`${out}.S`, assembly);
  writeFileSync(`${out}.ld`, script);
  run("gcc", ["-m32", "-c", "-o", `${out}.o`, `${out}.S`]);
  run("ld", ["-m", "elf_i386", "-T", `${out}.ld`, "-o", out, `${out}.o`]);
  return new Uint8Array(readFileSync(out));
}
