/**
 * The xl.cfg `vga` key on the host side: `vga = "stdvga"` gives the HVM PC
 * QEMU's standard VGA with Debian's VGA BIOS in its ROM BAR, read from the
 * seabios package, so that SeaBIOS runs it at POST as it does under QEMU.
 */

import { readFileSync } from "node:fs";
import { type HvmOptions, VGABIOS_STDVGA_PATH } from "../config/hvm-options";

/** Thrown when the VGA BIOS the config asks for cannot be read. */
export class VgaBiosError extends Error {
  override readonly name = "VgaBiosError";
}

/**
 * The VGA BIOS image the options ask for, or undefined for `vga = "none"`.
 * Read before the domain is built, so that a missing file creates nothing.
 */
export function readConfiguredVgaBios(
  hvm: HvmOptions,
  romPath = VGABIOS_STDVGA_PATH,
): Uint8Array | undefined {
  if (hvm.vga !== "stdvga") return undefined;
  try {
    return new Uint8Array(readFileSync(romPath));
  } catch (error) {
    throw new VgaBiosError(
      `vga = "stdvga" needs the VGA BIOS ${romPath} (Debian package seabios): ${(error as Error).message}`,
    );
  }
}
