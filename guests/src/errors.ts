/** A guest could not be built: a missing host tool, a dropped config option, a failed make. */
export class GuestBuildError extends Error {
  override readonly name = "GuestBuildError";
  constructor(
    readonly arch: string,
    message: string,
    /** The build log, when the failure happened in a recipe. */
    readonly logFile?: string,
  ) {
    super(`guest ${arch}: ${message}`);
  }
}
