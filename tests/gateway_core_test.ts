/** Core-NATS scenarios: sub/pub/cmd allowed and denied, encodings, frames, injection, malformed input.
 * Every scenario runs against a real nats-server and a real gateway over real WebSockets.
 * @module */

import assert from "node:assert/strict";
import { headers as natsHeaders, type Msg } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Stack, waitFor } from "./_harness.ts";

const CAPS = {
  subjects: ["chat.room.*", "articles.>", "*.public"],
  publish: ["chat.room.*"],
  commands: ["articles.create", "todos.add"],
};

Deno.test("sub: allowed patterns work, wider or sideways patterns are forbidden", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const cases: Array<[string, string]> = [
    ["chat.room.1", "reply"],
    ["chat.room.*", "reply"],
    ["articles.>", "reply"],
    ["articles.x.y", "reply"],
    ["news.public", "reply"],
    ["chat.>", "forbidden"],
    ["*.room.1", "forbidden"],
    ["chat.*.*", "forbidden"],
    ["chat.room.1.x", "forbidden"],
    [">", "forbidden"],
    ["articles", "forbidden"],
    ["$SYS.public", "forbidden"],
    ["*.*", "forbidden"],
  ];
  for (const [target, want] of cases) {
    const r = await c.request({ op: "sub", target });
    assert.equal(r.op === "reply" ? "reply" : r.data.code, want, target);
    if (r.op === "error") {
      assert.deepEqual(r.data.context, { op: "sub", target });
      assert.equal(r.data.message, "not allowed", "no capability detail leaks");
    }
  }
});

Deno.test("sub/pub: messages flow end to end, JSON/text/binary payloads, headers, reply flag", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const sid = await c.sub("chat.room.*");
  stack.nc.publish("chat.room.1", JSON.stringify({ hello: "world", n: 1 }));
  stack.nc.publish("chat.room.2", "plain text");
  stack.nc.publish("chat.room.3", new Uint8Array([0, 255, 1]));
  const h = natsHeaders();
  h.set("X-Trace", "abc");
  stack.nc.publish("chat.room.4", "{}", { headers: h, reply: "some.reply.subject" });
  const msgs = await c.waitMsgs(sid, 4);
  assert.deepEqual(msgs.map((m) => m.target), [
    "chat.room.1",
    "chat.room.2",
    "chat.room.3",
    "chat.room.4",
  ]);
  assert.deepEqual(msgs[0].data, { payload: { hello: "world", n: 1 } });
  assert.deepEqual(msgs[1].data, { payload: "plain text", encoding: "text" });
  assert.deepEqual(msgs[2].data, { payload: "AP8B", encoding: "base64" });
  assert.deepEqual(msgs[3].data.headers, { "X-Trace": "abc" });
  assert.equal(msgs[3].data.reply, true);
  assert.ok(!JSON.stringify(msgs[3]).includes("some.reply.subject"), "reply subject never exposed");
  assert.ok(msgs.every((m) => m.v === 1 && m.op === "msg"));

  // Client publishes: JSON, text, base64, headers.
  const got: Msg[] = [];
  const sub = stack.nc.subscribe("chat.room.9", { callback: (_e, m) => void got.push(m) });
  await stack.nc.flush();
  assert.equal(
    (await c.request({ op: "pub", target: "chat.room.9", data: { a: [1, 2] } })).op,
    "reply",
  );
  await c.request({ op: "pub", target: "chat.room.9", data: "raw", encoding: "text" });
  await c.request({ op: "pub", target: "chat.room.9", data: "AP8B", encoding: "base64" });
  await c.request({ op: "pub", target: "chat.room.9", data: 1, headers: { "X-A": ["1", "2"] } });
  await waitFor(() => got.length === 4);
  sub.unsubscribe();
  assert.equal(got[0].string(), '{"a":[1,2]}');
  assert.equal(got[1].string(), "raw");
  assert.deepEqual([...got[2].data], [0, 255, 1]);
  assert.deepEqual(got[3].headers?.values("X-A"), ["1", "2"]);
});

Deno.test("pub: needs a literal subject covered by publish", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const cases: Array<[string, string]> = [
    ["chat.room.1", "reply"],
    ["chat.room.*", "invalid_subject"],
    ["chat.>", "invalid_subject"],
    ["articles.x", "forbidden"],
    ["chat.room.1.x", "forbidden"],
    ["$JS.API.STREAM.LIST", "forbidden"],
  ];
  for (const [target, want] of cases) {
    const r = await c.request({ op: "pub", target, data: 1 });
    assert.equal(r.op === "reply" ? "reply" : r.data.code, want, target);
  }
});

