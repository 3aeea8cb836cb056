/** Tests of capability documents and checks: strict parsing, subset rules, bucket/stream scoping.
 * Each denial names why; each grant names the pattern that granted it.
 * @module */

import assert from "node:assert/strict";
import {
  type Capabilities,
  type CapabilitySet,
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  type Decision,
  EMPTY_CAPABILITIES,
  parseCapabilities,
  parseCapabilitiesJson,
  summarizeCapabilities,
} from "./capabilities.ts";

const DOC = {
  subjects: ["chat.room.*", "articles.>"],
  publish: ["chat.room.*"],
  commands: ["articles.create", "todos.add"],
  buckets: { todos: ["user.123.*"], articles: [">"], "*": ["public.>"] },
  streams: { CHAT: ["chat.room.123"], AUDIT: [">"] },
};

Deno.test("parseCapabilities: valid documents", () => {
  const ok: unknown[] = [
    {},
    DOC,
    { subjects: [] },
    { buckets: {} },
    { streams: { ">": [">"] } },
    { buckets: { "*": ["*.x", "a.>"], ">": [">"] } },
    { subjects: ["$JS.API.>", ">"], publish: ["$NATSGATE.x"] },
    { streams: { "$SPECIAL": ["a.b"], "KV_x": [">"] } },
    Object.assign(Object.create(null), { subjects: ["a"] }),
  ];
  for (const d of ok) {
    const r = parseCapabilities(d);
    assert.ok(r.ok, `${JSON.stringify(d)}: ${r.ok ? "" : r.errors.join("; ")}`);
  }
  const r = parseCapabilities(DOC);
  assert.ok(r.ok);
  assert.deepEqual(r.value, DOC, "the value is a faithful copy");
  assert.deepEqual(parseCapabilitiesJson(JSON.stringify(DOC)), { ok: true, value: DOC });
  assert.deepEqual(parseCapabilitiesJson("{}"), { ok: true, value: {} });
});

Deno.test("parseCapabilities: strict, errors name the field", () => {
  class NotPlain {
    subjects = ["a"];
  }
  const sparse: unknown[] = ["a"];
  sparse[2] = "b";
  const cases: Array<[string, unknown, RegExp]> = [
    ["null", null, /^capabilities must be a JSON object$/],
    ["undefined", undefined, /JSON object/],
    ["array", [], /JSON object/],
    ["string", "x", /JSON object/],
    ["number", 1, /JSON object/],
    ["class instance", new NotPlain(), /JSON object/],
    ["Map", new Map([["subjects", ["a"]]]), /JSON object/],
    ["date", new Date(0), /JSON object/],
    ["unknown field", { admin: true }, /^admin: unknown field$/],
    ["near-miss field", { Subjects: ["a"] }, /^Subjects: unknown field$/],
    ["odd unknown field", { "a b\n": 1 }, /^"a b\\n": unknown field$/],
    ["subjects string", { subjects: "x" }, /^subjects: must be an array of strings$/],
    ["subjects null", { subjects: null }, /^subjects: must be an array/],
    ["subjects object", { subjects: { 0: "a" } }, /^subjects: must be an array/],
    ["subjects number", { subjects: [1] }, /^subjects\[0\]: must be a string$/],
    ["subjects null item", { subjects: ["a", null] }, /^subjects\[1\]: must be a string$/],
    ["nested array", { subjects: [["a"]] }, /^subjects\[0\]: must be a string$/],
    ["sparse array", { subjects: sparse }, /^subjects\[1\]: must be a string$/],
    ["empty token", { subjects: ["a..b"] }, /^subjects\[0\]: empty token$/],
    ["empty subject", { subjects: [""] }, /^subjects\[0\]: empty subject$/],
    ["whitespace", { publish: ["a b"] }, /^publish\[0\]: contains whitespace/],
    ["CR LF", { publish: ["a\r\nb"] }, /^publish\[0\]: contains whitespace/],
    ["U+2028", { commands: ["a\u2028"] }, /^commands\[0\]: contains whitespace/],
    [">", { commands: ["a.>.b"] }, /^commands\[0\]: '>' must be the last token$/],
    ["partial wildcard", { subjects: ["a*"] }, /^subjects\[0\]: '\*' and '>' must be whole/],
    ["long", { subjects: ["x".repeat(257)] }, /^subjects\[0\]: longer than 256 bytes$/],
    ["buckets array", { buckets: [] }, /^buckets: must be an object/],
    ["buckets null", { buckets: null }, /^buckets: must be an object/],
    ["bucket dotted", { buckets: { "a.b": [">"] } }, /^buckets\["a\.b"\]: bucket names/],
    ["bucket $", { buckets: { "$KV": [">"] } }, /^buckets\.\$KV: bucket names/],
    ["bucket *x", { buckets: { "*x": [">"] } }, /^buckets\.\*x: bucket names/],
    ["bucket empty", { buckets: { "": [">"] } }, /^buckets\[""\]: empty bucket name$/],
    ["bucket list", { buckets: { todos: "x" } }, /^buckets\.todos: must be an array/],
    ["bucket nested", { buckets: { todos: [[">"]] } }, /^buckets\.todos\[0\]: must be a string/],
    ["bucket key", { buckets: { todos: [">", "a b"] } }, /^buckets\.todos\[1\]: keys use/],
    ["bucket key token", { buckets: { todos: ["a", ""] } }, /^buckets\.todos\[1\]: empty key$/],
    ["bucket key dots", { buckets: { todos: ["a", "a..b"] } }, /^buckets\.todos\[1\]: empty token/],
    ["bucket key $", { buckets: { todos: ["$x"] } }, /^buckets\.todos\[0\]: keys use/],
    ["streams string", { streams: "CHAT" }, /^streams: must be an object/],
    ["stream dotted", { streams: { "A.B": [">"] } }, /^streams\["A\.B"\]: stream names/],
    ["stream slash", { streams: { "A/B": [">"] } }, /^streams\["A\/B"\]: stream names/],
    ["stream space", { streams: { "A B": [">"] } }, /^streams\["A B"\]: contains whitespace/],
    ["stream null", { streams: { A: [null] } }, /^streams\.A\[0\]: must be a string$/],
    ["stream filter", { streams: { A: ["a.>.b"] } }, /^streams\.A\[0\]: '>' must be the last/],
  ];
  for (const [what, doc, re] of cases) {
    const r = parseCapabilities(doc);
    assert.ok(!r.ok, `${what} is refused`);
    assert.match(r.errors[0], re, what);
  }
  const json: Array<[string, RegExp]> = [
    ["{nope", /^invalid JSON/],
    ["", /^invalid JSON/],
    ["null", /JSON object/],
    ["[]", /JSON object/],
    ['"x"', /JSON object/],
    ['{"subjects":["a"],"subjects":"b"}', /^subjects: must be an array/],
  ];
  for (const [text, re] of json) {
    const r = parseCapabilitiesJson(text);
    assert.ok(!r.ok, text);
    assert.match(r.errors[0], re, text);
  }
});

