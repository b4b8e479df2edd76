/**
 * The example's web server (Node only, never bundled into the page): serves
 * index.html, the esbuild bundle in dist/ and the guest's vmlinux and
 * initramfs from @kumo/guests' cache. With `isolated` (the default) it sends
 * COOP/COEP, which makes the page cross-origin isolated, so that guest RAM can
 * be a SharedArrayBuffer (https://web.dev/articles/coop-coep).
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { ensureGuest } from "../../../guests/src/index";

export interface ExampleServer {
  readonly url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

export async function serveExample(
  options: { port?: number; isolated?: boolean } = {},
): Promise<ExampleServer> {
  const root = join(import.meta.dirname, "..");
  const guest = await ensureGuest("i386", { progress: false });
  const files: Record<string, string> = {
    "/": join(root, "index.html"),
    "/guest/vmlinux": guest.vmlinux,
    "/guest/initramfs": guest.initramfs,
  };
  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const file = files[path] ?? (path.startsWith("/dist/") ? join(root, normalize(path)) : "");
    if (options.isolated !== false) {
      response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, {
        "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
        "Content-Length": body.length,
      });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
