/** Inbound CPU bounds against a real gateway: hostile frames of many lines are refused after the
 * client's rate tokens run out, with one error per frame, and closed with 4029 when it goes on,
 * while another client is served throughout.
 * @module */

import assert from "node:assert/strict";
import { type Envelope, Stack, type TestClient } from "./_harness.ts";

const CAPS = { subjects: ["x.>"], publish: ["x.>"] };

/**
 * Sends frames of `body` lines, each behind a ping whose answer (pong, or limit_exceeded echoing
 * it) comes once the gateway has handled the frame, until the client is closed.
 */
async function flood(c: TestClient, body: string): Promise<{ code: number; frames: number }> {
  let closed = false;
  c.closed.then(() => void (closed = true));
  let frames = 0;
  while (!closed) {
    const ib = `flood-${frames++}`;
    c.sendRaw(`{"op":"ping","inbox":"${ib}"}\n${body}`);
    // The next frame only after this one is handled, and after the event loop has delivered a
    // close that came with its answer: frames sent into a closing socket make Deno drop the
    // close frame (security.md, Gaps).
    await c.next((e) => closed || e.inbox === ib, 5000, `answer to ${ib}`);
    await new Promise((r) => setTimeout(r, 0));
  }
  return { code: (await c.closed).code, frames };
}

const errorsOf = (envs: Envelope[]) => envs.filter((e) => e.op === "error");

async function limitEvents(stack: Stack, limit: string): Promise<number> {
  const url = stack.gateway.wsUrl.replace(/^ws/, "http").replace(/\/ws$/, "/metrics");
  const text = await (await fetch(url)).text();
  const m = new RegExp(`natsgate_limit_events_total\\{limit="${limit}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

Deno.test("inbound: refused lines are answered unread; a flood in one frame closes 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 1, burst: 5 } } });
  await stack.setCaps("bad", CAPS);
  await stack.setCaps("good", CAPS);
  const bad = await stack.client("bad");
  const good = await stack.client("good");
  // A ping, 14 junk lines and a ping with an inbox: 5 tokens, then 11 refusals (under 16).
  const start = bad.received.length;
  bad.sendRaw(
    `{"op":"ping","inbox":"first"}\n${Array(14).fill("x").join("\n")}\n` +
      `{"op":"ping","inbox":"last"}`,
  );
  bad.send({ op: "ping", inbox: "sentinel" });
  await bad.answer("sentinel");
  const window = bad.received.slice(start);
  assert.equal(window.find((e) => e.inbox === "first")?.op, "pong", "the burst's first op runs");
  const last = window.find((e) => e.inbox === "last")!;
  assert.equal(last.op, "error", "a refused op with an inbox still gets its one answer");
  assert.equal(last.data.code, "limit_exceeded");
  const frameErrors = errorsOf(window).filter((e) => e.inbox === undefined);
  const invalid = frameErrors.filter((e) => e.data.code === "bad_request");
  const limited = frameErrors.filter((e) => e.data.code === "limit_exceeded");
  assert.equal(invalid.length, 4, "the lines that found a token were parsed: invalid JSON");
  assert.equal(limited.length, 10, "every refused line is answered, unread");
  assert.equal(bad.ws.readyState, WebSocket.OPEN, "a frame a little over the rate does not close");

  // A frame of 400 junk lines: a few answers, then the connection is closed as a flood.
  assert.equal((await good.request({ op: "ping", data: 1 })).op, "pong");
  const before = bad.received.length;
  bad.sendRaw(Array(400).fill("x").join("\n"));
  assert.equal((await bad.closed).code, 4029);
  const flood = errorsOf(bad.received.slice(before));
  assert.ok(flood.length <= 5 + 16 + 1, `a bounded number of error frames: ${flood.length}`);
  assert.equal(await limitEvents(stack, "rate"), 1, "the close is counted as limit rate");
  assert.equal((await good.request({ op: "ping", data: 2 })).op, "pong", "the other client");
  assert.equal(good.ws.readyState, WebSocket.OPEN);
});

Deno.test("inbound: a client over the rate frame after frame is closed 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 1, burst: 5 } } });
  await stack.setCaps("bad", CAPS);
  const bad = await stack.client("bad");
  // Each frame a little over the rate (a ping and 4 junk lines): never 16 refusals in one frame,
  // but the limit lasts, so the sustained rule closes it.
  const { code } = await flood(bad, Array(4).fill("x").join("\n"));
  assert.equal(code, 4029);
  assert.equal(await limitEvents(stack, "rate"), 1);
});

Deno.test("inbound: a frame over --max-lines-per-frame runs nothing and closes 4029", async () => {
  await using stack = await Stack.start({
    gateway: { limits: { rate: 100_000, burst: 100_000, maxLinesPerFrame: 3 } },
  });
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const ok = await stack.client("u");
  // Three envelopes are fine.
  c.send(...Array.from({ length: 3 }, (_, i) => ({ op: "ping", inbox: `ok${i}` })));
  assert.equal((await c.answer("ok2")).op, "pong");
  const start = c.received.length;
  c.send(...Array.from({ length: 6 }, (_, i) => ({ op: "ping", inbox: `p${i}` })));
  assert.equal((await c.closed).code, 4029);
  const window = c.received.slice(start);
  assert.deepEqual(window.map((e) => [e.op, e.inbox, e.data?.message]), [
    ["error", "p3", "too many envelopes in one frame (at most 3)"],
  ], "nothing of the frame ran; one error names the first envelope past the limit");
  assert.equal(await limitEvents(stack, "rate"), 1);
  assert.equal((await ok.request({ op: "ping" })).op, "pong", "another connection is unaffected");
});
