/**
 * Xen's reference guest physical memory map and interrupt numbers for arm guests (Xen public
 * arch-arm.h `GUEST_*`). Linux reads the real layout from the device tree; these are the values
 * Xen's toolstack uses, so following them makes Kumo's arm64 guests look like Xen's.
 * Addresses and sizes are below 2^53 and so exact as numbers.
 */
export const ArmGuest = {
  VIRTIO_MMIO_BASE: 0x2000000,
  VIRTIO_MMIO_SIZE: 0x100000,
  VIRTIO_MMIO_SPI_FIRST: 33,
  VIRTIO_MMIO_SPI_LAST: 43,
  GICD_BASE: 0x3001000,
  GICD_SIZE: 0x1000,
  GICC_BASE: 0x3002000,
  GICC_SIZE: 0x2000,
  GICV3_GICD_BASE: 0x3001000,
  GICV3_GICD_SIZE: 0x10000,
  GICV3_GICR0_BASE: 0x3020000,
  GICV3_GICR0_SIZE: 0x1000000,
  GICV3_RDIST_REGIONS: 1,
  VPCI_ECAM_BASE: 0x10000000,
  VPCI_ECAM_SIZE: 0x10000000,
  ACPI_BASE: 0x20000000,
  ACPI_SIZE: 0x2000000,
  PL011_BASE: 0x22000000,
  PL011_SIZE: 0x1000,
  VPL011_SPI: 32,
  /** The grant-table window (device tree `hypervisor` node, reg region 0). */
  GNTTAB_BASE: 0x38000000,
  GNTTAB_SIZE: 0x1000000,
  /** Special pages (console, xenstore, ...) that are not RAM. */
  MAGIC_BASE: 0x39000000,
  MAGIC_SIZE: 0x1000000,
  RAM0_BASE: 0x40000000,
  RAM0_SIZE: 0xc0000000,
  RAM1_BASE: 0x200000000,
  RAM1_SIZE: 0xfe00000000,
  RAM_BASE: 0x40000000,
  RAM_BANKS: 2,
  RAM_MAX: 0xfec0000000,
  MAX_VCPUS: 128,
  /** The event-channel upcall PPI (INTID). */
  EVTCHN_PPI: 31,
  TIMER_VIRT_PPI: 27,
  TIMER_PHYS_S_PPI: 29,
  TIMER_PHYS_NS_PPI: 30,
} as const;
export type ArmGuest = (typeof ArmGuest)[keyof typeof ArmGuest];
