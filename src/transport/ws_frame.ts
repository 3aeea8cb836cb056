/** RFC 6455 framing: an incremental decoder for client frames (masked, size-limited before any
 * payload is buffered) and encoders for server frames (unmasked).
 * @module */

/** Frame opcodes. */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** Close codes the transport itself sends. */
export const WsClose = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  TOO_BIG: 1009,
} as const;

/** Where the decoder delivers what it finds. */
export interface FrameSink {
  /** A complete data message (text or binary), all fragments joined and unmasked. */
  message(opcode: number, payload: Uint8Array): void;
  /** A control frame (close, ping or pong), unmasked. */
  control(opcode: number, payload: Uint8Array): void;
  /** A protocol violation: the connection must be closed with `code`. The decoder stops. */
  error(code: number, reason: string): void;
}

/** Limits of a {@link FrameDecoder}. */
export interface DecoderLimits {
  /** Largest message, summed over its fragments (default 65536). */
  maxMessageBytes?: number;
  /** Most continuation frames in one message (default 64). */
  maxFragments?: number;
}

const _HEADER = 0; // reading the 2..14 header bytes
const _PAYLOAD = 1; // reading payload bytes of the current frame
const _FAILED = 2; // a violation was reported; input is ignored

/**
 * Incremental decoder of client-to-server frames. Feed it bytes as they arrive; it calls its
 * sink for each complete message, control frame or violation. A data frame whose declared length
 * would take the message past `maxMessageBytes` is refused (1009) from its header alone, before
 * any of its payload is buffered.
 *
 * @example
 * ```ts
 * const d = new FrameDecoder({
 *   message: (op, bytes) => console.log(op, bytes.length),
 *   control: () => {},
 *   error: (code, reason) => console.log("close", code, reason),
 * });
 * d.feed(new Uint8Array([0x81, 0x80, 0, 0, 0, 0])); // an empty masked text frame
 * ```
 */
export class FrameDecoder {
  /** Largest message, summed over fragments; may change at any time (applies to new frames). */
  maxMessageBytes: number;
  /** Most continuation frames per message. */
  maxFragments: number;
  #sink: FrameSink;
  #state = _HEADER;
  #hdr = new Uint8Array(14);
  #hdrLen = 0;
  // current frame
  #fin = false;
  #opcode = 0;
  #mask = new Uint8Array(4);
  #payload: Uint8Array = new Uint8Array(0);
  #filled = 0;
  // current fragmented data message
  #msgOpcode = 0; // 0: no message open
  #parts: Uint8Array[] = [];
  #msgBytes = 0;

  /** A decoder reporting to `sink`. */
  constructor(sink: FrameSink, limits: DecoderLimits = {}) {
    this.#sink = sink;
    this.maxMessageBytes = limits.maxMessageBytes ?? 65536;
    this.maxFragments = limits.maxFragments ?? 64;
  }

  /** Whether a violation was reported (all further input is ignored). */
  get failed(): boolean {
    return this.#state === _FAILED;
  }

