/**
 * Boots the i386 Linux 6.1 test guest from guests/ as a PC does, from a hard
 * disk through its BIOS, on three machines, and times it to the banner its
 * /init prints ("Kumo test guest i386 ready", guests/initramfs/init). The
 * disk is the guest's boot disk (guests/recipes/hvm-disk.sh: an MBR, a FAT16
 * partition with SYSLINUX, the bzImage and the initramfs, `console=ttyS0`):
 *
 * - Kumo: an HVM domain with `firmware = "seabios"` (Debian's bios.bin) and
 *   the image as `hda` on the emulated PIIX3 IDE, run by `kumo create -c` in
 *   this process (runKumo, COM1 on its stdout, detached with Ctrl-] at the
 *   banner), on the host clock (as `kumo create` runs: SeaBIOS's and Linux's
 *   waits take real time, as on the peers) and on the virtual clock (guest
 *   time follows retired instructions, so a busy-wait costs interpretation).
 * - QEMU TCG: `qemu-system-i386 -drive file=<image>,if=ide,snapshot=on`
 *   with QEMU's own SeaBIOS (Debian's qemu-system-x86), serial on stdout.
 * - v86 (npm `v86`, WebAssembly JIT): Debian's SeaBIOS with the image as hda.
 *
 * For comparison Kumo also boots the same bzImage and initramfs by direct
 * kernel boot as an HVM domain (`kernel =`, no firmware; the Linux x86 boot
 * protocol), on both clocks.
 *
 * Each boot is stamped at four console texts, which split it into phases:
 * the firmware (start to SYSLINUX's banner, which it prints on COM1), the
 * bzImage read through INT 13h (to "Loading /initrd.gz"), the initramfs read
 * with the kernel's decompressor and early setup (to "Linux version"), and
 * the kernel and /init (to the banner). Kumo/QEMU and Kumo/v86 ratios are
 * printed for the whole boot and for each phase, with the load average
 * (a shared host: the figures vary with it). `--runs=N` repeats the round.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { runKumo } from "@kumo/toolstack/node";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { guestPaths } from "./lib/linux-guest";
import {
  arrayBuffer,
  BANNER,
  type BootResult,
  between,
  bootQemu,
  bootV86,
  ConsoleWatch,
  compare,
  FIRST_LINE,
  MEMORY_MIB,
  newResult,
  runsOption,
  seconds,
} from "./lib/pc-boot";

const BOOT_TIMEOUT_SECONDS = 600;
/** SYSLINUX's banner (its SERIAL directive puts it on COM1), "SYSLINUX 6.04 ...". */
const LOADER = "SYSLINUX";
/** SYSLINUX starts reading the initramfs: the bzImage has been read. */
const INITRD = "Loading /initrd.gz";
const TEXTS = [LOADER, INITRD, FIRST_LINE, BANNER];
const END = TEXTS.length - 1;
/** The phases: [name, from text (-1: the machine's start), to text]. */
const PHASES: readonly [string, number, number][] = [
  ["firmware", -1, 0],
  ["bzImage read", 0, 1],
  ["initrd+unpack", 1, 2],
  ["kernel+init", 2, 3],
];

interface Images {
  kernel: string;
  initramfs: string;
  bootdisk: string;
}

/** Kumo: `kumo create -c` in this process on an xl.cfg for the disk or direct boot. */
async function bootKumo(
  images: Images,
  boot: "disk" | "direct",
  clock: "wall" | "virtual",
): Promise<BootResult> {
  const machine = `Kumo (HVM, ${boot === "disk" ? "SeaBIOS, disk" : "direct bzImage"}, ${clock === "wall" ? "host" : "virtual"} clock)`;
  const result = newResult(machine, TEXTS);
  console.error(`  booting ${machine} ...`);
  const dir = mkdtempSync(join(tmpdir(), "kumo-bench-hvm-"));
  const started = performance.now();
  writeFileSync(
    join(dir, "guest.cfg"),
    [
      'name = "bench-hvm"',
      'type = "hvm"',
      `memory = ${MEMORY_MIB}`,
      'serial = "pty"',
      ...(boot === "disk"
        ? [
            'firmware = "seabios"',
            `disk = ['format=raw, vdev=hda, access=ro, target=${images.bootdisk}']`,
          ]
        : [
            `kernel = "${images.kernel}"`,
            `ramdisk = "${images.initramfs}"`,
            'cmdline = "console=ttyS0"',
          ]),
      "",
    ].join("\n"),
  );
  const stdin = new PassThrough();
  // Ctrl-] detaches `kumo create -c` (as from `xl console`), which then destroys the domain.
  const detach = () => stdin.write(Uint8Array.of(0x1d));
  const watch = new ConsoleWatch(started, TEXTS, () => {
    if (watch.done) detach();
  });
  let stderr = "";
  const timeout = setTimeout(() => {
    result.failure ??= `no banner within ${BOOT_TIMEOUT_SECONDS} s`;
    detach();
  }, BOOT_TIMEOUT_SECONDS * 1000);
  try {
    const status = await runKumo(["create", "-c", "guest.cfg"], {
      stdout: {
        write: (chunk: string | Uint8Array) => {
          watch.feed(chunk);
          return true;
        },
      },
      stderr: { write: (text: string) => (stderr += text) },
      stdin,
      env: { KUMO_STATE_DIR: join(dir, "state"), KUMO_CLOCK: clock },
      cwd: dir,
    });
    if (!watch.done) result.failure ??= `kumo create -c ended (status ${status}): ${stderr}`;
  } catch (error) {
    result.failure ??= `kumo create -c threw: ${String(error)}`;
  } finally {
    clearTimeout(timeout);
    stdin.end();
    rmSync(dir, { recursive: true, force: true });
  }
  result.seconds = [...watch.seen];
  watch.save(result.machine);
  if (watch.done) result.failure = undefined;
  else result.failure = `${result.failure}; last console output: ${JSON.stringify(watch.last)}`;
  return result;
}

