/** Live capabilities: grants and revocations apply to open sessions at once, fail closed.
 * Also measures KV write → cap_update latency (printed, never asserted).
 * @module */

import assert from "node:assert/strict";
import { Stack } from "./_harness.ts";

Deno.test("live: a user with no capabilities is granted live, without reconnecting", async () => {
  await using stack = await Stack.start();
  const c = await stack.client("late");
  assert.equal((await c.request({ op: "sub", target: "news.x" })).data.code, "forbidden");
  await stack.setCaps("late", { subjects: ["news.>"] });
  const cu = await c.next((e) => e.op === "cap_update" && e.data.capabilities.subjects);
  assert.deepEqual(cu.data.revoked, []);
  const sid = await c.sub("news.x");
  stack.nc.publish("news.x", "1");
  await c.waitMsgs(sid, 1);
});

Deno.test("live: shrinking revokes only what is no longer allowed, then cap_update lists it", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["a.>", "b.>"] });
  const c = await stack.client("u");
  const keep = await c.sub("a.x");
  const drop = await c.sub("b.x");
  await stack.setCaps("u", { subjects: ["a.>"] });
  const cu = await c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
  assert.deepEqual(cu.data.revoked, [drop]);
  assert.deepEqual(cu.data.capabilities, { subjects: ["a.>"] });
  stack.nc.publish("b.x", "1");
  // Published after b.x on the same connection: once it is here, b.x would have been too.
  stack.nc.publish("a.x", "1");
  await c.waitMsgs(keep, 1);
  assert.equal(c.msgs(drop).length, 0, "revoked subscription gets nothing");
  assert.equal((await c.request({ op: "unsub", data: { id: drop } })).data.code, "not_found");
});

Deno.test("live: malformed or deleted documents fail closed and revoke everything", async () => {
  await using stack = await Stack.start();
  for (
    const [name, change] of [
      ["invalid JSON", (s: Stack) => s.setCaps("u", "{oops")],
      ["unknown field", (s: Stack) => s.setCaps("u", '{"subjects":["a.>"],"root":true}')],
      ["wrong type", (s: Stack) => s.setCaps("u", '{"subjects":"a.>"}')],
      ["deleted", (s: Stack) => s.deleteCaps("u")],
      ["purged", (s: Stack) => s.kv.purge("users.u")],
    ] as const
  ) {
    await stack.setCaps("u", { subjects: ["a.>"] });
    const c = await stack.client("u");
    const sid = await c.sub("a.x");
    await change(stack);
    const cu = await c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
    assert.deepEqual(cu.data.revoked, [sid], name);
    assert.deepEqual(cu.data.capabilities, {}, name);
    assert.equal((await c.request({ op: "sub", target: "a.y" })).data.code, "forbidden", name);
    await c.close();
  }
});

Deno.test("live: another user's change does not touch this session", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  await stack.setCaps("bob", { subjects: ["b.>"] });
  const alice = await stack.client("alice");
  const bob = await stack.client("bob");
  const before = alice.received.length;
  await stack.setCaps("bob", { subjects: [] });
  await bob.next((e) => e.op === "cap_update" && e.data.capabilities.subjects?.length === 0);
  // A change of alice's own document, written after bob's through the same KV watch: once its
  // cap_update is here, one caused by bob's change would have come before it.
  await stack.setCaps("alice", { subjects: ["a.>", "c.>"] });
  await alice.next((e) => e.op === "cap_update" && e.data.capabilities.subjects?.length === 2);
  assert.deepEqual(
    alice.received.slice(before).filter((e) => e.op === "cap_update").map((e) =>
      e.data.capabilities.subjects
    ),
    [["a.>", "c.>"]],
    "alice got only the cap_update of her own change",
  );
});

Deno.test("live: every session of the user is updated, on every gateway", async () => {
  await using stack = await Stack.start();
  const gw2 = await stack.extraGateway();
  try {
    await stack.setCaps("u", { subjects: ["a.>"] });
    const a = await stack.client("u");
    const { TestClient } = await import("./_harness.ts");
    const b = await TestClient.connect(gw2.wsUrl, { query: await stack.token("u") });
    stack.clients.push(b);
    await b.next((e) => e.op === "cap_update");
    const sa = await a.sub("a.x");
    b.send({ op: "sub", target: "a.x", inbox: "s" });
    const sb = (await b.answer("s")).data.id;
    await stack.setCaps("u", {});
    const ra = await a.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
    const rb = await b.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
    assert.deepEqual(ra.data.revoked, [sa]);
    assert.deepEqual(rb.data.revoked, [sb]);
  } finally {
    await gw2.close();
  }
});

Deno.test("live: KV write → cap_update latency (measured, printed)", async () => {
  await using stack = await Stack.start();
  const c = await stack.client("m");
  const lat: number[] = [];
  for (let i = 0; i < 50; i++) {
    const mark = c.received.length;
    const t0 = performance.now();
    await stack.setCaps("m", { subjects: [`s${i}.>`] });
    // next() wakes on each received frame, so this measures delivery, not polling.
    await c.next((e) => e.op === "cap_update" && c.received.indexOf(e) >= mark, 5000);
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  const p = (q: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))].toFixed(2);
  console.log(`cap_update latency over ${lat.length} changes: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`);
  assert.equal(lat.length, 50, "every change reached the client");
  const last = c.received.filter((e) => e.op === "cap_update").at(-1)!;
  assert.deepEqual(last.data.capabilities, { subjects: ["s49.>"] });
});
