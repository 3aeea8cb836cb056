/** Adversarial delivery: subscribers are cut off (stalled, slow, unsubscribed, revoked, kicked)
 * while a flood is fanned out, and every survivor must still get every message exactly once, in
 * order (PROTOCOL.md section 6: "Cutting a connection never makes any other subscriber miss,
 * repeat or reorder a message"). Real nats-server, real gateway, real sockets; each message
 * carries its sequence number, each flood ends with a sentinel.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { SESSIONS_KICK_SUBJECT } from "../src/nats/control.ts";
import type { SessionLimits } from "../src/session/types.ts";
import { type Envelope, Stack, type TestClient, waitFor } from "./_harness.ts";
import { testSeed } from "./_prng.ts";
import { assertExactSeq, assertGaplessPrefix, brief, type RawEnd, RawWsClient } from "./_raw_ws.ts";

const _PAD = "x".repeat(64 * 1024);

/** PROTOCOL.md section 6: the default per-connection bound of pending bytes. */
const _MAX_PENDING = 8 * 1024 * 1024;

/**
 * The protocol's default limits, spelled out for tests about isolation between subscribers
 * rather than about the bound: with today's smaller default an in-process reader can be cut
 * when the two cores are busy, which would hide what those tests look at.
 */
const _PROTOCOL_LIMITS = { maxPendingBytes: _MAX_PENDING, backpressureTimeoutMs: 250 };

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
async function _sentinel(
  c: TestClient | RawWsClient,
  sid: string,
  seq: number,
  ms = 30_000,
): Promise<Envelope> {
  const closed = c instanceof RawWsClient
    ? c.ended.then((e) => `${e.how} ${e.code ?? ""} ${e.reason ?? ""}`)
    : c.closed.then((e) => `close ${e.code} ${e.reason}`);
  let why = "timed out";
  try {
    return await Promise.race([
      c.next(
        (e) => e.op === "msg" && e.sid === sid && e.data.payload.seq === seq,
        ms,
        `sentinel ${seq} on ${sid}`,
      ),
      // A reader that is cut off fails at once, saying how.
      closed.then((how) => {
        why = `connection ended: ${how}`;
        throw new Error(why);
      }),
    ]);
  } catch {
    const got = _seqs(c.received, sid);
    const tail = c.received.slice(-3).map(brief);
    throw new Error(
      `no sentinel ${seq} on sid ${sid} (${why}): ${got.length} messages, last seqs ` +
        `${JSON.stringify(got.slice(-5))}, last envelopes ${JSON.stringify(tail)}`,
    );
  }
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
  if (end.how === "close") assert.equal(end.code, 4008, `${user}: close ${end.code} ${end.reason}`);
  // The error frame before the close is best effort; if it came, it says why.
  for (const e of raw.received) {
    if (e.op === "error") assert.equal(e.data.code, "backpressure", `${user}: ${brief(e)}`);
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

/**
 * Healthy readers offered a burst of `total` bytes at once (open loop: the publisher never waits)
 * stay connected and get all of it. `limits` go to the gateway through `Stack` (undefined: its
 * defaults).
 */
async function _burstScenario(total: number, limits?: Partial<SessionLimits>): Promise<void> {
  await using stack = await Stack.start({ gateway: limits ? { limits } : {} });
  await stack.setCaps("h", { subjects: ["burst.>"] });
  const readers: Array<{ c: TestClient; sid: string }> = [];
  for (let i = 0; i < 3; i++) {
    const c = await stack.client("h");
    readers.push({ c, sid: await c.sub("burst.a") });
  }
  const count = Math.ceil(total / 12_288);
  // rate 0: every publish is handed to the NATS client in one go, then flushed.
  await _flood(stack.nc, "burst.a", { count, rate: 0 });
  for (const [i, r] of readers.entries()) {
    await Promise.race([
      _sentinel(r.c, r.sid, count),
      r.c.closed.then((e) => {
        throw new Error(`reader ${i} cut off during a ${total} byte burst: ${e.code} ${e.reason}`);
      }),
    ]);
    assertExactSeq(_seqs(r.c.received, r.sid), 0, count, `reader ${i}`);
  }
  assert.equal(stack.gateway.sessions("h").length, 3, "nobody was cut");
}

// Expected to fail while the gateway's default bound is 1 MiB (cut at 2x): PROTOCOL.md section 6
// makes it 8 MiB, and a burst under the bound never cuts a reader that keeps draining.
Deno.test("delivery: a 6 MB open-loop burst reaches healthy readers (default limits)", async () => {
  await _burstScenario(6_000_000);
});

Deno.test("delivery: a 6 MB open-loop burst reaches healthy readers (8 MiB bound)", async () => {
  await _burstScenario(6_000_000, _PROTOCOL_LIMITS);
});

// Expected to fail until the new backpressure rules land (PROTOCOL.md section 6): today a queue
// above 1 MiB for 250 ms is cut even while its reader drains steadily.
Deno.test("delivery: a slow but steady reader is never cut below the bound", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("slow", { subjects: ["steady.>"] });
  const slow = await RawWsClient.connect(stack.gateway.wsUrl, await stack.token("slow"));
  try {
    await slow.next((e) => e.op === "cap_update");
    const sid = await slow.sub("steady.a");
    // A 1.5 MB/s reader offered 7 MB at 25 MB/s: the kernel's socket buffers take ~4 MB, the
    // gateway holds the rest (~3 MB, for seconds), never near the 8 MiB bound even if the
    // kernel took nothing. It drains without pause, so the stall rule never applies either.
    slow.resume(1_500_000);
    const count = Math.ceil(7e6 / 12_288);
    await _flood(stack.nc, "steady.a", { count, rate: 25e6 });
    const cut = await Promise.race([
      slow.ended,
      _sentinel(slow, sid, count, 30_000).then(() => undefined),
    ]);
    assert.equal(
      cut,
      undefined,
      `slow reader cut off: ${JSON.stringify(cut)} after ${slow.bytesRead} bytes, ` +
        `last ${JSON.stringify(slow.received.slice(-2).map(brief))}`,
    );
    assertExactSeq(_seqs(slow.received, sid), 0, count, "slow reader");
    assert.equal(stack.gateway.sessions("slow").length, 1);
  } finally {
    slow.close();
  }
});

Deno.test("delivery: unsub, revocation and kick racing a flood stop only their target", async () => {
  await using stack = await Stack.start({ gateway: { limits: _PROTOCOL_LIMITS } });
  await stack.setCaps("obs", { subjects: ["race.>"] });
  await stack.setCaps("unsub", { subjects: ["race.>"] });
  await stack.setCaps("rev", { subjects: ["race.>", "keep.>"] });
  await stack.setCaps("kick", { subjects: ["race.>"] });
  const observers: Array<{ c: TestClient; sid: string }> = [];
  const observe = async () => {
    const c = await stack.client("obs");
    observers.push({ c, sid: await c.sub("race.a") });
  };
  // Each target is followed by an observer in the fan-out order.
  const unsubC = await stack.client("unsub");
  const gone = await unsubC.sub("race.a");
  const kept = await unsubC.sub("race.a");
  await observe();
  const revC = await stack.client("rev");
  const revoked = await revC.sub("race.a");
  const keepSid = await revC.sub("keep.x");
  await observe();
  const kickC = await stack.client("kick");
  const kickSid = await kickC.sub("race.a");
  const kickSession = kickC.received.find((e) => e.op === "cap_update")!.data.session;
  await observe();

  const count = 3000;
  const size = (seq: number) => 1024 + ((seq * 131) % 3072);
  const flood = _flood(stack.nc, "race.a", { count, size, rate: 10e6 });
  const progress = (n: number) =>
    waitFor(() => observers[0].c.msgs(observers[0].sid).length >= n, 20_000, `${n} delivered`);

  await progress(500);
  const unsubInbox = unsubC.inbox();
  unsubC.send({ op: "unsub", data: { id: gone }, inbox: unsubInbox });
  await progress(1000);
  await stack.setCaps("rev", { subjects: ["keep.>"] });
  await progress(1500);
  const kicked = await stack.nc.request(
    SESSIONS_KICK_SUBJECT,
    JSON.stringify({ session: kickSession, reason: "race" }),
  );
  assert.equal(kicked.json<{ kicked: boolean }>().kicked, true);
  await flood;

  for (const [i, o] of observers.entries()) {
    await _sentinel(o.c, o.sid, count);
    assertExactSeq(_seqs(o.c.received, o.sid), 0, count, `observer ${i}`);
  }

  // unsub: the other subscription of the same client is exact; the unsubscribed one got a prefix
  // and nothing after the reply to its unsub.
  await _sentinel(unsubC, kept, count);
  assertExactSeq(_seqs(unsubC.received, kept), 0, count, "unsub client, kept sid");
  const reply = unsubC.received.findIndex((e) => e.inbox === unsubInbox);
  assert.equal(unsubC.received[reply].op, "reply");
  const after = unsubC.received.slice(reply).filter((e) => e.op === "msg" && e.sid === gone);
  assert.deepEqual(after, [], "no message after the unsub reply");
  const goneSeqs = _seqs(unsubC.received, gone);
  assertGaplessPrefix(goneSeqs, 0, "unsubscribed sid");
  assert.ok(goneSeqs.length < count, "the unsub took effect mid-flood");

  // Revocation: the cap_update lists the sid; nothing on it afterwards, proven by a sentinel on
  // the subscription that stays (published after the whole flood).
  const cap = await revC.next(
    (e) => e.op === "cap_update" && e.data.revoked.includes(revoked),
    5000,
    "revoking cap_update",
  );
  stack.nc.publish("keep.x", _body(0, 0, true));
  await _sentinel(revC, keepSid, 0);
  const capAt = revC.received.indexOf(cap);
  assert.deepEqual(
    revC.received.slice(capAt).filter((e) => e.op === "msg" && e.sid === revoked),
    [],
    "no message after the revoking cap_update",
  );
  const revSeqs = _seqs(revC.received, revoked);
  assertGaplessPrefix(revSeqs, 0, "revoked sid");
  assert.ok(revSeqs.length < count, "the revocation took effect mid-flood");

  // Kick: closed with 4000; what it got is a gapless prefix.
  assert.equal((await kickC.closed).code, 4000);
  const kickSeqs = _seqs(kickC.received, kickSid);
  assertGaplessPrefix(kickSeqs, 0, "kicked client");
  assert.ok(kickSeqs.length < count, "the kick took effect mid-flood");
});

Deno.test("delivery: a queue group member cut mid-stream loses only what was routed to it", async () => {
  await using stack = await Stack.start({ gateway: { limits: _PROTOCOL_LIMITS } });
  await stack.setCaps("q", { subjects: ["qg.>"] });
  await stack.setCaps("qs", { subjects: ["qg.>"] });
  const { raw, sid: rawSid } = await _stalledSub(stack, "qs", "qg.x", "workers");
  const members: Array<{ c: TestClient; sid: string }> = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = await stack.client("q");
      members.push({ c, sid: await c.sub("qg.x", { queue: "workers" }) });
    }
    // Phase 1: flood until the stalled member is cut off (the gateway drops its session).
    let published = 0;
    const cut = () => stack.gateway.sessions("qs").length === 0;
    while (!cut()) {
      if (published >= 20_000) throw new Error("the stalled queue member was never cut off");
      await _flood(stack.nc, "qg.x", { from: published, count: 250, rate: 20e6, sentinel: false });
      published += 250;
    }
    // Phase 2: after the cut, every message goes to a live member.
    const phase2 = 500;
    await _flood(stack.nc, "qg.x", { from: published, count: phase2, sentinel: false });
    const total = published + phase2;
    const union = () => {
      const seen = new Map<number, string>();
      const dups: string[] = [];
      for (const [i, m] of members.entries()) {
        const seqs = _seqs(m.c.received, m.sid);
        for (let k = 1; k < seqs.length; k++) {
          assert.ok(seqs[k] > seqs[k - 1], `member ${i} out of order at ${seqs[k]}`);
        }
        for (const q of seqs) {
          if (seen.has(q)) dups.push(`${q}: ${seen.get(q)} and ${i}`);
          seen.set(q, `member ${i}`);
        }
      }
      assert.deepEqual(dups, [], "a message delivered twice");
      return seen;
    };
    await waitFor(
      () => {
        const seen = union();
        for (let q = published; q < total; q++) if (!seen.has(q)) return false;
        return true;
      },
      20_000,
      "every message published after the cut",
    ).catch((err) => {
      const seen = union();
      const missing = [];
      for (let q = published; q < total; q++) if (!seen.has(q)) missing.push(q);
      throw new Error(`${err.message}; missing ${missing.slice(0, 20)} (${missing.length})`);
    });
    // NATS core queue delivery is at-most-once: a message the group routed to the member that
    // was then cut (queued in the gateway or in its socket) is lost, and no one else gets it.
    // So the messages missing from the live members are exactly the cut member's share: never
    // one of the live members' own, never one delivered twice, never one published after the cut.
    const end = await _assertCut(stack, raw, "qs");
    const seen = union();
    const rawSeqs = _seqs(raw.received, rawSid);
    for (let k = 1; k < rawSeqs.length; k++) assert.ok(rawSeqs[k] > rawSeqs[k - 1]);
    for (const q of rawSeqs) assert.ok(!seen.has(q), `${q} reached the cut member and another`);
    const missing = [];
    for (let q = 0; q < total; q++) if (!seen.has(q) && !rawSeqs.includes(q)) missing.push(q);
    for (const q of missing) assert.ok(q < published, `${q} lost after the cut`);
    for (const m of members) assert.equal(m.c.ws.readyState, WebSocket.OPEN);
    assert.ok(end.how !== "close" || end.code === 4008);
  } finally {
    raw.close();
  }
});

