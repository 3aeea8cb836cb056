/** Types of the natsgate client SDK (client.js): envelopes, capabilities, events, errors, options.
 * Deno picks these up through the `@ts-self-types` directive at the top of client.js.
 * @module */

/** Protocol version spoken by this client. */
export declare const PROTOCOL_VERSION: 1;

// ---- wire protocol (docs/protocol.md) ----

/** Error codes of protocol section 6. */
export type ErrorCode =
  | "bad_request"
  | "unsupported_version"
  | "unknown_op"
  | "invalid_subject"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "timeout"
  | "no_responders"
  | "limit_exceeded"
  | "backpressure"
  | "unavailable"
  | "internal";

/** Ops a client sends. */
export type ClientOp =
  | "auth"
  | "sub"
  | "unsub"
  | "kv_sub"
  | "js_sub"
  | "ack"
  | "cmd"
  | "pub"
  | "ping";

/** Ops the gateway sends. */
export type ServerOp = "msg" | "reply" | "cap_update" | "error" | "pong";

/** Message headers: name → value or values. */
export type MsgHeaders = Record<string, string | string[]>;

/** How a non-JSON payload is carried: UTF-8 text, or base64 of arbitrary bytes. */
export type PayloadEncoding = "text" | "base64";

/** An envelope a client sends (one line of an NDJSON frame). */
export interface ClientEnvelope {
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
  headers?: MsgHeaders;
  /** Request timeout for `cmd`. */
  timeout_ms?: number;
}

/** An envelope the gateway sends. */
export interface ServerEnvelope {
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
  headers?: MsgHeaders;
}

/** `error` envelope data. */
export interface ErrorData {
  /** Protocol error code. */
  code: ErrorCode;
  /** Human-readable message. */
  message: string;
  /** The failed op and its target. */
  context: { op?: string; target?: string };
}

/** A user's capabilities (protocol section 5); every field optional. */
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

// ---- errors ----

/**
 * An error with a protocol error code, from the gateway (`forbidden`, `no_responders`,
 * `timeout`, ...) or raised by the client (`unavailable` while disconnected, `timeout` when the
 * gateway did not answer in time).
 */
export declare class NatsgateError extends Error {
  /** Creates an error; `code` is normally an {@link ErrorCode}. */
  constructor(
    code: ErrorCode | string,
    message: string,
    options?: { context?: { op?: string; target?: string }; closeCode?: number; cause?: unknown },
  );
  /** Protocol error code. */
  readonly code: ErrorCode | string;
  /** The op that failed and its target, as the gateway reported them. */
  readonly context?: { op?: string; target?: string };
  /** The WebSocket close code, when the error comes from a closed connection. */
  readonly closeCode?: number;
}

// ---- options ----

/** Reconnection settings: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** First delay (default 250 ms); each attempt doubles it, a random half of it is taken off. */
  initialDelayMs?: number;
  /** Largest delay (default 10 s). */
  maxDelayMs?: number;
  /** Attempts before giving up (default: unlimited). */
  maxAttempts?: number;
}

/** Options of {@link connect}; `token` or `getToken` is required. */
export interface ConnectOptions {
  /** A JWT. Without `getToken` it is used for every (re)connection and never refreshed. */
  token?: string;
  /**
   * Returns a fresh JWT. Called on every reconnection and ahead of expiry (30 s before `exp`, or
   * at 80 % of the lifetime of short tokens) to refresh the session in place.
   */
  getToken?: () => string | Promise<string>;
  /** `false` disables reconnection (default: on). */
  reconnect?: boolean | ReconnectOptions;
  /** Keepalive ping period; a ping unanswered for a period counts as a lost connection (default 20 s, 0: off). */
  pingIntervalMs?: number;
  /** Default `request()` timeout (default 5 s). */
  requestTimeoutMs?: number;
  /** Keep retrying when the first connection fails instead of rejecting `connect()` (default false). */
  waitOnFirstConnect?: boolean;
}

/** Options of {@link NatsgateClient.subscribe}. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

/** Options of {@link NatsgateClient.kvWatch}. */
export interface KvWatchOptions {
  /** Key pattern (default `>`: every key). */
  pattern?: string;
  /** Skip the initial snapshot: the map holds only keys changed since the watch began. */
  updatesOnly?: boolean;
}

