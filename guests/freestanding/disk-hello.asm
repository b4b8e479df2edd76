; A hard disk's MBR boot sector for the IDE/SeaBIOS test (issue 9): the
; BIOS loaded it from LBA 0 of the IDE primary master to 0000:7C00 and
; jumped to it with DL = the boot drive (0x80). It prints a line on COM1
; and the 0xE9 debug console, reads LBA 1 through INT 13h AH=42h (EDD,
; the BIOS's own ATA driver) to prove the disk works past the boot sector,
; prints that sector's text, then writes 0x40 | (DL & 0x0F) to the
; isa-debug-exit port 0xF4 (0x40 for drive 0x80: status (0x40 << 1) | 1 = 129,
; which fits the 8 bits of a process exit status).
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov [drive], dl
    mov si, hello
    call print
    ; INT 13h AH=42h: extended read of 1 sector at LBA 1 to 0000:7E00.
    mov si, packet
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc .failed
    mov si, 0x7e00
    call print
    mov al, [drive]
    and al, 0x0f
    or al, 0x40
    out 0xf4, al
    jmp .halt
.failed:
    mov si, failed
    call print
    mov al, 0xee
    out 0xf4, al
.halt:
    hlt
    jmp .halt

; Prints the NUL-terminated string at DS:SI on COM1 (polling LSR THRE) and port 0xE9.
print:
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    mov bl, al
    mov dx, 0x3fd
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov al, bl
    mov dx, 0x3f8
    out dx, al
    jmp print
.done:
    ret

packet:
    db 0x10, 0          ; size, reserved
    dw 1                ; sectors
    dw 0x7e00, 0        ; buffer offset, segment
    dq 1                ; LBA
drive: db 0
hello: db "Kumo IDE boot sector", 13, 10, 0
failed: db "INT 13h read failed", 13, 10, 0

times 510 - ($ - $$) db 0
dw 0xaa55
; LBA 1: the text the boot sector reads back through the BIOS.
db "Sector 1 read through INT 13h", 13, 10, 0
times 1024 - ($ - $$) db 0