Deno.test("cmd: reply, timeout, no_responders, headers, forbidden", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const svc = stack.nc.subscribe("articles.create", {
    callback: (_e, m) => {
      const h = natsHeaders();
      h.set("X-Echo", m.headers?.get("X-In") ?? "");
      m.respond(JSON.stringify({ created: m.json<{ title: string }>().title }), { headers: h });
    },
  });
  const slow = stack.nc.subscribe("todos.add", { callback: () => {} });
  await stack.nc.flush();
  const r = await c.request({
    op: "cmd",
    target: "articles.create",
    data: { title: "hi" },
    headers: { "X-In": "v" },
  });
  assert.equal(r.op, "reply");
  assert.equal(r.target, "articles.create");
  assert.deepEqual(r.data, { created: "hi" });
  assert.deepEqual(r.headers, { "X-Echo": "v" });
  const t = await c.request({ op: "cmd", target: "todos.add", data: 1, timeout_ms: 200 });
  assert.equal(t.data.code, "timeout");
  svc.unsubscribe();
  slow.unsubscribe();
  await stack.nc.flush();
  const n = await c.request({ op: "cmd", target: "todos.add", data: 1 });
  assert.equal(n.data.code, "no_responders");
  const f = await c.request({ op: "cmd", target: "chat.room.1", data: 1 });
  assert.equal(f.data.code, "forbidden");
  const w = await c.request({ op: "cmd", target: "articles.*", data: 1 });
  assert.equal(w.data.code, "invalid_subject");
});

Deno.test("cmd: text and binary responses carry their encoding", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  stack.nc.subscribe("articles.create", { callback: (_e, m) => void m.respond("not json") });
  stack.nc.subscribe("todos.add", { callback: (_e, m) => void m.respond(new Uint8Array([255])) });
  await stack.nc.flush();
  const a = await c.request({ op: "cmd", target: "articles.create" });
  assert.equal(a.data, "not json");
  assert.equal(a.encoding, "text");
  const b = await c.request({ op: "cmd", target: "todos.add" });
  assert.equal(b.data, "/w==");
  assert.equal(b.encoding, "base64");
});

Deno.test("queue groups: one member of the group gets each message", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const a = await stack.client("u");
  const b = await stack.client("u");
  const sa = await a.sub("chat.room.q", { queue: "workers" });
  const sb = await b.sub("chat.room.q", { queue: "workers" });
  const ea = await a.sub("chat.room.end");
  const eb = await b.sub("chat.room.end");
  for (let i = 0; i < 20; i++) stack.nc.publish("chat.room.q", String(i));
  // Published after the 20 on the same connection: once both members have it, a duplicate of
  // any of the 20 would have arrived before it.
  stack.nc.publish("chat.room.end", "end");
  await a.waitMsgs(ea, 1);
  await b.waitMsgs(eb, 1);
  assert.equal(a.msgs(sa).length + b.msgs(sb).length, 20, "each message exactly once");
  assert.ok(a.msgs(sa).length > 0 && b.msgs(sb).length > 0, "both members used");
  // A backend's queue group of the same name is another group: clients never take its messages.
  let backend = 0;
  const worker = stack.nc.subscribe("chat.room.q", {
    queue: "workers",
    callback: () => void backend++,
  });
  await stack.nc.flush();
  for (let i = 0; i < 20; i++) stack.nc.publish("chat.room.q", String(i));
  await waitFor(() => backend === 20 && a.msgs(sa).length + b.msgs(sb).length === 40);
  worker.unsubscribe();
  for (const q of ["a.b", "a b", "*", ""]) {
    const r = await a.request({ op: "sub", target: "chat.room.q", data: { queue: q } });
    assert.equal(r.data.code, "invalid_subject", `queue ${JSON.stringify(q)}`);
  }
});

Deno.test("unsub: stops delivery; unknown id is not_found", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const sid = await c.sub("chat.room.1");
  const sentinel = await c.sub("chat.room.2");
  stack.nc.publish("chat.room.1", "1");
  await c.waitMsgs(sid, 1);
  const r = await c.request({ op: "unsub", data: { id: sid } });
  assert.deepEqual(r.data, { id: sid });
  stack.nc.publish("chat.room.1", "2");
  // Published after "2" on the same connection: had "2" been delivered, it would be here first.
  stack.nc.publish("chat.room.2", "sentinel");
  await c.waitMsgs(sentinel, 1);
  assert.equal(c.msgs(sid).length, 1);
  assert.equal((await c.request({ op: "unsub", data: { id: sid } })).data.code, "not_found");
  assert.equal((await c.request({ op: "unsub", data: {} })).data.code, "bad_request");
});

