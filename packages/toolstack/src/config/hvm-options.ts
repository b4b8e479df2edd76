/**
 * The xl.cfg keys of an HVM domain that Kumo reads beyond the common ones
 * (xl.cfg(5) "Fully-virtualised (HVM) Guest Specific Options", and two of
 * Kumo's own for the test-harness ports):
 *
 * - `serial = "pty"` (or a list, one entry per port COM1-COM4 in order, as
 *   xl hands them to QEMU's `-serial`: `[ "pty", "file:/tmp/com2.log", "null" ]`).
 *   `"pty"` (COM1 only): the domain's console, which `kumo create -c`
 *   attaches to, as `xl console` does for an HVM guest. `"file:<path>"`: what
 *   the guest transmits is appended to the file (no input). `"null"` or
 *   `"none"`: the port is there with nothing behind it (COM1 is always
 *   there, as before). The ports sit where QEMU's isa-serial puts them:
 *   COM1 0x3F8 IRQ 4, COM2 0x2F8 IRQ 3, COM3 0x3E8 IRQ 4, COM4 0x2E8 IRQ 3.
 *   Default "pty".
 * - `firmware = "seabios"` or a path: boot the firmware image (SeaBIOS's
 *   bios.bin for "seabios") instead of a kernel; `kernel` may then be left
 *   out. The firmware sees no Xen CPUID leaves (SeaBIOS's Xen mode needs
 *   hvmloader's tables). SeaBIOS prints its log on port 0x402 when it finds
 *   a debug console there: set `debugcon_port = 0x402` to see it.
 * - `xen_platform_pci = 1`: the Xen platform PCI device (5853:0001) and its
 *   unplug ports, through which Linux switches to its PV frontends (PVHVM
 *   disks and NICs). xl's default is 1; Kumo's is 0 for now.
 * - `vga = "stdvga"`: QEMU's standard VGA (PCI 1234:1111 with Debian's
 *   vgabios-stdvga.bin in its ROM BAR, `PcPlatform.addVga`); `"none"`: no
 *   VGA, Kumo's default for now (xl's is "cirrus", which Kumo does not
 *   emulate, so `"cirrus"` is refused rather than silently replaced).
 * - `debugcon_port = 0xe9`: the Bochs/QEMU debug console port (QEMU
 *   `isa-debugcon,iobase=`); its lines go to the hypervisor log. `"none"`: no port.
 * - `debugcon = "file:<path>"`: the debug console's bytes are appended to the
 *   file as the guest writes them (QEMU `-debugcon file:<path>`) instead of
 *   going to the log; `"log"`, the default, keeps them in the log.
 * - `debug_exit_port = 0xf4`: QEMU's `isa-debug-exit` port; a write of v
 *   ends the domain and `kumo create -c` exits with (v << 1) | 1. `"none"`: no port.
 * - `boot = "cd"` (xl.cfg(5) "boot"): the firmware's boot order, up to three
 *   of `c` (hard disk), `d` (CD-ROM), `n` (network) and `a`/`b` (floppy), tried
 *   in turn; default "cd", as xl's. xl hands it to QEMU (`-boot order=`),
 *   which gives SeaBIOS the order in CMOS bytes 0x3D and 0x38 (QEMU
 *   hw/i386/pc.c set_boot_dev; SeaBIOS src/boot.c boot_init reads them when
 *   built for QEMU, as Debian's bios.bin is); Kumo writes the same bytes.
 */
import { XlConfigError } from "./errors";
import { parseXlConfigText, type XlValue } from "./syntax";

/** Debian's SeaBIOS (package seabios), what `firmware = "seabios"` names. */
export const SEABIOS_PATH = "/usr/share/seabios/bios.bin";
/** Debian's VGA BIOS for QEMU's stdvga (package seabios), what `vga = "stdvga"` loads. */
export const VGABIOS_STDVGA_PATH = "/usr/share/seabios/vgabios-stdvga.bin";

