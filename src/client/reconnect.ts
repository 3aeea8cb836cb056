/** When the client tries again after a connection ends, as small pure rules.
 * @module */

import { CloseCode } from "../protocol/types.ts";

/** What the reconnect rule looks at. */
export interface ReconnectState {
  /** Reconnection is on. */
  reconnect: boolean;
  /** Attempts allowed in a row. */
  maxAttempts: number;
  /** Keep retrying the first connection. */
  waitOnFirstConnect: boolean;
  /** The client was authenticated at least once. */
  everOpened: boolean;
  /** Failed attempts in a row so far. */
  attempt: number;
  /** How many gateway URLs were given. */
  urlCount: number;
}

/**
 * Whether another attempt is made: reconnection on and attempts left; before the first success,
 * only one try of each URL unless `waitOnFirstConnect`.
 *
 * @example
 * ```ts
 * mayRetry({ reconnect: true, maxAttempts: Infinity, waitOnFirstConnect: false,
 *   everOpened: false, attempt: 0, urlCount: 1 }); // false: connect() rejects at once
 * ```
 */
export function mayRetry(s: ReconnectState): boolean {
  if (!s.reconnect || s.attempt >= s.maxAttempts) return false;
  return s.everOpened || s.waitOnFirstConnect || s.attempt < s.urlCount - 1;
}

/**
 * Whether an ended connection must not be retried whatever the settings: the credentials were
 * refused (close 4001, HTTP 401), the origin was refused (HTTP 403), or a fixed token expired
 * (close 4003 without a token source to ask for a new one).
 */
export function isFinalEnd(
  closeCode: number,
  httpStatus: number | undefined,
  hasTokenSource: boolean,
): boolean {
  return httpStatus === 401 || httpStatus === 403 || closeCode === CloseCode.UNAUTHORIZED ||
    (closeCode === CloseCode.TOKEN_EXPIRED && !hasTokenSource);
}
