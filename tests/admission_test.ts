/** Who may hold a socket: per-address connection caps and upgrade rates (through a trusted
 * loopback proxy's X-Forwarded-For), the penalty after abuse, the global socket cap, and the hard
 * teardown of sockets the gateway closed, with slots released when the socket is gone.
 * @module */

import assert from "node:assert/strict";
import { floodUntilClosed, Stack, stalledClient, type TestClient, waitFor } from "./_harness.ts";
import { SESSIONS_KICK_SUBJECT } from "../src/nats/control.ts";
import { encodeClientFrame, Opcode } from "../src/transport/ws_frame.ts";

const CAPS = { subjects: ["x.>"], publish: ["x.>"] };
const te = new TextEncoder();
const td = new TextDecoder();

/** Sends an upgrade request on a raw socket and returns the response's status line. */
async function upgradeStatus(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(te.encode(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    ));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    return td.decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

function wsPath(token: string): string {
  return `/ws?token=${encodeURIComponent(token)}`;
}

Deno.test("admission: --max-conns-per-ip counts the address a trusted proxy names", async () => {
  await using stack = await Stack.start({
    gateway: { maxConnsPerIp: 2, trustProxy: ["127.0.0.0/8"] },
  });
  await stack.setCaps("u", CAPS);
  const from = (ip: string) => ({ headers: { "x-forwarded-for": ip } });
  const a1 = await stack.client("u", from("203.0.113.1"));
  await stack.client("u", from("203.0.113.1"));
  const port = stack.gateway.addr.port;
  const token = await stack.token("u");
  assert.match(
    await upgradeStatus(port, wsPath(token), { "x-forwarded-for": "203.0.113.1" }),
    /^HTTP\/1\.1 429/,
    "a third connection from the same address",
  );
  await stack.client("u", from("203.0.113.2")); // another address is not affected
  // A slot comes back when the socket is gone.
  await a1.close();
  await waitFor(() => stack.gateway.sessions("u").length === 2, 5000, "a1 gone");
  await waitFor(
    async () =>
      /^HTTP\/1\.1 101/.test(
        await upgradeStatus(port, wsPath(token), { "x-forwarded-for": "203.0.113.1" }),
      ),
    5000,
    "the address may connect again",
  );
  const metrics = await (await fetch(
    stack.gateway.wsUrl.replace(/^ws/, "http").replace(
      /\/ws$/,
      "/metrics",
    ),
  )).text();
  assert.match(metrics, /natsgate_upgrade_refusals_total\{reason="conns_per_ip"\} [1-9]/);
  assert.match(metrics, /natsgate_upgrade_refusals_total\{reason="penalty"\} 0/);
});

Deno.test("admission: X-Forwarded-For from an untrusted peer is ignored", async () => {
  await using stack = await Stack.start({ gateway: { maxConnsPerIp: 1 } });
  await stack.setCaps("u", CAPS);
  await stack.client("u", { headers: { "x-forwarded-for": "203.0.113.1" } });
  // The peer (127.0.0.1) is the address: a made-up header does not buy a second slot. The
  // socket itself is over the per-address cap, so it is closed before its head is read.
  const status = await upgradeStatus(
    stack.gateway.addr.port,
    wsPath(await stack.token("u")),
    { "x-forwarded-for": "203.0.113.99" },
  );
  assert.equal(status, "", "closed at once, no answer");
});

Deno.test("admission: raw sockets count per address before anything is read", async () => {
  await using stack = await Stack.start({ gateway: { maxConnsPerIp: 2 } });
  const port = stack.gateway.addr.port;
  const idle = [
    await Deno.connect({ hostname: "127.0.0.1", port }),
    await Deno.connect({ hostname: "127.0.0.1", port }),
  ];
  try {
    await waitFor(() => stack.gateway.socketCount === 2, 5000, "two idle sockets held");
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    assert.equal(await third.read(new Uint8Array(16)).catch(() => null), null, "closed at once");
    third.close();
    idle.pop()!.close();
    await waitFor(() => stack.gateway.socketCount === 1, 5000, "one released");
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(await res.text(), "ok\n", "room for one more");
  } finally {
    for (const c of idle) c.close();
  }
});

Deno.test("admission: --upgrade-rate-per-ip refuses bursts past twice the rate", async () => {
  await using stack = await Stack.start({
    gateway: { upgradeRatePerIp: 1, trustProxy: ["127.0.0.1/32"] },
  });
  await stack.setCaps("u", CAPS);
  const port = stack.gateway.addr.port;
  const path = wsPath(await stack.token("u"));
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    statuses.push(
      (await upgradeStatus(port, path, { "x-forwarded-for": "198.51.100.7" })).slice(9, 12),
    );
  }
  assert.deepEqual(statuses.slice(0, 2), ["101", "101"], "a burst of two");
  assert.ok(statuses.slice(2).includes("429"), `then refused: ${statuses}`);
  assert.match(
    await upgradeStatus(port, path, { "x-forwarded-for": "198.51.100.8" }),
    /^HTTP\/1\.1 101/,
    "per address",
  );
});

