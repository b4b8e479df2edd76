// The guests CLI: `pnpm --filter @kumo/guests build [i386|x86_64|arm64|all] ...`
// (no argument: i386, the guest the default tests boot).
import { type GuestArch, guestArches, isGuestArch } from "./arches";
import { ensureGuest } from "./build";
import { GuestBuildError } from "./errors";
import { formatElapsed } from "./progress";

export async function main(argv: readonly string[]): Promise<number> {
  const names = argv.length > 0 ? argv : ["i386"];
  const arches: GuestArch[] = [];
  for (const name of names) {
    if (name === "all") arches.push(...guestArches);
    else if (isGuestArch(name)) arches.push(name);
    else {
      console.error(
        `guests: unknown architecture "${name}"; expected ${guestArches.join(", ")} or all`,
      );
      return 2;
    }
  }
  for (const arch of new Set(arches)) {
    const started = Date.now();
    try {
      const guest = await ensureGuest(arch);
      console.log(`${arch}: ${guest.dir} (${formatElapsed(Date.now() - started)})`);
      console.log(`  vmlinux    ${guest.vmlinux}`);
      console.log(`  kernel     ${guest.kernel}`);
      console.log(`  initramfs  ${guest.initramfs}`);
      if (guest.bootDisk !== undefined) console.log(`  bootdisk   ${guest.bootDisk}`);
    } catch (error) {
      if (error instanceof GuestBuildError) {
        console.error(error.message);
        return 1;
      }
      throw error;
    }
  }
  return 0;
}
