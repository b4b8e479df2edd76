/**
 * Test programs with an EL1 vector table (Arm ARM D1.10.2: sixteen entries,
 * 0x80 bytes apart, at VBAR_EL1). Every entry records its own offset in x20
 * and branches to a common tail that reads ESR_EL1 into x21 and ELR_EL1 into
 * x22, then any further registers the test asks for, and stops at wfi.
 */
export function withVectorTable(body: string, alsoRecord: readonly string[] = []): string {
  const entries: string[] = [];
  for (let offset = 0; offset < 0x800; offset += 0x80) {
    entries.push(
      `.org 0x800 + 0x${offset.toString(16)}\nmov x20, #0x${offset.toString(16)}\nb common`,
    );
  }
  return `
    b start
    ${entries.join("\n")}
  common:
    mrs x21, esr_el1
    mrs x22, elr_el1
    ${alsoRecord.join("\n")}
    wfi
  start:
    adr x0, _start + 0x800
    msr vbar_el1, x0
    ${body}
    wfi
  `;
}
