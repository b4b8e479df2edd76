/**
 * End-to-end check of the CPU on the real thing: an unmodified Linux 6.1
 * i386 PAE kernel (built by guests/, found in ~/.cache/kumo/guests) boots
 * through its PVH entry to a busybox userland on this interpreter and
 * reports back through /dev/kmsg. The "hypervisor" here is a stub that only
 * does what the boot needs from Xen (console_io, xen_version,
 * XENMEM_decrease_reservation, SCHEDOP_shutdown) and answers 0 or -ENOSYS
 * to the rest: it proves the CPU, not the hypervisor. Slow (hundreds of millions of instructions), so it runs
 * only with KUMO_LINUX_BOOT=1 and when the guest images exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { VcpuAccess, VcpuExitReason } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { createX86Cpu } from "../src/index";

function findImages(): { vmlinux: string; initramfs: string } | null {
  const base = join(homedir(), ".cache/kumo/guests");
  if (!existsSync(base)) return null;
  const candidates = readdirSync(base)
    .filter((name) => name.startsWith("i386-"))
    .map((name) => join(base, name))
    .filter((dir) => existsSync(join(dir, "vmlinux")) && existsSync(join(dir, "initramfs.cpio.gz")))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return candidates.length
    ? {
        vmlinux: join(candidates[0], "vmlinux"),
        initramfs: join(candidates[0], "initramfs.cpio.gz"),
      }
    : null;
}

/** A one-file newc cpio archive (Linux Documentation/driver-api/early-userspace/buffer-format.rst). */
function cpioWithInit(script: string): Uint8Array {
  const parts: Uint8Array[] = [];
  const encoder = new TextEncoder();
  const pad = (length: number) => new Uint8Array((4 - (length % 4)) % 4);
  const entry = (name: string, mode: number, data: Uint8Array) => {
    const fields = [1, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
    const header = `070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`;
    const head = encoder.encode(`${header}${name}\0`);
    parts.push(head, pad(head.length), data, pad(data.length));
  };
  entry("init", 0o100755, encoder.encode(script));
  entry("TRAILER!!!", 0, new Uint8Array(0));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const INIT = `#!/bin/sh
/bin/mount -t devtmpfs devtmpfs /dev
/bin/mount -t proc proc /proc
echo "KUMO-INIT: userland pid $$ on $(uname -m)" > /dev/kmsg
i=0; while [ $i -lt 100 ]; do i=$((i+1)); done
echo "KUMO-INIT: loop $i $(awk 'BEGIN{printf "%.3f", 22/7}')" > /dev/kmsg
echo "KUMO-INIT: $(grep -c processor /proc/cpuinfo) cpu" > /dev/kmsg
/sbin/poweroff -f
`;

const images = findImages();
const enabled = process.env.KUMO_LINUX_BOOT === "1" && images !== null;

describe.skipIf(!enabled)("Linux i386 PVH boot on the interpreter", () => {
  it("boots to a busybox userland", () => {
    const { vmlinux, initramfs } = images!;
    const elf = readFileSync(vmlinux);
    const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
    const RAM = 256 << 20;
    const memory = createGuestMemory({ ramSize: RAM });
    const ram = memory.ram.u8;
    const guest = new DataView(ram.buffer);
    let entry = 0;
    const programHeaders = view.getUint32(28, true);
    for (let i = 0; i < view.getUint16(44, true); i++) {
      const header = programHeaders + i * 32;
      const type = view.getUint32(header, true);
      const offset = view.getUint32(header + 4, true);
      const size = view.getUint32(header + 16, true);
      if (type === 1)
        ram.set(elf.subarray(offset, offset + size), view.getUint32(header + 12, true));
      if (type === 4) {
        // XEN_ELFNOTE_PHYS32_ENTRY (18) gives the PVH entry (xen-abi.md 1.1).
        for (let note = offset; note < offset + size; ) {
          const nameSize = view.getUint32(note, true);
          const descSize = view.getUint32(note + 4, true);
          const desc = note + 12 + ((nameSize + 3) & ~3);
          if (view.getUint32(note + 8, true) === 18) entry = view.getUint32(desc, true);
          note = desc + ((descSize + 3) & ~3);
        }
      }
    }
    // hvm_start_info (xen-abi.md 1.2), command line, memory map, initrd module.
    const startInfo = 0x6000;
    const commandLine = 0x6100;
    const memoryMap = 0x6200;
    const modules = 0x6300;
    const initrdAt = 0x4000000;
    const initrd = Buffer.concat([readFileSync(initramfs), cpioWithInit(INIT)]);
    ram.set(initrd, initrdAt);
    ram.set(
      new TextEncoder().encode("console=hvc0 earlyprintk=xen lpj=4000000 rdinit=/init\0"),
      commandLine,
    );
    guest.setUint32(startInfo, 0x336ec578, true);
    guest.setUint32(startInfo + 4, 1, true);
    guest.setUint32(startInfo + 12, 1, true);
    guest.setUint32(startInfo + 16, modules, true);
    guest.setUint32(startInfo + 24, commandLine, true);
    guest.setUint32(startInfo + 40, memoryMap, true);
    guest.setUint32(startInfo + 48, 2, true);
    guest.setUint32(modules, initrdAt, true);
    guest.setUint32(modules + 8, initrd.length, true);
    guest.setUint32(memoryMap + 8, 0x9f000, true);
    guest.setUint32(memoryMap + 16, 1, true);
    guest.setUint32(memoryMap + 24, 0x100000, true);
    guest.setUint32(memoryMap + 32, RAM - 0x100000, true);
    guest.setUint32(memoryMap + 40, 1, true);

    const cpu = createX86Cpu({
      memory,
      hooks: {
        readCounter: () => cpu.instructionsRetired,
        cpuid: (leaf, _subleaf, out) => {
          if (leaf < 0x40000000 || leaf > 0x40000005) return false;
          out.fill(0);
          if (leaf === 0x40000000) out.set([0x40000005, 0x566e6558, 0x65584d4d, 0x4d4d566e]);
          if (leaf === 0x40000001) out[0] = 0x00040011;
          return true;
        },
      },
    });
    cpu.setFlatProtectedMode(entry, 0);
    cpu.regs[3] = startInfo;
    const readGuest = (address: number, length: number) => {
      let text = "";
      for (let i = 0; i < length; i++) {
        const phys = cpu.translate(address + i, 0, VcpuAccess.Read);
        text += String.fromCharCode(phys < 0 ? 63 : ram[phys]);
      }
      return text;
    };
    let console = "";
    let shutdown = false;
    let last: VcpuExitReason = VcpuExitReason.Budget;
    const started = performance.now();
    while (!shutdown && cpu.instructionsRetired < 2_000_000_000) {
      const reason = cpu.run(1_000_000);
      last = reason;
      if (reason === VcpuExitReason.Hypercall) {
        const { hypercall, args } = cpu.exit;
        // -ENOSYS unless listed: memory_op, vcpu_op, set_timer_op, sched_op,
        // event_channel_op and hvm_op succeed without doing anything.
        let result = [12, 15, 24, 29, 32, 34].includes(hypercall) ? 0 : -38;
        if (hypercall === 18 && args[0] === 0) {
          console += readGuest(args[4], args[2]);
          result = 0;
        } else if (hypercall === 17) result = args[0] === 0 ? 0x00040011 : -38;
        else if (hypercall === 12 && args[0] === 1) {
          const phys = cpu.translate(args[2] + 4, 0, VcpuAccess.Read);
          result = phys < 0 ? -14 : guest.getUint32(phys, true);
        } else if (hypercall === 29 && args[0] === 2) shutdown = true;
        cpu.completeHypercall(result, result < 0 ? -1 : 0);
      } else if (reason !== VcpuExitReason.Budget) {
        break;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `linux boot: ${cpu.instructionsRetired} instructions in ${seconds.toFixed(1)} s = ${(
        cpu.instructionsRetired / seconds / 1e6
      ).toFixed(1)} MIPS\n`,
    );
    expect(cpu.exit.message).toBe("");
    expect(console).toContain("Run /init as init process");
    expect(console).toContain("KUMO-INIT: userland pid 1 on i686");
    expect(console).toContain("KUMO-INIT: loop 100 3.143");
    expect(console).toContain("KUMO-INIT: 1 cpu");
    // poweroff ends in SCHEDOP_shutdown, or the kernel idles in hlt waiting
    // for a timer event that this stub never sends.
    expect(shutdown || last === VcpuExitReason.Halt).toBe(true);
  }, 600_000);
});
