/** `js_sub` scenarios: capability rows, start positions, resume, flow control, acks, durables.
 * Against a real JetStream; a nats-server restart mid-subscription must leave no gap or duplicate.
 * @module */

import assert from "node:assert/strict";
import {
  type ConsumerInfo,
  DeliverPolicy,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { gatewayExtensions } from "../src/streams/extensions.ts";
import { Stack, type TestClient, waitFor } from "./_harness.ts";

const CAPS = { streams: { CHAT: ["chat.room.123"], AUDIT: [">"] } };

async function setup(stack: Stack, n = 0) {
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "CHAT", subjects: ["chat.>"] });
  await jsm.streams.add({ name: "AUDIT", subjects: ["audit.>"] });
  await jsm.streams.add({ name: "OTHER", subjects: ["other.>"] });
  const js = jetstream(stack.nc);
  for (let i = 1; i <= n; i++) await js.publish(`audit.e${i % 3}`, JSON.stringify({ i }));
  return { jsm, js };
}

function seqs(c: TestClient, sid: string): number[] {
  return c.msgs(sid).map((m) => m.data.seq);
}

async function jsSub(c: TestClient, stream: string, data?: Record<string, unknown>) {
  return await c.request({ op: "js_sub", target: stream, data });
}

/** Consumers of `stream` on the server whose config passes `pred`. */
async function consumers(
  jsm: JetStreamManager,
  stream: string,
  pred: (ci: ConsumerInfo) => boolean = () => true,
): Promise<ConsumerInfo[]> {
  const out: ConsumerInfo[] = [];
  for await (const ci of jsm.consumers.list(stream)) if (pred(ci)) out.push(ci);
  return out;
}

/** Waits for message `seq` on `sid`: in an ordered subscription everything before it is there. */
function seqArrived(c: TestClient, sid: string, seq: number, ms = 5000) {
  return c.next((e) => e.sid === sid && e.data?.seq === seq, ms, `seq ${seq} on ${sid}`);
}

Deno.test("js_sub: allowed rows work, escalations forbidden, missing stream, bad filter", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  await setup(stack);
  const c = await stack.client("u");
  const rows: Array<[string, Record<string, unknown> | undefined, string]> = [
    ["CHAT", { filter: "chat.room.123" }, "reply"],
    ["AUDIT", undefined, "reply"],
    ["AUDIT", { filter: "audit.x" }, "reply"],
    ["CHAT", undefined, "forbidden"],
    ["CHAT", { filter: "chat.room.*" }, "forbidden"],
    ["CHAT", { filter: "chat.>" }, "forbidden"],
    ["OTHER", undefined, "forbidden"],
    ["$SYS", undefined, "forbidden"],
    ["A.B", undefined, "invalid_subject"],
    ["AUDIT", { filter: "a..b" }, "invalid_subject"],
    ["AUDIT", { batch: 0 }, "bad_request"],
    ["AUDIT", { batch: 100000 }, "bad_request"],
    ["AUDIT", { start_seq: -1 }, "bad_request"],
    ["AUDIT", { start_time: "yesterday" }, "bad_request"],
    ["AUDIT", { deliver: "sometimes" }, "bad_request"],
    ["AUDIT", { durable: "a.b" }, "bad_request"],
    ["AUDIT", { frob: 1 }, "bad_request"],
    ["AUDIT", { filter: "chat.room.123" }, "bad_request"],
  ];
  for (const [stream, data, want] of rows) {
    const r = await jsSub(c, stream, data);
    assert.equal(
      r.op === "reply" ? "reply" : r.data.code,
      want,
      `${stream} ${JSON.stringify(data)}`,
    );
  }
  await stack.setCaps("u", { streams: { "*": [">"] } });
  await c.next((e) => e.op === "cap_update" && e.data.capabilities.streams?.["*"]);
  assert.equal((await jsSub(c, "MISSING")).data.code, "not_found");
});

