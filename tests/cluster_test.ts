/** Scale-out: two gateways on a 3-node NATS cluster behave as one service.
 * Killing the NATS node a gateway is connected to loses no JetStream message for its client.
 * @module */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, jetstreamManager, type PubAck } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { Gateway } from "../src/server/gateway.ts";
import { gatewayExtensions } from "../src/streams/extensions.ts";
import { createLogger, silentLogger } from "../src/log/log.ts";
import { NatsServer } from "../src/nats/launcher.ts";
import { userKey } from "../src/auth/user_key.ts";
import { NatsgateProcess, retry, TEST_SECRET, TestClient, waitFor } from "./_harness.ts";
import { mintToken } from "../src/auth/mint.ts";

/**
 * A JetStream publish that is stored exactly once: retried until acknowledged, with a message id
 * so that a retry after an ambiguous failure (stored, but the ack was lost with the node) is
 * deduplicated by the stream instead of being stored twice.
 */
function publishStored(js: JetStreamClient, subject: string, data: string, id: string) {
  return retry<PubAck>(() => js.publish(subject, data, { msgID: id, timeout: 2000 }), 20_000);
}

const CAPS = {
  subjects: ["chat.>"],
  publish: ["chat.>"],
  streams: { ORDERS: [">"] },
  buckets: { todos: [">"] },
};

