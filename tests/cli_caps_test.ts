/** `natsgate caps` against a real nats-server: every subcommand, bad input, missing buckets and
 * users (`--create`), confirmation of destructive actions, the audit view (history and seed
 * diffs), `--json`, compare-and-set conflicts and `$EDITOR` round trips (editor scripts in a temp dir).
 * @module */

import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats/launcher.ts";
import { userKey } from "../src/auth/user_key.ts";
import { type CliRun, fails, ok, runCli } from "./_cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Options of {@link Fixture.run}. */
interface RunOpts {
  /** Extra environment (the command sees only this and NATSGATE_NATS). */
  env?: Record<string, string>;
  /** stdin text (answers to prompts, `-` sources). */
  stdin?: string;
  /** A fake terminal on stdin, stdout and stderr. */
  tty?: boolean;
}

/** The test's view of the bucket, to check what the CLI wrote (or did not). */
class Fixture {
  constructor(readonly nats: NatsServer, readonly nc: NatsConnection, readonly kv: KV) {}

  static async start(): Promise<Fixture> {
    const nats = await NatsServer.start();
    const nc = await connect({ servers: nats.url });
    const kv = await new Kvm(nc).create("auth", { history: 10 });
    return new Fixture(nats, nc, kv);
  }

  get env(): Record<string, string> {
    return { NATSGATE_NATS: this.nats.url };
  }

  /** Runs `natsgate <args>` in process against this server. */
  run(args: string[], opts: RunOpts = {}): Promise<CliRun> {
    return runCli(args, {
      env: { ...this.env, ...opts.env },
      ...(opts.stdin === undefined ? {} : { input: opts.stdin }),
      tty: opts.tty ?? false,
    });
  }

  /** The stored document of `user`, or null. */
  async doc(user: string): Promise<unknown> {
    const e = await this.kv.get(userKey(user));
    return e && e.operation === "PUT" ? e.json() : null;
  }

  async revision(user: string): Promise<number> {
    return (await this.kv.get(userKey(user)))?.revision ?? 0;
  }

  async stop(): Promise<void> {
    await this.nc.close();
    await this.nats.stop();
  }
}

async function bucketNames(nc: NatsConnection): Promise<string[]> {
  const names: string[] = [];
  for await (const s of new Kvm(nc).list()) names.push(s.bucket);
  return names;
}

/** `text` in ANSI green / red, as the CLI colours it on a terminal. */
const green = (text: string) => `\x1b[32m${text}\x1b[0m`;
const red = (text: string) => `\x1b[31m${text}\x1b[0m`;

