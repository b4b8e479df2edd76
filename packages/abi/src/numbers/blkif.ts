/** `blkif_request.operation`. Xen public io/blkif.h `BLKIF_OP_*`. */
export const BlkifOp = {
  READ: 0,
  WRITE: 1,
  WRITE_BARRIER: 2,
  FLUSH_DISKCACHE: 3,
  RESERVED_1: 4,
  DISCARD: 5,
  INDIRECT: 6,
} as const;
export type BlkifOp = (typeof BlkifOp)[keyof typeof BlkifOp];

/** `blkif_response.status`. Xen public io/blkif.h `BLKIF_RSP_*`. */
export const BlkifStatus = {
  EOPNOTSUPP: -2,
  ERROR: -1,
  OKAY: 0,
} as const;
export type BlkifStatus = (typeof BlkifStatus)[keyof typeof BlkifStatus];

/** blkif limits and the discard flag. Xen public io/blkif.h `BLKIF_*`. */
export const Blkif = {
  DISCARD_SECURE: 1,
  MAX_INDIRECT_PAGES_PER_REQUEST: 8,
  MAX_SEGMENTS_PER_REQUEST: 11,
} as const;
export type Blkif = (typeof Blkif)[keyof typeof Blkif];

/** Bits of the vbd backend `info` key. Xen public io/blkif.h `VDISK_*`. */
export const Vdisk = {
  CDROM: 1,
  REMOVABLE: 2,
  READONLY: 4,
} as const;
export type Vdisk = (typeof Vdisk)[keyof typeof Vdisk];
