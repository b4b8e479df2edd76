; A 64 KiB "firmware" ROM for the tests of serial ports and the debug
; console behind files (xl.cfg serial = [ "pty", "file:..." ], debugcon =
; "file:..."): the CPU leaves reset at F000:FFF0 (Intel SDM vol. 3A 9.1.4),
; where a far jump enters real-mode code in segment F000. It prints a line
; on COM1, one on COM2 (0x2F8, QEMU isa-serial's second port), polling
; LSR.THRE (PC16550D: LSR bit 5), and one on the debug console port 0xE9,
; then ends the machine through isa-debug-exit (port 0xF4) with 0x21 (exit
; status 0x43).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0
%include "exit.inc"

COM2 equ 0x2f8

start:
    cli
    mov ax, cs
    mov ds, ax
    mov bx, COM1
    mov si, msg_com1
    call port_puts
    mov bx, COM2
    mov si, msg_com2
    call port_puts
    mov si, msg_debugcon
.debugcon:
    lodsb
    test al, al
    jz .exit
    out DEBUGCON_PORT, al
    jmp .debugcon
.exit:
    isa_debug_exit 0x21

%include "uart.inc"

msg_com1: db "ROM on COM1", 13, 10, 0
msg_com2: db "ROM on COM2", 13, 10, 0
msg_debugcon: db "ROM on debugcon", 10, 0

    times 0xfff0 - ($ - $$) db 0
reset:
    jmp 0xf000:start        ; the reset vector
    times 0x10000 - ($ - $$) db 0
