/** `natsgate replay` run in process (tests/_cli.ts) against a real nats-server and JetStream
 * stream: start by seq and time, filter, count, follow, JSON encodings and republishing with --to.
 * @module */

import assert from "node:assert/strict";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../src/nats/launcher.ts";
import { waitFor } from "./_harness.ts";
import { type CliProcess, type CliRun, fails, ok, runCli, startCli } from "./_cli.ts";

/** Parsed `--json` lines of a run. */
const records = (p: { stdout: string }): Array<Record<string, unknown>> =>
  p.stdout.split("\n").filter((l) => l).map((l) => JSON.parse(l));

/** A nats-server with stream ORDERS (orders.>) holding seqs 1..7, shared by the steps. */
class Fixture {
  constructor(readonly nats: NatsServer, readonly nc: NatsConnection) {}

  static async start(): Promise<Fixture> {
    const nats = await NatsServer.start();
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    const js = jetstream(nc);
    for (let n = 1; n <= 5; n++) {
      const h = headers();
      h.set("X-N", String(n));
      h.append("X-Multi", "a");
      h.append("X-Multi", "b");
      await js.publish(n % 2 ? "orders.new" : "orders.paid", JSON.stringify({ n }), { headers: h });
    }
    await js.publish("orders.text", "hello\nworld"); // 6
    await js.publish("orders.bin", new Uint8Array([0xff, 0x00, 0x01])); // 7
    return new Fixture(nats, nc);
  }

  get env(): Record<string, string> {
    return { NATSGATE_NATS: this.nats.url };
  }

  run(args: string[], opts: { tty?: boolean; input?: string } = {}): Promise<CliRun> {
    return runCli(args, { env: this.env, ...opts });
  }

  async records(args: string[]): Promise<Array<Record<string, unknown>>> {
    return records(ok(await this.run([...args, "--json"])));
  }

  async stop(): Promise<void> {
    await this.nc.close();
    await this.nats.stop();
  }
}

const seqs = (recs: Array<Record<string, unknown>>) => recs.map((r) => r.seq);

