/** One server-side WebSocket over a raw `Deno.Conn`: a read loop feeding the frame decoder, one
 * coalescing write loop with exact byte accounting, and a close handshake bounded in time.
 * @module */

import {
  encodeClose,
  encodeFrame,
  encodeText,
  FrameDecoder,
  Opcode,
  validCloseCode,
  WsClose,
} from "./ws_frame.ts";

/** Options of one WebSocket connection. */
export interface WsOptions {
  /** Largest inbound message, summed over fragments (default 65536); larger: close 1009. */
  maxMessageBytes?: number;
  /** Most continuation frames per inbound message (default 64); more: close 1009. */
  maxFragments?: number;
  /** After our close frame is queued, the TCP socket is aborted this much later at most
   * (default 5000). */
  closeTimeoutMs?: number;
  /** Nothing received for this long: ping; nothing again for as long: abort (default 60 000). */
  idleTimeoutMs?: number;
  /** Shared counter: `bytes` grows when bytes are queued and shrinks when the kernel accepted
   * them (or they were dropped), so a server can keep a total over all connections. */
  pending?: { bytes: number };
}

/** Read buffer of an idle connection; larger frames are read straight into their payload. */
const _SMALL_READ = 1024;
const _MAX_READ = 64 * 1024;
/** Largest single `conn.write` when frames are coalesced. */
const _MAX_BATCH = 256 * 1024;
/** A frame at least this large is written from its own buffer, not copied into a batch. */
const _NO_COPY = 64 * 1024;

// ignoreBOM: a leading U+FEFF is message content, not a marker to strip.
const _utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Hooks the server gives a connection when it attaches the socket (internal). */
export interface WsAttachment {
  /** Closes the TCP socket and does the server's bookkeeping; idempotent. */
  closeSocket(): void;
  /** Error reporting (handler exceptions). */
  onError?(err: unknown, where: string): void;
}

/**
 * A server-side WebSocket, returned by `upgradeWebSocket()`. Set the handlers at once; frames
 * queued with `send()` before the 101 response is written go out right after it.
 *
 * `onclose` fires exactly once, after the TCP socket is closed: with the peer's close code, or
 * 1006 when the peer sent none (it vanished, or was aborted by a timeout or `abort()`).
 */
export class WsConnection {
  /** A complete, valid UTF-8 text message. */
  onmessage: ((text: string) => void) | null = null;
  /** A complete binary message. */
  onbinary: ((bytes: Uint8Array) => void) | null = null;
  /** The socket is gone: the peer's close code and reason, or 1006. */
  onclose: ((code: number, reason: string) => void) | null = null;
  /** The 101 response was written and frames flow (an addition to the agreed API). */
  onopen: (() => void) | null = null;
  /** The kernel accepted queued bytes (`pendingBytes` fell): the drain signal, per write. */
  onprogress: (() => void) | null = null;
  /** The TCP peer. */
  readonly remoteAddr: Deno.NetAddr;

  #decoder: FrameDecoder;
  #conn?: Deno.Conn;
  #hooks?: WsAttachment;
  #closeTimeoutMs: number;
  #idleTimeoutMs: number;
  #shared?: { bytes: number };
  // write side
  #queue: Uint8Array[] = []; // frames from #qHead on are queued (no O(n) shift)
  #qHead = 0;
  #headOff = 0; // bytes of the head frame already written
  #inflight = 0; // frames at the queue's front covered by the write in progress
  #writing = false;
  #pendingBytes = 0;
  #bytesWritten = 0;
  #lastProgressAt = performance.now();
  // close state
  #closing = false; // our close frame is queued (or the peer's close was answered)
  #closeFlushed = false; // our close frame has been written
  #peerClose?: { code: number; reason: string };
  #gone = false;
  #closeTimer?: ReturnType<typeof setTimeout>;
  #idleTimer?: ReturnType<typeof setTimeout>;
  #lastRecvAt = performance.now();
  /** When the last idle ping was queued (undefined: none outstanding). */
  #pingedAt?: number;

  /** Created by `upgradeWebSocket()`; not meant to be constructed by applications. */
  constructor(remoteAddr: Deno.NetAddr, opts: WsOptions = {}) {
    this.remoteAddr = remoteAddr;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.#shared = opts.pending;
    this.#decoder = new FrameDecoder({
      message: (op, payload) => this.#onMessage(op, payload),
      control: (op, payload) => this.#onControl(op, payload),
      error: (code, reason) => this.close(code, reason),
    }, { maxMessageBytes: opts.maxMessageBytes, maxFragments: opts.maxFragments });
  }

  /** Largest inbound message (applies from the next frame on). */
  get maxMessageBytes(): number {
    return this.#decoder.maxMessageBytes;
  }
  set maxMessageBytes(n: number) {
    this.#decoder.maxMessageBytes = n;
  }

  /** Bytes queued and not yet accepted by the kernel (exact, synchronous). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes the kernel has accepted so far: grows only while the peer drains. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** `performance.now()` of the last write that moved bytes (or of creation). */
  get lastProgressAt(): number {
    return this.#lastProgressAt;
  }

  /** Whether `close()` or `abort()` was called, or the peer closed. */
  get closed(): boolean {
    return this.#closing || this.#gone || this.#peerClose !== undefined;
  }

  /** Queues one text frame; a no-op once closed. */
  send(text: string): void {
    if (this.closed) return;
    this.#enqueue(encodeText(text), false);
  }

  /**
   * Starts the closing handshake: what is queued is still written, then the close frame; no more
   * messages are delivered, and the socket is aborted after `closeTimeoutMs` whatever the peer
   * does (so a peer that stops reading cannot hold it). Idempotent.
   */
  close(code: number = WsClose.NORMAL, reason = ""): void {
    this.#startClose(code, reason, false, undefined);
  }

  /**
   * Closes at once for a reader that fell behind: queued data not yet being written is dropped,
   * then `last` (if any) and the close frame are queued; aborted after `closeTimeoutMs`.
   */
  cut(code: number, reason: string, last?: string): void {
    this.#startClose(code, reason, true, last);
  }

  #startClose(code: number, reason: string, drop: boolean, last: string | undefined): void {
    if (this.#closing || this.#gone) return;
    if (drop) this.#dropQueued();
    if (last !== undefined) this.#enqueue(encodeText(last), false);
    this.#closing = true;
    this.#enqueue(encodeClose(code, reason), false);
    this.#closeTimer = setTimeout(() => this.abort(), this.#closeTimeoutMs);
  }

  /** Closes the TCP socket now. */
  abort(): void {
    this.#teardown();
  }

  /** Attaches the socket once the 101 is written (server internal). */
  _attach(conn: Deno.Conn, leftover: Uint8Array | undefined, hooks: WsAttachment): void {
    this.#conn = conn;
    this.#hooks = hooks;
    if (this.#gone) {
      hooks.closeSocket();
      return;
    }
    this.#armIdle(this.#idleTimeoutMs);
    try {
      this.onopen?.();
    } catch (err) {
      hooks.onError?.(err, "ws onopen");
    }
    this.#pump();
    this.#readLoop(leftover).catch((err) => {
      hooks.onError?.(err, "ws read");
      this.#teardown();
    });
  }

  /** The upgrade did not happen (the handler returned another response): report it gone. */
  _discard(): void {
    this.#teardown();
  }

  async #readLoop(leftover: Uint8Array | undefined): Promise<void> {
    const conn = this.#conn!;
    const dec = this.#decoder;
    if (leftover?.length) dec.feed(leftover);
    let buf = new Uint8Array(_SMALL_READ);
    while (!this.#gone) {
      const direct = dec.failed ? null : dec.directTarget(_SMALL_READ);
      let n: number | null;
      try {
        n = await conn.read(direct ?? buf);
      } catch {
        n = null; // reset, or our own close() cancelled the read
      }
      if (n === null) return this.#teardown();
      this.#lastRecvAt = performance.now();
      if (dec.failed) continue; // draining a failed peer until our close is out
      if (direct) {
        dec.advance(n);
      } else {
        dec.feed(buf.subarray(0, n));
        if (n === buf.length && buf.length < _MAX_READ) buf = new Uint8Array(buf.length * 2);
        else if (n < buf.length >> 2 && buf.length > _SMALL_READ) buf = new Uint8Array(_SMALL_READ);
      }
    }
  }

  #onMessage(op: number, payload: Uint8Array): void {
    if (this.closed) return;
    if (op === Opcode.TEXT) {
      let text: string;
      try {
        text = _utf8.decode(payload);
      } catch {
        return this.close(WsClose.INVALID_DATA, "invalid UTF-8");
      }
      this.#deliver(() => this.onmessage?.(text));
    } else {
      this.#deliver(() => this.onbinary?.(payload));
    }
  }

  #deliver(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#hooks?.onError?.(err, "ws handler");
    }
  }

  #onControl(op: number, payload: Uint8Array): void {
    if (op === Opcode.PING) {
      if (!this.closed) this.#pong(encodeFrame(Opcode.PONG, payload));
      return;
    }
    if (op !== Opcode.CLOSE) return; // pong: receiving it already counts as activity
    let code: number = WsClose.NO_STATUS;
    let reason = "";
    let bad: [number, string] | undefined;
    if (payload.length === 1) bad = [WsClose.PROTOCOL_ERROR, "bad close frame"];
    else if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      if (!validCloseCode(code)) bad = [WsClose.PROTOCOL_ERROR, "bad close code"];
      try {
        reason = _utf8.decode(payload.subarray(2));
      } catch {
        bad ??= [WsClose.INVALID_DATA, "invalid UTF-8 in close reason"];
      }
    }
    this.#peerClose = { code: bad ? WsClose.ABNORMAL : code, reason: bad ? "" : reason };
    if (this.#closing) {
      // Our close was queued first: the handshake is complete once it is written.
      if (this.#closeFlushed) this.#teardown();
      return;
    }
    this.#closing = true;
    this.#dropQueued();
    const echo = bad ? bad[0] : code === WsClose.NO_STATUS ? WsClose.NORMAL : code;
    this.#enqueue(encodeClose(echo, bad ? bad[1] : ""), true);
    this.#closeTimer = setTimeout(() => this.abort(), this.#closeTimeoutMs);
  }

  /** The queued pong that no write has started on yet, if any. */
  #queuedPong?: Uint8Array;

  /**
   * Answers a ping. At most one pong waits in the queue: a newer ping replaces its payload (RFC
   * 6455 5.5.3 allows answering only the latest), so a ping flood costs O(1) each and no memory.
   */
  #pong(frame: Uint8Array): void {
    const old = this.#queuedPong;
    if (old !== undefined) {
      const first = this.#qHead + Math.max(this.#inflight, this.#headOff > 0 ? 1 : 0);
      // Control frames go to the front, so the waiting pong is found within a few steps.
      const at = this.#queue.indexOf(old, first);
      if (at >= 0) {
        this.#queue[at] = frame;
        const delta = frame.length - old.length;
        this.#pendingBytes += delta;
        if (this.#shared) this.#shared.bytes += delta;
        this.#queuedPong = frame;
        return;
      }
    }
    this.#queuedPong = frame;
    this.#enqueue(frame, true);
  }

  /** Queues a frame; control frames go right after what is already being written. */
  #enqueue(frame: Uint8Array, control: boolean): void {
    if (this.#gone) return;
    if (control) {
      const at = this.#qHead + Math.max(this.#inflight, this.#headOff > 0 ? 1 : 0);
      if (at === this.#queue.length) this.#queue.push(frame);
      else this.#queue.splice(at, 0, frame);
    } else {
      this.#queue.push(frame);
    }
    this.#pendingBytes += frame.length;
    if (this.#shared) this.#shared.bytes += frame.length;
    this.#pump();
  }

  /** Drops queued frames that are not (partly) written yet. */
  #dropQueued(): void {
    this.#queuedPong = undefined;
    const keep = this.#qHead + Math.max(this.#inflight, this.#headOff > 0 ? 1 : 0);
    let dropped = 0;
    for (let i = keep; i < this.#queue.length; i++) dropped += this.#queue[i].length;
    this.#queue.length = keep;
    this.#pendingBytes -= dropped;
    if (this.#shared) this.#shared.bytes -= dropped;
  }

  #pump(): void {
    if (this.#writing || !this.#conn || this.#gone || this.#queued() === 0) return;
    this.#writing = true;
    this.#writeLoop().catch((err) => {
      this.#hooks?.onError?.(err, "ws write");
      this.#teardown();
    });
  }

  async #writeLoop(): Promise<void> {
    const conn = this.#conn!;
    try {
      while (this.#queued() > 0 && !this.#gone) {
        const chunk = this.#batch();
        let n: number;
        try {
          n = await conn.write(chunk);
        } catch {
          return this.#teardown(); // reset, or aborted
        }
        if (this.#gone) return;
        this.#accepted(n);
      }
    } finally {
      this.#writing = false;
      this.#inflight = 0;
    }
  }

  /** The next bytes to write: the head frame alone, or several small frames copied together. */
  #batch(): Uint8Array {
    const q = this.#queue, h = this.#qHead;
    const head = q[h].subarray(this.#headOff);
    if (q.length - h === 1 || head.length >= _NO_COPY) {
      this.#inflight = 1;
      if (q[h] === this.#queuedPong) this.#queuedPong = undefined; // being written now
      return head;
    }
    let total = head.length;
    let k = h + 1;
    while (k < q.length && q[k].length < _NO_COPY && total + q[k].length <= _MAX_BATCH) {
      total += q[k++].length;
    }
    this.#inflight = k - h;
    const pong = this.#queuedPong;
    if (pong !== undefined) {
      for (let i = h; i < k; i++) if (q[i] === pong) this.#queuedPong = undefined;
    }
    if (k === h + 1) return head;
    const out = new Uint8Array(total);
    out.set(head, 0);
    let o = head.length;
    for (let i = h + 1; i < k; i++) {
      out.set(q[i], o);
      o += q[i].length;
    }
    return out;
  }

  /** Accounts for `n` bytes the kernel accepted off the queue's front. */
  #accepted(n: number): void {
    if (n > 0) {
      this.#bytesWritten += n;
      this.#pendingBytes -= n;
      if (this.#shared) this.#shared.bytes -= n;
      this.#lastProgressAt = performance.now();
    }
    this.#accountFrames(n);
    if (n > 0 && this.onprogress !== null) this.#deliver(this.onprogress);
  }

  /** Moves the queue's front past `n` written bytes; notices when our close frame is out. */
  #accountFrames(n: number): void {
    let left = n;
    while (left > 0) {
      const q = this.#queue; // #shift() may compact it into a new array
      const rest = q[this.#qHead].length - this.#headOff;
      if (left < rest) {
        this.#headOff += left;
        break;
      }
      left -= rest;
      const frame = q[this.#qHead];
      this.#shift();
      this.#headOff = 0;
      this.#inflight--;
      if (this.#closing && this.#queued() === 0 && frame[0] === (0x80 | Opcode.CLOSE)) {
        this.#closeFlushed = true;
        // The peer has closed too: the handshake is complete and nothing more will arrive.
        if (this.#peerClose) return this.#teardown();
        // Otherwise say we are done writing (FIN) and keep reading until the peer's close or
        // EOF: closing while its data is still arriving would reset the connection and lose the
        // close frame on its side. The close timeout bounds the wait.
        try {
          this.#conn?.closeWrite();
        } catch {
          // already shut
        }
      }
    }
    this.#inflight = 0; // the next batch is computed afresh
  }

  #queued(): number {
    return this.#queue.length - this.#qHead;
  }

  /** Drops the head frame; the array is compacted once mostly consumed. */
  #shift(): void {
    const q = this.#queue;
    (q as (Uint8Array | undefined)[])[this.#qHead++] = undefined;
    if (this.#qHead === q.length) {
      this.#queue = [];
      this.#qHead = 0;
    } else if (this.#qHead >= 1024 && this.#qHead * 2 >= q.length) {
      this.#queue = q.slice(this.#qHead);
      this.#qHead = 0;
    }
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => this.#idleCheck(), ms);
  }

  /**
   * Nothing received for `idleTimeoutMs`: ping. Aborts only when nothing at all arrived since
   * that ping for another `idleTimeoutMs` (a reader that only listens answers pings and lives).
   */
  #idleCheck(): void {
    if (this.#gone) return;
    const now = performance.now();
    const since = now - this.#lastRecvAt;
    if (since < this.#idleTimeoutMs) {
      this.#pingedAt = undefined;
      return this.#armIdle(this.#idleTimeoutMs - since);
    }
    if (this.#pingedAt !== undefined && this.#lastRecvAt < this.#pingedAt) return this.abort();
    this.#pingedAt = now;
    if (!this.closed) this.#enqueue(encodeFrame(Opcode.PING, new Uint8Array(0)), true);
    this.#armIdle(this.#idleTimeoutMs);
  }

  #teardown(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#idleTimer);
    if (this.#shared) this.#shared.bytes -= this.#pendingBytes;
    this.#pendingBytes = 0;
    this.#queue = [];
    this.#qHead = 0;
    this.#headOff = 0;
    this.#hooks?.closeSocket();
    const pc = this.#peerClose;
    const code = pc ? pc.code : WsClose.ABNORMAL;
    try {
      this.onclose?.(code, pc?.reason ?? "");
    } catch (err) {
      this.#hooks?.onError?.(err, "ws onclose");
    }
  }
}
