/** The subscription ops: `sub` (core), `kv_sub` and `js_sub` (plug-ins), `unsub` and `ack`.
 * Every subscribe op gets exactly one answer, also when its subscription ends before it.
 * @module */

import { checkSubscribe } from "../auth/capabilities.ts";
import { type ClientEnvelope, isObject } from "../protocol/envelope.ts";
import {
  BadRequestError,
  type ErrorContext,
  ForbiddenError,
  InvalidSubjectError,
  NotFoundError,
  toGatewayError,
  UnavailableError,
} from "../protocol/errors.ts";
import { validateQueueName, validateSubject } from "../protocol/subject.ts";
import { CoreSubscription } from "./core_subscription.ts";
import { deny, type OpScope, requireSubSlot, requireTarget } from "./op_scope.ts";
import type { SessionSubscription, SubscriptionRequest } from "./types.ts";

/** `sub`: a core subscription on the gateway's shared hub, answered once NATS has it. */
export function opSub(s: OpScope, env: ClientEnvelope, ctx: ErrorContext): void {
  const subject = requireTarget(env);
  const err = validateSubject(subject);
  if (err) throw new InvalidSubjectError(`invalid subject: ${err}`);
  let queue: string | undefined;
  if (env.data !== undefined) {
    if (!isObject(env.data)) throw new BadRequestError("data must be an object");
    if (env.data.queue !== undefined) {
      if (typeof env.data.queue !== "string") {
        throw new BadRequestError("queue must be a string");
      }
      const qErr = validateQueueName(env.data.queue);
      if (qErr) throw new InvalidSubjectError(`invalid queue name: ${qErr}`);
      queue = env.data.queue;
    }
  }
  requireSubSlot(s);
  const decision = checkSubscribe(s.caps, subject);
  if (!decision.allowed) deny(s, env, decision.reason);
  const subs = s.subs;
  const sid = subs.newSid();
  const sub = new CoreSubscription(s.coreHost, s.hub, sid, subject, queue);
  subs.addUnconfirmed(sub);
  s.hub.add(subject, queue, sub).then(() => {
    if (s.state !== "open") return;
    if (answerVanished(s, sid, ctx)) return;
    sub.active = true;
    s.reply(env, { id: sid });
    s.emit("sub", { sid, kind: "core", target: subject });
  }).catch((e) => {
    if (subs.get(sid) === sub) {
      subs.delete(sid);
      sub.close();
    }
    subs.confirm(sid);
    s.fail(e, ctx);
  });
}

/**
 * For an op whose subscription ended before it was confirmed (revoked, unsubscribed, failed):
 * answers it with an error, once, and returns true. False when it is still live.
 */
function answerVanished(s: OpScope, sid: string, ctx: ErrorContext): boolean {
  const why = s.subs.confirm(sid);
  if (why === undefined) return false;
  if (why === "revoked") {
    s.emit("denied", { op: ctx.op, target: ctx.target, code: "forbidden" });
    s.fail(new ForbiddenError("not allowed"), ctx);
  } else if (why === "unsubscribed") {
    s.fail(new NotFoundError("subscription was removed before it was confirmed"), ctx);
  }
  return true;
}

/** `kv_sub` and `js_sub`: a subscription made by the plug-in factory, started once answered. */
export function opStreamSub(s: OpScope, env: ClientEnvelope, ctx: ErrorContext): void {
  const factory = env.op === "kv_sub" ? s.kvSubscribe : s.jsSubscribe;
  if (!factory) throw new UnavailableError(`${env.op} is not available`);
  requireSubSlot(s);
  const subs = s.subs;
  const sid = subs.newSid();
  // Reserve the slot so concurrent subscribes cannot exceed the limit.
  const placeholder: SessionSubscription = {
    sid,
    kind: env.op === "kv_sub" ? "kv" : "js",
    target: env.target ?? "",
    allowed: () => true,
    close: () => {},
  };
  subs.addUnconfirmed(placeholder);
  const req: SubscriptionRequest = {
    env,
    sid,
    caps: s.caps,
    user: s.user,
    send: (e) => s.send(e),
    pendingBytes: () => s.pendingBytes,
    drained: (below) => s.drained(below),
    fail: (e) => {
      subs.delete(sid)?.close();
      // Before its reply the op itself is answered (with its inbox); later errors carry none.
      if (subs.unconfirmed(sid)) {
        if (subs.vanished(sid) !== undefined) return; // answered as it vanished
        subs.markVanished(sid, "failed");
        s.fail(e, ctx);
      } else s.fail(e, { op: env.op, target: env.target });
    },
  };
  factory(req).then((sub) => {
    if (s.state !== "open" || subs.get(sid) !== placeholder) {
      sub.close();
      answerVanished(s, sid, ctx);
      return;
    }
    subs.confirm(sid);
    // Capabilities may have shrunk while the subscription was being set up.
    if (!sub.allowed(s.caps)) {
      sub.close();
      subs.delete(sid);
      s.fail(new ForbiddenError("not allowed"), ctx);
      return;
    }
    subs.set(sub);
    s.reply(env, { id: sid });
    s.emit("sub", { sid, kind: sub.kind, target: sub.target });
    sub.start?.();
  }, (err) => {
    if (subs.get(sid) === placeholder) subs.delete(sid);
    if (s.state !== "open" || answerVanished(s, sid, ctx)) return;
    const gerr = toGatewayError(err);
    if (gerr.code === "forbidden") {
      s.emit("denied", { op: env.op, target: env.target, code: "forbidden" });
    }
    if (gerr.code === "internal") s.log.error("subscribe failed", { error: err });
    s.fail(gerr, ctx);
  });
}

/** `unsub`: ends a subscription by id (a pending one is answered `not_found` by its op). */
export function opUnsub(s: OpScope, env: ClientEnvelope): void {
  if (!isObject(env.data) || typeof env.data.id !== "string") {
    throw new BadRequestError("unsub data must be { id: string }");
  }
  const id = env.data.id;
  const sub = s.subs.delete(id);
  if (!sub) throw new NotFoundError("no such subscription");
  s.subs.markVanished(id, "unsubscribed");
  sub.close();
  s.reply(env, { id });
  s.emit("unsub", { sid: id, kind: sub.kind, target: sub.target });
}

/** `ack`: acknowledges a JetStream message of an ack subscription. */
export function opAck(s: OpScope, env: ClientEnvelope): void {
  if (!isObject(env.data) || typeof env.data.id !== "string") {
    throw new BadRequestError("ack data must be { id: string, seq: number }");
  }
  const seq = env.data.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw new BadRequestError("seq must be a non-negative integer");
  }
  const sub = s.subs.get(env.data.id);
  if (!sub || sub.kind !== "js") throw new NotFoundError("no such subscription");
  if (!sub.ack) throw new BadRequestError("subscription does not take acks");
  sub.ack(seq);
  s.reply(env, {});
}
