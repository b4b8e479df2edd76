; An MBR boot sector that drives the IDE primary master by hand (ATA/ATAPI-6
; PIO protocols) and prints what the device answered on the 0xE9 debug
; console, one "name=hex" line each, then exits through port 0xF4. The same
; disk image is booted by SeaBIOS under QEMU (the oracle) and under Kumo,
; and the lines are compared (packages/toolstack/test/hvm-ide-oracle.test.ts).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

start:
    boot_sector_setup
    ; nIEN: poll, no interrupts (the BIOS's handler is not ours to disturb).
    mov dx, ATA_CONTROL
    mov al, 0x02
    out dx, al
    mov di, 0x8000
    call ata_identify
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
    call ata_status_line
    ; IDENTIFY PACKET DEVICE: an ATA device aborts it.
    mov dx, ATA_BASE + 7
    mov al, 0xa1
    out dx, al
    call ata_wait_idle
    mov al, 'p'
    call ata_status_line
    ; SET FEATURES: set transfer mode PIO 4 (03h, count 0Ch).
    mov dx, ATA_BASE + 1
    mov al, 0x03
    out dx, al
    mov dx, ATA_BASE + 2
    mov al, 0x0c
    out dx, al
    mov dx, ATA_BASE + 7
    mov al, 0xef
    out dx, al
    call ata_wait_idle
    mov al, 'f'
    call ata_status_line
    ; READ SECTORS past the end (LBA 0x0FFFFFF0): IDNF.
    mov eax, 0x0ffffff0
    mov cl, 1
    mov bl, 0x20
    call ata_command_lba28
    call ata_wait_idle
    mov al, 'r'
    call ata_status_line
    ; Software reset: the ATA signature in the task file.
    call ata_soft_reset
    mov al, 'x'
    call ata_status_line
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
    isa_debug_exit 0x21

%include "ata.inc"

; IDENTIFY words compared with QEMU: word 0, the CHS geometry (1, 3, 6,
; 54-58), READ/WRITE MULTIPLE (47), the LBA28 and LBA48 capacities.
words: db 0, 1, 3, 6, 47, 54, 55, 56, 57, 58, 60, 61, 100, 101, 102, 103, 0xff
; Task-file registers after SRST: sector count, LBA low/mid/high, device.
sigregs: db 0xf2, 0xf3, 0xf4, 0xf5, 0
boot_signature
