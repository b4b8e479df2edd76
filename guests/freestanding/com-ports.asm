; COM2 and COM4 on the HVM PC, in real mode without firmware (Kumo loads
; the sector at 0000:7C00 as a BIOS would, no BIOS services needed):
; prints a line on COM2 by polling (the test reads it from the file behind
; COM2), then makes COM2 and COM4, which share ISA IRQ 3 (QEMU isa-serial's
; defaults: COM2 0x2F8, COM4 0x2E8), both raise their THR-empty interrupt
; at once and counts, in an interrupt handler that polls every port on the
; IRQ until a whole pass finds none pending (as Linux's
; drivers/tty/serial/8250/8250_core.c serial8250_interrupt does for ports
; sharing an edge-triggered ISA IRQ), how many each delivered. Reports
; "COM2=<n> COM4=<n>" on the debug console, then exits through
; isa-debug-exit with 0x10. Registers: PC16550D datasheet (IER base+1 bit
; 1 ETBEI, IIR base+2 bit 0 "no interrupt pending", MCR base+4 bit 3 OUT2,
; which gates the UART's interrupt onto the ISA line on a PC).
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

COM2 equ 0x2f8
COM4 equ 0x2e8

start:
    boot_sector_setup
    mov word [0x23 * 4], irq3_isr
    mov word [0x23 * 4 + 2], 0
    pic_init_real_mode
    mov al, 0xff
    out 0x21, al
    out 0xa1, al

    mov bx, COM2
    mov si, msg_com2
    call port_puts

    mov al, 0xf7            ; unmask IRQ 3 only
    out 0x21, al
    ; With interrupts off, both UARTs raise THRE (THR is empty): one line, two sources.
    mov dx, COM2 + 4
    mov al, 0x0b            ; DTR, RTS, OUT2
    out dx, al
    mov dx, COM4 + 4
    out dx, al
    mov dx, COM2 + 1
    mov al, 0x02            ; ETBEI
    out dx, al
    mov dx, COM4 + 1
    out dx, al
.wait:
    cli
    cmp byte [com2_hits], 0
    je .sleep
    cmp byte [com4_hits], 0
    jne .done
.sleep:
    sti
    hlt
    jmp .wait
.done:
    mov al, 0xff
    out 0x21, al
    mov si, msg_result
    call puts
    mov al, [com2_hits]
    add al, '0'
    call putc
    mov si, msg_com4
    call puts
    mov al, [com4_hits]
    add al, '0'
    call putc
    call newline
    isa_debug_exit 0x10

%include "uart.inc"

; service: if the UART at DX (its IIR) has an interrupt pending, counts it
; in [DI], turns its THRE interrupt off and sets CL. Clobbers AL, DX.
service:
    in al, dx               ; reading the IIR that reports THRE clears it
    test al, 0x01
    jnz .none
    inc byte [di]
    dec dx                  ; IER
    xor al, al
    out dx, al
    mov cl, 1
.none:
    ret

irq3_isr:
    push ax
    push cx
    push dx
    push di
.pass:
    xor cl, cl
    mov dx, COM2 + 2
    mov di, com2_hits
    call service
    mov dx, COM4 + 2
    mov di, com4_hits
    call service
    test cl, cl
    jnz .pass
    mov al, 0x20            ; non-specific EOI
    out 0x20, al
    pop di
    pop dx
    pop cx
    pop ax
    iret

%include "debugcon.inc"

msg_com2: db "hello from COM2", 13, 10, 0
msg_result: db "COM2=", 0
msg_com4: db " COM4=", 0
com2_hits: db 0
com4_hits: db 0

    boot_signature
