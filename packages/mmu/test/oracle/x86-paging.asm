; A bare-metal probe for the x86 paging oracle test (x86-oracle.test.ts).
; QEMU loads it as a multiboot kernel (flat binary, a.out kludge) and the list
; of scenarios as the multiboot module. For each scenario the probe writes
; the scenario's paging-structure entries, turns on 32-bit or PAE paging with
; the scenario's CR0.WP / CR4 / EFER.NXE, performs one read, write or
; instruction fetch at ring 0 or ring 3, and reports through the debug port
; 0xE9 what the CPU did: the value read (the target frame's marker), the
; #PF error code and CR2, and the entries afterwards (accessed/dirty flags).
; Then it turns paging off again, which flushes the TLB for the next one.
;
; Scenario (little-endian dwords): mode (0 32-bit, 1 PAE), cr0 extra bits,
; cr4, efer, cr3, va, access (0 read, 1 write, 2 execute), flags (bit 0
; user, bit 1 EFLAGS.AC via STAC), count, then count x (address, low, high).
; Report: index, status (0 done, 1 #PF, 2 other exception), value, cr2,
; written frame (writes: the frame whose dword at +8 got the tag), count,
; then the low dword of every written entry after the access.
;
; Memory: probe at 1 MiB, identity tables at 0x300000, scenario tables in
; 0x400000-0x4fffff, marked data frames from 0x600000 to 32 MiB. Each data
; frame starts with "mov eax, <frame address>; ret", so a fetch returns the
; marker and a read at +1 reads it.

BITS 32
ORG 0x100000

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010003

header:
  dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
  dd header, header, 0, 0, start

start:
  cli
  mov esp, stack_top
  mov eax, [ebx + 24]               ; mods_addr
  mov esi, [eax]                    ; mod_start
  mov [cursor], esi
  mov eax, [eax + 4]
  mov [mod_end], eax

  ; TSS descriptor base, then GDT, segments and TR.
  mov eax, tss
  mov [gdt_tss + 2], ax
  shr eax, 16
  mov [gdt_tss + 4], al
  mov [gdt_tss + 7], ah
  mov dword [tss + 4], interrupt_stack_top
  mov dword [tss + 8], 0x10
  mov word [tss + 102], 104
  lgdt [gdt_descriptor]
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov fs, ax
  mov gs, ax
  mov ss, ax
  mov ax, 0x28
  ltr ax

  ; IDT: the 32 exception vectors and the ring-3 return gate 0x30.
  xor ecx, ecx
.idt:
  mov eax, [exception_table + ecx * 4]
  mov edx, 0x8E00
  call set_gate
  inc ecx
  cmp ecx, 32
  jb .idt
  mov ecx, 0x30
  mov eax, return_gate
  mov edx, 0xEE00
  call set_gate
  lidt [idt_descriptor]

  ; Markers in every data frame.
  mov edi, 0x600000
.mark:
  mov byte [edi], 0xB8
  mov [edi + 1], edi
  mov byte [edi + 5], 0xC3
  mov dword [edi + 8], 0
  add edi, 4096
  cmp edi, 0x2000000
  jb .mark

  ; Identity map of the first 4 MiB, supervisor except the ring-3 stub and stack.
  ; 32-bit: page table at 0x300000. PAE: directory 0x301000, tables 0x302000/0x303000.
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
  mov [0x300000 + ecx * 4], eax
  mov [0x302000 + ecx * 8], eax
  mov dword [0x302000 + ecx * 8 + 4], 0
  inc ecx
  cmp ecx, 1024
  jb .identity
  mov dword [0x301000], 0x302000 | 7
  mov dword [0x301004], 0
  mov dword [0x301008], 0x303000 | 7
  mov dword [0x30100c], 0

main_loop:
  mov esi, [cursor]
  cmp esi, [mod_end]
  jae finished
  mov eax, [esi + 0]
  mov [mode], eax
  mov eax, [esi + 4]
  mov [cr0_extra], eax
  mov eax, [esi + 8]
  mov [cr4_value], eax
  mov eax, [esi + 12]
  mov [efer_value], eax
  mov eax, [esi + 16]
  mov [cr3_value], eax
  mov eax, [esi + 20]
  mov [va], eax
  mov eax, [esi + 24]
  mov [access], eax
  mov eax, [esi + 28]
  mov [flags], eax
  mov eax, [esi + 32]
  mov [count], eax
  lea eax, [esi + 36]
  mov [entries], eax
  mov ecx, [count]
  lea eax, [ecx + ecx * 2]
  lea eax, [esi + 36 + eax * 4]
  mov [cursor], eax
  inc dword [index]
  mov eax, [index]
  mov [tag], eax

  ; Write the scenario's entries (4 bytes each in 32-bit mode, 8 in PAE).
  mov ecx, [count]
  mov edx, [entries]
.write:
  test ecx, ecx
  jz .written
  mov edi, [edx]
  mov eax, [edx + 4]
  mov [edi], eax
  cmp dword [mode], 0
  je .next
  mov eax, [edx + 8]
  mov [edi + 4], eax
.next:
  add edx, 12
  dec ecx
  jmp .write
.written:

  ; Hook the identity map into slot 0 of the top table.
  mov edi, [cr3_value]
  cmp dword [mode], 0
  jne .pae_hook
  mov dword [edi], 0x300000 | 7
  jmp .hooked
.pae_hook:
  mov dword [edi], 0x301000 | 1
  mov dword [edi + 4], 0
  mov ecx, 0xC0000080
  rdmsr
  and eax, ~0x800
  or eax, [efer_value]
  wrmsr
.hooked:
  mov eax, [cr4_value]
  mov cr4, eax
  mov eax, [cr3_value]
  mov cr3, eax
  mov eax, cr0
  and eax, ~0x10000
  or eax, 0x80000001
  or eax, [cr0_extra]
  mov cr0, eax

  mov dword [status], 0
  mov dword [value], 0
  mov dword [cr2_value], 0
  mov [saved_esp], esp
  mov ebx, [va]
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
  call ebx
  jmp .done
.read:
  mov eax, [ebx]
  jmp .done
.write_access:
  mov [ebx], ecx
  xor eax, eax
.done:
  mov [value], eax
  jmp restore

.user_access:
  mov dx, 0x23                      ; ring-3 data segments, or the iret nulls them
  mov ds, dx
  mov es, dx
  push dword 0x23
  push dword user_stack + 4096
  push dword 0x002
  push dword 0x1B
  push dword user_stub
  iretd

; Every way back from the access lands here with the result in memory.
restore:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov fs, ax
  mov gs, ax
  mov ss, ax
  mov esp, [saved_esp]
  push dword 0x002
  popfd
  mov eax, cr0
  and eax, 0x7fffffff
  mov cr0, eax

  ; Writes: find the frame that received the tag.
  mov dword [written_frame], 0xffffffff
  mov edi, 0x600000
  mov eax, [tag]
.scan:
  cmp [edi + 8], eax
  jne .scan_next
  mov [written_frame], edi
  mov dword [edi + 8], 0
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
  mov eax, [written_frame]
  call out_dword
  mov eax, [count]
  call out_dword
  ; Entries after the access, then clear them for the next scenario.
  mov ecx, [count]
  mov edx, [entries]
.report:
  test ecx, ecx
  jz .reported
  mov edi, [edx]
  mov eax, [edi]
  call out_dword
  mov dword [edi], 0
  mov dword [edi + 4], 0
  add edx, 12
  dec ecx
  jmp .report
.reported:
  mov edi, [cr3_value]
  mov dword [edi], 0
  mov dword [edi + 4], 0
  jmp main_loop

finished:
  mov al, 0
  out 0xf4, al                      ; isa-debug-exit
  hlt
  jmp finished

out_dword:
  push ecx
  mov ecx, 4
.byte:
  out 0xe9, al
  shr eax, 8
  dec ecx
  jnz .byte
  pop ecx
  ret

; ecx = vector, eax = handler, edx = type/attributes << 8
set_gate:
  mov [idt + ecx * 8], ax
  mov word [idt + ecx * 8 + 2], 0x08
  mov [idt + ecx * 8 + 4], dx
  shr eax, 16
  mov [idt + ecx * 8 + 6], ax
  ret

page_fault:
  pop dword [value]                 ; the error code
  mov eax, cr2
  mov [cr2_value], eax
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

exception_table:
%assign vector 0
%rep 32
  dd exception_ %+ vector
%assign vector vector + 1
%endrep

align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF             ; 0x08 ring-0 code
  dq 0x00CF92000000FFFF             ; 0x10 ring-0 data
  dq 0x00CFFA000000FFFF             ; 0x18 ring-3 code
  dq 0x00CFF2000000FFFF             ; 0x20 ring-3 data
gdt_tss:
  dw 103, 0
  db 0, 0x89, 0, 0                  ; 0x28 available 32-bit TSS
gdt_end:
gdt_descriptor:
  dw gdt_end - gdt - 1
  dd gdt
idt_descriptor:
  dw 256 * 8 - 1
  dd idt

cursor: dd 0
mod_end: dd 0
index: dd 0
tag: dd 0
mode: dd 0
cr0_extra: dd 0
cr4_value: dd 0
efer_value: dd 0
cr3_value: dd 0
va: dd 0
access: dd 0
flags: dd 0
count: dd 0
entries: dd 0
status: dd 0
value: dd 0
cr2_value: dd 0
written_frame: dd 0
saved_esp: dd 0

align 4096
; The ring-3 side: eax = access kind, ebx = address, ecx = tag.
user_page:
user_stub:
  cmp eax, 0
  je .read
  cmp eax, 1
  je .write
  call ebx
  jmp .back
.read:
  mov eax, [ebx]
  jmp .back
.write:
  mov [ebx], ecx
  xor eax, eax
.back:
  int 0x30

align 4096
user_stack:
  times 4096 db 0
tss:
  times 104 db 0
align 8
idt:
  times 256 * 8 db 0
  times 8192 db 0
stack_top:
  times 8192 db 0
interrupt_stack_top:
