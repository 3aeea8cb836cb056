/** The own transport (src/transport) over real sockets: HTTP answers, WebSocket traffic with a
 * real client, frame limits, close teardown, an exact drain signal, deadlines, EMFILE and limits.
 * @module */

import assert from "node:assert/strict";
import { retry, waitFor } from "./_harness.ts";
import { makeCerts, type TestCerts } from "./_certs.ts";
import {
  HttpServer,
  type ServerOptions,
  upgradeWebSocket,
  type WsConnection,
  type WsOptions,
} from "../src/transport/mod.ts";
import { encodeClientFrame, Opcode } from "../src/transport/ws_frame.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** A server whose `/ws` upgrades with `wsOpts`, echoing text; other paths 200, `/missing` 404. */
function _server(
  wsOpts: WsOptions = {},
  opts: Partial<ServerOptions> = {},
): { server: HttpServer; sockets: WsConnection[]; closes: [number, string][] } {
  const sockets: WsConnection[] = [];
  const closes: [number, string][] = [];
  const server = HttpServer.listen({ hostname: "127.0.0.1", port: 0, ...opts }, (req, info) => {
    const url = new URL(req.url);
    if (url.pathname === "/missing") return new Response("nope\n", { status: 404 });
    if (url.pathname !== "/ws") {
      return new Response(`${req.method} ${url.pathname} from ${info.remoteAddr.hostname}\n`);
    }
    let up;
    try {
      up = upgradeWebSocket(req, wsOpts);
    } catch (err) {
      return new Response(`${(err as Error).message}\n`, { status: 400 });
    }
    const { socket, response } = up;
    sockets.push(socket);
    socket.onmessage = (text) => socket.send(text.length > 100 ? `len:${text.length}` : text);
    socket.onclose = (code, reason) => closes.push([code, reason]);
    return response;
  });
  return { server, sockets, closes };
}

