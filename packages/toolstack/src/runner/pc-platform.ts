/**
 * The emulated PC of an HVM domain, what Xen's hvmloader/QEMU pair and its
 * in-hypervisor models (vpic, vpt, vrtc, vioapic) give a fully virtualized
 * guest, built from `@kumo/device-models`:
 *
 *   ports 0x20/0xA0/0x4D0  8259A pair with ELCR     port 0x40-0x43, 0x61  8254 PIT
 *   ports 0x70-0x71        MC146818 RTC (IRQ 8)     ports 0x60, 0x64      i8042 (IRQ 1, 12)
 *   port 0x92              fast A20 and reset       ports 0xCF8-0xCFF     PCI host (i440FX, PIIX3), 0xCF9 reset
 *   ports 0x3F8-0x3FF      COM1 16550A (IRQ 4)      port 0xE9 (config)    debug console
 *   with `serialPorts`: COM2 0x2F8 (IRQ 3), COM3 0x3E8 (IRQ 4), COM4 0x2E8 (IRQ 3), 16550As
 *   port 0xF4 (config)     isa-debug-exit           MMIO 0xFEC00000       82093AA I/O APIC
 *   with `addVga`: ports 0x3B0-0x3DF, 0x1CE-0x1CF    stdvga PCI function 00:03.0 (ROM BAR)
 *   with `acpiPm`: ports 0xB000-0xB00B               ACPI PM1 event/control and PM timer (SCI: IRQ 9)
 *   with `fwCfg`: ports 0x510-0x511, 0x514-0x51B     QEMU fw_cfg (selector/data, DMA address)
 *   ports 0x1F0-0x1F7, 0x3F6 (IRQ 14), 0x170-0x177, 0x376 (IRQ 15), and BAR 4 (16 ports where the
 *   firmware puts it): PIIX3 IDE 00:01.1 with bus-master DMA; the boot order in CMOS 0x3D/0x38
 *
 * Two UARTs share IRQ 4 (COM1, COM3) and IRQ 3 (COM2, COM4): their
 * interrupt outputs are wired-ORed onto the ISA line, so the line is high
 * while either UART asserts it. On an edge-triggered line a second UART's
 * interrupt then makes no new edge; Linux's 8250 driver copes by polling
 * every port on a shared IRQ until a whole pass finds none pending
 * (drivers/tty/serial/8250/8250_core.c serial8250_interrupt), which needs
 * the OR: a last-writer-wins line would drop to 0 when one UART clears
 * while the other still asserts, losing that one's interrupt for good.
 *
 * ISA IRQ n goes to the PIC's IR n and to I/O APIC pin n, except IRQ 0,
 * which reaches pin 2 (the interrupt source override every PC's MP table
 * and MADT describe). The PIT's and RTC's timers are the domain's device
 * timers (`domain.createTimer`), run by the scheduler on the domain's clock
 * like the toolstack's local APIC timer.
 */
import {
  ACPI_PM_WINDOW_SIZE,
  AcpiPm,
  CmosRtc,
  DebugConsole,
  DebugExit,
  FW_CFG_DMA_IO_BASE,
  FW_CFG_DMA_IO_SIZE,
  FW_CFG_IO_BASE,
  FW_CFG_IO_SIZE,
  FwCfg,
  FwCfgKey,
  I8042,
  IdeCdrom,
  IdeController,
  type IdeDevice,
  IO_APIC_DEFAULT_BASE,
  IO_APIC_SIZE,
  IoApic,
  type IoApicMessage,
  PciHost,
  PicPair,
  Pit8254,
  PortBus,
  ResetControl,
  Serial16550,
  SystemControlPortA,
  VGA_WINDOW_BASE,
  VGA_WINDOW_SIZE,
  Vga,
  XEN_PLATFORM_IO_BASE,
  XenPlatformDevice,
} from "@kumo/device-models";
import type { DeviceTimer, Domain } from "@kumo/hypervisor-core";
import { type ArrayBufferGuestMemory, GuestMemoryConfigError } from "@kumo/mmu";

