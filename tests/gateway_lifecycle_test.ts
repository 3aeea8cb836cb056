/** Lifecycle: resources released after disconnect, shutdown with 1001, control-plane listing.
 * Checked through nats-server's own monitoring endpoint, not the gateway's word.
 * @module */

import assert from "node:assert/strict";
import { Stack, waitFor } from "./_harness.ts";
import { SESSIONS_LIST_SUBJECT } from "../src/nats/control.ts";

Deno.test("cleanup: NATS subscriptions return to baseline after clients leave", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: [">"], commands: ["svc.>"] });
  // The gateway's control-plane subscriptions are made without a flush. Its answer to a list
  // request is written after them on its connection, so once it arrives nats-server has them all.
  await stack.nc.request(SESSIONS_LIST_SUBJECT, "{}");
  const baseline = await stack.natsSubscriptions();
  const clients = [];
  for (let i = 0; i < 5; i++) {
    const c = await stack.client("u");
    await c.sub(`topic.${i}`);
    await c.sub("shared");
    await c.sub("q.work", { queue: "g" });
    clients.push(c);
  }
  assert.equal(await stack.natsSubscriptions(), baseline + 5 + 2);
  // A pending cmd when the client leaves.
  const held = Promise.withResolvers<void>();
  stack.nc.subscribe("svc.hold", { callback: () => held.resolve() });
  await stack.nc.flush();
  const withBackground = await stack.natsSubscriptions();
  clients[0].send({ op: "cmd", target: "svc.hold", inbox: "h", timeout_ms: 60000 });
  await held.promise; // the request reached the backend: the cmd is pending
  for (const c of clients) await c.close();
  await waitFor(() => stack.gateway.sessionCount === 0);
  await waitFor(
    async () => (await stack.natsSubscriptions()) === withBackground - 7,
    5000,
    "subs back to baseline",
  );
  assert.equal(stack.gateway.natsSubscriptionCount, 0);
});

Deno.test("shutdown: clients get 1001 and new upgrades are refused", async () => {
  await using stack = await Stack.start();
  const c = await stack.client("u");
  const url = stack.gateway.wsUrl;
  await stack.gateway.close();
  assert.equal((await c.closed).code, 1001);
  await assert.rejects(fetch(url.replace(/^ws/, "http")).then((r) => r.text()));
});

Deno.test("control plane: sessions are listed and kicked through NATS", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("u", { subjects: ["a.>"] });
  const c = await stack.client("u");
  await c.sub("a.b");
  const replies = await stack.nc.requestMany("$NATSGATE.sessions.list", "{}", { maxWait: 500 });
  const lists = [];
  for await (const m of replies) {
    lists.push(
      m.json<
        { gateway: string; sessions: Array<{ id: string; user: string; subscriptions: unknown[] }> }
      >(),
    );
  }
  assert.equal(lists.length, 1);
  assert.equal(lists[0].gateway, stack.gateway.id);
  assert.equal(lists[0].sessions[0].user, "u");
  assert.equal(lists[0].sessions[0].subscriptions.length, 1);
  const events: string[] = [];
  const sub = stack.nc.subscribe("$NATSGATE.events.*.*", {
    callback: (_e, m) => {
      events.push(m.subject.split(".").pop()!);
    },
  });
  await stack.nc.flush();
  const r = await stack.nc.request(
    "$NATSGATE.sessions.kick",
    JSON.stringify({ session: lists[0].sessions[0].id }),
  );
  assert.equal(r.json<{ kicked: boolean }>().kicked, true);
  assert.equal((await c.closed).code, 4000);
  await waitFor(() => events.includes("disconnect"));
  // A later session's connect event comes from the same gateway connection: once it is here, a
  // second disconnect event for the kick would have been too.
  await stack.client("u");
  await waitFor(() => events.includes("connect"), 5000, "a later connect event");
  assert.equal(events.filter((e) => e === "disconnect").length, 1, "one disconnect per kick");
  sub.unsubscribe();
});

Deno.test("health: /healthz and /readyz answer; unknown paths 404", async () => {
  await using stack = await Stack.start();
  const base = stack.gateway.wsUrl.replace(/^ws/, "http").replace(/\/ws$/, "");
  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 200);
  await h.body?.cancel();
  const r = await fetch(`${base}/readyz`);
  assert.equal(r.status, 200);
  await r.body?.cancel();
  const n = await fetch(`${base}/nope`);
  assert.equal(n.status, 404);
  await n.body?.cancel();
  const plain = await fetch(`${base}/ws`);
  assert.equal(plain.status, 426, "plain GET on the WebSocket path");
  await plain.body?.cancel();
});
