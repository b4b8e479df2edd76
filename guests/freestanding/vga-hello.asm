; A boot sector that prints through the video BIOS (INT 10h AH=0Eh, teletype
; output; IBM PC BIOS interface as SeaBIOS's vgasrc/vgabios.c implements it)
; and ends the machine through QEMU's isa-debug-exit at port 0xF4 with 0x21,
; which the domain reports as exit status (0x21 << 1) | 1.
; Assemble: nasm -f bin -i guests/freestanding/lib/ -o vga-hello.bin vga-hello.asm
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

start:
    boot_sector_setup
    sti
    mov si, message
.next:
    lodsb
    test al, al
    jz .done
    mov ah, 0x0e            ; teletype output
    mov bx, 0x0007          ; page 0, colour 7
    int 0x10
    jmp .next
.done:
    isa_debug_exit 0x21

message: db "Kumo VGA boot sector: INT 10h teletype", 13, 10, 0
boot_signature