export interface PcPlatformOptions {
  /** Debug console port (QEMU isa-debugcon iobase), default 0xE9; null: none. */
  readonly debugconPort?: number | null;
  /** Exit port (QEMU isa-debug-exit iobase), default 0xF4; null: none. */
  readonly exitPort?: number | null;
  /** Bytes the guest writes to the debug console. */
  readonly debugconOutput?: (byte: number) => void;
  /** Bytes the guest transmits on COM1. */
  readonly serialOutput?: (byte: number) => void;
  /**
   * COM2, COM3, COM4 in turn (as many as given, at most 3): each entry is
   * where that port's transmitted bytes go (undefined: nowhere, a port with
   * nothing behind it). Absent or empty: COM1 only.
   */
  readonly serialPorts?: readonly (((byte: number) => void) | undefined)[];
  /** The guest read COM1's receive buffer (room for more host input). */
  readonly serialDrained?: () => void;
  /** The guest wrote the exit port: the machine ends with `status`. */
  readonly exit?: (status: number) => void;
  /** A reset request (keyboard controller, port 0x92, 0xCF9). */
  readonly reset?: (source: string) => void;
  /**
   * Add the ACPI PM block (`AcpiPm`: PM1 event/control, PM timer) at I/O
   * `base` with its SCI on ISA IRQ 9, in ACPI mode from the start (the FADT
   * has no SMI_CMD); `sleep` gets each SLP_EN write's SLP_TYP.
   */
  readonly acpiPm?: { readonly base: number; sleep(sleepType: number): void };
  /** The PIC's INTR rose or an I/O APIC message arrived: wake the vCPU. */
  readonly kick: () => void;
  /** Add the Xen platform PCI device at 00:02.0 and its unplug ports 0x10-0x13 (xl.cfg xen_platform_pci). */
  readonly xenPlatform?: boolean;
  /** The I/O APIC's ID (distinct from the local APICs'; default 0). */
  readonly ioApicId?: number;
  /** An I/O APIC message for the local APICs. */
  readonly deliver?: (message: IoApicMessage) => void;
  /** IDE disks and CD-ROM drives [hda, hdb, hdc, hdd] on the PIIX3 IDE function 00:01.1 (primary IRQ 14, secondary IRQ 15). */
  readonly ideDisks?: readonly (IdeDevice | null | undefined)[];
  /** The firmware's boot order (xl.cfg `boot`): up to three of a/b, c, d, n; default "cd". */
  readonly bootOrder?: string;
  /**
   * Add QEMU's fw_cfg (`@kumo/device-models`' `FwCfg`, DMA through guest
   * memory) with the items QEMU's PC gives SeaBIOS that describe this
   * platform (see `addPcFirmwareConfig`); the domain builder adds its own
   * files (the ACPI tables) to `platform.fwCfg` before the guest runs.
   */
  readonly fwCfg?: { readonly vcpus: number };
}

export interface PcPlatform {
  readonly bus: PortBus;
  readonly pic: PicPair;
  readonly pit: Pit8254;
  readonly rtc: CmosRtc;
  readonly ioapic: IoApic;
  readonly keyboard: I8042;
  readonly pci: PciHost;
  readonly com1: Serial16550;
  /** The serial ports present, COM1 first (`serialPorts`). */
  readonly com: readonly Serial16550[];
  readonly port92: SystemControlPortA;
  /** The Xen platform PCI device, when asked for. */
  readonly xenPlatform: XenPlatformDevice | null;
  /** The ACPI PM block, when asked for (`acpiPm`). */
  readonly acpiPm: AcpiPm | null;
  /** The PIIX3 IDE controller (always present, as on a PIIX3; its channels may be empty). */
  readonly ide: IdeController;
  /** The VGA, once `addVga` added it. */
  readonly vga: Vga | null;
  /** QEMU's fw_cfg, when asked for (`fwCfg`). */
  readonly fwCfg: FwCfg | null;
  /**
   * Adds QEMU's "stdvga" (xl.cfg `vga = "stdvga"`): the VGA ports
   * 0x3B0-0x3DF, the Bochs dispi ports 0x1CE-0x1CF and the PCI function
   * 1234:1111 at 00:03.0 whose expansion ROM BAR carries `rom` (Debian's
   * /usr/share/seabios/vgabios-stdvga.bin), which SeaBIOS copies to 0xC0000
   * and runs. Call before the guest runs.
   *
   * Stopgap: guest RAM covers 0xA0000-0xBFFFF and `@kumo/mmu` refuses MMIO
   * over RAM, so the guest's accesses to the legacy window reach RAM, not the
   * VGA's planes; `vgaTextScreen()` first copies that RAM into the VGA
   * (`Vga.loadLinearWindow`), which is exact for odd/even text mode and a
   * font loaded through plane 2 alone, as the VGA BIOS does.
   */
  addVga(rom: Uint8Array): Vga;
  /** The VGA text screen (see `addVga`), or [] without a VGA. */
  vgaTextScreen(): string[];
  /** Drives ISA IRQ `irq` (PIC IR and I/O APIC pin). */
  setIsaIrq(irq: number, level: boolean): void;
  /** Stops the device timers. */
  close(): void;
}

