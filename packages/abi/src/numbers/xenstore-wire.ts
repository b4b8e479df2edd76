/** Ring, payload and path limits and ring status values. Xen public io/xs_wire.h `XENSTORE_*`. */
export const XenstoreConst = {
  CONNECTED: 0,
  ERROR_NONE: 0,
  ERROR_COMM: 1,
  RECONNECT: 1,
  SERVER_FEATURE_RECONNECTION: 1,
  ERROR_RINGIDX: 2,
  SERVER_FEATURE_ERROR: 2,
  ERROR_PROTO: 3,
  RING_SIZE: 1024,
  REL_PATH_MAX: 2048,
  ABS_PATH_MAX: 3072,
  PAYLOAD_MAX: 4096,
} as const;
export type XenstoreConst = (typeof XenstoreConst)[keyof typeof XenstoreConst];

/**
 * Xenstore message types (`xsd_sockmsg.type`). Xen public io/xs_wire.h `enum xsd_sockmsg_type`
 * (`XS_*`). 20 was XS_RESTRICT, since removed; INVALID is guaranteed never to be a valid type.
 */
export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  TYPE_COUNT: 23,
  INVALID: 0xffff,
} as const;
export type XsType = (typeof XsType)[keyof typeof XsType];

/**
 * The error strings a xenstore daemon may send in an XS_ERROR reply, in the order of
 * `xsd_errors[]` (Xen public io/xs_wire.h). Each string is also the key of its number in
 * `Errno`. Linux's xenbus maps any other string to EINVAL (drivers/xen/xenbus/xenbus_xs.c).
 */
export const XsdErrors = [
  "EINVAL",
  "EACCES",
  "EEXIST",
  "EISDIR",
  "ENOENT",
  "ENOMEM",
  "ENOSPC",
  "EIO",
  "ENOTEMPTY",
  "ENOSYS",
  "EROFS",
  "EBUSY",
  "EAGAIN",
  "EISCONN",
  "E2BIG",
  "EPERM",
] as const;
export type XsdError = (typeof XsdErrors)[number];