Deno.test("admission: after a close for sustained abuse the address is refused for a while", async () => {
  await using stack = await Stack.start({
    gateway: { limits: { rate: 1, burst: 2 }, trustProxy: ["127.0.0.1/32"] },
  });
  await stack.setCaps("u", CAPS);
  const abuser = { headers: { "x-forwarded-for": "192.0.2.66" } };
  const c = await stack.client("u", abuser);
  assert.equal(await floodUntilClosed(c, { op: "ping" }, { op: "ping" }), 4029);
  const path = wsPath(await stack.token("u"));
  const port = stack.gateway.addr.port;
  assert.match(
    await upgradeStatus(port, path, { "x-forwarded-for": "192.0.2.66" }),
    /^HTTP\/1\.1 429/,
    "reconnecting right away buys nothing",
  );
  assert.match(
    await upgradeStatus(port, path, { "x-forwarded-for": "192.0.2.67" }),
    /^HTTP\/1\.1 101/,
    "other addresses are served",
  );
});

Deno.test("admission: --max-conns closes sockets over the cap at once", async () => {
  await using stack = await Stack.start({ gateway: { maxConns: 3 } });
  await stack.setCaps("u", CAPS);
  const held: TestClient[] = [];
  for (let i = 0; i < 3; i++) held.push(await stack.client("u"));
  await assert.rejects(stack.client("u"), /connect failed/, "the fourth socket is closed");
  await held[0].close();
  await waitFor(() => stack.gateway.socketCount === 2, 5000, "socket released");
  await stack.client("u"); // room again
});

Deno.test("teardown: a socket closed with 4001 is gone within the close timeout, whatever the client does", async () => {
  await using stack = await Stack.start({
    gateway: { closeTimeoutMs: 300, limits: { authTimeoutMs: 100 } },
  });
  // Upgraded without a token, never sends auth, never reads, never closes.
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: stack.gateway.addr.port });
  try {
    await raw.write(te.encode(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    await waitFor(() => stack.gateway.socketCount === 1, 5000, "upgraded");
    await waitFor(() => stack.gateway.socketCount === 0, 10_000, "torn down after 4001");
    assert.equal(stack.gateway.sessionCount, 0);
    // The client's side sees the end of the connection.
    const buf = new Uint8Array(64 * 1024);
    let n: number | null = 0;
    while (n !== null) n = await raw.read(buf).catch(() => null);
  } finally {
    raw.close();
  }
});

Deno.test("teardown: a user's slot comes back when the cut socket is gone, not before", async () => {
  await using stack = await Stack.start({
    gateway: { maxConnsPerUser: 1, closeTimeoutMs: 1500 },
  });
  await stack.setCaps("u", CAPS);
  const stalled = await stalledClient(stack.gateway.wsUrl, await stack.token("u"));
  try {
    await waitFor(() => stack.gateway.sessions("u").length === 1, 5000, "authenticated");
    const id = stack.gateway.sessions("u")[0].id;
    // Kick it: the gateway closes (4000), the client never answers and never reads.
    await stack.nc.request(SESSIONS_KICK_SUBJECT, JSON.stringify({ session: id }));
    await waitFor(() => stack.gateway.sessions("u").length === 0, 5000, "closed");
    assert.equal(stack.gateway.socketCount, 1, "its socket is still being torn down");
    const early = await stack.rawClient({ query: await stack.token("u") });
    const refused = await early.next((e) => e.op === "error", 5000, "refusal");
    assert.equal(refused.data.code, "limit_exceeded", "the slot is still held by the socket");
    await waitFor(() => stack.gateway.socketCount <= 1, 10_000, "cut socket gone");
    await waitFor(
      async () => {
        try {
          const c = await stack.client("u");
          return c.ws.readyState === WebSocket.OPEN;
        } catch {
          return false;
        }
      },
      10_000,
      "the user may connect again",
    );
  } finally {
    stalled.close();
  }
});

Deno.test("fragments: an unauthenticated socket's message is capped at 16 KiB over all fragments", async () => {
  await using stack = await Stack.start();
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: stack.gateway.addr.port });
  try {
    await raw.write(te.encode(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    // A text frame that never finishes, then continuation frames of 4 KiB each, never FIN.
    const part = te.encode("x".repeat(4096));
    let closed = false;
    const reader = (async () => {
      const buf = new Uint8Array(4096);
      const got: number[] = [];
      for (let n = await raw.read(buf); n !== null; n = await raw.read(buf).catch(() => null)) {
        got.push(...buf.subarray(0, n));
      }
      closed = true;
      return got;
    })();
    // 32 KiB in all: over the 16 KiB before authentication, under the 64 KiB after it.
    for (let i = 0; i < 8 && !closed; i++) {
      const op = i === 0 ? Opcode.TEXT : Opcode.CONTINUATION;
      await raw.write(encodeClientFrame(op, part, { fin: false })).catch(() => closed = true);
    }
    const bytes = await reader;
    assert.ok(closed, "the gateway ended the socket");
    // A close frame with code 1009: 0x88, its length, 0x03 0xf1.
    const at = bytes.findIndex((b, i) =>
      b === 0x88 && bytes[i + 2] === 0x03 && bytes[i + 3] === 0xf1
    );
    assert.ok(at >= 0, "a close frame with 1009 was sent");
    await waitFor(() => stack.gateway.socketCount === 0, 10_000, "socket gone");
  } finally {
    raw.close();
  }
});