/** The CMOS boot-order bytes QEMU's PC writes and SeaBIOS reads (src/hw/rtc.h CMOS_BIOS_BOOTFLAG1/2). */
const CMOS_BOOTFLAG1 = 0x38;
const CMOS_BOOTFLAG2 = 0x3d;
/** Boot device codes (QEMU hw/i386/pc.c boot_device2nibble). */
const BOOT_DEVICE_CODES: Readonly<Record<string, number>> = { a: 1, b: 1, c: 2, d: 3, n: 4 };

/**
 * The boot order as QEMU's set_boot_dev leaves it: devices 1 and 2 in byte
 * 0x3D (low, high nibble), device 3 in the high nibble of 0x38, whose bit 0
 * (skip the floppy boot signature check) stays clear. SeaBIOS's boot_init
 * gives these devices priorities 101-103 and every other one the default.
 * Written through ports 0x70/0x71, as the NVRAM is the guest's; the index
 * is left at 0 with NMIs enabled, as at power-on.
 */
function writeBootOrder(rtc: CmosRtc, order: string): void {
  const codes = [...order].map((device) => BOOT_DEVICE_CODES[device]);
  if (codes.length > 3 || codes.some((code) => code === undefined))
    throw new RangeError(`boot order "${order}" is not up to three of a, b, c, d and n`);
  const write = (index: number, value: number) => {
    rtc.write(0, 1, index);
    rtc.write(1, 1, value);
  };
  write(CMOS_BOOTFLAG2, ((codes[1] ?? 0) << 4) | (codes[0] ?? 0));
  write(CMOS_BOOTFLAG1, (codes[2] ?? 0) << 4);
  rtc.write(0, 1, 0);
}

/** Where QEMU's PC puts the PIIX3 IDE function in an OpenFirmware device path (SeaBIOS build_pci_path). */
const IDE_DEVICE_PATH = "/pci@i0cf8/ide@1,1";
/** The e820 entry types fw_cfg "etc/e820" uses (QEMU hw/i386/e820_memory_layout.h). */
const E820_RAM = 1;

/**
 * The fw_cfg "bootorder" file for xl.cfg `boot` (SeaBIOS src/boot.c
 * loadBootOrder: one OpenFirmware path per line, earlier lines first):
 * for each letter, the IDE devices of that kind in hda..hdd order, as
 * SeaBIOS names an ATA drive ("/pci@i0cf8/ide@1,1/drive@<channel>/disk@<unit>",
 * bootprio_find_ata_device; a CD-ROM's path is the same). `a` and `n` add
 * nothing (no floppy controller; a NIC's ROM keeps the CMOS priority). The
 * CMOS bytes (`writeBootOrder`) give the same order by device kind, which
 * SeaBIOS still applies to whatever the file does not list.
 */
export function bootOrderFile(
  order: string,
  ideDevices: readonly (IdeDevice | null | undefined)[],
): string {
  const lines: string[] = [];
  for (const letter of order) {
    const cdrom = letter === "d";
    if (letter !== "c" && !cdrom) continue;
    ideDevices.forEach((device, slot) => {
      if (slot > 3 || device === null || device === undefined) return;
      if (device instanceof IdeCdrom !== cdrom) return;
      lines.push(`${IDE_DEVICE_PATH}/drive@${slot >> 1}/disk@${slot & 1}`);
    });
  }
  // QEMU get_boot_devices_list: lines joined by "\n", NUL-terminated; empty when there are none.
  return lines.length === 0 ? "" : `${lines.join("\n")}\0`;
}

