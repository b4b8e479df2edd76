import {
  createGuestMemory,
  PageFaultErrorCode as E,
  TlbPermission,
  X86Access,
  X86Control,
  X86PageWalker,
  X86WalkFlags,
} from "@kumo/mmu";
import { describe, expect, it } from "vitest";

// Entry bits (Intel SDM vol. 3A tables 4-4 .. 4-20).
const P = 1;
const RW = 2;
const US = 4;
const A = 0x20;
const D = 0x40;
const PS = 0x80;
const G = 0x100;
const NX_HIGH = 0x80000000;

const PG_WP = (X86Control.Cr0Pg | X86Control.Cr0Wp | 1) >>> 0;
const PG = (X86Control.Cr0Pg | 1) >>> 0;
const READ = X86Access.Read;
const WRITE = X86Access.Write;
const EXEC = X86Access.Execute;
const USER = X86WalkFlags.User;

function setup(ramSize = 64 << 20) {
  const memory = createGuestMemory({ ramSize });
  const walker = new X86PageWalker(memory);
  const set32 = (address: number, value: number) => memory.write32(address, value);
  const set64 = (address: number, low: number, high = 0) => memory.write64(address, low, high);
  return { memory, walker, set32, set64 };
}

describe("32-bit paging (SDM vol. 3A 4.3)", () => {
  // CR3 = 0x1000 (page directory); page table at 0x2000.
  function tables() {
    const t = setup();
    t.set32(0x1000 + 1 * 4, 0x2000 | P | RW | US); // PDE for 0x00400000-0x007fffff
    t.set32(0x2000 + 0 * 4, 0x5000 | P | RW | US); // 0x00400000 -> 0x5000, user rw
    t.set32(0x2000 + 1 * 4, 0x6000 | P); // 0x00401000 -> 0x6000, supervisor ro
    t.set32(0x2000 + 2 * 4, 0x7000 | P | US); // 0x00402000 -> 0x7000, user ro
    t.set32(0x1000 + 2 * 4, 0x00c00000 | P | RW | PS | G); // 4 MiB page at 0x00800000 -> 0x00c00000
    return t;
  }

  it("translates a 4 KiB page and sets accessed, then dirty on a write", () => {
    const { walker, memory } = tables();
    expect(walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400abc, 0, READ | USER)).toBe(0x5abc);
    expect(walker.pageShift).toBe(12);
    expect(memory.read32(0x1004) & A).toBe(A);
    expect(memory.read32(0x2000) & (A | D)).toBe(A);
    // Clean page: the TLB must not get write rights, so a later write walks again.
    expect(walker.permissions & TlbPermission.WriteUser).toBe(0);
    expect(walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400abc, 0, WRITE | USER)).toBe(0x5abc);
    expect(memory.read32(0x2000) & (A | D)).toBe(A | D);
    expect(memory.read32(0x1004) & D).toBe(0);
    expect(walker.permissions & TlbPermission.WriteUser).toBe(TlbPermission.WriteUser);
  });

  it("reports which entries a walk set accessed or dirty bits in (updatedEntries)", () => {
    const { walker } = tables();
    walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400abc, 0, READ | USER);
    expect(walker.walkedEntryCount).toBe(2);
    expect(walker.updatedEntries).toBe(0b11); // PDE and PTE: both accessed now
    walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400abc, 0, READ | USER);
    expect(walker.updatedEntries).toBe(0); // nothing left to set
    walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400abc, 0, WRITE | USER);
    expect(walker.updatedEntries).toBe(0b10); // the PTE's dirty bit
    expect(walker.walkedEntryAddress(1)).toBe(0x2000);
  });

  it("maps 4 MiB pages only with CR4.PSE, and then honours G with CR4.PGE", () => {
    const { walker } = tables();
    const pse = X86Control.Cr4Pse | X86Control.Cr4Pge;
    expect(walker.walk(PG_WP, 0x1000, 0, pse, 0, 0x00923456, 0, READ)).toBe(0x00d23456);
    expect(walker.pageShift).toBe(22);
    expect(walker.physicalPage).toBe(0x00d23000);
    expect(walker.permissions & TlbPermission.Global).toBe(TlbPermission.Global);
    // Without PSE the PS bit is ignored: the PDE points to a page table at 0x00c00000.
    expect(walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00923456, 0, READ)).toBe(-1);
    expect(walker.errorCode).toBe(0);
  });

  it("reports a reserved bit 21 in a 4 MiB PDE as P|RSVD", () => {
    const { walker, set32 } = tables();
    set32(0x1000 + 3 * 4, 0x00c00000 | (1 << 21) | P | PS);
    walker.walk(PG_WP, 0x1000, 0, X86Control.Cr4Pse, 0, 0x00c00000, 0, WRITE | USER);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit | E.Write | E.User);
  });

  it("builds the error code of not-present, user and read-only faults", () => {
    const { walker } = tables();
    const fault = (cr0: number, va: number, flags: number, cr4 = 0) => {
      expect(walker.walk(cr0, 0x1000, 0, cr4, 0, va, 0, flags)).toBe(-1);
      return walker.errorCode;
    };
    expect(fault(PG_WP, 0x10000000, READ)).toBe(0);
    expect(fault(PG_WP, 0x10000000, WRITE | USER)).toBe(E.Write | E.User);
    expect(fault(PG_WP, 0x00403000, READ | USER)).toBe(E.User); // PTE not present
    expect(fault(PG_WP, 0x00401000, READ | USER)).toBe(E.Present | E.User);
    expect(fault(PG_WP, 0x00402000, WRITE | USER)).toBe(E.Present | E.Write | E.User);
    // CR0.WP=1: the supervisor may not write read-only pages; WP=0: it may.
    expect(fault(PG_WP, 0x00401000, WRITE)).toBe(E.Present | E.Write);
    expect(walker.walk(PG, 0x1000, 0, 0, 0, 0x00401000, 0, WRITE)).toBe(0x6000);
    // 32-bit paging has no NX: a fetch fault reports I/D only under SMEP.
    expect(fault(PG_WP, 0x10000000, EXEC)).toBe(0);
    expect(fault(PG_WP, 0x10000000, EXEC, X86Control.Cr4Smep)).toBe(E.InstructionFetch);
  });

  it("applies SMEP to supervisor fetches from user pages", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1000, 0, 0, 0, 0x00400000, 0, EXEC)).toBe(0x5000);
    expect(walker.walk(PG_WP, 0x1000, 0, X86Control.Cr4Smep, 0, 0x00400000, 0, EXEC)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.InstructionFetch);
    expect(walker.walk(PG_WP, 0x1000, 0, X86Control.Cr4Smep, 0, 0x00401000, 0, EXEC)).toBe(0x6000);
  });

  it("passes linear addresses through with paging off", () => {
    const { walker } = tables();
    expect(walker.walk(1, 0, 0, 0, 0, 0xfee00020, 0, WRITE | USER)).toBe(0xfee00020);
  });
});

