/** A minimal WebSocket client on a raw TCP connection, for tests of slow readers: it reads a frame
 * only when asked, so not asking is a real stalled reader (the kernel buffers fill, then the
 * server's). Text and close frames, ping answered with pong, no extensions, no TLS.
 * @module */

import { encodeClientFrame } from "../src/transport/ws_frame.ts";
import { dialWebSocket, writeAll } from "../src/transport/raw_client.ts";

const _enc = new TextEncoder();

/** One frame (continuations already joined). */
export interface RawFrame {
  /** 1 text, 2 binary, 8 close. */
  opcode: number;
  data: Uint8Array;
}

/** A client WebSocket whose reads happen only in {@link RawWebSocket.read}. */
export class RawWebSocket {
  #conn: Deno.TcpConn;
  #buf: Uint8Array;
  #len: number;
  #closed = false;

  private constructor(conn: Deno.TcpConn, rest: Uint8Array) {
    this.#conn = conn;
    this.#buf = new Uint8Array(Math.max(65536, rest.length * 2));
    this.#buf.set(rest);
    this.#len = rest.length;
  }

  /** Connects and upgrades; `url` is `ws://host:port/path?query`. */
  static async connect(url: string): Promise<RawWebSocket> {
    const { conn, rest } = await dialWebSocket(url);
    return new RawWebSocket(conn, rest);
  }

  /** Sends a text frame (masked, as a client must). */
  async send(text: string): Promise<void> {
    await this.#sendFrame(1, _enc.encode(text));
  }

  /** The next data or close frame; null at end of stream. Pings are answered on the way. */
  async read(): Promise<RawFrame | null> {
    let parts: Uint8Array[] = [];
    let opcode = 0;
    while (true) {
      const f = this.#parse();
      if (!f) {
        if (!await this.#fill()) return null;
        continue;
      }
      if (f.opcode === 9) {
        await this.#sendFrame(10, f.data).catch(() => {});
        continue;
      }
      if (f.opcode === 10) continue;
      if (f.opcode !== 0) opcode = f.opcode;
      parts.push(f.data);
      if (!f.fin) continue;
      const data = parts.length === 1 ? parts[0] : _concat(parts);
      parts = [];
      return { opcode, data };
    }
  }

  /** Sends a close frame (1000) without waiting for the answer, then closes the connection. */
  async closeNormally(): Promise<void> {
    if (this.#closed) return;
    await this.#sendFrame(8, new Uint8Array([0x03, 0xe8])).catch(() => {});
    this.close();
  }

  /** Closes the TCP connection (no close handshake). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  #parse(): { fin: boolean; opcode: number; data: Uint8Array } | undefined {
    const b = this.#buf;
    if (this.#len < 2) return undefined;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (this.#len < 4) return undefined;
      len = (b[2] << 8) | b[3];
      off = 4;
    } else if (len === 127) {
      if (this.#len < 10) return undefined;
      len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
      off = 10;
    }
    if (b[1] & 0x80) off += 4; // a masked server frame would be a protocol error; skip the key
    if (this.#len < off + len) {
      if (b.length < off + len) {
        const nb = new Uint8Array(Math.max(b.length * 2, off + len));
        nb.set(b.subarray(0, this.#len));
        this.#buf = nb;
      }
      return undefined;
    }
    const b0 = b[0];
    const data = b.slice(off, off + len);
    b.copyWithin(0, off + len, this.#len);
    this.#len -= off + len;
    return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, data };
  }

  async #fill(): Promise<boolean> {
    if (this.#len === this.#buf.length) {
      const nb = new Uint8Array(this.#buf.length * 2);
      nb.set(this.#buf);
      this.#buf = nb;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#len));
    if (n === null) return false;
    this.#len += n;
    return true;
  }

  async #sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    await writeAll(this.#conn, encodeClientFrame(opcode, payload));
  }
}

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
