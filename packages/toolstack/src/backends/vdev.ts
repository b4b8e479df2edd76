/**
 * Guest device names to Xen virtual device numbers, as Xen's
 * docs/misc/vbd-interface.pandoc defines them and libxl's
 * libxl__device_disk_dev_number decodes them:
 *
 * - `xvd<disk><part>` and `d<n>p<m>`: 202<<8 | disk<<4 | part for disk
 *   and partition < 16, otherwise the extended form 1<<28 | disk<<8 | part
 *   (disk < 2^20, partition < 256);
 * - `hd<disk><part>`: hda/hdb on major 3, hdc/hdd on major 22, minor
 *   (disk & 1) << 6 | part, partition < 64;
 * - `sd<disk><part>`: 8<<8 | disk<<4 | part, disk and partition < 16;
 * - a plain decimal number is taken as the device number itself.
 *
 * Disk letters count in bijective base 26: a = 0, z = 25, aa = 26.
 */

/** A vdev name that is not one of Xen's forms (a user's mistake in `disk=`). */
export class VdevError extends Error {
  override readonly name = "VdevError";
}

export interface VirtualDevice {
  /** The `virtual-device` key's value and the devid in xenstore paths. */
  readonly number: number;
  readonly disk: number;
  readonly partition: number;
}

const XVD_MAJOR = 202;
const SD_MAJOR = 8;
const HD_MAJORS = [3, 22] as const;

/** Bijective base-26 disk letters ("a" = 0, "aa" = 26); -1 when too large. */
function decodeLetters(letters: string): number {
  let value = 0;
  for (const char of letters) {
    value = value * 26 + (char.charCodeAt(0) - 96);
    if (value > 1 << 20) return -1;
  }
  return value - 1;
}

function xvdNumber(name: string, disk: number, partition: number): VirtualDevice {
  if (disk < 16 && partition < 16) {
    return { number: (XVD_MAJOR << 8) | (disk << 4) | partition, disk, partition };
  }
  if (disk < 1 << 20 && partition < 256) {
    // Extended form; 1<<28 keeps the sign bit clear, so plain arithmetic is exact.
    return { number: 0x10000000 + disk * 256 + partition, disk, partition };
  }
  throw new VdevError(
    `vdev "${name}": disk ${disk} partition ${partition} is past Xen's limits (disk < 2^20, partition < 256)`,
  );
}

/** Decodes a vdev (xvda, hdc, sdb1, d0p1, 51712). Throws `VdevError`. */
export function parseVdev(name: string): VirtualDevice {
  if (/^[0-9]+$/.test(name)) {
    const number = Number(name);
    if (!Number.isSafeInteger(number) || number <= 0 || number > 0xffffffff) {
      throw new VdevError(`vdev "${name}" is not a valid device number`);
    }
    return { number, disk: -1, partition: -1 };
  }
  const extended = /^d([0-9]+)p([0-9]+)$/.exec(name);
  if (extended) return xvdNumber(name, Number(extended[1]), Number(extended[2]));
  const match = /^(xvd|hd|sd)([a-z]+)([0-9]*)$/.exec(name);
  if (match === null) {
    throw new VdevError(
      `vdev "${name}" is not a Xen device name (xvdN, hdN, sdN with N = a..z, aa..; d<n>p<m>; or a device number)`,
    );
  }
  const [, prefix, letters, digits] = match;
  const disk = decodeLetters(letters);
  // Linux and libxl both refuse a leading zero partition ("xvda01").
  if (digits.length > 1 && digits.startsWith("0")) {
    throw new VdevError(`vdev "${name}": partition number with a leading zero`);
  }
  const partition = digits === "" ? 0 : Number(digits);
  if (disk < 0) throw new VdevError(`vdev "${name}": disk letters out of range`);
  switch (prefix) {
    case "xvd":
      return xvdNumber(name, disk, partition);
    case "hd":
      if (disk > 3 || partition > 63) {
        throw new VdevError(`vdev "${name}": IDE disks are hda..hdd with partitions 0..63`);
      }
      return {
        number: (HD_MAJORS[disk >> 1] << 8) | ((disk & 1) << 6) | partition,
        disk,
        partition,
      };
    default:
      if (disk > 15 || partition > 15) {
        throw new VdevError(`vdev "${name}": SCSI disks are sda..sdp with partitions 0..15`);
      }
      return { number: (SD_MAJOR << 8) | (disk << 4) | partition, disk, partition };
  }
}
