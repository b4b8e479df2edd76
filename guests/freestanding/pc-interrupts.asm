; A boot sector that exercises the PC's interrupt hardware in real mode, with
; no BIOS: it fills its own interrupt vectors, programs the 8259A pair as a
; PC BIOS does but with vectors 0x20-0x2F, then waits (HLT) for
;   - ten 8254 PIT counter 0 interrupts (mode 2, 100 Hz) on IRQ 0,
;   - sixteen MC146818 RTC periodic interrupts (1024 Hz) on IRQ 8 through the
;     cascade on IRQ 2, each acknowledged by reading register C,
;   - two 16550A "transmitter holding register empty" interrupts on IRQ 4
;     (IER bit 1 with MCR.OUT2; the IIR read clears one, a new byte makes the next),
; prints a line per device on COM1 and the 0xE9 debug console, and ends the
; machine through the isa-debug-exit port 0xF4 with 0x10 (exit status 0x21).
; Sources: Intel 8259A and 8254 datasheets, MC146818A datasheet (registers
; A-C), PC16550D datasheet (IER, IIR, MCR).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

start:
    boot_sector_setup
    ; Interrupt vectors (real-mode IVT at 0: offset, segment).
    mov word [0x20 * 4], pit_isr
    mov word [0x20 * 4 + 2], 0
    mov word [0x24 * 4], uart_isr
    mov word [0x24 * 4 + 2], 0
    mov word [0x28 * 4], rtc_isr
    mov word [0x28 * 4 + 2], 0
    pic_init_real_mode
    mov al, 0xff            ; OCW1: everything masked for now
    out 0x21, al
    out 0xa1, al
    ; COM1: 115200 8N1, FIFOs on (FCR).
    call serial_init
    mov dx, COM1 + 2
    mov al, 0x07
    out dx, al
    mov si, msg_start
    call serial_debugcon_puts

    ; --- 8254: counter 0, LSB then MSB, mode 2, 11932 = 100 Hz.
    mov al, 0x34
    out 0x43, al
    mov ax, 11932
    out 0x40, al
    mov al, ah
    out 0x40, al
    mov al, 0xfe            ; unmask IRQ 0
    out 0x21, al
    sti
.pit_wait:
    hlt
    cmp word [pit_ticks], 10
    jb .pit_wait
    cli
    mov al, 0xff
    out 0x21, al
    mov si, msg_pit
    call serial_debugcon_puts

    ; --- RTC: register A rate 6 (1024 Hz), register B PIE; read C to start clean.
    mov al, 0x0a
    out 0x70, al
    mov al, 0x26
    out 0x71, al
    mov al, 0x0b
    out 0x70, al
    in al, 0x71
    or al, 0x40
    mov ah, al
    mov al, 0x0b
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov al, 0x0c
    out 0x70, al
    in al, 0x71
    mov al, 0xfb            ; unmask the cascade (IRQ 2) on the master
    out 0x21, al
    mov al, 0xfe            ; and IRQ 8 on the slave
    out 0xa1, al
    sti
.rtc_wait:
    hlt
    cmp word [rtc_ticks], 16
    jb .rtc_wait
    cli
    mov al, 0x0b            ; PIE off again
    out 0x70, al
    in al, 0x71
    and al, 0xbf
    mov ah, al
    mov al, 0x0b
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov al, 0xff
    out 0x21, al
    out 0xa1, al
    mov si, msg_rtc
    call serial_debugcon_puts

    ; --- 16550A: MCR DTR | RTS | OUT2 (the PC's IRQ gate), IER THRE.
    mov al, 0xef            ; unmask IRQ 4
    out 0x21, al
    mov dx, COM1 + 4
    mov al, 0x0b
    out dx, al
    mov dx, COM1 + 1
    mov al, 0x02
    out dx, al
    ; The first interrupt may come before any HLT: test with IF clear, then STI; HLT
    ; (STI's one-instruction shadow keeps an interrupt from slipping in before the HLT).
.uart_wait1:
    cli
    cmp word [uart_ticks], 1
    jae .uart_sent
    sti
    hlt
    jmp .uart_wait1
.uart_sent:
    mov dx, COM1            ; a byte to send: THR empties again, a second interrupt
    mov al, '*'
    out dx, al
.uart_wait2:
    cli
    cmp word [uart_ticks], 2
    jae .uart_done
    sti
    hlt
    jmp .uart_wait2
.uart_done:
    mov dx, COM1 + 1
    xor al, al
    out dx, al
    mov al, 0xff
    out 0x21, al
    mov si, msg_uart
    call serial_debugcon_puts

    isa_debug_exit 0x10

%include "serial.inc"

pit_isr:
    push ax
    inc word [pit_ticks]
    mov al, 0x20            ; non-specific EOI
    out 0x20, al
    pop ax
    iret

rtc_isr:
    push ax
    mov al, 0x0c            ; reading register C acknowledges the RTC
    out 0x70, al
    in al, 0x71
    test al, 0x40
    jz .not_periodic
    inc word [rtc_ticks]
.not_periodic:
    mov al, 0x20
    out 0xa0, al
    out 0x20, al
    pop ax
    iret

uart_isr:
    push ax
    push dx
    mov dx, COM1 + 2        ; IIR: 0x02 (with FIFO bits 0xc0) is THRE, and reading it clears that source
    in al, dx
    and al, 0x0f
    cmp al, 0x02
    jne .other
    inc word [uart_ticks]
.other:
    mov al, 0x20
    out 0x20, al
    pop dx
    pop ax
    iret

pit_ticks: dw 0
rtc_ticks: dw 0
uart_ticks: dw 0
msg_start: db "PC IRQ test", 13, 10, 0
msg_pit: db "PIT: 10 IRQ 0", 13, 10, 0
msg_rtc: db "RTC: 16 IRQ 8", 13, 10, 0
msg_uart: db 13, 10, "UART: 2 IRQ 4", 13, 10, 0
boot_signature
