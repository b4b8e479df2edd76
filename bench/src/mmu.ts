/**
 * @kumo/mmu: software TLB hits and page walks per second. A CPU package pays
 * a TLB lookup on every guest memory access and a walk on every miss, so
 * these two rates bound its memory path.
 */
import {
  Arm64Access,
  Arm64PageWalker,
  createGuestMemory,
  type GuestMemory,
  SoftTlb,
  X86Access,
  X86Control,
  X86PageWalker,
  X86WalkFlags,
  x86AccessPermission,
} from "@kumo/mmu";
import { type Benchmark, measure, sink } from "./lib/harness";

const PAGES = 4096;
const CR0 = (X86Control.Cr0Pg | X86Control.Cr0Wp | 1) >>> 0;
const CR4 = X86Control.Cr4Pae | X86Control.Cr4Pge;
const EFER = X86Control.EferLma | X86Control.EferNxe;

/**
 * 4-level tables (x86 and arm64 share the shape: 512 8-byte entries per level)
 * mapping PAGES 4 KiB pages from VA 0x40000000 onto frames from 0x400000.
 * Returns the root table address. x86 entries: P|RW|US; arm64: valid table /
 * page descriptors with AF and EL0 access.
 */
function buildTables(memory: GuestMemory, arm: boolean): number {
  let next = 0x10000;
  const allocate = () => {
    const address = next;
    next += 0x1000;
    return address;
  };
  const tableBits = arm ? 3 : 7;
  const leafBits = arm ? 3 | (1 << 10) | (1 << 6) : 7;
  const root = allocate();
  const level3 = allocate();
  const level2 = allocate();
  memory.write64(root, level3 | tableBits, 0);
  memory.write64(level3 + 1 * 8, level2 | tableBits, 0); // VA 0x40000000
  for (let page = 0; page < PAGES; page++) {
    const pdIndex = page >>> 9;
    if ((page & 511) === 0) memory.write64(level2 + pdIndex * 8, allocate() | tableBits, 0);
    const pt = memory.read32(level2 + pdIndex * 8) & ~0xfff;
    memory.write64(pt + (page & 511) * 8, (0x400000 + page * 0x1000) | leafBits, 0);
  }
  return root;
}

/** Virtual addresses of every mapped page in a scrambled order (defeats trivial prefetch). */
function addresses(): Int32Array {
  const out = new Int32Array(PAGES);
  for (let i = 0; i < PAGES; i++) out[i] = 0x40000000 + ((i * 2654435761) % PAGES) * 0x1000 + 0x10;
  return out;
}

const benchmark: Benchmark = {
  name: "mmu",
  description: "software TLB hits and page walks per second (@kumo/mmu)",
  run(context) {
    const memory = createGuestMemory({ ramSize: 64 << 20 });
    const root = buildTables(memory, false);
    const vas = addresses();
    const walker = new X86PageWalker(memory);
    const flags = X86Access.Read | X86WalkFlags.User;
    const tlb = new SoftTlb(PAGES);
    for (let i = 0; i < PAGES; i++) {
      const physical = walker.walk(CR0, root, 0, CR4, EFER, vas[i], 0, flags);
      if (physical < 0) throw new Error(`benchmark tables do not map ${vas[i].toString(16)}`);
      tlb.insert(
        vas[i],
        0,
        walker.physicalPage,
        walker.permissions,
        walker.pageShift,
        memory.directOffset(walker.physicalPage),
        walker.attributes,
      );
    }
    const readUser = x86AccessPermission(X86Access.Read, true, false);

    const hits = measure(context.seconds, (iterations) => {
      let sum = 0;
      for (let n = 0; n < iterations; n++) {
        const va = vas[n & (PAGES - 1)];
        const index = tlb.lookup(va, 0, readUser);
        sum = (sum + tlb.hostOffset[index] + (va & 0xfff)) | 0;
      }
      sink.value = sum;
      return iterations;
    });
    context.report({
      label: "TLB-hit translations (lookup + permission check)",
      value: hits,
      unit: "/s",
    });

    const u8 = memory.ram.u8;
    const loads = measure(context.seconds, (iterations) => {
      let sum = 0;
      for (let n = 0; n < iterations; n++) {
        const va = vas[n & (PAGES - 1)];
        const index = tlb.lookup(va, 0, readUser);
        sum = (sum + u8[tlb.hostOffset[index] + (va & 0xfff)]) | 0;
      }
      sink.value = sum;
      return iterations;
    });
    context.report({ label: "guest byte loads through the TLB", value: loads, unit: "/s" });

    const walks = measure(context.seconds, (iterations) => {
      let sum = 0;
      for (let n = 0; n < iterations; n++) {
        sum = (sum + walker.walk(CR0, root, 0, CR4, EFER, vas[n & (PAGES - 1)], 0, flags)) | 0;
      }
      sink.value = sum;
      return iterations;
    });
    context.report({ label: "x86 4-level page walks (4 KiB pages)", value: walks, unit: "/s" });

    const armMemory = createGuestMemory({ ramSize: 64 << 20 });
    const armRoot = buildTables(armMemory, true);
    const arm = new Arm64PageWalker(armMemory);
    arm.sctlr = 1;
    arm.tcrLow = 16 | (16 << 16) | (0b10 << 30); // 48-bit VAs, 4 KiB granule
    arm.tcrHigh = 0b101;
    arm.ttbr0Low = armRoot;
    const armFlags = Arm64Access.Read;
    if (arm.walk(vas[0], 0, armFlags) < 0) throw new Error("benchmark arm64 tables do not map");
    const armWalks = measure(context.seconds, (iterations) => {
      let sum = 0;
      for (let n = 0; n < iterations; n++) {
        sum = (sum + arm.walk(vas[n & (PAGES - 1)], 0, armFlags)) | 0;
      }
      sink.value = sum;
      return iterations;
    });
    context.report({
      label: "arm64 4-level stage-1 walks (4 KiB pages)",
      value: armWalks,
      unit: "/s",
    });

    const miss = measure(context.seconds, (iterations) => {
      let sum = 0;
      for (let n = 0; n < iterations; n++) {
        const va = vas[n & (PAGES - 1)];
        let index = tlb.lookup(va, 0, readUser);
        if (index < 0) {
          walker.walk(CR0, root, 0, CR4, EFER, va, 0, flags);
          index = tlb.insert(va, 0, walker.physicalPage, walker.permissions, 12, -1, 0);
        }
        sum = (sum + index) | 0;
        if ((n & 63) === 63) tlb.flushNonGlobal();
      }
      sink.value = sum;
      return iterations;
    });
    context.report({
      label: "translations with a MOV CR3 every 64 accesses (miss + walk + refill)",
      value: miss,
      unit: "/s",
    });
  },
};

export default benchmark;
