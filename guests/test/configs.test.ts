import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { archRecipes, guestArches, verifyGuestConfig } from "../src/index";

// Configure-only runs of the kernel recipe: tinyconfig, the fragment,
// olddefconfig, then the check that nothing the fragment asks for was
// dropped. About 15 s each on an idle machine (but minutes on a loaded
// one), so the default run checks the recipe's failure path and i386 (whose
// build checks it again); KUMO_GUESTS_ALL=1 checks every fragment.
const all = process.env.KUMO_GUESTS_ALL === "1";
const hasCompiler = (command: string) =>
  spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;

describe("the kernel config fragments", () => {
  for (const arch of guestArches) {
    const { crossCompile, llvm, compiler } = archRecipes[arch];
    it.skipIf(
      !hasCompiler(llvm ? compiler : `${crossCompile}${compiler}`) || (arch !== "i386" && !all),
    )(
      `configs/${arch}.config survives Kconfig whole`,
      async () => {
        await expect(verifyGuestConfig(arch, { progress: false })).resolves.toBeUndefined();
      },
      300_000,
    );
  }

  it("fail loudly when Kconfig drops an option for a missing dependency", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-guests-config-"));
    try {
      // XEN_PVH depends on XEN, ACPI and more (arch/x86/xen/Kconfig): alone it is dropped.
      const fragment = join(dir, "broken.config");
      writeFileSync(fragment, "CONFIG_XEN_PVH=y\n");
      await expect(
        verifyGuestConfig("i386", { progress: false, configFragment: fragment }),
      ).rejects.toThrow(
        /wanted CONFIG_XEN_PVH=y, final \.config has: # CONFIG_XEN_PVH is not set|wanted CONFIG_XEN_PVH=y, final \.config has: \(absent\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