Deno.test("delivery: kv_sub watchers keep exact revisions while a stalled watcher is cut", async () => {
  await using stack = await Stack.start({ gateway: { limits: _PROTOCOL_LIMITS } });
  const caps = { buckets: { kvd: [">"] } };
  await stack.setCaps("kw", caps);
  await stack.setCaps("kws", caps);
  await new Kvm(stack.nc).create("kvd");
  const kvSub = async (c: TestClient | RawWsClient) => {
    const r = await c.request({ op: "kv_sub", target: "kvd", data: { updates_only: true } });
    assert.equal(r.op, "reply", JSON.stringify(r.data));
    const sid = r.data.id as string;
    await c.next((e) => e.op === "msg" && e.sid === sid && e.data.op === "ready");
    return sid;
  };
  const raw = await RawWsClient.connect(stack.gateway.wsUrl, await stack.token("kws"));
  try {
    await raw.next((e) => e.op === "cap_update");
    const rawSid = await kvSub(raw);
    raw.stall();
    const watchers: Array<{ c: TestClient; sid: string }> = [];
    for (let i = 0; i < 3; i++) {
      const c = await stack.client("kw");
      watchers.push({ c, sid: await kvSub(c) });
    }
    // Puts as plain publishes on the bucket's subjects (open loop, paced), one key each: a key
    // written again before a lagging watcher reads it would legitimately skip a revision.
    const count = 3000;
    const t0 = performance.now();
    let bytes = 0;
    for (let seq = 0; seq <= count; seq++) {
      const body = seq === count ? _body(seq, 0, true) : _body(seq, _size8to16k(seq));
      stack.nc.publish(`$KV.kvd.k.${seq}`, body);
      bytes += body.length;
      if (seq % 16 === 15) {
        const wait = t0 + (bytes / 20e6) * 1000 - performance.now();
        await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      }
    }
    await stack.nc.flush();
    for (const [i, w] of watchers.entries()) {
      const done = await Promise.race([
        w.c.next(
          (e) => e.op === "msg" && e.sid === w.sid && e.data.value?.seq === count,
          30_000,
          "sentinel put",
        ),
        w.c.closed.then((e) => {
          throw new Error(`connection ended: ${e.code} ${e.reason}`);
        }),
      ]).catch(async (err) => {
        const lasts = watchers.map((x) => x.c.msgs(x.sid).at(-1)?.data.revision);
        const info = await (await jetstreamManager(stack.nc)).streams.info("KV_kvd");
        throw new Error(
          `watcher ${i}: no sentinel put; last revisions ${JSON.stringify(lasts)}, stream ` +
            `last_seq ${info.state.last_seq}, messages ${info.state.messages}: ${
              err.message.slice(0, 80)
            }`,
        );
      });
      const puts = w.c.msgs(w.sid).filter((e) => e.data.op === "put");
      assertExactSeq(puts.map((e) => e.data.value.seq), 0, count, `watcher ${i} values`);
      const first = puts[0].data.revision as number;
      assertExactSeq(puts.map((e) => e.data.revision), first, done.data.revision, `watcher ${i}`);
    }
    await _assertCut(stack, raw, "kws");
    const rawPuts = raw.msgs(rawSid).filter((e) => e.data.op === "put");
    assertGaplessPrefix(rawPuts.map((e) => e.data.value.seq), 0, "cut watcher");
  } finally {
    raw.close();
  }
});

Deno.test("delivery: js_sub readers keep the exact stream sequence while a neighbour is cut", async () => {
  await using stack = await Stack.start({ gateway: { limits: _PROTOCOL_LIMITS } });
  const caps = { streams: { JD: [">"] }, subjects: ["jd.>"] };
  await stack.setCaps("jr", caps);
  await stack.setCaps("js", caps);
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "JD", subjects: ["jd.>"] });
  const jsSub = async (c: TestClient | RawWsClient) => {
    const r = await c.request({ op: "js_sub", target: "JD", data: { deliver: "all" } });
    assert.equal(r.op, "reply", JSON.stringify(r.data));
    return r.data.id as string;
  };
  // The neighbour has a js_sub and a core sub on the same subjects; js_sub delivery pauses for a
  // client that does not read, the core flood is what gets it cut off mid-stream.
  const raw = await RawWsClient.connect(stack.gateway.wsUrl, await stack.token("js"));
  try {
    await raw.next((e) => e.op === "cap_update");
    const rawJs = await jsSub(raw);
    const rawCore = await raw.sub("jd.x");
    raw.stall();
    const readers: Array<{ c: TestClient; sid: string }> = [];
    for (let i = 0; i < 3; i++) {
      const c = await stack.client("jr");
      readers.push({ c, sid: await jsSub(c) });
    }
    const count = 2000;
    await _flood(stack.nc, "jd.x", { count, rate: 20e6 });
    for (const [i, r] of readers.entries()) {
      await _sentinel(r.c, r.sid, count);
      const msgs = r.c.msgs(r.sid);
      assertExactSeq(msgs.map((e) => e.data.payload.seq), 0, count, `reader ${i} payloads`);
      assertExactSeq(msgs.map((e) => e.data.seq), 1, count + 1, `reader ${i} stream seq`);
    }
    await _assertCut(stack, raw, "js");
    assertGaplessPrefix(_seqs(raw.received, rawCore), 0, "cut neighbour, core");
    const rawJsSeqs = raw.msgs(rawJs).map((e) => e.data.seq);
    assertGaplessPrefix(rawJsSeqs, 1, "cut neighbour, js");
  } finally {
    raw.close();
  }
});

