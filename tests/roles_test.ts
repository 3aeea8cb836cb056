/** Roles and templates end to end (real nats-server, real gateways, real WebSockets): role union,
 * default role, live role edits on two gateways, hostile ids and claims kept in their token, the
 * subject-per-session flow, and a roles claim naming a missing role.
 * @module */

import assert from "node:assert/strict";
import { type Envelope, Stack, TEST_SECRET, TestClient } from "./_harness.ts";
import { mintToken } from "../src/auth/mint.ts";
import { encodeUserId } from "../src/auth/user_key.ts";
import type { Capabilities } from "../src/auth/capabilities.ts";

function setRole(stack: Stack, name: string, doc: Capabilities | string): Promise<number> {
  return stack.kv.put(`roles.${name}`, typeof doc === "string" ? doc : JSON.stringify(doc));
}

async function connectAs(
  url: string,
  stack: Stack,
  user: string,
  claims: Record<string, unknown> = {},
): Promise<{ c: TestClient; first: Envelope }> {
  const token = await mintToken({ secret: TEST_SECRET, user, claims });
  const c = await TestClient.connect(url, { query: token });
  stack.clients.push(c);
  const first = await c.next((e) => e.op === "cap_update", 5000, "first cap_update");
  return { c, first };
}

async function code(c: TestClient, op: string, target: string): Promise<string | undefined> {
  const r = await c.request({ op, target, data: {} });
  return r.op === "reply" ? "ok" : r.data.code;
}

/** The first envelope matching `pred` among those arriving after this call. */
function nextNew(c: TestClient, pred: (e: Envelope) => boolean): Promise<Envelope> {
  const mark = c.received.length;
  return c.next((e) => c.received.indexOf(e) >= mark && pred(e));
}

/** Proves `c` received nothing on `sid` but the sentinel published after the forbidden message. */
async function onlySentinel(stack: Stack, c: TestClient, sid: string, sentinel: string) {
  stack.nc.publish(sentinel, JSON.stringify("sentinel"));
  const got = await c.waitMsgs(sid, 1);
  assert.deepEqual(got.map((e) => e.target), [sentinel], "nothing before the sentinel");
}

Deno.test("roles: effective = own grants ∪ roles; cap_update names the roles", async () => {
  await using stack = await Stack.start();
  await setRole(stack, "reader", { subjects: ["news.>"], commands: ["svc.read"] });
  await stack.setCaps("u", { subjects: ["own.>"], roles: ["reader", "ghost"] });
  const { c, first } = await connectAs(stack.gateway.wsUrl, stack, "u");
  assert.deepEqual(first.data.capabilities, {
    subjects: ["own.>", "news.>"],
    commands: ["svc.read"],
  });
  assert.deepEqual(first.data.roles, ["reader"]);
  assert.equal(await code(c, "sub", "own.x"), "ok");
  assert.equal(await code(c, "sub", "news.x"), "ok");
  assert.equal(await code(c, "sub", "other.x"), "forbidden");
  // The missing role appears later: granted live.
  await setRole(stack, "ghost", { publish: ["g.x"] });
  const cu = await c.next((e) => e.op === "cap_update" && e.data.roles?.includes("ghost"));
  assert.deepEqual(cu.data.capabilities.publish, ["g.x"]);
  assert.equal(await code(c, "pub", "g.x"), "ok");
});

Deno.test("roles: --default-role applies to users with and without a document", async () => {
  await using stack = await Stack.start({ gateway: { defaultRole: "base" } });
  await setRole(stack, "base", { subjects: ["public.>"] });
  await stack.setCaps("withdoc", { subjects: ["mine.>"] });
  const a = await connectAs(stack.gateway.wsUrl, stack, "nodoc");
  const b = await connectAs(stack.gateway.wsUrl, stack, "withdoc");
  assert.deepEqual(a.first.data.capabilities, { subjects: ["public.>"] });
  assert.deepEqual(b.first.data.capabilities, { subjects: ["mine.>", "public.>"] });
  assert.equal(await code(a.c, "sub", "public.x"), "ok");
  assert.equal(await code(a.c, "sub", "mine.x"), "forbidden");
  assert.equal(await code(b.c, "sub", "public.x"), "ok");
});

