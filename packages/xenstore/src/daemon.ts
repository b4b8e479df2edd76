import { XsType } from "@kumo/abi";
import { XenstoreError } from "./errors";
import {
  baseName,
  canonicalize,
  childPath,
  domainPath,
  isAtOrBelow,
  isSpecialPath,
  parentOf,
  SPECIAL_PATHS,
} from "./path";
import {
  ACCESS_OWNER,
  ACCESS_READ,
  ACCESS_WRITE,
  accessFor,
  formatPermission,
  type Permission,
  parsePermission,
} from "./permissions";
import {
  bytesToString,
  encodeMessage,
  MessageParser,
  nulTerminated,
  PAYLOAD_MAX,
  splitStrings,
  utf8,
  type XsMessage,
} from "./wire";

/**
 * Per-domain limits. Defaults are Xen 4.17 xenstored's (tools/xenstore/xenstored_core.c
 * `quota_*`, xenstored(8) `--entry-nb`, `--entry-size`, `--watch-nb`, `--transaction`,
 * `--perm-nb`, `--quota trans-nodes`, `--quota outstanding`). Privileged connections (dom0 and
 * the Unix socket) are not limited, as in Xen.
 */
export interface XenstoredQuotas {
  /** Nodes a domain may own (ENOSPC beyond). Xen default 1000. */
  maxNodesPerDomain: number;
  /** Bytes of one node record: header, permissions, value, child names (ENOSPC at or above). Xen default 2048. */
  maxEntrySize: number;
  /** Watches per domain (E2BIG beyond). Xen default 128. */
  maxWatchesPerDomain: number;
  /** Open transactions per domain (ENOSPC beyond). Xen default 10. */
  maxTransactionsPerDomain: number;
  /** Permission entries per node (ENOSPC beyond). Xen default 5. */
  maxPermissionsPerNode: number;
  /** Nodes one transaction may touch (ENOSPC beyond). Xen default 1024. */
  maxTransactionNodes: number;
  /**
   * Replies and events waiting for a domain to consume before the daemon stops reading its
   * requests. Xen default 20 (`quota-outstanding`).
   */
  maxOutstandingRequests: number;
  /**
   * Watch events queued for a domain beyond which further events are dropped (XSA-349: a slow
   * reader must not grow the daemon's memory without bound). Kumo's choice, not a Xen default.
   */
  maxQueuedWatchEvents: number;
}

export const DEFAULT_QUOTAS: Readonly<XenstoredQuotas> = Object.freeze({
  maxNodesPerDomain: 1000,
  maxEntrySize: 2048,
  maxWatchesPerDomain: 128,
  maxTransactionsPerDomain: 10,
  maxPermissionsPerNode: 5,
  maxTransactionNodes: 1024,
  maxOutstandingRequests: 20,
  maxQueuedWatchEvents: 1024,
});

/** Where a connection's output goes: a ring page, a socket, an in-process client. */
export interface ConnectionSink {
  /** Sends one framed message. */
  send(message: Uint8Array): void;
  /** The daemon drops the connection (protocol error, domain released, shutdown). */
  close(reason: string): void;
  /** Messages produced but not yet taken by the peer (for quotas); 0 if unknown. */
  queuedMessages?(): number;
}

export interface XenstoredOptions {
  quotas?: Partial<XenstoredQuotas>;
  /**
   * Called for XS_INTRODUCE from a privileged connection: map the store page `gfn` of `domid`
   * and bind `port`, then attach it with `Xenstored.attachDomain`. Without it the domain is
   * recorded as introduced with no connection (useful when the toolstack attaches rings itself).
   */
  onIntroduce?(domid: number, gfn: number, port: number): void;
  /** Called after a domain was released (XS_RELEASE or `releaseDomain`). */
  onRelease?(domid: number): void;
  /** Diagnostics (dropped connections, CONTROL print). Silent by default. */
  log?(message: string): void;
}

interface StoreNode {
  value: Uint8Array;
  permissions: Permission[];
  children: string[];
  /** Value of the daemon's generation counter when the node last changed. */
  generation: number;
}

interface Watch {
  connection: XsConnection;
  /** Absolute path or special name. */
  path: string;
  /** The path as the client gave it, for UNWATCH matching and relative events. */
  requestedPath: string;
  relative: boolean;
  token: string;
}

interface PendingEvent {
  path: string;
  /** Permissions deciding who may see the event (the node's, or its old ones when deleted). */
  permissions: Permission[];
  /** Permissions before a SET_PERMS: readers under either list see the event. */
  previous?: Permission[];
  /** Also fire watches below `path` (a subtree was removed). */
  recursive: boolean;
  /** Permissions of the deleted nodes below `path`, by path. */
  deleted?: Map<string, Permission[]>;
}

class Transaction {
  /**
   * Every node read or written, as first seen (undefined when absent) with its generation (-1
   * when absent). Later reads return the first-seen node, so the transaction sees a consistent
   * snapshot of what it touched (Xen xenstored_transaction.c keeps a per-transaction copy of
   * each accessed node).
   */
  readonly accessed = new Map<string, { generation: number; node: StoreNode | undefined }>();
  /** Nodes changed in this transaction; null = deleted. */
  readonly overlay = new Map<string, StoreNode | null>();
  readonly events: PendingEvent[] = [];
  /** Change of node count per owner domain. */
  readonly nodeDelta = new Map<number, number>();
  constructor(
    readonly id: number,
    /** Nodes this transaction may touch (unlimited for privileged connections). */
    readonly nodeLimit: number,
  ) {}
}

const OK = nulTerminated("OK");
const EMPTY = new Uint8Array(0);
const DOMID_LIMIT = 0x7ff0; // Xen public xen.h DOMID_FIRST_RESERVED: ids above are not domains.
const DOMID_SELF = 0x7ff0; // Xen public xen.h

/**
 * One client of the daemon: a domain's ring or a Unix-socket client. Bytes go in with
 * `receive`; replies and watch events leave through the sink.
 */
export class XsConnection {
  readonly watches: Watch[] = [];
  readonly transactions = new Map<number, Transaction>();
  target: number | undefined;
  closed = false;
  /** The peer sent a stream that is not xenstore messages (the connection was dropped). */
  protocolError = false;
  private readonly parser = new MessageParser();
  private held: Uint8Array | undefined;

  constructor(
    private readonly daemon: Xenstored,
    readonly domid: number,
    readonly privileged: boolean,
    readonly sink: ConnectionSink,
  ) {}

  /**
   * Feeds bytes from the peer. Never throws on bad input: a malformed stream closes this
   * connection only.
   */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.held) {
      const joined = new Uint8Array(this.held.length + bytes.length);
      joined.set(this.held);
      joined.set(bytes, this.held.length);
      bytes = joined;
      this.held = undefined;
    }
    // Stop between messages once the outstanding-request quota is reached (Xen
    // xenstored_domain.c domain_can_read); the rest waits here until the peer catches up.
    const consumed = this.parser.pushSome(
      bytes,
      (message) => this.daemon.process(this, message),
      () => this.accepting,
    );
    if (consumed < 0) {
      if (!this.closed) {
        this.protocolError = true;
        this.daemon.dropConnection(this, "message longer than XENSTORE_PAYLOAD_MAX");
      }
    } else if (consumed < bytes.length && !this.closed) {
      this.held = bytes.slice(consumed);
    }
  }

  /** True while received bytes wait for the quota; the transport reads no more meanwhile. */
  get holdsInput(): boolean {
    return this.held !== undefined;
  }

  /** Processes held bytes if the quota allows; returns true if anything was processed. */
  resume(): boolean {
    if (!this.held || !this.accepting) return false;
    const held = this.held;
    this.held = undefined;
    this.receive(held);
    const left = this.held as Uint8Array | undefined; // receive() may have held some again
    return left === undefined || left.length < held.length;
  }

  /** True when the daemon is willing to read more requests (outstanding-request quota). */
  get accepting(): boolean {
    if (this.closed) return false;
    if (this.privileged) return true;
    return (this.sink.queuedMessages?.() ?? 0) < this.daemon.quotas.maxOutstandingRequests;
  }

  /** Closes the connection (the peer went away, or the host ends it). */
  close(reason = "connection closed"): void {
    this.daemon.dropConnection(this, reason);
  }
}

/**
 * The xenstore daemon: the tree, permissions, watches, transactions and quotas of Xen's
 * xenstored (docs/misc/xenstore.txt, tools/xenstore/xenstored_*.c), independent of transport.
 */
export class Xenstored {
  readonly quotas: XenstoredQuotas;
  private readonly tree = new Map<string, StoreNode>();
  private readonly connections = new Set<XsConnection>();
  private readonly domains = new Map<number, { connection?: XsConnection; target?: number }>();
  private readonly nodeCount = new Map<number, number>();
  private readonly specialPermissions = new Map<string, Permission[]>();
  private generation = 0;
  private nextTransactionId = 1;
  private readonly options: XenstoredOptions;

  constructor(options: XenstoredOptions = {}) {
    this.options = options;
    this.quotas = { ...DEFAULT_QUOTAS, ...options.quotas };
    // Xen's xenstored starts with `/` and `/tool/xenstored` owned by dom0, readable by nobody
    // else (xenstored_core.c setup_structure); libxl adds `/local/domain` and `/vm` the same way.
    const dom0Only: Permission[] = [{ domid: 0, access: "n" }];
    this.tree.set("/", { value: EMPTY, permissions: dom0Only, children: [], generation: 0 });
    this.nodeCount.set(0, 1);
    for (const path of ["/tool/xenstored", "/local/domain", "/vm"]) this.createPrivileged(path);
    for (const special of SPECIAL_PATHS) this.specialPermissions.set(special, dom0Only);
    this.domains.set(0, {});
  }

  // ---- connections --------------------------------------------------------------------------

  /**
   * Opens a connection for `domid`. Socket clients are dom0 and privileged, like Xen's
   * xenstored treats its Unix socket.
   */
  connect(domid: number, sink: ConnectionSink, privileged = domid === 0): XsConnection {
    const connection = new XsConnection(this, domid, privileged, sink);
    const domain = this.domains.get(domid);
    if (domain?.target !== undefined) connection.target = domain.target;
    this.connections.add(connection);
    return connection;
  }

  /**
   * Records `domid` as introduced with `sink` as its connection (the ring transport), fires
   * `@introduceDomain`. Re-introducing a domain replaces its connection.
   */
  attachDomain(domid: number, sink: ConnectionSink): XsConnection {
    const domain = this.domains.get(domid);
    if (domain?.connection) this.dropConnection(domain.connection, "domain re-attached");
    const connection = this.connect(domid, sink, domid === 0);
    this.domains.set(domid, { connection, target: domain?.target });
    this.fireSpecial("@introduceDomain");
    return connection;
  }

  /** Host-side release of a domain (XS_RELEASE does the same). */
  releaseDomain(domid: number): boolean {
    const domain = this.domains.get(domid);
    if (!domain || domid === 0) return false;
    this.domains.delete(domid);
    if (domain.connection) this.dropConnection(domain.connection, "domain released");
    // XSA-322: nodes of a dead domain must not be inherited by a later domain with the same id,
    // so Xen gives them to dom0.
    for (const [path, node] of this.tree) {
      if (node.permissions[0].domid === domid) {
        const permissions = [{ ...node.permissions[0], domid: 0 }, ...node.permissions.slice(1)];
        this.putCommitted(path, { ...node, permissions });
      }
    }
    this.fireSpecial("@releaseDomain");
    this.options.onRelease?.(domid);
    return true;
  }

  isIntroduced(domid: number): boolean {
    return this.domains.has(domid);
  }

  dropConnection(connection: XsConnection, reason: string): void {
    if (connection.closed) return;
    connection.closed = true;
    this.connections.delete(connection);
    connection.watches.length = 0;
    connection.transactions.clear();
    this.options.log?.(`xenstored: dropping connection of domain ${connection.domid}: ${reason}`);
    connection.sink.close(reason);
  }

  /** Number of nodes in the tree (for tests and diagnostics). */
  get size(): number {
    return this.tree.size;
  }

  // ---- dispatch -----------------------------------------------------------------------------

  /** Handles one complete request of `connection`. Never throws for anything a client sends. */
  process(connection: XsConnection, message: XsMessage): void {
    if (connection.closed) return;
    let reply: Uint8Array;
    let type = message.type;
    try {
      reply = this.handle(connection, message);
    } catch (error) {
      if (!(error instanceof XenstoreError)) throw error;
      type = XsType.ERROR;
      reply = nulTerminated(error.code);
    }
    if (connection.closed) return;
    connection.sink.send(encodeMessage(type, message.requestId, message.transactionId, reply));
    this.flushInitialEvents(connection);
  }

  private pendingInitial: Watch[] = [];

  private handle(connection: XsConnection, message: XsMessage): Uint8Array {
    const { payload } = message;
    const transaction = this.transactionOf(connection, message);
    switch (message.type) {
      case XsType.READ:
        return this.read(connection, transaction, oneArgument(payload));
      case XsType.WRITE:
        return this.write(connection, transaction, payload);
      case XsType.MKDIR:
        return this.mkdir(connection, transaction, oneArgument(payload));
      case XsType.RM:
        return this.rm(connection, transaction, oneArgument(payload));
      case XsType.DIRECTORY:
        return this.directory(connection, transaction, oneArgument(payload));
      case XsType.DIRECTORY_PART:
        return this.directoryPart(connection, transaction, payload);
      case XsType.GET_PERMS:
        return this.getPermissions(connection, transaction, oneArgument(payload));
      case XsType.SET_PERMS:
        return this.setPermissions(connection, transaction, payload);
      case XsType.WATCH:
        return this.watch(connection, payload);
      case XsType.UNWATCH:
        return this.unwatch(connection, payload);
      case XsType.TRANSACTION_START:
        return this.transactionStart(connection, message);
      case XsType.TRANSACTION_END:
        return this.transactionEnd(connection, message);
      case XsType.INTRODUCE:
        return this.introduce(connection, payload);
      case XsType.RELEASE:
        return this.release(connection, payload);
      case XsType.GET_DOMAIN_PATH:
        return nulTerminated(domainPath(parseDomid(oneArgument(payload))));
      case XsType.IS_DOMAIN_INTRODUCED: {
        requirePrivileged(connection);
        // Xen do_is_domain_introduced: DOMID_SELF (0x7ff0) is always "T".
        const argument = oneArgument(payload);
        if (argument === String(DOMID_SELF)) return nulTerminated("T");
        return nulTerminated(this.domains.has(parseDomid(argument)) ? "T" : "F");
      }
      case XsType.RESUME: {
        requirePrivileged(connection);
        if (!this.domains.has(parseDomid(oneArgument(payload)))) throw new XenstoreError("ENOENT");
        return OK;
      }
      case XsType.SET_TARGET:
        return this.setTarget(connection, payload);
      case XsType.RESET_WATCHES:
        connection.watches.length = 0;
        connection.transactions.clear();
        return OK;
      case XsType.CONTROL:
        return this.control(connection, payload);
      default:
        // Xen xenstored_core.c process_message: an unknown or reply-only type gets ENOSYS.
        throw new XenstoreError("ENOSYS");
    }
  }

  private transactionOf(connection: XsConnection, message: XsMessage): Transaction | undefined {
    if (message.transactionId === 0) return undefined;
    // Watches and domain management ignore the transaction id (Xen XS_FLAG_NOTID).
    switch (message.type) {
      case XsType.READ:
      case XsType.WRITE:
      case XsType.MKDIR:
      case XsType.RM:
      case XsType.DIRECTORY:
      case XsType.DIRECTORY_PART:
      case XsType.GET_PERMS:
      case XsType.SET_PERMS:
      case XsType.TRANSACTION_END: {
        const transaction = connection.transactions.get(message.transactionId);
        // Xen xenstored_transaction.c transaction_lookup: an id this connection does not own.
        if (!transaction) throw new XenstoreError("ENOENT");
        return transaction;
      }
      default:
        return undefined;
    }
  }

  // ---- node access --------------------------------------------------------------------------

  private getNode(transaction: Transaction | undefined, path: string): StoreNode | undefined {
    if (transaction) {
      const changed = transaction.overlay.get(path);
      if (changed !== undefined) return changed ?? undefined;
      const seen = transaction.accessed.get(path);
      if (seen) return seen.node;
      if (transaction.accessed.size >= transaction.nodeLimit) {
        throw new XenstoreError("ENOSPC");
      }
      const node = this.tree.get(path);
      transaction.accessed.set(path, { generation: node ? node.generation : -1, node });
      return node;
    }
    return this.tree.get(path);
  }

  private putNode(
    connection: XsConnection,
    transaction: Transaction | undefined,
    path: string,
    node: StoreNode,
  ): void {
    if (!connection.privileged && entrySize(node) >= this.quotas.maxEntrySize) {
      throw new XenstoreError("ENOSPC");
    }
    if (transaction) {
      const old = this.getNode(transaction, path);
      if (old) adjust(transaction.nodeDelta, old.permissions[0].domid, -1);
      adjust(transaction.nodeDelta, node.permissions[0].domid, 1);
      transaction.overlay.set(path, node);
    } else {
      this.putCommitted(path, node);
    }
  }

  private putCommitted(path: string, node: StoreNode): void {
    const old = this.tree.get(path);
    if (old) adjust(this.nodeCount, old.permissions[0].domid, -1);
    adjust(this.nodeCount, node.permissions[0].domid, 1);
    node.generation = ++this.generation;
    this.tree.set(path, node);
  }

  private deleteNode(transaction: Transaction | undefined, path: string): void {
    const old = this.getNode(transaction, path);
    if (!old) return;
    if (transaction) {
      adjust(transaction.nodeDelta, old.permissions[0].domid, -1);
      transaction.overlay.set(path, null);
    } else {
      adjust(this.nodeCount, old.permissions[0].domid, -1);
      this.tree.delete(path);
      this.generation++;
    }
  }

  private access(connection: XsConnection, node: { permissions: Permission[] }): number {
    return accessFor(node.permissions, connection.domid, connection.privileged, connection.target);
  }

  private resolve(connection: XsConnection, path: string): string {
    const absolute = canonicalize(connection.domid, path, false);
    if (absolute === undefined) throw new XenstoreError("EINVAL");
    return absolute;
  }

  /**
   * Looks a node up with the access `need`. A missing node is ENOENT only if the caller may read
   * the nearest existing ancestor, else EACCES, so that existence does not leak (Xen
   * xenstored_core.c errno_from_parents).
   */
  private lookup(
    connection: XsConnection,
    transaction: Transaction | undefined,
    path: string,
    need: number,
  ): StoreNode {
    const node = this.getNode(transaction, path);
    if (node) {
      if ((this.access(connection, node) & need) !== need) throw new XenstoreError("EACCES");
      return node;
    }
    const ancestor = this.nearestAncestor(transaction, path);
    if (!(this.access(connection, ancestor.node) & ACCESS_READ)) throw new XenstoreError("EACCES");
    throw new XenstoreError("ENOENT");
  }

  private nearestAncestor(
    transaction: Transaction | undefined,
    path: string,
  ): { path: string; node: StoreNode } {
    let current = path;
    for (;;) {
      current = parentOf(current);
      const node = this.getNode(transaction, current);
      if (node) return { path: current, node };
      if (current === "/") throw new Error("xenstored: the root node is missing");
    }
  }

  private nodeQuota(connection: XsConnection, transaction: Transaction | undefined): void {
    if (connection.privileged) return;
    const owned =
      (this.nodeCount.get(connection.domid) ?? 0) +
      (transaction?.nodeDelta.get(connection.domid) ?? 0);
    if (owned >= this.quotas.maxNodesPerDomain) throw new XenstoreError("ENOSPC");
  }