Deno.test("js_sub: deliver all/new/last/last_per_subject, start_seq, start_time, time_delta", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { js, jsm } = await setup(stack, 9);
  const c = await stack.client("u");
  const all = (await jsSub(c, "AUDIT", { deliver: "all" })).data.id;
  await c.waitMsgs(all, 9);
  assert.deepEqual(seqs(c, all), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const m = c.msgs(all)[0].data;
  assert.deepEqual(m.payload, { i: 1 });
  assert.equal(m.subject, "audit.e1");
  assert.ok(!Number.isNaN(Date.parse(m.time)));
  const last = (await jsSub(c, "AUDIT", { deliver: "last" })).data.id;
  await c.waitMsgs(last, 1);
  const lps = (await jsSub(c, "AUDIT", { deliver: "last_per_subject" })).data.id;
  await c.waitMsgs(lps, 3);
  const from = (await jsSub(c, "AUDIT", { start_seq: 7 })).data.id;
  await c.waitMsgs(from, 3);
  const filtered = (await jsSub(c, "AUDIT", { deliver: "all", filter: "audit.e0" })).data.id;
  await c.waitMsgs(filtered, 3);
  const future = await jsSub(c, "AUDIT", {
    start_time: new Date(Date.now() + 60_000).toISOString(),
  });
  assert.equal(future.op, "reply", "a start_time in the future is accepted");
  const delta = (await jsSub(c, "AUDIT", { time_delta: 3600 })).data.id;
  await c.waitMsgs(delta, 9);
  const neu = (await jsSub(c, "AUDIT")).data.id;
  // The reply comes before the consumer exists: "new" counts from its creation on the server.
  await waitFor(
    async () =>
      (await consumers(jsm, "AUDIT", (ci) => ci.config.deliver_policy === DeliverPolicy.New))
        .length === 1,
    5000,
    "the deliver-new consumer on the server",
  );
  await js.publish("audit.e1", JSON.stringify({ i: 10 }));
  // The last message of the test, on the filtered subject too: once a subscription has it, it
  // has had everything before it (each is ordered), and nothing can follow.
  await js.publish("audit.e0", JSON.stringify({ i: 11 }));
  for (const sid of [last, lps, from, filtered, neu, delta]) await seqArrived(c, sid, 11);
  // "last" and "last_per_subject" start there and then follow live messages.
  assert.deepEqual(seqs(c, last), [9, 10, 11]);
  assert.deepEqual(seqs(c, lps).sort((a, b) => a - b), [7, 8, 9, 10, 11]);
  assert.deepEqual(seqs(c, from), [7, 8, 9, 10, 11]);
  assert.deepEqual(seqs(c, filtered), [3, 6, 9, 11]);
  assert.deepEqual(seqs(c, neu), [10, 11]);
  assert.deepEqual(seqs(c, delta), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

Deno.test("js_sub: unsub then resume with start_seq = last + 1: no gap, no duplicate", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { js } = await setup(stack, 5);
  const c = await stack.client("u");
  const a = (await jsSub(c, "AUDIT", { deliver: "all" })).data.id;
  await c.waitMsgs(a, 5);
  await c.request({ op: "unsub", data: { id: a } });
  const last = Math.max(...seqs(c, a));
  for (let i = 6; i <= 8; i++) await js.publish("audit.x", String(i));
  const b = (await jsSub(c, "AUDIT", { start_seq: last + 1 })).data.id;
  await c.waitMsgs(b, 3);
  await js.publish("audit.x", "9");
  await c.waitMsgs(b, 4);
  assert.deepEqual([...seqs(c, a), ...seqs(c, b)], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("js_sub: ack mode redelivers unacked messages after ack_wait_ms", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { js } = await setup(stack, 3);
  const c = await stack.client("u");
  const sid = (await jsSub(c, "AUDIT", { deliver: "all", ack: true, ack_wait_ms: 300 })).data.id;
  await c.waitMsgs(sid, 3);
  assert.equal(
    (await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: 1 } })).op,
    "reply",
  );
  assert.equal(
    (await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: 3 } })).op,
    "reply",
  );
  const redelivered = await c.next((e) => e.sid === sid && e.data.redelivered === true, 5000);
  assert.equal(redelivered.data.seq, 2, "only the unacked one comes back");
  assert.equal(
    (await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: 2 } })).op,
    "reply",
  );
  const unknown = await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: 99 } });
  assert.equal(unknown.data.code, "not_found");
  const bad = await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: "x" } });
  assert.equal(bad.data.code, "bad_request");
  // A sentinel: seq 4, delivered after 1 and 3 were acked and never acked itself. Its
  // redelivery is due after theirs would have been, so once it is here, theirs would be too.
  await js.publish("audit.x", "4");
  await c.next((e) => e.sid === sid && e.data.seq === 4 && e.data.redelivered === true, 5000);
  assert.deepEqual(
    c.msgs(sid).filter((m) => m.data.redelivered && m.data.seq !== 4).map((m) => m.data.seq),
    [2],
    "only seq 2 came back (and the sentinel)",
  );
  const plain = (await jsSub(c, "AUDIT", { deliver: "all" })).data.id;
  await c.waitMsgs(plain, 3);
  const na = await c.request({ op: "ack", target: "AUDIT", data: { id: plain, seq: 1 } });
  assert.equal(na.data.code, "bad_request", "non-ack subscriptions take no acks");
});

