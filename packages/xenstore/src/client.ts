import { XsType } from "@kumo/abi";
import type { Xenstored } from "./daemon";
import { errorCode, XenstoreError, XenstoreUsageError } from "./errors";
import { formatPermission, type Permission, parsePermission } from "./permissions";
import {
  bytesToString,
  concatBytes,
  encodeMessage,
  MessageParser,
  nulTerminated,
  splitStrings,
  utf8,
  type XsMessage,
} from "./wire";

/**
 * A bidirectional byte stream to a xenstore daemon (a Unix socket, an in-process pipe). The
 * client calls `attach` once, then `write` for every framed request.
 */
export interface ByteStream {
  attach(onData: (bytes: Uint8Array) => void, onClose: (error?: Error) => void): void;
  write(bytes: Uint8Array): void;
  end(): void;
}

export interface WatchEvent {
  /** Path of the changed node (relative if the watch was). */
  path: string;
  token: string;
}

export interface WatchHandle {
  readonly path: string;
  readonly token: string;
  unwatch(): Promise<void>;
}

export interface TransactionOptions {
  /** Attempts before giving up on EAGAIN. Default 16. */
  attempts?: number;
}

type Pending = {
  resolve: (message: XsMessage) => void;
  reject: (error: Error) => void;
};

/** The operations that may run inside or outside a transaction. */
abstract class XenstoreOperations {
  protected abstract request(type: number, payload: Uint8Array): Promise<XsMessage>;

  /** Value of `path` as UTF-8 text. ENOENT if missing. */
  async read(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readBytes(path));
  }

  async readBytes(path: string): Promise<Uint8Array> {
    return (await this.request(XsType.READ, nulTerminated(path))).payload;
  }

  /** Value of `path`, or undefined if it does not exist. */
  async tryRead(path: string): Promise<string | undefined> {
    try {
      return await this.read(path);
    } catch (error) {
      if (error instanceof XenstoreError && error.code === "ENOENT") return undefined;
      throw error;
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.tryRead(path)) !== undefined;
  }

  /** Writes `value`, creating the node and missing parents. */
  async write(path: string, value: string | Uint8Array): Promise<void> {
    const bytes = typeof value === "string" ? utf8(value) : value;
    await this.request(XsType.WRITE, concatBytes(nulTerminated(path), bytes));
  }

  async mkdir(path: string): Promise<void> {
    await this.request(XsType.MKDIR, nulTerminated(path));
  }

  /** Removes `path` and everything below it. */
  async rm(path: string): Promise<void> {
    await this.request(XsType.RM, nulTerminated(path));
  }

  /** Names of the children of `path`. Large directories are fetched with XS_DIRECTORY_PART. */
  async list(path: string): Promise<string[]> {
    try {
      const reply = await this.request(XsType.DIRECTORY, nulTerminated(path));
      return splitStrings(reply.payload, -1) ?? [];
    } catch (error) {
      if (!(error instanceof XenstoreError) || error.code !== "E2BIG") throw error;
    }
    return this.listInParts(path);
  }

  private async listInParts(path: string): Promise<string[]> {
    // Same loop as libxenstore's xs_directory_part: restart if the generation changes.
    for (let attempt = 0; attempt < 16; attempt++) {
      const chunks: Uint8Array[] = [];
      let generation: string | undefined;
      let offset = 0;
      let restart = false;
      for (;;) {
        const reply = await this.request(
          XsType.DIRECTORY_PART,
          nulTerminated(path, String(offset)),
        );
        const nul = reply.payload.indexOf(0);
        const replyGeneration = bytesToString(reply.payload.subarray(0, nul));
        if (generation !== undefined && generation !== replyGeneration) {
          restart = true;
          break;
        }
        generation = replyGeneration;
        const data = reply.payload.subarray(nul + 1);
        chunks.push(data);
        offset += data.length;
        if (data.length <= 1 || data[data.length - 2] === 0) break;
      }
      if (restart) continue;
      const all = concatBytes(...chunks);
      return splitStrings(all.subarray(0, Math.max(0, all.length - 1)), -1) ?? [];
    }
    throw new XenstoreError("EAGAIN", `directory ${path} kept changing while listed`);
  }

  async getPermissions(path: string): Promise<Permission[]> {
    const reply = await this.request(XsType.GET_PERMS, nulTerminated(path));
    const permissions: Permission[] = [];
    for (const text of splitStrings(reply.payload, -1) ?? []) {
      const permission = parsePermission(text);
      if (permission) permissions.push(permission);
    }
    return permissions;
  }

  /** Sets the permission list; entries are objects or Xen's `<c><domid>` strings ("n0", "r5"). */
  async setPermissions(path: string, permissions: (Permission | string)[]): Promise<void> {
    if (permissions.length === 0) {
      throw new XenstoreUsageError("setPermissions needs at least the owner entry");
    }
    const texts = permissions.map((entry) => {
      if (typeof entry !== "string") return formatPermission(entry);
      if (!parsePermission(entry)) {
        throw new XenstoreUsageError(
          `bad permission "${entry}": expected n, r, w or b followed by a domid, e.g. "r5"`,
        );
      }
      return entry;
    });
    await this.request(XsType.SET_PERMS, nulTerminated(path, ...texts));
  }
}