Deno.test("parseCapabilities: every error is reported, none is fatal", () => {
  const r = parseCapabilities({
    x: 1,
    subjects: ["ok", "a..b", 3],
    buckets: { "a.b": [], todos: ["ok", "a b"] },
    streams: 5,
  });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, [
    "x: unknown field",
    "subjects[1]: empty token",
    "subjects[2]: must be a string",
    'buckets["a.b"]: bucket names use only A-Z a-z 0-9 _ -',
    "buckets.todos[1]: keys use only A-Z a-z 0-9 - / _ = and dots",
    "streams: must be an object of name → array of patterns",
  ]);
});

Deno.test("parseCapabilities: __proto__ keys are data, never prototypes", () => {
  const cases: Array<[string, string, boolean]> = [
    ["top level", '{"__proto__":{"subjects":[">"]}}', false],
    ["top level, beside a field", '{"subjects":["a"],"__proto__":[">"]}', false],
    ["bucket", '{"buckets":{"__proto__":[">"]}}', true],
    ["stream", '{"streams":{"__proto__":[">"]}}', true],
    ["bucket with a bad list", '{"buckets":{"__proto__":{"x":1}}}', false],
  ];
  for (const [what, text, ok] of cases) {
    const r = parseCapabilitiesJson(text);
    assert.equal(r.ok, ok, what);
    if (!r.ok) assert.match(r.errors[0], /__proto__/, `${what}: error names __proto__`);
  }
  // `__proto__` is a valid bucket name ([A-Za-z0-9_-]+) and stream name: it must stay a plain key.
  for (const field of ["buckets", "streams"] as const) {
    const r = parseCapabilitiesJson(`{"${field}":{"__proto__":[">"]}}`);
    assert.ok(r.ok, field);
    const m = r.value[field]!;
    assert.ok(Object.hasOwn(m, "__proto__"), `${field}: kept as an own key`);
    assert.equal(Object.getPrototypeOf(m), Object.prototype, `${field}: prototype untouched`);
    assert.deepEqual(Object.keys(m), ["__proto__"], `${field}: one key`);
    assert.equal(JSON.stringify(r.value), `{"${field}":{"__proto__":[">"]}}`, `${field}: JSON`);
  }
  const parsed = parseCapabilitiesJson('{"buckets":{"__proto__":[">"]}}');
  assert.ok(parsed.ok);
  const set = compileCapabilities(parsed.value);
  const kv: Array<[string, boolean]> = [
    ["__proto__", true],
    ["other", false],
    ["constructor", false],
    ["toString", false],
    ["hasOwnProperty", false],
  ];
  for (const [bucket, want] of kv) assert.equal(checkKv(set, bucket).allowed, want, bucket);
  assert.equal(({} as Record<string, unknown>).subjects, undefined, "Object.prototype clean");
  // Inherited names are never grants, with or without a `__proto__` key.
  const plain = compileCapabilities({ buckets: { todos: [">"] } });
  for (const b of ["constructor", "toString", "__proto__", "valueOf"]) {
    assert.equal(checkKv(plain, b).allowed, false, `inherited ${b}`);
    assert.equal(checkStream(plain, b).allowed, false, `inherited stream ${b}`);
  }
});