/**
 * Fills `fwCfg` with what QEMU's PC (hw/i386/fw_cfg.c fw_cfg_arch_create,
 * hw/nvram/fw_cfg.c) gives the firmware about the machine, as Kumo's PC
 * is: CPUs present (the BSP; see below) and the APIC ID limit (`vcpus`:
 * APIC IDs 0 .. vcpus - 1), the RAM size, no NUMA nodes, IRQ0 on I/O APIC pin 2 (the
 * override SeaBIOS then puts in its MP table, "etc/irq0-override", as
 * `setIsaIrq` wires it), graphics on, no boot menu (QEMU's default: SeaBIOS
 * then skips "Press ESC for boot menu" and its wait), "etc/e820" with the
 * RAM the CMOS bytes also give (0 up to the RAM size: the platform's RAM
 * lies below the PCI hole), and "bootorder" (`bootOrderFile`). The legacy
 * SMBIOS item stays empty, so SeaBIOS builds its own SMBIOS tables as
 * without fw_cfg; "etc/boot-fail-wait" is left out, so SeaBIOS keeps its
 * default (retry after 60 s).
 */
function addPcFirmwareConfig(
  fwCfg: FwCfg,
  vcpus: number,
  ramSize: number,
  bootOrder: string,
  ideDevices: readonly (IdeDevice | null | undefined)[],
): void {
  // CPUs present: 1, the BSP. SeaBIOS's smp_setup sends INIT-SIPI-SIPI and waits until as
  // many CPUs as this item says have checked in (src/fw/smp.c), and the HVM PC's vCPUs do not
  // answer INIT/SIPI yet: a larger count would hang the POST. The APIC ID limit is all vCPUs.
  fwCfg.setNumber(FwCfgKey.NB_CPUS, 1, 2);
  fwCfg.setNumber(FwCfgKey.MAX_CPUS, vcpus, 2);
  fwCfg.setNumber(FwCfgKey.RAM_SIZE, ramSize, 8);
  fwCfg.setNumber(FwCfgKey.NOGRAPHIC, 0, 2);
  fwCfg.setNumber(FwCfgKey.BOOT_MENU, 0, 2);
  fwCfg.setNumber(FwCfgKey.IRQ0_OVERRIDE, 1, 4);
  // NUMA: a node count of 0, then one node per possible APIC ID and per node (all 0).
  fwCfg.setItem(FwCfgKey.NUMA, new Uint8Array(8 * (1 + vcpus)));
  // struct e820_entry { u64 address; u64 length; u32 type; } packed.
  const e820 = new Uint8Array(20);
  const view = new DataView(e820.buffer);
  view.setUint32(8, ramSize % 0x100000000, true);
  view.setUint32(12, Math.floor(ramSize / 0x100000000), true);
  view.setUint32(16, E820_RAM, true);
  fwCfg.addFile("etc/e820", e820);
  fwCfg.addFile("bootorder", new TextEncoder().encode(bootOrderFile(bootOrder, ideDevices)));
}

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
/** COM1-COM4's base ports and ISA IRQs, QEMU isa-serial's defaults (hw/char/serial-isa.c isa_serial_io, isa_serial_irq). */
export const COM_PORTS: readonly number[] = [0x3f8, 0x2f8, 0x3e8, 0x2e8];
export const COM_IRQS: readonly number[] = [4, 3, 4, 3];