  /**
   * Creates `path` and its missing ancestors. The caller needs write access to the nearest
   * existing ancestor; new nodes inherit their parent's permissions, and a node made by an
   * unprivileged domain is owned by it (Xen xenstored_core.c construct_node).
   */
  private create(
    connection: XsConnection,
    transaction: Transaction | undefined,
    path: string,
    value: Uint8Array,
  ): void {
    const ancestor = this.nearestAncestor(transaction, path);
    const rights = this.access(connection, ancestor.node);
    if (!(rights & ACCESS_WRITE)) throw new XenstoreError("EACCES");
    const missing: string[] = [];
    for (let current = path; current !== ancestor.path; current = parentOf(current)) {
      missing.unshift(current);
    }
    let parentPath = ancestor.path;
    let parent = ancestor.node;
    for (const current of missing) {
      this.nodeQuota(connection, transaction);
      const permissions = parent.permissions.map((entry) => ({ ...entry }));
      if (!connection.privileged) permissions[0].domid = connection.domid;
      const node: StoreNode = {
        value: current === path ? value : EMPTY,
        permissions,
        children: [],
        generation: 0,
      };
      this.putNode(connection, transaction, parentPath, {
        ...parent,
        children: [...parent.children, baseName(current)],
      });
      this.putNode(connection, transaction, current, node);
      parentPath = current;
      parent = node;
    }
  }

  private createPrivileged(path: string): void {
    const root = this.connect(0, { send() {}, close() {} });
    this.create(root, undefined, path, EMPTY);
    this.connections.delete(root);
  }

  // ---- operations ---------------------------------------------------------------------------

  private read(connection: XsConnection, transaction: Transaction | undefined, path: string) {
    return this.lookup(connection, transaction, this.resolve(connection, path), ACCESS_READ).value;
  }

  private write(
    connection: XsConnection,
    transaction: Transaction | undefined,
    payload: Uint8Array,
  ) {
    const nul = payload.indexOf(0);
    if (nul < 0) throw new XenstoreError("EINVAL");
    const path = this.resolve(connection, bytesToString(payload.subarray(0, nul)));
    const value = payload.slice(nul + 1);
    const node = this.getNode(transaction, path);
    if (node) {
      if (!(this.access(connection, node) & ACCESS_WRITE)) throw new XenstoreError("EACCES");
      this.putNode(connection, transaction, path, { ...node, value });
    } else {
      this.lookupParentForCreate(connection, transaction, path);
      this.create(connection, transaction, path, value);
    }
    this.changed(transaction, path);
    return OK;
  }

  /** A missing node may be created only if its nearest ancestor is visible (else EACCES). */
  private lookupParentForCreate(
    connection: XsConnection,
    transaction: Transaction | undefined,
    path: string,
  ): void {
    const ancestor = this.nearestAncestor(transaction, path);
    if (!(this.access(connection, ancestor.node) & ACCESS_READ)) throw new XenstoreError("EACCES");
  }

  private mkdir(connection: XsConnection, transaction: Transaction | undefined, path: string) {
    const absolute = this.resolve(connection, path);
    const node = this.getNode(transaction, absolute);
    if (node) {
      // Xen do_mkdir: an existing node is fine, if the caller could have written it.
      if (!(this.access(connection, node) & ACCESS_WRITE)) throw new XenstoreError("EACCES");
      return OK;
    }
    this.lookupParentForCreate(connection, transaction, absolute);
    this.create(connection, transaction, absolute, EMPTY);
    this.changed(transaction, absolute);
    return OK;
  }

  private rm(connection: XsConnection, transaction: Transaction | undefined, path: string) {
    const absolute = this.resolve(connection, path);
    if (absolute === "/") throw new XenstoreError("EINVAL");
    const node = this.getNode(transaction, absolute);
    if (!node) {
      // Xen do_rm: removing a missing node is fine if its parent exists.
      const parent = this.getNode(transaction, parentOf(absolute));
      if (parent) {
        if (!(this.access(connection, parent) & ACCESS_READ)) throw new XenstoreError("EACCES");
        return OK;
      }
      this.lookup(connection, transaction, absolute, ACCESS_READ);
      throw new XenstoreError("ENOENT");
    }
    if (!(this.access(connection, node) & ACCESS_WRITE)) throw new XenstoreError("EACCES");
    const parentPath = parentOf(absolute);
    const parent = this.getNode(transaction, parentPath)!;
    const deleted = new Map<string, Permission[]>();
    const stack = [absolute];
    while (stack.length > 0) {
      const current = stack.pop()!;
      const victim = this.getNode(transaction, current);
      if (!victim) continue;
      deleted.set(current, victim.permissions);
      for (const child of victim.children) stack.push(childPath(current, child));
      this.deleteNode(transaction, current);
    }
    const name = baseName(absolute);
    this.putNode(connection, transaction, parentPath, {
      ...parent,
      children: parent.children.filter((child) => child !== name),
    });
    this.emit(transaction, {
      path: absolute,
      permissions: node.permissions,
      recursive: true,
      deleted,
    });
    return OK;
  }

  private directory(connection: XsConnection, transaction: Transaction | undefined, path: string) {
    const node = this.lookup(connection, transaction, this.resolve(connection, path), ACCESS_READ);
    const reply = nulTerminated(...node.children);
    // Xen send_reply: a reply must fit XENSTORE_PAYLOAD_MAX; libxenstore then uses DIRECTORY_PART.
    if (reply.length > PAYLOAD_MAX) throw new XenstoreError("E2BIG");
    return reply;
  }

