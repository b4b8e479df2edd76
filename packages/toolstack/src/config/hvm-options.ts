/**
 * The xl.cfg keys of an HVM domain that Kumo reads beyond the common ones
 * (xl.cfg(5) "Fully-virtualised (HVM) Guest Specific Options", and two of
 * Kumo's own for the test-harness ports):
 *
 * - `serial = "pty"` (or `[ "pty" ]`): COM1 is the domain's console, which
 *   `kumo create -c` attaches to, as `xl console` does for an HVM guest.
 *   `"none"` leaves COM1 in place with nothing attached. Default "pty".
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

export interface HvmOptions {
  readonly serial: "pty" | "none";
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
  const serialSetting = settings.get("serial")?.value;
  if (serialSetting !== undefined) {
    const first = serialSetting.kind === "list" ? serialSetting.items[0] : serialSetting;
    if (first?.kind !== "string" || (first.value !== "pty" && first.value !== "none"))
      throw new XlConfigError(
        source,
        serialSetting.position,
        'expected serial = "pty" or "none" (Kumo has one serial backend: the domain console)',
      );
    serial = first.value;
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
  return {
    ...(bootSetting?.kind === "string" ? { boot: bootSetting.value } : {}),
    ...(vgaSetting?.kind === "string" && vgaSetting.value === "stdvga" ? { vga: "stdvga" } : {}),
    xenPlatformPci: platformSetting?.kind === "number" && platformSetting.value === 1,
    serial,
    firmware,
    debugconPort: port(source, settings.get("debugcon_port")?.value, "debugcon_port", 0xe9),
    debugExitPort: port(source, settings.get("debug_exit_port")?.value, "debug_exit_port", 0xf4),
  };
}
