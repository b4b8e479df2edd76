/**
 * The bootable raw disk image of an x86 guest (recipes/hvm-disk.sh): an MBR
 * with one FAT16 partition holding SYSLINUX, the guest's bzImage and its
 * initramfs, so that a BIOS (SeaBIOS on Kumo, QEMU or v86) boots the guest
 * from an IDE disk the way a PC boots Linux from its hard disk. Cached under
 * <cache>/disk/<arch>-<key>/ apart from the guest, keyed by the guest's key,
 * the recipe, the command line and the versions of the Debian packages whose
 * tools write it; it takes a second or two to make.
 */
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { archRecipes } from "./arches";
import { type GuestInputs, guestsDir, installedVersion, sha256 } from "./inputs";
import { withLock } from "./lock";
import type { ProgressListener } from "./progress";
import { freshTemporary, runStages, snapshot } from "./stages";

/**
 * The Debian packages the recipe runs: `syslinux` (its mtools installer),
 * `syslinux-common` (mbr.bin, ldlinux.*), `mtools` (mcopy) and `dosfstools` (mkfs.fat).
 */
export const bootDiskPackages = ["syslinux", "syslinux-common", "mtools", "dosfstools"] as const;

/** The kernel command line in the image's syslinux.cfg: the console on COM1 (the 8250 driver). */
export const bootDiskCmdline = "console=ttyS0";

const recipe = "hvm-disk.sh";
const imageName = "disk.img";

/**
 * The image's folder in the cache, or the packages missing to make it;
 * undefined for a guest without a bzImage (arm64).
 */
function bootDiskDir(inputs: GuestInputs): { dir: string } | { missing: string[] } | undefined {
  if (archRecipes[inputs.arch].bootImage !== "bzImage") return undefined;
  const versions = bootDiskPackages.map((name) => `${name}=${installedVersion(name) ?? ""}`);
  const missing = bootDiskPackages.filter((_, index) => versions[index].endsWith("="));
  if (missing.length > 0) return { missing };
  const key = sha256([
    inputs.key,
    bootDiskCmdline,
    readFileSync(join(guestsDir, "recipes", recipe), "utf8"),
    ...versions,
  ]);
  return { dir: join(inputs.cacheDir, "disk", `${inputs.arch}-${key}`) };
}

/** The built image for the current inputs, or undefined (not built, not x86, tools missing). */
export function findBootDisk(inputs: GuestInputs): string | undefined {
  const where = bootDiskDir(inputs);
  if (where === undefined || !("dir" in where)) return undefined;
  const image = join(where.dir, imageName);
  return existsSync(image) ? image : undefined;
}

/**
 * The image for a built x86 guest, made if missing (under a lock, as the
 * guest is). Without the tools it reports the stage as skipped, naming the
 * packages to install, and returns undefined: the kernel and initramfs are
 * still usable, and the tests that boot the image say what is missing.
 */
export async function ensureBootDisk(
  inputs: GuestInputs,
  guest: { kernel: string; initramfs: string },
  progress: ProgressListener,
): Promise<string | undefined> {
  const { arch } = inputs;
  const where = bootDiskDir(inputs);
  if (where === undefined) return undefined;
  if (!("dir" in where)) {
    progress({
      arch,
      stage: "boot disk",
      state: "skipped",
      elapsedMs: 0,
      detail: `apt-get install ${where.missing.join(" ")}`,
    });
    return undefined;
  }
  const image = join(where.dir, imageName);
  if (existsSync(image)) {
    progress({ arch, stage: "boot disk", state: "cached", elapsedMs: 0, detail: image });
    return image;
  }
  return withLock(inputs.cacheDir, `disk-${arch}`, progress, arch, async () => {
    if (existsSync(image)) return image;
    const temporary = freshTemporary(where.dir);
    // One progress stage: runStages reports its start and end with the elapsed time.
    await runStages(arch, "boot disk", progress, join(temporary, "build.log"), "bash", [
      snapshot(recipe, temporary),
      guest.kernel,
      guest.initramfs,
      bootDiskCmdline,
      join(temporary, "work"),
      join(temporary, imageName),
    ]);
    rmSync(join(temporary, "work"), { recursive: true, force: true });
    renameSync(temporary, where.dir);
    return image;
  });
}
