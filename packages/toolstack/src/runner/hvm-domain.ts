/**
 * Creates a runnable HVM domain from a validated xl.cfg configuration: an
 * emulated PC (`createPcPlatform`) and a Linux bzImage booted directly, as
 * `qemu -kernel` does (see ../builder/bzimage-boot.ts), without firmware.
 * The Xen side is the same as for PVH (xen-abi.md): the CPUID leaves, the
 * hypercall page MSR, shared info, the console and xenstore pages and
 * event channels in HVM params, the callback vector, so a Linux built with
 * CONFIG_XEN_PVHVM finds Xen and uses its clock and event channels (PVHVM).
 *
 * The vCPU's interrupt source follows Xen's hvm_vcpu_has_pending_irq: the
 * callback vector first, then the 8259A when it may reach the CPU (local
 * APIC globally disabled, or LINT0 unmasked in ExtINT mode: Xen
 * vlapic_accept_pic_intr; only vCPU 0 is wired to the PIC), then the local
 * APIC. I/O APIC messages go to the local APIC of the vCPU whose APIC ID
 * they name (physical) or to vCPU 0.
 *
 * Direct kernel boot (bzImage or Multiboot) also gets ACPI unless xl.cfg
 * says `acpi = 0` (libxl's HVM default is on): the PC's tables
 * (../builder/acpi.ts buildPcAcpiTables) at 0xE0000 beside the MP table,
 * and the PIIX4-style PM block they describe (PM1 event/control, PM timer,
 * SCI on IRQ 9) at I/O 0xB000, whose `\_S5` write powers the domain off.
 * Firmware boot (SeaBIOS) gets QEMU's fw_cfg with the platform's items
 * (./pc-platform.ts) and, unless `acpi = 0`, the same tables as fw_cfg
 * files with QEMU's linker/loader script ("etc/table-loader"), which the
 * firmware places, links and checksums, and the same PM block.
 *
 * With `serial = "pty"` the domain's console (`console`) is COM1: what the
 * guest transmits goes to its listeners and host input is received, as
 * `xl console` attaches to an HVM guest's first serial port.
 */
import { createX86Cpu } from "@kumo/cpu-x86";
import {
  type IdeDevice,
  IO_APIC_DEFAULT_BASE,
  LOCAL_APIC_DEFAULT_BASE,
  LocalApicRegister,
  LvtIndex,
} from "@kumo/device-models";
import type { ClockOptions, Domain, Hypervisor, VcpuContext } from "@kumo/hypervisor-core";
import {
  ACPI_LOADER_FILE,
  ACPI_PC_S5_SLEEP_TYPE,
  ACPI_PM_PORT_BASE,
  ACPI_RSDP_FILE,
  ACPI_TABLES_FILE,
  buildPcAcpiLoader,
  buildPcAcpiTables,
} from "../builder/acpi";
import { type BzImageBootLayout, buildBzImageBoot, pcE820 } from "../builder/bzimage-boot";
import { DomainBuildError } from "../builder/errors";
import { isBzImage } from "../builder/kernel-image";
import { writeMpTable } from "../builder/mp-table";
import {
  buildMultibootBoot,
  findMultibootHeader,
  MULTIBOOT_BOOTLOADER_MAGIC,
} from "../builder/multiboot";
import { guestBootMemory, PvhSpecialPages } from "../builder/pvh";
import type { DomainConfig } from "../config/domain-config";
import type { ConsoleBackend } from "../console/backend";
import { attachLocalApic, type LocalApicWiring } from "./local-apic";
import { createPcPlatform, type PcPlatform } from "./pc-platform";
import { onShutdownOf } from "./shutdown-action";
import { createX86GuestMemory } from "./x86-memory";
import { attachXenRings } from "./xen-rings";

/** EAX, EDX, EBX and ESI in the SDM's register numbering (vol. 2A, table 2-1). */
const EAX = 0;
const EDX = 2;
const EBX = 3;
const ESI = 6;
const BOOT_SECTOR_ADDRESS = 0x7c00;
const BOOT_SECTOR_MAX = 0x9fc00 - 0x7c00;