  /**
   * XS_DIRECTORY_PART (docs/misc/xenstore.txt): `<generation>|` then the child list from byte
   * `offset`; the chunk that reaches the end of the list carries an extra NUL, which is how
   * libxenstore's xs_directory_part knows it is complete.
   */
  private directoryPart(
    connection: XsConnection,
    transaction: Transaction | undefined,
    payload: Uint8Array,
  ) {
    const strings = splitStrings(payload, 2);
    if (!strings) throw new XenstoreError("EINVAL");
    const node = this.lookup(
      connection,
      transaction,
      this.resolve(connection, strings[0]),
      ACCESS_READ,
    );
    const offset = parseDecimal(strings[1]);
    const list = nulTerminated(...node.children);
    if (offset === undefined || offset > list.length) throw new XenstoreError("EINVAL");
    const generation = utf8(`${node.generation}\0`);
    let end = offset;
    for (;;) {
      if (end >= list.length) break;
      const next = list.indexOf(0, end) + 1;
      if (generation.length + (next - offset) + 1 > PAYLOAD_MAX) break;
      end = next;
    }
    const complete = end >= list.length;
    const reply = new Uint8Array(generation.length + (end - offset) + (complete ? 1 : 0));
    reply.set(generation, 0);
    reply.set(list.subarray(offset, end), generation.length);
    return reply;
  }

  private getPermissions(
    connection: XsConnection,
    transaction: Transaction | undefined,
    path: string,
  ) {
    const absolute = canonicalize(connection.domid, path, true);
    if (absolute === undefined) throw new XenstoreError("EINVAL");
    if (isSpecialPath(absolute)) {
      const permissions = this.specialPermissions.get(absolute);
      if (!permissions) throw new XenstoreError("ENOENT");
      return nulTerminated(...permissions.map(formatPermission));
    }
    const node = this.lookup(connection, transaction, absolute, ACCESS_READ);
    return nulTerminated(...node.permissions.map(formatPermission));
  }

  private setPermissions(
    connection: XsConnection,
    transaction: Transaction | undefined,
    payload: Uint8Array,
  ) {
    const strings = splitStrings(payload, -1);
    if (!strings || strings.length < 2) throw new XenstoreError("EINVAL");
    const permissions: Permission[] = [];
    for (const text of strings.slice(1)) {
      const permission = parsePermission(text);
      if (!permission) throw new XenstoreError("EINVAL");
      permissions.push(permission);
    }
    if (!connection.privileged && permissions.length > this.quotas.maxPermissionsPerNode) {
      throw new XenstoreError("ENOSPC");
    }
    const absolute = canonicalize(connection.domid, strings[0], true);
    if (absolute === undefined) throw new XenstoreError("EINVAL");
    if (isSpecialPath(absolute)) {
      if (!this.specialPermissions.has(absolute)) throw new XenstoreError("ENOENT");
      requirePrivileged(connection);
      this.specialPermissions.set(absolute, permissions);
      return OK;
    }
    // Xen do_set_perms: only the owner (or a privileged connection) may change permissions, and
    // an unprivileged owner may not give the node away.
    const node = this.lookup(connection, transaction, absolute, ACCESS_WRITE | ACCESS_OWNER);
    if (!connection.privileged && permissions[0].domid !== node.permissions[0].domid) {
      throw new XenstoreError("EPERM");
    }
    this.putNode(connection, transaction, absolute, { ...node, permissions });
    // One event, visible to whoever could read the node before or after the change.
    this.emit(transaction, {
      path: absolute,
      permissions,
      previous: node.permissions,
      recursive: false,
    });
    return OK;
  }

  // ---- watches ------------------------------------------------------------------------------

  private watch(connection: XsConnection, payload: Uint8Array) {
    // docs/misc/xenstore.txt: `<wpath>|<token>|?`, a reserved string may follow.
    const strings = splitStrings(payload, -1);
    if (!strings || strings.length < 2) throw new XenstoreError("EINVAL");
    const [requestedPath, token] = strings;
    const path = canonicalize(connection.domid, requestedPath, true);
    if (path === undefined) throw new XenstoreError("EINVAL");
    for (const watch of connection.watches) {
      if (watch.requestedPath === requestedPath && watch.token === token) {
        throw new XenstoreError("EEXIST");
      }
    }
    // Xen xenstored_watch.c do_watch compares the count before adding with `>`, so a domain
    // holds one watch more than the quota; Kumo answers exactly as Xen does.
    if (!connection.privileged && connection.watches.length > this.quotas.maxWatchesPerDomain) {
      throw new XenstoreError("E2BIG");
    }
    const watch: Watch = {
      connection,
      path,
      requestedPath,
      relative: !requestedPath.startsWith("/") && !requestedPath.startsWith("@"),
      token,
    };
    connection.watches.push(watch);
    // Xen do_watch: "We fire once up front: simplifies clients and restart." The event follows
    // the OK reply and carries the path as the client gave it.
    this.pendingInitial.push(watch);
    return OK;
  }

  private flushInitialEvents(connection: XsConnection): void {
    if (this.pendingInitial.length === 0) return;
    const initial = this.pendingInitial;
    this.pendingInitial = [];
    for (const watch of initial) {
      if (watch.connection === connection && connection.watches.includes(watch)) {
        this.sendEvent(watch, watch.requestedPath);
      }
    }
  }

