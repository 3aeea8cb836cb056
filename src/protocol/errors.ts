/** Protocol error codes, close codes, and the one place that maps failures to frames.
 * @module */

import { errors as natsErrors } from "@nats-io/transport-node";
import type { ErrorCode } from "./types.ts";

export { CloseCode, type ErrorCode } from "./types.ts";

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** Close the session with this WebSocket close code after the error frame. */
  close?: number;
  /** What caused it (kept for the log; never sent to the client). */
  cause?: unknown;
}

/**
 * A failure with a protocol code and a client-safe message; `close` asks the session to close
 * with that code too, `cause` keeps the original failure for the log. One subclass per code
 * ({@link BadRequestError}, {@link ForbiddenError}, …), in the style of nats.js's errors: test
 * with `instanceof` or read `code`.
 *
 * @example
 * ```ts
 * try {
 *   await op();
 * } catch (err) {
 *   const gerr = toGatewayError(err); // err stays reachable as gerr.cause
 *   if (gerr instanceof InternalError) log.error("op failed", { error: err });
 * }
 * ```
 */
export class GatewayError extends Error {
  /** The protocol error code sent to the client. */
  readonly code: ErrorCode;
  /** When set, the session is closed with this WebSocket close code after the error frame. */
  readonly close?: number;

  /** Creates an error with a protocol code and a client-safe message. */
  constructor(code: ErrorCode, message: string, options?: GatewayErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.close = options?.close;
  }
}

/** `bad_request`: The envelope or the op's data is malformed. */
export class BadRequestError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("bad_request", message, options);
    this.name = "BadRequestError";
  }
}

/** `unsupported_version`: The envelope's `v` is not 1. */
export class UnsupportedVersionError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("unsupported_version", message, options);
    this.name = "UnsupportedVersionError";
  }
}

/** `unknown_op`: The op is not one of the protocol's. */
export class UnknownOpError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("unknown_op", message, options);
    this.name = "UnknownOpError";
  }
}

/** `invalid_subject`: A subject, queue, bucket, key or stream name breaks its rules. */
export class InvalidSubjectError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("invalid_subject", message, options);
    this.name = "InvalidSubjectError";
  }
}

/** `unauthorized`: Missing or invalid credentials. */
export class UnauthorizedError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("unauthorized", message, options);
    this.name = "UnauthorizedError";
  }
}

/** `forbidden`: The capabilities (or NATS permissions) do not allow the op. */
export class ForbiddenError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("forbidden", message, options);
    this.name = "ForbiddenError";
  }
}

/** `not_found`: No such subscription, stream, bucket or message. */
export class NotFoundError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("not_found", message, options);
    this.name = "NotFoundError";
  }
}

/** `timeout`: A `cmd` got no reply in time. */
export class TimeoutError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("timeout", message, options);
    this.name = "TimeoutError";
  }
}

/** `no_responders`: A `cmd` found nobody listening. */
export class NoRespondersError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("no_responders", message, options);
    this.name = "NoRespondersError";
  }
}

/** `limit_exceeded`: A per-connection or per-user limit was reached. */
export class LimitError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("limit_exceeded", message, options);
    this.name = "LimitError";
  }
}

/** `backpressure`: The client reads too slowly; it is cut off. */
export class BackpressureError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("backpressure", message, options);
    this.name = "BackpressureError";
  }
}

/** `unavailable`: NATS, the capability store or a feature is not available now. */
export class UnavailableError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("unavailable", message, options);
    this.name = "UnavailableError";
  }
}

/** `internal`: An unexpected failure; the client sees a generic message, the log the cause. */
export class InternalError extends GatewayError {
  /** Creates the error; `options.cause` keeps what caused it. */
  constructor(message: string, options?: GatewayErrorOptions) {
    super("internal", message, options);
    this.name = "InternalError";
  }
}

const _CLASSES: Record<ErrorCode, new (m: string, o?: GatewayErrorOptions) => GatewayError> = {
  bad_request: BadRequestError,
  unsupported_version: UnsupportedVersionError,
  unknown_op: UnknownOpError,
  invalid_subject: InvalidSubjectError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  timeout: TimeoutError,
  no_responders: NoRespondersError,
  limit_exceeded: LimitError,
  backpressure: BackpressureError,
  unavailable: UnavailableError,
  internal: InternalError,
};

/**
 * The error of a code, as its class ({@link ForbiddenError} for `forbidden`, …).
 *
 * @example
 * ```ts
 * throw gatewayError("not_found", "no such stream");
 * ```
 */
export function gatewayError(
  code: ErrorCode,
  message: string,
  options?: GatewayErrorOptions,
): GatewayError {
  return new _CLASSES[code](message, options);
}

/** Whether a failure is a usage error (the client's doing) rather than an internal one. */
export function isUsageError(err: GatewayError): boolean {
  return err.code !== "internal";
}

/**
 * Turns anything thrown while serving an op into a {@link GatewayError}, keeping the original as
 * its `cause`. NATS client errors map to their protocol codes; unknown errors become
 * {@link InternalError} with a generic message, so no internal detail leaks to clients (the
 * caller logs the original, stack included).
 *
 * @example
 * ```ts
 * toGatewayError(new Error("boom")); // InternalError "internal error", cause: the Error
 * ```
 */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const cause = { cause: err };
  if (err instanceof natsErrors.NoRespondersError) {
    return new NoRespondersError("no responders", cause);
  }
  if (err instanceof natsErrors.TimeoutError) return new TimeoutError("timed out", cause);
  if (err instanceof natsErrors.RequestError) {
    if (err.isNoResponders()) return new NoRespondersError("no responders", cause);
    const inner = err.cause;
    if (inner instanceof natsErrors.TimeoutError) return new TimeoutError("timed out", cause);
    if (inner instanceof natsErrors.NoRespondersError) {
      return new NoRespondersError("no responders", cause);
    }
    return new UnavailableError("NATS request failed", cause);
  }
  if (
    err instanceof natsErrors.ClosedConnectionError ||
    err instanceof natsErrors.DrainingConnectionError ||
    err instanceof natsErrors.ConnectionError
  ) {
    return new UnavailableError("NATS is unavailable", cause);
  }
  if (err instanceof natsErrors.PermissionViolationError) {
    return new ForbiddenError("denied by NATS permissions", cause);
  }
  return new InternalError("internal error", cause);
}

/**
 * What an error frame says: a code and a client-safe message. {@link GatewayError} is one; so is
 * a frozen plain value from {@link errorInfo}, which costs no `Error` (no stack capture) and can
 * be shared: the inbound parser answers hostile lines with such values.
 */
export interface ErrorInfo {
  /** The protocol error code. */
  readonly code: ErrorCode;
  /** The client-safe message. */
  readonly message: string;
}

/**
 * A frozen {@link ErrorInfo}: no `Error` object, so no stack is captured.
 *
 * @example
 * ```ts
 * const INVALID_JSON = errorInfo("bad_request", "invalid JSON"); // made once, shared
 * errorFrame(INVALID_JSON, {}); // frames.ts
 * ```
 */
export function errorInfo(code: ErrorCode, message: string): ErrorInfo {
  return Object.freeze({ code, message });
}

/** Context of the op that failed, echoed in the error frame. */
export interface ErrorContext {
  /** The failed op, when it could be read. */
  op?: string;
  /** The op's target, when it had one. */
  target?: string;
  /** The op's inbox, echoed so the client can correlate. */
  inbox?: string;
}