Deno.test("js_sub: batch bounds messages in flight for ack subscriptions", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { jsm } = await setup(stack, 10);
  const c = await stack.client("u");
  const sid = (await jsSub(c, "AUDIT", { deliver: "all", ack: true, batch: 3 })).data.id;
  await c.waitMsgs(sid, 3);
  // The server holds the bound: the consumer takes at most 3 unacked, and has handed out 3.
  const [ci] = await consumers(jsm, "AUDIT");
  assert.equal(ci.config.max_ack_pending, 3, "the consumer is bounded by batch");
  assert.equal(ci.num_ack_pending, 3);
  assert.equal(ci.delivered.stream_seq, 3, "the server delivered no more than batch");
  assert.equal(c.msgs(sid).length, 3, "no more than batch unacked in flight");
  await c.request({ op: "ack", target: "AUDIT", data: { id: sid, seq: 1 } });
  await c.waitMsgs(sid, 4);
  assert.deepEqual(seqs(c, sid), [1, 2, 3, 4]);
});

Deno.test("js_sub: durable resumes after reconnect and is never shared across users", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  await stack.setCaps("v", CAPS);
  const { js, jsm } = await setup(stack, 4);
  const c1 = await stack.client("u");
  const d1 = (await jsSub(c1, "AUDIT", { deliver: "all", durable: "reader" })).data.id;
  await c1.waitMsgs(d1, 4);
  await c1.close();
  await waitFor(() => stack.gateway.sessionCount === 0);
  for (let i = 5; i <= 6; i++) await js.publish("audit.x", String(i));
  const c2 = await stack.client("u");
  const d2 = (await jsSub(c2, "AUDIT", { deliver: "all", durable: "reader" })).data.id;
  // Messages may have gone to the closed session's pull request first (it lives until its 5 s
  // expiry): they come back after the durable's 5 s ack wait, never lost. 30 s leaves room for
  // a loaded machine (15 s once ran out during a soak).
  await c2.waitMsgs(d2, 2, 30_000);
  // A sentinel published after 5 and 6 arrived: once it is here, any replay is behind it.
  await js.publish("audit.x", "7");
  await seqArrived(c2, d2, 7);
  assert.deepEqual(seqs(c2, d2), [5, 6, 7], "position survived the reconnect");
  const other = await stack.client("v");
  const d3 = (await jsSub(other, "AUDIT", { deliver: "all", durable: "reader" })).data.id;
  await other.waitMsgs(d3, 7);
  assert.deepEqual(seqs(other, d3), [1, 2, 3, 4, 5, 6, 7], "another user's durable starts fresh");
  const names: string[] = [];
  for await (const ci of jsm.consumers.list("AUDIT")) names.push(ci.name);
  const durables = names.filter((n) => n.startsWith("ng_") && n.endsWith("_reader"));
  assert.equal(durables.length, 2);
  assert.ok(durables.every((n) => !n.includes("u_") && /^ng_[0-9a-f]{16}_reader$/.test(n)));
});

Deno.test("js_sub: ephemeral consumers are deleted on unsub and on disconnect", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { jsm } = await setup(stack, 2);
  const count = async () => {
    let n = 0;
    for await (const _ of jsm.consumers.list("AUDIT")) n++;
    return n;
  };
  const c = await stack.client("u");
  const a = (await jsSub(c, "AUDIT", { deliver: "all" })).data.id;
  const b = (await jsSub(c, "AUDIT", { deliver: "all", ack: true })).data.id;
  await c.waitMsgs(a, 2);
  await c.waitMsgs(b, 2);
  assert.equal(await count(), 2);
  await c.request({ op: "unsub", data: { id: b } });
  await waitFor(async () => (await count()) === 1, 5000, "ack consumer deleted");
  await c.close();
  await waitFor(async () => (await count()) === 0, 5000, "ordered consumer deleted");
});

Deno.test("js_sub, kv_sub: an unsub racing the consumer's creation leaves no consumer behind", async () => {
  // Regression (found by the soak): a subscription closed while its consumer was still being
  // created left that consumer on the server until its inactivity threshold.
  await using stack = await Stack.start();
  await stack.setCaps("u", { ...CAPS, buckets: { cfg: [">"] } });
  const { jsm } = await setup(stack, 2);
  await new Kvm(stack.nc).create("cfg");
  const count = async (stream: string) => {
    let n = 0;
    for await (const _ of jsm.consumers.list(stream)) n++;
    return n;
  };
  const c = await stack.client("u");
  for (const [op, target, stream] of [["js_sub", "AUDIT", "AUDIT"], ["kv_sub", "cfg", "KV_cfg"]]) {
    for (let i = 0; i < 30; i++) {
      const r = await c.request({ op, target, data: op === "js_sub" ? { deliver: "all" } : {} });
      assert.equal(r.op, "reply", JSON.stringify(r));
      c.send({ op: "unsub", data: { id: r.data.id } }); // at once: races the creation
    }
    await waitFor(async () => (await count(stream)) === 0, 5000, `no consumer left on ${stream}`);
  }
  assert.equal(stack.gateway.sessionCount, 1, "the session survived the churn");
});

