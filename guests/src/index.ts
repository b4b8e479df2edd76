// @kumo/guests: Linux test guests built from Debian's linux-source-6.1 and
// busybox-static, cached outside git under a hash of their inputs.
export { type ArchRecipe, archRecipes, type GuestArch, guestArches, isGuestArch } from "./arches";
export { bootDiskCmdline, bootDiskPackages } from "./boot-disk";
export {
  type EnsureGuestOptions,
  ensureGuest,
  findGuest,
  type GuestImages,
  type GuestManifest,
  guestDir,
  verifyGuestConfig,
} from "./build";
export { GuestBuildError } from "./errors";
export {
  defaultCacheDir,
  type GuestInputs,
  type GuestOptions,
  guestInputs,
  guestsDir,
} from "./inputs";
export {
  consoleProgress,
  formatElapsed,
  type GuestProgress,
  type ProgressListener,
} from "./progress";