/** Options of {@link NatsgateClient.jsSubscribe} (protocol section 4). */
export interface JsSubscribeOptions {
  /** Filter subject inside the stream (default: the whole stream). */
  filter?: string;
  /** First stream sequence to deliver. */
  startSeq?: number;
  /** Start at this time. */
  startTime?: Date | string;
  /** Where to start without `startSeq` / `startTime` (default `new`). */
  deliver?: "new" | "all" | "last" | "last_per_subject";
  /** At most this many messages in flight to the client. */
  batch?: number;
  /** At-least-once: call `msg.ack()` for each message; unacknowledged ones are redelivered. */
  ack?: boolean;
  /** Redelivery delay of unacknowledged messages (ack subscriptions). */
  ackWaitMs?: number;
  /** Durable consumer name (scoped to the user by the gateway). */
  durable?: string;
}

/** Options of {@link NatsgateClient.publish}. */
export interface PublishOptions {
  /** Message headers. */
  headers?: MsgHeaders;
  /** `text` sends a string payload as raw UTF-8 instead of JSON (byte arrays always go raw). */
  encoding?: "json" | "text";
}

/** Options of {@link NatsgateClient.request}. */
export interface RequestOptions extends PublishOptions {
  /** How long the responder may take (default `requestTimeoutMs`; the gateway caps it). */
  timeoutMs?: number;
}

// ---- messages ----

/** A core NATS message. */
export interface Msg {
  /** The subject it was published to. */
  subject: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: unknown;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: MsgHeaders;
  /** The publisher expects a response (the reply subject itself is never exposed). */
  reply?: boolean;
}

/** The answer to {@link NatsgateClient.request}. */
export interface Reply {
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: unknown;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: MsgHeaders;
}

/** A JetStream message. */
export interface JsMsg {
  /** Stream sequence. */
  seq: number;
  /** The subject it was stored under. */
  subject: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: unknown;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: MsgHeaders;
  /** When it was stored (RFC 3339). */
  time: string;
  /** Delivered before and not acknowledged (ack subscriptions). */
  redelivered?: boolean;
  /** Acknowledges it (ack subscriptions only); safe to ignore the promise. */
  ack(): Promise<void>;
}

/** A key's current entry in a {@link KvWatch} map. */
export interface KvEntry {
  /** The key. */
  key: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  value: unknown;
  /** Present when the value was not JSON. */
  encoding?: PayloadEncoding;
  /** The bucket revision that wrote it. */
  revision: number;
  /** When it was written (RFC 3339). */
  created: string;
}

/** A change seen by a {@link KvWatch}. */
export interface KvEvent {
  /** The key. */
  key: string;
  /** What happened. */
  op: "put" | "delete" | "purge";
  /** The revision of the change (for a key found gone on a resync without a tombstone: the revision at which it was known gone). */
  revision: number;
  /** The new value (`put`). */
  value?: unknown;
  /** Present when the value was not JSON. */
  encoding?: PayloadEncoding;
  /** When the change was written, when known. */
  created?: string;
  /** The entry it replaced or removed, if the map held one. */
  previous?: KvEntry;
  /** The change was found by comparing a fresh snapshot after a reconnect. */
  resync?: boolean;
}

// ---- subscriptions ----

/** Detail of a subscription's `closed` event. */
export interface SubscriptionClosedDetail {
  /** Why it ended, unless unsubscribed. */
  error?: NatsgateError;
  /** Ended because the user's capabilities no longer allow it. */
  revoked: boolean;
}

/** A live subscription of any kind; it survives reconnects until unsubscribed or revoked. */
export interface Subscription extends EventTarget {
  /** `core`, `kv` or `js`. */
  readonly kind: "core" | "kv" | "js";
  /** Subject, bucket or stream. */
  readonly target: string;
  /** The gateway's id for it on the current connection (changes on reconnect). */
  readonly sid: string | undefined;
  /** Unsubscribed, revoked, refused or the client closed. */
  readonly closed: boolean;
  /** Why it ended, when it did not end by `unsubscribe()`. */
  readonly error: NatsgateError | undefined;
  /** Resolves once live (a KV watch: once its snapshot is loaded); rejects when refused. */
  readonly ready: Promise<void>;
  /** Stops it. */
  unsubscribe(): Promise<void>;
}

