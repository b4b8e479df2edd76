; The 4-level paging probe for the x86 oracle test (x86-oracle.test.ts), the
; long-mode sibling of x86-paging.asm. QEMU loads it as a multiboot kernel;
; it enters long mode once on its own tables (identity map of the first
; 32 MiB through PML4[0]) and then, for each scenario, writes the scenario's
; entries, hooks its identity PDPT into slot 0 of the scenario's PML4, sets
; CR0.WP / CR4.SMEP / CR4.SMAP / CR4.PGE / EFER.NXE, switches CR3, performs one
; read, write or fetch at ring 0 or ring 3 and reports through port 0xE9.
; Back on its own CR3 with CR4.PGE toggled (a full TLB flush) it reports the
; entries and clears them.
;
; Scenario and report formats are those of x86-paging.asm, with the mode word
; 2, the virtual address as two dwords (low, high) and CR2 reported as two
; dwords: index, status, value, cr2 low, cr2 high, written frame, count, entries.

BITS 32
ORG 0x100000

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010003
BOOT_PML4 equ 0x300000
BOOT_PDPT equ 0x301000
BOOT_PD equ 0x302000
BOOT_PT equ 0x303000                ; two tables: 0x303000 and 0x304000

header:
  dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
  dd header, header, 0, 0, start

start:
  cli
  mov esp, stack_top
  mov eax, [ebx + 24]
  mov esi, [eax]
  mov [cursor], esi
  mov eax, [eax + 4]
  mov [mod_end], eax

  ; Markers in every data frame: "mov eax, frame; ret", the frame at +1.
  mov edi, 0x600000
.mark:
  mov byte [edi], 0xB8
  mov [edi + 1], edi
  mov byte [edi + 5], 0xC3
  mov dword [edi + 8], 0
  add edi, 4096
  cmp edi, 0x2000000
  jb .mark

  ; Identity tables: PML4[0] -> PDPT[0] -> PD; PD[0..1] -> 4 KiB tables
  ; (supervisor, except the ring-3 stub and stack pages), PD[2..15] 2 MiB pages.
  mov edi, BOOT_PML4
  xor eax, eax
  mov ecx, 5 * 1024
  rep stosd
  mov dword [BOOT_PML4], BOOT_PDPT | 7
  mov dword [BOOT_PDPT], BOOT_PD | 7
  mov dword [BOOT_PD], BOOT_PT | 7
  mov dword [BOOT_PD + 8], (BOOT_PT + 0x1000) | 7
  mov ecx, 2
.large:
  mov eax, ecx
  shl eax, 21
  or eax, 0x83
  mov [BOOT_PD + ecx * 8], eax
  inc ecx
  cmp ecx, 16
  jb .large
  xor ecx, ecx
.identity:
  mov eax, ecx
  shl eax, 12
  or eax, 3
  mov edx, eax
  and edx, 0xfffff000
  cmp edx, user_page
  je .user
  cmp edx, user_stack
  jne .store
.user:
  or eax, 4
.store:
  mov [BOOT_PT + ecx * 8], eax
  inc ecx
  cmp ecx, 1024
  jb .identity

  ; TSS descriptor base (the upper half of the 16-byte descriptor stays 0).
  mov eax, tss
  mov [gdt_tss + 2], ax
  shr eax, 16
  mov [gdt_tss + 4], al
  mov [gdt_tss + 7], ah
  mov dword [tss + 4], interrupt_stack_top
  mov word [tss + 102], 104

  ; Long mode: PAE, LME, paging (SDM vol. 3A 10.8.5).
  lgdt [gdt_descriptor]
  mov eax, 0x20
  mov cr4, eax
  mov eax, BOOT_PML4
  mov cr3, eax
  mov ecx, 0xC0000080
  rdmsr
  or eax, 0x100
  wrmsr
  mov eax, cr0
  or eax, 0x80000001
  mov cr0, eax
  jmp 0x08:long_mode

BITS 64
long_mode:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov rsp, stack_top
  mov ax, 0x28
  ltr ax
  xor ecx, ecx
.idt:
  mov rax, [exception_table + rcx * 8]
  mov edx, 0x8E00
  call set_gate
  inc ecx
  cmp ecx, 32
  jb .idt
  mov ecx, 0x30
  mov rax, return_gate
  mov edx, 0xEE00
  call set_gate
  lidt [idt_descriptor]

main_loop:
  mov esi, [cursor]
  cmp esi, [mod_end]
  jae finished
  mov eax, [rsi + 4]
  mov [cr0_extra], eax
  mov eax, [rsi + 8]
  mov [cr4_value], eax
  mov eax, [rsi + 12]
  mov [efer_value], eax
  mov eax, [rsi + 16]
  mov [cr3_value], eax
  mov rax, [rsi + 20]
  mov [va], rax
  mov eax, [rsi + 28]
  mov [access], eax
  mov eax, [rsi + 32]
  mov [flags], eax
  mov eax, [rsi + 36]
  mov [count], eax
  lea rax, [rsi + 40]
  mov [entries], rax
  mov ecx, [count]
  lea eax, [ecx + ecx * 2]
  lea rax, [rsi + 40 + rax * 4]
  mov [cursor], eax
  inc dword [index]
  mov eax, [index]
  mov [tag], eax

  mov ecx, [count]
  mov rdx, [entries]
.write:
  test ecx, ecx
  jz .written
  mov edi, [rdx]
  mov eax, [rdx + 4]
  mov [rdi], eax
  mov eax, [rdx + 8]
  mov [rdi + 4], eax
  add rdx, 12
  dec ecx
  jmp .write
