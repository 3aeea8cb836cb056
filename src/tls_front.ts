/** TLS termination in front of the gateway's plain HTTP listener, with certificate hot reload.
 * Reload replaces only the TLS listener: accepted connections keep running untouched.
 * @module */

/** Default time a new TLS connection has for its handshake and first request's headers. */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;

/** Largest request head accepted before the connection is passed on (then Deno.serve decides). */
const _MAX_HEAD_BYTES = 16 * 1024;

/**
 * A TLS listener that pipes each connection to a plain listener on loopback. A connection is
 * passed on only once its handshake and first request head are complete, within
 * `headerTimeoutMs`: a slow-loris client that dribbles (or never sends) its headers is closed
 * without reaching the HTTP server, which has no such deadline of its own.
 */
export class TlsFront {
  #listener: Deno.TlsListener;
  #hostname: string;
  #port: number;
  #backendPort: number;
  #remotes = new Map<number, string>();
  #conns = new Set<Deno.Conn>();
  #closed = false;
  #headerTimeoutMs: number;

  /** Starts listening; `backendPort` is the plain listener on 127.0.0.1. */
  constructor(
    opts: { hostname: string; port: number; cert: string; key: string; headerTimeoutMs?: number },
    backendPort: number,
  ) {
    this.#headerTimeoutMs = opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    this.#hostname = opts.hostname;
    this.#backendPort = backendPort;
    this.#listener = Deno.listenTls({
      hostname: opts.hostname,
      port: opts.port,
      cert: opts.cert,
      key: opts.key,
      transport: "tcp",
    });
    this.#port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept(this.#listener);
  }

  /** The public address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** The real client address of a backend connection, by its local port on loopback. */
  remoteFor(backendLocalPort: number): string | undefined {
    return this.#remotes.get(backendLocalPort);
  }

  async #accept(listener: Deno.TlsListener): Promise<void> {
    try {
      for await (const conn of listener) this.#pipe(conn);
    } catch {
      // listener closed
    }
  }

  async #pipe(client: Deno.TlsConn): Promise<void> {
    if (this.#closed) {
      client.close();
      return;
    }
    this.#conns.add(client);
    const head = await this.#readHead(client);
    if (!head) {
      this.#conns.delete(client);
      _close(client);
      return;
    }
    let backend: Deno.TcpConn;
    try {
      backend = await Deno.connect({ hostname: "127.0.0.1", port: this.#backendPort });
    } catch {
      _close(client);
      return;
    }
    const local = (backend.localAddr as Deno.NetAddr).port;
    const r = client.remoteAddr as Deno.NetAddr;
    this.#remotes.set(
      local,
      r.hostname.includes(":") ? `[${r.hostname}]:${r.port}` : `${r.hostname}:${r.port}`,
    );
    this.#conns.add(backend);
    try {
      await _writeAll(backend, head);
      await Promise.race([
        client.readable.pipeTo(backend.writable),
        backend.readable.pipeTo(client.writable),
      ]);
    } catch {
      // a reset or failed handshake ends both sides
    } finally {
      this.#remotes.delete(local);
      this.#conns.delete(client);
      this.#conns.delete(backend);
      _close(client);
      _close(backend);
    }
  }

  /**
   * Reads the handshake and the first request head (up to the blank line) within the deadline.
   * Returns the bytes read, or undefined when the client was too slow, closed, or sent more than
   * 16 KiB without ending its head (then Deno.serve would refuse it anyway).
   */
  async #readHead(client: Deno.TlsConn): Promise<Uint8Array | undefined> {
    // Closing the connection ends the pending read (or handshake): the deadline.
    const timer = setTimeout(() => _close(client), this.#headerTimeoutMs);
    let head = new Uint8Array(4096); // grows up to _MAX_HEAD_BYTES for long heads
    let size = 0;
    try {
      while (size < _MAX_HEAD_BYTES) {
        if (size === head.length) {
          const bigger = new Uint8Array(Math.min(head.length * 2, _MAX_HEAD_BYTES));
          bigger.set(head);
          head = bigger;
        }
        const n = await client.read(head.subarray(size));
        if (n === null) return undefined;
        // Only the new bytes (and the 3 before them) can complete the blank line.
        if (_findHeadEnd(head, Math.max(0, size - 3), size + n)) return head.slice(0, size + n);
        size += n;
      }
      return head; // oversized: let the HTTP server answer 431
    } catch {
      return undefined; // failed handshake, reset, or closed by the deadline
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Swaps the certificate: the pair is checked on a throwaway listener first (a bad pair throws
   * and changes nothing), then the listener is replaced on the same port.
   */
  async reload(cert: string, key: string): Promise<void> {
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key }).close();
    this.#listener.close();
    for (let i = 0;; i++) {
      try {
        this.#listener = Deno.listenTls({ hostname: this.#hostname, port: this.#port, cert, key });
        break;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse) || i >= 200) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    this.#accept(this.#listener);
  }

  /** Stops listening and closes every piped connection. */
  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const c of this.#conns) _close(c);
    this.#conns.clear();
  }
}

/** Whether `buf[from, to)` holds the end of a request head (`\r\n\r\n`). */
function _findHeadEnd(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i + 3 < to; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return true;
  }
  return false;
}

async function _writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

function _close(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
