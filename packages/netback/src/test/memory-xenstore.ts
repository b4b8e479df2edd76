/**
 * An in-memory xenstore with the semantics netback relies on (Xen docs/misc/xenstore.txt):
 * writes create parents, `rm` removes a subtree, a watch fires once on registration and then
 * for every change at or below its path (and for removal of an ancestor). Events arrive
 * asynchronously, like a daemon's. No permissions or transactions: a stand-in for
 * `@kumo/xenstore`'s client, which this package may not import (package map).
 */
import type { XenbusStore } from "../xenbus";

interface Watch {
  path: string;
  token: string;
  callback: (event: { path: string; token: string }) => void;
}

export class MemoryXenstore implements XenbusStore {
  private readonly nodes = new Map<string, string>();
  private readonly watches = new Set<Watch>();
  private nextToken = 1;
  /** Every write, in order (for tests of the handshake's key set). */
  readonly writes: [path: string, value: string][] = [];

  async read(path: string): Promise<string> {
    const value = this.nodes.get(path);
    if (value === undefined) throw new Error(`ENOENT: ${path}`);
    return value;
  }

  async tryRead(path: string): Promise<string | undefined> {
    return this.nodes.get(path);
  }

  /** Synchronous read for test assertions. */
  get(path: string): string | undefined {
    return this.nodes.get(path);
  }

  async write(path: string, value: string): Promise<void> {
    this.set(path, value);
  }

  /** Synchronous write (the toolstack's or a frontend's). */
  set(path: string, value: string): void {
    const parts = path.split("/");
    for (let i = 2; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!this.nodes.has(parent)) this.nodes.set(parent, "");
    }
    this.nodes.set(path, value);
    this.writes.push([path, value]);
    this.fire(path);
  }

  async rm(path: string): Promise<void> {
    this.remove(path);
  }

  remove(path: string): void {
    for (const key of [...this.nodes.keys()])
      if (key === path || key.startsWith(`${path}/`)) this.nodes.delete(key);
    this.fire(path);
    for (const watch of this.watches)
      if (watch.path.startsWith(`${path}/`)) this.deliver(watch, watch.path);
  }

  /** Names of the children of `path`. */
  list(path: string): string[] {
    const names = new Set<string>();
    for (const key of this.nodes.keys())
      if (key.startsWith(`${path}/`)) names.add(key.slice(path.length + 1).split("/")[0]);
    return [...names];
  }

  async watch(
    path: string,
    callback: (event: { path: string; token: string }) => void,
  ): Promise<{ unwatch(): Promise<void> }> {
    const watch: Watch = { path, token: `memory-${this.nextToken++}`, callback };
    this.watches.add(watch);
    this.deliver(watch, path);
    return {
      unwatch: async () => {
        this.watches.delete(watch);
      },
    };
  }

  /** Resolves when `path` holds `value` (polling the watch machinery). */
  async waitFor(path: string, value: string, timeoutMs = 5000): Promise<void> {
    const start = Date.now();
    while (this.nodes.get(path) !== value) {
      if (Date.now() - start > timeoutMs)
        throw new Error(`timed out waiting for ${path} = ${value} (is ${this.nodes.get(path)})`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  private fire(path: string): void {
    for (const watch of this.watches)
      if (path === watch.path || path.startsWith(`${watch.path}/`)) this.deliver(watch, path);
  }

  private deliver(watch: Watch, path: string): void {
    queueMicrotask(() => {
      if (this.watches.has(watch)) watch.callback({ path, token: watch.token });
    });
  }
}
