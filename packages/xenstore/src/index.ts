// Browser-safe core. Node-only transports (Unix socket) live in `@kumo/xenstore/node`.

export type { ByteStream, TransactionOptions, WatchEvent, WatchHandle } from "./client";
export { connectLocal, XenstoreClient, XenstoreTransaction } from "./client";
export type { ConnectionSink, XenstoredOptions, XenstoredQuotas } from "./daemon";
export { DEFAULT_QUOTAS, Xenstored, XsConnection } from "./daemon";
export { type DomainLayout, writeDomainLayout } from "./domain-layout";
export { XenstoreError, XenstoreUsageError, type XsdError } from "./errors";
export { connectGuestRing, introduceThrough } from "./host-ring";
export { canonicalize, domainPath } from "./path";
export type { Access, Permission } from "./permissions";
export type { RingIo, RingTransportOptions } from "./ring-transport";
export { RingLayout, RingTransport } from "./ring-transport";
export { encodeMessage, HEADER_SIZE, MessageParser, PAYLOAD_MAX, type XsMessage } from "./wire";
