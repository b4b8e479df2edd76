/**
 * Node.js transports: the Unix-domain socket that host-side clients (Debian's xenstore-utils,
 * libxenstore) use, and a client for it. Kept apart from `src/index.ts` so the core stays
 * importable in a browser.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { XenstoreClient } from "./client";
import type { Xenstored } from "./daemon";
import { XenstoreUsageError } from "./errors";

export interface SocketServer {
  readonly path: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serves the daemon on a Unix-domain socket at `path`, the way Xen's xenstored serves
 * /var/run/xenstored/socket: every client is a privileged dom0 connection speaking the xs_wire.h
 * protocol. A stale socket file is replaced; any other existing file is an error.
 */
export async function listenUnixSocket(daemon: Xenstored, path: string): Promise<SocketServer> {
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) {
      throw new XenstoreUsageError(`${path} exists and is not a socket; refusing to replace it`);
    }
    unlinkSync(path);
  }
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    const connection = daemon.connect(0, {
      send: (message) => {
        if (!socket.destroyed) socket.write(message);
      },
      close: () => socket.destroy(),
    });
    socket.on("data", (data) => connection.receive(data));
    socket.on("error", () => {});
    socket.on("close", () => {
      sockets.delete(socket);
      if (!connection.closed) connection.close("socket closed by the client");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Only the owner (root, for a system daemon) may talk to it: every socket client is
  // privileged. Xen's xenstored makes its socket 0600 the same way.
  chmodSync(path, 0o600);
  return {
    path,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connects a typed client to a xenstored Unix socket (Kumo's or Xen's). */
export function connectSocket(path: string): Promise<XenstoreClient> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(
        new XenstoreClient({
          attach(onData, onClose) {
            socket.on("data", (data) => onData(data));
            socket.on("error", (error) => onClose(error));
            socket.on("close", () => onClose());
          },
          write(bytes) {
            socket.write(bytes);
          },
          end() {
            socket.end();
          },
        }),
      );
    });
  });
}