Deno.test("cluster: two gateways, three NATS nodes, one service", async () => {
  const nodes = await NatsServer.cluster(3);
  const urls = nodes.map((n) => n.url);
  const admin = await connect({
    servers: urls,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  const gws: Gateway[] = [];
  const clients: TestClient[] = [];
  let acker: ReturnType<typeof setInterval> | undefined;
  try {
    const kvm = new Kvm(admin);
    const kv = await retry(() => kvm.create("auth", { history: 10, replicas: 3 }));
    await kv.put(userKey("u"), JSON.stringify(CAPS));
    const todos: KV = await retry(() => kvm.create("todos", { history: 5, replicas: 3 }));
    const jsm = await jetstreamManager(admin);
    await retry(() => jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"], num_replicas: 3 }));
    // Each gateway pinned to a different node first.
    for (const first of [0, 1]) {
      gws.push(
        await Gateway.start({
          hostname: "127.0.0.1",
          port: 0,
          nats: [urls[first], ...urls.filter((_, i) => i !== first)],
          jwtSecret: TEST_SECRET,
          log: Deno.env.get("NATSGATE_TEST_LOG")
            ? createLogger({ level: Deno.env.get("NATSGATE_TEST_LOG") as "debug" })
            : silentLogger,
          ...gatewayExtensions(),
        }),
      );
    }
    const token = await mintToken({ secret: TEST_SECRET, user: "u" });
    for (const gw of gws) {
      const c = await TestClient.connect(gw.wsUrl, { query: token });
      await c.next((e) => e.op === "cap_update");
      clients.push(c);
    }
    const [a, b] = clients;
    // Publishes cross gateways.
    const sa = await a.sub("chat.room");
    const sb = await b.sub("chat.room");
    assert.equal((await a.request({ op: "pub", target: "chat.room", data: "from-a" })).op, "reply");
    assert.equal((await b.request({ op: "pub", target: "chat.room", data: "from-b" })).op, "reply");
    await a.waitMsgs(sa, 2);
    await b.waitMsgs(sb, 2);
    assert.deepEqual(a.msgs(sa).map((m) => m.data.payload).sort(), ["from-a", "from-b"]);
    assert.deepEqual(b.msgs(sb).map((m) => m.data.payload).sort(), ["from-a", "from-b"]);
    // The admin's view spans both gateways: `natsgate sessions list`, through any node.
    const env = { NATSGATE_NATS: urls[2] };
    const list = await NatsgateProcess.run(["sessions", "list", "--json"], env);
    assert.equal(list.code, 0, list.stderr);
    const sessions = JSON.parse(list.stdout) as Array<{ gateway: string; user: string }>;
    assert.deepEqual(sessions.map((s) => s.gateway).sort(), gws.map((g) => g.id).sort());
    assert.ok(sessions.every((s) => s.user === "u"));
    // An admin's `natsgate caps set` revokes on both gateways.
    const { subjects: _s, ...shrunk } = CAPS;
    const set = await NatsgateProcess.run(
      ["caps", "set", "u", "--json", JSON.stringify(shrunk)],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    for (const [c, sid] of [[a, sa], [b, sb]] as const) {
      const cu = await c.next((e) => e.op === "cap_update" && e.data.revoked.length > 0);
      assert.deepEqual(cu.data.revoked, [sid]);
    }
    // JetStream and KV across a node failure: kill the node gateway A is connected to. The
    // ordered consumers (R1) behind the js_subs and kv_subs may live on that node, or not.
    const js = jetstream(admin);
    const jsA = (await a.request({ op: "js_sub", target: "ORDERS", data: { deliver: "all" } }))
      .data.id;
    const jsB = (await b.request({ op: "js_sub", target: "ORDERS", data: { deliver: "all" } }))
      .data.id;
    // An at-least-once subscription too: its ephemeral consumer is replicated like the stream.
    const ackA = (await a.request({
      op: "js_sub",
      target: "ORDERS",
      data: { deliver: "all", ack: true, ack_wait_ms: 2000, batch: 100 },
    })).data.id;
    let ackedUpTo = 0; // every delivery (redeliveries too) is acked as it arrives
    acker = setInterval(() => {
      const msgs = a.msgs(ackA);
      for (; ackedUpTo < msgs.length; ackedUpTo++) {
        a.send({ op: "ack", target: "ORDERS", data: { id: ackA, seq: msgs[ackedUpTo].data.seq } });
      }
    }, 20);
    const ackConsumers = await waitFor(
      async () => {
        const found = [];
        for await (const ci of jsm.consumers.list("ORDERS")) {
          if (ci.config.ack_policy === "explicit") found.push(ci);
        }
        return found.length > 0 ? found : undefined;
      },
      5000,
      "the ack consumer",
    );
    assert.equal(ackConsumers.length, 1);
    assert.equal(ackConsumers[0].config.num_replicas, 3, "ack consumer replicated like its stream");
    const kvA = (await a.request({ op: "kv_sub", target: "todos" })).data.id;
    const kvB = (await b.request({ op: "kv_sub", target: "todos" })).data.id;
    for (const [c, sid] of [[a, kvA], [b, kvB]] as const) {
      await c.next((e) => e.sid === sid && e.data.op === "ready", 5000, "kv ready");
    }
    const acks: PubAck[] = [];
    for (let i = 0; i < 20; i++) acks.push(await publishStored(js, "orders.x", String(i), `o${i}`));
    for (let i = 0; i < 5; i++) await retry(() => todos.put(`k${i}`, `v${i}.0`));
    await a.waitMsgs(jsA, 20);
    await b.waitMsgs(jsB, 20);
    const connected = gws[0].nc.getServer();
    const victim = nodes.find((n) => connected.includes(String(n.port)))!;
    assert.ok(victim, `gateway A's node (${connected}) is one of ours`);
    await victim.stop();
    for (let i = 20; i < 60; i++) {
      acks.push(await publishStored(js, "orders.x", String(i), `o${i}`));
      if (i % 4 === 0) await retry(() => todos.put(`k${i % 5}`, `v${i % 5}.${i}`));
    }
    // Every message was stored exactly once, at sequences 1..60.
    assert.deepEqual(acks.map((p) => p.seq), Array.from({ length: 60 }, (_, i) => i + 1));
    assert.equal((await jsm.streams.info("ORDERS")).state.messages, 60);
    const want = Array.from({ length: 60 }, (_, i) => i + 1);
    for (const [name, c, sid] of [["A", a, jsA], ["B", b, jsB]] as const) {
      const got = () => c.msgs(sid).map((m) => m.data.seq);
      await waitFor(() => c.msgs(sid).length >= 60, 30_000, `60 msgs on ${name}`)
        .catch((err) => {
          throw new Error(`${err.message}; ${name} received seqs ${JSON.stringify(got())}`);
        });
    }
    // At least once on A's ack subscription: every sequence arrives (redeliveries allowed).
    const ackSeqs = () => new Set(a.msgs(ackA).map((m) => m.data.seq));
    await waitFor(() => want.every((s) => ackSeqs().has(s)), 30_000, "every seq on the ack sub")
      .catch((err) => {
        throw new Error(
          `${err.message}; got ${JSON.stringify([...ackSeqs()].sort((x, y) => x - y))}`,
        );
      });
    // A sentinel stored after the 60 (sequence 61): both subscriptions are ordered, so once it is
    // here a repeat of any message before it would be too.
    await publishStored(js, "orders.x", "60", "o60");
    for (const [c, sid] of [[a, jsA], [b, jsB]] as const) {
      await c.next((e) => e.sid === sid && e.data.seq === 61, 30_000, "the sentinel");
    }
    for (const [name, c, sid] of [["A", a, jsA], ["B", b, jsB]] as const) {
      const msgs = c.msgs(sid);
      assert.deepEqual(
        msgs.map((m) => m.data.seq),
        [...want, 61],
        `gateway ${name}: gapless, no duplicates`,
      );
      assert.deepEqual(msgs.map((m) => m.data.payload), [...want, 61].map((s) => s - 1));
    }
    // Both KV watches end with the bucket's contents, each revision once, in order.
    const bucket = new Map<string, string>();
    for await (const key of await todos.keys()) bucket.set(key, (await todos.get(key))!.string());
    for (const [name, c, sid] of [["A", a, kvA], ["B", b, kvB]] as const) {
      const view = new Map<string, unknown>();
      await waitFor(
        () => {
          view.clear();
          for (const m of c.msgs(sid)) if (m.data.op === "put") view.set(m.data.key, m.data.value);
          return [...bucket].every(([k, v]) => view.get(k) === v);
        },
        30_000,
        `kv watch on ${name} catches up`,
      );
      assert.deepEqual(new Map([...view].sort()), new Map([...bucket].sort()));
      const revs = c.msgs(sid).filter((m) => m.data.op !== "ready").map((m) => m.data.revision);
      assert.deepEqual(revs, [...revs].sort((x, y) => x - y), `${name}: revisions in order`);
      assert.equal(new Set(revs).size, revs.length, `${name}: no revision twice`);
    }
    await waitFor(() => gws[0].nc.getServer() !== connected, 10_000, "gateway A moved node");
  } finally {
    clearInterval(acker);
    for (const c of clients) await c.close();
    for (const g of gws) await g.close();
    await admin.close();
    await Promise.all(nodes.map((n) => n.stop()));
  }
});