Deno.test("roles: a role edit revokes on two gateways; delete and malformed grant nothing for that part only", async () => {
  await using stack = await Stack.start();
  const gw2 = await stack.extraGateway();
  try {
    await setRole(stack, "r", { subjects: ["a.>", "b.>"] });
    await stack.setCaps("u1", { subjects: ["own.>"], roles: ["r"] });
    await stack.setCaps("u2", { roles: ["r"] });
    const one = await connectAs(stack.gateway.wsUrl, stack, "u1");
    const two = await connectAs(gw2.wsUrl, stack, "u2");
    const keep1 = await one.c.sub("a.x");
    const drop1 = await one.c.sub("b.x");
    const own1 = await one.c.sub("own.x");
    const drop2 = await two.c.sub("b.x");
    await setRole(stack, "r", { subjects: ["a.>"] });
    const r1 = await one.c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
    const r2 = await two.c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
    assert.deepEqual(r1.data.revoked, [drop1]);
    assert.deepEqual(r2.data.revoked, [drop2]);
    assert.deepEqual(r1.data.capabilities, { subjects: ["own.>", "a.>"] });
    // Malformed: the role grants nothing, the user's own grants stay.
    const malformed = nextNew(one.c, (e) => e.op === "cap_update" && e.data.revoked.length > 0);
    await setRole(stack, "r", '{"subjects":["a.>"],"roles":["x"]}');
    const m1 = await malformed;
    assert.deepEqual(m1.data.revoked, [keep1]);
    assert.deepEqual(m1.data.capabilities, { subjects: ["own.>"] });
    assert.deepEqual(m1.data.roles, []);
    stack.nc.publish("own.x", "1");
    await one.c.waitMsgs(own1, 1);
    // Deleted, after being valid again: same.
    const valid = nextNew(two.c, (e) => e.op === "cap_update" && e.data.roles?.includes("r"));
    await setRole(stack, "r", { subjects: ["a.>"] });
    await valid;
    const again = await two.c.sub("a.y");
    const deleted = nextNew(two.c, (e) => e.op === "cap_update" && e.data.revoked.length > 0);
    await stack.kv.delete("roles.r");
    const d2 = await deleted;
    assert.deepEqual(d2.data.revoked, [again]);
    assert.deepEqual(d2.data.capabilities, {});
  } finally {
    await gw2.close();
  }
});

const HOSTILE_IDS = ["a.b", "*", ">", "a b", "ü", "$SYS", "x".repeat(200)];

Deno.test("templates: hostile user ids expand to their own token only", async () => {
  await using stack = await Stack.start({ gateway: { defaultRole: "self" } });
  await setRole(stack, "self", { subjects: ["user.{user}.>"], publish: ["user.{user}.out"] });
  const victim = await connectAs(stack.gateway.wsUrl, stack, "b");
  const vsid = await victim.c.sub("user.b.>");
  for (const id of HOSTILE_IDS) {
    const enc = encodeUserId(id);
    const { c, first } = await connectAs(stack.gateway.wsUrl, stack, id);
    assert.deepEqual(first.data.capabilities.subjects, [`user.${enc}.>`], id);
    assert.equal(await code(c, "sub", `user.${enc}.x`), "ok", id);
    for (const t of ["user.>", "user.*.x", "user.b.x", `user.${id}.x`, ">"]) {
      if (t === `user.${enc}.x`) continue;
      const got = await code(c, "sub", t);
      assert.ok(got === "forbidden" || got === "invalid_subject", `${id} sub ${t}: ${got}`);
    }
    assert.notEqual(await code(c, "pub", "user.b.out"), "ok", id);
    await c.close();
  }
  await onlySentinel(stack, victim.c, vsid, "user.b.sentinel");
  // A very long id whose expansion exceeds 256 bytes gets nothing from that pattern.
  const long = await connectAs(stack.gateway.wsUrl, stack, "y".repeat(250));
  assert.deepEqual(long.first.data.capabilities, { subjects: [], publish: [] });
});

