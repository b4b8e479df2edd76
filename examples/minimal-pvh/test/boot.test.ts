import { readFile } from "node:fs/promises";
import { expect, test } from "vitest";
import { ensureGuest } from "../../../guests/src/index";
import { createPvhGuest } from "../src/index";

test("boots the i386 guest to the busybox prompt, answers uname -m with i686, powers off", async () => {
  const images = await ensureGuest("i386", { progress: false });
  const guest = await createPvhGuest({
    kernel: new Uint8Array(await readFile(images.vmlinux)),
    initramfs: new Uint8Array(await readFile(images.initramfs)),
    clock: { mode: "virtual" },
  });
  let output = "";
  let step = 0;
  guest.onOutput((bytes) => {
    output += new TextDecoder().decode(bytes);
    // Type each command once the shell has printed its prompt ("~ # ", guests/README.md).
    if (step === 0 && output.endsWith("# ")) {
      step = 1;
      guest.write("uname -m\n");
    } else if (step === 1 && /\ni686\r?\n[\s\S]*# $/.test(output)) {
      step = 2;
      guest.write("poweroff\n");
    }
  });
  const reason = await guest.run();
  expect(output).toMatch(/\ni686\r?\n/);
  expect(reason).toBe("poweroff");
}, 300_000);
