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
  /** Debian package that provides the cross compiler, for the error message. */
  readonly compilerPackage: string;
  /** The boot image make produces next to vmlinux, under arch/<dir>/boot/. */
  readonly bootImage: "bzImage" | "Image";
}

export const archRecipes: Readonly<Record<GuestArch, ArchRecipe>> = {
  i386: {
    kernelArch: "i386",
    debianArch: "i386",
    crossCompile: "",
    compilerPackage: "gcc-multilib",
    bootImage: "bzImage",
  },
  x86_64: {
    kernelArch: "x86_64",
    debianArch: "amd64",
    crossCompile: "",
    compilerPackage: "gcc",
    bootImage: "bzImage",
  },
  arm64: {
    kernelArch: "arm64",
    debianArch: "arm64",
    crossCompile: "aarch64-linux-gnu-",
    compilerPackage: "gcc-aarch64-linux-gnu",
    bootImage: "Image",
  },
};

export function isGuestArch(value: string): value is GuestArch {
  return (guestArches as readonly string[]).includes(value);
}
