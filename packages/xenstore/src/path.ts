import { XenstoreConst } from "@kumo/abi";

/** Domain home directory (Xen docs/misc/xenstore-paths.pandoc: `/local/domain/$DOMID`). */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/**
 * Characters allowed in a node name. Xen tools/xenstore/xenstored_core.c `valid_chars`:
 * letters, digits, `-/_@`.
 */
function validCharacters(path: string): boolean {
  for (let index = 0; index < path.length; index++) {
    const code = path.charCodeAt(index);
    const ok =
      (code >= 0x61 && code <= 0x7a) ||
      (code >= 0x41 && code <= 0x5a) ||
      (code >= 0x30 && code <= 0x39) ||
      code === 0x2d ||
      code === 0x2f ||
      code === 0x5f ||
      code === 0x40;
    if (!ok) return false;
  }
  return true;
}

/** Special watch paths Xen's xenstored fires itself (docs/misc/xenstore.txt "WATCH"). */
export const SPECIAL_PATHS = ["@introduceDomain", "@releaseDomain"] as const;

export function isSpecialPath(path: string): boolean {
  return path.startsWith("@");
}

/**
 * Resolves a path as a connection of domain `domid` sent it: relative paths live under the
 * domain's home (docs/misc/xenstore.txt "paths"). Returns the absolute path, or undefined when
 * the path is not a valid node name (Xen `is_valid_nodename`: leading `/`, no empty component,
 * no trailing `/`, valid characters, at most XENSTORE_ABS_PATH_MAX bytes; relative at most
 * XENSTORE_REL_PATH_MAX). `allowSpecial` admits `@...` names (watches and permissions only).
 */
export function canonicalize(
  domid: number,
  path: string,
  allowSpecial: boolean,
): string | undefined {
  if (path.length === 0) return undefined;
  if (path.startsWith("@")) {
    // docs/misc/xenstore.txt: "@<wspecial> may have any syntax but it matches only the
    // special events"; only watches and permissions take such names.
    if (!allowSpecial || path.length > XenstoreConst.ABS_PATH_MAX) return undefined;
    return path;
  }
  let absolute = path;
  if (!path.startsWith("/")) {
    if (path.length > XenstoreConst.REL_PATH_MAX) return undefined;
    absolute = `${domainPath(domid)}/${path}`;
  }
  if (absolute.length > XenstoreConst.ABS_PATH_MAX) return undefined;
  if (!validCharacters(absolute)) return undefined;
  if (absolute === "/") return absolute;
  if (absolute.endsWith("/") || absolute.includes("//")) return undefined;
  return absolute;
}

/** Parent of an absolute path ("/" for top-level nodes). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** Last component of an absolute path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Absolute path of child `name` of `parent`. */
export function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** True if `path` is `ancestor` or lies below it. */
export function isAtOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === "/") return path.startsWith("/");
  return (
    path === ancestor || (path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 0x2f)
  );
}
