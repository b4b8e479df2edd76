/**
 * The end of a boot of `kumo create -c` without a daemon, shared by PVH/arm64
 * (main.ts) and HVM (hvm-create.ts) domains: whether xl.cfg's on_* action
 * asks for another boot, and the command's exit status.
 */
import type { Hypervisor, ShutdownReasonName } from "@kumo/hypervisor-core";
import type { DomainConfig } from "../config/domain-config";
import { ExitStatus, type KumoIo } from "./main";

/** Guards against a guest that fails as it boots with a restart action (xl stops such loops too). */
export const MAX_RESTARTS = 50;

/** True when xl.cfg's action for this end of a domain asks for a new boot. */
function restarts(config: DomainConfig, reason: string | undefined): boolean {
  const action =
    reason === "poweroff"
      ? config.onPoweroff
      : reason === "reboot"
        ? config.onReboot
        : reason === "crash"
          ? config.onCrash
          : undefined;
  return action === "restart" || action === "rename-restart" || action === "coredump-restart";
}

/**
 * After boot number `boot` (from 0) ended for `reason`: true when the domain
 * is to boot again (saying so on stderr); false when its action does not ask
 * for it or MAX_RESTARTS boots were made already (then saying it gives up).
 */
export function bootAgain(
  config: DomainConfig,
  reason: string | undefined,
  boot: number,
  io: KumoIo,
): boolean {
  if (!restarts(config, reason)) return false;
  if (boot >= MAX_RESTARTS) {
    io.stderr.write(`kumo: domain "${config.name}" restarted ${MAX_RESTARTS} times; giving up\n`);
    return false;
  }
  io.stderr.write(`kumo: domain "${config.name}" ended (${reason}); restarting it\n`);
  return true;
}

/**
 * The exit status for a domain that powered off, rebooted, crashed (its last
 * hypervisor log lines on stderr) or was detached from; undefined for any
 * other end, which each caller words itself.
 */
export function foregroundExitStatus(
  config: DomainConfig,
  reason: ShutdownReasonName | "detached" | undefined,
  hypervisor: Hypervisor,
  io: KumoIo,
): number | undefined {
  switch (reason) {
    case "poweroff":
      return ExitStatus.Ok;
    case "reboot":
      io.stderr.write(
        `kumo: domain "${config.name}" rebooted (on_reboot = "${config.onReboot}")\n`,
      );
      return ExitStatus.Reboot;
    case "crash":
      io.stderr.write(`kumo: domain "${config.name}" crashed\n`);
      for (const line of hypervisor.dmesg().slice(-10)) io.stderr.write(`  ${line}\n`);
      return ExitStatus.Crash;
    case "detached":
      io.stderr.write(
        `kumo: detached; without a kumo daemon the domain cannot outlive this command, so "${config.name}" was destroyed\n`,
      );
      return ExitStatus.Detached;
    default:
      return undefined;
  }
}
