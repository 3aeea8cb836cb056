/** `natsgate sessions list|tail|kick` as real subprocesses against real gateways (tests/_harness.ts)
 * with real WebSocket clients: the CLI reaches the in-process gateways only through NATS.
 * @module */

import assert from "node:assert/strict";
import { NatsgateProcess, Stack, TestClient, waitFor } from "./_harness.ts";
import type { SessionEventRecord, SessionInfo } from "../src/nats/control.ts";

/** `natsgate` as a subprocess, waiting for `sessions tail` to be ready. */
class Proc extends NatsgateProcess {
  /** Waits until stderr says the subscription is in place. */
  async ready(): Promise<void> {
    await waitFor(() => this.stderr.includes("tailing "), 15000, `tail ready: ${this.stderr}`);
  }
}

const run = NatsgateProcess.run;

Deno.test("sessions: list, tail and kick across gateways", async (t) => {
  await using stack = await Stack.start({ gateway: { id: "gw-a" } });
  const env = { NATSGATE_NATS: stack.nats.url };
  const extra = await stack.extraGateway({ id: "gw-b" });
  const procs: Proc[] = [];
  try {
    await stack.setCaps("alice", { subjects: ["x.>"] });
    const alice = await stack.client("alice");
    const bob = await stack.client("bob");
    const token = await stack.token("alice");
    const alice2 = await TestClient.connect(extra.wsUrl, { query: token });
    stack.clients.push(alice2);
    await alice2.next((e) => e.op === "cap_update", 5000, "cap_update on gw-b");

    await t.step("list --json gathers every gateway's sessions", async () => {
      const r = await run(["sessions", "list", "--json", "--timeout", "500ms"], env);
      assert.equal(r.code, 0, r.stderr);
      const list = JSON.parse(r.stdout) as SessionInfo[];
      assert.equal(list.length, 3, r.stdout);
      assert.deepEqual(
        list.map((s) => `${s.gateway}/${s.user}`).sort(),
        ["gw-a/alice", "gw-a/bob", "gw-b/alice"],
      );
      const ids = new Set([...stack.gateway.sessions(), ...extra.sessions()].map((s) => s.id));
      for (const s of list) assert.ok(ids.has(s.id));
    });

    await t.step("list filters by user and gateway; the table shows each session", async () => {
      const byUser = await run(
        ["sessions", "list", "--user", "alice", "--json", "--timeout", "500ms"],
        env,
      );
      assert.deepEqual(
        (JSON.parse(byUser.stdout) as SessionInfo[]).map((s) => s.gateway).sort(),
        ["gw-a", "gw-b"],
      );
      const byGw = await run(
        ["sessions", "list", "--gateway", "gw-b", "--json", "--timeout", "500ms"],
        env,
      );
      assert.deepEqual((JSON.parse(byGw.stdout) as SessionInfo[]).map((s) => s.user), ["alice"]);

      await alice.sub("x.y");
      const table = await run(["sessions", "list", "--timeout", "500ms"], env);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^SESSION\s+GATEWAY\s+USER\s+REMOTE\s+SINCE\s+SUBS\s+IN\s+OUT$/m);
      const aliceId = stack.gateway.sessions("alice")[0].id;
      const row = table.stdout.split("\n").find((l) => l.startsWith(aliceId));
      assert.ok(row, table.stdout);
      assert.match(row, /\bgw-a\s+alice\s+127\.0\.0\.1:\d+\s+\S+Z \(\S+\)\s+1\s+\d+\s+\d+$/);
      assert.match(table.stdout, /3 sessions on 2 gateways/);

      const none = await run(["sessions", "list", "--user", "nobody", "--timeout", "300ms"], env);
      assert.match(none.stdout, /no sessions \(2 gateways\)/);
    });

    await t.step("tail prints live events, filtered, one JSON object per line", async () => {
      const tail = new Proc(
        ["sessions", "tail", "--json", "--event", "connect", "--user", "carol", "--count", "1"],
        env,
      );
      procs.push(tail);
      await tail.ready();
      await stack.client("dave"); // filtered out by --user
      const carol = await stack.client("carol");
      const status = await tail.done;
      assert.equal(status.code, 0, tail.stderr);
      const lines = tail.lines();
      assert.equal(lines.length, 1, tail.stdout);
      const e = JSON.parse(lines[0]) as SessionEventRecord;
      assert.equal(e.event, "connect");
      assert.equal(e.user, "carol");
      assert.equal(e.gateway, "gw-a");
      assert.equal(e.session, stack.gateway.sessions("carol")[0].id);
      await carol.close();
    });

    await t.step("tail in text form; SIGINT exits 0", async () => {
      const tail = new Proc(["sessions", "tail", "--user", "erin"], env);
      procs.push(tail);
      await tail.ready();
      const erin = await stack.client("erin");
      await erin.close();
      await waitFor(() => /disconnect/.test(tail.stdout), 5000, `disconnect in ${tail.stdout}`);
      tail.child.kill("SIGINT");
      const status = await tail.done;
      assert.equal(status.code, 0, tail.stderr);
      const lines = tail.lines();
      assert.match(
        lines[0],
        /^\S+Z connect\s+session=\S+ user=erin gateway=gw-a remote=127\.0\.0\.1/,
      );
      assert.ok(lines.some((l) => /disconnect\s+session=\S+ user=erin .*by=client/.test(l)));
      assert.ok(!tail.stdout.includes("\x1b["), "no colour when stdout is not a terminal");
    });

    await t.step("kick closes the session with 4000 and shows in tail", async () => {
      const tail = new Proc(
        ["sessions", "tail", "--json", "--event", "disconnect", "--count", "1"],
        env,
      );
      procs.push(tail);
      await tail.ready();
      const id = stack.gateway.sessions("bob")[0].id;
      const r = await run(["sessions", "kick", id, "--reason", "bye bob"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `kicked session ${id} on gateway gw-a\n`);
      const closed = await bob.closed;
      assert.equal(closed.code, 4000);
      assert.equal(closed.reason, "bye bob");
      await tail.done;
      const e = JSON.parse(tail.lines()[0]);
      assert.equal(e.session, id);
      assert.equal(e.user, "bob");
      assert.equal(e.kicked, true);
      assert.equal(e.reason, "bye bob");
      assert.equal(stack.gateway.sessions("bob").length, 0);

      const onB = extra.sessions()[0].id;
      const json = await run(["sessions", "kick", onB, "--json"], env);
      assert.deepEqual(JSON.parse(json.stdout), { gateway: "gw-b", session: onB, kicked: true });
      assert.equal((await alice2.closed).code, 4000);
    });

    await t.step("kick of an unknown session fails with one line", async () => {
      const r = await run(["sessions", "kick", "no-such-session", "--timeout", "300ms"], env);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, "natsgate: no gateway has session no-such-session\n");
    });
  } finally {
    for (const p of procs) {
      p.kill();
      await p.done;
    }
    await extra.close();
  }
});

Deno.test("sessions: no gateway at all", async () => {
  await using stack = await Stack.start();
  await stack.gateway.close();
  const env = { NATSGATE_NATS: stack.nats.url };
  const r = await run(["sessions", "list", "--timeout", "300ms"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "no sessions (no gateway answered)\n");
  const json = await run(["sessions", "list", "--json", "--timeout", "300ms"], env);
  assert.equal(json.stdout, "[]\n");
  const kick = await run(["sessions", "kick", "abc", "--timeout", "300ms"], env);
  assert.equal(kick.code, 1);
  assert.match(kick.stderr, /^natsgate: no gateway has session abc$/m);
});