Deno.test("two subscriptions on one subject each get the message; NATS holds one", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const before = await stack.natsSubscriptions();
  const a = await stack.client("u");
  const b = await stack.client("u");
  const s1 = await a.sub("chat.room.1");
  const s2 = await a.sub("chat.room.1");
  const s3 = await b.sub("chat.room.1");
  assert.equal(stack.gateway.natsSubscriptionCount, 1);
  assert.equal(await stack.natsSubscriptions(), before + 1);
  stack.nc.publish("chat.room.1", "x");
  await a.waitMsgs(s1, 1);
  await a.waitMsgs(s2, 1);
  await b.waitMsgs(s3, 1);
});

Deno.test("$ rule: a leading-wildcard subscription never delivers $ subjects", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: [">", "$SYS.x"], publish: [">"] });
  const c = await stack.client("u");
  const all = await c.sub(">");
  const sys = await c.sub("$SYS.x");
  stack.nc.publish("$SYS.x", "secret");
  stack.nc.publish("$JS.API.INFO", "secret");
  stack.nc.publish("plain", "ok");
  // "plain" is published last: once it is here, a $ message delivered on `>` would be too.
  await c.next((e) => e.sid === all && e.target === "plain", 5000, "plain on >");
  await c.waitMsgs(sys, 1);
  assert.deepEqual(c.msgs(all).map((m) => m.target), ["plain"]);
  assert.deepEqual(c.msgs(sys).map((m) => m.target), ["$SYS.x"]);
  assert.equal(
    (await c.request({ op: "pub", target: "$JS.API.STREAM.LIST" })).data.code,
    "forbidden",
  );
  assert.equal((await c.request({ op: "sub", target: "$JS.>" })).data.code, "forbidden");
});

Deno.test("$ rule: a `>` subscriber never sees JetStream deliveries made for another user", async () => {
  // Regression: consumer deliveries reach the gateway's inbox under their stream subject, and a
  // wildcard-first subscription on the same connection matched them.
  await using stack = await Stack.start();
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "HIST", subjects: ["hist.>"] });
  const js = jetstream(stack.nc);
  await js.publish("hist.1", JSON.stringify("old"));
  await js.publish("hist.2", JSON.stringify("old"));
  await stack.setCaps("snoop", { subjects: [">"] });
  await stack.setCaps("owner", { streams: { HIST: [">"] } });
  const snoop = await stack.client("snoop");
  const all = await snoop.sub(">");
  const owner = await stack.client("owner");
  const r = await owner.request({ op: "js_sub", target: "HIST", data: { deliver: "all" } });
  assert.equal(r.op, "reply", JSON.stringify(r));
  await owner.waitMsgs(r.data.id, 2);
  // Published after the owner had both deliveries: a leaked delivery would reach snoop first.
  stack.nc.publish("live.x", JSON.stringify("new"));
  await snoop.next((e) => e.sid === all && e.target === "live.x", 5000, "live.x on >");
  assert.deepEqual(snoop.msgs(all).map((m) => m.target), ["live.x"], "only the live message");
});

Deno.test("injection: invalid subjects, queues and headers never reach NATS", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: [">"], publish: [">"], commands: [">"] });
  const seen: string[] = [];
  const spy = stack.nc.subscribe(">", { callback: (_e, m) => void seen.push(m.subject) });
  await stack.nc.flush();
  const c = await stack.client("u");
  const bad = [
    "a b",
    "a\tb",
    "a\r\nPUB x 1\r\n",
    "a\nb",
    "a\u0000b",
    "a..b",
    ".a",
    "a.",
    "",
    "a.>.b",
    "a*",
    "a>",
    "x".repeat(257),
    "a\u2028b",
  ];
  for (const target of bad) {
    for (const op of ["pub", "cmd", "sub"]) {
      const r = await c.request({ op, target, data: 1 });
      assert.equal(r.op, "error", `${op} ${JSON.stringify(target)}`);
      assert.ok(
        ["invalid_subject", "bad_request"].includes(r.data.code),
        `${op} ${JSON.stringify(target)}: ${r.data.code}`,
      );
    }
  }
  const h = await c.request({
    op: "pub",
    target: "ok",
    data: 1,
    headers: { "X-A": "1\r\nX-B: 2" },
  });
  assert.equal(h.data.code, "bad_request");
  const h2 = await c.request({ op: "pub", target: "ok", data: 1, headers: { "X A": "1" } });
  assert.equal(h2.data.code, "bad_request");
  // A valid pub through the same gateway connection, after every refused op: once the spy has
  // it, anything the gateway had let through would have reached the spy before it.
  assert.equal((await c.request({ op: "pub", target: "injection.sentinel", data: 1 })).op, "reply");
  await waitFor(() => seen.includes("injection.sentinel"), 5000, "sentinel on NATS");
  spy.unsubscribe();
  assert.deepEqual(
    seen.filter((s) =>
      !s.startsWith("$") && !s.startsWith("_INBOX.") && s !== "injection.sentinel"
    ),
    [],
    "nothing published to NATS",
  );
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