  private unwatch(connection: XsConnection, payload: Uint8Array) {
    // docs/misc/xenstore.txt: `<wpath>|<token>|?`, a reserved string may follow.
    const strings = splitStrings(payload, -1);
    if (!strings || strings.length < 2) throw new XenstoreError("EINVAL");
    const [requestedPath, token] = strings;
    const path = canonicalize(connection.domid, requestedPath, true);
    if (path === undefined) throw new XenstoreError("EINVAL");
    const index = connection.watches.findIndex(
      (watch) => watch.path === path && watch.token === token,
    );
    if (index < 0) throw new XenstoreError("ENOENT");
    connection.watches.splice(index, 1);
    return OK;
  }

  private changed(transaction: Transaction | undefined, path: string): void {
    const node = this.getNodeQuiet(transaction, path);
    if (node) this.emit(transaction, { path, permissions: node.permissions, recursive: false });
  }

  private getNodeQuiet(transaction: Transaction | undefined, path: string) {
    if (transaction) {
      const changed = transaction.overlay.get(path);
      if (changed !== undefined) return changed ?? undefined;
    }
    return this.tree.get(path);
  }

  /** Queues an event: at once, or at commit for a transaction (docs/misc/xenstore.txt). */
  private emit(transaction: Transaction | undefined, event: PendingEvent): void {
    if (transaction) transaction.events.push(event);
    else this.fire(event);
  }

  /**
   * Fires every watch on the changed node or an ancestor of it; for a removed subtree also
   * every watch below it, with the watch's own path. A watcher only hears of nodes it may read.
   */
  private fire(event: PendingEvent): void {
    for (const connection of this.connections) {
      for (const watch of connection.watches) {
        let eventPath: string | undefined;
        let permissions = event.permissions;
        if (isAtOrBelow(event.path, watch.path)) {
          eventPath = event.path;
        } else if (event.recursive && isAtOrBelow(watch.path, event.path)) {
          eventPath = watch.path;
          permissions = event.deleted?.get(watch.path) ?? event.permissions;
        }
        if (eventPath === undefined) continue;
        const readable =
          (this.access(connection, { permissions }) & ACCESS_READ) !== 0 ||
          (event.previous !== undefined &&
            (this.access(connection, { permissions: event.previous }) & ACCESS_READ) !== 0);
        if (!readable) continue;
        this.sendEvent(watch, eventPath);
      }
    }
  }

  private fireSpecial(path: string): void {
    const permissions = this.specialPermissions.get(path)!;
    for (const connection of this.connections) {
      for (const watch of connection.watches) {
        if (watch.path !== path) continue;
        if (!(this.access(connection, { permissions }) & ACCESS_READ)) continue;
        this.sendEvent(watch, path);
      }
    }
  }

  private sendEvent(watch: Watch, absolutePath: string): void {
    const connection = watch.connection;
    if (connection.closed) return;
    if (
      !connection.privileged &&
      (connection.sink.queuedMessages?.() ?? 0) >= this.quotas.maxQueuedWatchEvents
    ) {
      this.options.log?.(`xenstored: dropped watch event for domain ${connection.domid}`);
      return;
    }
    let path = absolutePath;
    if (watch.relative) {
      const home = `${domainPath(connection.domid)}/`;
      if (path.startsWith(home)) path = path.slice(home.length);
    }
    connection.sink.send(encodeMessage(XsType.WATCH_EVENT, 0, 0, nulTerminated(path, watch.token)));
  }

  // ---- transactions -------------------------------------------------------------------------

  private transactionStart(connection: XsConnection, message: XsMessage) {
    // Xen do_transaction_start: no nesting.
    if (message.transactionId !== 0) throw new XenstoreError("EBUSY");
    if (splitStrings(message.payload, -1) === undefined) throw new XenstoreError("EINVAL");
    // Like the watch quota, Xen's check (`transaction_started > quota_max_transaction`) admits
    // one transaction more than the quota.
    if (
      !connection.privileged &&
      connection.transactions.size > this.quotas.maxTransactionsPerDomain
    ) {
      throw new XenstoreError("ENOSPC");
    }
    let id = this.nextTransactionId;
    this.nextTransactionId = this.nextTransactionId >= 0xfffffffe ? 1 : this.nextTransactionId + 1;
    while (connection.transactions.has(id)) id++;
    const nodeLimit = connection.privileged
      ? Number.POSITIVE_INFINITY
      : this.quotas.maxTransactionNodes;
    connection.transactions.set(id, new Transaction(id, nodeLimit));
    return nulTerminated(String(id));
  }