/** Seconds of one phase of a boot, if both its ends were seen. */
function phase(result: BootResult, [, from, to]: readonly [string, number, number]) {
  return from < 0 ? result.seconds[to] : between(result, from, to);
}

const benchmark: Benchmark = {
  name: "boot-hvm",
  description:
    'i386 Linux 6.1 from a SYSLINUX disk through SeaBIOS to "Kumo test guest i386 ready": Kumo (HVM, IDE) vs QEMU TCG vs v86; Kumo direct bzImage HVM boot beside',
  async run(context: BenchmarkContext) {
    const runs = runsOption();
    const images = guestPaths("i386", ["kernel", "initramfs", "bootdisk"]);
    console.log(`  boot disk: ${images.bootdisk}`);
    console.log(
      `  load average before: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
    );
    let kumoBooted = false;
    for (let round = 0; round < runs; round++) {
      console.error("  booting on QEMU and v86 ...");
      const qemu = await bootQemu(
        "QEMU TCG (qemu-system-i386, SeaBIOS, IDE disk)",
        ["-drive", `file=${images.bootdisk},format=raw,if=ide,index=0,snapshot=on`],
        TEXTS,
        BOOT_TIMEOUT_SECONDS,
      );
      const v86 = await bootV86(
        "v86 (WebAssembly JIT, SeaBIOS, IDE disk)",
        { hda: { buffer: arrayBuffer(images.bootdisk) } },
        TEXTS,
        BOOT_TIMEOUT_SECONDS,
      );
      const kumoDisk = [
        await bootKumo(images, "disk", "wall"),
        await bootKumo(images, "disk", "virtual"),
      ];
      const kumoDirect = [
        await bootKumo(images, "direct", "wall"),
        await bootKumo(images, "direct", "virtual"),
      ];
      const results = [qemu, v86, ...kumoDisk, ...kumoDirect];
      kumoBooted ||= [...kumoDisk, ...kumoDirect].some((k) => k.seconds[END] !== undefined);
      const suffix = runs > 1 ? ` (run ${round + 1})` : "";
      console.log(`\n  run ${round + 1}/${runs}, load average ${loadavg()[0].toFixed(1)}`);
      console.log(
        `  ${"machine".padEnd(50)} ${"banner".padStart(9)}  ${PHASES.map(([name]) => name.padStart(13)).join(" ")}`,
      );
      for (const r of results) {
        console.log(
          `  ${r.machine.padEnd(50)} ${seconds(r.seconds[END]).padStart(9)}  ${PHASES.map((p) => seconds(phase(r, p)).padStart(13)).join(" ")}`,
        );
      }
      for (const r of results) {
        if (r.failure) console.log(`  ${r.machine} did not boot: ${r.failure}`);
      }
      console.log(
        `\n  ${"ratio Kumo/peer".padEnd(50)} ${"banner".padStart(9)}  ${PHASES.map(([name]) => name.padStart(13)).join(" ")}`,
      );
      for (const k of [...kumoDisk, ...kumoDirect]) {
        for (const peer of [qemu, v86]) {
          const kb = k.seconds[END];
          const pb = peer.seconds[END];
          if (kb === undefined || pb === undefined) continue;
          const phases = PHASES.map((p) => {
            const kp = phase(k, p);
            const pp = phase(peer, p);
            return (kp === undefined || pp === undefined ? "—" : (kp / pp).toFixed(2)).padStart(13);
          });
          console.log(
            `  ${`${k.machine.replace("Kumo (HVM, ", "").replace(")", "")} / ${peer.machine.split(" (")[0]}`.padEnd(50)} ${(kb / pb).toFixed(2).padStart(9)}  ${phases.join(" ")}   ${compare(kb, pb)}`,
          );
        }
      }
      for (const r of results) {
        const banner = r.seconds[END];
        if (banner === undefined) continue;
        const ratios = r.machine.startsWith("Kumo")
          ? [qemu, v86]
              .filter((peer) => peer.seconds[END] !== undefined)
              .map(
                (peer) =>
                  `Kumo/${peer.machine.split(" (")[0]} = ${(banner / (peer.seconds[END] ?? 1)).toFixed(2)}`,
              )
          : [];
        context.report({
          label: `${r.machine}: seconds to the banner${suffix}`,
          value: banner,
          unit: "s",
          detail: [PHASES.map((p) => `${p[0]} ${seconds(phase(r, p))}`).join(", "), ...ratios].join(
            "; ",
          ),
        });
      }
    }
    console.log(`  load average after: ${loadavg()[0].toFixed(1)}`);
    if (!kumoBooted) throw new Error("Kumo did not boot the guest to its banner (see above)");
  },
};

export default benchmark;
