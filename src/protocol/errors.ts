/** Protocol error codes, close codes, and the one place that maps failures to frames.
 * @module */

import { errors as natsErrors } from "@nats-io/transport-node";
import type { ErrorCode } from "./types.ts";

export { CloseCode, type ErrorCode } from "./types.ts";

/** A failure with a protocol code; `close` asks the session to close with that code too. */
export class GatewayError extends Error {
  /** The protocol error code sent to the client. */
  readonly code: ErrorCode;
  /** When set, the session is closed with this WebSocket close code after the error frame. */
  readonly close?: number;

  /** Creates an error with a protocol code and a client-safe message. */
  constructor(code: ErrorCode, message: string, options?: { close?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.close = options?.close;
  }
}

/**
 * Turns anything thrown while serving an op into a {@link GatewayError}. NATS client errors map to
 * their protocol codes; unknown errors become `internal` with a generic message, so no internal
 * detail leaks to clients (the caller logs the original).
 */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof natsErrors.NoRespondersError) {
    return new GatewayError("no_responders", "no responders");
  }
  if (err instanceof natsErrors.TimeoutError) return new GatewayError("timeout", "timed out");
  if (err instanceof natsErrors.RequestError) {
    if (err.isNoResponders()) return new GatewayError("no_responders", "no responders");
    const cause = err.cause;
    if (cause instanceof natsErrors.TimeoutError) return new GatewayError("timeout", "timed out");
    if (cause instanceof natsErrors.NoRespondersError) {
      return new GatewayError("no_responders", "no responders");
    }
    return new GatewayError("unavailable", "NATS request failed");
  }
  if (
    err instanceof natsErrors.ClosedConnectionError ||
    err instanceof natsErrors.DrainingConnectionError ||
    err instanceof natsErrors.ConnectionError
  ) {
    return new GatewayError("unavailable", "NATS is unavailable");
  }
  if (err instanceof natsErrors.PermissionViolationError) {
    return new GatewayError("forbidden", "denied by NATS permissions");
  }
  return new GatewayError("internal", "internal error");
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
