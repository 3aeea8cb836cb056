/** Limits and backpressure: frame size, subscriptions, rate, connections per user, pending cmds.
 * A stalled reader on a raw TCP socket is cut off while a healthy client receives everything.
 * @module */

import assert from "node:assert/strict";
import { floodUntilClosed, Stack, stalledClient, waitFor } from "./_harness.ts";

const CAPS = { subjects: ["load.>", "x.>"], publish: ["x.>"], commands: ["x.>"] };

Deno.test("limits: a frame over --max-frame-bytes closes with 1009", async () => {
  await using stack = await Stack.start({ gateway: { limits: { maxFrameBytes: 1024 } } });
  await stack.setCaps("u", CAPS);
  const ok = await stack.client("u");
  assert.equal((await ok.request({ op: "ping", data: "x".repeat(900) })).op, "pong");
  ok.sendRaw(JSON.stringify({ op: "ping", data: "x".repeat(2000) }));
  assert.equal((await ok.closed).code, 1009);
  // Multi-byte characters count as bytes, not characters.
  const mb = await stack.client("u");
  mb.sendRaw(JSON.stringify({ op: "ping", data: "é".repeat(600) }));
  assert.equal((await mb.closed).code, 1009);
});

Deno.test("limits: --max-subs per connection", async () => {
  await using stack = await Stack.start({ gateway: { limits: { maxSubs: 3 } } });
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const sids = [await c.sub("x.1"), await c.sub("x.2"), await c.sub("x.3")];
  const r = await c.request({ op: "sub", target: "x.4" });
  assert.equal(r.data.code, "limit_exceeded");
  await c.request({ op: "unsub", data: { id: sids[0] } });
  assert.equal((await c.request({ op: "sub", target: "x.4" })).op, "reply", "a slot came back");
});

Deno.test("limits: over the rate ops get limit_exceeded; sustained abuse closes 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 20, burst: 10 } } });
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  // 25 ops against a burst of 10: at most 15 refused, under the 16 that mark a flood.
  const envs = Array.from({ length: 25 }, (_, i) => ({ op: "ping", inbox: `p${i}` }));
  const start = c.received.length;
  c.send(...envs);
  // Every op gets exactly one answer: pong while tokens last, then limit_exceeded (unread).
  c.send({ op: "ping", inbox: "after" });
  await c.answer("after");
  const answers = envs.map((e) => c.received.find((r) => r.inbox === e.inbox));
  const pongs = answers.filter((a) => a?.op === "pong").length;
  assert.ok(pongs >= 10 && pongs < 25, `burst honoured, rest limited (pongs ${pongs})`);
  assert.deepEqual(answers.slice(0, pongs).map((a) => a?.op), Array(pongs).fill("pong"));
  for (const limited of answers.slice(pongs)) {
    assert.equal(limited?.op, "error");
    assert.equal(limited.data.code, "limit_exceeded");
    assert.equal(limited.data.message, "rate limit exceeded");
  }
  const errors = c.received.slice(start).filter((e) => e.op === "error" && e.inbox !== "after");
  assert.equal(errors.length, 25 - pongs, "one answer per refused op, none twice");
  assert.equal(c.ws.readyState, WebSocket.OPEN, "a single burst does not close");
  const ping = { op: "ping" };
  assert.equal(await floodUntilClosed(c, ping, ping, ping, ping), 4029);
});

Deno.test("limits: --max-conns-per-user", async () => {
  await using stack = await Stack.start({ gateway: { maxConnsPerUser: 2 } });
  await stack.setCaps("u", CAPS);
  const a = await stack.client("u");
  const b = await stack.client("u");
  const c = await stack.rawClient({ query: await stack.token("u") });
  const err = await c.next((e) => e.op === "error");
  assert.equal(err.data.code, "limit_exceeded");
  assert.equal((await c.closed).code, 4029);
  const other = await stack.client("someone-else");
  assert.equal(other.ws.readyState, WebSocket.OPEN, "other users unaffected");
  await a.close();
  await waitFor(() => stack.gateway.sessionCount === 2);
  const d = await stack.client("u");
  assert.equal(d.ws.readyState, WebSocket.OPEN, "slot freed on disconnect");
  assert.equal(b.ws.readyState, WebSocket.OPEN);
});

