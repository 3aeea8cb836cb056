/** What `connect()` and the subscribe/request methods accept, and the settings in force.
 * @module */

import type { HeaderMap } from "../protocol/types.ts";

/** Reconnection settings: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** First delay (default 250 ms); each attempt doubles it, a random half of it is taken off. */
  initialDelayMs?: number;
  /** Largest delay (default 10 s). */
  maxDelayMs?: number;
  /** Attempts before giving up (default: unlimited). */
  maxAttempts?: number;
}

/** Returns a fresh JWT; called on every reconnection and ahead of expiry. */
export type TokenSource = () => string | Promise<string>;

/** Options of {@link connect} other than the token source. */
export interface ConnectSettings {
  /** `false` disables reconnection (default: on). */
  reconnect?: boolean | ReconnectOptions;
  /** Keepalive ping period; a ping unanswered for a period counts as a lost connection (default 20 s, 0: off). */
  pingIntervalMs?: number;
  /** Default `request()` timeout (default 5 s). */
  requestTimeoutMs?: number;
  /** Keep retrying when the first connection fails instead of rejecting `connect()` (default false). */
  waitOnFirstConnect?: boolean;
}

/** A fixed token: used for every (re)connection and never refreshed. */
export interface StaticTokenOptions extends ConnectSettings {
  /** A JWT. */
  token: string;
  /** Optional: refreshes the token (see {@link TokenSourceOptions}). */
  getToken?: TokenSource;
}

/** A token source, asked on every reconnection and before expiry. */
export interface TokenSourceOptions extends ConnectSettings {
  /** A first JWT (optional: `getToken` is asked when absent). */
  token?: string;
  /**
   * Returns a fresh JWT. Called on every reconnection and ahead of expiry (30 s before `exp`, or
   * at 80 % of the lifetime of short tokens) to refresh the session in place.
   */
  getToken: TokenSource;
}

/**
 * Options of {@link connect}: `token` or `getToken` is required, so `connect(url, {})` does not
 * type-check.
 */
export type ConnectOptions = StaticTokenOptions | TokenSourceOptions;

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

/** Options of `kvWatch`. */
export interface KvWatchOptions {
  /** Key pattern (default `>`: every key). */
  pattern?: string;
  /** Skip the initial snapshot: the map holds only keys changed since the watch began. */
  updatesOnly?: boolean;
}

/** Options of `jsSubscribe` (protocol section 4). */
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

/** Options of `publish`. */
export interface PublishOptions {
  /** Message headers. */
  headers?: HeaderMap;
  /** `text` sends a string payload as raw UTF-8 instead of JSON (byte arrays always go raw). */
  encoding?: "json" | "text";
}

/** Options of `request`. */
export interface RequestOptions extends PublishOptions {
  /** How long the responder may take (default `requestTimeoutMs`; the gateway caps it). */
  timeoutMs?: number;
}

/** The settings in force, from the options and the defaults. */
export interface ClientConfig {
  /** Reconnect at all. */
  reconnect: boolean;
  /** First backoff delay. */
  initialDelayMs: number;
  /** Largest backoff delay. */
  maxDelayMs: number;
  /** Attempts before giving up. */
  maxAttempts: number;
  /** Keepalive period (0: off). */
  pingIntervalMs: number;
  /** Default request timeout. */
  requestTimeoutMs: number;
  /** Keep retrying the first connection. */
  waitOnFirstConnect: boolean;
}

/**
 * The settings in force for `options`, defaults filled in.
 *
 * @example
 * ```ts
 * resolveConfig({ token: "t" }).maxDelayMs; // 10_000
 * ```
 */
export function resolveConfig(options: ConnectSettings): ClientConfig {
  const r = typeof options.reconnect === "object" ? options.reconnect : {};
  return {
    reconnect: options.reconnect !== false,
    initialDelayMs: r.initialDelayMs ?? 250,
    maxDelayMs: r.maxDelayMs ?? 10_000,
    maxAttempts: r.maxAttempts ?? Infinity,
    pingIntervalMs: options.pingIntervalMs ?? 20_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
    waitOnFirstConnect: options.waitOnFirstConnect ?? false,
  };
}
