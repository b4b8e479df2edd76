/**
 * The smallest VMM that boots an unmodified i386 Linux as a Xen PVH domain:
 * hypervisor-core for the domain, cpu-x86 for its vCPU, mmu for its memory,
 * xenstore for its store ring and a ten-line PV console. No toolstack: what
 * libxl and xenconsoled would do is written out below. Browser-safe: bytes in,
 * a console out.
 */
import { ElfNote, HvmMemmapType, HvmParam, HvmStartInfoConst } from "@kumo/abi";
import { CpuModel, createX86Cpu } from "@kumo/cpu-x86";
import { type ClockOptions, Hypervisor, type ShutdownReasonName } from "@kumo/hypervisor-core";
import { createGuestMemory } from "@kumo/mmu";
import { connectGuestRing, connectLocal, writeDomainLayout, Xenstored } from "@kumo/xenstore";

export interface PvhGuestOptions {
  /** An ELF32 PVH kernel (the guest's vmlinux, with XEN_ELFNOTE_PHYS32_ENTRY). */
  readonly kernel: Uint8Array;
  readonly initramfs: Uint8Array;
  readonly memoryMiB?: number;
  readonly cmdline?: string;
  /** Back guest RAM with a SharedArrayBuffer (needs cross-origin isolation in a browser). */
  readonly shared?: boolean;
  readonly clock?: ClockOptions;
}

export interface PvhGuest {
  readonly hypervisor: Hypervisor;
  /** Called with every chunk the guest writes to hvc0. */
  onOutput(listener: (bytes: Uint8Array) => void): void;
  /** Types into hvc0. */
  write(text: string): void;
  /** Runs the guest until it shuts down; resolves with the reason (undefined if stopped). */
  run(): Promise<ShutdownReasonName | undefined>;
}

const PAGE = 4096;
// libxl's special pages below the 4 GiB hole (xen-abi.md 1.2): xenstore 0xFEFFC, console 0xFEFFF.
const SPECIAL_FIRST = 0xfeff8;
const STORE_GFN = 0xfeffc;
const CONSOLE_GFN = 0xfefff;
// struct xencons_interface (Xen public io/console.h): in[1024], out[2048], then the indices.
const IN = 0;
const OUT = 1024;
const IN_CONS = 3072;
const IN_PROD = 3076;
const OUT_CONS = 3080;
const OUT_PROD = 3084;

/**
 * CPUID.1:EDX.APIC set: Linux 6.1 sets up the Xen clock event device only in
 * an APIC mode (arch/x86/kernel/apic/apic.c), and without timers hvc_xen
 * never reads input (packages/toolstack/README.md). Only the bit: no APIC answers
 * its MMIO page (reads float to all ones); the real wiring (toolstack's
 * attachLocalApic) is not importable below the toolstack yet (README.md).
 */
class ApicCpuModel extends CpuModel {
  override featuresEdx(): number {
    return super.featuresEdx() | (1 << 9);
  }
}