/** The layout of a boot-sector domain: no kernel, the PC's e820 map. */
function bootSectorLayout(ramSize: number): BzImageBootLayout {
  return {
    protocol: 0,
    entry: BOOT_SECTOR_ADDRESS,
    bootParamsAddress: 0,
    cmdlineAddress: 0,
    kernelStart: BOOT_SECTOR_ADDRESS,
    kernelEnd: BOOT_SECTOR_ADDRESS,
    ramdisk: undefined,
    e820: pcE820(ramSize),
    specialPages: PvhSpecialPages,
  };
}
/** Xen's SHUTDOWN_poweroff / SHUTDOWN_reboot (public sched.h). */
const SHUTDOWN_POWEROFF = 0;
const SHUTDOWN_REBOOT = 1;
/** LVT bits: mask (16), delivery mode (10:8), ExtINT = 7 (SDM vol. 3A figure 11-8). */
const LVT_MASKED = 1 << 16;
const LVT_MODE_MASK = 7 << 8;
const LVT_MODE_EXTINT = 7 << 8;

export interface HvmDomainImages {
  /** A Linux x86 bzImage (direct kernel boot). */
  readonly kernel?: Uint8Array;
  readonly ramdisk?: Uint8Array;
  /**
   * Instead of a kernel: a boot sector (or any real-mode program that fits in
   * 0x7C00-0x9FBFF) loaded at 0000:7C00 and entered in real mode
   * with DL = 0x80, as a BIOS hands over to a disk's boot sector, but with no
   * BIOS: no interrupt vectors, no BIOS data area (test programs set up their own).
   */
  readonly bootSector?: Uint8Array;
  /**
   * Instead of a kernel: a PC firmware image (xl.cfg `firmware`, e.g. SeaBIOS's
   * bios.bin), mapped read-only just below 4 GiB and its last 128 KiB copied to
   * 0xE0000-0xFFFFF (RAM there, as after the firmware opened the PAM shadow),
   * and vCPU 0 starts at the reset vector F000:FFF0 (SDM vol. 3A 9.1.4).
   */
  readonly firmware?: Uint8Array;
}

export interface HvmDomainOptions {
  readonly paused?: boolean;
  readonly clock?: ClockOptions;
  /** Debug console port (default 0xE9, null none) and where its bytes go (default: the hypervisor log by line). */
  readonly debugconPort?: number | null;
  readonly debugconOutput?: (byte: number) => void;
  /**
   * COM2-COM4 (xl.cfg `serial` entries after the first): as many ports as
   * entries, each with where its transmitted bytes go (undefined: nowhere).
   * The ACPI DSDT lists every port present.
   */
  readonly serialPorts?: readonly (((byte: number) => void) | undefined)[];
  /** Exit port (default 0xF4, null none). */
  readonly exitPort?: number | null;
  /**
   * Hide the Xen CPUID leaves (0x40000000-0x400000FF) from the guest. SeaBIOS
   * switches to its Xen mode when it sees them and then needs hvmloader's
   * info table (SeaBIOS src/fw/xen.c), which Kumo does not write.
   */
  readonly hideXenCpuid?: boolean;
  /**
   * Direct kernel boot: write MP spec 1.4 tables (src/builder/mp-table.ts) so
   * that the kernel finds the I/O APIC, as a BIOS would leave them (default
   * true). False leaves Linux in virtual wire mode through the 8259A.
   */
  readonly mpTable?: boolean;
  /**
   * Direct kernel and firmware boot: ACPI tables and the ACPI PM block (see
   * above). Default: xl.cfg `acpi`, else true. False: no tables, no PM block
   * (direct boot: the MP table only; SeaBIOS: none, its built-in tables need a
   * PIIX4 PM function, and its MP table).
   */
  readonly acpi?: boolean;
  /** The Xen platform PCI device (xl.cfg xen_platform_pci; default false here). */
  readonly xenPlatform?: boolean;
  /** IDE disks and CD-ROM drives [hda, hdb, hdc, hdd] (xl.cfg `disk` with vdev hd[a-d]; see src/node/ide-disk.ts). */
  readonly ideDisks?: readonly (IdeDevice | null | undefined)[];
  /** The firmware's boot order (xl.cfg `boot`, src/config/hvm-options.ts); default "cd". */
  readonly bootOrder?: string;
}

