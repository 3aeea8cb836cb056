/** Adversarial delivery: subscribers are cut off (stalled, slow, unsubscribed, revoked, kicked)
 * while a flood is fanned out, and every survivor must still get every message exactly once, in
 * order (PROTOCOL.md section 6: "Cutting a connection never makes any other subscriber miss,
 * repeat or reorder a message"). Real nats-server, real gateway, real sockets; each message
 * carries its sequence number, each flood ends with a sentinel.
 * @module */

import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Envelope, Stack, type TestClient, waitFor } from "./_harness.ts";
import { assertExactSeq, assertGaplessPrefix, type RawEnd, RawWsClient } from "./_raw_ws.ts";

const _PAD = "x".repeat(64 * 1024);

/** A message body: `{"seq":n,"pad":"…"}`, about `size` bytes; the sentinel also has `end`. */
function _body(seq: number, size: number, end = false): string {
  return JSON.stringify(end ? { seq, end } : { seq, pad: _PAD.slice(0, Math.max(0, size - 20)) });
}

/** 8–16 KB, deterministic per sequence number. */
function _size8to16k(seq: number): number {
  return 8192 + ((seq * 7919) % 8192);
}

/** Options of {@link _flood}. */
interface FloodOptions {
  /** First sequence number. */
  from?: number;
  /** Messages (the sentinel, numbered `from + count`, comes on top when `sentinel`). */
  count: number;
  /** Body size per sequence number. */
  size?: (seq: number) => number;
  /** Bytes per second; 0: open loop, as fast as the client library takes them. */
  rate?: number;
  /** Publish a final sentinel `{seq: from + count, end: true}`. */
  sentinel?: boolean;
  /** Called after each message is handed to the NATS client. */
  onSent?: (seq: number) => void | Promise<void>;
}

/**
 * Publishes numbered messages on `subject`, paced at `rate` bytes per second (the pacing is the
 * scenario's offered load, not a synchronisation). Resolves after the server has them all.
 */
async function _flood(nc: NatsConnection, subject: string, o: FloodOptions): Promise<number> {
  const from = o.from ?? 0;
  const size = o.size ?? _size8to16k;
  const rate = o.rate ?? 0;
  const t0 = performance.now();
  let bytes = 0;
  let sinceYield = 0;
  for (let seq = from; seq < from + o.count; seq++) {
    const body = _body(seq, size(seq));
    nc.publish(subject, body);
    bytes += body.length;
    sinceYield += body.length;
    await o.onSent?.(seq);
    if (rate > 0 && sinceYield >= 128 * 1024) {
      sinceYield = 0;
      const due = t0 + (bytes / rate) * 1000;
      const wait = due - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    }
  }
  if (o.sentinel !== false) nc.publish(subject, _body(from + o.count, 0, true));
  await nc.flush();
  return bytes;
}

/** The sequence numbers a subscription received. */
function _seqs(received: Envelope[], sid: string): number[] {
  const out: number[] = [];
  for (const e of received) if (e.op === "msg" && e.sid === sid) out.push(e.data.payload.seq);
  return out;
}

/** Waits until the subscription got the message numbered `seq` (the sentinel). */
function _sentinel(c: TestClient | RawWsClient, sid: string, seq: number, ms = 30_000) {
  return c.next(
    (e) => e.op === "msg" && e.sid === sid && e.data.payload.seq === seq,
    ms,
    `sentinel ${seq} on ${sid}`,
  );
}

/** A raw client of `user`, subscribed to `subject` (optionally in a queue group), then stalled. */
async function _stalledSub(
  stack: Stack,
  user: string,
  subject: string,
  queue?: string,
): Promise<{ raw: RawWsClient; sid: string }> {
  const raw = await RawWsClient.connect(stack.gateway.wsUrl, await stack.token(user));
  await raw.next((e) => e.op === "cap_update", 5000, "cap_update");
  const sid = await raw.sub(subject, queue);
  raw.stall();
  return { raw, sid };
}

/**
 * Once the gateway has dropped `user`'s session, reads what reached the raw client's socket and
 * checks how it ended: a close frame must carry 4008 (after an `error` `backpressure`), or the
 * socket is simply gone. Returns the end.
 */
async function _assertCut(stack: Stack, raw: RawWsClient, user: string): Promise<RawEnd> {
  await waitFor(() => stack.gateway.sessions(user).length === 0, 30_000, `${user} cut off`);
  const end = await raw.drain();
  if (end.how === "close") {
    assert.equal(end.code, 4008, `${user}: close code ${end.code} ${end.reason}`);
    const last = raw.received.at(-1);
    assert.equal(last?.op, "error", `${user}: last envelope ${JSON.stringify(last)}`);
    assert.equal(last?.data.code, "backpressure");
  }
  return end;
}

Deno.test("delivery: stalled subscribers are cut with 4008, healthy ones miss nothing", async () => {
  await using stack = await Stack.start();
  const caps = { subjects: ["flood.>"] };
  for (const u of ["h", "s0", "s1"]) await stack.setCaps(u, caps);
  // Healthy and stalled interleaved: every stalled subscriber has a healthy one right after it in
  // the gateway's fan-out order, the one a cut during fan-out would make skip a message.
  const healthy: Array<{ c: TestClient; sid: string }> = [];
  const stalled: Array<{ raw: RawWsClient; sid: string; user: string }> = [];
  const addHealthy = async () => {
    const c = await stack.client("h");
    healthy.push({ c, sid: await c.sub("flood.a") });
  };
  try {
    await addHealthy();
    for (const user of ["s0", "s1"]) {
      stalled.push({ ...await _stalledSub(stack, user, "flood.a"), user });
      await addHealthy();
    }
    await addHealthy();
    const count = 3000;
    await _flood(stack.nc, "flood.a", { count, rate: 20e6 });
    for (const h of healthy) await _sentinel(h.c, h.sid, count);
    for (const [i, h] of healthy.entries()) {
      assertExactSeq(_seqs(h.c.received, h.sid), 0, count, `healthy ${i}`);
      assert.equal(h.c.ws.readyState, WebSocket.OPEN);
    }
    for (const s of stalled) {
      await _assertCut(stack, s.raw, s.user);
      assertGaplessPrefix(_seqs(s.raw.received, s.sid), 0, `${s.user} before its cut`);
      assert.ok(_seqs(s.raw.received, s.sid).length < count, `${s.user} was not cut`);
    }
  } finally {
    for (const s of stalled) s.raw.close();
  }
});
