#!/usr/bin/env node
// `pnpm boot`: the quick start's first command. Builds the i386 Linux test
// guest if it is not cached yet (with progress), then boots it as a PVH
// domain with its console attached: `kumo create -c` on
// examples/configs/linux-i386-pvh.cfg. Extra arguments go to `kumo create`
// (for example `--stats` or `memory=256`). With `--hvm`, the guest boots as
// an HVM domain instead: SeaBIOS from the guest's boot disk
// (examples/configs/linux-i386-hvm-seabios.cfg), console on COM1.
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const build = spawnSync(process.execPath, [resolve(root, "guests/bin/guests.mjs"), "i386"], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"],
  encoding: "utf8",
});
process.stderr.write(build.stdout ?? "");
if (build.status !== 0) {
  console.error("boot: building the i386 guest failed (see above)");
  process.exit(build.status || 1);
}
const path = (label) => {
  const match = new RegExp(`^\\s*${label}\\s+(\\S+)\\s*$`, "m").exec(build.stdout);
  if (!match) throw new Error(`boot: the guest build printed no ${label} path`);
  return match[1];
};
const args = process.argv.slice(2);
const hvm = args.includes("--hvm");
const guest = hvm
  ? [
      resolve(root, "examples/configs/linux-i386-hvm-seabios.cfg"),
      `disk=${JSON.stringify([`format=raw, vdev=hda, access=ro, target=${path("bootdisk")}`])}`,
    ]
  : [
      resolve(root, "examples/configs/linux-i386-pvh.cfg"),
      `kernel=${JSON.stringify(path("vmlinux"))}`,
      `ramdisk=${JSON.stringify(path("initramfs"))}`,
    ];
const kumo = spawnSync(
  process.execPath,
  [
    resolve(root, "packages/toolstack/scripts/run-kumo.mjs"),
    "create",
    "-c",
    ...args.filter((arg) => arg.startsWith("-") && arg !== "--hvm"),
    ...guest,
    ...args.filter((arg) => !arg.startsWith("-")),
  ],
  { cwd: root, stdio: "inherit" },
);
process.exit(kumo.status ?? 1);