/** The guest's COM1 as a console: the same surface as ConsoleBackend where the CLI uses it. */
export class SerialConsole {
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private outputQueue: number[] = [];
  private flushQueued = false;
  private pending: number[] = [];
  private closed = false;
  outputBytes = 0;
  platform: PcPlatform | null = null;

  get broken(): string | undefined {
    return undefined;
  }

  onOutput(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A byte the guest transmitted; delivered in batches after the running slice. */
  transmit(byte: number): void {
    if (this.closed) return;
    this.outputBytes++;
    this.outputQueue.push(byte);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outputQueue.length === 0) return;
    const bytes = Uint8Array.from(this.outputQueue);
    this.outputQueue = [];
    for (const listener of this.listeners) listener(bytes);
  }

  /** Host input for the guest: what the UART's FIFO takes now, the rest as the guest reads. */
  write(input: Uint8Array | string): void {
    if (this.closed) return;
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    for (const byte of bytes) this.pending.push(byte);
    this.pushInput();
  }

  /** Delivers what the guest sent so far (the daemon calls this as the domain ends) and moves input. */
  service(): void {
    this.flush();
    this.pushInput();
  }

  pushInput(): void {
    const uart = this.platform?.com1;
    if (this.closed || uart === undefined || this.pending.length === 0) return;
    const taken = uart.enqueue(this.pending);
    if (taken > 0) this.pending.splice(0, taken);
  }

  close(): void {
    this.flush();
    this.closed = true;
    this.listeners.clear();
  }
}

export interface RunnableHvmDomain {
  readonly domain: Domain;
  readonly layout: BzImageBootLayout & { readonly specialPages: typeof PvhSpecialPages };
  /** COM1 (serial = "pty", the default for HVM here). */
  readonly console: SerialConsole;
  /** The PV console (hvc0), which a PVHVM Linux may also use. */
  readonly pvConsole: ConsoleBackend;
  readonly consolePort: number;
  readonly storePort: number;
  readonly storePage: Uint8Array;
  readonly localApics: readonly LocalApicWiring[];
  readonly platform: PcPlatform;
  /** The exit port's status once the guest wrote it. */
  readonly exitStatus: number | undefined;
}

/** Xen's hvm_vcpu_has_pending_irq order for vCPU 0: callback vector, 8259A via LINT0, local APIC. */
class HvmInterruptSource {
  constructor(
    private readonly upcall: VcpuContext,
    private readonly wiring: LocalApicWiring,
    private readonly platform: PcPlatform | null,
  ) {}

  private picReaches(): boolean {
    if (this.platform === null) return false;
    if (!this.wiring.enabled) return true;
    const lvt = this.wiring.apic.read(LocalApicRegister.LvtLint0, 4);
    return (lvt & (LVT_MASKED | LVT_MODE_MASK)) === LVT_MODE_EXTINT;
  }

  hasPending(): boolean {
    if (this.upcall.hasPending()) return true;
    if (this.platform?.pic.hasPending() && this.picReaches()) return true;
    return this.wiring.enabled && this.wiring.apic.hasPending();
  }

  acknowledge(): number {
    if (this.upcall.hasPending()) return this.upcall.acknowledge();
    if (this.platform?.pic.hasPending() && this.picReaches())
      return this.platform.pic.acknowledge();
    return this.wiring.enabled ? this.wiring.apic.acknowledge() : -1;
  }
}

