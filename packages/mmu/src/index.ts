/**
 * @kumo/mmu: a domain's guest-physical memory (RAM, holes, MMIO, p2m
 * mappings), the x86 and arm64 stage-1 page walkers, and the software TLB
 * both CPUs share.
 */
export {
  addressOfGfn,
  type GuestFrameNumber,
  type GuestPhysicalAddress,
  gfnOf,
  PAGE_OFFSET_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
} from "./address";
export {
  Arm64Access,
  Arm64FaultKind,
  Arm64PageWalker,
  Arm64WalkFlags,
  arm64AccessPermission,
} from "./arm64-walker";
export {
  ArrayBufferGuestMemory,
  createGuestMemory,
  type FrameKind,
  FrameState,
  type GuestMemory,
  GuestMemoryConfigError,
  type GuestMemoryOptions,
  type GuestRam,
  type MmioHandler,
  type WasmScratch,
} from "./guest-memory";
export { SoftTlb, TLB_ACCESS_MASK, TlbPermission } from "./tlb";
export {
  PageFaultErrorCode,
  X86Access,
  X86Control,
  X86PageWalker,
  type X86PageWalkerOptions,
  X86WalkFlags,
  x86AccessPermission,
} from "./x86-walker";
