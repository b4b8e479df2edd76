; A tiny real-mode program for examples/bare-cpu: programs COM1 (16550 at
; 0x3F8) for 115200 8N1, prints a line through it, polling LSR.THRE before
; each byte (PC16550D datasheet, line status register bit 5), then halts.
; Assemble: nasm -f bin hello.asm -o hello.bin (loaded at 0000:7C00).
bits 16
org 0x7c00

COM1 equ 0x3f8

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov dx, COM1 + 3        ; LCR: DLAB on to reach the divisor latch
    mov al, 0x80
    out dx, al
    mov dx, COM1            ; DLL = 1, DLM = 0: 115200 baud
    mov al, 1
    out dx, al
    inc dx
    xor al, al
    out dx, al
    mov dx, COM1 + 3        ; LCR: 8 data bits, no parity, 1 stop bit, DLAB off
    mov al, 0x03
    out dx, al
    mov si, message
.next:
    lodsb
    test al, al
    jz .done
    mov ah, al
.wait:
    mov dx, COM1 + 5        ; LSR
    in al, dx
    test al, 0x20           ; THRE: the holding register takes a byte
    jz .wait
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp .next
.done:
    hlt
    jmp .done

message:
    db "Hello from real mode, through a 16550 UART", 13, 10, 0