// ---- seeded property: random subscribers, random floods, random cuts ----

/** What happens to a client during a run. */
type _Fate = "survive" | "close" | "stall" | "unsub" | "kick" | "revoke";

/** One run's plan, drawn by fast-check from a seed. */
interface _Plan {
  subjects: number;
  clients: Array<{ subs: number[]; fate: _Fate; at: number }>;
  msgs: Array<{ s: number; size: number }>;
}

const _planArb: fc.Arbitrary<_Plan> = fc.integer({ min: 2, max: 3 }).chain((subjects) =>
  fc.integer({ min: 1500, max: 3000 }).chain((total) =>
    fc.record({
      subjects: fc.constant(subjects),
      clients: fc.array(
        fc.record({
          subs: fc.uniqueArray(fc.nat(subjects - 1), { minLength: 1, maxLength: 2 }),
          // Survivors and stalls (the cut that happens during a fan-out) twice as likely.
          fate: fc.constantFrom<_Fate>(
            ...[
              "survive",
              "survive",
              "stall",
              "stall",
              "close",
              "unsub",
              "kick",
              "revoke",
            ] as const,
          ),
          at: fc.nat(total - 1),
        }),
        { minLength: 4, maxLength: 8 },
      ),
      msgs: fc.array(
        fc.record({ s: fc.nat(subjects - 1), size: fc.integer({ min: 50, max: 16_000 }) }),
        { minLength: total, maxLength: total },
      ),
    })
  )
);

