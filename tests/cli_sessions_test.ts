/** `natsgate sessions list|tail|kick` run in process (tests/_cli.ts) against real gateways
 * (tests/_harness.ts) with real WebSocket clients: the CLI reaches the gateways only through NATS.
 * @module */

import assert from "node:assert/strict";
import { Stack, TestClient } from "./_harness.ts";
import { type CliProcess, fails, ok, runCli, startCli } from "./_cli.ts";
import type { SessionEventRecord, SessionInfo } from "../src/nats/control.ts";

const run = (
  args: string[],
  env: Record<string, string>,
  opts: { tty?: boolean; input?: string } = {},
) => runCli(args, { env, ...opts });

/** Starts `sessions tail …` and waits until its subscription is in place. */
async function tail(args: string[], env: Record<string, string>): Promise<CliProcess> {
  const p = startCli(["sessions", "tail", ...args], { env });
  await p.until((p) => p.stderr.includes("tailing "), "tail ready");
  return p;
}

Deno.test("sessions: list, tail and kick across gateways", async (t) => {
  await using stack = await Stack.start({ gateway: { id: "gw-a" } });
  const env = { NATSGATE_NATS: stack.nats.url };
  const extra = await stack.extraGateway({ id: "gw-b" });
  const procs: CliProcess[] = [];
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
      const table = ok(await run(["sessions", "list", "--timeout", "500ms"], env, { tty: true }));
      assert.match(table.stdout, /^SESSION\s+GATEWAY\s+USER\s+REMOTE\s+SINCE\s+SUBS\s+IN\s+OUT$/m);
      const aliceId = stack.gateway.sessions("alice")[0].id;
      const row = table.stdout.split("\n").find((l) => l.startsWith(aliceId));
      assert.ok(row, table.stdout);
      assert.match(row, /\bgw-a\s+alice\s+127\.0\.0\.1:\d+\s+\S+Z \(\S+\)\s+1\s+\d+\s+\d+$/);
      assert.equal(table.stderr, "3 sessions on 2 gateways\n", "the summary goes to stderr");

      // Piped: no header, tab-separated fields, the summary still on stderr.
      const piped = ok(await run(["sessions", "list", "--timeout", "500ms"], env));
      const lines = piped.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 3, piped.stdout);
      const fields = lines.find((l) => l.startsWith(aliceId))!.split("\t");
      assert.deepEqual(fields.slice(0, 3), [aliceId, "gw-a", "alice"]);
      assert.match(fields[4], /^\S+Z$/);
      assert.equal(fields[5], "1");
      assert.ok(!piped.stdout.includes("\x1b["), "no colour when piped");

      const none = await run(["sessions", "list", "--user", "nobody", "--timeout", "300ms"], env);
      assert.equal(none.stdout, "");
      assert.match(none.stderr, /no sessions \(2 gateways\)/);
    });

    await t.step("tail prints live events, filtered, one JSON object per line", async () => {
      const t = await tail(
        ["--json", "--event", "connect", "--user", "carol", "--count", "1"],
        env,
      );
      procs.push(t);
      await stack.client("dave"); // filtered out by --user
      const carol = await stack.client("carol");
      ok(await t.done);
      const lines = t.lines();
      assert.equal(lines.length, 1, t.stdout);
      const e = JSON.parse(lines[0]) as SessionEventRecord;
      assert.equal(e.event, "connect");
      assert.equal(e.user, "carol");
      assert.equal(e.gateway, "gw-a");
      assert.equal(e.session, stack.gateway.sessions("carol")[0].id);
      await carol.close();
    });

    await t.step("tail in text form; Ctrl-C exits 0", async () => {
      const p = await tail(["--user", "erin"], env);
      procs.push(p);
      const erin = await stack.client("erin");
      await erin.close();
      await p.until((p) => /disconnect/.test(p.stdout), "the disconnect event");
      p.interrupt();
      ok(await p.done);
      const lines = p.lines();
      assert.match(
        lines[0],
        /^\S+Z connect\s+session=\S+ user=erin gateway=gw-a remote=127\.0\.0\.1/,
      );
      assert.ok(lines.some((l) => /disconnect\s+session=\S+ user=erin .*by=client/.test(l)));
      assert.ok(!p.stdout.includes("\x1b["), "no colour when stdout is not a terminal");
    });

    await t.step("tail refuses an unknown --event instead of tailing nothing", async () => {
      fails(await run(["sessions", "tail", "--event", "bogus"], env), 2, /'bogus' is invalid/);
    });

    await t.step("kick asks on a terminal, refuses without one unless --yes", async () => {
      const id = stack.gateway.sessions("bob")[0].id;
      fails(await run(["sessions", "kick", id], env), 1, /refusing to kick a session .*--yes/);
      const no = await run(["sessions", "kick", id], env, { tty: true, input: "n\n" });
      assert.equal(no.code, 1);
      assert.match(
        no.stderr,
        new RegExp(`^close session ${id} \\(code 4000\\)\\? \\[y/N\\] natsgate: aborted`),
      );
      const eof = await run(["sessions", "kick", id], env, { tty: true });
      assert.equal(eof.code, 1);
      assert.match(eof.stderr, /\[y\/N\] \nnatsgate: aborted; nothing done\n$/);
      // Proof nothing was kicked: bob's session is still listed by the gateway after the refusals.
      assert.equal(stack.gateway.sessions("bob").length, 1);
    });

    await t.step("kick closes the session with 4000 and shows in tail", async () => {
      const t = await tail(["--json", "--event", "disconnect", "--count", "1"], env);
      procs.push(t);
      const id = stack.gateway.sessions("bob")[0].id;
      const r = ok(
        await run(["sessions", "kick", id, "--reason", "bye bob"], env, {
          tty: true,
          input: "y\n",
        }),
      );
      assert.equal(r.stdout, `kicked session ${id} on gateway gw-a\n`);
      const closed = await bob.closed;
      assert.equal(closed.code, 4000);
      assert.equal(closed.reason, "bye bob");
      ok(await t.done);
      const e = JSON.parse(t.lines()[0]);
      assert.equal(e.session, id);
      assert.equal(e.user, "bob");
      assert.equal(e.kicked, true);
      assert.equal(e.reason, "bye bob");
      assert.equal(stack.gateway.sessions("bob").length, 0);

      const onB = extra.sessions()[0].id;
      const json = ok(await run(["sessions", "kick", onB, "--json", "--yes"], env));
      assert.deepEqual(JSON.parse(json.stdout), { gateway: "gw-b", session: onB, kicked: true });
      assert.equal((await alice2.closed).code, 4000);
    });

    await t.step("kick of an unknown session fails with one line", async () => {
      const r = await run(["sessions", "kick", "no-such-session", "--timeout", "300ms", "-y"], env);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, "natsgate: no gateway has session no-such-session\n");
    });
  } finally {
    for (const p of procs) {
      p.interrupt();
      await p.done;
    }
    await extra.close();
  }
});

Deno.test("sessions: no gateway at all", async () => {
  await using stack = await Stack.start();
  await stack.gateway.close();
  const env = { NATSGATE_NATS: stack.nats.url };
  const r = ok(await run(["sessions", "list", "--timeout", "300ms"], env));
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, "no sessions (no gateway answered)\n");
  const json = await run(["sessions", "list", "--json", "--timeout", "300ms"], env);
  assert.equal(json.stdout, "[]\n");
  const kick = await run(["sessions", "kick", "abc", "--timeout", "300ms", "--yes"], env);
  fails(kick, 1, /^natsgate: no gateway has session abc$/);
});
