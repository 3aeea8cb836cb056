/** Inbound envelope parsing and validation (PROTOCOL.md section 2).
 * A frame is NDJSON; each line becomes an envelope or a GatewayError with its context.
 * @module */

import { type ErrorContext, GatewayError } from "./errors.ts";
import { validateHeaderName, validateHeaderValue } from "./subject.ts";

/** The ops a client may send. */
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

const _OPS: ReadonlySet<string> = new Set([
  "auth",
  "sub",
  "unsub",
  "kv_sub",
  "js_sub",
  "ack",
  "cmd",
  "pub",
  "ping",
]);

/** Headers as sent by clients: name → value or values. */
export type HeaderMap = Record<string, string | string[]>;

/** A validated client envelope. Op-specific fields are checked by the op handlers. */
export interface ClientEnvelope {
  /** The op. */
  op: ClientOp;
  /** Subject, bucket or stream, as the op says. */
  target?: string;
  /** Client correlation id, echoed in the answer. */
  inbox?: string;
  /** Subscription id (unused by clients today; `unsub` carries it in data). */
  sid?: string;
  /** The op's data. */
  data: unknown;
  /** Optional headers (`cmd`, `pub`). */
  headers?: HeaderMap;
  /** Optional timeout (`cmd`). */
  timeout_ms?: number;
  /** Optional raw payload encoding (`cmd`, `pub`). */
  encoding?: unknown;
}

/** A line of a frame that failed to parse, with what could be read of it. */
export interface EnvelopeFailure {
  /** The error to send. */
  error: GatewayError;
  /** Context for the error frame. */
  context: ErrorContext;
}

/** Returns true when `v` is a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Returns true when `n` is a non-negative safe integer. */
export function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

const _MAX_HEADERS = 64;
// nats-server (2.11+) publishes trace events to the subject in `Nats-Trace-Dest`, with the
// gateway's own NATS permissions: from a client that would be a publish outside its grants.
// `Nats-Rollup` purges a subject's (or the whole stream's) history on streams that allow
// rollups: a publish grant must not erase other users' stored messages.
const _RESERVED_HEADER = /^(?:nats-trace-|nats-rollup$)/i;

/** Validates a client header object; throws `bad_request` naming the problem. */
export function validateHeaders(h: unknown): HeaderMap {
  if (!isObject(h)) throw new GatewayError("bad_request", "headers must be an object");
  const entries = Object.entries(h);
  if (entries.length > _MAX_HEADERS) {
    throw new GatewayError("bad_request", `at most ${_MAX_HEADERS} headers`);
  }
  for (const [name, value] of entries) {
    const nameErr = validateHeaderName(name);
    if (nameErr) throw new GatewayError("bad_request", `header name: ${nameErr}`);
    if (_RESERVED_HEADER.test(name)) {
      throw new GatewayError("bad_request", `header ${name}: reserved (NATS tracing or rollup)`);
    }
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0) throw new GatewayError("bad_request", `header ${name}: no value`);
    for (const v of values) {
      if (typeof v !== "string") {
        throw new GatewayError("bad_request", `header ${name}: values must be strings`);
      }
      const valueErr = validateHeaderValue(v);
      if (valueErr) throw new GatewayError("bad_request", `header ${name}: ${valueErr}`);
    }
  }
  return h as HeaderMap;
}

/** Validates one decoded JSON value as a client envelope. */
export function validateEnvelope(raw: unknown): ClientEnvelope | EnvelopeFailure {
  if (!isObject(raw)) {
    return {
      error: new GatewayError("bad_request", "envelope must be a JSON object"),
      context: {},
    };
  }
  const ctx: ErrorContext = {};
  const inbox = raw.inbox;
  if (inbox !== undefined) {
    if (typeof inbox !== "string" || inbox.length < 1 || inbox.length > 128) {
      return {
        error: new GatewayError("bad_request", "inbox must be a string of 1..128 characters"),
        context: ctx,
      };
    }
    ctx.inbox = inbox;
  }
  const op = raw.op;
  if (typeof op === "string" && op.length <= 32) ctx.op = op;
  const target = raw.target;
  if (typeof target === "string" && target.length <= 512) ctx.target = target;
  const fail = (error: GatewayError): EnvelopeFailure => ({ error, context: ctx });
  if (raw.v !== undefined && raw.v !== 1) {
    return fail(new GatewayError("unsupported_version", "only protocol version 1 is supported"));
  }
  if (typeof op !== "string") return fail(new GatewayError("bad_request", "op is required"));
  if (!_OPS.has(op)) return fail(new GatewayError("unknown_op", "unknown op"));
  if (target !== undefined && typeof target !== "string") {
    return fail(new GatewayError("bad_request", "target must be a string"));
  }
  if (raw.sid !== undefined && typeof raw.sid !== "string") {
    return fail(new GatewayError("bad_request", "sid must be a string"));
  }
  const env: ClientEnvelope = { op: op as ClientOp, data: raw.data };
  if (target !== undefined) env.target = target as string;
  if (inbox !== undefined) env.inbox = inbox as string;
  if (raw.sid !== undefined) env.sid = raw.sid as string;
  if (raw.headers !== undefined) {
    try {
      env.headers = validateHeaders(raw.headers);
    } catch (e) {
      return fail(e as GatewayError);
    }
  }
  if (raw.timeout_ms !== undefined) {
    if (!isCount(raw.timeout_ms)) {
      return fail(new GatewayError("bad_request", "timeout_ms must be a non-negative integer"));
    }
    env.timeout_ms = raw.timeout_ms;
  }
  if (raw.encoding !== undefined) env.encoding = raw.encoding;
  return env;
}

/** Splits a text frame into lines and parses each (empty lines are skipped). */
export function parseFrame(text: string): Array<ClientEnvelope | EnvelopeFailure> {
  const out: Array<ClientEnvelope | EnvelopeFailure> = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === "") continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      out.push({ error: new GatewayError("bad_request", "invalid JSON"), context: {} });
      continue;
    }
    out.push(validateEnvelope(raw));
  }
  return out;
}

/** Returns true when a parse result is a failure. */
export function isFailure(r: ClientEnvelope | EnvelopeFailure): r is EnvelopeFailure {
  return "error" in r && r.error instanceof GatewayError;
}
