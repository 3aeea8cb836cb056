/** The wire protocol's shapes (docs/protocol.md), shared by the gateway and the client SDK.
 * Pure: types and frozen constant tables only, no imports, so browsers, Deno and the bundle agree.
 * @module */

/** Protocol version spoken by this gateway and its SDK. */
export const PROTOCOL_VERSION = 1;

/**
 * The ops a client may send (section 2), in one list: the {@link ClientOp} type, the parser's
 * check, the session's op table (src/session/ops.ts, a `Record<ClientOp, …>` the compiler keeps
 * complete) and the SDK all follow from it. Adding an op is this line plus its handler.
 */
export const CLIENT_OPS = [
  "auth",
  "sub",
  "unsub",
  "kv_sub",
  "js_sub",
  "ack",
  "cmd",
  "pub",
  "ping",
] as const;

/** An op a client may send. */
export type ClientOp = typeof CLIENT_OPS[number];

/** The ops the gateway sends. */
export type ServerOp = "msg" | "reply" | "cap_update" | "error" | "pong";

/** Every error code of section 6. */
export const ERROR_CODES = [
  "bad_request",
  "unsupported_version",
  "unknown_op",
  "invalid_subject",
  "unauthorized",
  "forbidden",
  "not_found",
  "timeout",
  "no_responders",
  "limit_exceeded",
  "backpressure",
  "unavailable",
  "internal",
] as const;

/** A protocol error code. */
export type ErrorCode = typeof ERROR_CODES[number];

/** WebSocket close codes used by the gateway (section 6, and the README's extra ones). */
export const CloseCode = {
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** Inbound frame larger than `--max-frame-bytes`. */
  TOO_BIG: 1009,
  /** Unexpected server failure (e.g. NATS unreachable during authentication). */
  INTERNAL: 1011,
  /** Protocol error, or kicked by an admin. */
  PROTOCOL: 4000,
  /** Missing or invalid credentials. */
  UNAUTHORIZED: 4001,
  /** The token's `exp` passed without refresh. */
  TOKEN_EXPIRED: 4003,
  /** The outbound queue stayed full. */
  BACKPRESSURE: 4008,
  /** Sustained inbound rate above the limit. */
  RATE_LIMIT: 4029,
} as const;

/** One of the gateway's close codes. */
export type CloseCodeValue = typeof CloseCode[keyof typeof CloseCode];

/** Headers as carried on the wire: name → value or values. */
export type HeaderMap = Record<string, string | string[]>;

/** How a non-JSON payload is carried: UTF-8 text, or base64 of arbitrary bytes. */
export type PayloadEncoding = "text" | "base64";

/** An envelope as a client writes it (one line of an NDJSON frame). */
export interface ClientFrame {
  /** Protocol version (omitted means 1). */
  v?: 1;
  /** The op. */
  op: ClientOp;
  /** Subject, bucket or stream, as the op says. */
  target?: string;
  /** Correlation id (1..128 characters); the answer echoes it. */
  inbox?: string;
  /** The op's data (the payload for `cmd` and `pub`). */
  data?: unknown;
  /** Raw payload encoding for `cmd` and `pub`. */
  encoding?: PayloadEncoding;
  /** Headers for `cmd` and `pub`. */
  headers?: HeaderMap;
  /** Request timeout for `cmd`. */
  timeout_ms?: number;
}

/** An envelope the gateway writes. */
export interface ServerFrame {
  /** Always 1. */
  v: 1;
  /** The op. */
  op: ServerOp;
  /** `msg`: the subject, `kv:<bucket>` or `js:<stream>`; `reply`: the op's target. */
  target?: string;
  /** Echo of the client op's inbox. */
  inbox?: string;
  /** Subscription id on `msg`. */
  sid?: string;
  /** The op's data. */
  data?: unknown;
  /** Encoding of a `reply` payload that is not JSON. */
  encoding?: PayloadEncoding;
  /** Headers of a `reply`. */
  headers?: HeaderMap;
}

/** Context of a failed op, as an `error` frame echoes it. */
export interface ErrorFrameContext {
  /** The failed op, when it could be read. */
  op?: string;
  /** The op's target, when it had one. */
  target?: string;
}

/** `error` frame data. */
export interface ErrorFrameData {
  /** Protocol error code. */
  code: ErrorCode;
  /** Human-readable, client-safe message. */
  message: string;
  /** The failed op and its target. */
  context: ErrorFrameContext;
}

/** A user's capabilities (section 5); every field optional. */
export interface Capabilities {
  /** Subject patterns the user may `sub` to. */
  subjects?: string[];
  /** Subject patterns the user may `pub` to. */
  publish?: string[];
  /** Subject patterns the user may send `cmd`s to. */
  commands?: string[];
  /** Bucket pattern → key patterns the user may watch. */
  buckets?: Record<string, string[]>;
  /** Stream pattern → filter patterns the user may follow. */
  streams?: Record<string, string[]>;
}

/** `cap_update` data (section 5). */
export interface CapUpdateData {
  /** The effective, expanded capabilities. */
  capabilities: Capabilities;
  /** The gateway's session id (first `cap_update`). */
  session?: string;
  /** The user id (first `cap_update`). */
  user?: string;
  /** Ids of the subscriptions this change closed. */
  revoked: string[];
  /** Where the capabilities came from, when roles are used. */
  roles?: string[];
}

/** Core `msg` data (section 3). */
export interface CoreMsgData {
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: unknown;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: HeaderMap;
  /** The publisher expects a response. */
  reply?: boolean;
}

/** KV `msg` data: an entry change, or the `ready` marker after the snapshot (section 3). */
export type KvMsgData =
  | {
    key: string;
    revision: number;
    op: "put" | "delete" | "purge";
    value?: unknown;
    encoding?: PayloadEncoding;
    created: string;
  }
  | { op: "ready"; revision: number };

/** JetStream `msg` data (section 4). */
export interface JsMsgData {
  /** Stream sequence. */
  seq: number;
  /** The subject it was stored under. */
  subject: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: unknown;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: HeaderMap;
  /** When it was stored (RFC 3339). */
  time: string;
  /** Delivered before and not acknowledged. */
  redelivered?: boolean;
}

/** `kv_sub` data (section 3). */
export interface KvSubData {
  /** Key pattern (default `>`). */
  pattern?: string;
  /** Skip the initial snapshot. */
  updates_only?: boolean;
}

/** `js_sub` data (section 4); all optional. */
export interface JsSubData {
  /** Filter subject inside the stream. */
  filter?: string;
  /** Deliver from this stream sequence, inclusive. */
  start_seq?: number;
  /** RFC 3339 time to start from. */
  start_time?: string;
  /** Seconds back from now to start from. */
  time_delta?: number;
  /** Where to start when no start is given. */
  deliver?: "new" | "all" | "last" | "last_per_subject";
  /** At most this many messages in flight. */
  batch?: number;
  /** At-least-once delivery. */
  ack?: boolean;
  /** Redelivery delay of unacknowledged messages. */
  ack_wait_ms?: number;
  /** Durable consumer name, scoped to the user. */
  durable?: string;
}

/** The `reply` data of a subscribing op (`sub`, `kv_sub`, `js_sub`). */
export interface SubscribedData {
  /** The subscription id. */
  id: string;
}