Deno.test("replay: a JetStream stream from a real nats-server", async (t) => {
  const f = await Fixture.start();
  const procs: CliProcess[] = [];
  try {
    await t.step("prints every message and stops at the end of the stream", async () => {
      const r = ok(await f.run(["replay", "ORDERS"]));
      for (let seq = 1; seq <= 7; seq++) {
        assert.match(r.stdout, new RegExp(`^#${seq}  \\S+Z  `, "m"));
      }
      assert.match(r.stdout, /^#1 {2}\S+Z {2}orders\.new\n {2}\{"n":1\}$/m);
      assert.match(r.stdout, /^#6 {2}\S+Z {2}orders\.text\n {2}hello\n {2}world$/m);
      assert.match(r.stdout, /^#7 {2}\S+Z {2}orders\.bin\n {2}base64:\/wAB$/m);
      assert.doesNotMatch(r.stdout, /X-N/, "headers only with --headers");
      const h = ok(await f.run(["replay", "ORDERS", "--headers", "--count", "1"]));
      assert.match(h.stdout, /^ {2}X-N: 1$/m);
      assert.match(h.stdout, /^ {2}X-Multi: a\n {2}X-Multi: b$/m);
    });

    await t.step("--json uses the protocol's payload encodings", async () => {
      const recs = await f.records(["replay", "ORDERS", "--headers"]);
      assert.deepEqual(seqs(recs), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(Object.keys(recs[0]), ["seq", "subject", "time", "headers", "payload"]);
      assert.deepEqual(recs[0].headers, { "X-N": "1", "X-Multi": ["a", "b"] });
      assert.deepEqual(recs[0].payload, { n: 1 });
      assert.equal(recs[0].subject, "orders.new");
      assert.ok(!Number.isNaN(Date.parse(recs[0].time as string)));
      assert.deepEqual(recs[5], {
        seq: 6,
        subject: "orders.text",
        time: recs[5].time,
        payload: "hello\nworld",
        encoding: "text",
      });
      assert.equal(recs[6].payload, "/wAB");
      assert.equal(recs[6].encoding, "base64");
      const plain = await f.records(["replay", "ORDERS", "--count", "1"]);
      assert.equal(plain[0].headers, undefined);
    });

    await t.step("--from-seq, --until-seq, --count, --filter", async () => {
      assert.deepEqual(seqs(await f.records(["replay", "ORDERS", "--from-seq", "4"])), [
        4,
        5,
        6,
        7,
      ]);
      assert.deepEqual(
        seqs(await f.records(["replay", "ORDERS", "--from-seq", "2", "--until-seq", "4"])),
        [2, 3, 4],
      );
      assert.deepEqual(seqs(await f.records(["replay", "ORDERS", "--count", "3"])), [1, 2, 3]);
      assert.deepEqual(
        seqs(await f.records(["replay", "ORDERS", "--filter", "orders.paid"])),
        [2, 4],
      );
      assert.deepEqual(
        seqs(await f.records(["replay", "ORDERS", "--filter", "orders.new", "--count", "2"])),
        [1, 3],
      );
      const none = ok(await f.run(["replay", "ORDERS", "--filter", "orders.none", "--json"]));
      assert.equal(none.stdout, "");
      const raw = ok(await f.run(["replay", "ORDERS", "--raw", "--from-seq", "2", "--count", "2"]));
      assert.equal(raw.stdout, '{"n":2}\n{"n":3}\n');
    });

    await t.step("--start-time and --since", async () => {
      const jsm = await jetstreamManager(f.nc);
      const before = (await jsm.streams.info("ORDERS")).state.last_seq;
      // The next messages are stored strictly after `start` (same clock, waited past it).
      await new Promise((r) => setTimeout(r, 5));
      const start = new Date().toISOString();
      await new Promise((r) => setTimeout(r, 5));
      const js = jetstream(f.nc);
      await js.publish("orders.late", JSON.stringify({ late: 1 }));
      await js.publish("orders.late", JSON.stringify({ late: 2 }));
      assert.deepEqual(
        seqs(await f.records(["replay", "ORDERS", "--start-time", start])),
        [before + 1, before + 2],
      );
      const since = await f.records(["replay", "ORDERS", "--since", "1h"]);
      assert.equal(since.length, before + 2);
    });

    await t.step("--follow --count N waits for new messages", async () => {
      const info = await (await jetstreamManager(f.nc)).streams.info("ORDERS");
      const next = info.state.last_seq + 1;
      const p = startCli(
        ["replay", "ORDERS", "--follow", "--count", "2", "--json", "--filter", "orders.live.>"],
        { env: f.env },
      );
      procs.push(p);
      await p.until((p) => p.stderr.includes("following ORDERS"), "following");
      assert.equal(p.stdout, "", "nothing matches yet");
      const js = jetstream(f.nc);
      await js.publish("orders.other", "{}");
      await js.publish("orders.live.1", JSON.stringify({ live: 1 }));
      await js.publish("orders.live.2", JSON.stringify({ live: 2 }));
      const recs = records(ok(await p.done));
      assert.deepEqual(seqs(recs), [next + 1, next + 2]);
      assert.deepEqual(recs.map((r) => r.payload), [{ live: 1 }, { live: 2 }]);
    });

    await t.step("--follow stops on Ctrl-C with exit 0", async () => {
      const p = startCli(
        ["replay", "ORDERS", "--follow", "--json", "--filter", "orders.sig"],
        { env: f.env },
      );
      procs.push(p);
      await p.until((p) => p.stderr.includes("following ORDERS"), "following");
      await jetstream(f.nc).publish("orders.sig", JSON.stringify({ sig: 1 }));
      await p.until((p) => p.stdout.includes('"sig"'), "the message");
      p.interrupt();
      assert.deepEqual(records(ok(await p.done)).map((r) => r.payload), [{ sig: 1 }]);
    });

    await t.step("--to republishes with headers, after confirmation", async () => {
      const got: Msg[] = [];
      const sub = f.nc.subscribe("copy.orders", {
        callback: (_e, m) => {
          got.push(m);
        },
      });
      await f.nc.flush();
      fails(
        await f.run(["replay", "ORDERS", "--filter", "orders.paid", "--to", "copy.orders"]),
        1,
        /refusing to republish .*--yes/,
      );
      const no = await f.run(
        ["replay", "ORDERS", "--filter", "orders.paid", "--to", "copy.orders"],
        { tty: true, input: "no\n" },
      );
      assert.equal(no.code, 1);
      assert.match(no.stderr, /republish up to 2 messages of ORDERS to copy\.orders\? \[y\/N\] /);
      assert.match(no.stderr, /natsgate: aborted; nothing done\n$/);
      // Sentinel: published after the refusals, it is the first message the subscriber sees.
      f.nc.publish("copy.orders", JSON.stringify({ sentinel: 1 }));
      await waitFor(() => got.length >= 1, 5000, "the sentinel");
      assert.deepEqual(got.map((m) => m.json()), [{ sentinel: 1 }], "nothing republished unasked");
      got.length = 0;
      const r = ok(
        await f.run([
          "replay",
          "ORDERS",
          "--filter",
          "orders.paid",
          "--to",
          "copy.orders",
          "--yes",
        ]),
      );
      assert.equal(r.stdout, "", "the summary goes to stderr");
      assert.equal(r.stderr, "republished 2 messages to copy.orders\n");
      await waitFor(() => got.length >= 2, 5000, "republished messages");
      assert.deepEqual(got.map((m) => m.json()), [{ n: 2 }, { n: 4 }]);
      assert.equal(got[0].headers?.get("X-N"), "2");
      assert.deepEqual(got[1].headers?.values("X-Multi"), ["a", "b"]);
      sub.unsubscribe();
      fails(await f.run(["replay", "ORDERS", "--to", "copy.*", "--yes"]), 2, /invalid --to/);
      const yes = ok(
        await f.run([
          "replay",
          "ORDERS",
          "--from-seq",
          "7",
          "--count",
          "1",
          "--to",
          "copy.orders",
          "--json",
        ], {
          tty: true,
          input: "y\n",
        }),
      );
      assert.deepEqual(JSON.parse(yes.stdout), {
        stream: "ORDERS",
        to: "copy.orders",
        republished: 1,
      });
    });

    await t.step(
      "bad input: unknown stream (1); usage errors (2) with the usage line",
      async () => {
        fails(await f.run(["replay", "NOPE"]), 1, /no stream named NOPE/);
        fails(await f.run(["replay", "ORDERS", "--from-seq", "999"]), 1, /past the end/);
        fails(await f.run(["replay", "ORDERS", "--start-time", "yesterday"]), 2, /--start-time/);
        // One message for every bad count, whatever the bad value.
        for (const [flag, value] of [["--from-seq", "0"], ["--from-seq", "-3"], ["--count", "0"]]) {
          fails(
            await f.run(["replay", "ORDERS", flag, value]),
            2,
            new RegExp(`'${value}' is invalid\\. expected an integer of 1 or more$`),
          );
        }
        fails(
          await f.run(["replay", "ORDERS", "--from-seq", "1", "--since", "1h"]),
          2,
          /only one of/,
        );
        fails(await f.run(["replay", "ORDERS", "--filter", "a..b"]), 2, /invalid --filter/);
        fails(await f.run(["replay", "BAD.NAME"]), 2, /invalid stream name/);
        fails(await f.run(["replay", "ORDERS", "--json", "--raw"]), 2, /cannot be used with/);
        fails(
          await f.run(["replay", "ORDERS", "--raw", "--headers"]),
          2,
          /'--raw' cannot be used with option '--headers'/,
        );
        fails(await f.run(["replay"]), 2, /missing required argument 'stream'/);
      },
    );
  } finally {
    for (const p of procs) {
      p.interrupt();
      await p.done;
    }
    await f.stop();
  }
});
