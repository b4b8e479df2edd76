import {
  Arm64Access,
  Arm64FaultKind,
  Arm64PageWalker,
  Arm64WalkFlags,
  createGuestMemory,
  TlbPermission,
} from "@kumo/mmu";
import { describe, expect, it } from "vitest";

// Descriptor bits (Arm ARM chapter D8; Linux arch/arm64/include/asm/pgtable-hwdef.h).
const VALID = 1;
const TABLE = 3; // also "page" at level 3
const BLOCK = 1;
const AF = 1 << 10;
const NG = 1 << 11;
const AP_EL0 = 1 << 6; // AP[1]
const AP_RO = 1 << 7; // AP[2]
const PXN_HIGH = 1 << 21; // bit 53
const UXN_HIGH = 1 << 22; // bit 54
const APTABLE_NO_EL0_HIGH = 1 << 29; // bit 61
const APTABLE_RO_HIGH = 1 << 30; // bit 62
const attr = (index: number) => index << 2;

const READ = Arm64Access.Read;
const WRITE = Arm64Access.Write;
const EXEC = Arm64Access.Execute;
const EL0 = Arm64WalkFlags.Unprivileged;
const PAN = Arm64WalkFlags.PrivilegedAccessNever;

// TCR_EL1: T0SZ=16 (48-bit TTBR0 space), T1SZ=25 (39-bit TTBR1 space),
// TG1=0b10 (4 KiB), IPS=0b101 (48 bits).
const TCR_LOW = 16 | (25 << 16) | (0b10 << 30);
const TCR_HIGH = 0b101;

function setup() {
  const memory = createGuestMemory({ ramSize: 0x200000, ramBase: 0x40000000 });
  const walker = new Arm64PageWalker(memory);
  walker.sctlr = 1;
  walker.tcrLow = TCR_LOW;
  walker.tcrHigh = TCR_HIGH;
  walker.ttbr0Low = 0x40001000;
  walker.ttbr0High = 0x00050000; // ASID 5
  walker.ttbr1Low = 0x40010000;
  walker.ttbr1High = 0;
  walker.mairLow = 0x00ff4400; // Attr1 = Normal non-cacheable, Attr2 = Normal write-back
  walker.mairHigh = 0x0000bb00; // Attr5 = 0xbb
  const set = (address: number, low: number, high = 0) => memory.write64(address, low, high);
  // TTBR0, 48-bit: L0 0x40001000 -> L1 0x40002000 -> L2 0x40003000 -> L3 0x40004000.
  set(0x40001000, 0x40002000 | TABLE);
  set(0x40002000, 0x40003000 | TABLE);
  set(0x40003000 + 2 * 8, 0x40004000 | TABLE); // VA 0x400000
  set(0x40004000 + 1 * 8, 0x40100000 | TABLE | AF | AP_EL0 | attr(2) | NG); // 0x401000 EL0 rw
  set(0x40004000 + 2 * 8, 0x40101000 | TABLE | AF | attr(1)); // 0x402000 EL1 rw, global
  set(0x40004000 + 3 * 8, 0x40102000 | TABLE | AF | AP_RO | AP_EL0); // 0x403000 ro both
  set(0x40004000 + 4 * 8, 0x40103000 | TABLE | AP_EL0 | NG); // 0x404000 AF=0
  set(0x40004000 + 5 * 8, 0x40104000 | VALID); // 0x405000 reserved level-3 encoding
  set(0x40004000 + 6 * 8, 0x40105000 | TABLE | AF | AP_RO | AP_EL0, PXN_HIGH); // 0x406000
  set(0x40004000 + 7 * 8, 0x40106000 | TABLE | AF | attr(5), UXN_HIGH); // 0x407000
  // L2[3]: 2 MiB block at VA 0x600000 -> 0x80000000.
  set(0x40003000 + 3 * 8, 0x80000000 | BLOCK | AF | AP_EL0);
  // L0[1]: a block at level 0 is invalid with a 4 KiB granule.
  set(0x40001000 + 8, 0x40000000 | BLOCK | AF);
  // L1[1] (VA 0x40000000): a table whose APTable forbids EL0 and writes below.
  set(0x40002000 + 8, 0x40005000 | TABLE, APTABLE_NO_EL0_HIGH | APTABLE_RO_HIGH);
  set(0x40005000, 0x40007000 | BLOCK | AF | AP_EL0); // VA 0x40000000 2 MiB block
  // TTBR1, 39-bit: starts at level 1. L1[0]: 1 GiB block, L1[511] -> L2.
  set(0x40010000, 0xc0000000 | BLOCK | AF, 0x1); // VA 0xffffff80_00000000 -> 0x1_c0000000
  return { memory, walker, set };
}

