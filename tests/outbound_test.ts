/** OutboundQueue on a real WebSocket pair: what is queued in one task leaves as one frame, an
 * async producer's burst too, frames stay bounded, nothing waits for a timer, slow readers are cut.
 * @module */

import assert from "node:assert/strict";
import { OutboundQueue } from "../src/outbound.ts";
import { waitFor } from "./_harness.ts";

/** A server-side WebSocket (the queue's sink) and a client recording the frames it receives. */
async function socketPair(): Promise<
  { server: WebSocket; frames: string[]; [Symbol.asyncDispose]: () => Promise<void> }
> {
  let server!: WebSocket;
  const opened = Promise.withResolvers<void>();
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const up = Deno.upgradeWebSocket(req);
    server = up.socket;
    server.onopen = () => opened.resolve();
    return up.response;
  });
  const client = new WebSocket(`ws://127.0.0.1:${http.addr.port}/`);
  const frames: string[] = [];
  client.onmessage = (e) => frames.push(String(e.data));
  await opened.promise;
  return {
    server,
    frames,
    async [Symbol.asyncDispose]() {
      const closed = new Promise((r) => client.onclose = r);
      client.close();
      await closed;
      await http.shutdown();
    },
  };
}

function queue(server: WebSocket, opts: { maxFrameBytes?: number; maxPendingBytes?: number } = {}) {
  let cut = 0;
  const q = new OutboundQueue(server, {
    maxPendingBytes: opts.maxPendingBytes ?? 1 << 20,
    backpressureTimeoutMs: 250,
    onBackpressure: () => cut++,
    maxFrameBytes: opts.maxFrameBytes,
  });
  return { q, cut: () => cut };
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
    get bufferedAmount() {
      return p.server.bufferedAmount;
    },
  };
  const q = new OutboundQueue(sink, {
    maxPendingBytes: 1 << 20,
    backpressureTimeoutMs: 250,
    onBackpressure: () => {},
  });
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
  const { q, cut } = queue(p.server, { maxPendingBytes: 10_000 });
  let accepted = true;
  for (let i = 0; i < 1000 && accepted; i++) accepted = q.push(env(i) + "x".repeat(100));
  assert.equal(accepted, false, "push reports the overflow");
  assert.equal(cut(), 1, "onBackpressure called once");
  assert.equal(q.push(env(0)), false, "a closed queue takes nothing");
});
