/** The session layer's contract: limits, the socket a session writes to, and the plug-in
 * interface through which `kv_sub` and `js_sub` (src/streams/) add subscription kinds.
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import type { CapabilitySet } from "../auth/capabilities.ts";
import type { Logger } from "../log/log.ts";
import type { ClientEnvelope } from "../protocol/envelope.ts";
import type { GatewayError } from "../protocol/errors.ts";

/** Limits a session enforces (docs/protocol.md section 6). */
export interface SessionLimits {
  /** Largest inbound frame in bytes (larger: close 1009). */
  maxFrameBytes: number;
  /** Subscriptions per connection. */
  maxSubs: number;
  /** Inbound ops per second. */
  rate: number;
  /** Inbound op burst. */
  burst: number;
  /** Most envelopes read from one inbound frame; the rest are refused unread. */
  maxLinesPerFrame: number;
  /** Pending `cmd`s per connection. */
  maxPendingCmds: number;
  /** Pending outbound bytes a connection may hold (gateway queue plus socket). */
  maxPendingBytes: number;
  /** How long pending bytes may stay above `maxPendingBytes`. */
  backpressureTimeoutMs: number;
  /** How long a connection with pending bytes may drain nothing before it is cut. */
  writeDeadlineMs: number;
  /** Upper bound of a `cmd` timeout. */
  maxCmdTimeoutMs: number;
  /** Time allowed for the first `auth` frame when the upgrade carried no token. */
  authTimeoutMs: number;
}

/** A live subscription of a session, of any kind. */
export interface SessionSubscription {
  /** Server-assigned id. */
  readonly sid: string;
  /** `core`, `kv` or `js`. */
  readonly kind: "core" | "kv" | "js";
  /** Subject, bucket or stream. */
  readonly target: string;
  /** Whether the subscription is still allowed under new capabilities. */
  allowed(caps: CapabilitySet): boolean;
  /** Acknowledges a JetStream message (ack subscriptions only). */
  ack?(seq: number): void;
  /** Begins delivery; called after the client got the subscription's `reply`. */
  start?(): void;
  /** Releases everything the subscription holds. Idempotent. */
  close(): void;
}

/** What a KV or JetStream subscription factory gets from the session. */
export interface SubscriptionRequest {
  /** The op's envelope. */
  env: ClientEnvelope;
  /** The new subscription's id. */
  sid: string;
  /** The user's current capabilities. */
  caps: CapabilitySet;
  /** The user id. */
  user: string;
  /** Queues an envelope for the client; false when the session is closing or overflowing. */
  send(envelope: string): boolean;
  /** Outbound bytes pending for this client (for flow control). */
  pendingBytes(): number;
  /** Resolves once the client's pending bytes are at most `below`, or the session ends. */
  drained(below: number): Promise<void>;
  /** Ends the subscription from the server side with an error frame for the client. */
  fail(err: GatewayError): void;
}

/**
 * Creates KV (`kv_sub`) or JetStream (`js_sub`) subscriptions; rejects with a GatewayError on
 * refusal. The subscription must not deliver before its `start()` is called.
 */
export type SubscriptionFactory = (req: SubscriptionRequest) => Promise<SessionSubscription>;

/** Session lifecycle events, for logs and the admin `sessions tail`. */
export type SessionEvent =
  | "connect"
  | "disconnect"
  | "auth_refresh"
  | "sub"
  | "unsub"
  | "denied"
  | "cap_update"
  | "revoke"
  | "backpressure"
  | "limit";

/** Connection facts recorded for `sessions list`. */
export interface SessionMeta {
  /** Remote address `ip:port` (the address alone when a trusted proxy named it). */
  remote: string;
  /** The client address admission counts by (the peer, or what a trusted proxy said). */
  ip: string;
  /** The client's User-Agent, if any. */
  userAgent?: string;
}

/** The part of a server-side WebSocket a session uses (see `src/transport/`). */
export interface SessionSocket {
  /** Sends a text frame. */
  send(data: string): void;
  /**
   * Closes: what is queued is still written, then the close frame; the socket is torn down
   * within the transport's close timeout whatever the peer does.
   */
  close(code?: number, reason?: string): void;
  /** Closes at once for a slow reader: queued data is dropped, `last` and the close frame go. */
  cut(code: number, reason: string, last?: string): void;
  /** Bytes accepted by `send` and not yet accepted by the kernel. */
  readonly pendingBytes: number;
  /** `performance.now()` of the last write the kernel accepted bytes of. */
  readonly lastProgressAt: number;
  /** Largest inbound message the socket accepts (smaller before authentication). */
  maxMessageBytes: number;
  /** Set by the outbound queue: called when the kernel accepted queued bytes. */
  onprogress?: (() => void) | null;
}

/** What subscription factories may use. */
export interface GatewayRuntime {
  /** The NATS connection. */
  nc: NatsConnection;
  /** Logger. */
  log: Logger;
  /** Limits in force. */
  limits: SessionLimits;
}