/** Answers the hypervisor leaves as a CPU without a hypervisor: zeros (SDM vol. 2A CPUID, reserved leaves). */
function hideXenLeaves(cpu: ReturnType<typeof createX86Cpu>): void {
  const hooks = cpu.hooks;
  const inner = hooks.cpuid;
  hooks.cpuid = (leaf, subleaf, out) => {
    if (leaf >>> 8 === 0x400000) {
      out.fill(0);
      return true;
    }
    return inner?.(leaf, subleaf, out) ?? false;
  };
}

export function createHvmDomain(
  hypervisor: Hypervisor,
  config: DomainConfig,
  images: HvmDomainImages,
  options: HvmDomainOptions = {},
): RunnableHvmDomain {
  if (config.type !== "hvm")
    throw new DomainBuildError(`createHvmDomain builds type "hvm" domains, not "${config.type}"`);
  const domain = hypervisor.createDomain({
    name: config.name,
    memory: createX86GuestMemory(config.memoryMiB, config.vcpus),
    vcpus: config.vcpus,
    type: "hvm",
    architecture: "x86",
    // An HVM guest starts 32-bit; the shared_info layout latches 32-bit until it says otherwise.
    guestWidth: 32,
    clock: options.clock,
    onShutdown: onShutdownOf(config),
  });
  try {
    const memory = domain.memory;
    if (memory === null) throw new DomainBuildError("the new domain has no memory");
    const bootSector = images.bootSector;
    if (bootSector !== undefined && bootSector.length > BOOT_SECTOR_MAX)
      throw new DomainBuildError(
        `a ${bootSector.length}-byte boot program does not fit between 0x7c00 and the EBDA (${BOOT_SECTOR_MAX} bytes)`,
      );
    const firmware = images.firmware;
    if (
      firmware !== undefined &&
      (firmware.length % 4096 !== 0 || firmware.length < 65536 || firmware.length > 16 << 20)
    )
      throw new DomainBuildError(
        `a ${firmware.length}-byte firmware image cannot be mapped below 4 GiB: expected a multiple of 4 KiB from 64 KiB to 16 MiB`,
      );
    if (bootSector === undefined && firmware === undefined && images.kernel === undefined)
      throw new DomainBuildError(
        "an HVM domain needs a kernel (bzImage), a firmware image or a boot sector",
      );
    // A kernel without the bzImage setup header but with a Multiboot header boots as Multiboot.
    const multiboot =
      bootSector === undefined &&
      firmware === undefined &&
      images.kernel !== undefined &&
      !isBzImage(images.kernel) &&
      findMultibootHeader(images.kernel) >= 0
        ? buildMultibootBoot(guestBootMemory(memory), {
            kernel: images.kernel,
            cmdline: config.cmdline,
            modules:
              images.ramdisk === undefined
                ? []
                : [{ data: images.ramdisk, cmdline: config.ramdisk ?? "module" }],
            memoryMap: pcE820(memory.ram.size),
          })
        : undefined;
    const layout: BzImageBootLayout =
      bootSector !== undefined || firmware !== undefined || multiboot !== undefined
        ? bootSectorLayout(memory.ram.size)
        : buildBzImageBoot(guestBootMemory(memory), {
            bzImage: images.kernel as Uint8Array,
            ramdisk: images.ramdisk,
            cmdline: config.cmdline,
          });
    if (bootSector !== undefined) memory.writeBytes(BOOT_SECTOR_ADDRESS, bootSector);
    if (firmware !== undefined) {
      const top = 4294967296 - firmware.length;
      for (let offset = 0; offset < firmware.length; offset += 4096)
        memory.mapFrame((top + offset) / 4096, firmware.slice(offset, offset + 4096), false);
      const low = firmware.subarray(Math.max(0, firmware.length - 0x20000));
      memory.writeBytes(0x100000 - low.length, low);
    }
    domain.memoryMap = layout.e820.map((entry) => ({ ...entry }));
    // Direct kernel boot and firmware boot get ACPI; a bare boot sector does not.
    const acpi =
      (firmware !== undefined || images.kernel !== undefined) &&
      bootSector === undefined &&
      (options.acpi ?? config.acpi ?? true);
    if (acpi && firmware === undefined) {
      // After the kernel builder, which clears the first MiB.
      const tables = buildPcAcpiTables({
        vcpus: config.vcpus,
        ioApicId: config.vcpus,
        ioApicAddress: IO_APIC_DEFAULT_BASE,
        ramBelow4G: memory.ram.size,
        serialPorts: 1 + (options.serialPorts?.length ?? 0),
      });
      memory.writeBytes(tables.address, tables.bytes);
    }

    // The Xen special pages and their HVM params, as for PVH (xen-abi.md 1.2, 6.3).
    const {
      consolePort,
      storePort,
      storePage,
      console: pvConsole,
    } = attachXenRings(hypervisor, domain, memory, PvhSpecialPages);

    const console = new SerialConsole();
    let exitStatus: number | undefined;
    let debugLine = "";
    const localApics: LocalApicWiring[] = [];
    const kick = () => domain.vcpus[0]?.kick();
    const platform = createPcPlatform(domain, memory, {
      debugconPort: options.debugconPort,
      exitPort: options.exitPort,
      serialOutput: (byte) => console.transmit(byte),
      serialPorts: options.serialPorts,
      serialDrained: () => console.pushInput(),
      debugconOutput:
        options.debugconOutput ??
        ((byte) => {
          // Default: whole lines into the hypervisor log (xl dmesg), as Xen's HVM debug port does.
          if (byte === 10) {
            hypervisor.log(`(d${domain.domid}) ${debugLine}`);
            debugLine = "";
          } else if (debugLine.length < 4096) {
            debugLine += String.fromCharCode(byte);
          }
        }),
      exit: (status) => {
        // QEMU's isa-debug-exit ends the machine at once: the first status is the one that counts.
        if (exitStatus !== undefined) return;
        exitStatus = status;
        hypervisor.log(`(d${domain.domid}) exit port: status ${status}`);
        domain.shutdown(SHUTDOWN_POWEROFF);
      },
      reset: (source) => {
        hypervisor.log(`(d${domain.domid}) reset through the ${source}`);
        domain.shutdown(SHUTDOWN_REBOOT);
      },
      kick,
      acpiPm: acpi
        ? {
            base: ACPI_PM_PORT_BASE,
            sleep: (sleepType) => {
              hypervisor.log(`(d${domain.domid}) ACPI sleep request SLP_TYP ${sleepType}`);
              if (sleepType === ACPI_PC_S5_SLEEP_TYPE) domain.shutdown(SHUTDOWN_POWEROFF);
            },
          }
        : undefined,
      // After the local APICs' IDs (0 .. vcpus - 1), as the MP table says.
      ioApicId: config.vcpus,
      xenPlatform: options.xenPlatform,
      ideDisks: options.ideDisks,
      bootOrder: options.bootOrder,
      fwCfg: firmware === undefined ? undefined : { vcpus: config.vcpus },
      deliver: (message) => {
        // Fixed and lowest-priority messages to the addressed APIC (physical) or vCPU 0.
        if (message.deliveryMode > 1) return;
        const target =
          localApics.find(
            (wiring) => !message.logical && wiring.apic.apicId === message.destination,
          ) ?? localApics[0];
        target?.apic.acceptInterrupt(message.vector, message.level);
        domain.vcpus[localApics.indexOf(target)]?.kick();
      },
    });
    console.platform = platform;
    if (acpi && platform.fwCfg !== null) {
      // Firmware boot: the same tables through fw_cfg, which SeaBIOS places and links (see ../builder/acpi.ts).
      const files = buildPcAcpiLoader({
        vcpus: config.vcpus,
        ioApicId: config.vcpus,
        ioApicAddress: IO_APIC_DEFAULT_BASE,
        ramBelow4G: memory.ram.size,
        serialPorts: 1 + (options.serialPorts?.length ?? 0),
      });
      platform.fwCfg.addFile(ACPI_TABLES_FILE, files.tables);
      platform.fwCfg.addFile(ACPI_RSDP_FILE, files.rsdp);
      platform.fwCfg.addFile(ACPI_LOADER_FILE, files.loader);
    }

    for (let id = 0; id < config.vcpus; id++) {
      const cpu = createX86Cpu({ memory, io: platform.bus });
      if (
        id === 0 &&
        images.kernel !== undefined &&
        bootSector === undefined &&
        firmware === undefined &&
        options.mpTable !== false
      ) {
        const leaf1 = new Uint32Array(4);
        cpu.model.query(1, 0, leaf1);
        writeMpTable(guestBootMemory(memory), {
          vcpus: config.vcpus,
          ioApicId: config.vcpus,
          ioApicAddress: IO_APIC_DEFAULT_BASE,
          localApicAddress: LOCAL_APIC_DEFAULT_BASE,
          cpuSignature: leaf1[0],
          // CPUID.1:EDX with the APIC bit the toolstack's LAPIC sets (SDM vol. 2A table 3-11).
          cpuFeatures: (leaf1[3] | (1 << 9)) >>> 0,
          pciDevices: platform.xenPlatform === null ? [] : [2],
        });
      }
      if (id === 0 && multiboot !== undefined) {
        // Multiboot 3.2: flat 32-bit protected mode, paging off, EAX = magic, EBX = boot information.
        cpu.setFlatProtectedMode(multiboot.entry);
        cpu.regs[EAX] = MULTIBOOT_BOOTLOADER_MAGIC | 0;
        cpu.regs[EBX] = multiboot.infoAddress;
      } else if (id === 0 && firmware !== undefined) {
        // Power-on state: real mode at F000:FFF0 with CS.base 0xFFFF0000.
        cpu.reset();
      } else if (id === 0 && bootSector !== undefined) {
        // What a BIOS leaves for a boot sector: CS:IP = 0000:7C00, DL = boot drive.
        cpu.setRealMode(0, BOOT_SECTOR_ADDRESS);
        cpu.regs[EDX] = 0x80;
      } else if (id === 0) {
        // boot.rst 32-bit boot protocol: flat __BOOT_CS/__BOOT_DS, paging and interrupts off, ESI = boot_params.
        cpu.setFlatProtectedMode(layout.entry);
        cpu.regs[ESI] = layout.bootParamsAddress;
      }
      domain.attachVcpu(id, cpu);
      // Level-triggered EOIs reach the I/O APIC's remote IRR (82093AA 3.2.4; Xen vlapic -> vioapic_update_EOI).
      const wiring = attachLocalApic(domain, id, cpu, memory, (vector) =>
        platform.ioapic.eoi(vector),
      );
      if (id === 0) {
        // Virtual wire mode (MP spec 1.4, 3.6.2.2): the BSP's LINT0 takes the 8259A as ExtINT,
        // as a PC BIOS leaves it and QEMU's APIC resets the BSP to (LVT0 = 0x700). A write
        // through the register would be masked while the APIC is software-disabled.
        const state = wiring.apic.state();
        const lvt = [...state.lvt];
        lvt[LvtIndex.Lint0] = LVT_MODE_EXTINT;
        wiring.apic.fromState({ ...state, lvt });
      }
      localApics.push(wiring);
      // Outermost, so that it answers before the hypervisor's leaves.
      if (options.hideXenCpuid) hideXenLeaves(cpu);
      cpu.interrupts = new HvmInterruptSource(domain.vcpus[id], wiring, id === 0 ? platform : null);
    }
    if (!options.paused) domain.unpause();
    return {
      domain,
      layout,
      console,
      pvConsole,
      consolePort,
      storePort,
      storePage,
      localApics,
      platform,
      get exitStatus() {
        return exitStatus;
      },
    };
  } catch (error) {
    hypervisor.destroyDomain(domain.domid);
    throw error;
  }
}
