/** Shared core-NATS subscriptions: one per distinct (subject, queue) per gateway, fanned out in process.
 * Each message's `msg` envelope is serialised once; only the per-listener `sid` is spliced in.
 * @module */

import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { renderPayload } from "../protocol/payload.ts";
import { isLiteralSubject } from "../protocol/subject.ts";
import { headersJson } from "../protocol/headers.ts";
import { coreMsgHead } from "../protocol/frames.ts";

/** A receiver of core messages: a session's subscription. */
export interface CoreListener {
  /**
   * Receives the shared envelope prefix; the full envelope is `prefix + sidSuffix`. Returns
   * false when the listener cannot take it (not yet confirmed to its client, closing, or over its
   * queue bound): a queue group then routes the message to another member. A listener removed
   * during a dispatch may still be called for the message being dispatched, and must refuse it.
   */
  deliver(prefix: string): boolean;
}

interface _Entry {
  sub: Subscription;
  /**
   * Copy-on-write: `add` and `remove` replace the array, never mutate it, so a dispatch that
   * took the array keeps a stable view while a listener leaves (or joins) during its fan-out.
   */
  listeners: readonly CoreListener[];
  /** Round-robin cursor for queue groups. */
  next: number;
  queue: string | undefined;
  /** First token of the subject is a wildcard: `$` subjects are not delivered ($ rule). */
  dollarGuard: boolean;
  /** The subject as JSON text when it has no wildcards (every message carries exactly it). */
  targetJson: string | undefined;
  ready: Promise<void>;
}

/**
 * Builds the shared part of a core `msg` envelope, up to and including `"sid":"`
 * (`coreMsgHead` in src/protocol/frames.ts builds it from the message's parts).
 * `targetJson`: the subject as JSON text when the caller knows it (a subscription without
 * wildcards), which saves decoding it from the message.
 */
export function coreMsgPrefix(msg: Msg, targetJson?: string): string {
  return coreMsgHead(
    targetJson ?? JSON.stringify(msg.subject),
    renderPayload(msg.data),
    headersJson(msg),
    _hasReply(msg),
  );
}

const _JS_ACK = "$JS.ACK.";
const _NO_REPLY = new Uint8Array(0);

/**
 * A message's reply subject, as cheaply as it can be read: the one place that touches nats.js
 * internals. `msg.reply` (the public getter) decodes the subject's bytes into a new string on
 * every call; @nats-io/nats-core keeps the parsed protocol arguments, reply bytes included, in
 * the message's private `_msg`, and every core delivery asks "has it a reply?" (and wildcard
 * subscriptions "is it a `$JS.ACK.` delivery?"), which the bytes answer without decoding.
 * A CPU profile of the fan-out (commit 749cb73) found a third of the busy time in TextDecoder
 * calls, this one among them. When a nats.js release renames or drops `_msg`, this falls back
 * to the public getter: same answers, only slower (subject_hub_test.ts covers both paths).
 */
function _reply(msg: Msg): Uint8Array | string {
  const raw = (msg as unknown as { _msg?: { reply?: Uint8Array } })._msg;
  if (raw !== undefined && typeof raw === "object" && "reply" in raw) {
    return raw.reply ?? _NO_REPLY;
  }
  return msg.reply ?? "";
}

/** Whether a message carries a reply subject. */
function _hasReply(msg: Msg): boolean {
  return _reply(msg).length > 0;
}

/** Whether a message is a JetStream consumer delivery (its reply subject is `$JS.ACK.…`). */
function _isJsDelivery(msg: Msg): boolean {
  const r = _reply(msg);
  if (typeof r === "string") return r.startsWith(_JS_ACK);
  if (r.length < _JS_ACK.length) return false;
  for (let i = 0; i < _JS_ACK.length; i++) if (r[i] !== _JS_ACK.charCodeAt(i)) return false;
  return true;
}

/**
 * Prefix of client queue groups on NATS: clients of every gateway that pick the same queue name
 * share one group, but can never join (and take messages from) a backend's queue group.
 */
export const CLIENT_QUEUE_PREFIX = "natsgate.";

