// Durability and crash consistency: a writer process is killed with SIGKILL
// at random moments; every write acknowledged before a completed flush must
// be in the image afterwards, and qemu-img check must find no errors
// (leaked clusters are allowed: Kumo orders writes so that a crash can only
// leak). SIGKILL keeps the page cache, so this proves write ordering and
// consistency, not that fdatasync reaches the platter.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImage, openImage } from "../src/node";
import { qemuImg, random, temporaryDirectory } from "./helpers";

const SLOTS = 2048; // 8 MiB of 4 KiB slots, written in a scattered order
let dir: { path: string; remove: () => void };
let writer: string;

beforeAll(async () => {
  dir = temporaryDirectory();
  writer = join(dir.path, "crash-writer.mjs");
  await build({
    entryPoints: [join(import.meta.dirname, "fixtures/crash-writer.ts")],
    outfile: writer,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "warning",
  });
});
afterAll(() => dir.remove());

function slotData(index: number): Uint8Array {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4096; i += 4) view.setUint32(i, Math.imul(index + 1, 0x9e3779b1) ^ i, true);
  return bytes;
}

/** Runs the writer from `start` and kills it after `flushes` acknowledged flushes (plus a random delay). */
function runAndKill(
  path: string,
  start: number,
  flushes: number,
  delayMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, path, String(start), String(SLOTS)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let acknowledged = start;
    let seen = 0;
    let buffered = "";
    let killing = false;
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === "done") {
          if (!killing) child.kill("SIGKILL");
          killing = true;
          continue;
        }
        acknowledged = Number(line);
        if (++seen === flushes && !killing) {
          killing = true;
          setTimeout(() => child.kill("SIGKILL"), delayMs);
        }
      }
    });
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer exited without SIGKILL (${signal})`));
      else resolve(acknowledged);
    });
  });
}

describe("SIGKILL during writes", () => {
  for (const format of ["qcow2", "vhd"] as const) {
    it(`${format}: acknowledged writes survive and the image stays consistent`, async () => {
      const path = join(dir.path, `crash.${format}`);
      await createImage(path, { format, size: SLOTS * 4096 });
      const next = random(format.length);
      let acknowledged = 0;
      for (let round = 0; round < 5 && acknowledged < SLOTS; round++) {
        const flushes = 2 + Math.floor(next() * 20);
        acknowledged = Math.max(
          acknowledged,
          await runAndKill(path, acknowledged, flushes, Math.floor(next() * 15)),
        );
        const image = await openImage(path, { readOnly: true });
        const slot = new Uint8Array(4096);
        for (let index = 0; index < acknowledged; index++) {
          await image.read(slot, ((index * 7919) % SLOTS) * 4096);
          expect(Buffer.compare(slot, slotData(index)), `slot ${index} of ${acknowledged}`).toBe(0);
        }
        await image.close();
        if (format === "qcow2") {
          const check = qemuImg("check", "-f", "qcow2", path);
          // 0: clean, 3: only leaked clusters ("no harm to data").
          expect([0, 3], check.stdout + check.stderr).toContain(check.status);
          expect(check.stdout).not.toMatch(/ERROR/);
        } else {
          const info = qemuImg("info", "-f", "vpc", path);
          expect(info.status, info.stderr).toBe(0);
        }
      }
      expect(acknowledged).toBeGreaterThan(0);
    });
  }
});
