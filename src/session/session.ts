/** One client connection: the session state machine (authentication, expiry, close), inbound
 * frames through the op table (ops.ts), and live capabilities (re-evaluated on every change).
 * Every resource a session takes (subscriptions, timers, pending requests) is released by close().
 * @module */

import type { NatsConnection } from "@nats-io/transport-node";
import type { VerifiedToken } from "../auth/verify.ts";
import type { CapabilityStore, CapabilityView } from "../auth/capability_store.ts";
import type { EffectiveCapabilities } from "../auth/effective.ts";
import {
  type ClientEnvelope,
  isFailure,
  parseFrameLimited,
  RATE_LIMITED,
} from "../protocol/envelope.ts";
import {
  BackpressureError,
  CloseCode,
  type ErrorContext,
  type ErrorInfo,
  errorInfo,
  LimitError,
  toGatewayError,
  UnauthorizedError,
  UnavailableError,
} from "../protocol/errors.ts";
import { capUpdateHead, capUpdateTail, errorFrame, replyFrame } from "../protocol/frames.ts";
import type { Logger } from "../log/log.ts";
import type {
  SessionEvent,
  SessionLimits,
  SessionMeta,
  SessionSocket,
  SubscriptionFactory,
} from "./types.ts";
import { OutboundQueue, type PendingBudget } from "./outbound.ts";
import type { CutReason } from "./backpressure.ts";
import { TokenBucket } from "./rate_limit.ts";
import type { SubjectHub } from "./subject_hub.ts";
import type { OpScope, SessionState } from "./op_scope.ts";
import { OP_HANDLERS } from "./ops.ts";
import { SessionSubscriptions } from "./subscriptions.ts";
import { type AuthFailureReason, authFailureReason } from "../auth/auth_failure.ts";

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
  /** Called for every failed authentication or refresh (metrics by reason, log). */
  onAuthFailure?(session: Session, reason: AuthFailureReason, message: string): void;
}

/** Largest inbound message before authentication: an `auth` frame with a token of 8 KiB fits. */
export const UNAUTHENTICATED_MAX_MESSAGE_BYTES = 16 * 1024;

const _MAX_TIMER = 2 ** 31 - 1;
// Inbound refusals that can repeat on every frame: shared values, no Error (and no stack) each.
/** Error frames of shared failure values without context, rendered once. */
const _BARE = new WeakMap<ErrorInfo, string>();
const _BINARY_FRAME = errorInfo("bad_request", "binary frames are not supported");
let _sessionCounter = 0;
/** Error codes logged at info when an op fails with them (`internal` is logged at error). */
const _LOGGED_CODES: ReadonlySet<string> = new Set(["not_found", "timeout", "no_responders"]);

