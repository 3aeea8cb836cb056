/** Every frame the server sends (docs/protocol.md section 2), built in one place: `reply`,
 * `pong`, `error`, `cap_update`, and `msg` for core, KV and JetStream subscriptions.
 * Delivery frames are built as strings from pre-rendered parts (payload text passes through, no
 * parse and re-stringify); a core `msg` is built once per NATS message as a prefix shared by
 * every listener, each splicing in only its sid ({@link coreMsgHead}, {@link coreMsgTail}).
 * @module */

import type { ErrorContext, ErrorInfo } from "./errors.ts";
import type { RenderedPayload } from "./payload.ts";
import type { CapUpdateData } from "./types.ts";

/**
 * A `reply`: the answer to an op that carried an `inbox`; `data` is any JSON value (omitted when
 * undefined).
 *
 * @example
 * ```ts
 * replyFrame("i1", "chat.1", { id: "3" }); // {"v":1,"op":"reply","inbox":"i1","target":"chat.1","data":{"id":"3"}}
 * ```
 */
export function replyFrame(inbox: string, target: string | undefined, data: unknown): string {
  let out = `{"v":1,"op":"reply","inbox":${JSON.stringify(inbox)}`;
  if (target !== undefined) out += `,"target":${JSON.stringify(target)}`;
  if (data !== undefined) out += `,"data":${JSON.stringify(data)}`;
  return out + "}";
}

/**
 * The `reply` to a `cmd`: the NATS reply's payload (as rendered, with its `encoding`) and its
 * headers (JSON text from `headersJson`, if any).
 *
 * @example
 * ```ts
 * cmdReplyFrame("i1", "svc.echo", renderPayload(msg.data), headersJson(msg));
 * ```
 */
export function cmdReplyFrame(
  inbox: string,
  target: string,
  payload: RenderedPayload,
  headersJson: string | undefined,
): string {
  let out = `{"v":1,"op":"reply","inbox":${JSON.stringify(inbox)},"target":${
    JSON.stringify(target)
  },"data":${payload.json}`;
  if (payload.encoding) out += `,"encoding":"${payload.encoding}"`;
  if (headersJson) out += `,"headers":${headersJson}`;
  return out + "}";
}

/**
 * A `pong`, echoing the `ping`'s inbox and data.
 *
 * @example
 * ```ts
 * pongFrame("p1", { n: 1 }); // {"v":1,"op":"pong","inbox":"p1","data":{"n":1}}
 * ```
 */
export function pongFrame(inbox: string | undefined, data: unknown): string {
  let out = `{"v":1,"op":"pong"`;
  if (inbox !== undefined) out += `,"inbox":${JSON.stringify(inbox)}`;
  if (data !== undefined) out += `,"data":${JSON.stringify(data)}`;
  return out + "}";
}

/**
 * An `error`: code, client-safe message and the failed op's context (its inbox echoed).
 *
 * @example
 * ```ts
 * errorFrame(errorInfo("bad_request", "invalid JSON"), {});
 * ```
 */
export function errorFrame(err: ErrorInfo, ctx: ErrorContext): string {
  const context: Record<string, string> = {};
  if (ctx.op !== undefined) context.op = ctx.op;
  if (ctx.target !== undefined) context.target = ctx.target;
  const env: Record<string, unknown> = { v: 1, op: "error" };
  if (ctx.inbox !== undefined) env.inbox = ctx.inbox;
  env.data = { code: err.code, message: err.message, context };
  return JSON.stringify(env);
}

/**
 * A `cap_update`: sent when a session opens and on every change of its capabilities. Built as
 * {@link capUpdateHead} (the capabilities and roles, which sessions sharing a result can share)
 * plus {@link capUpdateTail} (this session's fields).
 *
 * @example
 * ```ts
 * capUpdateFrame({ capabilities: doc, roles: [], session: "s1", user: "alice", revoked: ["3"] });
 * ```
 */
export function capUpdateFrame(data: CapUpdateData): string {
  return capUpdateHead(data.capabilities, data.roles) +
    capUpdateTail(data.session, data.user, data.revoked);
}

/**
 * The start of a `cap_update` frame: the capabilities and (when given) the roles they came from.
 * Serialized once per capability result, however many sessions it is sent to.
 *
 * @example
 * ```ts
 * const head = capUpdateHead(caps.capabilities, caps.roles); // cache it per result
 * session.send(head + capUpdateTail(session.id, session.user, revoked));
 * ```
 */
export function capUpdateHead(capabilities: unknown, roles: string[] | undefined): string {
  let out = `{"v":1,"op":"cap_update","data":{"capabilities":${JSON.stringify(capabilities)}`;
  if (roles !== undefined) out += `,"roles":${JSON.stringify(roles)}`;
  return out;
}

/** The end of a `cap_update` frame after {@link capUpdateHead}: session, user and revoked sids. */
export function capUpdateTail(
  session: string | undefined,
  user: string | undefined,
  revoked: string[],
): string {
  let out = "";
  if (session !== undefined) out += `,"session":${JSON.stringify(session)}`;
  if (user !== undefined) out += `,"user":${JSON.stringify(user)}`;
  return out + `,"revoked":${JSON.stringify(revoked)}}}`;
}

/**
 * The shared part of a core `msg` frame, up to and including `"sid":"`; the whole frame is
 * `head + coreMsgTail(sid)`. Built once per NATS message, whatever the number of listeners.
 *
 * @example
 * ```ts
 * const prefix = coreMsgHead('"chat.1"', renderPayload(msg.data), headersJson(msg), false);
 * session.send(prefix + coreMsgTail("3"));
 * ```
 */
export function coreMsgHead(
  targetJson: string,
  payload: RenderedPayload,
  headersJson: string | undefined,
  hasReply: boolean,
): string {
  let data = `{"payload":${payload.json}`;
  if (payload.encoding) data += `,"encoding":"${payload.encoding}"`;
  if (headersJson) data += `,"headers":${headersJson}`;
  if (hasReply) data += `,"reply":true`;
  return `{"v":1,"op":"msg","target":${targetJson},"data":${data}},"sid":"`;
}

/** The end of a core `msg` frame after {@link coreMsgHead}: the sid (a base-36 id, no escaping). */
export function coreMsgTail(sid: string): string {
  return `${sid}"}`;
}

/**
 * The head of a KV or JetStream `msg` frame, up to `"data":` (target `kv:<bucket>` or
 * `js:<stream>`); the frame is `head + data + streamMsgTail(sid)`. Made once per subscription.
 *
 * @example
 * ```ts
 * const head = streamMsgHead("kv:todos"), tail = streamMsgTail("4");
 * send(head + kvReadyData(12) + tail);
 * ```
 */
export function streamMsgHead(target: string): string {
  return `{"v":1,"op":"msg","target":${JSON.stringify(target)},"data":`;
}

/** The end of a KV or JetStream `msg` frame after its data. */
export function streamMsgTail(sid: string): string {
  return `,"sid":${JSON.stringify(sid)}}`;
}

/** The data of a KV `ready` event: the snapshot is complete at `revision`. */
export function kvReadyData(revision: number): string {
  return `{"op":"ready","revision":${revision}}`;
}

/** A KV entry operation. */
export type KvOperation = "put" | "delete" | "purge";

/**
 * The data of a KV entry event; `value` is the rendered value of a `put` (none for deletes).
 *
 * @example
 * ```ts
 * kvEntryData("user.1", 7, "put", renderPayload(m.data), m.time);
 * ```
 */
export function kvEntryData(
  key: string,
  revision: number,
  op: KvOperation,
  value: RenderedPayload | undefined,
  created: Date,
): string {
  let data = `{"key":${JSON.stringify(key)},"revision":${revision},"op":"${op}"`;
  if (value !== undefined) {
    data += `,"value":${value.json}`;
    if (value.encoding) data += `,"encoding":"${value.encoding}"`;
  }
  return data + `,"created":"${created.toISOString()}"}`;
}

/**
 * The data of a JetStream `msg`: stream sequence, subject, payload, headers (JSON text, if any),
 * stored time, and whether it was delivered before.
 *
 * @example
 * ```ts
 * jsMsgData(m.seq, m.subject, renderPayload(m.data), headersJson(m), m.time, m.redelivered);
 * ```
 */
export function jsMsgData(
  seq: number,
  subject: string,
  payload: RenderedPayload,
  headersJson: string | undefined,
  time: Date,
  redelivered: boolean,
): string {
  let data = `{"seq":${seq},"subject":${JSON.stringify(subject)},"payload":${payload.json}`;
  if (payload.encoding) data += `,"encoding":"${payload.encoding}"`;
  if (headersJson) data += `,"headers":${headersJson}`;
  data += `,"time":"${time.toISOString()}"`;
  if (redelivered) data += `,"redelivered":true`;
  return data + "}";
}