describe("arm64 stage-1 translation, 4 KiB granule (Arm ARM D8)", () => {
  it("walks four levels from TTBR0 for a 48-bit VA and passes MAIR through", () => {
    const { walker } = setup();
    expect(walker.walk(0x401abc, 0, READ | EL0)).toBe(0x40100abc);
    expect(walker.pageShift).toBe(12);
    expect(walker.attributeIndex).toBe(2);
    expect(walker.attributes).toBe(0xff);
    expect(walker.permissions & TlbPermission.Global).toBe(0);
    expect(walker.asid).toBe(5);
    expect(walker.walk(0x402000, 0, READ)).toBe(0x40101000);
    expect(walker.attributes).toBe(0x44);
    expect(walker.permissions & TlbPermission.Global).toBe(TlbPermission.Global);
    expect(walker.walk(0x407000, 0, READ)).toBe(0x40106000);
    expect(walker.attributes).toBe(0xbb);
  });

  it("maps 2 MiB blocks at level 2 and 1 GiB blocks at level 1 of a 39-bit TTBR1 space", () => {
    const { walker } = setup();
    expect(walker.walk(0x6abcde, 0, WRITE | EL0)).toBe(0x800abcde);
    expect(walker.pageShift).toBe(21);
    expect(walker.physicalPage).toBe(0x800ab000);
    expect(walker.walk(0x12345678, 0xffffff80, READ)).toBe(0x1_d2345678);
    expect(walker.pageShift).toBe(30);
  });

  it("reports translation faults with their level", () => {
    const { walker } = setup();
    const fault = (low: number, high: number) => {
      expect(walker.walk(low, high, READ)).toBe(-1);
      expect(walker.faultKind).toBe(Arm64FaultKind.Translation);
      return walker.faultStatus;
    };
    expect(fault(0, 0x100)).toBe(0x04); // L0[2] invalid
    expect(fault(0, 0x80)).toBe(0x04); // L0[1]: level-0 block
    expect(fault(0x80000000, 0)).toBe(0x05); // L1[2] invalid
    expect(fault(0x800000, 0)).toBe(0x06); // L2[4] invalid
    expect(fault(0x408000, 0)).toBe(0x07); // L3[8] invalid
    expect(fault(0x405000, 0)).toBe(0x07); // L3[5]: reserved 0b01
    // Outside both ranges: bits 63:48 neither all zeros nor all ones (48-bit), or
    // bits 63:39 not all ones in the 39-bit TTBR1 space.
    expect(fault(0, 0x00010000)).toBe(0x04);
    expect(fault(0, 0xffff0000)).toBe(0x04);
  });

  it("ignores the top byte under TBI0", () => {
    const { walker } = setup();
    expect(walker.walk(0x401000, 0xab000000, READ)).toBe(-1);
    walker.tcrHigh = TCR_HIGH | (1 << 5); // TBI0 is TCR bit 37
    expect(walker.walk(0x401000, 0x7b000000, READ)).toBe(0x40100000);
  });

  it("faults walks through a half disabled by EPD1", () => {
    const { walker } = setup();
    walker.tcrLow = TCR_LOW | (1 << 23);
    expect(walker.walk(0, 0xffffff80, READ)).toBe(-1);
    expect(walker.faultStatus).toBe(0x04);
  });

  it("raises access flag faults, or sets AF itself with TCR_EL1.HA", () => {
    const { walker, memory } = setup();
    expect(walker.walk(0x404000, 0, READ | EL0)).toBe(-1);
    expect(walker.faultKind).toBe(Arm64FaultKind.AccessFlag);
    expect(walker.faultStatus).toBe(0x0b);
    walker.tcrHigh = TCR_HIGH | (1 << 7); // HA is TCR bit 39
    expect(walker.walk(0x404000, 0, READ | EL0)).toBe(0x40103000);
    expect(memory.read32(0x40004000 + 4 * 8) & AF).toBe(AF);
  });

  it("applies AP, UXN, PXN and the implicit PXN of EL0-writable pages", () => {
    const { walker } = setup();
    const status = (low: number, flags: number) => {
      expect(walker.walk(low, 0, flags)).toBe(-1);
      expect(walker.faultKind).toBe(Arm64FaultKind.Permission);
      return walker.faultStatus;
    };
    expect(status(0x402000, READ | EL0)).toBe(0x0f); // EL1-only page
    expect(status(0x403000, WRITE)).toBe(0x0f); // read-only
    expect(status(0x403000, WRITE | EL0)).toBe(0x0f);
    expect(walker.walk(0x403000, 0, EXEC | EL0)).toBe(0x40102000);
    expect(status(0x406000, EXEC)).toBe(0x0f); // PXN
    expect(walker.walk(0x406000, 0, EXEC | EL0)).toBe(0x40105000);
    expect(status(0x407000, EXEC | EL0)).toBe(0x0f); // UXN
    expect(walker.walk(0x407000, 0, EXEC)).toBe(0x40106000);
    expect(status(0x401000, EXEC)).toBe(0x0f); // EL0-writable: never EL1-executable
    expect(status(0x6abcde, EXEC)).toBe(0x0e); // the same for a level-2 block
  });

  it("honours APTable limits inherited from a table descriptor", () => {
    const { walker } = setup();
    expect(walker.walk(0x40000000, 0, READ | EL0)).toBe(-1);
    expect(walker.faultStatus).toBe(0x0e);
    expect(walker.walk(0x40000000, 0, WRITE)).toBe(-1);
    expect(walker.walk(0x40000000, 0, READ)).toBe(0x40000000);
  });

  it("applies PAN to privileged data accesses to EL0-accessible pages", () => {
    const { walker } = setup();
    expect(walker.walk(0x401000, 0, READ | PAN)).toBe(-1);
    expect(walker.faultStatus).toBe(0x0f);
    expect(walker.walk(0x402000, 0, WRITE | PAN)).toBe(0x40101000);
    // Unprivileged accesses (LDTR at EL1) are checked as EL0 and PAN does not apply.
    expect(walker.walk(0x401000, 0, READ | PAN | EL0)).toBe(0x40100000);
  });

  it("makes writable pages execute-never under SCTLR_EL1.WXN", () => {
    const { walker } = setup();
    expect(walker.walk(0x402000, 0, EXEC)).toBe(0x40101000);
    walker.sctlr = 1 | (1 << 19);
    expect(walker.walk(0x402000, 0, EXEC)).toBe(-1);
    expect(walker.walk(0x403000, 0, EXEC | EL0)).toBe(0x40102000);
  });

  it("reports output addresses beyond TCR_EL1.IPS as address size faults", () => {
    const { walker } = setup();
    walker.tcrHigh = 0; // IPS = 32 bits
    expect(walker.walk(0x12345678, 0xffffff80, READ)).toBe(-1);
    expect(walker.faultKind).toBe(Arm64FaultKind.AddressSize);
    expect(walker.faultStatus).toBe(0x01);
  });

  it("uses 8- or 16-bit ASIDs from TTBR0 or TTBR1 as TCR_EL1.A1 and AS say", () => {
    const { walker } = setup();
    walker.ttbr0High = 0x12340000;
    walker.ttbr1High = 0x56780000;
    expect(walker.currentAsid()).toBe(0x34);
    walker.tcrHigh = TCR_HIGH | (1 << 4);
    expect(walker.currentAsid()).toBe(0x1234);
    walker.tcrLow = TCR_LOW | (1 << 22);
    expect(walker.currentAsid()).toBe(0x5678);
  });

  it("maps flat with the MMU off", () => {
    const { walker } = setup();
    walker.sctlr = 0;
    expect(walker.walk(0x40000123, 0, EXEC | EL0)).toBe(0x40000123);
    expect(walker.walk(0, 0x10000, READ)).toBe(-1);
    expect(walker.faultKind).toBe(Arm64FaultKind.AddressSize);
  });
});
