/** A gateway process killed under load: SDK clients given two gateway URLs move to the second one.
 * JetStream subscriptions resume without gap or duplicate, KV maps re-sync, core subscriptions renew.
 * @module */

import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsgateClient } from "../src/client/mod.ts";
import { NatsgateProcess, Stack, TEST_SECRET, waitFor } from "./_harness.ts";

const CLIENTS = 10;

interface _Observer {
  client: NatsgateClient;
  seqs: number[];
  core: number;
  watch: ReturnType<NatsgateClient["kvWatch"]>;
}

Deno.test("failover: SIGKILL of a gateway under load; SDK clients resume on the second one", async () => {
  await using stack = await Stack.start();
  // Gateway A is a real `natsgate serve` process (so it can be killed); B is the stack's gateway.
  const a = new NatsgateProcess([
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--nats",
    stack.nats.url,
    "--jwt-secret",
    TEST_SECRET,
    "--gateway-id",
    "gw-a",
  ]);
  const clients: NatsgateClient[] = [];
  let publishing = true;
  let publisher: Promise<void> | undefined;
  try {
    const aUrl = await a.wsUrl();
    const bUrl = stack.gateway.wsUrl;
    await stack.setCaps("u", {
      subjects: ["live.>"],
      buckets: { cfg: [">"] },
      streams: { EVENTS: [">"] },
    });
    const jsm = await jetstreamManager(stack.nc);
    await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"] });
    const js = jetstream(stack.nc);
    const kv = await new Kvm(stack.nc).create("cfg", { history: 5 });
    await kv.put("k0", "0");

    const observers: _Observer[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = await connect([aUrl, bUrl], {
        getToken: () => stack.token("u"),
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      clients.push(client);
      assert.equal(client.url, aUrl, "the first URL is tried first");
      const o: _Observer = { client, seqs: [], core: 0, watch: undefined! };
      const jsSub = client.jsSubscribe("EVENTS", { deliver: "all" }, (m) => {
        o.seqs.push(m.seq);
      });
      o.watch = client.kvWatch("cfg", {}, () => {});
      const core = client.subscribe("live.x", () => {
        o.core++;
      });
      await Promise.all([jsSub.ready, o.watch.ready, core.ready]);
      observers.push(o);
    }

    // Load: JetStream publishes (acked, so every one is stored) and KV writes, without pause.
    let published = 0;
    publisher = (async () => {
      while (publishing) {
        await js.publish("events.tick", JSON.stringify({ n: published + 1 }));
        published++;
        if (published % 10 === 0) await kv.put(`k${published % 7}`, String(published));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitFor(
      () => observers.every((o) => o.seqs.length >= 30),
      10_000,
      "messages on gateway A",
    );

    a.child.kill("SIGKILL");
    assert.notEqual((await a.done).code, 0, "gateway A was killed");
    await waitFor(
      () => clients.every((c) => c.state === "open" && c.url === bUrl),
      15_000,
      "every client open on gateway B",
    );
    assert.equal(stack.gateway.sessionCount, CLIENTS);

    // Keep the load on for a while after the failover, then stop and compare.
    const mark = Math.max(...observers.map((o) => o.seqs.length));
    await waitFor(
      () => observers.every((o) => o.seqs.length > mark + 30),
      15_000,
      "messages on gateway B",
    );
    publishing = false;
    await publisher;
    const last = (await jsm.streams.info("EVENTS")).state.last_seq;
    assert.equal(last, published, "the publisher stored every message");
    const all = Array.from({ length: last }, (_, i) => i + 1);
    await waitFor(
      () => observers.every((o) => o.seqs.length >= last),
      15_000,
      `all ${last} messages on every client`,
    );
    for (const o of observers) assert.deepEqual(o.seqs, all, "no gap, no duplicate");

    // KV: every client's map equals the bucket.
    const bucket: Record<string, unknown> = {};
    for await (const key of await kv.keys()) bucket[key] = Number((await kv.get(key))!.string());
    await waitFor(
      () =>
        observers.every((o) =>
          o.watch.synced &&
          JSON.stringify(Object.fromEntries(
              [...o.watch.entries].map(([k, v]) => [k, v.value]).sort(),
            )) === JSON.stringify(Object.fromEntries(Object.entries(bucket).sort()))
        ),
      10_000,
      "kv maps equal to the bucket",
    );

    // Core subscriptions were renewed on B.
    // Core is at most once and B's subscriptions are renewed as each client reconnects: publish
    // again on every poll until every client has one.
    await waitFor(
      () => {
        stack.nc.publish("live.x", JSON.stringify("after"));
        return observers.every((o) => o.core > 0);
      },
      5000,
      "a core message on every client after the failover",
    );
  } finally {
    publishing = false;
    await publisher?.catch(() => {});
    for (const c of clients) await c.close();
    await a.stop();
  }
});