/** Operations bound to one open transaction (see `XenstoreClient.transaction`). */
export class XenstoreTransaction extends XenstoreOperations {
  constructor(
    private readonly client: XenstoreClient,
    readonly id: number,
  ) {
    super();
  }

  protected request(type: number, payload: Uint8Array): Promise<XsMessage> {
    return this.client.send(type, this.id, payload);
  }
}

/**
 * Typed async client of the xenstore wire protocol, for the toolstack and backends. Talks to
 * any daemon over a `ByteStream`: Kumo's in-process (`connectLocal`), or a Unix socket
 * (`connectSocket` from `@kumo/xenstore/node`).
 */
export class XenstoreClient extends XenstoreOperations {
  private readonly pending = new Map<number, Pending>();
  private readonly watchers = new Map<string, (event: WatchEvent) => void>();
  private readonly parser = new MessageParser();
  private nextRequestId = 1;
  private nextToken = 1;
  private closedError: Error | undefined;

  constructor(private readonly stream: ByteStream) {
    super();
    stream.attach(
      (bytes) => {
        const ok = this.parser.push(bytes, (message) => this.dispatch(message));
        if (!ok) this.fail(new XenstoreUsageError("xenstore daemon sent an oversized message"));
      },
      (error) => this.fail(error ?? new XenstoreUsageError("xenstore connection closed")),
    );
  }

  protected request(type: number, payload: Uint8Array): Promise<XsMessage> {
    return this.send(type, 0, payload);
  }

  /** Sends one request and resolves with its reply; an XS_ERROR reply rejects. */
  send(type: number, transactionId: number, payload: Uint8Array): Promise<XsMessage> {
    if (this.closedError) return Promise.reject(this.closedError);
    const requestId = this.nextRequestId;
    this.nextRequestId = (this.nextRequestId + 1) >>> 0 || 1;
    return new Promise<XsMessage>((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.stream.write(encodeMessage(type, requestId, transactionId, payload));
    });
  }

