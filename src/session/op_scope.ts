/** What an op handler sees of its session ({@link OpScope}), and the checks several ops share.
 * The session builds one scope; handlers (ops.ts, subscribe_ops.ts) never touch its internals.
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import type { CapabilitySet } from "../auth/capabilities.ts";
import type { AuthFailureReason } from "../auth/auth_failure.ts";
import type { VerifiedToken } from "../auth/verify.ts";
import type { Logger } from "../log/log.ts";
import type { ClientEnvelope } from "../protocol/envelope.ts";
import {
  BadRequestError,
  type ErrorContext,
  ForbiddenError,
  InvalidSubjectError,
  LimitError,
} from "../protocol/errors.ts";
import { isLiteralSubject, validateSubject } from "../protocol/subject.ts";
import type { SubjectHub } from "./subject_hub.ts";
import type { CoreSubscriptionHost } from "./core_subscription.ts";
import type { SessionSubscriptions } from "./subscriptions.ts";
import type { SessionEvent, SessionLimits, SubscriptionFactory } from "./types.ts";

/** A session's state: `authenticating` holds inbound ops until capabilities are read. */
export type SessionState = "unauthenticated" | "authenticating" | "open" | "closed";

/** One session as its op handlers see it. */
export interface OpScope {
  /** Session id (logs). */
  readonly id: string;
  /** The state, read fresh (callbacks may run after the session changed). */
  readonly state: SessionState;
  /** The authenticated user (set once the session is open). */
  readonly user: string;
  /** The user's current capabilities (set once the session is open). */
  readonly caps: CapabilitySet;
  /** The token's expiry (seconds), null for none. */
  readonly exp: number | null;
  /** The NATS connection. */
  readonly nc: NatsConnection;
  /** Shared core subscriptions. */
  readonly hub: SubjectHub;
  /** The session itself, as its core subscriptions deliver to it (the hot path: no wrapper). */
  readonly coreHost: CoreSubscriptionHost;
  /** Limits in force. */
  readonly limits: SessionLimits;
  /** Logger. */
  readonly log: Logger;
  /** The session's subscriptions. */
  readonly subs: SessionSubscriptions;
  /** `kv_sub` support, when available. */
  readonly kvSubscribe?: SubscriptionFactory;
  /** `js_sub` support, when available. */
  readonly jsSubscribe?: SubscriptionFactory;
  /** `cmd`s waiting for their reply. */
  pendingCmds: number;
  /** Outbound bytes pending for this client. */
  readonly pendingBytes: number;
  /** Resolves once pending bytes are at most `below`, or the session ends. */
  drained(below: number): Promise<void>;
  /** Verifies a token. */
  verify(token: string): Promise<VerifiedToken>;
  /** Starts authentication with a token (the first `auth`). */
  authenticate(token: string, env: ClientEnvelope, ctx: ErrorContext): void;
  /** Sets the token expiry (and its timer). */
  setExpiry(exp: number | null): void;
  /** Applies a refreshed token's claims (held roles, `{claim:NAME}` templates). */
  refreshClaims(claims: Readonly<Record<string, unknown>>): void;
  /** Queues any envelope. */
  send(envelope: string): boolean;
  /** Answers the op with a `reply` (when it has an inbox). */
  reply(env: ClientEnvelope, data: unknown): void;
  /** Answers the op with an `error` (and closes when the error says so). */
  fail(err: unknown, ctx: ErrorContext): void;
  /** Closes the session. */
  close(code: number, reason: string): void;
  /** Publishes a lifecycle event. */
  emit(event: SessionEvent, fields?: Record<string, unknown>): void;
  /** Records a cmd's latency and outcome. */
  observeCmd(seconds: number, outcome: string): void;
  /** Reports a failed authentication (a refresh) for metrics and the log. */
  authFailed(reason: AuthFailureReason, message: string): void;
}

/**
 * Refuses an op the capabilities do not allow: one `denied` event (logged once at debug, with
 * the rule's reason), `forbidden`.
 */
export function deny(s: OpScope, env: ClientEnvelope, reason: string): never {
  s.emit("denied", { op: env.op, target: env.target, code: "forbidden", reason });
  throw new ForbiddenError("not allowed");
}

/** The op's target; `bad_request` when missing or empty. */
export function requireTarget(env: ClientEnvelope): string {
  if (typeof env.target !== "string" || env.target === "") {
    throw new BadRequestError("target is required");
  }
  return env.target;
}

/** The op's target as a literal subject (`pub`, `cmd`); `invalid_subject` otherwise. */
export function literalTarget(env: ClientEnvelope): string {
  const subject = requireTarget(env);
  const err = validateSubject(subject, { wildcards: false });
  if (err) throw new InvalidSubjectError(`invalid subject: ${err}`);
  if (!isLiteralSubject(subject)) {
    throw new InvalidSubjectError("subject must be literal");
  }
  return subject;
}

/** Refuses a new subscription past `maxSubs` (`limit` event, `limit_exceeded`). */
export function requireSubSlot(s: OpScope): void {
  if (s.subs.size >= s.limits.maxSubs) {
    s.emit("limit", { limit: "subscriptions" });
    throw new LimitError(`at most ${s.limits.maxSubs} subscriptions per connection`);
  }
}
