/** One client connection: authentication, op dispatch, limits, subscriptions and live capabilities.
 * Every resource a session takes (subscriptions, timers, pending requests) is released by close().
 * @module */

import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type { VerifiedToken } from "../auth/verify.ts";
import {
  type Capabilities,
  type CapabilitySet,
  checkCommand,
  checkPublish,
  checkSubscribe,
} from "../auth/capabilities.ts";
import type { CapabilityStore, UserCapabilities } from "../auth/capability_store.ts";
import {
  type ClientEnvelope,
  type HeaderMap,
  isFailure,
  isObject,
  parseFrameLimited,
  RATE_LIMITED,
} from "../protocol/envelope.ts";
import {
  CloseCode,
  type ErrorContext,
  errorEnvelope,
  type ErrorInfo,
  errorInfo,
  GatewayError,
  toGatewayError,
} from "../protocol/errors.ts";
import type { Logger } from "../log/log.ts";
import type {
  SessionEvent,
  SessionLimits,
  SessionMeta,
  SessionSocket,
  SessionSubscription,
  SubscriptionFactory,
  SubscriptionRequest,
} from "./types.ts";
import { OutboundQueue, type PendingBudget } from "./outbound.ts";
import type { CutReason } from "./backpressure.ts";
import { renderPayload } from "../protocol/payload.ts";
import { TokenBucket } from "./rate_limit.ts";
import type { CoreListener, SubjectHub } from "./subject_hub.ts";
import { isLiteralSubject, validateQueueName, validateSubject } from "../protocol/subject.ts";
import { encodePayload } from "../protocol/payload.ts";
import { headersJson } from "../protocol/headers.ts";

/** What the gateway gives each session. */
export interface SessionContext {
  /** The NATS connection. */
  nc: NatsConnection;
  /** Shared core subscriptions. */
  hub: SubjectHub;
  /** Live capabilities. */
  store: CapabilityStore;
  /** Token verification. */
  verify: (token: string) => Promise<VerifiedToken>;
  /** Limits. */
  limits: SessionLimits;
  /** Logger. */
  log: Logger;
  /** Takes a connection slot for a user; false when the user is at the limit. */
  acquireUserSlot(user: string): boolean;
  /** Gives a connection slot back. */
  releaseUserSlot(user: string): void;
  /** Called once when the session has closed. */
  onClosed(session: Session): void;
  /** Publishes a lifecycle event (best effort). */
  emit(session: Session, event: SessionEvent, fields?: Record<string, unknown>): void;
  /** Records a cmd's latency and outcome (metrics). */
  observeCmd?(seconds: number, outcome: string): void;
  /** `kv_sub` support, when available. */
  kvSubscribe?: SubscriptionFactory;
  /** `js_sub` support, when available. */
  jsSubscribe?: SubscriptionFactory;
  /** The gateway-wide pending budget, if any. */
  budget?: PendingBudget;
  /** Called when the session is cut for backpressure (metrics, per reason). */
  onCut?(reason: CutReason): void;
  /** Called when the session is closed for sustained abuse (rate limit): admission penalty. */
  onAbuse?(session: Session): void;
}

/** Largest inbound message before authentication: an `auth` frame with a token of 8 KiB fits. */
export const UNAUTHENTICATED_MAX_MESSAGE_BYTES = 16 * 1024;

type _State = "unauthenticated" | "authenticating" | "open" | "closed";

/** Why a subscription ended before its op was answered. */
type _Vanished = "revoked" | "unsubscribed" | "failed";

const _MAX_TIMER = 2 ** 31 - 1;
// Inbound refusals that can repeat on every frame: shared values, no Error (and no stack) each.
/** Error frames of shared failure values without context, rendered once. */
const _BARE = new WeakMap<ErrorInfo, string>();
const _BINARY_FRAME = errorInfo("bad_request", "binary frames are not supported");
let _sessionCounter = 0;

class _CoreSubscription implements SessionSubscription, CoreListener {
  readonly kind = "core";
  readonly sid: string;
  readonly target: string;
  readonly queue: string | undefined;
  active = false;
  #suffix: string;
  #session: Session;
  #closed = false;

