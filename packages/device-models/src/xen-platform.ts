/**
 * The Xen platform PCI device that a Xen HVM guest finds (QEMU
 * hw/i386/xen/xen_platform.c; Xen docs/misc/hvm-emulated-unplug.pandoc):
 * PCI vendor 0x5853 ("XenSource"), device 0x0001, class 0xFF80, revision
 * 1, subsystem 5853:0001, interrupt pin INTA#, BAR 0 a 256-byte I/O window
 * and BAR 1 a 16 MiB prefetchable memory window (where Linux's
 * platform-pci.c maps grant-table frames), plus the fixed "unplug" I/O
 * ports at 0x10-0x13 through which a PV-aware guest checks the protocol and
 * asks the device model to unplug its emulated disks and NICs before it
 * uses its PV frontends:
 *
 *   read  16 bits at 0x10: magic 0x49D2       read 8 bits at 0x12: protocol version 1
 *   write 16 bits at 0x12: product number      write 32 bits at 0x10: build number
 *   write 16 bits at 0x10: unplug mask (bit 0 IDE disks, 1 NICs, 2 auxiliary IDE disks)
 *
 * A guest that writes a product number the `blacklisted` callback refuses
 * reads 0xD249 as the magic afterwards, as the document describes.
 * Simplification: BAR 0's I/O window has no registers (reads all ones).
 */

import { PciFunction } from "./pci-host";

export const XEN_PLATFORM_MAGIC = 0x49d2;
/** The fixed I/O ports (XEN_IOPORT_BASE) the window covers: 0x10-0x13. */
export const XEN_PLATFORM_IO_BASE = 0x10;

export interface XenPlatformOptions {
  /** The guest asked to unplug emulated devices (bit 0 IDE, 1 NIC, 2 auxiliary IDE). */
  unplug?: (mask: number) => void;
  /** Refuse this product number / build (the magic then reads 0xD249). */
  blacklisted?: (product: number, build: number) => boolean;
}

export interface XenPlatformState {
  kind: "xen-platform";
  version: 1;
  product: number;
  build: number;
  refused: boolean;
  unplugged: number;
}

export class XenPlatformStateError extends Error {
  override name = "XenPlatformStateError";
}

export class XenPlatformDevice {
  /** The PCI function to add to a bus (`PciHost.addFunction`). */
  readonly pci: PciFunction;
  /** Ports 0x10-0x13 as offsets 0-3. */
  readonly ports: {
    read(offset: number, size: 1 | 2 | 4): number;
    write(offset: number, size: 1 | 2 | 4, value: number): void;
  };
  private product = 0;
  private build = 0;
  private refused = false;
  private unplugMask = 0;

  constructor(options: XenPlatformOptions = {}) {
    this.pci = new PciFunction({
      vendor: 0x5853,
      device: 0x0001,
      classCode: 0xff8000,
      revision: 1,
      subsystemVendor: 0x5853,
      subsystem: 0x0001,
    });
    const config = this.pci.config;
    config[0x3d] = 1; // INTA#
    // BAR 0: I/O, 256 bytes (bits 7:0 fixed, bit 0 = I/O space); BAR 1: 16 MiB prefetchable memory.
    config[0x10] = 0x01;
    this.pci.writable[0x11] = 0xff;
    this.pci.writable[0x12] = 0xff;
    this.pci.writable[0x13] = 0xff;
    config[0x14] = 0x08;
    this.pci.writable[0x17] = 0xff;
    this.ports = {
      read: (offset, size) => {
        if (offset === 0 && size === 2) return this.refused ? 0xd249 : XEN_PLATFORM_MAGIC;
        if (offset === 2 && size === 1) return 1;
        return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
      },
      write: (offset, size, value) => {
        if (offset === 0 && size === 2) {
          // Kept as one mask (what has been unplugged so far), not a list: a guest
          // that writes the port in a loop must not grow host memory.
          this.unplugMask |= value & 0xffff;
          options.unplug?.(value & 0xffff);
        } else if (offset === 0 && size === 4) {
          this.build = value >>> 0;
          this.refused = options.blacklisted?.(this.product, this.build) ?? false;
        } else if (offset === 2 && size === 2) {
          this.product = value & 0xffff;
        }
      },
    };
  }

  /** The union of every unplug mask the guest wrote (bit 0 IDE disks, 1 NICs, 2 auxiliary IDE). */
  get unplugged(): number {
    return this.unplugMask;
  }

  state(): XenPlatformState {
    return {
      kind: "xen-platform",
      version: 1,
      product: this.product,
      build: this.build,
      refused: this.refused,
      unplugged: this.unplugMask,
    };
  }

  /** Restores the unplug-port state (the PCI configuration space is restored with the PCI host's). */
  fromState(state: XenPlatformState): void {
    if (state === null || typeof state !== "object" || state.kind !== "xen-platform")
      throw new XenPlatformStateError(
        'not a Xen platform device state (kind must be "xen-platform")',
      );
    if (state.version !== 1)
      throw new XenPlatformStateError(
        `Xen platform device state version ${state.version} is not supported (expected 1)`,
      );
    this.product = state.product & 0xffff;
    this.build = state.build >>> 0;
    this.refused = state.refused === true;
    this.unplugMask = state.unplugged & 0xffff;
  }

  /** Sets the BARs as firmware would (I/O base, memory base) and enables decoding. */
  assign(ioBase: number, memoryBase: number): void {
    const view = new DataView(this.pci.config.buffer);
    view.setUint32(0x10, (ioBase & 0xffffff00) | 0x01, true);
    view.setUint32(0x14, ((memoryBase & 0xff000000) | 0x08) >>> 0, true);
    this.pci.config[4] |= 0x03; // I/O and memory space
  }
}
