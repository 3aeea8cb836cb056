/** The per-session outbound queue: coalesces envelopes into NDJSON frames and enforces backpressure.
 * Everything queued in one task goes out as one frame at the end of that task (a microtask).
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
      queueMicrotask(this.#flushTask);
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
    this.#scheduled = false;
    this.flush();
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
      let start = 0;
      let size = 0;
      for (let i = 0; i < parts.length; i++) {
        size += parts[i].length + 1;
        if (size >= this.#maxFrame || i === parts.length - 1) {
          const frame = i === start ? parts[i] : parts.slice(start, i + 1).join("\n");
          this.#write(frame, i + 1 - start);
          start = i + 1;
          size = 0;
        }
      }
    } catch {
      // The socket closed under us; the session's close handler cleans up.
      this.close();
    }
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