describe("PAE paging (SDM vol. 3A 4.4)", () => {
  const cr4 = X86Control.Cr4Pae;
  const nxe = X86Control.EferNxe;
  // PDPT at 0x1020 (32-byte aligned), PD at 0x2000, PT at 0x3000.
  function tables() {
    const t = setup();
    t.set64(0x1020 + 1 * 8, 0x2000 | P); // PDPTE 1: 0x40000000-0x7fffffff
    t.set64(0x2000 + 0 * 8, 0x3000 | P | RW | US); // PDE 0 -> PT
    t.set64(0x3000 + 5 * 8, 0x9000 | P | RW | US, NX_HIGH); // 0x40005000 -> 0x9000, NX
    t.set64(0x2000 + 1 * 8, 0x00a00000 | P | RW | PS, 0x1); // 2 MiB 0x40200000 -> 0x1_00a00000
    t.set64(0x3000 + 6 * 8, 0xa000 | P | US); // 0x40006000 -> 0xa000, executable
    return t;
  }

  it("translates 4 KiB and 2 MiB pages, including physical addresses above 4 GiB", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40005010, 0, READ | USER)).toBe(0x9010);
    expect(walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40212345, 0, READ)).toBe(0x1_00a12345);
    expect(walker.pageShift).toBe(21);
    expect(walker.physicalPage).toBe(0x1_00a12000);
  });

  it("faults fetches from NX pages with I/D only when EFER.NXE is on", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40005000, 0, EXEC | USER)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.User | E.InstructionFetch);
    expect(walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40006000, 0, EXEC | USER)).toBe(0xa000);
    // Not-present fetch with NXE: I/D set; without NXE: clear.
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40007000, 0, EXEC);
    expect(walker.errorCode).toBe(E.InstructionFetch);
    walker.walk(PG_WP, 0x1020, 0, cr4, 0, 0x40007000, 0, EXEC);
    expect(walker.errorCode).toBe(0);
  });

  it("treats bit 63 as reserved when EFER.NXE is off", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1020, 0, cr4, 0, 0x40005000, 0, READ)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit);
  });

  it("reports reserved bits in PDPTEs, 2 MiB PDEs and above MAXPHYADDR", () => {
    const { walker, set64 } = tables();
    set64(0x1020 + 2 * 8, 0x2000 | P | RW); // R/W is reserved in a PAE PDPTE
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x80000000, 0, READ);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit);
    expect(walker.paePdptesValid(0x1020)).toBe(false);
    set64(0x1020 + 2 * 8, 0);
    expect(walker.paePdptesValid(0x1020)).toBe(true);
    set64(0x2000 + 2 * 8, 0x00c00000 | (1 << 13) | P | PS); // bit 13 reserved in a 2 MiB PDE
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40400000, 0, WRITE);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit | E.Write);
    set64(0x3000 + 7 * 8, 0xb000 | P, 0x100); // PA bit 40 with MAXPHYADDR 40
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40007000, 0, READ | USER);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit | E.User);
    // Not present wins over reserved bits: they are ignored when P=0.
    set64(0x3000 + 8 * 8, 0xb000, 0xffff);
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40008000, 0, READ);
    expect(walker.errorCode).toBe(0);
  });

  it("reports the PWT/PCD/PAT index of the page", () => {
    const { walker, set64 } = tables();
    set64(0x3000 + 9 * 8, 0xc000 | P | 0x8 | 0x80); // PWT + PAT (bit 7 in a PTE)
    walker.walk(PG_WP, 0x1020, 0, cr4, nxe, 0x40009000, 0, READ);
    expect(walker.attributes).toBe(0b101);
  });
});

