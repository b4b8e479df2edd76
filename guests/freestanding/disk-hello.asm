; A hard disk's MBR boot sector for the IDE/SeaBIOS test (issue 9): the
; BIOS loaded it from LBA 0 of the IDE primary master to 0000:7C00 and
; jumped to it with DL = the boot drive (0x80). It prints a line on COM1
; and the 0xE9 debug console, reads LBA 1 through INT 13h AH=42h (EDD,
; the BIOS's own ATA driver) to prove the disk works past the boot sector,
; prints that sector's text, then writes 0x40 | (DL & 0x0F) to the
; isa-debug-exit port 0xF4 (0x40 for drive 0x80: status (0x40 << 1) | 1 = 129,
; which fits the 8 bits of a process exit status).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

start:
    boot_sector_setup
    sti
    mov [drive], dl
    mov si, hello
    call serial_debugcon_puts
    ; INT 13h AH=42h: extended read of 1 sector at LBA 1 to 0000:7E00.
    mov si, packet
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc .failed
    mov si, 0x7e00
    call serial_debugcon_puts
    mov al, [drive]
    and al, 0x0f
    or al, 0x40
    isa_debug_exit
.failed:
    mov si, failed
    call serial_debugcon_puts
    isa_debug_exit 0xee

%include "serial.inc"

packet: edd_packet 1, 0x7e00, 0, 1
drive: db 0
hello: db "Kumo IDE boot sector", 13, 10, 0
failed: db "INT 13h read failed", 13, 10, 0
boot_signature
; LBA 1: the text the boot sector reads back through the BIOS.
db "Sector 1 read through INT 13h", 13, 10, 0
times 1024 - ($ - $$) db 0
