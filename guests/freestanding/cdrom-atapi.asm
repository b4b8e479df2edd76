; An El Torito "no emulation" boot image for the ATAPI CD-ROM tests (issue
; 9): SeaBIOS found it through the ISO's boot catalog, loaded its 2048 bytes
; (load size 4 virtual sectors) to 0000:7C00 and jumped to it with DL = the
; CD's drive number. It reads its own ISO's sectors 16 (primary volume
; descriptor) and 17 (El Torito boot record) through INT 13h AH=42h (the
; BIOS's ATAPI driver, 2048-byte blocks), then drives the CD-ROM drive on
; the secondary channel (0x170/0x376, hdc) by hand with ATAPI packets
; (ATA/ATAPI-6 9.8, polled with nIEN set) and prints, one "name=hex" line
; each on the 0xE9 debug console: IDENTIFY PACKET DEVICE, TEST UNIT READY,
; REQUEST SENSE, INQUIRY, READ CAPACITY, READ(10) with three byte count
; limits (the DRQ blocks' lengths), errors and their sense, MODE SENSE,
; READ TOC, IDENTIFY DEVICE (aborted, signature) and SRST. It ends by
; writing 0x21 to the isa-debug-exit port 0xF4. The same ISO runs under
; qemu-system-i386 (the oracle) and Kumo, and the lines are compared
; (packages/toolstack/test/hvm-cdrom.test.ts).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"
%define ATA_CHANNEL 1

CMD equ ATA_BASE
BUF equ 0x8000

start:
    boot_sector_setup
    sti
    mov [drive], dl
    mov si, s_boot
    call puts
    mov al, [drive]
    call hex8
    call newline
    ; INT 13h AH=42h: LBA 16, the primary volume descriptor ("CD001", volume id at 40).
    mov dword [dap_lba], 16
    call bios_read
    mov si, s_pvd
    call puts
    mov si, BUF + 1
    mov cx, 5
    call putn
    mov al, ' '
    call putc
    mov si, BUF + 40
    mov cx, 7
    call putn
    call newline
    ; LBA 17: the boot record volume descriptor ("EL TORITO SPECIFICATION" at 7).
    mov dword [dap_lba], 17
    call bios_read
    mov si, s_brvd
    call puts
    mov si, BUF + 7
    mov cx, 23
    call putn
    call newline

    ; From here on the drive is driven by hand, polled: nIEN.
    cli
    mov dx, ATA_CONTROL
    mov al, 0x02
    out dx, al
    mov dx, CMD + 6
    mov al, 0xa0
    out dx, al
    call ata_wait_idle

    ; IDENTIFY PACKET DEVICE: status, word 0 (ATAPI, CD-ROM, removable, DRQ type).
    mov dx, CMD + 7
    mov al, 0xa1
    out dx, al
    call ata_wait_idle
    mov al, 'i'
    call ata_status_line
    mov di, BUF
    mov cx, 256
    mov dx, CMD
    rep insw
    mov si, s_w0
    call puts
    mov ax, [BUF]
    call hex16
    call newline

    mov si, p_tur
    mov bx, 0
    mov al, 't'
    call packet_line
    mov si, p_sense
    mov bx, 0x800
    mov al, 'q'
    call packet_line
    mov si, BUF
    mov cx, 14
    call dump
    mov si, p_inquiry
    mov bx, 0x800
    mov al, 'n'
    call packet_line
    mov si, BUF
    mov cx, 8
    call dump
    mov si, p_capacity
    mov bx, 0x800
    mov al, 'c'
    call packet_line
    mov si, BUF
    mov cx, 8
    call dump
    ; READ(10) of sector 16 with limits 2048, 512 and (two sectors) FFFFh.
    mov si, p_read16
    mov bx, 0x800
    mov al, 'r'
    call packet_line
    mov si, BUF + 1
    mov cx, 5
    call putn
    call newline
    mov si, p_read16
    mov bx, 0x200
    mov al, 'r'
    call packet_line
    mov byte [p_read16 + 8], 2
    mov si, p_read16
    mov bx, 0xffff
    mov al, 'r'
    call packet_line
    mov si, BUF + 2048 + 1
    mov cx, 5
    call putn
    call newline
    ; READ(10) at the capacity (one past the last sector): CHECK CONDITION, then its sense.
    mov si, p_capacity
    mov bx, 0x800
    mov al, 'c'
    call packet_line
    mov eax, [BUF]
    bswap eax
    inc eax
    bswap eax
    mov [p_readend + 2], eax
    mov si, p_readend
    mov bx, 0x800
    mov al, 'e'
    call packet_line
    call sense_line
    ; An operation code nobody implements.
    mov si, p_bad
    mov bx, 0x800
    mov al, 'u'
    call packet_line
    call sense_line
    ; MODE SENSE(10), page 2Ah: the header and the page code and length.
    mov si, p_mode
    mov bx, 0x800
    mov al, 'm'
    call packet_line
    mov si, BUF
    mov cx, 10
    call dump
    ; READ TOC, format 0, LBA addresses: track 1 and the lead-out.
    mov si, p_toc
    mov bx, 0x800
    mov al, 'o'
    call packet_line
    mov si, BUF
    mov cx, 20
    call dump

    ; IDENTIFY DEVICE on a packet device: ABRT and the signature.
    mov dx, CMD + 7
    mov al, 0xec
    out dx, al
    call ata_wait_idle
    mov al, 'a'
    call ata_status_line
    call sig_line
    ; Software reset: status and signature.
    call ata_soft_reset
    mov al, 'x'
    call ata_status_line
    call sig_line
    isa_debug_exit 0x21

bios_read:
    mov si, dap
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc .failed
    ret
.failed:
    mov si, s_failed
    call puts
    isa_debug_exit 0xee

; Sends the packet at SI with byte count limit BX, reads its data-in to BUF
; and prints "<AL>=status/error" then one " n=count" per DRQ block and the
; interrupt reason at the end.
packet_line:
    push ax
    mov dx, CMD + 1
    xor al, al
    out dx, al
    mov dx, CMD + 4
    mov al, bl
    out dx, al
    mov dx, CMD + 5
    mov al, bh
    out dx, al
    mov dx, CMD + 7
    mov al, 0xa0
    out dx, al
    call ata_wait_idle
    mov dx, CMD
    mov cx, 6
    rep outsw
    mov di, BUF
    mov si, s_blocks
.block:
    call ata_wait_idle
    test al, 0x08
    jz .end
    mov dx, CMD + 4
    in al, dx
    mov cl, al
    mov dx, CMD + 5
    in al, dx
    mov ch, al
    mov bx, cx
    mov dx, CMD + 2
    in al, dx
    mov [si], al
    mov [si + 1], bx
    add si, 3
    shr cx, 1
    mov dx, CMD
    rep insw
    jmp .block
.end:
    mov byte [si], 0xff
    pop ax
    call ata_status
    mov si, s_blocks
.print:
    cmp byte [si], 0xff
    je .reason
    mov al, ' '
    call putc
    mov al, [si]
    call hex8
    mov al, ':'
    call putc
    mov ax, [si + 1]
    call hex16
    add si, 3
    jmp .print
.reason:
    mov al, ' '
    call putc
    mov dx, CMD + 2
    in al, dx
    and al, 7
    call hex8
    jmp newline

; REQUEST SENSE and "k=" key/ASC/ASCQ.
sense_line:
    mov si, p_sense
    mov bx, 0x800
    mov al, 'k'
    call packet_line
    mov al, 'k'
    call put_key
    mov al, [BUF + 2]
    call hex8
    mov al, [BUF + 12]
    call hex8
    mov al, [BUF + 13]
    call hex8
    jmp newline

sig_line:
    mov si, s_sig
    call puts
    mov dx, CMD + 2
.reg:
    in al, dx
    call hex8
    inc dx
    cmp dx, CMD + 6
    jne .reg
    jmp newline

; CX bytes at SI as hex, then a newline.
dump:
    mov al, ' '
    call putc
.byte:
    lodsb
    call hex8
    loop .byte
    jmp newline

%include "ata.inc"

dap: edd_packet 1, BUF, 0, 16   ; 1 block: 2048 bytes on a CD
dap_lba equ dap + 8

; ATAPI command packets (12 bytes each).
p_tur:      db 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
p_sense:    db 0x03, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0
p_inquiry:  db 0x12, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0
p_capacity: db 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
p_read16:   db 0x28, 0, 0, 0, 0, 16, 0, 0, 1, 0, 0, 0
p_readend:  db 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
p_bad:      db 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
p_mode:     db 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 0x20, 0, 0, 0
p_toc:      db 0x43, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0

s_boot:   db "dl=", 0
s_pvd:    db "pvd=", 0
s_brvd:   db "brvd=", 0
s_w0:     db "w0=", 0
s_sig:    db "sig=", 0
s_failed: db "INT 13h read failed", 10, 0
drive:    db 0
s_blocks: times 3 * 8 + 1 db 0

times 2048 - ($ - $$) db 0
