/** The per-session outbound queue: coalesces envelopes into NDJSON frames and enforces backpressure.
 * Everything queued in one task goes out as one frame once that task's microtasks settle.
 * @module */

/** The part of a WebSocket the queue needs. */
export interface FrameSink {
  /** Sends one text frame. */
  send(data: string): void;
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
}

/** Options of {@link OutboundQueue}. */
export interface OutboundOptions {
  /** The queue is full above this many pending bytes (queued + socket buffer). */
  maxPendingBytes: number;
  /** How long the queue may stay full before `onBackpressure` is called. */
  backpressureTimeoutMs: number;
  /** Called once when the client is too slow; the owner closes the session (4008). */
  onBackpressure: () => void;
  /** Largest frame the queue builds when coalescing (a single larger envelope still goes alone). */
  maxFrameBytes?: number;
}

/**
 * Microtask checkpoints without a new envelope before a flush. An async producer (a `for await`
 * over a JetStream consumer) queues one envelope every few microtasks, all within one task: the
 * flush waits until it pauses, so its burst leaves as one frame. Still no timer, so no latency.
 */
const _SETTLE_TICKS = 8;

/**
 * A bounded outbound queue. Envelopes are never dropped silently: above `maxPendingBytes` the
 * queue counts as full, and a client whose queue stays full for `backpressureTimeoutMs`, or grows
 * to twice the bound, is cut off through `onBackpressure`.
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
  }

  /** Bytes waiting in this queue and in the socket. */
  get pendingBytes(): number {
    let buffered = 0;
    try {
      buffered = this.#sink.bufferedAmount;
    } catch {
      // socket gone
    }
    return this.#queuedBytes + buffered;
  }

  /** Queues one serialised envelope. Returns false when the queue is closed or overflowing. */
  push(envelope: string): boolean {
    if (this.#closed) return false;
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

  /** Queues an envelope and flushes now (used right before closing). */
  pushNow(envelope: string): void {
    if (this.#closed) return;
    this.#parts.push(envelope);
    this.#queuedBytes += envelope.length + 1;
    this.flush();
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
    const pending = this.pendingBytes;
    const max = this.#opts.maxPendingBytes;
    if (pending <= max) return true;
    if (pending > 2 * max) {
      this.#overflow();
      return false;
    }
    if (this.#fullTimer === undefined) {
      this.#fullTimer = setTimeout(() => {
        this.#fullTimer = undefined;
        if (this.#closed) return;
        if (this.pendingBytes > max) this.#overflow();
      }, this.#opts.backpressureTimeoutMs);
    }
    return true;
  }

  #overflow(): void {
    if (this.#closed) return;
    this.close();
    this.#opts.onBackpressure();
  }

  /** Stops the queue: drops what is queued, clears timers. */
  close(): void {
    this.#closed = true;
    this.#parts = [];
    this.#queuedBytes = 0;
    if (this.#fullTimer !== undefined) {
      clearTimeout(this.#fullTimer);
      this.#fullTimer = undefined;
    }
  }
}
