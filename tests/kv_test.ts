/** `kv_sub` scenarios: capability rows, snapshot + ready + live updates, encodings, reconnects.
 * A real nats-server holds the buckets; a restart mid-watch must lose and repeat nothing.
 * @module */

import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type Envelope, Stack, type TestClient, waitFor } from "./_harness.ts";

const CAPS = {
  buckets: { todos: ["user.123.*"], articles: [">"] },
};

async function kvSub(c: TestClient, bucket: string, data?: Record<string, unknown>) {
  return await c.request({ op: "kv_sub", target: bucket, data });
}

function events(c: TestClient, sid: string): Envelope["data"][] {
  return c.msgs(sid).map((m) => m.data);
}

Deno.test("kv_sub: allowed rows work, escalations are forbidden, unknown bucket not_found", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const kvm = new Kvm(stack.nc);
  await kvm.create("todos");
  await kvm.create("articles");
  await kvm.create("secrets");
  const c = await stack.client("u");
  const rows: Array<[string, Record<string, unknown> | undefined, string]> = [
    ["todos", { pattern: "user.123.*" }, "reply"],
    ["todos", { pattern: "user.123.title" }, "reply"],
    ["articles", undefined, "reply"],
    ["articles", { pattern: "a.>" }, "reply"],
    ["todos", { pattern: "user.>" }, "forbidden"],
    ["todos", undefined, "forbidden"],
    ["todos", { pattern: "user.456.title" }, "forbidden"],
    ["secrets", undefined, "forbidden"],
    ["nope", { pattern: "x" }, "forbidden"],
    ["a.b", undefined, "invalid_subject"],
    ["todos", { pattern: "a b" }, "invalid_subject"],
    ["todos", { pattern: 5 }, "bad_request"],
    ["todos", { updates_only: "yes", pattern: "user.123.*" }, "bad_request"],
  ];
  for (const [bucket, data, want] of rows) {
    const r = await kvSub(c, bucket, data);
    assert.equal(
      r.op === "reply" ? "reply" : r.data.code,
      want,
      `${bucket} ${JSON.stringify(data)}`,
    );
  }
  await stack.setCaps("u", { buckets: { "*": [">"] } });
  await c.next((e) => e.op === "cap_update" && e.data.capabilities.buckets?.["*"]);
  assert.equal((await kvSub(c, "missing")).data.code, "not_found");
});

Deno.test("kv_sub, js_sub: wildcard grants never reach the auth bucket; a literal grant does", async () => {
  // Regression: a grant of every bucket (or stream) read every user's capabilities.
  await using stack = await Stack.start();
  await stack.setCaps("victim", { subjects: ["secret.>"] });
  await stack.setCaps("u", { buckets: { ">": [">"] }, streams: { "*": [">"] } });
  const c = await stack.client("u");
  const kv = await kvSub(c, "auth");
  assert.equal(kv.data.code, "forbidden", JSON.stringify(kv));
  const js = await c.request({ op: "js_sub", target: "KV_auth", data: { deliver: "all" } });
  assert.equal(js.data.code, "forbidden", JSON.stringify(js));
  await new Kvm(stack.nc).create("cfg");
  assert.equal((await kvSub(c, "cfg")).op, "reply", "other buckets stay granted");
  // An admin may still grant it by name, key-scoped as usual.
  await stack.setCaps("u", { buckets: { auth: ["users.u"] } });
  await c.next((e) => e.op === "cap_update" && e.data.capabilities.buckets?.auth);
  const own = await kvSub(c, "auth", { pattern: "users.u" });
  assert.equal(own.op, "reply", JSON.stringify(own));
  await c.waitMsgs(own.data.id, 1);
  assert.equal((await kvSub(c, "auth", { pattern: "users.victim" })).data.code, "forbidden");
});

Deno.test("kv_sub: snapshot, ready, then put/delete/purge in revision order", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const kv = await new Kvm(stack.nc).create("todos", { history: 5 });
  await kv.put("user.123.a", JSON.stringify({ title: "A" }));
  await kv.put("user.123.b", "plain");
  await kv.put("user.123.b", "plain2");
  await kv.put("user.999.x", "not yours");
  const c = await stack.client("u");
  const sid = (await kvSub(c, "todos", { pattern: "user.123.*" })).data.id;
  await c.next((e) => e.sid === sid && e.data.op === "ready");
  const snap = events(c, sid);
  assert.deepEqual(snap.map((e) => [e.op, e.key]), [
    ["put", "user.123.a"],
    ["put", "user.123.b"],
    ["ready", undefined],
  ]);
  assert.deepEqual(snap[0].value, { title: "A" });
  assert.equal(snap[0].encoding, undefined);
  assert.equal(snap[1].value, "plain2");
  assert.equal(snap[1].encoding, "text");
  assert.equal(snap[2].revision, snap[1].revision);
  assert.ok(!Number.isNaN(Date.parse(snap[0].created)));
  await kv.put("user.123.c", new Uint8Array([0, 255]));
  await kv.delete("user.123.a");
  await kv.purge("user.123.b");
  await kv.put("user.999.y", "ignored");
  await c.waitMsgs(sid, 6);
  const live = events(c, sid).slice(3);
  assert.deepEqual(live.map((e) => [e.op, e.key]), [
    ["put", "user.123.c"],
    ["delete", "user.123.a"],
    ["purge", "user.123.b"],
  ]);
  assert.deepEqual([live[0].value, live[0].encoding], ["AP8=", "base64"]);
  assert.equal(live[1].value, undefined);
  const revs = events(c, sid).filter((e) => e.op !== "ready").map((e) => e.revision);
  assert.deepEqual(revs, [...revs].sort((a, b) => a - b), "revision order");
});

