/** Reliability: the gateway under NATS faults.
 * (1) nats-server restarted under load: core, KV and JetStream subscriptions carry on, the
 * JetStream one without gap or duplicate. (2) The auth bucket unavailable (NATS down, bucket
 * deleted): new connections are refused with `unavailable` (fail closed), and admitted again
 * once it is back.
 * @module */

import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type PubAck } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { userKey } from "../src/auth/user_key.ts";
import { createLogger } from "../src/log/log.ts";
import { type Envelope, retry, Stack, type TestClient, waitFor } from "./_harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts the connection's status events of each type from now on; call stop() when done. */
function statusCounter(nc: NatsConnection) {
  const counts: Record<string, number> = {};
  const it = nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
  (async () => {
    for await (const s of it) counts[s.type] = (counts[s.type] ?? 0) + 1;
  })().catch(() => {});
  return { counts, stop: () => it.stop?.() };
}

/** Waits for the refusal of a connection admitted at the WebSocket level: error, then close. */
async function refused(c: TestClient): Promise<{ error: Envelope; code: number; ms: number }> {
  const t0 = Date.now();
  const error = await c.next((e) => e.op === "error", 10_000, "error frame");
  const { code } = await Promise.race([
    c.closed,
    sleep(5000).then(() => ({ code: -1, reason: "not closed" })),
  ]);
  assert.ok(!c.received.some((e) => e.op === "cap_update"), "never admitted");
  return { error, code, ms: Date.now() - t0 };
}

Deno.test("faults: nats-server restart under load: core, KV and JetStream subscriptions carry on", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", {
    subjects: ["live.>"],
    streams: { LOAD: [">"] },
    buckets: { cfg: [">"] },
  });
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "LOAD", subjects: ["load.>"] });
  const cfg = await new Kvm(stack.nc).create("cfg", { history: 5 });
  const js = jetstream(stack.nc);
  const c = await stack.client("u");
  const core = await c.sub("live.>");
  const jsid = (await c.request({ op: "js_sub", target: "LOAD", data: { deliver: "all" } })).data
    .id;
  const kvid = (await c.request({ op: "kv_sub", target: "cfg" })).data.id;
  await c.next((e) => e.sid === kvid && e.data.op === "ready", 5000, "kv ready");

  // The publisher: JetStream publishes acknowledged one by one and retried with the same message
  // id (the stream deduplicates), so every message is stored exactly once; a KV put every 5th;
  // and one core publish per round on live.x (never retried: core is at most once).
  let n = 0;
  let from = 0;
  let stop = false;
  const acks: PubAck[] = [];
  const publisher = (async () => {
    while (!stop) {
      const i = n;
      acks.push(
        await retry(
          () =>
            js.publish(`load.${i % 4}`, JSON.stringify({ i }), { msgID: `m${i}`, timeout: 1000 }),
          15_000,
        ),
      );
      if (i % 5 === 0) await retry(() => cfg.put(`k${i % 7}`, String(i)), 15_000);
      stack.nc.publish("live.x", JSON.stringify({ i }));
      n++;
      await sleep(3);
    }
  })();
  try {
    await c.waitMsgs(jsid, 30, 10_000);
    const gw = statusCounter(stack.gateway.nc);
    const admin = statusCounter(stack.nc);
    await stack.nats.restart();
    await waitFor(
      () => gw.counts.reconnect && admin.counts.reconnect,
      15_000,
      "gateway and publisher reconnected to NATS",
    );
    gw.stop();
    admin.stop();
    // The gateway's core subscription is back on the server once a message published after both
    // reconnects reaches the client; from then on every core message must arrive.
    const probe = n;
    await waitFor(
      () => c.msgs(core).some((m) => m.data.payload.i >= probe),
      15_000,
      "a core message published after the reconnects",
    );
    from = n;
    await waitFor(() => n >= from + 100, 15_000, "publishing after the restart");
  } finally {
    stop = true;
    await publisher;
  }

  // Every message was stored once, at sequences 1..n.
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: n }, (_, i) => i + 1));
  assert.equal((await jsm.streams.info("LOAD")).state.last_seq, n);

  // js_sub: every stream sequence once, in order, across the restart.
  await c.waitMsgs(jsid, n, 20_000);
  // A sentinel stored after the last (sequence n + 1): the subscription is ordered, so once it
  // is here a repeat of any message before it would be too.
  await js.publish("load.0", JSON.stringify({ i: n }), { msgID: `m${n}` });
  await c.next((e) => e.sid === jsid && e.data.seq === n + 1, 20_000, "the sentinel");
  const jsMsgs = c.msgs(jsid);
  assert.deepEqual(jsMsgs.map((m) => m.data.seq), Array.from({ length: n + 1 }, (_, i) => i + 1));
  assert.deepEqual(
    jsMsgs.map((m) => m.data.payload.i),
    Array.from({ length: n + 1 }, (_, i) => i),
  );

  // Core: at most once by nature (what was published while NATS was down is lost), but the
  // subscription carries on: every message published once both sides were back arrived, once,
  // in order.
  await waitFor(() => c.msgs(core).some((m) => m.data.payload.i === n - 1), 5000, "last core msg");
  const coreIs = c.msgs(core).map((m) => m.data.payload.i as number);
  const after = coreIs.filter((i) => i >= from);
  const wantAfter = Array.from({ length: n - from }, (_, k) => from + k);
  assert.deepEqual(
    after,
    wantAfter,
    `core after the restart: missing ${wantAfter.filter((i) => !after.includes(i))}`,
  );
  assert.ok(coreIs.some((i) => i < 30), "core before the restart too");

  // KV: revisions strictly increasing (no repeat), and the watch's final map is the bucket.
  const events = c.msgs(kvid).map((m) => m.data).filter((d) => d.op !== "ready");
  const revs = events.map((d) => d.revision as number);
  assert.ok(revs.every((r, k) => k === 0 || r > revs[k - 1]), `kv revisions in order: ${revs}`);
  const bucket = new Map<string, string>();
  for await (const key of await cfg.keys()) bucket.set(key, (await cfg.get(key))!.string());
  const lastRev = (await cfg.status()).streamInfo.state.last_seq;
  await waitFor(
    () => c.msgs(kvid).some((m) => m.data.revision === lastRev && m.data.op !== "ready"),
    10_000,
    "kv watch caught up",
  );
  const view = new Map<string, string>();
  for (const m of c.msgs(kvid)) {
    const d = m.data;
    if (d.op === "put") view.set(d.key, String(d.value));
    else if (d.op === "delete" || d.op === "purge") view.delete(d.key);
  }
  assert.deepEqual(new Map([...view].sort()), new Map([...bucket].sort()));
  assert.ok(bucket.size === 7, `7 keys written: ${[...bucket.keys()]}`);
});

