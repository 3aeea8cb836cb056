/** OutboundQueue on real sockets whose reader never reads: once the kernel stops taking bytes, a
 * reader that drains nothing is cut as stalled, one that stays over the bound as slow. Coalescing
 * and the cut rules on an in-memory sink are unit tests in src/session/outbound_test.ts.
 * @module */

import assert from "node:assert/strict";
import { type FrameSink, OutboundQueue } from "../src/session/outbound.ts";
import type { CutReason } from "../src/session/backpressure.ts";
import { HttpServer, upgradeWebSocket, type WsConnection } from "../src/transport/mod.ts";
import { waitFor } from "./_harness.ts";

/** A listener that upgrades one request; resolves with its server-side socket once open. */
function _server(): { http: HttpServer; socket: Promise<WsConnection> } {
  const opened = Promise.withResolvers<WsConnection>();
  const http = HttpServer.listen({ hostname: "127.0.0.1", port: 0 }, (req) => {
    const up = upgradeWebSocket(req);
    up.socket.onopen = () => opened.resolve(up.socket);
    return up.response;
  });
  return { http, socket: opened.promise };
}

function queue(
  server: FrameSink,
  opts: { maxFrameBytes?: number; maxPendingBytes?: number; writeDeadlineMs?: number } = {},
) {
  const cuts: CutReason[] = [];
  const q = new OutboundQueue(server, {
    maxPendingBytes: opts.maxPendingBytes ?? 1 << 20,
    backpressureTimeoutMs: 250,
    writeDeadlineMs: opts.writeDeadlineMs ?? 5000,
    onBackpressure: (reason) => cuts.push(reason),
    maxFrameBytes: opts.maxFrameBytes,
  });
  return { q, cut: () => cuts.length, cuts };
}

const env = (i: number) => `{"op":"msg","n":${i}}`;

/** A WebSocket whose client performs the upgrade and then never reads. */
async function stalledPair(): Promise<
  { server: WsConnection; raw: Deno.TcpConn; [Symbol.asyncDispose]: () => Promise<void> }
> {
  const { http, socket } = _server();
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: http.addr.port });
  await raw.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const server = await socket;
  return {
    server,
    raw,
    async [Symbol.asyncDispose]() {
      raw.close();
      await http.close();
    },
  };
}

Deno.test("outbound: a reader that drains nothing for the write deadline is cut as stalled", async () => {
  await using p = await stalledPair();
  const { q, cuts } = queue(p.server, { maxPendingBytes: 64 << 20, writeDeadlineMs: 200 });
  const chunk = env(0) + "x".repeat(16 * 1024);
  // Fill the kernel buffers until the socket stops taking bytes (pending stays above zero).
  let pushed = 0;
  await waitFor(
    async () => {
      for (let i = 0; i < 64; i++) q.push(chunk);
      pushed += 64;
      await new Promise((r) => setTimeout(r, 0));
      return p.server.pendingBytes > 0 && performance.now() - p.server.lastProgressAt > 20;
    },
    10_000,
    "kernel buffers full",
  );
  assert.ok(pushed * chunk.length < 64 << 20, "still far under the per-connection bound");
  assert.equal(cuts.length, 0, "not cut while under the bound and recently drained");
  await waitFor(() => q.check(performance.now()) !== undefined, 10_000, "cut by the deadline");
  assert.deepEqual(cuts, ["stalled"]);
});

Deno.test("outbound: a queue that stays over its bound for the timeout is cut as slow", async () => {
  await using p = await stalledPair();
  const { q, cuts } = queue(p.server, { maxPendingBytes: 256 * 1024 });
  const chunk = env(0) + "y".repeat(8 * 1024);
  // Over the bound but under twice it: only the 250 ms rule can cut.
  await waitFor(
    async () => {
      q.push(chunk);
      await new Promise((r) => setTimeout(r, 0));
      return q.pendingBytes > 256 * 1024;
    },
    10_000,
    "over the bound",
  );
  assert.ok(q.pendingBytes <= 512 * 1024, "not over twice the bound");
  await waitFor(() => cuts.length > 0, 10_000, "cut after the timeout");
  assert.deepEqual(cuts, ["slow"]);
});