Deno.test("kv_sub: empty bucket and no match still send ready; updates_only; history", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const kv = await new Kvm(stack.nc).create("articles", { history: 5 });
  const c = await stack.client("u");
  const empty = (await kvSub(c, "articles")).data.id;
  const ready = await c.next((e) => e.sid === empty && e.data.op === "ready");
  assert.equal(ready.data.revision, 0);
  await kv.put("k", "1");
  await kv.put("k", "2");
  await kv.put("k", "3");
  await c.waitMsgs(empty, 4);
  const upd = (await kvSub(c, "articles", { updates_only: true })).data.id;
  const r2 = await c.next((e) => e.sid === upd && e.data.op === "ready");
  assert.equal(r2.data.revision, 3);
  assert.equal(c.msgs(upd).length, 1, "no snapshot with updates_only");
  const hist = (await kvSub(c, "articles", { history: true })).data.id;
  await c.next((e) => e.sid === hist && e.data.op === "ready");
  assert.deepEqual(events(c, hist).map((e) => e.value ?? e.op), [1, 2, 3, "ready"]);
  const last = (await kvSub(c, "articles", { pattern: "nomatch" })).data.id;
  await c.next((e) => e.sid === last && e.data.op === "ready");
  await kv.put("k", "4");
  await c.waitMsgs(upd, 2);
  assert.equal(c.msgs(upd)[1].data.value, 4);
});

Deno.test("kv_sub: revoked when capabilities shrink; no more events after", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const kv = await new Kvm(stack.nc).create("articles");
  const c = await stack.client("u");
  const sid = (await kvSub(c, "articles")).data.id;
  await c.next((e) => e.sid === sid && e.data.op === "ready");
  const jsm = await jetstreamManager(stack.nc);
  const watchers = async () => {
    let n = 0;
    for await (const _ of jsm.consumers.list("KV_articles")) n++;
    return n;
  };
  assert.equal(await watchers(), 1, "the watch's consumer");
  await stack.setCaps("u", { buckets: { todos: ["user.123.*"] } });
  const cu = await c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
  assert.deepEqual(cu.data.revoked, [sid]);
  // The watch's consumer is gone from the server: nothing is left that could deliver to it.
  await waitFor(async () => (await watchers()) === 0, 5000, "the watch's consumer deleted");
  await kv.put("x", "1");
  await c.request({ op: "ping" });
  assert.equal(await watchers(), 0, "not re-created");
  assert.equal(c.msgs(sid).length, 1, "only the ready marker");
});

Deno.test("kv_sub: a nats-server restart mid-watch loses and repeats nothing", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const kv = await new Kvm(stack.nc).create("articles");
  const c = await stack.client("u");
  const sid = (await kvSub(c, "articles")).data.id;
  await c.next((e) => e.sid === sid && e.data.op === "ready");
  for (let i = 0; i < 10; i++) await kv.put(`k${i}`, String(i));
  await c.waitMsgs(sid, 11);
  await stack.nats.restart();
  await waitFor(
    async () => {
      try {
        await kv.put("after.0", "0");
        return true;
      } catch {
        return false;
      }
    },
    15000,
    "KV writable after restart",
  );
  for (let i = 1; i < 10; i++) await kv.put(`after.${i}`, String(i));
  await c.waitMsgs(sid, 21, 20000);
  // A sentinel after the last update: the watch is ordered, so once it is here a repeat of any
  // update before it would be too.
  await kv.put("sentinel", "1");
  await c.next((e) => e.sid === sid && e.data.key === "sentinel", 5000, "the sentinel");
  const keys = events(c, sid).filter((e) => e.op === "put" && e.key !== "sentinel").map((e) =>
    e.key
  );
  assert.equal(keys.length, 20, `each update once: ${keys.join(",")}`);
  assert.equal(new Set(keys).size, 20);
  assert.ok(keys.includes("after.0") && keys.includes("after.9"));
});