Deno.test("faults: NATS down: new connections are refused with unavailable, admitted once it is back", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["a.>"] });
  // A session of the same user is open: its cached rights must not admit new connections.
  const first = await stack.client("u");
  const gw = statusCounter(stack.gateway.nc);
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${stack.gateway.addr.port}/readyz`);
    await r.body?.cancel();
    return r.status;
  };
  assert.equal(await readyz(), 200);
  try {
    stack.nats.kill();
    await waitFor(() => gw.counts.disconnect, 5000, "gateway saw NATS go");
    // A balancer must stop sending clients here: they would be refused.
    await waitFor(async () => (await readyz()) === 503, 3000, "/readyz 503 while NATS is down");
    for (const user of ["u", "v"]) {
      const c = await stack.rawClient({ query: await stack.token(user) });
      const r = await refused(c);
      assert.equal(r.error.data.code, "unavailable", JSON.stringify(r.error));
      assert.equal(r.error.data.context.op, "auth");
      assert.equal(r.code, 1011, "closed with 1011");
      assert.ok(r.ms < 3000, `refused at once, not after a timeout (${r.ms} ms)`);
    }
    // Same with the token in an auth frame.
    const late = await stack.rawClient();
    late.send({ op: "auth", inbox: "a1", data: { token: await stack.token("u") } });
    const r = await refused(late);
    assert.equal(r.error.data.code, "unavailable");
    assert.equal(r.error.inbox, "a1");
    assert.equal(first.ws.readyState, WebSocket.OPEN, "open sessions are not dropped");
    await stack.nats.restart();
    await waitFor(() => gw.counts.reconnect, 15_000, "gateway reconnected to NATS");
    await waitFor(async () => (await readyz()) === 200, 10_000, "/readyz 200 once NATS is back");
  } finally {
    gw.stop();
  }
  // Back: new connections are admitted with the user's rights, and work.
  const c = await stack.client("u");
  const cu = c.received.find((e) => e.op === "cap_update")!;
  assert.deepEqual(cu.data.capabilities, { subjects: ["a.>"] });
  const sid = await c.sub("a.x");
  await retry(async () => {
    await c.request({ op: "ping" });
    stack.nc.publish("a.x", JSON.stringify("hello"));
    await c.waitMsgs(sid, 1, 500);
    if (c.msgs(sid).length === 0) throw new Error("not yet");
  }, 10_000);
  assert.equal((await c.request({ op: "sub", target: "b.x" })).data.code, "forbidden");
});

Deno.test("faults: auth bucket deleted: fail closed, then new rights once it is back", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["a.>"] });
  const first = await stack.client("u");
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.delete("KV_auth");
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${stack.gateway.addr.port}/readyz`);
    await r.body?.cancel();
    return r.status;
  };
  await waitFor(async () => (await readyz()) === 503, 3000, "/readyz 503 without the bucket");
  // Neither the user with an open session (cached rights) nor another user is admitted.
  for (const user of ["u", "v"]) {
    const c = await stack.rawClient({ query: await stack.token(user) });
    const r = await refused(c);
    assert.equal(r.error.data.code, "unavailable", JSON.stringify(r.error));
    assert.equal(r.code, 1011);
  }
  // The bucket comes back, with other rights for u.
  const kv = await new Kvm(stack.nc).create("auth", { history: 10 });
  await kv.put(userKey("u"), JSON.stringify({ subjects: ["b.>"] }));
  await waitFor(async () => (await readyz()) === 200, 3000, "/readyz 200 with the bucket back");
  const c = await stack.client("u");
  const cu = c.received.find((e) => e.op === "cap_update")!;
  assert.deepEqual(cu.data.capabilities, { subjects: ["b.>"] }, "read from the new bucket");
  assert.equal((await c.request({ op: "sub", target: "a.x" })).data.code, "forbidden");
  assert.equal((await c.request({ op: "sub", target: "b.x" })).op, "reply");
  // The open session is brought up to date when the gateway's watch restarts...
  const update = await first.next(
    (e) => e.op === "cap_update" && e.data.capabilities.subjects?.[0] === "b.>",
    15_000,
    "cap_update from the re-created bucket",
  );
  assert.deepEqual(update.data.revoked, []);
  // ...and live updates flow again, to both sessions.
  await kv.put(userKey("u"), JSON.stringify({ subjects: ["c.>"] }));
  for (const s of [first, c]) {
    await s.next(
      (e) => e.op === "cap_update" && e.data.capabilities.subjects?.[0] === "c.>",
      5000,
      "live cap_update",
    );
  }
});

