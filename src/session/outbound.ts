/** The per-session outbound queue: coalesces envelopes into NDJSON frames and enforces backpressure.
 * Everything queued in one task goes out as one frame once that task's microtasks settle.
 * @module */

import { type CutReason, type PressureLimits, pressureVerdict } from "./backpressure.ts";

/** The part of a WebSocket the queue needs. */
export interface FrameSink {
  /** Sends one text frame. */
  send(data: string): void;
  /** Bytes accepted by `send` and not yet accepted by the kernel (exact, synchronous). */
  readonly pendingBytes: number;
  /** `performance.now()` of the last write that the kernel accepted bytes of. */
  readonly lastProgressAt: number;
  /** Set by the queue: called when the kernel accepted bytes (the drain signal). */
  onprogress?: (() => void) | null;
}

/**
 * Producers that pull from NATS (JetStream and KV subscriptions) pause while a client's pending
 * bytes are above this, so they never read far ahead of a slow client.
 */
export const PULL_HIGH_WATER = 256 * 1024;

/** A gateway-wide budget of pending bytes, shared by every queue. */
export interface PendingBudget {
  /** Pending bytes of every connection's socket (the transport keeps it exact). */
  readonly counter: { bytes: number };
  /** The budget (`--max-pending-total`). */
  readonly max: number;
  /** Called when a push finds the total over budget; the owner cuts the largest queues. */
  onOver(): void;
}

/** Options of {@link OutboundQueue}. */
export interface OutboundOptions extends PressureLimits {
  /** Called once when the client must be cut (docs/protocol.md section 6); the owner closes it (4008). */
  onBackpressure: (reason: CutReason) => void;
  /** Largest frame the queue builds when coalescing (a single larger envelope still goes alone). */
  maxFrameBytes?: number;
  /** The gateway-wide budget, if any. */
  budget?: PendingBudget;
}

/**
 * Microtask checkpoints without a new envelope before a flush. An async producer (a `for await`
 * over a JetStream consumer) queues one envelope every few microtasks, all within one task: the
 * flush waits until it pauses, so its burst leaves as one frame. Still no timer, so no latency.
 */
const _SETTLE_TICKS = 8;

/**
 * A bounded outbound queue. Envelopes are never dropped silently: a client whose pending bytes
 * stay above `maxPendingBytes` for `backpressureTimeoutMs`, grow past twice the bound, or drain
 * nothing for `writeDeadlineMs` is cut off through `onBackpressure` ({@link pressureVerdict}).
 * Progress is what the kernel accepted, so a reader that keeps draining is never cut under the
 * bound, however bursty the traffic.
 */
export class OutboundQueue {
  #sink: FrameSink;
  #opts: OutboundOptions;
  #parts: string[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  /** An envelope arrived since the flush task last looked. */
  #pushed = false;
  #idleTicks = 0;
  #fullTimer: ReturnType<typeof setTimeout> | undefined;
  /** Since when pending bytes have been above the bound. */
  #overSince: number | undefined;
  /** When pending bytes last rose from zero. */
  #busySince = 0;
  #closed = false;
  #maxFrame: number;
  /** Envelopes sent (counted at flush). */
  envelopesOut = 0;
  /** Characters sent (JSON text is ASCII-heavy; counted as bytes). */
  bytesOut = 0;

  /** Creates a queue writing to `sink`. */
  constructor(sink: FrameSink, opts: OutboundOptions) {
    this.#sink = sink;
    this.#opts = opts;
    this.#maxFrame = opts.maxFrameBytes ?? 256 * 1024;
    sink.onprogress = () => this.#wakeDrained();
  }

  /** Producers waiting for the pending bytes to fall, by threshold. */
  #drainWaiters: Array<{ below: number; resolve: () => void }> = [];

