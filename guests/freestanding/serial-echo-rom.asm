; A 64 KiB "firmware" ROM for tests of HVM firmware boot and of consoles
; attached to COM1: the CPU leaves reset at F000:FFF0 (Intel SDM vol. 3A
; 9.1.4), where a far jump enters real-mode code in segment F000 (the ROM's
; copy at 0xF0000). It programs COM1 (16550A at 0x3F8, 115200 8N1), prints
; a banner, then echoes every byte it receives in upper case, polling the
; line status register (PC16550D: LSR bit 0 data ready, bit 5 THR empty).
; 'q' prints "bye" and ends the machine through the isa-debug-exit port 0xF4
; with 0x2a (exit status 0x55).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0
%include "exit.inc"

start:
    cli
    mov ax, cs
    mov ds, ax
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    call serial_init
    mov si, banner
    call serial_puts
.next:
    mov dx, COM1 + 5
.idle:
    in al, dx
    test al, 0x01
    jz .idle
    mov dx, COM1
    in al, dx
    cmp al, 'q'
    je .quit
    cmp al, 'a'
    jb .echo
    cmp al, 'z'
    ja .echo
    sub al, 0x20
.echo:
    call serial_putc
    jmp .next
.quit:
    mov si, bye
    call serial_puts
    isa_debug_exit 0x2a

%include "serial.inc"

banner: db "Kumo echo ROM ready", 13, 10, 0
bye: db 13, 10, "bye", 13, 10, 0

    times 0xfff0 - ($ - $$) db 0
reset:
    jmp 0xf000:start        ; the reset vector
    times 0x10000 - ($ - $$) db 0
