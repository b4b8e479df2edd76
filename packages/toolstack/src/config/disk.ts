/**
 * One `disk = [ ... ]` entry, parsed as xl-disk-configuration(5) says:
 * comma-separated `key=value` pairs, flags, and positional parameters filled
 * in the order target, format, vdev, access. `target=` must come last and
 * takes the rest of the string, commas included. The deprecated forms
 * (`phy:/dev/sdb`, `raw:/img`, `hdc:cdrom`, access `w`/`r`) are accepted as
 * xl accepts them.
 */

export type DiskFormat = "raw" | "qcow" | "qcow2" | "vhd" | "qed";
export type DiskAccess = "ro" | "rw";
export type DiskBackendType = "phy" | "qdisk" | "tap" | "standalone";

export interface DiskSpec {
  /** Path (or other backend-specific target); "" for an empty CD-ROM drive. */
  readonly target: string;
  readonly format: DiskFormat;
  /** Guest device name as the guest sees it: xvda, hda, sdb, ... */
  readonly vdev: string;
  readonly access: DiskAccess;
  readonly devtype: "disk" | "cdrom";
  readonly backendType: DiskBackendType | undefined;
  /** Backend domain name (default the toolstack's domain). */
  readonly backend: string | undefined;
  readonly script: string | undefined;
  readonly discard: boolean | undefined;
  readonly directIoSafe: boolean;
}