  /**
   * Resolves once pending bytes are at most `below`, or the queue closes: producers that pull
   * from NATS (JetStream, KV) pause on it instead of reading far ahead of a slow client.
   */
  drained(below: number): Promise<void> {
    if (this.#closed || this.pendingBytes <= below) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#drainWaiters.push({ below, resolve });
    return promise;
  }

  #wakeDrained(): void {
    if (this.#drainWaiters.length === 0) return;
    const pending = this.pendingBytes;
    const waiting = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiting) {
      if (this.#closed || pending <= w.below) w.resolve();
      else this.#drainWaiters.push(w);
    }
  }

  /** Bytes waiting in this queue and in the socket. */
  get pendingBytes(): number {
    return this.#queuedBytes + this.#sink.pendingBytes;
  }

  /** Queues one serialised envelope. Returns false when the queue is closed or overflowing. */
  push(envelope: string): boolean {
    if (this.#closed) return false;
    if (this.#queuedBytes === 0 && this.#sink.pendingBytes === 0) {
      this.#busySince = performance.now(); // the stall clock starts when data starts to wait
    }
    this.#parts.push(envelope);
    this.#queuedBytes += envelope.length + 1;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#pushed = false;
      this.#idleTicks = 0;
      queueMicrotask(this.#flushTask);
    } else {
      this.#pushed = true;
      if (this.#queuedBytes >= this.#maxFrame) this.flush(); // a full frame: no reason to hold it
    }
    return this.#checkPressure();
  }

  #flushTask = () => {
    if (this.#pushed) {
      this.#pushed = false;
      this.#idleTicks = 0;
    } else if (++this.#idleTicks >= _SETTLE_TICKS) {
      this.#scheduled = false;
      this.flush();
      return;
    }
    queueMicrotask(this.#flushTask);
  };

  /** Writes everything queued as as few frames as the frame bound allows. */
  flush(): void {
    if (this.#closed || this.#parts.length === 0) return;
    const parts = this.#parts;
    this.#parts = [];
    this.#queuedBytes = 0;
    try {
      if (parts.length === 1) {
        this.#write(parts[0], 1);
        return;
      }
      // Frames up to maxFrame bytes; an envelope larger than that goes alone.
      let start = 0;
      let size = 0;
      for (let i = 0; i < parts.length; i++) {
        const len = parts[i].length + 1;
        if (size > 0 && size + len > this.#maxFrame) {
          this.#writeParts(parts, start, i);
          start = i;
          size = 0;
        }
        size += len;
      }
      this.#writeParts(parts, start, parts.length);
    } catch {
      // The socket closed under us; the session's close handler cleans up.
      this.close();
    }
  }

  #writeParts(parts: string[], start: number, end: number): void {
    this.#write(end - start === 1 ? parts[start] : parts.slice(start, end).join("\n"), end - start);
  }

  #write(frame: string, count: number): void {
    this.#sink.send(frame);
    this.envelopesOut += count;
    this.bytesOut += frame.length;
  }

  #checkPressure(): boolean {
    const budget = this.#opts.budget;
    if (budget !== undefined && budget.counter.bytes > budget.max) budget.onOver();
    const pending = this.pendingBytes;
    const max = this.#opts.maxPendingBytes;
    if (pending <= max) {
      this.#overSince = undefined;
      return true;
    }
    if (pending > 2 * max) {
      this.#cut("over_limit");
      return false;
    }
    this.#watchOver(performance.now());
    return !this.#closed;
  }

  /** Over the bound at `now`: remember since when, and look again when the timeout is up. */
  #watchOver(now: number): void {
    this.#overSince ??= now;
    if (this.#fullTimer !== undefined) return;
    const due = this.#overSince + this.#opts.backpressureTimeoutMs - now;
    this.#fullTimer = setTimeout(() => {
      this.#fullTimer = undefined;
      this.check(performance.now());
    }, Math.max(0, due));
  }

  /**
   * Applies the backpressure rule at `now` and cuts the client if it says so; the gateway calls
   * this periodically to catch stalled readers that nobody pushes to. Returns the cut reason.
   */
  check(now: number): CutReason | undefined {
    if (this.#closed) return undefined;
    const pending = this.pendingBytes;
    if (pending <= this.#opts.maxPendingBytes) this.#overSince = undefined;
    else this.#overSince ??= now;
    const reason = pressureVerdict({
      pending,
      overSince: this.#overSince,
      progressAt: Math.max(this.#sink.lastProgressAt, this.#busySince),
      now,
    }, this.#opts);
    if (reason !== undefined) this.#cut(reason);
    else if (this.#overSince !== undefined) this.#watchOver(now);
    return reason;
  }

  #cut(reason: CutReason): void {
    if (this.#closed) return;
    this.close();
    this.#opts.onBackpressure(reason);
  }

  /** Stops the queue: drops what is queued, clears timers, releases waiting producers. */
  close(): void {
    this.#closed = true;
    this.#wakeDrained();
    this.#parts = [];
    this.#queuedBytes = 0;
    if (this.#fullTimer !== undefined) {
      clearTimeout(this.#fullTimer);
      this.#fullTimer = undefined;
    }
  }
}
