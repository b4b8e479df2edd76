; An MBR boot sector that probes QEMU's firmware configuration device
; (fw_cfg, QEMU docs/specs/fw_cfg.rst) through its I/O ports and its DMA
; interface and prints one "name=hex" line per probe on the 0xE9 debug
; console, then exits through port 0xF4. SeaBIOS boots the same disk image
; under QEMU (the oracle) and under Kumo, and the lines are compared
; (packages/toolstack/test/hvm-fw-cfg-oracle.test.ts). Only what does not
; depend on the machine's contents is printed: the signature and ID, items
; both machines fill the same way for one CPU, reads past an item's end,
; the widths the ports answer, and DMA transfers (select, read, skip,
; write, errors) with their control words.
; Assemble: nasm -f bin -i guests/freestanding/lib/. Needs a 486 (BSWAP).
bits 16
org 0x7c00
%include "boot.inc"
%include "exit.inc"

FW_CFG_CTL equ 0x510
FW_CFG_DATA equ 0x511
FW_CFG_DMA equ 0x514
; FWCfgDmaAccess { be32 control; be32 length; be64 address } and the buffer.
ACCESS equ 0x600
BUFFER equ 0x700

start:
    boot_sector_setup
    ; Items through the data port: key, byte count, line letter.
    mov si, items
.item:
    lodsw
    cmp ax, 0xffff
    je .items_done
    mov dx, FW_CFG_CTL
    out dx, ax
    lodsw
    mov cl, al
    mov al, ah
    call put_key
    mov dx, FW_CFG_DATA
.byte:
    in al, dx
    call hex8
    dec cl
    jnz .byte
    call newline
    jmp .item
.items_done:
    ; w: the widths of the selector/data ports (signature selected): an
    ; 8-bit read at 0x510, 16-bit reads at 0x510 and 0x511, then the next byte.
    xor ax, ax
    mov dx, FW_CFG_CTL
    out dx, ax
    mov al, 'w'
    call put_key
    in al, dx
    call hex8
    in ax, dx
    call hex16
    inc dx
    in ax, dx
    call hex16
    in al, dx
    call hex8
    call newline
    ; v: the DMA ports' bytes 0x514-0x51C, then 32-bit reads at 0x514 and 0x518.
    mov al, 'v'
    call put_key
    mov dx, FW_CFG_DMA
    mov cx, 9
.dma_byte:
    in al, dx
    call hex8
    inc dx
    loop .dma_byte
    mov dx, FW_CFG_DMA
    in eax, dx
    call hex32
    mov dl, FW_CFG_DMA + 4 - 0x500
    in eax, dx
    call hex32
    call newline
    ; DMA transfers: letter, control, length, address, high half of the access's address.
    mov si, transfers
.transfer:
    lodsb
    test al, al
    jz .exit
    call put_key
    ; The buffer starts as AAh bytes; the access is written big-endian.
    mov di, BUFFER
    mov cx, 8
    mov al, 0xaa
    rep stosb
    lodsd
    bswap eax
    mov [ACCESS], eax
    xor eax, eax
    lodsb
    bswap eax
    mov [ACCESS + 4], eax
    xor eax, eax
    mov [ACCESS + 8], eax
    ; The buffer's address: its high 16 bits, or 0 for BUFFER.
    lodsw
    shl eax, 16
    jnz .far
    mov ax, BUFFER
.far:
    bswap eax
    mov [ACCESS + 12], eax
    ; The high half of the access's address (fw_cfg keeps it until the low half starts a transfer).
    xor eax, eax
    lodsb
    mov dx, FW_CFG_DMA
    test al, al
    jz .low
    bswap eax
    out dx, eax
.low:
    mov eax, ACCESS
    bswap eax
    mov dl, FW_CFG_DMA + 4 - 0x500
    out dx, eax
    mov eax, [ACCESS]
    bswap eax
    call hex32
    mov al, ':'
    call putc
    push si
    mov si, BUFFER
    mov cx, 8
.buffer:
    lodsb
    call hex8
    loop .buffer
    ; And the data port's next byte: where the item's offset stands.
    mov al, ':'
    call putc
    mov dx, FW_CFG_DATA
    in al, dx
    call hex8
    call newline
    pop si
    jmp .transfer
.exit:
    isa_debug_exit 0x31

; hex32: EAX as eight hex digits. Clobbers AL.
hex32:
    push eax
    shr eax, 16
    call hex16
    pop eax
    jmp hex16

%include "debugcon.inc"

; Signature (6 bytes: 2 past its end), ID, the obsolete write-channel bit
; ignored, a key with nothing, CPUs present and the APIC ID limit, NUMA
; (a zero node count), boot menu off, graphics on, IRQ0 override.
items:
    dw 0x0000, 'a' << 8 | 6
    dw 0x0001, 'b' << 8 | 4
    dw 0x4000, 'c' << 8 | 2
    dw 0x7fff, 'd' << 8 | 2
    dw 0x0005, 'e' << 8 | 4
    dw 0x000f, 'f' << 8 | 4
    dw 0x000d, 'g' << 8 | 8
    dw 0x000e, 'h' << 8 | 2
    dw 0x0004, 'i' << 8 | 2
    dw 0x8002, 'j' << 8 | 4
    dw 0xffff

; Control: key << 16 | write 10h | select 08h | skip 04h | read 02h; the
; length; the buffer's address >> 16 (0: BUFFER); the access's high half.
%macro transfer 5
    db %1
    dd %2
    db %3
    dw %4
    db %5
%endmacro
transfers:
    transfer 'k', 0x0000000a, 8, 0, 0         ; select the signature, read 8: 4 bytes and zeros
    transfer 'l', 0x0001000c, 1, 0, 0         ; select the ID, skip 1
    transfer 'm', 0x00000002, 2, 0, 0         ; read on: 2 bytes
    transfer 'n', 0x00000018, 4, 0, 0         ; write the signature: an error
    transfer 'o', 0x0000001a, 4, 0, 0         ; read and write: a read
    transfer 'p', 0x00010008, 4, 0, 0         ; select only: nothing moves
    transfer 'q', 0x0000000a, 4, 0xe000, 0    ; a buffer at 0xE0000000, where nothing is: an error
    transfer 'r', 0x0000000a, 4, 0, 1         ; the access above 4 GiB: not run
    transfer 's', 0x0000000a, 0, 0, 0         ; length 0
    transfer 't', 0x0019000c, 8, 0, 0         ; the file directory: skip the count and a size
                                              ; (the port reads the first selector's high byte),
    transfer 'u', 0x00000002, 3, 0, 0         ; read its low byte and reserved; the port then reads
                                              ; the first name's "b" (QEMU's "bios-geometry",
                                              ; Kumo's "bootorder")
    transfer 'x', 0x7fff000a, 4, 0, 0         ; a key with nothing: zeros
    db 0
boot_signature
