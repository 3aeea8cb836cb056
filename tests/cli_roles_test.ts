/** The real CLI against a real nats-server: `caps role ...`, `caps grant/revoke --role`,
 * `caps list --role`, `caps check` with provenance and expanded templates, `caps key`.
 * @module */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsServer } from "../src/nats/launcher.ts";
import { userKey } from "../src/auth/user_key.ts";
import { NatsgateProcess } from "./_harness.ts";

Deno.test("caps role, grant --role, list --role, check with provenance, key", async (t) => {
  await using nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url });
  const kv = await new Kvm(nc).create("auth", { history: 10 });
  const env = { NATSGATE_NATS: nats.url };
  const run = (...args: string[]) => NatsgateProcess.run(["caps", ...args], env);
  const ok = async (...args: string[]) => {
    const r = await run(...args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const fails = async (code: number, re: RegExp, ...args: string[]) => {
    const r = await run(...args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
  };
  try {
    await t.step("role set/get validate like user documents, stricter on templates", async () => {
      await ok("role", "set", "staff", "--json", '{"subjects":["session.{user}.{session}.>"]}');
      assert.deepEqual(JSON.parse(await ok("role", "get", "staff", "--json")), {
        subjects: ["session.{user}.{session}.>"],
      });
      await fails(1, /a role cannot list roles/, "role", "set", "r", "--json", '{"roles":["x"]}');
      await fails(
        1,
        /placeholder must be a whole token/,
        "role",
        "set",
        "r",
        "--json",
        '{"subjects":["a{user}b"]}',
      );
      await fails(2, /invalid role name/, "role", "set", "a.b", "--json", "{}");
      await fails(1, /no role ghost/, "role", "get", "ghost");
      assert.equal(await kv.get("roles.r"), null, "nothing written");
    });
    await t.step("grant and revoke --role are compare-and-set edits of the role", async () => {
      await ok("grant", "--role", "staff", "--subject", "news.>");
      assert.deepEqual((await kv.get("roles.staff"))!.json(), {
        subjects: ["session.{user}.{session}.>", "news.>"],
      });
      await ok("revoke", "--role", "staff", "--subject", "news.>");
      assert.deepEqual((await kv.get("roles.staff"))!.json(), {
        subjects: ["session.{user}.{session}.>"],
      });
      await fails(
        2,
        /exactly one of USER or --role/,
        "grant",
        "bob",
        "--role",
        "staff",
        "--subject",
        "x",
      );
    });
    await t.step("list --role lists the users holding it", async () => {
      await kv.put(userKey("bob.x"), JSON.stringify({ roles: ["staff"], publish: ["p"] }));
      await kv.put(userKey("carol"), JSON.stringify({ subjects: ["c"] }));
      const rows = JSON.parse(await ok("list", "--role", "staff", "--json"));
      assert.deepEqual(rows.map((r: { user: string }) => r.user), ["bob.x"]);
      assert.match(await ok("role", "list"), /^staff\s+\d+\s+subjects 1/m);
    });
    await t.step("check explains the source and the expanded pattern", async () => {
      const v = JSON.parse(
        await ok("check", "bob.x", "sub", "session.bob=2Ex.s1.state", "--session", "s1", "--json"),
      );
      assert.equal(v.allowed, true);
      assert.deepEqual(v.from, [{
        source: "role staff (user document)",
        pattern: "session.bob=2Ex.s1.>",
        template: "session.{user}.{session}.>",
      }]);
      const text = await ok("check", "bob.x", "pub", "p");
      assert.match(text, /from own grant: p$/m);
      // Without a session id, {session} patterns grant nothing.
      await fails(3, /denied/, "check", "bob.x", "sub", "session.bob=2Ex.s1.state");
      // Default role and claimed roles, and a claim naming a missing role.
      await ok("role", "set", "base", "--json", '{"subjects":["org.{claim:org}.>"]}');
      const d = JSON.parse(
        await ok(
          "check",
          "carol",
          "sub",
          "org.a=2Eb.x",
          "--default-role",
          "base",
          "--claims",
          '{"org":"a.b"}',
          "--json",
        ),
      );
      assert.deepEqual(d.from.map((g: { source: string }) => g.source), [
        "role base (default role)",
      ]);
      const c = JSON.parse(
        await ok(
          "check",
          "carol",
          "sub",
          "org.o.x",
          "--jwt-roles-claim",
          "roles",
          "--claims",
          '{"roles":["base","ghost"],"org":"o"}',
          "--json",
        ),
      );
      assert.deepEqual(c.from.map((g: { source: string }) => g.source), [
        "role base (token claim)",
      ]);
      assert.deepEqual(c.notes, ["role ghost does not exist: it grants nothing"]);
    });
    await t.step("key prints the encoded token", async () => {
      assert.equal((await ok("key", "bob.x")).trim(), "bob=2Ex");
      assert.equal((await ok("key", ">")).trim(), "=3E");
      await fails(2, /invalid user id/, "key", "");
    });
    await t.step("history and delete", async () => {
      const h = JSON.parse(await ok("role", "history", "staff", "--json"));
      assert.equal(h.length, 3);
      await ok("role", "delete", "staff", "--yes");
      await fails(1, /no role staff/, "role", "get", "staff");
    });
  } finally {
    await nc.close();
  }
});
