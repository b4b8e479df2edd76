import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** A #define from a Xen public header installed by libxen-dev: the oracle for ABI numbers. */
export function xenHeaderConstant(header: string, name: string): number {
  const text = readFileSync(`/usr/include/xen/${header}`, "utf8");
  const match = new RegExp(`^#define\\s+${name}\\s+(\\w+)`, "m").exec(text);
  if (!match) throw new Error(`${name} not found in xen/${header}`);
  return Number(match[1]);
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface ElfSummary {
  elfClass: 32 | 64;
  machine: number;
  loads: { vaddr: number; paddr: number; filesz: number; memsz: number }[];
  notes: ElfNote[];
}

/** Reads the ELF header, PT_LOAD and PT_NOTE program headers (ELF spec, Linux elf.h); little-endian only. */
export function readElf(bytes: Uint8Array): ElfSummary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, false) !== 0x7f454c46) throw new Error("not an ELF file");
  const elfClass = bytes[4] === 1 ? 32 : 64;
  const is64 = elfClass === 64;
  const word = (offset: number) =>
    is64 ? Number(view.getBigUint64(offset, true)) : view.getUint32(offset, true);
  const machine = view.getUint16(18, true);
  const phoff = word(is64 ? 32 : 28);
  const phentsize = view.getUint16(is64 ? 54 : 42, true);
  const phnum = view.getUint16(is64 ? 56 : 44, true);
  const loads: ElfSummary["loads"] = [];
  const notes: ElfNote[] = [];
  for (let index = 0; index < phnum; index++) {
    const header = phoff + index * phentsize;
    const type = view.getUint32(header, true);
    const offset = word(header + (is64 ? 8 : 4));
    const vaddr = word(header + (is64 ? 16 : 8));
    const paddr = word(header + (is64 ? 24 : 12));
    const filesz = word(header + (is64 ? 32 : 16));
    const memsz = word(header + (is64 ? 40 : 20));
    if (type === 1) loads.push({ vaddr, paddr, filesz, memsz });
    if (type !== 4) continue;
    // Note entries: namesz, descsz, type, then name and desc, each 4-aligned.
    let at = offset;
    while (at + 12 <= offset + filesz) {
      const namesz = view.getUint32(at, true);
      const descsz = view.getUint32(at + 4, true);
      const noteType = view.getUint32(at + 8, true);
      const nameStart = at + 12;
      const descStart = nameStart + ((namesz + 3) & ~3);
      const name = new TextDecoder().decode(bytes.subarray(nameStart, nameStart + namesz));
      notes.push({
        name: name.replace(/\0+$/, ""),
        type: noteType,
        desc: bytes.subarray(descStart, descStart + descsz),
      });
      at = descStart + ((descsz + 3) & ~3);
    }
  }
  return { elfClass, machine, loads, notes };
}

/** A symbol's address from binutils' nm: an oracle independent of the ELF reader above. */
export function symbolAddress(elf: string, symbol: string, nmCommand = "nm"): number {
  const out = execFileSync(nmCommand, [elf], { encoding: "utf8", maxBuffer: 64 << 20 });
  const line = out.split("\n").find((entry) => entry.endsWith(` ${symbol}`));
  if (!line) throw new Error(`${symbol} not in ${elf}`);
  return Number.parseInt(line.split(" ")[0], 16);
}

export interface CpioEntry {
  mode: string;
  path: string;
  target?: string;
}

/** Lists a gzip'd newc archive with Debian's cpio (GNU cpio -t), the oracle for the format. */
export function listInitramfs(archive: string): CpioEntry[] {
  const list = (flags: string) =>
    execFileSync("sh", ["-c", `zcat "$1" | cpio ${flags} --quiet`, "sh", archive], {
      encoding: "utf8",
      maxBuffer: 16 << 20,
    })
      .split("\n")
      .filter((line) => line.length > 0);
  // -t gives the names alone; -tv, in the same order, the mode and link target.
  const names = list("-it");
  const long = list("-itv");
  return names.map((path, index) => {
    const line = long[index];
    const arrow = line.lastIndexOf(" -> ");
    return {
      mode: line.split(/\s+/)[0],
      path,
      ...(arrow >= 0 ? { target: line.slice(arrow + 4) } : {}),
    };
  });
}

/** The options a fragment sets: "CONFIG_X" -> "y" (or the value), "n" for "is not set". */
export function fragmentOptions(text: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const line of text.split("\n")) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) options.set(set[1], set[2]);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) options.set(unset[1], "n");
  }
  return options;
}

export interface QemuSession {
  /** Waits until `text` has been printed; resolves with ms since start. */
  waitFor(text: string, timeoutMs: number): Promise<number>;
  type(line: string): void;
  output(): string;
  stop(): void;
}

/** Starts a QEMU system emulator with the serial console on stdio. */
export function startQemu(command: string, args: readonly string[]): QemuSession {
  const qemu = spawn(
    command,
    [...args, "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let output = "";
  let errors = "";
  qemu.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("latin1");
  });
  qemu.stderr.on("data", (chunk: Buffer) => {
    errors += chunk.toString("latin1");
  });
  const started = performance.now();
  return {
    waitFor: (text, timeoutMs) =>
      new Promise<number>((resolve, reject) => {
        const check = () => {
          if (!output.includes(text)) return;
          clearInterval(timer);
          clearTimeout(limit);
          resolve(performance.now() - started);
        };
        const timer = setInterval(check, 20);
        const limit = setTimeout(() => {
          clearInterval(timer);
          reject(new Error(`no "${text}" after ${timeoutMs} ms:\n${output.slice(-2000)}${errors}`));
        }, timeoutMs);
        check();
      }),
    type: (line) => qemu.stdin.write(`${line}\n`),
    output: () => output,
    stop: () => qemu.kill(),
  };
}

/** Whether a command is on PATH. */
export function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}
