; A boot sector that prints through the video BIOS (INT 10h AH=0Eh, teletype
; output; IBM PC BIOS interface as SeaBIOS's vgasrc/vgabios.c implements it)
; and ends the machine through QEMU's isa-debug-exit at port 0xF4 with 0x21,
; which the domain reports as exit status (0x21 << 1) | 1.
; Assemble: nasm -f bin -o vga-hello.bin vga-hello.asm
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
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
    mov al, 0x21
    out 0xf4, al
.halt:
    hlt
    jmp .halt

message: db "Kumo VGA boot sector: INT 10h teletype", 13, 10, 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
