; An MBR that drives the PIIX3 IDE bus master (82371SB 2.7: BMICOM,
; BMISTA, BMIDTP in BAR 4; PRD tables of 32-bit address, byte count and
; EOT) by hand after SeaBIOS booted it, with the disk on the primary
; master and a CD-ROM on the secondary master. The boot sector loads the
; rest (LBA 1-4) through INT 13h; the test data is at LBA 8-10. Polled with
; nIEN set, so BMISTA's interrupt bit stays clear, as on QEMU. It prints one
; "name=hex" line per step on the 0xE9 debug console: READ DMA into two PRD regions,
; a PRD table longer than the transfer (Active stays set), one too short
; (no transfer, no interrupt), WRITE DMA read back by PIO, and an ATAPI
; READ(10) by DMA (PACKET with features bit 0). It ends by writing 0x21 to
; the isa-debug-exit port 0xF4. The same disk and ISO run under
; qemu-system-i386 (the oracle) and on Kumo, and the lines are compared
; (packages/toolstack/test/hvm-ide-dma.test.ts).
; Assemble: nasm -f bin -i guests/freestanding/lib/.
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

PRD equ 0x9000
BUF1 equ 0x1000     ; segment 0x1000 = linear 0x10000
BUF2 equ 0x2000     ; linear 0x20000

start:
    boot_sector_setup
    sti
    ; The rest of the program: LBA 1-4 to 0000:7E00 through INT 13h AH=42h.
    mov si, dap
    mov ah, 0x42
    int 0x13
    jc .failed
    jmp main
.failed:
    isa_debug_exit 0xee

dap: edd_packet 4, 0x7e00, 0, 1
boot_signature

main:
    cli
    ; nIEN on both channels: polled.
    mov dx, 0x3f6
    mov al, 0x02
    out dx, al
    mov dx, 0x376
    out dx, al
    ; PCI 00:01.1: BAR 4 and the command register (I/O and bus master on).
    mov eax, 0x88000920
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    and ax, 0xfff0
    mov [bmiba], ax
    mov eax, 0x88000904
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in ax, dx
    or ax, 0x0005
    out dx, ax
    mov al, 'b'
    call put_key
    mov ax, [bmiba]
    test ax, ax
    setnz al
    call hex8
    call newline

    ; IDENTIFY DEVICE: DMA supported (word 49 bit 8), multiword modes (word 63 bits 2:0).
    mov di, 0x8800
    call ata_identify
    mov al, 'w'
    call put_key
    mov ax, [0x8800 + 98]
    and ax, 0x0100
    call hex16
    mov al, ' '
    call putc
    mov ax, [0x8800 + 126]
    and ax, 0x0007
    call hex16
    call newline

    ; READ DMA, LBA 8, 2 sectors, into two 512-byte regions (EOT on the second).
    call fill_buffers
    mov dword [PRD], 0x10000
    mov dword [PRD + 4], 512
    mov dword [PRD + 8], 0x20000
    mov dword [PRD + 12], 0x88000000 | 512
    mov bl, 0xc8
    mov cl, 2
    mov si, 8
    call dma_ata
    mov al, 'r'
    call result_line
    mov ax, BUF1
    call show_buffer
    mov ax, BUF2
    call show_buffer

    ; A PRD region of 4096 bytes for 1 sector: Active stays set at the end.
    call fill_buffers
    mov dword [PRD], 0x10000
    mov dword [PRD + 4], 0x88000000 | 4096
    mov bl, 0xc8
    mov cl, 1
    mov si, 9
    call dma_ata
    mov al, 'l'
    call result_line
    mov ax, BUF1
    call show_buffer

    ; A PRD table of 512 bytes for 2 sectors: nothing moves, Active clears, no interrupt.
    call fill_buffers
    mov dword [PRD], 0x10000
    mov dword [PRD + 4], 0x88000000 | 512
    mov bl, 0xc8
    mov cl, 2
    mov si, 8
    call dma_ata
    mov al, 's'
    call result_line
    mov ax, BUF1
    call show_buffer

    ; WRITE DMA of 1 sector (0x5A5A...) to LBA 12, then READ SECTORS by PIO.
    push es
    mov ax, BUF1
    mov es, ax
    xor di, di
    mov ax, 0x5a5a
    mov cx, 256
    rep stosw
    pop es
    mov dword [PRD], 0x10000
    mov dword [PRD + 4], 0x88000000 | 512
    mov bl, 0xca
    mov cl, 1
    mov si, 12
    call dma_ata
    mov al, 'v'
    call result_line
    mov eax, 12
    mov cl, 1
    mov bl, 0x20
    call ata_command_lba28
    mov di, 0x8800
    call ata_pio_in
    mov al, 'p'
    call put_key
    mov ax, [0x8800]
    call hex16
    mov ax, [0x8800 + 510]
    call hex16
    call newline

    ; ATAPI READ(10) of LBA 16 by DMA on the secondary channel.
    call fill_buffers
    mov dword [PRD], 0x10000
    mov dword [PRD + 4], 0x88000000 | 2048
    mov dx, [bmiba]
    add dx, 8
    call bm_prepare
    mov dx, 0x176
    mov al, 0xa0
    out dx, al
    mov dx, 0x177
    call ata_wait_bsy
    mov dx, 0x171
    mov al, 1               ; DMA
    out dx, al
    mov dx, 0x174
    xor al, al
    out dx, al
    mov dx, 0x175
    mov al, 0x08
    out dx, al
    mov dx, 0x177
    mov al, 0xa0
    out dx, al
    mov dx, 0x177
    call ata_wait_bsy
    mov si, p_read16
    mov dx, 0x170
    mov cx, 6
    rep outsw
    mov dx, [bmiba]
    add dx, 8
    call bm_run
    mov al, 'c'
    call put_key
    mov al, [bmsta]
    call hex8
    mov al, ' '
    call putc
    mov dx, 0x177
    in al, dx
    call hex8
    mov al, ' '
    call putc
    mov dx, 0x172
    in al, dx
    and al, 7
    call hex8
    mov al, ' '
    call putc
    push ds
    mov ax, BUF1
    mov ds, ax
    mov si, 1
    mov cx, 5
    call putn
    pop ds
    call newline

    isa_debug_exit 0x21

