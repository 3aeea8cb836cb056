/** The client side of a WebSocket upgrade on a raw TCP socket, for tests and tools that need to
 * control reading byte by byte (stall, throttle) where a `WebSocket` object cannot.
 * @module */

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** Writes all of `data` (a socket write may take only part of it). */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Connects to `url` (`ws://host:port/path?query`) and performs the upgrade. Returns the socket
 * and the bytes read past the 101 response head (the first frames). Throws, with the status
 * line, when the server answers anything but 101.
 *
 * @example
 * ```ts
 * const { conn, rest } = await dialWebSocket("ws://127.0.0.1:8080/ws?token=…");
 * ```
 */
export async function dialWebSocket(
  url: string,
): Promise<{ conn: Deno.TcpConn; rest: Uint8Array }> {
  const u = new URL(url);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await writeAll(
    conn,
    _enc.encode(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  let head = new Uint8Array(0);
  while (true) {
    const chunk = new Uint8Array(4096);
    const n = await conn.read(chunk);
    if (n === null) {
      conn.close();
      throw new Error("upgrade failed: connection closed");
    }
    const next = new Uint8Array(head.length + n);
    next.set(head);
    next.set(chunk.subarray(0, n), head.length);
    head = next;
    const end = _headEnd(head);
    if (end < 0) continue;
    const status = _dec.decode(head.subarray(0, end)).split("\r\n")[0];
    if (!status.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`upgrade failed: ${status}`);
    }
    return { conn, rest: head.slice(end + 4) };
  }
}

function _headEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
