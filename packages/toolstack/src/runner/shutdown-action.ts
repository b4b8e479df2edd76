/** xl.cfg `on_*` actions as the hypervisor carries them out (the rest is the toolstack's: rename, coredump). */
import type { ShutdownAction } from "@kumo/hypervisor-core";
import type { DomainAction, DomainConfig } from "../config/domain-config";

export function shutdownActionOf(action: DomainAction): ShutdownAction {
  switch (action) {
    case "destroy":
    case "coredump-destroy":
      return "destroy";
    case "restart":
    case "rename-restart":
    case "coredump-restart":
    case "soft-reset":
      return "restart";
    case "preserve":
      return "preserve";
  }
}

/** The `onShutdown` of Hypervisor.createDomain for a domain's on_poweroff, on_reboot and on_crash. */
export function onShutdownOf(config: DomainConfig): {
  readonly poweroff: ShutdownAction;
  readonly reboot: ShutdownAction;
  readonly crash: ShutdownAction;
} {
  return {
    poweroff: shutdownActionOf(config.onPoweroff),
    reboot: shutdownActionOf(config.onReboot),
    crash: shutdownActionOf(config.onCrash),
  };
}