type _Check = (set: CapabilitySet, target: string) => Decision;

Deno.test("checks: subjects, publish, commands", () => {
  const set = compileCapabilities(DOC);
  const cases: Array<[string, _Check, string, boolean]> = [
    ["sub", checkSubscribe, "chat.room.1", true],
    ["sub", checkSubscribe, "chat.room.*", true],
    ["sub", checkSubscribe, "chat.>", false],
    ["sub", checkSubscribe, "*.room.1", false],
    ["sub", checkSubscribe, "chat.*.*", false],
    ["sub", checkSubscribe, "chat.room", false],
    ["sub", checkSubscribe, "articles.x.y", true],
    ["sub", checkSubscribe, "articles.>", true],
    ["sub", checkSubscribe, "articles", false],
    ["sub", checkSubscribe, ">", false],
    ["sub", checkSubscribe, "a b", false],
    ["sub", checkSubscribe, "chat.room.1 ", false],
    ["sub", checkSubscribe, "chat.room.1\r\n", false],
    ["sub", checkSubscribe, "chat..room", false],
    ["sub", checkSubscribe, "articles.>.x", false],
    ["sub", checkSubscribe, "", false],
    ["pub", checkPublish, "chat.room.1", true],
    ["pub", checkPublish, "chat.room.*", false],
    ["pub", checkPublish, "chat.room.>", false],
    ["pub", checkPublish, "chat.room.1.x", false],
    ["pub", checkPublish, "articles.x", false],
    ["pub", checkPublish, "chat.room.1\u0000", false],
    ["cmd", checkCommand, "articles.create", true],
    ["cmd", checkCommand, "todos.add", true],
    ["cmd", checkCommand, "articles.delete", false],
    ["cmd", checkCommand, "todos.*", false],
    ["cmd", checkCommand, ">", false],
    ["cmd", checkCommand, "chat.room.1", false],
  ];
  for (const [op, check, target, want] of cases) {
    assert.equal(check(set, target).allowed, want, `${op} ${JSON.stringify(target)}`);
    assert.equal(check(EMPTY_CAPABILITIES, target).allowed, false, `empty: ${op} ${target}`);
  }
  const decisions: Array<[string, Decision, Decision]> = [
    ["sub grant", checkSubscribe(set, "chat.room.1"), {
      allowed: true,
      rule: "subjects: chat.room.*",
    }],
    ["sub deny", checkSubscribe(set, "chat.>"), {
      allowed: false,
      reason: "no pattern in subjects covers chat.>",
    }],
    ["pub grant", checkPublish(set, "chat.room.9"), {
      allowed: true,
      rule: "publish: chat.room.*",
    }],
    ["pub wildcard", checkPublish(set, "chat.room.*"), {
      allowed: false,
      reason: "pub target must be a literal subject",
    }],
    ["cmd wildcard", checkCommand(set, "todos.*"), {
      allowed: false,
      reason: "cmd target must be a literal subject",
    }],
    ["cmd deny", checkCommand(set, "todos.del"), {
      allowed: false,
      reason: "no pattern in commands matches todos.del",
    }],
    ["invalid", checkSubscribe(set, "a\nb"), {
      allowed: false,
      reason: 'invalid subject "a\\nb": contains whitespace or control characters',
    }],
  ];
  for (const [what, got, want] of decisions) assert.deepEqual(got, want, what);
});