/** A client of one run, as the checks need it. */
interface _RunClient {
  fate: _Fate;
  user: string;
  session: string;
  c: TestClient | RawWsClient;
  /** Subject index per sid. */
  sids: Array<{ sid: string; s: number }>;
  /** Matches the unsub reply or the revoking cap_update (unsub and revoke fates). */
  cutAt?: (e: Envelope) => boolean;
}

/** When a client's fate strikes; a stall within the first quarter, so that enough follows it
 * for a cut to be likely. */
function _strikeAt(p: _Plan["clients"][number]): number {
  return p.fate === "stall" ? p.at >> 2 : p.at;
}

async function _propertyRun(plan: _Plan, run: number): Promise<void> {
  await using stack = await Stack.start();
  const subject = (s: number) => `prop.r${run}.s${s}`;
  const all = Array.from({ length: plan.subjects }, (_, s) => s);
  await stack.setCaps("pobs", { subjects: ["prop.>"] });
  const clients: _RunClient[] = [];
  for (const [i, p] of plan.clients.entries()) {
    const user = `p${i}`;
    await stack.setCaps(user, { subjects: p.subs.map(subject) });
    const c = p.fate === "stall"
      ? await RawWsClient.connect(stack.gateway.wsUrl, await stack.token(user))
      : await stack.client(user);
    const cap = await c.next((e) => e.op === "cap_update");
    const sids = [];
    for (const s of p.subs) sids.push({ sid: await c.sub(subject(s)), s });
    clients.push({ fate: p.fate, user, session: cap.data.session, c, sids });
  }
  // An observer on every subject, subscribed last (so it comes after every other subscriber in
  // the fan-out): when it has every sentinel, the gateway has dispatched the whole flood.
  const obs = await stack.client("pobs");
  const observer: _RunClient = {
    fate: "survive",
    user: "pobs",
    session: "",
    c: obs,
    sids: await Promise.all(all.map(async (s) => ({ sid: await obs.sub(subject(s)), s }))),
  };

  const strike = async (rc: _RunClient): Promise<void> => {
    const c = rc.c;
    switch (rc.fate) {
      case "close":
        return await (c as TestClient).close();
      case "stall":
        return (c as RawWsClient).stall();
      case "kick": {
        const r = await stack.nc.request(
          SESSIONS_KICK_SUBJECT,
          JSON.stringify({ session: rc.session, reason: "property" }),
        );
        assert.equal(r.json<{ kicked: boolean }>().kicked, true);
        return;
      }
      case "unsub": {
        const tc = c as TestClient;
        const inbox = tc.inbox();
        tc.send({ op: "unsub", data: { id: rc.sids[0].sid }, inbox });
        rc.cutAt = (e) => e.inbox === inbox && e.op === "reply";
        return;
      }
      case "revoke": {
        const gone = rc.sids[0].sid;
        const keep = rc.sids.slice(1).map((x) => subject(x.s));
        rc.cutAt = (e) => e.op === "cap_update" && e.data.revoked.includes(gone);
        await stack.setCaps(rc.user, { subjects: keep });
        return;
      }
    }
  };

  // The flood: per subject sequence numbers, subjects interleaved as planned, ~20 MB/s; each
  // client's fate strikes right after message `at` is handed to NATS (racing delivery).
  const next = all.map(() => 0);
  const strikes: Promise<void>[] = [];
  const t0 = performance.now();
  let bytes = 0;
  for (const [i, m] of plan.msgs.entries()) {
    const body = _body(next[m.s]++, m.size);
    stack.nc.publish(subject(m.s), body);
    bytes += body.length;
    for (const [k, p] of plan.clients.entries()) {
      if (_strikeAt(p) === i && p.fate !== "survive") strikes.push(strike(clients[k]));
    }
    if (i % 8 === 7) {
      const wait = t0 + (bytes / 20e6) * 1000 - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    }
  }
  for (const s of all) stack.nc.publish(subject(s), _body(next[s], 0, true));
  await stack.nc.flush();
  await Promise.all(strikes);
  const count = (s: number) => next[s];

  // Fence: once the publisher's connection and then the gateway's have made a round trip, the
  // gateway has dispatched the whole flood to every subscriber's queue.
  await stack.nc.flush();
  await stack.gateway.nc.flush();
  const exact = (rc: _RunClient, x: { sid: string; s: number }, what: string) =>
    assertExactSeq(_seqs(rc.c.received, x.sid), 0, count(x.s), `${rc.user} ${what} ${x.sid}`);
  const prefix = (rc: _RunClient, x: { sid: string; s: number }, what: string) =>
    assertGaplessPrefix(_seqs(rc.c.received, x.sid), 0, `${rc.user} ${what} ${x.sid}`);
  /**
   * A reader gets every sentinel of `subs`, or is cut off for backpressure: allowed by the
   * protocol for a reader that falls behind, as an in-process reader may on two busy cores (the
   * 8 MiB bound of PROTOCOL.md makes it rare). Either way each subscription is checked: exact
   * when complete, a gapless prefix when cut.
   */
  const settle = async (rc: _RunClient, subs: _RunClient["sids"], what: string) => {
    const closed = rc.c instanceof RawWsClient
      ? rc.c.ended.then((e) => e.code ?? 0)
      : rc.c.closed.then((e) => e.code);
    const all = Promise.all(subs.map((x) => _sentinel(rc.c, x.sid, count(x.s))));
    const code = await Promise.race([closed, all.then(() => undefined)]);
    all.catch(() => {});
    if (code === undefined) { for (const x of subs) exact(rc, x, what); }
    else {
      assert.equal(code, 4008, `${rc.user} ${what}: closed with ${code}`);
      for (const x of subs) prefix(rc, x, `${what}, cut for backpressure`);
    }
    return code === undefined;
  };
  await settle(observer, observer.sids, "observer");

  for (const rc of clients) {
    switch (rc.fate) {
      case "survive":
        await settle(rc, rc.sids, "survivor");
        break;
      case "close":
        for (const x of rc.sids) prefix(rc, x, "closed");
        break;
      case "kick":
        assert.equal((await (rc.c as TestClient).closed).code, 4000, `${rc.user} kicked`);
        for (const x of rc.sids) prefix(rc, x, "kicked");
        break;
      case "unsub":
      case "revoke": {
        const [gone, ...kept] = rc.sids;
        const tc = rc.c as TestClient;
        const answer = await Promise.race([
          tc.next(rc.cutAt!, 10_000, `${rc.user}: ${rc.fate} answer`),
          tc.closed.then(() => undefined),
        ]);
        if (answer === undefined) {
          // Cut for backpressure before its answer came: only the prefix rule is left.
          assert.equal((await tc.closed).code, 4008, `${rc.user}: closed before its ${rc.fate}`);
          for (const x of rc.sids) prefix(rc, x, `${rc.fate}, cut for backpressure`);
          break;
        }
        if (await settle(rc, kept, `${rc.fate} kept`)) {
          // Nothing can still be on its way (fence above); a pong comes after anything queued.
          const pong = await Promise.race([
            tc.request({ op: "ping" }),
            tc.closed.then(() => undefined),
          ]);
          if (pong) assert.equal(pong.op, "pong");
          else assert.equal((await tc.closed).code, 4008);
        }
        const at = tc.received.indexOf(answer);
        const late = tc.received.slice(at).filter((e) => e.op === "msg" && e.sid === gone.sid);
        assert.deepEqual(late.map(brief), [], `${rc.user}: messages after its ${rc.fate}`);
        prefix(rc, gone, rc.fate);
        break;
      }
      case "stall": {
        // Either cut off (4008, a gapless prefix) or, resumed, it gets everything.
        const raw = rc.c as RawWsClient;
        raw.resume();
        const end = await Promise.race([
          raw.ended,
          Promise.all(rc.sids.map((x) => _sentinel(raw, x.sid, count(x.s)))).then(() => undefined),
        ]);
        if (end) {
          assert.ok(end.how !== "close" || end.code === 4008, `${rc.user}: ${JSON.stringify(end)}`);
          for (const x of rc.sids) prefix(rc, x, "cut");
        } else for (const x of rc.sids) exact(rc, x, "stalled, resumed");
        raw.close();
        break;
      }
    }
  }
}

Deno.test("delivery: seeded property: random cuts never cost a survivor a message", async () => {
  const seed = testSeed("random");
  const runs = Number(Deno.env.get("NATSGATE_PROPERTY_RUNS") ?? 3);
  const plans = fc.sample(_planArb, { seed, numRuns: runs });
  for (const [run, plan] of plans.entries()) {
    try {
      await _propertyRun(plan, run);
    } catch (err) {
      const fates = plan.clients.map((c) => `${c.fate}@${_strikeAt(c)}[${c.subs}]`).join(" ");
      throw new Error(
        `seeded property failed: NATSGATE_SEED=${seed} (run ${run} of ${runs}; ` +
          `${plan.subjects} subjects, ${plan.msgs.length} messages; clients ${fates}): ` +
          `${err instanceof Error ? err.message : err}`,
        { cause: err },
      );
    }
  }
});