/** What is behind a serial port (xl.cfg `serial` entry). */
export type SerialBackend =
  | { readonly kind: "pty" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "null" };

/** Where the debug console's bytes go (xl.cfg `debugcon`). */
export type DebugconBackend =
  | { readonly kind: "log" }
  | { readonly kind: "file"; readonly path: string };

/** The PC's serial ports as QEMU's isa-serial places them (QEMU hw/char/serial-isa.c isa_serial_io/isa_serial_irq). */
export const PC_SERIAL_PORTS: readonly { readonly port: number; readonly irq: number }[] = [
  { port: 0x3f8, irq: 4 },
  { port: 0x2f8, irq: 3 },
  { port: 0x3e8, irq: 4 },
  { port: 0x2e8, irq: 3 },
];

export interface HvmOptions {
  /** COM1's backend: the domain console ("pty") or nothing ("none"). */
  readonly serial: "pty" | "none";
  /**
   * Every serial port, COM1 first (1-4 entries; COM1 is always present, as
   * before: "none" for it is `{ kind: "null" }`).
   */
  readonly serialPorts: readonly SerialBackend[];
  /** xl.cfg `debugcon`: where the debug console's bytes go (default the log). */
  readonly debugcon: DebugconBackend;
  /** The firmware image path, or undefined for direct kernel boot. */
  readonly firmware: string | undefined;
  readonly debugconPort: number | null;
  readonly debugExitPort: number | null;
  /** xl.cfg `xen_platform_pci` (Kumo's default: off, see the file comment). */
  readonly xenPlatformPci: boolean;
  /** xl.cfg `vga = "stdvga"`; absent for "none", the default (see the file comment). */
  readonly vga?: "stdvga";
  /** xl.cfg `boot`: the boot order, one to three of "a", "b", "c", "d", "n"; absent: "cd" (the platform's default). */
  readonly boot?: string;
}

export const HVM_CONFIG_KEYS = [
  "serial",
  "firmware",
  "debugcon_port",
  "debugcon",
  "debug_exit_port",
  "xen_platform_pci",
  "vga",
  "boot",
] as const;

function port(
  source: string,
  value: XlValue | undefined,
  key: string,
  fallback: number,
): number | null {
  if (value === undefined) return fallback;
  if (value.kind === "string" && value.value === "none") return null;
  if (value.kind !== "number" || !Number.isInteger(value.value) || value.value > 0xffff)
    throw new XlConfigError(
      source,
      value.position,
      `expected ${key} to be an I/O port number 0-0xffff, or "none"`,
    );
  return value.value;
}

