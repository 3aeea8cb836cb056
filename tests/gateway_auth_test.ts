/** Authentication scenarios against a real gateway: every credential path, refresh, expiry, Origin.
 * Also: user ids that look like patterns never read another user's capabilities.
 * @module */

import assert from "node:assert/strict";
import { Stack, TestClient } from "./_harness.ts";

async function refused(
  url: string,
  opts: Parameters<typeof TestClient.connect>[1],
): Promise<number> {
  const u = new URL(url.replace(/^ws/, "http"));
  if (opts?.query) u.searchParams.set("token", opts.query);
  const headers: Record<string, string> = {
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
  };
  if (opts?.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  if (opts?.origin) headers.origin = opts.origin;
  const res = await fetch(u, { headers });
  await res.body?.cancel();
  return res.status;
}

Deno.test("auth: token by query, bearer header, cookie and auth frame all work", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const t = await stack.token("alice");
  for (
    const opts of [{ query: t }, { bearer: t }, { cookie: `other=1; natsgate_token=${t}` }]
  ) {
    const c = await stack.rawClient(opts);
    const cu = await c.next((e) => e.op === "cap_update");
    assert.equal(cu.data.user, "alice", JSON.stringify(Object.keys(opts)));
    assert.deepEqual(cu.data.capabilities, { subjects: ["a.>"] });
    assert.equal(typeof cu.data.session, "string");
    assert.deepEqual(cu.data.revoked, []);
    await c.close();
  }
  const c = await stack.rawClient();
  const inbox = c.inbox();
  c.send({ op: "auth", inbox, data: { token: t } });
  const reply = await c.answer(inbox);
  assert.equal(reply.op, "reply");
  assert.equal(reply.data.user, "alice");
  assert.equal(typeof reply.data.exp, "number");
  const cu = await c.next((e) => e.op === "cap_update");
  assert.equal(cu.data.user, "alice");
  assert.ok(c.received.indexOf(reply) < c.received.indexOf(cu), "reply, then cap_update");
});

Deno.test("auth: a bad token on the request refuses the upgrade with 401", async () => {
  await using stack = await Stack.start();
  const bad = (await stack.token("alice")).slice(0, -3) + "AAA";
  assert.equal(await refused(stack.gateway.wsUrl, { query: bad }), 401);
  assert.equal(await refused(stack.gateway.wsUrl, { bearer: bad }), 401);
  assert.equal(await refused(stack.gateway.wsUrl, { bearer: await stack.token("a", -10) }), 401);
  await assert.rejects(TestClient.connect(stack.gateway.wsUrl, { query: bad }));
});

Deno.test("auth: bad token in the auth frame closes 4001; so does a non-auth first frame", async () => {
  await using stack = await Stack.start();
  const c1 = await stack.rawClient();
  c1.send({ op: "auth", inbox: "a", data: { token: "nope" } });
  const err = await c1.answer("a");
  assert.equal(err.op, "error");
  assert.equal(err.data.code, "unauthorized");
  assert.equal((await c1.closed).code, 4001);

  const c2 = await stack.rawClient();
  c2.send({ op: "sub", target: "a", inbox: "s" });
  assert.equal((await c2.answer("s")).data.code, "unauthorized");
  assert.equal((await c2.closed).code, 4001);

  const c3 = await stack.rawClient();
  c3.send({ op: "auth", inbox: "x", data: {} });
  assert.equal((await c3.answer("x")).data.code, "bad_request");
});

Deno.test("auth: no auth frame within --auth-timeout closes 4001", async () => {
  await using stack = await Stack.start({ gateway: { limits: { authTimeoutMs: 200 } } });
  const c = await stack.rawClient();
  const closed = await c.closed;
  assert.equal(closed.code, 4001);
  assert.ok(c.received.some((e) => e.op === "error" && e.data.code === "unauthorized"));
});

Deno.test("auth: ops sent right behind the auth frame run after authentication", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const c = await stack.rawClient();
  c.send(
    { op: "auth", data: { token: await stack.token("alice") } },
    { op: "sub", target: "a.b", inbox: "s" },
    { op: "ping", inbox: "p" },
  );
  assert.equal((await c.answer("s")).op, "reply");
  assert.equal((await c.answer("p")).op, "pong");
});

