/** `xen_add_to_physmap.space`. Xen public memory.h `XENMAPSPACE_*`. */
export const MapSpace = {
  shared_info: 0,
  grant_table: 1,
  gmfn: 2,
  gmfn_range: 3,
  gmfn_foreign: 4,
  dev_mmio: 5,
} as const;
export type MapSpace = (typeof MapSpace)[keyof typeof MapSpace];