  private transactionEnd(connection: XsConnection, message: XsMessage) {
    const argument = oneArgument(message.payload);
    if (argument !== "T" && argument !== "F") throw new XenstoreError("EINVAL");
    const transaction = connection.transactions.get(message.transactionId);
    if (!transaction) throw new XenstoreError("ENOENT");
    connection.transactions.delete(transaction.id);
    if (argument === "F") return OK;
    // Xen xenstored_transaction.c: a commit fails with EAGAIN when any node the transaction
    // read or wrote changed since (generation counts), and the client retries.
    for (const [path, seen] of transaction.accessed) {
      const node = this.tree.get(path);
      if ((node ? node.generation : -1) !== seen.generation) throw new XenstoreError("EAGAIN");
    }
    if (!connection.privileged) {
      const owned =
        (this.nodeCount.get(connection.domid) ?? 0) +
        (transaction.nodeDelta.get(connection.domid) ?? 0);
      if (owned > this.quotas.maxNodesPerDomain) throw new XenstoreError("ENOSPC");
    }
    for (const [path, node] of transaction.overlay) {
      if (node) this.putCommitted(path, { ...node });
      else if (this.tree.has(path)) {
        adjust(this.nodeCount, this.tree.get(path)!.permissions[0].domid, -1);
        this.tree.delete(path);
        this.generation++;
      }
    }
    for (const event of transaction.events) this.fire(event);
    return OK;
  }

  // ---- domains ------------------------------------------------------------------------------

  private introduce(connection: XsConnection, payload: Uint8Array) {
    requirePrivileged(connection);
    const strings = splitStrings(payload, -1);
    if (!strings || strings.length < 3) throw new XenstoreError("EINVAL");
    const domid = parseDomid(strings[0]);
    // docs/misc/xenstore.txt: the frame number is "represented in signed decimal (!)".
    const gfn = /^-?[0-9]{1,16}$/.test(strings[1]) ? Number(strings[1]) : undefined;
    const port = parseDecimal(strings[2]);
    if (gfn === undefined || port === undefined || domid === 0) throw new XenstoreError("EINVAL");
    if (this.domains.has(domid)) return OK;
    if (this.options.onIntroduce) {
      try {
        this.options.onIntroduce(domid, gfn, port);
      } catch (error) {
        // The frame or port could not be reached: answered like Xen's introduce_domain failing.
        this.options.log?.(`xenstored: introducing domain ${domid} failed: ${String(error)}`);
        throw new XenstoreError("EINVAL");
      }
      if (!this.domains.has(domid)) this.domains.set(domid, {});
    } else {
      this.domains.set(domid, {});
      this.fireSpecial("@introduceDomain");
    }
    return OK;
  }

  private release(connection: XsConnection, payload: Uint8Array) {
    requirePrivileged(connection);
    const domid = parseDomid(oneArgument(payload));
    if (domid === 0) throw new XenstoreError("EINVAL");
    if (!this.releaseDomain(domid)) throw new XenstoreError("ENOENT");
    return OK;
  }

  private setTarget(connection: XsConnection, payload: Uint8Array) {
    requirePrivileged(connection);
    const strings = splitStrings(payload, 2);
    if (!strings) throw new XenstoreError("EINVAL");
    const domid = parseDomid(strings[0]);
    const target = parseDomid(strings[1]);
    const domain = this.domains.get(domid);
    if (!domain || !this.domains.has(target)) throw new XenstoreError("ENOENT");
    domain.target = target;
    for (const other of this.connections) if (other.domid === domid) other.target = target;
    return OK;
  }

  /** XS_CONTROL (docs/misc/xenstore.txt): Kumo implements `check`, `log`, `print`, `quota`, `help`. */
  private control(connection: XsConnection, payload: Uint8Array) {
    requirePrivileged(connection);
    const strings = splitStrings(payload, -1);
    if (!strings || strings.length === 0) throw new XenstoreError("EINVAL");
    switch (strings[0]) {
      case "check":
        return OK;
      case "log":
        if (strings[1] !== "on" && strings[1] !== "off") throw new XenstoreError("EINVAL");
        return OK;
      case "print":
        this.options.log?.(strings.slice(1).join(" "));
        return OK;
      case "quota":
        return nulTerminated(
          Object.entries(this.quotas)
            .map(([name, value]) => `${name}: ${value}`)
            .join("\n"),
        );
      case "help":
        return nulTerminated("check\nlog on|off\nprint <string>\nquota\nhelp");
      default:
        throw new XenstoreError("EINVAL");
    }
  }
}

function oneArgument(payload: Uint8Array): string {
  // Xen xenstored_core.c onearg: exactly one NUL-terminated string.
  const strings = splitStrings(payload, 1);
  if (!strings) throw new XenstoreError("EINVAL");
  return strings[0];
}

function parseDecimal(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 0xffffffff ? value : undefined;
}

function parseDomid(text: string): number {
  const domid = parseDecimal(text);
  if (domid === undefined || domid >= DOMID_LIMIT) throw new XenstoreError("EINVAL");
  return domid;
}

function requirePrivileged(connection: XsConnection): void {
  if (!connection.privileged) throw new XenstoreError("EACCES");
}

function adjust(counts: Map<number, number>, domid: number, delta: number): void {
  counts.set(domid, (counts.get(domid) ?? 0) + delta);
}

/**
 * Size Xen charges against the entry-size quota: its database record, i.e. the 24-byte
 * `struct xs_tdb_record_hdr`, 8 bytes per `struct xs_permissions`, the value and the child names
 * with their NULs (Xen 4.17 xenstored_core.c write_node_raw).
 */
function entrySize(node: StoreNode): number {
  let size = 24 + 8 * node.permissions.length + node.value.length;
  for (const child of node.children) size += child.length + 1;
  return size;
}
