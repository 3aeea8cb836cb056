/** Tests of effective capabilities: union of own and role grants, templates expanded per
 * session, fail closed per part, provenance of every grant.
 * @module */

import assert from "node:assert/strict";
import { type Capabilities, checkKv, checkSubscribe, parseCapabilities } from "./capabilities.ts";
import {
  decisionGrants,
  describeSource,
  EffectiveCache,
  effectiveCapabilities,
  type EffectiveInput,
} from "./effective.ts";

const ROLES = new Map<string, Capabilities | null>([
  ["viewer", { subjects: ["news.>", "session.{user}.{session}.state"] }],
  ["ops", { commands: ["ops.*"], buckets: { cfg: ["{claim:team}.>"] } }],
  ["broken", null],
]);

function eff(over: Partial<EffectiveInput> = {}) {
  return effectiveCapabilities({
    user: "bob",
    session: "s1",
    userDoc: null,
    roles: ROLES,
    ...over,
  });
}

Deno.test("effective: table of unions", () => {
  const cases: [string, Partial<EffectiveInput>, Capabilities, string[]][] = [
    ["nothing", {}, {}, []],
    ["own only", { userDoc: { subjects: ["a.>"] } }, { subjects: ["a.>"] }, []],
    ["own empty list kept", { userDoc: { subjects: [] } }, { subjects: [] }, []],
    [
      "own + role, templates expanded",
      { userDoc: { subjects: ["a.>"], roles: ["viewer"] } },
      { subjects: ["a.>", "news.>", "session.bob.s1.state"] },
      ["viewer"],
    ],
    [
      "duplicates once",
      { userDoc: { subjects: ["news.>"], roles: ["viewer"] } },
      { subjects: ["news.>", "session.bob.s1.state"] },
      ["viewer"],
    ],
    [
      "default role without a document",
      { policy: { defaultRole: "viewer" } },
      { subjects: ["news.>", "session.bob.s1.state"] },
      ["viewer"],
    ],
    [
      "missing and malformed roles grant nothing, the rest applies",
      { userDoc: { publish: ["p"], roles: ["nope", "broken"] } },
      { publish: ["p"] },
      [],
    ],
    [
      "claim roles, claim template",
      { policy: { rolesClaim: "roles" }, claims: { roles: ["ops", "ghost"], team: "a.b" } },
      { commands: ["ops.*"], buckets: { cfg: ["a=2Eb.>"] } },
      ["ops"],
    ],
    [
      "claim template without the claim grants nothing",
      { policy: { rolesClaim: "roles" }, claims: { roles: ["ops"] } },
      { commands: ["ops.*"], buckets: { cfg: [] } },
      ["ops"],
    ],
    [
      "hostile user id stays one token",
      { user: "x.>", policy: { defaultRole: "viewer" } },
      { subjects: ["news.>", "session.x=2E=3E.s1.state"] },
      ["viewer"],
    ],
  ];
  for (const [name, over, caps, roles] of cases) {
    const e = eff(over);
    assert.deepEqual(e.capabilities, caps, name);
    assert.deepEqual(e.roles, roles, name);
  }
});

Deno.test("effective: one session's subject is not another's", () => {
  const a = eff({ session: "s1", policy: { defaultRole: "viewer" } });
  const b = eff({ session: "s2", policy: { defaultRole: "viewer" } });
  assert.equal(checkSubscribe(a.set, "session.bob.s1.state").allowed, true);
  assert.equal(checkSubscribe(a.set, "session.bob.s2.state").allowed, false);
  assert.equal(checkSubscribe(b.set, "session.bob.s1.state").allowed, false);
  assert.equal(checkSubscribe(a.set, "session.bob.*.state").allowed, false);
  assert.equal(checkSubscribe(a.set, "session.>").allowed, false);
});

Deno.test("effective: the reserved auth bucket rule applies after expansion", () => {
  const e = eff({
    userDoc: { buckets: { "*": ["{user}.>"] } },
    compile: { reservedBuckets: ["auth"] },
  });
  assert.equal(checkKv(e.set, "todos", "bob.x").allowed, true);
  assert.equal(checkKv(e.set, "auth", "bob.x").allowed, false);
});