/** A WebSocket client on a raw socket: writes frames as given, reads server frames. */
class RawWs {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  static async open(port: number, extraHead = ""): Promise<RawWs> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(te.encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n${extraHead}\r\n`,
    ));
    const raw = new RawWs(conn);
    const head = await raw.head();
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    return raw;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch {
      n = null;
    }
    if (n === null) return false;
    const b = new Uint8Array(this.#buf.length + n);
    b.set(this.#buf);
    b.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = b;
    return true;
  }

  /** The HTTP response head (before any frame). */
  async head(): Promise<string> {
    while (true) {
      const s = td.decode(this.#buf);
      const end = s.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buf = this.#buf.subarray(te.encode(s.slice(0, end + 4)).length);
        return s.slice(0, end + 4);
      }
      if (!await this.#fill()) throw new Error("closed before the response head");
    }
  }

  /** The next server frame, or null when the socket ended first. */
  async frame(): Promise<{ op: number; fin: boolean; payload: Uint8Array } | null> {
    while (true) {
      const b = this.#buf;
      if (b.length >= 2) {
        assert.equal(b[1] & 0x80, 0, "server frames are not masked");
        let len = b[1] & 0x7f, off = 2;
        if (len === 126) [len, off] = [(b[2] << 8) | b[3], 4];
        else if (len === 127) {
          len = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(2));
          off = 10;
        }
        if (b.length >= off + len) {
          this.#buf = b.subarray(off + len);
          return { op: b[0] & 0x0f, fin: (b[0] & 0x80) !== 0, payload: b.slice(off, off + len) };
        }
      }
      if (!await this.#fill()) return null;
    }
  }

  /** The next close frame's code (skipping other frames), or null if the socket ended first. */
  async closeCode(): Promise<number | null> {
    for (let f = await this.frame(); f; f = await this.frame()) {
      if (f.op === Opcode.CLOSE) return (f.payload[0] << 8) | f.payload[1];
    }
    return null;
  }

  /** Resolves once the socket ends (EOF or reset), discarding frames. */
  async ended(): Promise<true> {
    while (await this.frame());
    return true;
  }

  async send(op: number, payload: string | Uint8Array, fin = true): Promise<void> {
    const p = typeof payload === "string" ? te.encode(payload) : payload;
    await this.conn.write(encodeClientFrame(op, p, { fin }));
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Reads until the peer ends the socket; true for EOF or reset. */
async function _ends(conn: Deno.Conn): Promise<true> {
  const buf = new Uint8Array(4096);
  try {
    while (await conn.read(buf) !== null);
  } catch {
    // reset
  }
  return true;
}

/** Sends a raw request and returns the whole response text (the server closes after it). */
async function _raw(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(te.encode(request));
    let out = "";
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      out += td.decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    conn.close();
  }
}

Deno.test("transport: HTTP GET, HEAD, 404 and bad requests are answered and closed", async () => {
  const { server } = _server();
  try {
    const port = server.addr.port;
    const get = await fetch(`http://127.0.0.1:${port}/hello?x=1`);
    assert.equal(get.status, 200);
    assert.equal(await get.text(), "GET /hello from 127.0.0.1\n");
    const head = await fetch(`http://127.0.0.1:${port}/hello`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "27"); // "HEAD /hello from 127.0.0.1\n"
    assert.equal(await head.text(), "");
    const missing = await fetch(`http://127.0.0.1:${port}/missing`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), "nope\n");
    const rawHead = await _raw(port, "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.match(rawHead, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(rawHead, /\r\nconnection: close\r\n/);
    assert.ok(rawHead.endsWith("\r\n\r\n"), "HEAD has no body");
    assert.match(await _raw(port, "GET / HTTP/1.1\r\nBad Header\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(await _raw(port, "BLAH\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(
      await _raw(port, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      /^HTTP\/1\.1 411 /,
    );
    assert.match(
      await _raw(port, "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
      /^HTTP\/1\.1 413 /,
    );
    assert.match(
      await _raw(port, `GET / HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 /,
    );
    const notUpgrade = await _raw(
      port,
      "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    );
    assert.match(notUpgrade, /^HTTP\/1\.1 400 [^]*invalid WebSocket upgrade/);
    const post = await fetch(`http://127.0.0.1:${port}/p`, { method: "POST", body: "abc" });
    assert.equal(await post.text(), "POST /p from 127.0.0.1\n");
    await waitFor(() => server.connections === 0, 5000, "sockets closed");
  } finally {
    await server.close();
  }
});

Deno.test("transport: a real WebSocket client talks both ways, 1 MiB messages too", async () => {
  const { server, sockets, closes } = _server({ maxMessageBytes: 2 << 20 });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    const got: string[] = [];
    ws.onmessage = (e) => got.push(String(e.data));
    await new Promise((r) => ws.onopen = r);
    ws.send("hello");
    ws.send("é€😀");
    ws.send("x".repeat(1 << 20));
    await waitFor(() => got.length === 3, 10_000, "echoes");
    assert.deepEqual(got, ["hello", "é€😀", `len:${1 << 20}`]);
    const big = "y".repeat(1 << 20);
    sockets[0].send(big);
    await waitFor(() => got.length === 4, 10_000, "1 MiB from the server");
    assert.equal(got[3], big);
    assert.equal(sockets[0].remoteAddr.hostname, "127.0.0.1");
    const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
    ws.close(4000, "bye");
    assert.equal((await closed).code, 4000);
    await waitFor(() => closes.length === 1, 5000, "server onclose");
    assert.deepEqual(closes, [[4000, "bye"]]);
    await waitFor(() => server.connections === 0, 5000, "socket gone");
  } finally {
    await server.close();
  }
});

Deno.test("transport: a burst of 20k frames arrives complete and in order", async () => {
  const { server, sockets } = _server();
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    const got: string[] = [];
    ws.onmessage = (e) => got.push(String(e.data));
    await new Promise((r) => ws.onopen = r);
    const n = 20_000; // well past the queue's compaction point
    for (let i = 0; i < n; i++) sockets[0].send(String(i));
    await waitFor(() => got.length === n, 20_000, "the burst");
    assert.ok(got.every((v, i) => v === String(i)), "in order, none missing");
    assert.equal(sockets[0].pendingBytes, 0);
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
  } finally {
    await server.close();
  }
});

Deno.test("transport: ping is answered with pong; binary reaches onbinary", async () => {
  const { server, sockets } = _server();
  const raw = await RawWs.open(server.addr.port);
  try {
    const bins: number[] = [];
    sockets[0].onbinary = (b) => bins.push(b.length);
    await raw.send(Opcode.PING, "abc");
    const pong = await raw.frame();
    assert.equal(pong?.op, Opcode.PONG);
    assert.equal(td.decode(pong!.payload), "abc");
    await raw.send(Opcode.BINARY, new Uint8Array(300));
    await raw.send(Opcode.TEXT, "sentinel");
    assert.equal(td.decode((await raw.frame())!.payload), "sentinel");
    assert.deepEqual(bins, [300]);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: unfinished fragments are closed with 1009 at the size limit", async () => {
  const { server, closes } = _server({ maxMessageBytes: 1000, closeTimeoutMs: 300 });
  const raw = await RawWs.open(server.addr.port);
  try {
    await raw.send(Opcode.TEXT, "a".repeat(400), false);
    await raw.send(Opcode.CONTINUATION, "b".repeat(400), false);
    await raw.send(Opcode.CONTINUATION, "c".repeat(400), false); // 1200 > 1000
    assert.equal(await raw.closeCode(), 1009);
    assert.equal(await raw.ended(), true);
    await waitFor(() => closes.length === 1, 5000, "server onclose");
    assert.equal(closes[0][0], 1006, "the peer sent no close frame");
    await waitFor(() => server.connections === 0, 5000, "socket gone");
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: too many continuation frames are closed with 1009", async () => {
  const { server } = _server({ maxFragments: 8 });
  const ok = await RawWs.open(server.addr.port);
  const flood = await RawWs.open(server.addr.port);
  try {
    // 8 continuation frames are allowed: the message is delivered (and echoed).
    await ok.send(Opcode.TEXT, "a", false);
    for (let i = 0; i < 7; i++) await ok.send(Opcode.CONTINUATION, "b", false);
    await ok.send(Opcode.CONTINUATION, "c");
    assert.equal(td.decode((await ok.frame())!.payload), "abbbbbbbc");
    // The 9th is refused.
    await flood.send(Opcode.TEXT, "a", false);
    for (let i = 0; i < 9; i++) await flood.send(Opcode.CONTINUATION, "b", false);
    assert.equal(await flood.closeCode(), 1009);
    assert.equal(await flood.ended(), true);
  } finally {
    ok.close();
    flood.close();
    await server.close();
  }
});

Deno.test("transport: close() on a peer that never answers aborts the socket", async () => {
  const { server, sockets, closes } = _server({ closeTimeoutMs: 300 });
  const raw = await RawWs.open(server.addr.port);
  try {
    await waitFor(() => server.connections === 1, 5000, "upgraded");
    sockets[0].close(4001, "unauthorized");
    assert.equal(sockets[0].closed, true);
    // The client neither reads nor answers; the server must still let go of the socket.
    await waitFor(() => closes.length === 1, 5000, "server onclose");
    assert.deepEqual(closes, [[1006, ""]]);
    assert.equal(server.connections, 0);
    assert.equal(await raw.closeCode(), 4001);
    assert.equal(await raw.ended(), true);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: a peer's close is echoed and the socket closed", async () => {
  const { server, closes } = _server();
  const raw = await RawWs.open(server.addr.port);
  try {
    const p = new Uint8Array([0x0f, 0xa0, 0x68, 0x69]); // 4000 "hi"
    await raw.send(Opcode.CLOSE, p);
    assert.equal(await raw.closeCode(), 4000);
    assert.equal(await raw.ended(), true);
    await waitFor(() => closes.length === 1, 5000, "server onclose");
    assert.deepEqual(closes, [[4000, "hi"]]);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: invalid UTF-8 closes 1007; an unmasked frame closes 1002", async () => {
  const { server } = _server();
  const a = await RawWs.open(server.addr.port);
  const b = await RawWs.open(server.addr.port);
  try {
    await a.send(Opcode.TEXT, new Uint8Array([0xc3, 0x28]));
    assert.equal(await a.closeCode(), 1007);
    await b.conn.write(new Uint8Array([0x81, 0x02, 0x68, 0x69]));
    assert.equal(await b.closeCode(), 1002);
    assert.equal(await b.ended(), true);
  } finally {
    a.close();
    b.close();
    await server.close();
  }
});

Deno.test("transport: a stalled reader: bytesWritten stops, then catches up exactly", async () => {
  const shared = { bytes: 0 };
  const { server, sockets } = _server({ pending: shared });
  const raw = await RawWs.open(server.addr.port);
  try {
    const ws = sockets[0];
    const frame = "z".repeat(64 * 1024 - 4); // 64 KiB frames with a 4-byte header
    const frames = 512; // 32 MiB: more than the loopback socket buffers hold
    for (let i = 0; i < frames; i++) ws.send(frame);
    const total = frames * 64 * 1024;
    assert.equal(ws.pendingBytes + ws.bytesWritten, total, "exact right after send()");
    assert.equal(shared.bytes, ws.pendingBytes);
    // Wait until the kernel takes nothing more: the same bytesWritten on two polls.
    let last = -1;
    await waitFor(
      () => {
        const same = ws.bytesWritten === last && ws.pendingBytes > 0;
        last = ws.bytesWritten;
        return same;
      },
      10_000,
      "writes to stall",
    );
    assert.ok(ws.bytesWritten < total);
    assert.equal(ws.pendingBytes, total - ws.bytesWritten);
    assert.equal(shared.bytes, ws.pendingBytes);
    // The client drains everything; the counters follow exactly.
    let received = 0;
    while (received < frames) {
      const f = await raw.frame();
      assert.ok(f);
      assert.equal(f.payload.length, frame.length);
      received++;
    }
    await waitFor(() => ws.pendingBytes === 0, 5000, "drained");
    assert.equal(ws.bytesWritten, total);
    assert.equal(shared.bytes, 0);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: cut() drops queued frames and releases the shared counter", async () => {
  const shared = { bytes: 0 };
  const { server, sockets, closes } = _server({ pending: shared, closeTimeoutMs: 300 });
  const raw = await RawWs.open(server.addr.port);
  try {
    const ws = sockets[0];
    for (let i = 0; i < 256; i++) ws.send("q".repeat(64 * 1024 - 4));
    await waitFor(() => ws.bytesWritten > 0, 5000, "writing");
    ws.cut(4008, "backpressure", "last words");
    assert.ok(ws.pendingBytes < 2 * 64 * 1024, "queued frames were dropped");
    assert.equal(shared.bytes, ws.pendingBytes);
    await waitFor(() => closes.length === 1, 5000, "aborted after closeTimeoutMs");
    assert.equal(ws.pendingBytes, 0);
    assert.equal(shared.bytes, 0);
    assert.equal(server.connections, 0);
    assert.equal(await raw.ended(), true);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: a half-sent request head is closed at the deadline (plain)", async () => {
  const { server } = _server({}, { headerTimeoutMs: 300 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await conn.write(te.encode("GET / HT"));
    assert.equal(await _ends(conn), true);
    await waitFor(() => server.connections === 0, 5000, "socket gone");
  } finally {
    conn.close();
    await server.close();
  }
});

let _certs: TestCerts | undefined;
async function _tls(): Promise<TestCerts> {
  return _certs ??= await makeCerts();
}

Deno.test("transport: TLS serves HTTP and WebSocket; stalled handshakes and heads are closed", async () => {
  const certs = await _tls();
  const { server } = _server({}, { tls: certs, headerTimeoutMs: 300 });
  const port = server.addr.port;
  try {
    const client = Deno.createHttpClient({ caCerts: [certs.ca] });
    const res = await fetch(`https://127.0.0.1:${port}/tls`, { client });
    assert.equal(await res.text(), "GET /tls from 127.0.0.1\n");
    client.close();
    // No handshake at all (a plain TCP client that sends nothing): its slot is released at the
    // deadline. (Deno keeps the file descriptor until the peer sends or leaves: a pending TLS
    // handshake cannot be aborted from JavaScript.)
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    await waitFor(() => server.connections === 1, 5000, "silent accepted");
    // A handshake, then half a request line: closed.
    const half = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.ca] });
    await half.write(te.encode("GET / HT"));
    assert.equal(await _ends(half), true);
    half.close();
    await waitFor(() => server.connections === 0, 5000, "slots released");
    silent.close();
    // reload: a bad pair throws and changes nothing
    await assert.rejects(server.reloadTls(certs.cert, "not a key"));
    const again = Deno.createHttpClient({ caCerts: [certs.ca] });
    assert.equal((await fetch(`https://127.0.0.1:${port}/x`, { client: again })).status, 200);
    again.close();
  } finally {
    await server.close();
  }
});

Deno.test("transport: TLS reload keeps an established WebSocket and serves the new pair", async () => {
  const certs = await _tls();
  const other = await makeCerts();
  const { server, sockets } = _server({}, { tls: certs });
  const port = server.addr.port;
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.ca] });
  const raw = new RawWs(conn);
  try {
    await conn.write(te.encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    await waitFor(() => sockets.length === 1, 5000, "upgraded");
    await server.reloadTls(other.cert, other.key);
    const client = Deno.createHttpClient({ caCerts: [other.ca] });
    assert.equal((await fetch(`https://127.0.0.1:${port}/n`, { client })).status, 200);
    client.close();
    sockets[0].send("still here");
    assert.match(await raw.head(), /^HTTP\/1\.1 101 /);
    const f = await raw.frame();
    assert.ok(f);
    assert.match(td.decode(f.payload), /still here/);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: maxConns and onAccept refuse at once; onConnClosed pairs", async () => {
  const refused: string[] = [];
  const closed: number[] = [];
  let allow = true;
  const { server } = _server({}, {
    maxConns: 1,
    onAccept: (peer) => {
      if (!allow) refused.push(peer.hostname);
      return allow;
    },
    onConnClosed: (peer) => closed.push(peer.port),
  });
  const port = server.addr.port;
  const first = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await waitFor(() => server.connections === 1, 5000, "first accepted");
    const second = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await _ends(second), true, "over maxConns: closed");
    second.close();
    assert.equal(server.connections, 1);
    first.close();
    await waitFor(() => server.connections === 0, 5000, "first gone");
    assert.deepEqual(closed, [(first.localAddr as Deno.NetAddr).port]);
    allow = false;
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await _ends(third), true, "onAccept false: closed");
    third.close();
    assert.deepEqual(refused, ["127.0.0.1"]);
    assert.equal(closed.length, 1, "a refused socket has no onConnClosed");
  } finally {
    try {
      first.close();
    } catch {
      // closed by the test
    }
    await server.close();
  }
});

/** Runs the fixture server under `ulimit -n 64`, floods it past EMFILE, then asks again. */
async function _emfile(certs?: TestCerts): Promise<void> {
  const dir = await Deno.makeTempDir();
  const args = [];
  if (certs) {
    await Deno.writeTextFile(`${dir}/c.pem`, certs.cert);
    await Deno.writeTextFile(`${dir}/c.key`, certs.key);
    args.push(`${dir}/c.pem`, `${dir}/c.key`);
  }
  const script = new URL("./fixtures/transport_server.ts", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 64; exec "${Deno.execPath()}" run -A "${script}" ${args.join(" ")}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let stderr = "";
  const errDone = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) stderr += c;
  })();
  const out = child.stdout.getReader();
  const conns: Deno.Conn[] = [];
  try {
    const first = await out.read();
    const port = Number(td.decode(first.value).trim());
    assert.ok(port > 0);
    for (let i = 0; i < 100; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await waitFor(() => /Too many open files/.test(stderr), 10_000, "EMFILE in the server");
    assert.equal(exited, false, "the server process is alive");
    for (const c of conns) c.close();
    conns.length = 0;
    const client = certs ? Deno.createHttpClient({ caCerts: [certs.ca] }) : undefined;
    const scheme = certs ? "https" : "http";
    const body = await retry(async () => {
      const r = await fetch(`${scheme}://127.0.0.1:${port}/after`, { client });
      return await r.text();
    });
    client?.close();
    assert.equal(body, "ok\n");
    assert.equal(exited, false);
  } finally {
    for (const c of conns) c.close();
    child.kill();
    await status;
    await errDone;
    out.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("transport: EMFILE does not end the accept loop (plain)", async () => {
  await _emfile();
});

Deno.test("transport: EMFILE does not end the accept loop (TLS)", async () => {
  await _emfile(await _tls());
});

Deno.test("transport: close() still writes what is queued, then the close frame", async () => {
  const { server, sockets, closes } = _server({ closeTimeoutMs: 5000 });
  const raw = await RawWs.open(server.addr.port);
  try {
    const ws = sockets[0];
    for (let i = 0; i < 50; i++) ws.send(`m${i}`);
    ws.close(4001, "unauthorized");
    ws.send("after close"); // ignored
    for (let i = 0; i < 50; i++) {
      assert.equal(td.decode((await raw.frame())!.payload), `m${i}`);
    }
    assert.equal(await raw.closeCode(), 4001);
    raw.close();
    await waitFor(() => closes.length === 1, 5000, "server onclose");
    assert.equal(server.connections, 0);
  } finally {
    raw.close();
    await server.close();
  }
});

Deno.test("transport: a ping flood from a reader that never reads keeps at most one pong queued", async () => {
  const { server, sockets } = _server();
  const flood = await RawWs.open(server.addr.port);
  const ok = await RawWs.open(server.addr.port);
  try {
    await waitFor(() => sockets.length === 2, 5000, "both upgraded");
    const ws = sockets[0];
    // Fill the socket first so nothing more can be written, then 40 000 pings in big writes.
    for (let i = 0; i < 64; i++) ws.send("z".repeat(64 * 1024));
    await waitFor(() => ws.pendingBytes > 0 && ws.bytesWritten > 0, 5000, "socket full");
    const queuedBefore = ws.pendingBytes;
    const ping = encodeClientFrame(Opcode.PING, te.encode("0123456789"), { fin: true });
    const chunk = new Uint8Array(ping.length * 1000);
    for (let i = 0; i < 1000; i++) chunk.set(ping, i * ping.length);
    let done = false;
    ws.onmessage = (text) => done = text === "done";
    for (let i = 0; i < 40; i++) await flood.conn.write(chunk);
    // A sentinel after the flood: once it arrived, every ping before it was handled.
    await flood.send(Opcode.TEXT, "done");
    await waitFor(() => done, 10_000, "flood handled");
    assert.ok(ws.pendingBytes <= queuedBefore + 12, `one pong at most: ${ws.pendingBytes}`);
    assert.ok(!ws.closed);
    // Another client is served as usual.
    await ok.send(Opcode.TEXT, "sentinel");
    assert.equal(td.decode((await ok.frame())!.payload), "sentinel");
  } finally {
    flood.close();
    ok.close();
    await server.close();
  }
});

Deno.test("transport: a peer that only listens but answers pings is never cut as idle", async () => {
  const { server, sockets, closes } = _server({ idleTimeoutMs: 100 });
  const listener = await RawWs.open(server.addr.port);
  const deaf = await RawWs.open(server.addr.port);
  try {
    await waitFor(() => sockets.length === 2, 5000, "both upgraded");
    // The listener answers every ping and sends nothing else, through 20 idle periods; the
    // server keeps sending it data meanwhile.
    let pings = 0;
    const tick = setInterval(() => sockets[0].send("data"), 20);
    try {
      while (pings < 20) {
        const f = await listener.frame();
        assert.ok(f !== null, `ended after ${pings} pings`);
        if (f.op === Opcode.PING) {
          pings++;
          await listener.send(Opcode.PONG, f.payload);
        }
      }
    } finally {
      clearInterval(tick);
    }
    assert.ok(!sockets[0].closed, "the listener is still connected");
    // The deaf peer never reads, so it never answers: aborted after a ping went unanswered.
    await waitFor(() => closes.length === 1, 5000, "deaf peer aborted");
    assert.equal(closes[0][0], 1006);
    assert.ok(sockets[1].closed);
  } finally {
    listener.close();
    deaf.close();
    await server.close();
  }
});
