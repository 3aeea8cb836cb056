/** The backpressure rule of docs/protocol.md section 6, as a pure function over one connection's state.
 * A reader is cut for falling too far behind, staying behind, or draining nothing at all.
 * @module */

/** Why a connection was cut for backpressure (the `reason` label of the cut counter). */
export type CutReason =
  /** Pending bytes exceeded twice `maxPendingBytes`. */
  | "over_limit"
  /** Pending bytes stayed above `maxPendingBytes` for `backpressureTimeoutMs`. */
  | "slow"
  /** Pending bytes and no byte drained for `writeDeadlineMs`. */
  | "stalled"
  /** The gateway's total pending bytes exceeded `--max-pending-total`; this was the largest queue. */
  | "budget";

/** Every cut reason, in a stable order (metrics start every series at 0). */
export const CUT_REASONS: readonly CutReason[] = ["over_limit", "slow", "stalled", "budget"];

/** The per-connection bounds. */
export interface PressureLimits {
  /** Pending bytes a connection may hold (gateway queue plus socket). */
  maxPendingBytes: number;
  /** How long pending bytes may stay above the bound. */
  backpressureTimeoutMs: number;
  /** How long a connection with pending bytes may drain nothing. */
  writeDeadlineMs: number;
}

/** One connection's state at `now` (milliseconds on one monotonic clock). */
export interface PressureState {
  /** Pending bytes: held by the gateway plus accepted by the socket but not yet written. */
  pending: number;
  /** Since when pending has been above the bound (undefined: it is not). */
  overSince: number | undefined;
  /**
   * The later of: the last time the socket drained a byte, and the time pending last rose
   * from zero (an idle connection that just got data has not stalled yet).
   */
  progressAt: number;
  /** Now. */
  now: number;
}

/**
 * Decides whether a connection must be cut for backpressure, and why. A reader that keeps
 * draining is never cut while its pending bytes stay under the bound.
 *
 * @example
 * ```ts
 * const limits = { maxPendingBytes: 100, backpressureTimeoutMs: 250, writeDeadlineMs: 5000 };
 * pressureVerdict({ pending: 250, overSince: 0, progressAt: 0, now: 1 }, limits); // "over_limit"
 * pressureVerdict({ pending: 50, overSince: undefined, progressAt: 0, now: 1 }, limits); // undefined
 * ```
 */
export function pressureVerdict(s: PressureState, limits: PressureLimits): CutReason | undefined {
  if (s.pending <= 0) return undefined;
  if (s.pending > 2 * limits.maxPendingBytes) return "over_limit";
  if (
    s.pending > limits.maxPendingBytes && s.overSince !== undefined &&
    s.now - s.overSince >= limits.backpressureTimeoutMs
  ) return "slow";
  if (s.now - s.progressAt >= limits.writeDeadlineMs) return "stalled";
  return undefined;
}

/**
 * Picks the connections to cut so that the total pending bytes fall back under `budget`:
 * the largest queues first. Returns them in cutting order (empty when under budget).
 *
 * @example
 * ```ts
 * overBudget([{ id: "a", pending: 5 }, { id: "b", pending: 9 }], 10); // [{ id: "b", … }]
 * ```
 */
export function overBudget<T extends { pending: number }>(
  conns: Iterable<T>,
  budget: number,
): T[] {
  const all = [...conns];
  let total = 0;
  for (const c of all) total += c.pending;
  if (total <= budget) return [];
  all.sort((a, b) => b.pending - a.pending);
  const out: T[] = [];
  for (const c of all) {
    if (total <= budget || c.pending <= 0) break;
    out.push(c);
    total -= c.pending;
  }
  return out;
}
