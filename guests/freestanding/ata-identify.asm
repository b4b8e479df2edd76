; An MBR boot sector that drives the IDE primary master by hand (ATA/ATAPI-6
; PIO protocols) and prints what the device answered on the 0xE9 debug
; console, one "name=hex" line each, then exits through port 0xF4. The same
; disk image is booted by SeaBIOS under QEMU (the oracle) and under Kumo,
; and the lines are compared (packages/toolstack/test/hvm-ide-oracle.test.ts).
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    ; nIEN: poll, no interrupts (the BIOS's handler is not ours to disturb).
    mov dx, 0x3f6
    mov al, 0x02
    out dx, al
    ; IDENTIFY DEVICE on device 0.
    mov dx, 0x1f6
    mov al, 0xa0
    out dx, al
    mov dx, 0x1f7
    mov al, 0xec
    out dx, al
    call wait_drq
    mov di, 0x8000
    mov cx, 256
    mov dx, 0x1f0
    rep insw
    mov si, words
.word:
    lodsb
    cmp al, 0xff
    je .words_done
    mov ah, 0
    mov bx, ax
    mov al, 'w'
    call putc
    mov ax, bx
    call hex8
    mov al, '='
    call putc
    shl bx, 1
    mov ax, [0x8000 + bx]
    call hex16
    call newline
    jmp .word
.words_done:
    mov al, 's'
    call status_line
    ; IDENTIFY PACKET DEVICE: an ATA device aborts it.
    mov dx, 0x1f7
    mov al, 0xa1
    out dx, al
    call wait_idle
    mov al, 'p'
    call status_line
    ; SET FEATURES: set transfer mode PIO 4 (03h, count 0Ch).
    mov dx, 0x1f1
    mov al, 0x03
    out dx, al
    mov dx, 0x1f2
    mov al, 0x0c
    out dx, al
    mov dx, 0x1f7
    mov al, 0xef
    out dx, al
    call wait_idle
    mov al, 'f'
    call status_line
    ; READ SECTORS past the end (LBA 0x0FFFFFF0): IDNF.
    mov dx, 0x1f2
    mov al, 1
    out dx, al
    mov dx, 0x1f3
    mov al, 0xf0
    out dx, al
    mov dx, 0x1f4
    mov al, 0xff
    out dx, al
    mov dx, 0x1f5
    out dx, al
    mov dx, 0x1f6
    mov al, 0xef
    out dx, al
    mov dx, 0x1f7
    mov al, 0x20
    out dx, al
    call wait_idle
    mov al, 'r'
    call status_line
    ; Software reset: the ATA signature in the task file.
    mov dx, 0x3f6
    mov al, 0x06
    out dx, al
    mov al, 0x02
    out dx, al
    call wait_idle
    mov al, 'x'
    call status_line
    mov si, sigregs
.sig:
    lodsb
    test al, al
    jz .exit
    mov dl, al
    mov dh, 0x01
    mov al, 'g'
    call putc
    mov al, dl
    call hex8
    mov al, '='
    call putc
    in al, dx
    call hex8
    call newline
    jmp .sig
.exit:
    mov al, 0x21
    out 0xf4, al
.halt:
    hlt
    jmp .halt

; "<letter>" then status=.. error=..
status_line:
    call putc
    mov al, '='
    call putc
    mov dx, 0x1f7
    in al, dx
    call hex8
    mov al, '/'
    call putc
    mov dx, 0x1f1
    in al, dx
    call hex8
    jmp newline

wait_drq:
    mov dx, 0x1f7
.loop:
    in al, dx
    test al, 0x80
    jnz .loop
    test al, 0x09
    jz .loop
    ret

wait_idle:
    mov dx, 0x1f7
.loop:
    in al, dx
    test al, 0x80
    jnz .loop
    ret

hex16:
    push ax
    mov al, ah
    call hex8
    pop ax
hex8:
    push ax
    shr al, 4
    call nibble
    pop ax
nibble:
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe putc
    add al, 7
putc:
    out 0xe9, al
    ret
newline:
    mov al, 10
    jmp putc

; IDENTIFY words compared with QEMU: word 0, the CHS geometry (1, 3, 6,
; 54-58), READ/WRITE MULTIPLE (47), the LBA28 and LBA48 capacities.
words: db 0, 1, 3, 6, 47, 54, 55, 56, 57, 58, 60, 61, 100, 101, 102, 103, 0xff
; Task-file registers after SRST: sector count, LBA low/mid/high, device.
sigregs: db 0xf2, 0xf3, 0xf4, 0xf5, 0
times 510 - ($ - $$) db 0
dw 0xaa55