Deno.test("effective: provenance of a decision", () => {
  const e = eff({
    userDoc: { subjects: ["news.>"], roles: ["viewer"] },
    policy: { defaultRole: "viewer" },
  });
  const d = checkSubscribe(e.set, "news.x");
  const g = decisionGrants(e, d);
  assert.deepEqual(g.map((x) => describeSource(x.source)), [
    "own grant",
    "role viewer (user document, default role)",
  ]);
  const s = decisionGrants(e, checkSubscribe(e.set, "session.bob.s1.state"));
  assert.equal(s[0].template, "session.{user}.{session}.state");
  assert.deepEqual(decisionGrants(e, checkSubscribe(e.set, "x")), []);
  const k = eff({ policy: { rolesClaim: "r" }, claims: { r: "ops", team: "t" } });
  const kg = decisionGrants(k, checkKv(k.set, "cfg", "t.x"));
  assert.deepEqual(kg.map((x) => [x.scope, x.pattern, describeSource(x.source)]), [
    ["cfg", "t.>", "role ops (token claim)"],
  ]);
});

Deno.test("parseCapabilities: roles and templates", () => {
  const ok: [unknown, object?][] = [
    [{ roles: ["a", "b-c"] }],
    [{ buckets: { todos: ["user.{user}.*"] } }],
    [{ subjects: ["session.{user}.{session}.state", "org.{claim:org}.>"] }],
    [{ subjects: ["a{user}b"] }], // accepted by the gateway: that pattern grants nothing
  ];
  for (const [doc] of ok) assert.equal(parseCapabilities(doc).ok, true, JSON.stringify(doc));
  const bad: [unknown, object, string][] = [
    [{ roles: ["a.b"] }, {}, "roles[0]: role names use only A-Z a-z 0-9 _ -"],
    [{ roles: "a" }, {}, "roles: must be an array of strings"],
    [{ roles: ["a"] }, { kind: "role" }, "roles: a role cannot list roles"],
    [
      { subjects: ["a{user}b"] },
      { strictTemplates: true },
      "subjects[0]: placeholder must be a whole token: a{user}b",
    ],
    [{ buckets: { t: ["{claim:a b}"] } }, {}, "buckets.t[0]: "],
  ];
  for (const [doc, opts, err] of bad) {
    const r = parseCapabilities(doc, opts);
    assert.equal(r.ok, false, JSON.stringify(doc));
    if (!r.ok) assert.ok(r.errors[0].startsWith(err), `${r.errors[0]} / ${err}`);
  }
});

Deno.test("EffectiveCache: shared without templates, per session with them, never stale", () => {
  const cache = new EffectiveCache();
  const plain = new Map<string, Capabilities | null>([["r", { subjects: ["a.>"] }]]);
  const input = (user: string, session: string, roles = plain) => ({
    user,
    session,
    userDoc: null,
    roles,
    policy: { defaultRole: "r" },
  });
  const a = cache.get(input("a", "1"));
  assert.equal(cache.get(input("b", "2")), a, "same documents, no template: shared");
  const edited = new Map<string, Capabilities | null>([["r", { subjects: ["b.>"] }]]);
  const c = cache.get(input("a", "1", edited));
  assert.notEqual(c, a, "a new role document is a new result");
  assert.deepEqual(c.capabilities, { subjects: ["b.>"] });
  const tpl = new Map<string, Capabilities | null>([["r", { subjects: ["s.{session}"] }]]);
  const t1 = cache.get(input("a", "1", tpl));
  const t2 = cache.get(input("a", "2", tpl));
  assert.deepEqual([t1.capabilities.subjects, t2.capabilities.subjects], [["s.1"], ["s.2"]]);
  assert.deepEqual(cache.get(input("a", "1", new Map())).capabilities, {}, "role gone");
});
