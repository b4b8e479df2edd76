/**
 * A kernel or ramdisk image the builder cannot use, or a domain that cannot
 * hold it: a user's mistake (wrong file, wrong kernel configuration, too
 * little memory), reported with what was wrong and what was expected.
 */
export class KernelImageError extends Error {
  override readonly name = "KernelImageError";
}

/** The domain's memory cannot hold what the builder must place. */
export class DomainBuildError extends Error {
  override readonly name = "DomainBuildError";
}
