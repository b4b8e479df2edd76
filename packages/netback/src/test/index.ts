/**
 * Test helpers for netback and its users: an in-memory xenstore, the toolstack's device nodes,
 * and a simulated Linux xen-netfront that drives the rings from a guest domain.
 */
import type { MemoryXenstore } from "./memory-xenstore";

export { MemoryXenstore } from "./memory-xenstore";
export {
  type NetfrontFeatures,
  type NetfrontOptions,
  type ReceivedFrame,
  type SendOptions,
  SimulatedNetfront,
} from "./netfront";

export interface VifDeviceNodes {
  readonly domid: number;
  readonly devid?: number;
  readonly mac: string;
  readonly bridge?: string;
}

/**
 * Writes the nodes libxl writes for a vif (libxl_device_nic_add): the frontend dir with
 * `backend`, `backend-id`, `handle`, `mac`, state 1, and the backend dir with `frontend`,
 * `frontend-id`, `online`, `mac`, `bridge`, `handle`, `type`, state 1. Returns both paths.
 */
export function addVifDevice(
  store: MemoryXenstore,
  device: VifDeviceNodes,
): { frontendPath: string; backendPath: string } {
  const devid = device.devid ?? 0;
  const frontendPath = `/local/domain/${device.domid}/device/vif/${devid}`;
  const backendPath = `/local/domain/0/backend/vif/${device.domid}/${devid}`;
  store.set(`${frontendPath}/backend`, backendPath);
  store.set(`${frontendPath}/backend-id`, "0");
  store.set(`${frontendPath}/handle`, String(devid));
  store.set(`${frontendPath}/mac`, device.mac);
  store.set(`${frontendPath}/state`, "1");
  store.set(`${backendPath}/frontend`, frontendPath);
  store.set(`${backendPath}/frontend-id`, String(device.domid));
  store.set(`${backendPath}/online`, "1");
  store.set(`${backendPath}/mac`, device.mac);
  store.set(`${backendPath}/bridge`, device.bridge ?? "xenbr0");
  store.set(`${backendPath}/handle`, String(devid));
  store.set(`${backendPath}/type`, "vif");
  store.set(`${backendPath}/state`, "1");
  return { frontendPath, backendPath };
}
