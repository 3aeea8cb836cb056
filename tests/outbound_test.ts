/** OutboundQueue on a real WebSocket pair: what is queued in one task leaves as one frame, an
 * async producer's burst too, frames stay bounded, nothing waits for a timer, slow readers are cut.
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

/** A server-side WebSocket (the queue's sink) and a client recording the frames it receives. */
async function socketPair(): Promise<
  { server: WsConnection; frames: string[]; [Symbol.asyncDispose]: () => Promise<void> }
> {
  const { http, socket } = _server();
  const client = new WebSocket(`ws://127.0.0.1:${http.addr.port}/`);
  const frames: string[] = [];
  client.onmessage = (e) => frames.push(String(e.data));
  const server = await socket;
  return {
    server,
    frames,
    async [Symbol.asyncDispose]() {
      const closed = new Promise((r) => client.onclose = r);
      client.close();
      await closed;
      await http.close();
    },
  };
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
const lines = (frames: string[]) => frames.flatMap((f) => f.split("\n"));

Deno.test("outbound: envelopes queued in one task leave as one frame, in order", async () => {
  await using p = await socketPair();
  const { q } = queue(p.server);
  for (let i = 0; i < 100; i++) q.push(env(i));
  await waitFor(() => lines(p.frames).length === 100, 2000, "100 envelopes");
  assert.equal(p.frames.length, 1);
  assert.deepEqual(lines(p.frames), Array.from({ length: 100 }, (_, i) => env(i)));
});

Deno.test("outbound: an async producer's burst (for await) is one frame, not one per envelope", async () => {
  await using p = await socketPair();
  const { q } = queue(p.server);
  async function* source() {
    for (let i = 0; i < 200; i++) yield env(i);
  }
  for await (const e of source()) q.push(e);
  await waitFor(() => lines(p.frames).length === 200, 2000, "200 envelopes");
  assert.ok(p.frames.length <= 2, `${p.frames.length} frames for one burst`);
  assert.deepEqual(lines(p.frames), Array.from({ length: 200 }, (_, i) => env(i)));
});

Deno.test("outbound: a lone envelope is sent before the next task runs (no timer)", async () => {
  await using p = await socketPair();
  let sent = 0;
  const sink = {
    send: (data: string) => {
      sent++;
      p.server.send(data);
    },
    get pendingBytes() {
      return p.server.pendingBytes;
    },
    get lastProgressAt() {
      return p.server.lastProgressAt;
    },
  };
  const { q } = queue(sink);
  q.push(env(1));
  assert.equal(sent, 0, "not synchronously: more may follow in this task");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(sent, 1, "sent within the task's microtasks");
});

Deno.test("outbound: frames stay under maxFrameBytes; a larger envelope goes alone", async () => {
  await using p = await socketPair();
  const { q } = queue(p.server, { maxFrameBytes: 1000 });
  const big = `{"op":"msg","pad":"${"x".repeat(3000)}"}`;
  for (let i = 0; i < 300; i++) q.push(i === 150 ? big : env(i));
  await waitFor(() => lines(p.frames).length === 300, 2000, "300 envelopes");
  for (const f of p.frames) {
    assert.ok(f.length <= 1000 || f === big, `frame of ${f.length} bytes`);
  }
  assert.ok(p.frames.includes(big));
  assert.equal(lines(p.frames).indexOf(big), 150, "order kept around the large envelope");
});

Deno.test("outbound: a reader that falls twice the bound behind is cut off", async () => {
  await using p = await socketPair();
  const { q, cut, cuts } = queue(p.server, { maxPendingBytes: 10_000 });
  let accepted = true;
  for (let i = 0; i < 1000 && accepted; i++) accepted = q.push(env(i) + "x".repeat(100));
  assert.equal(accepted, false, "push reports the overflow");
  assert.equal(cut(), 1, "onBackpressure called once");
  assert.deepEqual(cuts, ["over_limit"]);
  assert.equal(q.push(env(0)), false, "a closed queue takes nothing");
});

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

Deno.test("outbound: over the bound, under, and over again: the 250 ms rule still cuts", async () => {
  // An in-memory sink whose kernel never takes anything until the test says so.
  const sink = {
    pendingBytes: 0,
    lastProgressAt: performance.now(),
    send(data: string) {
      this.pendingBytes += data.length;
    },
  };
  const cuts: CutReason[] = [];
  const q = new OutboundQueue(sink, {
    maxPendingBytes: 1000,
    backpressureTimeoutMs: 50,
    writeDeadlineMs: 60_000,
    onBackpressure: (r) => cuts.push(r),
  });
  const big = `{"pad":"${"x".repeat(1400)}"}`;
  q.push(big); // over the bound: the timer is armed
  await new Promise((r) => setTimeout(r, 0));
  sink.pendingBytes = 0; // drained
  sink.lastProgressAt = performance.now();
  q.push("{}"); // under the bound again
  await new Promise((r) => setTimeout(r, 0));
  q.push(big); // over again, while the first timer is still armed
  await waitFor(() => cuts.length > 0, 5000, "cut while staying over the bound");
  assert.deepEqual(cuts, ["slow"]);
});
