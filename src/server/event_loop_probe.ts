/** Event-loop lag measured for real: a timer drift probe. A timer is armed every `intervalMs`;
 * how late it fires is how long the loop was busy with other work when it was due. Deno has no
 * `monitorEventLoopDelay`, and prom-client's Node collector reports 0 under Deno.
 * @module */

/** Options of {@link EventLoopProbe}. */
export interface EventLoopProbeOptions {
  /** Time between probes (default 100 ms). */
  intervalMs?: number;
  /** Called with every sample's lag in seconds. */
  onSample?: (lagSeconds: number) => void;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
  /** Whether the timer may keep the process alive (default false: unref'd). */
  ref?: boolean;
}

/** How long the largest-lag window reaches back (two halves of this, rotated). */
const _WINDOW_MS = 10_000;

/**
 * Samples event-loop lag until closed. Its timer is unref'd unless `ref`: it never keeps a
 * process alive.
 *
 * @example
 * ```ts
 * import { EventLoopProbe } from "./event_loop_probe.ts";
 * const probe = new EventLoopProbe({ onSample: (s) => console.log("lag", s) });
 * // … later: probe.lastSeconds, probe.maxSeconds()
 * probe.close();
 * ```
 */
export class EventLoopProbe {
  /** Lag of the latest sample, seconds. */
  lastSeconds = 0;
  readonly #intervalMs: number;
  readonly #onSample?: (lagSeconds: number) => void;
  readonly #now: () => number;
  readonly #ref: boolean;
  #due = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;
  // Largest lag of the current and the previous half window.
  #max = 0;
  #prevMax = 0;
  #windowStart: number;

  /** Starts probing at once. */
  constructor(opts: EventLoopProbeOptions = {}) {
    this.#intervalMs = Math.max(1, opts.intervalMs ?? 100);
    this.#onSample = opts.onSample;
    this.#now = opts.now ?? (() => performance.now());
    this.#ref = opts.ref ?? false;
    this.#windowStart = this.#now();
    this.#arm();
  }

  #arm(): void {
    this.#due = this.#now() + this.#intervalMs;
    const timer = setTimeout(() => this.#fire(), this.#intervalMs);
    if (!this.#ref) Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #fire(): void {
    if (this.#closed) return;
    const now = this.#now();
    const lag = Math.max(0, now - this.#due) / 1000;
    this.lastSeconds = lag;
    this.#rotate(now);
    if (lag > this.#max) this.#max = lag;
    this.#onSample?.(lag);
    if (!this.#closed) this.#arm();
  }

  #rotate(now: number): void {
    const half = _WINDOW_MS / 2;
    if (now - this.#windowStart < half) return;
    // One half elapsed: the current becomes the previous; more than two: both are stale.
    this.#prevMax = now - this.#windowStart < 2 * half ? this.#max : 0;
    this.#max = 0;
    this.#windowStart = now;
  }

  /** Largest lag seen in the last 5 to 10 seconds. */
  maxSeconds(): number {
    this.#rotate(this.#now());
    return Math.max(this.#max, this.#prevMax);
  }

  /** Stops probing. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