.written:
  mov edi, [cr3_value]
  mov dword [rdi], BOOT_PDPT | 7
  mov dword [rdi + 4], 0

  mov ecx, 0xC0000080
  rdmsr
  and eax, ~0x800
  or eax, [efer_value]
  wrmsr
  mov eax, [cr4_value]
  or eax, 0x20
  mov cr4, rax
  mov rax, cr0
  and eax, ~0x10000
  or eax, [cr0_extra]
  mov cr0, rax
  mov eax, [cr3_value]
  mov cr3, rax

  mov dword [status], 0
  mov dword [value], 0
  mov qword [cr2_value], 0
  mov [saved_rsp], rsp
  mov rbx, [va]
  mov eax, [access]
  mov ecx, [tag]
  test dword [flags], 1
  jnz .user_access
  test dword [flags], 2
  jz .no_ac
  stac
.no_ac:
  cmp eax, 0
  je .read
  cmp eax, 1
  je .write_access
  call rbx
  jmp .done
.read:
  mov eax, [rbx]
  jmp .done
.write_access:
  mov [rbx], ecx
  xor eax, eax
.done:
  mov [value], eax
  jmp restore

.user_access:
  push qword 0x23
  push qword user_stack + 4096
  push qword 0x002
  push qword 0x1B
  push qword user_stub
  iretq

restore:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov rsp, [saved_rsp]
  push qword 0x002
  popfq
  ; Back to the probe's own tables, supervisor-only protections off, and a
  ; full flush (CR4.PGE 1 -> 0) so that no global entry survives.
  mov rax, cr4
  and eax, ~(0x80 | 0x100000 | 0x200000)
  mov cr4, rax
  mov eax, BOOT_PML4
  mov cr3, rax

  mov dword [written_frame], 0xffffffff
  mov edi, 0x600000
  mov eax, [tag]
.scan:
  cmp [rdi + 8], eax
  jne .scan_next
  mov [written_frame], edi
  mov dword [rdi + 8], 0
.scan_next:
  add edi, 4096
  cmp edi, 0x2000000
  jb .scan

  mov eax, [index]
  call out_dword
  mov eax, [status]
  call out_dword
  mov eax, [value]
  call out_dword
  mov eax, [cr2_value]
  call out_dword
  mov eax, [cr2_value + 4]
  call out_dword
  mov eax, [written_frame]
  call out_dword
  mov eax, [count]
  call out_dword
  mov ecx, [count]
  mov rdx, [entries]
.report:
  test ecx, ecx
  jz .reported
  mov edi, [rdx]
  mov eax, [rdi]
  call out_dword
  mov dword [rdi], 0
  mov dword [rdi + 4], 0
  add rdx, 12
  dec ecx
  jmp .report
.reported:
  mov edi, [cr3_value]
  mov qword [rdi], 0
  jmp main_loop

finished:
  mov al, 0
  out 0xf4, al
  hlt
  jmp finished

out_dword:
  push rcx
  mov ecx, 4
.byte:
  out 0xe9, al
  shr eax, 8
  dec ecx
  jnz .byte
  pop rcx
  ret

; rcx = vector, rax = handler, edx = type/attributes << 8 (16-byte gates)
set_gate:
  shl rcx, 4
  mov [idt + rcx], ax
  mov word [idt + rcx + 2], 0x08
  mov [idt + rcx + 4], dx
  shr rax, 16
  mov [idt + rcx + 6], ax
  shr rax, 16
  mov [idt + rcx + 8], eax
  mov dword [idt + rcx + 12], 0
  shr rcx, 4
  ret

page_fault:
  pop qword [error_code]
  mov eax, [error_code]
  mov [value], eax
  mov rax, cr2
  mov [cr2_value], rax
  mov dword [status], 1
  jmp restore

return_gate:
  mov [value], eax
  mov dword [status], 0
  jmp restore

%assign vector 0
%rep 32
exception_ %+ vector:
%if vector = 14
  jmp page_fault
%else
  mov dword [value], vector
  mov dword [status], 2
  jmp restore
%endif
%assign vector vector + 1
%endrep

align 8
exception_table:
%assign vector 0
%rep 32
  dq exception_ %+ vector
%assign vector vector + 1
%endrep

align 8
gdt:
  dq 0
  dq 0x00AF9A000000FFFF             ; 0x08 ring-0 64-bit code
  dq 0x00CF92000000FFFF             ; 0x10 ring-0 data
  dq 0x00AFFA000000FFFF             ; 0x18 ring-3 64-bit code
  dq 0x00CFF2000000FFFF             ; 0x20 ring-3 data
gdt_tss:
  dw 103, 0
  db 0, 0x89, 0, 0                  ; 0x28 available 64-bit TSS (16 bytes)
  dq 0
gdt_end:
gdt_descriptor:
  dw gdt_end - gdt - 1
  dq gdt
idt_descriptor:
  dw 256 * 16 - 1
  dq idt

align 8
va: dq 0
cr2_value: dq 0
entries: dq 0
saved_rsp: dq 0
error_code: dq 0
cursor: dd 0
mod_end: dd 0
index: dd 0
tag: dd 0
cr0_extra: dd 0
cr4_value: dd 0
efer_value: dd 0
cr3_value: dd 0
access: dd 0
flags: dd 0
count: dd 0
status: dd 0
value: dd 0
written_frame: dd 0

align 4096
user_page:
user_stub:
  cmp eax, 0
  je .read
  cmp eax, 1
  je .write
  call rbx
  jmp .back
.read:
  mov eax, [rbx]
  jmp .back
.write:
  mov [rbx], ecx
  xor eax, eax
.back:
  int 0x30

align 4096
user_stack:
  times 4096 db 0
tss:
  times 104 db 0
align 16
idt:
  times 256 * 16 db 0
  times 8192 db 0
stack_top:
  times 8192 db 0
interrupt_stack_top:
