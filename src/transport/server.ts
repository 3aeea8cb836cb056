/** A small HTTP/1.1 server on `Deno.listen` / `Deno.listenTls`: one request per connection, a
 * deadline for the TLS handshake and request head, connection limits decided right after
 * `accept()`, and WebSocket upgrades through `upgradeWebSocket()`.
 * @module */

import { acceptLoop } from "./accept_loop.ts";
import { acceptKey } from "./handshake.ts";
import { findHeadEnd, HeadError, parseHead, type RequestHead } from "./http_head.ts";
import { _registerRequest, type RequestContext } from "./upgrade.ts";

/** Who is on the other end of a request. */
export interface ConnInfo {
  /** The TCP peer. */
  remoteAddr: Deno.NetAddr;
}

/** Answers one request; may upgrade it with `upgradeWebSocket()`. */
export type Handler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

/** Options of {@link HttpServer.listen}. */
export interface ServerOptions {
  /** Listen address. */
  hostname: string;
  /** Listen port; 0 picks a free one. */
  port: number;
  /** Serve TLS directly with these PEM strings. */
  tls?: { cert: string; key: string };
  /** Time for the TLS handshake and the full request head (and body) (default 10 000). */
  headerTimeoutMs?: number;
  /** Largest request head (default 16 KiB); larger: 431 and close. */
  maxHeadBytes?: number;
  /** Most open sockets (default Infinity); one more is closed at once after `accept()`. */
  maxConns?: number;
  /** Called right after `accept()` (after the `maxConns` check); false closes the socket. */
  onAccept?(peer: Deno.NetAddr): boolean;
  /** Called exactly once per socket `onAccept` let in (or every socket without it), when gone. */
  onConnClosed?(peer: Deno.NetAddr): void;
  /** Logging hook; its exceptions are swallowed. */
  onError?(err: unknown, where: string): void;
}

/** Largest request body accepted (`Content-Length`). */
export const MAX_BODY_BYTES = 64 * 1024;
const _FIRST_READ = 1024;
/** After a plain response, how long a lingering close waits for the peer's FIN. */
const _LINGER_MS = 2000;

const _REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

const _enc = new TextEncoder();

/** One accepted socket's bookkeeping. */
interface _Slot {
  conn: Deno.Conn;
  peer: Deno.NetAddr;
  /** Closes the socket; the first call does the bookkeeping. */
  close(): void;
  /** What `HttpServer.close()` calls (a WebSocket's abort once upgraded). */
  abort(): void;
}

/**
 * An HTTP/1.1 server. Each connection carries one request: a plain response is followed by
 * `Connection: close`; an upgraded one becomes a `WsConnection`.
 *
 * @example
 * ```ts
 * const server = HttpServer.listen({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"));
 * console.log(server.addr.port);
 * await server.close();
 * ```
 */
export class HttpServer {
  #opts: ServerOptions;
  #handler: Handler;
  #listener: Deno.Listener;
  #slots = new Set<_Slot>();
  #closing = false;
  #loops: Promise<void>[] = [];
  #headerTimeoutMs: number;
  #maxHeadBytes: number;
  #maxConns: number;
  #secure: boolean;

  private constructor(opts: ServerOptions, handler: Handler) {
    this.#opts = opts;
    this.#handler = handler;
    this.#headerTimeoutMs = opts.headerTimeoutMs ?? 10_000;
    this.#maxHeadBytes = opts.maxHeadBytes ?? 16 * 1024;
    this.#maxConns = opts.maxConns ?? Infinity;
    this.#secure = opts.tls !== undefined;
    this.#listener = opts.tls
      ? Deno.listenTls({
        hostname: opts.hostname,
        port: opts.port,
        cert: opts.tls.cert,
        key: opts.tls.key,
        transport: "tcp",
      })
      : Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
    this.#startLoop(this.#listener);
  }

  /** Starts listening (synchronously: the port is bound on return). */
  static listen(opts: ServerOptions, handler: Handler): HttpServer {
    return new HttpServer(opts, handler);
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Open TCP sockets right now (including closing ones). */
  get connections(): number {
    return this.#slots.size;
  }

  /**
   * Swaps the TLS certificate: the pair is tried on a throwaway listener first (a bad pair throws
   * and changes nothing), then a new listener replaces the old one on the same port. Established
   * connections are not touched.
   */
  async reloadTls(cert: string, key: string): Promise<void> {
    if (!this.#secure) throw new Error("server was not started with TLS");
    if (this.#closing) return;
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key }).close();
    const { hostname, port } = this.addr;
    const old = this.#listener;
    this.#stopped.add(old);
    _closeQuietly(old);
    for (let i = 0;; i++) {
      try {
        this.#listener = Deno.listenTls({ hostname, port, cert, key, transport: "tcp" });
        break;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse) || i >= 200) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    this.#startLoop(this.#listener);
  }

  /** Stops accepting and aborts every socket (WebSockets get `onclose` 1006). */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopped.add(this.#listener);
    _closeQuietly(this.#listener);
    for (const slot of [...this.#slots]) slot.abort();
    await Promise.all(this.#loops);
  }

  /** Listeners closed on purpose: their accept errors end their loop. */
  #stopped = new WeakSet<Deno.Listener>();

  #startLoop(listener: Deno.Listener): void {
    this.#loops.push(
      acceptLoop(listener, (conn) => this.#onConn(conn), {
        stopped: () => this.#stopped.has(listener),
        onError: (err, where) => this.#report(err, where),
      }),
    );
  }

  #report(err: unknown, where: string): void {
    try {
      this.#opts.onError?.(err, where);
    } catch {
      // a logging hook never throws out
    }
  }

  /** Right after accept(): limits first, before anything is allocated for the socket. */
  #onConn(conn: Deno.Conn): void {
    if (this.#closing || this.#slots.size >= this.#maxConns) return _closeQuietly(conn);
    const peer = conn.remoteAddr as Deno.NetAddr;
    if (this.#opts.onAccept) {
      let ok = false;
      try {
        ok = this.#opts.onAccept(peer);
      } catch (err) {
        this.#report(err, "onAccept");
      }
      if (!ok) return _closeQuietly(conn);
    }
    // Frames are coalesced by the writer already: Nagle would only add delayed-ACK latency.
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not a TCP socket (or already gone)
    }
    let done = false;
    const slot: _Slot = {
      conn,
      peer,
      close: () => {
        if (done) return;
        done = true;
        _closeQuietly(conn);
        this.#slots.delete(slot);
        try {
          this.#opts.onConnClosed?.(peer);
        } catch (err) {
          this.#report(err, "onConnClosed");
        }
      },
      abort: () => slot.close(),
    };
    this.#slots.add(slot);
    this.#serve(slot).catch((err) => {
      this.#report(err, "connection");
      slot.close();
    });
  }

  async #serve(slot: _Slot): Promise<void> {
    const { conn } = slot;
    // The deadline covers the TLS handshake (run by the first read), the head and the body.
    let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(
      () => slot.close(),
      this.#headerTimeoutMs,
    );
    try {
      const got = await this.#readHead(conn);
      if (got === undefined) return slot.close();
      if (typeof got === "number") return await this.#refuse(slot, got, "");
      let head: RequestHead;
      try {
        head = parseHead(got.head);
      } catch (err) {
        const status = err instanceof HeadError ? err.status : 400;
        return await this.#refuse(slot, status, err instanceof Error ? err.message : "");
      }
      const built = await this.#request(slot, head, got.rest);
      if (typeof built === "number") return await this.#refuse(slot, built, "");
      if (built === undefined) return slot.close();
      clearTimeout(timer);
      timer = undefined;
      await this.#respond(slot, head, built.req, built.leftover);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads up to the blank line: the head and the bytes after it, a status to refuse, or
   * undefined when the peer left (or the deadline closed the socket). */
  async #readHead(
    conn: Deno.Conn,
  ): Promise<{ head: Uint8Array; rest: Uint8Array } | number | undefined> {
    let buf = new Uint8Array(_FIRST_READ);
    let size = 0;
    while (true) {
      if (size === buf.length) {
        if (buf.length >= this.#maxHeadBytes) return 431;
        const bigger = new Uint8Array(Math.min(buf.length * 4, this.#maxHeadBytes));
        bigger.set(buf);
        buf = bigger;
      }
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(size));
      } catch {
        return undefined; // failed handshake, reset, or closed by the deadline
      }
      if (n === null) return undefined;
      const end = findHeadEnd(buf, size - 3, size + n);
      size += n;
      if (end >= 0) return { head: buf.subarray(0, end), rest: buf.subarray(end, size) };
    }
  }

  /** Builds the Request (reading a body within `Content-Length` ≤ 64 KiB): a status to refuse,
   * or undefined when the peer left. */
  async #request(
    slot: _Slot,
    head: RequestHead,
    rest: Uint8Array,
  ): Promise<{ req: Request; leftover: Uint8Array } | number | undefined> {
    let headers: Headers;
    try {
      headers = new Headers(head.headers);
    } catch {
      return 400;
    }
    if (headers.has("transfer-encoding")) {
      return /chunked/i.test(headers.get("transfer-encoding")!) ? 411 : 501;
    }
    const cl = headers.get("content-length");
    let length = 0;
    if (cl !== null) {
      if (!/^\d{1,10}$/.test(cl)) return 400;
      length = Number(cl);
      if (length > MAX_BODY_BYTES) return 413;
    }
    let body: Uint8Array<ArrayBuffer> | undefined;
    let leftover = rest;
    if (length > 0) {
      body = new Uint8Array(length);
      const have = Math.min(length, rest.length);
      body.set(rest.subarray(0, have));
      leftover = rest.subarray(have);
      for (let got = have; got < length;) {
        let n: number | null;
        try {
          n = await slot.conn.read(body.subarray(got));
        } catch {
          return undefined;
        }
        if (n === null) return undefined;
        got += n;
      }
    }
    const host = headers.get("host") ?? _hostPort(slot.conn.localAddr as Deno.NetAddr);
    if (!/^[A-Za-z0-9.\-_~%:\[\]]+$/.test(host)) return 400;
    const scheme = this.#secure ? "https" : "http";
    let url: URL;
    try {
      url = head.target.startsWith("/")
        ? new URL(`${scheme}://${host}${head.target}`)
        : new URL(head.target);
    } catch {
      return 400;
    }
    try {
      const noBody = head.method === "GET" || head.method === "HEAD";
      const req = new Request(url, {
        method: head.method,
        headers,
        body: noBody ? undefined : body,
      });
      return { req, leftover };
    } catch {
      return 400;
    }
  }

  async #respond(
    slot: _Slot,
    head: RequestHead,
    req: Request,
    leftover: Uint8Array,
  ): Promise<void> {
    const ctx: RequestContext = { remoteAddr: slot.peer };
    _registerRequest(req, ctx);
    let res: Response;
    try {
      res = await this.#handler(req, { remoteAddr: slot.peer });
    } catch (err) {
      this.#report(err, "handler");
      res = new Response("internal server error\n", { status: 500 });
    }
    const up = ctx.upgrade;
    if (up && res === up.response) {
      const ws = up.socket;
      slot.abort = () => ws.abort();
      let head101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        (await acceptKey(req.headers.get("sec-websocket-key")!)) + "\r\n";
      for (const [k, v] of res.headers) {
        if (!_FRAMING.has(k)) head101 += `${k}: ${v}\r\n`;
      }
      try {
        await _writeAll(slot.conn, _enc.encode(head101 + "\r\n"));
      } catch {
        ws._discard();
        return slot.close();
      }
      ws._attach(slot.conn, leftover.length ? leftover.slice() : undefined, {
        closeSocket: () => slot.close(),
        onError: (err, where) => this.#report(err, where),
      });
      return;
    }
    up?.socket._discard();
    const timer = setTimeout(() => slot.close(), this.#headerTimeoutMs);
    try {
      const body = new Uint8Array(await res.arrayBuffer());
      await this.#writeResponse(slot, res.status, res.statusText, res.headers, body, head.method);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Answers a refused request with a short text body and closes. */
  async #refuse(slot: _Slot, status: number, reason: string): Promise<void> {
    const body = _enc.encode(`${_REASONS[status] ?? "Error"}${reason ? `: ${reason}` : ""}\n`);
    const h = new Headers({ "content-type": "text/plain; charset=utf-8" });
    await this.#writeResponse(slot, status, "", h, body, "GET");
  }

  async #writeResponse(
    slot: _Slot,
    status: number,
    statusText: string,
    headers: Headers,
    body: Uint8Array,
    method: string,
  ): Promise<void> {
    let head = `HTTP/1.1 ${status} ${statusText || _REASONS[status] || "Status"}\r\n`;
    for (const [k, v] of headers) {
      if (!_FRAMING.has(k)) head += `${k}: ${v}\r\n`;
    }
    head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    const h = _enc.encode(head);
    const withBody = method !== "HEAD" && status !== 204 && status !== 304;
    const out = new Uint8Array(h.length + (withBody ? body.length : 0));
    out.set(h);
    if (withBody) out.set(body, h.length);
    try {
      await _writeAll(slot.conn, out);
      await this.#linger(slot);
    } catch {
      // the peer left
    } finally {
      slot.close();
    }
  }

  /** Half-closes and waits briefly for the peer's FIN, so unread input does not turn our close
   * into a reset that could destroy the response before the peer read it. */
  async #linger(slot: _Slot): Promise<void> {
    await slot.conn.closeWrite();
    const timer = setTimeout(() => slot.close(), _LINGER_MS);
    try {
      const sink = new Uint8Array(256);
      let total = 0;
      while (total < MAX_BODY_BYTES) {
        const n = await slot.conn.read(sink);
        if (n === null) break;
        total += n;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Response headers the server writes itself. */
const _FRAMING = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "sec-websocket-accept",
  "keep-alive",
]);

function _hostPort(a: Deno.NetAddr): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

async function _writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function _closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
