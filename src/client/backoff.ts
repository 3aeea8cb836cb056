/** Reconnection delays: exponential backoff with jitter.
 * @module */

/**
 * Exponential backoff with jitter: between half and all of `initial * 2^n`, capped at `max`.
 * `random` is a number in [0, 1).
 *
 * @example
 * ```ts
 * backoffDelay(3, 250, 10_000, Math.random()); // 1000..2000
 * ```
 */
export function backoffDelay(n: number, initialMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(n, 30));
  return Math.round(base / 2 + random * (base / 2));
}