Deno.test("auth: refresh with the same sub extends; another sub is forbidden", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const c = await stack.client("alice", { query: await stack.token("alice", 2) });
  const r1 = await c.request({ op: "auth", data: { token: await stack.token("alice", 3600) } });
  assert.equal(r1.op, "reply");
  assert.ok(r1.data.exp > Date.now() / 1000 + 3000);
  const r2 = await c.request({ op: "auth", data: { token: await stack.token("mallory", 3600) } });
  assert.equal(r2.op, "error");
  assert.equal(r2.data.code, "forbidden");
  // The original 2 s expiry was replaced: still open after it would have passed. A control
  // session whose 2 s token was minted later (so it expires no earlier) and never refreshed is
  // closed 4003 by its own expiry timer; the gateway then has passed the original expiry too.
  const control = await stack.client("alice", { query: await stack.token("alice", 2) });
  assert.equal((await control.closed).code, 4003, "the control session expired");
  assert.equal((await c.request({ op: "ping" })).op, "pong");
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

Deno.test("auth: the session closes with 4003 when exp passes without refresh", async () => {
  await using stack = await Stack.start();
  const c = await stack.client("alice", { query: await stack.token("alice", 1) });
  assert.equal((await c.closed).code, 4003);
});

Deno.test("auth: Origin is checked before upgrade", async () => {
  await using stack = await Stack.start({ gateway: { allowedOrigins: ["https://app.example"] } });
  const t = await stack.token("alice");
  assert.equal(
    await refused(stack.gateway.wsUrl, { query: t, origin: "https://evil.example" }),
    403,
  );
  const ok = await stack.client("alice", { origin: "https://app.example" });
  assert.equal(ok.ws.readyState, WebSocket.OPEN);
  const noOrigin = await stack.client("alice");
  assert.equal(noOrigin.ws.readyState, WebSocket.OPEN);
});

Deno.test("auth: default Origin policy is same-origin only", async () => {
  await using stack = await Stack.start();
  const t = await stack.token("alice");
  const host = new URL(stack.gateway.wsUrl).host;
  assert.equal(
    await refused(stack.gateway.wsUrl, { query: t, origin: "https://evil.example" }),
    403,
  );
  const same = await stack.client("alice", { origin: `http://${host}` });
  assert.equal(same.ws.readyState, WebSocket.OPEN);
});

Deno.test("auth: ids like *, >, a.b, = read only their own key", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("victim", { subjects: ["secret.>"] });
  await stack.setCaps("a", { subjects: ["a-only"] });
  for (const id of ["*", ">", "a.b", "a.*", "=", "users.victim", "victim ", "vic\u0000tim"]) {
    const c = await stack.client(id);
    const cu = c.received.find((e) => e.op === "cap_update")!;
    assert.equal(cu.data.user, id);
    assert.deepEqual(cu.data.capabilities, {}, `id ${JSON.stringify(id)} got capabilities`);
    const r = await c.request({ op: "sub", target: "secret.x" });
    assert.equal(r.data.code, "forbidden", `id ${JSON.stringify(id)}`);
    await c.close();
  }
});

Deno.test("auth: no capabilities means connected but denied; malformed documents fail closed", async () => {
  await using stack = await Stack.start();
  const none = await stack.client("nobody");
  assert.deepEqual(none.received[0].data.capabilities, {});
  assert.equal((await none.request({ op: "sub", target: "x" })).data.code, "forbidden");
  for (
    const [name, doc] of [
      ["invalid JSON", "{not json"],
      ["unknown field", '{"subjects":["x"],"admin":true}'],
      ["wrong type", '{"subjects":"x"}'],
      ["invalid pattern", '{"subjects":["x..y"]}'],
      ["array", '["x"]'],
      ["empty", ""],
    ] as const
  ) {
    await stack.setCaps("bad", doc);
    const c = await stack.client("bad");
    assert.deepEqual(c.received[0].data.capabilities, {}, name);
    assert.equal((await c.request({ op: "sub", target: "x" })).data.code, "forbidden", name);
    await c.close();
  }
});

Deno.test("auth: a token without exp is refused: 401 at upgrade, 4001 over an auth frame", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const noExp = await stack.token("alice", null);
  const u = new URL(stack.gateway.wsUrl.replace(/^ws/, "http"));
  u.searchParams.set("token", noExp);
  const res = await fetch(u, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.equal(res.status, 401);
  assert.equal(await res.text(), "unauthorized: token has no exp\n");
  assert.equal(await refused(stack.gateway.wsUrl, { bearer: noExp }), 401);

  const c = await stack.rawClient();
  c.send({ op: "auth", inbox: "a", data: { token: noExp } });
  const err = await c.answer("a");
  assert.equal(err.data.code, "unauthorized");
  assert.equal(err.data.message, "token has no exp");
  assert.equal((await c.closed).code, 4001);

  // A refresh without exp ends an open session the same way: it can never remove the expiry.
  const open = await stack.client("alice");
  open.send({ op: "auth", inbox: "r", data: { token: noExp } });
  assert.equal((await open.answer("r")).data.message, "token has no exp");
  assert.equal((await open.closed).code, 4001);
});

Deno.test("auth: with allowNoExp a token without exp is accepted; a refresh with exp sets one", async () => {
  await using stack = await Stack.start({ gateway: { allowNoExp: true } });
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const c = await stack.rawClient();
  c.send({ op: "auth", inbox: "a", data: { token: await stack.token("alice", null) } });
  const reply = await c.answer("a");
  assert.equal(reply.op, "reply");
  assert.equal(reply.data.exp, null);
  // A refresh with exp gives the session that expiry: it then closes with 4003.
  const r = await c.request({ op: "auth", data: { token: await stack.token("alice", 1) } });
  assert.equal(r.op, "reply");
  assert.equal(typeof r.data.exp, "number");
  assert.equal((await c.closed).code, 4003);
});

Deno.test("auth: with allowNoExp a refresh without exp keeps the session's exp", async () => {
  await using stack = await Stack.start({ gateway: { allowNoExp: true } });
  await stack.setCaps("alice", { subjects: ["a.>"] });
  const c = await stack.rawClient();
  c.send({ op: "auth", inbox: "a", data: { token: await stack.token("alice", 2) } });
  const exp = (await c.answer("a")).data.exp;
  assert.equal(typeof exp, "number");
  const r = await c.request({ op: "auth", data: { token: await stack.token("alice", null) } });
  assert.equal(r.op, "reply");
  assert.equal(r.data.exp, exp, "the refresh reports the expiry still in force");
  // And it is still in force: the session closes when it passes.
  assert.equal((await c.closed).code, 4003);
  // A refresh with exp sets it, even an earlier one.
  const d = await stack.client("alice", { query: await stack.token("alice", 3600) });
  const earlier = await d.request({ op: "auth", data: { token: await stack.token("alice", 1) } });
  assert.ok(earlier.data.exp < Date.now() / 1000 + 60);
  assert.equal((await d.closed).code, 4003);
});