export function createPcPlatform(
  domain: Domain,
  memory: ArrayBufferGuestMemory,
  options: PcPlatformOptions,
): PcPlatform {
  const bus = new PortBus();
  const pic = new PicPair({
    interrupt: (asserted) => {
      if (asserted) options.kick();
    },
  });
  const ioapic = new IoApic({
    id: options.ioApicId,
    deliver: (message) => {
      options.deliver?.(message);
      options.kick();
    },
  });
  const setIsaIrq = (irq: number, level: boolean) => {
    pic.setIrq(irq, level);
    ioapic.setIrq(irq === 0 ? 2 : irq, level);
  };
  const clock = (fire: () => void) => {
    const timer = domain.createTimer(fire);
    timers.push(timer);
    return { now: () => domain.clock.now(), schedule: (at: number) => timer.set(at) };
  };
  const timers: DeviceTimer[] = [];
  const pit: Pit8254 = new Pit8254({
    clock: clock(() => pit.timerExpired()),
    irq: (level) => setIsaIrq(0, level),
  });
  const rtc: CmosRtc = new CmosRtc({
    clock: clock(() => rtc.timerExpired()),
    irq: (level) => setIsaIrq(8, level),
    // The guest's wall clock starts at the domain clock's idea of now (Xen's wallclock).
    memorySize: memory.ram.size,
  });
  writeBootOrder(rtc, options.bootOrder ?? "cd");
  const reset = (source: string) => () => options.reset?.(source);
  const keyboard = new I8042({
    keyboardIrq: (level) => setIsaIrq(1, level),
    auxIrq: (level) => setIsaIrq(12, level),
    reset: reset("keyboard controller"),
  });
  const port92 = new SystemControlPortA({ reset: reset("port 0x92") });
  let vga: Vga | null = null;
  let romMapped: number | null = null;
  const VGA_PCI_DEVICE = 3;
  const pci = new PciHost({
    resetControl: new ResetControl({ reset: reset("reset control register 0xcf9") }),
    onConfigWrite: (device, fn, register) => {
      if (device === 1 && fn === 1 && (register < 8 || (register >= 0x20 && register < 0x24)))
        mapBusMaster();
      if (vga === null || device !== VGA_PCI_DEVICE || (register !== 4 && register < 0x30)) return;
      if (register > 0x33) return;
      // Follow the ROM BAR (PCI 3.0 6.2.5.2): decode at its address while enabled with memory space on.
      const next = vga.romAddress();
      if (next === romMapped) return;
      if (romMapped !== null) memory.removeMmio(romMapped);
      romMapped = null;
      if (next === null) return;
      try {
        memory.addMmio(next, vga.rom.length, vga.romWindow);
        romMapped = next;
      } catch (error) {
        // A BAR over RAM or another device: RAM or the other device wins, the ROM is not seen.
        if (!(error instanceof GuestMemoryConfigError)) throw error;
      }
    },
  });
  const extraSerial = options.serialPorts ?? [];
  if (extraSerial.length > COM_PORTS.length - 1)
    throw new RangeError(
      `serialPorts: ${extraSerial.length} ports beyond COM1 (the PC has COM2-COM4: at most 3)`,
    );
  // The UARTs asserting each ISA IRQ line, one bit per port (wired OR, see the file comment).
  const comLevels = new Uint8Array(16);
  const comInterrupt = (index: number) => {
    const irq = COM_IRQS[index] as number;
    const bit = 1 << index;
    return (asserted: boolean) => {
      const before = comLevels[irq] as number;
      const after = asserted ? before | bit : before & ~bit;
      comLevels[irq] = after;
      if ((before !== 0) !== (after !== 0)) setIsaIrq(irq, after !== 0);
    };
  };
  const com1 = new Serial16550({
    output: options.serialOutput,
    interrupt: comInterrupt(0),
  });
  const com: Serial16550[] = [com1];
  for (let index = 0; index < extraSerial.length; index++) {
    const output = extraSerial[index];
    com.push(new Serial16550({ output, interrupt: comInterrupt(index + 1) }));
  }

  bus.register(0x20, 2, pic.master, "8259A master");
  bus.register(0xa0, 2, pic.slave, "8259A slave");
  bus.register(0x4d0, 2, pic.elcr, "ELCR");
  bus.register(0x40, 4, pit, "8254 PIT");
  bus.register(0x61, 1, pit.speakerPort, "port 0x61");
  bus.register(0x70, 2, rtc, "CMOS RTC");
  bus.register(0x60, 1, keyboard.data, "i8042 data");
  bus.register(0x64, 1, keyboard.command, "i8042 command");
  bus.register(0x92, 1, port92, "port 0x92");
  bus.register(0xcf8, 4, pci.address, "PCI CONFIG_ADDRESS");
  bus.register(0xcfc, 4, pci.data, "PCI CONFIG_DATA");
  bus.register(
    COM1_PORT,
    8,
    {
      read(offset, size) {
        const value = com1.read(offset, size);
        if (offset === 0) options.serialDrained?.();
        return value;
      },
      write: (offset, size, value) => com1.write(offset, size, value),
    },
    "COM1",
  );
  for (let index = 1; index < com.length; index++)
    bus.register(COM_PORTS[index] as number, 8, com[index] as Serial16550, `COM${index + 1}`);
  const debugconPort = options.debugconPort === undefined ? 0xe9 : options.debugconPort;
  if (debugconPort !== null) {
    bus.register(
      debugconPort,
      1,
      new DebugConsole({ output: options.debugconOutput ?? (() => {}) }),
      "debug console",
    );
  }
  const exitPort = options.exitPort === undefined ? 0xf4 : options.exitPort;
  if (exitPort !== null) {
    bus.register(
      exitPort,
      1,
      new DebugExit({ exit: (status) => options.exit?.(status) }),
      "exit port",
    );
  }
  memory.addMmio(IO_APIC_DEFAULT_BASE, IO_APIC_SIZE, ioapic);
  // With guest memory the PIIX3 function has its bus master (BAR 4), mapped where the firmware puts it.
  const ide = new IdeController({ disks: options.ideDisks, irq: setIsaIrq, memory });
  pci.addFunction(1, 1, ide.pci);
  ide.register(bus);
  let busMasterMapped: number | null = null;
  function mapBusMaster(): void {
    const next = ide.busMasterBase();
    if (next === busMasterMapped) return;
    if (busMasterMapped !== null) bus.unregister(busMasterMapped);
    busMasterMapped = null;
    if (next === null) return;
    // A BAR over another device's ports: that device keeps them and the bus master is not seen.
    for (let port = next; port < next + 16; port++) if (bus.claims(port)) return;
    bus.register(next, 16, ide.busMaster, "IDE bus master");
    busMasterMapped = next;
  }
  let xenPlatform: XenPlatformDevice | null = null;
  if (options.xenPlatform) {
    xenPlatform = new XenPlatformDevice({
      unplug: (mask) =>
        domain.hypervisor.log(`d${domain.domid}: Xen platform: unplug request ${mask}`),
    });
    // Where hvmloader would put its BARs: I/O 0xC000, memory 0xF0000000 (the MMIO hole's start).
    xenPlatform.assign(0xc000, 0xf0000000);
    pci.addFunction(2, 0, xenPlatform.pci);
    bus.register(XEN_PLATFORM_IO_BASE, 4, xenPlatform.ports, "Xen platform unplug ports");
  }

  let acpiPm: AcpiPm | null = null;
  const acpiPmOptions = options.acpiPm;
  if (acpiPmOptions !== undefined) {
    // The SCI is ISA IRQ 9, level, active high (the MADT's override says so).
    const pm: AcpiPm = new AcpiPm({
      clock: clock(() => pm.timerExpired()),
      sci: (level) => setIsaIrq(9, level),
      sleep: (sleepType) => acpiPmOptions.sleep(sleepType),
      sciEnabled: true,
    });
    acpiPm = pm;
    bus.register(acpiPmOptions.base, ACPI_PM_WINDOW_SIZE, pm, "ACPI PM");
  }

  let fwCfg: FwCfg | null = null;
  if (options.fwCfg !== undefined) {
    fwCfg = new FwCfg({ memory });
    addPcFirmwareConfig(
      fwCfg,
      options.fwCfg.vcpus,
      memory.ram.size,
      options.bootOrder ?? "cd",
      options.ideDisks ?? [],
    );
    bus.register(FW_CFG_IO_BASE, FW_CFG_IO_SIZE, fwCfg.ports, "fw_cfg");
    bus.register(
      FW_CFG_DMA_IO_BASE,
      FW_CFG_DMA_IO_SIZE,
      fwCfg.dmaPorts as FwCfg["ports"],
      "fw_cfg DMA",
    );
  }

  return {
    get vga() {
      return vga;
    },
    fwCfg,
    addVga(rom: Uint8Array): Vga {
      if (vga !== null) return vga;
      const added = new Vga({ rom });
      vga = added;
      bus.register(0x3c0, 0x20, added.ports, "VGA");
      bus.register(0x3b0, 0x10, added.monoPorts, "VGA (monochrome CRTC)");
      bus.register(0x1ce, 2, added.dispiPorts, "Bochs VBE dispi");
      pci.addFunction(VGA_PCI_DEVICE, 0, added.pci);
      return added;
    },
    vgaTextScreen(): string[] {
      if (vga === null) return [];
      const window = new Uint8Array(VGA_WINDOW_SIZE);
      memory.readBytes(VGA_WINDOW_BASE, window);
      vga.loadLinearWindow(window);
      return vga.textScreen();
    },
    bus,
    pic,
    pit,
    rtc,
    ioapic,
    keyboard,
    pci,
    com1,
    com,
    port92,
    xenPlatform,
    acpiPm,
    ide,
    setIsaIrq,
    close() {
      for (const timer of timers) timer.cancel();
    },
  };
}