; Fills both buffers with 0xEE.
fill_buffers:
    push es
    mov ax, BUF1
    mov es, ax
    xor di, di
    mov al, 0xee
    mov cx, 4096
    rep stosb
    mov ax, BUF2
    mov es, ax
    xor di, di
    mov cx, 512
    rep stosb
    pop es
    ret

; BMIDTP = PRD, BMISTA: clear interrupt and error; DX = the channel's BMICOM port.
bm_prepare:
    mov [bmport], dx
    xor al, al
    out dx, al
    add dx, 2
    mov al, 0x06
    out dx, al
    add dx, 2
    mov eax, PRD
    out dx, eax
    ret

; Starts the bus master (direction from the command), waits for the interrupt
; bit or Active clear (bounded), keeps BMISTA in [bmsta], stops it.
bm_run:
    mov dx, [bmport]
    mov al, [bmdir]
    or al, 1
    out dx, al
    add dx, 2
    mov ecx, 0x100000
.poll:
    in al, dx
    test al, 0x04
    jnz .done
    test al, 0x01
    jz .done
    dec ecx
    jnz .poll
.done:
    in al, dx
    mov [bmsta], al
    sub dx, 2
    xor al, al
    out dx, al
    ret

; BL = command (C8h READ DMA / CAh WRITE DMA), CL = sectors, SI = LBA.
dma_ata:
    mov byte [bmdir], 0x08
    cmp bl, 0xca
    jne .read
    mov byte [bmdir], 0x00
.read:
    mov dx, [bmiba]
    call bm_prepare
    movzx eax, si
    call ata_command_lba28
    jmp bm_run

; "<AL>=" BMISTA, the drive's status and error.
result_line:
    call put_key
    mov al, [bmsta]
    call hex8
    mov al, ' '
    call putc
    call ata_wait_idle
    call hex8
    mov al, '/'
    call putc
    mov dx, 0x1f1
    in al, dx
    call hex8
    jmp newline

; First and last bytes of the 512 at segment AX: " xx..yy".
show_buffer:
    push ds
    mov ds, ax
    mov al, [0]
    mov ah, [1]
    mov bl, [511]
    pop ds
    push bx
    push ax
    mov al, ' '
    call putc
    pop ax
    call hex16
    pop ax
    call hex8
    jmp newline

%include "ata.inc"

p_read16: db 0x28, 0, 0, 0, 0, 16, 0, 0, 1, 0, 0, 0
bmiba:  dw 0
bmport: dw 0
bmdir:  db 0
bmsta:  db 0

times 8 * 512 - ($ - $$) db 0
; LBA 8 to 10: known bytes for READ DMA.
times 512 db 0x11
times 511 db 0x22
db 0x2f
times 512 db 0x33
