/** TLS termination in front of the gateway's plain HTTP listener, with certificate hot reload.
 * Reload replaces only the TLS listener: accepted connections keep running untouched.
 * @module */

/** A TLS listener that pipes each connection to a plain listener on loopback. */
export class TlsFront {
  #listener: Deno.TlsListener;
  #hostname: string;
  #port: number;
  #backendPort: number;
  #remotes = new Map<number, string>();
  #conns = new Set<Deno.Conn>();
  #closed = false;

  /** Starts listening; `backendPort` is the plain listener on 127.0.0.1. */
  constructor(
    opts: { hostname: string; port: number; cert: string; key: string },
    backendPort: number,
  ) {
    this.#hostname = opts.hostname;
    this.#backendPort = backendPort;
    this.#listener = Deno.listenTls({ ...opts, transport: "tcp" });
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
    this.#conns.add(client).add(backend);
    try {
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

function _close(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
