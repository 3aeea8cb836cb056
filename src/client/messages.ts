/** What subscriptions and requests hand to the application, typed by payload (`Msg<T>`).
 * @module */

import type { HeaderMap, PayloadEncoding } from "../protocol/types.ts";

/** A core NATS message whose payload the application expects to be a `T`. */
export interface Msg<T = unknown> {
  /** The subject it was published to. */
  subject: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: T;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: HeaderMap;
  /** The publisher expects a response (the reply subject itself is never exposed). */
  reply?: boolean;
}

/** The answer to a request. */
export interface Reply<T = unknown> {
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: T;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: HeaderMap;
}

/** A JetStream message. */
export interface JsMsg<T = unknown> {
  /** Stream sequence. */
  seq: number;
  /** The subject it was stored under. */
  subject: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  payload: T;
  /** Present when the bytes were not JSON. */
  encoding?: PayloadEncoding;
  /** Headers, if any. */
  headers?: HeaderMap;
  /** When it was stored (RFC 3339). */
  time: string;
  /** Delivered before and not acknowledged (ack subscriptions). */
  redelivered?: boolean;
  /** Acknowledges it (ack subscriptions only); safe to ignore the promise. */
  ack(): Promise<void>;
}

/** A key's current entry in a KV watch's map. */
export interface KvEntry<T = unknown> {
  /** The key. */
  key: string;
  /** Parsed JSON, or a string when `encoding` is set. */
  value: T;
  /** Present when the value was not JSON. */
  encoding?: PayloadEncoding;
  /** The bucket revision that wrote it. */
  revision: number;
  /** When it was written (RFC 3339). */
  created: string;
}

/** A change seen by a KV watch. */
export interface KvEvent<T = unknown> {
  /** The key. */
  key: string;
  /** What happened. */
  op: "put" | "delete" | "purge";
  /** The revision of the change (for a key found gone on a resync without a tombstone: the revision at which it was known gone). */
  revision: number;
  /** The new value (`put`). */
  value?: T;
  /** Present when the value was not JSON. */
  encoding?: PayloadEncoding;
  /** When the change was written, when known. */
  created?: string;
  /** The entry it replaced or removed, if the map held one. */
  previous?: KvEntry<T>;
  /** The change was found by comparing a fresh snapshot after a reconnect. */
  resync?: boolean;
}