Deno.test("malformed input gets an error and the connection stays usable", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const start = c.received.length;
  c.sendRaw("{not json");
  c.sendRaw(new Uint8Array([1, 2, 3]));
  c.sendRaw('{"op":"nope","inbox":"u1"}');
  c.sendRaw('{"v":2,"op":"ping","inbox":"v2"}');
  c.sendRaw(`{"op":"ping","inbox":"deep","data":${"[".repeat(10000)}${"]".repeat(10000)}}`);
  c.sendRaw(
    '{"op":"pub","target":"chat.room.1","inbox":"pr","__proto__":{"x":1},"data":{"__proto__":{"y":2}}}',
  );
  c.sendRaw('{"op":"sub","target":"chat.room.1","inbox":"nd","data":"notobject"}');
  c.sendRaw('{"op":"pub","inbox":"nt"}');
  assert.equal((await c.answer("u1")).data.code, "unknown_op");
  assert.equal((await c.answer("v2")).data.code, "unsupported_version");
  assert.equal((await c.answer("deep")).op, "pong");
  assert.equal((await c.answer("pr")).op, "reply");
  assert.equal((await c.answer("nd")).data.code, "bad_request");
  assert.equal((await c.answer("nt")).data.code, "bad_request");
  const errors = c.received.slice(start).filter((e) => e.op === "error" && e.inbox === undefined);
  assert.deepEqual(
    errors.map((e) => e.data.code),
    ["bad_request", "bad_request"],
    "bad JSON and binary frame",
  );
  assert.equal((await c.request({ op: "ping", data: { still: "alive" } })).data.still, "alive");
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

Deno.test("frames: several envelopes in, several envelopes out in one frame", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  c.send(
    { op: "ping", inbox: "1" },
    { op: "ping", inbox: "2" },
    { op: "ping", inbox: "3" },
  );
  await c.answer("3");
  const sid = await c.sub("chat.room.1");
  const framesBefore = c.frames.length;
  for (let i = 0; i < 50; i++) stack.nc.publish("chat.room.1", String(i));
  await c.waitMsgs(sid, 50);
  assert.deepEqual(
    c.msgs(sid).map((m) => m.data.payload),
    Array.from({ length: 50 }, (_, i) => i),
    "in order",
  );
  assert.ok(c.frames.length - framesBefore < 50, "messages were coalesced into fewer frames");
});

Deno.test("ops without inbox: silent on success, error without inbox on failure", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", CAPS);
  const c = await stack.client("u");
  const start = c.received.length;
  c.send({ op: "pub", target: "chat.room.1", data: 1 });
  c.send({ op: "pub", target: "nope", data: 1 });
  await c.request({ op: "ping" });
  const after = c.received.slice(start);
  assert.equal(after.length, 2, JSON.stringify(after));
  assert.equal(after[0].op, "error");
  assert.equal(after[0].inbox, undefined);
  assert.equal(after[0].data.code, "forbidden");
  assert.deepEqual(after[0].data.context, { op: "pub", target: "nope" });
});

Deno.test("sub then unsub of its predicted id in one frame: both ops get exactly one answer", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["x.>"], publish: ["x.>"] });
  const c = await stack.client("u");
  // Session ids are sequential: the first subscription of a session is "1".
  c.send(
    { op: "sub", target: "x.a", inbox: "s" },
    { op: "unsub", data: { id: "1" }, inbox: "u" },
  );
  const u = await c.answer("u");
  const s = await c.answer("s");
  assert.equal(u.op, "reply", "the unsub found the subscription");
  assert.equal(s.op, "error", "the sub it removed is answered, not left hanging");
  assert.equal(s.data.code, "not_found");
  // Nothing is delivered for it: a sentinel on a live subscription comes first and alone.
  const live = await c.sub("x.b");
  stack.nc.publish("x.a", "{}");
  stack.nc.publish("x.b", JSON.stringify({ sentinel: true }));
  await c.waitMsgs(live, 1);
  assert.deepEqual(c.received.filter((e) => e.op === "msg" && e.sid === "1"), []);
  assert.equal(c.received.filter((e) => e.inbox === "s").length, 1, "one answer for the sub");
  assert.equal(c.received.filter((e) => e.inbox === "u").length, 1, "one answer for the unsub");
});