/** A core subscription. */
export interface CoreSubscription extends Subscription {
  /** Always `core`. */
  readonly kind: "core";
  /** Queue group, if any. */
  readonly queue: string | undefined;
}

/** Detail of a {@link KvWatch}'s `ready` event. */
export interface KvReadyDetail {
  /** The bucket revision the map reflects. */
  revision: number;
  /** True after a reconnect's re-watch, false for the first snapshot. */
  resync: boolean;
}

/**
 * A KV watch with a local key → entry map. Its `ready` event fires each time the map matches
 * the bucket again: after the first snapshot and after each reconnect's resync.
 */
export interface KvWatch extends Subscription {
  /** Always `kv`. */
  readonly kind: "kv";
  /** The local map. */
  readonly entries: ReadonlyMap<string, KvEntry>;
  /** The highest bucket revision accounted for. */
  readonly revision: number;
  /** The map reflects the bucket (false while a snapshot loads). */
  readonly synced: boolean;
  /** The options it was created with. */
  readonly options: KvWatchOptions;
  /** The value under `key`, or undefined. */
  get(key: string): unknown;
}

/** A JetStream subscription. */
export interface JsSubscription extends Subscription {
  /** Always `js`. */
  readonly kind: "js";
  /** The last stream sequence handed to the handler (resumption starts after it). */
  readonly lastSeq: number;
  /** The options it was created with. */
  readonly options: JsSubscribeOptions;
}

// ---- client events ----

/** Connection states. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Detail of the `state` event. */
export interface StateEventDetail {
  /** The new state. */
  state: ConnectionState;
  /** The state before. */
  previous: ConnectionState;
  /** Reconnection attempt number (connecting / reconnecting). */
  attempt?: number;
  /** Delay before that attempt. */
  delayMs?: number;
  /** Close code of the connection that ended. */
  code?: number;
  /** Close reason of the connection that ended. */
  reason?: string;
  /** Why the client closed (state `closed`). */
  error?: NatsgateError;
}

/** Detail of the `capabilities` event (each `cap_update`). */
export interface CapabilitiesEventDetail {
  /** The user's effective capabilities. */
  capabilities: Capabilities;
  /** The user id. */
  user?: string;
  /** The gateway session id. */
  session?: string;
  /** Subscriptions this update revoked. */
  revoked: Subscription[];
}

/** Detail of the `revoked` event. */
export interface RevokedEventDetail {
  /** The subscriptions the gateway closed because capabilities shrank. */
  subscriptions: Subscription[];
  /** The capabilities now in force. */
  capabilities: Capabilities;
}

/** Detail of the `error` event. */
export interface ErrorEventDetail {
  /** What went wrong. */
  error: NatsgateError;
  /** The subscription concerned, if any. */
  subscription?: Subscription;
}

/** Events of {@link NatsgateClient}. */
export interface NatsgateClientEventMap {
  /** Connection state changed (also each reconnection attempt). */
  state: CustomEvent<StateEventDetail>;
  /** A `cap_update` arrived. */
  capabilities: CustomEvent<CapabilitiesEventDetail>;
  /** Subscriptions were revoked. */
  revoked: CustomEvent<RevokedEventDetail>;
  /** Something failed that no promise reports (server errors, subscription failures, handler exceptions). */
  error: CustomEvent<ErrorEventDetail>;
}

// ---- the client ----

/**
 * A connection to a natsgate gateway. Authenticates with an `auth` frame, reconnects with
 * exponential backoff and jitter, re-subscribes everything on reconnect, resumes JetStream
 * subscriptions after the last delivered sequence and re-syncs KV watches without spurious events.
 */
