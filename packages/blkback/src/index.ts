/**
 * @kumo/blkback: disk images (raw, qcow2, VHD) on any byte store. This entry
 * is browser-safe; Node file-backed images are in `@kumo/blkback/node`.
 */

export {
  BlkifRingWorker,
  DEFAULT_MAX_INDIRECT_SEGMENTS,
  DEFAULT_MAX_PERSISTENT_GRANTS,
  type RingWorkerOptions,
  type RingWorkerStats,
} from "./backend/ring-worker";
export { VbdBackend, type VbdBackendOptions } from "./backend/vbd-backend";
export type { XenbusStore, XenbusWatchEvent } from "./backend/xenbus-store";
export { type ByteStore, MemoryByteStore } from "./image/byte-store";
export { type DiskImage, type ImageFormat, SECTOR_SIZE } from "./image/disk-image";
export { DiskImageError, type DiskImageErrorCode } from "./image/errors";
export {
  type CheckResult,
  type CreateImageOptions,
  checkDiskImage,
  convertDiskImage,
  createDiskImage,
  describeDiskImage,
  detectFormat,
  type ImageInfo,
  type OpenImageOptions,
  openDiskImage,
  type ProgressCallback,
} from "./image/images";
export { type Inflate, streamInflate } from "./image/inflate";
export { type Qcow2Details, Qcow2Image } from "./image/qcow2";
export { RawImage } from "./image/raw";
export { type VhdDetails, VhdImage, type VhdSubformat, vhdGeometry } from "./image/vhd";
