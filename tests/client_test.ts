/** The client SDK (src/client/, TypeScript) in Deno against a real gateway and nats-server.
 * Covers core, KV and JetStream subscriptions, requests, revocation, token refresh and reconnects.
 * @module */

import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  connect,
  ConnectionError,
  type ConnectionState,
  ForbiddenError,
  type JsMsg,
  type KvEvent,
  type Msg,
  NatsgateClient,
  NatsgateError,
  TokenExpiredError,
  tokenRefreshDelay,
  UnauthorizedError,
} from "../src/client/mod.ts";
import { consoleHandler } from "../src/server/static_assets.ts";
import { Stack, waitFor } from "./_harness.ts";

/** Fast reconnects for tests (the defaults are 250 ms .. 10 s). */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 400 };

function startStack(): Promise<Stack> {
  const httpHandler = consoleHandler({ console: true });
  return Stack.start({ gateway: { httpHandler } });
}

function httpBase(stack: Stack): string {
  return `http://127.0.0.1:${stack.gateway.addr.port}`;
}

async function rejection(p: Promise<unknown>): Promise<NatsgateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof NatsgateError, `expected a NatsgateError, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

function states(client: NatsgateClient): ConnectionState[] {
  const seen: ConnectionState[] = [];
  client.on("state", (d) => seen.push(d.state));
  return seen;
}

Deno.test("client: GET /client.js serves the SDK module and GET / the console page", async () => {
  await using stack = await startStack();
  const js = await fetch(`${httpBase(stack)}/client.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  const source = new Uint8Array(await js.arrayBuffer());
  assert.deepEqual(
    source,
    await Deno.readFile(new URL("../src/client/dist/client.js", import.meta.url)),
  );
  assert.ok(new TextDecoder().decode(source).startsWith('// @ts-self-types="./client.d.ts"'));
  const etag = js.headers.get("etag");
  assert.ok(etag);
  const again = await fetch(`${httpBase(stack)}/client.js`, { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  await again.body?.cancel();

  const page = await fetch(`${httpBase(stack)}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const html = await page.text();
  for (const id of ["token", "connect", "state", "caps", "sub-subject", "sub-btn", "log"]) {
    assert.ok(html.includes(`id="${id}"`), `page has #${id}`);
  }
  assert.ok(html.includes('from "/client.js"'));
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);

  const post = await fetch(`${httpBase(stack)}/client.js`, { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const missing = await fetch(`${httpBase(stack)}/nope`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  // Without the console, only the SDK is served.
  const handler = consoleHandler({ console: false });
  const root = new URL("http://x/");
  assert.equal(await handler(new Request(root), root), undefined);
  const sdk = new URL("http://x/client.js");
  const res = await handler(new Request(sdk), sdk);
  assert.equal(res?.status, 200);
  await res?.body?.cancel();
});

Deno.test("client: subscribe, publish and request, with typed error codes", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", {
    subjects: ["chat.>"],
    publish: ["chat.>"],
    commands: ["svc.>"],
  });
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });
  assert.equal(client.state, "open");
  assert.equal(client.user, "u");
  assert.deepEqual(client.capabilities, {
    subjects: ["chat.>"],
    publish: ["chat.>"],
    commands: ["svc.>"],
  });

  const got: Msg[] = [];
  const sub = client.subscribe("chat.room.*", (m) => {
    got.push(m);
  });
  await sub.ready;
  assert.equal(sub.kind, "core");
  assert.ok(sub.sid);
  stack.nc.publish("chat.room.1", JSON.stringify({ hello: 1 }));
  stack.nc.publish("chat.room.2", "plain text");
  await waitFor(() => got.length >= 2, 5000, "two messages");
  assert.deepEqual(got[0], { subject: "chat.room.1", payload: { hello: 1 } });
  assert.deepEqual(got[1], { subject: "chat.room.2", payload: "plain text", encoding: "text" });

  // publish: JSON, raw text, bytes and headers reach NATS as sent.
  const seen: Array<{ subject: string; data: string; header?: string }> = [];
  const nsub = stack.nc.subscribe("chat.out.*", {
    callback: (_e, m) => {
      seen.push({ subject: m.subject, data: m.string(), header: m.headers?.get("x-id") });
    },
  });
  await stack.nc.flush();
  await client.publish("chat.out.json", { a: [1, 2] }, { headers: { "x-id": "42" } });
  await client.publish("chat.out.text", "raw words", { encoding: "text" });
  await client.publish("chat.out.bytes", new TextEncoder().encode("bytes!"));
  await waitFor(() => seen.length >= 3, 5000, "three published messages");
  nsub.unsubscribe();
  assert.deepEqual(seen, [
    { subject: "chat.out.json", data: '{"a":[1,2]}', header: "42" },
    { subject: "chat.out.text", data: "raw words", header: undefined },
    { subject: "chat.out.bytes", data: "bytes!", header: undefined },
  ]);

  // request: a reply, then each failure with its protocol code.
  const echo = stack.nc.subscribe("svc.echo", {
    callback: (_e, m) => {
      m.respond(JSON.stringify({ echo: m.json() }));
    },
  });
  const hang = stack.nc.subscribe("svc.hang", { callback: () => {} });
  await stack.nc.flush();
  const reply = await client.request("svc.echo", { n: 7 });
  assert.deepEqual(reply, { payload: { echo: { n: 7 } } });
  const forbidden = await rejection(client.request("chat.room.1", {}));
  assert.ok(forbidden instanceof ForbiddenError);
  assert.equal(forbidden.code, "forbidden");
  assert.match(forbidden.message, /^cmd chat\.room\.1: /, "the message names the op and target");
  assert.deepEqual(forbidden.context, { op: "cmd", target: "chat.room.1" });
  assert.equal((await rejection(client.request("svc.nobody", {}))).code, "no_responders");
  const timedOut = await rejection(client.request("svc.hang", {}, { timeoutMs: 200 }));
  assert.equal(timedOut.code, "timeout");
  assert.equal(timedOut.context?.op, "cmd");
  assert.equal((await rejection(client.publish("svc.echo", 1))).code, "forbidden");
  echo.unsubscribe();
  hang.unsubscribe();

  // A refused subscription rejects `ready` and ends.
  const denied = client.subscribe("secret.x", () => {});
  assert.equal((await rejection(denied.ready)).code, "forbidden");
  assert.equal(denied.closed, true);
  assert.ok(!client.subscriptions.includes(denied));

  // After unsubscribe nothing more is delivered.
  await sub.unsubscribe();
  assert.equal(sub.closed, true);
  const before = got.length;
  const probed: unknown[] = [];
  const probe = client.subscribe("chat.room.3", (m) => probed.push(m.payload));
  await probe.ready;
  stack.nc.publish("chat.room.3", "{}");
  await waitFor(() => probed.length > 0, 5000, "the probe's message");
  assert.equal(got.length, before, "the unsubscribed handler got nothing");
});