Deno.test("checks: the $ rule for subjects, publish and commands", () => {
  const set = compileCapabilities({
    subjects: [">", "$JS.EVENT.>"],
    publish: [">", "*.x"],
    commands: ["*.API.INFO", "$KV.todos.>"],
  });
  const cases: Array<[string, _Check, string, boolean]> = [
    ["sub", checkSubscribe, ">", true],
    ["sub", checkSubscribe, "a.>", true],
    ["sub", checkSubscribe, "*.API.>", true],
    ["sub", checkSubscribe, "$JS.API.>", false],
    ["sub", checkSubscribe, "$JS.API.INFO", false],
    ["sub", checkSubscribe, "$SYS.>", false],
    ["sub", checkSubscribe, "$JS.EVENT.x", true],
    ["sub", checkSubscribe, "$JS.EVENT.>", true],
    ["sub", checkSubscribe, "$JS.>", false],
    ["pub", checkPublish, "a.b", true],
    ["pub", checkPublish, "$SYS.x", false],
    ["pub", checkPublish, "$NATSGATE.x", false],
    ["cmd", checkCommand, "$JS.API.INFO", false],
    ["cmd", checkCommand, "JS.API.INFO", true],
    ["cmd", checkCommand, "$KV.todos.a", true],
  ];
  for (const [op, check, target, want] of cases) {
    assert.equal(check(set, target).allowed, want, `${op} ${target}`);
  }
});

Deno.test("checks: buckets and streams are scoped to their own patterns", () => {
  const set = compileCapabilities(DOC);
  const kv: Array<[string, string | undefined, boolean]> = [
    ["todos", "user.123.*", true],
    ["todos", "user.123.name", true],
    ["todos", "user.>", false],
    ["todos", "user.*.name", false],
    ["todos", undefined, false],
    ["todos", ">", false],
    ["todos", "user.456.name", false],
    ["articles", undefined, true],
    ["articles", "a.b.c", true],
    ["other", "public.x", true],
    ["other", "public.>", true],
    ["other", "user.123.name", false],
    ["other", undefined, false],
    ["todos", "public.x", true],
    ["todos", "user.123.a b", false],
    ["todos", "user..123", false],
    ["todo s", "public.x", false],
    ["a.b", "public.x", false],
    ["", "public.x", false],
  ];
  for (const [bucket, key, want] of kv) {
    assert.equal(checkKv(set, bucket, key).allowed, want, `kv ${bucket} ${key}`);
  }
  const js: Array<[string, string | undefined, boolean]> = [
    ["CHAT", "chat.room.123", true],
    ["CHAT", undefined, false],
    ["CHAT", "chat.room.*", false],
    ["CHAT", "chat.room.124", false],
    ["AUDIT", undefined, true],
    ["AUDIT", "$JS.x", false], // `$` rule: a `>` filter grant never covers a literal `$…` filter
    ["AUDIT", "$JS.>", false],
    ["OTHER", ">", false],
    ["$SYS", ">", false],
    ["CHAT", "chat.room.123 ", false],
    ["A.B", ">", false],
  ];
  for (const [stream, filter, want] of js) {
    assert.equal(checkStream(set, stream, filter).allowed, want, `js ${stream} ${filter}`);
  }
  const decisions: Array<[string, Decision, Decision]> = [
    ["kv grant", checkKv(set, "todos", "user.123.*"), {
      allowed: true,
      rule: "buckets.todos: user.123.*",
    }],
    ["kv via *", checkKv(set, "other", "public.a"), { allowed: true, rule: "buckets.*: public.>" }],
    ["kv deny", checkKv(set, "todos", "user.>"), {
      allowed: false,
      reason: "no pattern under buckets for todos covers user.>",
    }],
    ["kv no bucket", checkKv(EMPTY_CAPABILITIES, "todos"), {
      allowed: false,
      reason: "no bucket pattern matches todos",
    }],
    ["js grant", checkStream(set, "AUDIT"), { allowed: true, rule: "streams.AUDIT: >" }],
    ["js no stream", checkStream(set, "OTHER"), {
      allowed: false,
      reason: "no stream pattern matches OTHER",
    }],
  ];
  for (const [what, got, want] of decisions) assert.deepEqual(got, want, what);
});

