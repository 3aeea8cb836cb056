/** Turning what the gateway said (an `error` frame, a close code, an HTTP refusal) into the
 * error class of its condition, with a message that says what failed, where and why.
 * @module */

import {
  CloseCode,
  ERROR_CODES,
  type ErrorCode,
  type ErrorFrameContext,
} from "../protocol/types.ts";
import {
  BadRequestError,
  ConnectionError,
  ForbiddenError,
  InternalError,
  LimitError,
  type NatsgateError,
  type NatsgateErrorOptions,
  NoRespondersError,
  NotFoundError,
  TimeoutError,
  TokenExpiredError,
  UnauthorizedError,
} from "./errors.ts";

/**
 * The error of a condition, by protocol code.
 *
 * @example
 * ```ts
 * errorForCode("forbidden", "cmd svc.x: not allowed") instanceof ForbiddenError; // true
 * ```
 */
export function errorForCode(
  code: ErrorCode,
  message: string,
  options?: NatsgateErrorOptions,
): NatsgateError {
  switch (code) {
    case "unauthorized":
      return new UnauthorizedError(message, options);
    case "forbidden":
      return new ForbiddenError(message, options);
    case "timeout":
      return new TimeoutError(message, options);
    case "no_responders":
      return new NoRespondersError(message, options);
    case "unavailable":
      return new ConnectionError(message, options);
    case "limit_exceeded":
    case "backpressure":
      return new LimitError(message, { ...options, code });
    case "bad_request":
    case "invalid_subject":
    case "unknown_op":
    case "unsupported_version":
      return new BadRequestError(code, message, options);
    case "not_found":
      return new NotFoundError(message, options);
    case "internal":
      return new InternalError(message, options);
  }
}

/** "cmd svc.x" for a context, or "" without one. */
export function describeOp(context: ErrorFrameContext | undefined): string {
  if (!context?.op) return "";
  return context.target === undefined ? context.op : `${context.op} ${context.target}`;
}

/**
 * The error for an `error` frame's data: the gateway's message, prefixed with the op and target
 * it concerns ("cmd chat.room.1: not allowed"); `context` keeps them apart too.
 */
export function errorFromFrame(data: unknown): NatsgateError {
  const d = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  const code = (ERROR_CODES as readonly unknown[]).includes(d.code)
    ? d.code as ErrorCode
    : "internal";
  const reason = typeof d.message === "string" ? d.message : "error";
  const ctx = typeof d.context === "object" && d.context !== null
    ? _context(d.context as Record<string, unknown>)
    : undefined;
  const what = describeOp(ctx);
  return errorForCode(code, what ? `${what}: ${reason}` : reason, ctx ? { context: ctx } : {});
}

function _context(c: Record<string, unknown>): ErrorFrameContext {
  const out: ErrorFrameContext = {};
  if (typeof c.op === "string") out.op = c.op;
  if (typeof c.target === "string") out.target = c.target;
  return out;
}

/**
 * The error for a connection the gateway closed. `said` is the error frame it sent just before,
 * if any: its reason ("token expired") wins over the close's generic one ("unauthorized").
 */
export function closeError(
  url: string,
  code: number,
  reason: string,
  said?: NatsgateError,
): NatsgateError {
  const why = said ? _reason(said) : reason;
  const closed = `connection to ${url} closed (${code}${why ? `: ${why}` : ""})`;
  const opts: NatsgateErrorOptions = { closeCode: code, url };
  if (said) opts.cause = said;
  switch (code) {
    case CloseCode.UNAUTHORIZED:
      return new UnauthorizedError(`gateway ${url} refused the token: ${why || "unauthorized"}`, {
        ...opts,
      });
    case CloseCode.TOKEN_EXPIRED:
      return new TokenExpiredError(`session on ${url} ended: ${why || "token expired"}`, opts);
    case CloseCode.BACKPRESSURE:
      return new LimitError(closed, { ...opts, code: "backpressure" });
    case CloseCode.RATE_LIMIT:
    case CloseCode.TOO_BIG:
      return new LimitError(closed, opts);
    case CloseCode.PROTOCOL:
      return new BadRequestError("bad_request", closed, opts);
    default:
      return new ConnectionError(closed, opts);
  }
}

/** The gateway's own words of an error, without the op prefix. */
function _reason(err: NatsgateError): string {
  const what = describeOp(err.context);
  return what && err.message.startsWith(`${what}: `)
    ? err.message.slice(what.length + 2)
    : err.message;
}

/**
 * The error for a refused WebSocket upgrade, from the HTTP answer to a plain request at the same
 * URL: 401 bad token, 403 origin not allowed, 429 too many connections, 503 shutting down.
 * Undefined when the status says the upgrade would have been accepted (426, 101, 2xx).
 */
export function upgradeRefusal(
  url: string,
  status: number,
  body: string,
): NatsgateError | undefined {
  if (status === 426 || status === 101 || (status >= 200 && status < 300)) return undefined;
  const text = body.trim().split("\n")[0].slice(0, 200);
  const message = `gateway ${url} refused the WebSocket upgrade (HTTP ${status}${
    text ? `: ${text}` : ""
  })`;
  const opts = { httpStatus: status, url };
  if (status === 401) return new UnauthorizedError(message, opts);
  if (status === 403) return new ForbiddenError(message, opts);
  if (status === 429) return new LimitError(message, opts);
  if (status >= 500) return new ConnectionError(message, opts);
  return new BadRequestError("bad_request", message, opts);
}