Deno.test("client: queue groups share messages between subscribers", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { subjects: ["work.>"] });
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });
  const a: unknown[] = [];
  const b: unknown[] = [];
  const sa = client.subscribe("work.items", (m) => a.push(m.payload), { queue: "q" });
  const sb = client.subscribe("work.items", (m) => b.push(m.payload), { queue: "q" });
  await Promise.all([sa.ready, sb.ready]);
  for (let i = 0; i < 20; i++) stack.nc.publish("work.items", String(i));
  await waitFor(() => a.length + b.length >= 20, 5000, "20 queue messages");
  assert.equal(a.length + b.length, 20);
  assert.deepEqual([...a, ...b].map(Number).sort((x, y) => x - y), [...Array(20).keys()]);
});

Deno.test("client: for await over a typed subscription; it ends when the loop breaks or on unsubscribe", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { subjects: ["num.>"], publish: ["num.>"], commands: ["svc.>"] });
  const double = stack.nc.subscribe("svc.double", {
    callback: (_e, m) => {
      m.respond(JSON.stringify({ n: (m.json() as { n: number }).n * 2 }));
    },
  });
  await stack.nc.flush();
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });

  const sub = client.subscribe<{ n: number }>("num.a");
  await sub.ready;
  for (let i = 1; i <= 5; i++) await client.publish("num.a", { n: i });
  const got: number[] = [];
  for await (const m of sub) {
    const n: number = m.payload.n; // typed by subscribe<T>
    got.push(n);
    if (got.length === 3) break; // leaving the loop unsubscribes
  }
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(sub.closed, true);
  assert.equal(client.subscriptions.includes(sub), false);

  // A handler and an iterator both see every message; unsubscribe() ends the iterator.
  const handled: number[] = [];
  const both = client.subscribe<{ n: number }>("num.b", (m) => {
    handled.push(m.payload.n);
  });
  await both.ready;
  const iterated = (async () => {
    const out: number[] = [];
    for await (const m of both) out.push(m.payload.n);
    return out;
  })();
  for (let i = 1; i <= 3; i++) await client.publish("num.b", { n: i });
  await waitFor(() => handled.length >= 3, 5000, "three handled messages");
  await both.unsubscribe();
  assert.deepEqual(await iterated, [1, 2, 3]);
  assert.deepEqual(handled, [1, 2, 3]);
  assert.equal(both.closed, true);

  const reply = await client.request<{ n: number }, { n: number }>("svc.double", { n: 21 });
  const doubled: number = reply.payload.n;
  assert.equal(doubled, 42);
  double.unsubscribe();
});

