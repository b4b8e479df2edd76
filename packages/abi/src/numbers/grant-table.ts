/** Grant entry flags (`grant_entry_v1.flags`). Xen public grant_table.h `GTF_*`. */
export const GrantFlags = {
  invalid: 0,
  permit_access: 1,
  accept_transfer: 2,
  transitive: 3,
  type_mask: 3,
  readonly: 4,
  transfer_committed: 4,
  reading: 8,
  transfer_completed: 8,
  writing: 16,
  PWT: 32,
  PCD: 64,
  PAT: 128,
  sub_page: 256,
} as const;
export type GrantFlags = (typeof GrantFlags)[keyof typeof GrantFlags];

/** `gnttab_map_grant_ref.flags`. Xen public grant_table.h `GNTMAP_*`. */
export const GntMap = {
  device_map: 1,
  host_map: 2,
  readonly: 4,
  application_map: 8,
  contains_pte: 16,
  guest_avail_mask: 0xffff0000,
} as const;
export type GntMap = (typeof GntMap)[keyof typeof GntMap];

/** `gnttab_copy.flags`. Xen public grant_table.h `GNTCOPY_*`. */
export const GntCopy = {
  source_gref: 1,
  dest_gref: 2,
} as const;
export type GntCopy = (typeof GntCopy)[keyof typeof GntCopy];

/** Per-operation grant status codes (negative). Xen public grant_table.h `GNTST_*`. */
export const GntStatus = {
  no_space: -13,
  eagain: -12,
  address_too_big: -11,
  bad_copy_arg: -10,
  bad_page: -9,
  permission_denied: -8,
  no_device_space: -7,
  bad_dev_addr: -6,
  bad_virt_addr: -5,
  bad_handle: -4,
  bad_gntref: -3,
  bad_domain: -2,
  general_error: -1,
  okay: 0,
} as const;
export type GntStatus = (typeof GntStatus)[keyof typeof GntStatus];
