/**
 * The host files behind an HVM domain's serial ports and debug console
 * (xl.cfg `serial = [ ..., "file:<path>" ]` and `debugcon = "file:<path>"`,
 * src/config/hvm-options.ts), as QEMU's `-serial file:` and `-debugcon file:`
 * chardevs: opened for appending when the domain is created, each byte the
 * guest writes goes to the file at once (a plain write(2), so a reader sees
 * it while the domain runs and everything is there once it ends).
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import type { HvmOptions } from "../config/hvm-options";

/** A serial or debug console file could not be opened. */
export class PortFileError extends Error {
  override name = "PortFileError";
}

export interface PortFiles {
  /** For `createHvmDomain`'s `serialPorts`: COM2-COM4's outputs (undefined: nothing behind the port). */
  readonly serialPorts: readonly (((byte: number) => void) | undefined)[];
  /** For `createHvmDomain`'s `debugconOutput`, when `debugcon` names a file (else undefined: the log). */
  readonly debugconOutput: ((byte: number) => void) | undefined;
  /** COM1's file (`serial = "file:<path>"`), absolute, for `logConsoleToFile` on the domain console; else undefined. */
  readonly com1File: string | undefined;
  /** Closes the files. */
  close(): void;
}

/** Opens the files `hvm` names (relative paths from `cwd`); COM1's own backend is the console's business. */
export function openPortFiles(hvm: HvmOptions, cwd: string): PortFiles {
  const fds: number[] = [];
  const open = (path: string, what: string) => {
    const full = resolve(cwd, path);
    try {
      const fd = openSync(full, "a");
      fds.push(fd);
      return fd;
    } catch (error) {
      for (const fd of fds) closeSync(fd);
      throw new PortFileError(`cannot open ${what} file ${full}: ${(error as Error).message}`);
    }
  };
  const output = (fd: number) => {
    const one = new Uint8Array(1);
    return (byte: number) => {
      one[0] = byte;
      writeSync(fd, one);
    };
  };
  const serialPorts = hvm.serialPorts.slice(1).map((backend, index) => {
    if (backend.kind !== "file") return undefined;
    return output(open(backend.path, `COM${index + 2}`));
  });
  const debugconOutput =
    hvm.debugcon.kind === "file" ? output(open(hvm.debugcon.path, "debugcon")) : undefined;
  const com1 = hvm.serialPorts[0];
  return {
    com1File: com1?.kind === "file" ? resolve(cwd, com1.path) : undefined,
    serialPorts,
    debugconOutput,
    close() {
      for (const fd of fds.splice(0)) closeSync(fd);
    },
  };
}