Deno.test("checks: wildcard bucket and stream patterns, and the $ rule on names", () => {
  const set = compileCapabilities({
    buckets: { ">": ["pub.>"], "*": ["x.*"], todos: ["own.>"] },
    streams: { "*": [">"], "$SPECIAL": ["a.>"] },
  });
  const kv: Array<[string, string, boolean]> = [
    ["anything", "pub.a.b", true],
    ["anything", "x.y", true],
    ["anything", "own.a", false],
    ["todos", "own.a", true],
    ["todos", "pub.a", true],
    ["todos", ">", false],
  ];
  for (const [b, k, want] of kv) assert.equal(checkKv(set, b, k).allowed, want, `kv ${b} ${k}`);
  const js: Array<[string, string, boolean]> = [
    ["ORDERS", ">", true],
    ["ORDERS", "$JS.x", false],
    ["$SPECIAL", "a.b", true],
    ["$SPECIAL", ">", false],
    ["$OTHER", ">", false],
  ];
  for (const [s, f, want] of js) assert.equal(checkStream(set, s, f).allowed, want, `js ${s} ${f}`);
});

Deno.test("checks: the auth bucket (reserved) is reached only by a literal grant", () => {
  const opts = { reservedBuckets: ["auth"] };
  const wide = compileCapabilities({ buckets: { ">": [">"] }, streams: { "*": [">"] } }, opts);
  const literal = compileCapabilities(
    { buckets: { auth: ["users.me"] }, streams: { KV_auth: ["$KV.auth.users.me"] } },
    opts,
  );
  const rows: Array<[string, CapabilitySet, "kv" | "js", string, string, boolean]> = [
    ["wildcard bucket grant skips the auth bucket", wide, "kv", "auth", ">", false],
    ["wildcard bucket grant skips it for one key too", wide, "kv", "auth", "users.x", false],
    ["other buckets stay granted", wide, "kv", "cfg", ">", true],
    ["wildcard stream grant skips KV_auth", wide, "js", "KV_auth", ">", false],
    ["other KV streams stay granted", wide, "js", "KV_cfg", ">", true],
    ["a literal bucket grant reaches it", literal, "kv", "auth", "users.me", true],
    ["a literal grant is still key-scoped", literal, "kv", "auth", "users.other", false],
    ["a literal stream grant reaches it", literal, "js", "KV_auth", "$KV.auth.users.me", true],
  ];
  for (const [name, set, kind, scope, pattern, want] of rows) {
    const d = kind === "kv" ? checkKv(set, scope, pattern) : checkStream(set, scope, pattern);
    assert.equal(d.allowed, want, name);
  }
  const denied = checkKv(wide, "auth");
  assert.ok(!denied.allowed && /holds capabilities: only a literal grant/.test(denied.reason));
  // Without the option (no reserved names) a wildcard grant covers any bucket.
  assert.equal(checkKv(compileCapabilities({ buckets: { ">": [">"] } }), "auth").allowed, true);
});

Deno.test("checks fail closed on unvalidated documents", () => {
  const bad = {
    subjects: ["a.>.b", "x y.>", 7, "ok.*"],
    publish: ["*a"],
    buckets: { "a.b": [">"], todos: ["a..b", "k.*"], "$X": [">"] },
    streams: { "A/B": [">"], S: "nope" },
  } as unknown as Capabilities;
  const set = compileCapabilities(bad);
  const cases: Array<[string, Decision, boolean]> = [
    ["a.>.b does not grant a.x", checkSubscribe(set, "a.x"), false],
    ["a.>.b does not grant a.>", checkSubscribe(set, "a.>"), false],
    ["x y.> grants nothing", checkSubscribe(set, "x y.z"), false],
    ["valid sibling still works", checkSubscribe(set, "ok.1"), true],
    ["*a grants nothing", checkPublish(set, "*a"), false],
    ["bad bucket name", checkKv(set, "a.b"), false],
    ["bad key pattern", checkKv(set, "todos", "a.x"), false],
    ["good key pattern", checkKv(set, "todos", "k.1"), true],
    ["bad stream name", checkStream(set, "A/B"), false],
    ["bad stream list", checkStream(set, "S"), false],
  ];
  for (const [what, got, want] of cases) assert.equal(got.allowed, want, what);
  assert.doesNotThrow(() => compileCapabilities({ subjects: null } as unknown as Capabilities));
  assert.ok(Object.isFrozen(set) && Object.isFrozen(set.subjects), "compiled set is frozen");
  assert.ok(Object.isFrozen(EMPTY_CAPABILITIES.buckets), "EMPTY_CAPABILITIES is frozen");
});

Deno.test("summarizeCapabilities", () => {
  const cases: Array<[Capabilities, string]> = [
    [{}, "subjects 0, publish 0, commands 0, buckets 0, streams 0"],
    [DOC, "subjects 2, publish 1, commands 2, buckets 3, streams 2"],
    [
      { subjects: ["a", "b"], streams: {} },
      "subjects 2, publish 0, commands 0, buckets 0, streams 0",
    ],
  ];
  for (const [caps, want] of cases) assert.equal(summarizeCapabilities(caps), want, want);
});