Deno.test("templates: hostile claims stay one token; empty, missing or long claims grant nothing", async () => {
  await using stack = await Stack.start({ gateway: { defaultRole: "org" } });
  await setRole(stack, "org", { subjects: ["org.{claim:org}.>", "always.x"] });
  const cases: [unknown, string | null][] = [
    ["acme", "org.acme.>"],
    ["a.b", "org.a=2Eb.>"],
    ["*", "org.=2A.>"],
    [">", "org.=3E.>"],
    ["a b", "org.a=20b.>"],
    ["日本", "org.=E6=97=A5=E6=9C=AC.>"],
    ["", null],
    ["z".repeat(300), null],
    [42, null],
    [undefined, null],
  ];
  for (const [org, want] of cases) {
    const claims = org === undefined ? {} : { org };
    const { c, first } = await connectAs(stack.gateway.wsUrl, stack, "u", claims);
    const subjects = first.data.capabilities.subjects;
    assert.deepEqual(subjects, want === null ? ["always.x"] : [want, "always.x"], String(org));
    assert.equal(await code(c, "sub", "org.>"), "forbidden", String(org));
    assert.equal(await code(c, "sub", "org.acme.x"), org === "acme" ? "ok" : "forbidden");
    await c.close();
  }
});

Deno.test("templates: subject per session, end to end; no session reaches another's", async () => {
  await using stack = await Stack.start({ gateway: { defaultRole: "sess" } });
  await setRole(stack, "sess", { subjects: ["session.{user}.{session}.state"] });
  const a = await connectAs(stack.gateway.wsUrl, stack, "a.b");
  const b = await connectAs(stack.gateway.wsUrl, stack, "a.b");
  const other = await connectAs(stack.gateway.wsUrl, stack, "c");
  const user = encodeUserId("a.b");
  const subj = (s: Envelope) => `session.${user}.${s.data.session}.state`;
  assert.deepEqual(a.first.data.capabilities.subjects, [subj(a.first)]);
  const sa = await a.c.sub(subj(a.first));
  const sb = await b.c.sub(subj(b.first));
  const so = await other.c.sub(`session.c.${other.first.data.session}.state`);
  // No session can subscribe to another's, nor to a wildcard over sessions or users.
  for (const t of [subj(b.first), `session.${user}.*.state`, `session.${user}.>`, "session.>"]) {
    assert.equal(await code(a.c, "sub", t), "forbidden", t);
  }
  assert.equal(await code(other.c, "sub", subj(a.first)), "forbidden");
  // A backend publishes to session A's subject: only A receives it.
  stack.nc.publish(subj(a.first), JSON.stringify({ state: "for-a" }));
  const got = await a.c.waitMsgs(sa, 1);
  assert.deepEqual(got[0].data.payload, { state: "for-a" });
  await onlySentinel(stack, b.c, sb, subj(b.first));
  await onlySentinel(stack, other.c, so, `session.c.${other.first.data.session}.state`);
});

Deno.test("roles: --jwt-roles-claim naming missing or invalid roles grants nothing", async () => {
  await using stack = await Stack.start({ gateway: { jwtRolesClaim: "roles" } });
  await setRole(stack, "staff", { subjects: ["staff.>"] });
  const { c, first } = await connectAs(stack.gateway.wsUrl, stack, "u", {
    roles: ["ghost", ">", "*", "staff.x", "users.u"],
  });
  assert.deepEqual(first.data.capabilities, {});
  assert.deepEqual(first.data.roles, []);
  assert.equal(await code(c, "sub", "staff.x"), "forbidden");
  assert.equal(await code(c, "sub", "ghost.x"), "forbidden");
  const ok = await connectAs(stack.gateway.wsUrl, stack, "v", { roles: ["staff"] });
  assert.deepEqual(ok.first.data.roles, ["staff"]);
  assert.equal(await code(ok.c, "sub", "staff.x"), "ok");
  // A token refresh without the role drops it and revokes what it granted.
  const sid = await ok.c.sub("staff.y");
  const token = await mintToken({ secret: TEST_SECRET, user: "v", claims: { roles: [] } });
  ok.c.send({ op: "auth", data: { token } });
  const cu = await ok.c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
  assert.deepEqual(cu.data.revoked, ["1", sid], "both staff subscriptions");
  assert.deepEqual(cu.data.roles, []);
});