Deno.test("js_sub: revoked when capabilities shrink", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { js, jsm } = await setup(stack);
  const c = await stack.client("u");
  const sid = (await jsSub(c, "AUDIT")).data.id;
  await waitFor(async () => (await consumers(jsm, "AUDIT")).length === 1, 5000, "its consumer");
  await stack.setCaps("u", { streams: { CHAT: ["chat.room.123"] } });
  const cu = await c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
  assert.deepEqual(cu.data.revoked, [sid]);
  // Its consumer is gone from the server: nothing is left that could deliver to it.
  await waitFor(async () => (await consumers(jsm, "AUDIT")).length === 0, 5000, "consumer gone");
  await js.publish("audit.x", "1");
  await c.request({ op: "ping" });
  assert.equal((await consumers(jsm, "AUDIT")).length, 0, "not re-created");
  assert.equal(c.msgs(sid).length, 0);
});

Deno.test("js_sub: nats-server restart under publishing: gapless, no duplicates", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const { js } = await setup(stack, 20);
  const c = await stack.client("u");
  const sid = (await jsSub(c, "AUDIT", { deliver: "all" })).data.id;
  await c.waitMsgs(sid, 20);
  await stack.nats.restart();
  let published = 20;
  await waitFor(
    async () => {
      try {
        await js.publish("audit.x", String(published + 1));
        published++;
        return true;
      } catch {
        return false;
      }
    },
    15000,
    "JetStream back after restart",
  );
  for (let i = 0; i < 19; i++) {
    await js.publish("audit.x", String(++published));
  }
  await c.waitMsgs(sid, published, 20000);
  // A sentinel after the last: once it is here, a duplicate of any before it would be too.
  await js.publish("audit.x", String(++published));
  await seqArrived(c, sid, published);
  assert.deepEqual(seqs(c, sid), Array.from({ length: published }, (_, i) => i + 1));
});

Deno.test("js_sub: $ rule inside a stream: a wildcard-first filter never delivers $ subjects", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { streams: { MIXED: [">", "$AUD.>"] } });
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "MIXED", subjects: ["mixed.>", "$AUD.>"] });
  const js = jetstream(stack.nc);
  await js.publish("mixed.a", "1");
  await js.publish("$AUD.secret", "2");
  await js.publish("mixed.b", "3");
  const c = await stack.client("u");
  const all = (await jsSub(c, "MIXED", { deliver: "all" })).data.id;
  const dollar = (await jsSub(c, "MIXED", { deliver: "all", filter: "$AUD.>" })).data.id;
  // Seq 3 is the stream's last message: once each subscription is past it, it has had all.
  await seqArrived(c, all, 3);
  await c.waitMsgs(dollar, 1);
  assert.deepEqual(c.msgs(all).map((m) => m.data.subject), ["mixed.a", "mixed.b"]);
  assert.deepEqual(c.msgs(dollar).map((m) => m.data.subject), ["$AUD.secret"]);
});

Deno.test("js_sub: durables per user and stream are capped; resuming one is always allowed", async () => {
  await using stack = await Stack.start({
    gateway: gatewayExtensions({ maxDurablesPerUser: 2 }),
  });
  await stack.setCaps("u", CAPS);
  await stack.setCaps("v", CAPS);
  const { jsm } = await setup(stack, 1);
  const c = await stack.client("u");
  const d1 = await jsSub(c, "AUDIT", { deliver: "all", durable: "d1" });
  const d2 = await jsSub(c, "AUDIT", { deliver: "all", durable: "d2" });
  assert.equal(d1.op, "reply");
  assert.equal(d2.op, "reply");
  // The durables are created just after their reply: wait until both exist.
  await waitFor(
    async () => {
      let n = 0;
      for await (const ci of jsm.consumers.list("AUDIT")) if (ci.name.startsWith("ng_")) n++;
      return n === 2;
    },
    5000,
    "two durables",
  );
  const third = await jsSub(c, "AUDIT", { deliver: "all", durable: "d3" });
  assert.equal(third.data.code, "limit_exceeded", JSON.stringify(third));
  // Re-attaching to one of them creates nothing: allowed at the cap.
  await c.request({ op: "unsub", data: { id: d1.data.id } });
  assert.equal((await jsSub(c, "AUDIT", { deliver: "all", durable: "d1" })).op, "reply");
  // Another user has a quota of their own.
  const other = await stack.client("v");
  assert.equal((await jsSub(other, "AUDIT", { deliver: "all", durable: "d3" })).op, "reply");
});
