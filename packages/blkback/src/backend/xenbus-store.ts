/**
 * The xenstore operations the vbd handshake needs. @kumo/xenstore's
 * `XenstoreClient` has exactly this shape; blkback declares it itself
 * because the package map keeps sibling packages apart (architecture.md).
 */
export interface XenbusWatchEvent {
  path: string;
  token: string;
}

export interface XenbusStore {
  read(path: string): Promise<string>;
  /** The value, or undefined when the node does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
  rm(path: string): Promise<void>;
  /** Fires for the node and its descendants, once right after registration. */
  watch(
    path: string,
    callback: (event: XenbusWatchEvent) => void,
  ): Promise<{ unwatch(): Promise<void> }>;
}