/** Writes an executable editor script into `dir`. */
async function editorScript(dir: string, name: string, body: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\nset -e\n${body}\n`, { mode: 0o755 });
  return path;
}

Deno.test("caps: every subcommand against a real nats-server", async (t) => {
  const f = await Fixture.start();
  const tmp = await Deno.makeTempDir({ prefix: "natsgate-caps-test-" });
  try {
    await t.step("set from --json, --file and stdin; get pretty and --json", async () => {
      const doc = { subjects: ["chat.room.*"], publish: ["chat.room.1"] };
      const r = ok(await f.run(["caps", "set", "alice", "--json", JSON.stringify(doc)]));
      assert.equal(r.stdout, "", "a summary, no data");
      assert.match(r.stderr, /set capabilities of alice \(revision \d+\)/);
      assert.deepEqual(await f.doc("alice"), doc);

      const got = ok(await f.run(["caps", "get", "alice"]));
      assert.equal(got.stdout, JSON.stringify(doc, null, 2) + "\n");
      const compact = ok(await f.run(["caps", "get", "alice", "--json"]));
      assert.equal(compact.stdout, JSON.stringify(doc) + "\n");

      const file = `${tmp}/bob.json`;
      await Deno.writeTextFile(file, JSON.stringify({ buckets: { todos: ["user.bob.>"] } }));
      ok(await f.run(["caps", "set", "bob", "--file", file]));
      assert.deepEqual(await f.doc("bob"), { buckets: { todos: ["user.bob.>"] } });

      ok(await f.run(["caps", "set", "carol", "-"], { stdin: '{"streams":{"CHAT":[">"]}}' }));
      assert.deepEqual(await f.doc("carol"), { streams: { CHAT: [">"] } });
    });

    await t.step("set rejects bad input naming the field and writes nothing", async () => {
      ok(await f.run(["caps", "set", "dave", "--json", '{"subjects":["ok.>"]}']));
      const before = await f.revision("dave");
      const cases: Array<[string, RegExp]> = [
        ["{not json", /invalid capabilities: invalid JSON/],
        ['["subjects"]', /capabilities must be a JSON object/],
        ['{"subjects":"chat.>"}', /subjects: must be an array of strings/],
        ['{"subjects":[42]}', /subjects\[0\]: must be a string/],
        ['{"publish":["a..b"]}', /publish\[0\]:/],
        ['{"buckets":{"bad bucket":[">"]}}', /buckets\W+bad bucket\W+: bucket names/],
        ['{"subjects":["a.>"],"admin":true}', /admin: unknown field/],
      ];
      for (const [input, re] of cases) {
        fails(await f.run(["caps", "set", "dave", "--json", input]), 1, re);
        fails(await f.run(["caps", "set", "erin", "-"], { stdin: input }), 1, re);
      }
      assert.equal(await f.revision("dave"), before, "dave unchanged");
      assert.deepEqual(await f.doc("dave"), { subjects: ["ok.>"] });
      assert.equal(await f.kv.get(userKey("erin")), null, "erin never written");
      fails(await f.run(["caps", "set", "erin"]), 2, /exactly one of/);
      fails(
        await f.run(["caps", "set", "erin", "--file", `${tmp}/missing.json`]),
        1,
        /cannot read/,
      );
    });

    await t.step("get of an unknown user fails", async () => {
      fails(await f.run(["caps", "get", "ghost"]), 1, /no capabilities for ghost$/);
    });

    await t.step(
      "grant and revoke: no duplicates, exact removal, empty entries dropped",
      async () => {
        ok(
          await f.run([
            "caps",
            "grant",
            "frank",
            "--subject",
            "news.*",
            "--subject",
            "news.*",
            "--publish",
            "news.frank",
            "--bucket",
            "todos=user.frank.>",
            "--stream",
            "CHAT=chat.>",
            "--create",
          ]),
        );
        const again = ok(
          await f.run(["caps", "grant", "frank", "--subject", "news.*", "--command", "todo.add"]),
        );
        assert.match(again.stdout, /\+ commands todo\.add/);
        assert.doesNotMatch(again.stdout, /news/);
        assert.deepEqual(await f.doc("frank"), {
          subjects: ["news.*"],
          publish: ["news.frank"],
          buckets: { todos: ["user.frank.>"] },
          streams: { CHAT: ["chat.>"] },
          commands: ["todo.add"],
        });
        const rev = await f.revision("frank");
        const same = ok(await f.run(["caps", "grant", "frank", "--subject", "news.*"]));
        assert.equal(same.stdout, "");
        assert.match(same.stderr, /nothing to grant/);
        assert.equal(await f.revision("frank"), rev, "no write when nothing changes");

        const r = ok(
          await f.run([
            "caps",
            "revoke",
            "frank",
            "--bucket",
            "todos=user.frank.>",
            "--subject",
            "news",
            "--json",
          ]),
        );
        const out = JSON.parse(r.stdout);
        assert.deepEqual(out.revoked, { buckets: { todos: ["user.frank.>"] } });
        assert.deepEqual(await f.doc("frank"), {
          subjects: ["news.*"],
          publish: ["news.frank"],
          streams: { CHAT: ["chat.>"] },
          commands: ["todo.add"],
        });
        fails(
          await f.run(["caps", "grant", "frank", "--subject", "bad subject"]),
          1,
          /subjects\[0\]/,
        );
        fails(await f.run(["caps", "grant", "frank"]), 2, /nothing to grant/);
        fails(
          await f.run(["caps", "revoke", "ghost", "--subject", "a"]),
          1,
          /no capabilities for ghost/,
        );
      },
    );

    await t.step("concurrent grants both land (compare-and-set with retry)", async () => {
      const subjects = Array.from({ length: 4 }, (_, i) => `race.${i}`);
      const runs = await Promise.all(
        subjects.map((s) => f.run(["caps", "grant", "gina", "--subject", s, "--create"])),
      );
      for (const r of runs) ok(r);
      const doc = await f.doc("gina") as { subjects: string[] };
      assert.deepEqual([...doc.subjects].sort(), subjects);
    });

    await t.step("list decodes user ids and summarizes", async () => {
      const odd = "o'neil@example.com/*";
      ok(await f.run(["caps", "set", odd, "--json", '{"subjects":["x.>"]}']));
      await f.kv.put(userKey("broken"), "{not json");
      const r = ok(await f.run(["caps", "list"]));
      // Piped: tab-separated rows, no header; the count on stderr.
      assert.doesNotMatch(r.stdout, /USER/);
      assert.match(r.stdout, /^alice\t\d+\tsubjects 1, publish 1, commands 0, buckets 0/m);
      assert.ok(r.stdout.split("\n").some((l) => l.split("\t")[0] === odd), r.stdout);
      assert.match(r.stdout, /^broken\t\d+\tINVALID/m);
      assert.match(r.stderr, /^\d+ users in bucket auth, 1 invalid \(they grant nothing\)$/m);
      const j = JSON.parse(ok(await f.run(["caps", "list", "--json"])).stdout) as Array<
        { user: string; key: string; valid: boolean; capabilities: unknown }
      >;
      const entry = j.find((e) => e.user === odd)!;
      assert.equal(entry.key, userKey(odd));
      assert.deepEqual(entry.capabilities, { subjects: ["x.>"] });
      assert.equal(j.find((e) => e.user === "broken")!.valid, false);
      await f.kv.delete(userKey("broken"));
    });

    await t.step("delete asks: refuses without a TTY, --yes deletes", async () => {
      ok(await f.run(["caps", "set", "hank", "--json", '{"subjects":["h.>"]}']));
      fails(await f.run(["caps", "delete", "hank"]), 1, /refusing to delete .*--yes/);
      assert.deepEqual(await f.doc("hank"), { subjects: ["h.>"] });
      const r = ok(await f.run(["caps", "delete", "hank", "--yes"]));
      assert.match(r.stderr, /deleted capabilities of hank/);
      assert.equal(await f.doc("hank"), null);
      fails(await f.run(["caps", "get", "hank"]), 1, /no capabilities for hank/);
      fails(await f.run(["caps", "delete", "hank", "--yes"]), 1, /no capabilities for hank/);
    });

    await t.step("history: patterns added and removed per revision, who and when", async () => {
      const as = (actor: string) => ({ env: { NATSGATE_ACTOR: actor } });
      ok(await f.run(["caps", "set", "ivy", "--json", '{"subjects":["a"]}'], as("ada@desk")));
      ok(await f.run(["caps", "grant", "ivy", "--publish", "b", "--bucket", "todos=t.>"]));
      ok(await f.run(["caps", "revoke", "ivy", "--subject", "a"], as("bob@ci")));
      await f.kv.put(userKey("ivy"), '{"publish":["b"],"commands":["c"]}'); // another tool
      ok(await f.run(["caps", "delete", "ivy", "--yes"], as("ada@desk")));
      const r = ok(await f.run(["caps", "history", "ivy"]));
      // Piped: one tab-separated row per change: REV TIME OP BY CHANGE.
      const rows = r.stdout.trimEnd().split("\n").map((l) => l.split("\t"));
      assert.deepEqual(rows.map((c) => [c[2], c[3], c[4]]), [
        ["PUT", "ada@desk", "+ subjects a"],
        ["PUT", rows[1][3], "+ buckets todos=t.>"],
        ["PUT", rows[1][3], "+ publish b"],
        ["PUT", "bob@ci", "- subjects a"],
        ["PUT", "-", "- buckets todos=t.>"],
        ["PUT", "-", "+ commands c"],
        ["DEL", "ada@desk", "- commands c"],
        ["DEL", "ada@desk", "- publish b"],
      ], r.stdout);
      assert.match(rows[1][3], /.+/, "the default actor is user@host");
      for (const c of rows) assert.ok(!Number.isNaN(Date.parse(c[1])), c[1]);
      assert.equal(new Set(rows.map((c) => c[0])).size, 5, "five revisions");

      const j = JSON.parse(ok(await f.run(["caps", "history", "ivy", "--json"])).stdout);
      assert.deepEqual(j.map((e: { operation: string }) => e.operation), [
        "PUT",
        "PUT",
        "PUT",
        "PUT",
        "DEL",
      ]);
      assert.deepEqual(j[1].added, { buckets: { todos: ["t.>"] }, publish: ["b"] });
      assert.deepEqual(j[1].removed, {});
      assert.deepEqual(j[1].capabilities, {
        subjects: ["a"],
        publish: ["b"],
        buckets: { todos: ["t.>"] },
      });
      assert.deepEqual([j[2].actor, j[2].removed], ["bob@ci", { subjects: ["a"] }]);
      assert.equal(j[3].actor, null, "written without the CLI: no actor");
      assert.deepEqual(j[4].removed, { commands: ["c"], publish: ["b"] });
      assert.ok(!Number.isNaN(Date.parse(j[0].time)));
      fails(await f.run(["caps", "history", "nobody"]), 1, /no capabilities for nobody$/);
    });

    await t.step("seed: validated whole, --dry-run diff per user, --replace", async () => {
      const bucket = ["--auth-bucket", "seedtest"];
      const bad = `${tmp}/bad-seed.json`;
      await Deno.writeTextFile(
        bad,
        JSON.stringify({ ok1: { subjects: ["a.>"] }, bad1: { subjects: ["a b"] } }),
      );
      fails(await f.run(["caps", "seed", bad, ...bucket, "--create"]), 1, /"bad1": subjects\[0\]/);
      fails(
        await f.run(["caps", "seed", "-", ...bucket, "--create"], { stdin: "[1]" }),
        1,
        /JSON object/,
      );
      assert.ok(
        !(await bucketNames(f.nc)).includes("seedtest"),
        "nothing written, not even the bucket",
      );

      const seed1 = `${tmp}/seed1.json`;
      await Deno.writeTextFile(
        seed1,
        JSON.stringify({
          u1: { subjects: ["u1.>"] },
          u2: { publish: ["u2.x"] },
          u3: {},
        }),
      );
      fails(
        await f.run(["caps", "seed", seed1, "--dry-run", ...bucket]),
        1,
        /auth bucket seedtest does not exist \(from --auth-bucket\); pass --create/,
      );
      const dry = ok(await f.run(["caps", "seed", seed1, "--dry-run", "--create", ...bucket]));
      assert.equal(dry.stdout, "+ u1\n    + subjects u1.>\n+ u2\n    + publish u2.x\n+ u3\n");
      assert.match(dry.stderr, /would seed \(would create bucket seedtest\): 3 added, 0 changed/);
      assert.ok(!(await bucketNames(f.nc)).includes("seedtest"), "a dry run creates nothing");
      const first = ok(await f.run(["caps", "seed", seed1, "--create", ...bucket]));
      assert.match(first.stderr, /seeded: 3 added/);
      const kv = await new Kvm(f.nc).open("seedtest");
      assert.deepEqual((await kv.get(userKey("u2")))!.json(), { publish: ["u2.x"] });

      const seed2 = `${tmp}/seed2.json`;
      await Deno.writeTextFile(
        seed2,
        JSON.stringify({
          u1: { subjects: ["u1.>"] },
          u2: { publish: ["u2.y"], buckets: { todos: ["u2.>"] } },
          u4: {},
        }),
      );
      const text = ok(await f.run(["caps", "seed", seed2, "--replace", "--dry-run", ...bucket]));
      assert.equal(
        text.stdout,
        [
          "+ u4",
          "~ u2",
          "    + buckets todos=u2.>",
          "    - publish u2.x",
          "    + publish u2.y",
          "- u3",
          "",
        ].join("\n"),
      );
      assert.match(text.stderr, /would seed: 1 added, 1 changed, 1 removed, 1 unchanged/);
      const plan = JSON.parse(
        ok(await f.run(["caps", "seed", seed2, "--replace", "--dry-run", "--json", ...bucket]))
          .stdout,
      );
      assert.deepEqual(plan, {
        added: ["u4"],
        changed: ["u2"],
        removed: ["u3"],
        unchanged: ["u1"],
        dry_run: true,
        changes: {
          u2: {
            added: { buckets: { todos: ["u2.>"] }, publish: ["u2.y"] },
            removed: { publish: ["u2.x"] },
          },
          u4: { added: {}, removed: {} },
          u3: { added: {}, removed: {} },
        },
      });
      assert.deepEqual((await kv.get(userKey("u2")))!.json(), { publish: ["u2.x"] }, "dry run");

      // --replace removes users: refused without a terminal unless --yes, and nothing is written.
      fails(
        await f.run(["caps", "seed", seed2, "--replace", ...bucket]),
        1,
        /refusing to remove users with seed --replace without confirmation: pass --yes/,
      );
      assert.deepEqual((await kv.get(userKey("u2")))!.json(), { publish: ["u2.x"] }, "refused");
      assert.equal(await kv.get(userKey("u4")), null, "refused: not even the additions");

      const noReplace = ok(await f.run(["caps", "seed", seed2, "--json", ...bucket]));
      assert.deepEqual(JSON.parse(noReplace.stdout).removed, []);
      assert.ok((await kv.get(userKey("u3")))?.operation === "PUT", "u3 kept without --replace");
      ok(await f.run(["caps", "seed", seed2, "--replace", "--yes", ...bucket]));
      assert.equal((await kv.get(userKey("u3")))?.operation, "DEL");
      assert.deepEqual((await kv.get(userKey("u2")))!.json(), {
        publish: ["u2.y"],
        buckets: { todos: ["u2.>"] },
      });
      assert.deepEqual((await kv.get(userKey("u4")))!.json(), {});
    });

    await t.step(
      "writes to a missing bucket fail unless --create; nothing is created",
      async () => {
        const typo = ["--auth-bucket", "auht"];
        const want =
          /^natsgate: auth bucket auht does not exist \(from --auth-bucket\); pass --create to create it$/;
        fails(await f.run(["caps", "set", "zed", "--json", "{}", ...typo]), 1, want);
        fails(await f.run(["caps", "grant", "zed", "--subject", "z", ...typo]), 1, want);
        fails(await f.run(["caps", "edit", "zed", ...typo], { env: { EDITOR: "true" } }), 1, want);
        const never = /^natsgate: auth bucket auht does not exist \(from --auth-bucket\)$/;
        fails(await f.run(["caps", "revoke", "zed", "--subject", "z", ...typo]), 1, never);
        fails(await f.run(["caps", "delete", "zed", "--yes", ...typo]), 1, never);
        assert.ok(!(await bucketNames(f.nc)).includes("auht"), "no bucket auht");

        const made = ok(await f.run(["caps", "set", "zed", "--json", "{}", "--create", ...typo]));
        assert.match(made.stderr, /created auth bucket auht/);
        assert.ok((await bucketNames(f.nc)).includes("auht"));
        const env = { env: { NATSGATE_AUTH_BUCKET: "auht2" } };
        fails(
          await f.run(["caps", "set", "zed", "--json", "{}"], env),
          1,
          /auth bucket auht2 does not exist \(from NATSGATE_AUTH_BUCKET\); pass --create/,
        );
      },
    );

    await t.step("grant to a user with no document fails unless --create", async () => {
      fails(
        await f.run(["caps", "grant", "alcie", "--subject", "x"]),
        1,
        /^natsgate: no capabilities for alcie; pass --create to grant to a new user$/,
      );
      assert.equal(await f.kv.get(userKey("alcie")), null, "the typo created nobody");
      const r = ok(await f.run(["caps", "grant", "newcomer", "--subject", "x", "--create"]));
      assert.equal(r.stdout, "+ subjects x\n");
      assert.deepEqual(await f.doc("newcomer"), { subjects: ["x"] });
    });

    await t.step("reads of a missing bucket fail clearly, never 'no users'", async () => {
      const typo = ["--auth-bucket", "doesnotexist"];
      const want = /^natsgate: auth bucket doesnotexist does not exist \(from --auth-bucket\)$/;
      for (
        const args of [
          ["list"],
          ["list", "--json"],
          ["get", "alice"],
          ["history", "alice"],
          ["check", "alice", "sub", "a"],
        ]
      ) {
        const r = await f.run(["caps", ...args, ...typo]);
        fails(r, 1, want);
        assert.equal(r.stdout, "", args.join(" "));
      }
      const empty = await bucketNames(f.nc);
      assert.ok(!empty.includes("doesnotexist"), "reads create nothing");
      // An existing but empty bucket is not an error.
      await new Kvm(f.nc).create("emptyauth");
      const r = ok(await f.run(["caps", "list", "--auth-bucket", "emptyauth"]));
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /no users in bucket emptyauth/);
      assert.equal(
        ok(await f.run(["caps", "list", "--json", "--auth-bucket", "emptyauth"])).stdout,
        "[]\n",
      );
    });

    await t.step(
      "check: allow with the granting rule (exit 0), deny with why (exit 3)",
      async () => {
        ok(
          await f.run([
            "caps",
            "set",
            "jo",
            "--json",
            JSON.stringify({
              subjects: ["chat.room.*", ">"],
              publish: ["chat.room.1"],
              commands: ["todo.add"],
              buckets: { todos: ["user.jo.>"] },
              streams: { CHAT: ["chat.room.1"] },
            }),
          ]),
        );
        const allow = ok(await f.run(["caps", "check", "jo", "sub", "chat.room.1"]));
        assert.match(allow.stdout, /^allow: .*granted by subjects: chat\.room\.\*$/m);
        const pub = ok(await f.run(["caps", "check", "jo", "pub", "chat.room.1"]));
        assert.match(pub.stdout, /granted by publish: chat\.room\.1/);

        const deny = await f.run(["caps", "check", "jo", "pub", "chat.room.2"]);
        assert.equal(deny.code, 3);
        assert.match(deny.stdout, /^deny: .*no pattern in publish matches chat\.room\.2$/m);
        assert.match(deny.stderr, /^natsgate: denied/);

        const sys = await f.run(["caps", "check", "jo", "sub", "$SYS.x"]);
        assert.equal(sys.code, 3, "a leading wildcard never reaches $ subjects");

        const kv = JSON.parse(
          ok(
            await f.run([
              "caps",
              "check",
              "jo",
              "kv_sub",
              "todos",
              "--pattern",
              "user.jo.a",
              "--json",
            ]),
          ).stdout,
        );
        assert.deepEqual(kv, {
          user: "jo",
          op: "kv_sub",
          target: "todos",
          pattern: "user.jo.a",
          allowed: true,
          rule: "buckets.todos: user.jo.>",
          from: [{ source: "own grant", pattern: "user.jo.>", template: "user.jo.>" }],
          roles: [],
          notes: [],
        });
        const kvDeny = await f.run(["caps", "check", "jo", "kv_sub", "todos", "--json"]);
        assert.equal(kvDeny.code, 3);
        assert.match(JSON.parse(kvDeny.stdout).reason, /covers >/);
        const js = await f.run([
          "caps",
          "check",
          "jo",
          "js_sub",
          "CHAT",
          "--filter",
          "chat.room.2",
        ]);
        assert.equal(js.code, 3);
        ok(await f.run(["caps", "check", "jo", "js_sub", "CHAT", "--filter", "chat.room.1"]));
        ok(await f.run(["caps", "check", "jo", "cmd", "todo.add"]));

        const none = await f.run(["caps", "check", "nobody", "sub", "a"]);
        assert.equal(none.code, 3);
        assert.match(none.stdout, /no capabilities for nobody/);
        fails(await f.run(["caps", "check", "jo", "read", "a"]), 2, /unknown op/);
        fails(await f.run(["caps", "check", "jo", "pub", "a.*"]), 2, /invalid subject/);
        fails(await f.run(["caps", "check", "jo", "sub", "a", "--pattern", "x"]), 2, /--pattern/);
      },
    );

    await t.step("edit: invalid save re-opens with the error on top, then saves", async () => {
      ok(await f.run(["caps", "set", "kim", "--json", '{"subjects":["k.>"]}']));
      const dir = await Deno.makeTempDir({ dir: tmp });
      const editor = await editorScript(
        dir,
        "edit.sh",
        `n=$(cat "${dir}/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${dir}/n"
cp "$1" "${dir}/seen$n"
if [ $n -eq 1 ]; then printf '{"subjects": ["k >"], "nope": 1}' > "$1"
else printf '// a comment line\\n{"subjects": ["k.>", "kim.*"]}' > "$1"; fi`,
      );
      const r = ok(await f.run(["caps", "edit", "kim"], { env: { EDITOR: editor } }));
      assert.match(r.stderr, /saved capabilities of kim/);
      const seen1 = await Deno.readTextFile(`${dir}/seen1`);
      assert.ok(seen1.includes('"k.>"'), "the editor got the current document");
      const seen2 = await Deno.readTextFile(`${dir}/seen2`);
      assert.match(seen2, /^\/\/ natsgate: invalid capabilities/);
      assert.match(seen2, /nope: unknown field/);
      assert.match(seen2, /subjects\[0\]/);
      assert.ok(seen2.includes('{"subjects": ["k >"], "nope": 1}'), "the invalid text is kept");
      assert.deepEqual(await f.doc("kim"), { subjects: ["k.>", "kim.*"] });
    });

    await t.step("edit: editor failure or no change writes nothing", async () => {
      ok(await f.run(["caps", "set", "lee", "--json", '{"subjects":["l.>"]}']));
      const rev = await f.revision("lee");
      const dir = await Deno.makeTempDir({ dir: tmp });
      const failing = await editorScript(dir, "fail.sh", `echo '{"subjects":[]}' > "$1"; exit 3`);
      fails(
        await f.run(["caps", "edit", "lee"], { env: { EDITOR: failing } }),
        1,
        /editor exited with code 3/,
      );
      const unchanged = ok(await f.run(["caps", "edit", "lee"], { env: { EDITOR: "true" } }));
      assert.match(unchanged.stderr, /no changes/);
      assert.equal(await f.revision("lee"), rev);
      assert.deepEqual(await f.doc("lee"), { subjects: ["l.>"] });
      const invalidTwice = await editorScript(dir, "bad.sh", `echo '{"subjects": 1}' > "$1"`);
      fails(
        await f.run(["caps", "edit", "lee"], { env: { EDITOR: invalidTwice } }),
        1,
        /nothing written/,
      );
      assert.equal(await f.revision("lee"), rev);
    });

    await t.step("edit: a concurrent change is reported, never overwritten", async () => {
      ok(await f.run(["caps", "set", "max", "--json", '{"subjects":["m.>"]}']));
      const dir = await Deno.makeTempDir({ dir: tmp });
      const editor = await editorScript(
        dir,
        "race.sh",
        `"${Deno.execPath()}" run -A "${ROOT}main.ts" caps set max --nats ${f.nats.url} --json '{"subjects":["theirs.>"]}' 2>/dev/null
echo '{"subjects": ["mine.>"]}' > "$1"`,
      );
      const r = await f.run(["caps", "edit", "max"], { env: { EDITOR: editor } });
      fails(r, 1, /changed concurrently/);
      assert.deepEqual(await f.doc("max"), { subjects: ["theirs.>"] });
      const kept = /your edit is in (\S+)\)/.exec(r.stderr)?.[1];
      assert.ok(kept, r.stderr);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(kept)), { subjects: ["mine.>"] });
      await Deno.remove(kept);
    });

    await t.step("edit creates a missing user only with --create", async () => {
      const dir = await Deno.makeTempDir({ dir: tmp });
      const editor = await editorScript(dir, "new.sh", `echo '{"commands": ["n.x"]}' > "$1"`);
      fails(
        await f.run(["caps", "edit", "newbie"], { env: { EDITOR: editor } }),
        1,
        /no capabilities for newbie; pass --create to start a new document/,
      );
      assert.equal(await f.kv.get(userKey("newbie")), null);
      ok(await f.run(["caps", "edit", "newbie", "--create"], { env: { EDITOR: editor } }));
      assert.deepEqual(await f.doc("newbie"), { commands: ["n.x"] });
    });

    await t.step("delete on a terminal asks: n keeps, y deletes", async () => {
      ok(await f.run(["caps", "set", "olga", "--json", '{"subjects":["o.>"]}']));
      const no = await f.run(["caps", "delete", "olga"], { tty: true, stdin: "n\n" });
      assert.match(no.stderr, /delete the capabilities of olga\? \[y\/N\]/);
      assert.match(no.stderr, /natsgate: aborted; nothing done/);
      assert.equal(no.code, 1);
      assert.deepEqual(await f.doc("olga"), { subjects: ["o.>"] });
      const empty = await f.run(["caps", "delete", "olga"], { tty: true, stdin: "" });
      assert.equal(empty.code, 1, "end of input is a no");
      assert.deepEqual(await f.doc("olga"), { subjects: ["o.>"] });
      const yes = ok(await f.run(["caps", "delete", "olga"], { tty: true, stdin: "y\n" }));
      assert.match(yes.stderr, /deleted capabilities of olga/);
      assert.equal(await f.doc("olga"), null);
    });

    await t.step("seed --replace on a terminal asks after the plan: n writes nothing", async () => {
      const bucket = ["--auth-bucket", "seedtty", "--create"];
      const seedA = `${tmp}/seed-a.json`;
      await Deno.writeTextFile(seedA, JSON.stringify({ p1: { subjects: ["p1"] }, p2: {}, p3: {} }));
      ok(await f.run(["caps", "seed", seedA, ...bucket]));
      const kv = await new Kvm(f.nc).open("seedtty");
      const seedB = `${tmp}/seed-b.json`;
      await Deno.writeTextFile(seedB, JSON.stringify({ p1: { subjects: ["p1", "x"] }, p4: {} }));
      const before = (await kv.status()).values;

      const no = await f.run(["caps", "seed", seedB, "--replace", ...bucket], {
        tty: true,
        stdin: "n\n",
      });
      assert.equal(no.code, 1, no.stderr);
      const plan = no.stdout.split("\n");
      assert.ok(
        plan.includes(red("- p2")),
        `the plan, coloured, before the question: ${no.stdout}`,
      );
      assert.ok(plan.includes(`    ${green("+ subjects x")}`), no.stdout);
      assert.match(no.stderr, /remove 2 users \(p2, p3\) from bucket seedtty\? \[y\/N\]/);
      assert.match(no.stderr, /natsgate: aborted; nothing done/);
      assert.equal((await kv.status()).values, before, "nothing written, not even additions");
      assert.equal(await kv.get(userKey("p4")), null);
      assert.deepEqual((await kv.get(userKey("p1")))!.json(), { subjects: ["p1"] });

      const yes = ok(
        await f.run(["caps", "seed", seedB, "--replace", ...bucket], { tty: true, stdin: "yes\n" }),
      );
      assert.match(yes.stderr, /seeded: 1 added, 1 changed, 2 removed, 0 unchanged/);
      assert.equal((await kv.get(userKey("p2")))?.operation, "DEL");
      assert.deepEqual((await kv.get(userKey("p4")))!.json(), {});
      // Nothing left to remove: no question, even without a terminal.
      ok(await f.run(["caps", "seed", seedB, "--replace", ...bucket]));
    });

    await t.step(
      "on a terminal: aligned tables with a header, colour; piped: neither",
      async () => {
        ok(await f.run(["caps", "set", "tina", "--json", '{"subjects":["t.1"]}']));
        ok(await f.run(["caps", "grant", "tina", "--publish", "t.2", "--subject", "t.3"]));
        const list = ok(await f.run(["caps", "list"], { tty: true }));
        assert.match(list.stdout, /^USER +REV +CAPABILITIES$/m);
        assert.match(list.stdout, /^tina +\d+ +subjects 2, publish 1/m);
        assert.ok(!list.stdout.includes("\t"), "aligned with spaces");
        const hist = ok(await f.run(["caps", "history", "tina"], { tty: true }));
        const lines = hist.stdout.trimEnd().split("\n");
        assert.match(lines[0], /^REV +TIME +OP +BY +CHANGES$/);
        const head = /^\d+ +\S+Z +PUT +\S+ +/;
        assert.match(lines[1], head);
        assert.equal(lines[1].replace(head, ""), green("+ subjects t.1"));
        assert.match(lines[2], head);
        assert.equal(lines[2].replace(head, ""), green("+ publish t.2"));
        assert.match(lines[3], /^ {10,}\S/, "one revision, two changes: blank leading cells");
        assert.equal(lines[3].trimStart(), green("+ subjects t.3"));
        const plain = ok(
          await f.run(["caps", "history", "tina"], { tty: true, env: { NO_COLOR: "1" } }),
        );
        assert.ok(!plain.stdout.includes("\x1b["), "NO_COLOR");
        const piped = ok(await f.run(["caps", "history", "tina"]));
        assert.ok(!piped.stdout.includes("\x1b["), "no colour when piped");
        const check = ok(await f.run(["caps", "check", "tina", "sub", "t.1"], { tty: true }));
        assert.ok(check.stdout.startsWith(`${green("allow")}: tina may sub t.1`), check.stdout);
      },
    );

    await t.step("every subcommand's --help has examples; usage errors exit 2", async () => {
      const subs = ["get", "set", "edit", "grant", "revoke", "list", "delete", "history", "seed"];
      for (const sub of [...subs, "check"]) {
        const r = ok(await f.run(["caps", sub, "--help"]));
        assert.match(r.stdout, /\nExamples:\n/, sub);
        assert.ok(r.stdout.includes(`$ natsgate caps ${sub} `), `${sub}: ${r.stdout}`);
      }
      fails(await f.run(["caps", "grant", "frank"]), 2, /nothing to grant/);
      fails(await f.run(["caps", "set", "erin"]), 2, /exactly one of/);
      fails(await f.run(["caps", "revoke", "zed", "--subject", "z", "--create"]), 2, /--create/);
      fails(
        await f.run(["caps", "list", "--auth-bucket", "bad bucket"]),
        2,
        /invalid --auth-bucket/,
      );
    });

    await t.step("connection failures are one line", async () => {
      const r = await runCli(["caps", "get", "x", "--nats", "nats://127.0.0.1:1"]);
      fails(r, 1, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await f.stop();
  }
});