Deno.test("faults: auth bucket re-created while nobody connects: open sessions get the new rights", async () => {
  const lines: string[] = [];
  await using stack = await Stack.start({
    gateway: { log: createLogger({ level: "debug", write: (l) => void lines.push(l) }) },
  });
  await stack.setCaps("u", { subjects: ["a.>"] });
  const first = await stack.client("u");
  const sid = await first.sub("a.x");
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.delete("KV_auth");
  // The gateway's watch has noticed: its log shows the consumer_deleted status of its consumer.
  await waitFor(
    () => lines.some((l) => l.includes("consumer_deleted") && l.includes("KV_auth")),
    10_000,
    "the watch finding its bucket gone",
  );
  const kv = await new Kvm(stack.nc).create("auth", { history: 10 });
  await kv.put(userKey("u"), JSON.stringify({ subjects: ["b.>"] }));
  // No new connection reads the new bucket: the gateway's watch notices its consumer is gone,
  // starts again on the new bucket and reads every user again; a.x is revoked.
  const update = await first.next(
    (e) => e.op === "cap_update" && e.data.capabilities.subjects?.[0] === "b.>",
    20_000,
    "cap_update from the re-created bucket",
  );
  assert.deepEqual(update.data.revoked, [sid]);
  await kv.put(userKey("u"), JSON.stringify({ subjects: ["c.>"] }));
  await first.next(
    (e) => e.op === "cap_update" && e.data.capabilities.subjects?.[0] === "c.>",
    5000,
    "live cap_update",
  );
});