/** The shared subscriptions of one gateway. */
export class SubjectHub {
  #nc: NatsConnection;
  #entries = new Map<string, _Entry>();
  #onError: (err: Error, subject: string) => void;

  /** Creates a hub on a NATS connection; `onError` hears subscription failures. */
  constructor(nc: NatsConnection, onError: (err: Error, subject: string) => void) {
    this.#nc = nc;
    this.#onError = onError;
  }

  /** Number of NATS subscriptions the hub holds. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Adds a listener for (subject, queue). Resolves once the NATS server has the subscription, so
   * a message published after the promise resolves is delivered.
   */
  add(subject: string, queue: string | undefined, listener: CoreListener): Promise<void> {
    const key = queue === undefined ? subject : `${subject}\u0000${queue}`;
    const existing = this.#entries.get(key);
    if (existing) {
      existing.listeners = [...existing.listeners, listener];
      return existing.ready;
    }
    const first = subject.charCodeAt(0);
    const dollarGuard = (first === 42 || first === 62) &&
      (subject.length === 1 || subject.charCodeAt(1) === 46);
    const entry: _Entry = {
      sub: undefined as unknown as Subscription,
      listeners: [listener],
      next: 0,
      queue,
      dollarGuard,
      targetJson: isLiteralSubject(subject) ? JSON.stringify(subject) : undefined,
      ready: Promise.resolve(),
    };
    entry.sub = this.#nc.subscribe(subject, {
      queue: queue === undefined ? undefined : CLIENT_QUEUE_PREFIX + queue,
      callback: (err, msg) => {
        if (err) {
          this.#onError(err, subject);
          return;
        }
        try {
          this.#dispatch(entry, msg);
        } catch (e) {
          // Never let one message end nats.js's read loop (it would stall every subscription).
          this.#onError(e instanceof Error ? e : new Error(String(e)), subject);
        }
      },
    });
    // Ignored on purpose: a flush fails only when the connection closes for good (across a
    // reconnect it waits, and nats.js re-sends the subscription); every subscription ends with
    // the connection then, so there is nothing to undo here, and the op is answered either way.
    entry.ready = this.#nc.flush().catch(() => {});
    this.#entries.set(key, entry);
    return entry.ready;
  }

  #dispatch(entry: _Entry, msg: Msg): void {
    // $ rule. A wildcard-first pattern also matches the gateway's own inbox subjects, where
    // JetStream delivers consumer messages under their stream subject: those carry a `$JS.ACK.`
    // reply and belong to another subscription (often another user's), never to this one.
    if (entry.dollarGuard && (msg.subject.charCodeAt(0) === 36 || _isJsDelivery(msg))) return;
    // A stable snapshot: a listener cut off during this loop replaces entry.listeners, not this.
    const listeners = entry.listeners;
    const n = listeners.length;
    if (n === 0) return;
    const prefix = coreMsgPrefix(msg, entry.targetJson);
    if (entry.queue === undefined) {
      for (let i = 0; i < n; i++) listeners[i].deliver(prefix);
      return;
    }
    // Queue group: the next member in turn that takes it; one that cannot (over its bound, not
    // yet confirmed, closing) is passed over, so the message goes to a member that can.
    const start = entry.next % n;
    entry.next = start + 1;
    for (let k = 0; k < n; k++) {
      if (listeners[(start + k) % n].deliver(prefix)) return;
    }
  }

  /** Removes a listener; the NATS subscription goes when its last listener does. */
  remove(subject: string, queue: string | undefined, listener: CoreListener): void {
    const key = queue === undefined ? subject : `${subject}\u0000${queue}`;
    const entry = this.#entries.get(key);
    if (!entry) return;
    if (!entry.listeners.includes(listener)) return;
    entry.listeners = entry.listeners.filter((l) => l !== listener);
    if (entry.listeners.length === 0) {
      this.#entries.delete(key);
      try {
        entry.sub.unsubscribe();
      } catch {
        // connection closed: the subscription is gone anyway
      }
    }
  }

  /** Drops every subscription. */
  close(): void {
    for (const entry of this.#entries.values()) {
      try {
        entry.sub.unsubscribe();
      } catch {
        // ignore
      }
    }
    this.#entries.clear();
  }
}
