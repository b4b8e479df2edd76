import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, expect, test } from "vitest";
import { ensureGuest } from "../../../guests/src/index";
import { createPvhGuest } from "../src/index";

const CURSOR_QUERY = `${String.fromCharCode(0x1b)}[6n`;

let images: Awaited<ReturnType<typeof ensureGuest>>;
// Building the guest on a cold cache takes minutes: a hook has the longer timeout.
beforeAll(async () => {
  images = await ensureGuest("i386", { progress: false });
});

test("boots the i386 guest to the busybox prompt, answers uname -m with i686, powers off", async () => {
  const guest = await createPvhGuest({
    kernel: new Uint8Array(await readFile(images.vmlinux)),
    initramfs: new Uint8Array(await readFile(images.initramfs)),
    clock: { mode: "virtual" },
  });
  // The console transcript, written as it arrives, is a test artifact (test-artifacts/ at the root).
  const artifacts = join(import.meta.dirname, "../../../test-artifacts");
  mkdirSync(artifacts, { recursive: true });
  const transcript = join(artifacts, "minimal-pvh-console.log");
  writeFileSync(transcript, "");
  let output = "";
  let step = 0;
  guest.onOutput((bytes) => {
    output += new TextDecoder().decode(bytes);
    appendFileSync(transcript, bytes);
    // Type each command once the shell has printed its prompt ("~ # ", guests/README.md),
    // which busybox's line editor follows with a cursor position query (ESC [6n).
    const prompt = { test: (text: string) => /~ # $/.test(text.replaceAll(CURSOR_QUERY, "")) };
    if (step === 0 && prompt.test(output)) {
      step = 1;
      guest.write("uname -m\n");
    } else if (step === 1 && /\ni686\r?\n/.test(output) && prompt.test(output)) {
      step = 2;
      guest.write("poweroff\n");
    }
  });
  const reason = await guest.run();
  expect(output).toMatch(/\ni686\r?\n/);
  expect(reason).toBe("poweroff");
}, 300_000);