export declare class NatsgateClient extends EventTarget {
  /**
   * Starts connecting at once; `opened` resolves when authenticated. With several URLs, each
   * reconnect attempt moves to the next gateway.
   */
  constructor(url: string | URL | Array<string | URL>, options: ConnectOptions);
  /** Resolves when first authenticated; rejects if the client closes before that. */
  readonly opened: Promise<void>;
  /** The connection state. */
  readonly state: ConnectionState;
  /** The WebSocket URL of the gateway in use (or tried next). */
  readonly url: string;
  /** Every gateway URL given, in the order they are tried. */
  readonly urls: string[];
  /** Capabilities from the latest `cap_update`. */
  readonly capabilities: Capabilities;
  /** The authenticated user id. */
  readonly user: string | undefined;
  /** The gateway's id of the current session (changes on reconnect). */
  readonly session: string | undefined;
  /** Live subscriptions. */
  readonly subscriptions: Subscription[];

  /** Adds a listener for a client event; returns a function that removes it. */
  on<K extends keyof NatsgateClientEventMap>(
    type: K,
    listener: (
      detail: NatsgateClientEventMap[K]["detail"],
      event: NatsgateClientEventMap[K],
    ) => void,
  ): () => void;

  /** Adds a listener for a client event. */
  addEventListener<K extends keyof NatsgateClientEventMap>(
    type: K,
    listener: (this: NatsgateClient, ev: NatsgateClientEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Adds a listener. */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Removes a listener for a client event. */
  removeEventListener<K extends keyof NatsgateClientEventMap>(
    type: K,
    listener: (this: NatsgateClient, ev: NatsgateClientEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Removes a listener. */
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;

  /** Subscribes to a core subject (wildcards allowed). */
  subscribe(
    subject: string,
    handler: (msg: Msg) => unknown,
    options?: SubscribeOptions,
  ): CoreSubscription;

  /** Watches a KV bucket; `ready` resolves once the snapshot is in the map. */
  kvWatch(bucket: string, options: KvWatchOptions, handler: (event: KvEvent) => unknown): KvWatch;
  /** Watches a whole KV bucket. */
  kvWatch(bucket: string, handler: (event: KvEvent) => unknown): KvWatch;

  /** Follows a JetStream stream; resumes after reconnects without gap or duplicate. */
  jsSubscribe(
    stream: string,
    options: JsSubscribeOptions,
    handler: (msg: JsMsg) => unknown,
  ): JsSubscription;
  /** Follows a whole JetStream stream from new messages on. */
  jsSubscribe(stream: string, handler: (msg: JsMsg) => unknown): JsSubscription;

  /**
   * Sends a command and resolves with the reply; rejects with a {@link NatsgateError}
   * (`forbidden`, `no_responders`, `timeout`, `unavailable` when disconnected, ...).
   */
  request(subject: string, payload?: unknown, options?: RequestOptions): Promise<Reply>;

  /**
   * Publishes; resolves when the gateway accepted it. Byte arrays are sent raw. The promise may
   * be ignored: its rejection is never reported as unhandled.
   */
  publish(subject: string, payload?: unknown, options?: PublishOptions): Promise<void>;

  /** Closes for good; pending requests reject with `unavailable`. */
  close(): Promise<void>;

  /** Closes at the end of an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Connects and resolves once authenticated. Rejects with a {@link NatsgateError} when the first
 * attempt fails (`unauthorized`, `unavailable`; with several URLs, after one try of each), unless
 * `waitOnFirstConnect` is set. Several URLs: each reconnect attempt moves to the next gateway.
 */
export declare function connect(
  url: string | URL | Array<string | URL>,
  options: ConnectOptions,
): Promise<NatsgateClient>;

/** Decodes a JWT's payload without verifying it; undefined when unreadable. */
export declare function decodeJwtPayload(token: string): Record<string, unknown> | undefined;

/**
 * Milliseconds until a token should be refreshed: 30 s before `exp`, or at 80 % of the lifetime
 * of tokens living less than 150 s; undefined without `exp`.
 */
export declare function tokenRefreshDelay(token: string, nowMs?: number): number | undefined;

/** The bytes of a delivered payload (base64 and text decoded; JSON as its JSON text). */
export declare function payloadBytes(payload: unknown, encoding?: string): Uint8Array;
