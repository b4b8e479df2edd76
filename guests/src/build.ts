import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ArchRecipe, archRecipes, type GuestArch } from "./arches";
import { ensureBootDisk, findBootDisk } from "./boot-disk";
import {
  type GuestInputs,
  type GuestOptions,
  guestInputs,
  guestsDir,
  hostDebianArch,
  linuxSourceTarball,
} from "./inputs";
import { withLock } from "./lock";
import { consoleProgress, type ProgressListener } from "./progress";
import { freshTemporary, place, runStages, snapshot } from "./stages";

export interface EnsureGuestOptions extends GuestOptions {
  /** Progress display; default prints to stderr, `false` is silent. */
  progress?: ProgressListener | false;
  /** make -j; default $KUMO_GUESTS_JOBS or 2. */
  jobs?: number;
}

/** The files of one built guest, all inside `dir`. */
export interface GuestImages {
  arch: GuestArch;
  key: string;
  dir: string;
  /** The kernel ELF (ELF32 for i386: load it as a PVH guest). */
  vmlinux: string;
  /** The boot image: bzImage on x86, Image on arm64. */
  kernel: string;
  /** x86 only. */
  bzImage?: string;
  /** arm64 only. */
  image?: string;
  initramfs: string;
  /** The final kernel .config. */
  config: string;
  /**
   * x86 only: a bootable raw disk image (MBR, FAT16 partition with SYSLINUX,
   * the bzImage and the initramfs, `console=ttyS0`) for a BIOS to boot, as
   * an HVM guest's `hda` (src/boot-disk.ts). Absent when the tools that make
   * it (syslinux, mtools, dosfstools) are not installed, or from findGuest
   * when it is not built yet.
   */
  bootDisk?: string;
  manifest: GuestManifest;
}

export interface GuestManifest {
  arch: GuestArch;
  key: string;
  kernelKey: string;
  initramfsKey: string;
  linuxVersion: string;
  busyboxVersion: string;
  compiler: string;
  builtAt: string;
}

const manifestName = "manifest.json";

function imagesOf(arch: GuestArch, dir: string): GuestImages {
  const manifest = JSON.parse(readFileSync(join(dir, manifestName), "utf8")) as GuestManifest;
  const bootImage = archRecipes[arch].bootImage;
  const kernel = join(dir, bootImage);
  return {
    arch,
    key: manifest.key,
    dir,
    vmlinux: join(dir, "vmlinux"),
    kernel,
    ...(bootImage === "bzImage" ? { bzImage: kernel } : { image: kernel }),
    initramfs: join(dir, "initramfs.cpio.gz"),
    config: join(dir, "config"),
    manifest,
  };
}

/** The guest's folder in the cache, whether or not it is built. */
export function guestDir(inputs: GuestInputs): string {
  return join(inputs.cacheDir, `${inputs.arch}-${inputs.key}`);
}

/**
 * The built guest for the current inputs, or undefined when it would need a
 * build; `bootDisk` only when that is built too.
 */
export function findGuest(arch: GuestArch, options: GuestOptions = {}): GuestImages | undefined {
  const inputs = guestInputs(arch, options);
  const dir = guestDir(inputs);
  if (!existsSync(join(dir, manifestName))) return undefined;
  const bootDisk = findBootDisk(inputs);
  return { ...imagesOf(arch, dir), ...(bootDisk === undefined ? {} : { bootDisk }) };
}

/**
 * Returns the guest's kernel and initramfs (and the boot disk on x86),
 * building what is missing first (kernel, initramfs and boot disk are cached
 * apart, so changing /init does not rebuild the kernel). Safe to call from
 * several processes at once: one builds, the others wait for it.
 */
export async function ensureGuest(
  arch: GuestArch,
  options: EnsureGuestOptions = {},
): Promise<GuestImages> {
  const inputs = guestInputs(arch, options);
  const progress: ProgressListener =
    options.progress === false ? () => {} : (options.progress ?? consoleProgress());
  const guest = await ensureKernelAndInitramfs(inputs, options, progress);
  const bootDisk = await ensureBootDisk(inputs, guest, progress);
  return { ...guest, ...(bootDisk === undefined ? {} : { bootDisk }) };
}

