/** TLS termination: wss:// with a PEM certificate, and a certificate reload without dropping clients.
 * Certificates come from tests/_certs.ts: two CAs tell the old and new certificate apart.
 * @module */

import assert from "node:assert/strict";
import { Stack, waitFor } from "./_harness.ts";
import { makeCerts, writeCerts } from "./_certs.ts";

async function _handshake(port: number, caPem: string): Promise<boolean> {
  try {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
    await conn.handshake();
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function _upgradeOverTls(port: number, caPem: string, token: string): Promise<string> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
  try {
    await conn.write(new TextEncoder().encode(
      `GET /ws?token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("cap_update")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("tls: wss:// serves the certificate; reload swaps it and keeps live clients", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [one, two] = await Promise.all([makeCerts("ca1"), makeCerts("ca2")]);
    await writeCerts(dir, "server", one);
    await using stack = await Stack.start({
      gateway: { tls: { certFile: `${dir}/server.pem`, keyFile: `${dir}/server.key` } },
    });
    const port = stack.gateway.addr.port;
    assert.ok(stack.gateway.wsUrl.startsWith("wss://"));
    const [ca1, ca2] = [one.ca, two.ca];
    assert.equal(await _handshake(port, ca1), true, "served cert chains to ca1");
    assert.equal(await _handshake(port, ca2), false);
    const first = await _upgradeOverTls(port, ca1, await stack.token("alice"));
    assert.match(first, /^HTTP\/1\.1 101/);
    assert.match(first, /"op":"cap_update"/);

    // A client that stays connected across the reload.
    const live = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca1] });
    await live.write(new TextEncoder().encode(
      `GET /ws?token=${await stack.token("bob")} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const buf = new Uint8Array(4096);
    await live.read(buf);
    await waitFor(() => stack.gateway.sessions("bob").length === 1);

    await writeCerts(dir, "server", two);
    await stack.gateway.reloadTls();
    assert.equal(await _handshake(port, ca2), true, "new connections get the new cert");
    assert.equal(await _handshake(port, ca1), false);
    assert.equal(stack.gateway.sessions("bob").length, 1, "established session untouched");
    live.close();

    // A broken certificate file keeps the current one.
    await Deno.writeTextFile(`${dir}/server.pem`, "garbage");
    await assert.rejects(stack.gateway.reloadTls());
    assert.equal(await _handshake(port, ca2), true, "still serving the last good cert");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: a client that never finishes its request head is closed at the deadline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await writeCerts(dir, "server", await makeCerts());
    await using stack = await Stack.start({
      gateway: {
        tls: { certFile: files.cert, keyFile: files.key },
        headerTimeoutMs: 300,
      },
    });
    const port = stack.gateway.addr.port;
    const ca = await Deno.readTextFile(files.ca);
    const closedWithin = async (conn: Deno.Conn, ms: number) => {
      const t0 = Date.now();
      const n = await Promise.race([
        conn.read(new Uint8Array(1024)).catch(() => null),
        new Promise<"open">((r) => setTimeout(() => r("open"), ms)),
      ]);
      conn.close();
      return n === null ? Date.now() - t0 : undefined;
    };
    // A TCP connection that never starts the handshake stays with Deno's TLS listener (it
    // is never handed to us: see docs/security.md), but it must not hold up anyone else.
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    // Handshake done, then half a request line, dribbled: closed without an answer.
    const slow = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
    await slow.write(new TextEncoder().encode("GET /ws?token="));
    assert.ok((await closedWithin(slow, 3000)) !== undefined, "slow head closed");
    // A prompt client is served as usual, also when its head arrives in pieces.
    const ok = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] });
    const enc = new TextEncoder();
    await ok.write(enc.encode("GET /healthz HTTP/1.1\r\n"));
    await new Promise((r) => setTimeout(r, 50));
    await ok.write(enc.encode("Host: x\r\nConnection: close\r\n\r\n"));
    let text = "";
    const buf = new Uint8Array(1024);
    for (let n = await ok.read(buf); n !== null; n = await ok.read(buf).catch(() => null)) {
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    ok.close();
    silent.close();
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /ok/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