/** Reads the HVM keys of an xl.cfg text (already checked by parseDomainConfig). */
export function parseHvmOptions(text: string, source = "<config>"): HvmOptions {
  const settings = parseXlConfigText(text, source).settings;
  let serial: "pty" | "none" = "pty";
  const serialPorts: SerialBackend[] = [{ kind: "pty" }];
  const serialSetting = settings.get("serial")?.value;
  if (serialSetting !== undefined) {
    const items = serialSetting.kind === "list" ? serialSetting.items : [serialSetting];
    const refuse = (position: typeof serialSetting.position, why: string): never => {
      throw new XlConfigError(
        source,
        position,
        `${why}: expected serial = "pty" or a list of up to ${PC_SERIAL_PORTS.length} entries (COM1 first) of "pty" (COM1 only), "file:<path>", "null" or "none"`,
      );
    };
    if (items.length === 0) refuse(serialSetting.position, "empty serial list");
    if (items.length > PC_SERIAL_PORTS.length)
      refuse(serialSetting.position, `${items.length} serial ports (the PC has COM1-COM4)`);
    serialPorts.length = 0;
    for (const [index, item] of items.entries()) {
      if (item.kind !== "string") {
        refuse(item.position, `COM${index + 1} is not a string`);
        continue;
      }
      const value = item.value;
      if (value === "pty") {
        if (index !== 0)
          refuse(item.position, `"pty" for COM${index + 1} (only COM1 is the domain console)`);
        serialPorts.push({ kind: "pty" });
      } else if (value === "null" || value === "none") {
        if (index === 0) serial = "none";
        serialPorts.push({ kind: "null" });
      } else if (value.startsWith("file:") && value.length > 5) {
        if (index === 0) serial = "none";
        serialPorts.push({ kind: "file", path: value.slice(5) });
      } else {
        refuse(
          item.position,
          `unsupported serial backend ${JSON.stringify(value)} for COM${index + 1}`,
        );
      }
    }
  }
  let firmware: string | undefined;
  const firmwareSetting = settings.get("firmware")?.value;
  if (firmwareSetting !== undefined) {
    if (firmwareSetting.kind !== "string" || firmwareSetting.value === "")
      throw new XlConfigError(
        source,
        firmwareSetting.position,
        'expected firmware = "seabios" or the path of a firmware image',
      );
    if (firmwareSetting.value === "ovmf" || firmwareSetting.value === "uefi")
      throw new XlConfigError(
        source,
        firmwareSetting.position,
        'expected firmware = "seabios" or a path (Kumo has no UEFI firmware)',
      );
    firmware =
      firmwareSetting.value === "seabios" || firmwareSetting.value === "bios"
        ? SEABIOS_PATH
        : firmwareSetting.value;
  }
  const platformSetting = settings.get("xen_platform_pci")?.value;
  if (
    platformSetting !== undefined &&
    (platformSetting.kind !== "number" ||
      (platformSetting.value !== 0 && platformSetting.value !== 1))
  )
    throw new XlConfigError(source, platformSetting.position, "expected xen_platform_pci = 0 or 1");
  const vgaSetting = settings.get("vga")?.value;
  if (
    vgaSetting !== undefined &&
    (vgaSetting.kind !== "string" || (vgaSetting.value !== "stdvga" && vgaSetting.value !== "none"))
  )
    throw new XlConfigError(
      source,
      vgaSetting.position,
      'expected vga = "stdvga" or "none" (Kumo emulates no cirrus or qxl card)',
    );
  const bootSetting = settings.get("boot")?.value;
  if (
    bootSetting !== undefined &&
    (bootSetting.kind !== "string" || !/^[abcdn]{1,3}$/.test(bootSetting.value))
  )
    throw new XlConfigError(
      source,
      bootSetting.position,
      'expected boot = up to three of "c" (hard disk), "d" (CD-ROM), "n" (network), "a" or "b" (floppy), e.g. "dc"',
    );
  let debugcon: DebugconBackend = { kind: "log" };
  const debugconSetting = settings.get("debugcon")?.value;
  if (debugconSetting !== undefined) {
    if (debugconSetting.kind === "string" && debugconSetting.value === "log") {
      debugcon = { kind: "log" };
    } else if (
      debugconSetting.kind === "string" &&
      debugconSetting.value.startsWith("file:") &&
      debugconSetting.value.length > 5
    ) {
      debugcon = { kind: "file", path: debugconSetting.value.slice(5) };
    } else {
      throw new XlConfigError(
        source,
        debugconSetting.position,
        'expected debugcon = "file:<path>" or "log" (the default: the hypervisor log)',
      );
    }
  }
  return {
    ...(bootSetting?.kind === "string" ? { boot: bootSetting.value } : {}),
    ...(vgaSetting?.kind === "string" && vgaSetting.value === "stdvga" ? { vga: "stdvga" } : {}),
    xenPlatformPci: platformSetting?.kind === "number" && platformSetting.value === 1,
    serial,
    serialPorts,
    debugcon,
    firmware,
    debugconPort: port(source, settings.get("debugcon_port")?.value, "debugcon_port", 0xe9),
    debugExitPort: port(source, settings.get("debug_exit_port")?.value, "debug_exit_port", 0xf4),
  };
}