Deno.test("client: kvWatch keeps a key map, fires ready after the snapshot, follows changes", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { buckets: { todos: [">"] } });
  const kv = await new Kvm(stack.nc).create("todos", { history: 5 });
  await kv.put("a", JSON.stringify({ t: "first" }));
  await kv.put("b", "text value");
  await kv.put("gone", "1");
  await kv.delete("gone");
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });

  const events: KvEvent[] = [];
  const readies: Array<{ revision: number; resync: boolean }> = [];
  const watch = client.kvWatch("todos", {}, (e) => {
    events.push(e);
  });
  watch.addEventListener("ready", (e) => readies.push((e as CustomEvent).detail));
  await watch.ready;
  assert.equal(watch.synced, true);
  assert.deepEqual(readies, [{ revision: 4, resync: false }]);
  assert.deepEqual([...watch.entries.keys()].sort(), ["a", "b"]);
  assert.deepEqual(watch.get("a"), { t: "first" });
  assert.equal(watch.get("b"), "text value");
  assert.equal(watch.entries.get("b")?.encoding, "text");
  assert.deepEqual(events.map((e) => [e.op, e.key]), [["put", "a"], ["put", "b"]]);

  await kv.put("a", JSON.stringify({ t: "second" }));
  await kv.delete("b");
  await kv.put("c", "3");
  await waitFor(() => events.length >= 5, 5000, "three live events");
  assert.deepEqual(events.slice(2).map((e) => [e.op, e.key, e.revision]), [
    ["put", "a", 5],
    ["delete", "b", 6],
    ["put", "c", 7],
  ]);
  assert.deepEqual(events[2].previous?.value, { t: "first" });
  assert.deepEqual(Object.fromEntries([...watch.entries].map(([k, v]) => [k, v.value])), {
    a: { t: "second" },
    c: 3,
  });
  assert.equal(watch.revision, 7);

  // Updates only: no snapshot, ready at once, the map holds only what changed since.
  const fresh: KvEvent[] = [];
  const only = client.kvWatch("todos", { updatesOnly: true, pattern: "c" }, (e) => {
    fresh.push(e);
  });
  await only.ready;
  assert.equal(only.entries.size, 0);
  await kv.put("c", "4");
  await waitFor(() => fresh.length >= 1, 5000, "an update");
  assert.deepEqual(fresh.map((e) => [e.op, e.key, e.value]), [["put", "c", 4]]);

  // A bucket outside the capabilities is refused.
  const denied = client.kvWatch("other", () => {});
  assert.equal((await rejection(denied.ready)).code, "forbidden");
});