/** A client session on one WebSocket. */
/** The serialized head of a `cap_update` per effective capabilities (shared between sessions). */
const _capsJson = new WeakMap<EffectiveCapabilities, string>();

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
  /** The close code: the one the gateway sent, or the client's when it closed first. */
  closeCode?: number;
  /** The close reason that went with {@link Session.closeCode}. */
  closeReason?: string;

  #ws: SessionSocket;
  #state: SessionState = "unauthenticated";
  #out: OutboundQueue;
  #bucket: TokenBucket;
  #subs = new SessionSubscriptions();
  #view: CapabilityView | undefined;
  #caps: EffectiveCapabilities | undefined;
  #claims: Readonly<Record<string, unknown>> | undefined;
  #exp: number | null = null;
  #authTimer?: ReturnType<typeof setTimeout>;
  #expTimer?: ReturnType<typeof setTimeout>;
  #pendingCmds = 0;
  #backlog: Array<ClientEnvelope> = [];
  #capListener = (view: CapabilityView) => this.#onCapabilities(view);
  #holdsSlot = false;
  #scope: OpScope;

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
    this.#scope = this.#makeScope();
  }

  /** What the op handlers see of this session. */
  #makeScope(): OpScope {
    // deno-lint-ignore no-this-alias
    const self = this;
    const ctx = this.context;
    return {
      id: this.id,
      get state() {
        return self.#state;
      },
      get user() {
        return self.user!;
      },
      get caps() {
        return self.#caps!.set;
      },
      get exp() {
        return self.#exp;
      },
      nc: ctx.nc,
      hub: ctx.hub,
      coreHost: this,
      limits: ctx.limits,
      log: ctx.log,
      subs: this.#subs,
      kvSubscribe: ctx.kvSubscribe,
      jsSubscribe: ctx.jsSubscribe,
      get pendingCmds() {
        return self.#pendingCmds;
      },
      set pendingCmds(n: number) {
        self.#pendingCmds = n;
      },
      get pendingBytes() {
        return self.#out.pendingBytes;
      },
      drained: (below) => this.#out.drained(below),
      verify: (token) => ctx.verify(token),
      authenticate: (token, env, ectx) => this.#beginAuth(token, env, ectx),
      setExpiry: (exp) => this.#setExpiry(exp),
      refreshClaims: (claims) => this.#refreshClaims(claims),
      send: (e) => this.send(e),
      reply: (env, data) => this.#ack(env, data),
      fail: (err, ectx) => this.#fail(err, ectx),
      close: (code, reason) => this.close(code, reason),
      emit: (event, fields) => ctx.emit(this, event, fields),
      authFailed: (reason, message) => ctx.onAuthFailure?.(this, reason, message),
      observeCmd: (seconds, outcome) => ctx.observeCmd?.(seconds, outcome),
    };
  }

  /** Whether the session has been closed. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** The state, read fresh (callbacks may have changed it since the last check). */
  get #now(): SessionState {
    return this.#state;
  }

  /** Counts live subscriptions by kind into `into` (metrics). */
  countSubscriptions(into: Record<string, number>): void {
    this.#subs.countByKind(into);
  }

  /** Current subscriptions (for admin listings). */
  subscriptions(): Array<{ sid: string; kind: string; target: string }> {
    return this.#subs.list();
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
        this.context.onAuthFailure?.(this, "missing_token", "authentication timed out");
        this.#fail(new UnauthorizedError("authentication timed out"), { op: "auth" });
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
      text = errorFrame(err, ctx);
      if (bare && Object.isFrozen(err)) _BARE.set(err, text);
    }
    this.send(text);
  }

  #dispatch(env: ClientEnvelope): void {
    const ctx: ErrorContext = { op: env.op, target: env.target, inbox: env.inbox };
    if (this.#state === "unauthenticated") {
      if (env.op !== "auth") {
        this.context.onAuthFailure?.(this, "missing_token", "the first frame must be auth");
        this.#fail(new UnauthorizedError("the first frame must be auth"), ctx);
        this.close(CloseCode.UNAUTHORIZED, "unauthorized");
        return;
      }
    }
    try {
      OP_HANDLERS[env.op](this.#scope, env, ctx);
    } catch (err) {
      this.#fail(err, ctx);
    }
  }

  // ---- auth ----

  /** The first `auth`: verifies its token, holding later ops until the session is open. */
  #beginAuth(token: string, env: ClientEnvelope, ctx: ErrorContext): void {
    if (this.#authTimer !== undefined) clearTimeout(this.#authTimer);
    this.#state = "authenticating";
    this.context.verify(token).then(
      (v) => this.#authenticate(v, env),
      (err) => {
        this.context.onAuthFailure?.(this, authFailureReason(err), (err as Error).message);
        this.#fail(err, ctx);
        this.close(CloseCode.UNAUTHORIZED, "unauthorized");
      },
    );
  }

  #authenticate(v: VerifiedToken, env: ClientEnvelope | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "authenticating";
    if (!this.context.acquireUserSlot(v.user)) {
      this.context.emit(this, "limit", { limit: "connections_per_user", user: v.user });
      this.#fail(new LimitError("too many connections for this user"), {
        op: "auth",
        inbox: env?.inbox,
      });
      this.close(CloseCode.RATE_LIMIT, "too many connections");
      return;
    }
    this.#holdsSlot = true;
    this.user = v.user;
    this.#claims = v.claims;
    const acquired = this.context.store.acquire(v.user, this.#capListener, { claims: v.claims });
    acquired.then((view) => {
      if (this.#state === "closed") {
        this.context.store.release(v.user, this.#capListener);
        return;
      }
      const caps = this.#evaluate(view);
      this.#state = "open";
      this.#ws.maxMessageBytes = this.context.limits.maxFrameBytes;
      this.#setExpiry(v.exp);
      if (env?.inbox !== undefined) {
        this.send(replyFrame(env.inbox, env.target, { user: v.user, exp: v.exp }));
      }
      this.send(this.#capUpdate(caps, []));
      this.context.emit(this, "connect", {});
      const backlog = this.#backlog;
      this.#backlog = [];
      for (const e of backlog) {
        if (this.#now !== "open") break;
        this.#dispatch(e);
      }
    }, (err) => {
      this.context.log.error("cannot read capabilities", { user: v.user, error: err });
      const why = err instanceof Error ? err.message : String(err);
      this.context.onAuthFailure?.(this, "capabilities_unavailable", why);
      this.#fail(new UnavailableError("capabilities cannot be read now"), {
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

  /** The current effective capabilities (none before authentication). */
  get capabilities(): EffectiveCapabilities | undefined {
    return this.#caps;
  }

  /** This session's effective capabilities under `view` (docs/protocol.md section 5). */
  #evaluate(view: CapabilityView): EffectiveCapabilities {
    this.#view = view;
    this.#caps = this.context.store.effective(view, this.user!, this.id, this.#claims);
    return this.#caps;
  }

  #capUpdate(caps: EffectiveCapabilities, revoked: string[]): string {
    // The capabilities part is serialized once per (shared) result, not once per session.
    let head = _capsJson.get(caps);
    if (head === undefined) {
      head = capUpdateHead(caps.capabilities, caps.roles);
      _capsJson.set(caps, head);
    }
    return head + capUpdateTail(this.id, this.user, revoked);
  }

  /** The user document or a held role changed: re-check every subscription, tell the client. */
  #onCapabilities(view: CapabilityView, onlyIfChanged = false): void {
    const before = this.#caps;
    const caps = this.#evaluate(view);
    if (this.#state !== "open") return;
    if (
      onlyIfChanged && before &&
      JSON.stringify([before.capabilities, before.roles]) ===
        JSON.stringify([caps.capabilities, caps.roles])
    ) return;
    const revoked = this.#subs.revoke(caps.set);
    this.send(this.#capUpdate(caps, revoked));
    this.context.emit(this, "cap_update", { revision: view.revision, revoked });
    if (revoked.length > 0) this.context.emit(this, "revoke", { revoked });
  }

  /** A refreshed token's claims: they may change held roles and expanded templates. */
  #refreshClaims(claims: Readonly<Record<string, unknown>>): void {
    if (this.user === undefined) return;
    this.#claims = claims;
    this.context.store.updateClaims(this.user, this.#capListener, claims).then((view) => {
      if (view && this.#state === "open") this.#onCapabilities(view, true);
    }, (err) => {
      // Roles the token no longer names are dropped all the same; new ones grant nothing yet.
      this.context.log.warn("cannot read the roles of a refreshed token", { error: err });
      if (this.#view && this.#state === "open") this.#onCapabilities(this.#view, true);
    });
  }

  #ack(env: ClientEnvelope, data: unknown): void {
    if (env.inbox !== undefined) this.send(replyFrame(env.inbox, env.target, data));
  }

  #fail(err: unknown, ctx: ErrorContext): void {
    const gerr = toGatewayError(err);
    if (gerr.code === "internal") {
      this.context.log.error("op failed", { session: this.id, op: ctx.op, error: err });
    } else if (_LOGGED_CODES.has(gerr.code)) {
      // What an operator looks for when a client reports "it does not work": a missing bucket
      // or stream, a service that does not answer. Bounded by the op rate limit.
      this.context.log.info("op failed", {
        session: this.id,
        user: this.user,
        op: ctx.op,
        target: ctx.target,
        code: gerr.code,
        message: gerr.message,
      });
    }
    if (this.#state === "closed") return;
    this.send(errorFrame(gerr, ctx));
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
        errorFrame(new BackpressureError("client too slow"), {}),
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
    this.closeCode = code;
    this.closeReason = reason;
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
      this.closeCode = code;
      this.closeReason = reason;
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
    this.#subs.close();
    this.#backlog = [];
    if (this.user !== undefined) this.context.store.release(this.user, this.#capListener);
  }
}

function _byteLength(s: string, max: number): number {
  // JSON frames are mostly ASCII: only measure exactly when the answer could matter.
  if (s.length * 3 <= max) return s.length;
  if (s.length > max) return s.length;
  return new TextEncoder().encode(s).length;
}
