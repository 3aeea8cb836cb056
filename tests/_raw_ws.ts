/** A WebSocket client on a raw TCP socket, for delivery tests: it reads at a controlled rate, stalls
 * and resumes, parses the server's frames (text, continuation, ping, close) itself, and sends
 * masked client frames. Also: exact sequence checks for the messages tests publish.
 * @module */

import type { Envelope } from "./_harness.ts";

/** How a raw connection ended. */
export interface RawEnd {
  /** `close`: a close frame arrived; `eof`: the peer closed TCP; `reset`: the read failed. */
  how: "close" | "eof" | "reset";
  /** The close frame's code (only with `how: "close"`; 1005 when the frame had none). */
  code?: number;
  /** The close frame's reason. */
  reason?: string;
}

import { encodeClientFrame, Opcode } from "../src/transport/ws_frame.ts";
import { dialWebSocket, writeAll } from "../src/transport/raw_client.ts";

const _CHUNK = 64 * 1024;
const _enc = new TextEncoder();

/**
 * A protocol v1 client on a raw TCP socket whose reading the test controls.
 *
 * @example
 * ```ts
 * const c = await RawWsClient.connect(stack.gateway.wsUrl, await stack.token("u"));
 * await c.request({ op: "sub", target: "a.b" });
 * c.stall(); // the socket is no longer read: the gateway's pending bytes grow
 * c.resume(640 * 1024); // read again, at most 640 KB/s
 * ```
 */
export class RawWsClient {
  /** The TCP connection. */
  readonly conn: Deno.TcpConn;
  /** Every envelope received, in order. */
  readonly received: Envelope[] = [];
  /** Bytes read from the socket so far. */
  bytesRead = 0;
  /** Resolves when the connection ended (close frame, EOF or a failed read). */
  readonly ended: Promise<RawEnd>;
  #end!: (e: RawEnd) => void;
  #done = false;
  #buf = new Uint8Array(1 << 20);
  #start = 0;
  #len = 0;
  #text: Uint8Array[] = [];
  #dec = new TextDecoder();
  /** Bytes per second when reading; 0: unlimited; -1: stalled. */
  #rate = 0;
  #wake?: () => void;
  #rateFrom = 0;
  #rateBytes = 0;
  #waiters: Array<() => void> = [];
  #inbox = 0;

  private constructor(conn: Deno.TcpConn, rest: Uint8Array, rate: number) {
    this.conn = conn;
    this.#rate = rate;
    this.ended = new Promise((r) => this.#end = r);
    this.#append(rest);
    this.#parse();
    this.#pump();
  }

  /**
   * Upgrades a raw socket to a WebSocket (token in the query) and starts reading: at full speed,
   * or not at all with `stalled: true`.
   */
  static async connect(
    url: string,
    token: string,
    opts: { stalled?: boolean; rate?: number } = {},
  ): Promise<RawWsClient> {
    const u = new URL(url);
    u.searchParams.set("token", token);
    const { conn, rest } = await dialWebSocket(u.toString());
    return new RawWsClient(conn, rest, opts.stalled ? -1 : opts.rate ?? 0);
  }

  /** Stops reading the socket (the kernel buffers fill, then the gateway's). */
  stall(): void {
    this.#rate = -1;
  }

  /** Reads again, at most `bytesPerSecond` (0: as fast as the socket gives). */
  resume(bytesPerSecond = 0): void {
    this.#rate = bytesPerSecond;
    this.#rateFrom = performance.now();
    this.#rateBytes = 0;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Whether the connection has ended. */
  get done(): boolean {
    return this.#done;
  }

  /** Sends envelopes as one masked text frame. */
  async send(...envs: Array<Record<string, unknown>>): Promise<void> {
    const text = envs.map((e) => JSON.stringify(e)).join("\n");
    await writeAll(this.conn, encodeClientFrame(Opcode.TEXT, _enc.encode(text)));
  }

  /** Sends an op with a fresh inbox and waits for its answer (needs the client reading). */
  async request(env: Record<string, unknown>, ms = 5000): Promise<Envelope> {
    const inbox = `r${++this.#inbox}`;
    await this.send({ ...env, inbox });
    return await this.next(
      (e) => e.inbox === inbox && (e.op === "reply" || e.op === "error"),
      ms,
      `answer to ${inbox}`,
    );
  }

  /** Subscribes (core, optionally in a queue group) and returns the sid; throws on error. */
  async sub(subject: string, queue?: string): Promise<string> {
    const r = await this.request({
      op: "sub",
      target: subject,
      data: queue === undefined ? undefined : { queue },
    });
    if (r.op !== "reply") throw new Error(`sub ${subject} failed: ${JSON.stringify(r.data)}`);
    return r.data.id;
  }

  /** Waits for the first envelope matching `pred`. */
  async next(pred: (e: Envelope) => boolean, ms = 5000, what = "envelope"): Promise<Envelope> {
    const end = Date.now() + ms;
    while (true) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      const left = end - Date.now();
      if (left <= 0 || this.#done) {
        const last = this.received.slice(-3).map(brief);
        throw new Error(`raw client: no ${what}; last ${JSON.stringify(last)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Messages received on a subscription id. */
  msgs(sid: string): Envelope[] {
    return this.received.filter((e) => e.op === "msg" && e.sid === sid);
  }

  /** Reads everything left at full speed and waits for the end of the connection. */
  async drain(): Promise<RawEnd> {
    this.resume(0);
    return await this.ended;
  }

  /** Closes the TCP connection (no close handshake). */
  close(): void {
    this.#finish({ how: "eof" });
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  #finish(e: RawEnd): void {
    if (this.#done) return;
    this.#done = true;
    this.#end(e);
    this.#notify();
    this.#wake?.();
  }

  #notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async #pump(): Promise<void> {
    const chunk = new Uint8Array(_CHUNK);
    try {
      while (!this.#done) {
        if (this.#rate < 0) {
          await new Promise<void>((r) => this.#wake = r);
          continue;
        }
        let want = _CHUNK;
        if (this.#rate > 0) {
          // Throttle: read no more than the rate allows since resume() (this is the scenario's
          // slow reader, not a synchronisation).
          want = Math.max(1024, Math.min(_CHUNK, Math.floor(this.#rate / 50)));
          const due = this.#rateFrom + (this.#rateBytes / this.#rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          if (this.#done || this.#rate < 0) continue;
        }
        const n = await this.conn.read(chunk.subarray(0, want));
        if (n === null) {
          this.#finish({ how: "eof" });
          break;
        }
        this.bytesRead += n;
        this.#rateBytes += n;
        this.#append(chunk.subarray(0, n));
        this.#parse();
      }
    } catch {
      this.#finish({ how: "reset" });
    }
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const end = this.#start + this.#len;
    if (end + bytes.length > this.#buf.length) {
      if (this.#len + bytes.length > this.#buf.length) {
        const next = new Uint8Array(Math.max(this.#len + bytes.length, this.#buf.length * 2));
        next.set(this.#buf.subarray(this.#start, end));
        this.#buf = next;
      } else this.#buf.copyWithin(0, this.#start, end);
      this.#start = 0;
    }
    this.#buf.set(bytes, this.#start + this.#len);
    this.#len += bytes.length;
  }

  #parse(): void {
    while (this.#len >= 2 && !this.#done) {
      const b = this.#buf;
      const s = this.#start;
      const fin = (b[s] & 0x80) !== 0;
      const opcode = b[s] & 0x0f;
      if ((b[s + 1] & 0x80) !== 0) throw new Error("server frames must not be masked");
      let n = b[s + 1] & 0x7f;
      let head = 2;
      if (n === 126) {
        if (this.#len < 4) return;
        n = (b[s + 2] << 8) | b[s + 3];
        head = 4;
      } else if (n === 127) {
        if (this.#len < 10) return;
        n = Number(new DataView(b.buffer, b.byteOffset + s + 2, 8).getBigUint64(0));
        head = 10;
      }
      if (this.#len < head + n) return;
      const payload = b.slice(s + head, s + head + n);
      this.#start += head + n;
      this.#len -= head + n;
      if (this.#len === 0) this.#start = 0;
      this.#frame(fin, opcode, payload);
    }
  }

  #frame(fin: boolean, opcode: number, payload: Uint8Array): void {
    switch (opcode) {
      case 0:
      case 1: {
        this.#text.push(payload);
        if (!fin) return;
        const parts = this.#text;
        this.#text = [];
        let text = "";
        for (const p of parts) text += this.#dec.decode(p, { stream: true });
        text += this.#dec.decode();
        for (const line of text.split("\n")) if (line) this.received.push(JSON.parse(line));
        this.#notify();
        return;
      }
      case 8: {
        const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
        const reason = new TextDecoder().decode(payload.subarray(2));
        this.#finish({ how: "close", code, reason });
        try {
          this.conn.close();
        } catch {
          // gone
        }
        return;
      }
      case 9:
        writeAll(this.conn, encodeClientFrame(Opcode.PONG, payload)).catch(() => {});
        return;
      default:
        return; // pong or binary: nothing to do
    }
  }
}

/** A short description of an envelope for failure messages (never the payload's padding). */
export function brief(e: Envelope): string {
  const seq = e.data?.payload?.seq ?? e.data?.value?.seq;
  const parts = [e.op, e.sid && `sid=${e.sid}`, seq !== undefined && `seq=${seq}`];
  if (e.op === "error") parts.push(`code=${e.data?.code}`);
  if (e.op === "cap_update") parts.push(`revoked=${JSON.stringify(e.data?.revoked)}`);
  return parts.filter(Boolean).join(" ");
}

/**
 * Asserts that `seqs` is exactly `from, from+1, …, to`: names the first gap, duplicate or
 * reordering otherwise.
 *
 * @example
 * ```ts
 * assertExactSeq([1, 2, 3], 1, 3, "healthy"); // passes
 * assertExactSeq([1, 3], 1, 3, "healthy"); // throws: gap at index 1
 * ```
 */
export function assertExactSeq(seqs: number[], from: number, to: number, what: string): void {
  const problem = seqProblem(seqs, from);
  if (problem) throw new Error(`${what}: ${problem} (expected ${from}..${to})`);
  const want = to - from + 1;
  if (seqs.length !== want) {
    throw new Error(
      `${what}: ${seqs.length} messages, expected ${want} (${from}..${to}); ` +
        `last ${seqs.at(-1)}`,
    );
  }
}

/** Asserts that `seqs` is `from, from+1, …` (possibly cut short, possibly empty). */
export function assertGaplessPrefix(seqs: number[], from: number, what: string): void {
  const problem = seqProblem(seqs, from);
  if (problem) throw new Error(`${what}: ${problem}`);
}

/** Describes the first place where `seqs` departs from `from, from+1, …`, or undefined. */
export function seqProblem(seqs: number[], from: number): string | undefined {
  for (let i = 0; i < seqs.length; i++) {
    const want = from + i;
    const got = seqs[i];
    if (got === want) continue;
    const around = JSON.stringify(seqs.slice(Math.max(0, i - 2), i + 3));
    if (got > want) return `gap at index ${i}: ${want}..${got - 1} missing (around ${around})`;
    if (seqs.slice(0, i).includes(got)) {
      return `duplicate ${got} at index ${i} (around ${around})`;
    }
    return `out of order: ${got} at index ${i}, expected ${want} (around ${around})`;
  }
  return undefined;
}
