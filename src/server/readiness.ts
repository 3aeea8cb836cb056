/** A readiness check that always answers within a bound. `/readyz` asks NATS (a read of the
 * auth bucket); a frozen NATS (SIGSTOP, a black-holed link) leaves that read pending for the
 * client's request timeout, and a balancer's health check must not hang on it.
 * @module */

/** A readiness answer: `reason` says what is missing when not ready. */
export interface Readiness {
  /** Whether new clients would be served. */
  ready: boolean;
  /** Why not, for `/readyz`'s body and the log. */
  reason?: string;
}

/** Options of {@link ReadinessProbe}. */
export interface ReadinessProbeOptions {
  /** A check started this recently is shared instead of run again (default 1000 ms). */
  cacheMs?: number;
  /** Longest wait for a check; then the answer is "not ready" (default 1000 ms). */
  timeoutMs?: number;
  /** Reason given when the check did not answer in time. */
  timeoutReason?: string;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

/**
 * Runs `check` at most once per `cacheMs`, never more than one at a time, and answers every
 * caller within `timeoutMs`: a check still running by then counts as not ready.
 *
 * @example
 * ```ts
 * import { ReadinessProbe } from "./readiness.ts";
 * const probe = new ReadinessProbe(async () => ({ ready: true }), { timeoutMs: 1000 });
 * const { ready, reason } = await probe.probe();
 * ```
 */
export class ReadinessProbe {
  readonly #check: () => Promise<Readiness>;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #timeoutReason: string;
  readonly #now: () => number;
  #last?: { at: number; result: Promise<Readiness>; settled: boolean };

  /** Creates the probe; nothing runs until {@link ReadinessProbe.probe}. */
  constructor(check: () => Promise<Readiness>, opts: ReadinessProbeOptions = {}) {
    this.#check = check;
    this.#cacheMs = opts.cacheMs ?? 1000;
    this.#timeoutMs = opts.timeoutMs ?? 1000;
    this.#timeoutReason = opts.timeoutReason ??
      `readiness check not answered within ${this.#timeoutMs} ms`;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The current answer, within `timeoutMs`. */
  async probe(): Promise<Readiness> {
    const now = this.#now();
    const last = this.#last;
    // A check still running is shared however old it is: a frozen dependency must not collect
    // one pending check per health probe.
    if (!last || (last.settled && now - last.at > this.#cacheMs)) {
      const entry = {
        at: now,
        settled: false,
        result: this.#check().catch((err): Readiness => ({
          ready: false,
          reason: err instanceof Error ? err.message : String(err),
        })),
      };
      void entry.result.finally(() => entry.settled = true);
      this.#last = entry;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<Readiness>((resolve) => {
      timer = setTimeout(
        () => resolve({ ready: false, reason: this.#timeoutReason }),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#last!.result, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