  constructor(session: Session, sid: string, subject: string, queue: string | undefined) {
    this.#session = session;
    this.sid = sid;
    this.target = subject;
    this.queue = queue;
    this.#suffix = `${sid}"}`;
  }

  deliver(prefix: string): boolean {
    if (!this.active) return false;
    // A queue member already over its bound takes no more: the group routes to another member.
    if (this.queue !== undefined && this.#session.overBound) return false;
    return this.#session.sendMsg(prefix + this.#suffix);
  }

  allowed(caps: CapabilitySet): boolean {
    return checkSubscribe(caps, this.target).allowed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.active = false;
    this.#session.context.hub.remove(this.target, this.queue, this);
  }
}

/** A client session on one WebSocket. */
export class Session {
  /** Session id (shown to admins and in the first `cap_update`). */
  readonly id: string;
  /** Connection facts. */
  readonly meta: SessionMeta;
  /** When the connection was accepted. */
  readonly since: Date = new Date();
  /** The authenticated user id (undefined before authentication). */
  user?: string;
  /** The context. */
  readonly context: SessionContext;
  /** Inbound envelopes. */
  msgsIn = 0;
  /** Inbound bytes. */
  bytesIn = 0;
  /** Messages delivered. */
  msgsOut = 0;

  #ws: SessionSocket;
  #state: _State = "unauthenticated";
  #out: OutboundQueue;
  #bucket: TokenBucket;
  #subs = new Map<string, SessionSubscription>();
  #nextSid = 1;
  #caps: UserCapabilities | undefined;
  #exp: number | null = null;
  #authTimer?: ReturnType<typeof setTimeout>;
  #expTimer?: ReturnType<typeof setTimeout>;
  #pendingCmds = 0;
  #backlog: Array<ClientEnvelope> = [];
  #capListener = (caps: UserCapabilities) => this.#onCapabilities(caps);
  #holdsSlot = false;
  /**
   * Subscriptions whose op is not answered yet, with why they ended meanwhile (if they did):
   * the op still gets its one answer, an error, and a revocation never names a sid the client
   * has not been told.
   */
  #unconfirmed = new Map<string, _Vanished | undefined>();