Deno.test("client: jsSubscribe delivers in order from a start position; ack mode acks", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { streams: { EVENTS: [">"] } });
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"] });
  const js = jetstream(stack.nc);
  for (let i = 1; i <= 5; i++) await js.publish(`events.e${i}`, JSON.stringify({ i }));
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });

  const all: JsMsg[] = [];
  const sub = client.jsSubscribe("EVENTS", { deliver: "all" }, (m) => {
    all.push(m);
  });
  await sub.ready;
  await waitFor(() => all.length >= 5, 5000, "5 messages");
  assert.deepEqual(all.map((m) => m.seq), [1, 2, 3, 4, 5]);
  assert.deepEqual(all[2].payload, { i: 3 });
  assert.equal(all[2].subject, "events.e3");
  assert.ok(!Number.isNaN(Date.parse(all[2].time)));
  assert.equal(sub.lastSeq, 5);

  const from: number[] = [];
  const sub2 = client.jsSubscribe("EVENTS", { startSeq: 4, filter: "events.>" }, (m) => {
    from.push(m.seq);
  });
  await sub2.ready;
  await waitFor(() => from.length >= 2, 5000, "2 messages from seq 4");
  assert.deepEqual(from, [4, 5]);

  // ack: true: each message is acknowledged; the consumer then has nothing pending.
  const acked: number[] = [];
  const sub3 = client.jsSubscribe("EVENTS", { deliver: "all", ack: true, durable: "d1" }, (m) => {
    m.ack().then(() => acked.push(m.seq));
  });
  await sub3.ready;
  await waitFor(() => acked.length >= 5, 5000, "5 acks");
  assert.deepEqual(acked.sort((a, b) => a - b), [1, 2, 3, 4, 5]);
  const consumers = await jsm.consumers.list("EVENTS").next();
  const durable = consumers.find((c) => c.name.endsWith("_d1"));
  assert.ok(durable, "the durable exists");
  await waitFor(
    async () => (await jsm.consumers.info("EVENTS", durable.name)).num_ack_pending === 0,
    5000,
    "no pending acks",
  );

  const denied = client.jsSubscribe("OTHER", () => {});
  assert.equal((await rejection(denied.ready)).code, "forbidden");
});

Deno.test("client: shrinking capabilities revokes subscriptions with revoked and capabilities events", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { subjects: ["a.>", "b.>"], buckets: { cfg: [">"] } });
  await new Kvm(stack.nc).create("cfg");
  await using client = await connect(stack.gateway.wsUrl, { token: await stack.token("u") });
  const caps: unknown[] = [];
  client.on("capabilities", (d) => caps.push(d.capabilities));
  const revoked: Array<{ subs: unknown[] }> = [];
  client.on("revoked", (d) => revoked.push({ subs: d.subscriptions }));
  const keep = client.subscribe("a.x", () => {});
  const drop = client.subscribe("b.x", () => {});
  const watch = client.kvWatch("cfg", () => {});
  await Promise.all([keep.ready, drop.ready, watch.ready]);
  let closedDetail: { revoked: boolean; error?: NatsgateError } | undefined;
  drop.addEventListener("closed", (e) => closedDetail = (e as CustomEvent).detail);

  await stack.setCaps("u", { subjects: ["a.>"] });
  await waitFor(() => revoked.length > 0, 5000, "revoked event");
  assert.equal(revoked.length, 1);
  assert.equal(revoked[0].subs.length, 2);
  assert.ok(revoked[0].subs.includes(drop));
  assert.ok(revoked[0].subs.includes(watch));
  assert.deepEqual(caps.at(-1), { subjects: ["a.>"] });
  assert.deepEqual(client.capabilities, { subjects: ["a.>"] });
  assert.equal(drop.closed, true);
  assert.equal(drop.error?.code, "forbidden");
  assert.deepEqual(closedDetail?.revoked, true);
  assert.equal(keep.closed, false);
  assert.deepEqual(client.subscriptions, [keep]);
});

Deno.test("client: a bad token fails connect() with unauthorized and never retries", async () => {
  await using stack = await startStack();
  let calls = 0;
  const err = await rejection(connect(stack.gateway.wsUrl, {
    getToken: () => {
      calls++;
      return "not-a-jwt";
    },
    reconnect: RECONNECT,
    waitOnFirstConnect: true,
  }));
  assert.equal(err.code, "unauthorized");
  assert.equal(err.closeCode, 4001);
  assert.equal(calls, 1);
});