describe("4-level paging (SDM vol. 3A 4.5)", () => {
  const cr4 = X86Control.Cr4Pae | X86Control.Cr4Pge;
  const efer = X86Control.EferLma | X86Control.EferNxe;
  // A Linux-like layout: user code at 0x400000, the kernel at 0xffffffff81000000,
  // the direct map at 0xffff888000000000 with 1 GiB pages.
  function tables() {
    const t = setup();
    const pml4 = 0x1000;
    t.set64(pml4 + 0 * 8, 0x2000 | P | RW | US); // PML4[0]
    t.set64(0x2000 + 0 * 8, 0x3000 | P | RW | US); // PDPT[0]
    t.set64(0x3000 + 2 * 8, 0x4000 | P | RW | US); // PD[2]: 0x400000
    t.set64(0x4000 + 0 * 8, 0x8000 | P | US); // 0x400000 -> 0x8000 user ro exec
    t.set64(0x4000 + 1 * 8, 0x9000 | P | RW | US, NX_HIGH); // 0x401000 -> 0x9000 user rw nx
    t.set64(0x4000 + 2 * 8, 0xa000 | P | RW); // 0x402000 -> 0xa000 supervisor rw
    // 0xffffffff81000000: PML4[511], PDPT[510], PD[8] 2 MiB global.
    t.set64(pml4 + 511 * 8, 0x5000 | P | RW);
    t.set64(0x5000 + 510 * 8, 0x6000 | P | RW);
    t.set64(0x6000 + 8 * 8, 0x01000000 | P | RW | PS | G);
    // 0xffff888000000000: PML4[273], PDPT[0] 1 GiB -> 0x2_40000000.
    t.set64(pml4 + 273 * 8, 0x7000 | P | RW, NX_HIGH);
    t.set64(0x7000 + 0 * 8, 0x40000000 | P | RW | PS, 0x2);
    return t;
  }

  it("walks all four levels for a 4 KiB page", () => {
    const { walker, memory } = tables();
    expect(walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x400123, 0, EXEC | USER)).toBe(0x8123);
    for (const entry of [0x1000, 0x2000, 0x3010, 0x4000]) {
      expect(memory.read32(entry) & A).toBe(A);
    }
    expect(walker.permissions).toBe(
      TlbPermission.ReadUser |
        TlbPermission.ExecuteUser |
        TlbPermission.ReadSupervisor |
        TlbPermission.ExecuteSupervisor,
    );
  });

  it("maps the kernel's 2 MiB global page at the top of the address space", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x81134567, 0xffffffff, EXEC)).toBe(0x01134567);
    expect(walker.pageShift).toBe(21);
    expect(walker.permissions & TlbPermission.Global).toBe(TlbPermission.Global);
    expect(walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x81134567, 0xffffffff, READ | USER)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.User);
  });

  it("maps a 1 GiB page and inherits NX from the PML4 entry", () => {
    const { walker } = tables();
    expect(walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x0abcdef0, 0xffff8880, WRITE)).toBe(
      0x2_4abcdef0,
    );
    expect(walker.pageShift).toBe(30);
    expect(walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x0abcdef0, 0xffff8880, EXEC)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.InstructionFetch);
    const no1G = new X86PageWalker(tables().memory, { pages1G: false });
    expect(no1G.walk(PG_WP, 0x1000, 0, cr4, efer, 0x0abcdef0, 0xffff8880, READ)).toBe(-1);
    expect(no1G.errorCode).toBe(E.Present | E.ReservedBit);
  });

  it("treats PS in a PML4 entry and bits 29:13 of a 1 GiB entry as reserved", () => {
    const { walker, set64 } = tables();
    set64(0x1000 + 1 * 8, 0x2000 | P | RW | PS);
    walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0, 0x80, READ);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit);
    set64(0x7000 + 1 * 8, 0x40000000 | (1 << 20) | P | PS);
    walker.walk(PG_WP, 0x1000, 0, cr4, efer, 0x40000000, 0xffff8880, READ);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit);
  });

  it("applies SMAP to supervisor data accesses to user pages unless EFLAGS.AC is set", () => {
    const { walker } = tables();
    const smap = cr4 | X86Control.Cr4Smap;
    expect(walker.walk(PG_WP, 0x1000, 0, smap, efer, 0x401000, 0, READ)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present);
    expect(walker.walk(PG_WP, 0x1000, 0, smap, efer, 0x401000, 0, WRITE)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.Write);
    const ac = X86WalkFlags.AlignmentCheck;
    expect(walker.walk(PG_WP, 0x1000, 0, smap, efer, 0x401000, 0, WRITE | ac)).toBe(0x9000);
    // Implicit supervisor accesses (GDT, TSS) ignore AC.
    const implicit = X86WalkFlags.ImplicitSupervisor | ac;
    expect(walker.walk(PG_WP, 0x1000, 0, smap, efer, 0x401000, 0, READ | implicit)).toBe(-1);
    expect(walker.walk(PG_WP, 0x1000, 0, smap, efer, 0x402000, 0, READ)).toBe(0xa000);
  });

  it("reads the PML4 from above 4 GiB through CR3's high half", () => {
    const memory = createGuestMemory({ ramSize: 0x10000 });
    const walker = new X86PageWalker(memory);
    // CR3 = 0x1_00001000 is a hole: entries read all-ones, which sets reserved bits.
    expect(walker.walk(PG_WP, 0x1000, 1, cr4, efer, 0, 0, READ)).toBe(-1);
    expect(walker.errorCode).toBe(E.Present | E.ReservedBit);
  });
});