export async function createPvhGuest(options: PvhGuestOptions): Promise<PvhGuest> {
  const ramSize = (options.memoryMiB ?? 64) << 20;
  const memory = createGuestMemory({ ramSize, shared: options.shared ?? false });
  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "minimal-pvh",
    memory,
    vcpus: 1,
    type: "pvh",
    architecture: "x86",
    guestWidth: 32,
    clock: options.clock,
  });
  const { domid } = domain;

  // Load the ELF32 kernel at its physical addresses and find its PVH entry (ELF spec, Xen public elfnote.h).
  const elf = new DataView(options.kernel.buffer, options.kernel.byteOffset);
  let entry = -1;
  for (let i = 0; i < elf.getUint16(44, true); i++) {
    const ph = elf.getUint32(28, true) + i * elf.getUint16(42, true);
    const [type, offset, , paddr, fileSize, memSize] = [0, 4, 8, 12, 16, 20].map((at) =>
      elf.getUint32(ph + at, true),
    );
    if (type === 1) {
      memory.writeBytes(paddr, options.kernel.subarray(offset, offset + fileSize));
      memory.writeBytes(paddr + fileSize, new Uint8Array(memSize - fileSize));
    }
    for (let note = offset; type === 4 && note < offset + fileSize; ) {
      const [nameSize, descSize, noteType] = [0, 4, 8].map((at) => elf.getUint32(note + at, true));
      const desc = note + 12 + ((nameSize + 3) & ~3);
      if (noteType === ElfNote.PHYS32_ENTRY) entry = elf.getUint32(desc, true);
      note = desc + ((descSize + 3) & ~3);
    }
  }
  if (entry < 0)
    throw new TypeError("the kernel has no XEN_ELFNOTE_PHYS32_ENTRY: not a PVH kernel");

  // hvm_start_info (Xen public hvm/start_info.h) at 0x1000: module list, memory map, command line.
  const initrdAddress = Math.floor((ramSize - options.initramfs.length) / PAGE) * PAGE;
  memory.writeBytes(initrdAddress, options.initramfs);
  const memmap = [
    { address: 0, size: ramSize, type: HvmMemmapType.RAM },
    { address: SPECIAL_FIRST * PAGE, size: 8 * PAGE, type: HvmMemmapType.RESERVED },
  ];
  domain.memoryMap = memmap; // XENMEM_memory_map answers the same
  const info = new DataView(new ArrayBuffer(PAGE));
  const u64 = (at: number, value: number) => info.setUint32(at, value, true); // all below 4 GiB
  info.setUint32(0, HvmStartInfoConst.MAGIC_VALUE, true);
  info.setUint32(4, 1, true); // version
  info.setUint32(12, 1, true); // nr_modules
  u64(16, 0x1000 + 64); // modlist_paddr
  u64(24, 0x1000 + 144); // cmdline_paddr
  u64(40, 0x1000 + 96); // memmap_paddr
  info.setUint32(48, memmap.length, true);
  u64(64, initrdAddress);
  u64(72, options.initramfs.length);
  memmap.forEach((range, i) => {
    u64(96 + 24 * i, range.address);
    u64(104 + 24 * i, range.size);
    info.setUint32(112 + 24 * i, range.type, true);
  });
  const cmdline = new TextEncoder().encode(options.cmdline ?? "console=hvc0");
  new Uint8Array(info.buffer).set(cmdline, 144);
  memory.writeBytes(0x1000, new Uint8Array(info.buffer, 0, 144 + cmdline.length + 1));

  // The console and xenstore pages and their unbound ports, published as HVM params (libxl).
  memory.mapFrame(CONSOLE_GFN, new Uint8Array(PAGE), true);
  memory.mapFrame(STORE_GFN, new Uint8Array(PAGE), true);
  const consolePort = domain.events.allocUnbound(0);
  const storePort = domain.events.allocUnbound(0);
  const params = hypervisor.host.hvmParams;
  params.set(domid, HvmParam.CONSOLE_PFN, CONSOLE_GFN);
  params.set(domid, HvmParam.CONSOLE_EVTCHN, consolePort);
  params.set(domid, HvmParam.STORE_PFN, STORE_GFN);
  params.set(domid, HvmParam.STORE_EVTCHN, storePort);

  // xenstored: the domain's nodes, then its ring served through the host interface.
  const xenstored = new Xenstored();
  const client = connectLocal(xenstored);
  await writeDomainLayout(client, {
    ...{ domid, name: "minimal-pvh", uuid: crypto.randomUUID(), memoryKiB: ramSize >> 10 },
    ...{ vcpus: 1, storePort, storeRingRef: STORE_GFN },
  });
  client.close();
  connectGuestRing(xenstored, hypervisor.host, domid, STORE_GFN, storePort);

  // The PV console backend (what xenconsoled does): map the ring, bind the port.
  const ring = hypervisor.host.foreignMemory.mapFrame(domid, CONSOLE_GFN);
  const view = new DataView(ring.buffer, ring.byteOffset, PAGE);
  const events = hypervisor.host.openEventChannel();
  const listeners: ((bytes: Uint8Array) => void)[] = [];
  const input: number[] = [];
  const service = () => {
    const consumer = view.getUint32(OUT_CONS, true);
    const producer = view.getUint32(OUT_PROD, true);
    const count = Math.min((producer - consumer) >>> 0, 2048); // a hostile index cannot overrun
    const bytes = Uint8Array.from({ length: count }, (_, i) => ring[OUT + ((consumer + i) & 2047)]);
    view.setUint32(OUT_CONS, producer, true);
    let inProd = view.getUint32(IN_PROD, true);
    while (input.length > 0 && (inProd - view.getUint32(IN_CONS, true)) >>> 0 < 1024)
      ring[IN + (inProd++ & 1023)] = input.shift() ?? 0;
    view.setUint32(IN_PROD, inProd >>> 0, true);
    events.notify(port);
    if (count > 0) for (const listener of listeners) listener(bytes);
  };
  const port = events.bindInterdomain(domid, consolePort, service);

  // One x86 vCPU in the PVH entry state: flat 32-bit protected mode, EBX = hvm_start_info.
  const cpu = createX86Cpu({ memory, model: new ApicCpuModel() });
  cpu.setFlatProtectedMode(entry);
  cpu.regs[3] = 0x1000;
  domain.attachVcpu(0, cpu);
  domain.unpause();

  return {
    hypervisor,
    onOutput: (listener) => listeners.push(listener),
    write(text) {
      input.push(...new TextEncoder().encode(text));
      service();
    },
    async run() {
      let reason: ShutdownReasonName | undefined;
      hypervisor.onDomainEvent((event) => {
        if (event.kind !== "shutdown") return;
        service(); // what the guest wrote just before it went down
        reason = event.reason;
        hypervisor.stop();
      });
      await hypervisor.run();
      return reason;
    },
  };
}
