/**
 * The page script: fetches the guest's kernel and initramfs from the server
 * that serves this page (with a progress bar), boots them with the same
 * composition as examples/minimal-pvh, and puts xterm.js on hvc0. Guest RAM is
 * a SharedArrayBuffer when the page is cross-origin isolated (COOP + COEP
 * headers), so a vCPU could later move to a Worker; an ArrayBuffer otherwise.
 */
import { createPvhGuest } from "@kumo/example-minimal-pvh";
import { Terminal } from "@xterm/xterm";

const status = document.getElementById("status") as HTMLElement;
const progress = document.getElementById("progress") as HTMLProgressElement;

/** Downloads `url`, reporting bytes as they arrive (Content-Length gives the total). */
async function download(url: string, done: number[], index: number, total: number[]) {
  const response = await fetch(url);
  if (!response.ok || response.body === null) throw new Error(`GET ${url}: ${response.status}`);
  total[index] = Number(response.headers.get("content-length") ?? 0);
  const chunks: Uint8Array[] = [];
  const reader = response.body.getReader();
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    chunks.push(value);
    done[index] += value.length;
    const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
    progress.max = sum(total);
    progress.value = sum(done);
    status.textContent = `Loading the guest: ${(sum(done) / 1e6).toFixed(1)} of ${(sum(total) / 1e6).toFixed(1)} MB`;
  }
  const bytes = new Uint8Array(done[index]);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

async function main(): Promise<void> {
  const done = [0, 0];
  const total = [0, 0];
  const [kernel, initramfs] = await Promise.all([
    download("guest/vmlinux", done, 0, total),
    download("guest/initramfs", done, 1, total),
  ]);
  const shared = globalThis.crossOriginIsolated === true;
  const terminal = new Terminal({ convertEol: false, cols: 100, rows: 30 });
  terminal.open(document.getElementById("terminal") as HTMLElement);
  const guest = await createPvhGuest({ kernel, initramfs, shared, clock: { mode: "wall" } });
  const memory = shared ? "a SharedArrayBuffer" : "an ArrayBuffer";
  status.textContent = `Booting Linux (guest RAM in ${memory})...`;
  progress.hidden = true;
  let booted = false;
  guest.onOutput((bytes) => {
    terminal.write(bytes);
    if (!booted) {
      booted = true;
      status.textContent = `Running (guest RAM in ${memory})`;
    }
  });
  terminal.onData((text) => guest.write(text));
  terminal.focus();
  const reason = await guest.run();
  status.textContent = `The guest shut down (${reason ?? "stopped"})`;
}

main().catch((error: unknown) => {
  status.textContent = `Error: ${error instanceof Error ? error.message : String(error)}`;
  console.error(error instanceof Error ? error.stack : error);
});
