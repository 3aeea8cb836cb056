/** Inbound envelope parsing and validation (docs/protocol.md section 2).
 * A frame is NDJSON; each line becomes an envelope or an error value with its context.
 * {@link parseFrameLimited} takes a rate token before it parses a line and stops at the first
 * line it may not read, so a hostile frame costs at most one parse per token; failures are shared
 * frozen values, so a bad line allocates no `Error`.
 * @module */

import { BadRequestError, type ErrorContext, type ErrorInfo, errorInfo } from "./errors.ts";
import { validateHeaderName, validateHeaderValue } from "./subject.ts";
import { CLIENT_OPS, type ClientOp, type HeaderMap } from "./types.ts";

// The op list lives in types.ts (shared with the SDK); re-exported here under its old name.
export { CLIENT_OPS, type ClientOp } from "./types.ts";

const _OPS: ReadonlySet<string> = new Set(CLIENT_OPS);

/** Whether `op` names an op a client may send. */
export function isClientOp(op: string): op is ClientOp {
  return _OPS.has(op);
}

/** Headers as sent by clients: name → value or values. */
export type { HeaderMap } from "./types.ts";

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
  /** The error to send: a shared frozen value, never a fresh `Error`. */
  error: ErrorInfo;
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
  const problem = headersProblem(h);
  if (problem !== undefined) throw new BadRequestError(problem);
  return h as HeaderMap;
}

/** What is wrong with a client header object (the `bad_request` message), or undefined. */
export function headersProblem(h: unknown): string | undefined {
  if (!isObject(h)) return "headers must be an object";
  const entries = Object.entries(h);
  if (entries.length > _MAX_HEADERS) return `at most ${_MAX_HEADERS} headers`;
  for (const [name, value] of entries) {
    const nameErr = validateHeaderName(name);
    if (nameErr) return `header name: ${nameErr}`;
    if (_RESERVED_HEADER.test(name)) return `header ${name}: reserved (NATS tracing or rollup)`;
    const values = Array.isArray(value) ? value : [value];
    if (values.length === 0) return `header ${name}: no value`;
    for (const v of values) {
      if (typeof v !== "string") return `header ${name}: values must be strings`;
      const valueErr = validateHeaderValue(v);
      if (valueErr) return `header ${name}: ${valueErr}`;
    }
  }
  return undefined;
}

// Failures of envelope validation: made once, shared by every line that fails the same way.
const _NOT_OBJECT = errorInfo("bad_request", "envelope must be a JSON object");
const _BAD_INBOX = errorInfo("bad_request", "inbox must be a string of 1..128 characters");
const _BAD_VERSION = errorInfo("unsupported_version", "only protocol version 1 is supported");
const _NO_OP = errorInfo("bad_request", "op is required");
const _UNKNOWN_OP = errorInfo("unknown_op", "unknown op");
const _BAD_TARGET = errorInfo("bad_request", "target must be a string");
const _BAD_SID = errorInfo("bad_request", "sid must be a string");
const _BAD_TIMEOUT = errorInfo("bad_request", "timeout_ms must be a non-negative integer");
const _INVALID_JSON = errorInfo("bad_request", "invalid JSON");
const _INVALID_JSON_FAILURE: EnvelopeFailure = Object.freeze({
  error: _INVALID_JSON,
  context: Object.freeze({}),
});

/** Validates one decoded JSON value as a client envelope. */
export function validateEnvelope(raw: unknown): ClientEnvelope | EnvelopeFailure {
  if (!isObject(raw)) return { error: _NOT_OBJECT, context: {} };
  const ctx: ErrorContext = {};
  const inbox = raw.inbox;
  if (inbox !== undefined) {
    if (typeof inbox !== "string" || inbox.length < 1 || inbox.length > 128) {
      return { error: _BAD_INBOX, context: ctx };
    }
    ctx.inbox = inbox;
  }
  const op = raw.op;
  if (typeof op === "string" && op.length <= 32) ctx.op = op;
  const target = raw.target;
  if (typeof target === "string" && target.length <= 512) ctx.target = target;
  const fail = (error: ErrorInfo): EnvelopeFailure => ({ error, context: ctx });
  if (raw.v !== undefined && raw.v !== 1) return fail(_BAD_VERSION);
  if (typeof op !== "string") return fail(_NO_OP);
  if (!_OPS.has(op)) return fail(_UNKNOWN_OP);
  if (target !== undefined && typeof target !== "string") return fail(_BAD_TARGET);
  if (raw.sid !== undefined && typeof raw.sid !== "string") return fail(_BAD_SID);
  const env: ClientEnvelope = { op: op as ClientOp, data: raw.data };
  if (target !== undefined) env.target = target as string;
  if (inbox !== undefined) env.inbox = inbox as string;
  if (raw.sid !== undefined) env.sid = raw.sid as string;
  if (raw.headers !== undefined) {
    const problem = headersProblem(raw.headers);
    if (problem !== undefined) return fail(errorInfo("bad_request", problem));
    env.headers = raw.headers as HeaderMap;
  }
  if (raw.timeout_ms !== undefined) {
    if (!isCount(raw.timeout_ms)) return fail(_BAD_TIMEOUT);
    env.timeout_ms = raw.timeout_ms;
  }
  if (raw.encoding !== undefined) env.encoding = raw.encoding;
  return env;
}

/** Parses one line of a frame (not blank) into an envelope or a failure. */
export function parseLine(line: string): ClientEnvelope | EnvelopeFailure {
  // A line whose first character cannot start a JSON value is refused without JSON.parse, whose
  // SyntaxError (an Error with a stack and a formatted message) costs ~30 valid parses.
  if (!_mayBeJson(line)) return _INVALID_JSON_FAILURE;
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return _INVALID_JSON_FAILURE;
  }
  return validateEnvelope(raw);
}

/** What an op budget answers for one op: take it, refuse it, or refuse it as sustained abuse. */
export type RateVerdict = "ok" | "limited" | "sustained";

/** What {@link parseFrameLimited} may spend on one frame. */
export interface FrameBudget {
  /** Most envelopes (non-blank lines) in one frame; a frame with more is refused as abuse. */
  maxLines: number;
  /** Takes one rate token; called for each non-blank line before it is parsed. */
  take(): RateVerdict;
}

/** Result of {@link parseFrameLimited}. */
export interface ParsedFrame {
  /** One result per line, in frame order; a line that found no rate token is a `limited` one. */
  results: Array<ClientEnvelope | EnvelopeFailure>;
  /**
   * The client has been over the rate long enough to be closed (4029), or one frame carried more
   * than {@link MAX_LIMITED_PER_FRAME} ops without a token (a flood: reading on would only make
   * error frames for it). `results` then ends at that point.
   */
  sustained?: boolean;
  /**
   * Set when the frame holds more than `maxLines` envelopes: the context (op, target, inbox) of
   * the first line past the limit. Nothing of the frame is run; the session closes (4029).
   */
  tooManyLines?: ErrorContext;
}

/**
 * Ops without a rate token one frame may carry before the client counts as flooding and is
 * closed (4029): a burst a little over the rate is answered op by op; hundreds of refused ops in
 * one frame would only make the gateway write an error frame for each (an 800-byte frame of 400
 * junk lines would cost 36 KB of answers).
 */
export const MAX_LIMITED_PER_FRAME = 16;

/** `limit_exceeded` for a line that found no rate token. */
export const RATE_LIMITED: ErrorInfo = errorInfo("limit_exceeded", "rate limit exceeded");

/**
 * Splits a text frame into lines and parses each, spending the budget first: each non-blank line
 * takes a rate token before it is parsed. A line that finds none is not parsed: it becomes a
 * {@link RATE_LIMITED} failure whose context holds only its inbox, found by a plain scan, so
 * every op still gets exactly one answer while a flood costs no parse and no `Error`; past
 * {@link MAX_LIMITED_PER_FRAME} such lines, or when the limit is sustained, reading stops and
 * `sustained` says the client is to be closed. A frame of more than `maxLines` envelopes is not
 * run at all (`tooManyLines`). Blank lines are skipped and take no token.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(200, 400, performance.now());
 * const { results, sustained } = parseFrameLimited(text, {
 *   maxLines: 400,
 *   take: () => bucket.take(performance.now()),
 * });
 * ```
 */
export function parseFrameLimited(text: string, budget: FrameBudget): ParsedFrame {
  if (budget.maxLines !== Infinity) {
    const over = _lineBeyond(text, budget.maxLines);
    if (over !== undefined) return { results: [], tooManyLines: _context(parseLine(over)) };
  }
  const results: Array<ClientEnvelope | EnvelopeFailure> = [];
  let sustained = false;
  let limited = 0;
  for (const line of _lines(text)) {
    const verdict = budget.take();
    if (verdict === "ok") {
      results.push(parseLine(line));
      continue;
    }
    if (verdict === "sustained" || ++limited > MAX_LIMITED_PER_FRAME) {
      sustained = true;
      break;
    }
    const inbox = scanInbox(line);
    results.push(
      inbox === undefined ? _LIMITED_NO_INBOX : { error: RATE_LIMITED, context: { inbox } },
    );
  }
  return sustained ? { results, sustained } : { results };
}

const _LIMITED_NO_INBOX: EnvelopeFailure = Object.freeze({
  error: RATE_LIMITED,
  context: Object.freeze({}),
});

function _context(r: ClientEnvelope | EnvelopeFailure): ErrorContext {
  return "error" in r ? r.context : { op: r.op, target: r.target, inbox: r.inbox };
}

/** The non-blank lines of a frame, in order. */
function* _lines(text: string): Generator<string> {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (!_blank(line)) yield line;
  }
}

/** The first non-blank line past the first `max` ones, if any (no parsing). */
function _lineBeyond(text: string, max: number): string | undefined {
  let n = 0;
  for (const line of _lines(text)) if (++n > max) return line;
  return undefined;
}

function _blank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

const _INBOX_RE = /"inbox"\s*:\s*"((?:[^"\\\n]|\\.){1,128}?)"/;

/**
 * The `inbox` of an envelope line without parsing it: a scan for `"inbox":"…"`. Undefined when
 * absent or not a plain string of 1..128 characters. Used only to answer a line that is refused
 * unread; a line that names `"inbox"` inside another string may get its answer under that id.
 */
export function scanInbox(line: string): string | undefined {
  if (!line.includes('"inbox"')) return undefined;
  const m = _INBOX_RE.exec(line);
  if (!m) return undefined;
  if (!m[1].includes("\\")) return m[1];
  try {
    const v = JSON.parse(`"${m[1]}"`);
    return typeof v === "string" && v.length >= 1 && v.length <= 128 ? v : undefined;
  } catch {
    return undefined;
  }
}

const _UNLIMITED: FrameBudget = Object.freeze({ maxLines: Infinity, take: () => "ok" as const });

/** Splits a text frame into lines and parses each (blank lines are skipped), without limits. */
export function parseFrame(text: string): Array<ClientEnvelope | EnvelopeFailure> {
  return parseFrameLimited(text, _UNLIMITED).results;
}

/** Returns true when a parse result is a failure. */
export function isFailure(r: ClientEnvelope | EnvelopeFailure): r is EnvelopeFailure {
  // A ClientEnvelope is built field by field and never has `error`.
  return "error" in r;
}

// JSON text is optional white space (space, tab, CR, LF) then a value, which starts with one of
// `{ [ " - 0-9 t f n`.
function _mayBeJson(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) continue;
    return c === 0x7b || c === 0x5b || c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) ||
      c === 0x74 || c === 0x66 || c === 0x6e;
  }
  return false;
}
