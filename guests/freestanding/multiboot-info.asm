; A Multiboot (v1) test kernel in the a.out-kludge form (header flags bit
; 16: the loader places it by the header's address fields; Multiboot
; Specification 0.6.96, 3.1). It checks the loader's magic in EAX, then
; prints through the 0xE9 debug console what the boot information at EBX
; says (spec 3.3): the command line, the module count, the first module's
; string and contents, and the loader name, and ends the machine through
; the isa-debug-exit port 0xF4 with 0x21 (exit status 0x43), or 0x7f (exit
; status 0xff) when EAX is wrong.
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 32
org 0x100000
%include "exit.inc"

MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003         ; page-aligned modules, memory info, address fields

header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                   ; header_addr
    dd 0x100000                 ; load_addr
    dd load_end                 ; load_end_addr
    dd bss_end                  ; bss_end_addr
    dd start                    ; entry_addr

start:
    mov esp, stack_top
    cmp eax, 0x2badb002
    jne .bad
    mov esi, text_cmdline
    call puts
    mov esi, [ebx + 16]         ; cmdline
    call puts
    call newline
    mov esi, text_modules
    call puts
    mov al, [ebx + 20]          ; mods_count (< 10 here)
    add al, '0'
    call putc
    call newline
    mov edx, [ebx + 24]         ; mods_addr: mod_start, mod_end, string
    mov esi, text_module
    call puts
    mov esi, [edx + 8]
    call puts
    mov al, '='
    call putc
    mov esi, [edx]
    mov ecx, [edx + 4]
.module:
    cmp esi, ecx
    jae .module_done
    lodsb
    call putc
    jmp .module
.module_done:
    call newline
    mov esi, text_loader
    call puts
    mov esi, [ebx + 64]         ; boot_loader_name
    call puts
    call newline
    ; The bss was cleared by the loader.
    cmp dword [bss_word], 0
    jne .bad
    isa_debug_exit 0x21
.bad:
    isa_debug_exit 0x7f

%include "debugcon.inc"

text_cmdline: db "cmdline: ", 0
text_modules: db "modules: ", 0
text_module: db "module 0: ", 0
text_loader: db "loader: ", 0
load_end:

section .bss align=4
bss_word: resd 1
stack: resb 1024
stack_top:
bss_end:
