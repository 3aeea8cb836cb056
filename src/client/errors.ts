/** The SDK's errors, in the style of nats.js: one class per condition, each carrying the
 * protocol `code` (so `err.code === "forbidden"` keeps working), what failed and where, and the
 * `cause` when there is one.
 * @module */

import type { ErrorCode, ErrorFrameContext } from "../protocol/types.ts";

/** Options of {@link NatsgateError} and its subclasses. */
export interface NatsgateErrorOptions {
  /** The op that failed and its target, as the gateway reported them. */
  context?: ErrorFrameContext;
  /** The WebSocket close code, when the error ends a connection. */
  closeCode?: number;
  /** The HTTP status, when the gateway refused the WebSocket upgrade. */
  httpStatus?: number;
  /** The gateway URL concerned. */
  url?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error with a protocol error code (`forbidden`, `timeout`, `unavailable`, ...), from the
 * gateway or raised by the client. Catch the subclasses to tell conditions apart.
 *
 * @example
 * ```ts
 * try {
 *   await client.request("svc.time", {});
 * } catch (err) {
 *   if (err instanceof ForbiddenError) console.warn(err.message); // "cmd svc.time: not allowed"
 * }
 * ```
 */
export class NatsgateError extends Error {
  /** Protocol error code. */
  readonly code: ErrorCode;
  /** The op that failed and its target, as the gateway reported them. */
  readonly context?: ErrorFrameContext;
  /** The WebSocket close code, when the error comes from a closed connection. */
  readonly closeCode?: number;
  /** The HTTP status of a refused WebSocket upgrade. */
  readonly httpStatus?: number;
  /** The gateway URL concerned, when known. */
  readonly url?: string;

  /** Creates an error with a protocol code. */
  constructor(code: ErrorCode, message: string, options: NatsgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NatsgateError";
    this.code = code;
    if (options.context !== undefined) this.context = options.context;
    if (options.closeCode !== undefined) this.closeCode = options.closeCode;
    if (options.httpStatus !== undefined) this.httpStatus = options.httpStatus;
    if (options.url !== undefined) this.url = options.url;
  }
}

/** The gateway refused the credentials: a bad, expired or missing token, or `getToken` failed. */
export class UnauthorizedError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("unauthorized", message, options);
    this.name = "UnauthorizedError";
  }
}

/** The session's token expired without a refresh (close 4003). */
export class TokenExpiredError extends UnauthorizedError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super(message, options);
    this.name = "TokenExpiredError";
  }
}

/** The user's capabilities do not allow the op on its target (or no longer do: revoked). */
export class ForbiddenError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("forbidden", message, options);
    this.name = "ForbiddenError";
  }
}

/** No answer in time: the responder (`timeout` from the gateway) or the gateway itself. */
export class TimeoutError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("timeout", message, options);
    this.name = "TimeoutError";
  }
}

/** A request found nobody listening on its subject. */
export class NoRespondersError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("no_responders", message, options);
    this.name = "NoRespondersError";
  }
}

/**
 * The gateway cannot be reached or the connection was lost; `url` names the gateway and `cause`
 * the underlying failure. Also what the gateway answers when it cannot reach NATS.
 */
export class ConnectionError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("unavailable", message, options);
    this.name = "ConnectionError";
  }
}

/** An op was tried while the client was not connected (connecting, reconnecting). */
export class NotConnectedError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("unavailable", message, options);
    this.name = "NotConnectedError";
  }
}

/** The client was closed by `close()`. */
export class ClientClosedError extends NatsgateError {
  /** Creates the error. */
  constructor(message = "client closed", options?: NatsgateErrorOptions) {
    super("unavailable", message, options);
    this.name = "ClientClosedError";
  }
}

/** A gateway limit was hit: rate, frame size, slow consumer, durables per user. */
export class LimitError extends NatsgateError {
  /** Creates the error; `code` is `limit_exceeded` or `backpressure`. */
  constructor(
    message: string,
    options?: NatsgateErrorOptions & { code?: "limit_exceeded" | "backpressure" },
  ) {
    super(options?.code ?? "limit_exceeded", message, options);
    this.name = "LimitError";
  }
}

/** The gateway refused an op as malformed: bad data, invalid subject, unknown op or version. */
export class BadRequestError extends NatsgateError {
  /** Creates the error with one of the malformed-request codes. */
  constructor(
    code: "bad_request" | "invalid_subject" | "unknown_op" | "unsupported_version",
    message: string,
    options?: NatsgateErrorOptions,
  ) {
    super(code, message, options);
    this.name = "BadRequestError";
  }
}

/** What an op names does not exist (a subscription id, a durable consumer, a stream). */
export class NotFoundError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("not_found", message, options);
    this.name = "NotFoundError";
  }
}

/** An unexpected failure in the gateway or in the client. */
export class InternalError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("internal", message, options);
    this.name = "InternalError";
  }
}

/** A subscription handler threw or rejected; `cause` is what it threw. */
export class HandlerError extends NatsgateError {
  /** Creates the error. */
  constructor(message: string, options?: NatsgateErrorOptions) {
    super("internal", message, options);
    this.name = "HandlerError";
  }
}
