/** The op table: one handler per client op (`Record<ClientOp, …>`, so the compiler refuses an op
 * of `CLIENT_OPS` (src/protocol/envelope.ts) without a handler), and the handlers of `auth` (refresh), `ping`, `pub`
 * and `cmd`. The subscription ops live in subscribe_ops.ts.
 * @module */

import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { authFailureReason } from "../auth/auth_failure.ts";
import { checkCommand, checkPublish } from "../auth/capabilities.ts";
import {
  type ClientEnvelope,
  type ClientOp,
  type HeaderMap,
  isObject,
} from "../protocol/envelope.ts";
import {
  BadRequestError,
  CloseCode,
  type ErrorContext,
  ForbiddenError,
  LimitError,
  toGatewayError,
} from "../protocol/errors.ts";
import { cmdReplyFrame, pongFrame } from "../protocol/frames.ts";
import { headersJson } from "../protocol/headers.ts";
import { encodePayload, renderPayload } from "../protocol/payload.ts";
import { deny, literalTarget, type OpScope } from "./op_scope.ts";
import { opAck, opStreamSub, opSub, opUnsub } from "./subscribe_ops.ts";

/** Serves one op of an authenticated session (or `auth` itself); throws a GatewayError to refuse. */
export type OpHandler = (s: OpScope, env: ClientEnvelope, ctx: ErrorContext) => void;

/** Every op's handler, by op. */
export const OP_HANDLERS: Readonly<Record<ClientOp, OpHandler>> = Object.freeze({
  auth: opAuth,
  ping: (s, env) => void s.send(pongFrame(env.inbox, env.data)),
  sub: opSub,
  unsub: opUnsub,
  pub: opPub,
  cmd: opCmd,
  kv_sub: opStreamSub,
  js_sub: opStreamSub,
  ack: opAck,
});

/** `auth`: the first one authenticates (the session's state machine); later ones refresh. */
function opAuth(s: OpScope, env: ClientEnvelope, ctx: ErrorContext): void {
  if (!isObject(env.data) || typeof env.data.token !== "string") {
    throw new BadRequestError("auth data must be { token: string }");
  }
  const token = env.data.token;
  if (s.state === "unauthenticated") {
    s.authenticate(token, env, ctx);
    return;
  }
  // Refresh of an open session.
  s.verify(token).then((v) => {
    if (s.state !== "open") return;
    if (v.user !== s.user) {
      s.authFailed("wrong_user", "token is for a different user");
      s.fail(new ForbiddenError("token is for a different user"), ctx);
      return;
    }
    // A refresh never removes an expiry: a token without exp (--allow-no-exp) keeps the current
    // one; a token with exp sets it, earlier or later.
    const exp = v.exp ?? s.exp;
    s.setExpiry(exp);
    s.refreshClaims(v.claims);
    s.emit("auth_refresh", { exp });
    s.reply(env, { user: v.user, exp });
  }, (err) => {
    // An invalid refresh token ends the session: the client presented bad credentials.
    s.authFailed(authFailureReason(err), (err as Error).message);
    s.fail(err, ctx);
    s.close(CloseCode.UNAUTHORIZED, "unauthorized");
  });
}

/** `pub`: publishes to a literal subject the user may publish to. */
function opPub(s: OpScope, env: ClientEnvelope): void {
  const subject = literalTarget(env);
  const decision = checkPublish(s.caps, subject);
  if (!decision.allowed) deny(s, env, decision.reason);
  const payload = encodePayload(env.data, env.encoding);
  s.nc.publish(subject, payload, { headers: _toNatsHeaders(env.headers) });
  s.reply(env, {});
}

/** `cmd`: a NATS request, answered by its reply (or `timeout`, `no_responders`). */
function opCmd(s: OpScope, env: ClientEnvelope, ctx: ErrorContext): void {
  const subject = literalTarget(env);
  const decision = checkCommand(s.caps, subject);
  if (!decision.allowed) deny(s, env, decision.reason);
  const limits = s.limits;
  if (s.pendingCmds >= limits.maxPendingCmds) {
    s.emit("limit", { limit: "pending_cmds" });
    throw new LimitError(`at most ${limits.maxPendingCmds} pending commands per connection`);
  }
  const payload = encodePayload(env.data, env.encoding);
  const timeout = Math.min(env.timeout_ms ?? 5000, limits.maxCmdTimeoutMs);
  if (timeout <= 0) throw new BadRequestError("timeout_ms must be positive");
  s.pendingCmds++;
  const started = performance.now();
  const observe = (outcome: string) => s.observeCmd((performance.now() - started) / 1000, outcome);
  s.nc.request(subject, payload, {
    timeout,
    headers: _toNatsHeaders(env.headers),
  }).then((msg) => {
    observe("ok");
    if (s.state !== "open" || env.inbox === undefined) return;
    s.send(cmdReplyFrame(env.inbox, subject, renderPayload(msg.data), headersJson(msg)));
  }, (err) => {
    observe(toGatewayError(err).code);
    if (s.state !== "open") return;
    s.fail(err, ctx);
  }).catch((err) => {
    s.log.error("cmd reply failed", { session: s.id, error: err });
  }).finally(() => {
    s.pendingCmds--;
  });
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