async function ensureKernelAndInitramfs(
  inputs: GuestInputs,
  options: EnsureGuestOptions,
  progress: ProgressListener,
): Promise<GuestImages> {
  const { arch } = inputs;
  const dir = guestDir(inputs);
  if (existsSync(join(dir, manifestName))) {
    progress({ arch, stage: "guest", state: "cached", elapsedMs: 0, detail: dir });
    return imagesOf(arch, dir);
  }
  const jobs = options.jobs ?? (Number(process.env.KUMO_GUESTS_JOBS) || 2);
  const started = Date.now();
  return withLock(inputs.cacheDir, `guest-${arch}`, progress, arch, async () => {
    if (existsSync(join(dir, manifestName))) return imagesOf(arch, dir);
    const source = await ensureSource(inputs, progress);
    const kernelDir = await ensureKernel(inputs, source, jobs, progress);
    const initramfs = await ensureInitramfs(inputs, source, progress);
    const temporary = freshTemporary(dir);
    const bootImage = archRecipes[arch].bootImage;
    for (const name of ["vmlinux", bootImage, "config"]) {
      place(join(kernelDir, name), join(temporary, name));
    }
    place(initramfs, join(temporary, "initramfs.cpio.gz"));
    const manifest: GuestManifest = {
      arch,
      key: inputs.key,
      kernelKey: inputs.kernelKey,
      initramfsKey: inputs.initramfsKey,
      linuxVersion: inputs.linuxVersion,
      busyboxVersion: inputs.busyboxVersion,
      compiler: inputs.compiler,
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(temporary, manifestName), `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(temporary, dir);
    progress({ arch, stage: "guest", state: "done", elapsedMs: Date.now() - started, detail: dir });
    return imagesOf(arch, dir);
  });
}

/**
 * Runs only the configure and verify stages of the kernel recipe (seconds,
 * not minutes): fails with a GuestBuildError naming every option of the
 * fragment that Kconfig dropped. Used by the tests of all three fragments.
 */
export async function verifyGuestConfig(
  arch: GuestArch,
  options: EnsureGuestOptions = {},
): Promise<void> {
  const inputs = guestInputs(arch, options);
  const progress: ProgressListener =
    options.progress === false ? () => {} : (options.progress ?? consoleProgress());
  const source = await ensureSource(inputs, progress);
  // A kept object tree per architecture: Kconfig's host tools are built once.
  await withLock(inputs.cacheDir, `check-${arch}`, progress, arch, async () => {
    const temporary = freshTemporary(join(inputs.cacheDir, "check", `${arch}-run`));
    try {
      const recipe = archRecipes[arch];
      await runStages(
        arch,
        "config check",
        progress,
        join(temporary, "check.log"),
        "bash",
        [
          snapshot("kernel.sh", temporary),
          source,
          join(inputs.cacheDir, "check", arch),
          recipe.kernelArch,
          inputs.configFragment,
          join(temporary, "out"),
          recipe.crossCompile,
        ],
        { KUMO_GUESTS_CONFIGURE_ONLY: "1", ...llvmEnv(recipe) },
      );
    } finally {
      rmSync(temporary, { recursive: true, force: true });
    }
  });
}

/**
 * `LLVM=-14` reaches the kernel's make through the environment (make turns
 * environment variables into make variables; Linux Documentation/kbuild/llvm.rst),
 * so the recipe, which is part of every architecture's cache key, stays as it is.
 */
function llvmEnv(recipe: ArchRecipe): Record<string, string> {
  return recipe.llvm ? { LLVM: recipe.llvm } : {};
}

/** Debian's tarball unpacked once per version, shared by every architecture. */
async function ensureSource(inputs: GuestInputs, progress: ProgressListener): Promise<string> {
  const source = join(inputs.cacheDir, "src", `linux-${inputs.linuxVersion}`);
  if (existsSync(source)) return source;
  return withLock(inputs.cacheDir, "source", progress, inputs.arch, async () => {
    if (existsSync(source)) return source;
    const temporary = freshTemporary(source);
    await runStages(inputs.arch, "source", progress, join(temporary, "tar.log"), "tar", [
      "-xJf",
      linuxSourceTarball,
      "-C",
      temporary,
    ]);
    renameSync(join(temporary, "linux-source-6.1"), source);
    rmSync(temporary, { recursive: true, force: true });
    return source;
  });
}

async function ensureKernel(
  inputs: GuestInputs,
  source: string,
  jobs: number,
  progress: ProgressListener,
): Promise<string> {
  const { arch } = inputs;
  const out = join(inputs.cacheDir, "kernel", `${arch}-${inputs.kernelKey}`);
  if (existsSync(join(out, "vmlinux"))) {
    progress({ arch, stage: "kernel", state: "cached", elapsedMs: 0, detail: out });
    return out;
  }
  const temporary = freshTemporary(out);
  // One object tree per architecture: a changed fragment rebuilds only what
  // the changed options touch (Kbuild's fixdep dependencies).
  const objects = join(inputs.cacheDir, "build", arch);
  const recipe = archRecipes[arch];
  await runStages(
    arch,
    "kernel",
    progress,
    join(temporary, "build.log"),
    "bash",
    [
      snapshot("kernel.sh", temporary),
      source,
      objects,
      recipe.kernelArch,
      inputs.configFragment,
      temporary,
      recipe.crossCompile,
    ],
    { KUMO_GUESTS_JOBS: String(jobs), ...llvmEnv(recipe) },
  );
  renameSync(temporary, out);
  return out;
}

async function ensureInitramfs(
  inputs: GuestInputs,
  source: string,
  progress: ProgressListener,
): Promise<string> {
  const { arch } = inputs;
  const out = join(inputs.cacheDir, "initramfs", `${arch}-${inputs.initramfsKey}`);
  const archive = join(out, "initramfs.cpio.gz");
  if (existsSync(archive)) {
    progress({ arch, stage: "initramfs", state: "cached", elapsedMs: 0, detail: out });
    return archive;
  }
  const busybox = await ensureBusybox(inputs, progress);
  const temporary = freshTemporary(out);
  await runStages(arch, "initramfs", progress, join(temporary, "build.log"), "bash", [
    snapshot("initramfs.sh", temporary),
    source,
    busybox,
    arch,
    guestsDir,
    join(temporary, "work"),
    join(temporary, "initramfs.cpio.gz"),
  ]);
  rmSync(join(temporary, "work"), { recursive: true, force: true });
  renameSync(temporary, out);
  return archive;
}

/**
 * The static busybox for the guest's architecture: the installed
 * busybox-static for the host's, else the package of the foreign
 * architecture fetched with `apt-get download` and unpacked with dpkg-deb
 * (never installed).
 */
async function ensureBusybox(inputs: GuestInputs, progress: ProgressListener): Promise<string> {
  const { debianArch } = archRecipes[inputs.arch];
  if (debianArch === hostDebianArch()) return "/bin/busybox";
  const dir = join(inputs.cacheDir, "busybox", `${debianArch}-${inputs.busyboxVersion}`);
  const binary = join(dir, "bin", "busybox");
  if (existsSync(binary)) return binary;
  const temporary = freshTemporary(dir);
  const log = join(temporary, "download.log");
  await runStages(
    inputs.arch,
    "busybox download",
    progress,
    log,
    "apt-get",
    ["download", `busybox-static:${debianArch}=${inputs.busyboxVersion}`],
    {},
    temporary,
  );
  const deb = `busybox-static_${inputs.busyboxVersion.replace(":", "%3a")}_${debianArch}.deb`;
  await runStages(inputs.arch, "busybox unpack", progress, log, "dpkg-deb", [
    "-x",
    join(temporary, deb),
    temporary,
  ]);
  renameSync(temporary, dir);
  return binary;
}
