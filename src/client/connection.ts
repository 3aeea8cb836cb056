/** One WebSocket to a gateway: sends the `auth` frame on open, coalesces outbound envelopes into
 * NDJSON frames, splits inbound frames into envelopes, keeps the socket alive with pings, and
 * reports its end once. Reconnecting is the client's business; a Connection is never reused.
 * @module */

import type { ClientFrame, ServerFrame } from "../protocol/types.ts";
import { ConnectionError, type NatsgateError } from "./errors.ts";
import { coalesce } from "./outbox.ts";

/** Coalesced frames are cut at this many UTF-16 units (the gateway's default limit is 64 KiB). */
const _MAX_COALESCED_CHARS = 16_384;

/** What a {@link Connection} tells its owner. */
export interface ConnectionEvents {
  /** One envelope of an inbound frame (pongs to the keepalive are handled inside). */
  envelope(env: ServerFrame): void;
  /** An inbound line that is not JSON. */
  unreadable(err: unknown): void;
  /**
   * The socket ended: closed by the gateway or the network (`error` undefined), or given up by
   * the keepalive (`error` set). `opened` says whether it ever opened. Called at most once.
   */
  closed(code: number, reason: string, opened: boolean, error?: NatsgateError): void;
}

/**
 * A WebSocket that authenticates with `auth` frames (browsers cannot set headers).
 *
 * @example
 * ```ts
 * const conn = new Connection("ws://127.0.0.1:8080/ws", events);
 * conn.authenticate(token, "c1"); // sent when the socket opens
 * ```
 */
export class Connection {
  /** The gateway URL. */
  readonly url: string;
  readonly #ws: WebSocket;
  readonly #events: ConnectionEvents;
  #opened = false;
  #done = false;
  #auth: string | undefined;
  #outbox: string[] = [];
  #flushQueued = false;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pingInbox: string | undefined;

  /** Dials `url` at once; throws (a `SyntaxError`) for a URL a WebSocket cannot take. */
  constructor(url: string, events: ConnectionEvents) {
    this.url = url;
    this.#events = events;
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.onopen = () => {
      this.#opened = true;
      if (this.#auth !== undefined) ws.send(this.#auth);
      this.#auth = undefined;
      this.#flush();
    };
    ws.onmessage = (e) => {
      if (!this.#done && typeof e.data === "string") this.#onFrame(e.data);
    };
    ws.onclose = (e) => this.#end(e.code, e.reason, undefined);
    ws.onerror = () => {};
  }

  /** The socket opened. */
  get opened(): boolean {
    return this.#opened;
  }

  /** Sends `auth` as the first frame (when the socket opens, or now if it is open). */
  authenticate(token: string, inbox: string): void {
    const frame = JSON.stringify({ op: "auth", inbox, data: { token } });
    if (this.#opened) this.#ws.send(frame);
    else this.#auth = frame;
  }

  /** Queues an envelope; all envelopes queued in one task go out as one NDJSON frame. */
  send(env: ClientFrame): void {
    if (this.#done || this.#ws.readyState !== WebSocket.OPEN) return;
    this.#outbox.push(JSON.stringify(env));
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const lines = this.#outbox;
    this.#outbox = [];
    if (this.#done || this.#ws.readyState !== WebSocket.OPEN) return;
    for (const frame of coalesce(lines, _MAX_COALESCED_CHARS)) this.#ws.send(frame);
  }

  /**
   * Pings every `everyMs` (0: never); a ping unanswered for a whole period ends the connection
   * with a `ConnectionError`, even if the socket still says open.
   */
  keepAlive(everyMs: number, inbox: () => string): void {
    this.#stopPing();
    if (!(everyMs > 0) || this.#done) return;
    this.#pingTimer = setInterval(() => {
      if (this.#pingInbox !== undefined) {
        this.#end(
          4000,
          "ping timeout",
          new ConnectionError(`connection to ${this.url} lost: no pong within ${everyMs} ms`, {
            url: this.url,
            closeCode: 4000,
          }),
        );
        return;
      }
      this.#pingInbox = inbox();
      this.send({ op: "ping", inbox: this.#pingInbox });
    }, everyMs);
  }

  #stopPing(): void {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#pingInbox = undefined;
  }

  #onFrame(text: string): void {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let env: unknown;
      try {
        env = JSON.parse(line);
      } catch (err) {
        this.#events.unreadable(err);
        continue;
      }
      if (typeof env !== "object" || env === null) continue;
      const frame = env as ServerFrame;
      if (frame.op === "pong" && frame.inbox !== undefined && frame.inbox === this.#pingInbox) {
        this.#pingInbox = undefined;
        continue;
      }
      this.#events.envelope(frame);
      if (this.#done) return;
    }
  }

  #end(code: number, reason: string, error: NatsgateError | undefined): void {
    if (this.#done) return;
    this.#detach();
    this.#events.closed(code, reason, this.#opened, error);
  }

  #detach(): void {
    this.#done = true;
    this.#stopPing();
    this.#outbox = [];
    const ws = this.#ws;
    ws.onopen =
      ws.onmessage =
      ws.onerror =
      ws.onclose =
        null;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  /** Drops the connection without telling the owner (it is the one letting go). */
  drop(): void {
    if (!this.#done) this.#detach();
  }

  /**
   * Closes with 1000 and waits (at most 1 s) until the socket is closed; the owner is not told.
   */
  async shutdown(reason: string): Promise<void> {
    const ws = this.#ws;
    this.#done = true;
    this.#stopPing();
    ws.onopen =
      ws.onmessage =
      ws.onerror =
      ws.onclose =
        null;
    if (ws.readyState === WebSocket.CLOSED) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = new Promise<void>((resolve) => {
      ws.addEventListener("close", () => resolve(), { once: true });
      timer = setTimeout(resolve, 1000);
    });
    try {
      ws.close(1000, reason);
    } catch {
      // already closing
    }
    await closed;
    clearTimeout(timer);
  }
}
