import { struct } from "../define";

/** The 16-byte header of every xenstore message (Xen public io/xs_wire.h). */
export const xsd_sockmsg = struct("xsd_sockmsg", [
  ["type", "u32"],
  ["req_id", "u32"],
  ["tx_id", "u32"],
  ["len", "u32"],
]);

/**
 * The xenstore ring page at HVM_PARAM_STORE_PFN (io/xs_wire.h): two 1024-byte byte rings with
 * free-running u32 indices, plus the reconnection/error fields.
 */
export const xenstore_domain_interface = struct("xenstore_domain_interface", [
  ["req", "char", { count: 1024 }],
  ["rsp", "char", { count: 1024 }],
  ["req_cons", "u32"],
  ["req_prod", "u32"],
  ["rsp_cons", "u32"],
  ["rsp_prod", "u32"],
  ["server_features", "u32"],
  ["connection", "u32"],
  ["error", "u32"],
]);

/** The PV console ring page (Xen public io/console.h): `in` backend to guest, `out` back. */
export const xencons_interface = struct("xencons_interface", [
  ["in", "char", { count: 1024 }],
  ["out", "char", { count: 2048 }],
  ["in_cons", "u32"],
  ["in_prod", "u32"],
  ["out_cons", "u32"],
  ["out_prod", "u32"],
]);
