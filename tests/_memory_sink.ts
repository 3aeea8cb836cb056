/** An in-memory {@link FrameSink} for the outbound queue's unit tests and micro-benchmarks: it
 * records every frame, and its "kernel" takes bytes only when the test says so. Not a WebSocket:
 * the queue's wire behaviour on real sockets is tested in tests/outbound_test.ts.
 * @module */

import type { FrameSink } from "../src/session/outbound.ts";

/**
 * A sink that records frames. With `hold`, sent bytes stay pending until {@link MemorySink.drain}.
 *
 * @example
 * ```ts
 * const sink = new MemorySink();
 * const q = new OutboundQueue(sink, limits);
 * q.push('{"op":"msg"}');
 * assert.deepEqual(await sink.untilLines(1), ['{"op":"msg"}']);
 * ```
 */
export class MemorySink implements FrameSink {
  /** Every frame sent, in order. */
  readonly frames: string[] = [];
  pendingBytes = 0;
  lastProgressAt = performance.now();
  onprogress?: (() => void) | null;
  /** Envelopes (NDJSON lines) sent so far. */
  envelopes = 0;
  #hold: boolean;
  #waiters: Array<() => void> = [];

  constructor(opts: { hold?: boolean } = {}) {
    this.#hold = opts.hold ?? false;
  }

  send(data: string): void {
    this.frames.push(data);
    this.envelopes++;
    for (let i = data.indexOf("\n"); i >= 0; i = data.indexOf("\n", i + 1)) this.envelopes++;
    if (this.#hold) this.pendingBytes += data.length;
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** The kernel takes everything pending: progress now. */
  drain(): void {
    this.pendingBytes = 0;
    this.lastProgressAt = performance.now();
    this.onprogress?.();
  }

  /** Every envelope sent so far (frames split into lines). */
  lines(): string[] {
    return this.frames.flatMap((f) => f.split("\n"));
  }

  /** Resolves with {@link lines} once at least `n` envelopes were sent. */
  async untilLines(n: number): Promise<string[]> {
    await this.untilEnvelopes(n);
    return this.lines();
  }

  /** Resolves once at least `n` envelopes were sent (no copying: for benchmarks). */
  async untilEnvelopes(n: number): Promise<void> {
    while (this.envelopes < n) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
