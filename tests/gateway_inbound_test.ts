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

Deno.test("inbound: thousands of invalid lines earn a handful of errors; sustained, 4029", async () => {
  await using stack = await Stack.start({ gateway: { limits: { rate: 1, burst: 5 } } });
  await stack.setCaps("bad", CAPS);
  await stack.setCaps("good", CAPS);
  const bad = await stack.client("bad");
  const good = await stack.client("good");
  // 20 000 lines after one ping whose answer marks the frame as done: 40 KB, under 64 KiB.
  const junk = Array(20000).fill("x").join("\n");
  const start = bad.mark();
  bad.sendRaw(`{"op":"ping","inbox":"first"}\n${junk}`);
  // The next frame is always answered (pong, or limit_exceeded echoing its inbox).
  bad.send({ op: "ping", inbox: "sentinel" });
  await bad.answer("sentinel");
  const window = bad.received.slice(start);
  assert.equal(window.find((e) => e.inbox === "first")?.op, "pong", "the burst's first op runs");
  const frameErrors = errorsOf(window).filter((e) => e.inbox !== "sentinel");
  const invalid = frameErrors.filter((e) => e.data.code === "bad_request");
  const limited = frameErrors.filter((e) => e.data.code === "limit_exceeded");
  assert.ok(invalid.length >= 4, `lines with a token are answered (${invalid.length})`);
  assert.ok(frameErrors.length <= 7, `a handful of errors, not 20000: ${frameErrors.length}`);
  assert.equal(limited.length, 1, "one limit_exceeded for the rest of the frame");
  assert.equal(limited[0].data.message, "rate limit exceeded");
  assert.ok(invalid.every((e) => e.data.message === "invalid JSON"));
  assert.equal(bad.ws.readyState, WebSocket.OPEN, "one hostile frame does not close");

  // Another client is served while the first one floods.
  assert.equal((await good.request({ op: "ping", data: 1 })).op, "pong");
  const before = bad.mark();
  const { code, frames } = await flood(bad, junk);
  assert.equal(code, 4029, "sustained abuse closes with 4029");
  const flooded = errorsOf(bad.received.slice(before));
  // A frame's ping takes a refilled token (pong) and its next line is refused, or the ping is
  // refused: one error per frame either way.
  assert.ok(flooded.length <= frames, `${flooded.length} errors for ${frames} frames`);
  assert.ok(flooded.some((e) => e.data.code === "limit_exceeded"));
  assert.equal(await limitEvents(stack, "rate"), 1, "the close is counted as limit rate");
  assert.equal((await good.request({ op: "ping", data: 2 })).op, "pong", "the other client");
  assert.equal(good.ws.readyState, WebSocket.OPEN);
});

Deno.test("inbound: a frame over --max-lines-per-frame is cut; repeated, 4029", async () => {
  await using stack = await Stack.start({
    gateway: { limits: { rate: 100_000, burst: 100_000, maxLinesPerFrame: 3 } },
  });
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const start = c.mark();
  c.send(...Array.from({ length: 6 }, (_, i) => ({ op: "ping", inbox: `p${i}` })));
  c.send({ op: "ping", inbox: "sentinel" });
  assert.equal((await c.answer("sentinel")).op, "pong");
  const window = c.received.slice(start);
  const answer = (ib: string) => window.find((e) => e.inbox === ib);
  assert.deepEqual(["p0", "p1", "p2"].map((ib) => answer(ib)?.op), ["pong", "pong", "pong"]);
  const cut = answer("p3")!;
  assert.equal(cut.op, "error");
  assert.equal(cut.data.code, "limit_exceeded");
  assert.equal(cut.data.message, "too many envelopes in one frame (at most 3)");
  assert.equal(answer("p4"), undefined, "lines after the cut are not read");
  assert.equal(answer("p5"), undefined);
  assert.equal(errorsOf(window).length, 1, "one error for the frame");
  assert.equal(c.ws.readyState, WebSocket.OPEN, "one long frame does not close");

  // Counted as abuse: a client that keeps sending such frames is closed like a flooder.
  const body = Array(50).fill('{"op":"pub","target":"x.y","data":1}').join("\n");
  assert.equal((await flood(c, body)).code, 4029);
  assert.equal(await limitEvents(stack, "rate"), 1);
});
