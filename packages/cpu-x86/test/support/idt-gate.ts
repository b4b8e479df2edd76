/**
 * Assembly that writes a 32-bit gate to `handler` (an address or memory
 * operand) into IDT entry `vector` (a number or a register): offset 15:0
 * at byte 0, the code selector 0x08 at 2, `attributes` (type, DPL, P) at 4,
 * offset 31:16 at 6 (Intel SDM vol. 3A 6.11, figure 6-2).
 */
export function idtGate(vector: number | string, handler: string, attributes: string): string {
  const at = vector === 0 ? "idt" : `idt + ${vector}*8`;
  return `
  mov eax, ${handler}
  mov [${at}], ax
  mov word [${at} + 2], 0x08
  mov word [${at} + 4], ${attributes}
  shr eax, 16
  mov [${at} + 6], ax`;
}

/** The `set_gate` subroutine: the same gate as `idtGate`, with EAX the handler, EBX the vector, ECX the attributes. */
export const SET_GATE = `
set_gate:                 ; eax = handler, ebx = vector, ecx = type/dpl bits
  lea edx, [idt + ebx*8]
  mov [edx], ax
  mov word [edx + 2], 0x08
  mov [edx + 4], cx
  shr eax, 16
  mov [edx + 6], ax
  ret
`;

/** Assembly that calls `set_gate` (see `SET_GATE`) for one vector. */
export function callSetGate(handler: string, vector: number | string, attributes: string): string {
  return `
  mov eax, ${handler}
  mov ebx, ${vector}
  mov ecx, ${attributes}
  call set_gate`;
}