  /**
   * Where the next payload bytes may be read directly (no copy), when a data frame's payload of
   * at least `min` bytes is still missing; otherwise null. Report what was read with
   * {@link FrameDecoder.advance}.
   */
  directTarget(min = 1024): Uint8Array | null {
    if (this.#state !== _PAYLOAD || this.#opcode >= 0x8) return null;
    if (this.#payload.length - this.#filled < min) return null;
    return this.#payload.subarray(this.#filled);
  }

  /** Accounts for `n` bytes read into the array returned by {@link FrameDecoder.directTarget}. */
  advance(n: number): void {
    this.#unmask(this.#filled, this.#filled + n);
    this.#filled += n;
    if (this.#filled === this.#payload.length) this.#frameDone();
  }

  /** Consumes `chunk` (it is not kept: payload bytes are copied). */
  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && this.#state !== _FAILED) {
      if (this.#state === _HEADER) {
        this.#hdr[this.#hdrLen++] = chunk[i++];
        const need = this.#headerNeed();
        if (this.#hdrLen === need) this.#headerDone();
      } else {
        const take = Math.min(n - i, this.#payload.length - this.#filled);
        this.#payload.set(chunk.subarray(i, i + take), this.#filled);
        this.#unmask(this.#filled, this.#filled + take);
        this.#filled += take;
        i += take;
        if (this.#filled === this.#payload.length) this.#frameDone();
      }
    }
  }

  /** Header bytes needed given what has been read so far. */
  #headerNeed(): number {
    if (this.#hdrLen < 2) return 2;
    if (!(this.#hdr[1] & 0x80)) return 2; // unmasked: refused as soon as it is seen
    const len7 = this.#hdr[1] & 0x7f;
    return (len7 === 126 ? 4 : len7 === 127 ? 10 : 2) + 4; // + mask key (checked when complete)
  }

  #fail(code: number, reason: string): void {
    this.#state = _FAILED;
    this.#parts = [];
    this.#payload = new Uint8Array(0);
    this.#sink.error(code, reason);
  }

  #headerDone(): void {
    const h = this.#hdr;
    const b0 = h[0], b1 = h[1];
    this.#hdrLen = 0;
    if (b0 & 0x70) return this.#fail(WsClose.PROTOCOL_ERROR, "reserved bits set");
    if (!(b1 & 0x80)) return this.#fail(WsClose.PROTOCOL_ERROR, "client frame not masked");
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    let len: number;
    let off: number;
    if (len7 === 126) {
      len = (h[2] << 8) | h[3];
      off = 4;
    } else if (len7 === 127) {
      if (h[2] & 0x80) return this.#fail(WsClose.PROTOCOL_ERROR, "64-bit length high bit set");
      const hi = ((h[2] << 24) >>> 0) + (h[3] << 16) + (h[4] << 8) + h[5];
      const lo = ((h[6] << 24) >>> 0) + (h[7] << 16) + (h[8] << 8) + h[9];
      len = hi * 0x1_0000_0000 + lo;
      off = 10;
    } else {
      len = len7;
      off = 2;
    }
    this.#mask.set(h.subarray(off, off + 4));
    if (opcode >= 0x8) {
      if (opcode !== Opcode.CLOSE && opcode !== Opcode.PING && opcode !== Opcode.PONG) {
        return this.#fail(WsClose.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      }
      if (!fin) return this.#fail(WsClose.PROTOCOL_ERROR, "fragmented control frame");
      if (len > 125) return this.#fail(WsClose.PROTOCOL_ERROR, "control frame too long");
    } else if (opcode === Opcode.CONTINUATION) {
      if (this.#msgOpcode === 0) {
        return this.#fail(WsClose.PROTOCOL_ERROR, "continuation without a message");
      }
      if (this.#parts.length > this.maxFragments) { // parts: first frame + continuations
        return this.#fail(WsClose.TOO_BIG, "too many fragments");
      }
    } else if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) {
      if (this.#msgOpcode !== 0) {
        return this.#fail(WsClose.PROTOCOL_ERROR, "new message inside a fragmented one");
      }
    } else {
      return this.#fail(WsClose.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    if (opcode < 0x8 && this.#msgBytes + len > this.maxMessageBytes) {
      return this.#fail(WsClose.TOO_BIG, "message too big");
    }
    this.#fin = fin;
    this.#opcode = opcode;
    this.#payload = len === 0 ? _EMPTY : new Uint8Array(len);
    this.#filled = 0;
    if (opcode < 0x8) this.#msgBytes += len;
    if (len === 0) this.#frameDone();
    else this.#state = _PAYLOAD;
  }

  #unmask(from: number, to: number): void {
    const p = this.#payload, m = this.#mask;
    for (let i = from; i < to; i++) p[i] ^= m[i & 3];
  }

  #frameDone(): void {
    this.#state = _HEADER;
    const payload = this.#payload;
    this.#payload = _EMPTY;
    const op = this.#opcode;
    if (op >= 0x8) return this.#sink.control(op, payload);
    if (op !== Opcode.CONTINUATION && this.#fin) {
      this.#msgBytes = 0;
      return this.#sink.message(op, payload);
    }
    if (op !== Opcode.CONTINUATION) this.#msgOpcode = op;
    this.#parts.push(payload);
    if (!this.#fin) return;
    const parts = this.#parts;
    const whole = new Uint8Array(this.#msgBytes);
    let o = 0;
    for (const p of parts) {
      whole.set(p, o);
      o += p.length;
    }
    const msgOp = this.#msgOpcode;
    this.#parts = [];
    this.#msgBytes = 0;
    this.#msgOpcode = 0;
    this.#sink.message(msgOp, whole);
  }
}

const _EMPTY = new Uint8Array(0);

/** Largest frame header: 2 bytes + 8 length bytes (server frames carry no mask). */
const _MAX_HEADER = 10;

function _header(buf: Uint8Array, end: number, opcode: number, len: number): number {
  // Writes the header ending at `end`; returns where it starts.
  if (len < 126) {
    buf[end - 2] = 0x80 | opcode;
    buf[end - 1] = len;
    return end - 2;
  }
  if (len < 0x10000) {
    buf[end - 4] = 0x80 | opcode;
    buf[end - 3] = 126;
    buf[end - 2] = len >>> 8;
    buf[end - 1] = len & 0xff;
    return end - 4;
  }
  const s = end - 10;
  buf[s] = 0x80 | opcode;
  buf[s + 1] = 127;
  const hi = Math.floor(len / 0x1_0000_0000);
  new DataView(buf.buffer, buf.byteOffset).setUint32(s + 2, hi);
  new DataView(buf.buffer, buf.byteOffset).setUint32(s + 6, len >>> 0);
  return s;
}

const _encoder = new TextEncoder();

/**
 * Encodes `text` as one unmasked final text frame with a single allocation: the UTF-8 bytes are
 * encoded in place after room for the header (ASCII fits exactly; other text is re-encoded once
 * into a buffer sized for the worst case).
 */
export function encodeText(text: string): Uint8Array {
  let buf = new Uint8Array(_MAX_HEADER + text.length);
  let r = _encoder.encodeInto(text, buf.subarray(_MAX_HEADER));
  if (r.read < text.length) {
    buf = new Uint8Array(_MAX_HEADER + text.length * 3);
    r = _encoder.encodeInto(text, buf.subarray(_MAX_HEADER));
  }
  const start = _header(buf, _MAX_HEADER, Opcode.TEXT, r.written);
  return buf.subarray(start, _MAX_HEADER + r.written);
}

/** Encodes one unmasked final frame of any opcode around a copy of `payload`. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(_MAX_HEADER + payload.length);
  buf.set(payload, _MAX_HEADER);
  const start = _header(buf, _MAX_HEADER, opcode, payload.length);
  return buf.subarray(start);
}

/** Encodes a close frame; the reason is cut to fit a control frame (123 bytes). */
export function encodeClose(code: number, reason = ""): Uint8Array {
  let r = _encoder.encode(reason);
  if (r.length > 123) {
    // Cut at a character boundary: a split UTF-8 sequence makes browsers fail the connection.
    let end = 123;
    while (end > 0 && (r[end] & 0xc0) === 0x80) end--;
    r = r.subarray(0, end);
  }
  const p = new Uint8Array(2 + r.length);
  p[0] = code >>> 8;
  p[1] = code & 0xff;
  p.set(r, 2);
  return encodeFrame(Opcode.CLOSE, p);
}

/** Whether a close code may appear in a close frame sent by a peer (RFC 6455 section 7.4). */
export function validCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

/**
 * Encodes a masked client frame (for tests and tools speaking to a server).
 * @param mask four mask bytes (default random)
 */
export function encodeClientFrame(
  opcode: number,
  payload: Uint8Array,
  opts: { fin?: boolean; mask?: Uint8Array; rsv?: number } = {},
): Uint8Array {
  const len = payload.length;
  const hlen = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const buf = new Uint8Array(hlen + 4 + len);
  const start = _header(buf, hlen, opcode, len);
  if (opts.fin === false) buf[start] &= 0x7f;
  buf[start] |= (opts.rsv ?? 0) << 4;
  buf[1] |= 0x80;
  const mask = opts.mask ?? crypto.getRandomValues(new Uint8Array(4));
  buf.set(mask, hlen);
  for (let i = 0; i < len; i++) buf[hlen + 4 + i] = payload[i] ^ mask[i & 3];
  return buf;
}
