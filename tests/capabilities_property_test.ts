/** Capability validation against a real nats-server and gateway (fast-check, seeded): what the
 * gateway accepts never earns -ERR, works in JetStream, and an allowed subscription delivers only
 * granted subjects. The pure properties are in src/auth/capabilities_property_test.ts.
 * @module */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Kvm } from "@nats-io/kv";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { checkSubscribe, compileCapabilities } from "../src/auth/capabilities.ts";
import {
  validateBucketName,
  validateKvKey,
  validateQueueName,
  validateStreamName,
  validateSubject,
} from "../src/protocol/subject.ts";
import {
  byteLength,
  candidateArb,
  fillArb,
  instantiate,
  kvPatternArb,
  nearLimitArb,
  refMatch,
  requestArb,
  UNIVERSE,
} from "./_capabilities_model.ts";
import { seeded, testSeed, withSeed } from "./_prng.ts";
import { Stack } from "./_harness.ts";

/** One seed for every test in this file (NATSGATE_SEED to change it). */
const SEED = testSeed();
const _enc = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Against a real nats-server
// ---------------------------------------------------------------------------------------------

/** A raw, verbose NATS protocol connection: every command gets `+OK` or `-ERR`. */
class RawNats implements Disposable {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  #pending = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(url: string): Promise<RawNats> {
    const u = new URL(url);
    const raw = new RawNats(await Deno.connect({ hostname: u.hostname, port: Number(u.port) }));
    await raw.untilPong('CONNECT {"verbose":true,"pedantic":false,"echo":true}\r\nPING\r\n');
    return raw;
  }

  /** Writes `cmds` plus a PING and returns every line the server sent up to the PONG. */
  async untilPong(cmds: string): Promise<string> {
    await this.#conn.write(_enc.encode(cmds.endsWith("PING\r\n") ? cmds : `${cmds}PING\r\n`));
    const dec = new TextDecoder();
    while (true) {
      const text = dec.decode(this.#pending);
      const at = text.indexOf("PONG\r\n");
      if (at >= 0) {
        this.#pending = this.#pending.subarray(byteLength(text.slice(0, at + 6)));
        return text.slice(0, at);
      }
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error(`connection closed; got ${JSON.stringify(text)}`);
      const merged = new Uint8Array(this.#pending.length + n);
      merged.set(this.#pending);
      merged.set(this.#buf.subarray(0, n), this.#pending.length);
      this.#pending = merged;
    }
  }

  [Symbol.dispose](): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** Errors nats.js reports for a connection (a server `-ERR` becomes a status `error`). */
function watchErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  (async () => {
    for await (const st of nc.status()) {
      if (st.type === "error") errors.push(String((st as { error?: unknown }).error));
    }
  })().catch(() => {});
  return errors;
}

const liveSubjectArb = candidateArb.filter((s) => validateSubject(s) === null);

Deno.test("real nats-server: subjects and queues the gateway accepts never get -ERR", () =>
  withSeed(SEED, async () => {
    await using stack = await Stack.start();
    using raw = await RawNats.open(stack.nats.url);
    const subjects = fc.sample(liveSubjectArb, seeded(150, SEED));
    const queues = fc.sample(
      candidateArb.filter((q) => validateQueueName(q) === null),
      seeded(40, SEED),
    );
    assert.ok(subjects.length === 150 && queues.length === 40);
    let sid = 0;
    let literals = 0;
    for (const [i, s] of subjects.entries()) {
      const q = i < queues.length ? ` ${queues[i]}` : "";
      const literal = validateSubject(s, { wildcards: false }) === null;
      const id = ++sid;
      const n = byteLength("hi");
      const pub = literal ? `PUB ${s} ${n}\r\nhi\r\n` : "";
      const out = await raw.untilPong(`SUB ${s}${q} ${id}\r\n${pub}UNSUB ${id}\r\n`);
      const shown = JSON.stringify(s);
      assert.ok(!out.includes("-ERR"), `${shown}${q}: ${JSON.stringify(out)}`);
      assert.equal(out.split("+OK\r\n").length - 1, literal ? 3 : 2, `${shown}: ${out}`);
      if (literal) {
        literals++;
        assert.ok(out.includes(`MSG ${s} ${id} ${n}\r\nhi\r\n`), `${shown} round trip: ${out}`);
      }
    }
    assert.ok(literals > 30, `enough literal subjects (${literals})`);

    // The same subjects through nats.js, the client the gateway itself uses.
    const errors = watchErrors(stack.nc);
    const got: string[] = [];
    const subs = subjects.map((s) =>
      stack.nc.subscribe(s, { callback: (_e, m: Msg) => void got.push(m.subject) })
    );
    const literalSubjects = subjects.filter((s) =>
      validateSubject(s, { wildcards: false }) === null
    );
    for (const s of literalSubjects) stack.nc.publish(s, "x");
    await stack.nc.flush();
    for (const s of literalSubjects) assert.ok(got.includes(s), `nats.js round trip ${s}`);
    for (const sub of subs) sub.unsubscribe();
    await stack.nc.flush();
    assert.deepEqual(errors, [], "no -ERR reached nats.js");
  }));

Deno.test("real JetStream: accepted buckets, keys, key patterns and stream names all work", () =>
  withSeed(SEED, async () => {
    await using stack = await Stack.start();
    const errors = watchErrors(stack.nc);
    const kvm = new Kvm(stack.nc);
    const jsm = await jetstreamManager(stack.nc);
    const bucketArb = fc.oneof(
      candidateArb,
      fc.integer({ min: 245, max: 256 }).map((n) => "b".repeat(n)),
      fc.stringMatching(/^[-_A-Za-z0-9]{1,12}$/),
    ).filter((b) => validateBucketName(b) === null);
    const buckets = [...new Set(fc.sample(bucketArb, seeded(16, SEED)))];
    for (const b of buckets) {
      const kv = await kvm.create(b).catch((e) => {
        throw new Error(`bucket ${b.length > 40 ? `${b.slice(0, 10)}…(${b.length})` : b}: ${e}`);
      });
      await kv.destroy();
    }
    const kv = await kvm.create("fuzz");
    const keyArb = fc.oneof(
      candidateArb,
      fc.stringMatching(/^[-/=_A-Za-z0-9]{1,8}(\.[-/=_A-Za-z0-9]{1,8}){0,3}$/),
    );
    const keys = fc.sample(
      keyArb.filter((k) => validateKvKey(k, { wildcards: false }) === null),
      seeded(40, SEED),
    );
    for (const k of keys) {
      await kv.put(k, "v").catch((e) => {
        throw new Error(`key ${JSON.stringify(k)}: ${e}`);
      });
      assert.equal((await kv.get(k))?.string(), "v", `key ${k} reads back`);
    }
    const patterns = fc.sample(
      fc.oneof(keyArb, kvPatternArb).filter((k) => validateKvKey(k) === null),
      seeded(20, SEED),
    );
    for (const p of patterns) {
      // What a kv_sub sends NATS: a consumer on `$KV.<bucket>.<pattern>`.
      const ci = await jsm.consumers.add("KV_fuzz", {
        filter_subject: `$KV.fuzz.${p}`,
        ack_policy: AckPolicy.None,
      }).catch((e) => {
        throw new Error(`key pattern ${JSON.stringify(p)}: ${e}`);
      });
      await jsm.consumers.delete("KV_fuzz", ci.name);
    }
    const streams = [
      ...new Set(fc.sample(
        fc.oneof(candidateArb, nearLimitArb(250, 256)).filter((s) =>
          validateStreamName(s) === null
        ),
        seeded(16, SEED),
      )),
    ];
    for (const [i, name] of streams.entries()) {
      await jsm.streams.add({ name, subjects: [`fuzz.stream.${i}`] }).catch((e) => {
        throw new Error(
          `stream ${JSON.stringify(name.slice(0, 40))} (${byteLength(name)} B): ${e}`,
        );
      });
      await jsm.streams.delete(name);
    }
    assert.deepEqual(errors, [], "no -ERR reached nats.js");
  }));

Deno.test("gateway end to end: an allowed subscription delivers only granted subjects", () =>
  withSeed(SEED, async () => {
    await using stack = await Stack.start();
    const runs = fc.sample(fc.tuple(requestArb, fillArb), seeded(40, SEED));
    let allowedRuns = 0;
    for (const [i, [[requested, granted], fill]] of runs.entries()) {
      const user = `prop${i}`;
      await stack.setCaps(user, { subjects: granted });
      const c = await stack.client(user);
      const r = await c.request({ op: "sub", target: requested });
      const want = checkSubscribe(compileCapabilities({ subjects: granted }), requested).allowed;
      assert.equal(r.op === "reply", want, `${requested} by ${granted}: ${JSON.stringify(r)}`);
      if (r.op === "reply") {
        allowedRuns++;
        const sid = r.data.id as string;
        const published = [
          ...UNIVERSE.filter((_, j) => j % 37 === i % 37),
          instantiate(requested, fill, 1),
          instantiate(requested, fill, 3),
        ];
        for (const s of published) stack.nc.publish(s, JSON.stringify(s));
        // Last, a subject the subscription matches: once it arrives, everything before it has.
        const marker = instantiate(requested, ["a"], 1);
        assert.ok(refMatch(requested, marker), marker);
        stack.nc.publish(marker, '"end"');
        await c.next((e) => e.sid === sid && e.data?.payload === "end", 5000, "end marker");
        for (const m of c.msgs(sid)) {
          const s = m.target!;
          assert.ok(refMatch(requested, s), `${s} delivered on ${requested}`);
          assert.ok(
            granted.some((g) => refMatch(g, s)),
            `${s} escaped ${granted} via ${requested}`,
          );
        }
        for (const s of published) {
          if (refMatch(requested, s)) {
            assert.ok(
              c.msgs(sid).some((m) => m.target === s),
              `${s} not delivered on ${requested}`,
            );
          }
        }
      }
      await c.close();
    }
    assert.ok(allowedRuns >= 8, `enough allowed runs (${allowedRuns})`);
  }));

Deno.test("$ rule: a `>` subscriber never sees the gateway's own inbox traffic", async () => {
  await using stack = await Stack.start();
  await stack.setCaps("victim", { commands: ["svc.secret"], subjects: ["victim.>"] });
  await stack.setCaps("eve", { subjects: [">"] });
  stack.nc.subscribe("svc.secret", { callback: (_e, m) => void m.respond('"the-secret-reply"') });
  await stack.nc.flush();
  const eve = await stack.client("eve");
  const all = await eve.sub(">");
  // The victim's capability document is read from KV now, and its cmd answered on an inbox.
  const victim = await stack.client("victim");
  const r = await victim.request({ op: "cmd", target: "svc.secret", data: 1 });
  assert.equal(r.data, "the-secret-reply");
  assert.equal((await victim.request({ op: "kv_sub", target: "nope" })).data.code, "forbidden");
  // Published last on the same connection: once eve has it, she has had everything before it.
  stack.nc.publish("marker", '"end"');
  await eve.next((e) => e.sid === all && e.data?.payload === "end", 5000, "marker");
  const seen = eve.msgs(all);
  assert.deepEqual(
    seen.map((m) => m.target).filter((t) => t !== "svc.secret" && t !== "marker"),
    [],
    "only the request itself and the marker",
  );
  const text = JSON.stringify(seen);
  assert.ok(!text.includes("the-secret-reply"), "another user's cmd reply leaked");
  assert.ok(!text.includes("victim.>"), "a capability document leaked");
});