Deno.test("limits: pending cmds per connection", async () => {
  await using stack = await Stack.start({ gateway: { limits: { maxPendingCmds: 2 } } });
  await stack.setCaps("u", CAPS);
  const held: Array<() => void> = [];
  stack.nc.subscribe("x.slow", {
    callback: (_e, m) => {
      held.push(() => m.respond("1"));
    },
  });
  await stack.nc.flush();
  const c = await stack.client("u");
  c.send(
    { op: "cmd", target: "x.slow", inbox: "c1" },
    { op: "cmd", target: "x.slow", inbox: "c2" },
    { op: "cmd", target: "x.slow", inbox: "c3" },
  );
  assert.equal((await c.answer("c3")).data.code, "limit_exceeded");
  await waitFor(() => held.length === 2);
  for (const f of held) f();
  assert.equal((await c.answer("c1")).op, "reply");
  assert.equal((await c.answer("c2")).op, "reply");
  c.send({ op: "cmd", target: "x.slow", inbox: "c4" });
  await waitFor(() => held.length === 3);
  held[2]();
  assert.equal((await c.answer("c4")).op, "reply", "slots freed after replies");
});

Deno.test("backpressure: a reader that stops is cut off; a healthy client gets every message", async () => {
  await using stack = await Stack.start({
    gateway: { limits: { maxPendingBytes: 256 * 1024, backpressureTimeoutMs: 250 } },
  });
  await stack.setCaps("u", CAPS);
  const healthy = await stack.client("u");
  const hsid = await healthy.sub("load.x");
  const stalled = await stalledClient(stack.gateway.wsUrl, await stack.token("u"));
  try {
    // Subscribe on the stalled socket with a masked client frame written by hand.
    const frame = (text: string) => {
      const payload = new TextEncoder().encode(text);
      const mask = crypto.getRandomValues(new Uint8Array(4));
      const head = payload.length < 126
        ? new Uint8Array([0x81, 0x80 | payload.length])
        : new Uint8Array([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
      const out = new Uint8Array(head.length + 4 + payload.length);
      out.set(head);
      out.set(mask, head.length);
      for (let i = 0; i < payload.length; i++) out[head.length + 4 + i] = payload[i] ^ mask[i % 4];
      return out;
    };
    await stalled.write(frame(JSON.stringify({ op: "sub", target: "load.x" })));
    await waitFor(() => {
      const list = stack.gateway.sessions("u");
      return list.length === 2 && list.every((s) => s.subscriptions.length === 1);
    });
    const total = 20_000;
    const body = JSON.stringify({ pad: "p".repeat(200) });
    for (let i = 0; i < total; i++) {
      stack.nc.publish("load.x", body);
      // The healthy client lives in this process: let it read between bursts.
      if (i % 100 === 99) await stack.nc.flush();
    }
    await stack.nc.flush();
    await healthy.waitMsgs(hsid, total, 20_000);
    assert.equal(healthy.msgs(hsid).length, total, "healthy client got every message");
    await waitFor(() => stack.gateway.sessions("u").length === 1, 5000, "stalled session closed");
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
  } finally {
    stalled.close();
  }
});

Deno.test("backpressure: the slow client sees error backpressure and close 4008", async () => {
  await using stack = await Stack.start({
    gateway: { limits: { maxPendingBytes: 32 * 1024, backpressureTimeoutMs: 100 } },
  });
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const sid = await c.sub("load.y");
  // Deno's client reads eagerly, so simulate slowness by flooding far past the bound in one task.
  const big = JSON.stringify({ pad: "q".repeat(4000) });
  for (let i = 0; i < 2000; i++) stack.nc.publish("load.y", big);
  await stack.nc.flush();
  const closed = await c.closed;
  if (closed.code === 4008) {
    assert.ok(c.received.some((e) => e.op === "error" && e.data.code === "backpressure"));
  } else {
    // The client kept up: then it must have everything.
    await c.waitMsgs(sid, 2000);
  }
});
