export {
  DEFAULT_MAX_GRANT_FRAMES,
  GRANT_ENTRIES_PER_FRAME,
  type GrantCopySideSpec,
  type GrantFrameSource,
  type GrantMapResult,
  GrantMapTrack,
  GrantTable,
  type GrantTableOptions,
  grantCopy,
} from "./grant-table";