  private dispatch(message: XsMessage): void {
    if (message.type === XsType.WATCH_EVENT) {
      const strings = splitStrings(message.payload, -1);
      if (!strings || strings.length < 2) return;
      const [path, token] = strings;
      this.watchers.get(token)?.({ path, token });
      return;
    }
    const pending = this.pending.get(message.requestId);
    if (!pending) return;
    this.pending.delete(message.requestId);
    if (message.type === XsType.ERROR) {
      const name = bytesToString(
        message.payload.subarray(0, Math.max(0, message.payload.length - 1)),
      );
      pending.reject(new XenstoreError(errorCode(name)));
    } else {
      pending.resolve(message);
    }
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  /**
   * Registers a watch; `callback` runs for every event, starting with the immediate one the
   * daemon sends on registration.
   */
  async watch(
    path: string,
    callback: (event: WatchEvent) => void,
    token = `kumo-${this.nextToken++}`,
  ): Promise<WatchHandle> {
    if (this.watchers.has(token)) throw new XenstoreUsageError(`watch token ${token} in use`);
    this.watchers.set(token, callback);
    try {
      await this.request(XsType.WATCH, nulTerminated(path, token));
    } catch (error) {
      this.watchers.delete(token);
      throw error;
    }
    return {
      path,
      token,
      unwatch: async () => {
        if (!this.watchers.delete(token)) return;
        await this.request(XsType.UNWATCH, nulTerminated(path, token));
      },
    };
  }

  /**
   * Watch events as an async iterator; leaving the `for await` loop removes the watch. The
   * queue is bounded (`limit`, oldest events dropped beyond it): a backend watching a
   * guest-writable path must not grow without bound (XSA-349).
   */
  watchEvents(path: string, limit = 1024): AsyncIterableIterator<WatchEvent> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const handle = this.watch(path, (event) => {
      if (queue.length >= limit) queue.shift();
      queue.push(event);
      wake?.();
    });
    const iterator: AsyncIterableIterator<WatchEvent> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        await handle;
        while (queue.length === 0 && !done) {
          if (this.closedError) throw this.closedError;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        wake?.();
        await (await handle).unwatch();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  /**
   * Runs `body` in a transaction and commits it, retrying the whole body when the commit fails
   * with EAGAIN (as Linux's xenbus users and libxl do). An exception in `body` aborts.
   */
  async transaction<T>(
    body: (transaction: XenstoreTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const attempts = options.attempts ?? 16;
    for (let attempt = 1; ; attempt++) {
      const start = await this.request(XsType.TRANSACTION_START, nulTerminated(""));
      const id = Number(bytesToString(start.payload.subarray(0, start.payload.length - 1)));
      const transaction = new XenstoreTransaction(this, id);
      let result: T;
      try {
        result = await body(transaction);
      } catch (error) {
        await this.send(XsType.TRANSACTION_END, id, nulTerminated("F")).catch(() => {});
        throw error;
      }
      try {
        await this.send(XsType.TRANSACTION_END, id, nulTerminated("T"));
        return result;
      } catch (error) {
        if (!(error instanceof XenstoreError) || error.code !== "EAGAIN" || attempt >= attempts) {
          throw error;
        }
      }
    }
  }

  /** XS_INTRODUCE: tells the daemon about a domain's store page and event channel. */
  async introduce(domid: number, gfn: number, port: number): Promise<void> {
    await this.request(XsType.INTRODUCE, nulTerminated(String(domid), String(gfn), String(port)));
  }

  async release(domid: number): Promise<void> {
    await this.request(XsType.RELEASE, nulTerminated(String(domid)));
  }

  async getDomainPath(domid: number): Promise<string> {
    const reply = await this.request(XsType.GET_DOMAIN_PATH, nulTerminated(String(domid)));
    return bytesToString(reply.payload.subarray(0, reply.payload.length - 1));
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    const reply = await this.request(XsType.IS_DOMAIN_INTRODUCED, nulTerminated(String(domid)));
    return reply.payload[0] === 0x54; // "T"
  }

  async setTarget(domid: number, target: number): Promise<void> {
    await this.request(XsType.SET_TARGET, nulTerminated(String(domid), String(target)));
  }

  /** Drops this connection's watches and transactions in the daemon. */
  async resetWatches(): Promise<void> {
    await this.request(XsType.RESET_WATCHES, nulTerminated(""));
    this.watchers.clear();
  }

  async control(...args: string[]): Promise<string> {
    const reply = await this.request(XsType.CONTROL, nulTerminated(...args));
    return bytesToString(reply.payload).replace(/\0+$/, "");
  }

  /** Closes the stream; pending requests reject. */
  close(): void {
    this.fail(new XenstoreUsageError("xenstore client closed"));
    this.stream.end();
  }
}

/**
 * A client connected in-process to `daemon` as domain `domid` (privileged for dom0), for the
 * toolstack that runs the daemon in its own process. Delivery is asynchronous both ways, like a
 * socket.
 */
export function connectLocal(daemon: Xenstored, domid = 0): XenstoreClient {
  let deliver: ((bytes: Uint8Array) => void) | undefined;
  let closed: ((error?: Error) => void) | undefined;
  const connection = daemon.connect(domid, {
    send: (message) => queueMicrotask(() => deliver?.(message)),
    close: () => queueMicrotask(() => closed?.()),
  });
  return new XenstoreClient({
    attach(onData, onClose) {
      deliver = onData;
      closed = onClose;
    },
    write(bytes) {
      const copy = bytes.slice();
      queueMicrotask(() => connection.receive(copy));
    },
    end() {
      deliver = undefined;
      connection.close();
    },
  });
}