Deno.test('client: an expired token says "token expired", in an auth frame and in a refused upgrade', async () => {
  await using stack = await startStack();
  const expired = await stack.token("u", -60);
  // In the auth frame: the gateway answers an error, then closes with 4001 "unauthorized".
  const err = await rejection(
    connect(stack.gateway.wsUrl, { token: expired, reconnect: RECONNECT }),
  );
  assert.ok(err instanceof UnauthorizedError);
  assert.equal(err.closeCode, 4001);
  assert.equal(err.url, stack.gateway.wsUrl);
  assert.match(err.message, /token expired/, "the gateway's reason, not the close's");
  assert.ok(err.cause instanceof UnauthorizedError, "the gateway's error frame is the cause");

  // In the URL's query: the gateway refuses the upgrade with HTTP 401, which no WebSocket API
  // shows; the SDK asks again over plain HTTP and reports the gateway's answer. Not retried.
  const seen: ConnectionState[] = [];
  const client = new NatsgateClient(`${stack.gateway.wsUrl}?token=${expired}`, {
    token: await stack.token("u"),
    reconnect: RECONNECT,
    waitOnFirstConnect: true,
  });
  client.on("state", (d) => seen.push(d.state));
  const refused = await rejection(client.opened);
  assert.ok(refused instanceof UnauthorizedError);
  assert.equal(refused.httpStatus, 401);
  assert.match(
    refused.message,
    /refused the WebSocket upgrade \(HTTP 401: unauthorized: token expired\)/,
  );
  assert.deepEqual(seen, ["closed"], "a refused token is not retried");
  // What the SDK asked: a plain GET is checked like an upgrade, readable from any origin.
  const plain = await fetch(`${httpBase(stack)}/ws?token=${expired}`);
  assert.equal(plain.status, 401);
  assert.equal(plain.headers.get("access-control-allow-origin"), "*");
  assert.equal(await plain.text(), "unauthorized: token expired\n");
});

Deno.test("client: several URLs - the first connect tries each once; a dead gateway is skipped", async () => {
  await using stack = await startStack();
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const dead = "ws://127.0.0.1:1/ws";
  await using client = await connect([dead, stack.gateway.wsUrl], {
    token: await stack.token("u"),
    reconnect: RECONNECT,
  });
  assert.equal(client.url, stack.gateway.wsUrl);
  assert.deepEqual(client.urls, [dead, stack.gateway.wsUrl]);
  assert.equal(client.state, "open");
  // Every URL dead: connect() rejects with unavailable after one try of each, without waiting.
  const err = await rejection(connect([dead, "ws://127.0.0.1:2/ws"], {
    token: await stack.token("u"),
    reconnect: RECONNECT,
  }));
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.code, "unavailable");
  assert.equal(err.url, "ws://127.0.0.1:2/ws", "the gateway tried last");
  assert.match(err.message, /ws:\/\/127\.0\.0\.1:2\/ws/, "the message names the URL");
  assert.ok(err.cause instanceof Error, "the cause (connection refused) is kept");
  await assert.rejects(
    connect([], { token: "t" }),
    TypeError,
    "an empty URL list is a usage error",
  );
});

Deno.test("client: a static token that expires ends the client (4003), getToken refreshes in place", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { commands: ["svc.>"] });
  const echo = stack.nc.subscribe("svc.echo", {
    callback: (_e, m) => {
      m.respond("1");
    },
  });
  await stack.nc.flush();

  // Static, short-lived token: the gateway closes with 4003 and the client gives up.
  const short = await stack.token("u", 2);
  const fixed = await connect(stack.gateway.wsUrl, { token: short, reconnect: RECONNECT });
  const fixedStates = states(fixed);
  let closed: { code?: number; error?: NatsgateError } | undefined;
  fixed.on("state", (d) => {
    if (d.state === "closed") closed = d;
  });

  // getToken: refreshed before expiry by an auth frame on the same session.
  let minted = 0;
  const refreshing = await connect(stack.gateway.wsUrl, {
    getToken: () => {
      minted++;
      return stack.token("u", 2);
    },
    reconnect: RECONNECT,
  });
  const session = refreshing.session;
  const refreshingStates = states(refreshing);
  const firstToken = Date.now();

  await waitFor(() => closed, 10_000, "the static client to close");
  assert.equal(closed?.code, 4003);
  assert.equal(closed?.error?.code, "unauthorized");
  assert.ok(closed?.error instanceof TokenExpiredError);
  assert.match(closed.error.message, /token expired/);
  assert.deepEqual(fixedStates, ["closed"]);
  assert.equal((await rejection(fixed.request("svc.echo", 1))).code, "unavailable");

  // Wait until the first token has certainly expired, and past a second refresh.
  await waitFor(() => minted >= 3 && Date.now() > firstToken + 3000, 10_000, "refreshes");
  assert.equal(refreshing.state, "open");
  assert.equal(refreshing.session, session, "refreshed in place, no reconnect");
  assert.deepEqual(refreshingStates, []);
  assert.deepEqual(await refreshing.request("svc.echo", null), { payload: 1 });
  await refreshing.close();
  await fixed.close();
  echo.unsubscribe();
});

