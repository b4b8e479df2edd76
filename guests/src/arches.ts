/** The architectures Kumo builds test guests for, and what differs between them. */
export type GuestArch = "i386" | "x86_64" | "arm64";

export const guestArches: readonly GuestArch[] = ["i386", "x86_64", "arm64"];

export interface ArchRecipe {
  /** `ARCH=` for the kernel's make. */
  readonly kernelArch: string;
  /** Debian architecture of the busybox-static package. */
  readonly debianArch: string;
  /** `CROSS_COMPILE=` prefix, empty for the host compiler (gcc-multilib covers i386). */
  readonly crossCompile: string;
  /**
   * `LLVM=` for the kernel's make, empty for GCC. "-14" selects clang-14,
   * ld.lld-14, llvm-ar-14... (Linux Documentation/kbuild/llvm.rst, "The LLVM
   * argument"); clang derives its --target from ARCH (scripts/Makefile.clang).
   */
  readonly llvm: string;
  /** The compiler whose `--version` line goes into the cache key. */
  readonly compiler: string;
  /** Debian packages that provide the compiler and linker, for the error message. */
  readonly compilerPackage: string;
  /** The boot image make produces next to vmlinux, under arch/<dir>/boot/. */
  readonly bootImage: "bzImage" | "Image";
}

export const archRecipes: Readonly<Record<GuestArch, ArchRecipe>> = {
  i386: {
    kernelArch: "i386",
    debianArch: "i386",
    crossCompile: "",
    llvm: "",
    compiler: "gcc",
    compilerPackage: "gcc-multilib",
    bootImage: "bzImage",
  },
  x86_64: {
    kernelArch: "x86_64",
    debianArch: "amd64",
    crossCompile: "",
    llvm: "",
    compiler: "gcc",
    compilerPackage: "gcc",
    bootImage: "bzImage",
  },
  arm64: {
    kernelArch: "arm64",
    debianArch: "arm64",
    // Debian 12's gcc-aarch64-linux-gnu cannot be installed beside
    // gcc-multilib (which the i386 guest needs): build with LLVM instead.
    crossCompile: "",
    llvm: "-14",
    compiler: "clang-14",
    compilerPackage: "clang-14 lld-14 llvm-14",
    bootImage: "Image",
  },
};

export function isGuestArch(value: string): value is GuestArch {
  return (guestArches as readonly string[]).includes(value);
}
