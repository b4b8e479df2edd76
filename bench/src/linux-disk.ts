/**
 * Guest sequential disk throughput through @kumo/blkback against the host's
 * own throughput on the same file (issue 7, Speed).
 *
 * The i386 Linux test guest (guests/) boots under `kumo daemon` with three
 * disks: a raw file as xvda, a qcow2 image as xvdb and a dynamic VHD as xvdc
 * (made by Debian's qemu-img). Its own xen-blkfront talks to blkback; busybox
 * `dd` with O_DIRECT (`oflag=direct` / `iflag=direct`: no guest page cache,
 * every block goes through the ring) writes and then reads DISK_MIB MiB in
 * 1 MiB blocks on each disk. The host's figure is Debian's coreutils `dd`
 * with the same block size and flags on the raw file before the guest uses
 * it. Times are wall clock on the host, from typing the command to the shell's
 * marker, minus the round trip of an empty command.
 *
 * The guest writes zeros (generating data in a guest that runs at ~10 MIPS
 * would dominate the figure); Kumo's image formats store zeros like any other
 * data (no zero detection), so this is not a shortcut for qcow2 or VHD.
 * `--disk-mib=N` changes the size (default 32).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Benchmark, BenchmarkContext } from "./lib/harness";
import { i386Guest, startGuests } from "./lib/linux-guest";

const MiB = 1 << 20;

function sizeOption(): number {
  const option = process.argv.find((arg) => arg.startsWith("--disk-mib="));
  const value = option ? Number(option.slice("--disk-mib=".length)) : 32;
  if (!Number.isInteger(value) || value < 1 || value > 1024)
    throw new Error(`--disk-mib must be an integer from 1 to 1024, got ${option}`);
  return value;
}

/** Seconds of Debian's dd with the given arguments (its own stderr report is not parsed). */
function hostDd(args: string[]): number {
  const started = performance.now();
  const result = spawnSync("dd", args, { encoding: "utf8" });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`dd ${args.join(" ")} failed: ${result.stderr}`);
  return seconds;
}

const benchmark: Benchmark = {
  name: "linux-disk",
  description:
    "Linux guest sequential O_DIRECT write/read through blkback (raw, qcow2, VHD) vs the host's dd on the same raw file",
  async run(context: BenchmarkContext) {
    const mib = sizeOption();
    const images = i386Guest();
    const dir = mkdtempSync(join(tmpdir(), "kumo-bench-disk-"));
    try {
      const raw = join(dir, "disk.raw");
      const diskMib = mib + 16;
      execFileSync("qemu-img", ["create", "-q", "-f", "raw", raw, `${diskMib}M`]);
      execFileSync("qemu-img", [
        "create",
        "-q",
        "-f",
        "qcow2",
        join(dir, "disk.qcow2"),
        `${diskMib}M`,
      ]);
      execFileSync("qemu-img", [
        "create",
        "-q",
        "-f",
        "vpc",
        "-o",
        "subformat=dynamic",
        join(dir, "disk.vhd"),
        `${diskMib}M`,
      ]);
      // The host first: the same file, block size and O_DIRECT flags (best of three).
      let hostWrite = Number.POSITIVE_INFINITY;
      let hostRead = Number.POSITIVE_INFINITY;
      for (let round = 0; round < 3; round++) {
        hostWrite = Math.min(
          hostWrite,
          hostDd([
            `if=/dev/zero`,
            `of=${raw}`,
            "bs=1M",
            `count=${mib}`,
            "oflag=direct",
            "conv=notrunc",
          ]),
        );
        hostRead = Math.min(
          hostRead,
          hostDd([`if=${raw}`, "of=/dev/null", "bs=1M", `count=${mib}`, "iflag=direct"]),
        );
      }
      const hostWriteRate = (mib * MiB) / hostWrite;
      const hostReadRate = (mib * MiB) / hostRead;
      console.log(
        `  load average before the guest: ${loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")}`,
      );
      const bootStarted = performance.now();
      const { consoles, stop } = await startGuests(join(dir, "state"), images, [
        {
          name: "bench-disk",
          extra: [
            `disk = [ "format=raw,vdev=xvda,access=rw,target=${raw}", "format=qcow2,vdev=xvdb,access=rw,target=${join(dir, "disk.qcow2")}", "format=vhd,vdev=xvdc,access=rw,target=${join(dir, "disk.vhd")}" ]`,
          ],
        },
      ]);
      const [guest] = consoles;
      try {
        console.log(
          `  guest at its prompt after ${((performance.now() - bootStarted) / 1000).toFixed(1)} s`,
        );
        // What a command costs without I/O: typing, the shell, the marker, the console path.
        let empty = Number.POSITIVE_INFINITY;
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await guest.run("true");
          empty = Math.min(empty, (performance.now() - started) / 1000);
        }
        const timed = async (command: string) => {
          const started = performance.now();
          const output = await guest.run(command);
          if (!/records out/.test(output)) throw new Error(`${command}: ${output.slice(-500)}`);
          return Math.max(1e-3, (performance.now() - started) / 1000 - empty);
        };
        for (const [device, format] of [
          ["xvda", "raw"],
          ["xvdb", "qcow2"],
          ["xvdc", "vhd"],
        ] as const) {
          const write = await timed(
            `dd if=/dev/zero of=/dev/${device} bs=1M count=${mib} oflag=direct`,
          );
          const read = await timed(
            `dd if=/dev/${device} of=/dev/null bs=1M count=${mib} iflag=direct`,
          );
          const writeRate = (mib * MiB) / write;
          const readRate = (mib * MiB) / read;
          context.report({
            label: `guest sequential write, ${format} (${device}, ${mib} MiB, bs=1M, O_DIRECT)`,
            value: writeRate,
            unit: "B/s",
            detail: `${write.toFixed(2)} s; host dd on the raw file ${(hostWriteRate / 1e6).toFixed(0)} MB/s; guest/host = ${(writeRate / hostWriteRate).toFixed(4)}`,
          });
          context.report({
            label: `guest sequential read, ${format} (${device}, ${mib} MiB, bs=1M, O_DIRECT)`,
            value: readRate,
            unit: "B/s",
            detail: `${read.toFixed(2)} s; host dd on the raw file ${(hostReadRate / 1e6).toFixed(0)} MB/s; guest/host = ${(readRate / hostReadRate).toFixed(4)}`,
          });
        }
        context.report({
          label: `host dd write on the same raw file (${mib} MiB, bs=1M, oflag=direct)`,
          value: hostWriteRate,
          unit: "B/s",
        });
        context.report({
          label: `host dd read on the same raw file (${mib} MiB, bs=1M, iflag=direct)`,
          value: hostReadRate,
          unit: "B/s",
        });
        console.log(`  load average after: ${loadavg()[0].toFixed(1)}`);
      } finally {
        await stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default benchmark;