Deno.test("client: tokenRefreshDelay refreshes 30 s before exp, or at 80 % of short lifetimes", () => {
  const jwt = (claims: Record<string, number>) =>
    `e30.${btoa(JSON.stringify(claims)).replace(/=+$/, "")}.sig`;
  const now = 1_000_000_000_000;
  const s = now / 1000;
  assert.equal(tokenRefreshDelay(jwt({ iat: s, exp: s + 3600 }), now), 3570_000);
  assert.equal(tokenRefreshDelay(jwt({ iat: s, exp: s + 100 }), now), 80_000);
  assert.equal(tokenRefreshDelay(jwt({ iat: s - 50, exp: s + 50 }), now), 30_000);
  assert.equal(tokenRefreshDelay(jwt({ iat: s - 200, exp: s - 1 }), now), 0);
  assert.equal(tokenRefreshDelay(jwt({ iat: s }), now), undefined);
  assert.equal(tokenRefreshDelay("garbage", now), undefined);
});

Deno.test("client: gateway restart - reconnects, resumes JetStream without gap or duplicate, re-syncs KV", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", {
    subjects: ["live.>"],
    commands: ["svc.>"],
    buckets: { cfg: [">"] },
    streams: { EVENTS: [">"] },
  });
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"] });
  const js = jetstream(stack.nc);
  const kv = await new Kvm(stack.nc).create("cfg", { history: 5 });
  await kv.put("same", "1");
  await kv.put("changed", "1");
  await kv.put("deleted", "1");
  const hang = stack.nc.subscribe("svc.hang", { callback: () => {} });
  await stack.nc.flush();

  let tokens = 0;
  await using client = await connect(stack.gateway.wsUrl, {
    getToken: () => {
      tokens++;
      return stack.token("u");
    },
    reconnect: RECONNECT,
  });
  const seenStates = states(client);
  const firstSession = client.session;

  const seqs: number[] = [];
  const jsSub = client.jsSubscribe("EVENTS", { deliver: "all" }, (m) => {
    seqs.push(m.seq);
  });
  const kvEvents: KvEvent[] = [];
  const watch = client.kvWatch("cfg", {}, (e) => {
    kvEvents.push(e);
  });
  const live: unknown[] = [];
  const core = client.subscribe("live.x", (m) => live.push(m.payload));
  await Promise.all([jsSub.ready, watch.ready, core.ready]);
  assert.deepEqual(kvEvents.map((e) => e.key).sort(), ["changed", "deleted", "same"]);

  // Publish into the stream continuously, across the restart.
  let publishing = true;
  let published = 0;
  const publisher = (async () => {
    while (publishing) {
      await js.publish("events.tick", JSON.stringify({ n: published + 1 }));
      published++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const stopPublishing = async () => {
    publishing = false;
    await publisher;
  };
  try {
    await waitFor(() => seqs.length >= 20, 10_000, "messages before the restart");

    // A request in flight when the connection drops rejects with `unavailable`.
    const inFlight = rejection(client.request("svc.hang", {}, { timeoutMs: 20_000 }));
    await waitFor(() => stack.gateway.sessionCount === 1, 5000, "the session");
    const port = stack.gateway.addr.port;
    await stack.gateway.close();
    const lost = await inFlight;
    assert.ok(lost instanceof ConnectionError);
    assert.equal(lost.code, "unavailable");
    assert.match(lost.message, /^cmd svc\.hang: connection to ws:\/\/127\.0\.0\.1:\d+\/ws lost$/);
    assert.ok(lost.cause instanceof NatsgateError, "the close that ended it is the cause");
    await waitFor(() => client.state === "reconnecting", 5000, "reconnecting state");
    assert.equal((await rejection(client.request("svc.hang", {}))).code, "unavailable");

    // While the client is away: change one key, delete one, add one; leave `same` alone.
    const kvMark = kvEvents.length;
    await kv.put("changed", "2");
    await kv.delete("deleted");
    await kv.put("added", "3");
    const seqsAtRestart = seqs.length;

    stack.gateway = await stack.extraGateway({ port });
    await waitFor(() => client.state === "open", 10_000, "reconnected");
    assert.notEqual(client.session, firstSession);
    assert.ok(tokens >= 2, "getToken was called again to re-authenticate");
    assert.deepEqual(seenStates.filter((s, i) => s !== seenStates[i - 1]), [
      "reconnecting",
      "open",
    ]);

    // Core subscriptions are renewed.
    await waitFor(
      async () => {
        stack.nc.publish("live.x", JSON.stringify("after"));
        await new Promise((r) => setTimeout(r, 20));
        return live.length > 0;
      },
      5000,
      "a core message after the reconnect",
    );

    // KV: only real changes, once each, marked as found by the resync.
    await waitFor(() => watch.synced && kvEvents.length >= kvMark + 3, 5000, "kv resync");
    const changes = kvEvents.slice(kvMark);
    assert.deepEqual(
      changes.map((e) => [e.op, e.key, e.value, e.resync]).sort(),
      [
        ["delete", "deleted", undefined, true],
        ["put", "added", 3, true],
        ["put", "changed", 2, true],
      ].sort(),
    );
    assert.deepEqual(Object.fromEntries([...watch.entries].map(([k, v]) => [k, v.value])), {
      same: 1,
      changed: 2,
      added: 3,
    });
    // Live KV updates keep flowing after the resync.
    await kv.put("same", "5");
    await waitFor(() => kvEvents.length >= kvMark + 4, 5000, "a live kv update");
    assert.deepEqual(
      kvEvents.slice(kvMark + 3).map((e) => [e.op, e.key, e.value, e.resync]),
      [["put", "same", 5, undefined]],
    );

    // JetStream: keep publishing a little after the reconnect, then stop and compare.
    await waitFor(() => seqs.length > seqsAtRestart + 20, 10_000, "messages after the restart");
    await stopPublishing();
    const last = (await jsm.streams.info("EVENTS")).state.last_seq;
    assert.equal(last, published);
    await waitFor(() => seqs.length >= last, 10_000, `all ${last} messages`);
    assert.deepEqual(seqs, Array.from({ length: last }, (_, i) => i + 1), "no gap, no duplicate");
    assert.equal(jsSub.lastSeq, last);
  } finally {
    await stopPublishing().catch(() => {});
    hang.unsubscribe();
  }
});

Deno.test("client: reconnect keeps JetStream ack subscriptions at-least-once without repeats", async () => {
  await using stack = await startStack();
  await stack.setCaps("u", { streams: { EVENTS: [">"] } });
  const jsm = await jetstreamManager(stack.nc);
  await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"] });
  const js = jetstream(stack.nc);
  for (let i = 1; i <= 6; i++) await js.publish("events.x", JSON.stringify(i));
  await using client = await connect(stack.gateway.wsUrl, {
    token: await stack.token("u"),
    reconnect: RECONNECT,
  });
  const handled: number[] = [];
  const acks: Promise<void>[] = [];
  const sub = client.jsSubscribe("EVENTS", { deliver: "all", ack: true }, (m) => {
    handled.push(m.seq);
    if (m.seq <= 3) acks.push(m.ack()); // 4..6 stay unacknowledged across the restart
  });
  await sub.ready;
  await waitFor(() => handled.length >= 6, 5000, "6 messages");
  await Promise.all(acks);
  const port = stack.gateway.addr.port;
  await stack.gateway.close();
  await waitFor(() => client.state === "reconnecting", 5000, "reconnecting");
  stack.gateway = await stack.extraGateway({ port });
  await waitFor(() => client.state === "open", 10_000, "reconnected");
  await js.publish("events.x", JSON.stringify(7));
  await waitFor(() => handled.includes(7), 5000, "message 7");
  // 4..6 were redelivered from the oldest unacknowledged one; 1..3 never came back.
  assert.deepEqual(handled, [1, 2, 3, 4, 5, 6, 4, 5, 6, 7]);
});