/** A disk specification the user got wrong; `offset` is the 0-based index in the spec string. */
export class DiskSpecError extends Error {
  override readonly name = "DiskSpecError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const formats: readonly string[] = ["raw", "qcow", "qcow2", "vhd", "qed"];
const backendTypes: readonly string[] = ["phy", "qdisk", "tap", "standalone"];
/** xl-disk-configuration(5) "Deprecated parameters": prefixes of the target. */
const deprecatedPrefixes: Readonly<Record<string, DiskFormat | "phy" | "tap">> = {
  "raw:": "raw",
  "qcow:": "qcow",
  "qcow2:": "qcow2",
  "vhd:": "vhd",
  "qed:": "qed",
  "phy:": "phy",
  "file:": "raw",
  "tap:": "tap",
  "tap2:": "tap",
  "aio:": "raw",
};
const positionalNames = ["target", "format", "vdev", "access"] as const;

/** Parses one disk specification string. Throws `DiskSpecError`. */
export function parseDiskSpec(spec: string): DiskSpec {
  const values: Record<string, string | undefined> = {};
  let devtype: "disk" | "cdrom" | undefined;
  let discard: boolean | undefined;
  let directIoSafe = false;
  let positional = 0;
  let offset = 0;
  const set = (name: string, value: string, at: number) => {
    if (values[name] !== undefined) {
      throw new DiskSpecError(`"${name}" is given twice (each parameter at most once)`, at);
    }
    values[name] = value;
  };
  while (offset <= spec.length) {
    // Leading blanks of each parameter are ignored (the man page's examples use ", ").
    while (spec[offset] === " " || spec[offset] === "\t") offset++;
    const at = offset;
    if (spec.startsWith("target=", offset)) {
      set("target", spec.slice(offset + 7), at);
      break;
    }
    let end = spec.indexOf(",", offset);
    if (end < 0) end = spec.length;
    const parameter = spec.slice(offset, end).trimEnd();
    offset = end + 1;
    const equals = parameter.indexOf("=");
    if (equals >= 0) {
      const key = parameter.slice(0, equals);
      const value = parameter.slice(equals + 1);
      switch (key) {
        case "format":
        case "vdev":
        case "access":
        case "backendtype":
        case "backend":
        case "script":
          set(key, value, at);
          break;
        case "devtype":
          if (value !== "cdrom" && value !== "disk") {
            throw new DiskSpecError(`devtype must be "cdrom" or "disk", not "${value}"`, at);
          }
          devtype = value;
          break;
        case "specification":
          if (value !== "xen") {
            throw new DiskSpecError(`specification "${value}" is not supported (only "xen")`, at);
          }
          break;
        default:
          throw new DiskSpecError(
            `unknown disk parameter "${key}" (expected target, format, vdev, access, devtype, backendtype, backend or script)`,
            at,
          );
      }
      continue;
    }
    switch (parameter) {
      case "cdrom":
        devtype = "cdrom";
        continue;
      case "discard":
        discard = true;
        continue;
      case "no-discard":
        discard = false;
        continue;
      case "direct-io-safe":
        directIoSafe = true;
        continue;
    }
    // Positional. An empty one (",,") keeps the default but still takes its place.
    if (positional >= positionalNames.length) {
      if (parameter === "" && end === spec.length) break;
      throw new DiskSpecError(
        `too many positional parameters: "${parameter}" (expected target, format, vdev, access)`,
        at,
      );
    }
    // Parameters already named explicitly are skipped, as "so-far-unspecified" says.
    while (positional < positionalNames.length && values[positionalNames[positional]] !== undefined)
      positional++;
    if (positional >= positionalNames.length) {
      throw new DiskSpecError(`too many positional parameters: "${parameter}"`, at);
    }
    const name = positionalNames[positional++];
    if (parameter !== "") values[name] = parameter;
    if (end === spec.length) break;
  }

  let target = values.target;
  let format = values.format;
  let prefixFormat: string | undefined;
  let backendType = values.backendtype;
  // Deprecated three-argument form "raw:/path,vdev,access": xl treats a target
  // whose positional "format" looks like a vdev as target,vdev,access.
  if (target !== undefined) {
    for (const [prefix, meaning] of Object.entries(deprecatedPrefixes)) {
      if (!target.startsWith(prefix)) continue;
      target = target.slice(prefix.length);
      if (prefix === "tap:" || prefix === "tap2:") {
        const inner = /^(aio|raw|qcow|qcow2|vhd):/.exec(target);
        if (inner) {
          target = target.slice(inner[0].length);
          prefixFormat = inner[1] === "aio" ? "raw" : inner[1];
        }
        backendType ??= "tap";
      } else if (meaning === "phy") {
        backendType ??= "phy";
      } else {
        prefixFormat = meaning;
      }
      break;
    }
  }
  let vdev = values.vdev;
  let access = values.access;
  // Deprecated "target,vdev,access" (xl-disk-configuration(5) "Deprecated
  // parameters"): a second positional that names a device is the vdev.
  const looksLikeVdev = (text: string) => /^(xvd|hd|sd)[a-z]+[0-9]*(:cdrom)?$/.test(text);
  if (
    format !== undefined &&
    values.format !== undefined &&
    !formats.includes(format) &&
    looksLikeVdev(format)
  ) {
    if (access === undefined) {
      access = vdev;
      vdev = format;
      format = undefined;
    }
  }
  format ??= prefixFormat ?? "raw";
  if (!formats.includes(format)) {
    throw new DiskSpecError(`format must be one of ${formats.join(", ")}, not "${format}"`, 0);
  }
  if (vdev === undefined || vdev === "") {
    throw new DiskSpecError("missing vdev (the guest device name, e.g. vdev=xvda)", spec.length);
  }
  if (vdev.endsWith(":cdrom")) {
    vdev = vdev.slice(0, -6);
    devtype = "cdrom";
  }
  if (!/^[a-z][a-z0-9]*$/.test(vdev)) {
    throw new DiskSpecError(`vdev "${vdev}" is not a device name such as xvda, hda or sdb`, 0);
  }
  let normalizedAccess: DiskAccess;
  switch (access ?? (devtype === "cdrom" ? "ro" : "rw")) {
    case "ro":
    case "r":
      normalizedAccess = "ro";
      break;
    case "rw":
    case "w":
      normalizedAccess = "rw";
      break;
    default:
      throw new DiskSpecError(`access must be ro, r, rw or w, not "${access}"`, 0);
  }
  if (backendType !== undefined && !backendTypes.includes(backendType)) {
    throw new DiskSpecError(
      `backendtype must be one of ${backendTypes.join(", ")}, not "${backendType}"`,
      0,
    );
  }
  if ((target === undefined || target === "") && devtype !== "cdrom") {
    throw new DiskSpecError("missing target (the image path; only a CD-ROM may be empty)", 0);
  }
  return {
    target: target ?? "",
    format: format as DiskFormat,
    vdev,
    access: normalizedAccess,
    devtype: devtype ?? "disk",
    backendType: backendType as DiskBackendType | undefined,
    backend: values.backend,
    script: values.script,
    discard,
    directIoSafe,
  };
}
