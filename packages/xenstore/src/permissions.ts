/**
 * Node permissions. Xen public io/xs_wire.h / docs/misc/xenstore.txt "permissions": a list of
 * `<c><domid>` entries, c = r (read), w (write), b (both), n (none). The first entry names the
 * owner and the access of every domain not listed; later entries override it per domain.
 */
export type Access = "n" | "r" | "w" | "b";

export interface Permission {
  domid: number;
  access: Access;
}

export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
export const ACCESS_OWNER = 4;

export function accessBits(access: Access): number {
  switch (access) {
    case "r":
      return ACCESS_READ;
    case "w":
      return ACCESS_WRITE;
    case "b":
      return ACCESS_READ | ACCESS_WRITE;
    default:
      return 0;
  }
}

/** Domain ids are 16-bit (Xen public xen.h `domid_t`). */
const DOMID_MAX = 0xffff;

/** Parses one `<c><domid>` entry, undefined if malformed (Xen `xs_strings_to_perms` rejects it: EINVAL). */
export function parsePermission(text: string): Permission | undefined {
  const access = text[0];
  if (access !== "n" && access !== "r" && access !== "w" && access !== "b") return undefined;
  const digits = text.slice(1);
  if (!/^[0-9]{1,5}$/.test(digits)) return undefined;
  const domid = Number(digits);
  if (domid > DOMID_MAX) return undefined;
  return { domid, access };
}

export function formatPermission(permission: Permission): string {
  return `${permission.access}${permission.domid}`;
}

/** What a connection of `domid` may do with a node carrying `permissions`. */
export function accessFor(
  permissions: readonly Permission[],
  domid: number,
  privileged: boolean,
  target: number | undefined,
): number {
  // Xen xenstored_core.c perm_for_conn: privileged connections (dom0, the socket) and the owner
  // have full access; a device-model stub domain with SET_TARGET acts for its target.
  const owner = permissions[0].domid;
  if (privileged || owner === domid || (target !== undefined && owner === target)) {
    return ACCESS_READ | ACCESS_WRITE | ACCESS_OWNER;
  }
  for (let index = 1; index < permissions.length; index++) {
    const entry = permissions[index];
    if (entry.domid === domid || (target !== undefined && entry.domid === target)) {
      return accessBits(entry.access);
    }
  }
  return accessBits(permissions[0].access);
}