  /** Creates a session; call {@link Session.start} once the socket is open. */
  constructor(ws: SessionSocket, context: SessionContext, meta: SessionMeta) {
    this.id = `${Date.now().toString(36)}${(++_sessionCounter).toString(36)}${
      crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
    }`;
    this.#ws = ws;
    this.context = context;
    this.meta = meta;
    const limits = context.limits;
    this.#out = new OutboundQueue(ws, {
      maxPendingBytes: limits.maxPendingBytes,
      backpressureTimeoutMs: limits.backpressureTimeoutMs,
      writeDeadlineMs: limits.writeDeadlineMs,
      budget: context.budget,
      onBackpressure: (reason) => this.#onBackpressure(reason),
    });
    ws.maxMessageBytes = Math.min(UNAUTHENTICATED_MAX_MESSAGE_BYTES, limits.maxFrameBytes);
    this.#bucket = new TokenBucket(limits.rate, limits.burst, performance.now());
  }

  /** Whether the session has been closed. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** The state, read fresh (callbacks may have changed it since the last check). */
  get #now(): _State {
    return this.#state;
  }

  /** Counts live subscriptions by kind into `into` (metrics). */
  countSubscriptions(into: Record<string, number>): void {
    for (const s of this.#subs.values()) into[s.kind] = (into[s.kind] ?? 0) + 1;
  }

  /** Current subscriptions (for admin listings). */
  subscriptions(): Array<{ sid: string; kind: string; target: string }> {
    return [...this.#subs.values()].map((s) => ({ sid: s.sid, kind: s.kind, target: s.target }));
  }

  /** Envelopes and bytes sent so far. */
  get outStats(): { envelopes: number; bytes: number } {
    return { envelopes: this.#out.envelopesOut, bytes: this.#out.bytesOut };
  }

  /**
   * Starts the session: with a token verified at upgrade it authenticates at once, otherwise it
   * waits for an `auth` frame for `authTimeoutMs`.
   */
  start(verified?: VerifiedToken): void {
    if (verified) {
      this.#authenticate(verified, undefined);
      return;
    }
    this.#authTimer = setTimeout(() => {
      if (this.#state === "unauthenticated") {
        this.#fail(new GatewayError("unauthorized", "authentication timed out"), { op: "auth" });
        this.close(CloseCode.UNAUTHORIZED, "authentication timed out");
      }
    }, this.context.limits.authTimeoutMs);
  }

  /** Queues a `msg` envelope (counted as a delivery); false when the session cannot take it. */
  sendMsg(envelope: string): boolean {
    if (!this.#out.push(envelope)) return false;
    this.msgsOut++;
    return true;
  }

  /** Pending outbound bytes (gateway queue plus socket). */
  get pendingBytes(): number {
    return this.#out.pendingBytes;
  }

  /** Applies the backpressure rule now (the gateway's sweep; catches stalled readers). */
  checkPressure(now: number): CutReason | undefined {
    return this.#out.check(now);
  }

  /** Cuts the session because the gateway's pending budget is exhausted (largest queues first). */
  cutForBudget(): void {
    this.#onBackpressure("budget");
  }

  /** Whether the outbound queue holds more than its bound (a queue group skips this member). */
  get overBound(): boolean {
    return this.#out.pendingBytes > this.context.limits.maxPendingBytes;
  }

  /** Queues any envelope. */
  send(envelope: string): boolean {
    return this.#out.push(envelope);
  }

  /**
   * Handles one inbound WebSocket message (text, or binary bytes). Each envelope takes a rate
   * token before it is parsed; one that finds none is answered `limit_exceeded` unread (its
   * inbox found by a scan), and a frame of more than `maxLinesPerFrame` envelopes closes 4029.
   */
  receive(data: string | Uint8Array | ArrayBuffer): void {
    if (this.#state === "closed") return;
    if (typeof data !== "string") {
      this.bytesIn += data.byteLength;
      // Rate limited like an op: each binary frame costs an error frame.
      const verdict = this.#bucket.take(performance.now());
      this.#reject(verdict === "ok" ? _BINARY_FRAME : RATE_LIMITED, {});
      if (verdict === "sustained") this.#closeRate();
      return;
    }
    const bytes = _byteLength(data, this.context.limits.maxFrameBytes);
    this.bytesIn += bytes;
    if (bytes > this.context.limits.maxFrameBytes) {
      this.close(CloseCode.TOO_BIG, "frame too big");
      return;
    }
    // One clock reading per frame: its lines arrived together (and the clock is not free).
    const now = performance.now();
    const { results, sustained, tooManyLines } = parseFrameLimited(data, {
      maxLines: this.context.limits.maxLinesPerFrame,
      take: () => this.#bucket.take(now),
    });
    if (tooManyLines !== undefined) {
      // More envelopes than the burst allows in one frame: nothing of it runs, and the client
      // is closed like a flooder (the ops it carried are answered by the close).
      const max = this.context.limits.maxLinesPerFrame;
      this.#reject(
        errorInfo("limit_exceeded", `too many envelopes in one frame (at most ${max})`),
        tooManyLines,
      );
      this.#closeRate();
      return;
    }
    for (const r of results) {
      if (this.#now === "closed") return;
      if (isFailure(r)) {
        this.#reject(r.error, r.context);
        continue;
      }
      this.msgsIn++;
      if (this.#state === "authenticating") this.#backlog.push(r);
      else this.#dispatch(r);
    }
    if (sustained && this.#now !== "closed") this.#closeRate();
  }

  /** Ends a client that stayed over the rate: emits `limit` `rate`, penalises its address, 4029. */
  #closeRate(): void {
    this.context.emit(this, "limit", { limit: "rate" });
    this.context.onAbuse?.(this);
    this.close(CloseCode.RATE_LIMIT, "rate limit");
  }

  /** Sends an error frame for a failure value (no Error, no logging: inbound refusals only). */
  #reject(err: ErrorInfo, ctx: ErrorContext): void {
    if (this.#state === "closed") return;
    // A flood of refused lines without context costs one shared string, not one render each.
    const bare = ctx.inbox === undefined && ctx.op === undefined && ctx.target === undefined;
    let text = bare ? _BARE.get(err) : undefined;
    if (text === undefined) {
      text = errorEnvelope(err, ctx);
      if (bare && Object.isFrozen(err)) _BARE.set(err, text);
    }
    this.send(text);
  }

  #dispatch(env: ClientEnvelope): void {
    const ctx: ErrorContext = { op: env.op, target: env.target, inbox: env.inbox };
    if (this.#state === "unauthenticated") {
      if (env.op !== "auth") {
        this.#fail(new GatewayError("unauthorized", "the first frame must be auth"), ctx);
        this.close(CloseCode.UNAUTHORIZED, "unauthorized");
        return;
      }
    }
    try {
      switch (env.op) {
        case "auth":
          this.#opAuth(env, ctx);
          return;
        case "ping":
          this.send(_pong(env));
          return;
        case "sub":
          this.#opSub(env, ctx);
          return;
        case "unsub":
          this.#opUnsub(env);
          return;
        case "pub":
          this.#opPub(env);
          return;
        case "cmd":
          this.#opCmd(env, ctx);
          return;
        case "kv_sub":
        case "js_sub":
          this.#opStreamSub(env, ctx);
          return;
        case "ack":
          this.#opAck(env);
          return;
      }
    } catch (err) {
      this.#fail(err, ctx);
    }
  }

  // ---- auth ----

  #opAuth(env: ClientEnvelope, ctx: ErrorContext): void {
    if (!isObject(env.data) || typeof env.data.token !== "string") {
      throw new GatewayError("bad_request", "auth data must be { token: string }");
    }
    const token = env.data.token;
    if (this.#state === "unauthenticated") {
      if (this.#authTimer !== undefined) clearTimeout(this.#authTimer);
      this.#state = "authenticating";
      this.context.verify(token).then(
        (v) => this.#authenticate(v, env),
        (err) => {
          this.#fail(err, ctx);
          this.close(CloseCode.UNAUTHORIZED, "unauthorized");
        },
      );
      return;
    }
    // Refresh of an open session.
    this.context.verify(token).then((v) => {
      if (this.#state !== "open") return;
      if (v.user !== this.user) {
        this.#fail(new GatewayError("forbidden", "token is for a different user"), ctx);
        return;
      }
      // A refresh never removes an expiry: a token without exp (--allow-no-exp) keeps the current
      // one; a token with exp sets it, earlier or later.
      const exp = v.exp ?? this.#exp;
      this.#setExpiry(exp);
      this.context.emit(this, "auth_refresh", { exp });
      if (env.inbox !== undefined) this.send(_reply(env, { user: v.user, exp }));
    }, (err) => {
      // An invalid refresh token ends the session: the client presented bad credentials.
      this.#fail(err, ctx);
      this.close(CloseCode.UNAUTHORIZED, "unauthorized");
    });
  }

  #authenticate(v: VerifiedToken, env: ClientEnvelope | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "authenticating";
    if (!this.context.acquireUserSlot(v.user)) {
      this.context.emit(this, "limit", { limit: "connections_per_user", user: v.user });
      this.#fail(new GatewayError("limit_exceeded", "too many connections for this user"), {
        op: "auth",
        inbox: env?.inbox,
      });
      this.close(CloseCode.RATE_LIMIT, "too many connections");
      return;
    }
    this.#holdsSlot = true;
    this.user = v.user;
    this.context.store.acquire(v.user, this.#capListener).then((caps) => {
      if (this.#state === "closed") {
        this.context.store.release(v.user, this.#capListener);
        return;
      }
      this.#caps = caps;
      this.#state = "open";
      this.#ws.maxMessageBytes = this.context.limits.maxFrameBytes;
      this.#setExpiry(v.exp);
      if (env?.inbox !== undefined) this.send(_reply(env, { user: v.user, exp: v.exp }));
      this.send(this.#capUpdate(caps.doc, []));
      this.context.emit(this, "connect", {});
      const backlog = this.#backlog;
      this.#backlog = [];
      for (const e of backlog) {
        if (this.#now !== "open") break;
        this.#dispatch(e);
      }
    }, (err) => {
      this.context.log.error("cannot read capabilities", { user: v.user, error: err });
      this.#fail(new GatewayError("unavailable", "capabilities cannot be read now"), {
        op: "auth",
        inbox: env?.inbox,
      });
      this.close(CloseCode.INTERNAL, "unavailable");
    });
  }

  #setExpiry(exp: number | null): void {
    this.#exp = exp;
    if (this.#expTimer !== undefined) clearTimeout(this.#expTimer);
    this.#expTimer = undefined;
    if (exp === null) return;
    const arm = () => {
      const left = this.#exp! * 1000 - Date.now();
      if (left <= 0) {
        this.close(CloseCode.TOKEN_EXPIRED, "token expired");
        return;
      }
      this.#expTimer = setTimeout(arm, Math.min(left, _MAX_TIMER));
    };
    arm();
  }

  // ---- capabilities ----

  /** The current capabilities (none before authentication). */
  get capabilities(): UserCapabilities | undefined {
    return this.#caps;
  }

  #capUpdate(doc: Capabilities, revoked: string[]): string {
    return JSON.stringify({
      v: 1,
      op: "cap_update",
      data: { capabilities: doc, session: this.id, user: this.user, revoked },
    });
  }

  #onCapabilities(caps: UserCapabilities): void {
    if (this.#state !== "open") {
      this.#caps = caps;
      return;
    }
    this.#caps = caps;
    const revoked: string[] = [];
    for (const sub of this.#subs.values()) {
      if (!sub.allowed(caps.set)) {
        sub.close();
        this.#subs.delete(sub.sid);
        if (this.#unconfirmed.has(sub.sid)) this.#unconfirmed.set(sub.sid, "revoked");
        else revoked.push(sub.sid);
      }
    }
    this.send(this.#capUpdate(caps.doc, revoked));
    this.context.emit(this, "cap_update", { revision: caps.revision, revoked });
    if (revoked.length > 0) this.context.emit(this, "revoke", { revoked });
  }

  // ---- ops ----

  #newSid(): string {
    return (this.#nextSid++).toString(36);
  }

  #requireSubSlot(): void {
    if (this.#subs.size >= this.context.limits.maxSubs) {
      this.context.emit(this, "limit", { limit: "subscriptions" });
      throw new GatewayError(
        "limit_exceeded",
        `at most ${this.context.limits.maxSubs} subscriptions per connection`,
      );
    }
  }

  #deny(env: ClientEnvelope, reason: string): never {
    this.context.emit(this, "denied", { op: env.op, target: env.target, code: "forbidden" });
    this.context.log.debug("denied", { session: this.id, op: env.op, reason });
    throw new GatewayError("forbidden", "not allowed");
  }

  #opSub(env: ClientEnvelope, ctx: ErrorContext): void {
    const subject = _requireTarget(env);
    const err = validateSubject(subject);
    if (err) throw new GatewayError("invalid_subject", `invalid subject: ${err}`);
    let queue: string | undefined;
    if (env.data !== undefined) {
      if (!isObject(env.data)) throw new GatewayError("bad_request", "data must be an object");
      if (env.data.queue !== undefined) {
        if (typeof env.data.queue !== "string") {
          throw new GatewayError("bad_request", "queue must be a string");
        }
        const qErr = validateQueueName(env.data.queue);
        if (qErr) throw new GatewayError("invalid_subject", `invalid queue name: ${qErr}`);
        queue = env.data.queue;
      }
    }
    this.#requireSubSlot();
    const decision = checkSubscribe(this.#caps!.set, subject);
    if (!decision.allowed) this.#deny(env, decision.reason);
    const sid = this.#newSid();
    const sub = new _CoreSubscription(this, sid, subject, queue);
    this.#subs.set(sid, sub);
    this.#unconfirmed.set(sid, undefined);
    this.context.hub.add(subject, queue, sub).then(() => {
      if (this.#state !== "open") return;
      if (this.#answerVanished(sid, ctx)) return;
      sub.active = true;
      this.#ack(env, { id: sid });
      this.context.emit(this, "sub", { sid, kind: "core", target: subject });
    }).catch((e) => {
      if (this.#subs.get(sid) === sub) {
        this.#subs.delete(sid);
        sub.close();
      }
      this.#unconfirmed.delete(sid);
      this.#fail(e, ctx);
    });
  }

  /**
   * For an op whose subscription ended before it was confirmed (revoked, unsubscribed, failed):
   * answers it with an error, once, and returns true. False when it is still live.
   */
  #answerVanished(sid: string, ctx: ErrorContext): boolean {
    const why = this.#unconfirmed.get(sid);
    this.#unconfirmed.delete(sid);
    if (why === undefined) return false;
    if (why === "revoked") {
      this.context.emit(this, "denied", { op: ctx.op, target: ctx.target, code: "forbidden" });
      this.#fail(new GatewayError("forbidden", "not allowed"), ctx);
    } else if (why === "unsubscribed") {
      this.#fail(
        new GatewayError("not_found", "subscription was removed before it was confirmed"),
        ctx,
      );
    }
    return true;
  }

  #opStreamSub(env: ClientEnvelope, ctx: ErrorContext): void {
    const factory = env.op === "kv_sub" ? this.context.kvSubscribe : this.context.jsSubscribe;
    if (!factory) throw new GatewayError("unavailable", `${env.op} is not available`);
    this.#requireSubSlot();
    const sid = this.#newSid();
    // Reserve the slot so concurrent subscribes cannot exceed the limit.
    const placeholder: SessionSubscription = {
      sid,
      kind: env.op === "kv_sub" ? "kv" : "js",
      target: env.target ?? "",
      allowed: () => true,
      close: () => {},
    };
    this.#subs.set(sid, placeholder);
    this.#unconfirmed.set(sid, undefined);
    const req: SubscriptionRequest = {
      env,
      sid,
      caps: this.#caps!.set,
      user: this.user!,
      send: (e) => this.send(e),
      pendingBytes: () => this.#out.pendingBytes,
      drained: (below) => this.#out.drained(below),
      fail: (e) => {
        const sub = this.#subs.get(sid);
        if (sub) {
          this.#subs.delete(sid);
          sub.close();
        }
        // Before its reply the op itself is answered (with its inbox); later errors carry none.
        if (this.#unconfirmed.has(sid)) {
          if (this.#unconfirmed.get(sid) !== undefined) return; // answered as it vanished
          this.#unconfirmed.set(sid, "failed");
          this.#fail(e, ctx);
        } else this.#fail(e, { op: env.op, target: env.target });
      },
    };
    factory(req).then((sub) => {
      if (this.#state !== "open" || this.#subs.get(sid) !== placeholder) {
        sub.close();
        this.#answerVanished(sid, ctx);
        return;
      }
      this.#unconfirmed.delete(sid);
      // Capabilities may have shrunk while the subscription was being set up.
      if (!sub.allowed(this.#caps!.set)) {
        sub.close();
        this.#subs.delete(sid);
        this.#fail(new GatewayError("forbidden", "not allowed"), ctx);
        return;
      }
      this.#subs.set(sid, sub);
      this.#ack(env, { id: sid });
      this.context.emit(this, "sub", { sid, kind: sub.kind, target: sub.target });
      sub.start?.();
    }, (err) => {
      if (this.#subs.get(sid) === placeholder) this.#subs.delete(sid);
      if (this.#state !== "open" || this.#answerVanished(sid, ctx)) return;
      const gerr = toGatewayError(err);
      if (gerr.code === "forbidden") {
        this.context.emit(this, "denied", { op: env.op, target: env.target, code: "forbidden" });
      }
      if (gerr.code === "internal") this.context.log.error("subscribe failed", { error: err });
      this.#fail(gerr, ctx);
    });
  }

  #opUnsub(env: ClientEnvelope): void {
    if (!isObject(env.data) || typeof env.data.id !== "string") {
      throw new GatewayError("bad_request", "unsub data must be { id: string }");
    }
    const id = env.data.id;
    const sub = this.#subs.get(id);
    if (!sub) throw new GatewayError("not_found", "no such subscription");
    this.#subs.delete(id);
    if (this.#unconfirmed.has(id)) this.#unconfirmed.set(id, "unsubscribed");
    sub.close();
    this.#ack(env, { id });
    this.context.emit(this, "unsub", { sid: id, kind: sub.kind, target: sub.target });
  }

  #opAck(env: ClientEnvelope): void {
    if (!isObject(env.data) || typeof env.data.id !== "string") {
      throw new GatewayError("bad_request", "ack data must be { id: string, seq: number }");
    }
    const seq = env.data.seq;
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
      throw new GatewayError("bad_request", "seq must be a non-negative integer");
    }
    const sub = this.#subs.get(env.data.id);
    if (!sub || sub.kind !== "js") throw new GatewayError("not_found", "no such subscription");
    if (!sub.ack) throw new GatewayError("bad_request", "subscription does not take acks");
    sub.ack(seq);
    this.#ack(env, {});
  }

  #literalTarget(env: ClientEnvelope): string {
    const subject = _requireTarget(env);
    const err = validateSubject(subject, { wildcards: false });
    if (err) throw new GatewayError("invalid_subject", `invalid subject: ${err}`);
    if (!isLiteralSubject(subject)) {
      throw new GatewayError("invalid_subject", "subject must be literal");
    }
    return subject;
  }

  #opPub(env: ClientEnvelope): void {
    const subject = this.#literalTarget(env);
    const decision = checkPublish(this.#caps!.set, subject);
    if (!decision.allowed) this.#deny(env, decision.reason);
    const payload = encodePayload(env.data, env.encoding);
    this.context.nc.publish(subject, payload, { headers: _toNatsHeaders(env.headers) });
    this.#ack(env, {});
  }

  #opCmd(env: ClientEnvelope, ctx: ErrorContext): void {
    const subject = this.#literalTarget(env);
    const decision = checkCommand(this.#caps!.set, subject);
    if (!decision.allowed) this.#deny(env, decision.reason);
    const limits = this.context.limits;
    if (this.#pendingCmds >= limits.maxPendingCmds) {
      this.context.emit(this, "limit", { limit: "pending_cmds" });
      throw new GatewayError(
        "limit_exceeded",
        `at most ${limits.maxPendingCmds} pending commands per connection`,
      );
    }
    const payload = encodePayload(env.data, env.encoding);
    const timeout = Math.min(env.timeout_ms ?? 5000, limits.maxCmdTimeoutMs);
    if (timeout <= 0) throw new GatewayError("bad_request", "timeout_ms must be positive");
    this.#pendingCmds++;
    const started = performance.now();
    const observe = (outcome: string) =>
      this.context.observeCmd?.((performance.now() - started) / 1000, outcome);
    this.context.nc.request(subject, payload, {
      timeout,
      headers: _toNatsHeaders(env.headers),
    }).then((msg) => {
      observe("ok");
      if (this.#state !== "open" || env.inbox === undefined) return;
      const p = renderPayload(msg.data);
      let out = `{"v":1,"op":"reply","inbox":${JSON.stringify(env.inbox)},"target":${
        JSON.stringify(subject)
      },"data":${p.json}`;
      if (p.encoding) out += `,"encoding":"${p.encoding}"`;
      const h = headersJson(msg);
      if (h) out += `,"headers":${h}`;
      this.send(out + "}");
    }, (err) => {
      observe(toGatewayError(err).code);
      if (this.#state !== "open") return;
      this.#fail(err, ctx);
    }).catch((err) => {
      this.context.log.error("cmd reply failed", { session: this.id, error: err });
    }).finally(() => {
      this.#pendingCmds--;
    });
  }

  #ack(env: ClientEnvelope, data: unknown): void {
    if (env.inbox !== undefined) this.send(_reply(env, data));
  }

  #fail(err: unknown, ctx: ErrorContext): void {
    const gerr = toGatewayError(err);
    if (gerr.code === "internal") {
      this.context.log.error("op failed", { session: this.id, op: ctx.op, error: err });
    }
    if (this.#state === "closed") return;
    this.send(errorEnvelope(gerr, ctx));
    if (gerr.close !== undefined) this.close(gerr.close, gerr.message);
  }

  #onBackpressure(reason: CutReason): void {
    if (this.#state === "closed") return;
    const pending = this.#out.pendingBytes;
    this.#out.close();
    this.context.onCut?.(reason);
    this.context.emit(this, "backpressure", { pending, reason });
    this.context.log.info("slow client cut off", {
      session: this.id,
      user: this.user,
      remote: this.meta.remote,
      reason,
      pending,
    });
    // What was queued for this client is dropped (it is disconnected, so nothing is lost
    // silently); the error frame and the close frame still go, best effort.
    this.#closeWith(CloseCode.BACKPRESSURE, "backpressure", {}, () => {
      this.#ws.cut(
        CloseCode.BACKPRESSURE,
        "backpressure",
        errorEnvelope(new GatewayError("backpressure", "client too slow"), {}),
      );
    });
  }

  /**
   * Closes the session and its socket, releasing subscriptions, timers and listeners at once;
   * `fields` go into the disconnect event. The user's connection slot is given back when the
   * socket is gone ({@link Session.socketClosed}), bounded by the transport's close timeout.
   * Idempotent.
   */
  close(code: number = 1000, reason = "", fields?: Record<string, unknown>): void {
    this.#closeWith(code, reason, fields ?? {}, () => {
      this.#out.flush();
      this.#out.close();
      this.#ws.close(code, reason.slice(0, 120));
    });
  }

  #closeWith(
    code: number,
    reason: string,
    fields: Record<string, unknown>,
    closeSocket: () => void,
  ): void {
    if (this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    this.#state = "closed";
    this.#release();
    try {
      closeSocket();
    } catch {
      // already closed
    }
    if (wasOpen || this.user !== undefined) {
      this.context.emit(this, "disconnect", { code, reason, ...fields });
    }
  }

  #socketGone = false;

  /**
   * Called exactly once when the TCP socket is gone (closed by either side, or torn down after
   * the close timeout). Gives the user slot back and leaves the gateway.
   */
  socketClosed(code: number, reason: string): void {
    if (this.#socketGone) return;
    this.#socketGone = true;
    if (this.#state !== "closed") {
      const wasOpen = this.#state === "open";
      this.#state = "closed";
      this.#out.close();
      this.#release();
      if (wasOpen || this.user !== undefined) {
        this.context.emit(this, "disconnect", { code, reason, by: "client" });
      }
    }
    if (this.#holdsSlot) {
      this.#holdsSlot = false;
      this.context.releaseUserSlot(this.user!);
    }
    this.context.onClosed(this);
  }

  #release(): void {
    if (this.#authTimer !== undefined) clearTimeout(this.#authTimer);
    if (this.#expTimer !== undefined) clearTimeout(this.#expTimer);
    this.#authTimer = this.#expTimer = undefined;
    for (const sub of this.#subs.values()) sub.close();
    this.#subs.clear();
    this.#backlog = [];
    if (this.user !== undefined) this.context.store.release(this.user, this.#capListener);
  }
}

function _requireTarget(env: ClientEnvelope): string {
  if (typeof env.target !== "string" || env.target === "") {
    throw new GatewayError("bad_request", "target is required");
  }
  return env.target;
}

function _reply(env: ClientEnvelope, data: unknown): string {
  const out: Record<string, unknown> = { v: 1, op: "reply", inbox: env.inbox };
  if (env.target !== undefined) out.target = env.target;
  out.data = data;
  return JSON.stringify(out);
}

function _pong(env: ClientEnvelope): string {
  const out: Record<string, unknown> = { v: 1, op: "pong" };
  if (env.inbox !== undefined) out.inbox = env.inbox;
  if (env.data !== undefined) out.data = env.data;
  return JSON.stringify(out);
}

function _toNatsHeaders(h: HeaderMap | undefined): MsgHdrs | undefined {
  if (!h) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) {
    if (Array.isArray(v)) { for (const x of v) out.append(k, x); }
    else out.append(k, v);
  }
  return out;
}

function _byteLength(s: string, max: number): number {
  // JSON frames are mostly ASCII: only measure exactly when the answer could matter.
  if (s.length * 3 <= max) return s.length;
  if (s.length > max) return s.length;
  return new TextEncoder().encode(s).length;
}
